"""A local reference PACS: a real Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``) on 127.0.0.1.

Used by the tests, the benchmark and ``aimd demo``: temporary storage folder, remote access off,
HTTP basic authentication on, DICOMweb at ``/dicom-web``; stopped when the context ends.

An outage drill stops and starts it from outside, as a site would stop its PACS service:
``python -m aimd.serving.orthanc stop FOLDER`` ends the Orthanc whose pid is in ``FOLDER/orthanc.pid``
and waits until it has gone; ``python -m aimd.serving.orthanc start FOLDER`` starts Orthanc again,
detached, with the same configuration (ports, credentials) and storage, and waits until it answers
(:attr:`OrthancServer.stop_command`, :attr:`OrthancServer.start_command`). The context stops whichever
Orthanc the pid file names when it ends.

Example
-------
>>> missing = orthanc_missing()
>>> missing is None or "apt-get install" in missing
True
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
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
    folder: Path | None = None

    @property
    def stop_command(self) -> list[str]:
        """A command that stops this Orthanc (whichever process runs it now) and waits until it has gone."""
        return [sys.executable, "-m", "aimd.serving.orthanc", "stop", str(self.folder)]

    @property
    def start_command(self) -> list[str]:
        """A command that starts this Orthanc again, detached, on the same ports and storage."""
        return [sys.executable, "-m", "aimd.serving.orthanc", "start", str(self.folder)]

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
        (root / PIDFILE).write_text(str(proc.pid), encoding="utf-8")
        try:
            wait_http(f"http://127.0.0.1:{http}/system", auth=(user, password), process=proc)
            yield OrthancServer(http, dicom, user, password, proc, root)
        finally:
            stop_process(proc)
            stop_folder(root)  # an Orthanc started again by an outage drill


PIDFILE = "orthanc.pid"


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (an exited child not yet reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def stop_folder(folder: str | Path, seconds: float = 30.0) -> bool:
    """Stop the Orthanc named by ``folder``'s pid file (SIGTERM, SIGKILL after ``seconds``); False when none ran."""
    try:
        pid = int((Path(folder) / PIDFILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not _alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + seconds
        time.sleep(0.05)
    return True


def start_folder(folder: str | Path, seconds: float = 60.0) -> int:
    """Start Orthanc again, detached, with ``folder``'s configuration and storage; its pid once it answers."""
    root = Path(folder)
    config = json.loads((root / "orthanc.json").read_text(encoding="utf-8"))
    with open(root / "orthanc.log", "ab") as log:
        proc = subprocess.Popen(
            ["Orthanc", str(root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    (root / PIDFILE).write_text(str(proc.pid), encoding="utf-8")
    user, password = next(iter(config["RegisteredUsers"].items()))
    wait_http(f"http://127.0.0.1:{config['HttpPort']}/system", auth=(user, password), seconds=seconds, process=proc)
    return proc.pid


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


__all__ = [
    "INSTALL",
    "OrthancServer",
    "free_port",
    "orthanc",
    "orthanc_missing",
    "start_folder",
    "stop_folder",
    "stop_process",
    "wait_http",
]


if __name__ == "__main__":  # python -m aimd.serving.orthanc stop|start FOLDER (an outage drill's commands)
    if len(sys.argv) != 3 or sys.argv[1] not in ("stop", "start"):
        sys.exit("usage: python -m aimd.serving.orthanc stop|start FOLDER")
    if sys.argv[1] == "stop":
        stop_folder(sys.argv[2])
    else:
        start_folder(sys.argv[2])
