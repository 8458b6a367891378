"""Reader agreement (001 §8.4 c, §9.1, §9.2, App. D) checked against independent readers and libraries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pingouin
import pytest
from scipy import ndimage
from scipy.spatial.distance import directed_hausdorff
from sklearn.metrics import cohen_kappa_score, f1_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa
from test_annotation_builders import expected, simulated_dataset

from aimd.annotation import QCConfig, agree, dataset_readers, read_sources, reader_sets, write_qc_record
from aimd.annotation.agreement import AgreementResult
from aimd.core.hashing import sha256_file


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulated_dataset(tmp_path_factory.mktemp("agree"))


@pytest.fixture(scope="module")
def result(dataset: Path) -> AgreementResult:
    return agree(dataset_readers(dataset))


def _mask(package: str, ann_id: str) -> np.ndarray:
    src = read_sources(package)[0]
    ann = next(a for a in src.package.annotations if a.id == ann_id)
    arr = np.transpose(np.asarray(nib.load(str(src.resolve(ann.data.mask_file or ""))).dataobj), (2, 1, 0))
    return arr == ann.data.mask_value


def _border_mm(mask: np.ndarray, spacing_zyx: np.ndarray) -> np.ndarray:
    border = mask & ~ndimage.binary_erosion(mask, ndimage.generate_binary_structure(3, 1), border_value=0)
    return np.argwhere(border) * spacing_zyx


def test_mask_pairs_match_independent_dice_and_hausdorff(result: AgreementResult, dataset: Path) -> None:
    pairs = [p for p in result.pairs if p["metric"] == "dice"]
    assert len(pairs) > 10
    checked = 0
    for p in pairs:
        spacing = np.asarray(read_sources(p["source_a"])[0].package.image.spacing[::-1])
        a, b = _mask(p["source_a"], p["id_a"]), _mask(p["source_b"], p["id_b"])
        assert p["dice"] == pytest.approx(f1_score(a.ravel(), b.ravel()), abs=1e-12)
        pa, pb = _border_mm(a, spacing), _border_mm(b, spacing)
        if max(len(pa), len(pb)) < 5000:  # the body outline is left to the metrics engine tests (speed)
            hd = max(directed_hausdorff(pa, pb)[0], directed_hausdorff(pb, pa)[0])
            assert p["hd_mm"] == pytest.approx(hd, abs=1e-9)
            checked += 1
        assert p["hd95_mm"] <= p["hd_mm"] + 1e-12
    assert checked >= len(pairs) // 2


def test_review_flags_follow_the_thresholds(result: AgreementResult, dataset: Path) -> None:
    cfg = result.config
    for p in (p for p in result.pairs if p["metric"] == "dice"):
        want = (
            "special_review"
            if p["value"] < cfg.dice_special_review
            else "second_review"
            if p["value"] < cfg.dice_second_review
            else None
        )
        assert p["flag"] == want
    assert result.summary()["special_review"] == sum(f.code == "DICE_SPECIAL_REVIEW" for f in result.findings)
    assert any(f.code == "DICE_SPECIAL_REVIEW" and f.is_error for f in result.findings)
    strict = agree(dataset_readers(dataset), config=QCConfig(dice_second_review=0.999, dice_special_review=0.99))
    assert strict.summary()["second_review"] + strict.summary()["special_review"] > (
        result.summary()["second_review"] + result.summary()["special_review"]
    )


def test_single_reader_and_missed_objects_are_the_planted_ones(result: AgreementResult, dataset: Path) -> None:
    for case in result.cases:
        readers = expected(dataset, case)["readers"]
        fp = {a for a, t in readers["reader_2"]["lesion_map"].items() if t == "FALSE_POSITIVE"}
        singles = {o["ids"]["reader_2"] for o in result.objects if o["case"] == case and o["readers"] == ["reader_2"]}
        assert singles == fp
        missed = set(readers["reader_2"]["missed"])
        partial = [o for o in result.objects if o["case"] == case and o["readers"] == ["reader_1", "reader_3"]]
        truth_of = {v: k for k, v in readers["reader_1"]["lesion_map"].items()}
        assert {o["ids"]["reader_1"] for o in partial if o["type"] == "mask"} == {truth_of[m] for m in missed}


@pytest.mark.filterwarnings("ignore:The inplace keyword")
def test_kappa_icc_pearson_match_independent_libraries(result: AgreementResult) -> None:
    checked = 0
    for name, stats in result.attributes.items():
        ratings = stats.get("ratings")
        if not ratings:
            continue
        if stats["kind"] == "categorical" and stats["kappa"] is not None:
            table, _ = aggregate_raters(np.asarray(ratings, dtype=object))
            assert stats["kappa"] == pytest.approx(fleiss_kappa(table, method="fleiss"), abs=1e-4), name
            checked += 1
        elif stats["kind"] == "continuous" and stats.get("icc"):
            rows = np.asarray(ratings)
            long = pd.DataFrame(
                [(i, r, v) for i, row in enumerate(rows) for r, v in enumerate(row)],
                columns=["target", "rater", "value"],
            )
            ref = pingouin.intraclass_corr(long, targets="target", raters="rater", ratings="value")
            assert stats["icc"]["icc"] == pytest.approx(ref.set_index("Type").loc["ICC(A,1)", "ICC"], abs=1e-9), name
            r01 = stats["pearson"]["reader_1/reader_2"]
            if r01.get("r") is not None:
                assert r01["r"] == pytest.approx(np.corrcoef(rows[:, 0], rows[:, 1])[0, 1], abs=1e-9)
            checked += 1
    assert checked >= 3
    text = result.text_labels["span_semantic_type"]
    table, _ = aggregate_raters(np.asarray(text["ratings"], dtype=object))
    assert text["kappa"] == pytest.approx(fleiss_kappa(table), abs=1e-4) and text["kappa"] < 1


def test_model_assisted_deviation_matches_the_masks(result: AgreementResult, dataset: Path) -> None:
    assert len(result.model_assisted) == len(result.cases)
    for row in result.model_assisted:
        exp = expected(dataset, row["case"])["readers"]["reader_3"]
        assert row["rejected"] == exp.get("rejected", [])
        added = {exp["lesion_map"][a] for a in row["added_manually"]}
        assert added == set(expected(dataset, row["case"])["readers"]["reader_2"]["missed"])
        src = read_sources(row["package"])[0]
        for obj in row["objects"]:
            ann = next(a for a in src.package.annotations if a.id == obj["annotation"])
            final = _mask(row["package"], ann.id)
            initial = (
                np.transpose(
                    np.asarray(nib.load(str(src.resolve(ann.provenance.initial.mask_file))).dataobj), (2, 1, 0)
                )
                == 1
            )
            assert obj["over_labelled_voxel_rate"] == pytest.approx((initial & ~final).sum() / initial.sum(), abs=1e-4)
            assert obj["missed_voxel_rate"] == pytest.approx((final & ~initial).sum() / final.sum(), abs=1e-4)


def test_two_versions_use_cohen_kappa_and_are_named_by_file(dataset: Path, tmp_path: Path) -> None:
    """Version 2 of one reader's package changes one margin: Cohen's kappa over the lesions drops below 1."""
    case = sorted((dataset / "cases").iterdir())[0]
    shutil.copytree(case / "annotations" / "reader_2", tmp_path / "reader_2")
    data = json.loads((case / "annotations" / "reader_2.json").read_text())
    for image in (data["image"], *data["related_images"]):
        image["files"] = []  # the versions are compared without their image files
    for doc in data["texts"]:
        doc.pop("source_file", None)
    (tmp_path / "v1.json").write_text(json.dumps(data))
    lesion = next(a for a in data["annotations"] if a["id"] == "LES_01")
    flip = {"well_defined": "ill_defined", "ill_defined": "well_defined"}
    lesion["data"]["attributes"]["margin"] = flip[lesion["data"]["attributes"]["margin"]]
    (tmp_path / "v2.json").write_text(json.dumps(data))
    res = agree(reader_sets([tmp_path / "v1.json", tmp_path / "v2.json"]))
    assert res.readers == ["v1", "v2"]
    margin = res.attributes["mask:margin"]
    rows = margin["ratings"]
    assert margin["method"] == "Cohen's kappa" and any(a != b for a, b in rows)
    if margin["kappa"] is not None:
        assert margin["kappa"] == pytest.approx(cohen_kappa_score([r[0] for r in rows], [r[1] for r in rows]))
    assert all(p["value"] == pytest.approx(1.0) for p in res.pairs)


def test_qc_record_names_its_inputs(result: AgreementResult, tmp_path: Path) -> None:
    record = write_qc_record(result, tmp_path / "qc_record.json")
    on_disk = json.loads((tmp_path / "qc_record.json").read_text())
    assert on_disk["summary"] == json.loads(json.dumps(record["summary"]))
    assert all(i["sha256"] == sha256_file(i["path"]) for i in on_disk["inputs"])
    assert {i["reader"] for i in on_disk["inputs"]} == {"reader_1", "reader_2", "reader_3"}


def test_box_pairs_match_pycocotools_iou(result: AgreementResult) -> None:
    from pycocotools import mask as mask_utils

    boxes = [p for p in result.pairs if p["metric"] == "box_iou"]
    assert boxes
    for p in boxes:
        corners = []
        for side in ("a", "b"):
            src = read_sources(p[f"source_{side}"])[0]
            x0, y0, x1, y1 = next(a for a in src.package.annotations if a.id == p[f"id_{side}"]).data.bbox
            corners.append([x0, y0, x1 - x0, y1 - y0])
        ref = mask_utils.iou([corners[0]], [corners[1]], [0])[0][0]
        assert p["value"] == pytest.approx(ref, abs=1e-12)
        assert p["flag"] == ("second_review" if p["value"] < result.config.box_iou_review else None)
