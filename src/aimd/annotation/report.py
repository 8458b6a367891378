"""HTML QC report: level-1 findings, agreement tables and a figure of the worst-agreeing slice.

The report gathers what 001 asks QC to record (§6.5.2 written review results, §8.4 note QC records,
§9.2 agreement between readers, §9.1.1 note 1 model-assisted deviation) and, when given, the export
and verification results (§10.1.5, §10.2.4). The figure shows, for the matched mask pair with the
lowest Dice, the slice where the two readers disagree most, both contours over the windowed image.

Example
-------
>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "qc.html"
>>> _ = render_qc_report(out, qc={"p.json": []})
>>> "Level-1 automatic QC" in out.read_text()
True
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from aimd import __version__
from aimd.annotation.agreement import AgreementResult
from aimd.annotation.io import read_sources
from aimd.annotation.masks import MaskStore
from aimd.annotation.qc import findings_summary
from aimd.annotation.schema import FileRole
from aimd.core.atomic import atomic_write_text
from aimd.core.errors import AimdError
from aimd.core.findings import Finding
from aimd.imaging.io import read_volume
from aimd.imaging.windowing import apply_window, get_window, minmax

__all__ = ["render_qc_report", "worst_slice_figure"]

_COLOURS = ("#ffd400", "#00c2ff")


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("aimd.annotation", "report_templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )


def _load_pair(pair: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, ...]] | None:
    store = MaskStore()
    masks, image = [], None
    for side in ("a", "b"):
        sources = [s for s in read_sources(pair[f"source_{side}"]) if s.package.image.uid == pair["image"]]
        if not sources:
            return None
        src = sources[0]
        ann = next((a for a in src.package.annotations if a.id == pair[f"id_{side}"]), None)
        if ann is None or not ann.data.mask_file:
            return None
        ref = src.package.image_of(ann)
        masks.append(store.object_mask(src.resolve(ann.data.mask_file), ann.data.mask_value, ref))
        if image is None and ref is not None:
            files = sorted(ref.files, key=lambda f: f.role is not FileRole.IMAGE)
            for f in files:
                path = src.resolve(f.path)
                if path.exists():
                    image = read_volume(path)
                    break
    if image is None or masks[0].shape != image.shape:
        return None
    return np.asarray(image.array, dtype=np.float32), masks[0], masks[1], image.spacing


def worst_slice_figure(agreement: AgreementResult) -> tuple[str, str] | None:
    """PNG (base64) and caption of the slice where the worst-agreeing mask pair differs most."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    pair = agreement.worst_pair()
    if pair is None:
        return None
    try:
        loaded = _load_pair(pair)
    except AimdError:
        return None
    if loaded is None:
        return None
    image, a, b, spacing = loaded
    diff = (a ^ b).reshape(a.shape[0], -1).sum(axis=1)
    k = int(np.argmax(diff + 1e-3 * (a | b).reshape(a.shape[0], -1).sum(axis=1)))
    preset = "lung" if str(pair["label_a"]).startswith("LUNG") else "abdomen"
    window = get_window(preset)
    view = apply_window(image[k], window.center, window.width) if image.min() < -100 else minmax(image[k])
    both = np.argwhere(a[k] | b[k])
    (y0, x0), (y1, x1) = both.min(axis=0), both.max(axis=0)
    pad = max(6, int(0.5 * max(y1 - y0, x1 - x0)))
    y0, x0 = max(0, y0 - pad), max(0, x0 - pad)
    y1, x1 = min(a.shape[1] - 1, y1 + pad), min(a.shape[2] - 1, x1 + pad)
    fig = Figure(figsize=(9, 4.5), dpi=100)
    aspect = spacing[1] / spacing[0]
    for ax, crop in zip(fig.subplots(1, 2), (False, True), strict=True):
        sl = (slice(y0, y1 + 1), slice(x0, x1 + 1)) if crop else (slice(None), slice(None))
        ax.imshow(view[sl], cmap="gray", aspect=aspect, interpolation="nearest")
        for mask, colour in zip((a, b), _COLOURS, strict=True):
            if mask[k][sl].any():
                ax.contour(mask[k][sl].astype(float), levels=[0.5], colors=[colour], linewidths=1.5)
        if not crop:
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="white", linewidth=0.8))
        ax.set_axis_off()
    fig.suptitle(
        f"{pair['case']} slice {k}: {pair['reader_a']} (yellow) vs {pair['reader_b']} (cyan), "
        f"{pair['label_a']}, Dice {pair['value']:.3f}",
        fontsize=10,
    )
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    caption = (
        f"Worst-agreeing pair: {pair['id_a']} ({pair['reader_a']}) vs {pair['id_b']} ({pair['reader_b']}) in "
        f"{pair['case']}, Dice {pair['value']:.3f}, HD95 {pair.get('hd95_mm', 0):.2f} mm; axial slice {k} "
        f"has the most disagreeing voxels ({int(diff[k])}). Left: whole slice; right: zoom."
    )
    return base64.b64encode(buf.getvalue()).decode("ascii"), caption


def _finding_rows(findings: list[Finding], limit: int = 300) -> list[dict[str, Any]]:
    order = {"error": 0, "warning": 1, "info": 2}
    rows = sorted(findings, key=lambda f: order[f.severity.value])[:limit]
    return [
        {
            "severity": f.severity.value,
            "code": f.code,
            "clause": f.clause,
            "location": ", ".join(f"{k}={v}" for k, v in f.location.items()),
            "message": f.message,
        }
        for f in rows
    ]


def _attribute_rows(agreement: AgreementResult) -> list[dict[str, Any]]:
    rows = []
    stats = {**agreement.attributes, **{f"text:{k}": v for k, v in agreement.text_labels.items()}}
    for name, s in stats.items():
        if s["kind"] == "categorical":
            value = "undefined (one category)" if s.get("kappa") is None else f"{s['kappa']:.3f}"
            rows.append(
                {
                    "name": name,
                    "kind": s["kind"],
                    "n": s["n_items"],
                    "statistic": s.get("method", "kappa"),
                    "value": value,
                    "other": s.get("observed_agreement", ""),
                }
            )
        else:
            icc = s.get("icc")
            value = (
                f"{icc['icc']:.3f} [{icc['ci_low']:.3f}, {icc['ci_high']:.3f}]"
                if icc
                else s.get("icc_note", s.get("note", "n/a"))
            )
            rows.append(
                {
                    "name": name,
                    "kind": s["kind"],
                    "n": s["n_items"],
                    "statistic": icc["shrout_fleiss"] if icc else "ICC",
                    "value": value,
                    "other": s.get("mean_abs_difference", ""),
                }
            )
    return rows


def render_qc_report(
    out_path: str | Path,
    *,
    qc: dict[str, list[Finding]] | None = None,
    agreement: AgreementResult | None = None,
    export: dict[str, Any] | None = None,
    verify: list[Finding] | None = None,
    title: str = "aimd annotation QC report",
) -> Path:
    """Write the HTML report atomically and return its path.

    Parameters
    ----------
    qc:
        Level-1 findings per package (file name → findings).
    agreement:
        Result of :func:`aimd.annotation.agreement.agree`.
    export, verify:
        Export summary (``ExportResult.to_dict()``) and verification findings.
    """
    qc_rows = [
        {
            "package": name,
            **{k: v for k, v in findings_summary(fs).items() if k != "by_code"},
            "codes": ", ".join(sorted({f.code for f in fs if f.severity.value != "info"})),
        }
        for name, fs in (qc or {}).items()
    ]
    qc_findings = [f for fs in (qc or {}).values() for f in fs if f.severity.value != "info"]
    figure = worst_slice_figure(agreement) if agreement is not None else None
    summary: dict[str, Any] = {}
    if qc is not None:
        s = findings_summary(qc_findings + [f for fs in qc.values() for f in fs if f.severity.value == "info"])
        summary |= {"packages checked": len(qc), "QC errors": s["errors"], "QC warnings": s["warnings"]}
    if agreement is not None:
        summary |= {
            f"agreement {k}": (round(v, 4) if isinstance(v, float) else v) for k, v in agreement.summary().items()
        }
    if verify is not None:
        summary["verification"] = "passed" if not any(f.is_error for f in verify) else "FAILED"
    html = (
        _env()
        .get_template("qc_report.html.j2")
        .render(
            title=title,
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            aimd_version=__version__,
            summary=summary,
            qc=qc_rows if qc is not None else None,
            qc_findings=_finding_rows(qc_findings),
            agreement=agreement.to_dict() if agreement is not None else None,
            partial_objects=[o for o in agreement.objects if len(o["readers"]) < len(agreement.readers)]
            if agreement
            else [],
            attribute_rows=_attribute_rows(agreement) if agreement else [],
            agreement_findings=_finding_rows(agreement.findings) if agreement else [],
            figure=figure[0] if figure else None,
            figure_caption=figure[1] if figure else "",
            export=export,
            verify=_finding_rows(verify) if verify is not None else None,
        )
    )
    out = Path(out_path)
    atomic_write_text(out, html)
    return out
