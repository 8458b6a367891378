"""Render a model description (000 §4) as Markdown, HTML or JSON.

The JSON form is the description itself (what the evaluation of 000 §6.2 reads); Markdown and
HTML show the same sections, each item with its source, the per-layer table in the shape of
Table B.1, and the gaps.

Example
-------
>>> doc = {"model": {"name": "m"}, "sections": {"4.1": {"title": "Overview", "items": {
...     "name": {"label": "model name", "value": "m", "source": "model"}}}}, "layers": [], "gaps": []}
>>> "| model name | m | model |" in to_markdown(doc)
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment

from aimd.core.atomic import atomic_write_json, atomic_write_text
from aimd.core.errors import InvalidInputError

FORMATS = ("md", "html", "json")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _cell(value: Any) -> str:
    return _text(value).replace("|", "\\|").replace("\n", " ")


def _shape(shape: list[int] | None) -> str:
    return "" if not shape else "[" + ", ".join(str(s) for s in shape) + "]"


def to_markdown(doc: dict[str, Any]) -> str:
    """Markdown form of a description."""
    m = doc["model"]
    lines = [
        f"# Model description: {m['name']}",
        "",
        "Pre-trained model description following 000 §4 (structure, nodes, parameters, data "
        "representation, source-task data, training, applicability). Each item names its source.",
        "",
    ]
    for clause, section in doc["sections"].items():
        lines += [f"## §{clause} {section['title']}", ""]
        if not section["items"]:
            lines += ["_No item could be derived or was provided; see the gaps._", ""]
            continue
        lines += ["| item | value | source |", "|---|---|---|"]
        lines += [f"| {_cell(i['label'])} | {_cell(i['value'])} | {i['source']} |" for i in section["items"].values()]
        lines.append("")
        if clause == "4.2.3" and doc.get("layers"):
            lines += [
                "### Layers (traced forward pass, as Table B.1)",
                "",
                "| block | layer | kernel | output shape | parameters |",
                "|---|---|---|---|---|",
            ]
            lines += [
                f"| {r['block']} | {r['layer']} | {r['kernel'] or '-'} | {_shape(r['output_shape'])} | {r['params']} |"
                for r in doc["layers"]
            ]
            lines.append("")
    lines += ["## Gaps", ""]
    if not doc["gaps"]:
        lines += ["None: every item was derived or provided.", ""]
    else:
        lines += ["| clause | item | required | how to fill |", "|---|---|---|---|"]
        lines += [
            f"| {g['clause']} | {_cell(g['item'])} | {'yes' if g['required'] else 'optional'} | {_cell(g['hint'])} |"
            for g in doc["gaps"]
        ]
        lines.append("")
    return "\n".join(lines)


_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Model description: {{ m.name }}</title>
<style>
body{font-family:sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#f2f2f2} .src{color:#666;white-space:nowrap} .gap{background:#fff4e5}
code{white-space:pre-wrap;word-break:break-word}
</style></head><body>
<h1>Model description: {{ m.name }}</h1>
<p>Pre-trained model description following 000 §4. Each item names its source.</p>
{% for clause, section in sections %}
<h2>§{{ clause }} {{ section.title }}</h2>
{% if section["items"] %}<table><tr><th>item</th><th>value</th><th>source</th></tr>
{% for item in section["items"].values() %}<tr><td>{{ item.label }}</td><td><code>{{ text(item.value) }}</code></td>
<td class="src">{{ item.source }}</td></tr>{% endfor %}</table>
{% else %}<p><em>No item could be derived or was provided; see the gaps.</em></p>{% endif %}
{% if clause == "4.2.3" and layers %}<h3>Layers (traced forward pass, as Table B.1)</h3>
<table><tr><th>block</th><th>layer</th><th>kernel</th><th>output shape</th><th>parameters</th></tr>
{% for r in layers %}<tr><td>{{ r.block }}</td><td>{{ r.layer }}</td><td>{{ r.kernel or "-" }}</td>
<td>{{ shape(r.output_shape) }}</td><td>{{ r.params }}</td></tr>{% endfor %}</table>{% endif %}
{% endfor %}
<h2>Gaps</h2>
{% if gaps %}<table><tr><th>clause</th><th>item</th><th>required</th><th>how to fill</th></tr>
{% for g in gaps %}<tr class="gap"><td>{{ g.clause }}</td><td>{{ g.item }}</td>
<td>{{ "yes" if g.required else "optional" }}</td><td>{{ g.hint }}</td></tr>{% endfor %}</table>
{% else %}<p>None: every item was derived or provided.</p>{% endif %}
</body></html>
"""


def to_html(doc: dict[str, Any]) -> str:
    """HTML form of a description (autoescaped)."""
    env = Environment(autoescape=True)
    template = env.from_string(_HTML)
    return template.render(
        m=doc["model"],
        sections=list(doc["sections"].items()),
        layers=doc.get("layers", []),
        gaps=doc["gaps"],
        text=_text,
        shape=_shape,
    )


def render(doc: dict[str, Any], fmt: str) -> str:
    """``md``, ``html`` or ``json`` text of a description."""
    if fmt == "md":
        return to_markdown(doc)
    if fmt == "html":
        return to_html(doc)
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True, default=str) + "\n"
    raise InvalidInputError(f"unknown format {fmt!r}", where="--format", hint=f"use one of {list(FORMATS)}")


def write_description(doc: dict[str, Any], path: str | Path, fmt: str) -> Path:
    """Write the description atomically in ``fmt``."""
    p = Path(path)
    if fmt == "json":
        atomic_write_json(p, doc)
    else:
        atomic_write_text(p, render(doc, fmt))
    return p


__all__ = ["FORMATS", "render", "to_html", "to_markdown", "write_description"]
