"""DICOM de-identification (001 §7.3, §11.2.1; 003 §2.2.3) on pydicom's bundled files and a synthetic study.

Expectations come from the PS3.15 table codes and from the original files, never from what the code
under test chose: removed/emptied/dummied attributes must not keep their original value, geometry and
pixel data must be byte-identical, and a raw byte search of each output finds no original identifier.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from aimd.core.errors import InvalidInputError
from aimd.imaging.deid import DeidMap, ProfileOptions, deidentify_dicom_file, read_dicom
from aimd.imaging.deid.profile import BASIC_PROFILE, PROFILE_BY_TAG

MODALITY_FILES = [
    "CT_small.dcm",  # CT, private tags
    "MR_small.dcm",  # MR
    "rtdose.dcm",  # RT dose, implicit VR
    "SC_rgb.dcm",  # secondary capture, referring physician
    "JPEG2000.dcm",  # NM, JPEG 2000, private tags
    "liver.dcm",  # multi-frame SEG with per-frame geometry
    "emri_small_big_endian.dcm",  # big endian
    "US1_J2KR.dcm",  # US, JPEG 2000 lossless (pydicom-data)
    "MR-SIEMENS-DICOM-WithOverlays.dcm",  # overlays (60xx) (pydicom-data)
    "rtplan.dcm",  # RT plan, nested sequences
]
GEOMETRY = (
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "SpacingBetweenSlices",
    "RescaleSlope",
    "RescaleIntercept",
    "Rows",
    "Columns",
    "BitsAllocated",
)
STRICT = ProfileOptions(retain_modified_dates=False, retain_patient_characteristics=False)
PLACEHOLDERS = {"", "ANONYMIZED", "ANONYMOUS", "ANONYMIZED^", "0", "19000101", "000000"}


def _source(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"{name} not installed (pydicom / pydicom-data)")
    return Path(str(path))


def _run(
    name: str, tmp_path: Path, options: ProfileOptions = ProfileOptions(), mapping: DeidMap | None = None
) -> tuple[Dataset, Dataset, DeidMap, Path]:
    src = _source(name)
    mapping = mapping or DeidMap.new("unit-test-salt")
    out = tmp_path / f"out_{name}"
    deidentify_dicom_file(src, out, mapping, options, max_shift_days=100)
    return pydicom.dcmread(src), pydicom.dcmread(out), mapping, out


def _values(ds: Dataset, tag: int) -> list[str]:
    return [str(e.value) for e in ds.iterall() if int(e.tag) == tag and e.VR != "SQ"]


def _identifiers(ds: Dataset) -> set[str]:
    """Original identifying strings of a dataset, read independently of the code under test."""
    found: set[str] = set()
    for keyword in (
        "PatientID",
        "AccessionNumber",
        "InstitutionName",
        "ReferringPhysicianName",
        "OperatorsName",
        "PerformingPhysicianName",
        "StationName",
        "DeviceSerialNumber",
    ):
        for elem in ds.iterall():
            if elem.keyword == keyword and elem.value:
                found.add(str(elem.value))
    for part in str(ds.get("PatientName", "")).replace("=", "^").split("^"):
        found.add(part)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
        if ds.get(keyword):
            found.add(str(ds.get(keyword)))
    return {v.strip() for v in found if len(v.strip()) >= 4 and v.strip().upper() not in PLACEHOLDERS}


@pytest.mark.parametrize("name", MODALITY_FILES)
def test_d_z_x_attributes_lose_their_original_values(name: str, tmp_path: Path) -> None:
    """Every table attribute whose Basic Profile codes are only D/Z/X keeps no original value."""
    original, out, _, _ = _run(name, tmp_path, STRICT)
    checked = 0
    for elem in original.iterall():
        entry = PROFILE_BY_TAG.get(int(elem.tag))
        if entry is None or elem.VR == "SQ" or not set(entry.codes) <= {"D", "Z", "X"}:
            continue
        value = str(elem.value).strip()
        if not value or value.upper() in PLACEHOLDERS:
            continue
        checked += 1
        assert value not in _values(out, int(elem.tag)), f"{entry.keyword} kept its value in {name}"
    if name in ("CT_small.dcm", "MR_small.dcm", "SC_rgb.dcm", "rtplan.dcm"):
        assert checked >= 5


@pytest.mark.parametrize("name", MODALITY_FILES)
def test_geometry_pixels_and_sop_class_unchanged(name: str, tmp_path: Path) -> None:
    original, out, _, _ = _run(name, tmp_path)
    for keyword in GEOMETRY:
        assert original.get(keyword) == out.get(keyword), keyword
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness"):
        before = [e.value for e in original.iterall() if e.keyword == keyword]
        after = [e.value for e in out.iterall() if e.keyword == keyword]
        assert before == after, f"nested {keyword} changed"
    assert original.get("PixelData") == out.get("PixelData")
    assert original.SOPClassUID == out.SOPClassUID
    assert original.file_meta.TransferSyntaxUID == out.file_meta.TransferSyntaxUID


@pytest.mark.parametrize("name", MODALITY_FILES)
def test_private_curves_overlays_removed_and_method_recorded(name: str, tmp_path: Path) -> None:
    _, out, _, _ = _run(name, tmp_path)
    assert not [e for e in out.iterall() if e.tag.is_private]
    assert not [
        e
        for e in out
        if 0x5000 <= e.tag.group <= 0x60FF and e.tag.group % 2 == 0 and (e.tag.group & 0xFF00) in (0x5000, 0x6000)
    ]
    assert out.PatientIdentityRemoved == "YES"
    codes = {item.CodeValue for item in out.DeidentificationMethodCodeSequence}
    assert {"113100", "113107", "113108"} <= codes
    assert all(item.CodingSchemeDesignator == "DCM" for item in out.DeidentificationMethodCodeSequence)
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"


@pytest.mark.parametrize("name", MODALITY_FILES)
def test_uids_replaced_by_valid_new_uids(name: str, tmp_path: Path) -> None:
    original, out, _, _ = _run(name, tmp_path)
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
        if original.get(keyword):
            assert out.get(keyword) != original.get(keyword)
    for elem in out.iterall():
        if elem.VR == "UI" and elem.value:
            for value in elem.value if isinstance(elem.value, list) else [elem.value]:
                assert UID(str(value)).is_valid, (elem.keyword, value)
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID


@pytest.mark.parametrize("name", MODALITY_FILES)
def test_residual_byte_scan_finds_no_original_identifier(name: str, tmp_path: Path) -> None:
    original, _, _, out_path = _run(name, tmp_path)
    data = out_path.read_bytes()
    for identifier in _identifiers(original):
        assert identifier.encode("latin-1", "ignore") not in data, f"{identifier!r} left in {name}"


def test_dates_shift_by_the_patient_offset_and_characteristics_kept(tmp_path: Path) -> None:
    original, out, mapping, _ = _run("CT_small.dcm", tmp_path)
    offset = mapping.patient(str(original.PatientID), max_shift_days=100).date_offset_days
    assert 1 <= abs(offset) <= 100
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        if original.get(keyword):
            day = dt.datetime.strptime(original.get(keyword), "%Y%m%d").date()
            expected = day + dt.timedelta(days=offset)
            assert out.get(keyword) == expected.strftime("%Y%m%d"), keyword
    assert out.StudyTime == original.StudyTime  # times kept under 113107
    assert out.PatientSex == original.PatientSex  # 113108
    assert out.get("PatientBirthDate", "") == ""


def test_strict_options_remove_dates_and_characteristics(tmp_path: Path) -> None:
    original, out, _, _ = _run("CT_small.dcm", tmp_path, STRICT)
    assert out.get("StudyDate", "") != original.StudyDate
    assert "PatientSex" not in out or out.PatientSex == ""
    assert out.LongitudinalTemporalInformationModified == "REMOVED"
    codes = {item.CodeValue for item in out.DeidentificationMethodCodeSequence}
    assert codes == {"113100"}


def test_pseudonyms_are_keyed_and_consistent(tmp_path: Path) -> None:
    _, a1, map1, _ = _run("CT_small.dcm", tmp_path / "a")
    _, a2, _, _ = _run("CT_small.dcm", tmp_path / "b", mapping=DeidMap.load(_saved(map1, tmp_path)))
    _, b1, _, _ = _run("CT_small.dcm", tmp_path / "c", mapping=DeidMap.new("another-salt"))
    assert str(a1.PatientID).startswith("ANON-") and str(a1.PatientName).startswith("ANON^")
    for keyword in (
        "PatientID",
        "PatientName",
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "FrameOfReferenceUID",
        "AccessionNumber",
        "StudyDate",
    ):
        assert a1.get(keyword) == a2.get(keyword), f"re-run with the same map changed {keyword}"
    for keyword in ("PatientID", "StudyInstanceUID", "SOPInstanceUID"):
        assert a1.get(keyword) != b1.get(keyword), f"another salt gave the same {keyword}"


def _saved(mapping: DeidMap, tmp_path: Path) -> Path:
    path = tmp_path / "map.json"
    mapping.save(path)
    return path


def _synthetic_study(folder: Path) -> list[Path]:
    """Two series of three CT slices sharing one Frame of Reference; series 2 references series 1."""
    base = pydicom.dcmread(_source("CT_small.dcm"))
    study, frame = "1.2.826.0.1.3680043.8.498.100", "1.2.826.0.1.3680043.8.498.200"
    paths: list[Path] = []
    for series in (1, 2):
        for index in range(3):
            ds = copy.deepcopy(base)
            ds.StudyInstanceUID, ds.FrameOfReferenceUID = study, frame
            ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.3{series}"
            ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.4{series}{index}"
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.SeriesNumber, ds.InstanceNumber = series, index + 1
            ds.ImagePositionPatient = [-158.0, -179.0, -10.0 * index]
            ds.AccessionNumber = "ACC778899"
            ds.ReferringPhysicianName = "Moriarty^James"
            ds.InstitutionName = "Baker Street Clinic"
            item = Dataset()
            item.add_new(0x00142006, "PN", "Watson^John")  # EvaluatorName: not in the table
            item.add_new(0x00091010, "LO", "private nested")  # private inside a sequence
            ds.add_new(0x00081032, "SQ", Sequence([item]))  # ProcedureCodeSequence
            if series == 2:
                ref = Dataset()
                ref.ReferencedSOPClassUID = ds.SOPClassUID
                ref.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.8.498.41{index}"
                ds.ReferencedImageSequence = Sequence([ref])
            path = folder / f"s{series}" / f"im{index}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


def test_synthetic_study_uids_consistent_across_series(tmp_path: Path) -> None:
    sources = _synthetic_study(tmp_path / "src")
    mapping = DeidMap.new("study-salt")
    outs = {}
    for src in sources:
        out = tmp_path / "out" / src.relative_to(tmp_path / "src")
        deidentify_dicom_file(src, out, mapping, ProfileOptions(), max_shift_days=30)
        outs[src] = pydicom.dcmread(out)
    originals = {src: pydicom.dcmread(src) for src in sources}
    assert len({o.StudyInstanceUID for o in outs.values()}) == 1
    assert len({o.FrameOfReferenceUID for o in outs.values()}) == 1
    for series in ("s1", "s2"):
        group = [o for s, o in outs.items() if s.parent.name == series]
        assert len({o.SeriesInstanceUID for o in group}) == 1
    assert len({o.SeriesInstanceUID for o in outs.values()}) == 2
    assert len({o.SOPInstanceUID for o in outs.values()}) == 6
    new_sop = {str(originals[s].SOPInstanceUID): str(o.SOPInstanceUID) for s, o in outs.items()}
    for src, out in outs.items():
        if src.parent.name == "s2":
            old_ref = originals[src].ReferencedImageSequence[0].ReferencedSOPInstanceUID
            assert out.ReferencedImageSequence[0].ReferencedSOPInstanceUID == new_sop[str(old_ref)]
        nested = out[0x00081032].value[0]
        assert str(nested.get((0x0014, 0x2006)).value or "") == ""
        assert not [e for e in out.iterall() if e.tag.is_private]
        assert len({str(o.PatientID) for o in outs.values()}) == 1
        data = (tmp_path / "out" / src.relative_to(tmp_path / "src")).read_bytes()
        for secret in (b"Watson", b"Moriarty", b"Baker Street", b"ACC778899", b"1.2.826.0.1.3680043.8.498.4"):
            assert secret not in data


def test_keep_private_tags_option(tmp_path: Path) -> None:
    _, out, _, _ = _run("CT_small.dcm", tmp_path, ProfileOptions(keep_private_tags=True))
    assert [e for e in out if e.tag.is_private]
    assert "kept unchecked" in " ".join(out.DeidentificationMethod)


def test_corrupt_files_are_refused(tmp_path: Path) -> None:
    truncated = _source("CT_small.dcm").read_bytes()
    bad = tmp_path / "truncated.dcm"
    bad.write_bytes(truncated[: len(truncated) - 4000])
    with pytest.raises(InvalidInputError, match="truncated|corrupt"):
        read_dicom(bad)
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"this is not dicom at all" * 20)
    with pytest.raises(InvalidInputError):
        read_dicom(junk)


def test_profile_table_matches_the_data_dictionary() -> None:
    """Tag and keyword of every row agree with pydicom's PS3.6 dictionary; codes are PS3.15 codes."""
    from pydicom.datadict import keyword_for_tag

    assert len(BASIC_PROFILE) >= 300
    assert len({e.tag for e in BASIC_PROFILE}) == len(BASIC_PROFILE)
    allowed = {"D", "Z", "X", "K", "C", "U", "X/Z", "Z/D", "X/D", "X/Z/D", "X/Z/U*"}
    for entry in BASIC_PROFILE:
        assert keyword_for_tag(entry.tag) == entry.keyword, entry
        assert entry.action in allowed, entry
        assert entry.name
    must_have = {
        "PatientName": "Z",
        "PatientID": "Z",
        "PatientBirthDate": "Z",
        "StudyInstanceUID": "U",
        "SOPInstanceUID": "U",
        "FrameOfReferenceUID": "U",
        "InstitutionName": "X/Z/D",
        "ReferringPhysicianName": "Z",
        "OtherPatientIDs": "X",
        "PatientAddress": "X",
        "AccessionNumber": "Z",
        "ReferencedImageSequence": "X/Z/U*",
        "ContentDate": "Z/D",
    }
    table = {e.keyword: e.action for e in BASIC_PROFILE}
    for keyword, action in must_have.items():
        assert table[keyword] == action, keyword
