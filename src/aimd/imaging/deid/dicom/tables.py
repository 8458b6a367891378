"""What the DICOM de-identification keeps, removes and replaces beyond the profile table, and its result record."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
_SWEEP_VRS = frozenset({"LO", "LT", "SH", "ST", "UC", "UT"})
_DUMMY: dict[str, Any] = {
    "AE": "ANONYMIZED",
    "AS": "000Y",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "TM": "000000",
    "UC": "ANONYMIZED",
    "UR": "",
    "UT": "ANONYMIZED",
}
_KEEP_UID_KEYWORDS = frozenset(
    {
        "TransferSyntaxUID",
        "CodingSchemeUID",
        "ContextUID",
        "MappingResourceUID",
        "PrivateInformationCreatorUID",
        "ReferencedTransferSyntaxUIDInFile",
        "EncryptedContentTransferSyntaxUID",
        "ImplementationClassUID",
    }
)
_PATIENT_NAME_KEYWORDS = ("PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName")
_OTHER_PERSON_KEYWORDS = (
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "PhysiciansOfRecord",
    "NameOfPhysiciansReadingStudy",
    "RequestingPhysician",
    "ScheduledPerformingPhysicianName",
    "ResponsiblePerson",
    "VerifyingObserverName",
    "ContentCreatorName",
    "ReviewerName",
)
# Binary (and unknown) VRs: their bytes cannot be read as text, so they are removed unless kept below.
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW", "US or SS or OW"})
# Binary attributes kept at the top level of an image: the pixels and what is needed to display them.
KEPT_BINARY_KEYWORDS = frozenset(
    {
        "PixelData",
        "FloatPixelData",
        "DoubleFloatPixelData",
        "ExtendedOffsetTable",
        "ExtendedOffsetTableLengths",
        "RedPaletteColorLookupTableData",
        "GreenPaletteColorLookupTableData",
        "BluePaletteColorLookupTableData",
        "AlphaPaletteColorLookupTableData",
        "SegmentedRedPaletteColorLookupTableData",
        "SegmentedGreenPaletteColorLookupTableData",
        "SegmentedBluePaletteColorLookupTableData",
    }
)
# Binary attributes kept inside the display sequences (Modality/VOI LUT, palette): lookup data only.
KEPT_NESTED_BINARY_KEYWORDS = frozenset({"LUTData"})
REMOVED_SEQUENCES = frozenset({"IconImageSequence"})  # a thumbnail: the image's burned-in text, smaller


@dataclass
class DicomResult:
    """What was done to one dataset (counts only; no original values)."""

    actions: Counter[str] = field(default_factory=Counter)
    text_rules: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    patient_pseudonym: str = ""
    patient_key: str = field(default="", repr=False)  # original key: kept out of to_json()
    modality: str = ""
    sop_class: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "modality": self.modality,
            "sop_class": self.sop_class,
            "patient": self.patient_pseudonym,
            "actions": dict(sorted(self.actions.items())),
            "text_rules": dict(sorted(self.text_rules.items())),
            "warnings": self.warnings,
        }
