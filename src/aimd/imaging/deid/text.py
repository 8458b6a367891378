"""De-identify free text (reports, JSON strings) and keep character spans aligned (001 §7.3, §11.2.2).

:class:`TextDeidentifier` runs every rule of :mod:`aimd.imaging.deid.rules` plus two dynamic rules —
``known_identifier`` (originals already in the map: DICOM patient names/ids, accession numbers, names and
numbers found in other files) and ``dicom_uid`` (UIDs remapped like in the DICOM files) — resolves
overlaps by rule priority, and returns the new text with the list of replacements. Every further
occurrence of a name or number a rule found is replaced too (rule ``repeat_of_found_identifier``).

:func:`remap_span` moves a ``[start, end)`` character span of the original text onto the new text.

Example
-------
>>> d = TextDeidentifier(date_offset_days=10)
>>> d.deidentify("患者姓名：张伟，2023年3月5日 CT 示右肺上叶结节 12 mm。").text
'患者姓名：[NAME]，2023年3月15日 CT 示右肺上叶结节 12 mm。'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from aimd.imaging.deid.dates import shift, valid_date
from aimd.imaging.deid.index import build_lookup, long_enough
from aimd.imaging.deid.mapping import DeidMap, is_identifying
from aimd.imaging.deid.rules import MONTH_NAMES, TEXT_RULES, UID_PATTERN, TextRule

_TOKEN_KINDS = ("NAME", "ID", "MRN", "INSTITUTION")
_STANDARD_UID_ROOT = "1.2.840.10008."
_PLAIN = re.compile(r"[^0-9A-Z\u3400-\u9fff@]*")
_PADDED_RULES = frozenset({"date_iso", "date_compact", "date_slash_mdy", "date_dotted_dmy"})


@dataclass(frozen=True)
class Replacement:
    """One replaced piece of text: original ``[start, end)``, the new text and the rule that fired."""

    start: int
    end: int
    text: str
    rule: str
    kind: str
    original: str = field(repr=False, default="")


@dataclass
class TextResult:
    """The de-identified text and the replacements made (sorted by position)."""

    text: str
    replacements: list[Replacement]

    @property
    def counts(self) -> dict[str, int]:
        """Replacements per rule name (what the log records; never the replaced values)."""
        return dict(sorted(Counter(r.rule for r in self.replacements).items()))

    @property
    def changed(self) -> bool:
        return bool(self.replacements)


@dataclass(frozen=True)
class SpanMapping:
    """A span moved onto the new text; ``overlaps`` when it touched replaced text."""

    start: int
    end: int
    overlaps: bool


@dataclass(frozen=True)
class _Candidate:
    priority: int
    start: int
    end: int
    rule: str
    kind: str
    value: str
    text: str


class TextDeidentifier:
    """Find and replace identifiers in text for one patient context.

    Parameters
    ----------
    mapping:
        The pseudonym map; names and numbers get keyed tokens from it, UIDs its remapped values.
        Without a map, values are replaced by bare typed placeholders (``[NAME]``, ``[ID]`` ...).
    date_offset_days:
        The patient's date shift.
    known:
        ``(original, replacement, kind)`` triples to replace wherever they occur; by default all known
        identifiers of ``mapping``.
    rules:
        The detection rules (default :data:`aimd.imaging.deid.rules.TEXT_RULES`).
    shift_dates:
        Shift dates (default); ``False`` replaces them by ``[DATE]`` (when DICOM dates are removed too).

    Example
    -------
    >>> m = DeidMap.new("k")
    >>> out = TextDeidentifier(m, date_offset_days=-3).deidentify("Patient: John Smith, DOB 1960-01-05")
    >>> out.text.startswith("Patient: [NAME-") and out.text.endswith("1960-01-02")
    True
    """

    def __init__(
        self,
        mapping: DeidMap | None = None,
        *,
        date_offset_days: int = 0,
        known: Sequence[tuple[str, str, str]] | None = None,
        rules: Sequence[TextRule] = TEXT_RULES,
        shift_dates: bool = True,
    ) -> None:
        self.mapping = mapping
        self.offset = date_offset_days
        self.shift_dates = shift_dates
        self.rules = tuple(rules)
        if known is None and mapping is not None:
            self._known, self._known_index = mapping.known_lookup()
        else:
            self._known, self._known_index = build_lookup([k for k in known or [] if is_identifying(k[0])])

    # ------------------------------------------------------------------ public
    def deidentify(self, text: str) -> TextResult:
        """Replace every identifier found in ``text``."""
        found = self.find(text)
        pieces: list[str] = []
        pos = 0
        for r in found:
            pieces.append(text[pos : r.start])
            pieces.append(r.text)
            pos = r.end
        pieces.append(text[pos:])
        return TextResult("".join(pieces), found)

    def find(self, text: str) -> list[Replacement]:
        """The non-overlapping replacements for ``text``, sorted by position."""
        candidates = self._candidates(text)
        accepted = _select(candidates)
        echoes = self._echo_candidates(text, accepted)
        if echoes:
            accepted = _select(accepted + echoes, keep_first=len(accepted))
        return [
            Replacement(c.start, c.end, c.text, c.rule, c.kind, c.value)
            for c in sorted(accepted, key=lambda c: c.start)
        ]

    # ------------------------------------------------------------------ candidates
    def _candidates(self, text: str) -> list[_Candidate]:
        out: list[_Candidate] = []
        for start, end, found in self._known_index.finditer(text):
            repl, kind = self._lookup(found) or ("[REDACTED]", "ID")
            out.append(_Candidate(0, start, end, "known_identifier", kind, found, repl))
        for m in UID_PATTERN.finditer(text):
            value = m.group("value")
            if self._remap_uid(value):
                new = self.mapping.uid(value) if self.mapping is not None else "[UID]"
                out.append(_Candidate(5, m.start("value"), m.end("value"), "dicom_uid", "UID", value, new))
        if _PLAIN.fullmatch(text):  # no digit, capital, CJK or @: no rule below can match
            return out
        years: list[tuple[int, int]] | None = None
        for rule in self.rules:
            for m in rule.pattern.finditer(text):
                has_value = "value" in rule.pattern.groupindex
                start, end = (m.start("value"), m.end("value")) if has_value else (m.start(), m.end())
                if start == end:
                    continue
                value = text[start:end].rstrip() if has_value else m.group(0)
                end = start + len(value)
                if rule.check is not None and not rule.check(value):
                    continue
                if rule.kind == "DATE" and not self.shift_dates:
                    new = "[DATE]"
                elif rule.kind == "DATE":
                    if years is None and "y" not in m.groupdict():
                        years = self._year_marks(text)
                    rendered = _render_date(
                        m, self.offset, _ref_year(years or [], m.start()), padded_format=rule.name in _PADDED_RULES
                    )
                    if rendered is None:
                        continue
                    new = rendered
                else:
                    new = self.replacement_for(rule.kind, value)
                out.append(_Candidate(rule.priority, start, end, rule.name, rule.kind, value, new))
        return out

    def _echo_candidates(self, text: str, accepted: list[_Candidate]) -> list[_Candidate]:
        values = {c.value: c for c in accepted if c.kind in _TOKEN_KINDS and c.rule != "known_identifier"}
        pattern = identifier_pattern([v for v in values if long_enough(v)])
        if pattern is None:
            return []
        by_fold = {v.casefold(): c for v, c in values.items()}
        out = []
        for m in pattern.finditer(text):
            source = by_fold.get(m.group(0).casefold())
            if source is not None:
                out.append(
                    _Candidate(
                        95, m.start(), m.end(), "repeat_of_found_identifier", source.kind, m.group(0), source.text
                    )
                )
        return out

    def replacement_for(self, kind: str, value: str) -> str:
        """The replacement of ``value`` of ``kind``: known pseudonym, keyed token or typed placeholder."""
        hit = self._lookup(value)
        if hit is not None and kind in _TOKEN_KINDS:
            return hit[0]
        if kind in _TOKEN_KINDS and self.mapping is not None:
            return self.mapping.token(kind, value)
        return f"[{kind}]"

    def _lookup(self, value: str) -> tuple[str, str] | None:
        return self._known.get(" ".join(value.split()).casefold()) or self._known.get(value.casefold())

    def _remap_uid(self, value: str) -> bool:
        if value.startswith(_STANDARD_UID_ROOT):
            return False
        if self.mapping is not None and value in self.mapping.uids:
            return True
        return len(value) >= 20 and (value.count(".") >= 5 or value.startswith("2.25."))

    def _year_marks(self, text: str) -> list[tuple[int, int]]:
        marks = []
        for rule in self.rules:
            if rule.kind == "DATE" and "y" in rule.pattern.groupindex:
                marks += [(m.start(), int(m.group("y"))) for m in rule.pattern.finditer(text)]
        return sorted(marks)


def remap_span(start: int, end: int, replacements: Sequence[Replacement]) -> SpanMapping:
    """Move the span ``[start, end)`` of the original text onto the de-identified text.

    A span clear of every replacement keeps exactly its text. A span that overlaps a replacement is
    stretched to cover the whole replacement and flagged ``overlaps=True``.

    Example
    -------
    >>> r = [Replacement(0, 2, "[NAME-1a2b3c]", "zh_name_labelled", "NAME")]
    >>> remap_span(3, 7, r)
    SpanMapping(start=14, end=18, overlaps=False)
    """
    delta_start = delta_end = 0
    new_start: int | None = None
    new_end: int | None = None
    overlaps = False
    for r in sorted(replacements, key=lambda r: r.start):
        grow = len(r.text) - (r.end - r.start)
        if r.start < end and r.end > start:
            overlaps = True
        if new_start is None:
            if r.end <= start:
                delta_start += grow
            elif r.start < start:
                new_start = r.start + delta_start
            else:
                new_start = start + delta_start
        if new_end is None:
            if r.end <= end:
                delta_end += grow
            elif r.start < end:
                new_end = r.start + delta_end + len(r.text)
            else:
                new_end = end + delta_end
    return SpanMapping(
        new_start if new_start is not None else start + delta_start,
        new_end if new_end is not None else end + delta_end,
        overlaps,
    )


# ---------------------------------------------------------------------- helpers
def _select(candidates: list[_Candidate], keep_first: int = 0) -> list[_Candidate]:
    """Accept candidates by (priority, start, longest); the first ``keep_first`` are already accepted."""
    accepted = list(candidates[:keep_first])
    rest = sorted(candidates[keep_first:], key=lambda c: (c.priority, c.start, c.start - c.end))
    for c in rest:
        if all(c.end <= a.start or c.start >= a.end for a in accepted):
            accepted.append(c)
    return accepted


def identifier_pattern(values: Sequence[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern matching any of ``values`` (longest first, whitespace-tolerant).

    Values starting or ending with a letter/digit only match at word/number boundaries.

    Example
    -------
    >>> identifier_pattern(["P0012"]).findall("P0012 P00123 p0012")
    ['P0012', 'p0012']
    """
    parts = []
    for value in sorted({v.strip() for v in values if v.strip()}, key=lambda v: (-len(v), v)):
        body = r"\s+".join(re.escape(p) for p in value.split())
        if value[0].isascii() and value[0].isalnum():
            body = r"(?<![A-Za-z0-9])(?<!\d\.)" + body
        if value[-1].isascii() and value[-1].isalnum():
            body += r"(?![A-Za-z0-9]|\.\d)"
        parts.append(body)
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def _ref_year(marks: list[tuple[int, int]], pos: int) -> int:
    year = 2001
    for start, y in marks:
        if start >= pos:
            break
        year = y
    return year


def _month_index(name: str) -> int:
    key = name[:3].lower()
    return next(i for i, full in enumerate(MONTH_NAMES, 1) if full[:3].lower() == key)


def _ordinal(day: int) -> str:
    if 11 <= day % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _render_date(m: re.Match[str], offset: int, ref_year: int, *, padded_format: bool = False) -> str | None:
    """The matched date shifted by ``offset`` days, written in the matched format.

    Month and day are zero-padded when the original was (a field starting with 0, or a numeric format
    whose month and day both have two digits).
    """
    groups = {k: v for k, v in m.groupdict().items() if v is not None}
    fields = [groups[g] for g in ("m", "d", "a", "b") if g in groups]
    pad = any(len(f) == 2 and f.startswith("0") for f in fields) or (
        padded_format and bool(fields) and all(len(f) == 2 for f in fields)
    )
    year = int(groups["y"]) if "y" in groups else ref_year
    day_part = 15
    if "mon" in groups:
        month = _month_index(groups["mon"])
    elif "a" in groups:
        a, b = int(groups["a"]), int(groups["b"])
        month, day_part = (b, a) if a > 12 else (a, b)
    else:
        month = int(groups["m"])
    if "d" in groups:
        day_part = int(groups["d"])
    base = valid_date(year, month, day_part)
    if base is None:
        return None
    new = shift(base, offset)
    values: dict[str, str] = {}
    if "y" in groups:
        values["y"] = f"{new.year:04d}"
    if "m" in groups:
        values["m"] = _pad(new.month, pad)
    if "d" in groups:
        values["d"] = _pad(new.day, pad)
    if "mon" in groups:
        full = MONTH_NAMES[new.month - 1]
        mon = groups["mon"].lower()
        spelled_out = mon == "may" or (len(mon) > 3 and mon != "sept")
        values["mon"] = full if spelled_out else full[:3]
    if "ord" in groups:
        values["ord"] = _ordinal(new.day)
    if "a" in groups:
        first, second = (new.day, new.month) if int(groups["a"]) > 12 else (new.month, new.day)
        values["a"], values["b"] = _pad(first, pad), _pad(second, pad)
    text = m.group(0)
    base_pos = m.start()
    for name in sorted(values, key=lambda g: m.start(g), reverse=True):
        s, e = m.start(name) - base_pos, m.end(name) - base_pos
        text = text[:s] + values[name] + text[e:]
    return text


def _pad(value: int, pad: bool) -> str:
    return f"{value:02d}" if pad else str(value)


__all__ = ["Replacement", "SpanMapping", "TextDeidentifier", "TextResult", "identifier_pattern", "remap_span"]
