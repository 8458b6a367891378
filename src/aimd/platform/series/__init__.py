"""Series of a case (001 §6.4.1, §10.1.1): the case's image and further series, their registration onto
the annotated image, and the import of a DICOM study that splits its series by itself.

Modules: :mod:`~aimd.platform.series.intake` (a case with its image, report text and fields),
:mod:`~aimd.platform.series.registration` (frame of reference or rigid Mattes-MI registration and its
quality rules), :mod:`~aimd.platform.series.store` (further series: import, listing, blobs),
:mod:`~aimd.platform.series.dicom_check` (identifiers left in DICOM files),
:mod:`~aimd.platform.series.unpack` (a study upload unpacked safely) and
:mod:`~aimd.platform.series.study` (a DICOM study: series found, primary chosen, the others registered).
"""

from aimd.core.lazy import lazy_exports

lazy_exports(
    __name__,
    {
        "aimd.platform.series.intake": [
            "CaseImport",
            "add_case",
            "identifier_findings",
            "import_case",
            "read_image_b64",
            "store_image",
        ],
        "aimd.platform.series.registration": ["DEFAULT_MAX_MI", "MIN_OVERLAP", "register_series"],
        "aimd.platform.series.store": [
            "SeriesImport",
            "add_series",
            "get_series",
            "import_series",
            "series_blobs",
            "series_out",
        ],
    },
)

__all__ = [
    "DEFAULT_MAX_MI",
    "MIN_OVERLAP",
    "CaseImport",
    "SeriesImport",
    "add_case",
    "add_series",
    "get_series",
    "identifier_findings",
    "import_case",
    "import_series",
    "read_image_b64",
    "register_series",
    "series_blobs",
    "series_out",
    "store_image",
]
