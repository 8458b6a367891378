"""The IQ stage of ``aimd demo``: release aimd itself as a signed bundle, install it into a prefix, start the
installed inference service and annotation platform with TLS, and run ``aimd iq run --profile quick``
against the prefix and both (002 §4.3, §5, §6). Given ``links`` (a PACS holding a baseline case, the
drill against it and how to stop and start it, see :func:`aimd.cli.demo.pacs_drill`), the installed
service pulls from that PACS, its own links are drilled (002 §6.3.1 b) and the PACS is stopped and
started again while the service's readiness is watched (002 §6.3.1 c).

Example
-------
>>> "Dependencies" in aimd_release_notes("1.0.0")
True
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aimd import __version__
from aimd.core.atomic import atomic_file
from aimd.core.errors import InvalidInputError
from aimd.iq.account import ensure_system_account, interpreter_for, lookup_account, share_with_service
from aimd.iq.baseline import DEVICE, apply_baseline, reference_baseline
from aimd.iq.bundle import _project_root, build_bundle, build_product_wheel
from aimd.iq.install import Layout, base_site_packages, install
from aimd.iq.protocol import DependencySpec, IQProtocol
from aimd.iq.runner import run_iq
from aimd.iq.signing import generate_key
from aimd.iq.specs import LinkDrill
from aimd.iq.template import protocol_template
from aimd.iq.tls import self_signed


@dataclass(frozen=True)
class DemoPacs:
    """A PACS of the caller's: the link drill against it (its ``pacs_url`` is what the installed service
    pulls from) and the commands that stop and start it for the dependency outage check."""

    drill: LinkDrill
    dependency: DependencySpec


def quick_limits(protocol: IQProtocol) -> IQProtocol:
    """The demo's load on a shared 2-core machine: few users and requests, limits for CPU inference."""
    b, st = protocol.baseline, protocol.stress
    b.concurrency_users, b.concurrency_requests = 2, 8
    b.max_mean_seconds_per_case, b.max_mean_response_s, b.min_accuracy = 5.0, 5.0, 1.0
    st.levels, st.requests_per_user, st.p95_limit_s, st.expected_max_concurrency = [1, 2, 4], 2, 10.0, 2
    return protocol


def aimd_release_notes(version: str) -> str:
    """Release notes of an aimd release (002 §6.6.1 e)."""
    return (
        f"# aimd {version}\n\n## Changes\n- inference service, annotation platform, installation qualification\n\n"
        f"## Fixes\n- none recorded for this build\n\n## Dependencies\n- Python >= 3.11; see requirements.lock\n"
    )


def build_aimd_bundle(out: Path, *, model: Path | None = None) -> Path:
    """A signed bundle of this aimd source tree (wheel built offline) with a manual, configuration and model."""
    out.mkdir(parents=True, exist_ok=True)
    key = out / "release.key"
    if not key.exists():
        generate_key(key)
    work = out / "inputs"
    shutil.rmtree(work, ignore_errors=True)
    wheel = build_product_wheel(_project_root(), work / "wheel")
    notes = work / "RELEASE-NOTES.md"
    notes.write_text(aimd_release_notes(__version__), encoding="utf-8")
    manual = work / "aimd-user-manual.md"
    manual.write_text(f"# aimd user manual\n\nVersion {__version__}. See docs/ of the source tree.\n", encoding="utf-8")
    config = work / "aimd.toml"
    config.write_text('env = "production"\nlog_level = "INFO"\n', encoding="utf-8")
    bundle = out / f"bundle-{__version__}"
    shutil.rmtree(bundle, ignore_errors=True)
    build_bundle(
        bundle,
        version=__version__,
        key=key,
        release_notes=notes,
        product_wheel=wheel,
        docs=[manual],
        config=config,
        models=[model] if model else None,
    )
    return bundle


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVICE_ACCOUNT = "aimd"


def demo_service_account(prefix: Path) -> tuple[str | None, str | None, str]:
    """The account the demo's services run as, the interpreter it can start, and what was done.

    As root: the system account ``aimd`` (created once with ``useradd --system``, kept afterwards), with
    this Python or the system's; root only when the account cannot enter ``prefix`` or start any Python
    (then ``hardening.not_root`` fails, as it should). Not root: the services run as the caller."""
    import pwd

    if os.geteuid() != 0:
        return None, None, f"services run as {pwd.getpwuid(os.geteuid()).pw_name} (not root)"
    created = ensure_system_account(SERVICE_ACCOUNT)
    account = lookup_account(SERVICE_ACCOUNT)
    prefix.mkdir(parents=True, exist_ok=True)
    python = interpreter_for(account, prefix, *map(Path, base_site_packages()))
    how = "created now with useradd --system" if created else "existing system account"
    if python is None:
        return (
            None,
            None,
            f"services run as root: account {SERVICE_ACCOUNT} ({how}) cannot enter {prefix} or start Python",
        )
    return SERVICE_ACCOUNT, python, f"services run as {SERVICE_ACCOUNT} ({how}; interpreter {python})"


def _release_env(layout: Layout) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["AIMD_CONFIG"] = str(layout.config / "aimd.toml")
    account = layout.service_account()
    return account.env(env) if account else env


def _as_service(layout: Layout) -> dict[str, Any]:
    """``subprocess`` arguments that start a process as the prefix's service account (when root)."""
    account = layout.service_account()
    return account.popen_kwargs() if account else {}


def _aimd(layout: Layout, *args: str) -> str:
    """Run the installed release's ``aimd`` with ``args`` as its service account; its standard output."""
    done = subprocess.run(
        [str(layout.current / "bin" / "python"), "-m", "aimd.cli.main", *args],
        capture_output=True,
        text=True,
        env=_release_env(layout),
        check=False,
        timeout=300,
        cwd=layout.prefix,
        **_as_service(layout),
    )
    if done.returncode != 0:
        raise InvalidInputError(
            f"aimd {args[0]} {args[1]} failed: {done.stderr.strip()[-300:]}",
            where=str(layout.prefix),
            hint="check the installed release with `aimd iq run --prefix`",
        )
    return done.stdout


@contextlib.contextmanager
def _running(layout: Layout, args: list[str], url: str, timeout_s: float) -> Iterator[None]:
    """The installed release's ``aimd <args>`` in the background, as its service account, until
    ``url``/v2/health/ready answers 200."""
    import httpx

    proc = subprocess.Popen(
        [str(layout.current / "bin" / "python"), "-m", "aimd.cli.main", *args],
        env=_release_env(layout),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=layout.prefix,
        **_as_service(layout),
    )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/v2/health/ready", verify=False, timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise InvalidInputError(
                    f"the installed `aimd {args[0]}` did not start: "
                    f"{(proc.stderr.read() if proc.stderr else '')[-300:]}",
                    where=url,
                    hint=f"run `aimd {args[0]}` from the release by hand to see the error",
                )
            time.sleep(0.5)
        yield
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        if proc.poll() is None:
            proc.kill()


def _tls(layout: Layout, name: str) -> tuple[Path, Path]:
    """A self-signed key and certificate in ``config/<name>``: root's, read by the service account's group."""
    key, cert = self_signed(layout.config / name)
    account = layout.service_account()
    for path in (key, cert):
        share_with_service(path, account)
    return key, cert


@contextlib.contextmanager
def serve_release(
    layout: Layout, model: Path | str, *, extra: list[str] | None = None, timeout_s: float = 240.0
) -> Iterator[dict[str, str]]:
    """Run the installed release's ``aimd serve`` over TLS on a free loopback port; yields url and token.

    ``model`` is a model file, or the name of a reference device shipped inside the release; ``extra``
    are more options of ``aimd serve`` (e.g. ``--pacs URL``)."""
    data = layout.data / "serve"
    created = _aimd(
        layout, "serve", "token", "create", "--scope", "infer", "--name", "iq", "--data", str(data), "--json"
    )
    key, cert = _tls(layout, "tls")
    port = _free_port()
    url = f"https://127.0.0.1:{port}"
    args = ["serve", "--model", f"lesion={model}", "--data", str(data), "--port", str(port)]
    args += ["--tls-cert", str(cert), "--tls-key", str(key), "--no-explain", *(extra or [])]
    with _running(layout, args, url, timeout_s):
        yield {"url": url, "token": json.loads(created)["token"]}


@contextlib.contextmanager
def serve_platform(layout: Layout, *, timeout_s: float = 240.0) -> Iterator[dict[str, str]]:
    """Initialise and run the installed release's annotation platform over TLS on a free loopback port;
    yields its url and the file (0600, in the root-only ``state/``) with the first admin's one-time credentials."""
    data = layout.data / "platform"
    admin = layout.history.parent / "platform-admin.json"
    if not admin.is_file():
        shown = _aimd(layout, "platform", "init", "--data", str(data), "--json")
        with atomic_file(admin, suffix=".json") as tmp:
            tmp.write_text(shown, encoding="utf-8")
            tmp.chmod(0o600)
    key, cert = _tls(layout, "tls-platform")
    port = _free_port()
    url = f"https://127.0.0.1:{port}"
    args = ["platform", "serve", "--data", str(data), "--port", str(port), "--tls-cert", str(cert)]
    with _running(layout, [*args, "--tls-key", str(key)], url, timeout_s):
        yield {"url": url, "admin": str(admin)}


def run_iq_demo(
    out: Path,
    *,
    model: Path | None = None,
    progress: Callable[[str], None] | None = None,
    links: Callable[[Path, str], contextlib.AbstractContextManager[DemoPacs | None]] | None = None,
) -> dict[str, Any]:
    """Bundle → install → baseline → serve (inference service and annotation platform) → IQ run (quick
    profile) → report; returns the headline numbers."""
    step = progress or (lambda _s: None)
    started = time.perf_counter()
    from aimd.models.reference import WEIGHTS_DIR

    bundle = build_aimd_bundle(out / "release", model=model or WEIGHTS_DIR / f"{DEVICE}.pt")
    step("bundle")
    layout = Layout(out / "prefix")
    if layout.prefix.exists():
        shutil.rmtree(layout.prefix)  # a re-run installs afresh
    service_user, python, service_note = demo_service_account(layout.prefix)
    installed = install(
        bundle, layout.prefix, operator="demo", approved_by="demo-qa", service_user=service_user, python=python
    )
    step("install")
    protocol = protocol_template(__version__)
    protocol.version_manifest.components = [c for c in protocol.version_manifest.components if c.kind == "code"]
    report_dir = out / "report"
    shutil.rmtree(report_dir, ignore_errors=True)
    served: Path | str | None
    baseline = None
    if model is None:  # the shipped reference device, with its validated baseline
        served = DEVICE
        baseline = reference_baseline(out / "baseline")
        apply_baseline(quick_limits(protocol), baseline)
        step("baseline")
    else:
        served = next(iter(sorted((layout.current / "bundle" / "models").glob("*"))), None)
    if served is not None:
        with contextlib.ExitStack() as stack:
            pacs: list[str] = []
            if baseline is not None and links is not None:  # a PACS of the caller's holding a baseline case
                held = stack.enter_context(links(out / "pacs", baseline["cases"][0]["file"]))
                if held is not None:
                    protocol.links, protocol.dependencies = held.drill, [held.dependency]
                    pacs = ["--pacs", str(held.drill.pacs_url), "--pacs-timeout", "3", "--pacs-backoff", "0.3"]
            svc = stack.enter_context(serve_release(layout, served, extra=pacs))
            plat = stack.enter_context(serve_platform(layout))
            step("serve")
            if baseline is not None and protocol.platform is not None:
                protocol.platform.import_file = baseline["cases"][0]["file"]
                protocol.platform.import_sha256 = baseline["cases"][0]["sha256"]
            report = run_iq(
                protocol,
                report_dir,
                prefix=layout.prefix,
                target=svc["url"],
                token=svc["token"],
                platform=plat["url"],
                platform_admin=plat["admin"],
                profile="quick",
                operator="demo",
            )
    else:
        report = run_iq(protocol, report_dir, prefix=layout.prefix, profile="quick", operator="demo")
    step("run")
    counts = {v: sum(c.verdict.value == v for c in report.checks) for v in ("pass", "fail", "not_evaluated")}
    return {
        "bundle": str(bundle),
        "prefix": str(layout.prefix),
        "install_s": round(installed.seconds, 2),
        "service_account": service_note,
        "report_html": str(report_dir / "iq-report.html"),
        "report_pdf": str(report_dir / "iq-report.pdf"),
        "conclusion": report.basic.conclusion,
        "score": report.scores["total"],
        **counts,
        "iq_run_s": report.seconds,
        "rollback_drills": [
            {k: r[k] for k in ("data_bytes", "rollback_s", "identical")}
            for r in next((c.data.get("drills", []) for c in report.checks if c.key == "reliability.rollback"), [])
        ],
        "deviations": [d.check for d in report.deviations],
        **{
            name: next(
                ({"verdict": c.verdict.value, "observed": c.observed} for c in report.checks if c.key == key), None
            )
            for name, key in (
                ("links", "reliability.links"),
                ("dependency_outage", "reliability.dependency"),
                ("ui_render", "function.ui_render"),
                ("ui_navigation", "function.ui_navigation"),
            )
        },
        "not_evaluated_checks": {c.key: c.reason for c in report.checks if c.verdict.value == "not_evaluated"},
        "performance": {
            c.key: {"verdict": c.verdict.value, "observed": c.observed}
            for c in report.checks
            if c.area == "performance"
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


__all__ = [
    "DemoPacs",
    "aimd_release_notes",
    "build_aimd_bundle",
    "demo_service_account",
    "quick_limits",
    "run_iq_demo",
    "serve_platform",
    "serve_release",
]
