"""Every example shown in ``--help`` runs: each is executed in a fresh copy of a folder that holds the
files the examples name (small phantoms, a trained run, masks, tables), through the CLI's own
``main`` in this process (so PyTorch is imported once), and must end with the exit code its help
states (0 unless the example's line says ``→ exit N``).

Speed substitutions (flags appended, the last value wins, meaning kept): phantoms on a 32³ grid,
training one epoch of two steps, the evaluation of a run on the description characteristic without
the PDF; a release bundle's ``--version`` is this checkout's version. Examples that start a server
which runs until stopped, need a cluster, a database server, a system prefix or a project made in
the platform, take minutes, or name an id only a running system knows are listed in
:data:`NOT_RUN` with the test that runs them; a test keeps that list under a third.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from aimd import __version__

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from test_cli_examples import EXAMPLES
from test_metrics_cli import _coco

pytestmark = pytest.mark.slow

EXIT_MARK = re.compile(r"→ exit (\d)")

#: command prefix → flags appended for speed (documented in the module docstring).
FAST = {
    "aimd data phantom ": " --size 32",
    "aimd model train ": " --epochs 1 --max-steps 2",
    "aimd evaluate --model ": " --only description --no-pdf",
}

#: example → why it is not run here, and what runs it.
NOT_RUN = {
    "aimd serve --model lung=models/lung.onnx@1.0 --pacs http://127.0.0.1:8042/dicom-web": "a server that runs "
    "until stopped (tests/integration/test_serving_pacs.py runs it against Orthanc)",
    "aimd serve --model blob=blob.onnx@1.0 --port 8000": "a server that runs until stopped "
    "(tests/integration/test_iq_serving.py)",
    "aimd platform serve --data aimd-platform --port 8600": "a server that runs until stopped "
    "(tests/integration/test_workspace_browser.py)",
    "aimd platform init --data aimd-platform && aimd platform serve --data aimd-platform": "ends in a server "
    "that runs until stopped; `platform init` runs below",
    "aimd metrics seg ref/ pred/ --ray": "starts a Ray runtime (tests/integration/test_ray_scaleout.py)",
    "aimd model predict run1 --data ph/ --out preds/ --ray": "starts a Ray runtime "
    "(tests/integration/test_ray_scaleout.py)",
    "aimd model predict run1 --data ph/ --out preds/ --ray-address head:6379": "needs a Ray cluster "
    "(tests/integration/test_ray_scaleout.py starts one)",
    "aimd model federate --sites site_a/ site_b/ site_c/ --rounds 5 --out fed1": "starts a Flower simulation "
    "on Ray (tests/integration/test_federate.py)",
    "aimd model federate --sites site_a/ site_b/ --rounds 5 --out fed_dp --dp-noise 1.0 --dp-clip 1.0": "starts a "
    "Flower simulation on Ray (tests/integration/test_federate.py; DP-SGD clients in "
    "tests/unit/test_models_federated_site.py)",
    "aimd metrics seg ref/ pred/ --ray-address head:6379": "needs a Ray cluster "
    "(tests/integration/test_ray_scaleout.py starts one)",
    "aimd iq install dist/aimd-1.0.0 --prefix /opt/aimd --approved-by qa": "installs into a system prefix "
    "(tests/unit/test_iq_install.py installs into temporary prefixes)",
    "aimd iq rollback --prefix /opt/aimd": "a system prefix (tests/unit/test_iq_install.py)",
    "aimd iq log --prefix /opt/aimd --task 1a2b3c": "a system prefix and a task id of a past install "
    "(tests/unit/test_iq_install.py)",
    "aimd iq run --protocol iq.yaml --prefix /opt/aimd --target https://127.0.0.1:8443 --out iq-report/ "
    "--profile quick": "needs the installed, running service (tests/integration/test_iq_service.py)",
    "aimd audit verify postgresql+psycopg://aimd@127.0.0.1/aimd --json": "needs a PostgreSQL server "
    "(tests/integration and tests/unit/test_store.py start one)",
    "aimd demo --out aimd-demo --cases 20": "the whole path, minutes (make demo; tests/integration/test_iq_demo.py)",
    "aimd evaluate --out report/": "trains the reference model first (tests/unit/test_evaluation_training.py)",
    "aimd evaluate mask-dataset /usr/share/mricron/templates/ch2.nii.gz /usr/share/mricron/templates/ch2bet.nii.gz "
    "--out colin27 --label brain": "a 2-minute data preparation that the README tour runs "
    "(tests/e2e/test_readme_tour.py)",
    "aimd serve token revoke 3f2a9c01b2de": "names the id of a token a running service issued "
    "(tests/unit/test_serving_app.py revokes one)",
    "aimd model zoo --verify": "re-measures both shipped devices on 60 fresh cases, minutes "
    "(tests/unit/test_models_reference_shipped.py)",
    "aimd serve index --model runs/lesions --data phantoms/ --out index.npz": "needs a trained lesion model "
    "(tests/unit/test_serving_findings.py builds an index)",
    "aimd platform member add nodules ann1 ann2 --data aimd-platform": "needs a project made in the platform "
    "(tests/unit/test_platform_members.py)",
    "aimd platform member remove nodules ann2 --data aimd-platform": "needs a project made in the platform "
    "(tests/unit/test_platform_members.py)",
    "aimd platform member list nodules --data aimd-platform --json": "needs a project made in the platform "
    "(tests/unit/test_platform_members.py)",
    "aimd platform import-study nodules study-deid/ --case-key case-0001 --data aimd-platform": "needs a project "
    "made in the platform and a de-identified DICOM study (tests/unit/test_platform_study_import.py)",
}

#: text in an example → what runs instead: a release bundle's version must be this checkout's.
REPLACE = {"--version 1.0.0": f"--version {__version__}"}

#: example → files and folders it creates itself, removed from its copy first.
WITHOUT = {
    "aimd model train --task seg --model unet-small --data ph/dataset.json --out run1": ["run1"],
    "aimd model train --task seg --model unet-small --data ph/dataset.json --out run1 --epochs 5": ["run1"],
    "aimd platform init --data aimd-platform --json": ["aimd-platform"],
}

#: example → commands run first in its folder (what a user has done before it).
BEFORE = {
    "aimd package verify export/ --json": ["aimd package export ph/cases export/ --version 1.0 --force --reason r"],
    "aimd platform restore backups/2026-12-04 --data aimd-platform-restored": [
        "aimd platform backup backups/2026-12-04 --data aimd-platform"
    ],
    "aimd iq bundle verify dist/aimd-1.0.0 --public-key release.key.pub": [
        "aimd iq keygen release.key",
        f"aimd iq bundle build dist/aimd-1.0.0 --version {__version__} --key release.key --notes RELEASE-NOTES.md",
    ],
    "aimd iq bundle build dist/aimd-1.0.0 --version 1.0.0 --key release.key --notes RELEASE-NOTES.md --doc manual.md": [
        "aimd iq keygen release.key"
    ],
    "aimd iq bundle build out/ --version 1.0.0 --key release.key --notes NOTES.md": ["aimd iq keygen release.key"],
    "aimd platform user disable ann1 --data aimd-platform": [
        "aimd platform user add ann1 --role annotator --data aimd-platform"
    ],
    "aimd platform user role ann1 reviewer --data aimd-platform": [
        "aimd platform user add ann1 --role annotator --data aimd-platform"
    ],
}

#: the folder every example starts from, built once per session by these commands (then :func:`_files`).
PREPARE = [
    "aimd data phantom ph/ --cases 5 --seed 1 --size 32 --annotators 2",
    "aimd model train --task seg --model unet-small --target organs --data ph/dataset.json --out run1 "
    "--epochs 1 --max-steps 2",
    "aimd evaluate claims-template --out claims.yaml",
    "aimd annotation taxonomy show --json > my_taxonomy.json",
    "aimd iq protocol-template > iq.yaml",
    "aimd platform init --data aimd-platform",
]


def aimd(command: str, cwd: Path) -> tuple[int, str]:
    """Run one ``aimd ...`` command line (``> file`` redirects stdout) in ``cwd``; exit code and stdout."""
    from aimd.cli.main import main

    line, _, target = command.partition(" > ")
    words = shlex.split(line)
    assert words[0] == "aimd", command
    out = io.StringIO()
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out):
            code = main(words[1:])
    finally:
        os.chdir(previous)
    if target:
        (cwd / target.strip()).write_text(out.getvalue(), encoding="utf-8")
    return code, out.getvalue()


def _files(root: Path) -> None:
    """Copies and small tables under the names the examples use."""
    ph = root / "ph"
    case = ph / "cases" / "case_0001"
    for name in ("phantoms", "phantom", "site_f", "sites"):
        shutil.copytree(ph, root / name)
    shutil.copytree(ph / "cases", root / "cases")
    shutil.copytree(ph / "cases", root / "annotations")
    shutil.copytree(case, root / "case")
    shutil.copytree(root / "run1", root / "runs" / "seg")
    _series(case / "ct", root / "scan", "1.2.3")
    shutil.copy(case / "ct.nii.gz", root / "ct.nii.gz")
    shutil.copy(ph / "cases" / "case_0002" / "ct.nii.gz", root / "mr.nii.gz")
    shutil.copy(case / "labels.nii.gz", root / "ref.nii.gz")
    shutil.copy(case / "annotations" / "reader_1" / "masks" / "organs.nii.gz", root / "pred.nii.gz")
    for side in ("ref", "pred"):
        (root / side).mkdir()
    for folder in sorted((ph / "cases").iterdir()):
        shutil.copy(folder / "labels.nii.gz", root / "ref" / f"{folder.name}.nii.gz")
        shutil.copy(
            folder / "annotations" / "reader_1" / "masks" / "organs.nii.gz", root / "pred" / f"{folder.name}.nii.gz"
        )
    for n in (1, 2):  # a package with its masks beside it
        shutil.copy(case / "annotations" / f"reader_{n}.json", root / f"reader_{n}.json")
        shutil.copytree(case / "annotations" / f"reader_{n}", root / f"reader_{n}")
    for name in ("old.json", "new.json", "v1.json", "v2.json"):
        shutil.copy(root / "my_taxonomy.json", root / name)
    _tables(root)
    (root / "provider.yaml").write_text("version: '1.0.0'\nprovider: Example Medical AI\n", encoding="utf-8")
    notes = f"# aimd {__version__}\n\n## Changes\n- first release\n## Fixes\n- none\n## Dependencies\n- torch 2.13.0\n"
    for name in ("NOTES.md", "RELEASE-NOTES.md"):
        (root / name).write_text(notes, encoding="utf-8")
    (root / "manual.md").write_text(f"# aimd {__version__} manual\n\nInstall with aimd iq install.\n", encoding="utf-8")


def _series(src: Path, dst: Path, uid: str) -> None:
    import pydicom

    dst.mkdir()
    for file in sorted(src.iterdir()):
        ds = pydicom.dcmread(file)
        ds.SeriesInstanceUID = uid
        ds.save_as(dst / file.name)


def _tables(root: Path) -> None:
    ref, det = _coco(root)  # the two-image COCO pair of the metrics CLI tests
    ref.rename(root / "ref_coco.json")
    det.rename(root / "detections.json")
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 60)
    with (root / "results.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case", "label", "prob"])
        w.writerows([f"c{i}", int(t), round(float(t * 0.4 + rng.random()), 4)] for i, t in enumerate(truth))
    r1 = rng.integers(1, 4, 60)
    with (root / "ratings.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case", "r1", "r2", "r3"])
        for i, a in enumerate(r1):
            b, c = (int(a) if rng.random() < 0.7 else int(rng.integers(1, 4)) for _ in range(2))
            w.writerow([f"c{i}", int(a), b, c])


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("help-examples") / "ws"
    root.mkdir()
    for command in PREPARE:
        code, out = aimd(command, root)
        assert code == 0, f"{command}: {out[-2000:]}"
    _files(root)
    return root


def _fast(example: str) -> str:
    for text, instead in REPLACE.items():
        example = example.replace(text, instead)
    for prefix, extra in FAST.items():
        if example.startswith(prefix):
            head, sep, tail = example.partition(" > ")
            return head + extra + sep + tail
    return example


def _expected_exit(example: str) -> int:
    for _where, line in EXAMPLES_WITH_LINES:
        if line.startswith(example):
            found = EXIT_MARK.search(line)
            return int(found.group(1)) if found else 0
    return 0


def _example_lines() -> list[tuple[str, str]]:
    """(command path, the whole help line holding the example) — the exit mark sits after the example."""
    from typer.main import get_command

    from aimd.cli.main import app

    out: list[tuple[str, str]] = []

    def walk(cmd: object, path: list[str]) -> None:
        for text in (getattr(cmd, "help", None) or "", getattr(cmd, "epilog", None) or ""):
            for line in text.splitlines():
                at = line.find("aimd ")
                if at >= 0:
                    out.append((" ".join(path), line[at:]))
        if hasattr(cmd, "commands"):
            for name in cmd.list_commands(None):  # type: ignore[attr-defined]
                walk(cmd.get_command(None, name), [*path, name])  # type: ignore[attr-defined]

    walk(get_command(app), [])
    return out


EXAMPLES_WITH_LINES = _example_lines()
RUN = sorted({example for _, example in EXAMPLES if example not in NOT_RUN})


def test_not_run_list_is_short_and_current() -> None:
    shown = {example for _, example in EXAMPLES}
    assert set(NOT_RUN) <= shown, set(NOT_RUN) - shown
    assert len(NOT_RUN) <= len(shown) // 3
    assert set(BEFORE) <= set(RUN) and set(WITHOUT) <= set(RUN)


@pytest.mark.parametrize("example", RUN)
def test_help_example_runs(example: str, workspace: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "ws"
    shutil.copytree(workspace, folder, symlinks=True)
    for name in WITHOUT.get(example, []):
        target = folder / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    for command in BEFORE.get(example, []):
        code, out = aimd(command, folder)
        assert code == 0, f"{command}: {out[-2000:]}"
    capfd.readouterr()
    code, out = aimd(_fast(example), folder)
    err = capfd.readouterr().err
    expected = _expected_exit(example)
    assert code == expected, f"`{example}` exited {code}, its help says {expected}\n{out[-2000:]}\n{err[-2000:]}"
    assert "Traceback" not in err, err[-3000:]
