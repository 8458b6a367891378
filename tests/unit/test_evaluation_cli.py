"""``aimd evaluate``: claims template, evaluation of a TorchScript model on phantoms, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from test_evaluation_support import threshold_net
from typer.testing import CliRunner

from aimd.cli.evaluate import app
from aimd.evaluation import Claims
from aimd.models import InputSpec, Intensity, OutputSpec, save_torchscript
from aimd.phantoms import generate_dataset

runner = CliRunner()


def test_claims_template_prints_and_writes(tmp_path: Path) -> None:
    res = runner.invoke(app, ["claims-template"])
    assert res.exit_code == 0
    parsed = Claims.model_validate(yaml.safe_load(res.stdout))
    assert parsed.robustness is not None
    res2 = runner.invoke(app, ["claims-template", "--out", str(tmp_path / "c.yaml"), "--json"])
    assert res2.exit_code == 0 and json.loads(res2.stdout)["written_to"] == str(tmp_path / "c.yaml")
    assert (tmp_path / "c.yaml").read_text(encoding="utf-8") == res.stdout


def test_evaluate_torchscript_model_on_phantoms(tmp_path: Path) -> None:
    data = tmp_path / "ds"
    generate_dataset(data, cases=6, seed=2, size=32, workers=1)
    spec_in = InputSpec(
        modality="CT", channels=1, patch_size=(32, 32), intensity=Intensity(method="window", windows=((0.0, 2048.0),))
    )
    spec_out = OutputSpec(task="segmentation", labels={1: "body"}, activation="sigmoid", target="body")
    model = save_torchscript(threshold_net(), tmp_path / "m.ts", spec_in, spec_out)
    claims = tmp_path / "claims.yaml"
    claims.write_text(
        "efficiency: {max_size_mb: 1.0, runs: 3, int8: false}\ngeneralization: {min_metric: 0.0}\n", encoding="utf-8"
    )
    out = tmp_path / "report"
    res = runner.invoke(
        app,
        [
            "--model",
            str(model),
            "--data",
            str(data),
            "--claims",
            str(claims),
            "--out",
            str(out),
            "--only",
            "efficiency,generalization",
            "--no-pdf",
            "--json",
            "--no-isolate-network",
        ],
    )
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    verdicts = {r["characteristic"]: r["verdict"] for r in result["verdicts"]}
    assert verdicts["Model efficiency"] == "conform" and verdicts["Generalization"] == "conform"
    assert verdicts["Robustness"] == "not_evaluated"
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    eff = next(s for s in report["sections"] if s["key"] == "efficiency")
    assert eff["evidence"]["measurements"]["size_mb"] == round(model.stat().st_size / 2**20, 4)
    assert report["header"]["model"]["adapter"] == "torchscript" and not (out / "report.pdf").exists()
    tight = tmp_path / "tight.yaml"
    tight.write_text("efficiency: {max_size_mb: 0.000001, runs: 3, int8: false}\n", encoding="utf-8")
    res_fail = runner.invoke(
        app,
        [
            "--model",
            str(model),
            "--data",
            str(data),
            "--claims",
            str(tight),
            "--out",
            str(tmp_path / "r2"),
            "--only",
            "efficiency",
            "--no-pdf",
            "--json",
            "--no-isolate-network",
        ],
    )
    assert res_fail.exit_code == 1
    assert result["claims_origin"].startswith(f"claims from {claims}; the file does not say who wrote them")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.index("the file does not say who wrote them") < html.index("<h2>Verdicts</h2>")


def test_evaluate_runs_in_a_network_namespace(tmp_path: Path) -> None:
    import subprocess
    import sys

    import pytest

    from aimd.evaluation.support.egress import isolated_argv

    if isolated_argv(["true"]) is None:
        pytest.skip("unshare --net cannot make a network namespace on this machine")
    data = tmp_path / "ds"
    generate_dataset(data, cases=6, seed=2, size=32, workers=1)
    spec_in = InputSpec(
        modality="CT", channels=1, patch_size=(32, 32), intensity=Intensity(method="window", windows=((0.0, 2048.0),))
    )
    spec_out = OutputSpec(task="segmentation", labels={1: "body"}, activation="sigmoid", target="body")
    model = save_torchscript(threshold_net(), tmp_path / "m.ts", spec_in, spec_out)
    claims = tmp_path / "claims.yaml"
    claims.write_text('origin: "test provider"\nprivacy: {forbid_egress: true}\n', encoding="utf-8")
    out = tmp_path / "report"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aimd.cli.main",
            "evaluate",
            "--model",
            str(model),
            "--data",
            str(data),
            "--claims",
            str(claims),
            "--out",
            str(out),
            "--only",
            "privacy",
            "--no-pdf",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["claims_origin"] == "test provider"
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    privacy = next(s for s in report["sections"] if s["key"] == "privacy")
    scope = privacy["evidence"]["measurements"]["egress_scope"]
    assert scope["isolated"] is True and scope["interfaces"] == ["lo"]
    assert report["header"]["hardware"]["network_egress"].startswith("enforced")
    checks = {c["name"]: c for c in privacy["evidence"]["checks"]}
    assert checks["no network egress (§5.2.9 b)"]["outcome"] == "met"
    assert not any("native code" in name for name in checks)


def test_bad_input_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("efficiency: {runs: -3}\n", encoding="utf-8")
    res = runner.invoke(app, ["--model", "m.ts", "--data", "d", "--claims", str(bad), "--only", "speed"])
    assert res.exit_code != 0 and "speed" in str(res.exception)
    res2 = runner.invoke(
        app, ["--model", str(tmp_path / "absent.ts"), "--out", str(tmp_path / "o"), "--no-isolate-network"]
    )
    assert res2.exit_code != 0 and "--data" in str(res2.exception)


def test_mask_dataset_command_and_external_model_names(tmp_path: Path) -> None:
    import hashlib

    import nibabel as nib
    import numpy as np
    import pytest

    from aimd.core.errors import InvalidInputError
    from aimd.evaluation import parse_external as external_model

    rng = np.random.default_rng(0)
    image = rng.normal(100, 10, (20, 22, 24)).astype(np.float32)
    mask = np.zeros(image.shape, np.uint8)
    mask[5:15, 6:16, 7:17] = 1
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(image, affine), tmp_path / "img.nii.gz")
    nib.save(nib.Nifti1Image(mask, affine), tmp_path / "mask.nii.gz")
    out = tmp_path / "ds"
    res = runner.invoke(
        app,
        [
            "mask-dataset",
            str(tmp_path / "img.nii.gz"),
            str(tmp_path / "mask.nii.gz"),
            "--out",
            str(out),
            "--label",
            "brain",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    index = json.loads((out / "dataset.json").read_text(encoding="utf-8"))
    entries = _hashed_entries(index)
    assert len(entries) == 2 * (1 + len(summary["perturbations"]))  # image + mask per case and copy
    for entry in entries:
        assert hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    assert len(summary["perturbations"]) >= 1
    nib.save(nib.Nifti1Image(mask[:-2], affine), tmp_path / "short.nii.gz")
    res = runner.invoke(
        app,
        ["mask-dataset", str(tmp_path / "img.nii.gz"), str(tmp_path / "short.nii.gz"), "--out", str(tmp_path / "bad")],
    )
    assert isinstance(res.exception, InvalidInputError) and not (tmp_path / "bad").exists()
    assert external_model("deepbet") == ("deepbet", None) and external_model("deepbet:160") == ("deepbet", 160)
    assert external_model(tmp_path) is None and external_model("other-model") is None
    with pytest.raises(InvalidInputError, match="not a number"):
        external_model("deepbet:big")


def _hashed_entries(node: object) -> list[dict[str, str]]:
    """Every ``{"path", "sha256"}`` entry anywhere in dataset.json."""
    if isinstance(node, dict):
        found = [node] if "path" in node and "sha256" in node else []
        return found + [e for v in node.values() for e in _hashed_entries(v)]
    if isinstance(node, list):
        return [e for v in node for e in _hashed_entries(v)]
    return []


def test_evaluate_command_lets_openmp_threads_sleep_unless_the_caller_chose() -> None:
    # the policy must be in the environment before torch loads libgomp: the CLI entry point loads no torch
    code = (
        "import os, sys; import aimd.cli.main; early = 'torch' in sys.modules; import aimd.cli.evaluate; "
        "print(os.environ['OMP_WAIT_POLICY'], early)"
    )
    base = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    for env, expected in ((base, "PASSIVE False"), ({**base, "OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE False")):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected
