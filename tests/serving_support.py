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
    meta = DicomMeta(
        patient_name="TEST^SERVING",
        patient_id="SV001",
        study_date="20260101",
        uid_seed=seed,
        window_center=40.0,
        window_width=400.0,
    )
    return write_dicom_series(volume, folder, meta=meta, fsync=False)


def export_models(folder: Path) -> dict[str, Path]:
    """The blob net as TorchScript and ONNX files with the specs embedded."""
    from aimd.models.adapters.torchscript import save_torchscript
    from aimd.models.export import export_module_onnx

    folder.mkdir(parents=True, exist_ok=True)
    net = blob_net()
    ts = save_torchscript(net, folder / "blob.ts", CT_SPEC, SEG_SPEC, {"model": "blob", "version": "1.0"})
    onnx = export_module_onnx(net, folder / "blob.onnx", CT_SPEC, SEG_SPEC, {"model": "blob"}, exporter="torchscript")
    return {"torchscript": ts, "onnx": onnx}


# ----------------------------------------------------------------------------- real servers
import contextlib  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections.abc import Iterator  # noqa: E402

from aimd.serving.orthanc import free_port, orthanc, orthanc_missing, stop_process, wait_http  # noqa: E402

__all__ = ["free_port", "orthanc_missing", "stop_process", "wait_http"]


@contextlib.contextmanager
def orthanc_server(folder: Path) -> Iterator[dict[str, object]]:
    """A real Orthanc on 127.0.0.1 (temporary storage, remote access off, authentication on)."""
    with orthanc(folder) as server:
        yield {
            "http": server.http,
            "dicom": server.dicom,
            "url": server.url,
            "dicomweb": server.dicomweb,
            "auth": server.auth,
            "proc": server.process,
            "server": server,
        }


def upload_to_orthanc(server: dict[str, object], files: list[Path]) -> None:
    server["server"].upload(files)  # type: ignore[attr-defined]


@contextlib.contextmanager
def aimd_server(
    args: list[str], data: Path, *, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``aimd serve`` as a real uvicorn process on a free loopback port."""
    port = free_port()
    log = open(data.parent / f"serve-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "aimd.cli.main", "serve", "--port", str(port), "--data", str(data), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/v2/health/live", seconds=120, process=proc)
        yield url, proc
    finally:
        stop_process(proc)
        log.close()
