"""A self-signed TLS certificate for a site's first installation (002 §5.1.1: credentials over TLS).

Example
-------
>>> import tempfile, pathlib
>>> key, cert = self_signed(pathlib.Path(tempfile.mkdtemp()), "127.0.0.1")
>>> oct(key.stat().st_mode & 0o777), cert.read_bytes()[:27]
('0o600', b'-----BEGIN CERTIFICATE-----')
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aimd.core.atomic import atomic_write_bytes


def self_signed(folder: Path, host: str = "127.0.0.1", *, days: int = 365) -> tuple[Path, Path]:
    """Write ``key.pem`` (mode 0600) and ``cert.pem`` for ``host`` into ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = folder / "key.pem", folder / "cert.pem"
    atomic_write_bytes(
        key_path,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    os.chmod(key_path, 0o600)
    atomic_write_bytes(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


__all__ = ["self_signed"]
