"""aimd.phantoms — reproducible multimodal phantom cases with exact ground truth.

A case is a chest/upper-abdomen CT in HU (DICOM series and NIfTI), its label and lesion-instance
masks, an AP radiograph projected from the CT (DX DICOM) with nodule boxes, Chinese and English
reports with lesion-linked spans, and structured clinical fields (001 §8.1, §8.5).

Example
-------
>>> import tempfile, pathlib
>>> from aimd.phantoms import generate_dataset
>>> index = generate_dataset(pathlib.Path(tempfile.mkdtemp()) / "ph", cases=1, seed=0, size=32, workers=1)
>>> index["cases"][0]["id"]
'case_0001'
"""

from aimd.core.lazy import lazy_exports

lazy_exports(
    __name__,
    {
        "aimd.phantoms.anatomy": [
            "LABEL_CODES",
            "LABEL_MAP",
            "Anatomy",
            "Grid",
            "make_grid",
            "render_anatomy",
            "sample_anatomy",
        ],
        "aimd.phantoms.case": ["PhantomCase", "build_case", "case_rngs", "write_case"],
        "aimd.phantoms.clinical": ["LAB_TESTS", "STALE_DAYS", "sample_clinical"],
        "aimd.phantoms.dataset": [
            "SPLIT_FRACTIONS",
            "case_ids",
            "generate_dataset",
            "stratified_split",
            "validate_params",
        ],
        "aimd.phantoms.identity": ["Person", "resident_id_check_digit", "sample_person"],
        "aimd.phantoms.lesions": ["LESION_TYPES", "Lesion", "place_lesions", "render_lesions", "sphere_mask"],
        "aimd.phantoms.locations": ["Place", "liver_place", "lung_place"],
        "aimd.phantoms.radiograph": ["MU_WATER_PER_MM", "Radiograph", "dx_boxes", "project_box", "render_drr"],
        "aimd.phantoms.report": ["PHI_KINDS", "SPAN_TYPES", "ReportContext", "build_report"],
        "aimd.phantoms.sites": ["SITE_PROFILES", "SiteProfile", "site_profiles"],
    },
)

__all__ = [
    "LABEL_CODES",
    "LABEL_MAP",
    "LAB_TESTS",
    "LESION_TYPES",
    "MU_WATER_PER_MM",
    "PHI_KINDS",
    "SITE_PROFILES",
    "SPAN_TYPES",
    "SPLIT_FRACTIONS",
    "STALE_DAYS",
    "Anatomy",
    "Grid",
    "Lesion",
    "Person",
    "PhantomCase",
    "Place",
    "Radiograph",
    "ReportContext",
    "SiteProfile",
    "build_case",
    "build_report",
    "case_ids",
    "case_rngs",
    "dx_boxes",
    "generate_dataset",
    "liver_place",
    "lung_place",
    "make_grid",
    "place_lesions",
    "project_box",
    "render_anatomy",
    "render_drr",
    "render_lesions",
    "resident_id_check_digit",
    "sample_anatomy",
    "sample_clinical",
    "sample_person",
    "site_profiles",
    "sphere_mask",
    "stratified_split",
    "validate_params",
    "write_case",
]
