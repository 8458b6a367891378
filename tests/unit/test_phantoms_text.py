"""Reports, identities and clinical fields of phantom cases."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aimd.phantoms import generate_dataset, resident_id_check_digit, sample_person


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom") / "ds"
    generate_dataset(out, cases=8, seed=21, size=48, sites=2, workers=2)
    return out


def _cases(ds: Path) -> list[Path]:
    return sorted((ds / "cases").iterdir())


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _iso7064_valid(number: str) -> bool:
    """ISO 7064 MOD 11-2 from its definition: sum of a_i * 2^(17-i) over all 18 characters ≡ 1 (mod 11)."""
    values = [10 if c == "X" else int(c) for c in number]
    return sum(v * pow(2, 17 - i, 11) for i, v in enumerate(values)) % 11 == 1


def test_report_files_equal_report_json(ds: Path) -> None:
    for case in _cases(ds):
        report = _json(case / "report.json")
        for lang in ("zh", "en"):
            assert (case / f"report_{lang}.txt").read_bytes() == report[lang]["text"].encode("utf-8")


def test_spans_point_at_their_text(ds: Path) -> None:
    for case in _cases(ds):
        report = _json(case / "report.json")
        for lang in ("zh", "en"):
            text = report[lang]["text"]
            ids = [s["id"] for s in report[lang]["spans"]]
            assert len(ids) == len(set(ids))
            for span in report[lang]["spans"] + report[lang]["phi"]:
                assert 0 <= span["start"] < span["end"] <= len(text)
                assert text[span["start"] : span["end"]] == span["text"]
            assert {s["type"] for s in report[lang]["spans"]} <= {"finding", "diagnosis", "attribute", "recommendation"}


def test_each_lesion_described_with_size_and_lobe(ds: Path) -> None:
    described = 0
    for case in _cases(ds):
        lesions = _json(case / "lesions.json")["lesions"]
        report = _json(case / "report.json")
        for lang in ("zh", "en"):
            text, spans = report[lang]["text"], report[lang]["spans"]
            for le in lesions:
                mine = [s for s in spans if s["lesion_id"] == le["id"]]
                kinds = sorted(s["type"] for s in mine if s["type"] != "attribute")
                assert kinds == ["diagnosis", "finding", "recommendation"]
                finding = next(s for s in mine if s["type"] == "finding")
                sentence = text[finding["start"] : finding["end"]]
                assert f"{le['diameter_mm']} mm" in sentence
                assert le[f"lobe_{lang}"] in sentence and le["segment"] in sentence
                attributes = {s["attribute"]: s["text"] for s in mine if s["type"] == "attribute"}
                assert attributes["diameter_mm"] == f"{le['diameter_mm']} mm"
                assert attributes["lobe"] == le[f"lobe_{lang}"]
                assert set(attributes) == {"diameter_mm", "lobe", "segment", "density", "margin"}
                for s in mine:
                    if s["type"] == "attribute":
                        assert finding["start"] <= s["start"] and s["end"] <= finding["end"]
                described += 1
    assert described >= 6


def test_identifying_text_present_and_valid(ds: Path) -> None:
    for case in _cases(ds):
        clinical = _json(case / "clinical.json")
        patient = clinical["patient"]
        assert _iso7064_valid(patient["id_number"])
        assert re.fullmatch(r"\d{17}[\dX]", patient["id_number"])
        assert patient["id_number"][6:14] == patient["birth_date"].replace("-", "")
        assert int(patient["id_number"][16]) % 2 == (1 if patient["sex"] == "M" else 0)
        assert re.fullmatch(r"1[3-9]\d{9}", patient["phone"])
        report = _json(case / "report.json")
        for lang, name in (("zh", patient["name_zh"]), ("en", patient["name_en"])):
            phi = {(p["kind"], p["text"]) for p in report[lang]["phi"]}
            for kind, value in (
                ("name", name),
                ("id_number", patient["id_number"]),
                ("phone", patient["phone"]),
                ("record_number", patient["record_number"]),
                ("admission_number", patient["admission_number"]),
            ):
                assert (kind, value) in phi
            assert {k for k, _ in phi} >= {"address", "date", "institution", "accession_number", "staff_name"}
        assert re.search(r"[\u4e00-\u9fff]{2,3}", patient["name_zh"])


def test_check_digit_matches_definition_for_many_ids() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        person = sample_person(rng, datetime.date(2024, 1, 1), "大连市")
        assert _iso7064_valid(person.id_number)
    assert resident_id_check_digit("11010519491231002") == "X"
    with pytest.raises(ValueError):
        resident_id_check_digit("123")


def test_labs_have_units_ranges_and_some_stale_dates(ds: Path) -> None:
    stale = 0
    for case in _cases(ds):
        clinical = _json(case / "clinical.json")
        scan = datetime.date.fromisoformat(clinical["scan_date"])
        assert clinical["keys"]["case_id"] == case.name
        for lab in clinical["labs"]:
            assert lab["unit"] and lab["normal_range"]["low"] <= lab["normal_range"]["high"]
            measured = datetime.date.fromisoformat(lab["measured_date"])
            assert (measured - scan).days == lab["days_from_scan"]
            stale += abs((measured - scan).days) > 90
            expected = (
                "H"
                if lab["value"] > lab["normal_range"]["high"]
                else ("L" if lab["value"] < lab["normal_range"]["low"] else "N")
            )
            assert lab["flag"] == expected
        assert {"AFP", "CEA", "ALT"} <= {lab["code"] for lab in clinical["labs"]}
    assert stale >= 1


def test_liver_tumour_cases_raise_afp_more_often() -> None:
    import aimd.phantoms.clinical as clinical_module
    from aimd.phantoms.lesions import Lesion
    from aimd.phantoms.locations import Place

    place = Place("LIVER_RIGHT", "right hepatic lobe", "肝右叶", "S7", "segment S7", "S7段")
    tumour = Lesion("L1", 1, "liver_tumour", (0.0, 0.0, 0.0), 20, 95.0, "hyperdense", "well_defined", place)
    rng = np.random.default_rng(0)
    with_t = [clinical_module._lab_values(rng, "M", [tumour])["AFP"] > 20 for _ in range(300)]
    without = [clinical_module._lab_values(rng, "M", [])["AFP"] > 20 for _ in range(300)]
    assert np.mean(with_t) > 0.6 and np.mean(without) == 0.0
