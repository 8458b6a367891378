"""Figures of a conformity report, drawn with matplotlib from the plot data in the evidence.

``line``: curves with their confidence bands (robustness, latency, adversarial); ``forest``: one
estimate with its CI per subgroup and the claimed baseline; ``overlay``: example slices with the
reference (green) and predicted (red) outlines, read from the ``.npz`` the evidence names.

Example
-------
>>> from aimd.evaluation.evidence import Plot, Series
>>> import tempfile, pathlib
>>> p = Plot(name="c", kind="line", title="t", series=[Series(name="a", x=[0, 1], y=[1.0, 0.5])])
>>> draw_plot(p, pathlib.Path(tempfile.mkdtemp()) / "c.png").suffix
'.png'
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from aimd.core.atomic import atomic_file
from aimd.core.errors import InvalidInputError
from aimd.evaluation.evidence import Plot
from aimd.reports.model import Report


def _values(seq: list[float | None] | None) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in (seq or [])], dtype=np.float64)


def _line(fig: Figure, plot: Plot) -> None:
    ax = fig.add_subplot(1, 1, 1)
    for s in plot.series:
        x, y = np.asarray(s.x, dtype=np.float64), _values(s.y)
        ax.plot(x, y, marker="o", markersize=3, label=s.name)
        if s.low is not None and s.high is not None:
            ax.fill_between(x, _values(s.low), _values(s.high), alpha=0.15)
    if plot.reference is not None:
        ax.axhline(plot.reference, color="grey", linestyle="--", linewidth=1, label="claim")
    if plot.log_x:
        ax.set_xscale("log")
    ax.set_xlabel(plot.x_label)
    ax.set_ylabel(plot.y_label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _forest(fig: Figure, plot: Plot) -> None:
    ax = fig.add_subplot(1, 1, 1)
    s = plot.series[0]
    y = np.arange(len(s.y))[::-1]
    est, low, high = _values(s.y), _values(s.low), _values(s.high)
    err = np.vstack([np.nan_to_num(est - low), np.nan_to_num(high - est)])
    ax.errorbar(est, y, xerr=err, fmt="s", color="black", capsize=3)
    ax.set_yticks(y, plot.row_labels)
    if plot.reference is not None:
        ax.axvline(plot.reference, color="red", linestyle="--", linewidth=1, label="claimed baseline")
        ax.legend(fontsize=7)
    ax.set_xlabel(plot.x_label)
    ax.grid(alpha=0.3, axis="x")


def _plane(image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 2-D view of one example: the image itself, or for a volume the slice (first axis) with the
    most reference foreground (the middle slice when there is none)."""
    if image.ndim == 2:
        return image, truth, pred
    area = (truth > 0).reshape(truth.shape[0], -1).sum(axis=1)
    z = int(area.argmax()) if area.any() else image.shape[0] // 2
    return image[z], truth[z], pred[z]


def _overlay(fig: Figure, plot: Plot, base: Path) -> None:
    if plot.data_file is None:
        raise InvalidInputError("overlay plot names no data file", where=plot.name, hint="set data_file")
    path = base / plot.data_file
    with np.load(path) as npz:
        images, truth, pred = npz["image"], npz["truth"], npz["pred"]
    k = images.shape[0]
    for i in range(k):
        image, ref, out = _plane(images[i], truth[i], pred[i])
        ax = fig.add_subplot(1, k, i + 1)
        ax.imshow(image, cmap="gray", interpolation="nearest")
        if ref.any():
            ax.contour(ref > 0, levels=[0.5], colors="lime", linewidths=0.8)
        if out.any():
            ax.contour(out > 0, levels=[0.5], colors="red", linewidths=0.8)
        ax.set_axis_off()
    fig.suptitle("reference (green) · prediction (red)", fontsize=8)


def draw_plot(plot: Plot, path: Path, *, base: Path | None = None) -> Path:
    """Draw ``plot`` to the PNG ``path`` (written atomically); ``base`` resolves an overlay's data file."""
    wide = plot.kind == "overlay"
    fig = plt.figure(figsize=(7.5, 2.8) if wide else (5.5, 3.4), dpi=110)
    try:
        if plot.kind == "line":
            _line(fig, plot)
        elif plot.kind == "forest":
            _forest(fig, plot)
        else:
            _overlay(fig, plot, base or path.parent)
        if not wide:
            fig.suptitle(plot.title, fontsize=9)
        fig.tight_layout()
        with atomic_file(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return path


def render_figures(report: Report, out_dir: Path) -> dict[str, str]:
    """Draw every plot of ``report`` into ``out_dir / "figures"``; return ``section/plot`` → relative path."""
    folder = out_dir / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    for section in report.sections:
        for plot in section.evidence.plots:
            name = f"{section.key}_{plot.name}.png"
            draw_plot(plot, folder / name, base=out_dir)
            out[f"{section.key}/{plot.name}"] = f"figures/{name}"
    return out


__all__ = ["draw_plot", "render_figures"]
