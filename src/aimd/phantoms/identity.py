"""Synthetic but realistic patient identities: the text de-identification must later remove.

Names (Chinese characters and pinyin), 18-digit resident identity numbers with a valid
ISO 7064 MOD 11-2 check digit (GB 11643), mobile numbers, addresses, hospital record and
admission numbers, exam dates — all drawn from the case seed (001 §7.3, §11.2).

Example
-------
>>> resident_id_check_digit("11010519491231002")
'X'
>>> import numpy as np, datetime
>>> person = sample_person(np.random.default_rng(1), datetime.date(2024, 3, 12), "沈阳市")
>>> len(person.id_number), person.id_number[-1] == resident_id_check_digit(person.id_number[:17])
(18, True)
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# ISO 7064 MOD 11-2 as used by GB 11643: weights 2^(17-i) mod 11, check = (12 - sum mod 11) mod 11.
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_SURNAMES = [
    ("王", "Wang"),
    ("李", "Li"),
    ("张", "Zhang"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("赵", "Zhao"),
    ("黄", "Huang"),
    ("周", "Zhou"),
    ("吴", "Wu"),
    ("徐", "Xu"),
    ("孙", "Sun"),
    ("胡", "Hu"),
    ("朱", "Zhu"),
    ("高", "Gao"),
    ("林", "Lin"),
    ("何", "He"),
    ("郭", "Guo"),
    ("马", "Ma"),
    ("罗", "Luo"),
    ("梁", "Liang"),
    ("宋", "Song"),
    ("郑", "Zheng"),
    ("谢", "Xie"),
    ("韩", "Han"),
    ("唐", "Tang"),
    ("冯", "Feng"),
    ("于", "Yu"),
    ("董", "Dong"),
    ("曹", "Cao"),
]
_GIVEN_M = [
    ("伟", "wei"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("勇", "yong"),
    ("杰", "jie"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("刚", "gang"),
    ("平", "ping"),
    ("辉", "hui"),
    ("鹏", "peng"),
    ("华", "hua"),
    ("飞", "fei"),
    ("鑫", "xin"),
    ("波", "bo"),
    ("斌", "bin"),
    ("宇", "yu"),
    ("浩", "hao"),
    ("建", "jian"),
    ("国", "guo"),
    ("志", "zhi"),
    ("文", "wen"),
]
_GIVEN_F = [
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("丽", "li"),
    ("艳", "yan"),
    ("娟", "juan"),
    ("霞", "xia"),
    ("秀", "xiu"),
    ("玲", "ling"),
    ("婷", "ting"),
    ("雪", "xue"),
    ("慧", "hui"),
    ("颖", "ying"),
    ("琳", "lin"),
    ("红", "hong"),
    ("梅", "mei"),
    ("倩", "qian"),
]
# Administrative division codes (GB/T 2260) of districts, with names for the address.
_DISTRICTS = {
    "沈阳市": (
        "Shenyang",
        [
            ("210102", "和平区", "Heping"),
            ("210103", "沈河区", "Shenhe"),
            ("210104", "大东区", "Dadong"),
            ("210105", "皇姑区", "Huanggu"),
            ("210106", "铁西区", "Tiexi"),
            ("210112", "浑南区", "Hunnan"),
        ],
    ),
    "大连市": (
        "Dalian",
        [
            ("210202", "中山区", "Zhongshan"),
            ("210203", "西岗区", "Xigang"),
            ("210204", "沙河口区", "Shahekou"),
            ("210211", "甘井子区", "Ganjingzi"),
        ],
    ),
    "鞍山市": (
        "Anshan",
        [("210302", "铁东区", "Tiedong"), ("210303", "铁西区", "Tiexi"), ("210304", "立山区", "Lishan")],
    ),
    "锦州市": (
        "Jinzhou",
        [("210702", "古塔区", "Guta"), ("210703", "凌河区", "Linghe"), ("210711", "太和区", "Taihe")],
    ),
    "丹东市": (
        "Dandong",
        [("210602", "元宝区", "Yuanbao"), ("210603", "振兴区", "Zhenxing"), ("210604", "振安区", "Zhen'an")],
    ),
}
_STREETS = [
    ("长青路", "Changqing Road"),
    ("文化路", "Wenhua Road"),
    ("建设大街", "Jianshe Street"),
    ("光明街", "Guangming Street"),
    ("新华路", "Xinhua Road"),
    ("青年大街", "Qingnian Street"),
    ("和平北路", "Heping North Road"),
    ("民主路", "Minzhu Road"),
    ("胜利街", "Shengli Street"),
    ("春晖路", "Chunhui Road"),
    ("松山路", "Songshan Road"),
    ("滨河路", "Binhe Road"),
]
_MOBILE_PREFIX = [
    "130",
    "131",
    "132",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "158",
    "159",
    "176",
    "177",
    "180",
    "181",
    "186",
    "187",
    "188",
    "189",
]


def resident_id_check_digit(first17: str) -> str:
    """Check character of a Chinese resident identity number (ISO 7064 MOD 11-2, GB 11643).

    Example
    -------
    >>> resident_id_check_digit("21010219670315451")
    '1'
    """
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError(f"need the first 17 digits of the number, got {first17!r}")
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


@dataclass(frozen=True)
class Person:
    """One synthetic patient's identifying data."""

    name_zh: str
    surname_en: str
    given_en: str
    sex: str
    birth_date: datetime.date
    age: int
    id_number: str
    phone: str
    address_zh: str
    address_en: str
    record_number: str
    admission_number: str

    @property
    def name_en(self) -> str:
        return f"{self.given_en} {self.surname_en}"

    @property
    def dicom_name(self) -> str:
        """PN with an alphabetic and an ideographic component group, e.g. ``ZHANG^WEI=张^伟``."""
        return f"{self.surname_en.upper()}^{self.given_en.upper()}={self.name_zh[0]}^{self.name_zh[1:]}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["birth_date"] = self.birth_date.isoformat()
        data["name_en"] = self.name_en
        return data


def sample_name(rng: np.random.Generator, sex: str) -> tuple[str, str, str]:
    """(Chinese name, surname pinyin, given-name pinyin)."""
    surname, surname_en = _SURNAMES[int(rng.integers(len(_SURNAMES)))]
    pool = _GIVEN_M if sex == "M" else _GIVEN_F
    picks = [pool[int(i)] for i in rng.choice(len(pool), size=int(rng.integers(1, 3)), replace=False)]
    given = "".join(p[0] for p in picks)
    given_en = "".join(p[1] for p in picks).capitalize()
    return surname + given, surname_en, given_en


def sample_person(rng: np.random.Generator, scan_date: datetime.date, city_zh: str) -> Person:
    """A patient aged 35–84 living in ``city_zh`` (one of the site cities)."""
    sex = "M" if rng.random() < 0.5 else "F"
    name_zh, surname_en, given_en = sample_name(rng, sex)
    age = int(rng.integers(35, 85))
    birth = scan_date - datetime.timedelta(days=int(age * 365.25 + rng.integers(1, 360)))
    age = scan_date.year - birth.year - ((scan_date.month, scan_date.day) < (birth.month, birth.day))
    city_en, districts = _DISTRICTS.get(city_zh, _DISTRICTS["沈阳市"])
    code, district_zh, district_en = districts[int(rng.integers(len(districts)))]
    sequence = int(rng.integers(0, 500)) * 2 + (1 if sex == "M" else 0)  # 17th digit: odd male, even female
    first17 = f"{code}{birth:%Y%m%d}{sequence:03d}"
    id_number = first17 + resident_id_check_digit(first17)
    phone = _MOBILE_PREFIX[int(rng.integers(len(_MOBILE_PREFIX)))] + f"{int(rng.integers(0, 10**8)):08d}"
    street_zh, street_en = _STREETS[int(rng.integers(len(_STREETS)))]
    number, unit = int(rng.integers(1, 300)), int(rng.integers(1, 7))
    room = int(rng.integers(1, 18)) * 100 + int(rng.integers(1, 5))
    address_zh = f"辽宁省{city_zh}{district_zh}{street_zh}{number}号{unit}单元{room}室"
    address_en = f"Room {room}, Unit {unit}, No. {number} {street_en}, {district_en} District, {city_en}, Liaoning"
    record = f"{int(rng.integers(10**9, 10**10))}"
    admission = f"ZY{scan_date.year}{int(rng.integers(0, 10**6)):06d}"
    return Person(
        name_zh, surname_en, given_en, sex, birth, age, id_number, phone, address_zh, address_en, record, admission
    )


def sample_staff_name(rng: np.random.Generator) -> tuple[str, str]:
    """A radiologist's name (Chinese, pinyin 'Given Surname')."""
    sex = "M" if rng.random() < 0.5 else "F"
    name_zh, surname_en, given_en = sample_name(rng, sex)
    return name_zh, f"{given_en} {surname_en}"


__all__ = ["Person", "resident_id_check_digit", "sample_name", "sample_person", "sample_staff_name"]
