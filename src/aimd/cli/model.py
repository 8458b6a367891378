"""``aimd model``: reference models, training, export, description and prediction."""

from __future__ import annotations

from pathlib import Path

import typer

from aimd.cli.common import (
    EXIT_FINDINGS,
    JsonOption,
    console,
    new_typer,
    print_json,
    progress_bar,
    status,
)
from aimd.core.errors import InvalidInputError

app = new_typer(
    "Models: reference zoo, training and fine-tuning (full, LoRA, distillation), ONNX/INT8 export, "
    "000 §4 model description, prediction.\n\n"
    "Example: aimd model train --task seg --model unet-small --data ph/dataset.json --out run1"
)

ONNX_TOLERANCE = 1e-3


def _num(value: object) -> str:
    """A metric with four significant digits (``—`` when absent)."""
    return f"{value:.4g}" if isinstance(value, float) else ("—" if value is None else str(value))


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@app.command(
    "zoo",
    epilog="Example: aimd model zoo --json\n\nRe-measure the shipped reference devices on a fresh "
    "held-out phantom set: aimd model zoo --verify",
)
def zoo(
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Re-compute the shipped metrics of the trained reference "
        "devices on freshly generated held-out phantoms; exit 1 "
        "when a value leaves its recorded 95 % CI.",
    ),
    name: list[str] = typer.Option([], "--name", help="With --verify: only these reference devices."),
    cases: int = typer.Option(60, "--cases", help="With --verify: held-out phantom cases."),
    json_out: bool = JsonOption,
) -> None:
    """List the reference models and the trained reference devices (shipped weights, SHA-256, metrics)."""
    if verify:
        _verify_zoo(name, cases, json_out)
        return
    import torch

    from aimd.models.reference import RECIPES, shipped_status
    from aimd.models.targets import get_target
    from aimd.models.zoo import ZOO, build_network

    rows = []
    for name, entry in sorted(ZOO.items()):
        with torch.device("meta"):
            net = build_network(name, out_channels=get_target(entry.default_target).channels)
        spec = entry.input_spec
        rows.append(
            {
                "name": name,
                "task": entry.task,
                "default_target": entry.default_target,
                "modality": spec.modality,
                "input": spec.input_shape(),
                "intensity": spec.intensity.describe(),
                "parameters": sum(p.numel() for p in net.parameters()),
                "trained_here": entry.trained_here,
                "lora_targets": list(entry.lora_targets),
                "source": entry.source,
            }
        )
    for ref_name, info in sorted(RECIPES.items()):
        status = shipped_status(ref_name)
        rows.append(
            {
                "name": ref_name,
                "task": info.task,
                "default_target": "shipped weights",
                "trained_here": True,
                "trained": status["trained"],
                "sha256_ok": status["sha256_ok"],
                "sha256": status.get("sha256"),
                "metrics": status.get("metrics"),
                "weights": status["weights"],
            }
        )
    if json_out:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title="aimd model zoo")
    for col in ("name", "task", "modality", "input", "parameters", "trained here"):
        table.add_column(col, overflow="fold")
    for r in rows:
        if "modality" not in r:
            continue
        table.add_row(
            r["name"],
            f"{r['task']} ({r['default_target']})",
            r["modality"],
            str(r["input"]),
            f"{r['parameters']:,}",
            "yes" if r["trained_here"] else "no",
        )
    console.print(table)
    refs = Table(title="reference devices (shipped weights)")
    for col in ("name", "task", "trained", "SHA-256", "held-out metrics (95 % CI)"):
        refs.add_column(col, overflow="fold")
    for r in rows:
        if "modality" in r:
            continue
        metrics = "; ".join(
            f"{k} {v['estimate']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"
            for k, v in (r["metrics"] or {}).items()
            if v.get("ci_low") is not None
        )
        sha = "—" if r["sha256"] is None else r["sha256"][:12] + ("…" if r["sha256_ok"] else "… MISMATCH")
        refs.add_row(r["name"], r["task"], "yes" if r["trained"] else "no", sha, metrics or "—")
    console.print(refs)


def _verify_zoo(names: list[str], cases: int, json_out: bool) -> None:
    from aimd.models.reference import RECIPES, get_recipe, shipped_status, verify_reference

    chosen = names or sorted(RECIPES)
    for n in chosen:
        get_recipe(n)
    results = []
    for n in chosen:
        if not shipped_status(n)["trained"]:
            results.append({"name": n, "passed": None, "verdict": "not evaluated", "why": "no shipped weights"})
            continue
        with progress_bar(f"verify {n}", cases) as advance:
            results.append(verify_reference(n, cases=cases, progress=lambda _i: advance()))
    if json_out:
        print_json(results)
    else:
        for r in results:
            if r.get("passed") is None:
                console.print(f"{r['name']}: not evaluated ({r['why']})")
                continue
            console.print(
                f"[bold]{r['name']}[/bold] on {r['cases']} fresh held-out cases (seed {r['seed']}, "
                f"sites {', '.join(r['data']['sites'])}):"
            )
            for key, c in r["checks"].items():
                if c["verdict"] == "not evaluated":
                    console.print(f"  {key}: not evaluated ({c['why']})")
                    continue
                lo, hi = c["shipped_ci"]
                now_lo, now_hi = c["now_ci"]
                colour = "green" if c["verdict"] == "pass" else "red"
                console.print(
                    f"  {key}: now {c['now']:.3f} [{now_lo:.3f}, {now_hi:.3f}], "
                    f"shipped {c['shipped']:.3f} [{lo:.3f}, {hi:.3f}] "
                    f"[{colour}]{c['verdict']}[/{colour}]"
                )
    if any(r.get("passed") is False for r in results):
        raise typer.Exit(EXIT_FINDINGS)


@app.command(
    "train",
    epilog="Example: aimd model train --task seg --model unet-small --data ph/dataset.json "
    "--out run1 --epochs 5\n\nFine-tune with LoRA: aimd model train --task seg --model "
    "unet-small --target lesions --data ph --out run2 --init run1 --lora 4",
)
def train_cmd(
    recipe: str | None = typer.Option(
        None,
        "--recipe",
        help="Reference device recipe: device-lesions or "
        "device-nodules (trains from generated phantoms; --out is the weights "
        "folder; other options except --set, --seed, --threads are ignored).",
    ),
    settings: list[str] = typer.Option(
        [], "--set", help="With --recipe: override a recipe setting, KEY=VALUE (e.g. --set steps=100)."
    ),
    operating_point: bool = typer.Option(
        False,
        "--operating-point",
        help="With --recipe device-lesions: no training; choose the operating point of the trained weights "
        "in --out (default: shipped) on the validation set of the training sites and re-measure held-out.",
    ),
    task: str | None = typer.Option(None, "--task", help="seg or cls."),
    model: str | None = typer.Option(None, "--model", help="Zoo model: unet-small, vit-small, unet-b1, vit-b16-512."),
    data: Path | None = typer.Option(None, "--data", help="dataset.json of aimd data phantom (or its folder)."),
    out: Path | None = typer.Option(None, "--out", help="New run folder."),
    target: str | None = typer.Option(
        None, "--target", help="body, organs, lesions, lung_nodule, liver_tumour, nodule_present."
    ),
    init: Path | None = typer.Option(None, "--init", help="Run folder or weights to start from (fine-tuning)."),
    lora: int | None = typer.Option(None, "--lora", help="LoRA rank R (fine-tune adapters only, needs --init)."),
    lora_targets: str | None = typer.Option(None, "--lora-targets", help="Comma-separated layer-name globs."),
    lora_alpha: float | None = typer.Option(None, "--lora-alpha", help="LoRA alpha (default 2R)."),
    teacher: Path | None = typer.Option(None, "--teacher", help="Teacher run folder (knowledge distillation)."),
    temperature: float = typer.Option(4.0, "--temperature", help="Distillation temperature T."),
    distill_alpha: float = typer.Option(0.7, "--alpha", help="Distillation weight of the soft loss."),
    epochs: int = typer.Option(10, "--epochs", help="Maximum epochs."),
    batch_size: int = typer.Option(16, "--batch-size", help="Batch size."),
    lr: float = typer.Option(1e-3, "--lr", help="Initial learning rate."),
    optimizer: str = typer.Option("adamw", "--optimizer", help="adamw or sgd."),
    schedule: str = typer.Option("cosine_restarts", "--schedule", help="cosine_restarts, step or none."),
    loss: str | None = typer.Option(None, "--loss", help="focal, dice, dice_focal or ce."),
    lambda_dice: float = typer.Option(0.4, "--lambda-dice", help="Weight of Dice in dice_focal."),
    lambda_focal: float = typer.Option(0.6, "--lambda-focal", help="Weight of focal in dice_focal."),
    patience: int = typer.Option(5, "--patience", help="Early-stopping patience (epochs)."),
    augment: str = typer.Option("flip,noise,shift,elastic", "--augment", help="Comma-separated; '' for none."),
    case_fraction: float = typer.Option(1.0, "--case-fraction", help="Fraction of training cases (0-1]."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Cap on steps per epoch."),
    seed: int = typer.Option(0, "--seed", help="Seed for data order, augmentation and initialisation."),
    threads: int = typer.Option(2, "--threads", help="CPU threads."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty OUT."),
    json_out: bool = JsonOption,
) -> None:
    """Train a zoo model on a phantom dataset and write a run folder with its training record."""
    if recipe is not None:
        if operating_point:
            _choose_point(recipe, out, json_out)
            return
        _train_recipe(recipe, settings, out, seed, threads, json_out)
        return
    missing = [
        flag
        for flag, value in (("--task", task), ("--model", model), ("--data", data), ("--out", out))
        if value is None
    ]
    if missing:
        raise InvalidInputError(
            f"missing {', '.join(missing)}",
            where="aimd model train",
            hint="pass --task, --model, --data and --out, or --recipe device-lesions",
        )
    assert task is not None and model is not None and data is not None and out is not None
    from aimd.models.config import make_config
    from aimd.models.training import train

    if task not in {"seg", "cls"}:
        raise InvalidInputError(f"task must be seg or cls, got {task!r}", where="--task", hint="use --task seg")
    cfg = make_config(
        task=task,
        model=model,
        data=data,
        out=out,
        target=target,
        init=init,
        lora_rank=lora,
        lora_alpha=lora_alpha,
        lora_targets=_split(lora_targets),
        teacher=teacher,
        temperature=temperature,
        distill_alpha=distill_alpha,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        schedule=schedule,
        loss=loss,
        lambda_dice=lambda_dice,
        lambda_focal=lambda_focal,
        patience=patience,
        augment=_split(augment) or [],
        case_fraction=case_fraction,
        max_steps_per_epoch=max_steps,
        seed=seed,
        threads=threads,
        force=force,
    )
    with progress_bar("epochs", epochs) as advance:
        summary = train(cfg, progress=advance)
    if json_out:
        print_json(summary)
    else:
        console.print(
            f"[green]trained {summary['model']} on {summary['target']}[/green] → {summary['run']}: "
            f"{summary['epochs_run']} epochs (best {summary['best_epoch']}), train loss "
            f"{summary['first_train_loss']:.4f} → {summary['last_train_loss']:.4f}, val "
            f"{summary['metric']} {_num(summary['val'])}, test {_num(summary['test'])}"
        )


def _parse_setting(text: str) -> tuple[str, object]:
    import json

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise InvalidInputError(f"setting {text!r} is not KEY=VALUE", where="--set", hint="e.g. --set steps=100")
    try:
        value: object = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def _choose_point(name: str, out: Path | None, json_out: bool) -> None:
    from aimd.models.reference.shipped import choose_reference_point

    with progress_bar(f"operating point of {name}", None) as advance:
        record = choose_reference_point(name, folder=out, progress=lambda _m: advance())
    point = record["operating_point"]
    if json_out:
        keys = ("threshold", "min_lesion_mm3", "rule", "source")
        print_json(
            {k: point[k] for k in keys}
            | {"validation": point["validation"]["chosen"]}
            | {"metrics_summary": record["metrics_summary"]}
        )
        return
    chosen = point["validation"]["chosen"]
    console.print(
        f"[green]{name}[/green] operating point: probability ≥ {point['threshold']:g}, components ≥ "
        f"{point['min_lesion_mm3']:g} mm³ (validation: sensitivity {chosen['sensitivity_5mm']:.3f}, "
        f"{chosen['fp_per_case']:.2f} FP/case, Dice {chosen['dice']:.3f}); rule: {point['rule']}"
    )
    _print_summary(record["metrics_summary"])


def _print_summary(summary: dict[str, dict[str, float | None]]) -> None:
    for key, v in summary.items():
        if v.get("estimate") is not None and v.get("ci_low") is not None:
            console.print(f"  held-out {key}: {v['estimate']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]")


def _train_recipe(name: str, settings: list[str], out: Path | None, seed: int, threads: int, json_out: bool) -> None:
    from aimd.models.reference import get_recipe, train_recipe

    get_recipe(name)
    overrides = dict(_parse_setting(t) for t in settings)
    overrides.setdefault("seed", seed)
    overrides.setdefault("threads", threads)
    with progress_bar(f"train {name}", None) as advance:
        record = train_recipe(name, out, overrides=overrides, progress=lambda _m: advance())
    if json_out:
        keys = ("name", "weights_file", "weights_sha256", "metrics_summary", "training_data")
        print_json(
            {k: record[k] for k in keys}
            | {"training_seconds": record["training"]["training"], "out": str(out) if out else "shipped"}
        )
        return
    t = record["training"]["training"]
    console.print(
        f"[green]trained {name}[/green] in {t['wall_seconds']:.0f} s wall ({t['cpu_seconds']:.0f} s CPU), "
        f"weights SHA-256 {record['weights_sha256'][:12]}… → {out or 'the shipped weights folder'}"
    )
    _print_summary(record["metrics_summary"])


@app.command("export", epilog="Example: aimd model export run1 --onnx --int8 --int8-mode static --json")
def export_cmd(
    run: Path = typer.Argument(..., help="Run folder."),
    onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Write model.onnx (dynamic batch)."),
    int8: bool = typer.Option(False, "--int8", help="Also write INT8-quantised ONNX models."),
    int8_mode: str = typer.Option("both", "--int8-mode", help="static (QDQ, calibrated), dynamic, or both."),
    torchscript: bool = typer.Option(False, "--torchscript", help="Also write model.ts."),
    bundle: bool = typer.Option(False, "--bundle", help="Also write a MONAI bundle folder."),
    data: Path | None = typer.Option(None, "--data", help="dataset.json if it moved since training."),
    threads: int = typer.Option(2, "--threads", help="Runtime threads."),
    runtime: list[str] = typer.Option(
        ["onnxruntime", "openvino"],
        "--runtime",
        help="Runtime(s) that run and score each ONNX file: onnxruntime, openvino.",
    ),
    exporter: str = typer.Option("dynamo", "--exporter", help="dynamo (default) or torchscript (faster, CNNs)."),
    json_out: bool = JsonOption,
) -> None:
    """Export a run (ONNX, INT8, TorchScript, MONAI bundle) and compare accuracy on the validation split.

    Exit 1 when the ONNX outputs (in any runtime) differ from PyTorch by more than 1e-3.
    """
    from aimd.models.adapters import RUNTIMES
    from aimd.models.export import export_run

    unknown = sorted(set(runtime) - set(RUNTIMES))
    if unknown:
        raise InvalidInputError(f"unknown runtime(s) {unknown}", where="--runtime", hint=f"use {list(RUNTIMES)}")

    if exporter not in {"dynamo", "torchscript"}:
        raise InvalidInputError(
            f"--exporter must be dynamo or torchscript, got {exporter!r}",
            where="--exporter",
            hint="use --exporter dynamo",
        )
    if int8_mode not in {"static", "dynamic", "both"}:
        raise InvalidInputError(
            f"--int8-mode must be static, dynamic or both, got {int8_mode!r}",
            where="--int8-mode",
            hint="use --int8-mode static",
        )
    modes: tuple[str, ...] = ()
    if int8:
        modes = ("static", "dynamic") if int8_mode == "both" else (int8_mode,)
    with progress_bar("export", 1 + len(modes)) as advance:
        report = export_run(
            run,
            onnx_fp32=onnx,
            int8=modes,
            torchscript=torchscript,
            bundle=bundle,  # type: ignore[arg-type]
            data=data,
            threads=threads,
            exporter=exporter,
            progress=advance,  # type: ignore[arg-type]
            runtimes=tuple(dict.fromkeys(runtime)),
        )  # type: ignore[arg-type]
    diffs = {k: v for k, v in report.items() if k in ("onnx_max_abs_diff", "openvino_max_abs_diff")}
    failed = any(v > ONNX_TOLERANCE for v in diffs.values())
    report["onnx_check_passed"] = not failed if onnx else None
    if json_out:
        print_json(report)
    else:
        for name, r in report["runtimes"].items():
            change = r["change_vs_torch_fp32"]
            tail = f" (change {change:+.4f})" if change else ""
            console.print(f"{name:>22}: {r['metric']} {_num(r['value'])}{tail}")
        for key, value in diffs.items():
            name = "ONNX Runtime" if key.startswith("onnx") else "OpenVINO"
            console.print(
                f"{name} max abs diff vs PyTorch: {value:.3g}"
                + (" [red]exceeds 1e-3[/red]" if value > ONNX_TOLERANCE else "")
            )
        for name, why in report.get("unsupported", {}).items():
            console.print(f"{name:>18}: not run ({why})")
        console.print(f"[green]wrote[/green] {', '.join(v['path'] for v in report['files'].values())} in {run}")
    if failed:
        raise typer.Exit(EXIT_FINDINGS)


@app.command(
    "describe",
    epilog="Example: aimd model describe unet-small --run run1 --extra provider.yaml "
    "--format html --out description.html",
)
def describe_cmd(
    model: str = typer.Argument(..., help="Zoo name, run folder, MONAI bundle folder, TorchScript or ONNX file."),
    run: Path | None = typer.Option(None, "--run", help="Training run of MODEL (adds §4.3–§4.4)."),
    extra: Path | None = typer.Option(None, "--extra", help="Provider YAML for what cannot be derived."),
    fmt: str = typer.Option("md", "--format", help="md, html or json."),
    out: Path | None = typer.Option(None, "--out", help="Output file (default: print)."),
    measure: bool | None = typer.Option(None, "--measure/--no-measure", help="Time inference on this machine."),
    threads: int = typer.Option(2, "--threads", help="Threads for the measurement."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when a required item is missing."),
    json_out: bool = JsonOption,
) -> None:
    """Write the 000 §4 description of a model: derived, provider-supplied, and the gaps."""
    from aimd.models.describe import FORMATS, describe_model, render, write_description

    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown format {fmt!r}", where="--format", hint=f"use one of {list(FORMATS)}")
    with status(f"loading and describing {model}", enabled=not json_out and out is not None):
        doc = describe_model(model, run=run, extra=extra, measure=measure, threads=threads)
    required = [g for g in doc["gaps"] if g["required"]]
    if out is not None:
        write_description(doc, out, fmt)
    if json_out:
        print_json(
            {
                "model": doc["model"],
                "out": str(out) if out else None,
                "format": fmt,
                "parameters": doc["sections"]["4.2.3"]["items"]["total"]["value"],
                "gaps": doc["gaps"],
                "required_gaps": len(required),
            }
        )
    elif out is None:
        typer.echo(render(doc, fmt))
    else:
        console.print(
            f"[green]wrote[/green] {out} ({len(required)} required gap(s), {len(doc['gaps']) - len(required)} optional)"
        )
    if strict and required:
        raise typer.Exit(EXIT_FINDINGS)


@app.command("adapt", epilog="Example: aimd model adapt run1 --site-data site_f/ --method bn --out run1_site_f")
def adapt_cmd(
    run: Path = typer.Argument(..., help="Run folder of aimd model train."),
    site_data: Path = typer.Option(
        ...,
        "--site-data",
        help="Target-site images: a dataset folder "
        "(dataset.json; labels are not read) or a folder of NIfTI/DICOM images.",
    ),
    out: Path = typer.Option(..., "--out", help="New run folder for the adapted model."),
    method: str = typer.Option("bn", "--method", help="bn: re-estimate BatchNorm statistics (AdaBN)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Slices per forward pass."),
    modality: str | None = typer.Option(None, "--modality", help="Modality to assume when the files have none."),
    threads: int = typer.Option(2, "--threads", help="CPU threads."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty OUT."),
    json_out: bool = JsonOption,
) -> None:
    """Adapt a trained model to a new site from unlabelled images (003 §5.3) and write a new run."""
    from aimd.models.adapt import adapt_run

    summary = adapt_run(
        run, site_data, out, method=method, batch_size=batch_size, threads=threads, modality=modality, force=force
    )
    if json_out:
        print_json(summary)
        return
    console.print(
        f"[green]adapted[/green] {run} → {out}: {summary['batchnorm_layers']} BatchNorm layers "
        f"re-estimated on {summary['slices_seen']} slices of {summary['images']} images",
        highlight=False,
    )


from aimd.cli import model_federate, model_predict  # noqa: E402 - register on the app above

model_predict.register(app)
model_federate.register(app)

__all__ = ["app"]
