"""The de-identification log (``DST/deid_log.json``): rules, options, versions, per-file results.

001 §11.2.1 asks that the de-identification rules and tool versions be recorded, 001 §7.3 / §11.2.2 that
the strategy and the spot-check record be kept. The log holds only rule names, counts, output paths,
pseudonyms and the map's random id — never an original identifier.

Example
-------
>>> from aimd.imaging.deid.mapping import DeidMap
>>> from aimd.imaging.deid.profile import ProfileOptions
>>> log = build_log(reports=[], options=None, mapping=DeidMap.new("k"), residual={}, started=0.0,
...                 versions={"aimd": "0"}, profile_size=1)
>>> log["profile"]["options"][0]["code"]
'113100'
"""

from __future__ import annotations

import datetime as _dt
import time
from collections import Counter
from typing import Any

from aimd.imaging.deid.mapping import DeidMap
from aimd.imaging.deid.profile import ProfileOptions
from aimd.imaging.deid.rules import TEXT_RULES

LOG_FORMAT = "aimd-deid-log/1"
GEOMETRY_KEPT = (
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "FrameOfReferenceUID (remapped, sharing kept)",
    "PixelData",
)
SAFETY_NET = (
    "other PN attributes emptied",
    "other DA/DT shifted",
    "other instance UIDs remapped",
    "other text attributes cleaned by the text rules and the known identifiers",
    "UN attributes decoded by the data dictionary; binary/UN attributes not kept are removed",
    "icon images and encapsulated documents removed",
)
POLICY = (
    "DICOM: PS3.15 Annex E Basic Application Level Confidentiality Profile applied at every nesting level; "
    "combined actions resolved to the one that keeps every IOD valid (*/D -> dummy, X/Z -> empty, "
    "X/Z/U* -> keep the sequence and remap its UIDs).",
    "Pseudonyms: PatientID and PatientName -> ANON-<keyed hash>; AccessionNumber -> ACC-<keyed hash>; "
    "UIDs -> 2.25.<keyed hash>. Keys are HMAC-SHA256 under a secret salt kept only in the map, so the "
    "same map gives the same pseudonyms and nobody without it can reverse or recompute them.",
    "Dates: every date of one patient (DICOM and text) moves by the same whole number of days, drawn per "
    "patient within the configured range and stored in the map; intervals are exact; times of day are kept.",
    "Text: names, resident ID numbers, record/admission/accession numbers and institutions -> keyed "
    "pseudonym tokens ([NAME-…], [ID-…], [MRN-…], [INSTITUTION-…]; the patient's own DICOM name/id -> the "
    "patient pseudonym); phones, addresses, e-mails, other long numbers -> typed placeholders; dates -> "
    "shifted dates in the same format. Ages, sex, sizes, lab values and anatomy are kept.",
    "An 18-digit resident-ID-shaped number with a wrong check digit is still replaced as an ID "
    "(rule cn_resident_id_bad_checksum).",
    "Character spans of annotated text are moved onto the new text; a span that overlaps replaced text is "
    "listed under span_overlaps.",
    "Every file is parsed and de-identified or left out: files that cannot be parsed (truncated DICOM, "
    "unknown formats, .img without its .hdr) are 'not handled'; symbolic links are never followed; every "
    "output file, file name and folder name in which the independent residual scan finds an original "
    "identifier or a PHI pattern is removed and reported as failed. Any file left out makes the exit code 1.",
    "Burned-in text: images with BurnedInAnnotation YES, modalities/SOP classes where text in the image is "
    "common (US, SC, OT, XA, secondary capture ...) and DX/CR with overlays are quarantined (left out, "
    "reason logged) unless --clean-pixels blanks the text (deid package recipes, then Tesseract OCR) and "
    "OCR finds no text left (Clean Pixel Data 113101).",
    "NIfTI: descrip, aux_file, intent_name and db_name blanked, extensions zeroed; Analyze history blanked.",
    "Not covered: facial features in head scans.",
)


def build_log(
    *,
    reports: list[dict[str, Any]],
    options: Any,
    mapping: DeidMap,
    residual: dict[str, Any],
    started: float,
    versions: dict[str, str],
    profile_size: int,
) -> dict[str, Any]:
    """Assemble the log document (``options`` is a ``DeidOptions`` or ``None`` for the defaults)."""
    profile: ProfileOptions = getattr(options, "profile", None) or ProfileOptions()
    max_days = getattr(options, "date_shift_max_days", None)
    statuses = Counter(r["status"] for r in reports)
    warnings = sum(len(r.get("warnings", [])) for r in reports)
    kinds = Counter(r["kind"] for r in reports)
    rules: Counter[str] = Counter()
    overlaps = []
    patients = set()
    for r in reports:
        rules.update(r.get("rules", {}))
        rules.update({f"dicom:{k}": v for k, v in r.get("actions", {}).items()})
        for span in r.get("span_overlaps", []):
            overlaps.append({"file": r["path"], **span})
        if r.get("patient"):
            patients.add(r["patient"])
    finished = time.time()
    return {
        "format": LOG_FORMAT,
        "clauses": ["001 §7.3", "001 §11.2.1", "001 §11.2.2", "003 §2.2.3"],
        "tool": {"command": "aimd data deid", "versions": versions},
        "time": {"started": _iso(started), "finished": _iso(finished), "seconds": round(finished - started, 3)},
        "map": {
            "map_id": mapping.map_id,
            "stored": "outside this folder (path not recorded)",
            "access": "custodian only, file mode 0600; each run is appended to the map's audit list",
        },
        "profile": {
            "standard": "DICOM PS3.15 Annex E",
            "name": "Basic Application Level Confidentiality Profile",
            "table_entries": profile_size,
            "options": [{"code": c, "scheme": "DCM", "meaning": m} for c, m in profile.method_codes()],
            "private_attributes": "kept unchecked" if profile.keep_private_tags else "removed",
            "curves_and_overlays": "removed (groups 50xx and 60xx)",
            "kept_unchanged": list(GEOMETRY_KEPT),
            "safety_net": list(SAFETY_NET),
        },
        "date_shift": {
            "unit": "day",
            "max_abs_days": max_days,
            "per": "patient",
            "times": "kept",
            "dicom_flag": "LongitudinalTemporalInformationModified=MODIFIED"
            if profile.retain_modified_dates
            else "dates removed",
        },
        "text_rules": [
            {"name": r.name, "kind": r.kind, "replacement": r.replacement, "description": r.description}
            for r in TEXT_RULES
        ]
        + [
            {
                "name": "known_identifier",
                "kind": "any",
                "replacement": "pseudonym",
                "description": "original identifiers already in the map (DICOM names/ids, earlier findings)",
            },
            {
                "name": "dicom_uid",
                "kind": "UID",
                "replacement": "remapped UID",
                "description": "UIDs seen in DICOM files, or instance-UID-like strings",
            },
            {
                "name": "repeat_of_found_identifier",
                "kind": "NAME/ID/MRN",
                "replacement": "pseudonym",
                "description": "further occurrences of a value another rule found",
            },
            {
                "name": "json_key_*",
                "kind": "by key",
                "replacement": "pseudonym or placeholder",
                "description": "JSON fields whose key names an identity field",
            },
        ],
        "policy": list(POLICY),
        "summary": {
            "files": len(reports),
            "by_status": dict(sorted(statuses.items())),
            "by_kind": dict(sorted(kinds.items())),
            "failed": statuses.get("failed", 0),
            "not_handled": statuses.get("not handled", 0),
            "quarantined": statuses.get("quarantined", 0),
            "skipped": statuses.get("skipped", 0),
            "warnings": warnings,
            "patients": len(patients),
            "span_overlaps": len(overlaps),
            "replacements": dict(sorted(rules.items())),
        },
        "residual_scan": residual,
        "span_overlaps": overlaps,
        "files": reports,
    }


def _iso(stamp: float) -> str:
    return _dt.datetime.fromtimestamp(stamp, _dt.UTC).isoformat(timespec="seconds")


__all__ = ["GEOMETRY_KEPT", "LOG_FORMAT", "POLICY", "SAFETY_NET", "build_log"]
