"""``[qc]`` in aimd.toml: QC thresholds are core settings (aimd.core.config.QCSettings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aimd.core.errors import ConfigError


def test_qc_table_in_aimd_toml_sets_the_qc_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aimd.annotation.qc import load_qc_config
    from aimd.core.config import get_settings

    toml = tmp_path / "aimd.toml"
    toml.write_text("[qc]\nregistration_max_error_mm = 4.5\ndice_second_review = 0.9\n", encoding="utf-8")
    monkeypatch.setenv("AIMD_CONFIG", str(toml))
    get_settings.cache_clear()
    try:
        assert get_settings().qc.registration_max_error_mm == 4.5
        cfg = load_qc_config()
        assert cfg.registration_max_error_mm == 4.5 and cfg.dice_second_review == 0.9
        assert load_qc_config(registration_max_error_mm=5.0).registration_max_error_mm == 5.0
        toml.write_text("[qc]\ndice_second_review = 0.5\ndice_special_review = 0.8\n", encoding="utf-8")
        get_settings.cache_clear()
        with pytest.raises(ConfigError):
            get_settings()
    finally:
        get_settings.cache_clear()
