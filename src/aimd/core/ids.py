"""Identifiers: DICOM UIDs under the aimd root, and short stable ids.

Example
-------
>>> uid = deterministic_uid("case-001", "series")
>>> uid == deterministic_uid("case-001", "series") and len(uid) <= 64
True
"""

from __future__ import annotations

import hashlib
import uuid

# UUID-derived DICOM root (2.25 = ISO/ITU-T UUID arc, PS3.5 B.2): no registration needed.
UID_ROOT = "2.25."


def deterministic_uid(*parts: str) -> str:
    """A valid DICOM UID (≤64 chars) derived from ``parts``: same parts, same UID."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()[:16]
    return UID_ROOT + str(int.from_bytes(digest, "big"))


def random_uid() -> str:
    """A fresh random DICOM UID."""
    return UID_ROOT + str(uuid.uuid4().int)


def short_id(*parts: str, length: int = 12) -> str:
    """A short hex id derived from ``parts``."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


__all__ = ["UID_ROOT", "deterministic_uid", "random_uid", "short_id"]
