"""A throw-away local PostgreSQL server for tests and benchmarks: ``initdb`` in a temporary folder and
``pg_ctl`` on a free loopback port, stopped and removed afterwards. Uses Debian's binaries
(``/usr/lib/postgresql/<version>/bin``); as root they run through ``runuser -u postgres``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PostgresServer", "pg_bindir"]


def pg_bindir() -> Path | None:
    """Folder of the newest installed PostgreSQL server binaries, or ``None``."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


class PostgresServer:
    """A throw-away PostgreSQL cluster: ``initdb`` in a temp folder, ``pg_ctl`` on a free port."""

    def __init__(self, bindir: Path) -> None:
        import pwd
        import shutil
        import socket
        import subprocess
        import tempfile

        self._subprocess = subprocess
        self._shutil = shutil
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="aimd-pg-"))
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # initdb and pg_ctl refuse root
            account = pwd.getpwnam("postgres")
            os.chown(self.folder, account.pw_uid, account.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        data = self.folder / "data"
        self._run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(data), "-l", str(self.folder / "log"), "-o", options, "-w", "start")
        self.data = data

    def _run(self, tool: str, *args: str) -> None:
        self._subprocess.run(
            [*self.prefix, str(self.bindir / tool), *args],
            check=True,
            stdout=self._subprocess.DEVNULL,
            stderr=self._subprocess.PIPE,
        )

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` as the superuser."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import uuid

        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self._subprocess.run(
            [*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
        )
        self._shutil.rmtree(self.folder, ignore_errors=True)
