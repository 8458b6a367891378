"""Load generation with Locust as a library (002 §4.3.2 b–c, §6.4.2), run in its own process.

Locust patches the standard library with gevent when imported, so :func:`load_test` starts
``python -m aimd.iq.load`` and samples the target process's CPU and memory with psutil while the
users run; the child prints Locust's statistics as JSON. Traffic goes only to the URL given.

Example
-------
>>> summarise([0.1, 0.2, 0.3, 0.4], failures=0)["p95_s"]
0.4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np
import psutil


def summarise(times_s: list[float], failures: int) -> dict[str, Any]:
    """Mean and p95 response time, success rate of a list of response times."""
    n = len(times_s) + failures
    arr = np.asarray(times_s, dtype=float)
    return {
        "requests": n,
        "failures": failures,
        "success_rate": (len(times_s) / n) if n else 0.0,
        "mean_s": float(arr.mean()) if arr.size else None,
        "p95_s": float(np.quantile(arr, 0.95, method="higher")) if arr.size else None,
    }


def _child(args: argparse.Namespace) -> None:  # pragma: no cover - runs in the subprocess
    import gevent
    from locust import HttpUser, constant, events, task
    from locust.env import Environment
    from locust.exception import StopUser

    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    body = json.loads(args.body) if args.body else None
    upload = None
    if args.file:
        with open(args.file, "rb") as handle:
            upload = {args.field: (os.path.basename(args.file), handle.read())}
    times: list[float] = []
    failures = [0]

    @events.request.add_listener
    def _on_request(response_time: float, exception: Exception | None, **_: Any) -> None:
        if exception is None:
            times.append(response_time / 1000.0)
        else:
            failures[0] += 1

    class Client(HttpUser):
        wait_time = constant(0)
        host = args.url

        def on_start(self) -> None:
            self.done = 0

        @task
        def call(self) -> None:
            if self.done >= args.per_user:
                raise StopUser()
            self.done += 1
            with self.client.request(
                args.method,
                args.path,
                json=body,
                files=upload,
                headers=headers,
                name=args.path,
                timeout=args.timeout,
                catch_response=True,
                verify=False,
            ) as resp:
                if resp.status_code >= 400 or resp.status_code == 0:
                    resp.failure(f"HTTP {resp.status_code}")

    env = Environment(user_classes=[Client], events=events)
    runner = env.create_local_runner()
    start = time.perf_counter()
    runner.start(args.users, spawn_rate=args.users)
    deadline = start + args.max_seconds
    expected = args.users * args.per_user
    while len(times) + failures[0] < expected and time.perf_counter() < deadline:
        gevent.sleep(0.05)
    elapsed = time.perf_counter() - start
    runner.quit()
    out = summarise(times, failures[0])
    out.update(
        users=args.users,
        seconds=elapsed,
        throughput_rps=(len(times) / elapsed) if elapsed else 0.0,
        timed_out=len(times) + failures[0] < expected,
    )
    print(json.dumps(out))


def load_test(
    url: str,
    path: str,
    *,
    users: int,
    per_user: int,
    method: str = "GET",
    body: dict[str, Any] | None = None,
    token: str | None = None,
    pid: int | None = None,
    max_seconds: float = 120.0,
    timeout: float = 30.0,
    file: str | None = None,
    field: str = "files",
) -> dict[str, Any]:
    """Run ``users`` concurrent Locust users doing ``per_user`` requests each; sample the target's resources."""
    cmd = [
        sys.executable,
        "-m",
        "aimd.iq.load",
        "--url",
        url,
        "--path",
        path,
        "--users",
        str(users),
        "--per-user",
        str(per_user),
        "--method",
        method,
        "--max-seconds",
        str(max_seconds),
        "--timeout",
        str(timeout),
    ]
    if body is not None:
        cmd += ["--body", json.dumps(body)]
    if token:
        cmd += ["--token", token]
    if file:
        cmd += ["--file", str(file), "--field", field]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    target = psutil.Process(pid) if pid else None
    samples = []
    if target is not None:
        target.cpu_percent(None)
    while proc.poll() is None:
        time.sleep(0.2)
        if target is not None and target.is_running():
            with target.oneshot():
                samples.append({"cpu_percent": target.cpu_percent(None), "rss_mb": target.memory_info().rss / 2**20})
    out, err = proc.communicate()
    if proc.returncode != 0 or not out.strip():
        raise RuntimeError(f"load generator failed: {err.strip().splitlines()[-1] if err.strip() else proc.returncode}")
    stats = json.loads(out.strip().splitlines()[-1])
    stats["resource_samples"] = samples
    if samples:
        stats["cpu_percent_max"] = max(s["cpu_percent"] for s in samples)
        stats["rss_mb_max"] = max(s["rss_mb"] for s in samples)
    return stats


def main() -> None:  # pragma: no cover - subprocess entry
    parser = argparse.ArgumentParser(description="aimd IQ load generator (Locust)")
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--per-user", type=int, required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default=None)
    parser.add_argument("--token", default=None)
    parser.add_argument("--file", default=None)
    parser.add_argument("--field", default="files")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--timeout", type=float, default=30.0)
    _child(parser.parse_args())


if __name__ == "__main__":  # pragma: no cover
    main()
