"""Adapting a trained model to a new site without labels: BatchNorm statistics re-estimation (AdaBN).

A network trained at one hospital normalises its activations with BatchNorm running statistics of
that hospital's images. :func:`adapt_bn` replaces those statistics with the ones of unlabelled
images from the target site (003 §5.3): every BatchNorm layer's running mean and variance are reset
and re-estimated as the cumulative average (``momentum=None``) over the target images, passed through
the model's own preprocessing; everything else (weights, biases, dropout) stays as trained and in eval
mode. The result is a new run folder whose run.json names its parent and the images used.

Site data is either a phantom dataset folder (its ``dataset.json`` lists the cases; the file the model
reads, ``ct.nii.gz`` or ``dx.dcm``, is taken from each case and its labels are never opened) or a
folder of image files (NIfTI or DICOM).

Example
-------
>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2)).eval()
>>> _ = reestimate_bn(net, [torch.full((4, 1, 3, 3), 5.0)])
>>> [round(v, 3) for v in net[1].running_mean.tolist()] == [round(v, 3) for v in net[0](
...     torch.full((1, 1, 1, 1), 5.0)).flatten().tolist()]
True
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from aimd.core.atomic import atomic_dir, atomic_write_json
from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.imaging.io import read_volume
from aimd.models.preprocess import check_volume, preprocess_volume
from aimd.models.runs import RECORD_FILE, RUN_FILE, WEIGHTS_FILE, Run, load_run
from aimd.models.specs import InputSpec

METHODS = ("bn",)
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".dcm")


def batchnorm_layers(network: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer (1-D, 2-D, 3-D, sync) of ``network``."""
    return [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def reestimate_bn(network: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Replace the BatchNorm running statistics of ``network`` by their cumulative average over ``batches``.

    Only BatchNorm layers run in training mode, and only while the batches pass; the network is
    returned to eval mode. Returns the number of images seen.
    """
    layers = batchnorm_layers(network)
    if not layers:
        raise InvalidInputError(
            "the model has no BatchNorm layers, so there are no statistics to re-estimate",
            where="--method bn",
            hint="use a model with BatchNorm layers (e.g. unet-small)",
        )
    saved = [(m, m.momentum) for m in layers]
    network.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
        m.train()
    seen = 0
    try:
        for batch in batches:
            network(batch)
            seen += int(batch.shape[0])
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        network.eval()
    if seen == 0:
        raise InvalidInputError("no images to re-estimate BatchNorm statistics from", where="--site-data")
    return seen


def site_cases(site_data: Path, spec: InputSpec) -> list[tuple[str, Path]]:
    """``(case id, image file)`` for every image of ``site_data`` the model would read (labels are never listed).

    A dataset folder gives its cases' ids; a folder of image files gives each file's name without
    its suffix.
    """
    if not site_data.is_dir():
        raise InvalidInputError(
            "data folder does not exist",
            where=str(site_data),
            hint="pass a dataset folder or a folder of images (NIfTI/DICOM)",
        )
    index_file = site_data / "dataset.json"
    if index_file.is_file():
        from aimd.models.data import load_index

        index = load_index(index_file)
        name = "dx.dcm" if spec.modality == "DX" else "ct.nii.gz"
        return [(str(case["id"]), index.file(str(case["id"]), name)[0]) for case in index.data["cases"]]
    found = sorted(
        p
        for p in site_data.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(IMAGE_SUFFIXES)
    )
    if not found:
        raise InvalidInputError(
            "folder holds neither dataset.json nor image files (.nii.gz, .nii, .dcm)",
            where=str(site_data),
            hint="pass a dataset folder or a folder of images",
        )
    return [(_stem(p), p) for p in found]


def _stem(path: Path) -> str:
    name = path.name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def site_images(site_data: Path, spec: InputSpec) -> list[Path]:
    """The image files of ``site_data`` the model would read (labels are never listed)."""
    return [path for _, path in site_cases(site_data, spec)]


def _inputs(paths: list[Path], spec: InputSpec, modality: str | None) -> NDArray[np.float32]:
    arrays = []
    for path in paths:
        volume = read_volume(path)
        check_volume(volume, spec.model_copy(update={"spacing_mm": None}), modality=modality, where=str(path))
        arrays.append(preprocess_volume(volume, spec))
    return np.concatenate(arrays).astype(np.float32)


def adapt_run(
    run_dir: Path,
    site_data: Path,
    out: Path,
    *,
    method: str = "bn",
    batch_size: int = 32,
    threads: int = 2,
    modality: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write ``out``: the run of ``run_dir`` adapted to the images of ``site_data`` by ``method``.

    ``modality`` is assumed for image files that carry none (NIfTI outside a dataset folder); the
    cases of a dataset folder are of the model's own modality.
    """
    if method not in METHODS:
        raise InvalidInputError(
            f"unknown adaptation method {method!r}", where="--method", hint=f"one of: {', '.join(METHODS)}"
        )
    if batch_size < 2:
        raise InvalidInputError(
            "BatchNorm statistics need at least 2 images per batch",
            where="--batch-size",
            hint="use --batch-size 16 or more",
        )
    run: Run = load_run(run_dir)
    spec = run.input_spec
    paths = site_images(site_data, spec)
    if (site_data / "dataset.json").is_file():
        modality = modality or spec.modality
    inputs = _inputs(paths, spec, modality)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        network = run.build_network()
        tensor = torch.from_numpy(inputs)
        seen = reestimate_bn(network, (tensor[i : i + batch_size] for i in range(0, len(tensor), batch_size)))
    finally:
        torch.set_num_threads(old_threads)
    adaptation = {
        "method": "bn",
        "description": "BatchNorm running statistics re-estimated (cumulative average) "
        "on unlabelled target-site images; all weights unchanged",
        "parent_run": str(run.path),
        "parent_run_id": run.info.get("run_id"),
        "parent_weights_sha256": run.info.get("weights_sha256"),
        "site_data": str(site_data),
        "images": [p.name if p.parent == site_data else str(p.relative_to(site_data)) for p in paths],
        "slices_seen": seen,
        "batch_size": batch_size,
        "batchnorm_layers": len(batchnorm_layers(network)),
    }
    with atomic_dir(out, overwrite=force) as tmp:
        torch.save(network.state_dict(), tmp / WEIGHTS_FILE)
        if (run.path / RECORD_FILE).is_file():
            shutil.copy2(run.path / RECORD_FILE, tmp / RECORD_FILE)
        info = {
            **run.info,
            "weights": WEIGHTS_FILE,
            "weights_sha256": sha256_file(tmp / WEIGHTS_FILE),
            "adaptation": adaptation,
        }
        atomic_write_json(tmp / RUN_FILE, info)
    return {"run": str(out), **adaptation, "images": len(paths)}


__all__ = ["METHODS", "adapt_run", "batchnorm_layers", "reestimate_bn", "site_cases", "site_images"]
