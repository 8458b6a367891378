"""Safety rules for the platform's settings: a non-loopback bind needs TLS.

Example
-------
>>> from aimd.core.config import PlatformSettings
>>> check_bind(PlatformSettings(host="127.0.0.1"))
>>> try:
...     check_bind(PlatformSettings(host="0.0.0.0"))
... except ConfigError as err:
...     print(err.message)
binding 0.0.0.0 exposes the platform beyond this machine without TLS
"""

from __future__ import annotations

from aimd.core.config import LOOPBACK_HOSTS, PlatformSettings
from aimd.core.errors import ConfigError

__all__ = ["check_bind"]


def check_bind(settings: PlatformSettings) -> None:
    """Refuse a non-loopback bind without a TLS certificate and key (DESIGN: security by default)."""
    loopback = settings.host in LOOPBACK_HOSTS or settings.host.startswith("127.")
    if loopback:
        return
    if not (settings.tls_cert and settings.tls_key):
        raise ConfigError(
            f"binding {settings.host} exposes the platform beyond this machine without TLS",
            where="platform.host",
            hint="bind 127.0.0.1, or pass --tls-cert and --tls-key",
        )
    for path in (settings.tls_cert, settings.tls_key):
        if not path.is_file():
            raise ConfigError("TLS file not found", where=str(path), hint="pass existing certificate and key files")
