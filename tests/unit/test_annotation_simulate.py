"""Simulated phantom readers: reproducible, faithful to ground truth, with the recorded expected outcomes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from test_annotation_builders import expected, simulated_dataset

from aimd.annotation import audit_chain_break, default_template, read_sources, run_qc, simulate_annotators
from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_file


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulated_dataset(tmp_path_factory.mktemp("sim"))


def _nib(path: Path) -> np.ndarray:
    """Read a NIfTI with nibabel only, as (z, y, x)."""
    return np.transpose(np.asarray(nib.load(str(path)).dataobj), (2, 1, 0))


def _cases(dataset: Path) -> list[str]:
    return sorted(p.name for p in (dataset / "cases").iterdir())


def test_same_seed_same_bytes(dataset: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(dataset, copy)
    simulate_annotators(copy, 3, seed=0)
    for case in _cases(dataset):
        a = dataset / "cases" / case / "annotations"
        files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        assert files and files == sorted(
            p.relative_to(copy / "cases" / case / "annotations")
            for p in (copy / "cases" / case / "annotations").rglob("*")
            if p.is_file()
        )
        assert all(sha256_file(a / f) == sha256_file(copy / "cases" / case / "annotations" / f) for f in files)


def test_reference_reader_equals_the_phantom_ground_truth(dataset: Path) -> None:
    for case in _cases(dataset):
        folder = dataset / "cases" / case
        src = read_sources(folder / "annotations" / "reader_1.json")[0]
        labels, instances = _nib(folder / "labels.nii.gz"), _nib(folder / "lesions.nii.gz")
        organs = _nib(src.resolve(next(a for a in src.package.annotations if a.id == "ORG_LUNG").data.mask_file or ""))
        truth_organs = np.where(labels == 5, 2, np.where(labels == 6, 3, labels))
        assert np.array_equal(organs, truth_organs)
        lesions = json.loads((folder / "lesions.json").read_text())["lesions"]
        masks = [a for a in src.package.annotations if a.category.value == "lesion" and a.type.value == "mask"]
        assert len(masks) == len(lesions)
        for ann, truth in zip(masks, lesions, strict=True):
            assert np.array_equal(_nib(src.resolve(ann.data.mask_file or "")) == 1, instances == truth["instance"])
            attrs = ann.data.attributes
            assert (attrs["diameter_mm"], attrs["margin"], attrs["lobe"]) == (
                truth["diameter_mm"],
                truth["margin"],
                truth["lobe"],
            )


def test_qc_finds_exactly_the_planted_problems(dataset: Path) -> None:
    tpl = default_template()
    for case in _cases(dataset):
        exp = expected(dataset, case)
        for reader, outcome in exp["readers"].items():
            src = read_sources(dataset / "cases" / case / "annotations" / f"{reader}.json")[0]
            findings = run_qc(src, template=tpl)
            errors = {(f.code, f.location.get("field")) for f in findings if f.is_error}
            assert errors == {("CLINICAL_TIME_GAP_UNLABELLED", lab) for lab in outcome["unlabelled_stale_labs"]}
            marked = {
                f"{f.location['annotation']}->{f.location['target']}"
                for f in findings
                if f.code == "IMAGE_TEXT_INCONSISTENT"
            }
            assert marked == set(outcome["inconsistent_links"])


def test_variable_reader_masks_follow_their_operations(dataset: Path) -> None:
    seen = set()
    for case in _cases(dataset):
        folder = dataset / "cases" / case
        exp = expected(dataset, case)["readers"]["reader_2"]
        instances = _nib(folder / "lesions.nii.gz")
        truth = {le["id"]: le for le in json.loads((folder / "lesions.json").read_text())["lesions"]}
        src = read_sources(folder / "annotations" / "reader_2.json")[0]
        for ann_id, lesion_id in exp["lesion_map"].items():
            ann = next(a for a in src.package.annotations if a.id == ann_id)
            if ann.type.value != "mask" or lesion_id == "FALSE_POSITIVE":
                continue
            mask = _nib(src.resolve(ann.data.mask_file or "")) == 1
            t = instances == truth[lesion_id]["instance"]
            op, amount = exp["lesion_ops"][lesion_id]
            seen.add(op)
            if op == "dilate":
                assert (mask & t).sum() == t.sum() and mask.sum() > t.sum()
            elif op == "erode":
                assert (mask & t).sum() == mask.sum() and mask.sum() < t.sum()
            else:
                assert np.array_equal(mask, np.roll(t, amount[0], axis=2))
        assert set(exp["missed"]).isdisjoint(exp["lesion_map"].values())
    assert seen


def test_model_assisted_reader_records_suggestions_and_corrections(dataset: Path) -> None:
    for case in _cases(dataset):
        exp = expected(dataset, case)["readers"]["reader_3"]
        src = read_sources(dataset / "cases" / case / "annotations" / "reader_3.json")[0]
        pkg = src.package
        assert pkg.metadata.software.ai_model is not None
        assert [r.id for r in pkg.metadata.model_assistance.rejected] == exp.get("rejected", [])
        assert [e.action for e in pkg.metadata.audit] == ["create", "model_suggestion", "manual_revision", "submit"]
        assert audit_chain_break(pkg.metadata.audit) is None
        for ann in pkg.annotations:
            if ann.provenance and ann.provenance.initial:
                final = _nib(src.resolve(ann.data.mask_file or "")) == 1
                initial = _nib(src.resolve(ann.provenance.initial.mask_file or "")) == 1
                assert (final & initial).sum() == final.sum() and initial.sum() > final.sum()


def test_bad_reader_count_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="1–10"):
        simulate_annotators(tmp_path, 0)
    with pytest.raises(InvalidInputError, match="dataset.json"):
        simulate_annotators(tmp_path, 2)
