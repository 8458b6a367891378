"""Word lists and pattern pieces of the text rules: surnames, words that are not names, labels, places, streets."""

from __future__ import annotations

import re

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
