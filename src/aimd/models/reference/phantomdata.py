"""Phantom cases for the reference devices, built in memory from the generator (no files written).

Training uses the sites listed in :data:`TRAIN_SITES`; every reported metric is measured on
:data:`HELD_OUT_SITES`, whose scanners, noise levels, HU offsets and radiograph photon counts the
models never see. Each set is fixed by its master seed, grid size, sites and case count, and its
arrays are hashed (:func:`data_sha256`) so a run record names exactly the data it used.

Example
-------
>>> cases = build_cases(seed=5, count=2, size=32, sites=("SITE_D",))
>>> [c.site.site_id for c in cases], len(data_sha256(cases))
(['SITE_D', 'SITE_D'], 64)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from aimd.core.errors import InvalidInputError
from aimd.phantoms.case import PhantomCase, build_case
from aimd.phantoms.sites import SITE_PROFILES

TRAIN_SITES = ("SITE_A", "SITE_B", "SITE_C", "SITE_E")
HELD_OUT_SITES = ("SITE_D", "SITE_F")
_PROFILES = {s.site_id: s for s in SITE_PROFILES}


def build_cases(*, seed: int, count: int, size: int, sites: Sequence[str]) -> list[PhantomCase]:
    """``count`` phantom cases of master ``seed`` on a ``size``³ grid, sites taken in turn."""
    unknown = [s for s in sites if s not in _PROFILES]
    if unknown or not sites:
        raise InvalidInputError(
            f"unknown site(s) {unknown or list(sites)}", where="sites", hint=f"use some of {sorted(_PROFILES)}"
        )
    if count < 1:
        raise InvalidInputError(f"need at least one case, got {count}", where="count", hint="pass count >= 1")
    return [
        build_case(f"case_{i + 1:04d}", i, seed=seed, size=size, site=_PROFILES[sites[i % len(sites)]])
        for i in range(count)
    ]


def data_sha256(cases: Sequence[PhantomCase]) -> str:
    """SHA-256 over every case's id, site, spacing, CT, labels, lesion instances and radiograph."""
    h = hashlib.sha256()
    for c in cases:
        h.update(f"{c.case_id}|{c.site.site_id}|{c.grid.spacing}|{c.seed}|".encode())
        for arr in (c.ct, c.labels, c.instances, c.drr.image):
            h.update(str(arr.shape).encode())
            h.update(arr.tobytes())
    return h.hexdigest()


def data_settings(*, seed: int, count: int, size: int, sites: Sequence[str]) -> dict[str, object]:
    """The generator settings of a set, as stored in run records."""
    return {
        "generator": "aimd.phantoms.case.build_case",
        "seed": seed,
        "cases": count,
        "size": size,
        "sites": list(sites),
    }


__all__ = ["HELD_OUT_SITES", "TRAIN_SITES", "build_cases", "data_settings", "data_sha256"]
