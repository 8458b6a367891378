"""Settings: defaults < ``aimd.toml`` < ``AIMD_*`` environment variables.

Nested groups use ``__`` in environment names, e.g. ``AIMD_GEOMETRY__SPACING_RTOL=0.02``.
The TOML file is ``./aimd.toml`` unless ``AIMD_CONFIG`` names another one.

Example
-------
>>> s = get_settings()
>>> s.geometry.spacing_rtol > 0
True
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from aimd.core.errors import ConfigError


class GeometrySettings(BaseModel):
    """Tolerances of the geometry checks of 001 §7.2."""

    spacing_rtol: float = Field(0.01, gt=0, description="relative tolerance for uniform slice spacing")
    gap_factor: float = Field(1.5, gt=1, description="a step this many times the median spacing is a gap")
    orthonormal_atol: float = Field(1e-3, gt=0, description="tolerance for |d_i . d_j - delta_ij|")
    position_atol_mm: float = Field(1e-3, gt=0, description="two slices closer than this are duplicates")
    ct_hu_min: float = Field(-1024.0 - 1e-6, description="lowest plausible CT value after rescale (HU)")
    ct_hu_max: float = Field(3071.0 + 1e-6, description="highest plausible CT value after rescale (HU)")
    out_of_range_fraction: float = Field(
        1e-3, ge=0, le=1, description="fraction of voxels out of range that makes an error"
    )


class QualitySettings(BaseModel):
    """Thresholds of the image-quality checks of 001 §7.2 g (warnings: exclude or note)."""

    max_pixel_spacing_mm: float = Field(2.0, gt=0, description="coarser in-plane pixel spacing is low resolution")
    max_slice_spacing_mm: float = Field(5.0, gt=0, description="thicker slice spacing is flagged")
    min_matrix: int = Field(128, ge=1, description="smaller rows/columns are flagged")
    ct_max_noise_hu: float = Field(60.0, gt=0, description="CT noise σ above this (HU) is high")
    min_snr: float = Field(5.0, gt=0, description="non-CT foreground mean / noise σ below this is low")
    min_contrast_to_noise: float = Field(10.0, gt=0, description="(p99 − p1) / σ below this is low contrast")
    blur_ratio: float = Field(0.6, gt=0, lt=1, description="below this fraction of the median sharpness: blurred")
    noise_ratio: float = Field(3.0, gt=1, description="a slice above this multiple of the median noise is noisy")


class QCSettings(BaseModel):
    """Every threshold of automatic QC and agreement (001 §8–§9), with the clause that asks for it; ``[qc]`` in
    ``aimd.toml``, ``AIMD_QC__*`` in the environment."""

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
    def _ordered(self) -> QCSettings:
        if self.dice_special_review > self.dice_second_review:
            raise ValueError(
                f"dice_special_review {self.dice_special_review} must not exceed "
                f"dice_second_review {self.dice_second_review}"
            )
        return self


class DeidSettings(BaseModel):
    """De-identification options (001 §7.3, §11.2)."""

    date_shift_max_days: int = Field(365, ge=1, description="per-patient date shift is drawn in ±this range")
    keep_private_tags: bool = False


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class PlatformSettings(BaseModel):
    """The annotation platform server (001 §10, §11): database, bind, sessions and account rules."""

    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default SQLite platform.db in the data folder; "
        "PostgreSQL as postgresql+psycopg://user@host/db",
    )
    host: str = Field("127.0.0.1", description="bind address; anything but loopback needs TLS")
    port: int = Field(8600, ge=1, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    session_minutes: int = Field(480, ge=1, description="a login expires after this many minutes")
    lockout_attempts: int = Field(5, ge=1, description="failed logins in a row that lock the account")
    lockout_minutes: int = Field(15, ge=1, description="how long a locked account stays locked")
    password_min_length: int = Field(12, ge=8)
    mfa_roles: list[str] = Field(
        default_factory=lambda: ["admin", "reviewer", "arbiter", "qc"],
        description="roles that must use TOTP (001 §11.3.1); add every role to require it for all",
    )
    blob_gc_grace_seconds: float = Field(
        600.0,
        ge=0,
        description="a blob written or re-used this recently is never garbage-collected "
        "(covers transactions still in flight)",
    )
    serve_token: SecretStr | None = Field(
        None,
        description="bearer token (scope infer) the platform sends to aimd serve for pre-labels from a served model",
    )
    audit_retention_days: int | None = Field(
        None,
        ge=1,
        description="audit entries older than this are archived, then purged (001 §11.3.1 '按规定留存'); "
        "unset keeps every entry in the database",
    )
    import_workers: int = Field(
        1, ge=1, le=16, description="DICOM study imports run at once by the serving process (each in a thread)"
    )


class Settings(BaseSettings):
    """All aimd settings."""

    model_config = SettingsConfigDict(
        env_prefix="AIMD_",
        env_nested_delimiter="__",
        toml_file="aimd.toml",
        extra="forbid",
    )

    env: Literal["development", "production", "test"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    log_file: Path | None = Field(None, description="append log lines here instead of stderr")
    data_dir: Path = Path("aimd-data")
    seed: int = 0
    lab: str = Field("", description="testing laboratory named in the conformity report's title block")
    geometry: GeometrySettings = GeometrySettings()
    quality: QualitySettings = QualitySettings()
    deid: DeidSettings = DeidSettings()
    qc: QCSettings = QCSettings()
    platform: PlatformSettings = PlatformSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get("AIMD_CONFIG", "aimd.toml")
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment and ``aimd.toml``; a bad value is a :class:`ConfigError`.

    ``AIMD_CONFIG`` naming a file that does not exist is an error too (never silently ignored).
    """
    named = os.environ.get("AIMD_CONFIG")
    if named and not Path(named).is_file():
        raise ConfigError(
            "AIMD_CONFIG names a settings file that does not exist",
            where=named,
            hint="point AIMD_CONFIG at an existing aimd.toml, or unset it to use ./aimd.toml and the defaults",
        )
    try:
        return Settings(**overrides)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"invalid setting {field!r}: {first['msg']}",
            where=os.environ.get("AIMD_CONFIG", "aimd.toml / AIMD_* environment"),
            hint=f"set AIMD_{field.upper().replace('.', '__')} to a valid value",
        ) from None
    except Exception as err:  # malformed TOML
        raise ConfigError(
            str(err), where=os.environ.get("AIMD_CONFIG", "aimd.toml"), hint="fix the TOML syntax"
        ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` after changing env)."""
    return load_settings()


__all__ = [
    "LOOPBACK_HOSTS",
    "DeidSettings",
    "GeometrySettings",
    "PlatformSettings",
    "QCSettings",
    "QualitySettings",
    "Settings",
    "get_settings",
    "load_settings",
]
