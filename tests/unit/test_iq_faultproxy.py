"""The fault-injecting TCP proxy against a real HTTP server on loopback: each fault is measured."""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from aimd.iq.faultproxy import FaultProxy, Faults
from aimd.iq.netem import NetemLink, netem_probe

BODY = b"x" * 200_000


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = BODY if self.path == "/big" else b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, int]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield ("127.0.0.1", server.server_address[1])
    server.shutdown()


def _get(port: int, path: str = "/", timeout: float = 5.0) -> tuple[float, httpx.Response | Exception]:
    start = time.perf_counter()
    try:
        resp = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=timeout)
    except httpx.HTTPError as err:
        return time.perf_counter() - start, err
    return time.perf_counter() - start, resp


def test_clean_proxy_forwards_byte_identical(upstream: tuple[str, int]) -> None:
    with FaultProxy(upstream, Faults(bandwidth_kbps=None)) as proxy:
        _, resp = _get(proxy.port, "/big")
    assert isinstance(resp, httpx.Response) and resp.content == BODY
    assert proxy.stats["forwarded"] == 1 and proxy.stats["bytes_down"] >= len(BODY)


def test_latency_adds_the_injected_delay_each_way(upstream: tuple[str, int]) -> None:
    with FaultProxy(upstream, Faults(latency_ms=150, jitter_ms=10)) as slow:
        delayed = [_get(slow.port)[0] for _ in range(3)]
    # one request chunk up and one answer chunk down, each held 150 ± 10 ms: every request takes at least
    # 0.28 s (a busy machine only adds to that), and both directions of all three were held
    assert min(delayed) >= 0.28, delayed
    assert slow.stats["delayed_chunks"] >= 6 and slow.stats["connections"] == 3, slow.stats


def test_bandwidth_limit_paces_the_transfer(upstream: tuple[str, int]) -> None:
    with FaultProxy(upstream, Faults(bandwidth_kbps=4000)) as proxy:  # 500 kB/s
        seconds, resp = _get(proxy.port, "/big")
    assert isinstance(resp, httpx.Response) and resp.content == BODY
    assert seconds >= 0.8 * len(BODY) / 500_000, seconds


def test_reset_and_blackhole_end_in_client_errors(upstream: tuple[str, int]) -> None:
    with FaultProxy(upstream, Faults(reset_rate=1.0)) as proxy:
        _, reset = _get(proxy.port)
    assert isinstance(reset, httpx.HTTPError) and proxy.stats["reset"] == 1
    with FaultProxy(upstream, Faults(drop_rate=1.0), hold_s=3) as proxy:
        seconds, dropped = _get(proxy.port, timeout=0.5)
    assert isinstance(dropped, httpx.TimeoutException) and 0.4 < seconds < 2.5
    assert proxy.stats["dropped"] == 1 and proxy.stats["forwarded"] == 0


def test_faults_switch_on_a_running_proxy_and_a_cut_severs_open_connections(upstream: tuple[str, int]) -> None:
    with FaultProxy(upstream, Faults()) as proxy, httpx.Client(base_url=f"http://127.0.0.1:{proxy.port}") as http:
        assert http.get("/").status_code == 200  # a pooled keep-alive connection is open now
        proxy.set_faults(Faults(cut=True))
        assert proxy.stats["severed"] == 2  # both ends of the open connection
        for _ in range(2):  # the pooled connection is gone, then a new one is refused
            with pytest.raises(httpx.HTTPError):
                http.get("/")
        assert proxy.stats["cut"] >= 1
        proxy.set_faults(Faults())
        assert http.get("/").status_code == 200 and proxy.stats["forwarded"] == 2


def test_netem_probe_reports_what_the_kernel_says() -> None:
    if subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("creating a network namespace needs root (CAP_SYS_ADMIN)")
    probe = netem_probe()
    direct = subprocess.run(
        ["unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe["available"] == (direct.returncode == 0), (probe, direct.stderr)
    if not probe["available"]:  # the reason quotes the failing tc command and what the kernel answered
        assert direct.stderr.strip() in probe["reason"] and "netem" in probe["reason"]
    if probe.get("config") == "# CONFIG_NET_SCH_NETEM is not set" and "CONFIG_MODULES is not set" in probe["modules"]:
        assert not probe["available"]
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert "aqx" not in namespaces  # the probe's namespace and veth pair are gone


def test_netem_link_carries_traffic_through_its_own_namespace(upstream: tuple[str, int]) -> None:
    if subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("creating a network namespace needs root (CAP_SYS_ADMIN)")
    probe = netem_probe()
    with FaultProxy(upstream, Faults()) as proxy, NetemLink(("127.0.0.1", proxy.port), "t", 0) as link:
        host, port = link.address
        assert host.startswith("10.213.") and httpx.get(f"http://{host}:{port}/big", timeout=10).content == BODY
        assert proxy.stats["forwarded"] == 1  # service → relay in the namespace → veth → relay on the host → proxy
        if probe["available"]:
            link.set(latency_ms=100)
            seconds, resp = _get_url(f"http://{host}:{port}/")
            assert isinstance(resp, httpx.Response) and seconds >= 0.2
        else:  # the kernel's own answer, as the probe gave it
            with pytest.raises(OSError, match="Specified qdisc kind is unknown"):
                link.set(loss_pct=5)
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert link.ns not in namespaces


def _get_url(url: str) -> tuple[float, httpx.Response | Exception]:
    start = time.perf_counter()
    try:
        resp: httpx.Response | Exception = httpx.get(url, timeout=10)
    except httpx.HTTPError as err:
        resp = err
    return time.perf_counter() - start, resp
