"""What every check against a running target shares: the HTTP client, the typical task, probing a route.

Example
-------
>>> fill_path("/jobs/{job_id}/result")
'/jobs/1/result'
>>> accuracy_ci(9, 10)[0]
0.9
"""

from __future__ import annotations

import re
from abc import abstractmethod
from pathlib import Path
from typing import Any

import httpx
from scipy.stats import binomtest

from aimd.iq.checks.base import CheckResult, IQCheck, IQContext, listed

DENIED = (401, 403)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def fill_path(path: str) -> str:
    """An OpenAPI path with every ``{parameter}`` replaced by ``1``."""
    return re.sub(r"\{[^}]+\}", "1", path)


def accuracy_ci(correct: int, n: int) -> tuple[float, float, float]:
    """Accuracy with its 95 % Wilson interval."""
    ci = binomtest(correct, n).proportion_ci(0.95, method="wilson")
    return correct / n, float(ci.low), float(ci.high)


def client(ctx: IQContext, base: str | None = None, *, timeout: float = 30, fresh: bool = False) -> httpx.Client:
    """An HTTP client for the target (certificates of a site CA are the site's concern: not verified here);
    ``fresh`` opens a new connection for every request."""
    url = base or ctx.target
    assert url is not None
    limits = httpx.Limits(max_keepalive_connections=0) if fresh else httpx.Limits()
    return httpx.Client(base_url=url.rstrip("/"), timeout=timeout, verify=False, follow_redirects=False, limits=limits)


def auth_headers(token: str | None) -> dict[str, str]:
    """The bearer header for ``token`` (none without one)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def probe(http: httpx.Client, method: str, path: str, *, label: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Send one request and record it as an evidence row: what was tried, the status, whether it was refused."""
    try:
        status: int | None = http.request(method, path, **kwargs).status_code
    except httpx.HTTPError as err:
        status, kwargs["error"] = None, f"{type(err).__name__}: {err}"
    return {
        "try": label or f"{method} {path}",
        "method": method,
        "path": path,
        "status": status,
        "refused": status in DENIED,
        **({"error": kwargs["error"]} if "error" in kwargs else {}),
    }


def answer_of(doc: Any, field: str) -> str | None:
    """The value at a dotted path of a JSON answer; ``#`` gives a list's length.

    Example
    -------
    >>> answer_of({"findings": [{"grade": "high"}, {}]}, "findings.#"), answer_of({"a": {"b": 1}}, "a.b")
    ('2', '1')
    """
    for part in field.split("."):
        if part == "#" and isinstance(doc, list):
            doc = len(doc)
        elif isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return str(doc)


def baseline_request(ctx: IQContext) -> dict[str, Any]:
    """Method and body (or uploaded file) of a typical task: the first baseline case (GET without cases)."""
    cases = ctx.protocol.baseline.cases
    if cases and cases[0].file:
        return {"method": "POST", "body": None, "file": cases[0].file, "field": ctx.protocol.baseline.upload_field}
    body = cases[0].request if cases and cases[0].request else None
    return {"method": "POST" if body else "GET", "body": body}


def send_case(http: httpx.Client, ctx: IQContext, case: Any) -> httpx.Response:
    """Send one baseline case to the baseline endpoint (uploaded file, JSON body, or a plain GET)."""
    spec = ctx.protocol.baseline
    headers = auth_headers(ctx.token)
    if case.file:
        path = Path(case.file)
        with open(path, "rb") as handle:
            return http.post(spec.endpoint, files={spec.upload_field: (path.name, handle.read())}, headers=headers)
    if case.request:
        return http.post(spec.endpoint, json=case.request, headers=headers)
    return http.get(spec.endpoint, headers=headers)


def case_answer(ctx: IQContext, resp: httpx.Response) -> str | None:
    """The answer of a baseline response compared with the reference (``None`` for an error answer)."""
    field = ctx.protocol.baseline.answer_field
    if resp.status_code >= 300 or not field:
        return None
    try:
        return answer_of(resp.json(), field)
    except ValueError:
        return None


def openapi_routes(ctx: IQContext, base: str | None = None) -> list[tuple[str, str]]:
    """(method, path) of every operation in the target's OpenAPI document."""
    with client(ctx, base) as http:
        doc = http.get("/openapi.json").raise_for_status().json()
    return [
        (m.upper(), p)
        for p, ops in doc.get("paths", {}).items()
        for m in ops
        if m.lower() in {"get", "post", "put", "patch", "delete"}
    ]


class TargetCheck(IQCheck):
    """A check that needs the running target: not evaluated without one, or when it does not answer."""

    def run(self, ctx: IQContext) -> CheckResult:
        if ctx.target is None:
            return self.not_evaluated("no target service (give --target)")
        try:
            httpx.get(ctx.target.rstrip("/") + "/", timeout=5, verify=False)
        except httpx.HTTPError as err:
            return self.not_evaluated(f"target {ctx.target} not reachable: {err}")
        return self.check(ctx)

    @abstractmethod
    def check(self, ctx: IQContext) -> CheckResult:
        """The check itself, run once its preconditions hold."""


__all__ = [
    "DENIED",
    "LOOPBACK",
    "TargetCheck",
    "accuracy_ci",
    "answer_of",
    "auth_headers",
    "baseline_request",
    "case_answer",
    "client",
    "fill_path",
    "listed",
    "openapi_routes",
    "probe",
    "send_case",
]
