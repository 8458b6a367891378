"""Base model and enumerations of the annotation package schema (001 App. C), taken from the standard's words.

Example
-------
>>> AnnotationType("bbox") is AnnotationType.BBOX, [c.value for c in LinkStatus]
(True, ['unchecked', 'consistent', 'inconsistent'])
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

__all__ = [
    "AnnotationType",
    "Category",
    "FieldType",
    "FileRole",
    "LinkKind",
    "LinkStatus",
    "SchemaModel",
    "SemanticType",
]


class SchemaModel(BaseModel):
    """Base of every package model: unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Category(StrEnum):
    """Annotation category (001 App. C.1, §8.1)."""

    ORGAN = "organ"
    SUBSTRUCTURE = "substructure"
    LESION = "lesion"
    FEATURE = "feature"
    ATTRIBUTE = "attribute"
    LANDMARK = "landmark"


class AnnotationType(StrEnum):
    """Annotation type (001 App. C.3 d, §6.4.1)."""

    MASK = "mask"
    BBOX = "bbox"
    POLYGON = "polygon"
    POINT = "point"
    ATTRIBUTE = "attribute"


class FileRole(StrEnum):
    """What a referenced file is."""

    IMAGE = "image"
    DICOM_SERIES = "dicom_series"
    MASK = "mask"
    TRANSFORM = "transform"
    TEXT = "text"
    OTHER = "other"


class LinkKind(StrEnum):
    """Which modalities a cross-modal link joins (001 §8.1 c–e)."""

    IMAGE_IMAGE = "image_image"
    IMAGE_TEXT = "image_text"
    IMAGE_STRUCTURED = "image_structured"


class LinkStatus(StrEnum):
    """Cross-modal consistency state of a link (001 §8.5.2.3, §8.5.2.4)."""

    UNCHECKED = "unchecked"
    CONSISTENT = "consistent"
    INCONSISTENT = "inconsistent"


class SemanticType(StrEnum):
    """Semantic type of a text span (001 §8.5.2.2)."""

    FINDING = "finding"
    DIAGNOSIS = "diagnosis"
    ATTRIBUTE = "attribute"
    RECOMMENDATION = "recommendation"


class FieldType(StrEnum):
    """Value type of a structured clinical field (001 §8.5.3.2)."""

    NUMBER = "number"
    INTEGER = "integer"
    STRING = "string"
    BOOLEAN = "boolean"
    ENUM = "enum"
    DATE = "date"
