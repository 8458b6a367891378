"""Leak paths of ``aimd data deid`` (001 §7.3, §11.2.1, §11.2.2; 003 §2.2.3), one regression test each.

Each test builds the kind of file real archives hold (an encapsulated PDF report, an attribute stored as
UN, free text outside the profile table, numbers in clinical JSON, a stray ``.img``, pinyin spellings of a
name written in characters, NIfTI header text, identifying folder names, a truncated DICOM file, symbolic
links) and checks the output bytes themselves, so none of them can pass by trusting the de-identifier.
"""

from __future__ import annotations

import ast
import gzip
import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from typer.testing import CliRunner

import aimd.imaging.deid.runner as deid_runner
import aimd.imaging.deid.runner.run as deid_run
from aimd.cli.main import app
from aimd.imaging.deid import DeidOptions, deidentify_path
from aimd.imaging.deid.dicom import DicomResult
from aimd.imaging.deid.profile import PROFILE_BY_TAG
from aimd.imaging.deid.residual import ResidualScanner

NAME_ZH = "张伟强"
NAME_PINYIN = "Zhang Weiqiang"
RESIDENT_ID = "110105194912310021"
MOBILE = "13812345678"
PATIENT_ID = "P0012345"

runner = CliRunner()


def _ct(name: str = NAME_ZH, pid: str = PATIENT_ID) -> Dataset:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = name
    ds.PatientID = pid
    return ds


def _all_bytes(root: Path) -> bytes:
    """Every byte under ``root``: file contents, inflated gzip members, and the relative paths."""
    out = []
    for path in sorted(root.rglob("*")):
        out.append(path.relative_to(root).as_posix().encode("utf-8"))
        if path.is_file():
            data = path.read_bytes()
            out.append(data)
            if data[:2] == b"\x1f\x8b":
                out.append(gzip.decompress(data))
    return b"\n".join(out)


def _assert_absent(root: Path, *secrets: str) -> None:
    blob = _all_bytes(root).lower()
    for secret in secrets:
        for encoding in ("utf-8", "gb18030"):
            assert secret.lower().encode(encoding) not in blob, (secret, encoding)


def _statuses(report: deid_runner.DeidReport) -> dict[str, str]:
    return {f.path: f.status for f in report.files}


# ---------------------------------------------------------------------- binary, UN, encapsulated
def _encapsulated_pdf() -> Dataset:
    """An Encapsulated PDF report object whose PDF text names the patient (as scanned reports do)."""
    pdf = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\nBT /F1 12 Tf 72 712 Td "
        + f"(Patient {NAME_PINYIN} ID {RESIDENT_ID} Tel {MOBILE}) Tj ET\n%%EOF\n".encode("ascii")
    )
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "DOC"
    ds.PatientName = NAME_ZH
    ds.PatientID = PATIENT_ID
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.BurnedInAnnotation = "NO"
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def test_binary_un_and_encapsulated_values_never_reach_dst(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _encapsulated_pdf().save_as(src / "report.dcm", enforce_file_format=True)
    ds = _ct()
    text = f"{NAME_PINYIN} {MOBILE}".encode()
    kernel = tag_for_keyword("ConvolutionKernel")
    assert kernel not in PROFILE_BY_TAG
    ds[kernel] = DataElement(kernel, "UN", text)  # a known attribute stored as UN by an old PACS
    ds[0x0018FFF0] = DataElement(0x0018FFF0, "UN", text)  # unknown public attribute: bytes only
    ds[0x00291010] = DataElement(0x00291010, "OB", text)  # private binary without a creator
    icon = Dataset()
    icon.Rows, icon.Columns, icon.BitsAllocated, icon.BitsStored, icon.HighBit = 8, 8, 8, 8, 7
    icon.SamplesPerPixel, icon.PhotometricInterpretation, icon.PixelRepresentation = 1, "MONOCHROME2", 0
    icon.PixelData = text.ljust(64, b" ")
    ds.IconImageSequence = Sequence([icon])
    ds.save_as(src / "ct.dcm", enforce_file_format=True)
    report = deidentify_path(src, tmp_path / "dst", tmp_path / "map.json", salt="k")
    assert _statuses(report) == {"report.dcm": "deidentified", "ct.dcm": "deidentified"}
    out = pydicom.dcmread(tmp_path / "dst" / "ct.dcm")
    assert "IconImageSequence" not in out and 0x0018FFF0 not in out and 0x00291010 not in out
    assert out.PixelData == pydicom.dcmread(src / "ct.dcm").PixelData  # pixels kept
    assert MOBILE not in str(out.get("ConvolutionKernel", ""))  # decoded to SH, then cleaned
    doc = pydicom.dcmread(tmp_path / "dst" / "report.dcm")
    assert "EncapsulatedDocument" not in doc
    assert any("encapsulated document" in w for w in report.files[1].details.get("warnings", []))
    _assert_absent(tmp_path / "dst", NAME_PINYIN, "Weiqiang", NAME_ZH, RESIDENT_ID, MOBILE, PATIENT_ID)


def test_free_text_outside_the_table_gets_the_report_text_rules(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    ds = _ct()
    reason = tag_for_keyword("ReasonForTheRequestedProcedure")
    assert reason not in PROFILE_BY_TAG
    ds.ReasonForTheRequestedProcedure = f"患者李娜，身份证号{RESIDENT_ID}，电话{MOBILE}，咳嗽两周"
    ds.FilterType = "王小明"  # a name the map does not know, in a short text attribute
    ds.save_as(src / "ct.dcm", enforce_file_format=True)
    report = deidentify_path(src, tmp_path / "dst", tmp_path / "map.json", salt="k")
    assert report.exit_code == 0
    out = pydicom.dcmread(tmp_path / "dst" / "ct.dcm")
    assert "咳嗽两周" in out.ReasonForTheRequestedProcedure  # clinical meaning kept
    _assert_absent(tmp_path / "dst", "李娜", RESIDENT_ID, MOBILE)


# ---------------------------------------------------------------------- JSON numbers
def test_identifiers_stored_as_json_numbers_are_replaced(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    clinical = {
        "visit": {"weight_kg": 61.5, "systolic": 128, "follow_up_contact": int(MOBILE)},
        "insurance": [{"holder_number": int(RESIDENT_ID), "plan": "basic"}],
        "measurements": [12, 3.5, 1024],
    }
    (src / "clinical.json").write_text(json.dumps(clinical), encoding="utf-8")
    report = deidentify_path(src, tmp_path / "dst", tmp_path / "map.json", salt="k")
    assert report.exit_code == 0
    out = json.loads((tmp_path / "dst" / "clinical.json").read_text(encoding="utf-8"))
    assert out["visit"]["weight_kg"] == 61.5 and out["visit"]["systolic"] == 128
    assert out["measurements"] == [12, 3.5, 1024]
    _assert_absent(tmp_path / "dst", MOBILE, RESIDENT_ID)


# ---------------------------------------------------------------------- files judged by extension
def test_img_without_its_header_is_not_copied_through(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "scan.img").write_bytes(f"Patient {NAME_PINYIN} {MOBILE}\n".encode() * 40)  # not voxels
    pair = nib.AnalyzeImage(np.arange(24, dtype=np.int16).reshape(2, 3, 4), np.eye(4))
    nib.save(pair, src / "brain.img")
    report = deidentify_path(src, tmp_path / "dst", tmp_path / "map.json", salt="k")
    statuses = _statuses(report)
    assert statuses["scan.img"] == "not handled" and statuses["brain.img"] == "copied"
    assert report.exit_code == 1
    assert not (tmp_path / "dst" / "scan.img").exists()
    back = nib.load(tmp_path / "dst" / "brain.img")
    assert np.array_equal(back.get_fdata(), pair.get_fdata())
    _assert_absent(tmp_path / "dst", NAME_PINYIN, MOBILE)


# ---------------------------------------------------------------------- pinyin and labelled names
def test_pinyin_spelling_and_labelled_names_in_text_and_json(tmp_path: Path) -> None:
    case = tmp_path / "src" / "case1"
    case.mkdir(parents=True)
    _ct().save_as(case / "ct.dcm", enforce_file_format=True)
    (case / "report_en.txt").write_text(
        f"Patient {NAME_PINYIN} was examined on 2004-01-19. WEIQIANG ZHANG tolerated contrast.\n", encoding="utf-8"
    )
    (case / "clinical.json").write_text(
        json.dumps({"notes": "family contact Wang Xiaoming called; spouse Li Na agrees", "allergies": "none"}),
        encoding="utf-8",
    )
    report = deidentify_path(tmp_path / "src", tmp_path / "dst", tmp_path / "map.json", salt="k")
    assert report.exit_code == 0
    text = (tmp_path / "dst" / "case1" / "report_en.txt").read_text(encoding="utf-8")
    assert "tolerated contrast" in text
    _assert_absent(tmp_path / "dst", "Weiqiang", "Xiaoming", "Li Na")


# ---------------------------------------------------------------------- NIfTI headers and names
def test_nifti_header_text_and_identifying_file_and_folder_names(tmp_path: Path) -> None:
    folder = tmp_path / "src" / f"zhang_weiqiang_{RESIDENT_ID}"
    folder.mkdir(parents=True)
    _ct().save_as(folder / "ct.dcm", enforce_file_format=True)
    img = nib.Nifti1Image(np.ones((4, 4, 3), np.int16), np.diag([0.8, 0.8, 2.5, 1.0]))
    img.header["descrip"] = b"Li Na follow-up"
    img.header["aux_file"] = b"wangxiaoming.txt"
    img.header["intent_name"] = PATIENT_ID.encode()
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, f"PatientName={NAME_PINYIN}".encode()))
    nib.save(img, folder / f"{MOBILE}_t1.nii.gz")
    report = deidentify_path(tmp_path / "src", tmp_path / "dst", tmp_path / "map.json", salt="k")
    assert report.exit_code == 0, report.summary()["left_out"]
    niftis = list((tmp_path / "dst").rglob("*.nii.gz"))
    assert len(niftis) == 1
    out = nib.load(niftis[0])
    assert [out.header[k].item() for k in ("descrip", "aux_file", "intent_name")] == [b"", b"", b""]
    assert np.array_equal(out.get_fdata(), img.get_fdata()) and np.allclose(out.affine, img.affine)
    _assert_absent(tmp_path / "dst", "Li Na", "wangxiaoming", PATIENT_ID, NAME_PINYIN, "weiqiang", RESIDENT_ID, MOBILE)
    log = (tmp_path / "dst" / "deid_log.json").read_text(encoding="utf-8")
    assert "weiqiang" not in log.lower() and RESIDENT_ID not in log and MOBILE not in log


# ---------------------------------------------------------------------- truncated DICOM
def test_truncated_dicom_is_not_handled_never_deidentified(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    data = Path(get_testdata_file("CT_small.dcm", download=False)).read_bytes()
    (src / "cut_header.dcm").write_bytes(data[:1000])  # ends between two header attributes
    (src / "cut_value.dcm").write_bytes(data[:1003])  # ends inside an attribute value
    report = deidentify_path(src, tmp_path / "dst", tmp_path / "map.json", salt="k")
    assert _statuses(report) == {"cut_header.dcm": "not handled", "cut_value.dcm": "not handled"}
    assert report.exit_code == 1 and report.log["summary"]["not_handled"] == 2
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["deid_log.json"]


# ---------------------------------------------------------------------- symbolic links
def test_symlinks_are_reported_and_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"{NAME_PINYIN} {MOBILE}", encoding="utf-8")
    src = tmp_path / "src"
    src.mkdir()
    _ct().save_as(src / "ct.dcm", enforce_file_format=True)
    os.symlink(outside / "secret.txt", src / "notes.txt")
    os.symlink(outside, src / "linked_folder")
    report = deidentify_path(src, tmp_path / "dst", tmp_path / "map.json", salt="k")
    statuses = _statuses(report)
    assert statuses["notes.txt"] == "not handled" and statuses["linked_folder"] == "not handled"
    assert statuses["ct.dcm"] == "deidentified" and report.exit_code == 1
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == ["ct.dcm", "deid_log.json"]
    _assert_absent(tmp_path / "dst", NAME_PINYIN, MOBILE)


# ---------------------------------------------------------------------- warnings and exit codes
def test_cli_prints_warnings_and_exits_1_with_the_count(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _ct().save_as(src / "ct.dcm", enforce_file_format=True)
    (src / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    result = runner.invoke(
        app,
        ["data", "deid", str(src), str(tmp_path / "dst"), "--map", str(tmp_path / "map.json"), "--keep-private-tags"],
    )
    assert result.exit_code == 1
    assert "1 of 2 files left out" in result.output
    assert "warning:" in result.output and "private attributes kept" in result.output
    result = runner.invoke(
        app,
        [
            "data",
            "deid",
            str(src),
            str(tmp_path / "dst2"),
            "--map",
            str(tmp_path / "map.json"),
            "--keep-private-tags",
            "--json",
        ],
    )
    payload = json.loads(result.stdout[result.stdout.index("{") :])
    assert payload["warnings"] >= 1 and payload["not_handled"] == 1 and payload["exit_code"] == 1


# ---------------------------------------------------------------------- the independent scan
def test_residual_scan_catches_a_broken_deidentifier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug that leaves headers untouched is caught by the scan, which shares no code with it."""
    src = tmp_path / "src"
    src.mkdir()
    _ct().save_as(src / "ct.dcm", enforce_file_format=True)
    (src / "note.txt").write_text("follow-up in 3 months", encoding="utf-8")

    def broken(ds: Dataset, mapping: object, options: object, *, max_shift_days: int) -> DicomResult:
        deid_run.register_patient(ds, mapping, max_shift_days=max_shift_days)  # type: ignore[arg-type]
        return DicomResult(patient_key=str(ds.PatientID))

    monkeypatch.setattr(deid_run, "deidentify_dataset", broken)
    report = deidentify_path(src, tmp_path / "dst", tmp_path / "map.json", salt="k")
    statuses = _statuses(report)
    assert statuses["ct.dcm"] == "failed" and statuses["note.txt"] == "copied"
    assert report.exit_code == 1 and report.log["residual_scan"]["files_with_hits"] == 1
    assert not (tmp_path / "dst" / "ct.dcm").exists()


def test_residual_scan_module_imports_nothing_from_the_deidentifier() -> None:
    source = Path(deid_runner.__file__).parent.with_name("residual.py").read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
    assert not [m for m in imported if m.startswith("aimd")], imported


@pytest.mark.parametrize(
    ("original", "kind", "written"),
    [
        ("SIMPSON^HOMER^J^", "NAME", b"homer simpson"),
        ("SIMPSON^HOMER^J^", "NAME", "Simpson, Homer".encode("utf-16-le")),
        ("张伟强", "NAME", "家属张伟强".encode("gb18030")),
        ("张伟强", "NAME", b"(0010,0010) PN [ZHANG^WEIQIANG]"),
        ("张伟强", "NAME", b"Zhang Wei Qiang"),
        ("cookie-47", "ID", b"\x10\x00\x20\x00LO\x0a\x00cookie-47 "),
        ("1.3.6.1.4.1.5962.1.2.1.20040119072730.12322", "UID", b"ref 1.3.6.1.4.1.5962.1.2.1.20040119072730.12322\0"),
        ("", "ID", b"tel 13812345678"),
        ("", "ID", f"id {RESIDENT_ID}".encode()),
    ],
)
def test_residual_scanner_finds_variants_in_raw_bytes(original: str, kind: str, written: bytes) -> None:
    assert ResidualScanner({original: kind}).scan_bytes(written)


@pytest.mark.parametrize(
    "clean",
    [
        b"ANON^8f3a21",
        b"1.3.6.1.4.1.5962.1.2.1.20040119072730.123229",
        b"sha256 a13812345678f0",
        b"Homerton",
        b"2.25.138123456789012345678",
    ],
)
def test_residual_scanner_has_word_and_number_boundaries(clean: bytes) -> None:
    scanner = ResidualScanner({"SIMPSON^HOMER": "NAME", "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322": "UID"})
    assert scanner.scan_bytes(clean) == []


def test_left_out_file_names_are_checked_before_they_reach_the_log(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _ct().save_as(src / "ct.dcm", enforce_file_format=True)
    (src / f"{RESIDENT_ID}.bin").write_bytes(b"\x00\x01")
    report = deidentify_path(
        src, tmp_path / "dst", tmp_path / "map.json", salt="k", options=DeidOptions.from_settings()
    )
    assert report.exit_code == 1
    log = (tmp_path / "dst" / "deid_log.json").read_text(encoding="utf-8")
    assert RESIDENT_ID not in log


def test_residual_scan_reads_patterns_in_nifti_text_not_in_voxels(tmp_path: Path) -> None:
    """Voxel or compressed bytes that happen to spell an e-mail address are not a finding; header text is."""
    import gzip as _gzip

    import nibabel as nib

    from aimd.imaging.deid.residual import ResidualScanner

    voxels = np.frombuffer(b"xx ab@cd.ef yy " * 16, dtype=np.uint8).reshape(-1, 1, 1).copy()  # bytes stay in order
    clean = tmp_path / "clean.nii"
    nib.save(nib.Nifti1Image(voxels, np.eye(4)), clean)
    scanner = ResidualScanner({"Zhang^Weiqiang": "NAME"})
    assert scanner.scan_file(clean) == []
    packed = tmp_path / "clean.nii.gz"
    packed.write_bytes(_gzip.compress(clean.read_bytes()))
    assert scanner.scan_file(packed) == []
    leaky = nib.Nifti1Image(voxels, np.eye(4))
    leaky.header["descrip"] = b"contact ab@cd.ef"
    nib.save(leaky, tmp_path / "leaky.nii.gz")
    assert scanner.scan_file(tmp_path / "leaky.nii.gz") == ["EMAIL"]
    named = np.frombuffer(b"ZHANG WEIQIANG  " * 4, dtype=np.uint8).reshape(-1, 1, 1).copy()
    nib.save(nib.Nifti1Image(named, np.eye(4)), tmp_path / "named.nii.gz")
    assert scanner.scan_file(tmp_path / "named.nii.gz") == ["NAME"]  # identifiers: every byte, voxels too
