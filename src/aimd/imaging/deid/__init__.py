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

from aimd.imaging.deid.dicom import DicomResult, deidentify_dataset, deidentify_dicom_file, read_dicom
from aimd.imaging.deid.jsondoc import JsonResult, deidentify_json
from aimd.imaging.deid.mapping import DeidMap, PatientEntry
from aimd.imaging.deid.profile import BASIC_PROFILE, Action, ProfileEntry, ProfileOptions, resolve_action
from aimd.imaging.deid.residual import ResidualScanner
from aimd.imaging.deid.rules import TEXT_RULES, TextRule, resident_id_checksum_ok
from aimd.imaging.deid.runner import DeidOptions, DeidReport, FileReport, check_paths, deidentify_path
from aimd.imaging.deid.text import Replacement, SpanMapping, TextDeidentifier, TextResult, remap_span

__all__ = [
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
