"""Phantom annotators: K simulated readers per case with known, recorded differences.

Reader roles (``reader_1`` … ``reader_K``):

* ``reader_1`` — *reference*: the phantom's exact masks, attributes and text labels;
* ``reader_2`` … ``reader_{K-1}`` — *variable*: per lesion a boundary dilation or erosion or a 1–2 voxel
  shift, organ boundaries eroded or dilated, diameters measured ±1 mm, the smallest lesion (≤ 8 mm)
  missed, an extra false-positive nodule, the margin of one lesion flipped (its links to the report
  marked ``inconsistent`` — 001 §8.5.2.3), one report span given another semantic type and one stale
  lab's time-deviation label forgotten (a level-1 QC error, 001 §8.5.3.4); later variable readers
  draw these at random;
* ``reader_K`` (K ≥ 2) — *model-assisted* (001 §6.4.2, §9.1.1 note 1): a simulated model suggests
  every lesion but the smallest, one voxel too large, plus a false positive; the reader corrects the
  boundaries, adds the missed lesion by hand and rejects the false positive. Provenance, the model,
  rejected suggestions and a hash-chained audit trail are recorded.

Each case folder gets ``annotations/reader_<n>.json`` with masks under ``annotations/reader_<n>/`` and
``annotations/expected.json`` stating what was done to whom — the known expected outcomes that QC
and agreement must find.

Example
-------
>>> import tempfile, pathlib
>>> from aimd.phantoms import generate_dataset
>>> out = pathlib.Path(tempfile.mkdtemp()) / "ph"
>>> _ = generate_dataset(out, cases=1, seed=2, size=32, workers=1)
>>> [p.name for p in simulate_annotators(out, 3, seed=0)]
['reader_1.json', 'reader_2.json', 'reader_3.json']
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aimd import __version__
from aimd.annotation.audit import append_audit
from aimd.annotation.io import save_package
from aimd.annotation.schema import (
    AIModel,
    Annotation,
    AnnotationData,
    AnnotationPackage,
    CrossModalLink,
    Metadata,
    ModelAssistance,
    Provenance,
    SemanticType,
    Software,
    TaxonomyRef,
    TemplateRef,
    Timestamps,
)
from aimd.annotation.simulate_case import (
    PhantomCaseInputs,
    read_phantom_case,
    structured_fields,
    text_documents,
)
from aimd.annotation.simulate_ops import apply_op, dilate, place_blob
from aimd.annotation.simulate_plan import ReaderPlan, plan_readers
from aimd.annotation.taxonomy import default_taxonomy
from aimd.annotation.templates import default_template
from aimd.core.atomic import atomic_dir, atomic_write_json
from aimd.core.errors import InvalidInputError
from aimd.imaging.nifti_io import write_nifti

__all__ = ["AI_MODEL", "ReaderPlan", "plan_readers", "simulate_annotators", "simulate_case"]

AI_MODEL = AIModel(
    name="aimd-simulated-lesion-segmenter",
    version="1.0",
    parameters={"threshold": 0.5, "note": "simulated suggestions for phantom data"},
)
_ORGANS = ("BODY", "LUNG", "LIVER", "SPINE_BONE")
_ORGAN_OF_LESION = {5: 2, 6: 3}  # lesion label → organ label (lesion voxels belong to their organ)


# ------------------------------------------------------------------------------------------- builder
@dataclass
class _Build:
    case: PhantomCaseInputs
    plan: ReaderPlan
    folder: Path  # the annotations folder being written
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # relative path → array
    annotations: list[Annotation] = field(default_factory=list)
    rejected: list[Annotation] = field(default_factory=list)
    expected: dict[str, Any] = field(default_factory=dict)
    label_maps: dict[str, dict[int, str]] = field(default_factory=dict)

    def mask(self, name: str, array: np.ndarray) -> str:
        rel = f"{self.plan.name}/masks/{name}.nii.gz"
        self.masks[rel] = array.astype(np.uint8)
        return rel


def _organs(b: _Build) -> None:
    organ_map = b.case.labels.copy()
    for lesion_label, organ_label in _ORGAN_OF_LESION.items():
        organ_map[organ_map == lesion_label] = organ_label
    codes = {v: k for k, v in b.case.label_codes.items()}
    for code, (op, amount) in b.plan.organ_ops.items():
        value = codes[code]
        obj = organ_map == value
        if op == "erode":
            changed = obj & ~apply_op(obj, "erode", amount)
            organ_map[changed] = codes["BODY"]
        else:
            grown = apply_op(obj, "dilate", amount) & (organ_map == codes["BODY"])
            organ_map[grown] = value
    rel = b.mask("organs", organ_map)
    b.label_maps[rel] = {codes[code]: code for code in _ORGANS}
    for code in _ORGANS:
        b.annotations.append(
            Annotation(
                id=f"ORG_{code}",
                category="organ",
                label_code=code,
                type="mask",
                data=AnnotationData(mask_file=rel, mask_value=codes[code]),
            )
        )
    b.expected["organ_ops"] = {c: list(o) for c, o in b.plan.organ_ops.items()}


def _attributes(b: _Build, le: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    margin = le["margin"]
    if b.plan.margin_flip == le["id"]:
        margin = "ill_defined" if margin == "well_defined" else "well_defined"
    return {
        "density": le["density"],
        "margin": margin,
        "diameter_mm": int(le["diameter_mm"]) + b.plan.diameter_delta.get(le["id"], 0),
        "lobe": le["lobe"],
        "segment": le["segment"],
        "volume_ml": round(float(mask.sum()) * b.case.voxel_ml, 5),
    }


def _text_links(b: _Build, le: dict[str, Any], extra: list[CrossModalLink]) -> list[CrossModalLink]:
    flip = b.plan.margin_flip == le["id"]
    links = []
    for lang in ("en", "zh"):
        for s in b.case.report.get(lang, {}).get("spans", []):
            if s["lesion_id"] != le["id"]:
                continue
            bad = flip and s.get("attribute") == "margin"
            links.append(
                CrossModalLink(
                    target=s["id"],
                    kind="image_text",
                    status="inconsistent" if bad else "consistent",
                    note="image shows the other margin than the report states" if bad else "",
                )
            )
    return links + extra


def _lab_links(le: dict[str, Any], fields: set[str]) -> list[CrossModalLink]:
    code = "LAB_AFP" if le["organ"] == "liver" else "LAB_CEA"
    return [CrossModalLink(target=code, kind="image_structured", status="consistent")] if code in fields else []


def _lesions(b: _Build, fields: set[str], rng: np.random.Generator) -> None:
    assisted = b.plan.role == "model_assisted"
    label_code = {5: "LUNG_NODULE", 6: "LIVER_TUMOUR"}
    mapping, n = {}, 0
    for le in b.case.lesions:
        truth = b.case.instances == int(le["instance"])
        human_missed = le["id"] in b.plan.missed and not assisted
        if human_missed:
            continue
        n += 1
        ann_id = f"LES_{n:02d}"
        op, amount = b.plan.lesion_ops.get(le["id"], ("none", 0))
        mask = apply_op(truth, op, amount)
        rel = b.mask(f"lesion_{n:02d}", mask)
        prov = None
        if assisted:
            if le["id"] in b.plan.missed:
                prov = Provenance(source="manual")
            else:
                initial = AnnotationData(mask_file=b.mask(f"ai_lesion_{n:02d}", dilate(truth, 1)))
                prov = Provenance(
                    source="model_corrected",
                    model=f"{AI_MODEL.name} {AI_MODEL.version}",
                    initial=initial,
                    initial_label_code=label_code[le["label"]],
                )
        extra = []
        box_id = f"DXBOX_{n:02d}"
        if le["id"] in b.case.dx_boxes:
            extra.append(CrossModalLink(target=box_id, kind="image_image", status="consistent"))
        attrs = _attributes(b, le, mask)
        b.annotations.append(
            Annotation(
                id=ann_id,
                category="lesion",
                label_code=label_code[le["label"]],
                type="mask",
                data=AnnotationData(mask_file=rel, attributes=attrs),
                provenance=prov,
                cross_modal_links=_text_links(b, le, extra) + _lab_links(le, fields),
            )
        )
        mapping[ann_id] = le["id"]
        box = b.case.dx_boxes.get(le["id"])
        if box is not None:
            jitter = rng.uniform(-b.plan.box_jitter_px, b.plan.box_jitter_px, 4) if b.plan.box_jitter_px else 0
            xyxy = [round(float(v), 3) for v in np.asarray(box["xyxy"], dtype=float) + jitter]
            b.annotations.append(
                Annotation(
                    id=box_id,
                    category="lesion",
                    label_code="LUNG_NODULE",
                    type="bbox",
                    image_uid=b.case.dx.uid,
                    data=AnnotationData(
                        bbox=xyxy, attributes={k: attrs[k] for k in ("density", "margin", "diameter_mm", "lobe")}
                    ),
                    cross_modal_links=[CrossModalLink(target=ann_id, kind="image_image", status="consistent")],
                )
            )
            mapping[box_id] = le["id"]
    _false_positive(b, rng, n, mapping)
    b.expected["lesion_map"] = mapping
    b.expected["lesion_ops"] = {k: [v[0], v[1]] for k, v in b.plan.lesion_ops.items()}
    b.expected["missed"] = [] if assisted else list(b.plan.missed)


def _false_positive(b: _Build, rng: np.random.Generator, n: int, mapping: dict[str, str]) -> None:
    assisted = b.plan.role == "model_assisted"
    if not (b.plan.extra_fp or assisted):
        return
    lung = b.case.labels == 2
    blob = place_blob(lung, b.case.instances > 0, rng, radius_vox=2.0)
    if blob is None:
        return
    centre = case_world_centre(b.case, blob)
    lobe = "RUL" if centre[0] < 0 else "LUL"  # LPS: negative x is the patient's right
    if assisted:
        rel = b.mask("ai_fp_01", blob)
        b.rejected.append(
            Annotation(
                id="AI_FP_01",
                category="lesion",
                label_code="LUNG_NODULE",
                type="mask",
                data=AnnotationData(mask_file=rel),
                provenance=Provenance(source="model", model=f"{AI_MODEL.name} {AI_MODEL.version}"),
            )
        )
        b.expected["rejected"] = ["AI_FP_01"]
        return
    ann_id = f"LES_{n + 1:02d}"
    rel = b.mask(f"lesion_{n + 1:02d}", blob)
    diameter = int(round(2 * (3 * blob.sum() * b.case.voxel_ml * 1000 / (4 * np.pi)) ** (1 / 3)))
    b.annotations.append(
        Annotation(
            id=ann_id,
            category="lesion",
            label_code="LUNG_NODULE",
            type="mask",
            data=AnnotationData(
                mask_file=rel,
                attributes={
                    "density": "solid",
                    "margin": "well_defined",
                    "diameter_mm": max(diameter, 1),
                    "lobe": lobe,
                    "volume_ml": round(float(blob.sum()) * b.case.voxel_ml, 5),
                },
            ),
        )
    )
    mapping[ann_id] = "FALSE_POSITIVE"


def case_world_centre(case: PhantomCaseInputs, mask: np.ndarray) -> np.ndarray:
    """LPS centre (mm) of a mask on the case's CT grid."""
    zyx = np.argwhere(mask).mean(axis=0)
    return case.grid.index_to_world(zyx[::-1])


def _package(b: _Build, fields: list[Any], stamp: dt.datetime) -> AnnotationPackage:
    case, plan = b.case, b.plan
    texts = text_documents(case)
    for doc in texts:
        for span in doc.spans:
            if span.id in plan.span_relabel:
                span.semantic_type = SemanticType(plan.span_relabel[span.id])
    lesions = [a for a in b.annotations if a.category == "lesion" and a.type == "mask"]
    b.annotations.append(
        Annotation(
            id="CASE_LEVEL",
            category="attribute",
            label_code="CASE_LEVEL",
            type="attribute",
            data=AnnotationData(
                attributes={
                    "impression": "abnormal" if lesions else "normal",
                    "image_quality": "acceptable",
                    "lesion_count": len(lesions),
                }
            ),
        )
    )
    assisted = plan.role == "model_assisted"
    tax, tpl = default_taxonomy(), default_template()
    meta = Metadata(
        annotator=plan.name,
        institution="aimd phantom reading panel",
        software=Software(name="aimd", version=__version__, ai_model=AI_MODEL if assisted else None),
        timestamps=Timestamps(start=stamp, end=stamp + dt.timedelta(minutes=25)),
        version="v1.0",
        taxonomy=TaxonomyRef(name=tax.name, version=tax.version),
        template=TemplateRef(id=tpl.id, version=tpl.version),
        model_assistance=ModelAssistance(rejected=b.rejected) if assisted else None,
    )
    pkg = AnnotationPackage(
        task_id=f"TASK_PHANTOM_{case.case_id.upper()}",
        image=case.ct,
        related_images=[case.dx],
        annotations=b.annotations,
        texts=texts,
        structured_fields=fields,
        registrations=[],
        label_maps=b.label_maps,
        metadata=meta,
    )
    pkg = append_audit(pkg, actor=plan.name, action="create", timestamp=stamp)
    if assisted:
        suggested = [a.id for a in b.annotations if a.provenance and a.provenance.source == "model_corrected"]
        pkg = append_audit(
            pkg,
            actor=AI_MODEL.name,
            action="model_suggestion",
            timestamp=stamp,
            annotation_ids=[*suggested, *(r.id for r in b.rejected)],
            detail=f"{AI_MODEL.name} {AI_MODEL.version}",
        )
        pkg = append_audit(
            pkg,
            actor=plan.name,
            action="manual_revision",
            timestamp=stamp + dt.timedelta(minutes=12),
            annotation_ids=suggested,
            detail="boundaries corrected; false positives rejected",
        )
    return append_audit(pkg, actor=plan.name, action="submit", timestamp=stamp + dt.timedelta(minutes=25))


def simulate_case(
    case: PhantomCaseInputs, k: int, seed: int, index: int
) -> tuple[dict[str, AnnotationPackage], dict[str, np.ndarray], dict[str, Any]]:
    """Packages (by reader name), masks (relative path → array) and expected outcomes of one case."""
    rng = np.random.default_rng([seed, index, 7])
    plans = plan_readers(case, k, rng)
    stamp = dt.datetime.combine(
        (case.ct.acquired or dt.datetime(2024, 1, 1)).date() + dt.timedelta(days=1), dt.time(9, 0), tzinfo=dt.UTC
    )
    packages: dict[str, AnnotationPackage] = {}
    masks: dict[str, np.ndarray] = {}
    expected: dict[str, Any] = {
        "case_id": case.case_id,
        "seed": seed,
        "readers": {},
        "truth": {le["id"]: {"diameter_mm": le["diameter_mm"], "label_code": le["label_code"]} for le in case.lesions},
    }
    for r, plan in enumerate(plans):
        b = _Build(case, plan, case.case_dir / "annotations")
        reader_rng = np.random.default_rng([seed, index, r + 1])
        fields = structured_fields(case, unlabel=set(plan.forget_time_label))
        _organs(b)
        _lesions(b, {f.id for f in fields}, reader_rng)
        packages[plan.name] = _package(b, fields, stamp + dt.timedelta(hours=r))
        masks.update(b.masks)
        expected["readers"][plan.name] = {
            "role": plan.role,
            **b.expected,
            "margin_flip": plan.margin_flip,
            "unlabelled_stale_labs": [f"LAB_{c}" for c in plan.forget_time_label],
            "span_relabel": plan.span_relabel,
            "inconsistent_links": sorted(
                f"{a.id}->{lk.target}"
                for a in packages[plan.name].annotations
                for lk in a.cross_modal_links
                if lk.status.value == "inconsistent"
            ),
        }
    return packages, masks, expected


def simulate_annotators(
    dataset_dir: str | Path, k: int, seed: int = 0, *, progress: Callable[[int], object] | None = None
) -> list[Path]:
    """Write ``k`` simulated readers' packages into every case of a phantom dataset.

    Parameters
    ----------
    dataset_dir:
        A folder written by ``aimd data phantom`` (with ``dataset.json``).
    k:
        Readers per case (1–10). With ``k >= 2`` the last reader is model-assisted.
    seed:
        Same seed and dataset, same packages and masks.
    progress:
        Called with 1 after each case.

    Returns
    -------
    list of Path
        The package files, case by case, reader by reader.
    """
    root = Path(dataset_dir)
    if not 1 <= k <= 10:
        raise InvalidInputError(f"readers per case must be 1–10, got {k}", where="--annotators")
    index_path = root / "dataset.json"
    if not index_path.is_file():
        raise InvalidInputError(
            "not a phantom dataset (dataset.json missing)",
            where=str(root),
            hint="generate one with `aimd data phantom OUT`",
        )
    index = json.loads(index_path.read_text(encoding="utf-8"))
    out: list[Path] = []
    for i, entry in enumerate(index["cases"]):
        case = read_phantom_case(root, entry, index)
        packages, masks, expected = simulate_case(case, k, seed, i)
        target = case.case_dir / "annotations"
        with atomic_dir(target, overwrite=True) as tmp:
            for rel, arr in masks.items():
                write_nifti(case.grid.with_array(arr), tmp / rel)
            for name, pkg in packages.items():
                save_package(pkg, tmp / f"{name}.json")
            atomic_write_json(tmp / "expected.json", expected)
        out += [target / f"{name}.json" for name in packages]
        if progress is not None:
            progress(1)
    return out
