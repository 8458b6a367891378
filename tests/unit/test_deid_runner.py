"""``aimd data deid`` end to end (001 §7.3, §11.2.1–11.2.2; 003 §2.2.3): phantom dataset, corrupt input,
path rules, atomic output and exit codes.

The phantom's reports list every identifying phrase they contain under ``phi`` (ground truth written by
the phantom generator): none of them may appear in any output file.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from aimd.cli.main import app
from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.imaging.deid import DeidMap, deidentify_path
from aimd.phantoms import generate_dataset

runner = CliRunner()


def _ct_small() -> Path:
    return Path(str(get_testdata_file("CT_small.dcm", download=False)))


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("deid_e2e")
    src = root / "src"
    generate_dataset(src, cases=2, seed=1, size=32, workers=1)
    deidentify_path(src, root / "dst", root / "secure" / "map.json", salt="e2e-salt")
    deidentify_path(src, root / "dst2", root / "secure" / "map.json")
    return {"src": src, "dst": root / "dst", "dst2": root / "dst2", "map": root / "secure" / "map.json"}


def _files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


DICOM_IDENTIFIERS = (
    "PatientName",
    "PatientID",
    "AccessionNumber",
    "InstitutionName",
    "ReferringPhysicianName",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
)


def _days(after: str, before: str) -> int:
    return (dt.datetime.strptime(after, "%Y%m%d") - dt.datetime.strptime(before, "%Y%m%d")).days


def _secrets(src: Path) -> set[str]:
    """Identifying strings of the phantom, read from its own ground truth and DICOM headers."""
    found: set[str] = set()
    for report in src.glob("cases/*/report.json"):
        doc = json.loads(report.read_text(encoding="utf-8"))
        for lang in ("zh", "en"):
            found |= {p["text"] for p in doc[lang]["phi"] if p["kind"] not in ("age",)}
    for clinical in src.glob("cases/*/clinical.json"):
        person = json.loads(clinical.read_text(encoding="utf-8"))["patient"]
        found |= {
            str(person[k])
            for k in (
                "name_zh",
                "name_en",
                "id_number",
                "phone",
                "address_zh",
                "address_en",
                "record_number",
                "admission_number",
            )
        }
    for dcm in src.glob("cases/*/*.dcm"):
        ds = pydicom.dcmread(dcm)
        found |= {str(ds.get(k, "")) for k in DICOM_IDENTIFIERS}
        found |= set(str(ds.PatientName).replace("=", "^").split("^"))
    return {s for s in found if len(s) >= 2}


def _contains(text: str, secret: str) -> bool:
    if secret.isascii():
        pattern = rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])"
        return re.search(pattern, text, re.IGNORECASE) is not None
    return secret in text


def test_phantom_output_has_no_identifier_left(phantom: dict[str, Path]) -> None:
    secrets = _secrets(phantom["src"])
    assert len(secrets) > 30
    src_files, dst_files = _files(phantom["src"]), _files(phantom["dst"])
    assert set(dst_files) == set(src_files) | {"deid_log.json"}
    for rel, path in dst_files.items():
        data = path.read_bytes()
        if rel.endswith(".gz"):
            data = gzip.decompress(data)
        text = data.decode("utf-8", "ignore") + data.decode("latin-1")
        left = [s for s in secrets if _contains(text, s)]
        assert not left, f"{rel} still holds {left}"


def test_phantom_spans_cover_the_same_words(phantom: dict[str, Path]) -> None:
    for src_report in phantom["src"].glob("cases/*/report.json"):
        dst_report = phantom["dst"] / src_report.relative_to(phantom["src"])
        before = json.loads(src_report.read_text(encoding="utf-8"))
        after = json.loads(dst_report.read_text(encoding="utf-8"))
        for lang in ("zh", "en"):
            moved = {s["id"]: s for s in after[lang]["spans"]}
            assert len(moved) == len(before[lang]["spans"]) > 0
            for span in before[lang]["spans"]:
                new = moved[span["id"]]
                covered = after[lang]["text"][new["start"] : new["end"]]
                assert covered == before[lang]["text"][span["start"] : span["end"]] == new["text"]
            txt = (dst_report.parent / f"report_{lang}.txt").read_text(encoding="utf-8")
            assert txt == after[lang]["text"]


def _exam_dates(text: str) -> list[dt.date]:
    zh = re.findall(r"检查日期：(\d{4})年(\d{1,2})月(\d{1,2})日", text)
    found = [dt.date(int(y), int(m), int(d)) for y, m, d in zh]
    found += [dt.date.fromisoformat(d) for d in re.findall(r"Exam date: (\d{4}-\d{2}-\d{2})", text)]
    return found


def test_phantom_dates_shift_by_one_offset_per_patient(phantom: dict[str, Path]) -> None:
    offsets_by_case = []
    for case in sorted((phantom["src"] / "cases").iterdir()):
        out = phantom["dst"] / "cases" / case.name
        shifts = set()
        for dcm in [case / "dx.dcm", *sorted((case / "ct").glob("*.dcm"))[:3]]:
            a = pydicom.dcmread(dcm)
            b = pydicom.dcmread(out / dcm.relative_to(case))
            shifts.add(_days(b.StudyDate, a.StudyDate))
        for name in ("report_zh.txt", "report_en.txt"):
            before = _exam_dates((case / name).read_text(encoding="utf-8"))
            after = _exam_dates((out / name).read_text(encoding="utf-8"))
            assert before and len(before) == len(after)
            shifts |= {(n - o).days for o, n in zip(before, after, strict=True)}
        c0 = json.loads((case / "clinical.json").read_text(encoding="utf-8"))
        c1 = json.loads((out / "clinical.json").read_text(encoding="utf-8"))
        shifts.add((dt.date.fromisoformat(c1["scan_date"]) - dt.date.fromisoformat(c0["scan_date"])).days)
        for lab0, lab1 in zip(c0["labs"], c1["labs"], strict=True):
            shifts.add(
                (dt.date.fromisoformat(lab1["measured_date"]) - dt.date.fromisoformat(lab0["measured_date"])).days
            )
            assert lab0["value"] == lab1["value"] and lab0["days_from_scan"] == lab1["days_from_scan"]
        assert len(shifts) == 1 and 0 not in shifts, shifts
        offsets_by_case.append(shifts.pop())
    assert len(offsets_by_case) == 2


def test_phantom_images_geometry_and_index(phantom: dict[str, Path]) -> None:
    src, dst = phantom["src"], phantom["dst"]
    for nii in src.glob("cases/*/*.nii.gz"):
        a, b = nib.load(nii), nib.load(dst / nii.relative_to(src))
        assert np.array_equal(a.get_fdata(), b.get_fdata()) and np.array_equal(a.affine, b.affine)
        assert b.header["descrip"].item() == b"" and b.header["aux_file"].item() == b""
    studies = {}
    for dcm in src.glob("cases/*/ct/*.dcm"):
        a, b = pydicom.dcmread(dcm), pydicom.dcmread(dst / dcm.relative_to(src))
        assert a.PixelData == b.PixelData
        assert a.ImagePositionPatient == b.ImagePositionPatient and a.PixelSpacing == b.PixelSpacing
        studies.setdefault(dcm.parent.parent.name, set()).add(b.StudyInstanceUID)
    assert all(len(uids) == 1 for uids in studies.values()) and len(studies) == 2
    index = json.loads((dst / "dataset.json").read_text(encoding="utf-8"))
    entries = [f for case in index["cases"] for f in case["files"]]
    assert entries
    for entry in entries:
        assert sha256_file(dst / entry["path"]) == entry["sha256"]
        assert (dst / entry["path"]).stat().st_size == entry["bytes"]
    new_study = {case["id"]: case["study_instance_uid"] for case in index["cases"]}
    for case_id, uids in studies.items():
        assert {new_study[case_id]} == uids


def test_phantom_rerun_with_same_map_is_identical(phantom: dict[str, Path]) -> None:
    first, second = _files(phantom["dst"]), _files(phantom["dst2"])
    assert set(first) == set(second)
    for rel in first:
        if rel != "deid_log.json":
            assert first[rel].read_bytes() == second[rel].read_bytes(), rel
    doc = json.loads(phantom["map"].read_text(encoding="utf-8"))
    assert len(doc["runs"]) == 2 and len(doc["patients"]) == 2
    assert stat.S_IMODE(phantom["map"].stat().st_mode) == 0o600


def test_phantom_log_records_rules_versions_and_results(phantom: dict[str, Path]) -> None:
    log = json.loads((phantom["dst"] / "deid_log.json").read_text(encoding="utf-8"))
    assert log["tool"]["versions"]["pydicom"] == pydicom.__version__
    assert {o["code"] for o in log["profile"]["options"]} == {"113100", "113107", "113108"}
    assert log["profile"]["table_entries"] >= 300
    assert {r["name"] for r in log["text_rules"]} >= {"cn_resident_id", "zh_name_labelled", "date_zh"}
    assert log["summary"]["failed"] == 0 and log["residual_scan"]["files_with_hits"] == 0
    assert log["residual_scan"]["identifiers_searched"] > 20
    lesion_overlaps = [o for o in log["span_overlaps"] if o["list"] == "spans"]
    assert not lesion_overlaps
    text_files = [f for f in log["files"] if f["kind"] == "text"]
    assert text_files and all(f["patient_context"] == "dicom in folder" for f in text_files)
    assert all(f["rules"] for f in text_files)


def _mixed_folder(root: Path) -> Path:
    src = root / "case"
    (src / "img").mkdir(parents=True)
    shutil.copy(_ct_small(), src / "img" / "good.dcm")
    data = _ct_small().read_bytes()
    (src / "img" / "truncated.dcm").write_bytes(data[: len(data) - 5000])
    (src / "report.txt").write_text("姓名：张伟\n检查日期：2004-01-19\n右肺结节 6 mm。", encoding="utf-8")
    (src / "broken.txt").write_bytes(b"abc\x80\x80\x80def")
    (src / "broken.json").write_text("{not json", encoding="utf-8")
    (src / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    return src


def test_corrupt_files_reported_and_left_out(tmp_path: Path) -> None:
    src = _mixed_folder(tmp_path)
    report = deidentify_path(src, tmp_path / "out", tmp_path / "map.json")
    assert report.exit_code == 1
    statuses = {f.path: f.status for f in report.files}
    assert {p for p, s in statuses.items() if s == "not handled"} == {
        "img/truncated.dcm",
        "broken.txt",
        "broken.json",
        "photo.png",
    }
    out = _files(tmp_path / "out")
    assert set(out) == {"img/good.dcm", "report.txt", "deid_log.json"}
    assert report.summary()["not_handled"] == 4 and len(report.summary()["left_out"]) == 4
    text = out["report.txt"].read_text(encoding="utf-8")
    original = pydicom.dcmread(_ct_small())
    new = pydicom.dcmread(out["img/good.dcm"])
    shift = _days(new.StudyDate, original.StudyDate)
    expected = dt.date(2004, 1, 19) + dt.timedelta(days=shift)
    assert f"检查日期：{expected.isoformat()}" in text and "张伟" not in text


def test_cli_exit_codes_and_json(tmp_path: Path) -> None:
    src = _mixed_folder(tmp_path)
    result = runner.invoke(
        app, ["data", "deid", str(src), str(tmp_path / "out"), "--map", str(tmp_path / "m.json"), "--json"]
    )
    assert result.exit_code == 1
    payload = json.loads(result.stdout[result.stdout.index("{") :])
    assert payload["not_handled"] == 4 and payload["exit_code"] == 1
    assert {item["path"] for item in payload["left_out"]} >= {"img/truncated.dcm", "photo.png"}
    ok = tmp_path / "ok"
    ok.mkdir()
    shutil.copy(_ct_small(), ok / "a.dcm")
    result = runner.invoke(
        app, ["data", "deid", str(ok), str(tmp_path / "ok_out"), "--map", str(tmp_path / "m2.json"), "--json"]
    )
    assert result.exit_code == 0, result.output
    again = runner.invoke(
        app, ["data", "deid", str(ok), str(tmp_path / "ok_out"), "--map", str(tmp_path / "m2.json"), "--json"]
    )
    assert isinstance(again.exception, InvalidInputError)  # DST not empty without --force: exit 2 in main
    forced = runner.invoke(
        app,
        ["data", "deid", str(ok), str(tmp_path / "ok_out"), "--map", str(tmp_path / "m2.json"), "--force", "--json"],
    )
    assert forced.exit_code == 0


def _aimd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "aimd.cli.main", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("case", ["map_in_dst", "dst_in_src", "missing_src"])
def test_bad_paths_exit_2_without_output(tmp_path: Path, case: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(_ct_small(), src / "a.dcm")
    dst, mapfile = tmp_path / "dst", tmp_path / "map.json"
    if case == "map_in_dst":
        mapfile = dst / "map.json"
    elif case == "dst_in_src":
        dst = src / "out"
    else:
        src = tmp_path / "nope"
    proc = _aimd("data", "deid", str(src), str(dst), "--map", str(mapfile))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not dst.exists() and not mapfile.exists()


def test_nothing_half_written_when_the_map_cannot_be_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(_ct_small(), src / "a.dcm")

    def broken_save(self: DeidMap, path: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(DeidMap, "save", broken_save)
    with pytest.raises(OSError):
        deidentify_path(src, tmp_path / "dst", tmp_path / "map.json")
    assert not (tmp_path / "dst").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".dst")]


def test_map_inside_src_is_never_copied_and_identifying_folder_renamed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "1CT1").mkdir(parents=True)  # the folder is named after CT_small's PatientID
    shutil.copy(_ct_small(), src / "1CT1" / "a.dcm")
    deidentify_path(src, tmp_path / "dst1", src / "map.json")
    report = deidentify_path(src, tmp_path / "dst2", src / "map.json")
    names = set(_files(tmp_path / "dst2"))
    assert "map.json" not in names and not any("1CT1" in n for n in names)
    assert {f.status for f in report.files if f.path == "map.json"} == {"skipped"}


def test_lone_text_file_uses_the_patient_offset_from_the_map(tmp_path: Path) -> None:
    first = tmp_path / "case"
    first.mkdir()
    shutil.copy(_ct_small(), first / "a.dcm")
    mapfile = tmp_path / "map.json"
    deidentify_path(first, tmp_path / "out1", mapfile)
    offset = DeidMap.load(mapfile).patient("1CT1", max_shift_days=365).date_offset_days
    note = tmp_path / "note.txt"
    note.write_text("Patient ID: 1CT1, follow-up 2004-02-01.", encoding="utf-8")
    report = deidentify_path(note, tmp_path / "out2", mapfile)
    text = (tmp_path / "out2" / "note.txt").read_text(encoding="utf-8")
    expected = dt.date(2004, 2, 1) + dt.timedelta(days=offset)
    assert expected.isoformat() in text and "1CT1" not in text
    assert report.files[0].details["patient_context"] == "identifier in text"


def test_nifti_header_text_and_extensions_cleaned(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    img = nib.Nifti1Image(data, np.diag([0.7, 0.7, 2.5, 1.0]))
    img.header["descrip"] = b"Name: Hua Song 2023-02-03"
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"PatientName=SONG^HUA; ID 1209457875"))
    nib.save(img, src / "ct.nii.gz")
    nib.save(nib.Nifti1Image(data, np.eye(4)), src / "plain.nii")
    report = deidentify_path(src, tmp_path / "dst", tmp_path / "map.json")
    assert report.exit_code == 0
    out = nib.load(tmp_path / "dst" / "ct.nii.gz")
    assert np.array_equal(np.asarray(out.dataobj), data)
    assert np.allclose(out.affine, img.affine)
    assert b"Hua Song" not in out.header["descrip"].item() and not out.header.extensions
    raw = gzip.decompress((tmp_path / "dst" / "ct.nii.gz").read_bytes())
    assert b"SONG" not in raw and b"1209457875" not in raw
    assert (tmp_path / "dst" / "plain.nii").read_bytes() == (src / "plain.nii").read_bytes()


def test_cli_remove_dates_and_copy_unknown(tmp_path: Path) -> None:
    src = tmp_path / "case"
    src.mkdir()
    shutil.copy(_ct_small(), src / "a.dcm")
    (src / "note.txt").write_text("检查日期：2004-01-19，复查 2004年3月1日。", encoding="utf-8")
    (src / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    result = runner.invoke(
        app,
        [
            "data",
            "deid",
            str(src),
            str(tmp_path / "out"),
            "--map",
            str(tmp_path / "m.json"),
            "--remove-dates",
            "--remove-characteristics",
            "--copy-unknown",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    ds = pydicom.dcmread(tmp_path / "out" / "a.dcm")
    assert ds.get("StudyDate", "") == "" and ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert {item.CodeValue for item in ds.DeidentificationMethodCodeSequence} == {"113100"}
    assert "PatientSex" not in ds or ds.PatientSex == ""
    note = (tmp_path / "out" / "note.txt").read_text(encoding="utf-8")
    assert note == "检查日期：[DATE]，复查 [DATE]。"
    assert (tmp_path / "out" / "photo.png").read_bytes() == (src / "photo.png").read_bytes()
