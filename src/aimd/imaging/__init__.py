"""aimd.imaging — Volume, DICOM/NIfTI io, geometry checks, windowing, resampling, de-identification."""

from aimd.imaging.dicom_read import AmbiguousSeriesError, read_dicom_file, read_dicom_series
from aimd.imaging.dicom_write import DicomMeta, write_dicom_image, write_dicom_series
from aimd.imaging.geometry import check_series, check_volume
from aimd.imaging.io import list_series, read_volume, write_volume
from aimd.imaging.nifti_io import read_nifti, write_nifti
from aimd.imaging.resample import from_sitk, resample_to_reference, resample_to_spacing, to_sitk
from aimd.imaging.volume import Volume
from aimd.imaging.windowing import WINDOW_PRESETS, Window, apply_window, get_window, normalize

__all__ = [
    "WINDOW_PRESETS",
    "AmbiguousSeriesError",
    "DicomMeta",
    "Volume",
    "Window",
    "apply_window",
    "check_series",
    "check_volume",
    "from_sitk",
    "get_window",
    "list_series",
    "normalize",
    "read_dicom_file",
    "read_dicom_series",
    "read_nifti",
    "read_volume",
    "resample_to_reference",
    "resample_to_spacing",
    "to_sitk",
    "write_dicom_image",
    "write_dicom_series",
    "write_nifti",
    "write_volume",
]
