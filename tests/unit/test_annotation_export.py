"""Export → tamper → verify (001 §6.6, §10.1.5, §10.2.4, §11.5), COCO boxes."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from test_annotation_builders import clean_package, lesion_mask, load, save, simulated_dataset

from aimd.annotation import (
    ExportRefusedError,
    audit_chain_break,
    export_packages,
    packages_to_coco,
    read_manifest,
    read_sources,
    read_versions,
    run_qc,
    verify_export,
)
from aimd.core.errors import InvalidInputError
from aimd.imaging.nifti_io import read_nifti, write_nifti
from aimd.imaging.volume import Volume
from aimd.metrics import load_coco


def _thaw(folder: Path) -> None:
    for dirpath, _, files in os.walk(folder):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(Path(dirpath) / f, 0o644)


def _refreeze(folder: Path) -> None:
    for dirpath, _, files in os.walk(folder, topdown=False):
        for f in files:
            os.chmod(Path(dirpath) / f, 0o444)
        os.chmod(dirpath, 0o555)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    export_packages(clean_package(tmp_path / "src"), tmp_path / "export", "1.0")
    return tmp_path / "export"


def test_export_verifies_clean_with_independent_hashes(exported: Path) -> None:
    vdir = exported / "v1.0"
    assert verify_export(exported) == []
    manifest = read_manifest(vdir)
    on_disk = sorted(p.relative_to(vdir).as_posix() for p in vdir.rglob("*") if p.is_file())
    assert sorted(e.path for e in manifest.files) == [p for p in on_disk if p != "manifest.json"]
    for e in manifest.files:
        assert (e.sha256, e.size) == (_sha(vdir / e.path), (vdir / e.path).stat().st_size)
    roles = {e.path: e.role for e in manifest.files}
    assert roles["cases/case_test/images/ct.nii.gz"] == "image"
    assert roles["cases/case_test/annotations/reader_1/masks/organs.nii.gz"] == "mask"
    package = manifest.packages[0]
    assert set(manifest.entry(package).references) >= {
        "cases/case_test/images/ct.nii.gz",
        "cases/case_test/annotations/reader_1/masks/lesion_01.nii.gz",
    }
    assert all(not (p.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) for p in [vdir, *vdir.rglob("*")])
    assert read_versions(exported).get("1.0").manifest_sha256 == _sha(vdir / "manifest.json")
    src = read_sources(vdir / package)[0]
    assert [f.code for f in run_qc(src) if f.is_error] == []
    meta = src.package.metadata
    assert (meta.version, meta.qc.status, meta.audit[-1].action) == ("1.0", "passed", "export")
    assert audit_chain_break(meta.audit) is None


def test_qc_errors_refuse_the_export_unless_forced_with_a_reason(tmp_path: Path) -> None:
    path = clean_package(tmp_path / "src")
    data = load(path)
    data["annotations"][2]["label_code"] = "LUNG_NODULE_XL"
    save(path, data)
    with pytest.raises(ExportRefusedError) as err:
        export_packages(path, tmp_path / "export", "1.0")
    assert err.value.exit_code == 1 and "LABEL_NOT_IN_TAXONOMY" in err.value.message
    assert not (tmp_path / "export" / "v1.0").exists()
    with pytest.raises(InvalidInputError, match="reason"):
        export_packages(path, tmp_path / "export", "1.0", force=True)
    res = export_packages(path, tmp_path / "export", "1.0", force=True, reason="label added in taxonomy 1.1")
    assert res.forced and res.manifest.forced.codes == ["LABEL_NOT_IN_TAXONOMY"]
    assert read_versions(tmp_path / "export").get("1.0").forced_reason == "label added in taxonomy 1.1"
    meta = read_sources(res.version_dir / res.manifest.packages[0])[0].package.metadata
    assert meta.qc.status == "forced" and "label added in taxonomy 1.1" in meta.audit[-1].detail
    assert "FORCED EXPORT" in (res.version_dir / "README.md").read_text()


def _edit_mask_byte(v: Path) -> None:
    p = v / "cases/case_test/annotations/reader_1/masks/lesion_01.nii.gz"
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    p.write_bytes(bytes(raw))


def _version_edit(v: Path) -> None:
    p = v / "cases/case_test/annotations/reader_1.json"
    data = load(p)
    data["metadata"]["version"] = "1.1"
    save(p, data)


def _drop_manifest_entry(v: Path) -> None:
    m = load(v / "manifest.json")
    m["files"] = [e for e in m["files"] if not e["path"].endswith("README.md")]
    (v / "manifest.json").write_text(json.dumps(m))


def _resync(v: Path, root: Path) -> None:
    """Rewrite manifest hashes and the version index so only the content checks can catch a change."""
    m = load(v / "manifest.json")
    for e in m["files"]:
        e["sha256"], e["size"] = _sha(v / e["path"]), (v / e["path"]).stat().st_size
    from aimd.annotation import Manifest

    m["content_sha256"] = Manifest.model_validate(m).compute_content_sha256()
    (v / "manifest.json").write_text(json.dumps(m))
    index = load(root / "versions.json")
    index["versions"][0]["manifest_sha256"] = _sha(v / "manifest.json")
    (root / "versions.json").write_text(json.dumps(index))


def _shift_mask_consistently(v: Path) -> None:
    p = v / "cases/case_test/annotations/reader_1/masks/lesion_01.nii.gz"
    ref = read_nifti(p)
    write_nifti(Volume(lesion_mask(), spacing=ref.spacing, origin=(ref.origin[0] + 1.6, *ref.origin[1:])), p)
    _resync(v, v.parent)


def _unreferenced_entry(v: Path) -> None:
    (v / "cases/case_test/annotations/reader_1/masks/draft.nii.gz").write_bytes(b"draft")
    m = load(v / "manifest.json")
    m["files"].append(
        {
            "path": "cases/case_test/annotations/reader_1/masks/draft.nii.gz",
            "sha256": "0" * 64,
            "size": 0,
            "role": "mask",
            "references": [],
        }
    )
    (v / "manifest.json").write_text(json.dumps(m))
    _resync(v, v.parent)


TAMPER: list[tuple[str, Callable[[Path], None], set[str]]] = [
    ("mask byte changed", _edit_mask_byte, {"FILE_CHANGED"}),
    ("image deleted", lambda v: (v / "cases/case_test/images/ct.nii.gz").unlink(), {"FILE_MISSING"}),
    ("file added", lambda v: (v / "cases/case_test/notes.txt").write_text("x"), {"FILE_EXTRA"}),
    ("manifest edited", _drop_manifest_entry, {"MANIFEST_CHANGED", "MANIFEST_INCONSISTENT", "FILE_EXTRA"}),
    ("package version edited", _version_edit, {"FILE_CHANGED", "PACKAGE_VERSION_MISMATCH"}),
    ("mask shifted, hashes rewritten", _shift_mask_consistently, {"MASK_ORIGIN_MISMATCH"}),
    ("orphan listed in manifest", _unreferenced_entry, {"FILE_UNREFERENCED"}),
]


@pytest.mark.parametrize(("name", "tamper", "want"), TAMPER, ids=[t[0] for t in TAMPER])
def test_tampering_is_detected(exported: Path, name: str, tamper: Callable[[Path], None], want: set[str]) -> None:
    vdir = exported / "v1.0"
    _thaw(vdir)
    tamper(vdir)
    _refreeze(vdir)
    found = {f.code for f in verify_export(exported) if f.is_error}
    assert found == want, name


def test_writable_version_is_reported(exported: Path) -> None:
    os.chmod(exported / "v1.0" / "README.md", 0o644)
    assert [(f.code, f.severity.value) for f in verify_export(exported)] == [("NOT_READ_ONLY", "warning")]


def test_a_change_makes_a_new_version_that_keeps_the_old(tmp_path: Path) -> None:
    path = clean_package(tmp_path / "src")
    export_packages(path, tmp_path / "export", "1.0")
    before = _sha(tmp_path / "export/v1.0/manifest.json")
    with pytest.raises(InvalidInputError, match="already exported"):
        export_packages(path, tmp_path / "export", "1.0")
    data = load(path)
    data["annotations"][2]["data"]["attributes"]["diameter_mm"] = 5
    save(path, data)
    res = export_packages(path, tmp_path / "export", "1.1")
    assert _sha(tmp_path / "export/v1.0/manifest.json") == before
    assert [v.version for v in read_versions(tmp_path / "export").versions] == ["1.0", "1.1"]
    assert res.manifest.parent_version == "1.0"
    # the package changed (records carrying the export time may too); images and masks did not
    changed = res.manifest.changes.changed
    assert "cases/case_test/annotations/reader_1.json" in changed
    assert not any(p.endswith((".nii.gz", ".tfm")) for p in changed)
    assert res.manifest.changes.added == res.manifest.changes.removed == []
    assert verify_export(tmp_path / "export") == []
    assert verify_export(tmp_path / "export" / "v1.1") == []


def test_coco_boxes_load_in_pycocotools(tmp_path: Path) -> None:
    dataset = simulated_dataset(tmp_path, readers=2, cases=1, seed=2, size=48)
    res = export_packages(dataset / "cases", tmp_path / "export", "1.0", force=True, reason="test", seg=False)
    coco_path = res.version_dir / (res.coco_file or "")
    coco = COCO(str(coco_path))
    boxes = [
        (s.package.metadata.annotator, a)
        for rel in res.manifest.packages
        for s in read_sources(res.version_dir / rel)
        for a in s.package.annotations
        if a.type.value == "bbox"
    ]
    assert boxes and len(coco.getAnnIds()) == len(boxes)
    for ann in coco.loadAnns(coco.getAnnIds()):
        reader, box = next((r, b) for r, b in boxes if b.id == ann["aimd_annotation_id"] and r == ann["aimd_annotator"])
        x0, y0, x1, y1 = box.data.bbox
        assert ann["bbox"] == pytest.approx([x0, y0, x1 - x0, y1 - y0])
        image = coco.loadImgs(ann["image_id"])[0]
        assert (res.version_dir / image["file_name"]).is_file()
    assert load_coco(json.loads(coco_path.read_text()), []).kind == "box"


def test_3d_boxes_become_one_coco_box_per_slice(tmp_path: Path) -> None:
    src = read_sources(clean_package(tmp_path))[0]
    coco = packages_to_coco([src])
    assert [img["slice_index"] for img in coco["images"]] == [3, 4, 5]
    assert all(a["bbox"] == [6.0, 6.0, 3.0, 3.0] for a in coco["annotations"])
    assert np.unique([a["category_id"] for a in coco["annotations"]]).tolist() == [1]
