"""The walk over a dataset that applies the PS3.15 profile and aimd's safety net at every nesting level."""

from __future__ import annotations

from typing import Any

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
)

from aimd.imaging.deid.dates import shift_da, shift_dt
from aimd.imaging.deid.dicom.tables import (
    _DUMMY,
    _KEEP_UID_KEYWORDS,
    _OTHER_PERSON_KEYWORDS,
    _PATIENT_NAME_KEYWORDS,
    _STRING_VRS,
    _SWEEP_VRS,
    BINARY_VRS,
    KEPT_BINARY_KEYWORDS,
    KEPT_NESTED_BINARY_KEYWORDS,
    REMOVED_SEQUENCES,
    DicomResult,
)
from aimd.imaging.deid.mapping import DeidMap, PatientEntry, is_identifying
from aimd.imaging.deid.profile import (
    CURVE_GROUPS,
    OVERLAY_GROUPS,
    PROFILE_BY_TAG,
    Action,
    ProfileOptions,
    resolve_action,
)
from aimd.imaging.deid.text import TextDeidentifier


def patient_key(ds: Dataset) -> str:
    """The original key that identifies the patient of ``ds`` (PatientID, else name, else study).

    Example
    -------
    >>> d = Dataset(); d.PatientID = " P1 "
    >>> patient_key(d)
    'P1'
    """
    pid = str(ds.get("PatientID", "") or "").strip()
    if pid:
        return pid
    name = str(ds.get("PatientName", "") or "").strip()
    if name:
        return f"name:{name}"
    return f"study:{ds.get('StudyInstanceUID', 'unknown')}"


def register_patient(ds: Dataset, mapping: DeidMap, *, max_shift_days: int) -> PatientEntry:
    """Add the patient of ``ds`` and its original identifiers to the map; return the entry.

    Example
    -------
    >>> d = Dataset(); d.PatientID = "P7"; d.PatientName = "Song^Hua"
    >>> m = DeidMap.new("k")
    >>> register_patient(d, m, max_shift_days=10).identifiers["NAME"]
    ['Song^Hua']
    """
    entry = mapping.patient(patient_key(ds), max_shift_days=max_shift_days)
    for keyword in _PATIENT_NAME_KEYWORDS:
        for value in _values(ds.get(keyword)):
            entry.add("NAME", str(value))
    for keyword in ("PatientID", "OtherPatientIDs"):
        for value in _values(ds.get(keyword)):
            entry.add("ID", str(value))
    for value in _values(ds.get("AccessionNumber")):
        entry.add("ACCESSION", str(value))
    for value in _values(ds.get("InstitutionName")):
        if is_identifying(str(value)):
            mapping.token("INSTITUTION", str(value))
    for keyword in _OTHER_PERSON_KEYWORDS:
        for value in _values(ds.get(keyword)):
            if is_identifying(str(value)):
                mapping.token("NAME", str(value))
    return entry


def _decode_un(ds: Dataset, elem: DataElement) -> DataElement:
    """Re-read a public attribute of VR UN with its VR from the data dictionary (UN kept when unknown)."""
    try:
        vr = dictionary_VR(elem.tag)
    except KeyError:
        return elem
    if vr in ("UN", "") or " or " in vr:
        return elem
    raw = elem.value if isinstance(elem.value, bytes) else b""
    try:
        decoded = convert_raw_data_element(RawDataElement(elem.tag, vr, len(raw), raw, 0, True, True), ds=ds)
    except Exception:
        return elem
    ds[elem.tag] = decoded
    return decoded


def _kept_binary(elem: DataElement, top: bool) -> bool:
    keyword = elem.keyword or ""
    if top and keyword in KEPT_BINARY_KEYWORDS:
        return True
    return not top and keyword in KEPT_NESTED_BINARY_KEYWORDS and not elem.tag.is_private


def _values(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [v for v in value if v not in (None, "")]
    return [value]


class _Worker:
    """Applies the profile to one dataset tree for one patient."""

    def __init__(self, mapping: DeidMap, patient: PatientEntry, options: ProfileOptions) -> None:
        self.mapping = mapping
        self.patient = patient
        self.options = options
        self.result = DicomResult(patient_pseudonym=patient.pseudonym)
        self.cleaner = TextDeidentifier(mapping, date_offset_days=patient.date_offset_days)

    def run(self, ds: Dataset, *, top: bool = True) -> None:
        for elem in list(ds):
            tag = elem.tag
            if elem.VR == "UN" and not tag.is_private:
                elem = _decode_un(ds, elem)
            if elem.VR in BINARY_VRS and not _kept_binary(elem, top):
                del ds[tag]
                self.result.actions["X:binary_not_kept"] += 1
                if elem.keyword == "EncapsulatedDocument":
                    self.result.warnings.append("encapsulated document removed (its text cannot be checked)")
                continue
            if elem.keyword in REMOVED_SEQUENCES:
                del ds[tag]
                self.result.actions["X:icon_image"] += 1
                continue
            if tag.is_private:
                self._private(ds, elem)
                continue
            if tag.group in CURVE_GROUPS or tag.group in OVERLAY_GROUPS:
                del ds[tag]
                self.result.actions["X:curve_overlay"] += 1
                continue
            entry = PROFILE_BY_TAG.get(int(tag))
            if entry is not None:
                action = resolve_action(entry, self.options, elem.VR)
                self._apply(ds, elem, action)
                self.result.actions[action.value] += 1
            else:
                self._safety_net(ds, elem)

    # ------------------------------------------------------------------ table actions
    def _apply(self, ds: Dataset, elem: DataElement, action: Action) -> None:
        vr = elem.VR
        if action is Action.REMOVE:
            del ds[elem.tag]
        elif action is Action.EMPTY:
            elem.value = Sequence() if vr == "SQ" else ("" if vr in _STRING_VRS else None)
        elif action is Action.KEEP:
            if vr == "SQ":
                self._recurse(elem)
        elif action is Action.RECURSE:
            if vr == "SQ":
                self._recurse(elem)
            elif vr == "UI":
                self._remap_uids(elem)
            else:
                del ds[elem.tag]
        elif action is Action.DUMMY:
            self._dummy(elem)
        elif action is Action.CLEAN:
            self._clean(ds, elem)
        elif action is Action.REMAP_UID:
            if vr == "UI":
                self._remap_uids(elem)
            elif vr == "SQ":
                self._recurse(elem)
            else:
                del ds[elem.tag]
        elif action is Action.SHIFT_DATE:
            self._shift(elem)
        elif action is Action.PSEUDONYM:
            self._pseudonym(elem)

    def _recurse(self, elem: DataElement) -> None:
        for item in elem.value or []:
            self.run(item, top=False)

    def _private(self, ds: Dataset, elem: DataElement) -> None:
        """A kept private attribute: creators stay, orphans go, sequences recurse, text is cleaned."""
        tag = elem.tag
        if 0x0010 <= tag.element <= 0x00FF:
            return  # private creator
        creator = (tag.group << 16) | (tag.element >> 8)
        if creator not in ds:
            del ds[tag]
            self.result.actions["X:private_without_creator"] += 1
        elif elem.VR == "SQ":
            self._recurse(elem)
        elif elem.VR in _SWEEP_VRS or elem.VR == "PN":
            self._clean(ds, elem)
            self.result.actions["C:private_text"] += 1

    def _dummy(self, elem: DataElement) -> None:
        vr = elem.VR
        if vr == "SQ":
            items = list(elem.value or [])
            if items and all("CodeValue" in item for item in items):
                code = Dataset()
                code.CodeValue = "ANON"
                code.CodingSchemeDesignator = "99AIMD"
                code.CodeMeaning = "ANONYMIZED"
                elem.value = Sequence([code])
            else:
                self._recurse(elem)
        elif vr == "UI":
            self._remap_uids(elem)
        elif vr in _DUMMY:
            elem.value = _DUMMY[vr]
        elif vr in ("US", "SS", "UL", "SL", "FL", "FD", "SV", "UV"):
            elem.value = 0
        else:
            elem.value = b""

    def _clean(self, ds: Dataset, elem: DataElement) -> None:
        if elem.VR == "SQ":
            self._recurse(elem)
            return
        if elem.VR not in _SWEEP_VRS and elem.VR != "PN":
            del ds[elem.tag]
            return
        values = [str(v) for v in _values(elem.value)]
        cleaned = []
        for value in values:
            out = self.cleaner.deidentify(value)
            self.result.text_rules.update(out.counts)
            cleaned.append(out.text)
        elem.value = cleaned if len(cleaned) > 1 else (cleaned[0] if cleaned else "")

    def _shift(self, elem: DataElement) -> None:
        vr = elem.VR
        if vr == "TM" or not elem.value:
            return
        shifter = shift_da if vr == "DA" else shift_dt if vr == "DT" else None
        if shifter is None:
            return
        new = []
        for value in _values(elem.value):
            shifted = shifter(str(value), self.patient.date_offset_days)
            if shifted is None:
                self.result.actions["Z:unparseable_date"] += 1
            else:
                new.append(shifted)
        elem.value = new if len(new) > 1 else (new[0] if new else "")

    def _remap_uids(self, elem: DataElement) -> None:
        values = [self.mapping.uid(str(v)) for v in _values(elem.value)]
        elem.value = values if len(values) > 1 else (values[0] if values else "")

    def _pseudonym(self, elem: DataElement) -> None:
        if elem.keyword == "AccessionNumber":
            value = str(elem.value or "").strip()
            elem.value = self.mapping.accession(value) if value else ""
        elif elem.VR == "PN":
            elem.value = self.patient.person_name
        else:
            elem.value = self.patient.pseudonym

    # ------------------------------------------------------------------ beyond the table
    def _safety_net(self, ds: Dataset, elem: DataElement) -> None:
        vr = elem.VR
        if vr == "SQ":
            self._recurse(elem)
        elif vr == "PN":
            if str(elem.value or "").strip():
                elem.value = ""
                self.result.actions["Z:person_name_not_in_profile"] += 1
        elif vr in ("DA", "DT"):
            if not elem.value:
                return
            if self.options.retain_modified_dates:
                self._shift(elem)
                self.result.actions["C:date_not_in_profile"] += 1
            else:
                elem.value = ""
                self.result.actions["Z:date_not_in_profile"] += 1
        elif vr == "UI":
            keyword = elem.keyword or ""
            values = [str(v) for v in _values(elem.value)]
            if (
                keyword.endswith("ClassUID")
                or keyword in _KEEP_UID_KEYWORDS
                or not values
                or all(UID(v).is_valid and UID(v).name != v for v in values)
                or all(v.startswith("1.2.840.10008.") for v in values)
            ):
                return
            self._remap_uids(elem)
            self.result.actions["U:uid_not_in_profile"] += 1
        elif vr in _SWEEP_VRS and elem.value:
            values = [str(v) for v in _values(elem.value)]
            outs = [self.cleaner.deidentify(v) for v in values]
            if any(o.changed for o in outs):
                new = [o.text for o in outs]
                elem.value = new if len(new) > 1 else new[0]
                for out in outs:
                    self.result.text_rules.update(out.counts)
                self.result.actions["C:identifier_in_text_attribute"] += 1
