"""Paths never escape: every file a package, manifest or dataset index names lies inside its root.

A reference is *escaping* when it is absolute, when it leaves the root through ``..``, or when it
(or, for a folder, anything inside it) is a symlink whose target lies outside the root. Escaping
references are errors in ``qc check``, ``package export`` and ``package verify`` alike: never copied,
never reported as merely missing.

The root of a package is the folder the user handed to the command (``package export SRC``), else
the nearest folder above the package holding a ``dataset.json`` (``aimd data phantom`` output), else
the folder above the package's own folder (``case/annotations/p.json`` → ``case/``).

Example
-------
>>> import pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> (root / "ct.nii.gz").write_bytes(b"")
0
>>> escape_reason(root, root / "annotations", "../ct.nii.gz") is None
True
>>> escape_reason(root, root / "annotations", "../../etc/passwd")
'leaves the root folder through ..'
>>> escape_reason(root, root, "/etc/passwd")
'is an absolute path'
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

__all__ = ["ESCAPE_CODE", "default_root", "escape_reason", "inside", "symlinks_out"]

#: Finding code of a reference that leaves its root.
ESCAPE_CODE = "PATH_OUTSIDE_ROOT"


def inside(path: Path, root: Path) -> bool:
    """True when ``path`` (resolved, symlinks followed) lies in ``root`` (resolved)."""
    try:
        return Path(os.path.realpath(path)).is_relative_to(Path(os.path.realpath(root)))
    except (OSError, ValueError):
        return False


def symlinks_out(folder: Path, root: Path, limit: int = 20) -> list[Path]:
    """Symlinks under ``folder`` (not followed) whose targets lie outside ``root``; at most ``limit``."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            if p.is_symlink() and not inside(p, root):
                found.append(p)
                if len(found) >= limit:
                    return found
    return found


def escape_reason(root: Path, base_dir: Path, rel: str) -> str | None:
    """Why ``rel`` (relative to ``base_dir``) escapes ``root``, or ``None`` when it stays inside."""
    if PurePosixPath(rel).is_absolute() or PureWindowsPath(rel).is_absolute() or PureWindowsPath(rel).drive:
        return "is an absolute path"
    lexical = Path(os.path.normpath(base_dir.absolute() / Path(*PurePosixPath(rel).parts)))
    if not lexical.is_relative_to(Path(os.path.normpath(root.absolute()))):
        return "leaves the root folder through .."
    if (lexical.exists() or lexical.is_symlink()) and not inside(lexical, root):
        return "is a symlink whose target lies outside the root folder"
    if lexical.is_dir() and not lexical.is_symlink():
        out = symlinks_out(lexical, root, limit=1)
        if out:
            return f"holds a symlink ({out[0].name}) whose target lies outside the root folder"
    return None


def default_root(package_path: Path) -> Path:
    """The nearest folder above ``package_path`` with a ``dataset.json``, else its folder's parent."""
    start = package_path.absolute().parent
    for folder in [start, *start.parents]:
        if (folder / "dataset.json").is_file():
            return folder
    return start.parent
