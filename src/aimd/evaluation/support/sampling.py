"""Sampling of evaluation items: evenly spaced subsets and case-disjoint halves.

Example
-------
>>> split_by_case(["a", "a", "b", "c"])
(array([0, 1]), array([2, 3]))
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from aimd.evaluation.context import EvalData


def sample_evenly(data: EvalData, count: int) -> EvalData:
    """At most ``count`` items of ``data``, evenly spaced over its (case-ordered) items.

    Example
    -------
    >>> d = EvalData(np.zeros((10, 1, 2, 2), np.float32), np.zeros((10, 2, 2), np.int64), ["a"] * 5 + ["b"] * 5,
    ...              {}, task="segmentation")
    >>> sample_evenly(d, 4).case_ids
    ['a', 'a', 'b', 'b']
    """
    if len(data) <= count:
        return data
    idx = np.unique(np.linspace(0, len(data) - 1, count).round().astype(np.int64))
    return data.subset(idx)


def split_by_case(case_ids: list[str]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Item indices of the first half of the cases and of the rest (cases never straddle)."""
    cases = list(dict.fromkeys(case_ids))
    first = set(cases[: max(1, len(cases) // 2)])
    owners = np.asarray(case_ids)
    mask = np.isin(owners, list(first))
    return np.flatnonzero(mask), np.flatnonzero(~mask)


__all__ = ["sample_evenly", "split_by_case"]
