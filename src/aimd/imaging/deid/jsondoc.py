"""De-identify JSON documents: every string (and key) through the text rules, identity fields by key,
text-with-spans objects with their character spans moved (001 §7.3, §8.5.2).

* A dict holding a string ``text`` and lists of ``{"start", "end", ...}`` items (report.json's
  ``spans`` and ``phi``) is treated as one annotated text: the text is de-identified, every span is moved
  onto the new text (:func:`aimd.imaging.deid.text.remap_span`), a span's own ``text`` copy is refreshed,
  and spans that overlap replaced text are reported.
* Fields whose key says what they hold (``id_number``, ``phone``, ``address_en``, ``patient_id``,
  ``institution_zh``; ``name``/``surname`` inside a patient or staff record) are replaced whole.
* Every other string goes through the text rules (dates shifted, UIDs remapped, names and numbers
  replaced), and so does every number written as digits: a resident ID or a mobile number stored as a
  JSON number is replaced by the same (string) replacement.

Example
-------
>>> from aimd.imaging.deid.text import TextDeidentifier
>>> doc = {"patient": {"name_en": "Hua Song", "phone": "18889486055"}, "labs": [{"name_en": "Albumin"}]}
>>> out = deidentify_json(doc, TextDeidentifier(date_offset_days=5))
>>> out.doc["patient"], out.doc["labs"][0]["name_en"]
({'name_en': '[NAME]', 'phone': '[PHONE]'}, 'Albumin')
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aimd.imaging.deid.text import TextDeidentifier, remap_span

_PERSON_PARENTS = frozenset(
    {
        "patient",
        "person",
        "patient_info",
        "patientinfo",
        "subject",
        "患者",
        "病人",
        "radiologist",
        "reviewer",
        "physician",
        "doctor",
        "referring",
        "staff",
        "referring_physician",
        "annotator_person",
    }
)
_PERSON_MARKERS = frozenset(
    {
        "id_number",
        "birth_date",
        "dob",
        "phone",
        "address",
        "address_zh",
        "address_en",
        "record_number",
        "admission_number",
        "mrn",
        "patient_id",
        "身份证号",
        "出生日期",
        "住址",
    }
)
_NAME_KEYS = frozenset(
    {
        "patient_name",
        "patientname",
        "姓名",
        "患者姓名",
        "radiologist",
        "reviewer",
        "referring_physician",
        "reported_by",
        "reviewed_by",
        "physician",
        "doctor",
        "staff_name",
        "operator",
        "technologist",
        "报告医师",
        "审核医师",
    }
)
_ID_KEYS = frozenset(
    {
        "id_number",
        "idnumber",
        "id_card",
        "idcard",
        "resident_id",
        "national_id",
        "身份证号",
        "身份证",
        "passport",
        "passport_number",
    }
)
_MRN_KEYS = frozenset(
    {
        "patient_id",
        "patientid",
        "mrn",
        "record_number",
        "medical_record_number",
        "admission_number",
        "admission_id",
        "hospital_number",
        "住院号",
        "病案号",
        "病历号",
        "门诊号",
        "accession",
        "accession_number",
        "accessionnumber",
        "检查号",
        "other_patient_ids",
    }
)
_PHONE_WORDS = ("phone", "telephone", "mobile", "telecom", "电话", "手机")
_ADDRESS_KEYS = ("city", "city_zh", "city_en", "street", "zip", "postcode", "postal_code", "邮编")


@dataclass
class JsonResult:
    """The de-identified document, rule counts and span problems (paths and ids only)."""

    doc: Any
    counts: Counter[str] = field(default_factory=Counter)
    span_overlaps: list[dict[str, Any]] = field(default_factory=list)
    spans_moved: int = 0

    @property
    def changed(self) -> bool:
        return sum(self.counts.values()) > 0


def key_kind(key: str, in_person: bool) -> str | None:
    """What a field holds judging by its key (NAME, ID, MRN, PHONE, ADDRESS, EMAIL, INSTITUTION, UID).

    Example
    -------
    >>> key_kind("address_en", False), key_kind("name_en", True), key_kind("name_en", False)
    ('ADDRESS', 'NAME', None)
    """
    k = key.strip().lower().replace("-", "_").replace(" ", "_")
    if k.endswith("uid") or k.endswith("_uid"):
        return "UID"
    if k in _ID_KEYS:
        return "ID"
    if k in _MRN_KEYS:
        return "MRN"
    if any(w in k for w in _PHONE_WORDS) or k in ("tel", "fax"):
        return "PHONE"
    if any(w in k for w in ("email", "e_mail", "邮箱")):
        return "EMAIL"
    if any(w in k for w in ("address", "住址", "地址")) or k in _ADDRESS_KEYS:
        return "ADDRESS"
    if any(w in k for w in ("institution", "hospital", "医院")):
        return "INSTITUTION"
    if k in _NAME_KEYS or (in_person and any(w in k for w in ("name", "given", "surname", "family", "姓名"))):
        return "NAME"
    return None


class _Walker:
    def __init__(self, engine: TextDeidentifier) -> None:
        self.engine = engine
        self.result = JsonResult(None)

    def string(self, value: str) -> str:
        out = self.engine.deidentify(value)
        self.result.counts.update(out.counts)
        return int(out.text) if out.text.isdigit() and out.text.isascii() else out.text

    def whole(self, kind: str, value: Any, path: str) -> Any:
        if value is None or value == "" or isinstance(value, bool):
            return value
        if isinstance(value, (list, tuple)):
            return [self.whole(kind, v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return self.walk(value, path, True)
        text = str(value)
        if kind == "UID":
            mapping = self.engine.mapping
            if mapping is None or text.startswith("1.2.840.10008.") or not _uid_like(text):
                return self.string(text)
            new = mapping.uid(text)
        elif kind in ("NAME", "ID", "MRN", "INSTITUTION"):
            new = self.engine.replacement_for(kind, text)
        else:
            new = f"[{kind}]"
        self.result.counts[f"json_key_{kind.lower()}"] += 1
        return new

    def walk(self, node: Any, path: str, in_person: bool = False) -> Any:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str) and any(_is_span_list(v) for v in node.values()):
                return self.annotated(node, path, in_person)
            person = in_person or any(str(k).lower() in _PERSON_MARKERS for k in node)
            out: dict[str, Any] = {}
            for key, value in node.items():
                new_key = self.string(key) if isinstance(key, str) else key
                child_path = f"{path}.{key}" if path else str(key)
                child_person = person or str(key).lower() in _PERSON_PARENTS
                kind = key_kind(str(key), person)
                if kind is not None and not isinstance(value, dict):
                    out[new_key] = self.whole(kind, value, child_path)
                else:
                    out[new_key] = self.walk(value, child_path, child_person)
            return out
        if isinstance(node, list):
            return [self.walk(v, f"{path}[{i}]", in_person) for i, v in enumerate(node)]
        if isinstance(node, str):
            return self.string(node)
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            return self.number(node)
        return node

    def number(self, value: float) -> Any:
        """A JSON number is text too: an 18-digit resident id or an 11-digit mobile stored as a number is
        replaced (by the same replacement as the string) like the string would be."""
        if isinstance(value, float):
            if not value.is_integer() or abs(value) >= 1e21:
                return value
            value = int(value)
        digits = str(value)
        if len(digits.lstrip("-")) < 6:
            return value
        out = self.engine.deidentify(digits)
        if not out.changed:
            return value
        self.result.counts.update(out.counts)
        return int(out.text) if out.text.isdigit() and out.text.isascii() else out.text

    def annotated(self, node: dict[str, Any], path: str, in_person: bool) -> dict[str, Any]:
        original = node["text"]
        out_text = self.engine.deidentify(original)
        self.result.counts.update(out_text.counts)
        new_text = out_text.text
        out: dict[str, Any] = {}
        for key, value in node.items():
            child_path = f"{path}.{key}" if path else str(key)
            if key == "text":
                out[key] = new_text
            elif _is_span_list(value):
                spans = []
                for index, span in enumerate(value):
                    moved = remap_span(int(span["start"]), int(span["end"]), out_text.replacements)
                    new_span = {
                        k: self.walk(v, f"{child_path}[{index}].{k}", in_person)
                        for k, v in span.items()
                        if k not in ("start", "end", "text")
                    }
                    new_span["start"], new_span["end"] = moved.start, moved.end
                    if "text" in span:
                        new_span["text"] = new_text[moved.start : moved.end]
                    spans.append({k: new_span[k] for k in span})
                    self.result.spans_moved += 1
                    if moved.overlaps:
                        self.result.span_overlaps.append(
                            {
                                "path": f"{child_path}[{index}]",
                                "list": key,
                                "id": span.get("id"),
                                "lesion_id": span.get("lesion_id"),
                                "kind": span.get("type") or span.get("kind"),
                                "rules": sorted(
                                    {
                                        r.rule
                                        for r in out_text.replacements
                                        if r.start < span["end"] and r.end > span["start"]
                                    }
                                ),
                            }
                        )
                out[key] = spans
            else:
                out[key] = self.walk(value, child_path, in_person)
        return out


def _is_span_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(v, dict)
            and isinstance(v.get("start"), int)
            and isinstance(v.get("end"), int)
            and not isinstance(v.get("start"), bool)
            for v in value
        )
    )


def _uid_like(text: str) -> bool:
    parts = text.split(".")
    return len(parts) >= 3 and all(p.isdigit() for p in parts) and len(text) <= 64


def deidentify_json(doc: Any, engine: TextDeidentifier) -> JsonResult:
    """De-identify a parsed JSON document (returns a new document; ``doc`` is not modified).

    Example
    -------
    >>> doc = {"text": "姓名：张伟，结节", "spans": [{"start": 6, "end": 8, "text": "结节"}]}
    >>> out = deidentify_json(doc, TextDeidentifier())
    >>> out.doc["text"], out.doc["spans"][0]
    ('姓名：[NAME]，结节', {'start': 10, 'end': 12, 'text': '结节'})
    """
    walker = _Walker(engine)
    walker.result.doc = walker.walk(doc, "")
    return walker.result


__all__ = ["JsonResult", "deidentify_json", "key_kind"]
