"""Date shifting by whole days, for DICOM DA/DT values and dates written in report text (001 §7.3).

Shifting every date of one patient by the same number of days keeps each interval (follow-up time,
lab-to-scan delay) exact while hiding the calendar dates. Times of day are left unchanged.

Example
-------
>>> shift_da("20230305", -10)
'20230223'
>>> shift_dt("20230305143000.25+0800", 30)
'20230404143000.25+0800'
"""

from __future__ import annotations

import datetime as _dt

MIN_YEAR = 1900
MAX_YEAR = 2099


def valid_date(year: int, month: int, day: int) -> _dt.date | None:
    """A ``date`` when the parts form a real calendar date within 1900–2099, else ``None``.

    Example
    -------
    >>> valid_date(2023, 2, 29) is None
    True
    """
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None
    try:
        return _dt.date(year, month, day)
    except ValueError:
        return None


def shift(day: _dt.date, days: int) -> _dt.date:
    """``day`` moved by ``days`` days.

    Example
    -------
    >>> shift(_dt.date(2024, 2, 28), 2)
    datetime.date(2024, 3, 1)
    """
    return day + _dt.timedelta(days=days)


def shift_da(value: str, days: int) -> str | None:
    """Shift one DICOM DA value (``YYYYMMDD``; the old ``YYYY.MM.DD`` form is read too).

    Returns ``None`` when ``value`` is not a valid date (the caller then removes it).

    Example
    -------
    >>> shift_da("2023.03.05", 1)
    '20230306'
    >>> shift_da("2023-13-01", 1) is None
    True
    """
    text = value.strip().replace(".", "")
    if len(text) != 8 or not text.isdigit():
        return None
    day = valid_date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    return None if day is None else shift(day, days).strftime("%Y%m%d")


def shift_dt(value: str, days: int) -> str | None:
    """Shift the date part of one DICOM DT value, keeping its time, fraction and UTC offset.

    Partial precision is kept: ``YYYY`` and ``YYYYMM`` are shifted through the middle of the period.

    Example
    -------
    >>> shift_dt("202303", 40)
    '202304'
    """
    text = value.strip()
    suffix = ""
    for sign in ("+", "-"):
        pos = text.find(sign, 4)
        if pos > 0:
            text, suffix = text[:pos], text[pos:]
            break
    head = text[:8]
    if not head.isdigit() or len(head) < 4:
        return None
    if len(head) >= 8:
        shifted = shift_da(head, days)
        return None if shifted is None else shifted + text[8:] + suffix
    if len(head) == 6:
        base = valid_date(int(head[:4]), int(head[4:6]), 15)
        return None if base is None else shift(base, days).strftime("%Y%m") + suffix
    if len(head) == 4:
        base = valid_date(int(head), 7, 1)
        return None if base is None else shift(base, days).strftime("%Y") + suffix
    return None


__all__ = ["shift", "shift_da", "shift_dt", "valid_date"]
