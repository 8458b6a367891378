"""File and folder names of the output: identifying parts replaced, clashes resolved, JSON references kept."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aimd.core.hashing import sha256_file
from aimd.imaging.deid.text import TextDeidentifier

_NAME_SUFFIX = re.compile(r"(?:\.[A-Za-z][A-Za-z0-9]{0,4})+$")
_NAME_SEPARATORS = re.compile(r"[_.\-]+")


def _clean_name(part: str, engine: TextDeidentifier) -> str:
    """One file or folder name with identifiers replaced; ``_``/``-``/``.`` are read as spaces."""
    suffix = _NAME_SUFFIX.search(part)
    stem, ext = (part[: suffix.start()], suffix.group(0)) if suffix and suffix.start() > 0 else (part, "")
    direct = engine.deidentify(stem)
    spaced = _NAME_SEPARATORS.sub(" ", stem)
    loose = engine.deidentify(spaced) if spaced != stem else direct
    if loose.changed and (not direct.changed or len(loose.replacements) > len(direct.replacements)):
        new_stem = loose.text.replace(" ", "_")
    else:
        new_stem = direct.text
    return (new_stem or "file") + ext if new_stem != stem else part


def _unique(rel: Path, taken: set[str], tmp: Path) -> Path:
    candidate, n = rel, 2
    while candidate.as_posix() in taken or (tmp / candidate).exists():
        suffix = _NAME_SUFFIX.search(rel.name)
        stem, ext = (rel.name[: suffix.start()], suffix.group(0)) if suffix and suffix.start() > 0 else (rel.name, "")
        candidate = rel.with_name(f"{stem}_{n}{ext}")
        n += 1
    return candidate


def _refresh(node: Any, root: Path, here: Path, renamed: dict[str, str]) -> bool:
    changed = False
    if isinstance(node, dict):
        path = node.get("path") or node.get("file")
        if isinstance(path, str) and isinstance(node.get("sha256"), str):
            path = renamed.get(path, path)
            for base in (here, root):
                candidate = base / path
                if candidate.is_file() and root in candidate.resolve().parents:
                    new_hash, size = sha256_file(candidate), candidate.stat().st_size
                    if node["sha256"] != new_hash:
                        node["sha256"] = new_hash
                        changed = True
                    for size_key in ("bytes", "size", "size_bytes"):
                        if size_key in node and node[size_key] != size:
                            node[size_key] = size
                            changed = True
                    if node.get("path") != path and "path" in node:
                        node["path"] = path
                        changed = True
                    break
        for value in node.values():
            changed |= _refresh(value, root, here, renamed)
    elif isinstance(node, list):
        for value in node:
            changed |= _refresh(value, root, here, renamed)
    return changed
