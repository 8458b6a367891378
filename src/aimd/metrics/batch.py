"""Segmentation metrics over folders of case masks: file matching, grid alignment, batch runs, CSV.

``aimd metrics seg`` is a thin layer over this module: :func:`case_pairs` matches the case files of
a reference and a prediction folder by name, :func:`align_masks` puts two masks on one grid (never
resampling: only exact placement), :func:`segmentation_batch` computes every case (in worker
processes, or as Ray tasks, when asked) into a :class:`~aimd.metrics.SegmentationAccumulator` report, and
:func:`segmentation_csv` writes one row per case and label.

Example
-------
>>> case_id(Path("case01.nii.gz")), case_id(Path("b.dcm"))
('case01', 'b')
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from aimd.core.distributed import ray_map
from aimd.core.errors import GeometryError, InvalidInputError
from aimd.imaging.io import read_volume
from aimd.imaging.seg_read import is_dicom_seg, place_on_grid, read_seg
from aimd.imaging.volume import Volume
from aimd.metrics.accumulators import SegmentationAccumulator
from aimd.metrics.segmentation import LabelMetrics, segmentation_metrics

SEG_COLUMNS = ("dice", "iou", "hd", "hd95", "assd", "precision", "recall", "volume_ref_ml", "volume_pred_ml")
CASE_SUFFIXES = (".nii.gz", ".nii", ".dcm", ".dicom")


def read_mask(path: Path, labels: list[int] | None = None) -> Volume:
    """A mask file as a label Volume: DICOM SEG via highdicom (only ``labels``' segments), else read_volume."""
    return read_seg(path, segments=labels) if is_dicom_seg(path) else read_volume(path)


def _laid_note(moved: Volume, onto: Volume, moved_path: Path, onto_path: Path) -> str:
    uncovered = int(np.prod(onto.shape)) - int(np.prod(moved.shape))
    extent = (
        (
            f"; {uncovered} voxels of {onto_path.name} lie outside {moved_path.name}'s extent and count as "
            "background there"
        )
        if uncovered > 0
        else ""
    )
    return (
        f"grids differ: {moved_path.name} (shape {list(moved.shape)}, origin "
        f"{[round(o, 3) for o in moved.origin]}) was laid on the grid of {onto_path.name} (shape "
        f"{list(onto.shape)}, origin {[round(o, 3) for o in onto.origin]}) by exact re-indexing, "
        f"no interpolation{extent}"
    )


def align_masks(
    ref: Volume, pred: Volume, ref_path: Path, pred_path: Path, notes: list[str] | None = None
) -> tuple[Volume, Volume]:
    """``ref`` and ``pred`` on one grid: the prediction placed on the reference's, or the other way round.

    When the grids differ, a sentence saying how they were aligned is appended to ``notes``.
    """
    if ref.same_grid(pred):
        return ref, pred
    notes = notes if notes is not None else []
    try:
        placed = place_on_grid(pred, ref, where=str(pred_path))
        notes.append(_laid_note(pred, ref, pred_path, ref_path))
        return ref, placed
    except GeometryError as first:
        try:
            placed = place_on_grid(ref, pred, where=str(ref_path))
            notes.append(_laid_note(ref, pred, ref_path, pred_path))
            return placed, pred
        except GeometryError:
            raise GeometryError(
                f"masks lie on different grids: {ref_path} has shape {ref.shape}, spacing {ref.spacing}, "
                f"origin {tuple(round(o, 3) for o in ref.origin)}; {pred_path} has shape {pred.shape}, "
                f"spacing {pred.spacing}, origin {tuple(round(o, 3) for o in pred.origin)} ({first.message})",
                where=f"{ref_path} / {pred_path}",
                hint="resample the prediction onto the reference grid first; aimd never resamples silently",
            ) from None


def segment_case(ref_path: str, pred_path: str, labels: list[int] | None) -> dict[int, LabelMetrics]:
    """Metrics per label of one case (a worker-process job: paths in, metrics out)."""
    return segment_case_noted(ref_path, pred_path, labels)[0]


def segment_case_noted(
    ref_path: str, pred_path: str, labels: list[int] | None
) -> tuple[dict[int, LabelMetrics], list[str]]:
    """:func:`segment_case` plus the notes on how the two grids were aligned."""
    rp, pp = Path(ref_path), Path(pred_path)
    notes: list[str] = []
    ref, pred = align_masks(read_mask(rp, labels), read_mask(pp, labels), rp, pp, notes)
    return segmentation_metrics(ref.array, pred.array, ref.spacing[::-1], labels), notes


def labels_present(ref_path: Path, pred_path: Path) -> list[int]:
    """Foreground labels found in either mask."""
    found = set(np.unique(read_mask(ref_path).array)) | set(np.unique(read_mask(pred_path).array))
    return sorted(int(v) for v in found if v)


def case_id(path: Path) -> str:
    """The case name of a mask file: its name without the image suffix."""
    name = path.name
    for suffix in CASE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def case_pairs(ref_dir: Path, pred_dir: Path) -> list[tuple[str, Path, Path]]:
    """``(case, reference, prediction)`` for every case named the same in both folders; an error naming the
    unmatched ones otherwise."""

    def entries(d: Path) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for p in sorted(d.iterdir()):
            if p.name.startswith("."):
                continue
            cid = case_id(p)
            if cid in found:
                raise InvalidInputError(f"two entries for case {cid!r}: {found[cid].name} and {p.name}", where=str(d))
            found[cid] = p
        return found

    refs, preds = entries(ref_dir), entries(pred_dir)
    missing_pred, missing_ref = sorted(set(refs) - set(preds)), sorted(set(preds) - set(refs))
    if missing_pred or missing_ref:
        parts = []
        if missing_pred:
            parts.append(f"no prediction for {missing_pred[:5]}{' …' if len(missing_pred) > 5 else ''}")
        if missing_ref:
            parts.append(f"no reference for {missing_ref[:5]}{' …' if len(missing_ref) > 5 else ''}")
        raise InvalidInputError(
            "case files do not match: " + "; ".join(parts),
            where=f"{ref_dir} / {pred_dir}",
            hint="name each case the same in both folders (e.g. case01.nii.gz)",
        )
    if not refs:
        raise InvalidInputError("folder holds no case files", where=str(ref_dir))
    return [(cid, refs[cid], preds[cid]) for cid in sorted(refs)]


def pool_context() -> multiprocessing.context.BaseContext:
    """Workers start clean (no forked OpenMP or torch thread state): forkserver, else spawn."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def segmentation_batch(
    pairs: Sequence[tuple[str, Path, Path]],
    labels: list[int] | None,
    *,
    workers: int = 0,
    seed: int = 0,
    progress: Callable[[], object] | None = None,
    where: str = "masks",
    ray: str | None = None,
) -> dict[str, Any]:
    """Metrics of every case of ``pairs`` aggregated with bootstrap CIs (``workers`` 0: one per CPU core).

    ``ray``: run each case as a Ray task, ``"local"`` on this machine (``workers`` CPUs) or on the cluster
    at that address; the report is the same as in one process.
    """
    acc = SegmentationAccumulator(labels, seed=seed)
    n_workers = min(len(pairs), workers or os.cpu_count() or 1)
    noted: list[tuple[dict[int, LabelMetrics], list[str]]] = []
    if ray is not None:
        noted = ray_map(
            segment_case_noted,
            [(str(r), str(p), labels) for _, r, p in pairs],
            address=ray,
            num_cpus=workers or None,
            progress=progress,
        )
    elif n_workers > 1:
        with ProcessPoolExecutor(max_workers=n_workers, mp_context=pool_context()) as pool:
            for fut in [pool.submit(segment_case_noted, str(r), str(p), labels) for _, r, p in pairs]:
                noted.append(fut.result())
                if progress is not None:
                    progress()
    else:
        for _, r, p in pairs:
            noted.append(segment_case_noted(str(r), str(p), labels))
            if progress is not None:
                progress()
    results = [r for r, _ in noted]
    notes = [f"{cid}: {n}" for (cid, _, _), (_, case_notes) in zip(pairs, noted, strict=True) for n in case_notes]
    for (cid, _, _), result in zip(pairs, results, strict=True):
        acc.add(cid, result)
    unknown = [v for v in labels or [] if all(res[v].empty == "both" for res in results)]
    if unknown:
        present = labels_present(pairs[0][1], pairs[0][2])
        raise InvalidInputError(
            f"label(s) {unknown} occur in no reference or prediction; labels in {pairs[0][0]}: {present}",
            where=where,
            hint="check --labels",
        )
    report = acc.aggregate()
    report["notes"] = notes
    return report


def segmentation_csv(report: dict[str, Any]) -> str:
    """One CSV row per case and label of a :func:`segmentation_batch` report."""
    import csv
    import io

    buf = io.StringIO()
    fields = ["case", "label", *SEG_COLUMNS, "pixel_accuracy", "conformity", "conformity_classic"]
    fields += ["volume_diff_ml", "tp", "fp", "fn", "empty", "distance_worst_case"]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for case in report["cases"]:
        for label, row in case["labels"].items():
            writer.writerow({"case": case["case"], "label": label, **row})
    return buf.getvalue()


__all__ = [
    "CASE_SUFFIXES",
    "SEG_COLUMNS",
    "align_masks",
    "case_id",
    "case_pairs",
    "labels_present",
    "pool_context",
    "read_mask",
    "segment_case",
    "segment_case_noted",
    "segmentation_batch",
    "segmentation_csv",
]
