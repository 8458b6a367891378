"""A fault-injecting TCP proxy on loopback for the network-fault drills (002 §6.3.1 b).

The kernel's ``netem`` queueing discipline is the usual way to delay, drop and throttle packets; a
kernel built without it (``CONFIG_NET_SCH_NETEM`` not set: ``tc qdisc add ... netem`` answers
"Specified qdisc kind is unknown") cannot. :class:`FaultProxy` puts the same faults on the TCP path
between a client and a service, in user space: every byte still travels through real sockets to the real
service, so what the service does under the fault is measured, not simulated.

* latency and jitter: each chunk read is forwarded ``latency ± jitter`` later (order kept), both ways;
* bandwidth: each direction of a connection is paced to ``bandwidth_kbps``;
* reset: a share of connections is reset (TCP RST) once the client has sent its first bytes;
* drop: a share of connections is black-holed — accepted, the bytes swallowed, no answer, closed later;
* cut: the link is down — every new connection is reset at once and the open ones are severed.

The faults of a running proxy can be changed (:meth:`FaultProxy.set_faults`), so a service configured once
with the proxy's address sees its link go bad and come back.

TLS passes through untouched (the proxy never reads inside the stream).

Example
-------
>>> import socket, threading
>>> server = socket.create_server(("127.0.0.1", 0))
>>> def echo():
...     conn, _ = server.accept()
...     conn.sendall(conn.recv(100).upper()); conn.close()
>>> _ = threading.Thread(target=echo, daemon=True).start()
>>> with FaultProxy(("127.0.0.1", server.getsockname()[1]), Faults(latency_ms=30)) as proxy:
...     with socket.create_connection(("127.0.0.1", proxy.port)) as c:
...         _ = c.sendall(b"ping"); c.recv(100)
b'PING'
>>> proxy.stats["connections"], proxy.stats["delayed_chunks"] >= 2
(1, True)
"""

from __future__ import annotations

import contextlib
import queue
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass

CHUNK = 16 * 1024


@dataclass(frozen=True)
class Faults:
    """The faults one proxy injects."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    bandwidth_kbps: float | None = None
    reset_rate: float = 0.0
    drop_rate: float = 0.0
    cut: bool = False
    seed: int = 0

    def seen_in(self, stats: dict[str, int]) -> bool:
        """Whether a proxy's counters show every fault of this kind happened (a fault never injected proves nothing)."""
        return bool(
            (not (self.latency_ms or self.jitter_ms) or stats["delayed_chunks"])
            and (not self.reset_rate or stats["reset"])
            and (not self.drop_rate or stats["dropped"])
            and (not self.bandwidth_kbps or stats["bytes_up"] + stats["bytes_down"])
            and (not self.cut or stats["cut"] + stats["severed"])
        )

    def delay_s(self, rng: random.Random) -> float:
        """One chunk's delay: latency plus a uniform jitter, never negative."""
        jitter = rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, (self.latency_ms + jitter) / 1000.0)


class FaultProxy:
    """Listen on ``127.0.0.1:<free port>`` and forward each connection to ``upstream`` with :class:`Faults`."""

    def __init__(
        self, upstream: tuple[str, int], faults: Faults, *, hold_s: float = 30.0, listen: str = "127.0.0.1"
    ) -> None:
        self.upstream = upstream
        self.faults = faults
        self.hold_s = hold_s
        self._rng = random.Random(faults.seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sockets: set[socket.socket] = set()
        self.stats: dict[str, int] = {
            "connections": 0,
            "forwarded": 0,
            "reset": 0,
            "dropped": 0,
            "cut": 0,
            "severed": 0,
            "delayed_chunks": 0,
            "bytes_up": 0,
            "bytes_down": 0,
        }
        self._server = socket.create_server((listen, 0))
        self.port = int(self._server.getsockname()[1])
        self._thread = threading.Thread(target=self._accept_loop, name="fault-proxy", daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop accepting and close every open connection."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._server.close()
        with self._lock:
            open_sockets = list(self._sockets)
        for s in open_sockets:
            with contextlib.suppress(OSError):
                s.close()
        self._thread.join(timeout=5)

    def set_faults(self, faults: Faults, *, sever: bool = False) -> None:
        """Inject ``faults`` from now on; ``sever`` (or a cut) also closes the connections open now, so
        pooled connections meet the new faults too."""
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.seed)
        if sever or faults.cut:
            self.sever()

    def sever(self) -> int:
        """Close every open connection (both ends) with a TCP reset; the number closed."""
        with self._lock:
            open_sockets = list(self._sockets)
            self._sockets.clear()
        for s in open_sockets:
            _reset(s)
        self._count("severed", len(open_sockets))
        return len(open_sockets)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def _track(self, s: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.add(s)
        return s

    def _untrack(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets.difference_update(sockets)

    def _draw(self) -> str:
        with self._lock:
            if self.faults.cut:
                return "cut"
            x = self._rng.random()
        if x < self.faults.drop_rate:
            return "drop"
        if x < self.faults.drop_rate + self.faults.reset_rate:
            return "reset"
        return "forward"

    def _accept_loop(self) -> None:
        self._server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._count("connections")
            conn.settimeout(None)
            threading.Thread(target=self._handle, args=(self._track(conn),), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        fate = self._draw()
        if fate == "cut":
            self._count("cut")
            self._untrack(conn)
            _reset(conn)
            return
        if fate == "drop":
            self._count("dropped")
            self._swallow(conn)
            return
        if fate == "reset":
            with contextlib.suppress(OSError):
                conn.recv(CHUNK)  # the client has sent its request
            self._count("reset")
            self._untrack(conn)
            _reset(conn)
            return
        try:
            upstream = self._track(socket.create_connection(self.upstream, timeout=10))
        except OSError:
            self._untrack(conn)
            conn.close()
            return
        upstream.settimeout(None)
        self._count("forwarded")
        pumps = [
            threading.Thread(target=self._pipe, args=(conn, upstream, "bytes_up"), daemon=True),
            threading.Thread(target=self._pipe, args=(upstream, conn, "bytes_down"), daemon=True),
        ]
        for t in pumps:
            t.start()
        for t in pumps:
            t.join()
        self._untrack(conn, upstream)
        for s in (conn, upstream):
            with contextlib.suppress(OSError):
                s.close()

    def _swallow(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        deadline = time.monotonic() + self.hold_s
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                if not conn.recv(CHUNK):
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        self._untrack(conn)
        with contextlib.suppress(OSError):
            conn.close()

    def _pipe(self, src: socket.socket, dst: socket.socket, counter: str) -> None:
        """Read from ``src``, hold each chunk for its delay, pace to the bandwidth, write to ``dst``."""
        chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()
        writer = threading.Thread(target=self._writer, args=(chunks, dst, counter), daemon=True)
        writer.start()
        last_due = 0.0
        while True:
            try:
                data = src.recv(CHUNK)
            except OSError:
                data = b""
            if not data:
                chunks.put((0.0, b""))
                break
            with self._lock:
                delay = self.faults.delay_s(self._rng)
            last_due = max(last_due, time.monotonic() + delay)  # jitter never reorders a stream
            if delay > 0:
                self._count("delayed_chunks")
            chunks.put((last_due, data))
        writer.join()

    def _writer(self, chunks: queue.Queue[tuple[float, bytes]], dst: socket.socket, counter: str) -> None:
        rate = (self.faults.bandwidth_kbps or 0) * 1000 / 8  # bytes per second
        free_at = time.monotonic()
        while True:
            due, data = chunks.get()
            if not data:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            for start in range(0, len(data), 1460 if rate else len(data)):
                piece = data[start : start + (1460 if rate else len(data))]
                if rate:
                    free_at = max(free_at, time.monotonic()) + len(piece) / rate
                try:
                    dst.sendall(piece)
                except OSError:
                    return
                self._count(counter, len(piece))
                if rate and (pause := free_at - time.monotonic()) > 0:
                    time.sleep(pause)


def _reset(s: socket.socket) -> None:
    """Close ``s`` with a TCP reset (no orderly shutdown), as a broken link does."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        s.close()


__all__ = ["FaultProxy", "Faults"]


def _relay_main(argv: list[str]) -> None:  # pragma: no cover - runs inside a network namespace
    """``python -m aimd.iq.faultproxy LISTEN UPSTREAM_HOST UPSTREAM_PORT``: a clean relay; prints its port."""
    import signal

    listen, host, port = argv
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    with FaultProxy((host, int(port)), Faults(), listen=listen) as proxy:
        print(proxy.port, flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":  # pragma: no cover
    import sys

    _relay_main(sys.argv[1:])
