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

Modules: :mod:`~aimd.imaging.deid.rules.lexicon` (word lists and pattern pieces),
:mod:`~aimd.imaging.deid.rules.checks` (:class:`TextRule` and the value checks),
:mod:`~aimd.imaging.deid.rules.table` (:data:`TEXT_RULES`).

Example
-------
>>> resident_id_checksum_ok("11010519491231002X")
True
>>> [r.name for r in TEXT_RULES][:3]
['cn_id_card_labelled', 'cn_record_number_labelled', 'en_record_number_labelled']
"""

from aimd.imaging.deid.rules.checks import TextRule, pinyin_surnames, resident_id_checksum_ok
from aimd.imaging.deid.rules.lexicon import PINYIN_WORD, SURNAMES_COMPOUND, SURNAMES_SINGLE
from aimd.imaging.deid.rules.table import MONTH_NAMES, TEXT_RULES, UID_PATTERN

__all__ = [
    "MONTH_NAMES",
    "PINYIN_WORD",
    "SURNAMES_COMPOUND",
    "SURNAMES_SINGLE",
    "TEXT_RULES",
    "UID_PATTERN",
    "TextRule",
    "pinyin_surnames",
    "resident_id_checksum_ok",
]
