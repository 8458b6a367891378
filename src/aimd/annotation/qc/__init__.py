"""Automatic level-1 QC of annotation packages (001 §6.5.1, §9.3.1 a, §8.4, §8.5).

Each family of checks is one module returning ``list[Finding]`` with clause ids; :data:`QC_CHECKS`
lists them in run order and :func:`run_qc` runs them all on one package.

Example
-------
>>> import pathlib, tempfile
>>> from aimd.annotation.io import save_package
>>> from aimd.annotation.schema import AnnotationPackage
>>> pkg = AnnotationPackage.model_validate({"task_id": "T", "image": {"uid": "1", "modality": "CT",
...     "shape": [8, 8, 4], "spacing": [1, 1, 1], "origin": [0, 0, 0]},
...     "annotations": [{"id": "A1", "category": "lesion", "label_code": "LUNG_NODULE", "type": "bbox",
...                      "bbox": [2, 2, 1, 12, 5, 3]}],
...     "metadata": {"annotator": "a", "version": "v1"}})
>>> path = pathlib.Path(tempfile.mkdtemp()) / "p.json"; save_package(pkg, path)
>>> sorted({f.code for f in check_package(path) if f.is_error})
['ATTRIBUTE_INVALID', 'BBOX_OUT_OF_BOUNDS']
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aimd.annotation.io import PackageSource, read_sources
from aimd.annotation.qc.clinical import check_structured_fields
from aimd.annotation.qc.config import QCConfig, load_qc_config
from aimd.annotation.qc.context import QCCache, QCContext
from aimd.annotation.qc.files import asset_dir, check_files
from aimd.annotation.qc.geometry import check_image_files, check_mask_geometry
from aimd.annotation.qc.labels import check_labels, check_template
from aimd.annotation.qc.links import check_ids, check_links, check_text_spans
from aimd.annotation.qc.masks import check_mask_content
from aimd.annotation.qc.registration import check_registrations
from aimd.annotation.qc.shapes import check_shapes
from aimd.annotation.qc.trace import check_traceability
from aimd.annotation.taxonomy import Taxonomy
from aimd.annotation.templates import AnnotationTemplate
from aimd.core.findings import Finding

__all__ = [
    "QC_CHECKS",
    "QCCache",
    "QCConfig",
    "QCContext",
    "asset_dir",
    "check_package",
    "findings_summary",
    "load_qc_config",
    "run_qc",
]

QC_CHECKS: dict[str, Callable[[QCContext], list[Finding]]] = {
    "files": check_files,
    "image_files": check_image_files,
    "mask_geometry": check_mask_geometry,
    "mask_content": check_mask_content,
    "shapes": check_shapes,
    "labels": check_labels,
    "template": check_template,
    "ids": check_ids,
    "text_spans": check_text_spans,
    "links": check_links,
    "structured_fields": check_structured_fields,
    "registrations": check_registrations,
    "traceability": check_traceability,
}


def run_qc(
    source: PackageSource,
    *,
    taxonomy: Taxonomy | None = None,
    template: AnnotationTemplate | None = None,
    config: QCConfig | None = None,
    checks: list[str] | None = None,
    cache: QCCache | None = None,
) -> list[Finding]:
    """Every level-1 check (or the named ``checks``) on one package; ``cache`` shares files across calls."""
    ctx = QCContext.build(source, taxonomy=taxonomy, template=template, config=config, cache=cache)
    out: list[Finding] = []
    for name, check in QC_CHECKS.items():
        if checks is None or name in checks:
            out += check(ctx)
    return out


def check_package(
    path: str | Path,
    *,
    taxonomy: Taxonomy | None = None,
    template: AnnotationTemplate | None = None,
    config: QCConfig | None = None,
) -> list[Finding]:
    """Level-1 QC of every package in a JSON / JSON Lines file."""
    out: list[Finding] = []
    cache = QCCache()
    for source in read_sources(path):
        out += run_qc(source, taxonomy=taxonomy, template=template, config=config, cache=cache)
    return out


def findings_summary(findings: list[Finding]) -> dict[str, Any]:
    """Counts by severity and by code."""
    return {
        "errors": sum(f.is_error for f in findings),
        "warnings": sum(f.severity.value == "warning" for f in findings),
        "infos": sum(f.severity.value == "info" for f in findings),
        "by_code": dict(sorted(Counter(f.code for f in findings).items())),
    }
