"""Text de-identification rules (001 §7.3, §11.2.2): each rule catches its pattern, clinical content stays.

Check digits are computed here with the iterative ISO 7064 MOD 11-2 algorithm (not the weight table of the
code under test); shifted dates are computed with ``datetime``.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimd.imaging.deid import DeidMap, TextDeidentifier, remap_span, resident_id_checksum_ok
from aimd.imaging.deid.jsondoc import deidentify_json
from aimd.imaging.deid.rules import TEXT_RULES


def iso7064_check(first17: str) -> str:
    """ISO 7064 MOD 11-2, iterative form: p = (p + d) * 2 mod 11 over the digits; check = (12 - p) mod 11."""
    p = 0
    for ch in first17:
        p = (p + int(ch)) * 2 % 11
    value = (12 - p) % 11
    return "X" if value == 10 else str(value)


def _engine(offset: int = 0) -> TextDeidentifier:
    return TextDeidentifier(DeidMap.new("text-salt"), date_offset_days=offset)


CASES = [
    # (text, rule expected to fire, secret that must vanish)
    ("姓名：张伟 性别：男", "zh_name_labelled", "张伟"),
    ("报告医师：周军华    审核医师：梁飞", "zh_name_labelled", "周军华"),
    ("患者欧阳娜娜，女，45岁。", "zh_name_context", "欧阳娜娜"),
    ("患者王建国因胸痛入院。", "zh_name_context", "王建国"),
    ("经李明华主任医师审核。", "zh_name_title", "李明华"),
    ("Name: Hua Song    Sex: Male", "en_name_labelled", "Hua Song"),
    ("Reported by: Dr. Junhua Zhou    Reviewed by: Dr. Fei Liang", "en_name_labelled", "Junhua Zhou"),
    ("The scan was reviewed by Dr. Emily Chen today.", "en_name_title", "Emily Chen"),
    ("Patient Zhang Weiqiang was examined; family contact Wang Xiaoming.", "en_pinyin_name_labelled", "Zhang Weiqiang"),
    ("身份证号：210105195405226518", "cn_id_card_labelled", "210105195405226518"),
    ("编号 11010519491231002X 见附件", "cn_resident_id", "11010519491231002X"),
    ("旧证 110105491231002 已注销", "cn_resident_id_15", "110105491231002"),
    ("联系电话：18889486055", "phone_labelled", "18889486055"),
    ("请拨打 138-1234-5678 联系", "cn_mobile", "138-1234-5678"),
    ("号码 +86 13912345678 有效", "cn_mobile", "13912345678"),
    ("总机 0571-88881234 转", "cn_landline", "88881234"),
    ("call (217) 555-0123 now", "us_phone", "555-0123"),
    ("住址：辽宁省沈阳市皇姑区新华路198号2单元803室", "zh_address_labelled", "新华路198号"),
    ("现居浙江省杭州市西湖区文三路123号4幢501室，", "zh_address", "文三路123号"),
    ("搬至文化路88号3单元，", "zh_street_number", "文化路88号"),
    ("lives at 123 Main Street, Springfield, IL 62704 since", "en_street_address", "123 Main Street"),
    ("Address: Room 803, No. 198 Xinhua Road, Huanggu District", "en_address_labelled", "Xinhua Road"),
    ("病历号：1209457875    住院号：ZY2023320016", "cn_record_number_labelled", "ZY2023320016"),
    ("检查号：CT202302031499", "cn_record_number_labelled", "CT202302031499"),
    ("Medical record No.: 1209457875", "en_record_number_labelled", "1209457875"),
    ("MRN: A-44512 seen", "en_record_number_labelled", "A-44512"),
    ("Accession No.: CT202302031499", "en_record_number_labelled", "CT202302031499"),
    ("mail zhang.wei@example.com today", "email", "zhang.wei@example.com"),
    ("滨江医科大学附属第一医院 放射科", "zh_institution", "滨江医科大学附属第一医院"),
    ("曾于云岭市人民医院就诊", "zh_institution", "云岭市人民医院"),
    ("Yunling People's Hospital\nDepartment of Radiology", "en_institution", "Yunling People's Hospital"),
    ("card 6222021234567890123 used", "long_digit_run", "6222021234567890123"),
    ("检查日期：2023年02月03日", "date_zh", "2023年02月03日"),
    ("Exam date: 2023-02-03", "date_iso", "2023-02-03"),
    ("seen on March 5, 2023 and", "date_en_mdy", "March 5, 2023"),
    ("seen on 5 March 2023 and", "date_en_dmy", "5 March 2023"),
    ("DOB 03/15/1962.", "date_slash_mdy", "03/15/1962"),
    ("采样 20230305 完成", "date_compact", "20230305"),
    ("2023年3月随访", "date_zh_month", "2023年3月"),
]


@pytest.mark.parametrize(("text", "rule", "secret"), CASES, ids=[c[1] + ":" + c[2] for c in CASES])
def test_rule_catches_its_pattern(text: str, rule: str, secret: str) -> None:
    out = _engine(offset=17).deidentify(text)
    assert rule in out.counts, out.counts
    assert secret not in out.text


def test_every_rule_has_a_case() -> None:
    fired = {c[1] for c in CASES}
    missing = (
        {r.name for r in TEXT_RULES}
        - fired
        - {"zh_name_after_title", "date_zh_month_day", "date_dotted_dmy", "cn_resident_id_bad_checksum"}
    )
    assert not missing


CLINICAL = [
    "肝右叶S6段见一低密度肿块，大小约5 mm，边界清晰。",
    "右肺上叶尖段（S1）见一实性结节，直径约12.5 mm，CT值约45 HU，边界欠清。",
    "双肺野清晰，未见明确结节。气管及主支气管通畅，纵隔未见肿大淋巴结。",
    "患者高热，咳嗽3天，68岁，既往高血压病史10年。",
    "建议3个月后复查胸部CT，必要时行PET/CT或穿刺活检。",
    "白细胞计数 6.2×10^9/L，血红蛋白 135 g/L，AFP 15.2 ng/mL，ALT 35 U/L。",
    "A solid nodule is seen in the right upper lobe (S1), measuring about 12 mm in diameter.",
    "Hemoglobin 13.5 g/dL, WBC 6.2 x10^9/L, creatinine 88 umol/L, LOINC 1834-1.",
    "Impression: Lung-RADS 4A; BI-RADS 3. Follow-up CT in 6-12 months is recommended.",
    "Non-contrast CT of the chest and upper abdomen (1.25 mm slices), 120 kVp, window 40/400.",
    "The liver is normal in size, shape and density. Segment S7 of the right hepatic lobe.",
    "左肺下叶背段见磨玻璃结节，大小约8 mm×6 mm，T2WI呈高信号。",
]


@pytest.mark.parametrize("text", CLINICAL)
def test_clinical_content_is_not_eaten(text: str) -> None:
    out = _engine(offset=40).deidentify(text)
    assert out.text == text, out.counts


def test_mixed_report_keeps_clinical_sentence_intact() -> None:
    text = "姓名：张伟    年龄：56岁\n检查所见：\n右肺上叶见一实性结节，直径约12 mm。\n报告医师：李明"
    out = _engine().deidentify(text)
    assert "右肺上叶见一实性结节，直径约12 mm。" in out.text and "56岁" in out.text
    assert "张伟" not in out.text and "李明" not in out.text


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    region=st.integers(110000, 659999),
    birth=st.dates(dt.date(1920, 1, 1), dt.date(2015, 12, 31)),
    seq=st.integers(0, 999),
)
def test_resident_ids_valid_and_wrong_check_digit_replaced(region: int, birth: dt.date, seq: int) -> None:
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    good = first17 + iso7064_check(first17)
    wrong = first17 + next(c for c in "0123456789X" if c != iso7064_check(first17))
    assert resident_id_checksum_ok(good) and not resident_id_checksum_ok(wrong)
    engine = _engine()
    out_good = engine.deidentify(f"编号 {good} 已核对")
    out_wrong = engine.deidentify(f"编号 {wrong} 已核对")
    assert out_good.counts == {"cn_resident_id": 1} and good not in out_good.text
    assert out_wrong.counts == {"cn_resident_id_bad_checksum": 1} and wrong not in out_wrong.text


@settings(max_examples=60, deadline=None, derandomize=True)
@given(day=st.dates(dt.date(1950, 1, 1), dt.date(2090, 12, 31)), offset=st.integers(-365, 365))
def test_dates_shift_by_the_offset_in_their_own_format(day: dt.date, offset: int) -> None:
    new = day + dt.timedelta(days=offset)
    engine = _engine(offset)
    assert engine.deidentify(f"检查日期：{day:%Y-%m-%d}").text == f"检查日期：{new:%Y-%m-%d}"
    zh = f"{day.year}年{day.month}月{day.day}日"
    assert engine.deidentify(f"于{zh}就诊").text == f"于{new.year}年{new.month}月{new.day}日就诊"
    english = engine.deidentify(f"on {day:%B} {day.day}, {day.year}.").text
    assert english == f"on {new:%B} {new.day}, {new.year}."
    assert engine.deidentify(f"date {day:%Y/%m/%d} ok").text == f"date {new:%Y/%m/%d} ok"


def test_interval_between_two_dates_is_kept() -> None:
    out = _engine(-123).deidentify("化验 2023-01-10，CT 2023-03-05。")
    found = [dt.date.fromisoformat(d) for d in re.findall(r"\d{4}-\d{2}-\d{2}", out.text)]
    assert found[1] - found[0] == dt.date(2023, 3, 5) - dt.date(2023, 1, 10)
    assert found[0] == dt.date(2023, 1, 10) - dt.timedelta(days=123)


def test_same_name_gets_same_token_and_repeats_are_replaced() -> None:
    engine = _engine()
    out = engine.deidentify("姓名：张伟。张伟自述胸痛，张伟家属陪同。")
    assert "张伟" not in out.text
    tokens = re.findall(r"\[NAME-[0-9a-f]+\]", out.text)
    assert len(tokens) == 3 and len(set(tokens)) == 1
    assert engine.deidentify("患者张伟，男").text.count(tokens[0]) == 1


def test_known_identifiers_from_the_map_become_the_patient_pseudonym() -> None:
    mapping = DeidMap.new("k")
    patient = mapping.patient("1209457875", max_shift_days=10)
    patient.add("NAME", "SONG^HUA=宋^华")
    engine = TextDeidentifier(mapping, date_offset_days=patient.date_offset_days)
    out = engine.deidentify("宋华 (Hua Song, SONG HUA) record 1209457875")
    assert out.text.count(patient.pseudonym) == 4, out.text


WORDS = ["右肺上叶", "12 mm", "实性结节", "AFP 15.2 ng/mL", "segment S6", "边界清晰", "ground-glass"]
FILLERS = ["姓名：张伟，", "电话 13812345678 ", "2023-03-05 ", "住院号：ZY2023001 ", "Dr. Emily Chen ", "，", " "]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(FILLERS)), min_size=1, max_size=6))
def test_spans_still_cover_the_same_words(pieces: list[tuple[str, str]]) -> None:
    text, spans = "", []
    for word, filler in pieces:
        text += filler
        spans.append((len(text), len(text) + len(word), word))
        text += word
    out = _engine(9).deidentify(text)
    for start, end, word in spans:
        moved = remap_span(start, end, out.replacements)
        assert not moved.overlaps
        assert out.text[moved.start : moved.end] == word


def test_span_over_replaced_text_is_flagged_and_stretched() -> None:
    text = "患者姓名：张伟，右肺结节"
    out = _engine().deidentify(text)
    moved = remap_span(0, 7, out.replacements)  # "患者姓名：张伟" covers the name
    assert moved.overlaps
    assert out.text[moved.start : moved.end].startswith("患者姓名：[NAME-")


def test_json_document_keys_spans_and_labs() -> None:
    text = "姓名：宋华\n右肺上叶见一实性结节，直径约12 mm。\n检查日期：2023-02-03"
    start = text.index("右肺上叶")
    doc = {
        "zh": {
            "text": text,
            "spans": [
                {"start": start, "end": start + 4, "lesion_id": "L1", "text": "右肺上叶"},
                {"start": 3, "end": 5, "lesion_id": None, "text": "宋华"},
            ],
        },
        "patient": {
            "name_zh": "宋华",
            "surname_en": "Song",
            "given_en": "Hua",
            "id_number": "210105195405226518",
            "phone": "18889486055",
            "address_en": "No. 198 Xinhua Road",
            "birth_date": "1954-05-22",
            "age": 68,
            "sex": "M",
        },
        "labs": [{"code": "AFP", "name_en": "Alpha-fetoprotein", "value": 15.2, "measured_date": "2023-02-01"}],
    }
    out = deidentify_json(doc, _engine(10))
    new = out.doc
    span = new["zh"]["spans"][0]
    assert new["zh"]["text"][span["start"] : span["end"]] == "右肺上叶" == span["text"]
    assert [o["path"] for o in out.span_overlaps] == ["zh.spans[1]"]
    assert new["zh"]["spans"][1]["text"] != "宋华"
    person = new["patient"]
    assert person["age"] == 68 and person["sex"] == "M"
    replaced = ("name_zh", "surname_en", "given_en", "id_number", "phone", "address_en", "birth_date")
    assert all(person[k] != doc["patient"][k] for k in replaced)
    assert person["birth_date"] == "1954-06-01"
    assert new["labs"][0]["name_en"] == "Alpha-fetoprotein" and new["labs"][0]["value"] == 15.2
    assert new["labs"][0]["measured_date"] == "2023-02-11"
