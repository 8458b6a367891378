"""aimd.imaging — Volume, DICOM/NIfTI io, geometry checks, windowing, resampling, de-identification."""

from aimd.core.lazy import lazy_exports

lazy_exports(
    __name__,
    {
        "aimd.imaging.dicom_read": ["AmbiguousSeriesError", "read_dicom_file", "read_dicom_series"],
        "aimd.imaging.dicom_write": ["DicomMeta", "write_dicom_image", "write_dicom_series"],
        "aimd.imaging.geometry": ["check_series", "check_volume"],
        "aimd.imaging.io": ["list_series", "read_volume", "write_volume"],
        "aimd.imaging.nifti_io": ["is_nifti_path", "read_nifti", "write_nifti"],
        "aimd.imaging.resample": ["from_sitk", "resample_to_reference", "resample_to_spacing", "to_sitk"],
        "aimd.imaging.volume": ["Volume"],
        "aimd.imaging.windowing": ["WINDOW_PRESETS", "Window", "apply_window", "get_window", "normalize"],
    },
)

__all__ = [
    "is_nifti_path",
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
