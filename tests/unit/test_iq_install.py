"""Install, automatic rollback, one-command rollback, lock and event log (002 §5.2, §5.4.1, §6.3.1 d, §6.3.2)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from aimd.cli.main import app
from aimd.core.errors import IntegrityError, InvalidInputError
from aimd.iq.drill import MIGRATIONS, make_probe_bundle, rollback_drill
from aimd.iq.events import LIFECYCLE, chain_break, read_events
from aimd.iq.install import (
    InstallFailedError,
    InstallLockedError,
    Layout,
    RollbackError,
    install,
    prefix_lock,
    rollback,
)

runner = CliRunner()


def _cli(*args: str) -> Result:
    return runner.invoke(app, ["iq", *args])


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bundles")
    key = root / "release.key"
    good = make_probe_bundle(root / "good", "1.0.0", key=key, migrations={"0001_jobs.sql": MIGRATIONS["0001_jobs.sql"]})
    return {
        "1.0.0": good,
        "1.1.0": make_probe_bundle(root / "good", "1.1.0", key=key),
        "bad-migration": make_probe_bundle(
            root / "badmig",
            "1.1.0",
            key=key,
            migrations={**MIGRATIONS, "0003_broken.sql": "ALTER TABLE no_such_table ADD COLUMN x TEXT;"},
        ),
        "bad-health": make_probe_bundle(
            root / "badhealth", "1.1.0", key=key, module_text="raise ImportError('model file missing')\n"
        ),
        "key": key,
    }


def _seed_install(prefix: Path, bundles: dict[str, Path]) -> dict[str, str]:
    install(bundles["1.0.0"], prefix, operator="engineer", approved_by="qa-lead")
    con = sqlite3.connect(prefix / "data" / "aimd.db")
    with con:
        con.execute("INSERT INTO jobs(name) VALUES ('study-1')")
    con.close()
    (prefix / "config" / "aimd.toml").write_text('env = "production"\nlog_level = "WARNING"\n')
    return Layout(prefix).state_hashes()


def test_upgrade_then_one_command_rollback_restores_hash_identical_state(tmp_path: Path, bundles) -> None:
    prefix = tmp_path / "opt"
    before = _seed_install(prefix, bundles)
    layout = Layout(prefix)
    result = install(bundles["1.1.0"], prefix, operator="engineer")
    assert layout.current_version() == "1.1.0" and result.previous == "1.0.0"
    assert layout.state_hashes()["data"] != before["data"]  # the migration changed the database
    proc = _cli("rollback", "--prefix", str(prefix), "--json")
    assert proc.exit_code == 0, proc.output
    assert layout.current_version() == "1.0.0"
    assert layout.state_hashes() == before
    assert json.loads(proc.output)["hashes"] == before
    rollback(prefix)  # the first install too: back to the empty prefix
    assert layout.current_version() is None and layout.state_hashes() == {"data": "absent", "config": "absent"}
    with pytest.raises(RollbackError, match="no install to roll back"):
        rollback(prefix)
    rollback_events = [e for e in read_events(layout.events) if e["kind"] == "rollback"]
    assert rollback_events[-1]["event"] == "failed"


@pytest.mark.parametrize(("bundle", "step"), [("bad-migration", "migrate"), ("bad-health", "health")])
def test_install_failing_mid_way_rolls_back_automatically(tmp_path: Path, bundles, bundle: str, step: str) -> None:
    prefix = tmp_path / "opt"
    before = _seed_install(prefix, bundles)
    with pytest.raises(InstallFailedError, match=f"failed at step '{step}'.*rolled back"):
        install(bundles[bundle], prefix)
    layout = Layout(prefix)
    assert layout.current_version() == "1.0.0"
    assert layout.state_hashes() == before
    assert not (layout.releases / "1.1.0").exists()
    events = [e for e in read_events(layout.events) if e["kind"] == "install"]
    assert [e["event"] for e in events[-2:]] == ["failed", "executed"]
    assert events[-2]["step"] == step and events[-1]["result"]["identical"] is True


def test_tampered_bundle_is_never_installed(tmp_path: Path, bundles) -> None:
    prefix = tmp_path / "opt"
    bad = tmp_path / "tampered"
    import shutil

    shutil.copytree(bundles["1.0.0"], bad)
    (bad / "docs" / "manual.md").write_text("changed")
    with pytest.raises(IntegrityError, match="changed file docs/manual.md"):
        install(bad, prefix)
    assert not (prefix / "releases").exists() and not (prefix / "current").exists()
    proc = _cli("install", str(bad), "--prefix", str(prefix))
    assert isinstance(proc.exception, IntegrityError) and "changed file" in str(proc.exception)


def test_second_concurrent_install_is_refused(tmp_path: Path, bundles) -> None:
    prefix = tmp_path / "opt"
    layout = Layout(prefix)
    with prefix_lock(layout):
        proc = _cli("install", str(bundles["1.0.0"]), "--prefix", str(prefix))
        assert isinstance(proc.exception, InstallLockedError) and proc.exception.exit_code == 1
        with pytest.raises(InstallLockedError):
            rollback(prefix) if layout.releases.exists() else install(bundles["1.0.0"], prefix)
    assert install(bundles["1.0.0"], prefix).version == "1.0.0"
    with pytest.raises(InvalidInputError, match="already the current release"):
        install(bundles["1.0.0"], prefix)


def test_every_step_is_logged_with_lifecycle_fields(tmp_path: Path, bundles) -> None:
    prefix = tmp_path / "opt"
    install(bundles["1.0.0"], prefix, operator="engineer", approved_by="qa-lead")
    events = read_events(Layout(prefix).events)
    assert [e["event"] for e in events][:2] == ["created", "approved"] and events[-1]["event"] == "completed"
    assert [e["step"] for e in events if e["event"] == "executed"] == [
        "verify",
        "preflight",
        "install",
        "backup",
        "configure",
        "migrate",
        "health",
        "switch",
    ]
    assert events[1]["operator"] == "qa-lead" and events[0]["operator"] == "engineer"
    for e in events:
        assert set(e) >= {"time", "operator", "machine", "parameters", "result"} and e["event"] in LIFECYCLE
    assert chain_break(events) is None
    proc = _cli("log", "--prefix", str(prefix), "--event", "executed", "--json")
    assert proc.exit_code == 0 and len(json.loads(proc.output)["events"]) == 8
    lines = Layout(prefix).events.read_text().splitlines()
    edited = json.loads(lines[3])
    edited["result"] = "forged"
    lines[3] = json.dumps(edited)
    Layout(prefix).events.write_text("\n".join(lines) + "\n")
    assert chain_break(read_events(Layout(prefix).events)) == 3
    assert _cli("log", "--prefix", str(prefix)).exit_code == 1


def test_rollback_drill_small_data(tmp_path: Path) -> None:
    drill = rollback_drill(tmp_path, data_bytes=200_000)
    assert drill["identical"] and drill["version_after"] == "1.0.0" and drill["rollback_s"] > 0
