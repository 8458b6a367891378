"""Small models and images for the inference-service tests.

``blob_net`` is a two-layer convolutional network with set weights: its logit is
``gain * (x - cut)`` on the CT-windowed input, so it segments voxels brighter than the cut and its
confidence falls for faint blobs — the findings a test expects are known from the image alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from aimd.imaging.dicom_write import DicomMeta, write_dicom_series
from aimd.imaging.volume import Volume
from aimd.models.specs import InputSpec, Intensity, OutputSpec

CT_SPEC = InputSpec(modality="CT", patch_size=(32, 32), intensity=Intensity(method="window", windows=((40, 400),)))
SEG_SPEC = OutputSpec(task="segmentation", labels={1: "lung_nodule"}, activation="sigmoid", target="lung_nodule")


def blob_net(cut: float = 0.35, gain: float = 30.0) -> nn.Module:
    """Conv3x3(1→2) → ReLU → Conv1x1(2→1) computing ``gain * (x - cut)``."""
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Conv2d(2, 1, 1))
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].weight[0, 0, 1, 1] = gain
        net[0].weight[1, 0, 1, 1] = -gain
        net[0].bias.copy_(torch.tensor([-gain * cut, gain * cut]))
        net[2].weight.copy_(torch.tensor([1.0, -1.0]).reshape(1, 2, 1, 1))
        net[2].bias.zero_()
    return net.eval()


def sphere(shape: tuple[int, int, int], centre_zyx: tuple[float, float, float], radius: float) -> np.ndarray:
    zz, yy, xx = np.indices(shape)
    cz, cy, cx = centre_zyx
    return (zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2


def two_blob_ct() -> tuple[Volume, np.ndarray, np.ndarray]:
    """CT (16, 32, 32) at 1 mm: air, a bright sphere (HU 40, r 4) on the patient's right, a faint one
    (HU -10, r 3) on the left. Returns the volume and the two sphere masks."""
    shape = (16, 32, 32)
    arr = np.full(shape, -1000, np.int16)
    bright = sphere(shape, (8, 16, 8), 4)  # x index 8 < centre: patient right (LPS +x is left)
    faint = sphere(shape, (8, 16, 24), 3)
    arr[bright] = 40
    arr[faint] = -10
    vol = Volume(arr, spacing=(1.0, 1.0, 1.0), origin=(-16.0, -16.0, -8.0), modality="CT")
    return vol, bright, faint


def write_ct_series(volume: Volume, folder: Path, seed: str = "serving-test") -> list[Path]:
    """The volume as a DICOM CT series with deterministic UIDs."""
    meta = DicomMeta(patient_name="TEST^SERVING", patient_id="SV001", study_date="20260101", uid_seed=seed,
                     window_center=40.0, window_width=400.0)
    return write_dicom_series(volume, folder, meta=meta, fsync=False)


def export_models(folder: Path) -> dict[str, Path]:
    """The blob net as TorchScript and ONNX files with the specs embedded."""
    from aimd.models.adapters.torchscript import save_torchscript
    from aimd.models.export import export_module_onnx

    folder.mkdir(parents=True, exist_ok=True)
    net = blob_net()
    ts = save_torchscript(net, folder / "blob.ts", CT_SPEC, SEG_SPEC, {"model": "blob", "version": "1.0"})
    onnx = export_module_onnx(net, folder / "blob.onnx", CT_SPEC, SEG_SPEC, {"model": "blob"},
                              exporter="torchscript")
    return {"torchscript": ts, "onnx": onnx}


# ----------------------------------------------------------------------------- real servers
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402

ORTHANC_USER, ORTHANC_PASSWORD = "aimd", "orthanc-test-password"
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, *, auth: tuple[str, str] | None = None, seconds: float = 60.0,
              proc: subprocess.Popen | None = None) -> None:
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if requests.get(url, auth=auth, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {seconds} s")


def orthanc_missing() -> str | None:
    """Why a real Orthanc cannot run here (``None`` when it can)."""
    if shutil.which("Orthanc") is None:
        return "Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)"
    if not DICOMWEB_PLUGIN.is_file():
        return "the Orthanc DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)"
    return None


@contextlib.contextmanager
def orthanc_server(folder: Path) -> Iterator[dict[str, object]]:
    """A real Orthanc on 127.0.0.1: temporary storage, remote access off, authentication on."""
    folder.mkdir(parents=True, exist_ok=True)
    http, dicom = free_port(), free_port()
    config = {
        "Name": "aimd-test-pacs", "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "index"),
        "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True, "RegisteredUsers": {ORTHANC_USER: ORTHANC_PASSWORD},
        "Plugins": [str(DICOMWEB_PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "StorageCompression": False, "HttpCompressionEnabled": False, "ConcurrentJobs": 1,
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = open(folder / "orthanc.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(["Orthanc", str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{http}/system", auth=(ORTHANC_USER, ORTHANC_PASSWORD), proc=proc)
        yield {"http": http, "dicom": dicom, "url": f"http://127.0.0.1:{http}",
               "dicomweb": f"http://127.0.0.1:{http}/dicom-web", "auth": (ORTHANC_USER, ORTHANC_PASSWORD),
               "proc": proc}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def upload_to_orthanc(server: dict[str, object], files: list[Path]) -> None:
    import requests

    for f in files:
        r = requests.post(f"{server['url']}/instances", data=f.read_bytes(), auth=server["auth"], timeout=30)
        r.raise_for_status()


@contextlib.contextmanager
def aimd_server(args: list[str], data: Path, *, env: dict[str, str] | None = None
                ) -> Iterator[tuple[str, subprocess.Popen]]:
    """``aimd serve`` as a real uvicorn process on a free loopback port."""
    port = free_port()
    log = open(data.parent / f"serve-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-m", "aimd.cli.main", "serve", "--port", str(port), "--data", str(data),
                             *args], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/v2/health/live", seconds=120, proc=proc)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
