"""The DICOM attributes a writer accepts (:class:`DicomMeta`), their limits, codes and keywords."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalXRayImageStorageForPresentation,
    MRImageStorage,
)

from aimd import __version__
from aimd.core.errors import InvalidInputError
from aimd.core.ids import deterministic_uid
from aimd.core.logging import get_logger
from aimd.imaging.volume import Volume

_log = get_logger("aimd.imaging.dicom_write")

_SERIES_SOP = {"CT": CTImageStorage, "MR": MRImageStorage}
_IMAGE_SOP = {"DX": DigitalXRayImageStorageForPresentation, "CR": ComputedRadiographyImageStorage}
_IMPLEMENTATION_UID = deterministic_uid("aimd", "implementation-class")
_IMPLEMENTATION_NAME = f"AIMD_{__version__}"[:16]
# Max lengths of the VRs the fields are written as (PS3.5 §6.2): SH/CS 16, LO/PN 64.
_MAX_LEN = {"station_name": 16, "accession_number": 16, "study_id": 16, "body_part_examined": 16}
_PATTERNS = {
    "patient_birth_date": r"(\d{8})?",
    "study_date": r"(\d{8})?",
    "study_time": r"(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?",
    "patient_age": r"(\d{3}[DWMY])?",
}
_UID = re.compile(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))*")
# DicomMeta fields written as type 2 (always present, may be empty) and type 3 (only when set).
_TYPE2 = (
    "patient_name",
    "patient_id",
    "patient_birth_date",
    "patient_sex",
    "study_date",
    "study_time",
    "accession_number",
    "referring_physician_name",
    "study_id",
    "manufacturer",
    "body_part_examined",
)
_TYPE3 = (
    "patient_age",
    "study_description",
    "series_description",
    "institution_name",
    "station_name",
    "manufacturer_model_name",
)
# Anatomic region (CID 4031) and DX view (CID 4010) codes for the body parts and views aimd writes.
_REGION_CODES = {"CHEST": ("816094009", "SCT", "Chest"), "ABDOMEN": ("818981001", "SCT", "Abdomen")}
_VIEW_CODES = {
    "AP": ("399348003", "SCT", "antero-posterior"),
    "PA": ("272479007", "SCT", "postero-anterior"),
    "LL": ("399173006", "SCT", "left lateral"),
    "RL": ("399198007", "SCT", "right lateral"),
}
# A written series is a new series: its UID (and the UID recipe) never comes from the source metadata.
_NOT_DERIVED = {"series_instance_uid", "uid_seed", "random_uids"}
_NUMERIC = {"series_number", "kvp", "window_center", "window_width", "slice_thickness"}
# Exactly representable decimal slopes tried (largest first) for non-integer values.
_EXACT_SLOPES = (
    0.5,
    0.25,
    0.2,
    0.125,
    0.1,
    0.0625,
    0.05,
    0.03125,
    0.025,
    0.02,
    0.015625,
    0.01,
    0.005,
    0.0025,
    0.002,
    0.001,
)


class DicomMeta(BaseModel):
    """Patient, study, series and equipment attributes written into DICOM headers.

    Every field has a safe default, so ``DicomMeta()`` works. UIDs left ``None`` are derived
    from ``uid_seed`` (or, without a seed, from the pixel data and geometry); ``random_uids=True``
    asks for fresh random UIDs instead. Dates are ``YYYYMMDD``, times ``HHMMSS``, age ``nnnY``.

    Example
    -------
    >>> DicomMeta(patient_name="ZHANG^WEI", patient_sex="M", study_date="20240312").patient_sex
    'M'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_name: str = ""
    patient_id: str = Field("", max_length=64)
    patient_birth_date: str = ""
    patient_sex: Literal["", "M", "F", "O"] = ""
    patient_age: str = ""
    study_instance_uid: str | None = None
    study_date: str = ""
    study_time: str = ""
    study_description: str = Field("", max_length=64)
    study_id: str = ""
    accession_number: str = ""
    series_instance_uid: str | None = None
    series_number: int = Field(1, ge=0, le=2**31 - 1)
    series_description: str = Field("", max_length=64)
    frame_of_reference_uid: str | None = None
    institution_name: str = Field("", max_length=64)
    manufacturer: str = Field("aimd", max_length=64)
    manufacturer_model_name: str = Field("aimd dicom writer", max_length=64)
    station_name: str = ""
    referring_physician_name: str = ""
    body_part_examined: str = ""
    kvp: float | None = Field(None, gt=0)
    modality: str | None = None
    window_center: float | None = None
    window_width: float | None = Field(None, gt=0)
    slice_thickness: float | None = Field(None, gt=0)
    uid_seed: str | None = None
    random_uids: bool = False

    @model_validator(mode="after")
    def _check_formats(self) -> DicomMeta:
        for name, pattern in _PATTERNS.items():
            if not re.fullmatch(pattern, getattr(self, name)):
                raise ValueError(f"{name} has the wrong DICOM format, got {getattr(self, name)!r}")
        for name, limit in _MAX_LEN.items():
            if len(getattr(self, name)) > limit:
                raise ValueError(f"{name} must be at most {limit} characters, got {getattr(self, name)!r}")
        for name in ("study_instance_uid", "series_instance_uid", "frame_of_reference_uid"):
            uid = getattr(self, name)
            if uid is not None and (len(uid) > 64 or not _UID.fullmatch(uid)):
                raise ValueError(f"{name} is not a valid DICOM UID, got {uid!r}")
        for name, value in self:
            if isinstance(value, str) and "\\" in value:
                raise ValueError(f"{name} must not contain a backslash, got {value!r}")
        return self

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "DicomMeta") -> DicomMeta:
        """Validate ``values`` (field names) into a ``DicomMeta``; bad values raise InvalidInputError."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "meta"
            raise InvalidInputError(
                f"invalid DICOM attribute {field}: {first['msg']}",
                where=where,
                hint="see aimd.imaging.dicom_write.DicomMeta for the accepted formats",
            ) from err

    @classmethod
    def from_volume(cls, volume: Volume) -> DicomMeta:
        """What ``volume.modality`` and ``volume.metadata`` tell: keys are field names or DICOM keywords
        (``PatientName``), top level or under ``"dicom"``; invalid values are skipped with a log line.
        Study and Frame of Reference UIDs are kept; the series always gets a new UID."""
        nested = volume.metadata.get("dicom")
        items = [*volume.metadata.items(), *(nested.items() if isinstance(nested, Mapping) else ())]
        valid: dict[str, Any] = {}
        for key, value in items:
            name = key if key in cls.model_fields else _FIELD_OF_KEYWORD.get(key)
            if isinstance(value, list | tuple):
                value = value[0] if value else None
            if name is None or value is None or name in _NOT_DERIVED:
                continue
            if name not in _NUMERIC:  # ISO dates (2024-03-12) become DICOM DA (20240312)
                value = re.sub(r"^(\d{4})-(\d\d)-(\d\d)$", r"\1\2\3", str(value))
            try:
                cls.model_validate({**valid, name: value})
                valid[name] = value
            except ValidationError:
                _log.warning("dicom_meta.skipped", field=name, value=str(value)[:64])
        if volume.modality:
            valid["modality"] = volume.modality.upper()
        return cls.model_validate(valid)


def _keyword(field: str) -> str:
    """DICOM keyword of a DicomMeta field: ``patient_id`` → ``PatientID``, ``kvp`` → ``KVP``."""
    camel = "".join(part.capitalize() for part in field.split("_"))
    camel = camel.replace("Uid", "UID").replace("Kvp", "KVP")
    return camel[:-2] + "ID" if camel.endswith("Id") else camel


_FIELD_OF_KEYWORD = {_keyword(name): name for name in DicomMeta.model_fields} | {
    "study_uid": "study_instance_uid",
    "series_uid": "series_instance_uid",
}  # aimd.imaging.io metadata keys
