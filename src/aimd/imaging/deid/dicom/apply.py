"""De-identify a dataset or a file: the profile walk, the de-identification marks, the cleaned-pixels mark."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
)

from aimd import __version__
from aimd.imaging.deid.dicom.io import read_dicom, write_dicom
from aimd.imaging.deid.dicom.tables import DicomResult
from aimd.imaging.deid.dicom.worker import _values, _Worker, register_patient
from aimd.imaging.deid.mapping import DeidMap
from aimd.imaging.deid.profile import (
    ProfileOptions,
)


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


def deidentify_dicom_file(
    src: str | Path, dst: str | Path, mapping: DeidMap, options: ProfileOptions, *, max_shift_days: int
) -> DicomResult:
    """Read ``src``, de-identify it and write it to ``dst``.

    Example
    -------
    >>> import tempfile, pathlib, pydicom
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
