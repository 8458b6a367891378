"""Dataset inference: every case of a dataset through one model, in this process or as Ray tasks.

:func:`predict_dataset` runs a model (run folder, bundle, ONNX/TorchScript file or a shipped reference
device) on every image of a dataset folder (``dataset.json``) or a folder of images, and writes

* ``OUT/masks/<case>.nii.gz``: the label volume of each case (segmentation models);
* ``OUT/summary.json``: per case the voxels per label, the scores (classification), lesion or box
  findings of the reference devices and the processing record; the run's timings apart under
  ``timings`` so that two runs compare equal on everything else.

The folder appears whole or not at all (:func:`aimd.core.atomic.atomic_dir`). With ``ray`` each case
is one Ray task (:func:`aimd.core.distributed.ray_imap`): workers read the model and the images from
their paths (a shared path on a cluster) and return the label volume through Ray's object store; the
driver writes every file. A worker that dies is retried by Ray, and the outputs do not depend on
where or in which order cases ran: they are byte-identical to the single-process run.

Example
-------
>>> import numpy as np
>>> from aimd.imaging.volume import Volume
>>> voxels_per_label(Volume(np.array([[[0, 1, 1]]], np.uint8)), {1: "lesion"})
{'background': 1, 'lesion': 2}
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from aimd.core.atomic import atomic_dir, atomic_write_json
from aimd.core.distributed import ray_imap, ray_label
from aimd.core.errors import InvalidInputError
from aimd.imaging.volume import Volume

SUMMARY_FILE = "summary.json"
MASKS_DIR = "masks"

_PREDICTORS: dict[tuple[str, int, str], Any] = {}  # one loaded model per worker process


def voxels_per_label(labels: Volume, names: dict[int, str]) -> dict[str, int]:
    """How many voxels carry each label (``background`` for 0), absent labels left out."""
    counts = np.bincount(np.asarray(labels.array).ravel(), minlength=len(names) + 1)
    return {names.get(i, "background"): int(c) for i, c in enumerate(counts) if c}


def prediction_summary(predictor: Any, result: Any) -> dict[str, Any]:
    """The JSON-ready part of one prediction: voxels per label, scores, findings and the record."""
    record = dict(result.record)
    summary: dict[str, Any] = {"task": predictor.output_spec.task}
    if result.labels is not None:
        summary["voxels_per_label"] = voxels_per_label(result.labels, predictor.output_spec.labels)
    if result.scores is not None:
        summary["scores"] = [round(float(s), 6) for s in result.scores]
    for key in ("lesions", "detections"):  # the reference devices' lesion-wise / box outputs
        if key in record:
            summary[key] = record.pop(key)
    summary["record"] = record
    return summary


def _predictor(model: str, threads: int, runtime: str) -> Any:
    key = (model, threads, runtime)
    if key not in _PREDICTORS:
        from aimd.models.adapters import load_predictor

        _PREDICTORS.clear()
        _PREDICTORS[key] = load_predictor(model, threads=threads, runtime=runtime)
    return _PREDICTORS[key]


def predict_case(
    model: str, image: str, modality: str | None, threads: int, runtime: str
) -> tuple[dict[str, Any], Volume | None]:
    """One case: ``(summary, label volume or None)``. Pure (paths in, values out), so Ray may rerun it."""
    import torch

    from aimd.imaging.io import read_volume

    predictor = _predictor(model, threads, runtime)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result = predictor.predict_volume(read_volume(image), modality=modality, where=image)
    finally:
        torch.set_num_threads(old_threads)
    return prediction_summary(predictor, result), result.labels


def dataset_cases(
    model: str | Path, data: Path, *, threads: int = 1, runtime: str = "onnxruntime"
) -> list[tuple[str, Path]]:
    """``(case id, image)`` of every case of ``data`` that ``model`` reads; ids checked to name files."""
    from aimd.models.adapt import site_cases

    cases = site_cases(data, _predictor(str(model), threads, runtime).input_spec)
    seen: set[str] = set()
    for case, _ in cases:
        if not case or "/" in case or "\\" in case or case.startswith(".") or case in seen:
            raise InvalidInputError(
                f"case id {case!r} cannot name a mask file ({'duplicate' if case in seen else 'path characters'})",
                where=str(data),
                hint="give every case a unique id without '/', '\\' or a leading '.'",
            )
        seen.add(case)
    return cases


def predict_dataset(
    model: str | Path,
    data: Path,
    out: Path,
    *,
    modality: str | None = None,
    threads: int = 1,
    runtime: str = "onnxruntime",
    ray: str | None = None,
    num_cpus: int | None = None,
    force: bool = False,
    progress: Any = None,
) -> dict[str, Any]:
    """Predict every case of ``data`` with ``model`` and write masks and ``summary.json`` to ``out``.

    ``ray``: ``None`` runs here, case after case; ``"local"`` on a local Ray instance with
    ``num_cpus`` CPUs; an address on that Ray cluster. ``modality`` is assumed for images that carry
    none; the cases of a dataset folder are of the model's own modality. Returns the summary.
    """
    started = time.perf_counter()
    predictor = _predictor(str(model), threads, runtime)
    cases = dataset_cases(model, data, threads=threads, runtime=runtime)
    if (data / "dataset.json").is_file():
        modality = modality or predictor.input_spec.modality
    jobs = [(str(model), str(path), modality, threads, runtime) for _, path in cases]
    results = (
        (predict_case(*job) for job in jobs)
        if ray is None
        else ray_imap(predict_case, jobs, address=ray, num_cpus=num_cpus)
    )
    rows: list[dict[str, Any]] = []
    seconds: dict[str, Any] = {}
    with atomic_dir(out, overwrite=force) as tmp:
        for (case, path), (summary, labels) in zip(cases, results, strict=True):
            row: dict[str, Any] = {"id": case, "image": str(path.relative_to(data))}
            seconds[case] = summary["record"].pop("seconds", None)
            if labels is not None:
                from aimd.imaging.io import write_volume

                mask = Path(MASKS_DIR) / f"{case}.nii.gz"
                write_volume(labels, tmp / mask)
                row["mask"] = str(mask)
            rows.append({**row, **summary})
            if progress is not None:
                progress()
        report: dict[str, Any] = {
            "model": str(model),
            "adapter": predictor.metadata.get("adapter"),
            "task": predictor.output_spec.task,
            "data": str(data),
            "n_cases": len(rows),
            "cases": rows,
            "execution": "single process" if ray is None else ray_label(ray),
            "timings": {"per_case_seconds": seconds, "total_seconds": round(time.perf_counter() - started, 3)},
        }
        atomic_write_json(tmp / SUMMARY_FILE, report)
    return report


__all__ = [
    "MASKS_DIR",
    "SUMMARY_FILE",
    "dataset_cases",
    "predict_case",
    "predict_dataset",
    "prediction_summary",
    "voxels_per_label",
]
