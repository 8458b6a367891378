"""Predictor adapters: spec validation, clear errors, sliding window, and agreement across runtimes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aimd.core.errors import InvalidInputError, SchemaError
from aimd.imaging.volume import Volume
from aimd.models.adapters import (
    MonaiBundlePredictor,
    OnnxPredictor,
    TorchModulePredictor,
    TorchScriptPredictor,
    load_predictor,
    save_torchscript,
    write_monai_bundle,
)
from aimd.models.export import export_module_onnx
from aimd.models.networks.unet import UNetB1
from aimd.models.predictor import Predictor
from aimd.models.specs import InputSpec, Intensity, OutputSpec

torch.set_num_threads(1)

SPEC_IN = InputSpec(
    modality="CT",
    channels=1,
    patch_size=(32, 32),
    size_multiple=16,
    spacing_mm=(0.8, 0.8),
    intensity=Intensity(method="window", windows=((40.0, 400.0),)),
)
SPEC_OUT = OutputSpec(task="segmentation", labels={0: "background", 1: "body", 2: "lung"}, activation="softmax")
KWARGS = {"features": [4, 8, 8, 8, 8], "dropout": 0.0, "out_channels": 3}


@pytest.fixture(scope="module")
def net() -> UNetB1:
    torch.manual_seed(0)
    model = UNetB1(features=(4, 8, 8, 8, 8), dropout=0.0, out_channels=3)
    with torch.no_grad():  # non-trivial batch-norm statistics so eval differs from identity
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def exported(net: UNetB1, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    weights = root / "w.pt"
    torch.save(net.state_dict(), weights)
    onnx_path = export_module_onnx(net, root / "m.onnx", SPEC_IN, SPEC_OUT, {"model": "t"}, exporter="torchscript")
    ts_path = save_torchscript(net, root / "m.ts", SPEC_IN, SPEC_OUT)
    bundle = write_monai_bundle(
        net, {"_target_": "aimd.models.networks.unet.UNetB1", **KWARGS}, root / "bundle", SPEC_IN, SPEC_OUT
    )
    return {"weights": weights, "onnx": onnx_path, "ts": ts_path, "bundle": bundle}


def _ct(shape: tuple[int, int, int] = (3, 32, 32), seed: int = 0) -> Volume:
    rng = np.random.default_rng(seed)
    return Volume(rng.integers(-1000, 1000, size=shape).astype(np.int16), spacing=(0.8, 0.8, 2.0), modality="CT")


def test_all_adapters_agree_on_the_same_weights(net: UNetB1, exported: dict[str, Path]) -> None:
    batch = np.random.default_rng(1).random((5, 1, 32, 32), dtype=np.float32)
    with torch.inference_mode():
        ref = net(torch.from_numpy(batch)).numpy()
    adapters = [
        TorchModulePredictor(net, SPEC_IN, SPEC_OUT),
        TorchModulePredictor.from_import_path(
            "aimd.models.networks.unet:UNetB1",
            exported["weights"],
            SPEC_IN,
            SPEC_OUT,
            {"features": (4, 8, 8, 8, 8), "dropout": 0.0, "out_channels": 3},
        ),
        TorchScriptPredictor(exported["ts"]),
        OnnxPredictor(exported["onnx"], threads=1),
        MonaiBundlePredictor(exported["bundle"]),
    ]
    for adapter in adapters:
        assert isinstance(adapter, Predictor)
        np.testing.assert_allclose(adapter.predict_logits(batch), ref, atol=1e-4, rtol=1e-4)
        probs = adapter.predict(batch)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
        assert adapter.input_spec == SPEC_IN and adapter.output_spec == SPEC_OUT


def test_onnx_batch_axis_is_dynamic(exported: dict[str, Path]) -> None:
    predictor = OnnxPredictor(exported["onnx"], threads=1)
    for n in (1, 3, 7):
        assert predictor.predict(np.zeros((n, 1, 32, 32), np.float32)).shape == (n, 3, 32, 32)


def test_load_predictor_dispatches_by_path(exported: dict[str, Path]) -> None:
    assert type(load_predictor(exported["onnx"], threads=1)).__name__ == "OnnxPredictor"
    assert type(load_predictor(exported["ts"])).__name__ == "TorchScriptPredictor"
    assert type(load_predictor(exported["bundle"])).__name__ == "MonaiBundlePredictor"
    with pytest.raises(InvalidInputError, match="state dict, not a runnable model"):
        load_predictor(exported["weights"])


def test_bad_model_paths_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_predictor(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not onnx")
    with pytest.raises(InvalidInputError, match="not a valid ONNX model") as err:
        OnnxPredictor(junk)
    assert str(junk) in str(err.value)
    with pytest.raises(InvalidInputError, match="neither a training run"):
        load_predictor(tmp_path)
    ts = tmp_path / "bad.ts"
    ts.write_bytes(b"PK\x03\x04 nope")
    with pytest.raises(InvalidInputError):
        TorchScriptPredictor(ts)


def test_predict_volume_segments_and_keeps_geometry(net: UNetB1) -> None:
    predictor = TorchModulePredictor(net, SPEC_IN, SPEC_OUT)
    vol = _ct()
    vol.origin = (10.0, -5.0, 3.0)
    result = predictor.predict_volume(vol)
    assert result.labels is not None
    assert result.labels.shape == vol.shape and result.labels.origin == vol.origin
    unit = np.clip((vol.array.astype(np.float32) - (40 - 200)) / 400, 0, 1)[:, None]
    with torch.inference_mode():
        expected = net(torch.from_numpy(unit)).numpy().argmax(axis=1)
    np.testing.assert_array_equal(result.labels.array, expected)
    assert result.record["intensity"]["method"] == "window"


def test_wrong_modality_is_rejected_never_converted(net: UNetB1) -> None:
    predictor = TorchModulePredictor(net, SPEC_IN, SPEC_OUT)
    mr = Volume(np.zeros((2, 32, 32), np.int16), spacing=(0.8, 0.8, 1), modality="MR")
    with pytest.raises(InvalidInputError, match="model expects CT images, got MR"):
        predictor.predict_volume(mr, where="scan.nii.gz")
    unknown = Volume(np.zeros((2, 32, 32), np.int16), spacing=(0.8, 0.8, 1))
    with pytest.raises(InvalidInputError, match="carries no modality"):
        predictor.predict_volume(unknown)
    assert predictor.predict_volume(unknown, modality="CT").labels is not None


def test_spacing_far_from_training_is_rejected(net: UNetB1) -> None:
    predictor = TorchModulePredictor(net, SPEC_IN, SPEC_OUT)
    coarse = Volume(np.zeros((2, 32, 32), np.int16), spacing=(2.5, 2.5, 1), modality="CT")
    with pytest.raises(InvalidInputError, match="pixel spacing x=2.5 mm") as err:
        predictor.predict_volume(coarse)
    assert "resample" in str(err.value)


def test_batch_validation_errors(net: UNetB1) -> None:
    predictor = TorchModulePredictor(net, SPEC_IN, SPEC_OUT)
    with pytest.raises(InvalidInputError, match="has 3 dims"):
        predictor.predict(np.zeros((1, 32, 32), np.float32))
    with pytest.raises(InvalidInputError, match="has 2 channels"):
        predictor.predict(np.zeros((1, 2, 32, 32), np.float32))
    with pytest.raises(InvalidInputError, match=r"values span \[-1000"):
        predictor.predict(np.full((1, 1, 32, 32), -1000.0, np.float32))
    with pytest.raises(InvalidInputError, match="not a multiple of 16"):
        predictor.predict(np.zeros((1, 1, 40, 40), np.float32))
    with pytest.raises(InvalidInputError, match="NaN"):
        predictor.predict(np.full((1, 1, 32, 32), np.nan, np.float32))


def test_fixed_size_model_rejects_other_sizes_in_predict() -> None:
    spec = InputSpec(
        modality="DX",
        patch_size=(16, 16),
        fixed_size=True,
        resize_to=(16, 16),
        intensity=Intensity(method="bit_depth", bits=12),
    )
    out = OutputSpec(task="classification", labels={0: "no", 1: "yes"}, activation="softmax")
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 2))
    predictor = TorchModulePredictor(net, spec, out)
    with pytest.raises(InvalidInputError, match="differs from the model's fixed size"):
        predictor.predict(np.zeros((1, 1, 20, 16), np.float32))
    dx = Volume(np.full((1, 40, 24), 4095, np.uint16), modality="DX")
    result = predictor.predict_volume(dx)  # the declared resize is applied, then the whole image
    assert result.scores is not None and result.scores.shape == (1,)
    with torch.inference_mode():
        expected = torch.softmax(net(torch.ones(1, 1, 16, 16)), dim=1)[0, 1].item()
    assert result.scores[0] == pytest.approx(expected, abs=1e-5)


def test_sliding_window_equals_whole_image_for_a_pointwise_model() -> None:
    torch.manual_seed(3)
    pointwise = torch.nn.Conv2d(1, 2, kernel_size=1).eval()
    spec = SPEC_IN.model_copy(update={"patch_size": (16, 16), "spacing_mm": None})
    out = OutputSpec(task="segmentation", labels={0: "bg", 1: "fg"}, activation="softmax")
    predictor = TorchModulePredictor(pointwise, spec, out)
    vol = _ct((2, 48, 40), seed=5)
    result = predictor.predict_volume(vol, overlap=0.5)
    unit = np.clip((vol.array.astype(np.float32) + 160) / 400, 0, 1)[:, None]
    with torch.inference_mode():
        whole = torch.softmax(pointwise(torch.from_numpy(unit)), dim=1).numpy()
    assert result.record["inference"]["sliding_window"] is True
    np.testing.assert_allclose(result.probabilities, whole, atol=1e-5)


def test_two_window_preprocessing_makes_two_channels() -> None:
    from aimd.models.preprocess import preprocess_volume

    spec = InputSpec(
        modality="CT", channels=2, intensity=Intensity(method="window", windows=((-600.0, 1500.0), (40.0, 400.0)))
    )
    vol = Volume(np.array([[[-1350, -600, 40, 240]]], np.int16), modality="CT")
    out = preprocess_volume(vol, spec)
    np.testing.assert_allclose(out[0, 0, 0], [0.0, 0.5, (40 + 1350) / 1500, 1.0], atol=1e-6)
    np.testing.assert_allclose(out[0, 1, 0], [0.0, 0.0, 0.5, 1.0], atol=1e-6)
    with pytest.raises(Exception, match="1 intensity window"):
        InputSpec(modality="CT", channels=2, intensity=Intensity(method="window", windows=((0.0, 10.0),)))


def test_bundle_specs_derived_from_monai_metadata(tmp_path: Path) -> None:
    """A bundle not written by aimd: specs come from network_data_format and ScaleIntensityRanged."""
    from monai.networks.nets import BasicUNet

    torch.manual_seed(0)
    net = BasicUNet(spatial_dims=2, in_channels=1, out_channels=2, features=(4, 4, 8, 8, 16, 4)).eval()
    root = tmp_path / "spleen_like"
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    torch.save(net.state_dict(), root / "models" / "model.pt")
    meta = {
        "version": "0.2.0",
        "task": "toy CT segmentation",
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "hounsfield",
                    "modality": "CT",
                    "num_channels": 1,
                    "spatial_shape": ["16*n", "16*n"],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": True,
                }
            },
            "outputs": {
                "pred": {
                    "type": "image",
                    "format": "labels",
                    "num_channels": 2,
                    "spatial_shape": [32, 32],
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": True,
                    "channel_def": {"0": "background", "1": "spleen"},
                }
            },
        },
    }
    inference = {
        "network_def": {
            "_target_": "monai.networks.nets.BasicUNet",
            "spatial_dims": 2,
            "in_channels": 1,
            "out_channels": 2,
            "features": [4, 4, 8, 8, 16, 4],
        },
        "preprocessing": {
            "_target_": "Compose",
            "transforms": [
                {
                    "_target_": "ScaleIntensityRanged",
                    "keys": "image",
                    "a_min": -57,
                    "a_max": 164,
                    "b_min": 0.0,
                    "b_max": 1.0,
                    "clip": True,
                }
            ],
        },
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": [32, 32], "sw_batch_size": 4},
    }
    (root / "configs" / "metadata.json").write_text(json.dumps(meta))
    (root / "configs" / "inference.json").write_text(json.dumps(inference))
    predictor = MonaiBundlePredictor(root)
    assert predictor.input_spec.modality == "CT"
    assert predictor.input_spec.intensity.windows == (((-57 + 164) / 2, 221.0),)
    assert predictor.input_spec.patch_size == (32, 32) and predictor.input_spec.size_multiple == 16
    assert predictor.output_spec.labels == {0: "background", 1: "spleen"}
    assert predictor.output_spec.activation == "softmax"
    x = np.random.default_rng(0).random((2, 1, 32, 32), dtype=np.float32)
    with torch.inference_mode():
        np.testing.assert_allclose(predictor.predict_logits(x), net(torch.from_numpy(x)).numpy(), atol=1e-5)


def test_bundle_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "b" / "configs").mkdir(parents=True)
    (tmp_path / "b" / "configs" / "metadata.json").write_text("{not json")
    with pytest.raises(SchemaError, match="not valid JSON") as err:
        MonaiBundlePredictor(tmp_path / "b")
    assert "metadata.json" in str(err.value)
    with pytest.raises(InvalidInputError, match="bundle folder does not exist"):
        MonaiBundlePredictor(tmp_path / "nope")


def test_onnx_without_specs_needs_them_passed(exported: dict[str, Path], tmp_path: Path) -> None:
    import onnx

    model = onnx.load(str(exported["onnx"]))
    del model.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(model, str(bare))
    with pytest.raises(SchemaError, match="no aimd.input_spec"):
        OnnxPredictor(bare)
    assert OnnxPredictor(bare, SPEC_IN, SPEC_OUT, threads=1).output_spec == SPEC_OUT
