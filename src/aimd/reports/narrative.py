"""The conformity report read as a test lab's report: values with units, tables, sentences.

The HTML and PDF never print a JSON dump: nested evidence is flattened into rows of
``quantity | value`` with units taken from the quantity's name, and each characteristic opens with
sentences generated from its claim, its checks and its measurements. ``report.json`` keeps every
number unchanged.

Example
-------
>>> human(6.71612, "latency_p95_ms"), human(544121, "parameters"), human(True)
('6.716 ms', '544,121', 'yes')
>>> flatten({"clean": {"estimate": 0.83, "n": 9}, "cpu_count": 2})
[('clean › estimate', '0.83'), ('clean › n', '9'), ('cpu count', '2')]
"""

from __future__ import annotations

import math
from typing import Any

from aimd.evaluation.evidence import CharacteristicResult, Check, Outcome, Verdict

#: Name endings and the unit they give a number (first match wins).
UNITS: tuple[tuple[str, str], ...] = (
    ("_ms", "ms"),
    ("_mb", "MB"),
    ("_bytes", "bytes"),
    ("_mm", "mm"),
    ("seconds", "s"),
    ("_s", "s"),
    ("gflops_per_sample", "GFLOP"),
    ("images_per_s", "images/s"),
)
_LIST_LIMIT = 12
_OUTCOME_PHRASE = {
    Outcome.MET: "met",
    Outcome.NOT_MET: "not met",
    Outcome.INCONCLUSIVE: "undecided (the confidence interval straddles the claimed limit)",
    Outcome.NOT_EVALUATED: "not evaluated",
}


def unit_of(key: str) -> str:
    """The unit a quantity's name implies (``""`` when none).

    Example
    -------
    >>> unit_of("latency_p50_ms"), unit_of("size_mb"), unit_of("Dice")
    ('ms', 'MB', '')
    """
    low = key.lower()
    for ending, unit in UNITS:
        if low.endswith(ending):
            return unit
    return ""


def _number(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.3e}"
    return f"{value:.4g}"


def human(value: Any, key: str = "") -> str:
    """A value as a person reads it: numbers with 4 significant digits and their unit, lists joined,
    mappings as ``name: value`` pairs — never JSON."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    unit = unit_of(key)
    suffix = f" {unit}" if unit else ""
    if isinstance(value, int):
        return f"{value:,}{suffix}"
    if isinstance(value, float):
        return _number(value) + suffix
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "; ".join(f"{_label(k)}: {human(v, str(k))}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple):
        items = [f"({human(list(v))})" if isinstance(v, list | tuple) else human(v, key) for v in value]
        more = f" … ({len(items)} values)" if len(items) > _LIST_LIMIT else ""
        return (", ".join(items[:_LIST_LIMIT]) + more) or "none"
    return str(value)


def _label(key: Any) -> str:
    return str(key).replace("_", " ")


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Rows ``(quantity, value)`` of a nested mapping; nested names are joined with ``›``.

    Lists of mappings become one row per item (``name 1 › field``); other values are written with
    :func:`human`, keeping the unit of the innermost name.
    """
    rows: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            name = f"{prefix} › {_label(k)}" if prefix else _label(k)
            if isinstance(v, dict) and v:
                rows.extend(flatten(v, name))
            elif isinstance(v, list) and v and all(isinstance(i, dict) for i in v):
                for i, item in enumerate(v, 1):
                    rows.extend(flatten(item, f"{name} {i}"))
            else:
                rows.append((name, human(v, str(k))))
    else:
        rows.append((prefix or "value", human(value, prefix)))
    return rows


def claim_text(check: Check) -> str:
    """The claimed side of a check (``≥ 0.7``, ``present``, a mapping as pairs)."""
    return human(check.claimed, check.name)


def check_sentence(check: Check) -> str:
    """One sentence: quantity, measured value, claimed value, outcome and the test's detail."""
    phrase = _OUTCOME_PHRASE[check.outcome]
    detail = f" ({check.detail})" if check.detail else ""
    if check.outcome is Outcome.NOT_EVALUATED:
        return f"{_capital(check.name)} (claimed {claim_text(check)}) was not evaluated{detail}."
    measured = human(check.measured, check.name)
    return f"{_capital(check.name)}: measured {measured} against the claimed {claim_text(check)} — {phrase}{detail}."


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def section_sentences(section: CharacteristicResult, origin: str) -> list[str]:
    """The opening paragraph of one characteristic, generated from its claim, checks and measurements.

    Example
    -------
    >>> from aimd.evaluation.evidence import Evidence
    >>> ev = Evidence(measurements={"latency_p95_ms": 6.7})
    >>> _ = ev.check("p95 latency ms", "≤ 250", 6.7, True)
    >>> r = CharacteristicResult(key="efficiency", clause="000 §6.3.4", title="Model efficiency",
    ...     verdict=Verdict.CONFORM, reason="all met", claim={"max_latency_p95_ms": 250}, evidence=ev)
    >>> print(" ".join(section_sentences(r, "the provider")))  # doctest: +NORMALIZE_WHITESPACE
    Model efficiency (000 §6.3.4) was judged against 1 claimed quantity (limits set by the provider): 1 met.
    P95 latency ms: measured 6.7 against the claimed ≤ 250 — met. Verdict: conform.
    """
    out: list[str] = []
    if section.error:
        out.append(f"The evaluation of {section.title} ({section.clause}) stopped with an error: {section.error}.")
    checks = section.evidence.checks
    if section.claim is None and not checks:
        out.append(
            f"No claim was declared for {section.title} ({section.clause}), so nothing was judged"
            + (": it was measured and the numbers are below." if section.evidence.measurements else ".")
        )
    elif checks:
        counts = {o: sum(c.outcome is o for c in checks) for o in Outcome}
        parts = [f"{n} {_OUTCOME_PHRASE[o].split(' (')[0]}" for o, n in counts.items() if n]
        noun = "quantity" if len(checks) == 1 else "quantities"
        out.append(
            f"{section.title} ({section.clause}) was judged against {len(checks)} claimed {noun} "
            f"(limits set by {short_origin(origin)}): {', '.join(parts)}."
        )
        out.extend(_check_sentences(checks))
    if section.verdict is Verdict.NOT_EVALUATED and section.reason:
        out.append(f"Verdict: not evaluated — {section.reason}.")
    else:
        out.append(f"Verdict: {section.verdict.value.replace('_', ' ')}.")
    if section.evidence.summary:
        out.append(_capital(section.evidence.summary.rstrip(".")) + ".")
    return out


def _check_sentences(checks: list[Check], limit: int = 3) -> list[str]:
    """Every deciding check (not met, undecided) in full; met ones up to ``limit``; those not
    evaluated in one sentence when they share their reason."""
    deciding = [c for c in checks if c.outcome in (Outcome.NOT_MET, Outcome.INCONCLUSIVE)]
    met = [c for c in checks if c.outcome is Outcome.MET]
    skipped = [c for c in checks if c.outcome is Outcome.NOT_EVALUATED]
    out = [check_sentence(c) for c in deciding + met[:limit]]
    if len(met) > limit:
        out.append(f"{len(met) - limit} further claimed quantities were met (table below).")
    reasons = {c.detail for c in skipped}
    if len(skipped) > 1 and len(reasons) == 1:
        names = ", ".join(c.name for c in skipped)
        out.append(f"Not evaluated: {names} ({reasons.pop() or 'no reason recorded'}).")
    else:
        out.extend(check_sentence(c) for c in skipped)
    return out


def short_origin(origin: str) -> str:
    """Who set the limits, without the qualifying clause after a dash.

    Example
    -------
    >>> short_origin("example claims written by aimd for its own model — not a provider declaration")
    'example claims written by aimd for its own model'
    """
    return origin.split(" — ")[0].strip() or origin


def threshold_owner(section: CharacteristicResult, origin: str) -> str:
    """Who set the limits this characteristic was judged against."""
    if section.claim is None and not section.evidence.checks:
        return "no claim"
    return short_origin(origin)


def title_block(report: Any, lab: str) -> list[tuple[str, str]]:
    """The title page: model, version, hashes, laboratory and date."""
    header = report.header
    model = header.model
    data = header.data
    return [
        ("Model", str(model.get("label") or model.get("model") or "not stated")),
        ("Model version", str(model.get("version") or "not stated")),
        ("Model format (adapter)", str(model.get("adapter") or "not stated")),
        ("Model file", str(model.get("file") or model.get("path") or "not stated")),
        ("Model file SHA-256", str(model.get("file_sha256") or model.get("weights_sha256") or "not recorded")),
        ("Test data", f"{data.get('cases', '—')} cases, {data.get('images', '—')} images"),
        ("Test data digest SHA-256", str(data.get("digest_sha256") or "not recorded")),
        ("Claims", f"{header.claims.get('origin')} (source: {header.claims.get('source')})"),
        ("Claims SHA-256", str(header.claims.get("sha256") or "not recorded")),
        ("Testing laboratory", lab or "not stated (set AIMD_LAB)"),
        ("Report date", header.created),
        ("Evaluation software", f"aimd {header.versions.get('aimd', '')}".strip()),
        ("Duration", human(header.duration_s, "duration_s")),
    ]


__all__ = [
    "UNITS",
    "check_sentence",
    "claim_text",
    "flatten",
    "human",
    "section_sentences",
    "short_origin",
    "threshold_owner",
    "title_block",
    "unit_of",
]
