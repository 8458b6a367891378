"""Label, attribute and text agreement statistics and the model-assisted deviation (001 §9.1.1, §9.2 d–e).

* categorical labels and attributes (and text span semantic types) — Cohen's kappa for two readers,
  Fleiss' kappa for three or more (001 App. D.12), with the observed agreement beside it;
* continuous attributes (diameter, volume) — ICC (default ICC(2,1), §9.2 e) and Pearson per reader
  pair (App. D.8);
* model-assisted labels — the AI suggestion vs the corrected mask: Dice, boundary offset (ASSD, HD95),
  missed and over-labelled voxels, objects added by hand (missed), rejected (over-labelled) and
  relabelled (mismatched) (§9.1.1 note 1).

Example
-------
>>> stats = categorical_agreement([["solid", "solid"], ["solid", "ground_glass"], ["ground_glass", "ground_glass"]])
>>> stats["method"], stats["kappa"], stats["observed_agreement"]
("Cohen's kappa", 0.4, 0.6667)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from aimd.annotation.io import PackageSource
from aimd.annotation.masks import MaskStore
from aimd.annotation.qc.config import QCConfig
from aimd.annotation.schema import AnnotationType, Category
from aimd.core.errors import AimdError, InvalidInputError
from aimd.core.findings import Finding, Severity
from aimd.metrics import cohen_kappa, fleiss_kappa, icc, pearson, segmentation_metrics

if TYPE_CHECKING:
    from aimd.annotation.readers import ReaderSet

__all__ = [
    "attribute_agreement",
    "categorical_agreement",
    "continuous_agreement",
    "model_assist_deviation",
    "text_label_agreement",
]


def _round(v: float | None, n: int = 4) -> float | None:
    return None if v is None else round(float(v), n)


def categorical_agreement(rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Kappa of an items × readers table of category labels (Cohen for 2 readers, Fleiss for more)."""
    table = [list(r) for r in rows]
    out: dict[str, Any] = {"kind": "categorical", "n_items": len(table)}
    if not table:
        return out | {"kappa": None, "note": "no item rated by every reader"}
    k = len(table[0])
    if k == 2:
        kappa = cohen_kappa([r[0] for r in table], [r[1] for r in table])
        out["method"] = "Cohen's kappa"
    else:
        kappa = fleiss_kappa(np.asarray(table, dtype=object))
        out["method"] = "Fleiss' kappa"
    out["kappa"] = _round(kappa)
    out["observed_agreement"] = _round(float(np.mean([len(set(r)) == 1 for r in table])))
    out["ratings"] = table
    if kappa is None:
        out["note"] = "kappa undefined: every rating is one category (chance agreement 1)"
    return out


def continuous_agreement(rows: Sequence[Sequence[float]], readers: Sequence[str], form: str) -> dict[str, Any]:
    """ICC (``form``) and pairwise Pearson of an items × readers table of numbers."""
    x = np.asarray(rows, dtype=np.float64)
    out: dict[str, Any] = {"kind": "continuous", "n_items": int(x.shape[0]) if x.ndim == 2 else 0}
    if x.ndim != 2 or x.shape[0] == 0:
        return out | {"icc": None, "note": "no item measured by every reader"}
    out["mean_abs_difference"] = _round(float(np.mean(np.ptp(x, axis=1))))
    out["ratings"] = x.tolist()
    try:
        out["icc"] = icc(x)[form].to_dict()
    except InvalidInputError as err:
        out["icc"], out["icc_note"] = None, err.message
    out["pearson"] = {}
    for (i, a), (j, b) in itertools.combinations(enumerate(readers), 2):
        try:
            out["pearson"][f"{a}/{b}"] = pearson(x[:, i], x[:, j]).to_dict()
        except InvalidInputError as err:
            out["pearson"][f"{a}/{b}"] = {"r": None, "note": err.message}
    return out


def _kappa_flag(name: str, stats: dict[str, Any], config: QCConfig, findings: list[Finding]) -> None:
    kappa = stats.get("kappa")
    if config.kappa_min is not None and kappa is not None and kappa < config.kappa_min:
        findings.append(
            Finding(
                code="KAPPA_LOW",
                severity=Severity.WARNING,
                clause="001 §9.2 d",
                location={"attribute": name},
                message=f"kappa {kappa:.3f} < {config.kappa_min} for {name}",
                hint="review the rule for this label with the readers",
            )
        )


def attribute_agreement(
    complete: list[dict[str, Any]], readers: list[str], config: QCConfig, findings: list[Finding]
) -> dict[str, Any]:
    """Kappa / ICC of labels and attributes over objects found by every reader."""
    cat: dict[str, list[list[Any]]] = {}
    num: dict[str, list[list[float]]] = {}
    for group in complete:
        objs = [group[r] for r in readers]
        first = objs[0].ann
        kind = first.type.value
        if first.category not in (Category.ORGAN, Category.SUBSTRUCTURE, Category.ATTRIBUTE):
            cat.setdefault(f"{kind}:label_code", []).append([o.ann.label_code for o in objs])
        names = set.intersection(*(set(o.ann.data.attributes) for o in objs))
        for name in sorted(names):
            values = [o.ann.data.attributes[name] for o in objs]
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
                num.setdefault(f"{kind}:{name}", []).append([float(v) for v in values])
            elif all(isinstance(v, str | bool) for v in values):
                cat.setdefault(f"{kind}:{name}", []).append(values)
        if (
            first.type is AnnotationType.MASK
            and first.category not in (Category.ORGAN, Category.SUBSTRUCTURE)
            and all(o.mask is not None for o in objs)
        ):
            voxel_ml = float(np.prod(objs[0].image.spacing)) / 1000.0
            num.setdefault("mask:measured_volume_ml", []).append([float(o.mask.sum()) * voxel_ml for o in objs])
    out: dict[str, Any] = {}
    for name, rows in sorted(cat.items()):
        out[name] = categorical_agreement(rows)
        _kappa_flag(name, out[name], config, findings)
    for name, rows in sorted(num.items()):
        out[name] = continuous_agreement(rows, readers, config.icc_form)
    return out


def text_label_agreement(
    by_case: dict[str, dict[str, PackageSource]], readers: list[str], config: QCConfig, findings: list[Finding]
) -> dict[str, Any]:
    """Kappa of span semantic types; spans are matched by document id and offsets ("none" when absent)."""
    rows: list[list[str]] = []
    for per_reader in by_case.values():
        if len(per_reader) < len(readers):
            continue
        docs = {r: {d.id: d for d in per_reader[r].package.texts} for r in readers}
        for doc_id in set.intersection(*(set(d) for d in docs.values())):
            spans = {r: {(s.start, s.end): s.semantic_type.value for s in docs[r][doc_id].spans} for r in readers}
            keys = sorted(set().union(*(set(s) for s in spans.values())))
            rows += [[spans[r].get(key, "none") for r in readers] for key in keys]
    stats = categorical_agreement(rows)
    _kappa_flag("text semantic_type", stats, config, findings)
    return {"span_semantic_type": stats}


def _deviation(source: PackageSource, store: MaskStore) -> list[dict[str, Any]]:
    out = []
    for ann in source.package.annotations:
        prov = ann.provenance
        if prov is None or prov.initial is None or not prov.initial.mask_file or not ann.data.mask_file:
            continue
        image = source.package.image_of(ann)
        try:
            final = store.object_mask(source.resolve(ann.data.mask_file), ann.data.mask_value, image)
            initial = store.object_mask(source.resolve(prov.initial.mask_file), prov.initial.mask_value, image)
        except AimdError:
            continue
        if final.shape != initial.shape or image is None:
            continue
        m = segmentation_metrics(final, initial, spacing=tuple(float(s) for s in image.spacing[::-1]), labels=[1])[1]
        c = m.counts
        out.append(
            {
                "annotation": ann.id,
                "label_code": ann.label_code,
                "dice": _round(m.dice),
                "boundary_assd_mm": _round(m.assd),
                "hd95_mm": _round(m.hd95),
                "missed_voxel_rate": _round(c.fn / max(c.tp + c.fn, 1)),
                "over_labelled_voxel_rate": _round(c.fp / max(c.tp + c.fp, 1)),
                "label_changed": bool(prov.initial_label_code and prov.initial_label_code != ann.label_code),
            }
        )
    return out


def model_assist_deviation(readers: list[ReaderSet], store: MaskStore) -> list[dict[str, Any]]:
    """AI-suggestion vs corrected deviation for every model-assisted package (001 §9.1.1 note 1)."""
    out = []
    for rs in readers:
        for source in rs.sources:
            pkg = source.package
            ai = pkg.metadata.software.ai_model
            if ai is None:
                continue
            lesions = [
                a
                for a in pkg.annotations
                if a.category in (Category.LESION, Category.FEATURE) and a.type is AnnotationType.MASK
            ]
            corrected = [a for a in lesions if a.provenance and a.provenance.source == "model_corrected"]
            manual = [a for a in lesions if a.provenance is None or a.provenance.source == "manual"]
            rejected = pkg.metadata.model_assistance.rejected if pkg.metadata.model_assistance else []
            per_object = _deviation(source, store)
            suggested = len(corrected) + len(rejected)

            def mean(key: str, rows: list[dict[str, Any]] = per_object) -> float | None:
                vals = [r[key] for r in rows if r[key] is not None]
                return _round(float(np.mean(vals))) if vals else None

            out.append(
                {
                    "reader": rs.name,
                    "case": pkg.image.case_id or pkg.image.uid,
                    "package": str(source.path),
                    "model": f"{ai.name} {ai.version}",
                    "suggested": suggested,
                    "corrected": len(corrected),
                    "rejected": [a.id for a in rejected],
                    "added_manually": [a.id for a in manual],
                    "missed_object_rate": _round(len(manual) / len(lesions)) if lesions else None,
                    "over_labelled_object_rate": _round(len(rejected) / suggested) if suggested else None,
                    "label_mismatches": sum(r["label_changed"] for r in per_object),
                    "mean_dice_ai_vs_final": mean("dice"),
                    "mean_boundary_assd_mm": mean("boundary_assd_mm"),
                    "mean_hd95_mm": mean("hd95_mm"),
                    "missed_voxel_rate": mean("missed_voxel_rate"),
                    "over_labelled_voxel_rate": mean("over_labelled_voxel_rate"),
                    "objects": per_object,
                }
            )
    return out
