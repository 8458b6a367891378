"""DICOM PS3.15 Annex E: the Basic Application Level Confidentiality Profile as data (001 §7.3, §11.2.1).

``BASIC_PROFILE`` lists the attributes of Table E.1-1 that occur in image objects (and the structured
report, RT and trial attributes that ride along with them), each with its tag, keyword and the action of
the *Basic Profile* column. Action codes are those of PS3.15 E.1.1:

===  ==================================================================================
D    replace with a non-zero-length dummy value consistent with the VR
Z    replace with a zero-length value (or a consistent dummy)
X    remove
K    keep (sequences: keep and de-identify their items)
C    clean: keep the meaning, remove identifying text (aimd runs its text rules)
U    replace the UID with a non-identifying one, consistently within the set of instances
===  ==================================================================================

Combined actions (``X/Z``, ``Z/D``, ``X/D``, ``X/Z/D``, ``X/Z/U*``) depend on the attribute's type in
each IOD. aimd does not look the IOD up; it resolves them to the action that keeps every IOD valid
(see :func:`resolve_action`): ``*/D`` → D, ``X/Z`` → Z, ``X/Z/U*`` → keep the sequence and remap the
UIDs inside it.

The options aimd supports change individual rows (:data:`PATIENT_CHARACTERISTICS_KEEP`,
:data:`PATIENT_CHARACTERISTICS_CLEAN`, :data:`CLEAN_DESCRIPTORS`, and every date/time attribute under
the *Retain Longitudinal Temporal Information with Modified Dates* option).

Example
-------
>>> entry = PROFILE_BY_TAG[0x00100010]
>>> entry.keyword, entry.action
('PatientName', 'Z')
>>> len(BASIC_PROFILE) > 250
True
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydicom.datadict import dictionary_description, dictionary_VR

from aimd.imaging.deid.ps315_table import BASIC_PROFILE_TABLE


class Action(StrEnum):
    """Effective operation applied to one attribute, after options and combined codes are resolved."""

    DUMMY = "D"
    EMPTY = "Z"
    REMOVE = "X"
    KEEP = "K"
    CLEAN = "C"
    REMAP_UID = "U"
    RECURSE = "U*"  # keep a sequence and de-identify (remap UIDs in) its items
    SHIFT_DATE = "C:date"  # clean a date/time by the per-patient shift (113107)
    PSEUDONYM = "P"  # Z/D with a consistent keyed pseudonym (PatientID, PatientName, AccessionNumber)


@dataclass(frozen=True)
class ProfileEntry:
    """One row of PS3.15 Table E.1-1: tag, keyword and the Basic Profile action code."""

    tag: int
    keyword: str
    action: str

    @property
    def name(self) -> str:
        """The attribute name as written in the standard (from pydicom's data dictionary)."""
        return dictionary_description(self.tag)

    @property
    def vr(self) -> str:
        """The VR of the attribute in pydicom's data dictionary."""
        return dictionary_VR(self.tag)

    @property
    def codes(self) -> tuple[str, ...]:
        """The action codes of a combined action, e.g. ``("X", "Z", "D")``."""
        return tuple(self.action.split("/"))


def _parse_tag(text: str) -> int:
    group, element = text.split(",")
    return (int(group, 16) << 16) | int(element, 16)


BASIC_PROFILE: tuple[ProfileEntry, ...] = tuple(
    ProfileEntry(_parse_tag(tag), keyword, action) for tag, keyword, action in BASIC_PROFILE_TABLE
)
PROFILE_BY_TAG: dict[int, ProfileEntry] = {entry.tag: entry for entry in BASIC_PROFILE}

# Repeating groups of the table: Curve Data (50xx,xxxx) X; Overlay Data (60xx,3000) X and Overlay Comments
# (60xx,4000) X. aimd removes whole curve groups and whole overlay groups (an overlay without its data is
# not a valid Overlay Plane module).
CURVE_GROUPS = range(0x5000, 0x5100, 2)
OVERLAY_GROUPS = range(0x6000, 0x6100, 2)

# Retain Patient Characteristics Option (113108): kept as is, or cleaned of identifying text.
PATIENT_CHARACTERISTICS_KEEP: frozenset[str] = frozenset(
    {
        "PatientSex",
        "PatientAge",
        "PatientSize",
        "PatientWeight",
        "PatientSexNeutered",
        "PregnancyStatus",
        "SmokingStatus",
    }
)
PATIENT_CHARACTERISTICS_CLEAN: frozenset[str] = frozenset(
    {"AdditionalPatientHistory", "Allergies", "MedicalAlerts", "SpecialNeeds", "PatientState"}
)

# Clean Descriptors Option (113105): descriptions kept after cleaning with the text rules.
CLEAN_DESCRIPTORS: frozenset[str] = frozenset(
    {
        "AcquisitionComments",
        "AcquisitionDeviceProcessingDescription",
        "AcquisitionProtocolDescription",
        "ContrastBolusAgent",
        "DerivationDescription",
        "FrameComments",
        "ImageComments",
        "ImagingServiceRequestComments",
        "PerformedProcedureStepDescription",
        "ProtocolName",
        "RequestedProcedureDescription",
        "ScheduledProcedureStepDescription",
        "SeriesDescription",
        "StudyDescription",
        "StudyComments",
        "ReasonForStudy",
        "AdmittingDiagnosesDescription",
        "DischargeDiagnosisDescription",
        "Impressions",
        "InterpretationText",
        "InterpretationDiagnosisDescription",
        "RequestedProcedureComments",
        "ResultsComments",
    }
)

# Dates that stay removed/emptied even with modified dates retained: they date the person, not the study.
BIRTH_DATES: frozenset[str] = frozenset(
    {
        "PatientBirthDate",
        "PatientBirthTime",
        "PatientBirthDateInAlternativeCalendar",
        "PatientDeathDateInAlternativeCalendar",
        "PatientAlternativeCalendar",
    }
)

# Identifiers replaced by a consistent keyed pseudonym (Z/D allow "a dummy value consistent with the VR").
PSEUDONYMISED: frozenset[str] = frozenset({"PatientID", "PatientName", "AccessionNumber"})

DATE_VRS = frozenset({"DA", "DT", "TM"})


@dataclass(frozen=True)
class ProfileOptions:
    """Which PS3.15 E.3 options are applied (each adds its code to DeidentificationMethodCodeSequence).

    Parameters
    ----------
    retain_modified_dates:
        113107 — dates are shifted by a per-patient offset of whole days; times are kept.
    retain_patient_characteristics:
        113108 — sex, age, size, weight, pregnancy and smoking status kept; history/allergy text cleaned.
    clean_descriptors:
        113105 — study/series/protocol descriptions kept after cleaning with the text rules.
    keep_private_tags:
        Private attributes are kept unchecked (no 113111 claim is made); by default they are removed.
    """

    retain_modified_dates: bool = True
    retain_patient_characteristics: bool = True
    clean_descriptors: bool = False
    keep_private_tags: bool = False

    def method_codes(self) -> list[tuple[str, str]]:
        """(code value, code meaning) of CID 7050 for the profile and the options in use."""
        codes = [("113100", "Basic Application Confidentiality Profile")]
        if self.clean_descriptors:
            codes.append(("113105", "Clean Descriptors Option"))
        if self.retain_modified_dates:
            codes.append(("113107", "Retain Longitudinal Temporal Information Modified Dates Option"))
        if self.retain_patient_characteristics:
            codes.append(("113108", "Retain Patient Characteristics Option"))
        return codes


def resolve_action(entry: ProfileEntry, options: ProfileOptions, vr: str) -> Action:
    """The operation aimd applies to one profile attribute given the options and the element's VR.

    Example
    -------
    >>> resolve_action(PROFILE_BY_TAG[0x00080020], ProfileOptions(), "DA")
    <Action.SHIFT_DATE: 'C:date'>
    >>> resolve_action(PROFILE_BY_TAG[0x00080020], ProfileOptions(retain_modified_dates=False), "DA")
    <Action.EMPTY: 'Z'>
    """
    keyword = entry.keyword
    if keyword in PSEUDONYMISED:
        return Action.PSEUDONYM
    if options.retain_patient_characteristics:
        if keyword in PATIENT_CHARACTERISTICS_KEEP:
            return Action.KEEP
        if keyword in PATIENT_CHARACTERISTICS_CLEAN:
            return Action.CLEAN
    if options.clean_descriptors and keyword in CLEAN_DESCRIPTORS:
        return Action.CLEAN
    if options.retain_modified_dates and vr in DATE_VRS and keyword not in BIRTH_DATES:
        return Action.SHIFT_DATE
    codes = entry.codes
    if "U*" in codes:
        return Action.RECURSE
    if "U" in codes or (vr == "UI" and ("D" in codes or "K" in codes)):
        return Action.REMAP_UID
    if "D" in codes:
        return Action.DUMMY
    if "Z" in codes:
        return Action.EMPTY
    if "K" in codes:
        return Action.KEEP
    if "C" in codes:
        return Action.CLEAN
    return Action.REMOVE


__all__ = [
    "BASIC_PROFILE",
    "BIRTH_DATES",
    "CLEAN_DESCRIPTORS",
    "CURVE_GROUPS",
    "OVERLAY_GROUPS",
    "PATIENT_CHARACTERISTICS_CLEAN",
    "PATIENT_CHARACTERISTICS_KEEP",
    "PROFILE_BY_TAG",
    "PSEUDONYMISED",
    "Action",
    "ProfileEntry",
    "ProfileOptions",
    "resolve_action",
]
