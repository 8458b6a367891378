"""Logs and monitoring (002 §5.4, §6.5): lifecycle events complete and true, retrievable, retained;
Prometheus metrics present; alert rules fire on injected faults and stay quiet otherwise.

Example
-------
>>> samples = parse_metrics('x_total{status="401"} 3\\nx_total{status="200"} 9\\n')
>>> from aimd.iq.protocol import AlertRule
>>> rule_fires(AlertRule(name="r", metric="x_total", labels={"status": "401"}, op=">", threshold=0), samples)
True
"""

from __future__ import annotations

import operator
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from aimd.iq.checks.base import CheckResult, IQCheck, IQContext, Verdict
from aimd.iq.events import LIFECYCLE, chain_break, read_events
from aimd.iq.protocol import AlertRule

FIELDS = ("time", "task_id", "kind", "event", "operator", "machine", "parameters", "result")
OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne}


def metric_names(text: str) -> set[str]:
    """Family names and sample names of a Prometheus text exposition."""
    names = set()
    for fam in text_string_to_metric_families(text):
        names.add(fam.name)
        names.update(s.name for s in fam.samples)
    return names


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Samples of a Prometheus text exposition: (name, labels, value)."""
    return [
        (s.name, dict(s.labels), float(s.value)) for fam in text_string_to_metric_families(text) for s in fam.samples
    ]


def rule_fires(rule: AlertRule, samples: list[tuple[str, dict[str, str], float]]) -> bool:
    """Whether any sample of the rule's metric with matching labels meets the condition."""
    return any(
        name == rule.metric
        and all(labels.get(k) == v for k, v in rule.labels.items())
        and OPS[rule.op](value, rule.threshold)
        for name, labels, value in samples
    )


def lifecycle_problems(
    events: list[dict[str, Any]],
    history: list[dict[str, Any]],
    current: str | None,
    *,
    running: str | None = None,
    steps_done: list[str] | None = None,
) -> list[str]:
    """What the event log lacks or contradicts, cross-checked with the install history and ``current``.

    ``running`` is a task still under way (the IQ run itself): it needs no end event, but every step in
    ``steps_done`` must be logged as executed.
    """
    problems = []
    broken = chain_break(events)
    if broken is not None:
        problems.append(f"hash chain broken at entry {broken}")
    tasks: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        tasks.setdefault(e["task_id"], []).append(e)
        missing = [f for f in FIELDS if f not in e]
        if missing or e.get("event") not in LIFECYCLE:
            problems.append(f"entry {e.get('time')}: missing {missing} or unknown event {e.get('event')!r}")
    if running is not None:
        logged = [e["step"] for e in tasks.get(running, []) if e["event"] == "executed"]
        problems += [f"running task {running}: step {s} not logged" for s in steps_done or [] if s not in logged]
    for task_id, evs in tasks.items():
        kinds = [e["event"] for e in evs]
        if kinds[0] != "created":
            problems.append(f"task {task_id}: does not start with 'created'")
        if task_id == running:
            continue
        if kinds[-1] not in ("completed", "failed") and not (len(kinds) > 1 and kinds[-2] == "failed"):
            problems.append(f"task {task_id}: no 'completed' or 'failed' event")
        if "completed" in kinds and "approved" not in kinds:
            problems.append(f"task {task_id}: completed without approval")
    done = {e["task_id"]: e for e in events if e["event"] == "completed"}
    for h in history:
        end = done.get(h["task_id"])
        if end is None or (end.get("result") or {}).get("version") != h["to"]:
            problems.append(f"history install {h['task_id']} → {h['to']} has no matching 'completed' event")
    rolled = sum(1 for h in history if h.get("rolled_back"))
    rollbacks = sum(1 for e in done.values() if e["kind"] == "rollback")
    if rolled != rollbacks:
        problems.append(f"history shows {rolled} rollbacks, the log {rollbacks} completed")
    last = [e for e in events if e["event"] == "completed" and e["kind"] in ("install", "rollback")]
    if last and (last[-1].get("result") or {}).get("version") != current:
        problems.append(f"last completed task says {last[-1]['result'].get('version')}, current is {current}")
    return problems


class LifecycleLogCheck(IQCheck):
    key = "logs.lifecycle"
    area = "logs"
    clause = "002 §5.4.1, §6.5.1 a–b"
    title = "every install and rollback logged from creation to end, fields true to the recorded state"
    impact = "installs cannot be audited or diagnosed"
    fix = "install and roll back only through aimd iq; restore the log from backup"
    critical = True

    def run(self, ctx: IQContext) -> CheckResult:
        if ctx.prefix is None or not ctx.prefix.events.exists():
            return self.not_evaluated("no installation prefix with an event log (give --prefix)")
        events = read_events(ctx.prefix.events)
        problems = lifecycle_problems(
            events,
            ctx.prefix.read_history(),
            ctx.prefix.current_version(),
            running=ctx.shared.get("own_task"),
            steps_done=ctx.shared.get("executed_checks", []),
        )
        for name, layout in ctx.shared.get("drill_layouts", {}).items():
            problems += [
                f"{name}: {p}"
                for p in lifecycle_problems(read_events(layout.events), layout.read_history(), layout.current_version())
            ]
        return self.judge(
            not problems,
            "each task created → approved → executed → completed/failed; matches history and current",
            f"{len(events)} events, {len(problems)} problems",
            reason="; ".join(problems[:10]) or "complete and consistent",
            evidence=[ctx.write_evidence("event_log", events)],
        )


class RetrievalRetentionCheck(IQCheck):
    key = "logs.retrieval"
    area = "logs"
    clause = "002 §6.5.1 c–d"
    title = "events retrievable per task; nothing pruned inside the retention period"
    impact = "incidents inside the retention period cannot be traced"
    fix = "keep PREFIX/logs for the protocol's retention period"

    def run(self, ctx: IQContext) -> CheckResult:
        if ctx.prefix is None or not ctx.prefix.events.exists():
            return self.not_evaluated("no installation prefix with an event log (give --prefix)")
        events = read_events(ctx.prefix.events)
        history = ctx.prefix.read_history()
        task_ids = list(dict.fromkeys(e["task_id"] for e in events))
        per_task_ok = all(all(e["task_id"] == t for e in events if e["task_id"] == t) for t in task_ids)
        first_ok = not history or any(e["task_id"] == history[0]["task_id"] and e["event"] == "created" for e in events)
        observed = {
            "tasks": len(task_ids),
            "first_event": events[0]["time"] if events else None,
            "retention_days": ctx.protocol.logs.retention_days,
            "first_install_in_log": first_ok,
        }
        return self.judge(
            per_task_ok and first_ok,
            "every task retrievable; first install still in the log",
            str(observed),
            data=observed,
        )


def scrape(ctx: IQContext) -> str:
    """The target's /metrics text."""
    import httpx

    assert ctx.target is not None
    resp = httpx.get(ctx.target.rstrip("/") + "/metrics", timeout=10, verify=False)
    resp.raise_for_status()
    return resp.text


class MetricsCheck(IQCheck):
    key = "monitoring.metrics"
    area = "logs"
    clause = "002 §5.4.2, §6.5.2 a"
    title = "the metrics the protocol requires are exposed"
    impact = "success rate, duration and resource use cannot be monitored"
    fix = "expose the named metrics on /metrics"

    def run(self, ctx: IQContext) -> CheckResult:
        if ctx.target is None:
            return self.not_evaluated("no target service (give --target)")
        if not ctx.protocol.required_metrics:
            return self.not_evaluated("the protocol names no required metrics")
        names = metric_names(scrape(ctx))
        missing = [m for m in ctx.protocol.required_metrics if m not in names and m.removesuffix("_total") not in names]
        return self.judge(
            not missing,
            ", ".join(ctx.protocol.required_metrics),
            f"{len(names)} metrics, missing: {', '.join(missing) or 'none'}",
        )


class AlertRulesCheck(IQCheck):
    key = "monitoring.alerts"
    area = "logs"
    clause = "002 §6.5.2 b–c, §6.2.2 g"
    title = "alert rules fire on the injected faults and not before (missed and false alerts counted)"
    impact = "faults go unnoticed or operators learn to ignore alerts"
    fix = "adjust the rule thresholds or add rules for the faults missed"

    def run(self, ctx: IQContext) -> CheckResult:
        before, after = ctx.shared.get("metrics_before"), ctx.shared.get("metrics_after")
        faults = set(ctx.shared.get("faults_injected", []))
        if not ctx.protocol.alert_rules:
            return self.not_evaluated("the protocol has no alert rules")
        if before is None or after is None:
            return self.not_evaluated("no metrics scraped before and after the faults (give --target)")
        rows, missed, false = [], 0, 0
        for rule in ctx.protocol.alert_rules:
            fired_before, fired_after = rule_fires(rule, parse_metrics(before)), rule_fires(rule, parse_metrics(after))
            injected = rule.fault in faults if rule.fault else None
            status = "quiet as expected"
            if fired_before:
                false += 1
                status = "false alert (fired before any fault)"
            elif injected and not fired_after:
                missed += 1
                status = "missed (fault injected, no alert)"
            elif injected:
                status = "fired on its fault"
            elif rule.fault:
                status = "fault not injected in this run"
            rows.append(
                {
                    "rule": rule.name,
                    "fault": rule.fault,
                    "injected": injected,
                    "fired_before": fired_before,
                    "fired_after": fired_after,
                    "status": status,
                }
            )
        evaluated = [r for r in rows if r["injected"] or r["fired_before"]]
        if not evaluated:
            return self.result(
                Verdict.NOT_EVALUATED,
                "—",
                "no rule's fault was injected",
                reason="no rule exercised",
                evidence=[ctx.write_evidence("alerts", rows)],
            )
        return self.judge(
            missed == 0 and false == 0,
            "0 missed, 0 false",
            f"{missed} missed, {false} false",
            evidence=[ctx.write_evidence("alerts", rows)],
            data={"rules": rows, "missed": missed, "false": false},
        )


LOG_CHECKS: list[type[IQCheck]] = [LifecycleLogCheck, RetrievalRetentionCheck, MetricsCheck]

__all__ = [
    "LOG_CHECKS",
    "AlertRulesCheck",
    "LifecycleLogCheck",
    "MetricsCheck",
    "RetrievalRetentionCheck",
    "lifecycle_problems",
    "parse_metrics",
    "rule_fires",
    "scrape",
]
