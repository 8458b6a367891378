"""Federated averaging with Flower's simulation on Ray: two phantom sites, no image leaves its site."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from aimd.cli.main import app as main_app
from aimd.cli.model import app
from aimd.core.hashing import sha256_file
from aimd.models import describe_model
from aimd.models.federated.flower import federate
from aimd.models.federated.guard import SiteDataAccessError
from aimd.models.runs import load_run
from aimd.phantoms import generate_dataset
from aimd.phantoms.sites import SITE_PROFILES

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("fed")
    out = []
    for i, profile in enumerate(SITE_PROFILES[:2]):
        generate_dataset(root / f"site{i}", cases=7, seed=30 + i, size=32, profiles=[profile], workers=1)
        out.append(root / f"site{i}")
    return out


def test_fedavg_writes_a_run_that_predict_accepts_and_the_server_opened_no_site_file(
    sites: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "fed"
    result = runner.invoke(
        app,
        ["federate", "--sites", str(sites[0]), str(sites[1]), "--rounds", "2", "--local-steps", "2"]
        + ["--batch-size", "4", "--out", str(out), "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [r["round"] for r in summary["rounds"]] == [1, 2]
    assert all(r["train-loss"] > 0 and 0 <= r["val-dice"] <= 1 for r in summary["rounds"])
    assert summary["server_opened_site_files"] == 0
    # the sites' hashes are what each client reported; checked here, after the run, against the files
    assert {s["folder"]: s["dataset_sha256"] for s in summary["sites"]} == {
        str(s.resolve()): sha256_file(s / "dataset.json") for s in sites
    }
    assert [s["site_ids"] for s in summary["sites"]] == [["SITE_A"], ["SITE_B"]]

    run = load_run(out)
    record = json.loads((out / "record.json").read_text())
    federation = record["learning"]["federation"]
    assert federation["library"] == "flwr" and federation["rounds"] == 2 and len(federation["history"]) == 2
    assert run.info["federation"]["sites"] == summary["sites"] and "history" not in run.info["federation"]
    run.build_network()  # the weights match the SHA-256 run.json records

    assert set(summary["test_dice"]) == {s["folder"] for s in summary["sites"]}  # each site scored its own test cases
    assert record["benchmark"]["test"]["per_site"] == summary["test_dice"]
    assert record["data"]["statistics"]["train"]["cases"] == sum(s["cases"]["train"] for s in summary["sites"])

    report = tmp_path / "report"
    evaluated = runner.invoke(
        main_app,
        ["evaluate", "--model", str(out), "--data", str(sites[1]), "--only", "description", "--no-pdf"]
        + ["--out", str(report)],
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads((report / "report.json").read_text())["sections"]
    assert "federated averaging" in json.dumps(describe_model(out, measure=False), default=str)  # 000 §4.4.1

    preds = tmp_path / "preds"
    predicted = runner.invoke(app, ["predict", str(out), "--data", str(sites[1]), "--out", str(preds), "--json"])
    assert predicted.exit_code == 0, predicted.output
    assert len(list((preds / "masks").glob("*.nii.gz"))) == 7


def test_a_server_that_reads_a_site_file_fails_the_run(sites: list[Path], tmp_path: Path) -> None:
    def peek(server_round: int, state: dict[str, torch.Tensor]) -> dict[str, float]:
        (sites[0] / "dataset.json").read_bytes()  # the server reading a site's data: must not be possible
        return {"peeked": 1.0}

    with pytest.raises(SiteDataAccessError) as err:
        federate(sites, tmp_path / "fed", rounds=1, local_steps=1, batch_size=4, server_evaluate=peek)
    assert "dataset.json" in str(err.value)
    assert not (tmp_path / "fed").exists()
