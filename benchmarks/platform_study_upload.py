"""Peak memory and request time of a large DICOM study upload to `aimd platform serve`, for two source
trees side by side (e.g. the synchronous in-memory import of an earlier commit and the streamed upload
with a background import): the same archive goes to each server in turn, and the server's peak RSS
(``VmHWM``), its CPU seconds, the POST's wall time and the time until the case is stored are read.

The archive is a synthetic CT series (``--slices`` × ``--size``² int16, one DICOM file a slice, written by
aimd's DICOM writer and de-identified by ``aimd data deid``), zipped without compression. With
``--unsigned`` its pixels are stored as many CT scanners write them: unsigned 16-bit, HU + 1024, with
RescaleIntercept −1024 (the same HU).

Run::

    mkdir -p /tmp/aimd-before && git archive <commit> src | tar -x -C /tmp/aimd-before
    python benchmarks/platform_study_upload.py --tree before=/tmp/aimd-before/src --tree after=src

Example
-------
>>> vm_kib("VmHWM:\\t  123 kB\\nVmRSS:\\t 99 kB\\n", "VmHWM")
123
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out" / "study_upload"
PASSWORD = "benchmark pass 2024"

SETUP = """
import json, sys
from aimd.platform import Platform
from aimd.platform.auth import create_user
from aimd.platform.projects import ProjectCreate, create_project
platform = Platform.open(sys.argv[1])
with platform.sessions() as db:
    user, _ = create_user(db, platform.audit, platform.settings, username="intake", role="intake",
                          password=sys.argv[2], clearance=2, actor="benchmark")
    task = {"goal": "g", "modalities": ["CT"], "objects_and_outputs": "o", "alignment_rules": "a",
            "qc_and_traceability": "q"}
    spec = ProjectCreate(name="bench", task_definition=task, label_map={1: "LUNG"}, readers=1)
    project = create_project(db, platform.audit, user, spec)
    db.commit()
    print(json.dumps({"project": project.id}))
platform.close()
"""


def vm_kib(status: str, key: str) -> int:
    """A ``VmXXX`` field of ``/proc/<pid>/status`` text, in KiB."""
    for line in status.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def to_unsigned(path: Path) -> None:
    """Store the CT file ``path``'s pixels as unsigned 16-bit HU + 1024 with RescaleIntercept −1024."""
    import numpy as np
    import pydicom

    ds = pydicom.dcmread(path)
    hu = ds.pixel_array.astype(np.int32) * int(ds.get("RescaleSlope", 1)) + int(ds.get("RescaleIntercept", 0))
    ds.PixelRepresentation, ds.RescaleSlope, ds.RescaleIntercept = 0, 1, -1024
    ds.PixelData = (hu + 1024).astype("<u2").tobytes()
    for tag in ("SmallestImagePixelValue", "LargestImagePixelValue", "PixelPaddingValue"):
        if tag in ds:
            delattr(ds, tag)
    ds.save_as(path)


def build_archive(slices: int, size: int, *, unsigned: bool = False) -> Path:
    """The synthetic CT study as an uncompressed zip (cached in benchmarks/out/study_upload/)."""
    import shutil

    import numpy as np

    from aimd.imaging.deid.runner.path import deidentify_path
    from aimd.imaging.dicom_write.meta import DicomMeta
    from aimd.imaging.dicom_write.series import write_dicom_series
    from aimd.imaging.volume import Volume

    archive = OUT / f"ct_{slices}x{size}{'_u16' if unsigned else ''}.zip"
    if archive.is_file():
        return archive
    OUT.mkdir(parents=True, exist_ok=True)
    z, y, x = np.ogrid[0:slices, 0:size, 0:size]
    r = np.sqrt(((x - size / 2) / (size * 0.4)) ** 2 + ((y - size / 2) / (size * 0.3)) ** 2)
    body = np.where(r < 1.0, 40, -1000).astype(np.int16)
    lungs = np.sqrt(((np.abs(x - size / 2) - size * 0.18) / (size * 0.12)) ** 2 + ((y - size / 2) / (size * 0.2)) ** 2)
    array = np.where(lungs < 1.0, -850, body) + (z % 7).astype(np.int16)
    array = np.broadcast_to(array, (slices, size, size)).astype(np.int16)
    vol = Volume(array, spacing=(0.7, 0.7, 1.0), modality="CT")
    raw, deid = OUT / "raw", OUT / "deid"
    for folder in (raw, deid):
        shutil.rmtree(folder, ignore_errors=True)
    meta = DicomMeta(patient_id="BENCH-1", patient_name="BENCH^ONE", series_description="synthetic CT")
    write_dicom_series(vol, raw / "ct", meta=meta, fsync=False)
    deidentify_path(raw, deid, OUT / "map.json", salt="benchmark")
    (deid / "deid_log.json").unlink(missing_ok=True)
    if unsigned:
        for f in sorted(deid.rglob("*.dcm")):
            to_unsigned(f)
    tmp = archive.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as out:
        for f in sorted(deid.rglob("*.dcm")):
            out.write(f, f.relative_to(deid).as_posix())
    tmp.replace(archive)
    shutil.rmtree(raw)
    shutil.rmtree(deid)
    return archive


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(name: str, src: Path, archive: Path, work: Path) -> dict[str, Any]:
    """One server of the tree ``src``: peak RSS and CPU seconds around one upload of ``archive``."""
    import httpx

    work.mkdir(parents=True)
    data = work / name
    env = {**os.environ, "PYTHONPATH": str(src)}
    setup = subprocess.run(
        [sys.executable, "-c", SETUP, str(data), PASSWORD], env=env, check=True, capture_output=True, text=True
    )
    project = json.loads(setup.stdout.strip().splitlines()[-1])["project"]
    port = _port()
    code = "import sys; from aimd.cli.main import run; sys.argv[0] = 'aimd'; run()"
    log = (work / f"{name}.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "platform", "serve", "--data", str(data), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        token = httpx.post(
            f"{url}/api/v1/auth/login", json={"username": "intake", "password": PASSWORD}, timeout=30
        ).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        idle = Path(f"/proc/{proc.pid}/status").read_text()
        cpu0 = cpu_seconds(proc.pid)
        started = time.perf_counter()
        with archive.open("rb") as fh:
            r = httpx.post(
                f"{url}/api/v1/projects/{project}/studies",
                files={"file": ("study.zip", fh, "application/zip")},
                data={"case_key": "bench-1"},
                headers=headers,
                timeout=3600,
            )
        post_s = time.perf_counter() - started
        if r.status_code == 202:
            location = r.headers["location"]
            while (job := httpx.get(url + location, headers=headers, timeout=60).json())["status"] in (
                "queued",
                "running",
            ):
                time.sleep(0.5)
            ok = job["status"] == "done"
            detail = job["error"]
        else:
            ok, detail = r.status_code == 201, (None if r.status_code == 201 else r.json())
        stored_s = time.perf_counter() - started
        status = Path(f"/proc/{proc.pid}/status").read_text()
        return {
            "tree": name,
            "post_status": r.status_code,
            "imported": ok,
            "error": detail,
            "post_seconds": round(post_s, 2),
            "stored_seconds": round(stored_s, 2),
            "server_cpu_seconds": round(cpu_seconds(proc.pid) - cpu0, 2),
            "rss_idle_mib": round(vm_kib(idle, "VmRSS") / 1024),
            "rss_peak_mib": round(vm_kib(status, "VmHWM") / 1024),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", required=True, help="name=path/to/src (repeat)")
    parser.add_argument("--slices", type=int, default=600)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--unsigned", action="store_true", help="pixels stored unsigned, RescaleIntercept -1024")
    args = parser.parse_args()
    archive = build_archive(args.slices, args.size, unsigned=args.unsigned)
    work = OUT / f"run-{int(time.time())}"
    work.mkdir(parents=True)
    rows = []
    for k, item in enumerate(args.tree):
        name, _, src = item.partition("=")
        rows.append(measure(name, Path(src).resolve(), archive, work / str(k)))
        print(json.dumps(rows[-1]), flush=True)
    load = os.getloadavg()
    print(json.dumps({"archive_mib": round(archive.stat().st_size / 2**20), "loadavg": [round(v, 2) for v in load]}))


if __name__ == "__main__":
    main()
