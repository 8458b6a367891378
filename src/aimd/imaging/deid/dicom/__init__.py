"""De-identify DICOM datasets with the PS3.15 Basic Application Level Confidentiality Profile.

The profile table (:mod:`aimd.imaging.deid.profile`) is applied at every nesting level; private
attributes, curve groups (50xx) and overlay groups (60xx) are removed; UIDs are replaced by keyed UIDs so a
study stays one study and shared Frames of Reference stay shared; dates move by the patient's offset.
Geometry (ImagePositionPatient, ImageOrientationPatient, PixelSpacing, SliceThickness,
SpacingBetweenSlices, rescale) and pixel data are not in the table and are never touched
(001 §7.3: "应不影响诊断和空间定位信息").

Modules: :mod:`~aimd.imaging.deid.dicom.tables` (what is kept, removed, replaced),
:mod:`~aimd.imaging.deid.dicom.io` (read and write), :mod:`~aimd.imaging.deid.dicom.worker` (the walk
over a dataset), :mod:`~aimd.imaging.deid.dicom.apply` (a dataset or a file).

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
>>> from aimd.imaging.deid.profile import ProfileOptions
>>> ds = read_dicom(get_testdata_file("CT_small.dcm"))
>>> result = deidentify_dataset(ds, DeidMap.new("k"), ProfileOptions(), max_shift_days=30)
>>> ds.PatientIdentityRemoved, str(ds.PatientName).startswith("ANON^")
('YES', True)
"""

from aimd.imaging.deid.dicom.apply import deidentify_dataset, deidentify_dicom_file, mark_pixels_cleaned
from aimd.imaging.deid.dicom.io import read_dicom, write_dicom
from aimd.imaging.deid.dicom.tables import (
    BINARY_VRS,
    KEPT_BINARY_KEYWORDS,
    KEPT_NESTED_BINARY_KEYWORDS,
    REMOVED_SEQUENCES,
    DicomResult,
)
from aimd.imaging.deid.dicom.worker import patient_key, register_patient

__all__ = [
    "BINARY_VRS",
    "KEPT_BINARY_KEYWORDS",
    "KEPT_NESTED_BINARY_KEYWORDS",
    "REMOVED_SEQUENCES",
    "DicomResult",
    "deidentify_dataset",
    "deidentify_dicom_file",
    "mark_pixels_cleaned",
    "patient_key",
    "read_dicom",
    "register_patient",
    "write_dicom",
]
