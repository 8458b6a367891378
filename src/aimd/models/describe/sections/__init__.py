"""Build the 000 §4 model description: derive what can be derived, take the rest from the provider,
list what is still missing as gaps (never invent).

Each item records its clause, a label, its value and its source: ``model`` (the network, traced),
``spec`` (declared input/output specs), ``training record``, ``dataset`` (dataset.json via the
record), ``measured`` (this machine) or ``provider`` (the provider YAML). An item the standard
requires ("应") that has no value becomes a gap with the YAML key that would fill it; optional
items ("宜") that are missing are listed as optional gaps.

Modules: :mod:`~aimd.models.describe.sections.builder` (titles, :class:`Subject`, :class:`Builder`),
:mod:`~aimd.models.describe.sections.structure` (§4.2), :mod:`~aimd.models.describe.sections.training`
(§4.3–§4.4), :mod:`~aimd.models.describe.sections.applicability` (§4.5),
:mod:`~aimd.models.describe.sections.build` (all of them).

Example
-------
>>> b = Builder()
>>> b.add("4.1", "version", "release version", None, "provider", hint="version")
>>> b.gaps[0]["clause"], b.gaps[0]["required"]
('000 §4.1', True)
"""

from aimd.models.describe.sections.applicability import MEASURE_BUDGET_FLOPS
from aimd.models.describe.sections.build import build_sections
from aimd.models.describe.sections.builder import TITLES, Builder, Subject

__all__ = ["MEASURE_BUDGET_FLOPS", "TITLES", "Builder", "Subject", "build_sections"]
