"""Level-1 checks of structured clinical fields (001 §8.5.3.2, §8.5.3.4).

* a lab value measured more than ``lab_gap_days`` (90) days from the image acquisition needs the
  time-deviation label; a label where no gap exists is reported too;
* numeric fields state their unit; values outside their normal range are noted (info);
* a numeric value that is not finite or beyond ±1e15 (an age of 10^400) is an error.

Example
-------
>>> import datetime as dt
>>> gap_days(dt.date(2023, 2, 3), dt.datetime(2022, 4, 1, 8, 30))
308
"""

from __future__ import annotations

import datetime as dt
import math

from aimd.annotation.qc.context import QCContext
from aimd.annotation.schema import FieldType
from aimd.core.findings import Finding

__all__ = ["check_structured_fields", "gap_days"]


def _as_date(value: dt.date | dt.datetime) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def gap_days(a: dt.date | dt.datetime, b: dt.date | dt.datetime) -> int:
    """Whole days between two dates or datetimes (calendar dates, absolute)."""
    return abs((_as_date(a) - _as_date(b)).days)


_LIMIT = 1e15


def _plausible(value: float) -> bool:
    """Finite and within ±1e15 (an age of 10^400 parses as inf or as a 400-digit integer)."""
    try:
        return math.isfinite(value) and abs(value) <= _LIMIT
    except OverflowError:
        return False


def _short(value: float) -> str:
    if isinstance(value, int) and abs(value) >= 10**30:
        return f"a {len(str(abs(value)))}-digit integer"
    return str(value)[:40]


def check_structured_fields(ctx: QCContext) -> list[Finding]:
    """Time gaps vs the time-deviation label; units; normal ranges."""
    pkg = ctx.package
    acquired = pkg.image.acquired
    limit = ctx.config.lab_gap_days
    out = []
    if acquired is None and any(f.timestamp for f in pkg.structured_fields):
        out.append(
            ctx.finding(
                "IMAGE_TIME_MISSING",
                "warning",
                "001 §8.5.3.2",
                "fields carry timestamps but image.acquired is not set, so time gaps cannot be checked",
                "set image.acquired from the DICOM acquisition/study date",
            )
        )
    for f in pkg.structured_fields:
        if f.value_type in (FieldType.NUMBER, FieldType.INTEGER) and not f.unit:
            out.append(
                ctx.finding(
                    "FIELD_UNIT_MISSING",
                    "warning",
                    "001 §8.5.3.2",
                    f"numeric field {f.name} has no unit",
                    "state the unit",
                    field=f.id,
                )
            )
        if isinstance(f.value, int | float) and not isinstance(f.value, bool) and not _plausible(f.value):
            out.append(
                ctx.finding(
                    "FIELD_VALUE_OUT_OF_RANGE",
                    "error",
                    "001 §8.5.3.2",
                    f"{f.name} = {_short(f.value)} is not a usable number (not finite, or beyond ±{_LIMIT:.0e})",
                    "correct the value at its source; a measurement is a finite number of plausible size",
                    field=f.id,
                )
            )
            continue
        rng = f.normal_range
        if (
            rng is not None
            and isinstance(f.value, int | float)
            and not isinstance(f.value, bool)
            and ((rng.low is not None and f.value < rng.low) or (rng.high is not None and f.value > rng.high))
        ):
            out.append(
                ctx.finding(
                    "FIELD_OUT_OF_RANGE",
                    "info",
                    "001 §8.5.3.2",
                    f"{f.name} = {f.value} {f.unit or ''} is outside {rng.low}–{rng.high}",
                    field=f.id,
                )
            )
        if acquired is None or f.timestamp is None:
            continue
        days = gap_days(f.timestamp, acquired)
        if days > limit and not f.time_deviation:
            out.append(
                ctx.finding(
                    "CLINICAL_TIME_GAP_UNLABELLED",
                    "error",
                    "001 §8.5.3.4",
                    f"{f.name} was measured {days} days from the image (> {limit}) without the time-deviation label",
                    "set time_deviation: true so training can filter it",
                    field=f.id,
                    days=days,
                )
            )
        elif days > limit:
            out.append(
                ctx.finding(
                    "CLINICAL_TIME_GAP_LABELLED",
                    "info",
                    "001 §8.5.3.4",
                    f"{f.name}: {days} days from the image, labelled as time deviation",
                    field=f.id,
                    days=days,
                )
            )
        elif f.time_deviation:
            out.append(
                ctx.finding(
                    "TIME_DEVIATION_LABEL_UNNEEDED",
                    "warning",
                    "001 §8.5.3.4",
                    f"{f.name} carries the time-deviation label but lies {days} days (<= {limit}) from the image",
                    "remove the label",
                    field=f.id,
                    days=days,
                )
            )
    return out
