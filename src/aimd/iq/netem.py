"""Packet-level faults with ``tc netem`` on a veth link inside a network namespace the run creates (002 §6.3.1 b).

:func:`netem_probe` builds the link it would use — a namespace, a veth pair into it — and tries to put a
``netem`` qdisc on it; the answer is the evidence (the kernel's configuration line, whether it can load
modules, the failing command and what it said). :class:`NetemLink` is that link in use: a service
reaches a dependency through ``ns-address:port`` → relay in the namespace → ``host-address:port`` → relay on
the host → the dependency, so every byte crosses the veth pair twice and the queueing discipline on both
ends delays, jitters or drops its packets. Only the run's own veth carries the faulted traffic; the
namespace and the pair are deleted afterwards.

Example
-------
>>> netem_command("aqh", latency_ms=100, jitter_ms=20, loss_pct=5)
['tc', 'qdisc', 'replace', 'dev', 'aqh', 'root', 'netem', 'delay', '100ms', '20ms', 'loss', '5%']
>>> netem_command("aqh", cut=True)[-2:]
['loss', '100%']
"""

from __future__ import annotations

import contextlib
import gzip
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from aimd.iq.faultproxy import FaultProxy, Faults


def _run(cmd: list[str]) -> tuple[bool, str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"{type(err).__name__}: {err}"
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()


def kernel_evidence() -> dict[str, str]:
    """The kernel release, its ``CONFIG_NET_SCH_NETEM`` line and whether it loads modules at all."""
    release = platform.release()
    evidence = {"kernel": release}
    for path in (Path("/proc/config.gz"), Path(f"/boot/config-{release}")):
        if not path.is_file():
            continue
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as handle:  # type: ignore[operator]
            lines = [line.strip() for line in handle]
        evidence["config"] = next((x for x in lines if "CONFIG_NET_SCH_NETEM" in x), "CONFIG_NET_SCH_NETEM absent")
        evidence["modules"] = next(
            (x for x in lines if x in ("CONFIG_MODULES=y", "# CONFIG_MODULES is not set")), "unknown"
        )
        break
    return evidence


def netem_command(dev: str, *, latency_ms: float = 0, jitter_ms: float = 0, loss_pct: float = 0, cut: bool = False):
    """The ``tc`` command that sets ``dev``'s netem faults (``cut``: every packet lost)."""
    cmd = ["tc", "qdisc", "replace", "dev", dev, "root", "netem"]
    if latency_ms or jitter_ms:
        cmd += ["delay", f"{latency_ms:g}ms", *([f"{jitter_ms:g}ms"] if jitter_ms else [])]
    if cut or loss_pct:
        cmd += ["loss", "100%" if cut else f"{loss_pct:g}%"]
    return cmd


def _names(tag: str) -> tuple[str, str, str]:
    stem = f"aq{tag}{os.getpid() % 100000}"
    return f"{stem}n", f"{stem}h", f"{stem}p"  # namespace, host end, peer end (≤ 15 characters)


def netem_probe() -> dict[str, Any]:
    """Whether ``tc netem`` works here: namespace and veth created, qdisc added, all removed again.

    ``available`` is True only when every step worked; otherwise ``reason`` quotes the step that failed.
    """
    evidence: dict[str, Any] = kernel_evidence()
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        return {**evidence, "available": False, "reason": f"{' and '.join(missing)} not installed (iproute2)"}
    ns, host, peer = _names("x")
    steps = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns],
        ["tc", "qdisc", "add", "dev", host, "root", "netem", "delay", "1ms"],
    ]
    reason = ""
    try:
        for cmd in steps:
            ok, said = _run(cmd)
            if not ok:
                reason = f"`{' '.join(cmd)}` failed: {said or 'no message'}"
                break
    finally:
        _run(["ip", "link", "del", host])
        _run(["ip", "netns", "del", ns])
    if reason and "qdisc kind is unknown" in reason:
        reason += f" (kernel {evidence['kernel']}: {evidence.get('config', 'configuration not readable')}"
        reason += f"; {evidence['modules']})" if "modules" in evidence else ")"
    return {**evidence, "available": not reason, "reason": reason or "netem qdisc added on a veth in a namespace"}


class NetemLink:
    """A faulted path to ``upstream`` over a veth pair into a fresh namespace; connect to :attr:`address`."""

    def __init__(self, upstream: tuple[str, int], tag: str, index: int) -> None:
        self.upstream = upstream
        self.ns, self.host_dev, self.peer_dev = _names(tag)
        net = f"10.213.{os.getpid() % 250}"  # one /30 per link and process: parallel runs do not collide
        self.host_ip, self.peer_ip = f"{net}.{4 * index + 1}", f"{net}.{4 * index + 2}"
        self._back: FaultProxy | None = None
        self._relay: subprocess.Popen[str] | None = None
        self.port = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.peer_ip, self.port

    def __enter__(self) -> NetemLink:
        ns_exec = ["ip", "netns", "exec", self.ns]
        setup = [
            ["ip", "netns", "add", self.ns],
            ["ip", "link", "add", self.host_dev, "type", "veth", "peer", "name", self.peer_dev, "netns", self.ns],
            ["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_dev],
            ["ip", "link", "set", self.host_dev, "up"],
            [*ns_exec, "ip", "addr", "add", f"{self.peer_ip}/30", "dev", self.peer_dev],
            [*ns_exec, "ip", "link", "set", self.peer_dev, "up"],
            [*ns_exec, "ip", "link", "set", "lo", "up"],
        ]
        try:
            for cmd in setup:
                ok, said = _run(cmd)
                if not ok:
                    raise OSError(f"`{' '.join(cmd)}` failed: {said}")
            self._back = FaultProxy(self.upstream, Faults(), listen=self.host_ip).__enter__()
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            self._relay = subprocess.Popen(
                [
                    *ns_exec,
                    sys.executable,
                    "-m",
                    "aimd.iq.faultproxy",
                    self.peer_ip,
                    self.host_ip,
                    str(self._back.port),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=env,
            )
            assert self._relay.stdout is not None
            self.port = int(self._relay.stdout.readline().strip() or 0)
            if not self.port:
                raise OSError("the relay in the namespace did not start")
        except BaseException:
            self.__exit__()
            raise
        return self

    def set(self, *, latency_ms: float = 0, jitter_ms: float = 0, loss_pct: float = 0, cut: bool = False) -> None:
        """Put the faults on both ends of the veth pair (so both directions carry them)."""
        faulty = latency_ms or jitter_ms or loss_pct or cut
        for prefix, dev in (([], self.host_dev), (["ip", "netns", "exec", self.ns], self.peer_dev)):
            if faulty:
                cmd = [
                    *prefix,
                    *netem_command(dev, latency_ms=latency_ms, jitter_ms=jitter_ms, loss_pct=loss_pct, cut=cut),
                ]
            else:
                cmd = [*prefix, "tc", "qdisc", "del", "dev", dev, "root"]
            ok, said = _run(cmd)
            if not ok and faulty:
                raise OSError(f"`{' '.join(cmd)}` failed: {said}")

    def __exit__(self, *_exc: object) -> None:
        if self._relay is not None:
            self._relay.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._relay.wait(timeout=10)
        if self._back is not None:
            self._back.close()
        _run(["ip", "link", "del", self.host_dev])
        _run(["ip", "netns", "del", self.ns])


__all__ = ["NetemLink", "kernel_evidence", "netem_command", "netem_probe"]
