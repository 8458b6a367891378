"""Phantom dataset: layout, hashes, reproducibility, splits, atomic writing."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from aimd.core.errors import InvalidInputError
from aimd.phantoms import dataset as dataset_module
from aimd.phantoms import generate_dataset, stratified_split
from aimd.phantoms.lesions import sample_plan

CASE_FILES = {
    "ct.nii.gz",
    "labels.nii.gz",
    "lesions.nii.gz",
    "dx.dcm",
    "dx_boxes.json",
    "lesions.json",
    "report_zh.txt",
    "report_en.txt",
    "report.json",
    "clinical.json",
}
SIZE = 32


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "ds"
    generate_dataset(out, cases=5, seed=11, size=SIZE, sites=3, workers=2)
    return out


def test_layout(ds: Path) -> None:
    index = json.loads((ds / "dataset.json").read_text(encoding="utf-8"))
    assert [c["id"] for c in index["cases"]] == [f"case_000{i}" for i in range(1, 6)]
    assert sorted(p.name for p in ds.iterdir()) == ["cases", "dataset.json"]
    for case in index["cases"]:
        folder = ds / "cases" / case["id"]
        names = {p.name for p in folder.iterdir()}
        assert names == CASE_FILES | {"ct"}
        slices = sorted(p.name for p in (folder / "ct").iterdir())
        assert slices == [f"IM{k:05d}.dcm" for k in range(1, SIZE + 1)]
    assert index["label_map"] == {
        "0": "background",
        "1": "body",
        "2": "lung",
        "3": "liver",
        "4": "spine_bone",
        "5": "lung_nodule",
        "6": "liver_tumour",
    }
    assert index["generator"]["params"] == {"cases": 5, "seed": 11, "size": SIZE, "sites": 3}
    assert [c["site"] for c in index["cases"]] == ["SITE_A", "SITE_B", "SITE_C", "SITE_A", "SITE_B"]


def test_dataset_json_hashes_match_files(ds: Path) -> None:
    index = json.loads((ds / "dataset.json").read_text(encoding="utf-8"))
    listed = {f["path"]: f for c in index["cases"] for f in c["files"]}
    actual = _hashes(ds)
    assert set(actual) == set(listed) | {"dataset.json"}
    for path, entry in listed.items():
        assert entry["sha256"] == actual[path]
        assert entry["bytes"] == (ds / path).stat().st_size


def test_same_seed_identical_bytes_any_worker_count(ds: Path, tmp_path: Path) -> None:
    generate_dataset(tmp_path / "again", cases=5, seed=11, size=SIZE, sites=3, workers=1)
    assert _hashes(tmp_path / "again") == _hashes(ds)


def test_different_seed_differs(ds: Path, tmp_path: Path) -> None:
    generate_dataset(tmp_path / "other", cases=2, seed=12, size=SIZE, sites=3, workers=1)
    mine, other = _hashes(ds), _hashes(tmp_path / "other")
    for name in ("ct.nii.gz", "dx.dcm", "report_zh.txt", "clinical.json", "ct/IM00010.dcm"):
        assert mine[f"cases/case_0001/{name}"] != other[f"cases/case_0001/{name}"]


def test_splits_stratified_and_reproducible() -> None:
    rng = np.random.default_rng(0)
    cases = [
        {"id": f"c{i}", "site": f"S{i % 3}", "stratum": str(rng.choice(["none", "lung", "liver"]))} for i in range(200)
    ]
    split = stratified_split(cases, seed=5)
    assert split == stratified_split(cases, seed=5)
    assert split != stratified_split(cases, seed=6)
    assert Counter(split.values()) == {"train": 140, "val": 30, "test": 30}
    for key in {(c["site"], c["stratum"]) for c in cases}:
        members = [split[c["id"]] for c in cases if (c["site"], c["stratum"]) == key]
        counts = Counter(members)
        for name, fraction in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
            assert abs(counts[name] - fraction * len(members)) <= 2, (key, counts)


def test_small_dataset_still_has_every_split(ds: Path) -> None:
    index = json.loads((ds / "dataset.json").read_text(encoding="utf-8"))
    splits = Counter(c["split"] for c in index["cases"])
    assert splits["train"] >= 3 and splits["val"] >= 1 and splits["test"] >= 1
    assert sorted(index["split"]["train"] + index["split"]["val"] + index["split"]["test"]) == [
        c["id"] for c in index["cases"]
    ]


def test_about_one_case_in_five_has_no_lesion() -> None:
    rng = np.random.default_rng(0)
    plans = [sample_plan(rng) for _ in range(2000)]
    empty = sum(not p for p in plans) / len(plans)
    assert 0.15 < empty < 0.25
    kinds = Counter(k for p in plans for k in p)
    assert set(kinds) == {"solid_nodule", "ground_glass_nodule", "liver_tumour"}


def test_existing_output_refused_then_forced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(InvalidInputError, match="not empty"):
        generate_dataset(out, cases=1, seed=0, size=SIZE, workers=1)
    assert (out / "mine.txt").read_text() == "keep"
    generate_dataset(out, cases=1, seed=0, size=SIZE, workers=1, force=True)
    assert not (out / "mine.txt").exists() and (out / "dataset.json").exists()


def test_interrupted_run_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = dataset_module._build_and_write

    def failing(job: tuple) -> dict:  # type: ignore[type-arg]
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(dataset_module, "_build_and_write", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path / "out", cases=3, seed=0, size=SIZE, workers=1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [({"cases": 0}, "--cases"), ({"cases": 1, "size": 31}, "--size"), ({"cases": 1, "sites": 7}, "--sites")],
)
def test_bad_parameters(tmp_path: Path, kwargs: dict, where: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidInputError) as err:
        generate_dataset(tmp_path / "out", **kwargs)
    assert err.value.where == where
    assert not (tmp_path / "out").exists()
