"""`Finding`: one result of a check, tied to the clause it proves.

Every checker in aimd returns ``list[Finding]``.

Example
-------
>>> f = Finding(code="SLICE_MISSING", severity=Severity.ERROR, clause="001 §7.2 e",
...             location={"slice": 12}, message="slice missing between z=10.0 and z=14.0",
...             hint="re-export the full series from the PACS")
>>> f.is_error
True
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    """How serious a finding is."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Finding(BaseModel):
    """One result of a check."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(description="stable UPPER_SNAKE identifier of the check outcome")
    severity: Severity
    clause: str = Field(description='the clause this check implements, e.g. "001 §7.2 e"')
    location: dict[str, Any] = Field(default_factory=dict, description="file, tag, slice, annotation id ...")
    message: str
    hint: str = ""

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def has_errors(findings: Iterable[Finding]) -> bool:
    """True when any finding is an error."""
    return any(f.is_error for f in findings)


__all__ = ["Finding", "Severity", "has_errors"]
