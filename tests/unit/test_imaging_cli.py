"""``aimd data inspect | validate | convert``: JSON contracts, exit codes, numbers equal to SimpleITK."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from nibabel.testing import data_path
from pydicom.data import get_testdata_file
from test_imaging_synth import assert_matches_sitk, sitk_series, write_series

from aimd.cli import main
from aimd.imaging.io import read_volume

DICOMDIR_TESTS = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests"
INSPECT_KEYS = {"shape", "size", "spacing", "origin", "direction", "modality", "series_uid", "n_files", "axes"}


def aimd(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    """Run the console entry point in-process; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["aimd", *args])
    code = 0
    try:
        main.run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _sitk_numbers(image: sitk.Image) -> dict[str, list[float]]:
    return {
        "shape": list(image.GetSize())[::-1],
        "spacing": list(image.GetSpacing()),
        "origin": list(image.GetOrigin()),
        "direction": list(image.GetDirection()),
    }


@pytest.mark.parametrize(
    "target",
    [DICOMDIR_TESTS / "98892001" / "CT5N", Path(data_path) / "anatomical.nii", Path(get_testdata_file("CT_small.dcm"))],
)
def test_inspect_json_equals_simpleitk(
    target: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = aimd(capsys, monkeypatch, "data", "inspect", str(target), "--json")
    assert code == 0
    info = json.loads(out)
    assert set(info) == INSPECT_KEYS
    image = sitk_series(target) if target.is_dir() else sitk.ReadImage(str(target))
    for key, value in _sitk_numbers(image).items():
        np.testing.assert_allclose(info[key], value, atol=1e-6, err_msg=key)


def test_inspect_human_table(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = aimd(capsys, monkeypatch, "data", "inspect", get_testdata_file("MR_small.dcm"))
    assert code == 0 and "spacing" in out and "MR" in out


def test_inspect_multi_series_lists_and_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = DICOMDIR_TESTS / "98892003" / "MR1"
    code, out, err = aimd(capsys, monkeypatch, "data", "inspect", str(folder), "--json")
    assert code == 2
    payload = json.loads(out)
    uids = [s["uid"] for s in payload["series"]]
    assert len(uids) == 3 and all(uid in err.replace("\n", "") for uid in uids)
    code, out, _ = aimd(capsys, monkeypatch, "data", "inspect", str(folder), "--series", uids[1], "--json")
    assert code == 0 and json.loads(out)["series_uid"] == uids[1]
    code, out, _ = aimd(capsys, monkeypatch, "data", "inspect", str(folder))
    assert code == 2 and "FAST LOCALIZER" in out


def test_validate_clean_and_defective(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    synth = write_series(tmp_path / "ok", n=6)
    code, out, _ = aimd(capsys, monkeypatch, "data", "validate", str(tmp_path / "ok"), "--no-quality", "--json")
    assert code == 0  # geometry clean (the tiny synthetic matrix would get 001 §7.2 g warnings)
    assert json.loads(out) == {"path": str(tmp_path / "ok"), "findings": [], "errors": 0, "warnings": 0}
    synth.paths[3].unlink()
    code, out, _ = aimd(capsys, monkeypatch, "data", "validate", str(tmp_path / "ok"), "--json")
    report = json.loads(out)
    assert code == 1 and report["errors"] == 1
    gap = report["findings"][0]
    assert gap["code"] == "SLICE_GAP" and gap["clause"] == "001 §7.2 e" and gap["severity"] == "error"
    assert gap["location"]["file"] == str(synth.paths[4])
    code, out, _ = aimd(capsys, monkeypatch, "data", "validate", str(tmp_path / "ok"))
    assert code == 1 and "SLICE_GAP" in out


def test_convert_dicom_to_nifti_and_back_keeps_geometry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = DICOMDIR_TESTS / "98892001" / "CT5N"
    nii = tmp_path / "ct.nii.gz"
    code, out, _ = aimd(capsys, monkeypatch, "data", "convert", str(src), str(nii), "--json")
    assert code == 0 and json.loads(out)["format"] == "nifti"
    assert_matches_sitk(read_volume(nii), sitk_series(src))
    code, _, err = aimd(capsys, monkeypatch, "data", "convert", str(src), str(nii))
    assert code == 2 and "already exists" in err
    code, _, _ = aimd(capsys, monkeypatch, "data", "convert", str(src), str(nii), "--force")
    assert code == 0
    dcm = tmp_path / "dcm"
    code, out, _ = aimd(capsys, monkeypatch, "data", "convert", str(nii), str(dcm), "--json")
    assert code == 0 and json.loads(out)["n_files"] == 5
    assert_matches_sitk(read_volume(dcm), sitk_series(src))


def test_convert_left_handed_nifti_to_dicom(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = Path(data_path) / "anatomical.nii"
    code, _, _ = aimd(capsys, monkeypatch, "data", "convert", str(src), str(tmp_path / "anat"))
    assert code == 0
    assert_matches_sitk(read_volume(src), sitk_series(tmp_path / "anat"))


@pytest.mark.parametrize("kind", ["corrupt", "empty", "text", "png", "missing"])
def test_bad_input_exits_2_with_clear_message(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = {
        "corrupt": tmp_path / "broken.dcm",
        "empty": tmp_path / "empty",
        "text": tmp_path / "README.txt",
        "png": tmp_path / "image.png",
        "missing": tmp_path / "nope",
    }[kind]
    if kind == "corrupt":
        target.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage")
    elif kind == "empty":
        target.mkdir()
    elif kind in ("text", "png"):
        target.write_bytes(b"hello")
    for command in ("inspect", "convert"):
        extra = [str(tmp_path / "out.nii.gz")] if command == "convert" else []
        code, out, err = aimd(capsys, monkeypatch, "data", command, str(target), *extra, "--json")
        assert code == 2, (command, out, err)
        assert target.name in err.replace("\n", "")
        assert json.loads(out)["error"]
    assert not (tmp_path / "out.nii.gz").exists()


def test_inspect_labels_axes_in_one_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aimd.imaging.nifti_io import write_nifti
    from aimd.imaging.volume import Volume

    write_nifti(Volume(np.zeros((4, 5, 6), dtype=np.int16), spacing=(0.5, 0.7, 2.0)), tmp_path / "v.nii.gz")
    code, out, _ = aimd(capsys, monkeypatch, "data", "inspect", str(tmp_path / "v.nii.gz"), "--json")
    info = json.loads(out)
    assert code == 0 and info["shape"] == [4, 5, 6] and info["size"] == [6, 5, 4]
    assert info["axes"]["size"] == info["axes"]["spacing"] == "x, y, z"
    code, text, _ = aimd(capsys, monkeypatch, "data", "inspect", str(tmp_path / "v.nii.gz"))
    assert "size (x, y, z)" in text and "6 × 5 × 4" in text and "spacing (x, y, z) mm" in text
