"""``aimd data deid`` on the DICOM set bundled with ``deid-data`` (pydicom/deid's test data; 001 §7.3,
§11.2.1; 003 §2.2.3): CT with JPEG pixels, secondary captures, ultrasounds with burned-in text (one a
43 MB multi-frame cine) and a DX radiograph.

The identifiers are read from the source files themselves — every person name (each part of five or more
letters too), patient id, accession number, institution, address, phone and the original instance UIDs —
and searched for in every byte written to DST with a plain ``bytes.find``: no code of aimd's
de-identifier or of its residual scan is involved in the check.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pydicom
import pytest
from typer.testing import CliRunner

from aimd.cli.main import app

deid_data = pytest.importorskip("deid_data", reason="deid-data (test extra) is not installed")
DATA = Path(deid_data.__file__).parent / "data"
runner = CliRunner()
_KEYWORDS = (
    "PatientID",
    "OtherPatientIDs",
    "AccessionNumber",
    "InstitutionName",
    "InstitutionAddress",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "StationName",
    "DeviceSerialNumber",
)
_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def _identifiers(path: Path) -> set[str]:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    found: set[str] = set()
    for elem in ds.iterall():
        if elem.VR == "PN" and elem.value:
            for name in elem.value if elem.VM > 1 else [elem.value]:
                text = str(name)
                found.add(text)
                found |= {part for part in re.split(r"[\s^=,]+", text) if len(part) >= 5}
        elif elem.keyword in _KEYWORDS and elem.value:
            found |= {str(v) for v in (elem.value if elem.VM > 1 else [elem.value])}
        elif elem.keyword in _UIDS:
            found.add(str(elem.value))
    return {s.strip() for s in found if len(s.strip()) >= 4}


@pytest.mark.integration
def test_deid_data_set_leaves_no_source_identifier_in_dst(tmp_path: Path) -> None:
    src = tmp_path / "deid-data"
    sources = sorted(DATA.glob("*/*.dcm"))
    assert len(sources) >= 12
    for path in sources:
        target = src / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    secrets = set().union(*(_identifiers(p) for p in sources))
    assert {"Wetzel, James^Chase", "cookie-47", "SIMPSON^HOMER^J^"} <= secrets
    result = runner.invoke(
        app, ["data", "deid", str(src), str(tmp_path / "dst"), "--map", str(tmp_path / "map.json"), "--json"]
    )
    assert result.exit_code == 1  # burned-in images need review
    payload = json.loads(result.stdout[result.stdout.index("{") :])
    statuses = {item["path"]: item["status"] for item in payload["left_out"]}
    assert statuses["ultrasounds/GREYSCALE_IMAGE.dcm"] == "quarantined"
    assert statuses["ultrasounds/ultrasound-multiframe.dcm"] == "quarantined"
    assert statuses["dicom-cookies/image1.dcm"] == "quarantined"  # secondary capture
    assert statuses["humans/ctbrain1.dcm"] == "quarantined"  # secondary capture of a CT
    assert set(statuses.values()) == {"quarantined"}
    written = sorted(p.relative_to(tmp_path / "dst").as_posix() for p in (tmp_path / "dst").rglob("*.dcm"))
    assert written == ["animals/cat.dcm"]
    log = json.loads((tmp_path / "dst" / "deid_log.json").read_text(encoding="utf-8"))
    assert log["residual_scan"]["files_with_hits"] == 0 and log["residual_scan"]["files_scanned"] == 1
    # Every byte and name in DST; of the log, the parts that carry input (its policy and rule texts are
    # aimd's own words and may use everyday words that are also name parts, e.g. "still").
    blob = b"\n".join(
        p.as_posix().encode() + (p.read_bytes() if p.is_file() and p.name != "deid_log.json" else b"")
        for p in (tmp_path / "dst").rglob("*")
    )
    blob += json.dumps({k: log[k] for k in ("files", "summary", "residual_scan")}, ensure_ascii=False).encode()
    lowered = blob.lower()
    leaks = [
        s
        for s in secrets
        if re.search(rb"(?<![a-z0-9])" + re.escape(s.lower().encode("utf-8")) + rb"(?![a-z0-9])", lowered)
    ]
    assert leaks == []
    cat = pydicom.dcmread(tmp_path / "dst" / "animals" / "cat.dcm")
    assert cat.PixelData == pydicom.dcmread(src / "animals" / "cat.dcm").PixelData
