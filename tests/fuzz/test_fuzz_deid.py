"""Fuzzed readers and ``aimd data deid`` (reliability; 001 §7.3, §11.2.1; 003 §2.2.3).

Hypothesis mutates real files (pydicom's CT/MR/RT test objects, a JPEG CT from ``deid-data``, NIfTI-1/2
images with extensions, annotation packages as JSON and JSON Lines) and generates JSON documents, report
text and whole source folders. Readers: DICOM (:func:`aimd.imaging.deid.dicom.read_dicom`), NIfTI (the
header cleaner and :func:`aimd.imaging.nifti_io.read_nifti`), JSON (the de-identifier's walker and the
annotation package reader), text (:func:`aimd.imaging.deid.discover.decode_text`). Properties:

* every reader either returns or raises an :class:`~aimd.core.errors.AimdError` naming the file and a
  fix — no other exception escapes;
* no input file is modified (its bytes are hashed before and after);
* ``aimd data deid`` on a generated folder writes no planted identifier to DST (raw-bytes grep) and never
  reports a file it could not parse as de-identified.

``AIMD_FUZZ_SCALE`` multiplies the number of examples: the default run (``make test``) draws about 1,000
inputs, ``make fuzz`` (scale 10) more than 10,000. With ``AIMD_FUZZ_REPORT=<file>`` each test appends
its example count, so the totals can be recorded.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from aimd.annotation.io import read_sources
from aimd.core.errors import AimdError
from aimd.imaging.deid import DeidMap, TextDeidentifier, deidentify_json, deidentify_path
from aimd.imaging.deid.dicom import read_dicom
from aimd.imaging.deid.discover import decode_text
from aimd.imaging.deid.nifti import clean_nifti_bytes
from aimd.imaging.nifti_io import read_nifti

SCALE = max(1, int(os.environ.get("AIMD_FUZZ_SCALE", "1")))
REPORT = os.environ.get("AIMD_FUZZ_REPORT")
NAME_ZH, NAME_PINYIN, PATIENT_ID = "张伟强", "Zhang Weiqiang", "P0012345"
MOBILE, RESIDENT_ID = "13812345678", "110105194912310021"
PLANTED = (NAME_ZH, NAME_PINYIN, PATIENT_ID, MOBILE, RESIDENT_ID)


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )


class _Count:
    def __init__(self, name: str) -> None:
        self.name, self.n = name, 0

    def __enter__(self) -> _Count:
        return self

    def __exit__(self, *exc: object) -> None:
        if REPORT:
            with open(REPORT, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"test": self.name, "inputs": self.n}) + "\n")


def _seed_dicoms() -> list[bytes]:
    files = [get_testdata_file(n, download=False) for n in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm")]
    try:
        import deid_data

        files.append(str(Path(deid_data.__file__).parent / "data" / "humans" / "ctbrain1.dcm"))
    except ImportError:
        pass
    return [Path(str(f)).read_bytes() for f in files if f]


def _seed_niftis() -> list[bytes]:
    img = nib.Nifti1Image(np.arange(60, dtype=np.int16).reshape(3, 4, 5), np.diag([0.7, 0.7, 2.0, 1.0]))
    img.header["descrip"] = b"Li Na follow-up"
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, b"PatientName=Zhang^Weiqiang"))
    two = nib.Nifti2Image(np.ones((2, 2, 2), np.float32), np.eye(4))
    two.header["descrip"] = b"P0012345"
    one = img.to_bytes()
    return [one, gzip.compress(one, mtime=0), two.to_bytes()]


DICOMS = _seed_dicoms()
NIFTIS = _seed_niftis()


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed file with bytes flipped, a slice cut out or repeated, and/or truncated."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "cut", "dup", "truncate", "insert"]))
        if not data:
            break
        pos = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 64))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[pos:]
    return bytes(data)


def _aimd_error_or_ok(call: Callable[[], Any], where: str) -> None:
    try:
        call()
    except AimdError as err:
        assert err.where and where in err.where, err
        assert err.hint, err


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def work() -> Path:
    return Path(tempfile.mkdtemp(prefix="aimd-fuzz-"))


def test_dicom_reader_fuzz(work: Path) -> None:
    with _Count("dicom_reader") as count:

        @_settings(250)
        @given(data=mutated(DICOMS))
        def run(data: bytes) -> None:
            count.n += 1
            path = work / "fuzz.dcm"
            path.write_bytes(data)
            before = _digest(path)
            _aimd_error_or_ok(lambda: read_dicom(path), str(path))
            assert _digest(path) == before

        run()


def test_nifti_cleaner_fuzz() -> None:
    with _Count("nifti_cleaner") as count:

        @_settings(150)
        @given(data=mutated(NIFTIS), detached=st.booleans())
        def run(data: bytes, detached: bool) -> None:
            count.n += 1
            _aimd_error_or_ok(
                lambda: clean_nifti_bytes(data, str.upper, where="f.nii", detached_header=detached), "f.nii"
            )

        run()


def test_nifti_reader_fuzz(work: Path) -> None:
    with _Count("nifti_reader") as count:

        @_settings(100)
        @given(data=mutated(NIFTIS))
        def run(data: bytes) -> None:
            count.n += 1
            path = work / ("fuzz.nii.gz" if data[:2] == b"\x1f\x8b" else "fuzz.nii")
            path.write_bytes(data)
            before = _digest(path)
            _aimd_error_or_ok(lambda: read_nifti(path), str(path))
            assert _digest(path) == before

        run()


PACKAGE = json.dumps(
    {
        "task_id": "T1",
        "case_id": "C1",
        "reader_id": "R1",
        "image": {"path": "ct.nii.gz"},
        "annotations": [{"id": "a1", "label": "nodule", "type": "bbox", "bbox": [1, 2, 3, 4]}],
    }
)


def test_annotation_package_reader_fuzz(work: Path) -> None:
    with _Count("json_package_reader") as count:

        @_settings(100)
        @given(data=mutated([PACKAGE.encode(), (PACKAGE + "\n" + PACKAGE).encode()]), lines=st.booleans())
        def run(data: bytes, lines: bool) -> None:
            count.n += 1
            path = work / ("fuzz.jsonl" if lines else "fuzz.json")
            path.write_bytes(data)
            before = _digest(path)
            _aimd_error_or_ok(lambda: read_sources(path), str(path))
            assert _digest(path) == before

        run()


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(
        [
            NAME_ZH,
            NAME_PINYIN,
            int(MOBILE),
            MOBILE,
            int(RESIDENT_ID),
            f"电话：{MOBILE}",
            f"family contact {NAME_PINYIN}",
        ]
    ),
)
JSON_DOCS = st.recursive(
    JSON_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(
            st.sampled_from(["name", "phone", "notes", "patient", "id_number", "value", "text", "x", "备注", "contact"])
            | st.text(max_size=8),
            children,
            max_size=5,
        ),
    ),
    max_leaves=20,
)


def test_json_deidentifier_fuzz() -> None:
    mapping = DeidMap.new("fuzz")
    entry = mapping.patient(PATIENT_ID, max_shift_days=30)
    entry.add("NAME", NAME_ZH)
    engine = TextDeidentifier(mapping, date_offset_days=3)
    with _Count("json_deidentifier") as count:

        @_settings(150)
        @given(doc=JSON_DOCS)
        def run(doc: Any) -> None:
            count.n += 1
            frozen = json.dumps(doc, sort_keys=True)
            out = deidentify_json(doc, engine).doc
            assert json.dumps(doc, sort_keys=True) == frozen  # input not modified
            dumped = json.dumps(out, ensure_ascii=False)
            for secret in PLANTED:
                assert secret not in dumped

        run()


def test_text_reader_fuzz() -> None:
    with _Count("text_reader") as count:

        @_settings(150)
        @given(data=st.binary(max_size=300) | st.text(max_size=200).map(lambda t: t.encode("utf-8")))
        def run(data: bytes) -> None:
            count.n += 1
            try:
                text, encoding = decode_text(data)
            except (UnicodeDecodeError, ValueError):
                return  # the runner reports these as "not handled" (checked end to end below)
            assert "\x00" not in text and encoding

        run()


def _source_folder(root: Path, dicom: bytes, text: str, doc: Any, nifti: bytes, extra: bytes) -> Path:
    src = root / "src"
    src.mkdir(parents=True)
    (src / "ct.dcm").write_bytes(dicom)
    (src / "report.txt").write_text(text, encoding="utf-8")
    (src / "clinical.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (src / "t1.nii").write_bytes(nifti)
    (src / "scan.img").write_bytes(extra)
    return src


def _planted_ct() -> bytes:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName, ds.PatientID = NAME_ZH, PATIENT_ID
    ds.ImageComments = f"{NAME_PINYIN} {MOBILE}"
    ds.ReasonForTheRequestedProcedure = f"身份证号{RESIDENT_ID}"
    path = Path(tempfile.mkdtemp()) / "ct.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path.read_bytes()


PLANTED_CT = _planted_ct()
# Planted identifiers are labelled or pattern-shaped: found by the rules even when the DICOM file that
# names the patient is itself too damaged to read.
LABELLED = [
    f" 患者{NAME_ZH}， ",
    f" 姓名：{NAME_ZH} ",
    f" Patient {NAME_PINYIN} ",
    f" 电话：{MOBILE} ",
    f" {RESIDENT_ID} ",
    f" 病历号：{PATIENT_ID} ",
    f" Patient ID: {PATIENT_ID} ",
]
TEXT_PIECES = st.lists(st.sampled_from([*LABELLED, "\n"]) | st.text(max_size=20), max_size=8).map("".join)
E2E_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=30),
    st.sampled_from([int(MOBILE), MOBILE, int(RESIDENT_ID), *[p.strip() for p in LABELLED]]),
)
E2E_DOCS = st.recursive(
    E2E_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _plain_niftis() -> list[bytes]:
    """NIfTI seeds without identifiers: bytes moved by a mutation out of the header's text fields are
    voxels, which only the residual scan's known values and patterns can check."""
    one = nib.Nifti1Image(np.arange(60, dtype=np.int16).reshape(3, 4, 5), np.diag([0.7, 0.7, 2.0, 1.0]))
    one.header["descrip"] = b"T1 follow-up"
    return [one.to_bytes(), nib.Nifti2Image(np.ones((2, 2, 2), np.float32), np.eye(4)).to_bytes()]


PLAIN_NIFTIS = _plain_niftis()


def test_deid_command_fuzz(work: Path) -> None:
    with _Count("aimd_data_deid") as count:

        @_settings(100)
        @given(
            dicom=mutated([PLANTED_CT]),
            text=TEXT_PIECES,
            doc=E2E_DOCS,
            nifti=mutated(PLAIN_NIFTIS),
            extra=st.binary(max_size=64),
        )
        def run(dicom: bytes, text: str, doc: Any, nifti: bytes, extra: bytes) -> None:
            count.n += 1
            root = Path(tempfile.mkdtemp(dir=work))
            src = _source_folder(root, dicom, text, doc, nifti, extra)
            before = {p.name: _digest(p) for p in src.iterdir()}
            try:
                report = deidentify_path(src, root / "dst", root / "map.json", salt="fuzz")
            except AimdError as err:
                assert err.hint, err
                return
            assert {p.name: _digest(p) for p in src.iterdir()} == before
            statuses = {f.path: f.status for f in report.files}
            assert statuses["scan.img"] == "not handled"  # no .hdr: never copied through
            if statuses.get("ct.dcm") == "deidentified":
                read_dicom(root / "dst" / "ct.dcm")
            blob = b"\n".join(p.read_bytes() + p.name.encode() for p in (root / "dst").rglob("*") if p.is_file())
            for secret in PLANTED:
                assert secret.encode("utf-8") not in blob, secret
                assert secret.lower().encode("utf-8") not in blob.lower(), secret

        run()
