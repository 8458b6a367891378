"""The text rules, in priority order, and the UID and month-name patterns of the dynamic rules."""

from __future__ import annotations

import re

from aimd.imaging.deid.rules.checks import (
    _RECORD_VALUE,
    _RESIDENT,
    TextRule,
    _address_ok,
    _c,
    _en_name_ok,
    _labelled_name_ok,
    _pinyin_name_ok,
    _record_ok,
    _resident_bad,
    _resident_ok,
    _zh_name_ok,
)
from aimd.imaging.deid.rules.lexicon import (
    _EN_ID_LABELS,
    _EN_NAME,
    _EN_NAME_LABELS,
    _EN_RECORD_LABELS,
    _EN_RELATION_LABELS,
    _EN_STOP_WORD,
    _EN_STREET,
    _EN_TITLE,
    _MONTHS,
    _PROVINCES,
    _ROAD,
    _SURNAME,
    _UNIT,
    _YEAR,
    _ZH_ADDRESS_LABELS,
    _ZH_ADMIN,
    _ZH_ID_LABELS,
    _ZH_INSTITUTION_KIND,
    _ZH_NAME_LABELS,
    _ZH_NAME_VALUE,
    _ZH_PHONE_LABELS,
    _ZH_RECORD_LABELS,
    H,
)

TEXT_RULES: tuple[TextRule, ...] = (
    # --- labelled numbers (highest priority: a label says what the value is)
    TextRule(
        "cn_id_card_labelled",
        "ID",
        "value after 身份证号/证件号/护照号/ID card labels",
        _c(rf"(?:{_ZH_ID_LABELS}|{_EN_ID_LABELS})\s*[:：#]?\s*(?P<value>[A-Za-z0-9]{{6,20}})", re.IGNORECASE),
        10,
    ),
    TextRule(
        "cn_record_number_labelled",
        "MRN",
        "value after 住院号/病案号/门诊号/检查号/床号… labels",
        _c(rf"{_ZH_RECORD_LABELS}\s*(?:号码)?\s*[:：#]?\s*{_RECORD_VALUE}"),
        10,
        _record_ok,
    ),
    TextRule(
        "en_record_number_labelled",
        "MRN",
        "value after MRN / Record No. / Accession No. / Patient ID labels",
        _c(
            rf"\b{_EN_RECORD_LABELS}\s*[:#]?\s*"
            r"(?P<value>(?=[A-Za-z\-_/]*\d)[A-Za-z0-9][A-Za-z0-9\-_/]{1,30})",
            re.IGNORECASE,
        ),
        10,
    ),
    # --- resident identity numbers
    TextRule(
        "cn_resident_id",
        "ID",
        "18-digit resident ID with valid ISO 7064 MOD 11-2 check digit",
        _c(_RESIDENT),
        20,
        _resident_ok,
    ),
    TextRule(
        "cn_resident_id_bad_checksum",
        "ID",
        "18-digit resident-ID-shaped number, wrong check digit",
        _c(_RESIDENT),
        21,
        _resident_bad,
    ),
    TextRule(
        "cn_resident_id_15",
        "ID",
        "15-digit resident ID (pre-1999 format, YYMMDD birth date)",
        _c(
            r"(?<![0-9A-Za-z])(?P<value>[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3})"
            r"(?![0-9A-Za-z])"
        ),
        22,
    ),
    # --- names after labels
    TextRule(
        "zh_name_labelled",
        "NAME",
        "name after 姓名/患者/医师/签名… followed by a colon",
        _c(rf"{_ZH_NAME_LABELS}\s*[:：]\s*(?P<value>{_ZH_NAME_VALUE})"),
        30,
        _labelled_name_ok,
    ),
    TextRule(
        "en_name_labelled",
        "NAME",
        "name after Name:/Patient:/Physician:/Reported by: … labels",
        _c(rf"\b{_EN_NAME_LABELS}[ \t]*:[ \t]*(?:{_EN_TITLE}[ \t]+)?(?P<value>{_EN_NAME})"),
        30,
        _en_name_ok,
    ),
    # --- institutions (DICOM InstitutionName is removed too; a site pseudonym keeps multi-site grouping)
    TextRule(
        "zh_institution",
        "INSTITUTION",
        "hospital name: …人民医院/中心医院/附属第一医院/肿瘤医院 …",
        _c(
            rf"(?<![^\s，。；;:：、（(于在至到转赴])(?P<value>{H}{{1,12}}?{_ZH_INSTITUTION_KIND}医院"
            rf"(?:{H}{{1,6}}?(?:院区|分院))?)"
        ),
        33,
    ),
    TextRule(
        "en_institution",
        "INSTITUTION",
        "English hospital name (… Hospital / Medical Center / Clinic)",
        _c(
            r"(?P<value>(?:[A-Z][A-Za-z'\-]+[ \t]+){1,8}?(?:Hospital|Medical[ \t]+Cent(?:er|re)|Clinic|"
            r"Health[ \t]+Cent(?:er|re))(?:[ \t]+of(?:[ \t]+[A-Z][A-Za-z'\-]+){1,5})?)"
        ),
        33,
    ),
    TextRule(
        "email", "EMAIL", "e-mail address", _c(r"(?P<value>[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,})"), 35
    ),
    # --- phones
    TextRule(
        "phone_labelled",
        "PHONE",
        "number after 电话/手机/联系方式/Tel/Phone labels",
        _c(
            rf"(?:{_ZH_PHONE_LABELS}|Tel(?:ephone)?|Phone|Mobile|Cell)\s*(?:号码)?\s*[:：]?"
            r"\s*(?P<value>\+?(?:\(\d{2,4}\)\s?)?\d(?:-?\d){5,15})(?!\d)",
            re.IGNORECASE,
        ),
        40,
    ),
    TextRule(
        "cn_mobile",
        "PHONE",
        "mainland mobile 1[3-9]xxxxxxxxx (optionally +86, separators)",
        _c(r"(?<![\dA-Za-z])(?P<value>(?:(?:\+|00)86[-\s]?)?1[3-9]\d(?:[-\s]?\d{4}){2})(?!\d)"),
        41,
    ),
    TextRule(
        "cn_landline",
        "PHONE",
        "landline with area code, 0xx(x)-xxxxxxx(x) or (0xx)xxxxxxxx",
        _c(
            r"(?<![\dA-Za-z.])(?P<value>(?:\(0\d{2,3}\)\s?|0\d{2,3}[-\s])\d{7,8}(?:-\d{1,5})?)"
            r"(?!\d)"
        ),
        42,
    ),
    TextRule(
        "us_phone",
        "PHONE",
        "North American number (xxx) xxx-xxxx",
        _c(
            r"(?<![\dA-Za-z])(?P<value>(?:\+1[\s.\-]?)?\(?[2-9]\d{2}\)?[\s.\-]\d{3}[\s.\-]\d{4})"
            r"(?!\d)"
        ),
        43,
    ),
    # --- addresses
    TextRule(
        "zh_address_labelled",
        "ADDRESS",
        "text after 住址/地址/家住/籍贯/工作单位 up to ，。；",
        _c(rf"{_ZH_ADDRESS_LABELS}\s*[:：]?\s*(?P<value>[^，,。；;\n]{{2,60}})"),
        50,
        _address_ok,
    ),
    TextRule(
        "en_address_labelled",
        "ADDRESS",
        "text after Address: to the end of the line",
        _c(r"\b(?:Home[ \t]+|Mailing[ \t]+)?Address[ \t]*:[ \t]*(?P<value>[^\n;]{4,100})", re.IGNORECASE),
        50,
    ),
    TextRule(
        "zh_address",
        "ADDRESS",
        "province + city/district/road/number (浙江省杭州市西湖区文三路123号)",
        _c(
            rf"(?P<value>{_PROVINCES}{_ZH_ADMIN}?(?:{H}{{1,6}}?(?:市|州|盟|地区))?"
            rf"(?:{H}{{1,6}}?(?:区|县|旗|市))?(?:{H}{{1,8}}?(?:镇|乡|街道))?"
            rf"(?:[\u4e00-\u9fff\d]{{1,10}}?{_ROAD})?(?:\d+(?:-\d+)?号(?:院|楼)?)?{_UNIT}*)"
        ),
        51,
        lambda v: re.fullmatch(rf"{_PROVINCES}{_ZH_ADMIN}?", v) is None,
    ),
    TextRule(
        "zh_street_number",
        "ADDRESS",
        "road + house number without province (文三路123号4幢501室)",
        _c(
            rf"(?P<value>(?:{H}{{1,6}}?(?:市|区|县))?{H}{{1,5}}?{_ROAD}\d+(?:-\d+)?号(?:院|楼)?"
            rf"{_UNIT}*)"
        ),
        52,
    ),
    TextRule(
        "en_street_address",
        "ADDRESS",
        "English street address (123 Main Street, Springfield, IL)",
        _c(
            rf"(?P<value>\b\d{{1,5}}[ \t]+(?:[A-Z][a-z]+\.?[ \t]+){{1,4}}{_EN_STREET}\b\.?"
            r"(?:,?[ \t]*(?:Apt|Suite|Unit|\#)\.?[ \t]*\w+)?(?:,[ \t]*[A-Z][a-z]+(?:[ \t][A-Z][a-z]+)*)?"
            r"(?:,[ \t]*[A-Z]{2})?(?:[ \t]+\d{5}(?:-\d{4})?)?)"
        ),
        53,
    ),
    # --- dates (value = whole match; rendered in the same format, shifted)
    TextRule(
        "date_iso",
        "DATE",
        "YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD",
        _c(rf"(?<![\d.]){_YEAR}(?P<sep>[-/.])(?P<m>\d{{1,2}})(?P=sep)(?P<d>\d{{1,2}})(?!\d)"),
        60,
    ),
    TextRule(
        "date_zh", "DATE", "YYYY年M月D日", _c(rf"{_YEAR}\s*年\s*(?P<m>\d{{1,2}})\s*月\s*(?P<d>\d{{1,2}})\s*[日号]"), 60
    ),
    TextRule(
        "date_zh_month",
        "DATE",
        "YYYY年M月 (shifted through the 15th)",
        _c(rf"{_YEAR}\s*年\s*(?P<m>\d{{1,2}})\s*月(?!\s*\d)"),
        61,
    ),
    TextRule(
        "date_zh_month_day",
        "DATE",
        "M月D日 without year (year of the nearest earlier date)",
        _c(r"(?<![\d年])(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]"),
        62,
    ),
    TextRule(
        "date_compact",
        "DATE",
        "YYYYMMDD standing alone",
        _c(rf"(?<![\d.]){_YEAR}(?P<m>0[1-9]|1[0-2])(?P<d>0[1-9]|[12]\d|3[01])(?![\d.])"),
        63,
    ),
    TextRule(
        "date_en_mdy",
        "DATE",
        "March 5, 2023 / Mar. 5th 2023",
        _c(rf"\b(?P<mon>{_MONTHS})(?P<dot>\.?)\s+(?P<d>\d{{1,2}})(?P<ord>st|nd|rd|th)?,?\s+{_YEAR}\b"),
        60,
    ),
    TextRule(
        "date_en_dmy",
        "DATE",
        "5 March 2023 / 05-Mar-2023",
        _c(
            rf"\b(?P<d>\d{{1,2}})(?P<ord>st|nd|rd|th)?(?:\s+|-)(?P<mon>{_MONTHS})(?P<dot>\.?),?(?:\s+|-)"
            rf"{_YEAR}\b"
        ),
        60,
    ),
    TextRule(
        "date_slash_mdy",
        "DATE",
        "MM/DD/YYYY (DD/MM/YYYY when the first part > 12)",
        _c(rf"(?<![\d/])(?P<a>\d{{1,2}})/(?P<b>\d{{1,2}})/{_YEAR}(?![\d/])"),
        64,
    ),
    TextRule(
        "date_dotted_dmy",
        "DATE",
        "DD.MM.YYYY",
        _c(rf"(?<![\d.])(?P<d>\d{{1,2}})\.(?P<m>\d{{1,2}})\.{_YEAR}(?![\d.])"),
        64,
    ),
    # --- names from context (lower priority than every structured identifier)
    TextRule(
        "zh_name_context",
        "NAME",
        "surname + given name right after 患者/病人/家属 (no colon)",
        _c(
            rf"(?:患者|病人|受检者|家属|联系人|病员)(?P<value>{_SURNAME}{H}{{1,2}}?)"
            r"(?=[，,。、；;：:\s（(]|先生|女士|同志|因|于|自|诉|主诉|入院|来院|就诊|行|经|$)"
        ),
        70,
        _zh_name_ok,
    ),
    TextRule(
        "zh_name_title",
        "NAME",
        "surname + given name before 医生/医师/主任/教授/先生/女士",
        _c(
            rf"(?P<value>{_SURNAME}{H}{{1,2}}?)"
            r"(?=(?:副?主任|主治|住院)?(?:医师|医生|教授|先生|女士|护士|护师|技师))"
        ),
        71,
        _zh_name_ok,
    ),
    TextRule(
        "zh_name_after_title",
        "NAME",
        "surname + given name after 医师/医生/技师 before 审核/签名/报告",
        _c(
            rf"(?:医师|医生|技师|护士)(?P<value>{_SURNAME}{H}{{1,2}}?)"
            r"(?=[，,。、；;\s（(]|审核|签名|签字|报告|记录|$)"
        ),
        72,
        _zh_name_ok,
    ),
    TextRule(
        "en_pinyin_name_labelled",
        "NAME",
        "pinyin name (surname + given name) after patient/contact/family contact/spouse/son… (no colon)",
        _c(
            rf"\b{_EN_RELATION_LABELS}[ \t]*[,:]?[ \t]+"
            r"(?P<value>[A-Z][a-z]+(?:[ \t][A-Z][a-z]+(?:-[a-z]+)?){1,2})\b"
        ),
        71,
        _pinyin_name_ok,
    ),
    TextRule(
        "en_name_title",
        "NAME",
        "capitalised name after Dr./Mr./Mrs./Ms./Prof. (acronyms end it)",
        _c(
            rf"\b{_EN_TITLE}[ \t]+(?P<value>[A-Z][A-Za-z'\-]+(?:[ \t]+{_EN_STOP_WORD}"
            r"[A-Z][a-z][A-Za-z'\-]*){0,2})"
        ),
        73,
        _en_name_ok,
    ),
    # --- catch-all
    TextRule(
        "long_digit_run",
        "NUMBER",
        "any other run of 10 or more digits",
        _c(r"(?<![\d.])(?P<value>\d{10,})(?![\d.])"),
        90,
    ),
)

UID_PATTERN = re.compile(r"(?<![\d.])(?P<value>[0-2](?:\.(?:0|[1-9]\d*)){2,})(?![\d.])")

MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
