"""IQ checks on an installed prefix: each passes on a sound installation and fails on a broken one."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from aimd.iq.checks.base import IQCheck, IQContext
from aimd.iq.checks.environment import DebugOffCheck, FileModeCheck, HardwareCheck, LockCheck, SoftwareCheck
from aimd.iq.checks.logs import LifecycleLogCheck, RetrievalRetentionCheck
from aimd.iq.checks.plan import PeopleCheck, ProcessCheck
from aimd.iq.checks.reliability import ConcurrentInstallCheck, DiskFullCheck, MemoryLimitCheck, RollbackDrillCheck
from aimd.iq.checks.versions import ConsistencyCheck, FilesCheck, NamingCheck, ReleaseProcessCheck
from aimd.iq.drill import make_probe_bundle
from aimd.iq.install import Layout, install
from aimd.iq.protocol import Person, Resources, SoftwareRequirement, TrainingRecord
from aimd.iq.template import protocol_template


def _protocol():
    p = protocol_template("1.0.0")
    p.software = [s for s in p.software if s.category != "library"] + [
        SoftwareRequirement(category="library", name="packaging", version=">=20")
    ]
    return p


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("iq")
    install(make_probe_bundle(root, "1.0.0"), root / "prefix", operator="engineer", approved_by="qa")
    return root / "prefix"


@pytest.fixture
def prefix(installed: Path, tmp_path: Path) -> Layout:
    """A private copy of the installed prefix that a test may break."""
    copy = tmp_path / "prefix"
    shutil.copytree(installed, copy, symlinks=True)
    # the release's venv points at its own interpreter path; keep it where it was built
    for link in (copy / "releases" / "1.0.0").rglob("*"):
        if link.is_symlink() and str(installed) in os.readlink(link):
            link.unlink()
            link.symlink_to(os.readlink(installed / link.relative_to(copy)).replace(str(installed), str(copy)))
    return Layout(copy)


def _run(check: IQCheck, protocol, out: Path, prefix: Layout | None = None) -> str:
    return check.execute(IQContext(protocol=protocol, out=out, prefix=prefix)).verdict.value


def test_sound_installation_passes_prefix_checks(prefix: Layout, tmp_path: Path) -> None:
    p = _protocol()
    for check in (
        ProcessCheck(),
        HardwareCheck(),
        SoftwareCheck(),
        LockCheck(),
        FileModeCheck(),
        DebugOffCheck(),
        ConsistencyCheck(),
        FilesCheck(),
        NamingCheck(),
        ReleaseProcessCheck(),
        LifecycleLogCheck(),
        RetrievalRetentionCheck(),
    ):
        assert _run(check, p, tmp_path / "out", prefix) == "pass", check.key


def test_checks_without_a_prefix_are_not_evaluated(tmp_path: Path) -> None:
    p = _protocol()
    for check in (
        LockCheck(),
        FileModeCheck(),
        DebugOffCheck(),
        ConsistencyCheck(),
        FilesCheck(),
        NamingCheck(),
        ReleaseProcessCheck(),
        LifecycleLogCheck(),
        RetrievalRetentionCheck(),
    ):
        assert _run(check, p, tmp_path) == "not_evaluated", check.key


def test_changed_and_extra_installed_files_are_found(prefix: Layout, tmp_path: Path) -> None:
    site = next((prefix.current.resolve() / "lib").glob("python*/site-packages"))
    (site / "iq_probe" / "__init__.py").write_text("__version__ = 'patched'\n")
    (site / "iq_probe" / "backdoor.py").write_text("")
    (prefix.current / "bundle" / "docs" / "notes.txt").write_text("extra")
    res = FilesCheck().execute(IQContext(protocol=_protocol(), out=tmp_path, prefix=prefix))
    assert res.verdict.value == "fail"
    for expected in ("changed iq_probe/__init__.py", "extra iq_probe/backdoor.py", "extra file docs/notes.txt"):
        assert expected in res.reason
    assert res.deviation is not None and res.deviation.critical


def test_version_disagreement_is_found(prefix: Layout, tmp_path: Path) -> None:
    p = _protocol()
    p.version_manifest.components[1].version = "0.9.0"
    res = ConsistencyCheck().execute(IQContext(protocol=p, out=tmp_path, prefix=prefix))
    assert res.verdict.value == "fail" and "protocol document user manual: 0.9.0" in res.reason


def test_open_file_modes_debug_and_library_versions_fail(prefix: Layout, tmp_path: Path) -> None:
    (prefix.data / "aimd.db").chmod(0o644)
    (prefix.config / "aimd.toml").write_text('env = "development"\n')
    p = _protocol()
    p.software.append(SoftwareRequirement(category="library", name="packaging", version="<1"))
    assert _run(FileModeCheck(), p, tmp_path, prefix) == "fail"
    assert _run(DebugOffCheck(), p, tmp_path, prefix) == "fail"
    assert _run(SoftwareCheck(), p, tmp_path, prefix) == "fail"


def test_hardware_below_minimum_fails(tmp_path: Path) -> None:
    p = _protocol()
    p.environment_minimum = Resources(cpu_cores=4096, memory_gb=8, disk_free_gb=1)
    p.environment_recommended = Resources(cpu_cores=4096, memory_gb=8, disk_free_gb=1)
    res = HardwareCheck().execute(IQContext(protocol=p, out=tmp_path))
    assert res.verdict.value == "fail" and "cpu_cores" in res.reason


def test_people_and_training_records(tmp_path: Path) -> None:
    p = _protocol()
    assert _run(PeopleCheck(), p, tmp_path) == "fail"  # the template leaves people to the site
    trained = [TrainingRecord(course="aimd IQ", date="2026-11-30", assessed=True, result="passed")]
    p.personnel = [
        Person(name="Li", role="project manager", party="user", training=trained),
        Person(name="Wang", role="install engineer", party="provider", qualification="RHCE", training=trained),
        Person(name="Zhao", role="quality expert", party="provider", training=trained),
        Person(name="Chen", role="clinical expert", party="user", training=trained),
    ]
    assert _run(PeopleCheck(), p, tmp_path) == "pass"
    p.personnel[1].qualification = ""
    p.personnel[2].training[0] = TrainingRecord(course="aimd IQ", date="2026-11-30", assessed=False)
    res = PeopleCheck().execute(IQContext(protocol=p, out=tmp_path))
    assert res.verdict.value == "fail" and "Wang: no qualification" in res.reason and "not assessed" in res.reason


def test_process_without_owner_fails(tmp_path: Path) -> None:
    p = _protocol()
    p.install_steps[4].responsible = "someone"
    assert _run(ProcessCheck(), p, tmp_path) == "fail"


def test_edited_or_missing_log_entries_fail_the_log_audit(prefix: Layout, tmp_path: Path) -> None:
    lines = prefix.events.read_text().splitlines()
    prefix.events.write_text("\n".join(lines[:-1]) + "\n")  # the 'completed' entry removed
    res = LifecycleLogCheck().execute(IQContext(protocol=_protocol(), out=tmp_path, prefix=prefix))
    assert res.verdict.value == "fail" and "no 'completed' or 'failed' event" in res.reason
    prefix.events.write_text("\n".join(lines[1:]) + "\n")  # the 'created' entry removed
    res = LifecycleLogCheck().execute(IQContext(protocol=_protocol(), out=tmp_path, prefix=prefix))
    assert "hash chain broken at entry 0" in res.reason
    assert _run(RetrievalRetentionCheck(), _protocol(), tmp_path, prefix) == "fail"


def test_unapproved_or_unsigned_release_fails(prefix: Layout, tmp_path: Path) -> None:
    manifest = json.loads((prefix.current / "bundle" / "manifest.json").read_text())
    manifest["created_by"] = "someone else"
    (prefix.current / "bundle" / "manifest.json").write_text(json.dumps(manifest))
    assert _run(ReleaseProcessCheck(), _protocol(), tmp_path, prefix) == "fail"
    notes = prefix.current / "bundle" / "RELEASE-NOTES.md"
    notes.write_text("# iq-probe 1.0.0\nbug fixes\n")
    assert _run(NamingCheck(), _protocol(), tmp_path, prefix) == "fail"


def test_concurrent_installs_are_serialised(tmp_path: Path) -> None:
    res = ConcurrentInstallCheck().execute(IQContext(protocol=_protocol(), out=tmp_path / "a"))
    assert res.verdict.value == "pass", res.reason + res.observed
    assert res.data["current"] in {"1.0.0", "1.1.0"}
    # a prefix whose lock cannot be taken (its lock path is a folder): both installs fail, neither is refused
    (tmp_path / "b" / "scratch" / "concurrent" / "prefix" / ".install.lock").mkdir(parents=True)
    res = ConcurrentInstallCheck().execute(IQContext(protocol=_protocol(), out=tmp_path / "b"))
    assert res.verdict.value == "fail" and res.data["refused_by_lock"] == 0 and res.data["current"] is None


def test_installed_packages_other_than_the_lock_fail(prefix: Layout, tmp_path: Path) -> None:
    lock = prefix.current / "bundle" / "requirements.lock"
    pins = [line for line in lock.read_text().splitlines() if "==" in line]
    name, version = pins[0].split(" ", 1)[0].split("==")
    lock.write_text(lock.read_text().replace(f"{name}=={version}", f"{name}=={version}.post9"))
    res = LockCheck().execute(IQContext(protocol=_protocol(), out=tmp_path, prefix=prefix))
    assert res.verdict.value == "fail" and f"{name}: {version} ≠ {version}.post9" in res.reason


def test_rollback_drill_with_a_damaged_backup_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drill = sys.modules["aimd.iq.drill"]
    real_install = drill.install

    def install_then_damage_backup(bundle, prefix, **kw):  # the backup's disk flips a byte after the upgrade
        result = real_install(bundle, prefix, **kw)
        blobs = sorted((Path(prefix) / "backups").glob("*/data/blobs/*.bin"))
        if blobs:
            data = bytearray(blobs[0].read_bytes())
            data[0] ^= 0xFF
            blobs[0].write_bytes(bytes(data))
        return result

    ctx = IQContext(protocol=_protocol(), out=tmp_path / "ok")
    ok = RollbackDrillCheck().execute(ctx)
    assert ok.verdict.value == "pass" and all(d["identical"] for d in ok.data["drills"])
    monkeypatch.setattr(drill, "install", install_then_damage_backup)
    bad = RollbackDrillCheck().execute(IQContext(protocol=_protocol(), out=tmp_path / "bad"))
    assert bad.verdict.value == "fail" and "differs from the backup" in bad.observed


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_full_disk_is_refused_before_anything_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = DiskFullCheck().execute(IQContext(protocol=_protocol(), out=tmp_path / "a"))
    if res.verdict.value == "not_evaluated":
        pytest.skip(f"this machine cannot mount a tmpfs: {res.reason}")
    assert res.verdict.value == "pass" and res.data["warning_logged"], res.observed
    # an installer without the free-space margin starts, runs out of space half-way and must roll back
    monkeypatch.setattr(sys.modules["aimd.iq.install"], "SPACE_MARGIN", 0)
    res = DiskFullCheck().execute(IQContext(protocol=_protocol(), out=tmp_path / "b"))
    assert res.verdict.value == "fail" and "No space left on device" in res.data["message"]


def test_memory_limit_is_refused_before_anything_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = MemoryLimitCheck().execute(IQContext(protocol=_protocol(), out=tmp_path / "a"))
    assert res.verdict.value == "pass", res.observed
    assert "not enough memory" in res.data["message"] and res.data["warning_logged"]
    # an installer that asks for almost no memory starts under the limit: no warning, the drill fails
    monkeypatch.setenv("AIMD_IQ_MEMORY_NEEDED", "1")
    res = MemoryLimitCheck().execute(IQContext(protocol=_protocol(), out=tmp_path / "b"))
    assert res.verdict.value == "fail" and not res.data["warning_logged"]


def test_a_public_certificate_may_be_readable_but_a_private_key_may_not(prefix: Layout, tmp_path: Path) -> None:
    from aimd.iq.tls import self_signed

    key, cert = self_signed(prefix.config / "tls")
    cert.chmod(0o644)
    p = _protocol()
    assert _run(FileModeCheck(), p, tmp_path / "a", prefix) == "pass"
    key.chmod(0o644)
    res = FileModeCheck().execute(IQContext(protocol=p, out=tmp_path / "b", prefix=prefix))
    assert res.verdict.value == "fail" and "key.pem" in res.reason and "cert.pem" not in res.reason


def test_ui_pages_on_a_system_without_url_are_not_evaluated(tmp_path: Path) -> None:
    from aimd.iq.checks.service import UiRenderCheck
    from aimd.iq.protocol import IQProtocol

    p = protocol_template("1.0.0")
    assert [(c.id, c.system) for c in p.functional_tests if c.kind == "ui"] == [("U1", "platform")]
    # a protocol written before cases named their system: every case is on the service
    old = p.model_dump(mode="json")
    for case in old["functional_tests"]:
        del case["system"]
    assert {c.system for c in IQProtocol.model_validate(old).functional_tests} == {"service"}
    res = UiRenderCheck().execute(IQContext(protocol=p, out=tmp_path, target="https://127.0.0.1:9"))
    assert res.verdict.value == "not_evaluated" and "U1 (platform)" in res.reason and "--platform" in res.reason
