"""AdaBN: BatchNorm statistics re-estimated on an unlabelled, intensity-shifted phantom site."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from aimd.cli.model import app
from aimd.core.errors import InvalidInputError
from aimd.models.adapt import adapt_run, batchnorm_layers, reestimate_bn
from aimd.models.config import make_config
from aimd.models.data import load_index, load_seg_split
from aimd.models.evaluate import evaluate_logits
from aimd.models.runs import load_run
from aimd.models.targets import get_target
from aimd.models.training import train
from aimd.phantoms import generate_dataset
from aimd.phantoms.sites import SITE_PROFILES

torch.set_num_threads(1)
runner = CliRunner()
SHIFTED = dataclasses.replace(SITE_PROFILES[0], site_id="SITE_X", hu_offset=120.0)  # miscalibrated scanner


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapt")
    generate_dataset(root / "home", cases=8, seed=4, size=32, sites=1, workers=1)
    generate_dataset(root / "site_x", cases=4, seed=11, size=32, profiles=[SHIFTED], workers=1)  # unlabelled use
    generate_dataset(root / "site_x_test", cases=4, seed=12, size=32, profiles=[SHIFTED], workers=1)
    generate_dataset(root / "home_test", cases=4, seed=12, size=32, sites=1, workers=1)
    train(
        make_config(
            task="seg",
            model="unet-small",
            target="organs",
            data=root / "home",
            out=root / "run",
            epochs=4,
            lr=3e-3,
            augment=["flip", "noise"],
            threads=1,
            batch_size=8,
            max_steps_per_epoch=8,
            eval_train_cases=2,
        )
    )
    return {
        "root": root,
        "run": root / "run",
        "site_x": root / "site_x",
        "site_x_test": root / "site_x_test",
        "home_test": root / "home_test",
    }


def _dice(run_dir: Path, data: Path) -> float:
    run = load_run(run_dir)
    net = run.build_network()
    index = load_index(data)
    ids = [c["id"] for c in index.data["cases"]]
    arrays = load_seg_split(index, "test", get_target("organs"), run.input_spec, case_ids=ids, keep_volumes=True)
    with torch.no_grad():
        scores = evaluate_logits(lambda x: net(torch.from_numpy(x)).numpy(), arrays, run.output_spec)
    return float(scores["dice_mean"])


def test_adabn_changes_only_batchnorm_buffers_and_recovers_external_dice(sites: dict[str, Path]) -> None:
    out = sites["root"] / "run_bn"
    result = runner.invoke(
        app,
        [
            "adapt",
            str(sites["run"]),
            "--site-data",
            str(sites["site_x"]),
            "--method",
            "bn",
            "--out",
            str(out),
            "--threads",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["images"] == 4 and summary["slices_seen"] == 4 * 32

    before = load_run(sites["run"]).build_network().state_dict()
    after_net = load_run(out).build_network()
    after = after_net.state_dict()
    bn_buffers = {
        f"{name}.{b}"
        for name, m in after_net.named_modules()
        if m in batchnorm_layers(after_net)
        for b in ("running_mean", "running_var", "num_batches_tracked")
    }
    assert bn_buffers and set(before) == set(after)
    for key in before:
        same = torch.equal(before[key], after[key])
        assert same == (key not in bn_buffers), key
    info = json.loads((out / "run.json").read_text())
    assert (
        info["adaptation"]["parent_weights_sha256"]
        == json.loads((sites["run"] / "run.json").read_text())["weights_sha256"]
        != info["weights_sha256"]
    )

    internal = _dice(sites["run"], sites["home_test"])
    external = _dice(sites["run"], sites["site_x_test"])
    adapted = _dice(out, sites["site_x_test"])
    print(
        f"AdaBN on a +{SHIFTED.hu_offset:g} HU site: internal Dice {internal:.4f}, external {external:.4f}, "
        f"adapted {adapted:.4f}"
    )
    assert external < internal  # the shifted site costs accuracy ...
    assert adapted > external  # ... and re-estimated statistics recover part of it, without any label


def test_reestimation_is_a_cumulative_average_in_eval_mode_elsewhere() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 1), torch.nn.BatchNorm2d(3), torch.nn.Dropout(0.5))
    net[1].running_mean.fill_(7.0)
    batches = [torch.randn(4, 1, 5, 5) * s + m for m, s in ((0.0, 1.0), (10.0, 2.0), (-3.0, 0.5))]
    seen = reestimate_bn(net, batches)
    with torch.no_grad():
        feats = [net[0](b) for b in batches]
    expected_mean = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats]).mean(0)  # equal weight per batch
    expected_var = torch.stack([f.var(dim=(0, 2, 3), unbiased=True) for f in feats]).mean(0)
    assert seen == 12 and not net.training and not net[2].training and net[1].momentum == 0.1
    assert torch.allclose(net[1].running_mean, expected_mean, atol=1e-5)
    assert torch.allclose(net[1].running_var, expected_var, rtol=1e-4)


def test_bad_inputs_are_named(sites: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no BatchNorm"):
        reestimate_bn(torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1)), [torch.zeros(2, 1, 2, 2)])
    with pytest.raises(InvalidInputError, match="unknown adaptation method"):
        adapt_run(sites["run"], sites["site_x"], tmp_path / "o", method="tent")
    (tmp_path / "empty").mkdir()
    result = runner.invoke(
        app, ["adapt", str(sites["run"]), "--site-data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]
    )
    assert isinstance(result.exception, InvalidInputError)
    assert "neither dataset.json nor image files" in str(result.exception) and "empty" in str(result.exception)
    assert not (tmp_path / "o").exists()


def test_generalization_evidence_compares_an_adapted_run_with_its_parent(sites: dict[str, Path]) -> None:
    from aimd.evaluation import Claims, Generalization, GeneralizationClaim
    from aimd.evaluation.loading import build_context
    from aimd.evaluation.runner import run_characteristic

    out = sites["root"] / "run_bn_eval"
    adapt_run(sites["run"], sites["site_x"], out, threads=1)
    claims = Claims(generalization=GeneralizationClaim(min_metric=0.0))
    # no model saw any case of site_x_test, so every split of it is held out
    splits = sorted({c["split"] for c in load_index(sites["site_x_test"]).data["cases"]})
    ctx = build_context(out, sites["site_x_test"], sites["root"] / "report_bn", splits=splits, threads=1)
    evidence = run_characteristic(Generalization(), ctx, claims).evidence
    block = evidence.measurements["adaptation"]
    assert block["method"] == "bn" and block["parent_run"] == str(sites["run"])
    (row,) = block["by_site"]
    assert row["site"] == "SITE_X" and row["cases"] == len(ctx.data.cases)
    parent_value = next(v for k, v in row.items() if k.startswith("parent "))
    adapted_value = next(v for k, v in row.items() if k.startswith("adapted "))
    assert row["improvement"] == pytest.approx(adapted_value - parent_value, abs=1e-5)
    assert any(t.title.startswith("Adapted model (bn)") for t in evidence.tables)

    parent_ctx = build_context(
        sites["run"], sites["site_x_test"], sites["root"] / "report_parent", splits=splits, threads=1
    )
    assert "adaptation" not in run_characteristic(Generalization(), parent_ctx, claims).evidence.measurements
