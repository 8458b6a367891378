"""QC thresholds (001 §9.1.1 note 2: fixed in the task's QC plan), loadable from TOML/JSON or a template.

Example
-------
>>> QCConfig().registration_max_error_mm, QCConfig(dice_second_review=0.9).dice_special_review
(3.0, 0.75)
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aimd.annotation.io import validation_message
from aimd.core.errors import ConfigError, InvalidInputError

__all__ = ["QCConfig", "load_qc_config"]


class QCConfig(BaseModel):
    """Every threshold of automatic QC and agreement, with the clause that asks for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spacing_rtol: float = Field(1e-3, gt=0, description="mask vs image spacing, relative (001 §8.4 a)")
    origin_atol_mm: float = Field(1e-3, gt=0, description="mask vs image origin, mm (001 §8.4 a)")
    direction_atol: float = Field(1e-4, gt=0, description="mask vs image direction (001 §8.4 a)")
    hole_min_voxels: int = Field(1, ge=1, description="enclosed background voxels that make a hole (§9.3.1 a)")
    slice_jump_mm: float = Field(2.0, ge=0, description="in-plane centroid shift between adjacent slices (§9.3.1 a)")
    slice_overlap_min: float = Field(
        0.1, ge=0, le=1, description="adjacent-slice overlap / smaller area below this is a jump"
    )
    registration_max_error_mm: float = Field(3.0, gt=0, description="registration error limit, 3–5 mm (§8.5.1.3)")
    lab_gap_days: int = Field(90, ge=0, description="image–lab gap needing a time-deviation label (§8.5.3.4)")
    dice_second_review: float = Field(0.85, ge=0, le=1, description="Dice below: second review (§8.4 c)")
    dice_special_review: float = Field(0.75, ge=0, le=1, description="Dice below: special review (§9.2)")
    box_iou_review: float = Field(0.5, ge=0, le=1, description="box IoU below: second review (§9.2 b)")
    match_min_iou: float = Field(0.1, ge=0, lt=1, description="objects of two readers match above this IoU")
    kappa_min: float | None = Field(None, ge=-1, le=1, description="kappa below: warning (§9.2 d); off by default")
    icc_form: str = Field("ICC2", description="ICC form for continuous attributes (§9.2 e)")
    check_unreferenced: bool = Field(True, description="report files in the package folder nobody references")

    @model_validator(mode="after")
    def _ordered(self) -> QCConfig:
        if self.dice_special_review > self.dice_second_review:
            raise ValueError(
                f"dice_special_review {self.dice_special_review} must not exceed "
                f"dice_second_review {self.dice_second_review}"
            )
        return self

    def with_overrides(self, overrides: dict[str, Any], *, where: str = "QC overrides") -> QCConfig:
        """A copy with ``overrides`` applied and validated."""
        try:
            return QCConfig.model_validate({**self.model_dump(), **overrides})
        except ValidationError as err:
            raise ConfigError(
                f"invalid QC setting:\n{validation_message(err)}",
                where=where,
                hint="see aimd.annotation.qc.QCConfig for names and ranges",
            ) from None


def load_qc_config(path: str | Path | None = None, **overrides: Any) -> QCConfig:
    """QC thresholds from a TOML or JSON file (a ``[qc]`` table or top-level keys) plus ``overrides``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "qc.toml"
    >>> _ = p.write_text("[qc]\\nregistration_max_error_mm = 5.0\\n")
    >>> load_qc_config(p).registration_max_error_mm
    5.0
    """
    values: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise InvalidInputError("QC config file does not exist", where=str(p), hint="pass a .toml or .json file")
        try:
            raw = (
                tomllib.loads(p.read_text("utf-8")) if p.suffix.lower() == ".toml" else json.loads(p.read_text("utf-8"))
            )
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot parse QC config: {err}", where=str(p), hint="fix the file syntax") from None
        values = raw.get("qc", raw) if isinstance(raw, dict) else {}
    clean = {k: v for k, v in overrides.items() if v is not None}
    return QCConfig().with_overrides({**values, **clean}, where=str(path) if path else "QC overrides")
