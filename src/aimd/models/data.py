"""Training data from a phantom dataset.json: hashed, split, preprocessed arrays (000 §4.3).

:func:`load_index` reads and checks dataset.json; :func:`load_seg_split` turns the CT cases of one
split into 2-D axial slices (inputs preprocessed exactly as the model's :class:`InputSpec` says,
targets from the label volume through the :class:`Target`'s label names); :func:`load_cls_split`
turns the radiographs into resized images with a "nodule present" label from dx_boxes.json.
Every file read is checked against the SHA-256 recorded in dataset.json and its hash is kept
for the training record (000 §4.3.2–§4.3.3). :func:`split_statistics` and
:func:`distribution_differences` describe each split and how the splits differ (000 §4.3.2).

Example
-------
>>> import tempfile, pathlib
>>> from aimd.phantoms import generate_dataset
>>> from aimd.models.zoo import get_entry
>>> out = pathlib.Path(tempfile.mkdtemp()) / "ph"
>>> _ = generate_dataset(out, cases=3, seed=0, size=32, workers=1)
>>> index = load_index(out)
>>> data = load_seg_split(index, "train", get_target("organs"), get_entry("unet-small").input_spec)
>>> data.images.shape[1:], data.images.dtype
((2, 32, 32), dtype('float32'))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from aimd.core.errors import IntegrityError, InvalidInputError, SchemaError
from aimd.core.hashing import sha256_file
from aimd.imaging.io import read_volume
from aimd.models.preprocess import check_volume, preprocess_volume
from aimd.models.specs import InputSpec
from aimd.models.targets import Target, get_target

SPLITS = ("train", "val", "test")


@dataclass
class DatasetIndex:
    """A checked dataset.json and the folder it indexes."""

    path: Path
    data: dict[str, Any]
    sha256: str

    @property
    def root(self) -> Path:
        """Folder holding dataset.json and cases/."""
        return self.path.parent

    @property
    def label_map(self) -> dict[str, str]:
        """Label value (as text) → name."""
        return {str(k): str(v) for k, v in self.data["label_map"].items()}

    def case(self, case_id: str) -> dict[str, Any]:
        """The dataset.json entry of ``case_id``."""
        for case in self.data["cases"]:
            if case["id"] == case_id:
                return case
        raise InvalidInputError(f"no case {case_id!r}", where=str(self.path), hint="check the case ids")

    def split_ids(self, split: str) -> list[str]:
        """Case ids of ``split`` (train / val / test), in dataset order."""
        if split not in SPLITS:
            raise InvalidInputError(f"unknown split {split!r}", where="split", hint=f"use one of {SPLITS}")
        return [c["id"] for c in self.data["cases"] if c.get("split") == split]

    def file(self, case_id: str, name: str, *, verify: bool = True) -> tuple[Path, str]:
        """Path and SHA-256 of ``cases/<id>/<name>``; the hash is checked against dataset.json."""
        rel = f"cases/{case_id}/{name}"
        entry = next((f for f in self.case(case_id)["files"] if f["path"] == rel), None)
        if entry is None:
            raise SchemaError(
                f"dataset.json lists no file {rel}",
                where=f"{self.path}: cases[{case_id}].files",
                hint="regenerate the dataset with aimd data phantom",
            )
        path = self.root / rel
        if not path.is_file():
            raise InvalidInputError(
                "file listed in dataset.json is missing",
                where=str(path),
                hint="restore the dataset folder or regenerate it",
            )
        digest = sha256_file(path) if verify else entry["sha256"]
        if digest != entry["sha256"]:
            raise IntegrityError(
                f"SHA-256 {digest[:12]}… differs from dataset.json's {entry['sha256'][:12]}…",
                where=str(path),
                hint="the file changed after export: restore or regenerate it",
            )
        return path, digest


def load_index(path: str | Path) -> DatasetIndex:
    """Read dataset.json (or the folder holding it) and check the fields training needs.

    Example
    -------
    >>> try:
    ...     load_index("/nonexistent")
    ... except InvalidInputError as err:
    ...     print(err.message)
    dataset.json not found
    """
    p = Path(path)
    if p.is_dir():
        p = p / "dataset.json"
    if not p.is_file():
        raise InvalidInputError(
            "dataset.json not found",
            where=str(p),
            hint="pass the dataset.json written by aimd data phantom, or its folder",
        )
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SchemaError(f"not valid JSON ({err})", where=str(p), hint="regenerate the dataset") from err
    if not isinstance(data, dict):
        raise SchemaError("top level must be an object", where=str(p), hint="regenerate the dataset")
    for key in ("label_map", "cases"):
        if key not in data:
            raise SchemaError(f"missing field {key!r}", where=str(p), hint="regenerate with aimd data phantom")
    for i, case in enumerate(data["cases"]):
        for key in ("id", "split", "files"):
            if key not in case:
                raise SchemaError(
                    f"case {i} lacks field {key!r}", where=f"{p}: cases[{i}]", hint="regenerate with aimd data phantom"
                )
    return DatasetIndex(p, data, sha256_file(p))


@dataclass
class ArraySet:
    """Preprocessed model inputs and targets of one split.

    ``images``: ``(n, c, h, w)`` float32. ``targets``: ``(n, h, w)`` class indices (segmentation)
    or ``(n,)`` (classification). ``case_ids`` / ``slices``: where each item came from.
    ``volumes``: per case ``(inputs (z, c, h, w), target (z, h, w), spacing)`` for 3-D evaluation.
    ``files``: every file read, with its SHA-256.
    """

    images: NDArray[np.float32]
    targets: NDArray[np.int64]
    case_ids: list[str]
    slices: NDArray[np.int64]
    files: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, tuple[NDArray[np.float32], NDArray[np.int64], tuple[float, float, float]]] = field(
        default_factory=dict
    )
    sites: dict[str, str] = field(default_factory=dict)
    spacings: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])


def class_map(label_volume: NDArray[Any], target: Target, label_map: dict[str, str]) -> NDArray[np.int64]:
    """Dataset label values → target class index per voxel (0 where no class applies)."""
    out = np.zeros(label_volume.shape, dtype=np.int64)
    for cls, values in target.label_values(label_map).items():
        out[np.isin(label_volume, values)] = cls
    return out


def choose_cases(ids: list[str], fraction: float, seed: int) -> list[str]:
    """A seeded subset of ``ids`` holding ``fraction`` of them (at least one), in the original order."""
    if not 0 < fraction <= 1:
        raise InvalidInputError(
            f"case fraction must be in (0, 1], got {fraction}",
            where="--case-fraction",
            hint="e.g. 0.5 for half of the training cases (000 B.1.6.4)",
        )
    keep = max(1, round(len(ids) * fraction))
    chosen = set(np.random.default_rng(seed).permutation(len(ids))[:keep].tolist())
    return [cid for i, cid in enumerate(ids) if i in chosen]


def load_seg_split(
    index: DatasetIndex,
    split: str,
    target: Target,
    spec: InputSpec,
    *,
    case_ids: list[str] | None = None,
    slice_policy: Literal["all", "balanced"] = "all",
    negative_ratio: float = 1.0,
    seed: int = 0,
    keep_volumes: bool = False,
) -> ArraySet:
    """Axial slices of the CT cases of ``split`` as model inputs and class-index targets.

    ``slice_policy="balanced"`` keeps every slice showing the target plus ``negative_ratio`` times
    as many slices without it (seeded), for small lesion targets.
    """
    if target.task != "seg":
        raise InvalidInputError(
            f"target {target.name!r} is not a segmentation target",
            where="--target",
            hint="use a segmentation target for segmentation models",
        )
    ids = case_ids if case_ids is not None else index.split_ids(split)
    if not ids:
        raise InvalidInputError(
            f"split {split!r} has no cases",
            where=str(index.path),
            hint="generate more cases so every split holds at least one",
        )
    rng = np.random.default_rng(seed)
    images, targets, owners, slices = [], [], [], []
    result = ArraySet(np.zeros(0, np.float32), np.zeros(0, np.int64), [], np.zeros(0, np.int64))
    for cid in ids:
        ct_path, ct_sha = index.file(cid, "ct.nii.gz")
        lab_path, lab_sha = index.file(cid, "labels.nii.gz")
        result.files[f"cases/{cid}/ct.nii.gz"] = ct_sha
        result.files[f"cases/{cid}/labels.nii.gz"] = lab_sha
        ct = read_volume(ct_path)
        labels = read_volume(lab_path)
        if ct.shape != labels.shape:
            raise SchemaError(
                f"CT shape {ct.shape} differs from label shape {labels.shape}",
                where=str(lab_path),
                hint="regenerate the case",
            )
        check_volume(ct, spec.model_copy(update={"spacing_mm": None}), modality="CT", where=str(ct_path))
        inputs = preprocess_volume(ct, spec)
        cls = class_map(labels.array, target, index.label_map)
        result.sites[cid] = str(index.case(cid).get("site", ""))
        result.spacings[cid] = ct.spacing
        if keep_volumes:
            result.volumes[cid] = (inputs, cls, ct.spacing)
        chosen = np.arange(inputs.shape[0])
        if slice_policy == "balanced":
            has = (cls > 0).any(axis=(1, 2))
            pos = np.flatnonzero(has)
            neg = np.flatnonzero(~has)
            n_neg = min(len(neg), max(1, round(len(pos) * negative_ratio)))
            chosen = np.sort(np.concatenate([pos, rng.choice(neg, size=n_neg, replace=False)]))
        images.append(inputs[chosen])
        targets.append(cls[chosen])
        owners.extend([cid] * len(chosen))
        slices.append(chosen)
    result.images = np.concatenate(images).astype(np.float32)
    result.targets = np.concatenate(targets).astype(np.int64)
    result.case_ids = owners
    result.slices = np.concatenate(slices).astype(np.int64)
    return result


def load_cls_split(
    index: DatasetIndex, split: str, target: Target, spec: InputSpec, *, case_ids: list[str] | None = None
) -> ArraySet:
    """Radiographs of ``split``, preprocessed per ``spec``, labelled 1 when dx_boxes.json lists a nodule."""
    if target.source != "dx_boxes":
        raise InvalidInputError(
            f"target {target.name!r} is not a radiograph target",
            where="--target",
            hint="use --target nodule_present for classification models",
        )
    ids = case_ids if case_ids is not None else index.split_ids(split)
    if not ids:
        raise InvalidInputError(
            f"split {split!r} has no cases",
            where=str(index.path),
            hint="generate more cases so every split holds at least one",
        )
    result = ArraySet(np.zeros(0, np.float32), np.zeros(0, np.int64), [], np.zeros(0, np.int64))
    images, labels = [], []
    for cid in ids:
        dx_path, dx_sha = index.file(cid, "dx.dcm")
        box_path, box_sha = index.file(cid, "dx_boxes.json")
        result.files[f"cases/{cid}/dx.dcm"] = dx_sha
        result.files[f"cases/{cid}/dx_boxes.json"] = box_sha
        dx = read_volume(dx_path)
        check_volume(dx, spec.model_copy(update={"spacing_mm": None}), where=str(dx_path))
        try:
            boxes = json.loads(box_path.read_text(encoding="utf-8"))["boxes"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise SchemaError(
                "dx_boxes.json lacks a 'boxes' list", where=str(box_path), hint="regenerate the case"
            ) from err
        images.append(preprocess_volume(dx, spec))
        labels.append(int(len(boxes) > 0))
        result.sites[cid] = str(index.case(cid).get("site", ""))
        result.spacings[cid] = dx.spacing
    result.images = np.concatenate(images).astype(np.float32)
    result.targets = np.asarray(labels, dtype=np.int64)
    result.case_ids = list(ids)
    result.slices = np.zeros(len(ids), dtype=np.int64)
    return result


def load_split(index: DatasetIndex, split: str, target_name: str, spec: InputSpec, **kwargs: Any) -> ArraySet:
    """:func:`load_seg_split` or :func:`load_cls_split`, by the target's task."""
    target = get_target(target_name)
    if target.task == "seg":
        return load_seg_split(index, split, target, spec, **kwargs)
    kwargs.pop("slice_policy", None)
    kwargs.pop("negative_ratio", None)
    kwargs.pop("seed", None)
    kwargs.pop("keep_volumes", None)
    return load_cls_split(index, split, target, spec, **kwargs)


def split_statistics(data: ArraySet, classes: dict[int, str]) -> dict[str, Any]:
    """Amounts and distribution of one split: cases, items, sites, class fractions, intensities."""
    n = len(data)
    sites: dict[str, int] = {}
    for cid in dict.fromkeys(data.case_ids):
        sites[data.sites.get(cid, "")] = sites.get(data.sites.get(cid, ""), 0) + 1
    fractions = {classes.get(int(c), str(c)): float(np.mean(data.targets == c)) for c in sorted(classes)}
    unit = "images" if data.targets.ndim == 1 else "pixels"
    spacing = np.array(list(data.spacings.values())) if data.spacings else np.zeros((0, 3))
    return {
        "cases": len(set(data.case_ids)),
        "items": n,
        "sites": sites,
        "class_fraction": fractions,
        "class_fraction_unit": unit,
        "intensity_mean": [float(v) for v in data.images.mean(axis=(0, 2, 3))] if n else [],
        "intensity_std": [float(v) for v in data.images.std(axis=(0, 2, 3))] if n else [],
        "spacing_mm_min": spacing.min(axis=0).round(4).tolist() if len(spacing) else None,
        "spacing_mm_max": spacing.max(axis=0).round(4).tolist() if len(spacing) else None,
    }


def _foreground_per_case(data: ArraySet) -> NDArray[np.float64]:
    """Per case: the positive rate (classification) or mean foreground fraction of its items."""
    if data.targets.ndim == 1:
        per_item = data.targets.astype(np.float64)
    else:
        per_item = (data.targets > 0).reshape(len(data), -1).mean(axis=1).astype(np.float64)
    owners = np.asarray(data.case_ids)
    return np.array([per_item[owners == cid].mean() for cid in dict.fromkeys(data.case_ids)], dtype=np.float64)


def distribution_differences(sets: dict[str, ArraySet]) -> dict[str, Any]:
    """How val and test differ from train (000 §4.3.2): mean-intensity and foreground shifts, and a
    two-sample Kolmogorov–Smirnov test on the per-case foreground fraction (cases, not slices, are
    the independent units)."""
    if "train" not in sets:
        return {}
    base = sets["train"]
    base_fg = _foreground_per_case(base)
    out: dict[str, Any] = {}
    for name, other in sets.items():
        if name == "train" or len(other) == 0:
            continue
        fg = _foreground_per_case(other)
        ks = stats.ks_2samp(base_fg, fg)
        out[f"{name}_vs_train"] = {
            "intensity_mean_shift": [
                float(a - b)
                for a, b in zip(other.images.mean(axis=(0, 2, 3)), base.images.mean(axis=(0, 2, 3)), strict=True)
            ],
            "foreground_fraction_shift": float(fg.mean() - base_fg.mean()),
            "ks_statistic": float(ks.statistic),
            "ks_pvalue": float(ks.pvalue),
            "ks_unit": "case",
            "sites_only_in_split": sorted(set(other.sites.values()) - set(base.sites.values())),
        }
    return out


__all__ = [
    "SPLITS",
    "ArraySet",
    "DatasetIndex",
    "choose_cases",
    "class_map",
    "distribution_differences",
    "load_cls_split",
    "load_index",
    "load_seg_split",
    "load_split",
    "split_statistics",
]
