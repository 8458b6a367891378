"""Model description (000 §4, App. B): exact parameter counts and shapes, provider YAML, gaps, renderings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from aimd.core.errors import InvalidInputError, SchemaError
from aimd.models.config import make_config
from aimd.models.describe import describe_model, load_provider, render, trace_layers, write_description
from aimd.models.describe.trace import connections, flops_per_sample, receptive_field
from aimd.models.training import train
from aimd.models.zoo import build_network
from aimd.phantoms import generate_dataset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models_describe")
    generate_dataset(root / "ph", cases=7, seed=9, size=32, sites=2, workers=1)
    train(
        make_config(
            task="seg",
            model="unet-small",
            target="organs",
            data=root / "ph",
            out=root / "run",
            epochs=1,
            threads=1,
            batch_size=8,
            max_steps_per_epoch=2,
            eval_train_cases=1,
            augment=["flip"],
        )
    )
    return root / "run"


def test_layer_table_totals_and_shapes_match_a_real_forward_pass() -> None:
    torch.manual_seed(0)
    net = build_network("unet-small", out_channels=5).eval()
    table = trace_layers(net, (2, 64, 64))
    assert table.total_params == sum(p.numel() for p in net.parameters()) == table.rows_params
    real: list[tuple[int, ...]] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, o: real.append(tuple(o.shape)))
        for m in net.modules()
        if not list(m.children())
    ]
    with torch.no_grad():
        out = net(torch.rand(3, 2, 64, 64))
    for h in hooks:
        h.remove()
    traced = [tuple(r.output_shape) for r in table.rows if r.type != "Parameter"]
    assert traced == [(-1, *s[1:]) for s in real]
    assert table.output_shape == [-1, *out.shape[1:]]


def test_unet_b1_table_has_the_rows_of_table_b1() -> None:
    with torch.device("meta"):
        net = build_network("unet-b1", out_channels=1)
    table = trace_layers(net, (1, 256, 256))
    first = table.rows[:4]
    assert [r.layer for r in first] == ["Conv2d-1", "ReLU-2", "BatchNorm2d-3", "Dropout2d-4"]
    assert first[0].kernel == "3×3" and first[0].output_shape == [-1, 32, 256, 256]
    enc5 = [r for r in table.rows if r.block == "encoder5" and r.type == "Conv2d"]
    assert enc5[-1].output_shape == [-1, 512, 16, 16]
    assert table.rows[-1].output_shape == [-1, 1, 256, 256] and table.rows[-3].output_shape == [-1, 16, 256, 256]
    types = table.layer_types()
    assert types["MaxPool2d"] == 4 and types["ConvTranspose2d"] == 4
    assert connections(net)["concatenations"] == 4


def test_vit_b16_512_described_without_allocating_weights() -> None:
    doc = describe_model("vit-b16-512", measure=False)
    params = doc["sections"]["4.2.3"]["items"]["total"]["value"]
    dim, tokens, depth = 768, 1024, 24
    block = 4 * dim + (3 * dim * dim + 3 * dim) + (dim * dim + dim) + (4 * dim * dim + 4 * dim) + (4 * dim * dim + dim)
    expected = (16 * 16 * dim + dim) + dim + (tokens + 1) * dim + depth * block + 2 * dim + dim * 2 + 2
    assert params == expected
    pos = next(r for r in doc["layers"] if r["name"] == "pos_embed")
    assert pos["output_shape"] == [1, tokens + 1, dim]
    compute = doc["sections"]["4.5.3"]["items"]["compute"]["value"]
    assert isinstance(compute["measured_cpu"], str) and "not measured" in compute["measured_cpu"]
    # matmul FLOPs of the 24 blocks' linear layers alone: 2 · tokens · (12 d²) per block
    assert compute["flops_per_sample"] > 2 * (tokens + 1) * 12 * dim * dim * depth


def test_receptive_field_and_flops_of_a_small_cnn() -> None:
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.MaxPool2d(2), torch.nn.Conv2d(2, 2, 3, padding=1)
    )
    table = trace_layers(net, (1, 8, 8))
    # conv 3×3: 1 + 2 = 3; pool 2/2: 3 + 1 = 4, stride 2; conv 3×3: 4 + 2·2 = 8
    assert receptive_field(table) == {"pixels": 8, "global": False, "stride": 2}
    # conv1: 8·8·2 outputs × 9 MACs; conv2: 4·4·2 outputs × 18 MACs; 2 FLOPs per MAC
    assert flops_per_sample(net, (1, 8, 8)) == 2 * (8 * 8 * 2 * 9 + 4 * 4 * 2 * 18)


def test_run_description_derives_training_sections(run_dir: Path) -> None:
    doc = describe_model(run_dir, measure=False)
    s = doc["sections"]
    record = json.loads((run_dir / "record.json").read_text())
    assert s["4.4.1"]["items"]["method"]["value"] == "supervised pre-training"
    assert s["4.3.2"]["items"]["splits"]["value"]["train"]["cases"] == len(record["data"]["split"]["train"])
    assert s["4.3.1"]["items"]["synthetic"]["value"].startswith("yes: aimd.phantoms")
    assert s["4.2.4"]["items"]["dims"]["value"].startswith("2-D images, 2 channel(s)")
    assert s["4.4.3"]["items"]["domain"]["source"] == "training record"
    required = {g["item"] for g in doc["gaps"] if g["required"]}
    assert required == {"provider", "robustness / generalisation test methods", "source/downstream domain similarity"}


def test_provider_yaml_fills_gaps_and_typos_are_rejected(run_dir: Path, tmp_path: Path) -> None:
    yaml_path = tmp_path / "provider.yaml"
    yaml_path.write_text(
        "version: '2.0.0'\nprovider: Example Medical AI\ninterpretability: activation maps reviewed\n"
        "applicability:\n  robustness_methods: A.12.2 a natural-noise samples\n"
        "  domain_similarity: source organs vs downstream lesions share modality\n",
        encoding="utf-8",
    )
    doc = describe_model(run_dir, extra=yaml_path, measure=False)
    assert [g for g in doc["gaps"] if g["required"]] == []
    version = doc["sections"]["4.1"]["items"]["version"]
    assert version == {"label": "release version", "value": "2.0.0", "source": "provider"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("verison: 1\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="verison") as err:
        load_provider(bad)
    assert str(bad) in str(err.value)
    with pytest.raises(InvalidInputError, match="provider file does not exist"):
        load_provider(tmp_path / "none.yaml")


def test_renderings_and_measurement(run_dir: Path, tmp_path: Path) -> None:
    doc = describe_model(run_dir, measure=True, threads=1)
    measured = doc["sections"]["4.5.3"]["items"]["compute"]["value"]["measured_cpu"]
    assert measured["batch1_ms"] > 0 and measured["batch8_images_per_s"] > 0
    md = render(doc, "md")
    assert "## §4.2.3 模型参数 Model parameters" in md and "| input | Conv2d-1 | 3×3 | [-1, 8, 64, 64] | 152 |" in md
    html = render(doc, "html")
    assert html.startswith("<!doctype html>") and "<td>Conv2d-1</td>" in html
    path = write_description(doc, tmp_path / "d.json", "json")
    assert json.loads(path.read_text())["layers"] == doc["layers"]
    with pytest.raises(InvalidInputError, match="unknown format"):
        render(doc, "pdf")


def test_describe_errors(tmp_path: Path, run_dir: Path) -> None:
    with pytest.raises(InvalidInputError, match="neither a zoo model"):
        describe_model(str(tmp_path / "nothing"))
    with pytest.raises(InvalidInputError, match="trained 'unet-small', not 'vit-small'"):
        describe_model("vit-small", run=run_dir)
