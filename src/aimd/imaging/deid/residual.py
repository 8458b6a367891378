"""Residual scan: the independent last line of defence after de-identification (001 §7.3 抽检, §11.2.1).

After the output folder is written, every byte of every output file (DICOM elements of every VR, pixel
data included; text; JSON numbers and strings alike; gzip members and deflated DICOM inflated first) and
every file and folder name is searched for

* every original identifier recorded in the pseudonym map (patient ids and keys, names, accession
  numbers, names and numbers found in text, institutions, original UIDs), in the spellings they take in
  files: any letter case, any spacing, ``^`` or ``=`` separators, reversed name order, each long name part
  alone, pinyin of names written in Chinese characters; each encoded as UTF-8, GB18030 and UTF-16;
* the PHI patterns: 18-digit resident ID numbers (region, birth date, sequence; with a right or a wrong
  check character), mainland mobile numbers, e-mail addresses.

A file with a hit is removed from the output and reported; the run exits 1.

Original identifiers are searched in every byte. The PHI patterns are searched where text can be: not
in NIfTI voxel data and not in a compressed stream (its inflated bytes are searched instead), because
random voxel or compressed bytes spell short patterns such as ``x@ab.cd`` by chance.

Independence. The scanner shares no code with the de-identifier it checks: it imports nothing from the
other modules of :mod:`aimd.imaging.deid`, reads the map's stored originals as plain data, derives its own
variants, matches raw bytes with an Aho–Corasick automaton (``pyahocorasick``) instead of regular
expressions over decoded values, and never parses DICOM: a bug in the de-identifier's parsing, matching or
name spelling cannot hide the same identifier from the scan.

Example
-------
>>> scanner = ResidualScanner({"1209457875": "ID", "宋华": "NAME"})
>>> scanner.scan_bytes("病历号：ANON-1A2B 患者宋华".encode("gb18030"))
['NAME']
>>> scanner.scan_bytes(b"mobile 13812345678")
['PHONE']
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import ahocorasick
import numpy as np

_PLACEHOLDERS = frozenset(
    {
        "",
        "anonymized",
        "anonymised",
        "anonymous",
        "anon",
        "unknown",
        "none",
        "n/a",
        "na",
        "null",
        "test",
        "phantom",
        "不详",
        "未知",
        "匿名",
        "无",
    }
)
_CALENDAR = frozenset(
    {
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    }
)
_MIN_ASCII = 4  # shorter ASCII values ("M", "P1") match everywhere: not searchable
_MIN_PART = 5  # a lone part of a Latin name is searched from this length on
_MIN_UTF16 = 6
_ENCODINGS = ("utf-8", "gb18030", "utf-16-le", "utf-16-be")
_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789")
_DIGITS = frozenset(b"0123456789")
_MAX_INFLATE = 1 << 30
_MOBILE = re.compile(rb"(?<![0-9a-z])(?<![0-9]\.)(?:\+?86[ -]?)?1[3-9][0-9]{9}(?![0-9a-z])(?!\.[0-9])")
_RESIDENT = re.compile(
    rb"(?<![0-9a-z])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
    rb"[0-9]{3}[0-9xX](?![0-9a-zA-Z])"
)
_EMAIL = re.compile(rb"[a-z0-9._%+\-]{1,64}@[a-z0-9\-]{1,63}(?:\.[a-z0-9\-]{1,63})*\.[a-z]{2,10}(?![a-z])")
_MIN_RUN = 11  # both number patterns hold a run of 11 or more digits: they are tried only around such runs
_BEFORE_RUN, _AFTER_RUN = 8, 2  # "+86-" and two lookbehind bytes before a run; two lookahead bytes after
_AT = re.compile(rb"@[a-z0-9\-]")  # an e-mail's "@" with the first character of its domain
_DOMAIN_TAIL = re.compile(rb"[a-z0-9.\-]*")


class ResidualScanner:
    """Search bytes, files and names for original identifiers (``value -> kind``) and PHI patterns.

    Example
    -------
    >>> s = ResidualScanner({"Zhang^Weiqiang=张^伟强": "NAME"})
    >>> s.scan_bytes(b"ZHANG WEIQIANG"), s.scan_bytes("Weiqiang Zhang".encode("utf-16-le"))
    (['NAME'], ['NAME'])
    """

    def __init__(self, originals: dict[str, str]) -> None:
        self._automaton = ahocorasick.Automaton()
        self.too_short: int = 0
        forms: dict[str, str] = {}
        for value, kind in originals.items():
            variants = spellings(value, kind)
            if not variants:
                self.too_short += 1
            for form in variants:
                forms.setdefault(form, kind)
        self.size = len(forms)
        patterns: dict[str, tuple[str, bool, bool]] = {}
        for form, kind in forms.items():
            ascii_form = form.isascii()
            for encoding in _ENCODINGS:
                utf16 = encoding.startswith("utf-16")
                if utf16 and len(form) < _MIN_UTF16:
                    continue
                if not utf16 and encoding == "gb18030" and ascii_form:
                    continue  # same bytes as UTF-8
                try:
                    raw = form.encode(encoding).lower()
                except UnicodeEncodeError:
                    continue
                key = raw.decode("latin-1")
                head, tail = form[0], form[-1]
                patterns.setdefault(
                    key,
                    (
                        kind,
                        not utf16 and head.isascii() and head.isalnum(),
                        not utf16 and tail.isascii() and tail.isalnum(),
                    ),
                )
        for key, value in patterns.items():
            self._automaton.add_word(key, (len(key), *value))
        if patterns:
            self._automaton.make_automaton()
        self._empty = not patterns

    # ------------------------------------------------------------------ matching
    def scan_bytes(self, data: bytes, *, text_end: int | None = None) -> list[str]:
        """Kinds of what is found in ``data`` (identifiers and PHI patterns; sorted, unique).

        PHI patterns are searched in ``data[:text_end]`` only (all of it when ``None``).
        """
        low = data.lower()
        found: set[str] = set()
        if not self._empty:
            text = low.decode("latin-1")
            for end, (length, kind, left, right) in self._automaton.iter(text):
                start = end - length + 1
                if left and not _free_before(low, start):
                    continue
                if right and not _free_after(low, end + 1):
                    continue
                found.add(kind)
        found |= _patterns(low if text_end is None else low[:text_end])
        return sorted(found)

    def scan_name(self, rel: str) -> list[str]:
        """Kinds found in a relative path (every file and folder name in it; ``_ - .`` read as spaces too)."""
        spaced = re.sub(r"[_.\-]+", " ", rel)
        return sorted(set(self.scan_bytes(rel.encode("utf-8"))) | set(self.scan_bytes(spaced.encode("utf-8"))))

    def scan_file(self, path: Path) -> list[str]:
        """Kinds found anywhere in one file: its raw bytes and, for gzip or deflated DICOM, the inflated bytes."""
        data = path.read_bytes()
        hits = set(self.scan_bytes(data, text_end=_text_end(data)))
        for inflated in _inflated(data):
            hits |= set(self.scan_bytes(inflated, text_end=_text_end(inflated)))
        return sorted(hits)


def spellings(value: str, kind: str = "ID") -> list[str]:
    """The spellings of one original value that the scan searches for (case is ignored when matching).

    Example
    -------
    >>> spellings("SIMPSON^HOMER^J^", "NAME")[:4]
    ['SIMPSON^HOMER^J^', 'SIMPSON^HOMER^J', 'SIMPSON HOMER J', 'SIMPSONHOMERJ']
    >>> "Zhang Wei" in spellings("张伟", "NAME")
    True
    """
    value = value.strip()
    if value.lower().strip("^ ") in _PLACEHOLDERS:
        return []
    out: list[str] = []

    def add(form: str) -> None:
        form = form.strip()
        if form and form not in out and _long_enough(form):
            out.append(form)

    add(value)
    add(" ".join(value.split()))
    if kind != "NAME" and kind != "INSTITUTION":
        return out
    for group in value.split("="):
        parts = [p.strip() for p in re.split(r"\^", group) if p.strip()]
        if not parts:
            continue
        add(group.strip("^ "))
        for joined in (
            " ".join(parts),
            "".join(parts),
            "^".join(parts),
            ", ".join(parts),
            " ".join(parts[1:] + parts[:1]),
            "".join(parts[1:] + parts[:1]),
        ):
            add(joined)
        for word in re.split(r"[\s^,.\-]+", group) if kind == "NAME" else []:
            if word.isascii() and len(word) >= _MIN_PART and word.lower() not in _CALENDAR:
                add(word)
        han = "".join(parts)
        if han and all("\u3400" <= ch <= "\u9fff" or ch == "·" for ch in han):
            for form in _pinyin_forms(han, parts):
                add(form)
    return out


def _long_enough(form: str) -> bool:
    if form.isascii():
        return len(form.replace(" ", "")) >= _MIN_ASCII
    return len(form) >= 2


def _pinyin_forms(han: str, parts: list[str]) -> list[str]:
    from pypinyin import Style, lazy_pinyin, pinyin

    compound = len(parts) >= 2 and len(parts[0]) in (1, 2)
    surname_len = len(parts[0]) if compound else (2 if len(han) >= 4 else 1)
    surname_readings = {
        "".join(p).capitalize() for p in _product(pinyin(han[:surname_len], style=Style.NORMAL, heteronym=True))
    }
    given_syllables = lazy_pinyin(han[surname_len:], style=Style.NORMAL)
    given = "".join(given_syllables).capitalize()
    spaced = " ".join(s.capitalize() for s in given_syllables)
    out = []
    for surname in sorted(surname_readings):
        if not given:
            continue
        out += [
            f"{surname} {given}",
            f"{given} {surname}",
            f"{surname}{given}",
            f"{surname} {spaced}",
            f"{surname}^{given}",
            f"{surname}, {given}",
            f"{surname} {'-'.join(given_syllables)}",
        ]
    return out


def _product(readings: list[list[str]]) -> list[list[str]]:
    combos: list[list[str]] = [[]]
    for options in readings:
        combos = [c + [o] for c in combos for o in options[:3]]
    return combos[:6]


def _free_before(data: bytes, start: int) -> bool:
    if start == 0:
        return True
    prev = data[start - 1]
    if prev in _WORD:
        return False
    return not (prev == 0x2E and start >= 2 and data[start - 2] in _DIGITS)  # "…9.<value>" inside a UID


def _free_after(data: bytes, end: int) -> bool:
    if end >= len(data):
        return True
    nxt = data[end]
    if nxt in _WORD:
        return False
    return not (nxt == 0x2E and end + 1 < len(data) and data[end + 1] in _DIGITS)


def _patterns(low: bytes) -> set[str]:
    """PHI patterns in ``low``. The phone and resident-ID patterns are searched in a small window around
    each run of 11+ digits (a match holds such a run; the window keeps its prefix and lookarounds), the
    e-mail pattern around each "@" that a domain follows: the same finds as searching the whole of
    ``low``, without running the patterns over megabytes of pixel data."""
    found = set()
    for start, end in _digit_runs(low):
        window = low[max(0, start - _BEFORE_RUN) : end + _AFTER_RUN]
        if "PHONE" not in found and _MOBILE.search(window):
            found.add("PHONE")
        if "RESIDENT_ID" not in found and _RESIDENT.search(window):  # shape alone: a wrong check
            found.add("RESIDENT_ID")  # character does not make it safe
        if len(found) == 2:
            break
    for at in _AT.finditer(low):  # a match holds one "@", at most 64 bytes after its start
        tail = _DOMAIN_TAIL.match(low, at.start() + 1)
        assert tail is not None  # matches the empty string at least
        if _EMAIL.search(low[max(0, at.start() - 64) : tail.end() + 1]):
            found.add("EMAIL")
            break
    return found


def _digit_runs(low: bytes) -> list[tuple[int, int]]:
    """(start, end) of each run of 11 or more ASCII digits in ``low`` (vectorised: pixel data is long)."""
    if len(low) < _MIN_RUN:
        return []
    digit = (np.frombuffer(low, dtype=np.uint8) - np.uint8(0x30)) < 10  # bytes below "0" wrap round
    edges = np.flatnonzero(np.diff(digit, prepend=False, append=False))
    starts, ends = edges[0::2], edges[1::2]
    keep = ends - starts >= _MIN_RUN
    return list(zip(starts[keep].tolist(), ends[keep].tolist(), strict=True))


def _inflated(data: bytes) -> Iterable[bytes]:
    """Inflated copies of ``data``: each gzip member stream, or a deflated DICOM dataset."""
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
                yield handle.read(_MAX_INFLATE)
        except (OSError, EOFError, zlib.error):
            yield b""
    if data[128:132] == b"DICM" and b"1.2.840.10008.1.2.1.99" in data[132:1024]:
        end = _meta_end(data)
        if end:
            try:
                yield zlib.decompressobj(-15).decompress(data[end:], _MAX_INFLATE)
            except zlib.error:
                yield b""


def _text_end(data: bytes) -> int | None:
    """Where text can stop in ``data``: a gzip header's end, a NIfTI file's voxel offset, else ``None``."""
    if data[:2] == b"\x1f\x8b" and len(data) >= 10:
        flags, end = data[3], 10
        if flags & 4 and len(data) >= 12:  # FEXTRA
            end += 2 + int.from_bytes(data[10:12], "little")
        for bit in (8, 16):  # FNAME, FCOMMENT: zero-terminated text
            if flags & bit:
                stop = data.find(b"\x00", end)
                end = len(data) if stop < 0 else stop + 1
        return end
    for order in ("little", "big"):
        size = int.from_bytes(data[:4], order) if len(data) >= 4 else 0
        if size == 348 and len(data) >= 112:  # NIfTI-1: vox_offset float32 at byte 108
            offset = struct.unpack("<f" if order == "little" else ">f", data[108:112])[0]
        elif size == 540 and len(data) >= 176:  # NIfTI-2: vox_offset int64 at byte 168
            offset = int.from_bytes(data[168:176], order, signed=True)
        else:
            continue
        if offset == offset and 348 <= offset <= len(data):  # a NaN or impossible offset: all text
            return int(offset)
    return None


def _meta_end(data: bytes) -> int:
    """End of the DICOM file meta group (from its group length element), 0 when it cannot be read."""
    if data[132:136] != b"\x02\x00\x00\x00" or len(data) < 144:
        return 0
    return 144 + int.from_bytes(data[140:144], "little")


def originals_from_map(mapping: Any) -> dict[str, str]:
    """Every original value stored in a pseudonym map (read as plain data), with its kind.

    Patient keys and identifiers, the originals of every token (names, numbers, institutions found in
    text or headers) and every original UID.
    """
    out: dict[str, str] = {}
    for patient in mapping.patients.values():
        key = str(patient.key)
        for prefix in ("name:", "study:"):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        out.setdefault(key, "NAME" if str(patient.key).startswith("name:") else "ID")
        for kind, values in patient.identifiers.items():
            for value in values:
                out.setdefault(str(value), str(kind))
    for kind, table in mapping.tokens.items():
        for original in table:
            out.setdefault(str(original), str(kind))
    for original in mapping.uids:
        out.setdefault(str(original), "UID")
    return out


__all__ = ["ResidualScanner", "originals_from_map", "spellings"]
