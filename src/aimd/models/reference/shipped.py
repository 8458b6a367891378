"""Shipped reference weights: train a recipe, record it, load it, verify it.

Each reference device ships as two files in ``aimd/models/reference/weights/``:

* ``<name>.pt`` — the state dict (a few hundred kB);
* ``<name>.json`` — its run record: recipe settings and seed, the training and held-out data (generator
  settings and SHA-256 of the arrays), training time and machine, code version, the operating point
  (``device-lesions``: chosen on a validation set of the training sites, with its rule and sweep), the
  held-out metrics at that point with 95 % CIs, and the SHA-256 of ``<name>.pt``.

:func:`load_reference` checks the SHA-256 before loading, so a changed weights file is refused.
:func:`verify_reference` regenerates a held-out phantom set with a fresh seed and measures the
metrics again.

Example
-------
>>> sorted(RECIPES)
['device-lesions', 'device-nodules']
>>> shipped_status("device-lesions")["name"]
'device-lesions'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aimd.core.atomic import atomic_write_bytes, atomic_write_json
from aimd.core.errors import IntegrityError, InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.models.adapters.torch_module import load_state_dict_file, load_weights
from aimd.models.reference.common import code_version, machine
from aimd.models.reference.phantomdata import HELD_OUT_SITES, TRAIN_SITES, build_cases, data_settings, data_sha256

WEIGHTS_DIR = Path(__file__).parent / "weights"
EVAL_CASES = 60
EVAL_SEED = 1900
VERIFY_SEED = 1901


@dataclass(frozen=True)
class RecipeInfo:
    """One reference device: its task, what it evaluates and the targets of issue 003 §4."""

    name: str
    task: str
    module: str
    targets: dict[str, float]
    operating_point: str | None = None


RECIPES: dict[str, RecipeInfo] = {
    "device-lesions": RecipeInfo(
        "device-lesions",
        "CT lesion segmentation (lung nodules incl. ground-glass, liver tumours)",
        "aimd.models.reference.lesions",
        {"dice": 0.70, "sensitivity_5mm": 0.90, "fp_per_case_max": 1.0},
        "aimd.models.reference.operating_point",
    ),
    "device-nodules": RecipeInfo(
        "device-nodules",
        "radiograph (DX) lung-nodule detection: boxes with scores",
        "aimd.models.reference.nodules",
        {"froc_sensitivity_at_1fp": 0.85, "image_auc": 0.90},
    ),
}


def get_recipe(name: str) -> RecipeInfo:
    """The :class:`RecipeInfo` called ``name``; unknown names raise :class:`InvalidInputError`."""
    if name not in RECIPES:
        raise InvalidInputError(
            f"unknown reference model {name!r}", where="--recipe", hint=f"use one of {sorted(RECIPES)}"
        )
    return RECIPES[name]


def weights_path(name: str, folder: Path | None = None) -> Path:
    """``<folder>/<name>.pt`` (default: the shipped weights folder)."""
    return (folder or WEIGHTS_DIR) / f"{name}.pt"


def record_path(name: str, folder: Path | None = None) -> Path:
    """``<folder>/<name>.json``."""
    return (folder or WEIGHTS_DIR) / f"{name}.json"


def read_record(name: str, folder: Path | None = None) -> dict[str, Any]:
    """The run record of ``name``; a missing or unreadable record names the file and the fix."""
    get_recipe(name)
    path = record_path(name, folder)
    if not path.is_file():
        raise InvalidInputError(
            "no run record for this reference model",
            where=str(path),
            hint=f"train it: aimd model train --recipe {name} --out {path.parent}",
        )
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidInputError(
            f"run record is not valid JSON ({err})", where=str(path), hint=f"retrain: aimd model train --recipe {name}"
        ) from err


def shipped_status(name: str, folder: Path | None = None) -> dict[str, Any]:
    """Whether trained weights are present and their SHA-256 matches the record (no loading)."""
    get_recipe(name)
    w, r = weights_path(name, folder), record_path(name, folder)
    status: dict[str, Any] = {"name": name, "weights": str(w), "trained": False, "sha256_ok": None}
    if w.is_file() and r.is_file():
        record = read_record(name, folder)
        status.update(
            trained=True,
            sha256_ok=sha256_file(w) == record.get("weights_sha256"),
            sha256=record.get("weights_sha256"),
            metrics=record.get("metrics_summary"),
            trained_at=record.get("trained_at"),
        )
    return status


def _module(name: str) -> Any:
    import importlib

    return importlib.import_module(get_recipe(name).module)


def load_reference(name: str, *, folder: str | Path | None = None, threads: int | None = None) -> Any:
    """The shipped ``name`` model as a Predictor (``LesionSegmenter`` or ``NoduleDetector``).

    The weights' SHA-256 must equal the one in the run record; ``folder`` loads a retrained copy.

    Example
    -------
    >>> from aimd.models import load_reference
    >>> seg = load_reference("device-lesions")  # doctest: +SKIP
    >>> seg.predict_volume(ct_volume).record["lesions"]  # doctest: +SKIP
    """
    base = Path(folder) if folder is not None else None
    record = read_record(name, base)
    w = weights_path(name, base)
    if not w.is_file():
        raise InvalidInputError(
            "weights file is missing", where=str(w), hint=f"reinstall aimd or retrain: aimd model train --recipe {name}"
        )
    digest = sha256_file(w)
    if digest != record.get("weights_sha256"):
        raise IntegrityError(
            f"SHA-256 {digest[:12]}… differs from the run record's {str(record.get('weights_sha256'))[:12]}…",
            where=str(w),
            hint="the weights changed after training: reinstall aimd or retrain the recipe",
        )
    mod = _module(name)
    net = mod.build_network()
    load_weights(net, load_state_dict_file(w), where=str(w))
    if threads is not None:
        torch.set_num_threads(threads)
    meta = {"source": str(w), "weights_sha256": digest, "run_record": str(record_path(name, base)), "recipe": name}
    point = record.get("operating_point")
    if isinstance(point, dict):
        meta["operating_point"] = operating_point_of(point)
    return mod.PREDICTOR(net.eval(), metadata=meta)


def operating_point_of(point: dict[str, Any]) -> dict[str, Any]:
    """The settings of a recorded operating point (without its validation sweep).

    Example
    -------
    >>> operating_point_of({"threshold": 0.3, "min_lesion_mm3": 8.0, "validation": {"sweep": []}})
    {'threshold': 0.3, 'min_lesion_mm3': 8.0}
    """
    return {k: v for k, v in point.items() if k not in ("validation", "replaced", "code")}


def _choose_point(
    name: str,
    model: Any,
    size: int,
    progress: Callable[[str], object] | None,
    *,
    strict: bool = True,
    count: int | None = None,
) -> dict[str, Any] | None:
    import importlib

    where = get_recipe(name).operating_point
    if where is None:
        return None
    mod = importlib.import_module(where)
    point = mod.choose_operating_point(
        model,
        size=size,
        count=count or mod.VALIDATION_CASES,
        strict=strict,
        progress=(lambda i: progress(f"validation case {i}")) if progress else None,
    )
    model.set_operating_point(operating_point_of(point))
    return dict(point)


def _recipe_obj(name: str, overrides: dict[str, Any] | None) -> Any:
    mod = _module(name)
    try:
        return mod.RECIPE(**(overrides or {}))
    except TypeError as err:
        raise InvalidInputError(
            f"unknown recipe setting: {err}",
            where="--set",
            hint=f"settings of {name}: {sorted(mod.RECIPE().to_dict())}",
        ) from err


def evaluate_reference(
    name: str,
    model: Any,
    *,
    seed: int = EVAL_SEED,
    cases: int = EVAL_CASES,
    size: int = 64,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    """Metrics of ``model`` on ``cases`` fresh phantom cases from the held-out sites."""
    held = build_cases(seed=seed, count=cases, size=size, sites=HELD_OUT_SITES)
    mod = _module(name)
    result = mod.EVALUATE(model, held, progress=progress)
    result["data"] = {
        **data_settings(seed=seed, count=cases, size=size, sites=HELD_OUT_SITES),
        "sha256": data_sha256(held),
    }
    return dict(result)


def train_recipe(
    name: str,
    out: str | Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    eval_cases: int = EVAL_CASES,
    validation_cases: int | None = None,
    progress: Callable[[str], object] | None = None,
) -> dict[str, Any]:
    """Train recipe ``name`` from scratch, evaluate on held-out sites, write ``<name>.pt`` + ``<name>.json``.

    ``device-lesions`` first gets its operating point on ``validation_cases`` cases of the training sites
    (default 60); when no point meets the limits the record says so and keeps the fallback point.
    ``out`` defaults to the shipped weights folder. Returns the run record.
    """
    import datetime

    recipe = _recipe_obj(name, overrides)
    mod = _module(name)
    folder = Path(out) if out is not None else WEIGHTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    started = machine()
    cases = build_cases(seed=recipe.data_seed, count=recipe.train_cases, size=recipe.size, sites=TRAIN_SITES)
    net: nn.Module
    net, log = mod.TRAIN(
        recipe, cases, progress=(lambda s, v: progress(f"step {s} loss {v:.4f}")) if progress else None
    )
    model = mod.PREDICTOR(net)
    point = _choose_point(name, model, recipe.size, progress, strict=False, count=validation_cases)
    metrics = evaluate_reference(
        name,
        model,
        cases=eval_cases,
        size=recipe.size,
        progress=(lambda i: progress(f"evaluated {i} cases")) if progress else None,
    )
    import io

    buffer = io.BytesIO()
    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, buffer)
    w = weights_path(name, folder)
    atomic_write_bytes(w, buffer.getvalue())
    record = {
        "name": name,
        "task": get_recipe(name).task,
        "format": "aimd-reference-1",
        "trained_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "recipe": recipe.to_dict(),
        "seed": recipe.seed,
        "network": {
            "factory": mod.FACTORY,
            "kwargs": mod.NETWORK_KWARGS,
            "parameters": sum(p.numel() for p in net.parameters()),
        },
        "input_spec": mod.INPUT_SPEC.model_dump(mode="json"),
        "output_spec": mod.OUTPUT_SPEC.model_dump(mode="json"),
        "training_data": {
            **data_settings(seed=recipe.data_seed, count=recipe.train_cases, size=recipe.size, sites=TRAIN_SITES),
            "sha256": data_sha256(cases),
        },
        "training": log,
        "machine": started,
        "code": code_version(),
        **({"operating_point": point} if point is not None else {}),
        "held_out": metrics,
        "targets": get_recipe(name).targets,
        "metrics_summary": mod.SUMMARY(metrics),
        "weights_file": w.name,
        "weights_sha256": sha256_file(w),
    }
    atomic_write_json(record_path(name, folder), record)
    return record


def choose_reference_point(
    name: str, *, folder: str | Path | None = None, progress: Callable[[str], object] | None = None
) -> dict[str, Any]:
    """(Re)choose the operating point of trained weights on the validation set; no retraining.

    The weights stay as they are (their SHA-256 is checked on load and kept in the record); the run
    record gets the chosen ``operating_point`` and the held-out metrics re-measured at it on the same
    held-out set as before (``held_out.data``: seed, cases, size). The metrics the record held before
    are kept under ``operating_point.replaced``. Returns the new record.
    """
    import datetime

    base = Path(folder) if folder is not None else None
    record = read_record(name, base)
    if get_recipe(name).operating_point is None:
        raise InvalidInputError(
            f"{name} has no operating point selection", where="--recipe", hint="use it with device-lesions"
        )
    model = load_reference(name, folder=base)
    size = int(record["recipe"]["size"])
    point = _choose_point(name, model, size, progress)
    assert point is not None
    point["chosen_at"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    point["code"] = code_version()
    held = record.get("held_out", {}).get("data", {})
    point["replaced"] = {
        "operating_point": record.get("held_out", {}).get("operating_point"),
        "metrics_summary": record.get("metrics_summary"),
    }
    metrics = evaluate_reference(
        name,
        model,
        seed=int(held.get("seed", EVAL_SEED)),
        cases=int(held.get("cases", EVAL_CASES)),
        size=size,
        progress=(lambda i: progress(f"evaluated {i} cases")) if progress else None,
    )
    record.update(operating_point=point, held_out=metrics, metrics_summary=_module(name).SUMMARY(metrics))
    if sha256_file(weights_path(name, base)) != record["weights_sha256"]:  # load_reference checked it already
        raise IntegrityError(
            "weights changed while the operating point was chosen", where=str(weights_path(name, base))
        )
    atomic_write_json(record_path(name, base), record)
    return record


def verify_reference(
    name: str,
    *,
    folder: str | Path | None = None,
    seed: int = VERIFY_SEED,
    cases: int = EVAL_CASES,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    """Re-measure the shipped metrics on a freshly generated held-out set (seed ``seed``).

    Returns the new summary beside the recorded one. Two independent samples of held-out cases agree
    when their 95 % CIs overlap; a metric passes then. (The fresh estimate alone against the recorded
    CI would fail a rate whose recorded CI is degenerate, e.g. 0 false positives in every resample.)
    """
    base = Path(folder) if folder is not None else None
    record = read_record(name, base)
    model = load_reference(name, folder=base)
    fresh = evaluate_reference(
        name, model, seed=seed, cases=cases, size=int(record["recipe"]["size"]), progress=progress
    )
    mod = _module(name)
    now = mod.SUMMARY(fresh)
    shipped = record["metrics_summary"]
    checks = {}
    for key, value in now.items():
        old = shipped.get(key)
        if (
            not isinstance(value, dict)
            or not isinstance(old, dict)
            or value.get("estimate") is None
            or old.get("ci_low") is None
            or value.get("ci_low") is None
        ):
            checks[key] = {"verdict": "not evaluated", "why": "no estimate or no CI (recorded or fresh)"}
            continue
        lo, hi = old["ci_low"], old["ci_high"]
        now_lo, now_hi = value["ci_low"], value["ci_high"]
        overlap = max(lo, now_lo) <= min(hi, now_hi)
        checks[key] = {
            "shipped": old["estimate"],
            "shipped_ci": [lo, hi],
            "now": value["estimate"],
            "now_ci": [now_lo, now_hi],
            "verdict": "pass" if overlap else "fail",
        }
    return {
        "name": name,
        "seed": seed,
        "cases": cases,
        "data": fresh["data"],
        "metrics": now,
        "checks": checks,
        "passed": all(c["verdict"] == "pass" for c in checks.values()),
    }


__all__ = [
    "RECIPES",
    "WEIGHTS_DIR",
    "RecipeInfo",
    "choose_reference_point",
    "evaluate_reference",
    "get_recipe",
    "load_reference",
    "operating_point_of",
    "read_record",
    "record_path",
    "shipped_status",
    "train_recipe",
    "verify_reference",
    "weights_path",
]
