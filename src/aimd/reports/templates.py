"""Jinja2 template of the HTML (and PDF) conformity report.

Example
-------
>>> "{% for s in report.sections %}" in REPORT_TEMPLATE
True
"""

from __future__ import annotations

REPORT_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ report.header.title }}</title>
<style>
body{font-family:DejaVu Sans,Arial,sans-serif;font-size:12px;margin:24px;color:#222}
h1{font-size:20px}h2{font-size:16px;border-bottom:1px solid #999;margin-top:28px}h3{font-size:13px}
table{border-collapse:collapse;margin:6px 0 12px}td,th{border:1px solid #bbb;padding:2px 6px;vertical-align:top}
th{background:#eee;text-align:left}.conform{background:#d9f2d9}.nonconform{background:#f8d0d0}
.inconclusive{background:#fbeec8}.not_evaluated{background:#eee}.origin{border:1px solid #999;padding:4px 8px}
.title td,.title th{padding:4px 8px}.title th{width:14em}.num{text-align:right}
.hash{font-family:monospace;font-size:10px}
img{max-width:100%}.met{color:#176317}.not_met{color:#a11}.inconclusive_c{color:#8a6d00}
.titlepage{page-break-after:always}@page{size:A4;margin:14mm}
</style></head><body>
<section class="titlepage">
<h1>{{ report.header.title }}</h1>
<p>Evaluation of the quality characteristics of a pre-trained model against its provider's claims
(000 §5–§6). The machine-readable record of every number below is report.json (appendix).</p>
<table class="title">{% for name, value in title %}<tr><th>{{ name }}</th>
<td{% if "SHA-256" in name %} class="hash"{% endif %}>{{ value }}</td></tr>{% endfor %}</table>
<p class="origin"><b>Claims:</b> {{ report.header.claims.origin }} (source: {{ report.header.claims.source }})</p>
<h2>Verdicts</h2>
<table><tr><th>clause</th><th>characteristic</th><th>verdict</th><th>limits set by</th><th>reason</th>
<th>time</th></tr>
{% for s in report.sections %}<tr class="{{ s.verdict.value }}"><td>{{ s.clause }}</td>
<td><a href="#{{ s.key }}">{{ s.title }}</a></td><td>{{ verdict_text[s.verdict.value] }}</td>
<td>{{ owner(s) }}</td><td>{{ s.reason }}</td><td class="num">{{ human(s.seconds, "seconds") }}</td></tr>
{% endfor %}</table>
<p>{% for v, n in report.counts().items() if n %}{{ n }} {{ verdict_text[v] }}{% if not loop.last %}, {% endif %}
{% endfor %} of {{ report.sections|length }} clauses.</p>
</section>
{% for s in report.sections %}
<h2 id="{{ s.key }}">{{ s.clause }} {{ s.title }}</h2>
<p class="{{ s.verdict.value }}"><b>Verdict: {{ verdict_text[s.verdict.value] }}</b> — {{ s.reason }}</p>
<p>{{ sentences(s)|join(" ") }}</p>
<table class="result"><tr><th>verdict</th><th>limits set by</th><th>met</th><th>not met</th><th>undecided</th>
<th>not evaluated</th><th>time</th></tr><tr><td class="{{ s.verdict.value }}">{{ verdict_text[s.verdict.value] }}</td>
<td>{{ owner(s) }}</td>{% for o in outcomes %}<td class="num">{{ s.evidence.checks|selectattr("outcome", "equalto", o)
|list|length }}</td>{% endfor %}<td class="num">{{ human(s.seconds, "seconds") }}</td></tr></table>
{% if s.method %}<h3>Method</h3><p>{{ s.method }}</p>{% endif %}
{% if s.claim %}<h3>Claim</h3><table><tr><th>claimed setting or limit</th><th>value</th></tr>
{% for name, value in flatten(s.claim) %}<tr><td>{{ name }}</td><td>{{ value }}</td></tr>{% endfor %}</table>{% endif %}
{% if s.evidence.checks %}<h3>Claim against measurement</h3>
<table><tr><th>quantity</th><th>claimed</th><th>measured</th><th>result</th><th>detail</th></tr>
{% for c in s.evidence.checks %}<tr><td>{{ c.name }}</td><td>{{ claim_text(c) }}</td>
<td class="num">{{ human(c.measured, c.name) }}</td>
<td class="{{ c.outcome.value }}">{{ c.outcome.value.replace('_', ' ') }}</td><td>{{ c.detail }}</td></tr>
{% endfor %}</table>{% endif %}
{% for t in s.evidence.tables %}<h3>{{ t.title }}</h3>
<table><tr>{% for c in t.columns %}<th>{{ c.replace("_", " ") }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for c in t.columns %}<td>{{ human(row.get(c), c) }}</td>{% endfor %}</tr>
{% else %}<tr><td colspan="{{ t.columns|length }}">none</td></tr>{% endfor %}</table>{% endfor %}
{% for p in s.evidence.plots %}{% set key = s.key ~ "/" ~ p.name %}{% if key in report.figures %}
<h3>{{ p.title }}</h3><img src="{{ report.figures[key] }}" alt="{{ p.title }}">{% endif %}{% endfor %}
{% if s.evidence.measurements %}<h3>Measurements</h3><table><tr><th>quantity</th><th>value</th></tr>
{% for name, value in flatten(s.evidence.measurements) %}<tr><td>{{ name }}</td><td>{{ value }}</td></tr>
{% endfor %}</table>{% endif %}
{% endfor %}
<h2>Identity and reproducibility</h2>
<h3>Model</h3><table><tr><th>item</th><th>value</th></tr>
{% for name, value in flatten(report.header.model) %}<tr><td>{{ name }}</td><td>{{ value }}</td></tr>{% endfor %}
</table>
<h3>Test data</h3><table>
<tr><th>cases</th><td>{{ report.header.data.cases }}</td></tr>
<tr><th>images</th><td>{{ report.header.data.images }}</td></tr>
<tr><th>sites</th><td>{{ report.header.data.sites|join(", ") }}</td></tr>
<tr><th>data digest (SHA-256)</th><td class="hash">{{ report.header.data.digest_sha256 }}</td></tr></table>
<h3>Versions</h3><table><tr><th>software</th><th>version</th></tr>
{% for k, v in report.header.versions.items() %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</table>
<h3>Seeds</h3><table><tr><th>seed</th><th>value</th></tr>
{% for k, v in report.header.seeds.items() %}<tr><td>{{ k }}</td><td class="num">{{ v }}</td></tr>{% endfor %}</table>
<h3>Hardware</h3><table><tr><th>item</th><th>value</th></tr>
{% for name, value in flatten(report.header.hardware) %}<tr><td>{{ name }}</td><td>{{ value }}</td></tr>{% endfor %}
</table>
<h2>Appendix — records and files</h2>
<p>report.json holds this report's header, verdicts and every measurement as recorded, and validates
against report.schema.json; the evidence files below hold the per-image data behind the tables.</p>
<table><tr><th>characteristic</th><th>evidence file</th><th>path</th></tr>
{% for s in report.sections %}{% for k, v in s.evidence.files.items() %}<tr><td>{{ s.title }}</td><td>{{ k }}</td>
<td>{{ v }}</td></tr>{% endfor %}{% endfor %}</table>
<details><summary>{{ report.header.data.files|length }} test data files with SHA-256</summary><table>
{% for k, v in report.header.data.files|dictsort %}<tr><td>{{ k }}</td><td class="hash">{{ v }}</td></tr>{% endfor %}
</table></details>
<p>Claims SHA-256: <span class="hash">{{ report.header.claims.sha256 }}</span></p>
</body></html>
"""

__all__ = ["REPORT_TEMPLATE"]
