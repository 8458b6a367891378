"""Text de-identification rules: names, resident ID numbers, phones, addresses, record numbers, dates.

Each :class:`TextRule` is a named regular expression with the kind of identifier it finds and how that
identifier is replaced (001 §7.3, §11.2.2):

========  =============================================  ===============================
kind      found by                                        replaced by
========  =============================================  ===============================
NAME      labels (姓名/患者/医师…, Name:/Patient:…),      keyed pseudonym ``[NAME-xxxxxx]``
          surname + title/context patterns, Dr./Mr.       (the patient pseudonym when the
                                                          name is the DICOM PatientName)
ID        18-digit resident ID (ISO 7064 MOD 11-2),       keyed pseudonym ``[ID-xxxxxx]``
          15-digit old format, ID-card/passport labels
MRN       住院号/病案号/门诊号/MRN/Accession… labels       keyed pseudonym ``[MRN-xxxxxx]``
PHONE     mainland mobiles, landlines with area code,     placeholder ``[PHONE]``
          US numbers, 电话/Tel labels
ADDRESS   province/city/district/road/number patterns,    placeholder ``[ADDRESS]``
          English street addresses, 住址/Address labels
EMAIL     e-mail addresses                                placeholder ``[EMAIL]``
DATE      YYYY-MM-DD, YYYY/MM/DD, YYYY年M月D日, M月D日,      the same date shifted by the
          YYYYMMDD, "March 5, 2023", 5 Mar 2023 …          patient's offset, same format
INSTITU-  hospital names (…人民医院, … Hospital)           keyed pseudonym ``[INSTITUTION-x]``
TION
NUMBER    any other run of ≥10 digits                     placeholder ``[NUMBER]``
========  =============================================  ===============================

An 18-digit number shaped like a resident ID (region, valid birth date, sequence) whose check digit is
wrong is still replaced as an ID (rule ``cn_resident_id_bad_checksum``): a typo does not make it safe.

Example
-------
>>> resident_id_checksum_ok("11010519491231002X")
True
>>> [r.name for r in TEXT_RULES][:3]
['cn_id_card_labelled', 'cn_record_number_labelled', 'en_record_number_labelled']
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

H = "[\u4e00-\u9fff]"


def _alt(*words: str) -> str:
    """``(?:w1|w2|...)`` from label words (longest first, so a longer label wins)."""
    return "(?:" + "|".join(sorted(words, key=len, reverse=True)) + ")"


SURNAMES_COMPOUND = (
    "欧阳",
    "司马",
    "诸葛",
    "上官",
    "皇甫",
    "令狐",
    "慕容",
    "东方",
    "尉迟",
    "长孙",
    "夏侯",
    "公孙",
    "司徒",
    "端木",
    "呼延",
    "宇文",
    "澹台",
    "南宫",
    "西门",
    "轩辕",
)
SURNAMES_SINGLE = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎"
    "贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧"
    "耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍"
    "华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏"
    "宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
_SURNAME = "(?:" + "|".join(SURNAMES_COMPOUND) + "|[" + SURNAMES_SINGLE + "])"

# A "given name" never starts with these: they begin clinical phrases after 患者/病人 or before 医生.
_NOT_GIVEN_START = frozenset(
    "今昨近前入院诉述因无有既术后年月日来自在为行经未已曾再现主血压热痛咳感男女性岁及和与的了"
    "侧肺肝肾脑胸腹头颈手足腿臂眼耳鼻口心胃肠骨部位处上下左右内外中"
)
_NOT_NAMES = frozenset(
    (
        "不详",
        "未知",
        "匿名",
        "本人",
        "患者",
        "病人",
        "家属",
        "先生",
        "女士",
        "男性",
        "女性",
        "管床",
        "主管",
        "经治",
        "值班",
        "上级",
        "住院",
        "实习",
        "进修",
        "规培",
        "带教",
        "责任",
        "接诊",
        "会诊",
        "门诊",
        "急诊",
        "临床",
        "影像",
        "放射",
        "超声",
        "检验",
        "麻醉",
        "手术",
        "主刀",
        "首诊",
        "主任",
        "副主任",
        "主治",
        "应答",
        "高年资",
        "初级",
        "中级",
    )
)
_EN_NOT_NAMES = frozenset(
    (
        "male",
        "female",
        "unknown",
        "anonymous",
        "none",
        "n/a",
        "na",
        "not",
        "the",
        "patient",
        "adult",
        "child",
        "infant",
        "outpatient",
        "inpatient",
        "emergency",
    )
)
_EN_STOP = (
    "Sex",
    "Age",
    "Gender",
    "DOB",
    "Date",
    "ID",
    "MRN",
    "Phone",
    "Tel",
    "Address",
    "Male",
    "Female",
    "Birth",
    "Exam",
    "Study",
    "Hospital",
    "Department",
    "Dept",
    "Ward",
    "Bed",
    "Accession",
    "Modality",
    "Clinical",
    "History",
    "Findings",
    "Impression",
    "Technique",
    "Indication",
    "Report",
    "Reported",
    "Reviewed",
    "Verified",
    "Dictated",
    "Read",
    "Approved",
    "Signed",
    "Name",
    "Patient",
    "Physician",
    "Radiologist",
    "Doctor",
    "Dr",
    "Mr",
    "Mrs",
    "Ms",
    "Prof",
)
_EN_STOP_WORD = r"(?!" + _alt(*_EN_STOP) + r"\b)"
_EN_WORD = r"(?:[A-Z][A-Za-z'\-]+|[A-Z]\.)"
_EN_NAME = rf"{_EN_WORD}(?:(?:[\^,]|[ \t]|,[ \t]){_EN_STOP_WORD}{_EN_WORD}){{0,3}}"
_EN_TITLE = r"(?:Dr|Mr|Mrs|Ms|Miss|Prof)\.?"
_ZH_NEXT_FIELD = _alt(
    "性别",
    "年龄",
    "出生",
    "住院",
    "门诊",
    "科室",
    "床号",
    "病区",
    "检查",
    "日期",
    "电话",
    "地址",
    "身份",
    "民族",
    "职业",
    "婚姻",
    "籍贯",
    "病案",
    "男",
    "女",
)
_ZH_NAME_VALUE = rf"(?:{H}{{2,6}}·{H}{{2,6}}|(?:(?!{_ZH_NEXT_FIELD}){H}){{2,4}}|{_EN_NAME})"
_PROVINCES = _alt(
    "北京",
    "天津",
    "上海",
    "重庆",
    "河北",
    "山西",
    "辽宁",
    "吉林",
    "黑龙江",
    "江苏",
    "浙江",
    "安徽",
    "福建",
    "江西",
    "山东",
    "河南",
    "湖北",
    "湖南",
    "广东",
    "海南",
    "四川",
    "贵州",
    "云南",
    "陕西",
    "甘肃",
    "青海",
    "台湾",
    "内蒙古",
    "广西",
    "西藏",
    "宁夏",
    "新疆",
    "香港",
    "澳门",
)
_ROAD = _alt("路", "街", "大道", "大街", "巷", "弄", "胡同")
_UNIT = r"(?:\d+" + _alt("号楼", "栋", "幢", "单元", "层", "楼", "室") + ")"
_MONTHS = (
    r"Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?"
)
_YEAR = r"(?P<y>(?:19|20)\d{2})"
_CN_DIGITS = "[一二三四五六七八九十]"

_ZH_ID_LABELS = _alt("公民身份号码", "身份证号码", "身份证号", "身份证", "证件号码", "证件号", "护照号码", "护照号")
_EN_ID_LABELS = r"(?:ID\s*card(?:\s*(?:No\.?|number))?|National\s+ID|Passport\s+(?:No\.?|Number))"
_ZH_RECORD_LABELS = _alt(
    "住院号",
    "病案号",
    "病历号",
    "门诊号",
    "就诊号",
    "检查号",
    "影像号",
    "放射号",
    "登记号",
    "申请单号",
    "条码号",
    "医保卡号",
    "医保号",
    "社保卡号",
    "社保号",
    "就诊卡号",
    "档案号",
    "流水号",
    "患者编号",
    "病人编号",
    "患者ID",
    "病人ID",
    "ID号",
    "床号",
    "CT号",
    "MR号",
    "MRI号",
    "DR号",
    "X线号",
    "PET号",
)
_EN_RECORD_LABELS = (
    r"(?:MRN|Medical\s+Record\s+(?:Number|No\.?|\#)|Record\s+(?:Number|No\.?)|"
    r"Hospital\s+(?:Number|No\.?|ID)|Admission\s+(?:Number|No\.?|ID)|"
    r"Accession\s+(?:Number|No\.?|\#)|Acc\.?\s*\#|Patient\s+(?:ID|No\.?|Number)|"
    r"Exam(?:ination)?\s+(?:Number|No\.?|ID)|Study\s+ID|Encounter\s+(?:ID|Number)|"
    r"Visit\s+(?:ID|Number)|Insurance\s+(?:ID|Number|No\.?)|ID)"
)
_ZH_NAME_LABELS = _alt(
    "患者姓名",
    "病人姓名",
    "受检者姓名",
    "姓名",
    "患者",
    "病人",
    "受检者",
    "就诊者",
    "报告医师",
    "报告医生",
    "审核医师",
    "审核医生",
    "诊断医师",
    "诊断医生",
    "检查医师",
    "检查医生",
    "申请医师",
    "申请医生",
    "送检医师",
    "送检医生",
    "主治医师",
    "主治医生",
    "经治医师",
    "记录者",
    "记录人",
    "报告人",
    "审核人",
    "签名",
    "医师",
    "医生",
    "技师",
    "联系人",
    "家属",
    "监护人",
)
_EN_NAME_LABELS = (
    r"(?:Patient(?:'s)?[ \t]+Name|Patient|Name|Physician|Radiologist|"
    r"Referring[ \t]+(?:Physician|Doctor)|(?:Reported|Dictated|Signed|Verified|Read|Reviewed)"
    r"[ \t]+by|Attending|Technologist|Doctor|(?:(?:[Ff]amily|[Ee]mergency)[ \t]+)?[Cc]ontact"
    r"(?:[ \t]+[Pp]erson)?|Next[ \t]+of[ \t]+[Kk]in|Guardian|Spouse|Relative)"
)
# Words before a name with no colon in English notes ("family contact Wang Xiaoming", "Patient Zhang Wei").
_EN_RELATION_LABELS = (
    r"(?i:patient|(?:(?:family|emergency)[ \t]+)?contact(?:[ \t]+person)?|next[ \t]+of[ \t]+kin|"
    r"guardian|spouse|wife|husband|son|daughter|mother|father|brother|sister|relative|"
    r"(?:accompanied|seen|examined|referred|reported|signed|read)[ \t]+by|spoke[ \t]+with)"
)
_PINYIN_INITIAL = "(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])"
_PINYIN_FINAL = (
    "(?:iang|iong|uang|ang|eng|ing|ong|uai|uan|ian|iao|ai|ei|ao|ou|an|en|in|un|ia|ie|iu|ua|uo|ui|ue|er|a|o|e|i|u|v)"
)
PINYIN_WORD = re.compile(rf"(?:{_PINYIN_INITIAL}?{_PINYIN_FINAL})+", re.IGNORECASE)
_ZH_HOSPITAL_KINDS = _alt(
    "人民",
    "中心",
    "中医",
    "中西医结合",
    "肿瘤",
    "妇幼保健",
    "妇幼",
    "儿童",
    "专科",
    "协和",
    "口腔",
    "胸科",
    "传染病",
    "精神卫生",
)
_ZH_INSTITUTION_KIND = f"(?:(?:第{_CN_DIGITS}+)?{_ZH_HOSPITAL_KINDS}|附属第?{_CN_DIGITS}*)"
_ZH_PHONE_LABELS = _alt("联系电话", "联系方式", "手机号码", "手机号", "电话", "手机", "座机")
_ZH_ADDRESS_LABELS = _alt(
    "家庭住址",
    "现住址",
    "户籍地址",
    "联系地址",
    "通讯地址",
    "单位地址",
    "工作单位",
    "住址",
    "地址",
    "家住",
    "现住",
    "居住于",
    "住于",
    "籍贯",
    "户籍",
)
_EN_STREET = _alt(
    "Street",
    "St",
    "Road",
    "Rd",
    "Avenue",
    "Ave",
    "Boulevard",
    "Blvd",
    "Lane",
    "Ln",
    "Drive",
    "Dr",
    "Way",
    "Court",
    "Ct",
    "Place",
    "Pl",
    "Terrace",
    "Highway",
    "Hwy",
)
_ZH_ADMIN = _alt("省", "市", "壮族自治区", "回族自治区", "维吾尔自治区", "自治区", "特别行政区")


def resident_id_checksum_ok(number: str) -> bool:
    """True when an 18-character resident ID has the right ISO 7064 MOD 11-2 check character.

    Example
    -------
    >>> resident_id_checksum_ok("110105194912310021"), resident_id_checksum_ok("110105194912310022")
    (False, False)
    """
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(ch) * (2 ** (17 - i) % 11) for i, ch in enumerate(number[:17]))
    return "10X98765432"[total % 11] == number[17].upper()


@dataclass(frozen=True)
class TextRule:
    """One named detection rule.

    Attributes
    ----------
    name:
        Stable rule name used in the log's per-file counts.
    kind:
        NAME, ID, MRN, PHONE, ADDRESS, EMAIL, DATE or NUMBER.
    pattern:
        The regular expression; the identifier is its ``value`` group (or the whole match for dates).
    priority:
        Lower wins where two rules overlap.
    check:
        Optional test of the value; a match whose value fails it is ignored.
    """

    name: str
    kind: str
    description: str
    pattern: re.Pattern[str]
    priority: int
    check: Callable[[str], bool] | None = None

    @property
    def replacement(self) -> str:
        """How values of this rule are replaced (``pseudonym``, ``placeholder`` or ``shifted date``)."""
        return {
            "NAME": "pseudonym",
            "ID": "pseudonym",
            "MRN": "pseudonym",
            "INSTITUTION": "pseudonym",
            "DATE": "shifted date",
        }.get(self.kind, "placeholder")


def _zh_name_ok(value: str) -> bool:
    if value in _NOT_NAMES or any(value.startswith(w) for w in _NOT_NAMES if len(w) >= 2):
        return False
    if value[:1].isascii():
        return value.split()[0].strip(".,^").lower() not in _EN_NOT_NAMES
    for compound in SURNAMES_COMPOUND:
        if value.startswith(compound):
            return len(value) > 2 and value[2] not in _NOT_GIVEN_START
    return len(value) >= 2 and value[1] not in _NOT_GIVEN_START


def _labelled_name_ok(value: str) -> bool:
    return value not in _NOT_NAMES and value.split()[0].strip(".,^").lower() not in _EN_NOT_NAMES


def _en_name_ok(value: str) -> bool:
    return value.split()[0].strip(".,^").lower() not in _EN_NOT_NAMES


def _pinyin_name_ok(value: str) -> bool:
    """Two or three capitalised words, each made of pinyin syllables, one of them a common surname."""
    words = [w for w in re.split(r"[ \t\-]+", value) if w]
    if not 2 <= len(words) <= 3 or not all(PINYIN_WORD.fullmatch(w) for w in words):
        return False
    surnames = pinyin_surnames()
    return words[0].lower() in surnames or words[-1].lower() in surnames


@lru_cache(maxsize=1)
def pinyin_surnames() -> frozenset[str]:
    """Pinyin of the common surnames (single and compound) of :data:`SURNAMES_SINGLE`/`SURNAMES_COMPOUND`."""
    from pypinyin import Style, lazy_pinyin

    single = {lazy_pinyin(ch, style=Style.NORMAL)[0].replace("ü", "v") for ch in SURNAMES_SINGLE}
    compound = {"".join(lazy_pinyin(name, style=Style.NORMAL)) for name in SURNAMES_COMPOUND}
    return frozenset(single | compound)


def _record_ok(value: str) -> bool:
    return len(value) >= 2 or value.isdigit()


def _resident_ok(value: str) -> bool:
    return resident_id_checksum_ok(value)


def _resident_bad(value: str) -> bool:
    return not resident_id_checksum_ok(value)


def _address_ok(value: str) -> bool:
    return len(value) >= 4 and value not in _NOT_NAMES and not value.startswith(("不详", "未知"))


def _c(pattern: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(pattern, flags)


_RESIDENT = (
    r"(?<![0-9A-Za-z])(?P<value>[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
    r"(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx])(?![0-9A-Za-z])"
)
_RECORD_VALUE = r"(?P<value>[A-Za-z0-9][A-Za-z0-9\-_/]{0,30})"

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


__all__ = [
    "MONTH_NAMES",
    "SURNAMES_COMPOUND",
    "SURNAMES_SINGLE",
    "TEXT_RULES",
    "UID_PATTERN",
    "TextRule",
    "resident_id_checksum_ok",
]
