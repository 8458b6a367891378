"""Network faults between the IQ client and the service (002 §6.3.1 b): latency and jitter, a slow link,
connection resets and a black hole, each with its expected behaviour, observed behaviour and verdict.

The faults are injected by :class:`~aimd.iq.faultproxy.FaultProxy` on loopback: the baseline requests go
through it to the real service, and the service is asked directly afterwards whether it is unharmed.
The evidence records whether the kernel has ``netem`` (and why not).

Example
-------
>>> judge_scenario({"expect": "served", "sent": 4, "ok": 4, "wrong": 0, "errors": 0, "hung": 0,
...                 "mean_s": 0.2, "min_success_rate": 1.0, "max_mean_response_s": 1.0, "injected": True,
...                 "recovered": True})
[]
>>> judge_scenario({"expect": "clear_error", "sent": 4, "ok": 2, "wrong": 1, "errors": 1, "hung": 0,
...                 "injected": True, "recovered": True})
['1 wrong answers']
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse

import httpx

from aimd.iq.checks.base import CheckResult, IQCheck, IQContext
from aimd.iq.checks.target import TargetCheck, case_answer, client, listed, send_case
from aimd.iq.faultproxy import FaultProxy, Faults
from aimd.iq.netem import netem_probe
from aimd.iq.specs import NetworkFault

HANG_SLACK_S = 2.0


def judge_scenario(row: dict[str, Any]) -> list[str]:
    """What is wrong with one scenario's observed behaviour (empty when it is as expected)."""
    problems = []
    if not row["injected"]:
        problems.append("the fault was not injected")
    if row["wrong"]:
        problems.append(f"{row['wrong']} wrong answers")
    if row["hung"]:
        problems.append(f"{row['hung']} requests outlived the client timeout")
    if not row["recovered"]:
        problems.append("the service did not answer correctly after the fault")
    if row["expect"] == "served":
        rate = row["ok"] / row["sent"]
        if rate < row["min_success_rate"]:
            problems.append(f"success {rate:.2f} < {row['min_success_rate']}")
        limit = row.get("max_mean_response_s")
        if limit is not None and (row["mean_s"] is None or row["mean_s"] > limit):
            problems.append(f"mean {row['mean_s']} s > {limit} s")
    return problems


def _through(ctx: IQContext, proxy_url: str, fault: NetworkFault) -> dict[str, Any]:
    cases = ctx.protocol.baseline.cases
    times, ok, wrong, errors, hung, kinds = [], 0, 0, 0, 0, {}
    with client(ctx, proxy_url, timeout=fault.timeout_s, fresh=True) as http:  # faults are per connection
        for i in range(fault.requests):
            case = cases[i % len(cases)]
            start = time.perf_counter()
            try:
                resp = send_case(http, ctx, case)
            except httpx.HTTPError as err:
                errors += 1
                kinds[type(err).__name__] = kinds.get(type(err).__name__, 0) + 1
                hung += time.perf_counter() - start > fault.timeout_s + HANG_SLACK_S
                continue
            seconds = time.perf_counter() - start
            answer = case_answer(ctx, resp)
            if resp.status_code < 300 and (answer == case.reference or not ctx.protocol.baseline.answer_field):
                ok += 1
                times.append(seconds)
            elif resp.status_code < 300:
                wrong += 1
            else:
                errors += 1
                kinds[f"HTTP {resp.status_code}"] = kinds.get(f"HTTP {resp.status_code}", 0) + 1
    return {
        "sent": fault.requests,
        "ok": ok,
        "wrong": wrong,
        "errors": errors,
        "error_kinds": kinds,
        "hung": hung,
        "mean_s": round(sum(times) / len(times), 4) if times else None,
        "max_s": round(max(times), 4) if times else None,
    }


def _direct(ctx: IQContext) -> tuple[bool, float]:
    """One baseline case straight to the service: answered correctly?, seconds."""
    case = ctx.protocol.baseline.cases[0]
    start = time.perf_counter()
    try:
        with client(ctx) as http:
            resp = send_case(http, ctx, case)
    except httpx.HTTPError:
        return False, time.perf_counter() - start
    good = resp.status_code < 300 and (
        not ctx.protocol.baseline.answer_field or case_answer(ctx, resp) == case.reference
    )
    return good, time.perf_counter() - start


class NetworkFaultCheck(TargetCheck):
    key = "reliability.network"
    area = "reliability"
    clause = "002 §6.3.1 b"
    title = "network faults (latency and jitter, slow link, resets, black hole): served correctly or a clear error"
    impact = "a poor or broken network makes the device hang, answer wrongly or fall over"
    fix = "set client and server timeouts, retry idempotent calls, and keep the service up when clients vanish"

    def check(self, ctx: IQContext) -> CheckResult:
        faults = ctx.protocol.network_faults
        if not faults:
            return self.not_evaluated("the protocol declares no network-fault scenario")
        if not ctx.protocol.baseline.cases:
            return self.not_evaluated("no typical task to send through the faults: the baseline has no cases")
        assert ctx.target is not None
        parsed = urlparse(ctx.target)
        upstream = (parsed.hostname or "127.0.0.1", parsed.port or (443 if parsed.scheme == "https" else 80))
        netem = netem_probe()
        rows = []
        for fault in faults:
            spec = Faults(
                latency_ms=fault.latency_ms,
                jitter_ms=fault.jitter_ms,
                bandwidth_kbps=fault.bandwidth_kbps,
                reset_rate=fault.reset_rate,
                drop_rate=fault.drop_rate,
                seed=fault.seed,
            )
            with FaultProxy(upstream, spec, hold_s=fault.timeout_s + 1) as proxy:
                observed = _through(ctx, f"{parsed.scheme}://127.0.0.1:{proxy.port}", fault)
                stats = dict(proxy.stats)
            recovered, direct_s = _direct(ctx)
            row = {
                "scenario": fault.name,
                "faults": {k: v for k, v in vars(spec).items() if v},
                "expect": fault.expect,
                "min_success_rate": fault.min_success_rate,
                "max_mean_response_s": fault.max_mean_response_s,
                **observed,
                "proxy": stats,
                "injected": spec.seen_in(stats),
                "recovered": recovered,
                "direct_after_s": round(direct_s, 4),
            }
            row["problems"] = judge_scenario(row)
            rows.append(row)
        bad = [f"{r['scenario']} ({'; '.join(r['problems'])})" for r in rows if r["problems"]]
        data = {"backend": "userspace TCP proxy (aimd.iq.faultproxy)", "netem": netem, "scenarios": rows}
        return self.judge(
            not bad,
            "; ".join(f"{f.name}: {f.expect.replace('_', ' ')}" for f in faults),
            "; ".join(
                f"{r['scenario']}: {r['ok']}/{r['sent']} ok, {r['errors']} errors, {r['wrong']} wrong, "
                f"mean {r['mean_s']} s" + ("" if r["recovered"] else ", NOT recovered")
                for r in rows
            ),
            reason=listed("not as expected", bad, "every scenario as expected", sep="; "),
            evidence=[ctx.write_evidence("network_faults", data)],
            data=data,
        )


NETWORK_CHECKS: list[type[IQCheck]] = [NetworkFaultCheck]

__all__ = ["NETWORK_CHECKS", "NetworkFaultCheck", "judge_scenario"]
