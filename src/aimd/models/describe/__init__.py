"""Model description per 000 §4 and App. B, derived from the model wherever possible.

:func:`describe_model` takes a zoo name (architecture only), a training run folder (architecture
plus training record) or a MONAI bundle folder, traces the network (000 §4.2.2–§4.2.3), reads its
specs (§4.2.4) and training record (§4.3–§4.4), measures it on this machine (§4.5.3), merges the
provider YAML and lists every still-missing item as a gap. :func:`write_description` renders it
as Markdown, HTML or JSON.

Example
-------
>>> doc = describe_model("vit-small", measure=False)
>>> doc["sections"]["4.2.3"]["items"]["total"]["value"] == sum(r["params"] for r in doc["layers"])
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from aimd import __version__
from aimd.core.errors import InvalidInputError
from aimd.models.adapters.monai_bundle import MonaiBundlePredictor
from aimd.models.describe.provider import ProviderInfo, load_provider
from aimd.models.describe.render import FORMATS, render, to_html, to_markdown, write_description
from aimd.models.describe.sections import MEASURE_BUDGET_FLOPS, Builder, Subject, build_sections
from aimd.models.describe.trace import (
    LayerRow,
    LayerTable,
    connections,
    flops_per_sample,
    receptive_field,
    trace_layers,
)
from aimd.models.runs import is_run, load_run
from aimd.models.targets import get_target
from aimd.models.zoo import ZOO, build_network, get_entry

DESCRIPTION_FORMAT = "aimd-model-description"


def _zoo_entry_for(run_info: dict[str, Any]) -> Any:
    name = run_info.get("model")
    return ZOO.get(name) if isinstance(name, str) else None


def resolve_subject(model: str | Path, run: str | Path | None = None, *, measure: bool | None = None) -> Subject:
    """Turn a zoo name, run folder or bundle folder (plus an optional run) into a :class:`Subject`."""
    if run is not None:
        r = load_run(run)
        if str(model) not in {r.info["model"], str(run)} and not (
            Path(str(model)).exists() and Path(str(model)).resolve() == r.path.resolve()
        ):
            raise InvalidInputError(
                f"run {run} trained {r.info['model']!r}, not {model!r}",
                where="--run",
                hint=f"describe {r.info['model']} or pass the matching run",
            )
        model = r.path
    text = str(model)
    if text in ZOO:
        entry = get_entry(text)
        target = get_target(entry.default_target)
        with torch.device("meta"):
            meta_net = build_network(text, out_channels=target.channels)
        sample = tuple(entry.input_spec.input_shape(batch=1)[1:])
        flops = flops_per_sample(meta_net, sample)
        wants = measure if measure is not None else flops <= MEASURE_BUDGET_FLOPS
        network = build_network(text, out_channels=target.channels) if wants else meta_net
        return Subject(
            name=text,
            kind="zoo",
            network=network,
            input_spec=entry.input_spec,
            output_spec=target.output_spec(),
            entry=entry,
            meta={"source": f"aimd zoo {text} (untrained architecture)"},
        )
    path = Path(text)
    if is_run(path):
        r = load_run(path)
        return Subject(
            name=r.info["model"],
            kind="run",
            network=r.build_network(),
            input_spec=r.input_spec,
            output_spec=r.output_spec,
            entry=_zoo_entry_for(r.info),
            run=r,
            meta={"source": str(path), "run_id": r.info.get("run_id"), "weights_sha256": r.info.get("weights_sha256")},
        )
    if (path / "configs" / "metadata.json").is_file():
        bundle = MonaiBundlePredictor(path)
        if not isinstance(bundle.module, torch.nn.Module) or isinstance(bundle.module, torch.jit.ScriptModule):
            raise InvalidInputError(
                "bundle holds only a TorchScript model, which cannot be traced layer by layer",
                where=str(path),
                hint="add models/model.pt and network_def to the bundle",
            )
        return Subject(
            name=path.name,
            kind="monai_bundle",
            network=bundle.module,
            input_spec=bundle.input_spec,
            output_spec=bundle.output_spec,
            meta=dict(bundle.metadata),
        )
    raise InvalidInputError(
        f"{text!r} is neither a zoo model, a run folder nor a MONAI bundle",
        where="MODEL",
        hint=f"use one of {sorted(ZOO)}, a folder written by aimd model train, or a bundle",
    )


def describe_model(
    model: str | Path,
    *,
    run: str | Path | None = None,
    extra: str | Path | None = None,
    measure: bool | None = None,
    threads: int = 2,
) -> dict[str, Any]:
    """The 000 §4 description of ``model`` as a JSON-ready dict.

    Parameters
    ----------
    model:
        Zoo name, run folder, MONAI bundle folder, or a TorchScript / ONNX file
        (:func:`~aimd.models.describe.files.describe_file`).
    run:
        Training run of ``model`` (adds §4.3–§4.4 from its record).
    extra:
        Provider YAML (what cannot be derived).
    measure:
        Time inference on this machine; ``None`` does so when one sample costs at most 50 GFLOP.
    threads:
        CPU threads for the measurement.
    """
    from aimd.models.describe.files import describe_file, is_model_file

    if run is None and is_model_file(model):
        return describe_file(model, extra=extra)
    provider: ProviderInfo = load_provider(extra)
    subject = resolve_subject(model, run, measure=measure)
    sample = tuple(subject.input_spec.input_shape(batch=1)[1:])
    table = trace_layers(subject.network, sample)
    built = build_sections(subject, provider, table, measure=measure, threads=threads)
    return {
        "format": DESCRIPTION_FORMAT,
        "version": "1",
        "aimd_version": __version__,
        "model": {
            "name": subject.name,
            "kind": subject.kind,
            **{k: v for k, v in subject.meta.items() if isinstance(v, str | int | float)},
        },
        "input_spec": subject.input_spec.model_dump(mode="json"),
        "output_spec": subject.output_spec.model_dump(mode="json"),
        "sections": built.sections,
        "layers": [r.to_dict() for r in table.rows],
        "gaps": built.gaps,
        "provider_file": str(extra) if extra else None,
    }


__all__ = [
    "DESCRIPTION_FORMAT",
    "FORMATS",
    "Builder",
    "LayerRow",
    "LayerTable",
    "ProviderInfo",
    "Subject",
    "connections",
    "describe_model",
    "flops_per_sample",
    "load_provider",
    "receptive_field",
    "render",
    "resolve_subject",
    "to_html",
    "to_markdown",
    "trace_layers",
    "write_description",
]
