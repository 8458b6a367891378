"""A network-egress guard for evaluations (000 §5.2.9 b).

While active, every attempt to open an internet (IPv4/IPv6) connection through Python's
``socket`` module is recorded with its address and the calling module, and refused, so model
code cannot upload data during an evaluation; the record is evidence for 000 §6.3.9.

Example
-------
>>> import socket
>>> with EgressGuard() as guard:
...     try:
...         socket.create_connection(("192.0.2.1", 80), timeout=0.1)
...     except ConnectionRefusedError:
...         pass
>>> guard.attempts[0]["address"]
'192.0.2.1:80'
"""

from __future__ import annotations

import socket
import traceback
from types import TracebackType
from typing import Any

_INET = (socket.AF_INET, socket.AF_INET6)


class EgressGuard:
    """Record and refuse outgoing internet connections while in the ``with`` block."""

    def __init__(self, *, block: bool = True) -> None:
        self.block = block
        self.attempts: list[dict[str, Any]] = []
        self._saved: dict[str, Any] = {}

    def _record(self, address: Any, how: str) -> None:
        frames = [f for f in traceback.extract_stack() if not f.filename.endswith("egress.py")]
        caller = frames[-1] if frames else None
        host = address[0] if isinstance(address, tuple) else str(address)
        port = address[1] if isinstance(address, tuple) and len(address) > 1 else ""
        self.attempts.append({"address": f"{host}:{port}", "via": how, "blocked": self.block,
                              "caller": f"{caller.filename}:{caller.lineno}" if caller else "unknown"})
        if self.block:
            raise ConnectionRefusedError(f"network egress blocked during evaluation (000 §5.2.9 b): {host}:{port}")

    def __enter__(self) -> EgressGuard:
        guard = self
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_create = socket.create_connection

        def connect(sock: socket.socket, address: Any) -> Any:
            if sock.family in _INET:
                guard._record(address, "socket.connect")
            return real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> Any:
            if sock.family in _INET:
                guard._record(address, "socket.connect_ex")
            return real_connect_ex(sock, address)

        def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
            guard._record(address, "socket.create_connection")
            return real_create(address, *args, **kwargs)

        self._saved = {"connect": real_connect, "connect_ex": real_connect_ex, "create_connection": real_create}
        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        socket.create_connection = create_connection
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        socket.socket.connect = self._saved["connect"]  # type: ignore[method-assign]
        socket.socket.connect_ex = self._saved["connect_ex"]  # type: ignore[method-assign]
        socket.create_connection = self._saved["create_connection"]


__all__ = ["EgressGuard"]
