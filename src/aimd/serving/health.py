"""Readiness of the inference service (``/v2/health/ready``): every dependency it needs is asked, cheaply,
each time readiness is asked — the database (``SELECT 1``) and, when one is configured, the PACS (one
QIDO-RS study search, no repeats) — each within a short timeout, so a load balancer or an IQ drill sees a
stopped dependency at once and by name, while ``/v2/health/live`` keeps answering.

A probe that has not answered within the timeout (a database behind a black hole) is reported as down and
left to finish in its thread; readiness asked again meanwhile reports it still waiting instead of piling
up more probes.

Example
-------
>>> def refused() -> None:
...     raise ConnectionRefusedError("connection refused")
>>> with Readiness({"database": ("serving.db", lambda: None), "PACS": ("http://pacs/dicom-web", refused)}) as r:
...     [(d["dependency"], d["where"]) for d in r.down()]
[('PACS', 'http://pacs/dicom-web')]
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from aimd.core.errors import AimdError

Probe = Callable[[], None]


class Readiness:
    """Named probes (name → (where, probe)); a probe is up when it returns, down when it raises or is slow."""

    def __init__(self, probes: dict[str, tuple[str, Probe]], *, timeout: float = 2.0) -> None:
        self.probes = probes
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(probes)), thread_name_prefix="aimd-ready")
        self._pending: dict[str, Future[None]] = {}

    def down(self) -> list[dict[str, Any]]:
        """Each dependency that does not answer now: its name, where it is, the error and the fix."""
        started: dict[str, Future[None]] = {}
        rows: list[dict[str, Any]] = []
        for name, (_where, probe) in self.probes.items():
            earlier = self._pending.get(name)
            if earlier is not None and not earlier.done():
                rows.append(self._row(name, f"an earlier probe has not answered after {self.timeout:g} s"))
                continue
            started[name] = self._pool.submit(probe)
        wait(started.values(), timeout=self.timeout)
        for name, future in started.items():
            if not future.done():
                self._pending[name] = future
                rows.append(self._row(name, f"no answer within {self.timeout:g} s"))
            elif future.exception() is not None:
                err = future.exception()
                message = err.message if isinstance(err, AimdError) else f"{type(err).__name__}: {err}"
                rows.append(self._row(name, message))
        return rows

    def _row(self, name: str, error: str) -> dict[str, Any]:
        return {
            "dependency": name,
            "where": self.probes[name][0],
            "error": error,
            "hint": f"start the {name} or restore the link to it; the service reconnects by itself",
        }

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Readiness:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


__all__ = ["Readiness"]
