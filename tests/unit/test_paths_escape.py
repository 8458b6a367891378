"""Paths never escape their root: qc check, package export and package verify (issue: hostile packages)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from test_annotation_builders import clean_package

from aimd.annotation import discover_packages, export_packages, read_sources, run_qc, verify_export
from aimd.annotation.paths import ESCAPE_CODE, escape_reason
from aimd.core.errors import InvalidInputError, SchemaError


def _retarget(package: Path, new_path: str) -> None:
    data = json.loads(package.read_text())
    data["image"]["files"][0]["path"] = new_path
    package.write_text(json.dumps(data))


def _escapes(package: Path) -> list:
    return [f for f in run_qc(read_sources(package)[0]) if f.code == ESCAPE_CODE]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "elsewhere" / "secret.nii.gz"
    secret.parent.mkdir()
    secret.write_bytes(b"not yours")
    return secret


def test_in_root_references_pass(tmp_path: Path) -> None:
    pkg = clean_package(tmp_path / "src")
    assert _escapes(pkg) == []
    assert escape_reason(tmp_path / "src", tmp_path / "src" / "ann", "../ct.nii.gz") is None


def test_absolute_reference_is_a_schema_error(tmp_path: Path, outside: Path) -> None:
    pkg = clean_package(tmp_path / "src")
    _retarget(pkg, str(outside))
    with pytest.raises(SchemaError, match=r"image\.files\[0\]\.path"):
        read_sources(pkg)
    with pytest.raises(SchemaError):
        export_packages(pkg, tmp_path / "export", "1.0", force=True, reason="reviewed")
    assert escape_reason(tmp_path, tmp_path, str(outside)) == "is an absolute path"


@pytest.mark.parametrize("kind", ["dotdot", "symlink"])
def test_escaping_reference_is_an_error_in_qc_and_export(tmp_path: Path, outside: Path, kind: str) -> None:
    pkg = clean_package(tmp_path / "src")
    if kind == "dotdot":
        ref = "../../elsewhere/secret.nii.gz"
    else:
        (tmp_path / "src" / "link.nii.gz").symlink_to(outside)
        ref = "../link.nii.gz"
    _retarget(pkg, ref)
    found = _escapes(pkg)
    assert len(found) == 1 and found[0].is_error
    assert found[0].location["file"] == ref and found[0].location["field"] == "image"
    assert not [f for f in run_qc(read_sources(pkg)[0]) if f.code == "FILE_MISSING" and f.location["file"] == ref]
    for force in (False, True):
        with pytest.raises(InvalidInputError, match=ESCAPE_CODE):
            export_packages(pkg, tmp_path / "export", "1.0", force=force, reason="reviewed" if force else None)
        assert not (tmp_path / "export" / "v1.0").exists()


def test_symlink_inside_a_referenced_folder_is_an_error(tmp_path: Path, outside: Path) -> None:
    pkg = clean_package(tmp_path / "src")
    series = tmp_path / "src" / "series"
    series.mkdir()
    (series / "1.dcm").symlink_to(outside)
    _retarget(pkg, "../series")
    assert "symlink" in _escapes(pkg)[0].message


def test_verify_reports_escaping_references_and_symlinks(tmp_path: Path, outside: Path) -> None:
    export_packages(clean_package(tmp_path / "src"), tmp_path / "export", "1.0")
    vdir = tmp_path / "export" / "v1.0"
    for dirpath, _, files in os.walk(vdir):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(Path(dirpath) / f, 0o644)
    package = next(vdir.glob("cases/*/annotations/*.json"))
    _retarget(package, "../../../../elsewhere/secret.nii.gz")
    (vdir / "stolen.nii.gz").symlink_to(outside)
    manifest = json.loads((vdir / "manifest.json").read_text())
    manifest["files"][0]["path"] = "../../elsewhere/secret.nii.gz"
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    found = [f for f in verify_export(tmp_path / "export") if f.code == ESCAPE_CODE]
    where = {(f.location.get("file"), f.location.get("field")) for f in found}
    assert ("stolen.nii.gz", None) in where
    assert ("manifest.json", "files[].path") in where
    assert any(f.location.get("field") == "image" for f in found)
    assert all(f.is_error for f in found)


def test_folder_walk_leaves_out_symlinks_to_outside(tmp_path: Path) -> None:
    pkg = clean_package(tmp_path / "other")
    root = tmp_path / "root"
    root.mkdir()
    (root / "linked.json").symlink_to(pkg)
    (root / "sub").symlink_to(pkg.parent, target_is_directory=True)
    assert discover_packages(root) == []
    shutil.copy(pkg, root / "real.json")
    assert discover_packages(root) == [root / "real.json"]
