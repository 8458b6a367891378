"""Submissions as App. C packages on the case's image grid, checked by the annotation engine's level-1 QC
and agreement (:func:`aimd.annotation.check_package`, :func:`aimd.annotation.agree`)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.annotation import agree, append_audit, check_package, new_package, reader_sets, save_package, write_mask
from aimd.annotation.qc import QCConfig
from aimd.annotation.schema import AIModel, Annotation, TextDocument
from aimd.annotation.taxonomy import default_taxonomy
from aimd.core.errors import InvalidInputError
from aimd.imaging.nifti_io import write_nifti
from aimd.platform.models import Case, Project, Submission
from aimd.platform.workflow.drafts import case_mask, case_volume
from aimd.store import BlobStore

__all__ = ["agreement", "level1_qc"]


def _package_for(
    workdir: Path,
    blobs: BlobStore,
    project: Project,
    case: Case,
    mask: NDArray[Any],
    *,
    annotator: str,
    reader: int,
    version: str,
    model: str | None = None,
    audit_trail: list[dict[str, Any]] | None = None,
    reviewer: str | None = None,
    attributes: dict[str, dict[str, Any]] | None = None,
    marks: dict[str, Any] | None = None,
) -> Path:
    """Write an App. C package (image, mask, annotations) for ``mask`` under ``workdir``; return its path.

    ``marks`` carries what the workspace drew beside the mask: vector ``objects`` (bbox / point /
    polygon annotations), report ``spans`` and ``links`` (mask value → span ids).
    """
    tax = default_taxonomy()
    image_path = workdir / "image.nii.gz"
    if not image_path.exists():
        write_nifti(case_volume(blobs, case), image_path)
    reader_dir = workdir / f"reader_{reader}"
    pkg_path = reader_dir / f"{case.case_key}.json"
    pkg = new_package(
        image_path,
        pkg_path,
        task_id=f"{project.name}/{case.case_key}",
        annotator=annotator,
        version=version,
        taxonomy=tax,
        case_id=case.case_key,
    )
    mask_rel = f"masks/{case.case_key}.nii.gz"
    write_mask(pkg.image, mask, reader_dir / mask_rel)
    anns = []
    for value in sorted({int(v) for v in np.unique(mask)} - {0}):
        code = project.label_map[str(value)]
        node = tax.get(code)
        assert node is not None
        prov = {"source": "model_corrected", "model": model} if model else None
        links = [{"target": t} for t in ((marks or {}).get("links") or {}).get(str(value), [])]
        anns.append(
            Annotation.model_validate(
                {
                    "id": f"{code}_{value}",
                    "category": node.category.value,
                    "label_code": code,
                    "type": "mask",
                    "data": {
                        "mask_file": mask_rel,
                        "mask_value": value,
                        "attributes": dict((attributes or {}).get(str(value), {})),
                    },
                    "provenance": prov,
                    "cross_modal_links": links,
                }
            )
        )
    anns += [_vector_annotation(tax, obj) for obj in (marks or {}).get("objects") or []]
    texts = []
    if (marks or {}).get("spans"):
        texts.append(
            {"id": "report", "kind": "report", "language": "zh", "text": case.report_text, "spans": marks["spans"]}
        )
    meta = pkg.metadata.model_copy(update={"reviewer": reviewer})
    if model:
        name, _, ver = model.partition("@")
        meta.software.ai_model = AIModel(name=name, version=ver or "unknown")
    try:
        docs = [TextDocument.model_validate(t) for t in texts]
    except ValueError as err:
        raise InvalidInputError(
            f"the report spans are not valid: {err}", where="spans", hint="send spans with id, start, end, text"
        ) from None
    pkg = pkg.model_copy(update={"annotations": anns, "metadata": meta, "texts": docs})
    for entry in audit_trail or [{"actor": annotator, "action": "submit", "detail": ""}]:
        pkg = append_audit(pkg, actor=entry["actor"], action=entry["action"], detail=str(entry.get("detail", "")))
    save_package(pkg, pkg_path)
    return pkg_path


def _vector_annotation(tax: Any, obj: dict[str, Any]) -> Annotation:
    """A box / point / polygon drawn in the workspace as an App. C annotation (001 App. C.3)."""
    node = tax.get(str(obj.get("label_code", "")))
    if node is None:
        raise InvalidInputError(
            f"object {obj.get('id')!r} names no taxonomy label", where="objects", hint="use a code of the label map"
        )
    data = {k: obj[k] for k in ("bbox", "point", "polygon", "slice_index") if obj.get(k) is not None}
    try:
        return Annotation.model_validate(
            {
                "id": str(obj.get("id", "")),
                "category": node.category.value,
                "label_code": node.code,
                "type": obj.get("type"),
                "data": {**data, "attributes": dict(obj.get("attributes") or {})},
                "cross_modal_links": [{"target": t} for t in obj.get("links") or []],
            }
        )
    except ValueError as err:
        raise InvalidInputError(
            f"object {obj.get('id')!r} is not a valid annotation: {err}",
            where="objects",
            hint="send type bbox / point / polygon with its coordinates",
        ) from None


def _finding_dict(f: Any) -> dict[str, Any]:
    return f.model_dump(mode="json")


def level1_qc(
    blobs: BlobStore,
    project: Project,
    case: Case,
    mask: NDArray[Any],
    annotator: str,
    model: str | None,
    attributes: dict[str, dict[str, Any]],
    marks: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Findings of the annotation engine's level-1 QC on this submission."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _package_for(
            Path(tmp),
            blobs,
            project,
            case,
            mask,
            annotator=annotator,
            reader=1,
            version="draft",
            model=model,
            attributes=attributes,
            marks=marks,
        )
        findings = check_package(path, taxonomy=default_taxonomy(), config=QCConfig(check_unreferenced=False))
    return [_finding_dict(f) for f in findings]


def agreement(blobs: BlobStore, project: Project, case: Case, subs: list[Submission]) -> dict[str, Any]:
    """Agreement of the readers' current submissions by :func:`aimd.annotation.agree`."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = [
            _package_for(
                Path(tmp),
                blobs,
                project,
                case,
                case_mask(blobs, s.mask_sha256),
                annotator=s.annotator,
                reader=s.reader,
                version=f"v{project.version}",
                attributes=s.qc.get("attributes"),
                marks=s.qc.get("marks"),
            )
            for s in subs
        ]
        config = QCConfig(
            dice_second_review=project.dice_threshold,
            dice_special_review=min(0.75, project.dice_threshold),
            check_unreferenced=False,
        )
        result = agree(reader_sets([p.parent for p in paths]), config=config)
    summary = result.summary()
    kappas = [v.get("kappa") for v in result.attributes.values() if isinstance(v, dict) and v.get("kappa") is not None]
    return {
        "readers": summary["readers"],
        "pairs": summary["pairs"],
        "mean_dice": summary["mean_dice"],
        "min_dice": summary["min_dice"],
        "single_reader_objects": summary["single_reader_objects"],
        "dice_threshold": project.dice_threshold,
        "kappa_threshold": project.kappa_threshold,
        "kappa": kappas or None,
        "kappa_below": any(k < project.kappa_threshold for k in kappas),
        "kappa_note": None if kappas else "no categorical attributes: kappa not evaluated",
        "pair_dice": [
            {"a": p.get("reader_a"), "b": p.get("reader_b"), "object": p.get("label_code"), "dice": p["value"]}
            for p in result.pairs
            if p["metric"] == "dice"
        ],
    }
