"""Read and write annotation packages: JSON (one package or a list) and JSON Lines (001 App. C.2).

Every problem is a :class:`~aimd.core.errors.SchemaError` naming the file, the line (JSON Lines) and
the field path (``annotations[2].data.bbox``) with the value received, so the fix is obvious.
Writes are atomic.

Example
-------
>>> import tempfile, pathlib
>>> from aimd.annotation.schema import AnnotationPackage
>>> pkg = AnnotationPackage.model_validate({"task_id": "T1", "image": {"uid": "1.2", "modality": "CT",
...     "shape": [4, 4, 2], "spacing": [1, 1, 1], "origin": [0, 0, 0]},
...     "metadata": {"annotator": "a", "version": "v1"}})
>>> path = pathlib.Path(tempfile.mkdtemp()) / "p.json"
>>> save_package(pkg, path)
>>> load_package(path).task_id
'T1'
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from aimd.annotation.paths import default_root, escape_reason, inside
from aimd.annotation.schema import AnnotationPackage, FileRole
from aimd.core.atomic import atomic_write_text
from aimd.core.errors import InvalidInputError, SchemaError
from aimd.core.logging import get_logger

log = get_logger(__name__)

__all__ = [
    "PackageSource",
    "discover_packages",
    "is_package_file",
    "load_package",
    "load_packages",
    "package_to_json",
    "parse_package",
    "read_sources",
    "resolve_ref",
    "save_package",
    "save_packages_jsonl",
    "validation_message",
]

_MAX_ERRORS = 5


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def validation_message(err: ValidationError, limit: int = _MAX_ERRORS) -> str:
    """One line per problem: ``field 'a.b[0]': message (got value)``, at most ``limit`` lines.

    Example
    -------
    >>> try:
    ...     AnnotationPackage.model_validate({"task_id": "T"})
    ... except ValidationError as e:
    ...     print(validation_message(e).splitlines()[0])
    field 'image': Field required
    """
    lines = []
    for item in err.errors()[:limit]:
        field = _loc(item["loc"])
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown field (not part of the 001 App. C package schema)"
        got = item.get("input")
        shown = (
            ""
            if item["type"] in ("missing", "extra_forbidden") or isinstance(got, dict)
            else (f" (got {json.dumps(got, default=str, ensure_ascii=False)[:80]})")
        )
        lines.append(f"field '{field}': {msg}{shown}")
    more = len(err.errors()) - limit
    if more > 0:
        lines.append(f"... and {more} more problem(s)")
    return "\n".join(lines)


def parse_package(obj: Any, *, where: str) -> AnnotationPackage:
    """Validate a decoded JSON object as a package; problems raise :class:`SchemaError` at ``where``."""
    if not isinstance(obj, dict):
        raise SchemaError(
            f"an annotation package must be a JSON object, got {type(obj).__name__}",
            where=where,
            hint="see `aimd annotation schema` for the format",
        )
    try:
        return AnnotationPackage.model_validate(obj)
    except ValidationError as err:
        raise SchemaError(
            f"invalid annotation package:\n{validation_message(err)}",
            where=where,
            hint="fix the named fields; `aimd annotation schema` prints the JSON Schema",
        ) from None


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise InvalidInputError(
            "annotation package file does not exist", where=str(path), hint="pass a .json or .jsonl package file"
        )
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise SchemaError(
            f"not UTF-8 text (byte {err.start})", where=str(path), hint="save the package as UTF-8 JSON"
        ) from None


def _decode(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SchemaError(
            f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}", where=where, hint="fix the JSON syntax"
        ) from None


@dataclass(frozen=True)
class PackageSource:
    """A package with the file it came from (``line`` for JSON Lines) and its base folder."""

    package: AnnotationPackage
    path: Path
    line: int | None = None
    #: Folder every referenced file must lie in (see :mod:`aimd.annotation.paths`); ``None``: the default.
    root: Path | None = None

    @property
    def base_dir(self) -> Path:
        """Folder that relative file paths of the package start from."""
        return self.path.parent

    @property
    def where(self) -> str:
        """``file`` or ``file:line`` for messages."""
        return f"{self.path}:{self.line}" if self.line is not None else str(self.path)

    def resolve(self, rel: str) -> Path:
        """Absolute path of a file the package refers to."""
        return resolve_ref(self.base_dir, rel)

    @property
    def root_dir(self) -> Path:
        """The folder the package's references must stay in."""
        return self.root if self.root is not None else default_root(self.path)

    def escapes(self) -> list[tuple[str, FileRole, str, str]]:
        """``(reference, role, owner, reason)`` for every reference that leaves :attr:`root_dir`."""
        root = self.root_dir
        out = []
        for rel, role, owner in self.package.referenced_files():
            reason = escape_reason(root, self.base_dir, rel)
            if reason is not None:
                out.append((rel, role, owner, reason))
        return out


def read_sources(path: str | Path, *, root: Path | None = None) -> list[PackageSource]:
    """Every package in a ``.json`` file (object or list) or a ``.jsonl`` file (one per line).

    ``root`` is the folder the packages' references must stay in (default: see
    :func:`aimd.annotation.paths.default_root`).

    Example
    -------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.jsonl"
    >>> _ = p.write_text('{"task_id": "T"}\\n')
    >>> try:
    ...     read_sources(p)
    ... except SchemaError as e:
    ...     print(e.where.endswith("x.jsonl:1"))
    True
    """
    p = Path(path)
    text = _read_text(p)
    if p.suffix.lower() == ".jsonl":
        out = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                where = f"{p}:{number}"
                out.append(PackageSource(parse_package(_decode(line, where), where=where), p, number, root))
        if not out:
            raise SchemaError("JSON Lines file holds no package", where=str(p), hint="one package per line")
        return out
    obj = _decode(text, str(p))
    if isinstance(obj, list):
        return [PackageSource(parse_package(o, where=f"{p}[{i}]"), p, None, root) for i, o in enumerate(obj)]
    return [PackageSource(parse_package(obj, where=str(p)), p, None, root)]


def load_packages(path: str | Path) -> list[AnnotationPackage]:
    """Every package in a JSON or JSON Lines file."""
    return [s.package for s in read_sources(path)]


def load_package(path: str | Path) -> AnnotationPackage:
    """The single package in ``path``; a file with several is an error naming how many."""
    sources = read_sources(path)
    if len(sources) != 1:
        raise SchemaError(
            f"expected one package, found {len(sources)}",
            where=str(path),
            hint="use load_packages for JSON Lines or list files",
        )
    return sources[0].package


def package_to_json(package: AnnotationPackage, *, indent: int | None = 2) -> str:
    """The package as JSON text (``None`` fields left out)."""
    return json.dumps(package.model_dump(mode="json", exclude_none=True), indent=indent, ensure_ascii=False)


def save_package(package: AnnotationPackage, path: str | Path) -> None:
    """Write one package as JSON, atomically."""
    atomic_write_text(path, package_to_json(package) + "\n")


def save_packages_jsonl(packages: list[AnnotationPackage], path: str | Path) -> None:
    """Write packages as JSON Lines, atomically (file paths inside stay relative to its folder)."""
    atomic_write_text(path, "".join(package_to_json(p, indent=None) + "\n" for p in packages))


def is_package_file(path: str | Path) -> bool:
    """True when ``path`` is a JSON/JSONL file whose first object has ``task_id`` and ``image``."""
    p = Path(path)
    if p.suffix.lower() not in (".json", ".jsonl") or not p.is_file():
        return False
    try:
        with open(p, encoding="utf-8") as handle:
            head = handle.readline() if p.suffix.lower() == ".jsonl" else handle.read()
        obj = json.loads(head)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if isinstance(obj, list):
        obj = obj[0] if obj else None
    return isinstance(obj, dict) and "task_id" in obj and "image" in obj


def discover_packages(root: str | Path) -> list[Path]:
    """Package files under a folder (sorted), or ``[root]`` for a file.

    Folders are walked without following symlinks; a symlinked file whose target lies outside
    ``root`` is left out (and logged).

    Example
    -------
    >>> import tempfile, pathlib
    >>> discover_packages(pathlib.Path(tempfile.mkdtemp()))
    []
    """
    r = Path(root)
    if r.is_file():
        return [r]
    if not r.is_dir():
        raise InvalidInputError("path does not exist", where=str(r), hint="pass a package file or a folder")
    found = []
    for dirpath, _dirs, names in os.walk(r, followlinks=False):  # never walks through a symlinked folder
        for name in names:
            p = Path(dirpath) / name
            if p.suffix.lower() not in (".json", ".jsonl"):
                continue
            if p.is_symlink() and not inside(p, r):
                log.warning("package.symlink_skipped", path=str(p), target=os.path.realpath(p))
                continue
            if is_package_file(p):
                found.append(p)
    return sorted(found)


def resolve_ref(base_dir: Path, rel: str) -> Path:
    """``base_dir / rel`` for a relative POSIX path."""
    return base_dir.joinpath(*PurePosixPath(rel).parts)
