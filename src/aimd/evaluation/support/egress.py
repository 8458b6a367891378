"""Network egress during an evaluation (000 §5.2.9 b): enforced by a namespace, watched by a guard.

Two layers, and the evidence says which held:

* **Namespace** — ``aimd evaluate`` re-runs itself in a network namespace of its own
  (``unshare --net``, :func:`isolated_argv`) whose only interface is a loopback that is down: no
  packet can leave the process, whatever opens the socket — Python, ONNX Runtime, OpenVINO,
  libtorch. :func:`egress_scope` checks this from inside (``socket.if_nameindex``).
* **Guard** — :class:`EgressGuard` records and refuses every attempt made through Python's
  ``socket`` module: TCP ``connect``/``connect_ex``/``create_connection``, UDP ``sendto``/``sendmsg``
  and DNS look-ups (``getaddrinfo``, ``gethostbyname``) of any name but ``localhost``. Loopback
  addresses are not egress. Sockets opened by native code are not seen by the guard: without the
  namespace, the evidence says so.

Example
-------
>>> import socket
>>> with EgressGuard() as guard:
...     for call in (lambda: socket.create_connection(("192.0.2.1", 80), timeout=0.1),
...                  lambda: socket.getaddrinfo("example.org", 443)):
...         try:
...             call()
...         except OSError:
...             pass
>>> [a["via"] for a in guard.attempts]
['socket.create_connection', 'socket.getaddrinfo (DNS)']
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import traceback
from types import TracebackType
from typing import Any

_INET = (socket.AF_INET, socket.AF_INET6)
ISOLATION_ENV = "AIMD_NETWORK_ISOLATED"
WATCHED = (
    "TCP connect / connect_ex / create_connection",
    "UDP sendto / sendmsg",
    "DNS getaddrinfo / gethostbyname (any name but localhost)",
)
NOT_WATCHED = "sockets opened by native code (ONNX Runtime, OpenVINO, libtorch, C extensions)"


def _loopback(host: Any) -> bool:
    text = str(host).strip("[]")
    if text in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return False


class EgressGuard:
    """Record and refuse outgoing (non-loopback) connections, datagrams and DNS look-ups in the ``with`` block."""

    def __init__(self, *, block: bool = True) -> None:
        self.block = block
        self.attempts: list[dict[str, Any]] = []
        self._saved: dict[str, Any] = {}

    def _record(self, address: Any, how: str, error: type[OSError] = ConnectionRefusedError) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if _loopback(host):
            return
        frames = [f for f in traceback.extract_stack() if not f.filename.endswith("egress.py")]
        caller = frames[-1] if frames else None
        port = address[1] if isinstance(address, tuple) and len(address) > 1 else ""
        self.attempts.append(
            {
                "address": f"{host}:{port}",
                "via": how,
                "blocked": self.block,
                "caller": f"{caller.filename}:{caller.lineno}" if caller else "unknown",
            }
        )
        if self.block:
            raise error(f"network egress blocked during evaluation (000 §5.2.9 b): {host}:{port}")

    def __enter__(self) -> EgressGuard:
        guard = self
        real = {
            "connect": socket.socket.connect,
            "connect_ex": socket.socket.connect_ex,
            "sendto": socket.socket.sendto,
            "sendmsg": socket.socket.sendmsg,
            "create_connection": socket.create_connection,
            "getaddrinfo": socket.getaddrinfo,
            "gethostbyname": socket.gethostbyname,
        }

        def connect(sock: socket.socket, address: Any) -> Any:
            if sock.family in _INET:
                guard._record(address, "socket.connect")
            return real["connect"](sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> Any:
            if sock.family in _INET:
                guard._record(address, "socket.connect_ex")
            return real["connect_ex"](sock, address)

        def sendto(sock: socket.socket, data: Any, *args: Any) -> Any:
            if sock.family in _INET:
                guard._record(args[-1], "socket.sendto (UDP)")
            return real["sendto"](sock, data, *args)

        def sendmsg(sock: socket.socket, buffers: Any, *args: Any) -> Any:
            if sock.family in _INET and len(args) >= 3 and args[2] is not None:
                guard._record(args[2], "socket.sendmsg (UDP)")
            return real["sendmsg"](sock, buffers, *args)

        def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
            guard._record(address, "socket.create_connection")
            return real["create_connection"](address, *args, **kwargs)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host is not None:
                guard._record((host, args[0] if args else ""), "socket.getaddrinfo (DNS)", socket.gaierror)
            return real["getaddrinfo"](host, *args, **kwargs)

        def gethostbyname(host: str) -> Any:
            guard._record((host, ""), "socket.gethostbyname (DNS)", socket.gaierror)
            return real["gethostbyname"](host)

        self._saved = real
        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        socket.socket.sendto = sendto  # type: ignore[method-assign, assignment]
        socket.socket.sendmsg = sendmsg  # type: ignore[method-assign]
        socket.create_connection = create_connection
        socket.getaddrinfo = getaddrinfo
        socket.gethostbyname = gethostbyname
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        real = self._saved
        socket.socket.connect = real["connect"]  # type: ignore[method-assign]
        socket.socket.connect_ex = real["connect_ex"]  # type: ignore[method-assign]
        socket.socket.sendto = real["sendto"]  # type: ignore[method-assign]
        socket.socket.sendmsg = real["sendmsg"]  # type: ignore[method-assign]
        socket.create_connection = real["create_connection"]
        socket.getaddrinfo = real["getaddrinfo"]
        socket.gethostbyname = real["gethostbyname"]


def network_interfaces() -> list[str]:
    """Names of this process's network interfaces (its network namespace)."""
    try:
        return sorted(name for _i, name in socket.if_nameindex())
    except OSError:
        return []


def egress_scope() -> dict[str, Any]:
    """What prevents egress in this process, as the evidence states it.

    Example
    -------
    >>> sorted(egress_scope())
    ['interfaces', 'isolated', 'not_watched', 'statement', 'watched']
    """
    names = network_interfaces()
    isolated = all(n == "lo" for n in names)
    if isolated:
        statement = (
            f"enforced: the evaluation ran in a network namespace whose only interface is {names or 'none'} "
            "(loopback), so no connection could leave the process, native runtimes included; Python-level "
            "attempts were also recorded"
        )
        not_watched = "nothing can leave the namespace"
    else:
        statement = (
            f"watched, not enforced: interfaces {', '.join(names)} were reachable; the guard recorded and refused "
            f"{'; '.join(WATCHED)} made through Python; not watched: {NOT_WATCHED} (run aimd evaluate with "
            "--isolate-network to enforce)"
        )
        not_watched = NOT_WATCHED
    return {
        "isolated": isolated,
        "interfaces": names,
        "watched": list(WATCHED),
        "not_watched": not_watched,
        "statement": statement,
    }


def isolated_env() -> dict[str, str]:
    """The environment of a run in the namespace: this one, marked isolated, OpenMP threads waiting passively.

    ``OMP_WAIT_POLICY=PASSIVE`` (unless the caller set it): OpenMP's default lets an idle torch thread
    spin while it waits for its partner; on a machine shared with other work the partner is often
    descheduled, and a training step was measured 20 times slower and 13 times costlier in CPU that
    way (2 threads, load average 27). Sleeping threads cost a few percent on an idle machine.

    Example
    -------
    >>> isolated_env()[ISOLATION_ENV]
    '1'
    """
    return {"OMP_WAIT_POLICY": "PASSIVE", **os.environ, ISOLATION_ENV: "1"}


def isolated_argv(argv: list[str], *, loopback: bool = False) -> list[str] | None:
    """``argv`` prefixed to run in a fresh network namespace, ``None`` when ``unshare`` cannot make one here.

    ``loopback``: bring the namespace's loopback up first (a local Ray instance talks over it); no
    packet can leave the namespace all the same, its only interface being ``lo``.
    """
    tool = shutil.which("unshare")
    if tool is None or (loopback and shutil.which("ip") is None):
        return None
    prefix = [tool, "--net"] if os.geteuid() == 0 else [tool, "--net", "--map-root-user"]
    if loopback:
        prefix = [*prefix, "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    try:
        ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return [*prefix, *argv] if ok else None


__all__ = [
    "ISOLATION_ENV",
    "NOT_WATCHED",
    "WATCHED",
    "EgressGuard",
    "egress_scope",
    "isolated_argv",
    "isolated_env",
    "network_interfaces",
]
