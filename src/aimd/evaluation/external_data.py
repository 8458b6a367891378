"""Evaluation data for a third-party volume model: an image + reference mask pair as an aimd dataset.

:func:`write_mask_dataset` turns one NIfTI (or DICOM) image and its reference mask into an aimd
dataset folder — ``dataset.json`` plus ``cases/<id>/image.nii.gz`` and ``mask.nii.gz``, every
file with its SHA-256 — and adds *perturbed copies* of the image for robustness (000 §6.3.6,
A.12.2 a): TorchIO artefacts (noise, bias field, blur, motion, ghosting, spike) applied to the
stored intensities **before** the model's own preprocessing, as a scanner would produce them. Each
copy records its artefact, severity, TorchIO parameters and seed. The folder is built in a
temporary sibling and renamed into place, so nothing half-written is left.

:func:`load_volume_eval_data` reads the dataset back (hashes checked), runs each case through a
:class:`~aimd.models.external.VolumePipeline` and returns :class:`EvalData` whose items are whole
3-D network inputs ``(n, c, d, h, w)`` with the reference mask mapped onto the same grid.

Example
-------
>>> type(volume_artefact("blur", 0.5)).__name__
'RandomBlur'
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from aimd import __version__
from aimd.core.atomic import atomic_dir, atomic_write_json
from aimd.core.errors import GeometryError, InvalidInputError, SchemaError
from aimd.core.hashing import sha256_file
from aimd.evaluation.context import EvalData
from aimd.evaluation.support.artefacts import artefact_parameters, artefact_transform
from aimd.imaging.io import read_volume, write_volume
from aimd.imaging.nifti_io import volume_affine_ras
from aimd.imaging.volume import Volume
from aimd.models.data import load_index
from aimd.models.external.pipeline import VolumePipeline

MASK_DATASET_FORMAT = "aimd-mask-dataset"
PERTURBED_SPLIT = "perturbed"
DEFAULT_PERTURBATIONS: tuple[tuple[str, float], ...] = (
    ("noise", 0.5),
    ("noise", 1.0),
    ("bias_field", 0.5),
    ("bias_field", 1.0),
    ("blur", 0.5),
    ("blur", 1.0),
)
INTENSITY_QUANTILE = 0.995


def volume_artefact(name: str, severity: float) -> Any:
    """The 3-D TorchIO transform for artefact ``name`` at ``severity`` in (0, 1] (magnitudes of
    :func:`~aimd.evaluation.support.artefacts.artefact_parameters`, applied along every axis).

    Example
    -------
    >>> type(volume_artefact("noise", 1.0)).__name__
    'RandomNoise'
    """
    return artefact_transform(name, severity, dims=3)


def perturb_volume(volume: Volume, name: str, severity: float, *, seed: int) -> tuple[Volume, dict[str, Any]]:
    """``volume`` with one artefact applied, and the record of what was applied.

    Intensities are divided by their 99.5 % quantile before the transform (so severities mean the
    same on any scanner scale) and multiplied back after it; integer images are rounded and clipped
    to their stored type, as a scanner would store them.

    Example
    -------
    >>> vol = Volume(np.full((8, 8, 8), 100, np.uint8), modality="MR")
    >>> out, rec = perturb_volume(vol, "noise", 1.0, seed=0)
    >>> out.array.dtype.name, rec["parameters"], 5 < float(out.array.std()) < 15
    ('uint8', {'std': 0.1}, True)
    """
    import torchio as tio

    arr = np.asarray(volume.array)
    scale = float(np.quantile(arr, INTENSITY_QUANTILE)) or float(np.abs(arr).max()) or 1.0
    xyz = np.transpose(arr.astype(np.float32) / np.float32(scale), (2, 1, 0))[None]
    tensor = torch.from_numpy(np.ascontiguousarray(xyz))
    image = tio.ScalarImage(tensor=tensor, affine=volume_affine_ras(volume))
    torch.manual_seed(seed)
    done = volume_artefact(name, severity)(tio.Subject(image=image))
    out = np.transpose(done["image"].data[0].numpy(), (2, 1, 0)) * scale
    if arr.dtype.kind in "iu":
        info = np.iinfo(arr.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    result = dataclasses.replace(
        volume, array=np.ascontiguousarray(out.astype(arr.dtype)), metadata=dict(volume.metadata)
    )
    record = {
        "artefact": name,
        "severity": severity,
        "parameters": artefact_parameters(name, severity),
        "seed": seed,
        "intensity_scale": round(scale, 6),
        "applied": [str(t) for t in done.history],
    }
    return result, record


def _same_grid(image: Volume, mask: Volume, where: str) -> None:
    if image.shape != mask.shape:
        raise GeometryError(
            f"mask shape {mask.shape} differs from image shape {image.shape}",
            where=where,
            hint="pass a mask on the image's voxel grid",
        )
    same = (
        np.allclose(image.spacing, mask.spacing, atol=1e-3)
        and np.allclose(image.origin, mask.origin, atol=1e-2)
        and np.allclose(image.direction, mask.direction, atol=1e-4)
    )
    if not same:
        raise GeometryError(
            "mask geometry (spacing, origin or direction) differs from the image's",
            where=where,
            hint="resample the mask onto the image grid first",
        )


def _entry(root: Path, rel: str) -> dict[str, Any]:
    path = root / rel
    return {"path": rel, "sha256": sha256_file(path), "size": path.stat().st_size}


def write_mask_dataset(
    image: str | Path,
    mask: str | Path,
    out: str | Path,
    *,
    case_id: str = "case",
    modality: str = "MR",
    label: str = "foreground",
    site: str = "",
    mask_threshold: float = 0.0,
    perturbations: Sequence[tuple[str, float]] = DEFAULT_PERTURBATIONS,
    seed: int = 0,
    overwrite: bool = False,
    progress: Callable[[str], object] | None = None,
) -> Path:
    """Write ``image`` and its reference ``mask`` (plus perturbed copies) as an aimd dataset folder.

    Parameters
    ----------
    image, mask:
        The image and its reference (voxels ``> mask_threshold`` are foreground), on one grid.
    out:
        Dataset folder to create.
    case_id, modality, label, site:
        Case name, the image's modality (stored in the NIfTI header), the foreground's name and the
        acquisition site.
    perturbations:
        ``(artefact, severity)`` pairs; each gives one perturbed copy ``<case_id>-<artefact>-<severity>``.
    seed:
        Seed of the first copy; copy ``i`` uses ``seed + i``.
    overwrite:
        Replace an existing ``out``.

    Returns
    -------
    Path
        The written ``dataset.json``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> img = Volume(np.random.default_rng(0).integers(0, 100, (8, 8, 8)).astype(np.int16))
    >>> _ = write_volume(img, d / "i.nii.gz"); _ = write_volume(Volume(img.array > 50), d / "m.nii.gz")
    >>> path = write_mask_dataset(d / "i.nii.gz", d / "m.nii.gz", d / "ds", perturbations=[("noise", 0.5)])
    >>> [c["id"] for c in load_index(path).data["cases"]]
    ['case', 'case-noise-0.5']
    """
    img = read_volume(image)
    ref = read_volume(mask)
    _same_grid(img, ref, str(mask))
    fg = np.asarray(ref.array) > mask_threshold
    if not fg.any():
        raise InvalidInputError(
            f"the reference mask has no voxel above {mask_threshold:g}",
            where=str(mask),
            hint="pass the mask that belongs to the image, or lower mask_threshold",
        )
    img = dataclasses.replace(img, modality=modality.upper(), metadata={})
    binary = Volume(
        fg.astype(np.uint8), spacing=img.spacing, origin=img.origin, direction=img.direction, modality="SEG"
    )
    cases: list[dict[str, Any]] = []
    with atomic_dir(out, overwrite=overwrite) as tmp:
        base = f"cases/{case_id}"
        write_volume(img, tmp / base / "image.nii.gz")
        write_volume(binary, tmp / base / "mask.nii.gz")
        cases.append(
            {
                "id": case_id,
                "split": "test",
                "site": site,
                "modality": img.modality,
                "files": [_entry(tmp, f"{base}/image.nii.gz"), _entry(tmp, f"{base}/mask.nii.gz")],
            }
        )
        for i, (name, severity) in enumerate(perturbations):
            if progress is not None:
                progress(f"perturbed copy {name} {severity:g}")
            copy, record = perturb_volume(img, name, float(severity), seed=seed + i)
            rel = f"cases/{case_id}-{name}-{float(severity):g}"
            write_volume(copy, tmp / rel / "image.nii.gz")
            (tmp / rel).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tmp / base / "mask.nii.gz", tmp / rel / "mask.nii.gz")
            cases.append(
                {
                    "id": rel.removeprefix("cases/"),
                    "split": PERTURBED_SPLIT,
                    "site": site,
                    "modality": img.modality,
                    "source_case": case_id,
                    "perturbation": record,
                    "files": [_entry(tmp, f"{rel}/image.nii.gz"), _entry(tmp, f"{rel}/mask.nii.gz")],
                }
            )
        index = {
            "format": MASK_DATASET_FORMAT,
            "version": "1",
            "aimd_version": __version__,
            "modality": img.modality,
            "label_map": {"0": "background", "1": label},
            "seed": seed,
            "source": {
                "image": str(image),
                "image_sha256": sha256_file(image),
                "mask": str(mask),
                "mask_sha256": sha256_file(mask),
                "mask_rule": f"voxel value > {mask_threshold:g}",
                "shape_zyx": list(img.shape),
                "spacing_mm": list(img.spacing),
            },
            "cases": cases,
        }
        atomic_write_json(tmp / "dataset.json", index)
    return Path(out) / "dataset.json"


@dataclass
class VolumeEvalSet:
    """Clean held-out volumes and their perturbed copies, as network inputs on the model's grid.

    ``perturbed`` maps ``(artefact, severity)`` to the copies (case ids are their source cases, so
    scores pair with the clean ones); ``records`` holds per file the preparation record and the
    fraction of the reference lying outside the network's crop; ``perturbations`` the recorded
    artefacts.
    """

    clean: EvalData
    perturbed: dict[tuple[str, float], EvalData] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    perturbations: dict[str, dict[str, Any]] = field(default_factory=dict)


_Prepared = tuple[NDArray[np.float32], NDArray[np.int64], dict[str, Any], dict[str, str]]


def _load_case(index: Any, cid: str, pipeline: VolumePipeline, modality: str) -> _Prepared:
    img_path, img_sha = index.file(cid, "image.nii.gz")
    mask_path, mask_sha = index.file(cid, "mask.nii.gz")
    image, mask = read_volume(img_path), read_volume(mask_path)
    _same_grid(image, mask, str(mask_path))
    prepared = pipeline.prepare(image, modality=modality, where=str(img_path))
    target = prepared.labels_to_grid(mask)
    record = {**prepared.record, "reference_outside_crop": prepared.outside_fraction(mask)}
    files = {f"cases/{cid}/image.nii.gz": img_sha, f"cases/{cid}/mask.nii.gz": mask_sha}
    return prepared.inputs, (target > 0).astype(np.int64), record, files


def load_volume_eval_data(
    dataset: str | Path,
    pipeline: VolumePipeline,
    *,
    split: str = "test",
    progress: Callable[[str], object] | None = None,
) -> VolumeEvalSet:
    """Read a mask dataset and prepare every clean case of ``split`` and every perturbed copy.

    Raises
    ------
    SchemaError
        The dataset is not a mask dataset (``format`` differs) or a copy names an unknown source.
    IntegrityError
        A file's SHA-256 differs from dataset.json.

    Example
    -------
    >>> from aimd.models.external import DeepBet
    >>> sets = load_volume_eval_data("colin27-dataset/", DeepBet(grid=160))  # doctest: +SKIP
    >>> sorted(sets.perturbed)[0], sets.clean.targets.shape  # doctest: +SKIP
    (('bias_field', 0.5), (1, 160, 160, 160))
    """
    index = load_index(dataset)
    if index.data.get("format") != MASK_DATASET_FORMAT:
        raise SchemaError(
            f"dataset format is {index.data.get('format')!r}, not {MASK_DATASET_FORMAT!r}",
            where=str(index.path),
            hint="write it with aimd.evaluation.write_mask_dataset",
        )
    modality = str(index.data.get("modality") or "")
    clean_ids = index.split_ids(split)
    if not clean_ids:
        raise InvalidInputError(
            f"split {split!r} has no cases", where=str(index.path), hint="write the dataset with write_mask_dataset"
        )
    records: dict[str, dict[str, Any]] = {}
    perturbations: dict[str, dict[str, Any]] = {}
    hashes: dict[str, str] = {"dataset.json": index.sha256}
    items: list[tuple[str, NDArray[np.float32], NDArray[np.int64]]] = []
    for cid in clean_ids:
        if progress is not None:
            progress(f"preparing {cid}")
        inputs, target, record, files = _load_case(index, cid, pipeline, modality)
        items.append((cid, inputs, target))
        records[cid] = record
        hashes.update(files)
    sites = {cid: str(index.case(cid).get("site", "")) for cid in clean_ids}
    groups: dict[tuple[str, float], list[tuple[str, NDArray[np.float32], NDArray[np.int64]]]] = {}
    for case in index.data["cases"]:
        if case.get("split") != PERTURBED_SPLIT or case.get("source_case") not in clean_ids:
            continue
        pert = case.get("perturbation") or {}
        if "artefact" not in pert or "severity" not in pert:
            raise SchemaError(
                "perturbed copy lacks perturbation.artefact / severity",
                where=f"{index.path}: cases[{case['id']}]",
                hint="rewrite the dataset",
            )
        if progress is not None:
            progress(f"preparing {case['id']}")
        inputs, target, record, files = _load_case(index, case["id"], pipeline, modality)
        groups.setdefault((str(pert["artefact"]), float(pert["severity"])), []).append(
            (str(case["source_case"]), inputs, target)
        )
        records[case["id"]] = record
        perturbations[case["id"]] = pert
        hashes.update(files)
    perturbed = {key: _stack(group, sites, hashes) for key, group in sorted(groups.items())}
    return VolumeEvalSet(
        clean=_stack(items, sites, hashes), perturbed=perturbed, records=records, perturbations=perturbations
    )


def _stack(
    items: list[tuple[str, NDArray[np.float32], NDArray[np.int64]]], sites: dict[str, str], hashes: dict[str, str]
) -> EvalData:
    ids = [c for c, _, _ in items]
    return EvalData(
        np.stack([i for _, i, _ in items]).astype(np.float32),
        np.stack([t for _, _, t in items]),
        ids,
        {c: sites.get(c, "") for c in ids},
        "segmentation",
        hashes,
    )


__all__ = [
    "DEFAULT_PERTURBATIONS",
    "MASK_DATASET_FORMAT",
    "PERTURBED_SPLIT",
    "VolumeEvalSet",
    "load_volume_eval_data",
    "perturb_volume",
    "volume_artefact",
    "write_mask_dataset",
]
