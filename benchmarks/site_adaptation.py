"""Multi-site evidence (003 §5.3, 000 §5.2.7): per-site Dice before and after AdaBN, harmonisation and FedAvg.

One run on phantom sites, every number with a 95 % bootstrap CI over test cases:

* home site ``SITE_A`` (GE): a ``unet-small`` organ model is trained on it alone (the baseline);
* external sites the baseline never saw: ``SITE_B`` (Siemens, other noise, pixel and slice size,
  +6 HU) and ``SITE_X`` (Philips, a scanner miscalibrated by +120 HU);
* AdaBN: the baseline's BatchNorm statistics re-estimated on unlabelled images of each external
  site (``aimd model adapt --method bn``), tested on other cases of that site;
* harmonisation: the device fingerprint table (``aimd data fingerprint``) learned from unlabelled
  series of all three sites, its HU offset removed before the baseline runs (``--harmonise``);
* FedAvg: ``aimd model federate`` over ``SITE_A`` and the labelled training cases of ``SITE_B``, with
  as many local steps per site as the baseline's training steps; ``SITE_X`` stays unseen.

Test cases are generated apart from every training and adaptation case. Per site: mean Dice (cases ×
organ classes) with its CI; the internal − external drop (cases resampled independently); per method
the paired per-case improvement with its CI, whether the CI excludes zero, the drop that remains
(internal score of the same model: the baseline's for AdaBN and harmonisation, which leave the home
site alone; the FedAvg model's own for FedAvg) and the share of the drop recovered. The fingerprint's
reference protocol is the home site's, the one the baseline was trained on.

Usage: ``python benchmarks/site_adaptation.py [--size 32] [--cases 12] [--epochs 8] [--steps 8] [--json out.json]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aimd.core.atomic import atomic_write_json
from aimd.imaging.fingerprint import fingerprint, harmonise_image
from aimd.imaging.io import read_volume
from aimd.metrics.statistics import bootstrap_ci
from aimd.models.adapt import adapt_run
from aimd.models.config import make_config
from aimd.models.data import ArraySet, class_map, load_index
from aimd.models.evaluate import evaluate_logits
from aimd.models.federated.flower import federate
from aimd.models.preprocess import preprocess_volume
from aimd.models.runs import load_run
from aimd.models.targets import get_target
from aimd.models.training import train
from aimd.phantoms import generate_dataset
from aimd.phantoms.sites import SITE_PROFILES

TARGET = "organs"
HOME = SITE_PROFILES[0]
SITE_B = SITE_PROFILES[1]
SITE_X = dataclasses.replace(SITE_PROFILES[2], site_id="SITE_X", hu_offset=120.0)


def per_case_dice(run_dir: Path, data: Path, table: Path | None = None) -> dict[str, float]:
    """Mean organ Dice of every case of ``data`` (all splits), optionally harmonised by ``table``."""
    run = load_run(run_dir)
    net = run.build_network()
    index = load_index(data)
    target = get_target(TARGET)
    volumes = {}
    for case in index.data["cases"]:
        cid = str(case["id"])
        ct_path, _ = index.file(cid, "ct.nii.gz")
        volume = read_volume(ct_path)
        if table is not None:
            volume, _ = harmonise_image(ct_path.parent / "ct", volume, table)
        labels = class_map(read_volume(index.file(cid, "labels.nii.gz")[0]).array, target, index.label_map)
        volumes[cid] = (preprocess_volume(volume, run.input_spec), labels, volume.spacing)
    arrays = ArraySet(np.zeros(0, np.float32), np.zeros(0, np.int64), [], np.zeros(0, np.int64), volumes=volumes)
    with torch.no_grad():
        scores = evaluate_logits(lambda x: net(torch.from_numpy(x)).numpy(), arrays, run.output_spec)
    return {cid: float(np.mean(list(v.values()))) for cid, v in scores["per_case"].items()}


def ci(values: np.ndarray) -> dict[str, Any]:
    """Mean with its 95 % BCa bootstrap CI."""
    return bootstrap_ci(np.asarray(values, float), np.mean, seed=0).to_dict()


def drop_ci(internal: np.ndarray, external: np.ndarray, resamples: int = 2000) -> dict[str, Any]:
    """Internal − external mean Dice, the two test sets resampled independently (percentile CI)."""
    rng = np.random.default_rng(0)
    diffs = [
        rng.choice(internal, internal.size).mean() - rng.choice(external, external.size).mean()
        for _ in range(resamples)
    ]
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"estimate": float(internal.mean() - external.mean()), "ci_low": float(low), "ci_high": float(high)}


def build(root: Path, args: argparse.Namespace) -> dict[str, Path]:
    """Every dataset and model of the comparison."""
    n = args.cases
    sets = {
        "home": (root / "fp" / "home", [HOME], 101),
        "b_unlabelled": (root / "fp" / "b_unlabelled", [SITE_B], 102),
        "x_unlabelled": (root / "fp" / "x_unlabelled", [SITE_X], 103),
        "b_train": (root / "b_train", [SITE_B], 104),
        "test_A": (root / "test" / "A", [HOME], 201),
        "test_B": (root / "test" / "B", [SITE_B], 202),
        "test_X": (root / "test" / "X", [SITE_X], 203),
    }
    paths = {name: path for name, (path, _, _) in sets.items()}
    if (root / "fedavg" / "run.json").is_file():  # a kept --work folder: data and models are reused
        return paths
    for name, (path, profiles, seed) in sets.items():
        cases = args.train_cases if name in ("home", "b_train") else n
        generate_dataset(path, cases=cases, seed=seed, size=args.size, profiles=profiles, workers=1)
    common = {"lr": 3e-3, "batch_size": 8, "threads": args.threads, "seed": 0}
    train(
        make_config(
            task="seg",
            model="unet-small",
            target=TARGET,
            data=paths["home"],
            out=root / "baseline",
            epochs=args.epochs,
            max_steps_per_epoch=args.steps,
            augment=[],
            patience=args.epochs,
            eval_train_cases=2,
            **common,
        )
    )
    for site in ("b", "x"):
        adapt_run(root / "baseline", paths[f"{site}_unlabelled"], root / f"adabn_{site}", threads=args.threads)
    federate(
        [paths["home"], paths["b_train"]],
        root / "fedavg",
        rounds=args.epochs,
        local_steps=args.steps,
        batch_size=8,
        lr=3e-3,
        threads=args.threads,
        workers=2,
    )
    return paths


def home_configuration(paths: dict[str, Path]) -> str:
    """The fingerprint label of the home site's scanner and protocol (the harmonisation reference)."""
    import pydicom

    from aimd.imaging.fingerprint import KEY_FIELDS, config_key, key_label

    first = next((paths["home"] / "cases").glob("*/ct/*.dcm"))
    return key_label(config_key(pydicom.dcmread(first, stop_before_pixels=True, specific_tags=list(KEY_FIELDS))))


def evidence(root: Path, paths: dict[str, Path]) -> dict[str, Any]:
    """Per-site Dice before and after each method, the drops and the improvements with their CIs."""
    table = root / "fingerprint.json"
    atomic_write_json(table, fingerprint(root / "fp", reference=home_configuration(paths)))
    base = {s: per_case_dice(root / "baseline", paths[f"test_{s}"]) for s in ("A", "B", "X")}
    methods = {
        "AdaBN": {s: per_case_dice(root / f"adabn_{s.lower()}", paths[f"test_{s}"]) for s in ("B", "X")},
        "harmonisation": {s: per_case_dice(root / "baseline", paths[f"test_{s}"], table) for s in ("B", "X")},
        "FedAvg (A+B)": {s: per_case_dice(root / "fedavg", paths[f"test_{s}"]) for s in ("A", "B", "X")},
    }
    internal = np.array(list(base["A"].values()))
    internal_after = {m: np.array([v["A"][c] for c in base["A"]]) if "A" in v else internal for m, v in methods.items()}
    sites: dict[str, Any] = {}
    for site, scores in base.items():
        values = np.array(list(scores.values()))
        row: dict[str, Any] = {"cases": len(values), "baseline": ci(values), "methods": {}}
        drop = drop_ci(internal, values) if site != "A" else None
        row["drop_from_internal"] = drop
        for method, per_site in methods.items():
            if site not in per_site:
                continue
            after = np.array([per_site[site][c] for c in scores])
            gain = ci(after - values)
            drop_after = drop_ci(internal_after[method], after) if drop else None
            recovered = (
                (drop["estimate"] - drop_after["estimate"]) / drop["estimate"]
                if drop and drop_after and drop["estimate"] > 0
                else None
            )
            row["methods"][method] = {
                "dice": ci(after),
                "improvement": gain,
                "ci_excludes_zero": bool(gain["ci_low"] > 0 or gain["ci_high"] < 0),
                "drop_from_internal_after": drop_after,
                "share_of_drop_recovered": recovered,
            }
        sites[site] = row
    fp = json.loads(table.read_text())
    return {
        "sites": sites,
        "fingerprint_offsets": {r["configuration"]: r["hu_offset"] for r in fp["configurations"]},
    }


def _fmt(c: dict[str, Any]) -> str:
    return f"{c['estimate']:.3f} [{c['ci_low']:.3f}, {c['ci_high']:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--cases", type=int, default=12, help="test and unlabelled cases per site")
    parser.add_argument("--train-cases", type=int, default=12, help="labelled cases of the home and FedAvg sites")
    parser.add_argument("--epochs", type=int, default=8, help="baseline epochs = FedAvg rounds")
    parser.add_argument("--steps", type=int, default=8, help="steps per epoch = local steps per round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None, help="keep the data and models here")
    parser.add_argument("--json", type=Path, default=None, help="write the evidence here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.work or Path(tmp)
        paths = build(root, args)
        result = {"settings": vars(args) | {"work": str(args.work), "json": str(args.json)}, **evidence(root, paths)}
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        atomic_write_json(args.json, result)
    print(
        "site  method          Dice [95% CI]         improvement [95% CI]  excl. 0  drop after [95% CI]     recovered"
    )
    for site, row in result["sites"].items():
        drop = f"  (drop from internal {_fmt(row['drop_from_internal'])})" if row["drop_from_internal"] else ""
        print(f"{site}     baseline        {_fmt(row['baseline'])}{drop}")
        for method, m in row["methods"].items():
            share = m["share_of_drop_recovered"]
            after = m["drop_from_internal_after"]
            print(
                f"{site}     {method:15s} {_fmt(m['dice'])}  {_fmt(m['improvement'])}  "
                f"{'yes' if m['ci_excludes_zero'] else 'no':7s}  {_fmt(after) if after else '':24s}"
                f"{'' if share is None else f'{share:.0%}'}"
            )
    print(f"fingerprint HU offsets: {result['fingerprint_offsets']}; {result['seconds']} s")


if __name__ == "__main__":
    main()
