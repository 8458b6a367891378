"""The pseudonym map (001 §7.3, §11.2.1): keyed, reproducible, stored apart, audited."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from pydicom.uid import UID

from aimd.core.errors import InvalidInputError, SchemaError
from aimd.imaging.deid import DeidMap, TextDeidentifier
from aimd.imaging.deid.mapping import name_forms


def test_same_salt_same_pseudonyms_other_salt_different() -> None:
    a, b, c = DeidMap.new("salt-1"), DeidMap.new("salt-1"), DeidMap.new("salt-2")
    for m in (a, b, c):
        m.patient("P1", max_shift_days=365)
    assert a.patient("P1", max_shift_days=365).pseudonym == b.patient("P1", max_shift_days=365).pseudonym
    assert a.patient("P1", max_shift_days=365).pseudonym != c.patient("P1", max_shift_days=365).pseudonym
    assert a.uid("1.2.3.4") == b.uid("1.2.3.4") != c.uid("1.2.3.4")
    assert a.token("NAME", "张伟") == b.token("NAME", "张伟") != c.token("NAME", "张伟")


def test_uids_are_valid_and_distinct() -> None:
    m = DeidMap.new("k")
    originals = [f"1.2.826.0.1.3680043.8.498.{i}" for i in range(500)]
    new = [m.uid(o) for o in originals]
    assert len(set(new)) == len(new)
    assert all(UID(u).is_valid and len(u) <= 64 and u.startswith("2.25.") for u in new)
    assert not set(new) & set(originals)


def test_date_offsets_nonzero_within_range_and_both_signs() -> None:
    m = DeidMap.new("k")
    offsets = [m.patient(f"P{i}", max_shift_days=30).date_offset_days for i in range(300)]
    assert all(1 <= abs(o) <= 30 for o in offsets)
    assert min(offsets) < 0 < max(offsets)
    assert len(set(offsets)) > 40


def test_round_trip_permissions_and_stored_offsets(tmp_path: Path) -> None:
    path = tmp_path / "secure" / "map.json"
    m = DeidMap.new("k")
    p = m.patient("P1", max_shift_days=30)
    p.add("NAME", "SONG^HUA")
    m.uid("1.2.3.4.5")
    m.token("MRN", "ZY2023001")
    m.record_run(dst="somewhere", files=3)
    m.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "aimd-deid-map/1" and "001 §11.2.1" in doc["access_policy"]
    loaded = DeidMap.open(path)
    assert loaded.to_json() == m.to_json()
    # a stored offset wins over a different range set later
    assert loaded.patient("P1", max_shift_days=5).date_offset_days == p.date_offset_days
    assert loaded.runs[0]["files"] == 3 and loaded.runs[0]["user"]


def test_wrong_salt_and_bad_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    DeidMap.new("right").save(path)
    with pytest.raises(InvalidInputError, match="salt"):
        DeidMap.open(path, salt="wrong")
    assert DeidMap.open(path, salt="right").salt == "right"
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(SchemaError):
        DeidMap.open(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"format": "something else"}', encoding="utf-8")
    with pytest.raises(SchemaError):
        DeidMap.open(tmp_path / "other.json")
    with pytest.raises(InvalidInputError):
        DeidMap("")


def test_known_identifiers_cover_name_spellings() -> None:
    m = DeidMap.new("k")
    p = m.patient("1209457875", max_shift_days=10)
    p.add("NAME", "SONG^HUA=宋^华")
    p.add("ACCESSION", "CT202302031499")
    known = {value: (replacement, kind) for value, replacement, kind in m.known_identifiers()}
    for spelling in ("SONG^HUA", "SONG HUA", "HUA SONG", "宋华", "1209457875"):
        assert known[spelling][0] == p.pseudonym
    assert known["CT202302031499"][0].startswith("ACC-")
    assert "Anonymous" not in {v for v, _, _ in DeidMap.new("k").known_identifiers()}
    assert name_forms("Lestrade^G") == ["Lestrade^G", "Lestrade G", "G Lestrade", "Lestrade, G", "LestradeG"]


def test_lone_short_name_parts_are_not_searched_in_free_text() -> None:
    m = DeidMap.new("k")
    for part in ("Hua", "Song", "June", "Hua Song", "Qiang"):
        m.token("NAME", part)
    searched = {value for value, _, kind in m.known_identifiers() if kind == "NAME"}
    assert searched == {"Hua Song", "Qiang"}
    # a date spelled with a month that is also someone's given name is still shifted, not tokenised
    out = TextDeidentifier(m, date_offset_days=1).deidentify("seen June 5, 2023 by Hua Song")
    assert out.text.startswith("seen June 6, 2023 by [NAME-")
