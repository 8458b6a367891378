"""Agreement between annotators (or versions) of the same cases (001 §8.4 c, §9.1, §9.2, App. D).

Readers are sets of packages; packages of different readers describing the same image (``image.uid``)
are compared. Per case and reader pair, objects are matched — organs by label code, lesions and other
masks by voxel IoU, boxes by box IoU (Hungarian assignment, IoU ≥ ``match_min_iou``) — and every
matched pair gets Dice, IoU, HD, HD95 and ASSD (masks) or IoU (boxes) from :mod:`aimd.metrics`.
Flags: Dice < 0.85 → second review (§8.4 c), Dice < 0.75 → special review (§9.2), objects found by
one reader only or missed by some. Matches are joined across readers into objects; objects every
reader found feed Cohen's / Fleiss' kappa (labels, categorical attributes, text span labels), ICC and
Pearson (diameter, volume — §9.2 e) in :mod:`aimd.annotation.agreement_stats`, which also reports the
model-assisted deviation (§9.1.1 note 1).

Example
-------
>>> import tempfile, pathlib
>>> from aimd.phantoms import generate_dataset
>>> from aimd.annotation.simulate import simulate_annotators
>>> out = pathlib.Path(tempfile.mkdtemp()) / "ph"
>>> _ = generate_dataset(out, cases=1, seed=4, size=32, workers=1)
>>> _ = simulate_annotators(out, 2, seed=0)
>>> result = agree(dataset_readers(out))
>>> result.readers, result.pairs[0]["metric"] in ("dice", "box_iou")
(['reader_1', 'reader_2'], True)
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from aimd import __version__
from aimd.annotation.agreement_stats import attribute_agreement, model_assist_deviation, text_label_agreement
from aimd.annotation.io import PackageSource
from aimd.annotation.masks import MaskStore, grid_differences
from aimd.annotation.qc.config import QCConfig, load_qc_config
from aimd.annotation.readers import ReaderSet, dataset_readers, reader_sets
from aimd.annotation.schema import Annotation, AnnotationType, Category, ImageRef
from aimd.core.atomic import atomic_write_json
from aimd.core.errors import AimdError, InvalidInputError
from aimd.core.findings import Finding, Severity
from aimd.core.hashing import sha256_file
from aimd.metrics import box_iou, iou, segmentation_metrics

__all__ = ["AgreementResult", "ReaderSet", "agree", "dataset_readers", "reader_sets", "write_qc_record"]

_BY_LABEL = (Category.ORGAN, Category.SUBSTRUCTURE, Category.ATTRIBUTE)


@dataclass
class _Obj:
    reader: str
    source: PackageSource
    ann: Annotation
    image: ImageRef
    mask: NDArray[np.bool_] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.reader, self.ann.id)


@dataclass
class AgreementResult:
    """Everything :func:`agree` measured, ready for JSON, the QC record and the HTML report."""

    readers: list[str]
    cases: list[str]
    config: QCConfig
    pairs: list[dict[str, Any]] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    text_labels: dict[str, Any] = field(default_factory=dict)
    model_assisted: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Headline numbers: mean and minimum Dice, review counts, single-reader objects."""
        dice = [p["value"] for p in self.pairs if p["metric"] == "dice"]
        return {
            "readers": len(self.readers),
            "cases": len(self.cases),
            "pairs": len(self.pairs),
            "mean_dice": float(np.mean(dice)) if dice else None,
            "min_dice": min(dice) if dice else None,
            "second_review": sum(p["flag"] == "second_review" for p in self.pairs),
            "special_review": sum(p["flag"] == "special_review" for p in self.pairs),
            "single_reader_objects": sum(len(o["readers"]) == 1 for o in self.objects),
            "errors": sum(f.is_error for f in self.findings),
        }

    def worst_pair(self) -> dict[str, Any] | None:
        """The matched mask pair with the lowest Dice."""
        dice = [p for p in self.pairs if p["metric"] == "dice"]
        return min(dice, key=lambda p: p["value"]) if dice else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "readers": self.readers,
            "cases": self.cases,
            "summary": self.summary(),
            "config": self.config.model_dump(),
            "pairs": self.pairs,
            "objects": self.objects,
            "attributes": self.attributes,
            "text_labels": self.text_labels,
            "model_assisted": self.model_assisted,
            "inputs": self.inputs,
            "findings": [f.model_dump(mode="json") for f in self.findings],
        }


# ----------------------------------------------------------------------------------------- matching
def _finding(code: str, severity: str, clause: str, message: str, hint: str = "", **loc: Any) -> Finding:
    return Finding(
        code=code,
        severity=Severity(severity),
        clause=clause,
        message=message,
        hint=hint,
        location={k: v for k, v in loc.items() if v is not None},
    )


def _objects(
    rs: ReaderSet, source: PackageSource, store: MaskStore, config: QCConfig, findings: list[Finding]
) -> list[_Obj]:
    out = []
    for ann in source.package.annotations:
        image = source.package.image_of(ann)
        if image is None:
            continue
        obj = _Obj(rs.name, source, ann, image)
        if ann.type is AnnotationType.MASK and ann.data.mask_file:
            path = source.resolve(ann.data.mask_file)
            try:
                vol = store.get(path, image)
            except AimdError as err:
                findings.append(
                    _finding(
                        "AGREEMENT_MASK_UNREADABLE",
                        "error",
                        "001 §9.2",
                        str(err),
                        "run `aimd qc check` first",
                        reader=rs.name,
                        annotation=ann.id,
                    )
                )
                continue
            if grid_differences(vol, image):
                findings.append(
                    _finding(
                        "AGREEMENT_GRID_MISMATCH",
                        "error",
                        "001 §8.4 a",
                        f"mask of {ann.id} is not on the grid of image {image.uid}; not compared",
                        "run `aimd qc check` and fix the geometry",
                        reader=rs.name,
                        annotation=ann.id,
                    )
                )
                continue
            obj.mask = np.asarray(vol.array) == ann.data.mask_value
        out.append(obj)
    return out


def _crop_iou(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    both = a | b
    if not both.any():
        return 0.0
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(both))
    return float(iou(a[box], b[box]))


def _corners(ann: Annotation) -> list[float]:
    return list(ann.data.bbox or [])


def _match(a: list[_Obj], b: list[_Obj], min_iou: float) -> list[tuple[_Obj, _Obj, float]]:
    pairs: list[tuple[_Obj, _Obj, float]] = []
    for x in a:  # organs, substructures, case attributes: one per label code
        if x.ann.category in _BY_LABEL:
            y = next(
                (
                    o
                    for o in b
                    if o.ann.category == x.ann.category
                    and o.ann.label_code == x.ann.label_code
                    and o.ann.type == x.ann.type
                    and o.image.uid == x.image.uid
                ),
                None,
            )
            if y is not None:
                pairs.append((x, y, 1.0))
    for kind in (AnnotationType.MASK, AnnotationType.BBOX):
        ra = [o for o in a if o.ann.type is kind and o.ann.category not in _BY_LABEL]
        rb = [o for o in b if o.ann.type is kind and o.ann.category not in _BY_LABEL]
        if not ra or not rb:
            continue
        sim = np.zeros((len(ra), len(rb)))
        for i, x in enumerate(ra):
            for j, y in enumerate(rb):
                if x.image.uid != y.image.uid or x.ann.category != y.ann.category:
                    continue
                if kind is AnnotationType.MASK and x.mask is not None and y.mask is not None:
                    sim[i, j] = _crop_iou(x.mask, y.mask)
                elif kind is AnnotationType.BBOX and len(_corners(x.ann)) == len(_corners(y.ann)):
                    sim[i, j] = float(box_iou([_corners(x.ann)], [_corners(y.ann)])[0, 0])
        rows, cols = linear_sum_assignment(-sim)
        pairs += [
            (ra[i], rb[j], float(sim[i, j]))
            for i, j in zip(rows, cols, strict=True)
            if sim[i, j] >= min_iou and sim[i, j] > 0
        ]
    return pairs


def _pair_record(case: str, x: _Obj, y: _Obj, config: QCConfig, findings: list[Finding]) -> dict[str, Any] | None:
    loc = {"case": case, "readers": f"{x.reader}/{y.reader}", "annotations": f"{x.ann.id}/{y.ann.id}"}
    rec: dict[str, Any] = {
        "case": case,
        "image": x.image.uid,
        "reader_a": x.reader,
        "reader_b": y.reader,
        "id_a": x.ann.id,
        "id_b": y.ann.id,
        "label_a": x.ann.label_code,
        "label_b": y.ann.label_code,
        "category": x.ann.category.value,
        "flag": None,
        "source_a": str(x.source.path),
        "source_b": str(y.source.path),
    }
    if x.ann.type is AnnotationType.MASK and x.mask is not None and y.mask is not None:
        spacing_zyx = tuple(float(s) for s in x.image.spacing[::-1])
        m = segmentation_metrics(x.mask, y.mask, spacing=spacing_zyx, labels=[1])[1]
        rec |= {
            "metric": "dice",
            "value": m.dice,
            "dice": m.dice,
            "iou": m.iou,
            "hd_mm": m.hd,
            "hd95_mm": m.hd95,
            "assd_mm": m.assd,
            "volume_a_ml": m.volume_ref / 1000.0,
            "volume_b_ml": m.volume_pred / 1000.0,
        }
        if m.dice < config.dice_special_review:
            rec["flag"] = "special_review"
            findings.append(
                _finding(
                    "DICE_SPECIAL_REVIEW",
                    "error",
                    "001 §9.2",
                    f"Dice {m.dice:.3f} < {config.dice_special_review} for {x.ann.label_code}: special review",
                    "re-annotate or revise the label definitions",
                    **loc,
                )
            )
        elif m.dice < config.dice_second_review:
            rec["flag"] = "second_review"
            findings.append(
                _finding(
                    "DICE_SECOND_REVIEW",
                    "warning",
                    "001 §8.4 c",
                    f"Dice {m.dice:.3f} < {config.dice_second_review} for {x.ann.label_code}: second review",
                    "a second reviewer checks the boundary",
                    **loc,
                )
            )
        return rec
    if x.ann.type is AnnotationType.BBOX:
        value = float(box_iou([_corners(x.ann)], [_corners(y.ann)])[0, 0])
        rec |= {"metric": "box_iou", "value": value}
        if value < config.box_iou_review:
            rec["flag"] = "second_review"
            findings.append(
                _finding(
                    "BOX_IOU_LOW",
                    "warning",
                    "001 §9.2 b",
                    f"box IoU {value:.3f} < {config.box_iou_review} for {x.ann.label_code}",
                    "a second reviewer checks the boxes",
                    **loc,
                )
            )
        return rec
    return None


class _Clusters:
    def __init__(self) -> None:
        self.parent: dict[tuple[str, str], tuple[str, str]] = {}

    def add(self, k: tuple[str, str]) -> None:
        self.parent.setdefault(k, k)

    def find(self, k: tuple[str, str]) -> tuple[str, str]:
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def union(self, a: tuple[str, str], b: tuple[str, str]) -> None:
        self.parent[self.find(a)] = self.find(b)

    def groups(self) -> list[list[tuple[str, str]]]:
        out: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for k in self.parent:
            out.setdefault(self.find(k), []).append(k)
        return list(out.values())


def _case(
    case: str, objs: dict[str, list[_Obj]], readers: list[str], config: QCConfig, result: AgreementResult
) -> list[dict[str, _Obj]]:
    clusters = _Clusters()
    every = {o.key: o for lst in objs.values() for o in lst}
    for k, o in every.items():
        if o.ann.type in (AnnotationType.MASK, AnnotationType.BBOX, AnnotationType.ATTRIBUTE):
            clusters.add(k)
    for ra, rb in itertools.combinations([r for r in readers if r in objs], 2):
        for x, y, _ in _match(objs[ra], objs[rb], config.match_min_iou):
            clusters.union(x.key, y.key)
            rec = _pair_record(case, x, y, config, result.findings)
            if rec is not None:
                result.pairs.append(rec)
    complete = []
    for group in clusters.groups():
        members = [every[k] for k in group]
        found = sorted({m.reader for m in members})
        first = members[0].ann
        result.objects.append(
            {
                "case": case,
                "label_code": first.label_code,
                "category": first.category.value,
                "type": first.type.value,
                "readers": found,
                "ids": {m.reader: m.ann.id for m in members},
            }
        )
        loc = {"case": case, "annotations": ",".join(f"{m.reader}:{m.ann.id}" for m in members)}
        if len(readers) > 1 and len(found) == 1:
            result.findings.append(
                _finding(
                    "OBJECT_SINGLE_READER",
                    "warning",
                    "001 §6.5.1",
                    f"{first.label_code} {first.type.value} found by {found[0]} only",
                    "arbitration decides whether it is a missed label or a false one (001 §9.3.1 c)",
                    **loc,
                )
            )
        elif len(found) < len(readers):
            missing = sorted(set(readers) - set(found))
            result.findings.append(
                _finding(
                    "OBJECT_MISSED_BY_READERS",
                    "warning",
                    "001 §6.5.1",
                    f"{first.label_code} {first.type.value} not annotated by {missing}",
                    "review for a missed label (漏标)",
                    **loc,
                )
            )
        if len(found) == len(readers) == len(members):
            complete.append({m.reader: m for m in members})
    return complete


def agree(
    readers: list[ReaderSet], *, config: QCConfig | None = None, progress: Callable[[int], object] | None = None
) -> AgreementResult:
    """Compare readers case by case (cases matched by image uid).

    Parameters
    ----------
    readers:
        Two or more :class:`ReaderSet` s (see :func:`reader_sets`, :func:`dataset_readers`).
    config:
        Thresholds (Dice review levels, matching IoU, ICC form).
    progress:
        Called with 1 after each case.
    """
    config = config or load_qc_config()
    if len(readers) < 2:
        raise InvalidInputError(
            f"agreement needs at least two readers, got {len(readers)}", hint="pass two or more packages or folders"
        )
    names = [r.name for r in readers]
    by_case: dict[str, dict[str, PackageSource]] = {}
    for rs in readers:
        for s in rs.sources:
            by_case.setdefault(s.package.image.uid, {})[rs.name] = s
    labels = {uid: next(iter(d.values())).package.image.case_id or uid for uid, d in by_case.items()}
    result = AgreementResult(readers=names, cases=[labels[u] for u in by_case], config=config)
    result.inputs = [
        {
            "reader": rs.name,
            "path": str(s.path),
            "sha256": sha256_file(s.path),
            "annotator": s.package.metadata.annotator,
            "version": s.package.metadata.version,
        }
        for rs in readers
        for s in rs.sources
    ]
    complete: list[dict[str, _Obj]] = []
    store = MaskStore()
    for uid, per_reader in by_case.items():
        case = labels[uid]
        if len(per_reader) < len(readers):
            result.findings.append(
                _finding(
                    "CASE_NOT_IN_ALL_READERS",
                    "warning",
                    "001 §9.2",
                    f"case {case} annotated by {sorted(per_reader)} only",
                    case=case,
                )
            )
        objs = {
            r: _objects(next(x for x in readers if x.name == r), s, store, config, result.findings)
            for r, s in per_reader.items()
        }
        complete += _case(case, objs, names, config, result)
        if progress is not None:
            progress(1)
    result.attributes = attribute_agreement(complete, names, config, result.findings)
    result.text_labels = text_label_agreement(by_case, names, config, result.findings)
    result.model_assisted = model_assist_deviation(readers, store)
    return result


def write_qc_record(result: AgreementResult, path: str | Path) -> dict[str, Any]:
    """Write the agreement QC record (001 §8.4 note, §9.2) atomically and return it."""
    record = {
        "format": "aimd-qc-record",
        "kind": "agreement",
        "created": dt.datetime.now(dt.UTC).isoformat(),
        "aimd_version": __version__,
        **result.to_dict(),
    }
    atomic_write_json(path, record)
    return record
