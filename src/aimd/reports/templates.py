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
th{background:#eee}.conform{background:#d9f2d9}.nonconform{background:#f8d0d0}.inconclusive{background:#fbeec8}
.not_evaluated{background:#eee}.origin{border:1px solid #999;padding:4px 8px;background:#fafafa}
pre{background:#f6f6f6;padding:6px;white-space:pre-wrap;font-size:10px}img{max-width:100%}
.met{color:#176317}.not_met{color:#a11}.inconclusive_c{color:#8a6d00}
@page{size:A4;margin:14mm}
</style></head><body>
<h1>{{ report.header.title }}</h1>
<p>{{ report.format }} v{{ report.version }} · created {{ report.header.created }} ·
duration {{ "%.1f"|format(report.header.duration_s) }} s</p>
<p class="origin"><b>Claims:</b> {{ report.header.claims.origin }} (source: {{ report.header.claims.source }})</p>
<h2>Verdicts</h2>
<table><tr><th>clause</th><th>characteristic</th><th>verdict</th><th>reason</th><th>time (s)</th></tr>
{% for r in report.summary %}<tr class="{{ r.verdict.value }}"><td>{{ r.clause }}</td><td>{{ r.title }}</td>
<td>{{ verdict_text[r.verdict.value] }}</td><td>{{ r.reason }}</td><td>{{ "%.2f"|format(r.seconds) }}</td></tr>
{% endfor %}</table>
<h2>Identity and reproducibility</h2>
<h3>Model</h3><pre>{{ pretty(report.header.model) }}</pre>
<h3>Data</h3><table>
<tr><th>cases</th><td>{{ report.header.data.cases }}</td></tr>
<tr><th>images</th><td>{{ report.header.data.images }}</td></tr>
<tr><th>sites</th><td>{{ report.header.data.sites|join(", ") }}</td></tr>
<tr><th>data digest (SHA-256)</th><td>{{ report.header.data.digest_sha256 }}</td></tr></table>
<details><summary>{{ report.header.data.files|length }} data files with SHA-256</summary><table>
{% for k, v in report.header.data.files|dictsort %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}
</table></details>
<h3>Claims</h3><p>source: {{ report.header.claims.source }} · SHA-256 {{ report.header.claims.sha256 }}</p>
<h3>Versions, seeds, hardware</h3>
<pre>{{ pretty({"versions": report.header.versions, "seeds": report.header.seeds,
"hardware": report.header.hardware}) }}</pre>
{% for s in report.sections %}
<h2 id="{{ s.key }}">{{ s.clause }} {{ s.title }}</h2>
<p class="{{ s.verdict.value }}"><b>Verdict: {{ verdict_text[s.verdict.value] }}</b> — {{ s.reason }}</p>
{% if s.claim %}<h3>Claim</h3><pre>{{ pretty(s.claim) }}</pre>{% endif %}
{% if s.method %}<h3>Method</h3><p>{{ s.method }}</p>{% endif %}
{% if s.error %}<h3>Error</h3><pre>{{ s.error }}</pre>{% endif %}
{% if s.evidence.checks %}<h3>Claim vs measurement</h3>
<table><tr><th>quantity</th><th>claimed</th><th>measured</th><th>result</th><th>detail</th></tr>
{% for c in s.evidence.checks %}<tr><td>{{ c.name }}</td><td>{{ short(c.claimed) }}</td><td>{{ short(c.measured) }}</td>
<td class="{{ c.outcome.value }}">{{ c.outcome.value.replace('_', ' ') }}</td><td>{{ c.detail }}</td></tr>
{% endfor %}</table>{% endif %}
{% for t in s.evidence.tables %}<h3>{{ t.title }}</h3>
<table><tr>{% for c in t.columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in t.rows %}<tr>{% for c in t.columns %}<td>{{ short(row.get(c)) }}</td>{% endfor %}</tr>{% endfor %}
</table>{% endfor %}
{% for p in s.evidence.plots %}{% set key = s.key ~ "/" ~ p.name %}{% if key in report.figures %}
<h3>{{ p.title }}</h3><img src="{{ report.figures[key] }}" alt="{{ p.title }}">{% endif %}{% endfor %}
{% if s.evidence.measurements %}<details><summary>Measurements</summary>
<pre>{{ pretty(s.evidence.measurements) }}</pre></details>{% endif %}
{% endfor %}
</body></html>
"""

__all__ = ["REPORT_TEMPLATE"]
