"""Training-record helpers: hardware and software environment, curves (000 §4.4.2, §4.5.3).

Example
-------
>>> env = environment()
>>> env["cpu_count"] >= 1 and "torch" in env["software"]
True
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from aimd.core.atomic import atomic_file

_PACKAGES = (
    "aimd",
    "torch",
    "monai",
    "numpy",
    "onnx",
    "onnxruntime",
    "peft",
    "scipy",
    "scikit-learn",
    "SimpleITK",
    "nibabel",
    "pydicom",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def environment() -> dict[str, Any]:
    """This machine's hardware and the versions of the software a model runs on."""
    versions: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count() or 1,
        "torch_threads": torch.get_num_threads(),
        "memory_gib": _memory_gib(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "software": versions,
    }


def plot_curves(epochs: list[dict[str, Any]], out_dir: Path, *, metric_name: str) -> list[str]:
    """Write ``loss.png`` (train/val loss, learning rate) and ``metric.png`` (validation metric)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [e["epoch"] for e in epochs]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, [e["train_loss"] for e in epochs], marker="o", label="train loss")
    ax.plot(xs, [e["val_loss"] for e in epochs], marker="s", label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    ax2.plot(xs, [e["lr"] for e in epochs], color="grey", linestyle=":", label="learning rate")
    ax2.set_ylabel("learning rate")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right")
    ax.set_title("training and validation loss")
    fig.tight_layout()
    with atomic_file(out_dir / "loss.png", suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, [e.get("val_metric") if e.get("val_metric") is not None else float("nan") for e in epochs], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric_name)
    ax.set_title(f"validation {metric_name}")
    fig.tight_layout()
    with atomic_file(out_dir / "metric.png", suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return ["loss.png", "metric.png"]


__all__ = ["environment", "plot_curves"]
