"""Performance against a running target (002 §4.3.2, §6.4): baseline cases with accuracy, concurrency, step-up stress.

Example
-------
>>> [c.key for c in PERFORMANCE_CHECKS]
['performance.baseline', 'performance.concurrency', 'performance.stress']
"""

from __future__ import annotations

import time
from typing import Any

import psutil

from aimd.iq.checks.base import CheckResult, IQCheck, IQContext
from aimd.iq.checks.environment import listening_process
from aimd.iq.checks.target import TargetCheck, accuracy_ci, baseline_request, case_answer, client, send_case
from aimd.iq.load import load_test


class BaselineCheck(TargetCheck):
    key = "performance.baseline"
    area = "performance"
    clause = "002 §4.3.2 a, d, §6.1.3 b"
    title = "time per baseline case and accuracy against the validated reference results"
    impact = "the device answers too slowly or wrongly at this site"
    fix = "analyse the slow or wrong cases; adjust resources or acceptance only with the provider"
    critical = True

    def check(self, ctx: IQContext) -> CheckResult:
        spec = ctx.protocol.baseline
        if not spec.cases:
            return self.not_evaluated("the protocol's baseline has no cases with reference results")
        rows = []
        with client(ctx) as http:
            for case in spec.cases:
                start = time.perf_counter()
                resp = send_case(http, ctx, case)
                seconds = time.perf_counter() - start
                answer = case_answer(ctx, resp)
                rows.append(
                    {
                        "id": case.id,
                        "status": resp.status_code,
                        "seconds": round(seconds, 4),
                        "answer": answer,
                        "reference": case.reference,
                        "correct": answer == case.reference,
                    }
                )
        mean_s = sum(r["seconds"] for r in rows) / len(rows)
        correct = sum(r["correct"] for r in rows)
        acc, low, high = accuracy_ci(correct, len(rows))
        problems = []
        if mean_s > spec.max_mean_seconds_per_case:
            problems.append(f"mean {mean_s:.3f} s > {spec.max_mean_seconds_per_case} s")
        if spec.min_accuracy is not None and acc < spec.min_accuracy:
            problems.append(f"accuracy {acc:.3f} < {spec.min_accuracy}")
        data = {"cases": rows, "mean_seconds": mean_s, "accuracy": acc, "accuracy_ci95": [low, high]}
        return self.judge(
            not problems,
            f"mean ≤ {spec.max_mean_seconds_per_case} s; accuracy ≥ {spec.min_accuracy}",
            f"mean {mean_s:.3f} s; accuracy {acc:.3f} (95 % CI {low:.3f}–{high:.3f}, n={len(rows)})",
            reason="; ".join(problems) or "within limits",
            evidence=[ctx.write_evidence("baseline_cases", data)],
            data=data,
        )


class ConcurrencyCheck(TargetCheck):
    key = "performance.concurrency"
    area = "performance"
    clause = "002 §4.3.2 b–c, §5.3.1, §5.3.2, §6.4.1"
    title = "concurrent users: success rate, mean response, CPU and memory during the task"
    impact = "simultaneous users see errors or slow answers; the server overloads"
    fix = "add workers or hardware; tune batching"

    def check(self, ctx: IQContext) -> CheckResult:
        spec = ctx.protocol.baseline
        if not spec.cases:
            return self.not_evaluated("no typical task: the protocol's baseline has no cases")
        users = spec.concurrency_users
        per_user = max(1, spec.concurrency_requests // users)
        proc = listening_process(ctx.target or "")
        stats = load_test(
            ctx.target or "",
            spec.endpoint,
            users=users,
            per_user=per_user,
            token=ctx.token,
            pid=proc.pid if proc else None,
            timeout=max(30.0, 3 * spec.max_mean_response_s),
            max_seconds=300.0,
            **baseline_request(ctx),
        )
        problems = []
        if stats["success_rate"] < spec.min_success_rate:
            problems.append(f"success {stats['success_rate']:.3f} < {spec.min_success_rate}")
        if stats["mean_s"] is None or stats["mean_s"] > spec.max_mean_response_s:
            problems.append(f"mean {stats['mean_s']} s > {spec.max_mean_response_s} s")
        machine_cpu = stats.get("cpu_percent_max", 0) / (psutil.cpu_count() or 1)
        if machine_cpu > spec.max_cpu_percent:
            problems.append(f"CPU {machine_cpu:.0f} % of the machine > {spec.max_cpu_percent} %")
        if stats.get("rss_mb_max", 0) > spec.max_memory_mb:
            problems.append(f"memory {stats['rss_mb_max']:.0f} MB > {spec.max_memory_mb} MB")
        observed = (
            f"{stats['requests']} requests by {users} users: success {stats['success_rate']:.3f}, "
            f"mean {stats['mean_s'] or 0:.3f} s, p95 {stats['p95_s'] or 0:.3f} s"
            + (
                f", CPU max {stats['cpu_percent_max']:.0f} %, RSS max {stats['rss_mb_max']:.0f} MB"
                if "cpu_percent_max" in stats
                else ", target process not visible"
            )
        )
        return self.judge(
            not problems,
            f"success ≥ {spec.min_success_rate}, mean ≤ {spec.max_mean_response_s} s",
            observed,
            reason="; ".join(problems) or "within limits",
            evidence=[ctx.write_evidence("concurrency", stats)],
            data={k: v for k, v in stats.items() if k != "resource_samples"},
        )


class StressCheck(TargetCheck):
    key = "performance.stress"
    area = "performance"
    clause = "002 §6.4.2 a–d"
    title = "step-up stress: maximum concurrency, response per level, throughput, error rate"
    impact = "the device fails below the concurrency it is specified for"
    fix = "scale the service or lower the declared concurrency with the provider"

    def check(self, ctx: IQContext) -> CheckResult:
        spec = ctx.protocol.stress
        if not ctx.protocol.baseline.cases:
            return self.not_evaluated("no typical task: the protocol's baseline has no cases")
        levels = spec.levels if ctx.profile == "full" else spec.levels[: max(2, len(spec.levels) - 1)]
        rows, max_ok = [], 0
        for users in levels:
            s = load_test(
                ctx.target or "",
                ctx.protocol.baseline.endpoint,
                users=users,
                per_user=spec.requests_per_user,
                token=ctx.token,
                timeout=max(30.0, 3 * spec.p95_limit_s),
                max_seconds=300.0,
                **baseline_request(ctx),
            )
            error_rate = 1 - s["success_rate"]
            within = s["p95_s"] is not None and s["p95_s"] <= spec.p95_limit_s and error_rate <= spec.max_error_rate
            rows.append(
                {
                    "users": users,
                    "mean_s": s["mean_s"],
                    "p95_s": s["p95_s"],
                    "error_rate": error_rate,
                    "throughput_rps": s["throughput_rps"],
                    "within_limits": within,
                }
            )
            if not within:
                break
            max_ok = users
        figure = _plot_stress(ctx, rows, spec.p95_limit_s)
        return self.judge(
            max_ok >= spec.expected_max_concurrency,
            f"maximum concurrency ≥ {spec.expected_max_concurrency} (p95 ≤ {spec.p95_limit_s} s, "
            f"errors ≤ {spec.max_error_rate})",
            f"maximum concurrency {max_ok} of levels {levels}",
            evidence=[ctx.write_evidence("stress", rows), figure],
            data={"levels": rows, "max_concurrency": max_ok},
        )


def _plot_stress(ctx: IQContext, rows: list[dict[str, Any]], limit: float) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aimd.core.atomic import atomic_file

    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3))
    users = [r["users"] for r in rows]
    a.plot(users, [r["mean_s"] or 0 for r in rows], marker="o", label="mean")
    a.plot(users, [r["p95_s"] or 0 for r in rows], marker="o", label="p95")
    a.axhline(limit, color="grey", linestyle="--", label="p95 limit")
    a.set_xlabel("concurrent users")
    a.set_ylabel("response (s)")
    a.legend(fontsize=7)
    b.plot(users, [r["throughput_rps"] for r in rows], marker="o", color="green")
    b.set_xlabel("concurrent users")
    b.set_ylabel("throughput (req/s)")
    fig.tight_layout()
    path = ctx.evidence_dir / "stress.png"
    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path.relative_to(ctx.out).as_posix()


PERFORMANCE_CHECKS: list[type[IQCheck]] = [BaselineCheck, ConcurrencyCheck, StressCheck]

__all__ = ["PERFORMANCE_CHECKS", "BaselineCheck", "ConcurrencyCheck", "StressCheck"]
