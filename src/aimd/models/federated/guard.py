"""Proof that a process never opens a site's files: an audit hook on ``open`` (PEP 578).

Federated averaging promises that no image leaves its site. In Flower's simulation the server
runs in the driver process and every client in its own Ray worker process, so the promise holds
exactly when the driver process opens no file below any site folder while the federation runs.
:class:`SiteFileGuard` checks that with the interpreter's audit events: every ``open`` (built-in
``open``, ``io.open``, ``os.open``, ``Path.open``/``read_bytes``, NumPy and nibabel file reads all
raise it) whose path lies below a guarded folder is recorded and refused with
:class:`SiteDataAccessError`, so a server that tried to read a site's data fails the run instead of
silently reading it.

An audit hook cannot be removed, so one hook is installed per process and does nothing unless a
guard is active.

Example
-------
>>> import tempfile, pathlib
>>> site = pathlib.Path(tempfile.mkdtemp())
>>> (site / "ct.nii.gz").write_bytes(b"x")
1
>>> with SiteFileGuard([site]) as guard:
...     try:
...         (site / "ct.nii.gz").read_bytes()
...     except SiteDataAccessError as err:
...         print(err.message)
a site's file was opened outside its site
>>> [p.name for p in guard.attempts]
['ct.nii.gz']
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aimd.core.errors import PermissionDeniedError

_active: list[SiteFileGuard] = []
_lock = threading.Lock()
_installed = False


class SiteDataAccessError(PermissionDeniedError):
    """A guarded process tried to open a file of a site's data."""


def _path_of(arg: Any) -> str | None:
    if isinstance(arg, int):
        return None  # an already-open descriptor: its open was checked when it was made
    if isinstance(arg, bytes):
        return os.fsdecode(arg)
    if isinstance(arg, str | os.PathLike):
        return os.fspath(arg)
    return None


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or not _active or not args:
        return
    raw = _path_of(args[0])
    if raw is None:
        return
    path = os.path.abspath(raw)
    for guard in tuple(_active):
        guard.check(path)


def _install() -> None:
    global _installed
    with _lock:
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True


class SiteFileGuard:
    """While active (``with``), refuse and record every ``open`` of a file below ``folders`` in this process."""

    def __init__(self, folders: Iterable[str | Path]) -> None:
        roots = set()
        for folder in folders:
            roots.add(os.path.abspath(os.fspath(folder)))
            roots.add(os.path.realpath(os.fspath(folder)))
        self.roots = tuple(sorted(r.rstrip(os.sep) + os.sep for r in roots))
        self.attempts: list[Path] = []

    def covers(self, path: str) -> bool:
        """Whether ``path`` (absolute) lies below a guarded folder."""
        return path.startswith(self.roots) or os.path.realpath(path).startswith(self.roots)

    def check(self, path: str) -> None:
        """Record and refuse ``path`` if it lies below a guarded folder."""
        if self.covers(path):
            self.attempts.append(Path(path))
            raise SiteDataAccessError(
                "a site's file was opened outside its site",
                where=path,
                hint="site data is read by that site's client only; the server gets parameters and metrics",
            )

    def __enter__(self) -> SiteFileGuard:
        _install()
        with _lock:
            _active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with _lock:
            _active.remove(self)


__all__ = ["SiteDataAccessError", "SiteFileGuard"]
