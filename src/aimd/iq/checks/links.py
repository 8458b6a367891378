"""Faults on the service's own links to its PACS and its database (002 §6.3.1 b, §6.5.2 b–c).

``aimd serve`` is started with the site's model and options and with ``--pacs`` / ``--db`` pointing at a
:class:`~aimd.iq.faultproxy.FaultProxy` in front of the real PACS and database (and, where the kernel has
``netem``, through a veth pair in a namespace of the run's own, see :mod:`aimd.iq.netem`). Each scenario
of ``links.faults`` puts its fault on one link — a cut (all connections refused, open ones severed; for
``cut_s`` seconds only: a brief outage), latency and jitter, a share of connections reset or stalled,
packet loss — sends the typical task (synchronously or as a job) and records the expected behaviour, the
observed one and the verdict; afterwards the link is restored and the service must serve again. The
site's alert rules for ``pacs_link`` / ``database_link`` are evaluated on the service's metrics over each
scenario: missed and false alerts counted. A SQLite database has no network link: its scenarios are
"not applicable"; packet loss without ``netem`` is "not evaluated" with the kernel's reason.

Example
-------
>>> row = {"expect": "clear_error", "link": "pacs", "results": [{"status": 502, "error": "PACS unreachable"}],
...        "alive": True, "recovered": True, "attempts": 1, "requests": 1, "alerts_missed": [], "false_alerts": []}
>>> judge_link(row)
['the service did not try the PACS again (1 connections for 1 requests)']
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

from aimd.iq.checks.base import CheckResult, IQCheck, IQContext, Verdict, listed
from aimd.iq.checks.environment import release_python
from aimd.iq.checks.logs import parse_metrics, rule_fires
from aimd.iq.faultproxy import FaultProxy, Faults
from aimd.iq.linkdrill import DrillService, database_link, proxied_url, send, upstream_of
from aimd.iq.netem import NetemLink, netem_probe
from aimd.iq.specs import LinkFault

LINK_WORDS = {"pacs": ("pacs",), "database": ("database",)}
COUNTERS = ("_total", "_count", "_sum", "_bucket")


def window(before: str, after: str) -> list[tuple[str, dict[str, str], float]]:
    """Samples over a scenario: counters as their increase, gauges as their last value."""
    start = {(n, tuple(sorted(lab.items()))): v for n, lab, v in parse_metrics(before)}
    out = []
    for name, labels, value in parse_metrics(after):
        if name.endswith(COUNTERS):
            value -= start.get((name, tuple(sorted(labels.items()))), 0.0)
        out.append((name, labels, value))
    return out


def judge_link(row: dict[str, Any]) -> list[str]:
    """What is wrong with one scenario's observed behaviour (empty when it is as expected)."""
    problems = [] if row.get("injected", True) else ["the fault was not injected"]
    results = row["results"]
    if hung := sum(bool(r.get("hung")) for r in results):
        problems.append(f"{hung} requests hung past the client timeout")
    if row["expect"] == "served":
        failed = [r for r in results if r.get("status") != 200]
        if failed:
            problems.append(f"{len(failed)} of {len(results)} not served ({failed[0].get('error', '')[:120]})")
        if wrong := sum(r.get("status") == 200 and r.get("wrong", False) for r in results):
            problems.append(f"{wrong} wrong answers")
        limit, mean = row.get("max_mean_response_s"), row.get("mean_s")
        if limit is not None and mean is not None and mean > limit:
            problems.append(f"mean {mean} s > {limit} s")
    else:
        unclear = [r for r in results if not r.get("hung") and not clear_error(row["link"], r)]
        if unclear:
            r = unclear[0]
            problems.append(
                f"{len(unclear)} answers not a clear error naming the {row['link']} "
                f"(HTTP {r.get('status')}, Retry-After {r.get('retry_after')}: {str(r.get('error', ''))[:120]})"
            )
        if row["link"] == "pacs" and row["attempts"] <= row["requests"]:
            problems.append(
                f"the service did not try the PACS again ({row['attempts']} connections for {row['requests']} requests)"
            )
    if not row["alive"]:
        problems.append("the service died")
    if not row["recovered"]:
        problems.append("the service did not serve again after the fault was lifted")
    problems += [f"alert {name} missed" for name in row["alerts_missed"]]
    problems += [f"false alert {name}" for name in row["false_alerts"]]
    return problems


def clear_error(link: str, answer: dict[str, Any]) -> bool:
    """A PACS fault: a 5xx naming the PACS; a database fault: a 503 naming the database, with Retry-After.

    Example
    -------
    >>> clear_error("database", {"status": 503, "retry_after": "5", "error": "the database is unreachable"})
    True
    >>> clear_error("database", {"status": 500, "error": "Internal Server Error"})
    False
    """
    status = answer.get("status") or 0
    named = any(w in f"{answer.get('error', '')} {answer.get('where', '')}".lower() for w in LINK_WORDS[link])
    if link == "database":
        return status == 503 and named and bool(answer.get("retry_after"))
    return status >= 500 and named and (status != 503 or bool(answer.get("retry_after")))


def proxy_faults(fault: LinkFault) -> Faults:
    """The TCP-level part of a link fault, for the proxy."""
    keep = ("latency_ms", "jitter_ms", "reset_rate", "drop_rate", "cut", "seed")
    return Faults(**{k: getattr(fault, k) for k in keep})


class _Links:
    """The fault injectors on the service's links (a proxy each; a netem link in front where available)."""

    def __init__(self, stack: contextlib.ExitStack, ctx: IQContext, netem: dict[str, Any] | None) -> None:
        spec = ctx.protocol.links
        assert spec is not None
        self.proxies: dict[str, FaultProxy] = {}
        self.netem: dict[str, NetemLink] = {}
        self.urls: dict[str, str | None] = {"pacs": None, "database": None}
        for n, (link, url) in enumerate((("pacs", spec.pacs_url), ("database", spec.database_url))):
            if not url or (link == "database" and database_link(url)):
                continue
            proxy = stack.enter_context(FaultProxy(upstream_of(url), Faults(), hold_s=30))
            self.proxies[link] = proxy
            host, port = "127.0.0.1", proxy.port
            if netem and netem["available"]:
                net = stack.enter_context(NetemLink(("127.0.0.1", proxy.port), link[0], n))
                self.netem[link] = net
                host, port = net.address
            self.urls[link] = proxied_url(url, port, host)

    def apply(self, fault: LinkFault) -> None:
        self.proxies[fault.link].set_faults(proxy_faults(fault), sever=bool(fault.reset_rate or fault.drop_rate))
        if fault.loss_pct:
            self.netem[fault.link].set(loss_pct=fault.loss_pct)

    def lift(self, link: str) -> None:
        self.proxies[link].set_faults(Faults())
        if link in self.netem:
            self.netem[link].set()

    def stats(self, link: str) -> dict[str, int]:
        return dict(self.proxies[link].stats)


def _skip_reason(fault: LinkFault, links: _Links, ctx: IQContext, netem: dict[str, Any] | None) -> str | None:
    spec = ctx.protocol.links
    assert spec is not None
    if fault.link == "database" and (why := database_link(spec.database_url)):
        return why
    if fault.link == "pacs" and not spec.pacs_url:
        return "not applicable: the service is configured without a PACS"
    if fault.loss_pct and not (netem and netem["available"]):
        return f"not evaluated: packet loss needs tc netem, which failed here: {netem['reason'] if netem else '—'}"
    return None


class LinkFaultCheck(IQCheck):
    key = "reliability.links"
    area = "reliability"
    clause = "002 §6.3.1 b, §6.5.2 b–c"
    title = "faults on the service's PACS and database links: ridden out or a clear error, recovery, alerts fire"
    impact = "a PACS or database link that breaks or slows down hangs the device, loses work or goes unnoticed"
    fix = "retry transient PACS faults with backoff, answer 503 with Retry-After naming the dependency, alert on it"

    def run(self, ctx: IQContext) -> CheckResult:
        spec = ctx.protocol.links
        if spec is None:
            return self.not_evaluated("the protocol declares no drill of the service's links (links:)")
        case = next((c.file for c in ctx.protocol.baseline.cases if c.file), None)
        if not spec.pacs_url and case is None:
            return self.not_evaluated("no typical task: links has no pacs_url and the baseline no case file")
        netem = netem_probe() if any(f.loss_pct for f in spec.faults) else None
        rules = [r for r in ctx.protocol.alert_rules if r.fault in ("pacs_link", "database_link")]
        rows: list[dict[str, Any]] = []
        with contextlib.ExitStack() as stack:
            links = _Links(stack, ctx, netem)
            svc = stack.enter_context(
                DrillService(
                    spec,
                    ctx.scratch("links"),
                    pacs_url=links.urls["pacs"],
                    database_url=links.urls["database"] or spec.database_url,
                    case=case,
                    python=release_python(ctx),
                    account=ctx.prefix.service_account() if ctx.prefix is not None else None,
                    config=_install_config(ctx),
                )
            )
            ctx.shared["links_service_runs_as"] = svc.runs_as
            clean = send(svc, timeout_s=120)
            if clean.get("status") != 200:
                return self.judge(
                    False, "the typical task served with no fault", f"clean run: {clean}", reason="clean run failed"
                )
            idle = svc.metrics()
            false_before = [r.name for r in rules if rule_fires(r, parse_metrics(idle))]
            for fault in spec.faults:
                if why := _skip_reason(fault, links, ctx, netem):
                    rows.append({"scenario": fault.name, "link": fault.link, "verdict": "not_evaluated", "why": why})
                    continue
                rows.append(self._scenario(ctx, svc, links, fault, clean.get("answer"), rules))
        return self._verdict(ctx, rows, rules, false_before, netem)

    def _scenario(
        self, ctx: IQContext, svc: DrillService, links: _Links, fault: LinkFault, reference: Any, rules: list
    ) -> dict[str, Any]:
        spec = ctx.protocol.links
        assert spec is not None
        before, stats = svc.metrics(), links.stats(fault.link)
        links.apply(fault)
        timer = threading.Timer(fault.cut_s, links.lift, args=(fault.link,)) if fault.cut_s else None
        if timer is not None:
            timer.start()
        try:
            results = [
                send(svc, timeout_s=fault.timeout_s, prefer_async=fault.mode == "async") for _ in range(fault.requests)
            ]
        finally:
            if timer is not None:
                timer.cancel()
            links.lift(fault.link)
        stats = {k: v - stats[k] for k, v in links.stats(fault.link).items()}
        for r in results:
            r["wrong"] = r.get("status") == 200 and spec.answer_field is not None and r.get("answer") != reference
        samples = window(before, svc.metrics())
        mine = [r for r in rules if r.fault == fault.fault_key]
        fired = [r.name for r in mine if rule_fires(r, samples)]
        alive = svc.alive()
        recovered, deadline = False, time.monotonic() + spec.recover_within_s
        while alive and not recovered and time.monotonic() < deadline:
            again = send(svc, timeout_s=60)
            recovered = again.get("status") == 200 and (spec.answer_field is None or again.get("answer") == reference)
            if not recovered:
                time.sleep(1.0)
        times = [r["seconds"] for r in results if r.get("status") == 200 and "seconds" in r]
        row = {
            "scenario": fault.name,
            "link": fault.link,
            "fault": {k: v for k, v in fault.model_dump().items() if v and k not in ("name", "link", "expect")},
            "expect": fault.expect,
            "expected": _expected(fault),
            "requests": fault.requests,
            "results": results,
            "mean_s": round(sum(times) / len(times), 3) if times else None,
            "max_mean_response_s": fault.max_mean_response_s,
            "attempts": stats["connections"],
            "proxy": stats,
            "injected": proxy_faults(fault).seen_in(stats) and (not fault.loss_pct or fault.link in links.netem),
            "alive": alive,
            "recovered": recovered,
            "alert_expected": fault.alert_expected,
            "alerts_fired": fired,
            "alerts_missed": [r.name for r in mine if r.name not in fired] + ([] if mine else ["(no rule)"])
            if fault.alert_expected
            else [],
            "false_alerts": [] if fault.alert_expected else fired,
        }
        row["problems"] = judge_link(row)
        row["verdict"] = "fail" if row["problems"] else "pass"
        row["observed"] = _observed(row)
        return row

    def _verdict(self, ctx: IQContext, rows: list, rules: list, false_before: list, netem: Any) -> CheckResult:
        ran = [r for r in rows if r["verdict"] != "not_evaluated"]
        missed = sum(len(r["alerts_missed"]) for r in ran)
        false = len(false_before) + sum(len(r["false_alerts"]) for r in ran)
        data = {
            "backend": "userspace TCP proxy (aimd.iq.faultproxy)"
            + (" behind tc netem" if netem and netem["available"] else ""),
            "netem": netem,
            "service_runs_as": ctx.shared.get("links_service_runs_as"),
            "scenarios": rows,
            "alerts": {
                "rules": [r.name for r in rules],
                "missed": missed,
                "false": false,
                "false_before": false_before,
            },
        }
        evidence = [ctx.write_evidence("link_faults", data)]
        if not ran:
            return self.result(
                Verdict.NOT_EVALUATED, "—", "; ".join(f"{r['scenario']}: {r['why']}" for r in rows), evidence=evidence
            )
        bad = [f"{r['scenario']} ({'; '.join(r['problems'])})" for r in ran if r["problems"]]
        if false_before:
            bad.append(f"alerts firing before any fault: {', '.join(false_before)}")
        skipped = [f"{r['scenario']}: {r['why']}" for r in rows if r["verdict"] == "not_evaluated"]
        return self.judge(
            not bad,
            "; ".join(f"{r['scenario']}: {r['expected']}" for r in ran),
            "; ".join(f"{r['scenario']}: {r['observed']}" for r in ran)
            + f"; alerts {missed} missed, {false} false"
            + (f"; {'; '.join(skipped)}" if skipped else ""),
            reason=listed("not as expected", bad, "every scenario as expected", sep="; "),
            evidence=evidence,
            data=data,
        )


def _install_config(ctx: IQContext) -> Path | None:
    """The installed release's settings file (``config/aimd.toml`` of the prefix), when there is one."""
    path = ctx.prefix.config / "aimd.toml" if ctx.prefix is not None else None
    return path if path is not None and path.is_file() else None


def _expected(fault: LinkFault) -> str:
    if fault.expect == "served":
        how = "jobs completed" if fault.mode == "async" else "answered"
        return f"{how} correctly (retries bridge the fault)" + ("; no alert" if not fault.alert_expected else "")
    answer = (
        "retried with backoff, then a 5xx naming the PACS"
        if fault.link == "pacs"
        else "a 503 with Retry-After naming the database"
    )
    return f"{answer} within {fault.timeout_s:g} s; serves again after; alert fires"


def _observed(row: dict[str, Any]) -> str:
    codes: dict[str, int] = {}
    for r in row["results"]:
        key = str(r.get("status") or r.get("error", "no answer")[:30])
        codes[key] = codes.get(key, 0) + 1
    mean = f", mean {row['mean_s']} s" if row["mean_s"] is not None else ""
    return (
        f"{', '.join(f'{n}× {c}' for c, n in codes.items())}{mean}, {row['attempts']} new connections, "
        f"alerts {', '.join(row['alerts_fired']) or 'none'}"
        + ("" if row["injected"] else ", fault NOT injected")
        + ("" if row["recovered"] else ", NOT recovered")
    )


LINK_CHECKS: list[type[IQCheck]] = [LinkFaultCheck]

__all__ = ["LINK_CHECKS", "LinkFaultCheck", "judge_link", "window"]
