"""Radiology reports in Chinese and English with character spans linked to lesions.

Each lesion gets one findings sentence (lobe/segment, size, density, margin) and one impression
line (diagnosis + recommendation). Spans are character offsets (Unicode code points) into the
exact report text, typed finding / diagnosis / attribute / recommendation and bound to the lesion
id (001 §8.5.2.1–8.5.2.2). The header carries realistic identifying text; its positions are listed
separately under ``phi`` so de-identification can be scored against ground truth (001 §7.3).

Example
-------
>>> import datetime, numpy as np
>>> from aimd.phantoms.identity import sample_person
>>> from aimd.phantoms.sites import SITE_PROFILES
>>> rng = np.random.default_rng(0)
>>> ctx = ReportContext(sample_person(rng, datetime.date(2024, 3, 12), "沈阳市"), SITE_PROFILES[0],
...                     datetime.date(2024, 3, 12), datetime.date(2024, 3, 13), "CT202403120001",
...                     ("李明", "Ming Li"), ("王芳", "Fang Wang"))
>>> doc = build_report("en", ctx, [])
>>> doc["text"][doc["phi"][0]["start"]:doc["phi"][0]["end"]] == SITE_PROFILES[0].institution_en
True
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from aimd.phantoms.identity import Person
from aimd.phantoms.lesions import Lesion
from aimd.phantoms.sites import SiteProfile

SPAN_TYPES = ("finding", "diagnosis", "attribute", "recommendation")
PHI_KINDS = (
    "institution",
    "name",
    "date",
    "age",
    "id_number",
    "phone",
    "address",
    "record_number",
    "admission_number",
    "accession_number",
    "staff_name",
)


@dataclass(frozen=True)
class ReportContext:
    """Everything a report states besides the lesions."""

    person: Person
    site: SiteProfile
    exam_date: datetime.date
    report_date: datetime.date
    accession: str
    radiologist: tuple[str, str]
    reviewer: tuple[str, str]


class _Text:
    """Append-only text that records spans as it grows."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.parts: list[str] = []
        self.pos = 0
        self.spans: list[dict[str, Any]] = []
        self.phi: list[dict[str, Any]] = []

    def add(self, text: str) -> tuple[int, int]:
        start = self.pos
        self.parts.append(text)
        self.pos += len(text)
        return start, self.pos

    def span(self, text: str, kind: str, lesion_id: str | None, attribute: str | None = None) -> None:
        start, end = self.add(text)
        self.mark(start, end, kind, lesion_id, attribute)

    def mark(self, start: int, end: int, kind: str, lesion_id: str | None, attribute: str | None = None) -> None:
        self.spans.append(
            {
                "id": f"{self.lang}-S{len(self.spans) + 1:03d}",
                "start": start,
                "end": end,
                "type": kind,
                "lesion_id": lesion_id,
                "attribute": attribute,
            }
        )

    def secret(self, text: str, kind: str) -> None:
        start, end = self.add(text)
        self.phi.append({"start": start, "end": end, "kind": kind})

    def document(self, language: str) -> dict[str, Any]:
        text = "".join(self.parts)
        for span in (*self.spans, *self.phi):
            span["text"] = text[span["start"] : span["end"]]
        spans = sorted(self.spans, key=lambda s: (s["start"], -s["end"]))
        return {"language": language, "text": text, "spans": spans, "phi": self.phi}


def _recommendation(lesion: Lesion, lang: str) -> str:
    d = lesion.diameter_mm
    zh = lang == "zh"
    if lesion.kind == "liver_tumour":
        if lesion.density == "hyperdense":
            return (
                "建议结合AFP并行增强MRI检查" if zh else "correlation with AFP and contrast-enhanced MRI is recommended"
            )
        return "建议行增强CT或MRI进一步检查" if zh else "contrast-enhanced CT or MRI is recommended"
    if d < 6:
        return "无需常规随访" if zh else "no routine follow-up is required"
    if lesion.kind == "ground_glass_nodule":
        return (
            "建议6～12个月后复查胸部CT以确认是否持续存在"
            if zh
            else "follow-up CT in 6-12 months is recommended to confirm persistence"
        )
    if d <= 8:
        return "建议6～12个月后复查胸部CT" if zh else "follow-up CT in 6-12 months is recommended"
    return (
        "建议3个月后复查胸部CT，必要时行PET/CT或穿刺活检"
        if zh
        else "follow-up CT in 3 months, PET/CT or tissue sampling should be considered"
    )


_DENSITY = {
    "solid": ("solid", "实性"),
    "ground_glass": ("ground-glass", "磨玻璃"),
    "hypodense": ("hypodense", "低密度"),
    "hyperdense": ("hyperdense", "高密度"),
}
_MARGIN = {"well_defined": ("well-defined", "清晰"), "ill_defined": ("ill-defined", "欠清")}


def _finding_en(t: _Text, le: Lesion) -> None:
    start = t.pos
    lid = le.lesion_id
    t.add("A ")
    t.span(_DENSITY[le.density][0], "attribute", lid, "density")
    noun = "mass" if le.organ == "liver" else "nodule"
    t.add(f" {noun} is seen in the " if le.organ == "lung" else f" {noun} is seen in ")
    if le.organ == "lung":
        t.span(f"{le.place.segment_en} ({le.place.segment})", "attribute", lid, "segment")
    else:
        t.span(le.place.segment_en, "attribute", lid, "segment")
    t.add(" of the ")
    t.span(le.place.lobe_en, "attribute", lid, "lobe")
    t.add(", measuring about ")
    t.span(f"{le.diameter_mm} mm", "attribute", lid, "diameter_mm")
    t.add(" in diameter, with ")
    t.span(_MARGIN[le.margin][0], "attribute", lid, "margin")
    t.add(" margins.")
    t.mark(start, t.pos, "finding", lid)
    t.add("\n")


def _finding_zh(t: _Text, le: Lesion) -> None:
    start = t.pos
    lid = le.lesion_id
    t.span(le.place.lobe_zh, "attribute", lid, "lobe")
    seg = f"{le.place.segment_zh}（{le.place.segment}）" if le.organ == "lung" else le.place.segment_zh
    t.span(seg, "attribute", lid, "segment")
    t.add("见一")
    t.span(_DENSITY[le.density][1], "attribute", lid, "density")
    t.add("结节，直径约" if le.organ == "lung" else "肿块，大小约")
    t.span(f"{le.diameter_mm} mm", "attribute", lid, "diameter_mm")
    t.add("，边界")
    t.span(_MARGIN[le.margin][1], "attribute", lid, "margin")
    t.add("。")
    t.mark(start, t.pos, "finding", lid)
    t.add("\n")


def _impression(t: _Text, number: int, le: Lesion, lang: str) -> None:
    lid = le.lesion_id
    t.add(f"{number}. ")
    if lang == "zh":
        noun = "结节" if le.organ == "lung" else "肿块"
        where = le.place.lobe_zh + ("" if le.organ == "lung" else le.place.segment_zh)
        t.span(f"{where}{_DENSITY[le.density][1]}{noun}（{le.diameter_mm} mm）", "diagnosis", lid)
        t.add("，")
        t.span(_recommendation(le, lang), "recommendation", lid)
        t.add("。\n")
        return
    density = _DENSITY[le.density][0]
    if le.organ == "lung":
        where = f"in the {le.place.lobe_en} ({le.place.segment})"
        text = f"{density.capitalize()} nodule {where}, {le.diameter_mm} mm"
    else:
        where = f"in {le.place.segment_en} of the {le.place.lobe_en}"
        text = f"{density.capitalize()} mass {where}, {le.diameter_mm} mm"
    t.span(text, "diagnosis", lid)
    t.add("; ")
    t.span(_recommendation(le, lang), "recommendation", lid)
    t.add(".\n")


def _header(t: _Text, ctx: ReportContext, lang: str) -> None:
    p, zh = ctx.person, lang == "zh"

    def date(d: datetime.date) -> str:
        return f"{d.year}年{d.month:02d}月{d.day:02d}日" if zh else d.isoformat()

    t.secret(ctx.site.institution_zh if zh else ctx.site.institution_en, "institution")
    t.add(" 放射科\nCT检查报告单\n\n姓名：" if zh else "\nDepartment of Radiology\nCT REPORT\n\nName: ")
    t.secret(p.name_zh if zh else p.name_en, "name")
    sex = ({"M": "男", "F": "女"} if zh else {"M": "Male", "F": "Female"})[p.sex]
    t.add(f"    性别：{sex}    年龄：" if zh else f"    Sex: {sex}    Age: ")
    t.secret(str(p.age), "age")
    t.add("岁\n出生日期：" if zh else "\nDate of birth: ")
    t.secret(date(p.birth_date), "date")
    t.add("\n身份证号：" if zh else "\nID card No.: ")
    t.secret(p.id_number, "id_number")
    t.add("\n联系电话：" if zh else "\nPhone: ")
    t.secret(p.phone, "phone")
    t.add("\n住址：" if zh else "\nAddress: ")
    t.secret(p.address_zh if zh else p.address_en, "address")
    t.add("\n病历号：" if zh else "\nMedical record No.: ")
    t.secret(p.record_number, "record_number")
    t.add("    住院号：" if zh else "    Admission No.: ")
    t.secret(p.admission_number, "admission_number")
    t.add("\n检查号：" if zh else "\nAccession No.: ")
    t.secret(ctx.accession, "accession_number")
    t.add("\n检查日期：" if zh else "\nExam date: ")
    t.secret(date(ctx.exam_date), "date")
    t.add("    报告日期：" if zh else "    Report date: ")
    t.secret(date(ctx.report_date), "date")
    thickness = f"{ctx.site.slice_mm:g}"
    t.add(
        f"\n检查项目：胸部及上腹部CT平扫（层厚{thickness} mm）\n\n"
        if zh
        else f"\nExamination: non-contrast CT of the chest and upper abdomen ({thickness} mm slices)\n\n"
    )


def build_report(lang: str, ctx: ReportContext, lesions: list[Lesion]) -> dict[str, Any]:
    """One report (``lang`` = "zh" or "en"): ``{"language", "text", "spans", "phi"}``."""
    if lang not in ("zh", "en"):
        raise ValueError(f"lang must be 'zh' or 'en', got {lang!r}")
    zh = lang == "zh"
    t = _Text(lang)
    _header(t, ctx, lang)
    t.add("检查所见：\n" if zh else "Findings:\n")
    for le in lesions:
        (_finding_zh if zh else _finding_en)(t, le)
    lung = any(le.organ == "lung" for le in lesions)
    liver = any(le.organ == "liver" for le in lesions)
    if not lesions:
        t.span(
            "双肺未见明确结节，肝脏未见局灶性病变。"
            if zh
            else "No pulmonary nodule or focal liver lesion is identified.",
            "finding",
            None,
        )
        t.add("\n")
    elif not lung:
        t.add("双肺野清晰，未见明确结节。\n" if zh else "Both lungs are clear without nodules.\n")
    elif not liver:
        t.add("肝脏大小、形态及密度未见异常。\n" if zh else "The liver is normal in size, shape and density.\n")
    t.add(
        "气管及主支气管通畅，纵隔未见肿大淋巴结，双侧胸腔未见积液。所见椎体未见骨质破坏。\n\n"
        if zh
        else "The trachea and main bronchi are patent. No enlarged mediastinal lymph nodes or pleural "
        "effusion. No destructive bone lesion.\n\n"
    )
    t.add("诊断意见：\n" if zh else "Impression:\n")
    for number, le in enumerate(lesions, start=1):
        _impression(t, number, le, lang)
    if not lesions:
        t.add("1. ")
        t.span(
            "胸部及上腹部CT平扫未见明显异常" if zh else "No significant abnormality of the chest and upper abdomen",
            "diagnosis",
            None,
        )
        t.add("。\n" if zh else ".\n")
    t.add("\n报告医师：" if zh else "\nReported by: Dr. ")
    t.secret(ctx.radiologist[0] if zh else ctx.radiologist[1], "staff_name")
    t.add("    审核医师：" if zh else "    Reviewed by: Dr. ")
    t.secret(ctx.reviewer[0] if zh else ctx.reviewer[1], "staff_name")
    t.add("\n")
    return t.document("zh-CN" if zh else "en")


__all__ = ["PHI_KINDS", "SPAN_TYPES", "ReportContext", "build_report"]
