"""Ed25519 signing of release manifests (002 §5.2.1, §6.6.1 f) with ``cryptography``.

Example
-------
>>> import tempfile, pathlib
>>> key = pathlib.Path(tempfile.mkdtemp()) / "release.key"
>>> pub = generate_key(key)
>>> sig = sign(key, b"manifest")
>>> verify(pub.read_bytes(), b"manifest", sig)
True
>>> verify(pub.read_bytes(), b"manifest!", sig)
False
>>> oct(key.stat().st_mode & 0o777)
'0o600'
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aimd.core.atomic import atomic_write_bytes
from aimd.core.errors import InvalidInputError
from aimd.core.hashing import sha256_bytes


def generate_key(path: str | Path) -> Path:
    """Write a new private key (PEM, mode 0600) at ``path`` and its public key at ``path.pub``."""
    path = Path(path)
    if path.exists():
        raise InvalidInputError("key file already exists", where=str(path), hint="choose another path")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    atomic_write_bytes(path, pem)
    os.chmod(path, 0o600)
    pub = path.with_name(path.name + ".pub")
    atomic_write_bytes(pub, public_pem(key.public_key()))
    return pub


def public_pem(key: Ed25519PublicKey) -> bytes:
    """PEM text of a public key."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private(path: str | Path) -> Ed25519PrivateKey:
    """Read a private key; refuses one that others can read (002 §4.1.1 hardening)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(
            "signing key not found", where=str(path), hint="create one with `aimd iq keygen release.key`"
        )
    if path.stat().st_mode & 0o077:
        raise InvalidInputError(
            f"signing key is readable by others (mode {oct(path.stat().st_mode & 0o777)})",
            where=str(path),
            hint=f"chmod 600 {path}",
        )
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInputError("not an Ed25519 private key", where=str(path), hint="use `aimd iq keygen`")
    return key


def sign(key_path: str | Path, data: bytes) -> bytes:
    """Base64 signature of ``data``."""
    return base64.b64encode(load_private(key_path).sign(data))


def fingerprint(public_key_pem: bytes) -> str:
    """SHA-256 of the public key's PEM (first 16 hex digits)."""
    return sha256_bytes(public_key_pem.strip())[:16]


def verify(public_key_pem: bytes, data: bytes, signature_b64: bytes) -> bool:
    """Whether ``signature_b64`` is a valid signature of ``data``."""
    key = serialization.load_pem_public_key(public_key_pem)
    if not isinstance(key, Ed25519PublicKey):
        return False
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


__all__ = ["fingerprint", "generate_key", "load_private", "public_pem", "sign", "verify"]
