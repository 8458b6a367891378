"""aimd.core: errors, settings, atomic io, hashing, ids, logging, findings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from aimd.core import (
    ConfigError,
    Finding,
    InvalidInputError,
    Severity,
    atomic_dir,
    atomic_file,
    atomic_write_json,
    atomic_write_text,
    deterministic_uid,
    has_errors,
    load_settings,
    random_uid,
    sha256_bytes,
    sha256_file,
    sha256_tree,
)

UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def test_error_message_names_place_and_fix() -> None:
    err = InvalidInputError("not a DICOM file", where="a/b.dcm", hint="pass a .dcm")
    assert str(err) == "a/b.dcm: not a DICOM file (fix: pass a .dcm)"
    assert err.to_dict()["where"] == "a/b.dcm"
    assert err.exit_code == 2


def test_settings_env_overrides_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "aimd.toml"
    toml.write_text("seed = 7\n[geometry]\nspacing_rtol = 0.05\ngap_factor = 2.0\n")
    monkeypatch.setenv("AIMD_CONFIG", str(toml))
    s = load_settings()
    assert (s.seed, s.geometry.spacing_rtol, s.geometry.gap_factor) == (7, 0.05, 2.0)
    monkeypatch.setenv("AIMD_GEOMETRY__SPACING_RTOL", "0.2")
    monkeypatch.setenv("AIMD_SEED", "9")
    s = load_settings()
    assert (s.seed, s.geometry.spacing_rtol, s.geometry.gap_factor) == (9, 0.2, 2.0)


def test_bad_setting_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMD_GEOMETRY__SPACING_RTOL", "-1")
    with pytest.raises(ConfigError, match="geometry.spacing_rtol"):
        load_settings()


def test_malformed_toml_is_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "aimd.toml"
    toml.write_text("seed = = 3\n")
    monkeypatch.setenv("AIMD_CONFIG", str(toml))
    with pytest.raises(ConfigError):
        load_settings()


def test_unknown_setting_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "aimd.toml"
    toml.write_text("sede = 3\n")
    monkeypatch.setenv("AIMD_CONFIG", str(toml))
    with pytest.raises(ConfigError, match="sede"):
        load_settings()


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    atomic_write_json(target, {"a": 1, "名": "值"})
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": 1, "名": "值"}
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_atomic_file_failure_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target, suffix=".txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_atomic_dir_all_or_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("1")
        raise RuntimeError("fail")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (out / "a.txt").read_text() == "1"
    with pytest.raises(InvalidInputError, match="already exists"), atomic_dir(out):
        pass
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]


def test_hashes(tmp_path: Path) -> None:
    import hashlib

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x" * 3_000_000)
    assert sha256_file(tmp_path / "d" / "f") == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    assert sha256_bytes(b"") == hashlib.sha256(b"").hexdigest()
    before = sha256_tree(tmp_path)
    (tmp_path / "d" / "f").rename(tmp_path / "d" / "g")
    assert sha256_tree(tmp_path) != before


def test_uids_valid_and_deterministic() -> None:
    a, b = deterministic_uid("case", "1"), deterministic_uid("case", "2")
    assert a == deterministic_uid("case", "1") and a != b
    for uid in (a, b, random_uid()):
        assert len(uid) <= 64 and UID_RE.match(uid)


def test_findings() -> None:
    warn = Finding(code="W", severity=Severity.WARNING, clause="001 §7.2 c", message="m")
    err = Finding(code="E", severity="error", clause="001 §7.2 e", message="m", location={"slice": 3})
    assert not has_errors([warn]) and has_errors([warn, err])
    assert json.loads(err.model_dump_json())["severity"] == "error"


def test_logging_is_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from aimd.core.logging import configure_logging, get_logger

    configure_logging("INFO", json=True)
    get_logger("aimd.test").info("thing.done", cases=3)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    record = json.loads(line)
    assert record["event"] == "thing.done" and record["cases"] == 3 and record["level"] == "info"


def test_written_files_get_umask_permissions_and_secrets_0600(tmp_path: Path) -> None:
    import os
    import stat

    from aimd.core.atomic import atomic_dir, atomic_file, atomic_write_json, atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "plain.txt", "x")
        atomic_write_json(tmp_path / "secret.json", {"k": 1}, mode=0o600)
        with atomic_file(tmp_path / "lib.bin") as tmp:
            tmp.write_bytes(b"1")
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "a").write_text("a")
    finally:
        os.umask(old)
    mode = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert mode["plain.txt"] == 0o644 and mode["lib.bin"] == 0o644
    assert mode["secret.json"] == 0o600
    assert mode["folder"] == 0o755


def test_force_never_replaces_a_file_or_symlink_with_a_folder(tmp_path: Path) -> None:
    from aimd.core.atomic import atomic_dir
    from aimd.core.errors import InvalidInputError

    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "link").symlink_to(tmp_path / "notes.txt")
    for name in ("notes.txt", "link"):
        with pytest.raises(InvalidInputError, match="never replaces"), atomic_dir(tmp_path / name, overwrite=True):
            pass
    assert (tmp_path / "notes.txt").read_text() == "keep me" and (tmp_path / "link").is_symlink()
