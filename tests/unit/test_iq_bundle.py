"""Release bundles (002 §5.2.1, §5.5.1, §6.6.1): one version, notes required, signed manifest, tampering found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from aimd.cli.main import app
from aimd.core.errors import IntegrityError, InvalidInputError
from aimd.iq.bundle import build_bundle, bundle_problems, verify_bundle
from aimd.iq.drill import make_probe_bundle, release_notes
from aimd.iq.signing import generate_key
from aimd.iq.wheels import write_wheel

runner = CliRunner()


def _cli(*args: str) -> Result:
    return runner.invoke(app, ["iq", *args])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_probe_bundle(tmp_path_factory.mktemp("b"), "1.0.0")


def test_manifest_lists_every_file_with_hash_size_and_one_version(bundle: Path) -> None:
    manifest = verify_bundle(bundle)
    paths = {f["path"] for f in manifest["files"]}
    assert {
        "requirements.lock",
        "RELEASE-NOTES.md",
        "signing-key.pub",
        "docs/manual.md",
        "config/aimd.toml",
        "wheels/iq_probe-1.0.0-py3-none-any.whl",
    } <= paths
    assert {c["version"] for c in manifest["components"]} == {"1.0.0"}
    assert "--hash=sha256:" in (bundle / "requirements.lock").read_text()
    assert _cli("bundle", "verify", str(bundle)).exit_code == 0


@pytest.mark.parametrize("tamper", ["change", "extra", "remove", "manifest", "foreign_key"])
def test_tampered_bundle_is_refused(tmp_path: Path, tamper: str) -> None:
    bundle = make_probe_bundle(tmp_path, "1.0.0")
    if tamper == "change":
        (bundle / "docs" / "manual.md").write_text("# manual 1.0.0 (edited)\n")
        expect = "changed file docs/manual.md"
    elif tamper == "extra":
        (bundle / "wheels" / "evil-1.0-py3-none-any.whl").write_bytes(b"x")
        expect = "extra file wheels/evil-1.0-py3-none-any.whl"
    elif tamper == "remove":
        (bundle / "config" / "aimd.toml").unlink()
        expect = "missing file config/aimd.toml"
    elif tamper == "manifest":
        manifest = json.loads((bundle / "manifest.json").read_text())
        manifest["version"] = "1.0.1"
        (bundle / "manifest.json").write_text(json.dumps(manifest))
        expect = "signature does not verify"
    else:
        other = generate_key(tmp_path / "other.key")
        assert bundle_problems(bundle) == []
        assert bundle_problems(bundle, public_key=other.read_bytes()) == ["manifest signature does not verify"]
        return
    with pytest.raises(IntegrityError, match=expect):
        verify_bundle(bundle)
    proc = _cli("bundle", "verify", str(bundle), "--json")
    assert proc.exit_code == 1 and expect in proc.output


def _inputs(tmp_path: Path, version: str = "1.0.0") -> dict[str, Path]:
    key = tmp_path / "k.key"
    generate_key(key)
    notes = tmp_path / "NOTES.md"
    notes.write_text(release_notes(version))
    return {"key": key, "notes": notes, "wheel": write_wheel(tmp_path, "iq-probe", version, {"iq_probe.py": ""})}


def test_version_rules_are_enforced(tmp_path: Path) -> None:
    i = _inputs(tmp_path)
    with pytest.raises(InvalidInputError, match="MAJOR.MINOR.PATCH"):
        build_bundle(tmp_path / "o1", version="v1", key=i["key"], release_notes=i["notes"], product_wheel=i["wheel"])
    notes2 = tmp_path / "NOTES-1.0.1.md"
    notes2.write_text(release_notes("1.0.1"))
    with pytest.raises(InvalidInputError, match="wheel is version 1.0.0, the bundle 1.0.1"):
        build_bundle(tmp_path / "o2", version="1.0.1", key=i["key"], release_notes=notes2, product_wheel=i["wheel"])
    doc = tmp_path / "manual.md"
    doc.write_text("manual for version 0.9.0")
    with pytest.raises(InvalidInputError, match="does not state version 1.0.0"):
        build_bundle(
            tmp_path / "o3",
            version="1.0.0",
            key=i["key"],
            release_notes=i["notes"],
            product_wheel=i["wheel"],
            docs=[doc],
        )
    assert not any((tmp_path / f"o{n}").exists() for n in (1, 2, 3))


def test_release_notes_are_required_and_complete(tmp_path: Path) -> None:
    i = _inputs(tmp_path)
    i["notes"].write_text("# 1.0.0\n\nvarious improvements\n")
    proc = _cli(
        "bundle",
        "build",
        str(tmp_path / "out"),
        "--version",
        "1.0.0",
        "--key",
        str(i["key"]),
        "--notes",
        str(i["notes"]),
        "--wheel",
        str(i["wheel"]),
    )
    assert isinstance(proc.exception, InvalidInputError) and "no fixes section" in str(proc.exception)
    i["notes"].write_text(release_notes("1.0.0"))
    proc = _cli(
        "bundle",
        "build",
        str(tmp_path / "out"),
        "--version",
        "1.0.0",
        "--key",
        str(i["key"]),
        "--notes",
        str(i["notes"]),
        "--wheel",
        str(i["wheel"]),
        "--wheels-from",
        str(tmp_path),
        "--json",
    )
    assert proc.exit_code == 0, proc.output
    assert json.loads(proc.output)["packages"] == {"iq-probe": "1.0.0"}


def test_signing_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    i = _inputs(tmp_path)
    i["key"].chmod(0o644)
    with pytest.raises(InvalidInputError, match="chmod 600"):
        build_bundle(tmp_path / "o", version="1.0.0", key=i["key"], release_notes=i["notes"], product_wheel=i["wheel"])
