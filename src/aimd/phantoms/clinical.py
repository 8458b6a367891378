"""Structured clinical fields of a case: demographics, smoking, history and laboratory values.

Fields follow 001 §8.5.3: each is bound to the images by keys (patient id, study UID, accession
number, scan date — §8.5.3.2), each lab value carries its unit, normal range, value and measured
date (§8.5.3.2), and some labs are measured more than 90 days from the scan so a time-deviation
tag is needed (§8.5.3.4). Values depend on the lesions: a hyperdense liver tumour usually raises
AFP, a large solid lung nodule sometimes raises CEA.

Example
-------
>>> import datetime, numpy as np
>>> from aimd.phantoms.identity import sample_person
>>> rng = np.random.default_rng(0)
>>> scan = datetime.date(2024, 3, 12)
>>> fields = sample_clinical(rng, sample_person(rng, scan, "沈阳市"), scan, [], {"case_id": "c1"})
>>> sorted(lab["code"] for lab in fields["labs"])[:3]
['AFP', 'ALB', 'ALT']
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import numpy as np

from aimd.phantoms.identity import Person
from aimd.phantoms.lesions import Lesion

STALE_DAYS = 90  # 001 §8.5.3.4


@dataclass(frozen=True)
class LabTest:
    """A laboratory test: codes, names, unit and normal range (sex-specific where needed)."""

    code: str
    name_en: str
    name_zh: str
    loinc: str
    unit: str
    low: float
    high: float
    decimals: int
    low_f: float | None = None
    high_f: float | None = None

    def normal_range(self, sex: str) -> tuple[float, float]:
        if sex == "F" and self.low_f is not None and self.high_f is not None:
            return self.low_f, self.high_f
        return self.low, self.high


LAB_TESTS: tuple[LabTest, ...] = (
    LabTest("AFP", "Alpha-fetoprotein", "甲胎蛋白", "1834-1", "ng/mL", 0.0, 20.0, 1),
    LabTest("CEA", "Carcinoembryonic antigen", "癌胚抗原", "2039-6", "ng/mL", 0.0, 5.0, 2),
    LabTest("CA19-9", "Carbohydrate antigen 19-9", "糖类抗原19-9", "24108-3", "U/mL", 0.0, 37.0, 1),
    LabTest("ALT", "Alanine aminotransferase", "丙氨酸氨基转移酶", "1742-6", "U/L", 9.0, 50.0, 0),
    LabTest("AST", "Aspartate aminotransferase", "天门冬氨酸氨基转移酶", "1920-8", "U/L", 15.0, 40.0, 0),
    LabTest("TBIL", "Total bilirubin", "总胆红素", "1975-2", "μmol/L", 3.4, 20.5, 1),
    LabTest("ALB", "Albumin", "白蛋白", "1751-7", "g/L", 40.0, 55.0, 1),
    LabTest("WBC", "White blood cell count", "白细胞计数", "6690-2", "10^9/L", 3.5, 9.5, 2),
    LabTest("HGB", "Hemoglobin", "血红蛋白", "718-7", "g/L", 130.0, 175.0, 0, 115.0, 150.0),
    LabTest("PLT", "Platelet count", "血小板计数", "777-3", "10^9/L", 125.0, 350.0, 0),
    LabTest("CREA", "Creatinine", "肌酐", "2160-0", "μmol/L", 57.0, 111.0, 0, 41.0, 81.0),
)

FIELD_DEFINITIONS: dict[str, dict[str, str]] = {
    "age": {"type": "integer", "unit": "year", "time": "at scan date", "description": "age at the CT scan"},
    "sex": {"type": "enum", "values": "M|F", "description": "sex recorded at registration"},
    "height_cm": {"type": "number", "unit": "cm", "description": "body height"},
    "weight_kg": {"type": "number", "unit": "kg", "description": "body weight"},
    "smoking.status": {"type": "enum", "values": "never|former|current", "description": "smoking status"},
    "smoking.pack_years": {"type": "number", "unit": "pack-year", "description": "cumulative smoking"},
    "history.hbsag": {"type": "enum", "values": "positive|negative", "description": "hepatitis B surface antigen"},
    "labs[].value": {"type": "number", "unit": "see labs[].unit", "description": "measured value"},
    "labs[].measured_date": {"type": "date", "format": "YYYY-MM-DD", "description": "sample date"},
    "labs[].days_from_scan": {
        "type": "integer",
        "unit": "day",
        "description": "measured_date minus scan date (negative: before the scan)",
    },
}


def _value(test: LabTest, sex: str, rng: np.random.Generator, raised: float | None = None) -> float:
    low, high = test.normal_range(sex)
    value = raised if raised is not None else float(rng.uniform(low + 0.1 * (high - low), high - 0.1 * (high - low)))
    return round(value, test.decimals) if test.decimals else float(round(value))


def _lab_values(rng: np.random.Generator, sex: str, lesions: list[Lesion]) -> dict[str, float]:
    hyper = any(le.kind == "liver_tumour" and le.density == "hyperdense" for le in lesions)
    liver = any(le.kind == "liver_tumour" for le in lesions)
    big_solid = any(le.kind == "solid_nodule" and le.diameter_mm >= 15 for le in lesions)
    raised: dict[str, float] = {}
    if (hyper and rng.random() < 0.8) or (liver and rng.random() < 0.2):
        raised["AFP"] = float(np.exp(rng.uniform(np.log(25), np.log(3000))))
    if liver and rng.random() < 0.5:
        raised["ALT"] = float(rng.uniform(55, 140))
        raised["AST"] = float(rng.uniform(45, 120))
    if big_solid and rng.random() < 0.4:
        raised["CEA"] = float(rng.uniform(5.5, 40))
    if rng.random() < 0.1:
        raised["WBC"] = float(rng.uniform(10, 14))
    return {t.code: _value(t, sex, rng, raised.get(t.code)) for t in LAB_TESTS}


def sample_clinical(
    rng: np.random.Generator, person: Person, scan_date: datetime.date, lesions: list[Lesion], keys: dict[str, str]
) -> dict[str, Any]:
    """clinical.json for one case; ``keys`` binds it to the images (case id, study UID, ...)."""
    values = _lab_values(rng, person.sex, lesions)
    n_stale = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
    stale = set(rng.choice(len(LAB_TESTS), size=n_stale, replace=False).tolist())
    labs = []
    for index, test in enumerate(LAB_TESTS):
        offset = -int(rng.integers(STALE_DAYS + 1, 400)) if index in stale else int(rng.integers(-30, 4))
        low, high = test.normal_range(person.sex)
        value = values[test.code]
        labs.append(
            {
                "code": test.code,
                "name_en": test.name_en,
                "name_zh": test.name_zh,
                "loinc": test.loinc,
                "value": value,
                "unit": test.unit,
                "normal_range": {"low": low, "high": high},
                "flag": "H" if value > high else "L" if value < low else "N",
                "measured_date": (scan_date + datetime.timedelta(days=offset)).isoformat(),
                "days_from_scan": offset,
            }
        )
    any_nodule = any(le.organ == "lung" for le in lesions)
    weights = [0.35, 0.25, 0.4] if any_nodule else [0.55, 0.2, 0.25]
    status = str(rng.choice(["never", "former", "current"], p=weights))
    pack_years = 0.0 if status == "never" else round(float(rng.uniform(5, 50)), 1)
    height = round(float(rng.normal(172 if person.sex == "M" else 160, 6)), 1)
    weight = round(float(rng.normal(70 if person.sex == "M" else 58, 9)), 1)
    liver = any(le.organ == "liver" for le in lesions)
    symptoms = [
        s
        for s, p in (
            ("cough", 0.3 if any_nodule else 0.1),
            ("chest pain", 0.1),
            ("right upper quadrant pain", 0.35 if liver else 0.05),
            ("weight loss", 0.1),
        )
        if rng.random() < p
    ]
    return {
        "case_id": keys.get("case_id"),
        "keys": keys,
        "patient": person.to_dict(),
        "age": person.age,
        "sex": person.sex,
        "height_cm": height,
        "weight_kg": weight,
        "smoking": {"status": status, "pack_years": pack_years},
        "history": {
            "hbsag": "positive" if rng.random() < (0.5 if liver else 0.07) else "negative",
            "family_history_cancer": bool(rng.random() < 0.15),
            "symptoms": symptoms,
        },
        "scan_date": scan_date.isoformat(),
        "labs": labs,
        "field_definitions": FIELD_DEFINITIONS,
    }


__all__ = ["FIELD_DEFINITIONS", "LAB_TESTS", "STALE_DAYS", "LabTest", "sample_clinical"]
