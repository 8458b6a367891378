"""De-identification of imaging data, report text and structured fields (001 §7.3, §11.2; 003 §2.2.3).

DICOM files get the PS3.15 Annex E Basic Application Level Confidentiality Profile (with the Retain
Longitudinal Temporal Information with Modified Dates and Retain Patient Characteristics options);
text and JSON get aimd's rules for names, resident ID numbers, phones, addresses, record numbers and
dates; a keyed pseudonym map keeps pseudonyms, UIDs and date shifts consistent across files and runs.

Example
-------
>>> from aimd.imaging.deid import DeidMap, TextDeidentifier
>>> TextDeidentifier(DeidMap.new("k"), date_offset_days=1).deidentify("检查日期：2024-03-12").text
'检查日期：2024-03-13'
"""

from aimd.core.lazy import lazy_exports

lazy_exports(
    __name__,
    {
        "aimd.imaging.deid.dicom": ["DicomResult", "deidentify_dataset", "deidentify_dicom_file", "read_dicom"],
        "aimd.imaging.deid.jsondoc": ["JsonResult", "deidentify_json"],
        "aimd.imaging.deid.mapping": ["DeidMap", "PatientEntry"],
        "aimd.imaging.deid.profile": ["BASIC_PROFILE", "Action", "ProfileEntry", "ProfileOptions", "resolve_action"],
        "aimd.imaging.deid.residual": ["ResidualScanner"],
        "aimd.imaging.deid.rules": ["TEXT_RULES", "TextRule", "resident_id_checksum_ok"],
        "aimd.imaging.deid.runner": ["DeidOptions", "DeidReport", "FileReport", "check_paths", "deidentify_path"],
        "aimd.imaging.deid.text": ["Replacement", "SpanMapping", "TextDeidentifier", "TextResult", "remap_span"],
        "aimd.imaging.deid.discover": ["discover"],
    },
)

__all__ = [
    "discover",
    "BASIC_PROFILE",
    "TEXT_RULES",
    "Action",
    "DeidMap",
    "DeidOptions",
    "DeidReport",
    "DicomResult",
    "FileReport",
    "JsonResult",
    "PatientEntry",
    "ProfileEntry",
    "ProfileOptions",
    "Replacement",
    "ResidualScanner",
    "SpanMapping",
    "TextDeidentifier",
    "TextResult",
    "TextRule",
    "check_paths",
    "deidentify_dataset",
    "deidentify_dicom_file",
    "deidentify_json",
    "deidentify_path",
    "read_dicom",
    "remap_span",
    "resident_id_checksum_ok",
    "resolve_action",
]
