"""The export manifest and version index (001 §10.1.5 hashes, sizes, references; §10.2.4; §11.5.2).

``manifest.json`` lists every file of one exported version with its SHA-256, size, role and the files
it references; ``versions.json`` at the export root lists the versions with each manifest's SHA-256,
parent version, freeze state and any forced-export reason, so a changed manifest is detected too.

Example
-------
>>> m = Manifest(version="1.0", created="2025-03-12T10:25:00+00:00", aimd_version="0.1.0",
...              files=[ManifestEntry(path="a.json", sha256="0" * 64, size=2, role="annotation_package")])
>>> m.compute_content_sha256() == Manifest.model_validate(m.model_dump()).compute_content_sha256()
True
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aimd.annotation.io import validation_message
from aimd.core.atomic import atomic_write_json
from aimd.core.errors import InvalidInputError, SchemaError
from aimd.core.hashing import sha256_bytes

__all__ = [
    "MANIFEST_NAME",
    "ROOT_ROLES",
    "VERSIONS_NAME",
    "Manifest",
    "ManifestEntry",
    "VersionIndex",
    "VersionRecord",
    "read_manifest",
    "read_versions",
    "version_dir_name",
    "write_versions",
]

MANIFEST_NAME = "manifest.json"
VERSIONS_NAME = "versions.json"
Role = Literal[
    "annotation_package",
    "image",
    "dicom_series",
    "mask",
    "transform",
    "text",
    "dicom_seg",
    "coco",
    "qc_record",
    "taxonomy",
    "template",
    "description",
    "other",
]
ROOT_ROLES = frozenset({"annotation_package", "dicom_seg", "coco", "qc_record", "taxonomy", "template", "description"})
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ManifestEntry(_Model):
    """One exported file."""

    path: str = Field(description="POSIX path relative to the version folder")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    role: Role
    references: list[str] = Field(default_factory=list, description="files this one refers to")


class ForcedExport(_Model):
    """Why a package with QC errors was exported anyway."""

    reason: str = Field(min_length=1)
    error_count: int
    codes: list[str]


class Changes(_Model):
    """Difference from the parent version."""

    parent: str
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    changed: list[str] = Field(default_factory=list)


class Manifest(_Model):
    """Every file of one exported version."""

    format: Literal["aimd-annotation-export"] = "aimd-annotation-export"
    manifest_version: Literal["1.0"] = "1.0"
    version: str
    created: str
    aimd_version: str
    parent_version: str | None = None
    forced: ForcedExport | None = None
    packages: list[str] = Field(default_factory=list)
    files: list[ManifestEntry]
    changes: Changes | None = None
    content_sha256: str | None = None

    def compute_content_sha256(self) -> str:
        """SHA-256 over the sorted ``path  sha256  size  role`` lines."""
        lines = sorted(f"{e.path}\t{e.sha256}\t{e.size}\t{e.role}" for e in self.files)
        return sha256_bytes("\n".join(lines).encode("utf-8"))

    def entry(self, path: str) -> ManifestEntry | None:
        """The entry of ``path``."""
        return next((e for e in self.files if e.path == path), None)


class VersionRecord(_Model):
    """One version in ``versions.json``."""

    version: str
    path: str
    created: str
    manifest_sha256: str
    parent: str | None = None
    frozen: bool = True
    forced_reason: str | None = None


class VersionIndex(_Model):
    """``versions.json``: the versions of one export folder, oldest first."""

    format: Literal["aimd-annotation-export-versions"] = "aimd-annotation-export-versions"
    versions: list[VersionRecord] = Field(default_factory=list)

    def get(self, version: str) -> VersionRecord | None:
        """The record of ``version``."""
        return next((v for v in self.versions if v.version == version), None)


def version_dir_name(version: str) -> str:
    """Folder name of a version: ``1.0`` → ``v1.0`` (``v1.0`` stays)."""
    if not _VERSION.match(version):
        raise InvalidInputError(
            f"invalid version {version!r}",
            where="--version",
            hint="use letters, digits, '.', '_' or '-', e.g. 1.0 or 2025.03-rc1",
        )
    return version if version.startswith("v") else f"v{version}"


def _read(path: Path, model: type[BaseModel], what: str) -> Any:
    if not path.is_file():
        raise InvalidInputError(f"{what} is missing", where=str(path), hint="is this an aimd export folder?")
    try:
        return model.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise SchemaError(f"{what} is not valid JSON: {err}", where=str(path)) from None
    except ValidationError as err:
        raise SchemaError(f"invalid {what}:\n{validation_message(err)}", where=str(path)) from None


def read_manifest(version_dir: str | Path) -> Manifest:
    """The manifest of an exported version folder."""
    return _read(Path(version_dir) / MANIFEST_NAME, Manifest, "manifest")  # type: ignore[no-any-return]


def read_versions(root: str | Path) -> VersionIndex:
    """``versions.json`` of an export root (empty when the root is new)."""
    path = Path(root) / VERSIONS_NAME
    return _read(path, VersionIndex, "version index") if path.exists() else VersionIndex()  # type: ignore[no-any-return]


def write_versions(root: str | Path, index: VersionIndex) -> None:
    """Write ``versions.json`` atomically (readable by all, like the versions it indexes)."""
    path = Path(root) / VERSIONS_NAME
    atomic_write_json(path, index.model_dump(mode="json"))
    os.chmod(path, 0o644)
