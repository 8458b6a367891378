"""Benchmarks gate before they boast: values are compared with the peer's first.

:func:`check_values` compares each named value with the peer's within a stated tolerance. When any
differs beyond it, the benchmark prints ``VALUES DIFFER`` with every offending value and exits 1 —
it never prints a speed-up for results that do not agree.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping


def check_values(what: str, ours: Mapping[str, float], peer: Mapping[str, float], tolerance: float) -> float:
    """Largest absolute difference of ``ours`` from ``peer`` over their common keys; exit 1 beyond ``tolerance``."""
    keys = sorted(set(ours) & set(peer))
    if not keys:
        print(f"VALUES DIFFER: {what}: nothing to compare")
        sys.exit(1)
    diffs = {k: abs(float(ours[k]) - float(peer[k])) for k in keys}
    bad = {k: d for k, d in diffs.items() if not d <= tolerance}
    if bad:
        print(f"VALUES DIFFER: {what} (tolerance {tolerance:g})")
        for k, d in sorted(bad.items()):
            print(f"  {k}: aimd {ours[k]!r} vs peer {peer[k]!r} (difference {d:.3g})")
        print("no speed-up is reported for results that do not agree")
        sys.exit(1)
    return max(diffs.values())


__all__ = ["check_values"]
