"""``aimd metrics seg | det | cls | agree``: the numbers of 000 App. A.10 and 001 §9.1–§9.2 / App. D."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

import aimd.metrics as met
from aimd.cli.common import JsonOption, RayAddressOption, RayOption, console, new_typer, print_json, progress_bar
from aimd.core.atomic import atomic_write_text
from aimd.core.distributed import LOCAL
from aimd.core.errors import InvalidInputError, SchemaError
from aimd.metrics.tables import numeric_column, read_table

app = new_typer(
    "Metrics: segmentation, detection, classification and rater agreement (000 A.10, 001 §9 / App. D).\n\n"
    "Example: aimd metrics seg ref.nii.gz pred.nii.gz --json"
)


# ------------------------------------------------------------------------------------------------ seg
def _parse_labels(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        labels = sorted({int(v) for v in text.split(",") if v.strip()})
    except ValueError as err:
        raise InvalidInputError(f"--labels must be comma-separated integers, got {text!r}") from err
    if not labels or min(labels) <= 0:
        raise InvalidInputError(f"--labels must be positive (0 is background), got {text!r}")
    return labels


@app.command(
    "seg",
    epilog="Example: aimd metrics seg ref/ pred/ --labels 1,2 --csv per_case.csv --json\n\n"
    "On Ray, local: aimd metrics seg ref/ pred/ --ray\n\n"
    "On a Ray cluster: aimd metrics seg ref/ pred/ --ray-address head:6379",
)
def seg(
    ref: Path = typer.Argument(..., help="Reference mask (NIfTI, DICOM SEG, DICOM) or folder of case masks."),
    pred: Path = typer.Argument(..., help="Predicted mask, or folder with the same case names."),
    labels: str | None = typer.Option(None, "--labels", help="Comma-separated labels (default: all found)."),
    csv_out: Path | None = typer.Option(None, "--csv", help="Also write one row per case and label to this CSV."),
    workers: int = typer.Option(0, "--workers", help="Processes for folders (0 = one per CPU core)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap CIs in the summary."),
    ray: bool = RayOption,
    ray_address: str | None = RayAddressOption,
    json_out: bool = JsonOption,
) -> None:
    """Dice, IoU, HD, HD95, ASSD, precision, recall, conformity and volumes per label (distances in mm)."""
    wanted = _parse_labels(labels)
    for p in (ref, pred):
        if not p.exists():
            raise InvalidInputError("path does not exist", where=str(p))
    if ref.is_dir() != pred.is_dir():
        raise InvalidInputError("REF and PRED must both be files or both be folders", where=f"{ref} / {pred}")
    pairs = met.case_pairs(ref, pred) if ref.is_dir() else [(met.case_id(ref), ref, pred)]
    with progress_bar("computing metrics", len(pairs), enabled=len(pairs) > 1) as advance:
        report = met.segmentation_batch(
            pairs,
            wanted,
            workers=workers,
            seed=seed,
            progress=advance,
            where=f"{ref} / {pred}",
            ray=ray_address or (LOCAL if ray else None),
        )
    report["inputs"] = {"ref": str(ref), "pred": str(pred), "labels": wanted, "n_cases": len(pairs)}
    if csv_out is not None:
        atomic_write_text(csv_out, met.segmentation_csv(report))
    if json_out:
        print_json(report)
        return
    _print_seg(report)
    for note in report.get("notes", []):
        console.print(f"note: {note}", highlight=False)


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _print_seg(report: dict[str, Any]) -> None:
    table = Table(title="segmentation metrics (distances in mm, volumes in mL)")
    for col in ("case", "label", *met.SEG_COLUMNS, "flags"):
        table.add_column(col, overflow="fold")
    for case in report["cases"]:
        for label, row in case["labels"].items():
            flags = "worst-case distance" if row["distance_worst_case"] else (row["empty"] and "both empty") or ""
            table.add_row(case["case"], label, *[_fmt(row.get(c)) for c in met.SEG_COLUMNS], flags)
    console.print(table)
    if len(report["cases"]) > 1:
        summary = Table(title="summary over cases: mean [95% BCa bootstrap CI]")
        summary.add_column("label", overflow="fold")
        for col in ("dice", "iou", "hd95", "assd", "dice_pooled", "n_cases"):
            summary.add_column(col, overflow="fold")
        for label, entry in report["summary"].items():
            cells = [
                f"{_fmt(entry[m]['mean'])} [{_fmt(entry[m]['ci_low'])}, {_fmt(entry[m]['ci_high'])}]"
                for m in ("dice", "iou", "hd95", "assd")
            ]
            summary.add_row(label, *cells, _fmt(entry["dice_pooled"]), str(entry["n_cases"]))
        console.print(summary)
    console.print(f"[dim]HD95/ASSD: {met.SEGMENTATION_DEFINITIONS['surface']}[/dim]")


# ------------------------------------------------------------------------------------------------ det
def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise InvalidInputError("file does not exist", where=str(path))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SchemaError(
            f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}", where=str(path)
        ) from err
    except UnicodeDecodeError as err:
        raise SchemaError("not UTF-8 text", where=str(path)) from err


@app.command("det", epilog="Example: aimd metrics det ref_coco.json detections.json --iou 0.5 --json")
def det(
    ref: Path = typer.Argument(..., help="COCO reference JSON (images, annotations, categories)."),
    pred: Path = typer.Argument(..., help="COCO results JSON: [{image_id, category_id, bbox|point, score}]."),
    iou: float = typer.Option(0.5, "--iou", help="IoU threshold for precision/recall and FROC."),
    match: str = typer.Option("iou", "--match", help="Matching criterion: iou (boxes) or center."),
    max_distance: float | None = typer.Option(None, "--max-distance", help="Centre distance limit (coords units)."),
    score_threshold: float = typer.Option(0.0, "--score-threshold", help="Detections kept for precision/recall."),
    json_out: bool = JsonOption,
) -> None:
    """Object precision/recall (001 D.2–D.3), FPs per image, FROC, AP per class and mAP (000 A.10.2 d)."""
    if match not in ("iou", "center"):
        raise InvalidInputError(f"--match must be iou or center, got {match!r}")
    data = met.load_coco(_load_json(ref), _load_json(pred), ref_name=str(ref), det_name=str(pred))
    if data.kind == "point" and match == "iou":
        raise InvalidInputError("point annotations need --match center --max-distance D", where=str(ref))
    if match == "center" and max_distance is None:
        raise InvalidInputError("--match center needs --max-distance")
    acc = met.DetectionAccumulator()
    for r, d in zip(data.refs, data.dets, strict=True):
        acc.update(r, d)
    report = acc.aggregate(
        criterion=match,
        threshold=iou,
        max_distance=max_distance,  # type: ignore[arg-type]
        score_threshold=score_threshold,
    )
    if "average_precision" in report:
        report["average_precision"] = _named_ap(report["average_precision"], data.categories)
    report["categories"] = {str(k): v for k, v in data.categories.items()}
    if json_out:
        print_json(report)
        return
    c = report["counts"]
    console.print(
        f"{report['n_images']} images — TP {c['tp']}, FP {c['fp']}, FN {c['fn']}; precision "
        f"{_fmt(c['precision'])}, recall {_fmt(c['recall'])}, FPs/image {_fmt(c['fps_per_image'])}"
    )
    fr = report["froc"]
    console.print(
        "FROC sensitivity at FPs/image "
        + ", ".join(f"{k}: {_fmt(v)}" for k, v in fr["sensitivity_at"].items())
        + f"; score {_fmt(fr['score'])}"
    )
    if "average_precision" in report:
        ap = report["average_precision"]
        table = Table(title=f"AP per class — mAP@0.5 {_fmt(ap['map50'])}, mAP@[.5:.95] {_fmt(ap['map50_95'])}")
        for col in ("class", "name", "AP50", "AP75", "AP50:95"):
            table.add_column(col, overflow="fold")
        for k, row in ap["per_class"].items():
            table.add_row(k, row.get("name", ""), _fmt(row.get("ap50")), _fmt(row.get("ap75")), _fmt(row["ap50_95"]))
        console.print(table)
    console.print(f"[dim]matching: {report['matching']['rule']}[/dim]")


def _named_ap(ap: dict[str, Any], categories: dict[int, str]) -> dict[str, Any]:
    for k, row in ap["per_class"].items():
        row["name"] = categories.get(int(k), k)
    return ap


@app.command("cls", epilog="Example: aimd metrics cls results.csv --truth label --score prob --rule youden --json")
def cls(
    table: Path = typer.Argument(..., help="CSV with one row per case."),
    truth: str = typer.Option(..., "--truth", help="Column with the true class."),
    score: str | None = typer.Option(None, "--score", help="Column with the score (higher = positive)."),
    pred: str | None = typer.Option(None, "--pred", help="Column with the predicted class."),
    positive: str = typer.Option("1", "--positive", help="Value of the truth column that is positive."),
    threshold: float | None = typer.Option(None, "--threshold", help="Fixed score threshold (score >= t)."),
    rule: str = typer.Option("youden", "--rule", help="youden | sensitivity | specificity (when no threshold)."),
    target: float | None = typer.Option(None, "--target", help="Target sensitivity/specificity for --rule."),
    json_out: bool = JsonOption,
) -> None:
    """Confusion matrix, accuracy, sensitivity, specificity, PPV, NPV, F1, ROC/AUC with DeLong CI."""
    if score is None and pred is None:
        raise InvalidInputError("give --score, --pred or both")
    if rule not in ("youden", "sensitivity", "specificity"):
        raise InvalidInputError(f"--rule must be youden, sensitivity or specificity, got {rule!r}")
    cols = [truth] + [c for c in (score, pred) if c]
    df = read_table(table, cols)
    truth_values = df[truth].to_numpy()
    n_pos = int(met.binary_truth(truth_values, positive).sum())
    if n_pos in (0, len(truth_values)):
        raise InvalidInputError(
            f"{n_pos} of {len(truth_values)} rows of {truth!r} equal the positive value {positive!r}",
            where=f"{table}: {truth}",
            hint="set --positive to the positive class; both classes are needed",
        )
    acc = met.ClassificationAccumulator(positive=positive)
    scores = numeric_column(df, score, table) if score else None
    preds = df[pred].to_numpy() if pred else None
    if scores is not None or preds is not None:
        acc.update(truth_values, scores=scores, y_pred=preds)
    report: dict[str, Any] = {"table": str(table), "truth": truth, "positive": positive}
    report |= acc.aggregate(threshold=threshold, rule=rule, target=target)  # type: ignore[arg-type]
    if preds is not None:
        labels = sorted({str(v) for v in truth_values} | {str(v) for v in preds})
        cm = met.confusion_matrix(truth_values.astype(str), preds.astype(str), labels=labels)
        report["confusion_matrix"] = {
            "labels": labels,
            "matrix": cm.tolist(),
            "accuracy": met.multiclass_accuracy(cm),
        }
    if json_out:
        print_json(report)
        return
    for key in ("from_labels", "operating_point"):
        if key in report:
            r = report[key]
            console.print(
                f"{key.replace('_', ' ')}: "
                + ", ".join(
                    f"{m} {_fmt(r[m])}"
                    for m in (
                        "threshold",
                        "tp",
                        "fp",
                        "fn",
                        "tn",
                        "accuracy",
                        "sensitivity",
                        "specificity",
                        "ppv",
                        "npv",
                        "f1",
                    )
                    if m in r
                )
            )
    if "auc" in report:
        a = report["auc"]
        console.print(f"AUC {_fmt(a['auc'])} [{_fmt(a['ci_low'])}, {_fmt(a['ci_high'])}] ({a['ci_method']})")


@app.command("agree", epilog="Example: aimd metrics agree ratings.csv --raters r1,r2,r3 --kind fleiss --json")
def agree(
    table: Path = typer.Argument(..., help="CSV with one row per rated item and one column per rater."),
    raters: str = typer.Option(..., "--raters", help="Comma-separated rater columns."),
    kind: str = typer.Option("kappa", "--kind", help="kappa | fleiss | icc | pearson | bland-altman."),
    weights: str | None = typer.Option(None, "--weights", help="Weighted kappa: linear or quadratic."),
    icc_form: str = typer.Option("ICC2", "--icc-form", help="ICC form to report first (ICC1..ICC3k)."),
    confidence: float = typer.Option(0.95, "--confidence", help="Confidence level of the intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the kappa bootstrap CI."),
    json_out: bool = JsonOption,
) -> None:
    """Rater agreement: Cohen's (weighted) kappa, Fleiss' kappa, ICC, Pearson with CI, Bland–Altman."""
    cols = [c.strip() for c in raters.split(",") if c.strip()]
    if len(cols) < 2:
        raise InvalidInputError(f"--raters needs at least 2 columns, got {cols}")
    kinds = ("kappa", "fleiss", "icc", "pearson", "bland-altman")
    if kind not in kinds:
        raise InvalidInputError(f"--kind must be one of {kinds}, got {kind!r}")
    if weights not in (None, "linear", "quadratic"):
        raise InvalidInputError(f"--weights must be linear or quadratic, got {weights!r}")
    if kind in ("kappa", "pearson", "bland-altman") and len(cols) != 2:
        raise InvalidInputError(
            f"--kind {kind} compares exactly 2 raters, got {len(cols)}",
            hint="use --kind fleiss or icc for more raters",
        )
    if icc_form not in met.ICC_FORMS:
        raise InvalidInputError(f"--icc-form must be one of {list(met.ICC_FORMS)}, got {icc_form!r}")
    df = read_table(table, cols)
    report: dict[str, Any] = {"table": str(table), "raters": cols, "kind": kind, "n_items": len(df)}
    if kind == "kappa":
        a, b = df[cols[0]].to_numpy(), df[cols[1]].to_numpy()
        value = met.cohen_kappa(a, b, weights=weights)  # type: ignore[arg-type]
        report["kappa"] = value
        report["weights"] = weights or "none (001 D.12)"
        if value is not None and len(a) > 1:
            cats = met.category_order(a, b)
            ci = met.bootstrap_ci(
                (a, b),
                lambda x, y: _kappa_or_nan(x, y, weights, cats),
                method="percentile",
                confidence=confidence,
                seed=seed,
            )
            report["ci"] = ci.to_dict()
    elif kind == "fleiss":
        report["fleiss_kappa"] = met.fleiss_kappa(df[cols].to_numpy())
    elif kind == "icc":
        values = np.column_stack([numeric_column(df, c, table) for c in cols])
        forms = met.icc(values, confidence)
        report["primary"] = forms[icc_form].to_dict()
        report["forms"] = {k: v.to_dict() for k, v in forms.items()}
    else:
        first, second = (numeric_column(df, c, table) for c in cols[:2])
        paired = met.pearson if kind == "pearson" else met.bland_altman
        report |= paired(first, second, confidence).to_dict()
    if json_out:
        print_json(report)
        return
    shown = {
        k: v
        for k, v in (report["primary"] if kind == "icc" else report).items()
        if isinstance(v, int | float | str) and k not in ("table", "kind")
    }
    console.print(f"{kind}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items()))
    if "ci" in report:
        ci = report["ci"]
        bounds = f"[{_fmt(ci['ci_low'])}, {_fmt(ci['ci_high'])}]"
        console.print(f"{ci['confidence']:.0%} CI {bounds} ({ci['method']} bootstrap, seed {ci['seed']})")


def _kappa_or_nan(x: np.ndarray, y: np.ndarray, weights: str | None, labels: list[Any]) -> float:
    value = met.cohen_kappa(x, y, weights=weights, labels=labels)  # type: ignore[arg-type]
    return float("nan") if value is None else value


__all__ = ["app"]
