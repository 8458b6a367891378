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

from pydantic import ValidationError

from aimd.annotation.io import validation_message
from aimd.core.config import QCSettings, get_settings
from aimd.core.errors import ConfigError, InvalidInputError

__all__ = ["QCConfig", "load_qc_config"]


class QCConfig(QCSettings):
    """Every threshold of automatic QC and agreement, with the clause that asks for it (defaults: the
    ``[qc]`` table of ``aimd.toml`` through :class:`aimd.core.config.Settings`)."""

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
    """QC thresholds: the settings' ``[qc]`` table (``aimd.toml``), then a TOML or JSON file (a ``[qc]`` table or
    top-level keys), then ``overrides``.

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
    base = QCConfig.model_validate(get_settings().qc.model_dump())  # aimd.toml [qc] / AIMD_QC__*
    return base.with_overrides({**values, **clean}, where=str(path) if path else "QC overrides")
