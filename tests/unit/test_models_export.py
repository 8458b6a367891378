"""Export (003 §3.3): ONNX checked against PyTorch, INT8 quantisation with its accuracy change."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from aimd.core.errors import InvalidInputError
from aimd.models.adapters import OnnxPredictor, OpenVinoPredictor, load_predictor
from aimd.models.config import make_config
from aimd.models.data import load_index, load_split
from aimd.models.evaluate import evaluate_logits
from aimd.models.export import export_run
from aimd.models.runs import load_run
from aimd.models.training import train
from aimd.phantoms import generate_dataset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("models_export")
    generate_dataset(root / "ph", cases=8, seed=2, size=32, sites=2, workers=1)
    train(
        make_config(
            task="seg",
            model="unet-small",
            target="body",
            data=root / "ph",
            out=root / "run",
            epochs=2,
            lr=3e-3,
            threads=1,
            batch_size=8,
            max_steps_per_epoch=4,
            eval_train_cases=2,
            augment=[],
        )
    )
    report = export_run(root / "run", int8=("static", "dynamic"), torchscript=True, bundle=True, threads=1)
    return {"root": root, "report": report}


def test_onnx_matches_pytorch(exported: dict[str, object]) -> None:
    report = exported["report"]
    assert isinstance(report, dict)
    assert report["onnx_max_abs_diff"] < 1e-4
    root = Path(str(exported["root"]))
    run = load_run(root / "run")
    onnx_model = OnnxPredictor(root / "run" / "export" / "model.onnx", threads=1)
    x = np.random.default_rng(0).random((3, 2, 32, 32), dtype=np.float32)
    with torch.inference_mode():
        ref = run.build_network()(torch.from_numpy(x)).numpy()
    assert np.abs(onnx_model.predict_logits(x) - ref).max() < 1e-4
    graph_input = onnx.load(str(root / "run" / "export" / "model.onnx")).graph.input[0]
    assert graph_input.type.tensor_type.shape.dim[0].dim_param  # symbolic (dynamic) batch


def test_runtime_accuracies_are_recomputed_independently(exported: dict[str, object]) -> None:
    report = exported["report"]
    assert isinstance(report, dict)
    root = Path(str(exported["root"]))
    run = load_run(root / "run")
    val = load_split(load_index(root / "ph"), "val", "body", run.input_spec, keep_volumes=True, slice_policy="all")
    for name, file in (
        ("onnx_fp32", "model.onnx"),
        ("onnx_int8_static", "model.int8.static.onnx"),
        ("onnx_int8_dynamic", "model.int8.dynamic.onnx"),
    ):
        predictor = OnnxPredictor(root / "run" / "export" / file, threads=1)
        dice = evaluate_logits(predictor.predict_logits, val, run.output_spec)["dice_mean"]
        assert report["runtimes"][name]["value"] == pytest.approx(dice, abs=1e-9)
        change = report["runtimes"][name]["change_vs_torch_fp32"]
        assert change == pytest.approx(dice - report["runtimes"]["torch_fp32"]["value"], abs=1e-9)
    assert abs(report["runtimes"]["onnx_fp32"]["change_vs_torch_fp32"]) < 1e-6


def test_openvino_runs_the_same_files(exported: dict[str, object]) -> None:
    """OpenVINO agrees with PyTorch on the fp32 file; its INT8 score is recomputed independently."""
    report = exported["report"]
    assert isinstance(report, dict)
    root = Path(str(exported["root"]))
    run = load_run(root / "run")
    export = root / "run" / "export"
    x = np.random.default_rng(4).random((5, 2, 32, 32), dtype=np.float32)
    with torch.inference_mode():
        ref = run.build_network()(torch.from_numpy(x)).numpy()
    fp32 = load_predictor(export / "model.onnx", threads=1, runtime="openvino")
    assert isinstance(fp32, OpenVinoPredictor) and fp32.metadata["adapter"] == "openvino"
    assert np.abs(fp32.predict_logits(x) - ref).max() < 1e-4
    assert report["openvino_max_abs_diff"] < 1e-4
    assert fp32.predict_logits(x[:1]).shape == (1, 1, 32, 32)  # dynamic batch
    assert fp32.predict_logits(np.concatenate([x, x], axis=3)[:, :, :, :48]).shape == (5, 1, 32, 48)  # other size
    val = load_split(load_index(root / "ph"), "val", "body", run.input_spec, keep_volumes=True, slice_policy="all")
    int8 = OpenVinoPredictor(export / "model.int8.static.onnx", threads=1)
    dice = evaluate_logits(int8.predict_logits, val, run.output_spec)["dice_mean"]
    assert report["runtimes"]["openvino_int8_static"]["value"] == pytest.approx(dice, abs=1e-9)
    assert np.abs(int8.predict_logits(x) - ref).max() > 1e-6  # really quantised, not the fp32 graph
    with pytest.raises(InvalidInputError, match="unknown runtime"):
        load_predictor(export / "model.onnx", runtime="tensorrt")


def test_int8_models_are_quantized_and_keep_specs(exported: dict[str, object]) -> None:
    root = Path(str(exported["root"]))
    static = onnx.load(str(root / "run" / "export" / "model.int8.static.onnx"))
    dynamic = onnx.load(str(root / "run" / "export" / "model.int8.dynamic.onnx"))
    assert any(n.op_type == "QuantizeLinear" for n in static.graph.node)
    assert any(n.op_type in {"ConvInteger", "DynamicQuantizeLinear", "MatMulInteger"} for n in dynamic.graph.node)
    fp32_size = (root / "run" / "export" / "model.onnx").stat().st_size
    assert (root / "run" / "export" / "model.int8.static.onnx").stat().st_size < fp32_size
    props = {p.key: p.value for p in static.metadata_props}
    assert json.loads(props["aimd.quantization"])["mode"] == "static"
    assert (
        OnnxPredictor(root / "run" / "export" / "model.int8.static.onnx").input_spec
        == load_run(root / "run").input_spec
    )


def test_torchscript_and_bundle_exports_load_and_agree(exported: dict[str, object]) -> None:
    root = Path(str(exported["root"]))
    x = np.random.default_rng(1).random((2, 2, 32, 32), dtype=np.float32)
    ref = load_predictor(root / "run").predict(x)
    for path in (root / "run" / "export" / "model.ts", root / "run" / "export" / "bundle"):
        np.testing.assert_allclose(load_predictor(path).predict(x), ref, atol=1e-5)
    assert (root / "run" / "export" / "bundle" / "models" / "model.onnx").is_file()
    written = json.loads((root / "run" / "export" / "export.json").read_text())
    assert written["onnx_max_abs_diff"] == exported["report"]["onnx_max_abs_diff"]  # type: ignore[index]


def test_export_errors(tmp_path: Path, exported: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError, match="run folder does not exist"):
        export_run(tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="holds no run.json"):
        export_run(tmp_path)
    with pytest.raises(InvalidInputError, match="INT8 quantisation starts from the fp32"):
        export_run(Path(str(exported["root"])) / "run", onnx_fp32=False, int8=("dynamic",))


def test_vit_exports_and_quantizes(tmp_path: Path) -> None:
    """The ViT graph (attention reshapes) survives dynamo export and INT8 quantisation with a dynamic batch."""
    from aimd.models.export import export_module_onnx, quantize_onnx
    from aimd.models.networks.vit import ViTClassifier
    from aimd.models.specs import InputSpec, Intensity, OutputSpec

    torch.manual_seed(0)
    vit = ViTClassifier(img_size=32, patch_size=8, dim=32, depth=1, heads=4).eval()
    spec_in = InputSpec(
        modality="DX",
        patch_size=(32, 32),
        fixed_size=True,
        resize_to=(32, 32),
        intensity=Intensity(method="bit_depth", bits=12),
    )
    spec_out = OutputSpec(task="classification", labels={0: "no", 1: "yes"}, activation="softmax")
    fp32 = export_module_onnx(vit, tmp_path / "vit.onnx", spec_in, spec_out)
    x = np.random.default_rng(0).random((5, 1, 32, 32), dtype=np.float32)
    with torch.inference_mode():
        ref = vit(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(OnnxPredictor(fp32, threads=1).predict_logits(x), ref, atol=1e-4)
    for mode in ("dynamic", "static"):
        q = quantize_onnx(fp32, tmp_path / f"vit.{mode}.onnx", mode, calibration=x)
        out = OnnxPredictor(q, threads=1).predict_logits(x)
        assert out.shape == (5, 2) and np.abs(out - ref).max() < 0.5


def test_static_quantisation_of_norm_layers_prints_no_per_tensor_notes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import torch

    from aimd.models.export import export_module_onnx, quantize_onnx
    from aimd.models.specs import InputSpec, OutputSpec

    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.BatchNorm2d(4), torch.nn.Conv2d(4, 2, 1)
    ).eval()
    spec_in = InputSpec(modality="CT", patch_size=(16, 16))
    spec_out = OutputSpec(task="segmentation", labels={1: "x"}, activation="softmax")
    fp32 = export_module_onnx(net, tmp_path / "n.onnx", spec_in, spec_out)
    x = np.random.default_rng(0).random((4, 1, 16, 16), dtype=np.float32)
    quantize_onnx(fp32, tmp_path / "n.int8.onnx", "static", calibration=x)
    assert not [r for r in caplog.records if "out-of-range for weight" in r.getMessage()]
    assert logging.getLogger().filters == []  # other warnings are shown again after quantisation
