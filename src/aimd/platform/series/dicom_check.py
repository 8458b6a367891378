"""Identifiers left in the DICOM files of a study upload (001 §11.2.1): the platform imports de-identified
data only.

A file passes when

* it declares itself de-identified: (0012,0062) PatientIdentityRemoved is ``YES`` (PS3.15 E.1);
* every person name (VR PN, at any nesting level) and every direct identifier attribute (patient and
  other patient ids, accession number, birth date and names, addresses, phone numbers) is empty, a
  placeholder (``ANONYMIZED``) or a pseudonym written by de-identification (``ANON^ECE28AA5EA``);
* the de-identification detectors find no name, id, phone, address or record number in its other text
  attributes (:func:`aimd.platform.series.intake.identifier_findings`, as for report text), and
* the residual scan (:class:`aimd.imaging.deid.ResidualScanner`) finds no resident id, mobile number or
  e-mail address in its bytes.

Example
-------
>>> from pydicom.data import get_testdata_file
>>> sorted({h["kind"] for h in dicom_identifier_findings(Path(get_testdata_file("CT_small.dcm")), "ct.dcm")[0]})
['ID', 'NAME', 'NOT_DEIDENTIFIED']
"""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from aimd.imaging.deid import ResidualScanner
from aimd.platform.series.intake import identifier_findings

__all__ = ["DIRECT_IDENTIFIERS", "dicom_identifier_findings"]

DIRECT_IDENTIFIERS = {
    "PatientID": "ID",
    "OtherPatientIDs": "ID",
    "IssuerOfPatientID": "ID",
    "AccessionNumber": "ID",
    "MedicalRecordLocator": "ID",
    "PatientBirthDate": "BIRTH_DATE",
    "PatientBirthName": "NAME",
    "PatientMotherBirthName": "NAME",
    "PatientAddress": "ADDRESS",
    "InstitutionAddress": "ADDRESS",
    "PatientTelephoneNumbers": "PHONE",
    "PersonTelephoneNumbers": "PHONE",
}
"""Attributes that identify a person directly, with the kind of identifier (besides every PN)."""

_PLACEHOLDERS = frozenset({"", "ANONYMIZED", "ANONYMISED", "ANONYMOUS", "ANON", "UNKNOWN", "NONE", "REMOVED"})
_PSEUDONYM = re.compile(r"^[A-Z]{2,12}[-^][0-9A-F]{4,}\^*$")
_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})


def _values(value: object) -> list[str]:
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        return [str(v) for v in value]
    return [] if value is None else [str(value)]


def _is_safe(value: str) -> bool:
    v = value.strip().upper()
    return v in _PLACEHOLDERS or bool(_PSEUDONYM.match(v))


def _header_findings(ds: Dataset, where: str) -> list[dict[str, str]]:
    hits = []
    if str(ds.get("PatientIdentityRemoved", "")).strip().upper() != "YES":
        hits.append(
            {"where": where, "kind": "NOT_DEIDENTIFIED", "rule": "(0012,0062) PatientIdentityRemoved is not YES"}
        )
    for elem in ds.iterall():
        keyword = elem.keyword or str(elem.tag)
        if elem.VR == "SQ" or elem.value is None:
            continue
        kind = "NAME" if elem.VR == "PN" else DIRECT_IDENTIFIERS.get(keyword)
        values = _values(elem.value)
        if kind is not None:
            if not all(_is_safe(v) for v in values):
                hits.append({"where": f"{where} {keyword}", "kind": kind, "rule": f"{elem.tag} {keyword}"})
        elif elem.VR in _TEXT_VRS:
            for v in values:
                hits += identifier_findings(v, f"{where} {keyword}")
    return hits


def dicom_identifier_findings(path: Path, where: str) -> tuple[list[dict[str, str]], str | None]:
    """Identifiers left in the DICOM file ``path`` (named ``where`` in the findings) and its SOPInstanceUID."""
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    hits = _header_findings(ds, where)
    hits += [
        {"where": where, "kind": kind, "rule": "residual scan of the file's bytes"}
        for kind in ResidualScanner({}).scan_file(path)
    ]
    sop = ds.get("SOPInstanceUID")
    return hits, (str(sop) if sop else None)
