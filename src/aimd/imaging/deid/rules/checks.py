"""The rule record and the value checks the text rules apply to a match (resident ID check digit, name filters)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from aimd.imaging.deid.rules.lexicon import (
    _EN_NOT_NAMES,
    _NOT_GIVEN_START,
    _NOT_NAMES,
    PINYIN_WORD,
    SURNAMES_COMPOUND,
    SURNAMES_SINGLE,
)


def resident_id_checksum_ok(number: str) -> bool:
    """True when an 18-character resident ID has the right ISO 7064 MOD 11-2 check character.

    Example
    -------
    >>> resident_id_checksum_ok("110105194912310021"), resident_id_checksum_ok("110105194912310022")
    (False, False)
    """
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(ch) * (2 ** (17 - i) % 11) for i, ch in enumerate(number[:17]))
    return "10X98765432"[total % 11] == number[17].upper()


@dataclass(frozen=True)
class TextRule:
    """One named detection rule.

    Attributes
    ----------
    name:
        Stable rule name used in the log's per-file counts.
    kind:
        NAME, ID, MRN, PHONE, ADDRESS, EMAIL, DATE or NUMBER.
    pattern:
        The regular expression; the identifier is its ``value`` group (or the whole match for dates).
    priority:
        Lower wins where two rules overlap.
    check:
        Optional test of the value; a match whose value fails it is ignored.
    """

    name: str
    kind: str
    description: str
    pattern: re.Pattern[str]
    priority: int
    check: Callable[[str], bool] | None = None

    @property
    def replacement(self) -> str:
        """How values of this rule are replaced (``pseudonym``, ``placeholder`` or ``shifted date``)."""
        return {
            "NAME": "pseudonym",
            "ID": "pseudonym",
            "MRN": "pseudonym",
            "INSTITUTION": "pseudonym",
            "DATE": "shifted date",
        }.get(self.kind, "placeholder")


def _zh_name_ok(value: str) -> bool:
    if value in _NOT_NAMES or any(value.startswith(w) for w in _NOT_NAMES if len(w) >= 2):
        return False
    if value[:1].isascii():
        return value.split()[0].strip(".,^").lower() not in _EN_NOT_NAMES
    for compound in SURNAMES_COMPOUND:
        if value.startswith(compound):
            return len(value) > 2 and value[2] not in _NOT_GIVEN_START
    return len(value) >= 2 and value[1] not in _NOT_GIVEN_START


def _labelled_name_ok(value: str) -> bool:
    return value not in _NOT_NAMES and value.split()[0].strip(".,^").lower() not in _EN_NOT_NAMES


def _en_name_ok(value: str) -> bool:
    return value.split()[0].strip(".,^").lower() not in _EN_NOT_NAMES


def _pinyin_name_ok(value: str) -> bool:
    """Two or three capitalised words, each made of pinyin syllables, one of them a common surname."""
    words = [w for w in re.split(r"[ \t\-]+", value) if w]
    if not 2 <= len(words) <= 3 or not all(PINYIN_WORD.fullmatch(w) for w in words):
        return False
    surnames = pinyin_surnames()
    return words[0].lower() in surnames or words[-1].lower() in surnames


@lru_cache(maxsize=1)
def pinyin_surnames() -> frozenset[str]:
    """Pinyin of the common surnames (single and compound) of :data:`SURNAMES_SINGLE`/`SURNAMES_COMPOUND`."""
    from pypinyin import Style, lazy_pinyin

    single = {lazy_pinyin(ch, style=Style.NORMAL)[0].replace("ü", "v") for ch in SURNAMES_SINGLE}
    compound = {"".join(lazy_pinyin(name, style=Style.NORMAL)) for name in SURNAMES_COMPOUND}
    return frozenset(single | compound)


def _record_ok(value: str) -> bool:
    return len(value) >= 2 or value.isdigit()


def _resident_ok(value: str) -> bool:
    return resident_id_checksum_ok(value)


def _resident_bad(value: str) -> bool:
    return not resident_id_checksum_ok(value)


def _address_ok(value: str) -> bool:
    return len(value) >= 4 and value not in _NOT_NAMES and not value.startswith(("不详", "未知"))


def _c(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


_RESIDENT = (
    r"(?<![0-9A-Za-z])(?P<value>[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
    r"(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx])(?![0-9A-Za-z])"
)
_RECORD_VALUE = r"(?P<value>[A-Za-z0-9][A-Za-z0-9\-_/]{0,30})"
