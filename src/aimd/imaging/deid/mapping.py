"""The pseudonym map: secret salt, patients, date offsets, UIDs and tokens (001 §7.3, §11.2.1–11.2.2).

Every replacement aimd makes is a keyed function (HMAC-SHA256) of the original value and a secret salt.
The salt lives only in the map file, so

* the same map gives the same pseudonyms, UIDs and date offsets on every run (re-runs and later
  batches stay consistent), and
* without the map nobody can recompute or reverse a pseudonym, even for a guessed name.

The map also records every original ↔ pseudonym pair (patient ids, names, accession numbers, UIDs,
tokens of names/numbers found in text) and the per-patient date offset, so the custodian can re-link
data under the access rules stated in the file. It must be stored apart from the de-identified output
(001 §11.2.1); each run that uses it is appended to its ``runs`` list (the audit of 001 §7.3).

Example
-------
>>> m = DeidMap.new(salt="s3cret")
>>> p = m.patient("P000123", max_shift_days=365)
>>> p.pseudonym.startswith("ANON-") and 1 <= abs(p.date_offset_days) <= 365
True
>>> m.uid("1.2.3.4.5") == DeidMap.new(salt="s3cret").uid("1.2.3.4.5")
True
"""

from __future__ import annotations

import datetime as _dt
import getpass
import hashlib
import hmac
import json
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimd.core.atomic import atomic_write_json
from aimd.core.errors import InvalidInputError, SchemaError
from aimd.core.ids import deterministic_uid
from aimd.imaging.deid.index import IdentifierIndex, build_lookup

MAP_FORMAT = "aimd-deid-map/1"
ACCESS_POLICY = (
    "This file holds original patient identifiers and the secret salt of the pseudonyms. "
    "Store it apart from the de-identified output (001 §11.2.1), readable only by the data custodian "
    "(file mode 0600). Re-linking a pseudonym to a person is allowed only for the purposes approved by the "
    "data controller; every run that reads or extends this file is recorded in 'runs' (001 §7.3, §11.2.2)."
)
# Values that identify nobody: never treated as identifiers to search for or to tokenise.
NON_IDENTIFYING = frozenset(
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


def is_identifying(value: str) -> bool:
    """False for empty or placeholder values such as ``ANONYMIZED`` or ``未知``.

    Example
    -------
    >>> is_identifying("Anonymous"), is_identifying("Zhang^Wei")
    (False, True)
    """
    return value.strip().strip("^ ").lower() not in NON_IDENTIFYING


@dataclass
class PatientEntry:
    """One patient in the map: original key, pseudonym, date offset and known original identifiers."""

    key: str
    pseudonym: str
    date_offset_days: int
    identifiers: dict[str, list[str]] = field(default_factory=dict)
    revision: int = field(default=0, repr=False, compare=False)

    @property
    def person_name(self) -> str:
        """The pseudonym as a DICOM person name: family name ``ANON``, given name the keyed hash."""
        return "ANON^" + self.pseudonym.removeprefix("ANON-")

    def add(self, kind: str, value: str) -> None:
        """Remember an original identifier of this patient (``kind``: NAME, ID, ACCESSION ...)."""
        value = value.strip()
        if value and is_identifying(value):
            values = self.identifiers.setdefault(kind, [])
            if value not in values:
                values.append(value)
                self.revision += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "original_key": self.key,
            "date_offset_days": self.date_offset_days,
            "identifiers": {k: sorted(v) for k, v in sorted(self.identifiers.items())},
        }


class DeidMap:
    """Keyed pseudonyms and the record of every original ↔ pseudonym pair.

    Use :meth:`open` to load an existing map or start a new one, :meth:`save` to write it atomically.
    """

    def __init__(self, salt: str, *, map_id: str | None = None, created: str | None = None) -> None:
        if not salt:
            raise InvalidInputError(
                "the de-identification salt is empty",
                where="--salt",
                hint="pass a long random secret or omit --salt to generate one",
            )
        self.salt = salt
        self._key = salt.encode("utf-8")
        self.map_id = map_id or secrets.token_hex(8)
        self.created = created or _now()
        self.patients: dict[str, PatientEntry] = {}
        self.uids: dict[str, str] = {}
        self.tokens: dict[str, dict[str, str]] = {}
        self.runs: list[dict[str, Any]] = []
        self.dataset_offset_days: int | None = None
        self._by_pseudonym: dict[str, str] = {}
        self._used_tokens: set[str] = set()
        self._lookup_cache: tuple[tuple[int, int, int], tuple[Any, IdentifierIndex]] | None = None

    # ------------------------------------------------------------------ construction and storage
    @classmethod
    def new(cls, salt: str | None = None) -> DeidMap:
        """A fresh map; a random 256-bit salt unless ``salt`` is given."""
        return cls(salt or secrets.token_hex(32))

    @classmethod
    def open(cls, path: str | Path, salt: str | None = None) -> DeidMap:
        """Load ``path`` if it exists (``salt`` must then match or be ``None``), else start a new map.

        Example
        -------
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "map.json"
        >>> m = DeidMap.open(p, salt="k"); m.save(p)
        >>> DeidMap.open(p).salt
        'k'
        """
        path = Path(path)
        if not path.exists():
            return cls.new(salt)
        loaded = cls.load(path)
        if salt is not None and not hmac.compare_digest(salt, loaded.salt):
            raise InvalidInputError(
                "--salt differs from the salt stored in the map",
                where=str(path),
                hint="omit --salt to reuse the map's salt, or use a new map file",
            )
        return loaded

    @classmethod
    def load(cls, path: str | Path) -> DeidMap:
        """Read a map written by :meth:`save`; a malformed file is a :class:`SchemaError`."""
        path = Path(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise SchemaError(
                f"cannot read the de-identification map: {err}",
                where=str(path),
                hint="pass the map file written by an earlier 'aimd data deid' run",
            ) from None
        if not isinstance(doc, dict) or doc.get("format") != MAP_FORMAT:
            raise SchemaError(
                f"not an aimd de-identification map (format {MAP_FORMAT!r} expected)",
                where=str(path),
                hint="pass a map written by 'aimd data deid' or a new path",
            )
        try:
            m = cls(str(doc["salt"]), map_id=str(doc["map_id"]), created=str(doc["created"]))
            for pseudonym, entry in doc.get("patients", {}).items():
                patient = PatientEntry(
                    str(entry["original_key"]),
                    pseudonym,
                    int(entry["date_offset_days"]),
                    {k: list(v) for k, v in entry.get("identifiers", {}).items()},
                )
                m._register_patient(patient)
            m.uids = {str(k): str(v) for k, v in doc.get("uids", {}).items()}
            m.tokens = {
                kind: {str(k): str(v) for k, v in table.items()} for kind, table in doc.get("tokens", {}).items()
            }
            m._used_tokens = {t for table in m.tokens.values() for t in table.values()}
            m.runs = list(doc.get("runs", []))
            offset = doc.get("dataset_date_offset_days")
            m.dataset_offset_days = None if offset is None else int(offset)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise SchemaError(
                f"de-identification map is malformed ({type(err).__name__}: {err})",
                where=str(path),
                hint="restore the map from its backup",
            ) from None
        return m

    def to_json(self) -> dict[str, Any]:
        """The whole map as a JSON-ready dict (contains the salt and original identifiers)."""
        return {
            "format": MAP_FORMAT,
            "aimd_deid_map": True,
            "access_policy": ACCESS_POLICY,
            "map_id": self.map_id,
            "created": self.created,
            "salt": self.salt,
            "patients": {p.pseudonym: p.to_json() for p in sorted(self.patients.values(), key=lambda p: p.pseudonym)},
            "uids": dict(sorted(self.uids.items())),
            "tokens": {k: dict(sorted(v.items())) for k, v in sorted(self.tokens.items())},
            "dataset_date_offset_days": self.dataset_offset_days,
            "runs": self.runs,
        }

    def save(self, path: str | Path) -> None:
        """Write the map atomically; the file is created with mode 0600 (owner only)."""
        atomic_write_json(path, self.to_json())
        Path(path).chmod(0o600)

    def record_run(self, **details: Any) -> None:
        """Append an audit record of one run (time, user, host and the caller's details)."""
        self.runs.append({"time": _now(), "user": _user(), "host": socket.gethostname(), **details})

    # ------------------------------------------------------------------ keyed derivations
    def keyed_hex(self, *parts: str) -> str:
        """HMAC-SHA256 of ``parts`` under the salt, as hex.

        Example
        -------
        >>> DeidMap.new("k").keyed_hex("a") == DeidMap.new("k").keyed_hex("a")
        True
        """
        return hmac.new(self._key, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()

    def uid(self, original: str) -> str:
        """The replacement of one DICOM UID: same original, same new UID (a valid ``2.25.`` UID)."""
        original = original.strip().rstrip("\x00")
        new = self.uids.get(original)
        if new is None:
            new = deterministic_uid("aimd-deid-uid", self.keyed_hex("uid", original))
            self.uids[original] = new
        return new

    def patient(self, key: str, *, max_shift_days: int) -> PatientEntry:
        """The map entry of the patient with original key ``key`` (created on first use).

        The date offset is drawn from ±``max_shift_days`` (never 0) by the keyed hash and then stored,
        so later runs keep it even if the setting changes.
        """
        key = key.strip()
        if key in self.patients:
            return self.patients[key]
        digest = self.keyed_hex("patient", key)
        pseudonym = "ANON-" + digest[:10].upper()
        length = 10
        while pseudonym in self._by_pseudonym:
            length += 2
            pseudonym = "ANON-" + digest[:length].upper()
        entry = PatientEntry(key, pseudonym, self._draw_offset(key, max_shift_days))
        self._register_patient(entry)
        return entry

    def find_patient(self, key: str) -> PatientEntry | None:
        """The entry of an already known patient, or ``None``."""
        return self.patients.get(key.strip())

    def _register_patient(self, entry: PatientEntry) -> None:
        self.patients[entry.key] = entry
        self._by_pseudonym[entry.pseudonym] = entry.key

    def accession(self, original: str) -> str:
        """Pseudonymous accession number (fits SH, 16 characters)."""
        return self._token_value("ACCESSION", original, prefix="ACC", bracket=False)

    def token(self, kind: str, original: str) -> str:
        """Typed pseudonym token for a name or number found in text, e.g. ``[NAME-3f2a9c]``.

        Example
        -------
        >>> m = DeidMap.new("k")
        >>> m.token("NAME", "张伟") == m.token("NAME", "张伟") != m.token("NAME", "李娜")
        True
        """
        return self._token_value(kind, original, prefix=kind, bracket=True)

    def _token_value(self, kind: str, original: str, *, prefix: str, bracket: bool) -> str:
        original = " ".join(original.split())
        table = self.tokens.setdefault(kind, {})
        if original in table:
            return table[original]
        digest = self.keyed_hex("token", kind, original.casefold())
        length = 6
        while True:
            body = f"{prefix}-{digest[:length]}"
            token = f"[{body}]" if bracket else body.upper()
            if token not in self._used_tokens:
                break
            length += 2
        table[original] = token
        self._used_tokens.add(token)
        return token

    def default_offset(self, *, max_shift_days: int) -> int:
        """Date offset for text that belongs to no known patient (dataset-level files); stored once drawn."""
        if self.dataset_offset_days is None:
            self.dataset_offset_days = self._draw_offset("\x00dataset", max_shift_days)
        return self.dataset_offset_days

    def _draw_offset(self, key: str, max_shift_days: int) -> int:
        """A keyed draw from [-max, -1] ∪ [1, max]: never 0, so every date really moves."""
        if max_shift_days < 1:
            raise InvalidInputError(
                f"date shift range must be at least 1 day, got {max_shift_days}",
                where="deid.date_shift_max_days",
                hint="set AIMD_DEID__DATE_SHIFT_MAX_DAYS to 1 or more",
            )
        draw = int(self.keyed_hex("date-offset", key)[:12], 16) % (2 * max_shift_days)
        return draw - max_shift_days if draw < max_shift_days else draw - max_shift_days + 1

    # ------------------------------------------------------------------ lookups
    def known_identifiers(self) -> list[tuple[str, str, str]]:
        """Every original identifier with its replacement and kind, longest first.

        Patient names and ids map to the patient pseudonym, accession numbers to their pseudonym,
        tokenised names and numbers to their token.
        """
        found: dict[str, tuple[str, str]] = {}
        for patient in self.patients.values():
            if is_identifying(patient.key) and not patient.key.startswith(("name:", "study:")):
                found.setdefault(patient.key, (patient.pseudonym, "ID"))
            for kind, values in patient.identifiers.items():
                for value in values:
                    replacement = self.accession(value) if kind == "ACCESSION" else patient.pseudonym
                    for form in name_forms(value) if kind == "NAME" else [value]:
                        found.setdefault(form, (replacement, kind))
        for kind, table in self.tokens.items():
            for original, token in table.items():
                forms = name_forms(original) if kind == "NAME" and "^" in original else [original]
                for form in forms:
                    found.setdefault(form, (token, kind))
        items = [(k, v[0], v[1]) for k, v in found.items() if is_identifying(k) and _searchable(k, v[1])]
        return sorted(items, key=lambda item: (-len(item[0]), item[0]))

    def known_lookup(self) -> tuple[dict[str, tuple[str, str]], IdentifierIndex]:
        """The lookup table and index of :meth:`known_identifiers`, cached until the map grows."""
        if self._lookup_cache is None or self._lookup_cache[0] != self._state():
            lookup = build_lookup(self.known_identifiers())
            self._lookup_cache = (self._state(), lookup)
        return self._lookup_cache[1]

    def _state(self) -> tuple[int, int, int]:
        return len(self.patients), sum(p.revision for p in self.patients.values()), len(self._used_tokens)

    def originals(self) -> dict[str, str]:
        """Original identifier → kind, for the residual scan (names, ids, numbers and UIDs)."""
        out = {value: kind for value, _, kind in self.known_identifiers()}
        for original in self.uids:
            out.setdefault(original, "UID")
        return out


_CALENDAR_WORDS = frozenset(
    (
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
    )
)


def _searchable(value: str, kind: str) -> bool:
    """False for a lone short Latin name part ("Hua", "Song", "June"): too ambiguous to search free text for.

    The field it came from is still replaced; only the search for it elsewhere is skipped.
    """
    if kind != "NAME" or not value.isascii() or any(sep in value for sep in " ^,"):
        return True
    return len(value) >= 5 and value.lower() not in _CALENDAR_WORDS


def name_forms(value: str) -> list[str]:
    """Spellings of a DICOM person name as it may appear in text.

    Example
    -------
    >>> name_forms("Zhang^Wei=张^伟")
    ['Zhang^Wei', 'Zhang Wei', 'Wei Zhang', 'Zhang, Wei', 'ZhangWei', '张伟', '张 伟']
    """
    forms: list[str] = []
    for group in value.split("="):
        parts = [p.strip() for p in group.split("^") if p.strip()]
        if not parts:
            continue
        candidates = ["^".join(parts), " ".join(parts)]
        if len(parts) >= 2:
            candidates += [" ".join([*parts[1:], parts[0]]), f"{parts[0]}, {' '.join(parts[1:])}", "".join(parts)]
        if all(_is_han(p) for p in parts):
            candidates = ["".join(parts), " ".join(parts), *pinyin_forms(parts)]
        for c in candidates:
            if c not in forms and len(c) >= 2:
                forms.append(c)
    return forms


def pinyin_forms(parts: list[str]) -> list[str]:
    """Pinyin spellings of a name written in characters (surname first and last, joined, hyphenated).

    ``parts`` are the DICOM name components; a single component is split after a known compound surname
    or after the first character.

    Example
    -------
    >>> pinyin_forms(["张伟强"])[:3]
    ['Zhang Weiqiang', 'Weiqiang Zhang', 'ZhangWeiqiang']
    """
    from pypinyin import Style, lazy_pinyin

    from aimd.imaging.deid.rules import SURNAMES_COMPOUND

    whole = "".join(parts).replace("·", "")
    if len(parts) >= 2:
        surname, given = parts[0], "".join(parts[1:])
    else:
        cut = 2 if whole[:2] in SURNAMES_COMPOUND and len(whole) > 2 else 1
        surname, given = whole[:cut], whole[cut:]
    if not given:
        return []
    family = "".join(lazy_pinyin(surname, style=Style.NORMAL)).replace("ü", "v").capitalize()
    syllables = [s.replace("ü", "v") for s in lazy_pinyin(given, style=Style.NORMAL)]
    first = "".join(syllables).capitalize()
    return [
        f"{family} {first}",
        f"{first} {family}",
        f"{family}{first}",
        f"{family}^{first}",
        f"{family}, {first}",
        f"{family} {' '.join(s.capitalize() for s in syllables)}",
        f"{family} {'-'.join(syllables).capitalize()}",
    ]


def _is_han(text: str) -> bool:
    return all("\u3400" <= ch <= "\u9fff" or ch == "·" for ch in text)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


__all__ = ["ACCESS_POLICY", "MAP_FORMAT", "DeidMap", "PatientEntry", "is_identifying", "name_forms", "pinyin_forms"]
