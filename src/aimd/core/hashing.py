"""SHA-256 helpers for files, folders and in-memory data.

Example
-------
>>> sha256_bytes(b"aimd")[:12]
'5d7258def117'
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks.

    Example
    -------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"; _ = p.write_bytes(b"aimd")
    >>> sha256_file(p) == sha256_bytes(b"aimd")
    True
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(root: str | Path, files: Iterable[Path] | None = None) -> str:
    """One SHA-256 over a folder: the sorted relative paths and each file's hash.

    Renaming, adding, removing or changing any file changes the result.
    """
    root = Path(root)
    paths = sorted(files if files is not None else (p for p in root.rglob("*") if p.is_file()))
    digest = hashlib.sha256()
    for path in paths:
        rel = path.relative_to(root).as_posix()
        digest.update(rel.encode() + b"\0" + sha256_file(path).encode() + b"\n")
    return digest.hexdigest()


__all__ = ["sha256_bytes", "sha256_file", "sha256_tree"]
