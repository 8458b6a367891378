"""Write a reproducible multimodal phantom dataset: case folders plus the dataset.json index.

Layout (other modules rely on it)::

    OUT/dataset.json
    OUT/cases/<case_id>/ct/IM00001.dcm ...   CT series (DICOM)
    OUT/cases/<case_id>/ct.nii.gz            CT in HU (NIfTI)
    OUT/cases/<case_id>/labels.nii.gz        label mask, values in dataset.json "label_map"
    OUT/cases/<case_id>/lesions.nii.gz       lesion instance mask (value = lesion "instance")
    OUT/cases/<case_id>/dx.dcm               DRR radiograph (DX DICOM)
    OUT/cases/<case_id>/dx_boxes.json        lung-nodule boxes on the radiograph
    OUT/cases/<case_id>/lesions.json         lesion ground truth
    OUT/cases/<case_id>/report_zh.txt, report_en.txt, report.json
    OUT/cases/<case_id>/clinical.json

The dataset is built in a temporary sibling folder and renamed into place, so an interrupted run
leaves nothing (001 §10.2.3). dataset.json lists every file with its SHA-256 and size (001 §10.1.5)
and a stratified, reproducible train/val/test split. Cases are built in a process pool; each
case's random streams derive from the master seed and the case index, so the output does not
depend on the number of workers.

Example
-------
>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "ph"
>>> index = generate_dataset(out, cases=2, seed=1, size=32, sites=2, workers=1)
>>> [c["id"] for c in index["cases"]], (out / "cases" / "case_0001" / "ct.nii.gz").exists()
(['case_0001', 'case_0002'], True)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from aimd import __version__
from aimd.core.atomic import atomic_dir
from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.core.logging import get_logger
from aimd.phantoms.anatomy import LABEL_CODES, LABEL_MAP
from aimd.phantoms.case import build_case, case_summary, write_case
from aimd.phantoms.files import json_bytes, write_bytes
from aimd.phantoms.lesions import LESION_TYPES
from aimd.phantoms.sites import SiteProfile, site_profiles

FORMAT_VERSION = "1.0"
SPLIT_FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}
MIN_SIZE, MAX_SIZE = 32, 512
_log = get_logger("aimd.phantoms.dataset")


def case_ids(cases: int) -> list[str]:
    """``case_0001`` ... (at least four digits)."""
    width = max(4, len(str(cases)))
    return [f"case_{i + 1:0{width}d}" for i in range(cases)]


def _build_and_write(job: tuple[str, int, int, int, SiteProfile, str]) -> dict[str, Any]:
    case_id, index, seed, size, site, cases_dir = job
    case = build_case(case_id, index, seed=seed, size=size, site=site)
    case_dir = Path(cases_dir) / case_id
    files = write_case(case, case_dir)
    summary = case_summary(case)
    summary["files"] = [
        {
            "path": f"cases/{case_id}/{rel}",
            "sha256": sha256_file(case_dir / rel),
            "bytes": (case_dir / rel).stat().st_size,
        }
        for rel in files
    ]
    return summary


def stratified_split(cases: list[dict[str, Any]], seed: int) -> dict[str, str]:
    """Case id → split. Cases are ordered by (site, lesion stratum, seeded shuffle) and dealt out so
    every prefix of that order — hence every stratum — follows :data:`SPLIT_FRACTIONS` as closely as
    counts allow."""
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(2**31 - 1,)))
    shuffle_key = rng.permutation(len(cases))
    order = sorted(range(len(cases)), key=lambda i: (cases[i]["site"], cases[i]["stratum"], shuffle_key[i]))
    counts = dict.fromkeys(SPLIT_FRACTIONS, 0)
    result: dict[str, str] = {}
    for position, i in enumerate(order, start=1):
        split = max(SPLIT_FRACTIONS, key=lambda s: SPLIT_FRACTIONS[s] * position - counts[s])
        counts[split] += 1
        result[cases[i]["id"]] = split
    return result


def validate_params(cases: int, size: int, sites: int) -> None:
    """Raise :class:`InvalidInputError` for unusable generator parameters."""
    if cases < 1:
        raise InvalidInputError(
            f"cases must be at least 1, got {cases}", where="--cases", hint="pass --cases 1 or more"
        )
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise InvalidInputError(
            f"size must be in [{MIN_SIZE}, {MAX_SIZE}] voxels, got {size}",
            where="--size",
            hint="use --size 128 (default) or another value in range",
        )
    site_profiles(sites)


def generate_dataset(
    out: str | Path,
    *,
    cases: int,
    seed: int = 0,
    size: int = 128,
    sites: int = 3,
    workers: int | None = None,
    force: bool = False,
    progress: Callable[[int], object] | None = None,
    profiles: Sequence[SiteProfile] | None = None,
) -> dict[str, Any]:
    """Generate ``cases`` phantom cases into ``out`` and return the dataset.json index.

    Parameters
    ----------
    out:
        Output folder; must not exist or be empty unless ``force`` (then it is replaced whole).
    cases, seed, size, sites:
        Number of cases, master seed, grid size (``size``³ voxels) and number of sites (1–6).
    workers:
        Processes to use; default ``min(cases, cpu count)``. ``1`` runs in this process.
    progress:
        Called with ``1`` after each finished case (drives the CLI progress bar).
    profiles:
        Site profiles to draw cases from instead of the first ``sites`` of
        :data:`~aimd.phantoms.sites.SITE_PROFILES` (e.g. a site with a shifted HU calibration).

    Example
    -------
    >>> import tempfile, pathlib
    >>> idx = generate_dataset(pathlib.Path(tempfile.mkdtemp()) / "d", cases=1, seed=0, size=32, workers=1)
    >>> idx["label_map"]["5"]
    'lung_nodule'
    """
    validate_params(cases, size, sites)
    out = Path(out)
    profiles = tuple(profiles) if profiles else site_profiles(sites)
    ids = case_ids(cases)
    workers = max(1, min(cases, workers if workers is not None else (os.cpu_count() or 1)))
    with atomic_dir(out, overwrite=force) as tmp:
        cases_dir = tmp / "cases"
        cases_dir.mkdir()
        jobs = [(cid, i, seed, size, profiles[i % len(profiles)], str(cases_dir)) for i, cid in enumerate(ids)]
        summaries: list[dict[str, Any]] = []
        if workers == 1:
            for job in jobs:
                summaries.append(_build_and_write(job))
                if progress:
                    progress(1)
        else:
            pool = ProcessPoolExecutor(max_workers=workers)
            try:
                futures = [pool.submit(_build_and_write, job) for job in jobs]
                for future in as_completed(futures):
                    summaries.append(future.result())
                    if progress:
                        progress(1)
            finally:  # on error or Ctrl-C do not build the remaining cases
                pool.shutdown(wait=True, cancel_futures=True)
        summaries.sort(key=lambda s: s["index"])
        splits = stratified_split(summaries, seed)
        for summary in summaries:
            summary["split"] = splits[summary["id"]]
        index = _index(summaries, seed=seed, cases=cases, size=size, profiles=profiles)
        write_bytes(tmp / "dataset.json", json_bytes(index))
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # the temporary folder was created 0700
        os.sync()
    _log.info("phantom.written", out=str(out), cases=cases, seed=seed, size=size, sites=sites)
    return index


def _index(
    summaries: list[dict[str, Any]], *, seed: int, cases: int, size: int, profiles: tuple[SiteProfile, ...]
) -> dict[str, Any]:
    split_ids = {name: [s["id"] for s in summaries if s["split"] == name] for name in SPLIT_FRACTIONS}
    return {
        "format": "aimd-phantom-dataset",
        "version": FORMAT_VERSION,
        "generator": {
            "module": "aimd.phantoms",
            "aimd_version": __version__,
            "params": {"cases": cases, "seed": seed, "size": size, "sites": len(profiles)},
        },
        "seed": seed,
        "label_map": {str(k): v for k, v in LABEL_MAP.items()},
        "label_codes": {str(k): v for k, v in LABEL_CODES.items()},
        "lesion_types": {
            k: {
                "label": v["label"],
                "organ": v["organ"],
                "en": v["en"],
                "zh": v["zh"],
                "diameter_range_mm": list(v["d_mm"]),
            }
            for k, v in LESION_TYPES.items()
        },
        "lesion_instances": "lesions.nii.gz voxel value = lesions.json 'instance'; 0 = no lesion",
        "sites": [p.to_dict() for p in profiles],
        "split": {"fractions": SPLIT_FRACTIONS, "stratified_by": ["site", "stratum"], "seed": seed, **split_ids},
        "cases": summaries,
    }


__all__ = [
    "FORMAT_VERSION",
    "MAX_SIZE",
    "MIN_SIZE",
    "SPLIT_FRACTIONS",
    "case_ids",
    "generate_dataset",
    "stratified_split",
    "validate_params",
]
