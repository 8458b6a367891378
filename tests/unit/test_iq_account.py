"""The service account of an install (002 §4.1.1 hardened reference, §6.2.1 d): code and configuration stay
root's, data is the account's, the health check runs as the account; an unknown account is refused."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aimd.cli.main import app
from aimd.core.errors import InvalidInputError
from aimd.iq.account import interpreter_for, lookup_account
from aimd.iq.checks.base import IQContext
from aimd.iq.checks.environment import FileModeCheck, NotRootCheck
from aimd.iq.drill import MIGRATIONS, make_probe_bundle
from aimd.iq.install import InstallFailedError, Layout, base_site_packages, install, rollback
from aimd.iq.template import protocol_template

runner = CliRunner()
ACCOUNT = "nobody" if os.geteuid() == 0 else getpass.getuser()  # not root: only oneself can own the data


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bundles")
    key = root / "release.key"
    first = make_probe_bundle(root, "1.0.0", key=key, migrations={"0001_jobs.sql": MIGRATIONS["0001_jobs.sql"]})
    return {"1.0.0": first, "1.1.0": make_probe_bundle(root, "1.1.0", key=key)}


@pytest.fixture
def site() -> Iterator[tuple[Path, str]]:
    """A folder the account can enter (pytest's own are root's, 0700) and a Python it can start."""
    folder = Path(tempfile.mkdtemp(prefix="aimd-site-"))
    folder.chmod(0o755)
    python = interpreter_for(lookup_account(ACCOUNT), folder, *map(Path, base_site_packages()))
    try:
        if python is None:
            pytest.skip(
                f"{ACCOUNT} cannot start a Python {sys.version_info[0]}.{sys.version_info[1]} or read its packages"
            )
        yield folder, python
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _owner_mode(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def test_install_gives_data_to_the_account_and_keeps_code_and_config_root_s(site, bundles) -> None:
    folder, python = site
    prefix, account = folder / "opt", lookup_account(ACCOUNT)
    me = os.geteuid()
    proc = runner.invoke(
        app,
        ["iq", "install", str(bundles["1.0.0"]), "--prefix", str(prefix), "--service-user", ACCOUNT]
        + ["--python", python, "--json"],
    )
    assert proc.exit_code == 0, proc.output
    assert json.loads(proc.output)["service_user"] == ACCOUNT
    layout = Layout(prefix)
    assert layout.read_history()[-1]["service_user"] == ACCOUNT
    # code: the installer's, writable by nobody else
    for path in (layout.releases / "1.0.0", layout.releases / "1.0.0" / "bundle" / "manifest.json"):
        uid, _, mode = _owner_mode(path)
        assert uid == me and not mode & 0o022, (path, oct(mode))
    # configuration: the installer's, read (not written) by the account's group
    assert _owner_mode(layout.config) == (me, account.gid, 0o750)
    assert _owner_mode(layout.config / "aimd.toml") == (me, account.gid, 0o640)
    # data: the account's, nothing for others
    assert _owner_mode(layout.data) == (account.uid, account.gid, 0o750)
    assert _owner_mode(layout.data / "aimd.db") == (account.uid, account.gid, 0o600)
    assert _owner_mode(layout.backups)[2] == 0o700
    # the layout is set before the health check, which starts the release as the account
    steps = [e["step"] for e in _executed(layout)]
    assert steps[steps.index("migrate") + 1 : steps.index("health")] == ["permissions"]
    # upgrade and rollback: the restored copies are handed back to the account
    install(bundles["1.1.0"], prefix, python=python)  # the recorded account is kept
    rollback(prefix)
    assert _owner_mode(layout.data / "aimd.db")[:2] == (account.uid, account.gid)
    assert _owner_mode(layout.config / "aimd.toml") == (me, account.gid, 0o640)


def _executed(layout: Layout) -> list[dict]:
    from aimd.iq.events import read_events

    return [e for e in read_events(layout.events) if e["kind"] == "install" and e["event"] == "executed"]


def test_unknown_service_account_is_refused_before_anything_is_written(tmp_path: Path, bundles) -> None:
    prefix = tmp_path / "opt"
    proc = runner.invoke(
        app, ["iq", "install", str(bundles["1.0.0"]), "--prefix", str(prefix), "--service-user", "aimd-no-such-user"]
    )
    assert isinstance(proc.exception, InvalidInputError) and proc.exception.exit_code == 2
    assert "'aimd-no-such-user' does not exist" in str(proc.exception)
    assert "useradd --system" in str(proc.exception) and not prefix.exists()
    with pytest.raises(InvalidInputError, match="is root"):
        lookup_account("root")


def test_file_modes_accept_config_shared_with_the_service_group_only(site, bundles) -> None:
    folder, python = site
    prefix = folder / "opt"
    install(bundles["1.0.0"], prefix, service_user=ACCOUNT, python=python)
    layout, protocol = Layout(prefix), protocol_template()

    def verdict(out: str) -> tuple[str, str]:
        res = FileModeCheck().execute(IQContext(protocol=protocol, out=folder / out, prefix=layout))
        return res.verdict.value, res.observed

    assert verdict("a") == ("pass", "0 of 2 too open; 1 read by the service account's group")
    toml = layout.config / "aimd.toml"
    os.chown(toml, -1, os.getegid() if os.getegid() != lookup_account(ACCOUNT).gid else 0)
    assert verdict("b")[0] == "fail"  # 0640 for a group other than the service account's
    os.chown(toml, -1, lookup_account(ACCOUNT).gid)
    toml.chmod(0o660)
    assert verdict("c")[0] == "fail"  # the service account's group could change it


_LISTEN = "import socket, time\ns = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
_LISTEN += "print(s.getsockname()[1], flush=True); time.sleep(120)"


def _not_root_verdict(tmp_path: Path, python: str, drop: dict) -> tuple[str, str]:
    proc = subprocess.Popen([python, "-I", "-c", _LISTEN], stdout=subprocess.PIPE, text=True, cwd="/", **drop)
    try:
        port = int(proc.stdout.readline()) if proc.stdout else 0
        res = NotRootCheck().execute(
            IQContext(protocol=protocol_template(), out=tmp_path, target=f"http://127.0.0.1:{port}")
        )
        return res.verdict.value, res.observed
    finally:
        proc.kill()
        proc.wait()


def test_not_root_passes_for_a_service_under_the_account_and_fails_for_root(site, tmp_path: Path) -> None:
    _, python = site
    account = lookup_account(ACCOUNT)
    verdict, observed = _not_root_verdict(tmp_path / "a", python, account.popen_kwargs())  # as root: dropped
    assert verdict == "pass" and observed == f"{ACCOUNT} (uid {account.uid})"
    if os.geteuid() != 0:
        pytest.skip("a process listening as root needs root")
    assert _not_root_verdict(tmp_path / "b", sys.executable, {}) == ("fail", "root (uid 0)")


def test_health_check_runs_as_the_account(site, tmp_path: Path) -> None:
    folder, python = site
    if os.geteuid() != 0:
        pytest.skip("only root can start the release as another account")
    bundle = make_probe_bundle(
        tmp_path,
        "1.0.0",
        module_text="import os\nassert os.geteuid() != 0, 'imported as root'\n__version__ = '1.0.0'\n",
    )
    assert install(bundle, folder / "opt", service_user=ACCOUNT, python=python).service_user == ACCOUNT
    with pytest.raises(InstallFailedError, match="failed at step 'health'.*imported as root"):
        install(bundle, folder / "opt-root", python=python)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root starts the drill's service as another account")
def test_the_link_drill_service_runs_as_the_account_or_says_why_not(site: tuple[Path, str], tmp_path: Path) -> None:
    """The drill's aimd serve takes the install's account when it can reach the drill's folder; in a folder
    private to root (pytest's own, 0700) it runs as root and says why."""
    from aimd.iq.linkdrill import DrillService
    from aimd.iq.specs import LinkDrill, LinkFault

    folder, python = site
    account = lookup_account(ACCOUNT)
    spec = LinkDrill(model="lesion=x.pt", faults=[LinkFault(name="cut", link="pacs", cut=True, expect="clear_error")])
    reachable = DrillService(
        spec, folder / "links", pacs_url=None, database_url=None, case=None, python=python, account=account
    )
    assert reachable.account == account and reachable.runs_as == f"{ACCOUNT} (uid {account.uid})"
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    refused = DrillService(
        spec, private / "links", pacs_url=None, database_url=None, case=None, python=python, account=account
    )
    assert refused.account is None and refused.runs_as.startswith(f"root: the account {ACCOUNT} cannot enter"), (
        refused.runs_as
    )
