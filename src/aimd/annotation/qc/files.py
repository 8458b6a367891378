"""Level-1 file checks: referenced files exist and match their hashes; no orphan files (001 §10.1.5).

A package's own files live in the *asset folder* next to it, named after the package file without
its suffix (``reader_1.json`` → ``reader_1/``); every file there must be referenced by the package.

Example
-------
>>> import pathlib
>>> asset_dir(pathlib.Path("/data/case/annotations/reader_1.json")).name
'reader_1'
"""

from __future__ import annotations

from pathlib import Path

from aimd.annotation.paths import ESCAPE_CODE
from aimd.annotation.qc.context import QCContext
from aimd.core.findings import Finding
from aimd.core.hashing import sha256_file

__all__ = ["asset_dir", "check_files"]


def asset_dir(package_path: Path) -> Path:
    """The folder holding a package's own files (masks, transforms)."""
    return package_path.with_suffix("")


def check_files(ctx: QCContext) -> list[Finding]:
    """Missing files, hash mismatches and unreferenced files in the asset folder."""
    out = []
    referenced: set[Path] = set()
    hashes = {(im.uid, f.path): f.sha256 for im in ctx.package.images() for f in im.files}
    escaping = set()
    for rel, role, owner, reason in ctx.source.escapes():
        escaping.add(rel)
        out.append(
            ctx.finding(
                ESCAPE_CODE,
                "error",
                "001 §10.1.5",
                f"{role.value} file {rel} {reason} ({ctx.source.root_dir})",
                "reference only files inside the dataset folder; copy the file in and fix the reference",
                file=rel,
                field=role.value,
                owner=owner,
            )
        )
    for rel, role, owner in ctx.package.referenced_files():
        if rel in escaping:
            continue
        path = ctx.source.resolve(rel)
        referenced.add(path.resolve())
        if not path.exists():
            out.append(
                ctx.finding(
                    "FILE_MISSING",
                    "error",
                    "001 §10.1.5",
                    f"{role.value} file {rel} does not exist",
                    "restore the file or fix the reference",
                    file=rel,
                    owner=owner,
                )
            )
            continue
        expected = hashes.get((owner, rel))
        if expected and path.is_file() and sha256_file(path) != expected:
            out.append(
                ctx.finding(
                    "FILE_HASH_MISMATCH",
                    "error",
                    "001 §10.1.5",
                    f"{rel} changed: its SHA-256 differs from the one recorded",
                    "restore the original file or update the recorded hash after review",
                    file=rel,
                    owner=owner,
                )
            )
    assets = asset_dir(ctx.source.path)
    if ctx.config.check_unreferenced and assets.is_dir():
        for path in sorted(p for p in assets.rglob("*") if p.is_file() and not p.is_symlink()):
            inside_ref = any(r == path.resolve() or r in path.resolve().parents for r in referenced)
            if not inside_ref:
                rel = path.relative_to(ctx.source.base_dir).as_posix()
                out.append(
                    ctx.finding(
                        "FILE_UNREFERENCED",
                        "warning",
                        "001 §10.1.5",
                        f"{rel} is in the package folder but nothing references it",
                        "reference it from the package or remove it",
                        file=rel,
                    )
                )
    return out
