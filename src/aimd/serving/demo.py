"""The demo's device stage: serve a model on loopback and run one phantom study through the PACS loop.

With Orthanc installed: the study is stored in a local Orthanc, pulled by the service (QIDO/WADO),
run, and the SEG + SR are stored back (STOW). Without it: the series is uploaded as a zip and the
result files stay with the service; the stage says how to install Orthanc. The service runs as a
real uvicorn server on 127.0.0.1 with a token created for the stage.
"""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import requests

from aimd.serving.orthanc import INSTALL, free_port, orthanc, orthanc_missing, wait_http


def _serve(settings: Any, registry: Any) -> tuple[Any, threading.Thread, str]:
    import uvicorn

    from aimd.serving.app import create_app

    config = uvicorn.Config(
        create_app(settings, registry), host="127.0.0.1", port=settings.port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="aimd-demo-serve", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{settings.port}"
    wait_http(f"{url}/v2/health/live", seconds=120)
    return server, thread, url


def run_device_demo(
    model: str | Path,
    series: str | Path,
    out: str | Path,
    *,
    name: str = "lesions",
    version: str | None = "demo",
    progress: Callable[[str], object] | None = None,
) -> dict[str, Any]:
    """Serve ``model`` and run the CT ``series`` folder through it; the answer, file paths and timings.

    ``model`` is anything ``aimd serve --model`` takes, e.g. the shipped ``device-lesions``;
    ``version=None`` uses the model's own version (the weights hash for the shipped devices).
    """
    import shutil

    from aimd.serving.db import ServingDB
    from aimd.serving.registry import ModelRegistry
    from aimd.serving.settings import ServeSettings

    root = Path(out)
    shutil.rmtree(root, ignore_errors=True)
    files = sorted(p for p in Path(series).iterdir() if p.is_file())
    first = pydicom.dcmread(files[0], stop_before_pixels=True)
    missing = orthanc_missing()
    registry = ModelRegistry()
    registry.load(name, model, version)
    token = ServingDB(str(root / "data" / "serving.db")).create_token(["infer"], name="demo")[0]
    headers = {"Authorization": f"Bearer {token}"}

    def run(pacs_url: str | None, user: str | None, password: str | None) -> dict[str, Any]:
        settings = ServeSettings(
            data_dir=root / "data", port=free_port(), pacs_url=pacs_url, pacs_user=user, pacs_password=password
        )
        server, thread, url = _serve(settings, registry)
        try:
            if pacs_url:
                r = requests.post(
                    f"{url}/v2/models/{name}/infer",
                    headers=headers,
                    timeout=900,
                    json={"study_uid": str(first.StudyInstanceUID), "series_uid": str(first.SeriesInstanceUID)},
                )
            else:
                buf = io.BytesIO()
                with zipfile.ZipFile(buf, "w") as z:
                    for f in files:
                        z.write(f, f.name)
                r = requests.post(
                    f"{url}/v2/models/{name}/infer",
                    data=buf.getvalue(),
                    timeout=900,
                    headers={**headers, "Content-Type": "application/zip"},
                )
            r.raise_for_status()
            return dict(r.json())
        finally:
            server.should_exit = True
            thread.join(30)

    if missing is None:
        if progress:
            progress("orthanc")
        with orthanc(root / "orthanc") as pacs:
            pacs.upload(files)
            doc = run(pacs.dicomweb, pacs.user, pacs.password)
        mode = "PACS loop (Orthanc: QIDO/WADO pull, STOW of SEG + SR)"
    else:
        doc = run(None, None, None)
        mode = f"upload (no PACS: {missing}; install with `{INSTALL}`)"
    folder = root / "data" / "results" / doc["id"]
    return {
        "mode": mode,
        "result_id": doc["id"],
        "model": doc["model"],
        "findings": doc["findings"],
        "grades": {g: sum(f["grade"] == g for f in doc["findings"]) for g in ("high", "medium", "review")},
        "files": {k: str(folder / v) for k, v in doc["files"].items()},
        "timings": doc["timings"],
        "pacs_stored": doc.get("pacs", {}).get("stored", []),
        "orthanc_missing": missing,
    }


__all__ = ["run_device_demo"]
