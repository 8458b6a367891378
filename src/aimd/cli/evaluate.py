"""``aimd evaluate``: quality evaluation of a pre-trained model and its conformity report (000 §5–§6).

Without a subcommand it runs the evaluation; ``claims-template`` prints a commented claims YAML;
``mask-dataset`` turns an image and its reference mask (e.g. Colin27 and its brain mask) into a
dataset with perturbed copies, for a third-party model such as deepbet.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

# before torch loads (``aimd.evaluation`` imports it): OpenMP threads sleep while they wait instead of
# spinning, in-process too (--no-isolate-network, or no unshare here), unless the caller chose a policy
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from aimd import evaluation
from aimd.cli.common import EXIT_FINDINGS, EXIT_OK, JsonOption, console, new_typer, print_json, progress_bar
from aimd.core.atomic import atomic_write_text
from aimd.core.errors import InvalidInputError

#: The names --only/--skip accept, for the help text (written out so ``--help`` imports no
#: characteristic; a test keeps it equal to :data:`aimd.evaluation.CLAUSE_KEYS`).
CHARACTERISTIC_NAMES = (
    "description",
    "trainability",
    "scalability",
    "transferability",
    "efficiency",
    "repeatability",
    "robustness",
    "generalization",
    "adversarial",
    "privacy",
)

app = new_typer(
    "Evaluate a pre-trained model against the provider's claims and write the conformity report "
    "(000 §6.2–§6.3.9): report.json, report.html, report.pdf.\n\n"
    "Example: aimd evaluate --model runs/seg --data phantoms/ --claims claims.yaml --out report/  "
    "(→ exit 1 when a claim is not met — the template's description claim is, until the provider's part "
    "is filled in; report.html names each quantity)"
)
app.info.no_args_is_help = False

_VERDICT_STYLE = {"conform": "green", "nonconform": "red", "inconclusive": "magenta", "not_evaluated": "yellow"}


def _split_names(values: list[str] | None, where: str) -> list[str]:
    names = [n for v in values or [] for n in v.split(",")]
    return evaluation.check_selection(names, where=where)


def verdict_table(rows: list[dict[str, object]], origin: str) -> Table:
    """The one-screen verdict table, captioned with who set the bar (also shown by ``aimd demo``)."""
    table = Table(title="Conformity verdicts (000 §6)", caption=f"Claims: {origin}")
    for col in ("clause", "characteristic", "verdict", "seconds", "reason"):
        table.add_column(col, overflow="fold")
    for r in rows:
        verdict = str(r["verdict"])
        reason = str(r["reason"])
        table.add_row(
            str(r["clause"]),
            str(r["characteristic"]),
            f"[{_VERDICT_STYLE.get(verdict, 'white')}]{verdict.replace('_', ' ')}[/]",
            f"{float(str(r['seconds'])):.1f}",
            reason if len(reason) < 160 else reason[:159] + "…",
        )
    return table


def print_verdicts(rows: list[dict[str, object]], origin: str) -> None:
    """Print :func:`verdict_table`."""
    console.print(verdict_table(rows, origin))


def _rerun_argv(params: dict[str, Any]) -> list[str]:
    """``aimd evaluate`` arguments that repeat this invocation (inside the network namespace)."""
    args = [
        "evaluate",
        "--out",
        str(params["out"]),
        "--seed",
        str(params["seed"]),
        "--threads",
        str(params["threads"]),
        "--pdf" if params["pdf"] else "--no-pdf",
        "--no-isolate-network",
    ]
    for flag in ("model", "data", "claims", "description", "ray_address"):
        if params[flag] is not None:
            args += [f"--{flag.replace('_', '-')}", str(params[flag])]
    if params["ray"]:
        args.append("--ray")
    for flag in ("only", "skip", "split"):
        for value in params[flag] or []:
            args += [f"--{flag}", str(value)]
    return [*args, "--json"] if params["json_out"] else args


@app.callback(invoke_without_command=True, epilog="Example: aimd evaluate --out report/  (reference model)")
def evaluate(
    ctx: typer.Context,
    model: Path | None = typer.Option(
        None, "--model", help="Run folder, TorchScript, ONNX file, MONAI bundle, or deepbet[:GRID] (installed deepbet)."
    ),
    data: Path | None = typer.Option(None, "--data", help="Dataset folder with dataset.json (aimd data phantom)."),
    claims: Path | None = typer.Option(None, "--claims", help="Claims YAML (see `aimd evaluate claims-template`)."),
    out: Path = typer.Option(Path("evaluation-report"), "--out", help="Report folder."),
    description: Path | None = typer.Option(None, "--description", help="The model's 000 §4 description JSON."),
    only: list[str] | None = typer.Option(None, "--only", help=f"Run only these: {', '.join(CHARACTERISTIC_NAMES)}."),
    skip: list[str] | None = typer.Option(None, "--skip", help="Leave these out (reported as not evaluated)."),
    split: list[str] | None = typer.Option(None, "--split", help="Held-out dataset split(s); default test."),
    seed: int = typer.Option(0, "--seed", help="Master seed."),
    threads: int = typer.Option(2, "--threads", min=1, help="CPU threads."),
    pdf: bool = typer.Option(True, "--pdf/--no-pdf", help="Also write report.pdf."),
    isolate_network: bool = typer.Option(
        True,
        "--isolate-network/--no-isolate-network",
        help="Run in a network namespace without interfaces (unshare --net), so no connection can leave the "
        "process, native runtimes included (000 §5.2.9 b); without it only Python's sockets are watched.",
    ),
    ray: bool = typer.Option(
        False, "--ray", help="Run each perturbation and attack budget as a Ray task on a local Ray instance."
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        metavar="ADDRESS",
        help="Run them on the Ray cluster at ADDRESS (implies --ray; needs --no-isolate-network).",
    ),
    json_out: bool = JsonOption,
) -> None:
    """Evaluate a model (default: the built-in reference model on phantoms) and write the report."""
    if ctx.invoked_subcommand is not None:
        return
    from aimd.evaluation.support.egress import ISOLATION_ENV, isolated_argv, isolated_env
    from aimd.reports import evaluate_model

    chosen = _split_names(only, "--only")
    skipped = _split_names(skip, "--skip")
    if (model is None) != (data is None):
        raise InvalidInputError(
            "pass both --model and --data, or neither (built-in reference model)",
            where="--model/--data",
            hint="e.g. --model runs/seg --data phantoms/",
        )
    if ray_address and isolate_network:
        raise InvalidInputError(
            "a Ray cluster is reached over the network, which --isolate-network shuts off",
            where="--ray-address",
            hint="add --no-isolate-network (egress is then watched in Python only), or use --ray on this machine",
        )
    if isolate_network and not os.environ.get(ISOLATION_ENV):
        argv = isolated_argv([sys.executable, "-m", "aimd.cli.main", *_rerun_argv(ctx.params)], loopback=ray)
        if argv is not None:
            done = subprocess.run(argv, env=isolated_env(), check=False)
            raise typer.Exit(done.returncode)
        console.print("[yellow]unshare --net is not available here: egress is watched in Python only[/yellow]")
    running = [k for k in evaluation.CLAUSE_KEYS if (not chosen or k in chosen) and k not in skipped]
    with progress_bar("evaluating", total=len(running), enabled=not json_out) as advance:

        def step(message: str) -> None:
            # a characteristic key starts that characteristic; any other message names a preparatory step
            if message in running:
                done = running.index(message)
                advance.describe(f"evaluating {message} ({done + 1}/{len(running)})")
                if done:
                    advance()
            else:
                advance.describe(message)

        result = evaluate_model(
            out,
            model=model,
            data=data,
            claims=claims,
            description=description,
            only=chosen,
            skip=skipped,
            splits=tuple(split or ("test",)),
            seed=seed,
            threads=threads,
            pdf=pdf,
            progress=step,
            ray=ray_address or ("local" if ray else None),
        )
    if json_out:
        print_json(result)
    else:
        print_verdicts(result["verdicts"], str(result["claims_origin"]))
        console.print(
            f"report: {result['report_html']}" + (f" · {result['report_pdf']}" if result["report_pdf"] else "")
        )
    failed = result["counts"].get("nonconform", 0)
    raise typer.Exit(EXIT_FINDINGS if failed else EXIT_OK)


@app.command("claims-template", epilog="Example: aimd evaluate claims-template --out claims.yaml")
def claims_template_cmd(
    out: Path | None = typer.Option(None, "--out", help="Write the template here instead of printing it."),
    json_out: bool = JsonOption,
) -> None:
    """Print a commented claims YAML with every section and field (000 §5.2)."""
    text = evaluation.claims_template()
    if out is not None:
        atomic_write_text(out, text)
    if json_out:
        print_json({"template": text, "written_to": str(out) if out else None})
    elif out is None:
        typer.echo(text, nl=False)
    else:
        console.print(f"claims template written to {out}")


@app.command(
    "mask-dataset",
    epilog="Example: aimd evaluate mask-dataset /usr/share/mricron/templates/ch2.nii.gz "
    "/usr/share/mricron/templates/ch2bet.nii.gz --out colin27 --label brain",
)
def mask_dataset_cmd(
    image: Path = typer.Argument(..., help="Image (NIfTI or DICOM series)."),
    mask: Path = typer.Argument(..., help="Reference mask on the same grid (voxels > --threshold are foreground)."),
    out: Path = typer.Option(..., "--out", help="Dataset folder to write (new)."),
    modality: str = typer.Option("MR", "--modality", help="Modality of IMAGE."),
    label: str = typer.Option("foreground", "--label", help="Name of the masked structure."),
    threshold: float = typer.Option(0.0, "--threshold", help="Mask voxels above this are foreground."),
    perturb: bool = typer.Option(True, "--perturb/--no-perturb", help="Add perturbed copies (robustness)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the perturbations."),
    force: bool = typer.Option(False, "--force", help="Replace OUT."),
    json_out: bool = JsonOption,
) -> None:
    """Write IMAGE + MASK (and perturbed copies) as a dataset for `aimd evaluate --model deepbet --data OUT`."""
    from aimd.evaluation.external_data import DEFAULT_PERTURBATIONS, write_mask_dataset

    path = write_mask_dataset(
        image,
        mask,
        out,
        modality=modality,
        label=label,
        mask_threshold=threshold,
        perturbations=DEFAULT_PERTURBATIONS if perturb else (),
        seed=seed,
        overwrite=force,
    )
    summary = {
        "dataset": str(path),
        "image": str(image),
        "mask": str(mask),
        "perturbations": [list(p) for p in DEFAULT_PERTURBATIONS] if perturb else [],
    }
    if json_out:
        print_json(summary)
    else:
        console.print(f"[green]wrote[/green] {path} with {len(summary['perturbations'])} perturbed copies")


__all__ = ["app", "print_verdicts", "verdict_table"]
