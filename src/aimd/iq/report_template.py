"""Jinja2 template of the HTML (and PDF) IQ report (002 App. C).

Example
-------
>>> "C.7 Attachments" in IQ_TEMPLATE
True
"""

from __future__ import annotations

IQ_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>IQ report {{ report.basic.report_id }}</title>
<style>
body{font-family:DejaVu Sans,Noto Sans CJK SC,Arial,sans-serif;font-size:11px;margin:22px;color:#222}
h1{font-size:19px}h2{font-size:15px;border-bottom:1px solid #999;margin-top:24px}
table{border-collapse:collapse;margin:6px 0 12px;width:100%}td,th{border:1px solid #bbb;padding:2px 5px;
vertical-align:top}th{background:#eee;text-align:left}.pass{background:#d9f2d9}.fail{background:#f8d0d0}
.not_evaluated{background:#eee}.incomplete{background:#fff2cc}img{max-width:100%}
@page{size:A4;margin:13mm}
</style></head><body>
<h1>Installation qualification report — {{ report.basic.object }}</h1>
<h2>C.1 Basic information</h2>
<table>
<tr><th>report id</th><td>{{ report.basic.report_id }}</td></tr>
<tr><th>object and version</th><td>{{ report.basic.object }}</td></tr>
<tr><th>purpose</th><td>{{ report.basic.purpose }}</td></tr>
<tr><th>dates</th><td>{{ report.basic.started }} — {{ report.basic.finished }}</td></tr>
<tr><th>place</th><td>{{ report.basic.place }}</td></tr>
<tr><th>people and roles</th><td>{% for p in report.basic.people %}{{ p.name }} ({{ p.role }}, {{ p.party }})
{% if not loop.last %}; {% endif %}{% else %}none recorded{% endfor %}</td></tr>
<tr><th>target</th><td>{{ short(report.target) }} · profile {{ report.profile }}</td></tr>
<tr class="{{ report.basic.conclusion }}"><th>conclusion</th><td><b>{{ report.basic.conclusion|upper }}</b> —
{{ report.basic.conclusion_reasons|join("; ") }}</td></tr>
<tr><th>issued by</th><td>{{ report.basic.issuer or "________________" }}
{{ report.basic.issuer_title }}</td></tr>
<tr><th>issue date</th><td>{{ report.basic.issue_date or "________________" }}</td></tr>
</table>
<h2>Scores (002 §6.1)</h2>
<table><tr><th>area</th><th>weight</th><th>passed</th><th>failed</th><th>not evaluated</th><th>score</th></tr>
{% for name, a in report.scores.areas.items() %}<tr><td>{{ name }}</td><td>{{ a.weight }}</td><td>{{ a.passed }}</td>
<td>{{ a.failed }}</td><td>{{ a.not_evaluated }}</td><td>{{ a.score if a.score is not none else "—" }}</td></tr>
{% endfor %}<tr><th>weighted total</th><td colspan="5">{{ report.scores.total }} (pass mark
{{ report.scores.pass_score }})</td></tr></table>
{% for area in report.areas %}
<h2>{{ area.title }}</h2>
<table><tr><th>check</th><th>clause</th><th>expected</th><th>observed</th><th>verdict</th><th>s</th></tr>
{% for c in report.checks if c.area == area.key %}<tr class="{{ c.verdict.value }}"><td><b>{{ c.key }}</b><br>
{{ c.title }}</td><td>{{ c.clause }}</td><td>{{ c.expected }}</td><td>{{ c.observed }}{% if c.reason %}<br>
<i>{{ c.reason }}</i>{% endif %}</td><td>{{ c.verdict.value|replace("_", " ") }}</td><td>{{ c.seconds }}</td></tr>
{% endfor %}</table>
{% for c in report.checks if c.area == area.key %}{% for e in c.evidence if e.endswith(".png") %}
<p><img src="{{ e }}" alt="{{ c.key }}"></p>{% endfor %}{% endfor %}
{% endfor %}
<h2>Deviations (002 §4.1.2 g)</h2>
<table><tr><th>check</th><th>description</th><th>impact</th><th>corrective action</th><th>critical</th></tr>
{% for d in report.deviations %}<tr><td>{{ d.check }}</td><td>{{ d.description }}</td><td>{{ d.impact }}</td>
<td>{{ d.corrective_action }}</td><td>{{ "yes" if d.critical else "no" }}</td></tr>
{% else %}<tr><td colspan="5">none</td></tr>{% endfor %}</table>
<h2>Traceability to 002</h2>
<table><tr><th>clause</th><th>checks</th><th>verdicts</th></tr>
{% for t in report.traceability %}<tr><td>{{ t.clause }}</td><td>{{ t.checks|join(", ") }}</td>
<td>{{ t.verdicts|join(", ") }}</td></tr>{% endfor %}</table>
<h2>C.7 Attachments — evidence index</h2>
<table><tr><th>file</th><th>SHA-256</th><th>bytes</th></tr>
{% for e in report.evidence %}<tr><td>{{ e.path }}</td><td style="font-size:8px">{{ e.sha256 }}</td>
<td>{{ e.size }}</td></tr>{% endfor %}</table>
<p>Run time {{ "%.1f"|format(report.seconds) }} s.</p>
</body></html>
"""

__all__ = ["IQ_TEMPLATE"]
