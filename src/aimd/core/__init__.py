"""aimd.core — settings, errors, logging, hashing, ids, findings and atomic io."""

from aimd.core.atomic import atomic_dir, atomic_file, atomic_write_bytes, atomic_write_json, atomic_write_text
from aimd.core.config import Settings, get_settings, load_settings
from aimd.core.errors import (
    AimdError,
    ConfigError,
    GeometryError,
    IntegrityError,
    InvalidInputError,
    PermissionDeniedError,
    SchemaError,
)
from aimd.core.findings import Finding, Severity, has_errors
from aimd.core.hashing import sha256_bytes, sha256_file, sha256_tree
from aimd.core.ids import deterministic_uid, random_uid, short_id
from aimd.core.logging import configure_logging, get_logger

__all__ = [
    "AimdError",
    "ConfigError",
    "Finding",
    "GeometryError",
    "IntegrityError",
    "InvalidInputError",
    "PermissionDeniedError",
    "SchemaError",
    "Settings",
    "Severity",
    "atomic_dir",
    "atomic_file",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "configure_logging",
    "deterministic_uid",
    "get_logger",
    "get_settings",
    "has_errors",
    "load_settings",
    "random_uid",
    "sha256_bytes",
    "sha256_file",
    "sha256_tree",
    "short_id",
]
