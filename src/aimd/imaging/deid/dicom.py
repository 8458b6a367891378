"""De-identify DICOM datasets with the PS3.15 Basic Application Level Confidentiality Profile.

The profile table (:mod:`aimd.imaging.deid.profile`) is applied at every nesting level; private
attributes, curve groups (50xx) and overlay groups (60xx) are removed; UIDs are replaced by keyed UIDs so a
study stays one study and shared Frames of Reference stay shared; dates move by the patient's offset.
Geometry (ImagePositionPatient, ImageOrientationPatient, PixelSpacing, SliceThickness,
SpacingBetweenSlices, rescale) and pixel data are not in the table and are never touched
(001 §7.3: "应不影响诊断和空间定位信息").

Beyond the table, as a safety net (aimd extension, logged per action): any other PN attribute is emptied,
any other DA/DT is shifted, any other instance UID is remapped, and the text of any other string attribute
goes through the same text rules as report text (names, resident ids, phones, addresses, record numbers,
dates) and the patient's known identifiers. Attributes of VR UN are first decoded to their dictionary VR;
every binary or UN attribute that is not explicitly kept (pixel data and lookup tables at the top level)
is removed — encapsulated documents, icon images, waveforms and unknown bytes can all carry identifying
text. Kept private attributes (``keep_private_tags``) lose their binary values and orphans (no private
creator), and their text is cleaned too.

Example
-------
>>> from pydicom.data import get_testdata_file
>>> from aimd.imaging.deid.mapping import DeidMap
>>> ds = read_dicom(get_testdata_file("CT_small.dcm"))
>>> result = deidentify_dataset(ds, DeidMap.new("k"), ProfileOptions(), max_shift_days=30)
>>> ds.PatientIdentityRemoved, str(ds.PatientName).startswith("ANON^")
('YES', True)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from aimd import __version__
from aimd.core.errors import InvalidInputError
from aimd.imaging.deid.dates import shift_da, shift_dt
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


def read_dicom(path: str | Path) -> Dataset:
    """Read a whole DICOM file, refusing anything that is not a complete, parseable dataset.

    Raises
    ------
    InvalidInputError
        Not DICOM, truncated, or pixel data shorter than Rows × Columns × frames × samples × bits.

    Example
    -------
    >>> from pydicom.data import get_testdata_file
    >>> read_dicom(get_testdata_file("CT_small.dcm")).Modality
    'CT'
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError("file not found", where=str(path), hint="check the path")
    try:
        ds = pydicom.dcmread(path, force=False)
        _check_complete(ds, path)
    except InvalidDicomError:
        try:
            ds = pydicom.dcmread(path, force=True)
            _check_complete(ds, path)
        except InvalidInputError:
            raise
        except Exception as err:
            raise InvalidInputError(
                f"not a readable DICOM file ({type(err).__name__})",
                where=str(path),
                hint="re-export the file from the PACS or remove it",
            ) from None
        if "SOPClassUID" not in ds and "SOPInstanceUID" not in ds:
            raise InvalidInputError(
                "not a DICOM file (no preamble and no SOP attributes)",
                where=str(path),
                hint="remove the file or give it a proper DICOM header",
            ) from None
    except Exception as err:
        if isinstance(err, InvalidInputError):
            raise
        raise InvalidInputError(
            f"corrupt DICOM file ({type(err).__name__})",
            where=str(path),
            hint="re-export the file from the PACS or remove it",
        ) from None
    if "SOPClassUID" not in ds and "SOPInstanceUID" not in ds:
        raise InvalidInputError(
            "no SOP Class or Instance UID: truncated or not a DICOM object",
            where=str(path),
            hint="re-export the file from the PACS or remove it",
        )
    try:
        _check_pixel_data(ds, path)
    except InvalidInputError:
        raise
    except Exception as err:  # e.g. a TransferSyntaxUID that names no transfer syntax
        raise InvalidInputError(
            f"corrupt DICOM file ({type(err).__name__}: {err})",
            where=str(path),
            hint="re-export the file from the PACS or remove it",
        ) from None
    sop_class = UID(str(ds.get("SOPClassUID", "") or ""))
    if (
        "Image Storage" in sop_class.name
        and "PixelData" not in ds
        and "FloatPixelData" not in ds
        and "DoubleFloatPixelData" not in ds
    ):
        raise InvalidInputError(
            f"{sop_class.name} without pixel data: the file is truncated",
            where=str(path),
            hint="re-export the file from the PACS or remove it",
        )
    return ds


def _check_complete(ds: Dataset, path: Path) -> None:
    """Convert every element now, refusing values shorter than their stated length (a cut file)."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if (
            isinstance(raw, RawDataElement)
            and raw.value is not None
            and raw.length != 0xFFFFFFFF
            and len(raw.value) < raw.length
        ):
            raise InvalidInputError(
                f"file ends inside attribute {tag} ({len(raw.value)} of {raw.length} bytes): truncated",
                where=str(path),
                hint="re-export the file from the PACS",
            )
        elem = ds[tag]
        if elem.VR == "SQ":
            for item in elem.value or []:
                _check_complete(item, path)


def _check_pixel_data(ds: Dataset, path: Path) -> None:
    if "PixelData" not in ds:
        return
    ts = _transfer_syntax(ds)
    if ts.is_compressed:
        return
    try:
        bits = int(ds.BitsAllocated)
        count = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1)
        count *= int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError) as err:
        raise InvalidInputError(
            f"image attributes missing or invalid ({err})",
            where=str(path),
            hint="Rows, Columns and BitsAllocated must be present",
        ) from None
    expected = (count * bits + 7) // 8
    if str(ds.get("PhotometricInterpretation", "")).startswith("YBR_FULL_422"):
        expected = expected * 2 // 3  # two chroma samples shared by each pair of pixels
    if len(ds.PixelData) < expected:
        raise InvalidInputError(
            f"pixel data truncated: {len(ds.PixelData)} bytes, {expected} expected",
            where=f"{path} (7FE0,0010)",
            hint="re-export the file from the PACS",
        )


def _transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return UID(meta.TransferSyntaxUID)
    implicit, little = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little in (True, None) else ExplicitVRBigEndian


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


def deidentify_dataset(ds: Dataset, mapping: DeidMap, options: ProfileOptions, *, max_shift_days: int) -> DicomResult:
    """De-identify ``ds`` in place (PS3.15 E.1 Basic Profile with ``options``); return what was done.

    Example
    -------
    >>> from pydicom.data import get_testdata_file
    >>> ds = read_dicom(get_testdata_file("MR_small.dcm"))
    >>> r = deidentify_dataset(ds, DeidMap.new("k"), ProfileOptions(), max_shift_days=30)
    >>> "PatientBirthDate" in ds and ds.PatientBirthDate == ""
    True
    """
    patient = register_patient(ds, mapping, max_shift_days=max_shift_days)
    worker = _Worker(mapping, patient, options)
    result = worker.result
    result.patient_key = patient.key
    result.modality = str(ds.get("Modality", ""))
    result.sop_class = UID(str(ds.get("SOPClassUID", ""))).name if "SOPClassUID" in ds else ""
    if not options.keep_private_tags:
        private = sum(1 for e in ds.iterall() if e.tag.is_private)
        ds.remove_private_tags()
        if private:
            result.actions["X:private"] += private
    else:
        result.warnings.append("private attributes kept unchecked (keep_private_tags)")
    worker.run(ds)
    _mark_deidentified(ds, options)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta and "SOPInstanceUID" not in ds:
        meta.MediaStorageSOPInstanceUID = mapping.uid(str(meta.MediaStorageSOPInstanceUID))
    return result


def _mark_deidentified(ds: Dataset, options: ProfileOptions) -> None:
    ds.PatientIdentityRemoved = "YES"
    methods = [f"aimd {__version__} PS3.15 E.1 Basic Profile"]
    if options.retain_modified_dates:
        methods.append("dates shifted by a per-patient offset in days")
    if options.retain_patient_characteristics:
        methods.append("patient sex, age, size, weight kept")
    if options.clean_descriptors:
        methods.append("descriptions cleaned by aimd text rules")
    methods.append("private attributes kept unchecked" if options.keep_private_tags else "private attributes removed")
    ds.DeidentificationMethod = methods
    items = []
    for value, meaning in options.method_codes():
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = "MODIFIED" if options.retain_modified_dates else "REMOVED"


def mark_pixels_cleaned(ds: Dataset) -> None:
    """Record the Clean Pixel Data Option (113101) after burned-in text was blanked and checked by OCR."""
    item = Dataset()
    item.CodeValue = "113101"
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = "Clean Pixel Data Option"
    codes = ds.get("DeidentificationMethodCodeSequence") or Sequence()
    codes.append(item)
    ds.DeidentificationMethodCodeSequence = codes
    methods = [str(m) for m in _values(ds.get("DeidentificationMethod"))]
    ds.DeidentificationMethod = [*methods, "burned-in text blanked, OCR check clean"]
    ds.BurnedInAnnotation = "NO"


def write_dicom(ds: Dataset, path: str | Path) -> None:
    """Write ``ds`` with a fresh file meta header (new MediaStorageSOPInstanceUID, same transfer syntax).

    Example
    -------
    >>> import tempfile, pathlib
    >>> from pydicom.data import get_testdata_file
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.dcm"
    >>> write_dicom(read_dicom(get_testdata_file("CT_small.dcm")), out)
    >>> pydicom.dcmread(out).file_meta.TransferSyntaxUID.name
    'Explicit VR Little Endian'
    """
    ts = _transfer_syntax(ds)
    old = getattr(ds, "file_meta", None)
    meta = FileMetaDataset()
    sop_class = ds.get("SOPClassUID") or (old.get("MediaStorageSOPClassUID") if old is not None else None)
    if sop_class:
        meta.MediaStorageSOPClassUID = sop_class
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    elif old is not None and "MediaStorageSOPInstanceUID" in old:
        meta.MediaStorageSOPInstanceUID = old.MediaStorageSOPInstanceUID
    if "MediaStorageSOPClassUID" not in meta or "MediaStorageSOPInstanceUID" not in meta:
        raise InvalidInputError(
            "SOPClassUID or SOPInstanceUID missing: not a storable DICOM object",
            where=str(path),
            hint="re-export the object from the PACS or remove it",
        )
    meta.TransferSyntaxUID = ts
    ds.file_meta = meta
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def deidentify_dicom_file(
    src: str | Path, dst: str | Path, mapping: DeidMap, options: ProfileOptions, *, max_shift_days: int
) -> DicomResult:
    """Read ``src``, de-identify it and write it to ``dst``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> from pydicom.data import get_testdata_file
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "ct.dcm"
    >>> r = deidentify_dicom_file(get_testdata_file("CT_small.dcm"), out, DeidMap.new("k"), ProfileOptions(),
    ...                           max_shift_days=30)
    >>> pydicom.dcmread(out).PatientIdentityRemoved
    'YES'
    """
    ds = read_dicom(src)
    result = deidentify_dataset(ds, mapping, options, max_shift_days=max_shift_days)
    write_dicom(ds, dst)
    return result


__all__ = [
    "DicomResult",
    "deidentify_dataset",
    "deidentify_dicom_file",
    "mark_pixels_cleaned",
    "patient_key",
    "read_dicom",
    "register_patient",
    "write_dicom",
]
