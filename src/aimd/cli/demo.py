"""``aimd demo``: the data → annotation → model path of DESIGN.md on embedded defaults.

Each stage is also its own command; the demo only composes them, times them and prints where
every output is. A summary goes to ``OUT/demo_summary.json``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from aimd.cli.common import EXIT_FINDINGS, console, err_console, progress_bar
from aimd.core.atomic import atomic_write_json
from aimd.core.findings import Severity

Stage = Callable[[dict[str, Any]], dict[str, Any]]


def _phantoms(ctx: dict[str, Any]) -> dict[str, Any]:
    from aimd.phantoms import generate_dataset

    out = ctx["out"] / "phantoms"
    bars = contextlib.ExitStack()
    advance: list[Callable[[int], object]] = []

    def on_case(n: int = 1) -> None:  # the bar starts after the worker processes are forked
        if not advance:
            advance.append(bars.enter_context(progress_bar("phantom cases", ctx["cases"])))
        advance[0](n)

    with bars:
        index = generate_dataset(
            out, cases=ctx["cases"], seed=ctx["seed"], size=ctx["size"], sites=3, force=True, progress=on_case
        )
    ctx["dataset"] = out
    lesions = sum(c["lesion_count"] for c in index["cases"])
    return {
        "output": str(out),
        "cases": len(index["cases"]),
        "lesions": lesions,
        "splits": {k: len(index["split"][k]) for k in ("train", "val", "test")},
    }


def _validate(ctx: dict[str, Any]) -> dict[str, Any]:
    from aimd.imaging.geometry import check_series

    case_dirs = sorted((ctx["dataset"] / "cases").iterdir())
    counts = {s.value: 0 for s in Severity}
    codes: dict[str, int] = {}
    with progress_bar("geometry and quality checks", len(case_dirs)) as advance:
        for case_dir in case_dirs:
            for finding in check_series(case_dir / "ct", quality=True):
                counts[finding.severity.value] += 1
                codes[finding.code] = codes.get(finding.code, 0) + 1
            advance()
    if counts["error"]:
        ctx["failures"].append("validate")
    return {"series_checked": len(case_dirs), "findings": counts, "codes": codes}


def _deid(ctx: dict[str, Any]) -> dict[str, Any]:
    from aimd.imaging.deid import deidentify_path

    dst = ctx["out"] / "deid"
    map_file = ctx["out"] / "secrets" / "deid_map.json"
    with Progress(
        TextColumn("[bold]de-identification"), BarColumn(), MofNCompleteColumn(), console=err_console, transient=True
    ) as bar:
        task = bar.add_task("deid", total=None)
        report = deidentify_path(
            ctx["dataset"],
            dst,
            map_file,
            overwrite=True,
            progress=lambda: bar.advance(task),
            on_total=lambda n: bar.update(task, total=n),
        )
    if report.exit_code:
        ctx["failures"].append("deid")
    return {"output": str(dst), "map": str(map_file), **report.summary()}


def _annotation(ctx: dict[str, Any]) -> dict[str, Any]:
    from aimd.annotation import run_annotation_demo

    # 001 §11.2.1: data enter the annotation environment de-identified.
    source = ctx["out"] / "deid"
    with progress_bar("annotation: readers → QC → agreement → export → verify → report", 6) as advance:
        result = run_annotation_demo(
            source, ctx["out"] / "annotation", readers=3, seed=ctx["seed"], seg=True, progress=lambda n: advance(n)
        )
    if result["verify_errors"]:
        ctx["failures"].append("annotation")
    keep = (
        "report",
        "export",
        "qc",
        "mean_dice",
        "min_dice",
        "second_review",
        "special_review",
        "single_reader_objects",
        "export_refused_without_force",
        "export_files",
        "seg_files",
        "verify_errors",
    )
    return {k: result[k] for k in keep}


def _platform(ctx: dict[str, Any]) -> dict[str, Any]:
    from aimd.core.audit import chain_break
    from aimd.platform.demo import run_platform_demo
    from aimd.store.audit import load_trail

    steps = ("project", "distribute", "readers", "arbitration", "review", "freeze and export")
    with progress_bar("platform: " + " → ".join(steps), len(steps)) as advance:
        result = run_platform_demo(ctx["out"] / "deid", ctx["out"] / "platform", progress=lambda _s: advance())
    _, trail = load_trail(ctx["out"] / "platform")  # what `aimd audit verify OUT/platform` checks
    result["audit_verify"] = "holds" if chain_break(trail) is None else "broken"
    if result["audit_verify"] != "holds" or not result["arbitrated"]:
        ctx["failures"].append("platform")
    return result


def _models(ctx: dict[str, Any]) -> dict[str, Any]:
    from aimd.models.demo import DEMO_STAGES, run_model_demo
    from aimd.phantoms import generate_dataset

    # Training needs more cases than annotation review: a dedicated 64³ phantom set, same seed.
    data = ctx["out"] / "model_data"
    generate_dataset(data, cases=ctx["model_cases"], seed=ctx["seed"], size=64, sites=3, force=True)
    shutil.rmtree(ctx["out"] / "models", ignore_errors=True)  # the demo's own runs from an earlier demo
    with progress_bar("models: " + " → ".join(DEMO_STAGES), len(DEMO_STAGES)) as advance:
        result = run_model_demo(data, ctx["out"] / "models", seed=ctx["seed"], progress=lambda _stage: advance())
    ctx["device_model"] = result["export"]["files"].get("onnx")
    ref = result["reference"]
    lesions = ref.get("device-lesions", {}).get("held_out", {})
    nodules = ref.get("device-nodules", {}).get("held_out", {})
    headline = {
        "output": result["out"],
        "lesions_shipped_dice": lesions.get("dice", {}).get("estimate"),
        "lesions_shipped_sensitivity_5mm": lesions.get("sensitivity_5mm", {}).get("estimate"),
        "nodules_shipped_froc_1fp": nodules.get("froc_sensitivity_at_1fp", {}).get("estimate"),
        "nodules_shipped_auc": nodules.get("image_auc", {}).get("estimate"),
        "organs_val_dice": result["pretrain"]["val_dice"],
        "lesions_full_val_dice": result["finetune_full"]["val_dice"],
        "lesions_lora_val_dice": result["finetune_lora"]["val_dice"],
        "nodule_cls_test_auc": result["classifier"]["test_auc"],
        "onnx_max_abs_diff": result["export"]["onnx_max_abs_diff"],
        "description_required_gaps": result["description"]["required_gaps"],
    }
    return {**headline, "detail": result}


def _evaluation(ctx: dict[str, Any]) -> dict[str, Any]:
    from aimd.cli.evaluate import verdict_table
    from aimd.evaluation.support.isolated import run_isolated
    from aimd.reports import run_evaluation_demo

    out = ctx["out"] / "evaluation"
    shutil.rmtree(out, ignore_errors=True)
    with progress_bar("evaluation: 000 §6.2, §6.3.1–§6.3.9", None) as advance:
        # in a network namespace, as aimd evaluate runs, so egress (000 §5.2.9 b) is enforced, not only watched
        result = run_isolated("aimd.reports:run_evaluation_demo", {"out_dir": str(out)}, progress=lambda _: advance())
        if result is None:
            err_console.print("[yellow]unshare --net is not available here: egress is watched in Python only[/yellow]")
            result = run_evaluation_demo(out, progress=lambda _stage: advance())
    ctx["verdict_table"] = verdict_table(result["verdicts"], result["claims_origin"])
    return {
        "report_html": result["report_html"],
        "report_pdf": result.get("report_pdf"),
        "report_json": result["report_json"],
        "counts": result["counts"],
        "claims_origin": result["claims_origin"],
    }


@contextlib.contextmanager
def pacs_drill(folder: Path, case: str | Path) -> Iterator[Any]:
    """A real Orthanc holding ``case`` as a DICOM CT series, the link drill of the shipped device against it
    and the commands that stop and start it (PACS credentials in the environment ``aimd serve`` reads);
    ``None`` where Orthanc is not installed."""
    import pydicom

    from aimd.imaging.dicom_write import DicomMeta, write_dicom_series
    from aimd.imaging.nifti_io import read_nifti
    from aimd.iq.baseline import DEVICE
    from aimd.iq.demo import DemoPacs
    from aimd.iq.protocol import DependencySpec
    from aimd.iq.specs import LinkDrill, default_link_faults
    from aimd.serving.orthanc import orthanc, orthanc_missing

    if orthanc_missing() is not None:
        yield None
        return
    shutil.rmtree(folder, ignore_errors=True)
    meta = DicomMeta(uid_seed="aimd-iq-demo", window_center=40.0, window_width=400.0)
    files = write_dicom_series(read_nifti(case), folder / "series", meta=meta, fsync=False)
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    saved = {k: os.environ.get(k) for k in ("AIMD_PACS_USER", "AIMD_PACS_PASSWORD")}
    with orthanc(folder / "orthanc") as pacs:
        pacs.upload(files)
        os.environ["AIMD_PACS_USER"], os.environ["AIMD_PACS_PASSWORD"] = pacs.auth
        try:
            drill = LinkDrill(
                model=f"lesion={DEVICE}",
                pacs_url=pacs.dicomweb,
                study_uid=str(first.StudyInstanceUID),
                series_uid=str(first.SeriesInstanceUID),
                answer_field="findings.#",
                serve_args=["--no-explain", "--pacs-timeout", "3", "--pacs-backoff", "0.3", "--threads", "1"],
                recover_within_s=60,
                faults=default_link_faults(),
            )
            outage = DependencySpec(name="PACS", stop=pacs.stop_command, start=pacs.start_command, recover_within_s=60)
            yield DemoPacs(drill=drill, dependency=outage)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def _iq(ctx: dict[str, Any]) -> dict[str, Any]:
    from aimd.iq.demo import run_iq_demo

    steps = ("bundle", "install", "baseline", "serve", "run")  # the shipped reference device, validated cases
    with progress_bar("installation qualification: " + " → ".join(steps), len(steps)) as advance:
        result = run_iq_demo(ctx["out"] / "iq", progress=lambda _s: advance(), links=pacs_drill)
    console.print(f"  {result['service_account']}", highlight=False)  # e.g. the account created by useradd
    return result  # the IQ conclusion is a finding of the report, not a failure of the demo


def _device(ctx: dict[str, Any]) -> dict[str, Any]:
    import json

    from aimd.phantoms import generate_dataset
    from aimd.serving.demo import run_device_demo

    data = ctx["out"] / "model_data"  # the models stage's 64³ phantoms; their own set when it did not run
    if not (data / "cases").is_dir():
        data = ctx["out"] / "device_data"
        generate_dataset(data, cases=3, seed=ctx["seed"], size=64, sites=3, force=True)
    cases = sorted((data / "cases").iterdir())
    lesions = {c: len(json.loads((c / "lesions.json").read_text(encoding="utf-8"))["lesions"]) for c in cases}
    test_case = max(cases, key=lambda c: lesions[c])  # a study with lesions to find
    with progress_bar("device: serve → PACS → infer → SEG + SR", None) as advance:
        result = run_device_demo(
            "device-lesions", test_case / "ct", ctx["out"] / "device", version=None, progress=lambda _s: advance()
        )
    for f in result["findings"]:
        text = f.get("explanation", {}).get("key_features", {})
        console.print(
            f"  {f['id']} {f['grade']:6s} {f['confidence']:.2f}  {text.get('en', '')}  {text.get('zh', '')}",
            highlight=False,
        )
    console.print(f"  {result['mode']}; files: {result['files']}", highlight=False)
    if lesions[test_case] and not result["findings"]:
        ctx["failures"].append("device")
    return {
        "mode": result["mode"].split(" (")[0],
        "model": "device-lesions",
        "study": test_case.name,
        "true_lesions": lesions[test_case],
        "findings": len(result["findings"]),
        **result["grades"],
        "pacs_stored": len(result["pacs_stored"]),
        "detail": result,
    }


STAGES: list[tuple[str, Stage]] = [
    ("phantoms", _phantoms),
    ("validate", _validate),
    ("deid", _deid),
    ("annotation", _annotation),
    ("platform", _platform),
    ("models", _models),
    ("evaluation", _evaluation),
    ("device", _device),
    ("iq", _iq),
]


def demo(
    out: Path = typer.Option(Path("aimd-demo"), "--out", help="Folder for all demo outputs."),
    cases: int = typer.Option(20, "--cases", help="Phantom cases to generate."),
    size: int = typer.Option(128, "--size", help="Phantom CT grid size (voxels per axis)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every stochastic step."),
    model_cases: int = typer.Option(60, "--model-cases", help="64³ phantom cases for model training."),
) -> None:
    """Run the whole path on embedded defaults.

    phantoms → validate → de-identify → annotate, QC, agree, export, verify →
    pre-train, fine-tune (full, LoRA), distil, export ONNX/INT8, describe →
    evaluate the nine quality characteristics (000 §6) and write the conformity report →
    release aimd as a signed bundle, install it, serve it and run the installation qualification (002).

    Every output lands under OUT; OUT/demo_summary.json records each stage's numbers and timing.
    """
    out.mkdir(parents=True, exist_ok=True)
    ctx: dict[str, Any] = {
        "out": out,
        "cases": cases,
        "size": size,
        "seed": seed,
        "model_cases": model_cases,
        "failures": [],
    }
    summary: dict[str, Any] = {"out": str(out), "seed": seed, "stages": {}}
    table = Table(title="aimd demo")
    for col in ("stage", "seconds", "result"):
        table.add_column(col, overflow="fold")
    for name, stage in STAGES:
        console.print(f"[bold]▶ {name}[/bold]")
        start = time.perf_counter()
        result = stage(ctx)
        seconds = round(time.perf_counter() - start, 2)
        summary["stages"][name] = {"seconds": seconds, **result}
        shown = {k: v for k, v in result.items() if not isinstance(v, dict | list)}
        table.add_row(
            name,
            f"{seconds:.1f}",
            ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()),
        )
    atomic_write_json(out / "demo_summary.json", summary)
    console.print(table)
    if "verdict_table" in ctx:
        console.print(ctx["verdict_table"])
    console.print(f"summary: {out / 'demo_summary.json'}")
    if ctx["failures"]:
        console.print(f"[red]stages with errors: {', '.join(ctx['failures'])}[/red]")
        raise typer.Exit(EXIT_FINDINGS)
