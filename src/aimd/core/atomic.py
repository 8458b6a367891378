"""Atomic writes: a reader sees the old file or the complete new one, never a half.

Files are written to a temporary sibling, flushed and fsynced, then renamed over the
target. Folders are built in a temporary sibling and renamed into place as a whole.
Files get the usual permissions (0666 less the umask, like ``open``), folders 0777 less the umask;
secrets pass ``mode=0o600`` and are never readable by others, not even for a moment.

Example
-------
>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "out.json"
>>> atomic_write_text(target, '{"ok": true}')
>>> target.read_text()
'{"ok": true}'
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def default_mode(*, directory: bool = False) -> int:
    """0666 (files) or 0777 (folders) less the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def fsync_dir(path: Path) -> None:
    """fsync folder ``path`` so a rename into it survives a crash (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically (temp file + fsync + rename).

    ``mode``: permission bits (default: 0666 less the umask); ``0o600`` for secrets.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, default_mode() if mode is None else mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8", *, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode(encoding), mode=mode)


def atomic_write_json(path: str | Path, obj: Any, *, indent: int | None = 2, mode: int | None = None) -> None:
    """Serialise ``obj`` as UTF-8 JSON (keys sorted, non-ASCII kept) and write it atomically."""
    text = json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False, default=str)
    atomic_write_text(path, text + "\n", mode=mode)


@contextlib.contextmanager
def atomic_file(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write with any library; rename it to ``path`` on success.

    ``suffix`` lets libraries that choose a format by extension (``.nii.gz``) see the right one.

    Example
    -------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_file(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.fchmod(fd, default_mode())
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``path`` in one rename.

    On any error the temporary folder is removed and ``path`` is left untouched.
    With ``overwrite=False`` an existing non-empty ``path`` is an error. A regular file or a symlink
    at ``path`` is never replaced, even with ``overwrite`` (``--force`` replaces folders only).
    """
    from aimd.core.errors import InvalidInputError

    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise InvalidInputError(
            f"output is {'a symlink' if path.is_symlink() else 'a regular file'}, not a folder; "
            "aimd never replaces it with a folder",
            where=str(path),
            hint="choose a new folder name",
        )
    if path.exists() and not overwrite and (path.is_file() or any(path.iterdir())):
        raise InvalidInputError(
            "output already exists and is not empty", where=str(path), hint="choose a new folder or remove it"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, default_mode(directory=True))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(path.parent)


__all__ = [
    "atomic_dir",
    "atomic_file",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "default_mode",
    "fsync_dir",
]
