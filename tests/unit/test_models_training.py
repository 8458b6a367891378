"""Training on phantoms: losses, augmentation, LoRA, distillation, early stopping and the training record."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aimd.core.errors import IntegrityError, InvalidInputError, SchemaError
from aimd.core.hashing import sha256_file
from aimd.models.augment import Augmenter, RandomElastic, RandomFlip, build_augmentations
from aimd.models.config import make_config
from aimd.models.data import choose_cases, load_index
from aimd.models.distill import DistillationLoss, soft_loss
from aimd.models.lora import apply_lora, merge_lora, trainable_parameters
from aimd.models.losses import TaskLoss
from aimd.models.runs import load_run
from aimd.models.training import train
from aimd.models.zoo import build_network
from aimd.phantoms import generate_dataset

torch.set_num_threads(1)
FAST = {"threads": 1, "batch_size": 8, "max_steps_per_epoch": 4, "eval_train_cases": 2}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("models_training") / "ph"
    generate_dataset(out, cases=8, seed=4, size=32, sites=2, workers=1)
    return out


@pytest.fixture(scope="module")
def pretrained(dataset: Path) -> dict[str, object]:
    out = dataset.parent / "pre"
    summary = train(
        make_config(
            task="seg",
            model="unet-small",
            target="organs",
            data=dataset,
            out=out,
            epochs=3,
            lr=3e-3,
            augment=["flip", "noise"],
            **FAST,
        )
    )
    return {"path": out, "summary": summary}


def test_pretraining_reduces_loss_on_phantoms(pretrained: dict[str, object]) -> None:
    summary = pretrained["summary"]
    assert isinstance(summary, dict)
    assert summary["last_train_loss"] < summary["first_train_loss"]
    record = json.loads((Path(str(pretrained["path"])) / "record.json").read_text())
    assert [e["epoch"] for e in record["epochs"]] == list(range(1, len(record["epochs"]) + 1))
    assert record["epochs"][-1]["val_loss"] < record["epochs"][0]["val_loss"]
    assert all({"train_loss", "val_loss", "val_metric", "lr", "seconds"} <= e.keys() for e in record["epochs"])


def test_record_hashes_splits_hardware_and_curves(pretrained: dict[str, object], dataset: Path) -> None:
    run_dir = Path(str(pretrained["path"]))
    record = json.loads((run_dir / "record.json").read_text())
    index = json.loads((dataset / "dataset.json").read_text())
    # the split recorded is dataset.json's split, and every recorded hash is the file's real SHA-256
    for split in ("train", "val", "test"):
        assert record["data"]["split"][split] == sorted(index["split"][split])
    for rel, digest in record["data"]["files"].items():
        assert sha256_file(dataset / rel) == digest
    assert record["data"]["dataset_sha256"] == sha256_file(dataset / "dataset.json")
    assert record["environment"]["cpu_count"] >= 1 and "torch" in record["environment"]["software"]
    applied = {a["name"]: a["applied"] for a in record["learning"]["augmentation"]}
    assert set(applied) == {"flip", "gaussian_noise"} and sum(applied.values()) > 0
    for png in ("loss.png", "metric.png"):
        assert (run_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["weights_sha256"] == sha256_file(run_dir / "best.pt")
    assert info["input_spec"]["spacing_mm"] is not None
    assert set(record["benchmark"]) == {"train", "val", "test"}


def test_full_and_lora_fine_tuning_from_the_pretrained_run(pretrained: dict[str, object], dataset: Path) -> None:
    pre = Path(str(pretrained["path"]))
    full = train(
        make_config(
            task="seg",
            model="unet-small",
            target="lesions",
            data=dataset,
            out=dataset.parent / "ft_full",
            init=pre,
            case_fraction=0.5,
            epochs=1,
            **FAST,
        )
    )
    lora = train(
        make_config(
            task="seg",
            model="unet-small",
            target="lesions",
            data=dataset,
            out=dataset.parent / "ft_lora",
            init=pre,
            case_fraction=0.5,
            epochs=1,
            lora_rank=2,
            **FAST,
        )
    )
    info = json.loads((dataset.parent / "ft_lora" / "run.json").read_text())
    # the output head changed from 5 organ classes to 1 lesion channel: re-initialised and listed
    assert "output.2.weight" in info["parent"]["reinitialised"]
    assert info["parent"]["loaded_tensors"] > 50
    assert lora["trainable_parameters"] < full["trainable_parameters"] / 10
    record = json.loads((dataset.parent / "ft_lora" / "record.json").read_text())
    n_train = len(load_index(dataset).split_ids("train"))
    assert len(record["data"]["split"]["train"]) == round(n_train * 0.5)
    assert (dataset.parent / "ft_lora" / "lora_adapter.pt").is_file()
    # the merged LoRA model is a plain network that loads strictly from best.pt
    assert load_run(dataset.parent / "ft_lora").build_network() is not None


def test_lora_trainable_count_is_rank_times_fan_in_plus_fan_out() -> None:
    net = build_network("vit-small", out_channels=2)
    dim = 96
    peft_model = apply_lora(net, rank=4, alpha=8, targets=["blocks.*.attn.qkv"], head=["head"])
    depth = 4
    lora = depth * 4 * (dim + 3 * dim)  # A: r×in, B: out×r per qkv layer
    head = dim * 2 + 2
    assert trainable_parameters(peft_model) == lora + head
    x = torch.rand(2, 1, 64, 64)
    peft_model.eval()
    with torch.no_grad():
        before = peft_model(x)
        merged = merge_lora(peft_model)
        torch.testing.assert_close(merged(x), before, atol=1e-5, rtol=1e-5)
    with pytest.raises(InvalidInputError, match="match no Linear/Conv2d layer"):
        apply_lora(build_network("vit-small", out_channels=2), rank=2, alpha=4, targets=["nothing.*"])


def test_dice_focal_loss_matches_hand_formula() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 1, 5, 5)
    target = (torch.rand(3, 5, 5) > 0.6).long()
    p = torch.sigmoid(logits[:, 0])
    t = target.float()
    dice = 1 - (2 * (p * t).sum() + 1e-5) / (p.sum() + t.sum() + 1e-5)
    pt = torch.where(t > 0, p, 1 - p)
    focal = (-((1 - pt) ** 2) * torch.log(pt)).mean()
    loss = TaskLoss("dice_focal", "sigmoid", lambda_dice=0.4, lambda_focal=0.6)(logits, target)
    assert float(loss) == pytest.approx(float(0.4 * dice + 0.6 * focal), rel=1e-4)


def test_softmax_dice_loss_and_ce_for_classification() -> None:
    torch.manual_seed(1)
    logits = torch.randn(6, 3)
    target = torch.tensor([0, 1, 2, 1, 0, 2])
    ce = TaskLoss("ce", "softmax")(logits, target)
    assert float(ce) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, target)), rel=1e-6)
    with pytest.raises(InvalidInputError, match="unknown loss"):
        TaskLoss("hinge", "softmax")


def test_distillation_loss_follows_003_formula() -> None:
    torch.manual_seed(2)
    student = torch.randn(4, 2)
    teacher_net = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    target = torch.tensor([0, 1, 1, 0])
    with torch.no_grad():
        teacher = teacher_net(x)
    t = 5.0
    kl = (
        torch.nn.functional.kl_div(
            torch.log_softmax(student / t, 1), torch.softmax(teacher / t, 1), reduction="batchmean"
        )
        * t
        * t
    )
    hard = torch.nn.functional.cross_entropy(student, target)
    loss = DistillationLoss(TaskLoss("ce", "softmax"), teacher_net, temperature=t, alpha=0.7)(student, target, x)
    assert float(loss) == pytest.approx(float(0.7 * kl + 0.3 * hard), rel=1e-5)
    z = torch.randn(2, 1, 4, 4)  # a sigmoid output equals the two-class softmax of (0, z)
    assert float(soft_loss(z, z, temperature=2.0)) == pytest.approx(0.0, abs=1e-6)


def test_augmentations_keep_image_and_mask_aligned() -> None:
    image = np.zeros((1, 24, 24), np.float32)
    image[0, 5:12, 7:15] = 1.0
    mask = (image[0] > 0.5).astype(np.int64)
    for transform in (RandomFlip(axes=(0, 1), p=1.0), RandomElastic(alpha=3.0, sigma=3.0, p=1.0)):
        params = transform.make_params(np.random.default_rng(0), image.shape)
        out_img, out_mask = transform.apply(image, mask, params)
        assert out_mask is not None
        agreement = ((out_img[0] > 0.5) == (out_mask > 0)).mean()
        assert agreement > 0.97
    aug = Augmenter(build_augmentations(["noise", "shift"], segmentation=True), seed=0)
    for t in aug.transforms:
        t.p = 1.0
    out, _ = aug.batch(np.full((4, 1, 8, 8), 0.5, np.float32), np.zeros((4, 8, 8), np.int64))
    assert aug.counts == {"gaussian_noise": 4, "intensity_shift": 4}
    assert out.min() >= 0.0 and out.max() <= 1.0 and not np.allclose(out, 0.5)
    with pytest.raises(InvalidInputError, match="unknown augmentation"):
        build_augmentations(["rotate"], segmentation=True)


def test_early_stopping_and_seed_determinism(dataset: Path) -> None:
    kwargs = {
        "task": "cls",
        "model": "vit-small",
        "data": dataset,
        "epochs": 6,
        "patience": 1,
        "lr": 1e-9,
        "min_delta": 10.0,
        "augment": [],
        **FAST,
    }
    a = train(make_config(out=dataset.parent / "cls_a", **kwargs))
    b = train(make_config(out=dataset.parent / "cls_b", **kwargs))
    # with an unreachable improvement threshold, training stops after patience + 1 epochs
    assert a["stopped_early"] and a["epochs_run"] == 2 and a["best_epoch"] == 1
    assert a["first_train_loss"] == b["first_train_loss"] and a["last_train_loss"] == b["last_train_loss"]


def test_distillation_run_records_teacher(dataset: Path) -> None:
    teacher = dataset.parent / "teacher"
    train(make_config(task="cls", model="vit-small", data=dataset, out=teacher, epochs=1, augment=[], **FAST))
    student = train(
        make_config(
            task="cls",
            model="vit-small",
            data=dataset,
            out=dataset.parent / "student",
            teacher=teacher,
            model_kwargs={"dim": 32, "depth": 1, "heads": 2},
            epochs=1,
            augment=[],
            **FAST,
        )
    )
    info = json.loads((dataset.parent / "student" / "run.json").read_text())
    assert info["distillation"]["temperature"] == 4.0 and info["distillation"]["alpha"] == 0.7
    assert student["trainable_parameters"] < info["distillation"]["teacher_parameters"]


def test_bad_inputs_give_clear_errors(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unet-small is a seg model, not cls"):
        make_config(task="cls", model="unet-small", data=dataset, out=tmp_path / "x")
    with pytest.raises(InvalidInputError, match="LoRA fine-tunes a trained model"):
        make_config(task="seg", model="unet-small", data=dataset, out=tmp_path / "x", lora_rank=4)
    with pytest.raises(InvalidInputError, match="dataset.json not found"):
        train(make_config(task="seg", model="unet-small", data=tmp_path / "none", out=tmp_path / "x", **FAST))
    broken = tmp_path / "broken.json"
    broken.write_text('{"cases": []}')
    with pytest.raises(SchemaError, match="missing field 'label_map'"):
        load_index(broken)
    with pytest.raises(InvalidInputError, match="case fraction"):
        choose_cases(["a"], 0.0, 0)
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_changed_file_is_an_integrity_error(dataset: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "ph"
    shutil.copytree(dataset, copy)
    labels = copy / "cases" / "case_0001" / "labels.nii.gz"
    labels.write_bytes(labels.read_bytes() + b"\0")
    with pytest.raises(IntegrityError, match="SHA-256") as err:
        load_index(copy).file("case_0001", "labels.nii.gz")
    assert "labels.nii.gz" in str(err.value)


def test_sgd_step_and_cosine_restart_schedules(dataset: Path) -> None:
    import math

    common = {
        "task": "cls",
        "model": "vit-small",
        "data": dataset,
        "epochs": 2,
        "patience": 5,
        "lr": 0.01,
        "augment": [],
        **FAST,
    }
    step = train(
        make_config(
            out=dataset.parent / "sgd_step", optimizer="sgd", schedule="step", step_size=1, step_gamma=0.9, **common
        )
    )
    record = json.loads((Path(step["run"]) / "record.json").read_text())
    assert [e["lr"] for e in record["epochs"]] == pytest.approx([0.01, 0.009])  # 000 B.1.5.2-style decay
    assert record["learning"]["optimizer"]["name"] == "sgd" and record["learning"]["optimizer"]["momentum"] == 0.9
    cosine = train(make_config(out=dataset.parent / "cosine", schedule="cosine_restarts", t0=4, **common))
    record = json.loads((Path(cosine["run"]) / "record.json").read_text())
    assert record["epochs"][0]["lr_end"] == pytest.approx(0.01 * (1 + math.cos(math.pi / 4)) / 2)
