"""Records bound to the image: report texts with spans, structured clinical fields, registrations.

001 §8.5.2.2 (text spans with unique ids and semantic types), §8.5.3.2–§8.5.3.4 (typed fields with
units, normal ranges, timestamps and the time-deviation label), §8.5.1.2 / §8.5.1.4 (registration
transform, algorithm and version, error).

Example
-------
>>> StructuredField(id="LAB_AFP", name="AFP", value=15.2, value_type="number", unit="ng/mL").unit
'ng/mL'
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field, model_validator

from aimd.annotation.schema_base import FieldType, SchemaModel, SemanticType

__all__ = [
    "NormalRange",
    "Registration",
    "RegistrationAccuracy",
    "StructuredField",
    "TextDocument",
    "TextSpan",
]


class TextSpan(SchemaModel):
    """A text fragment with a unique id and semantic type (001 §8.5.2.2)."""

    id: str = Field(min_length=1)
    start: int = Field(ge=0, description="character offset (Python str index) of the first character")
    end: int = Field(gt=0, description="offset one past the last character")
    text: str
    semantic_type: SemanticType
    attribute: str | None = Field(None, description="attribute named by an attribute span, e.g. margin")

    @model_validator(mode="after")
    def _ordered(self) -> TextSpan:
        if self.end <= self.start:
            raise ValueError(f"span {self.id!r}: end {self.end} must be greater than start {self.start}")
        return self


class TextDocument(SchemaModel):
    """A report or other text with its spans (001 §8.1 d–e)."""

    id: str = Field(min_length=1)
    kind: str = "report"
    language: str = Field("en", min_length=2)
    text: str
    spans: list[TextSpan] = Field(default_factory=list)
    source_file: str | None = None


class NormalRange(SchemaModel):
    """Reference interval of a numeric field."""

    low: float | None = None
    high: float | None = None


class StructuredField(SchemaModel):
    """A typed clinical field bound to the image (001 §8.5.3.2–§8.5.3.4)."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    value: bool | int | float | str | None
    value_type: FieldType
    unit: str | None = None
    normal_range: NormalRange | None = None
    allowed_values: list[str] | None = None
    timestamp: dt.datetime | dt.date | None = Field(None, description="when the value was measured")
    code: str | None = Field(None, description="e.g. a LOINC code")
    code_system: str | None = None
    time_deviation: bool = Field(False, description="time-deviation label: > 90 days from the image (§8.5.3.4)")
    description: str = ""

    @model_validator(mode="after")
    def _typed(self) -> StructuredField:
        v, t = self.value, self.value_type
        if v is None:
            return self
        ok = {
            FieldType.NUMBER: isinstance(v, int | float) and not isinstance(v, bool),
            FieldType.INTEGER: isinstance(v, int) and not isinstance(v, bool),
            FieldType.STRING: isinstance(v, str),
            FieldType.BOOLEAN: isinstance(v, bool),
            FieldType.ENUM: isinstance(v, str),
            FieldType.DATE: isinstance(v, str) and _is_iso_date(v),
        }[t]
        if not ok:
            raise ValueError(f"field {self.id!r}: value {v!r} is not of type {t.value}")
        if t is FieldType.ENUM and self.allowed_values is not None and v not in self.allowed_values:
            raise ValueError(f"field {self.id!r}: {v!r} is not one of {self.allowed_values}")
        return self


def _is_iso_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------- registration
class RegistrationAccuracy(SchemaModel):
    """How well a registration fits: landmark TRE in mm, or a similarity metric (001 §7.2 h)."""

    metric: str = Field(min_length=1, description="e.g. tre_mm, mattes_mutual_information")
    value: float
    unit: str | None = Field(None, description="'mm' for distances")
    n_landmarks: int | None = Field(None, ge=1)


class Registration(SchemaModel):
    """An image–image registration stored with the package (001 §8.5.1.2, §8.5.1.4)."""

    id: str = Field(min_length=1)
    fixed_image: str = Field(min_length=1, description="uid of the fixed image")
    moving_image: str = Field(min_length=1, description="uid of the moving image")
    transform_file: str = Field(min_length=1, description="ITK transform file, relative path")
    algorithm: str = Field(min_length=1, description="rigid, affine, bspline, ...")
    software: str = Field(min_length=1)
    software_version: str = Field(min_length=1)
    error: RegistrationAccuracy | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
