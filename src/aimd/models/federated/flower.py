"""Federated averaging across sites with Flower's simulation engine (003 §5.3).

:func:`federate` starts one Flower *SuperNode* per site folder on Ray (each a Ray worker process,
``workers`` CPUs in all) and runs the server in this process:

1. a ``query`` round: every client loads its own site and answers with its dataset.json SHA-256,
   case counts, label map and pixel spacing — no image, no label;
2. ``rounds`` rounds of FedAvg (``flwr.serverapp.strategy.FedAvg``): the server sends the global
   parameters, every client trains them ``local_steps`` mini-batches on its training cases (DP-SGD with
   ``dp_noise``/``dp_clip``) and returns parameters and its number of training slices; the server
   averages the parameters weighted by those counts; every client then scores the new global model
   on its own validation cases (mean Dice) and returns the score.

The whole run holds a :class:`~aimd.models.federated.guard.SiteFileGuard` on every site folder in
this (the server's) process: opening any file of a site here fails the run, which is what "no
image leaves its site" means in this simulation. ``server_evaluate`` is the server's own per-round
evaluation (for data the server holds); it runs under the same guard.

The result is a normal run folder (run.json, best.pt, record.json) that ``aimd evaluate`` and
``aimd model predict`` accept; its record lists the rounds, every round's averaged loss and score,
and each site's dataset hash and case counts — not the data.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aimd import __version__
from aimd.core.atomic import atomic_dir, atomic_write_json
from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.core.ids import random_uid
from aimd.core.logging import get_logger
from aimd.models.federated.guard import SiteFileGuard
from aimd.models.record import environment
from aimd.models.runs import RECORD_FILE, RUN_FILE, RUN_FORMAT, WEIGHTS_FILE
from aimd.models.targets import get_target
from aimd.models.zoo import build_network, get_entry

_log = get_logger("aimd.models.federated")
ServerEvaluate = Callable[[int, dict[str, torch.Tensor]], dict[str, float]]


def _flwr() -> Any:
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")  # Flower reports usage to its servers unless told not to
    try:
        import flwr  # noqa: F401
        from flwr.simulation import run_simulation
    except ImportError as err:
        raise InvalidInputError(
            "Flower is not installed", where="aimd model federate", hint="pip install 'aimd[federated]'"
        ) from err
    return run_simulation


def check_sites(sites: list[Path]) -> list[Path]:
    """The site folders, checked without opening anything inside them (the server never reads a site)."""
    if len(sites) < 2:
        raise InvalidInputError(
            f"federated averaging needs at least 2 sites, got {len(sites)}",
            where="--sites",
            hint="pass one dataset folder per site",
        )
    resolved = [Path(s).resolve() for s in sites]
    if len(set(resolved)) != len(resolved):
        raise InvalidInputError("a site folder is given twice", where="--sites", hint="pass each site once")
    for site in sites:
        if not Path(site).is_dir():
            raise InvalidInputError("site folder does not exist", where=str(site), hint="pass a dataset folder")
        if not (Path(site) / "dataset.json").is_file():
            raise InvalidInputError(
                "site folder holds no dataset.json",
                where=str(site),
                hint="each site is a dataset folder written by aimd data phantom",
            )
    return [Path(s) for s in sites]


def _client_app(sites: list[str], settings: dict[str, Any]) -> Any:
    """The ClientApp every site runs; it reads its site folder and nothing else."""
    from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp

    app = ClientApp()
    cache: dict[str, Any] = {}

    def _site(context: Context, split: str) -> tuple[Any, dict[str, Any], str]:
        from aimd.models.federated.site import load_site

        torch.set_num_threads(int(settings["threads"]))
        site = sites[int(context.node_config["partition-id"])]
        key = f"{site}:{split}"
        if key not in cache:
            cache[key] = load_site(Path(site), settings["model"], settings["target"], split)
        data, described = cache[key]
        return data, described, site

    def _network(msg: Message) -> torch.nn.Module:
        network = build_network(settings["model"], out_channels=get_target(settings["target"]).channels)
        network.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        return network

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        _, described, site = _site(context, "train")
        _, validation, _ = _site(context, "val")
        described = {**described, "statistics": {**described["statistics"], **validation["statistics"]}}
        record = ConfigRecord({"site": site, "described": json.dumps(described)})
        return Message(RecordDict({"site": record}), reply_to=msg)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        from aimd.models.federated.site import LocalPlan, dp_local_train, local_train

        data, _, _ = _site(context, "train")
        network = _network(msg)
        server_round = int(msg.content["config"]["server-round"])
        plan = LocalPlan(
            target=settings["target"],
            patch=tuple(get_entry(settings["model"]).input_spec.patch_size),
            steps=int(settings["local_steps"]),
            lr=float(settings["lr"]),
            batch_size=int(settings["batch_size"]),
            seed=int(settings["seed"]) * 1000 + server_round * 10 + int(context.node_config["partition-id"]),
        )
        if settings["dp_noise"] is not None:
            network, metrics = dp_local_train(
                network,
                data,
                plan,
                noise=float(settings["dp_noise"]),
                clip=float(settings["dp_clip"]),
                rounds_so_far=server_round,
            )
        else:
            metrics = local_train(network, data, plan)
        content = RecordDict(
            {
                "arrays": ArrayRecord(network.state_dict()),
                "metrics": MetricRecord({**metrics, "num-examples": len(data)}),
            }
        )
        return Message(content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        from aimd.models.federated.site import local_score

        split = str(msg.content["config"].get("split", "val"))
        data, described, _ = _site(context, split)
        spec = get_target(settings["target"]).output_spec(described["label_map"])
        score = local_score(_network(msg), data, spec)
        metrics = MetricRecord({f"{split}-dice": score, "num-examples": len(data.volumes) or len(data)})
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    return app


def _query_sites(grid: Any, expected: int, timeout: float) -> dict[int, dict[str, Any]]:
    from flwr.app import ConfigRecord, Message, RecordDict

    deadline = time.monotonic() + timeout
    nodes = list(grid.get_node_ids())
    while len(nodes) < expected:  # the SuperNodes register while the server starts
        if time.monotonic() > deadline:
            raise InvalidInputError(f"only {len(nodes)} of {expected} sites came up", where="--sites")
        time.sleep(0.2)
        nodes = list(grid.get_node_ids())
    messages = [
        Message(RecordDict({"ask": ConfigRecord({"what": "describe"})}), dst_node_id=n, message_type="query")
        for n in nodes
    ]
    described: dict[int, dict[str, Any]] = {}
    replies = list(grid.send_and_receive(messages, timeout=timeout))
    if len(replies) < expected:
        raise InvalidInputError(f"only {len(replies)} of {expected} sites answered", where="--sites")
    for reply in replies:
        if reply.has_error():  # the client's exception, e.g. its dataset.json failed its checks
            raise InvalidInputError(
                f"a site could not load its data: {reply.error.reason}",
                where="--sites",
                hint="check every site folder with aimd data phantom --verify",
            )
        record = reply.content["site"]
        described[reply.metadata.src_node_id] = {"folder": record["site"], **json.loads(str(record["described"]))}
    return described


def _train_metrics(records: list[Any], weighting_key: str) -> Any:
    """Training metrics averaged over sites weighted by their slices; ε is the largest site's (the guarantee)."""
    from flwr.serverapp.strategy.strategy_utils import aggregate_metricrecords

    merged = aggregate_metricrecords(records, weighting_key)
    epsilons = [float(m["dp-epsilon"]) for r in records for m in r.metric_records.values() if "dp-epsilon" in m]
    if epsilons:
        merged["dp-epsilon"] = max(epsilons)
    return merged


def _final_test(grid: Any, described: dict[int, dict[str, Any]], arrays: Any, timeout: float) -> dict[str, float]:
    """Each site scores the final global model on its own test cases; the server gets the scores."""
    from flwr.app import ConfigRecord, Message, RecordDict

    messages = [
        Message(
            RecordDict({"arrays": arrays, "config": ConfigRecord({"split": "test"})}),
            dst_node_id=node,
            message_type="evaluate",
        )
        for node in described
    ]
    scores = {}
    for reply in grid.send_and_receive(messages, timeout=timeout):
        if reply.has_error():
            raise InvalidInputError(f"a site could not score its test cases: {reply.error.reason}", where="--sites")
        scores[described[reply.metadata.src_node_id]["folder"]] = float(reply.content["metrics"]["test-dice"])
    return scores


def _server_app(settings: dict[str, Any], out: dict[str, Any], server_evaluate: ServerEvaluate | None) -> Any:
    from flwr.app import ArrayRecord, Context, MetricRecord
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg

    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        described = _query_sites(grid, int(settings["sites"]), timeout=float(settings["timeout"]))
        label_maps = {json.dumps(d["label_map"], sort_keys=True) for d in described.values()}
        if len(label_maps) != 1:
            raise InvalidInputError(
                f"the sites label their images differently: {sorted(label_maps)}",
                where="--sites",
                hint="federate sites whose dataset.json label_map agree",
            )
        settings["label_map"] = next(iter(described.values()))["label_map"]
        torch.manual_seed(int(settings["seed"]))
        network = build_network(settings["model"], out_channels=get_target(settings["target"]).channels)
        central: list[dict[str, Any]] = []

        def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            if server_evaluate is None:
                return None
            scores = server_evaluate(server_round, arrays.to_torch_state_dict())
            central.append({"round": server_round, **scores})
            return MetricRecord(scores)

        strategy = FedAvg(
            fraction_train=1.0,
            fraction_evaluate=1.0,
            min_available_nodes=len(described),
            train_metrics_aggr_fn=_train_metrics,
        )
        result = strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(network.state_dict()),
            num_rounds=int(settings["rounds"]),
            timeout=float(settings["timeout"]),
            evaluate_fn=evaluate_fn if server_evaluate is not None else None,
        )
        out["test"] = _final_test(grid, described, result.arrays, float(settings["timeout"]))
        out["state"] = result.arrays.to_torch_state_dict()
        out["sites"] = [described[n] for n in sorted(described, key=lambda n: described[n]["folder"])]
        out["train"] = {int(r): dict(m) for r, m in result.train_metrics_clientapp.items()}
        out["evaluate"] = {int(r): dict(m) for r, m in result.evaluate_metrics_clientapp.items()}
        out["central"] = central

    return app


def federate(
    sites: list[Path],
    out: Path,
    *,
    model: str = "unet-small",
    target: str = "organs",
    rounds: int = 3,
    local_steps: int = 8,
    lr: float = 3e-3,
    batch_size: int = 8,
    seed: int = 0,
    workers: int | None = None,
    threads: int = 1,
    dp_noise: float | None = None,
    dp_clip: float = 1.0,
    timeout: float = 3600.0,
    server_evaluate: ServerEvaluate | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Train ``model`` by FedAvg across ``sites`` for ``rounds`` rounds and write the run folder ``out``.

    Returns a summary (rounds, per-round averaged losses and scores, the sites' hashes, ``guard``:
    the site files the server process tried to open — always empty in a finished run).
    """
    run_simulation = _flwr()
    sites = check_sites(sites)
    entry = get_entry(model)
    tgt = get_target(target)
    if tgt.task != "seg":
        raise InvalidInputError(
            f"federated averaging is implemented for segmentation targets, not {target!r}",
            where="--target",
            hint="use organs, body, lungs or another segmentation target",
        )
    if rounds < 1 or local_steps < 1:
        raise InvalidInputError("rounds and local steps must be at least 1", where="--rounds/--local-steps")
    if dp_noise is not None and (dp_noise < 0 or dp_clip <= 0):
        raise InvalidInputError("DP noise must be >= 0 and the clipping bound > 0", where="--dp-noise/--dp-clip")
    from flwr.common import logger as flwr_logger

    settings: dict[str, Any] = {
        "model": model,
        "target": target,
        "rounds": rounds,
        "local_steps": local_steps,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
        "threads": threads,
        "dp_noise": dp_noise,
        "dp_clip": dp_clip,
        "timeout": timeout,
        "sites": len(sites),
    }
    result: dict[str, Any] = {}
    workers = workers or min(len(sites), os.cpu_count() or 1)
    backend = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"num_cpus": workers, "num_gpus": 0, "include_dashboard": False},
    }
    started = time.perf_counter()
    flwr_logger.FLOWER_LOGGER.setLevel(int(os.environ.get("AIMD_FLWR_LOG", logging.WARNING)))
    client = _client_app([str(s.resolve()) for s in sites], settings)
    with SiteFileGuard(sites) as guard, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run_simulation(
            server_app=_server_app(settings, result, server_evaluate),
            client_app=client,
            num_supernodes=len(sites),
            backend_config=backend,
        )
    if guard.attempts:  # a refused open inside Flower's server thread may have been caught there
        from aimd.models.federated.guard import SiteDataAccessError

        raise SiteDataAccessError(
            f"the server process tried to open {len(guard.attempts)} site file(s)",
            where=str(guard.attempts[0]),
            hint="site data is read by that site's client only",
        )
    if "state" not in result:
        raise InvalidInputError(
            "the federation ended without a global model (see the Flower log above)",
            where="aimd model federate",
            hint="check that every site folder loads with aimd model train",
        )
    return _write_run(out, settings, result, entry, tgt, time.perf_counter() - started, workers, force)


def _rounds(result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in sorted(result["train"]):
        row: dict[str, Any] = {"round": r, **{k: float(v) for k, v in result["train"][r].items()}}
        row.update({k: float(v) for k, v in result["evaluate"].get(r, {}).items() if k != "num-examples"})
        rows.append(row)
    return rows


def _write_run(
    out: Path,
    settings: dict[str, Any],
    result: dict[str, Any],
    entry: Any,
    tgt: Any,
    seconds: float,
    workers: int,
    force: bool,
) -> dict[str, Any]:
    spacing = np.median(np.array([s["spacing_yx"] for s in result["sites"]]), axis=0)
    input_spec = entry.input_spec.model_copy(
        update={"spacing_mm": (round(float(spacing[0]), 4), round(float(spacing[1]), 4))}
    )
    output_spec = tgt.output_spec(settings["label_map"])
    network = build_network(settings["model"], out_channels=tgt.channels)
    network.load_state_dict(result["state"])
    rounds = _rounds(result)
    run_id = random_uid()
    sites = [
        {
            "folder": s["folder"],
            "dataset_sha256": s["dataset_sha256"],
            "site_ids": s["sites"],
            "cases": s["cases"],
            "spacing_yx": s["spacing_yx"],
            "statistics": s["statistics"],
        }
        for s in result["sites"]
    ]
    from aimd.models.federated.site import merge_statistics

    statistics = {
        split: merge_statistics([s["statistics"][split] for s in result["sites"]]) for split in ("train", "val")
    }
    federation = {
        "method": "FedAvg (parameters averaged, weighted by each site's training slices)",
        "library": "flwr",
        "flwr_version": _flwr_version(),
        "engine": "Flower simulation on Ray, one SuperNode per site",
        "workers": workers,
        "rounds": settings["rounds"],
        "local_steps": settings["local_steps"],
        "lr": settings["lr"],
        "batch_size": settings["batch_size"],
        "seed": settings["seed"],
        "dp": None
        if settings["dp_noise"] is None
        else {
            "noise_multiplier": settings["dp_noise"],
            "max_grad_norm": settings["dp_clip"],
            "accountant": "opacus RDP",
        },
        "sites": sites,
        "server_opened_site_files": 0,
        "history": rounds,
        "central_evaluation": result["central"],
    }
    last = rounds[-1] if rounds else {}
    with atomic_dir(out, overwrite=force) as tmp:
        torch.save(network.state_dict(), tmp / WEIGHTS_FILE)
        record = {
            "run_id": run_id,
            "aimd_version": __version__,
            "epochs_run": settings["rounds"],
            "benchmark": {
                "val": {"metric": "dice", "dice_mean": last.get("val-dice"), "unit": "weighted mean over sites"},
                "test": {
                    "metric": "dice",
                    "dice_mean": float(np.mean(list(result["test"].values()))) if result["test"] else None,
                    "per_site": result["test"],
                    "unit": "mean over sites, each scored by its own client",
                },
            },
            "learning": {
                "method": "federated averaging (FedAvg) from random initialisation"
                + (" with DP-SGD clients" if settings["dp_noise"] is not None else ""),
                "federation": federation,
                "initialisation": {"random": f"PyTorch default initialisation, seed {settings['seed']}"},
                "optimizer": {
                    "name": "sgd (DP-SGD, opacus)" if settings["dp_noise"] is not None else "adamw",
                    "lr": settings["lr"],
                    "where": "each site's client, from the global weights every round",
                },
                "schedule": {"name": "constant"},
                "loss": {"kind": "pixel cross-entropy" if settings["dp_noise"] is not None else "dice_focal"},
                "batch_size": settings["batch_size"],
                "early_stopping": None,
                "augmentation": [],
                "seed": settings["seed"],
            },
            "data": {
                "format": result["sites"][0].get("format"),
                "generator": result["sites"][0].get("generator"),
                "sites": [p for s in result["sites"] for p in s.get("site_profiles", [])],
                "site_datasets": sites,
                "statistics": statistics,
                "split": None,
                "target": tgt.name,
                "task_domain": tgt.domain,
                "modality": entry.input_spec.modality,
                "label_map": settings["label_map"],
                "note": "the server never read the sites' data; hashes and counts are what each site reported",
            },
            "environment": environment(),
            "seconds": round(seconds, 2),
        }
        atomic_write_json(tmp / RECORD_FILE, record)
        info = {
            "format": RUN_FORMAT,
            "version": "1.0",
            "run_id": run_id,
            "aimd_version": __version__,
            "model": settings["model"],
            "factory": entry.factory,
            "model_kwargs": {**entry.kwargs, entry.in_kwarg: entry.input_spec.channels, entry.out_kwarg: tgt.channels},
            "input_spec": input_spec.model_dump(mode="json"),
            "output_spec": output_spec.model_dump(mode="json"),
            "weights": WEIGHTS_FILE,
            "weights_sha256": sha256_file(tmp / WEIGHTS_FILE),
            "parameters": sum(p.numel() for p in network.parameters()),
            "parent": None,
            "federation": {k: v for k, v in federation.items() if k not in ("history", "central_evaluation")},
            "benchmark": {
                "val": last.get("val-dice"),
                "test": float(np.mean(list(result["test"].values()))) if result["test"] else None,
            },
        }
        atomic_write_json(tmp / RUN_FILE, info)
    summary = {
        "run": str(out),
        "run_id": run_id,
        "rounds": rounds,
        "sites": sites,
        "test_dice": result["test"],
        "server_opened_site_files": 0,
        "seconds": round(seconds, 2),
    }
    _log.info("federate.done", run=str(out), rounds=len(rounds), seconds=summary["seconds"])
    return summary


def _flwr_version() -> str:
    from importlib.metadata import version

    return version("flwr")


__all__ = ["check_sites", "federate"]
