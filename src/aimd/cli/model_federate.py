"""``aimd model federate``: federated averaging across site folders with Flower (003 §5.3)."""

from __future__ import annotations

from pathlib import Path

import typer

from aimd.cli.common import JsonOption, console, print_json, status

_EPILOG = (
    "Example: aimd model federate --sites site_a/ site_b/ site_c/ --rounds 5 --out fed1\n\n"
    "With DP-SGD clients: aimd model federate --sites site_a/ site_b/ --rounds 5 --out fed_dp "
    "--dp-noise 1.0 --dp-clip 1.0"
)


def federate_cmd(
    sites: list[Path] = typer.Option(
        ..., "--sites", help="One dataset folder per site (dataset.json); each is read by its own client only."
    ),
    out: Path = typer.Option(..., "--out", help="Run folder to write (accepted by aimd evaluate / model predict)."),
    rounds: int = typer.Option(3, "--rounds", help="Federated rounds."),
    model: str = typer.Option("unet-small", "--model", help="Zoo model every site trains."),
    target: str = typer.Option("organs", "--target", help="Segmentation target."),
    local_steps: int = typer.Option(8, "--local-steps", help="Mini-batches each site trains per round."),
    lr: float = typer.Option(3e-3, "--lr", help="Local learning rate."),
    batch_size: int = typer.Option(8, "--batch-size", help="Local mini-batch size."),
    dp_noise: float | None = typer.Option(
        None, "--dp-noise", help="DP-SGD clients (opacus): Gaussian noise multiplier; off when not given."
    ),
    dp_clip: float = typer.Option(1.0, "--dp-clip", help="DP-SGD per-sample gradient clipping bound."),
    workers: int | None = typer.Option(None, "--workers", help="Ray CPUs for the clients (default: sites or cores)."),
    threads: int = typer.Option(1, "--threads", help="Torch threads per client."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initial weights and the local batches."),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty OUT."),
    sites_args: list[Path] = typer.Argument(None, help="More site folders (after --sites A B ...).", hidden=True),
    json_out: bool = JsonOption,
) -> None:
    """Train a model by federated averaging across sites (Flower simulation on Ray); no image leaves its site."""
    from aimd.models.federated.flower import federate

    with status(f"federating {len(sites) + len(sites_args or [])} sites for {rounds} rounds"):
        summary = federate(
            [*sites, *(sites_args or [])],
            out,
            model=model,
            target=target,
            rounds=rounds,
            local_steps=local_steps,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            workers=workers,
            threads=threads,
            dp_noise=dp_noise,
            dp_clip=dp_clip,
            force=force,
        )
    if json_out:
        print_json(summary)
        return
    last = summary["rounds"][-1] if summary["rounds"] else {}
    console.print(
        f"[green]federated[/green] {len(summary['sites'])} sites, {len(summary['rounds'])} rounds → {out}: "
        f"validation Dice {last.get('val-dice', float('nan')):.3f} (mean over sites); "
        "the server opened no site file",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``federate`` to the ``aimd model`` group."""
    app.command("federate", epilog=_EPILOG)(federate_cmd)


__all__ = ["federate_cmd", "register"]
