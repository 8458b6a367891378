"""Open the model and the data an evaluation runs on (000 §6.1: the provider supplies both).

:func:`build_context` takes any model the Predictor adapters accept (training-run folder,
TorchScript, ONNX, MONAI bundle) and a phantom-format dataset (``dataset.json``), loads the
held-out splits for the model's target, and records hashes of both. :func:`reference_model`
returns aimd's built-in reference model and its phantom data, generating and training them
once into a cache folder named by :func:`reference_key` (a digest of :data:`REFERENCE`, the seed,
the thread count, the aimd version and the source of the code that trains it), so changed settings
or code never reuse a stale model — a stale cache made two runs of one version disagree.

Example
-------
>>> DEFAULT_SPLITS
('test',)
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from aimd.core.errors import InvalidInputError, SchemaError
from aimd.core.hashing import sha256_bytes, sha256_file
from aimd.evaluation.context import EvalData, EvaluationContext

DEFAULT_SPLITS: tuple[str, ...] = ("test",)
# body-outline pre-training (000 B.1.5.3); every field, the seed and the aimd version name the cache folder
REFERENCE: dict[str, Any] = {
    "model": "unet-small",
    "target": "body",
    "cases": 30,
    "size": 64,
    "epochs": 4,
    "steps": 4,
    "lr": 3e-3,
}


def default_cache_dir() -> Path:
    """``$AIMD_CACHE_DIR`` or ``~/.cache/aimd``."""
    return Path(os.environ.get("AIMD_CACHE_DIR") or Path.home() / ".cache" / "aimd")


# the code that makes the reference data and model: any change to it must not reuse a cached model
_REFERENCE_SOURCES = (
    "aimd.phantoms",
    "aimd.models.training",
    "aimd.models.networks",
    "aimd.models.data",
    "aimd.models.preprocess",
    "aimd.models.augment",
    "aimd.models.losses",
)


@functools.lru_cache(maxsize=1)
def reference_source_digest() -> str:
    """SHA-256 over the source files of :data:`_REFERENCE_SOURCES` (packages: every ``.py`` below them)."""
    digest = hashlib.sha256()
    for name in _REFERENCE_SOURCES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for file in files:
            digest.update(f"{name}:{file.name}\n".encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def reference_key(seed: int = 0, threads: int = 2) -> str:
    """Cache key of the reference model: a digest of :data:`REFERENCE`, ``seed``, the thread count (float
    reductions follow it), the aimd version and the source of the code that makes the model.

    Example
    -------
    >>> reference_key(0) == reference_key(0) != reference_key(1) != reference_key(0, threads=1)
    True
    """
    from aimd import __version__

    text = json.dumps(
        {**REFERENCE, "seed": seed, "threads": threads, "aimd": __version__, "source": reference_source_digest()},
        sort_keys=True,
    )
    return sha256_bytes(text.encode("utf-8"))[:16]


def reference_model(
    cache_dir: str | Path | None = None,
    *,
    threads: int = 2,
    seed: int = 0,
    progress: Callable[[str], object] | None = None,
) -> tuple[Path, Path]:
    """The reference model's run folder and its phantom dataset, made on first use.

    Returns
    -------
    tuple
        ``(run_dir, dataset_dir)`` under ``cache_dir / "evaluation-reference" / reference_key(seed)``.
    """
    from aimd.models import make_config, train
    from aimd.phantoms import generate_dataset

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    base = root / "evaluation-reference" / reference_key(seed, threads)
    data, run = base / "data", base / "run"
    if not (data / "dataset.json").is_file():
        if progress:
            progress("generating phantom data for the reference model")
        generate_dataset(
            data,
            cases=int(REFERENCE["cases"]),
            seed=seed,
            size=int(REFERENCE["size"]),
            workers=min(2, threads),
            force=True,
        )
    if not (run / "run.json").is_file():
        if progress:
            progress("training the reference model (once; cached)")
        train(
            make_config(
                task="seg",
                model=str(REFERENCE["model"]),
                target=str(REFERENCE["target"]),
                data=data,
                out=run,
                epochs=int(REFERENCE["epochs"]),
                max_steps_per_epoch=int(REFERENCE["steps"]),
                lr=float(REFERENCE["lr"]),
                threads=threads,
                seed=seed,
                force=True,
            )
        )
    return run, data


def load_description(path: str | Path) -> dict[str, Any]:
    """Read a model description JSON (``aimd model describe --format json``)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise SchemaError(
            f"model description cannot be read as JSON: {err}",
            where=str(p),
            hint="write it with `aimd model describe MODEL --format json`",
        ) from err
    if not isinstance(doc, dict) or "sections" not in doc:
        raise SchemaError(
            "model description lacks 'sections'",
            where=str(p),
            hint="write it with `aimd model describe MODEL --format json`",
        )
    return doc


def _network_of(predictor: Any) -> nn.Module | None:
    module = getattr(predictor, "module", None)
    if isinstance(module, nn.Module) and not isinstance(module, torch.jit.ScriptModule):
        return module
    return None


def _model_file(path: Path) -> Path | None:
    if path.is_file():
        return path
    if (path / "run.json").is_file():
        from aimd.models import load_run

        return load_run(path).weights
    for name in ("models/model.ts", "models/model.pt", "models/model.onnx"):
        if (path / name).is_file():
            return path / name
    return None


def load_eval_data(
    dataset: str | Path,
    target: str,
    input_spec: Any,
    *,
    splits: Sequence[str] = DEFAULT_SPLITS,
    task: str = "segmentation",
) -> EvalData:
    """The held-out ``splits`` of ``dataset`` for ``target``, preprocessed for ``input_spec``."""
    from aimd.models import load_index, load_split

    index = load_index(dataset)
    parts = [load_split(index, split, target, input_spec) for split in splits]
    files: dict[str, str] = {"dataset.json": index.sha256}
    sites: dict[str, str] = {}
    for p in parts:
        files.update(p.files)
        sites.update(p.sites)
    return EvalData(
        np.concatenate([p.images for p in parts]).astype(np.float32),
        np.concatenate([p.targets for p in parts]).astype(np.int64),
        [c for p in parts for c in p.case_ids],
        sites,
        "classification" if task == "classification" else "segmentation",
        files,
    )


def build_context(
    model: str | Path,
    dataset: str | Path,
    out_dir: str | Path,
    *,
    description: str | Path | None = None,
    splits: Sequence[str] = DEFAULT_SPLITS,
    seed: int = 0,
    threads: int = 2,
    progress: Callable[[str], object] | None = None,
) -> EvaluationContext:
    """Open ``model`` and the held-out data of ``dataset`` as an :class:`EvaluationContext`.

    Parameters
    ----------
    model:
        Run folder, TorchScript / ONNX file or MONAI bundle folder.
    dataset:
        Folder with ``dataset.json`` (``aimd data phantom``) or the file itself.
    out_dir:
        Report folder.
    description:
        The model's 000 §4 description JSON; derived with ``aimd.models.describe_model`` for a run
        folder when omitted.
    splits:
        Dataset splits to evaluate on (held out from training).
    """
    from aimd.models import describe_model, load_predictor

    path = Path(model)
    if progress:
        progress(f"loading the model {path.name}")
    predictor = load_predictor(path, threads=threads)
    target = predictor.output_spec.target
    if not target:
        raise InvalidInputError(
            "the model's output spec names no target, so the reference labels are unknown",
            where=str(path),
            hint="re-export the model with aimd (the specs carry the target)",
        )
    if progress:
        progress("reading the held-out data")
    data = load_eval_data(dataset, target, predictor.input_spec, splits=splits, task=predictor.output_spec.task)
    doc: dict[str, Any] | None = None
    source: Literal["provider", "aimd"] | None = None
    if description is not None:
        doc, source = load_description(description), "provider"
    elif (path / "run.json").is_file():
        doc, source = describe_model(path, measure=False, threads=threads), "aimd"
    file = _model_file(path)
    label = str(predictor.metadata.get("model") or path.name)
    identity = {
        "path": str(path),
        "label": label,
        "adapter": predictor.metadata.get("adapter"),
        "file": str(file) if file else None,
        "file_sha256": sha256_file(file) if file else None,
        **{k: v for k, v in predictor.metadata.items() if isinstance(v, str | int | float) and k != "adapter"},
    }
    return EvaluationContext(
        predictor=predictor,
        data=data,
        out_dir=Path(out_dir),
        network=_network_of(predictor),
        model_file=file,
        description=doc,
        description_source=source,
        model_label=label,
        model_identity=identity,
        data_identity={"dataset": str(dataset), "splits": list(splits)},
        seed=seed,
        threads=threads,
        progress=progress,
        run_dir=path if (path / "run.json").is_file() else None,
        dataset_dir=Path(dataset).parent if Path(dataset).is_file() else Path(dataset),
    )


__all__ = [
    "DEFAULT_SPLITS",
    "REFERENCE",
    "build_context",
    "default_cache_dir",
    "load_description",
    "load_eval_data",
    "reference_key",
    "reference_model",
]
