"""All 000 §4 items of a model, section by section."""

from __future__ import annotations

import torch

from aimd.models.describe.provider import ProviderInfo
from aimd.models.describe.sections.applicability import _applicability
from aimd.models.describe.sections.builder import Builder, Subject
from aimd.models.describe.sections.structure import _interpretability, _nodes, _parameters, _representation, _structure
from aimd.models.describe.sections.training import _data, _training
from aimd.models.describe.trace import LayerTable


def build_sections(
    s: Subject, provider: ProviderInfo, table: LayerTable, *, measure: bool | None = None, threads: int = 2
) -> Builder:
    """All 000 §4 items for ``s``."""
    b = Builder()
    version = provider.version or (s.run.info.get("version") if s.run else None)
    b.add("4.1", "name", "model name", provider.name or s.name, "provider" if provider.name else "model")
    b.add(
        "4.1",
        "version",
        "release version",
        version,
        "provider" if provider.version else "training record",
        hint="version",
    )
    b.add("4.1", "provider", "provider", provider.provider, "provider", hint="provider")
    b.add("4.1", "framework", "framework", f"PyTorch {torch.__version__.split('+')[0]}", "model")
    b.add(
        "4.1",
        "identity",
        "weights identity",
        {k: s.meta.get(k) for k in ("weights_sha256", "run_id", "source") if s.meta.get(k)} or None,
        "model",
        required=False,
        hint="version",
    )
    _structure(b, s, provider, table)
    _nodes(b, s, table)
    _parameters(b, table)
    _representation(b, s, table)
    _interpretability(b, s, provider, table)
    _data(b, s, provider)
    _training(b, s, provider)
    _applicability(b, s, provider, table, measure, threads)
    return b
