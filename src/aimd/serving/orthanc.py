"""A local reference PACS: a real Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``) on 127.0.0.1.

Used by the tests, the benchmark and ``aimd demo``: temporary storage folder, remote access off,
HTTP basic authentication on, DICOMweb at ``/dicom-web``; stopped when the context ends.

Example
-------
>>> missing = orthanc_missing()
>>> missing is None or "apt-get install" in missing
True
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
INSTALL = "apt-get install orthanc orthanc-dicomweb"


@dataclass(frozen=True)
class OrthancServer:
    """A running Orthanc: its ports, URLs and credentials."""

    http: int
    dicom: int
    user: str
    password: str
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    def upload(self, files: list[Path]) -> None:
        """Store DICOM files through Orthanc's REST API."""
        import requests

        for f in files:
            r = requests.post(f"{self.url}/instances", data=f.read_bytes(), auth=self.auth, timeout=60)
            r.raise_for_status()


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def orthanc_missing() -> str | None:
    """Why a local Orthanc cannot run here, with the install command (``None`` when it can)."""
    if shutil.which("Orthanc") is None:
        return f"Orthanc is not installed ({INSTALL})"
    if not DICOMWEB_PLUGIN.is_file():
        return f"the Orthanc DICOMweb plugin is not installed ({INSTALL})"
    return None


def wait_http(
    url: str,
    *,
    auth: tuple[str, str] | None = None,
    seconds: float = 60.0,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Wait until ``url`` answers below 500; fail early when ``process`` exits."""
    import requests

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}")
        try:
            if requests.get(url, auth=auth, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {seconds:g} s")


@contextlib.contextmanager
def orthanc(folder: str | Path, *, user: str = "aimd", password: str | None = None) -> Iterator[OrthancServer]:
    """Run Orthanc with its storage under ``folder`` for the duration of the context."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    password = password or secrets.token_urlsafe(16)
    http, dicom = free_port(), free_port()
    config = {
        "Name": "aimd-reference-pacs",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"),
        "HttpPort": http,
        "DicomPort": dicom,
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {user: password},
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "StorageCompression": False,
        "HttpCompressionEnabled": False,
    }
    (root / "orthanc.json").write_text(json.dumps(config), encoding="utf-8")
    (root / "orthanc.json").chmod(0o600)
    with open(root / "orthanc.log", "wb") as log:
        proc = subprocess.Popen(["Orthanc", str(root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{http}/system", auth=(user, password), process=proc)
            yield OrthancServer(http, dicom, user, password, proc)
        finally:
            stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after ``seconds``; waits for the exit either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


__all__ = ["INSTALL", "OrthancServer", "free_port", "orthanc", "orthanc_missing", "stop_process", "wait_http"]
