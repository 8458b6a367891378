"""Settings of one running inference service (``aimd serve`` options, or ``AIMD_SERVE_*`` variables).

Security defaults (DESIGN.md): bind to loopback; a non-loopback address is refused unless TLS
(certificate and key) is configured — bearer tokens are always required except on
live/ready/metrics.

Example
-------
>>> s = ServeSettings(data_dir="/tmp/aimd-serve")
>>> s.database, s.loopback
('/tmp/aimd-serve/serving.db', True)
>>> try:
...     ServeSettings(data_dir="/tmp/x", host="0.0.0.0").check_bind()
... except Exception as err:
...     print(err.where)
--host
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aimd.core.errors import ConfigError
from aimd.serving.findings import GradeThresholds
from aimd.serving.inputs import UploadLimits


class ServeSettings(BaseModel):
    """Everything the app factory needs; no work happens at construction."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(description="results, job inputs and (by default) the SQLite database")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default <data_dir>/serving.db")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    pacs_url: str | None = None
    pacs_user: str | None = None
    pacs_password: str | None = None
    pacs_timeout: float = Field(30.0, gt=0)
    pacs_retries: int = Field(
        3, ge=0, le=20, description="repeats of a PACS call that failed for a transient reason (down, slow, 5xx)"
    )
    pacs_backoff: float = Field(0.5, ge=0, description="seconds before the first repeat; doubled each time")
    pacs_backoff_max: float = Field(8.0, ge=0, description="longest wait between repeats")
    limits: UploadLimits = UploadLimits()
    grades: GradeThresholds = GradeThresholds()
    rate_per_minute: int = Field(600, gt=0, description="requests per token per minute")
    max_batch: int = Field(8, ge=1)
    max_wait_ms: float = Field(10.0, ge=0)
    queue_size: int = Field(64, ge=1)
    request_timeout: float = Field(300.0, gt=0)
    explain: bool = True
    explain_method: Literal["gradcam", "gradcampp"] = Field(
        "gradcam", description="gradient explanation of PyTorch models: Grad-CAM or Grad-CAM++"
    )
    occlusion_mask: int = Field(8, ge=2, description="occlusion patch size (pixels)")
    index_path: Path | None = Field(None, description="embedding index of reference cases (similar cases)")
    job_workers: int = Field(1, ge=1)
    workers: int = Field(1, ge=1, le=64, description="inference worker processes, each loading every model")
    dicom_port: int | None = Field(None, ge=0, le=65535)
    ae_title: str = "AIMD"
    series_idle_seconds: float = Field(3.0, gt=0)
    dimse_model: str | None = None

    @property
    def database(self) -> str:
        """The database URL or SQLite path in use."""
        return self.database_url or str(self.data_dir / "serving.db")

    @property
    def loopback(self) -> bool:
        """True when the service binds to a loopback address only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def tls(self) -> bool:
        """True when a certificate and key are configured."""
        return self.tls_cert is not None and self.tls_key is not None

    def check_bind(self) -> None:
        """Refuse a non-loopback bind without TLS; check the TLS files exist."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError(
                "--tls-cert and --tls-key go together",
                where="--tls-cert",
                hint="pass both files, or neither for loopback-only use",
            )
        for opt, path in (("--tls-cert", self.tls_cert), ("--tls-key", self.tls_key)):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"{path} does not exist", where=opt, hint="pass a PEM file")
        if not self.loopback and not self.tls:
            raise ConfigError(
                f"refusing to serve on {self.host} without TLS",
                where="--host",
                hint="bind to 127.0.0.1, or pass --tls-cert and --tls-key (tokens are always required)",
            )


__all__ = ["ServeSettings"]
