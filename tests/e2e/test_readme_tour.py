"""The README's CLI tour is a test: every command of its first block runs, in order, on a fresh folder,
with the exit code the README states (0 unless its comment ends in ``→ exit N``).

Speed substitutions (the only differences from the README text; each keeps the command's meaning):
the phantom grid is 32³ instead of 128³ (``--size 32``), training runs one epoch of two steps
(``--epochs 1 --max-steps 2``), and the evaluation runs the description and efficiency
characteristics without the PDF (``--only description,efficiency --no-pdf``). The deepbet block is
covered by tests/integration/test_deepbet_evaluation.py; here only its data-preparation step runs.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest
from readme_tour import Step, aimd_wrapper, run_step, tour_blocks

pytestmark = pytest.mark.slow

#: command prefix → flags appended for speed (documented in the module docstring).
FAST = {
    "aimd data phantom ": " --size 32",
    "aimd model train ": " --epochs 1 --max-steps 2",
    "aimd evaluate --model run1 ": " --only description,efficiency --no-pdf",
}


def _fast(step: Step) -> str:
    for prefix, extra in FAST.items():
        if step.command.startswith(prefix):
            return step.command + extra
    return step.command


def test_readme_states_exit_codes_and_the_follow_up() -> None:
    steps = tour_blocks()[0]
    assert steps[0].command.startswith("aimd data phantom ph/")
    flagged = [i for i, s in enumerate(steps) if s.expected_exit == 1]
    exports = [i for i, s in enumerate(steps) if s.command.startswith("aimd package export")]
    assert exports and exports[0] in flagged
    assert "--force --reason" in steps[exports[0] + 1].command and steps[exports[0] + 1].expected_exit == 0
    assert all(s.command.startswith("aimd ") for s in steps)


def test_readme_tour_runs_in_order(tmp_path: Path) -> None:
    bindir = aimd_wrapper(tmp_path / "tools")
    work = tmp_path / "work"
    work.mkdir()
    for step in tour_blocks()[0]:
        start = time.perf_counter()
        proc = run_step(_fast(step), work, bindir)
        print(f"{time.perf_counter() - start:6.1f} s  exit {proc.returncode}  {step.command}")
        assert proc.returncode == step.expected_exit, (
            f"`{step.command}` exited {proc.returncode}, README says {step.expected_exit}\n"
            f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
        )
        assert "Traceback" not in proc.stderr, proc.stderr
    assert stat.S_IMODE((work / "secrets/map.json").stat().st_mode) == 0o600
    manifest = json.loads(next((work / "export").glob("v1.0/manifest.json")).read_text())
    assert manifest["forced"]["reason"] == "time gaps reviewed by the study lead"
    assert (work / "card.html").is_file() and (work / "report" / "report.json").is_file()


def test_deepbet_block_prepares_colin27(tmp_path: Path) -> None:
    block = tour_blocks()[1]
    prepare = next(s for s in block if s.command.startswith("aimd evaluate mask-dataset"))
    if not Path("/usr/share/mricron/templates/ch2.nii.gz").is_file():
        pytest.skip("Debian's mricron-data (Colin27) is not installed; .ci/run installs it")
    proc = run_step(prepare.command, tmp_path, aimd_wrapper(tmp_path / "tools"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "colin27" / "dataset.json").is_file()
