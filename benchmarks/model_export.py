"""Benchmark: CPU inference throughput and accuracy of one model across runtimes (003 §3.3).

Paths, all on the same trained ``unet-small`` and the same validation slices:

* ``torch_fp32``        eager PyTorch, ``inference_mode`` (the reference);
* ``torch_channels_last`` eager PyTorch with channels-last (NHWC) weights and inputs, so oneDNN
                        convolutions skip layout reorders;
* ``torch_compile``     ``torch.compile`` (inductor) on the channels-last model, when it compiles here;
* ``onnx_fp32``         ONNX Runtime, full graph optimisation;
* ``onnx_int8_static``  ONNX Runtime, QDQ INT8 (per-channel weights, calibrated activations);
* ``onnx_int8_dynamic`` ONNX Runtime, INT8 weights with dynamic activation quantisation;
* ``openvino_fp32``     the same fp32 ONNX file compiled by OpenVINO's CPU plugin;
* ``openvino_int8_static`` the same QDQ INT8 file compiled by OpenVINO (int8 kernels even without VNNI);
* ``openvino_int8_dynamic`` when OpenVINO can compile the dynamic-quantised graph.

Throughput is images per second at a fixed batch, every path with the same number of threads.
Trials are interleaved round-robin (path A, B, C, A, B, C, ...) and the median per path is
reported, so load from other processes affects every path alike. Accuracy is the mean per-case
3-D Dice on the validation split; the change of each path is reported against eager fp32 in the
same run. The target of the models issue is: the fastest path at least 2× eager fp32 throughput
with at most 1 % relative loss of Dice. The load average before and after is printed: with more
runnable processes than cores, multi-threaded eager PyTorch slows down far more than ONNX Runtime
(its OpenMP threads spin-wait), which inflates every ratio — compare runs at ``--threads 1`` then.

Without ``--run`` a phantom dataset is generated and ``unet-small`` is pre-trained on the
multi-organ task first (a few minutes on 2 cores).

Usage: ``python benchmarks/model_export.py [--run RUN] [--threads 2] [--batch 16] [--trials 5] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aimd.models import (
    OnnxPredictor,
    OpenVinoPredictor,
    export_run,
    load_index,
    load_run,
    load_split,
    make_config,
    train,
)
from aimd.models.evaluate import evaluate_logits
from aimd.phantoms import generate_dataset
from value_gate import check_values

Fn = Callable[[np.ndarray], np.ndarray]


def _prepare(args: argparse.Namespace, work: Path) -> Path:
    if args.run:
        return Path(args.run)
    data = work / "phantoms"
    generate_dataset(data, cases=args.cases, seed=args.seed, size=64, workers=args.threads)
    run = work / "run"
    train(
        make_config(
            task="seg",
            model="unet-small",
            target="organs",
            data=data,
            out=run,
            epochs=args.epochs,
            lr=2e-3,
            max_steps_per_epoch=40,
            threads=args.threads,
            seed=args.seed,
        )
    )
    return run


def _torch_fn(module: torch.nn.Module, channels_last: bool = False) -> Fn:
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).contiguous(memory_format=fmt)
            return module(x).contiguous().numpy()

    return run


def _paths(run_dir: Path, threads: int, use_compile: bool) -> tuple[dict[str, Fn], dict[str, str]]:
    run = load_run(run_dir)
    network = run.build_network().eval()
    paths: dict[str, Fn] = {"torch_fp32": _torch_fn(network)}
    nhwc = run.build_network().eval().to(memory_format=torch.channels_last)
    paths["torch_channels_last"] = _torch_fn(nhwc, channels_last=True)
    notes: dict[str, str] = {}
    if use_compile:
        try:
            compiled = torch.compile(nhwc, dynamic=False)
            fn = _torch_fn(compiled, channels_last=True)  # type: ignore[arg-type]
            fn(np.zeros((2, *run.input_spec.input_shape()[1:]), np.float32))
            paths["torch_compile"] = fn
        except Exception as err:  # inductor needs a working C++ toolchain; report why it is missing
            notes["torch_compile"] = f"unavailable: {type(err).__name__}: {str(err).splitlines()[0][:100]}"
    export = run_dir / "export"
    for name, file in (
        ("onnx_fp32", "model.onnx"),
        ("onnx_int8_static", "model.int8.static.onnx"),
        ("onnx_int8_dynamic", "model.int8.dynamic.onnx"),
    ):
        paths[name] = OnnxPredictor(export / file, threads=threads).predict_logits
    for name, file in (
        ("openvino_fp32", "model.onnx"),
        ("openvino_int8_static", "model.int8.static.onnx"),
        ("openvino_int8_dynamic", "model.int8.dynamic.onnx"),
    ):
        try:
            paths[name] = OpenVinoPredictor(export / file, threads=threads).predict_logits
        except Exception as err:  # a graph OpenVINO has no kernels for is reported, not fatal
            notes[name] = f"unavailable: {type(err).__name__}: {str(err).splitlines()[0][:100]}"
    return paths, notes


def _throughput(paths: dict[str, Fn], batch: np.ndarray, trials: int, seconds: float) -> dict[str, float]:
    for fn in paths.values():  # warm-up
        fn(batch)
        fn(batch)
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(trials):
        for name, fn in paths.items():
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                fn(batch)
                count += 1
            samples[name].append(count * len(batch) / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="existing run folder (unet-small); default: train one")
    parser.add_argument("--cases", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one timed trial")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = _prepare(args, Path(tmp))
        export_run(run_dir, int8=("static", "dynamic"), threads=args.threads)
        run = load_run(run_dir)
        index = load_index(Path(run.record["data"]["dataset"]))
        spec = run.input_spec.model_copy(update={"spacing_mm": None})
        val = load_split(index, "val", run.output_spec.target, spec, keep_volumes=True, slice_policy="all")
        paths, notes = _paths(run_dir, args.threads, not args.no_compile)
        accuracy = {name: evaluate_logits(fn, val, run.output_spec)["dice_mean"] for name, fn in paths.items()}
        batch = val.images[: args.batch]
        speed = _throughput(paths, batch, args.trials, args.seconds)
    base_speed, base_acc = speed["torch_fp32"], accuracy["torch_fp32"]
    fp32 = {name: acc for name, acc in accuracy.items() if "int8" not in name}  # same arithmetic: same Dice
    check_values("validation Dice of every fp32 path vs eager PyTorch", fp32, dict.fromkeys(fp32, base_acc), 1e-3)
    rows: list[dict[str, Any]] = []
    for name in paths:
        rows.append(
            {
                "path": name,
                "images_per_s": round(speed[name], 1),
                "speedup_vs_eager": round(speed[name] / base_speed, 2),
                "dice": round(accuracy[name], 5),
                "dice_change": round(accuracy[name] - base_acc, 5),
                "relative_change_pct": round(100 * (accuracy[name] - base_acc) / base_acc, 3),
            }
        )
    eligible = [r for r in rows if r["relative_change_pct"] >= -1.0]
    best = max(eligible, key=lambda r: r["speedup_vs_eager"])
    result = {
        "model": run.info["model"],
        "target": run.output_spec.target,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "batch": args.batch,
        "validation_cases": len(val.volumes),
        "rows": rows,
        "notes": notes,
        "fastest_within_1pct": best["path"],
        "fastest_speedup": best["speedup_vs_eager"],
        "target_met": best["speedup_vs_eager"] >= 2.0,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['model']} ({result['target']}), batch {args.batch}, {args.threads} threads, "
        f"{result['validation_cases']} validation cases; load average {result['load_average'][0]} → "
        f"{result['load_average'][1]} on {result['cpu_count']} cores"
    )
    print(f"{'path':<22}{'images/s':>10}{'× eager':>9}{'Dice':>9}{'ΔDice':>10}{'Δ%':>8}")
    for r in rows:
        print(
            f"{r['path']:<22}{r['images_per_s']:>10.1f}{r['speedup_vs_eager']:>9.2f}{r['dice']:>9.4f}"
            f"{r['dice_change']:>+10.5f}{r['relative_change_pct']:>+8.2f}"
        )
    for name, note in notes.items():
        print(f"{name}: {note}")
    print(
        f"fastest path within 1 % Dice: {best['path']} at {best['speedup_vs_eager']:.2f}× eager "
        f"(target 2×: {'met' if result['target_met'] else 'not met'})"
    )


if __name__ == "__main__":
    main()
