"""A slow or briefly unavailable PACS: calls are repeated with backoff, transient faults only.

A real Orthanc sits behind a fault-injecting HTTP proxy started by the test: it drops the
connection (PACS down), answers 503 (PACS overloaded) or holds the answer past the client timeout
(PACS slow) for the next requests of a method, then forwards faithfully. Retrieve (QIDO/WADO) and
store (STOW) each get through; the stored SEG and SR are held once; a PACS that stays down fails
after the configured repeats, naming them; refused credentials are not repeated.
"""

from __future__ import annotations

import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pydicom
import pytest
import requests
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from serving_support import (
    CT_SPEC,
    SEG_SPEC,
    blob_net,
    orthanc_missing,
    orthanc_server,
    two_blob_ct,
    upload_to_orthanc,
    write_ct_series,
)

pytestmark = [pytest.mark.integration, pytest.mark.skipif(orthanc_missing() is not None, reason=str(orthanc_missing()))]

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


class FaultyProxy:
    """HTTP proxy to ``target`` whose next requests of a method can fail: ``drop``, ``503`` or ``slow``."""

    def __init__(self, target: str, slow_seconds: float = 4.0) -> None:
        self.target = target.rstrip("/")
        self.slow_seconds = slow_seconds
        self.faults: dict[str, list[str]] = {"GET": [], "POST": []}
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    queue = proxy.faults[self.command]
                    fault = queue.pop(0) if queue else "pass"
                    proxy.seen.append((self.command, fault))
                if fault == "drop":  # the PACS is down: the connection closes without an answer
                    self.close_connection = True
                    return
                if fault == "503":
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault == "slow":
                    time.sleep(proxy.slow_seconds)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP | {"host"}}
                r = requests.request(
                    self.command, proxy.target + self.path, headers=headers, data=body, timeout=60, stream=False
                )
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = _handle
            do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("pacs-retry")
    vol, _, _ = two_blob_ct()
    files = write_ct_series(vol, root / "series")
    ds = pydicom.dcmread(files[0], stop_before_pixels=True)
    with orthanc_server(root / "orthanc") as pacs:
        upload_to_orthanc(pacs, files)
        proxy = FaultyProxy(str(pacs["url"]))
        try:
            yield {"pacs": pacs, "proxy": proxy, "study": str(ds.StudyInstanceUID), "series": str(ds.SeriesInstanceUID)}
        finally:
            proxy.close()


def test_retrieve_survives_a_pacs_that_is_down_overloaded_or_slow(world):
    from aimd.serving.pacs import Pacs

    proxy, pacs = world["proxy"], world["pacs"]
    client = Pacs(f"{proxy.url}/dicom-web", user=pacs["auth"][0], password=pacs["auth"][1], timeout=2.0, backoff=0.2)
    proxy.faults["GET"] = ["drop", "503", "slow"]
    started = time.monotonic()
    client.find_series(world["study"], world["series"])
    assert client.retried == 3 and time.monotonic() - started >= 0.2 + 0.4 + 0.8, proxy.seen  # backoff waited
    proxy.faults["GET"] = ["drop"]
    assert len(client.retrieve_series(world["study"], world["series"])) == 16 and client.retried == 4


def test_a_pacs_that_stays_down_fails_after_the_repeats_and_credentials_are_not_repeated(world):
    from aimd.serving.errors import PacsError
    from aimd.serving.pacs import Pacs

    proxy, pacs = world["proxy"], world["pacs"]
    client = Pacs(
        f"{proxy.url}/dicom-web", user=pacs["auth"][0], password=pacs["auth"][1], retries=2, backoff=0.1, timeout=2
    )
    proxy.faults["GET"] = ["drop"] * 5
    with pytest.raises(PacsError, match="unreachable.*tried 3 times over 0.3 s") as err:
        client.find_series(world["study"], world["series"])
    assert err.value.where == client.url and len(proxy.faults["GET"]) == 2  # three attempts, no more
    proxy.faults["GET"] = []
    wrong = Pacs(f"{proxy.url}/dicom-web", user="nobody", password="wrong", retries=3, backoff=0.1)
    with pytest.raises(PacsError, match="refused the credentials"):
        wrong.find_series(world["study"], world["series"])
    assert wrong.retried == 0


def test_service_pulls_and_stores_through_a_flaky_pacs_and_the_results_are_held_once(world, tmp_path):
    import torch

    from aimd.models.adapters.torch_module import TorchModulePredictor
    from aimd.serving.app import create_app
    from aimd.serving.db import ServingDB
    from aimd.serving.registry import ModelRegistry
    from aimd.serving.settings import ServeSettings

    proxy, pacs = world["proxy"], world["pacs"]
    registry = ModelRegistry()
    net = blob_net()
    torch.save(net.state_dict(), tmp_path / "blob.pt")
    registry.add("blob", TorchModulePredictor(net, CT_SPEC, SEG_SPEC), tmp_path / "blob.pt", "1.0")
    settings = ServeSettings(
        data_dir=tmp_path / "data",
        pacs_url=f"{proxy.url}/dicom-web",
        pacs_user=pacs["auth"][0],
        pacs_password=pacs["auth"][1],
        pacs_timeout=2.0,
        pacs_backoff=0.2,
        explain=False,
    )
    db = ServingDB(settings.database)
    token = db.create_token(["infer"], name="infer")[0]
    db.engine.dispose()
    proxy.faults["GET"] = ["drop", "slow"]  # the pull: QIDO down, then WADO slow
    proxy.faults["POST"] = ["503", "slow"]  # the STOW: overloaded, then slow (stored, answer too late)
    with TestClient(create_app(settings, registry)) as c:
        r = c.post(
            "/v2/models/blob/infer",
            headers={"Authorization": f"Bearer {token}"},
            json={"study_uid": world["study"], "series_uid": world["series"]},
        )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert len(doc["pacs"]["stored"]) == 2 and proxy.faults == {"GET": [], "POST": []}
    for modality in ("SEG", "SR"):  # the repeated STOW left one copy of each
        found = requests.get(
            f"{pacs['dicomweb']}/studies/{world['study']}/instances",
            params={"Modality": modality},
            auth=pacs["auth"],
            timeout=10,
        ).json()
        assert len(found) == 1, (modality, found)
