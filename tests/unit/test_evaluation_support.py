"""Shared builders for the evaluation/report tests: a threshold segmenter on synthetic disks.

The model is a real ``Conv2d(1, 1, 1)`` with weight 20 and bias −10, i.e. ``sigmoid(20·x − 10)``:
it marks exactly the pixels brighter than 0.5. Disks of intensity ``fg`` on a background of 0.2
give a known ground truth, so every metric has an independent expected value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from aimd.evaluation import EvalData, EvaluationContext
from aimd.models import InputSpec, OutputSpec, TorchModulePredictor

SIZE = 32
SPEC_IN = InputSpec(modality="CT", channels=1, patch_size=(SIZE, SIZE), spacing_mm=(1.0, 1.0))
SPEC_OUT = OutputSpec(task="segmentation", labels={1: "disk"}, activation="sigmoid", target="body")


def threshold_net() -> torch.nn.Module:
    """sigmoid(20·x − 10): foreground where x > 0.5."""
    net = torch.nn.Conv2d(1, 1, 1)
    with torch.no_grad():
        net.weight.fill_(20.0)
        net.bias.fill_(-10.0)
    return net.eval()


def disks(cases: dict[str, str], *, per_case: int = 3, fg: dict[str, float] | None = None, seed: int = 0) -> EvalData:
    """``per_case`` disk slices per case; ``fg`` gives a site's disk intensity (default 0.8)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    images, targets, owners = [], [], []
    for case, site in cases.items():
        for _ in range(per_case):
            r = rng.uniform(3, 9)
            cy, cx = rng.uniform(10, 22, size=2)
            mask = np.hypot(yy - cy, xx - cx) <= r
            img = np.full((SIZE, SIZE), 0.2, np.float32)
            img[mask] = (fg or {}).get(site, 0.8)
            images.append(img[None])
            targets.append(mask.astype(np.int64))
            owners.append(case)
    return EvalData(
        np.stack(images).astype(np.float32),
        np.stack(targets),
        owners,
        dict(cases),
        "segmentation",
        {"synthetic": "0" * 64},
    )


def context(tmp: Path, data: EvalData | None = None, net: torch.nn.Module | None = None) -> EvaluationContext:
    """An evaluation context on the threshold model."""
    network = net if net is not None else threshold_net()
    predictor = TorchModulePredictor(network, SPEC_IN, SPEC_OUT, {"model": "threshold"})
    return EvaluationContext(
        predictor=predictor,
        data=data if data is not None else disks({"c0": "A", "c1": "A", "c2": "B", "c3": "B"}),
        out_dir=tmp,
        network=network,
        model_label="threshold",
        seed=0,
        threads=1,
    )


def dice_np(a: np.ndarray, b: np.ndarray) -> float:
    """Dice by its definition (000 A.10.2 b), independent of aimd.metrics."""
    a, b = a.astype(bool), b.astype(bool)
    denom = a.sum() + b.sum()
    return 1.0 if denom == 0 else float(2 * (a & b).sum() / denom)
