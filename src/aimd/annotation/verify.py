"""Verify an exported version: hashes, sizes, completeness, references, geometry, version, freeze.

001 §10.2.4 (export checks, frozen read-only versions, key-file consistency), §10.1.5 (hashes, sizes,
references), §6.6.2 (dimension, coordinate and orientation checks against the image, version
association) and §11.5.2 (frozen versions). Every problem is a :class:`~aimd.core.findings.Finding`:

* the manifest changed since export (its SHA-256 is in ``versions.json``) or is inconsistent;
* a file changed (size or SHA-256), is missing, or is extra (on disk, not in the manifest);
* a reference points at a file not in the manifest; an image, mask or transform nobody references;
* a package that no longer parses, names another version, or whose masks no longer fit its image;
* a file or folder that is writable again.

Example
-------
>>> import tempfile, pathlib
>>> from aimd.phantoms import generate_dataset
>>> from aimd.annotation.simulate import simulate_annotators
>>> from aimd.annotation.export import export_packages
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> _ = generate_dataset(out / "ph", cases=1, seed=6, size=32, workers=1)
>>> res = export_packages(simulate_annotators(out / "ph", 1, seed=0), out / "exp", "1.0")
>>> [f.code for f in verify_export(out / "exp")]
[]
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from aimd.annotation.io import read_sources
from aimd.annotation.manifest import (
    MANIFEST_NAME,
    ROOT_ROLES,
    VERSIONS_NAME,
    Manifest,
    VersionRecord,
    read_manifest,
    read_versions,
)
from aimd.annotation.paths import ESCAPE_CODE, escape_reason, inside
from aimd.annotation.qc.context import QCCache, QCContext
from aimd.annotation.qc.files import check_files
from aimd.annotation.qc.geometry import check_image_files, check_mask_geometry
from aimd.annotation.taxonomy import Taxonomy
from aimd.core.errors import AimdError, InvalidInputError
from aimd.core.findings import Finding, Severity
from aimd.core.hashing import sha256_file

__all__ = ["verify_export"]


def _f(code: str, severity: str, clause: str, message: str, hint: str = "", **loc: object) -> Finding:
    return Finding(
        code=code,
        severity=Severity(severity),
        clause=clause,
        message=message,
        hint=hint,
        location={k: v for k, v in loc.items() if v is not None},
    )


def _files(vdir: Path, manifest: Manifest, version: str) -> list[Finding]:
    out = []
    listed = {e.path for e in manifest.files}
    on_disk = {p.relative_to(vdir).as_posix() for p in vdir.rglob("*") if p.is_file() and not p.is_symlink()}
    on_disk -= {MANIFEST_NAME}
    for link in sorted(p for p in vdir.rglob("*") if p.is_symlink()):
        rel = link.relative_to(vdir).as_posix()
        out.append(
            _f(
                ESCAPE_CODE if not inside(link, vdir) else "FILE_SYMLINK",
                "error",
                "001 §10.2.4",
                f"{rel} is a symlink (to {os.readlink(link)}); an export holds only regular files",
                "restore the exported file in its place",
                version=version,
                file=rel,
            )
        )
    bad_paths = set()
    for e in manifest.files:
        reason = escape_reason(vdir, vdir, e.path)
        if reason is not None:
            bad_paths.add(e.path)
            out.append(
                _f(
                    ESCAPE_CODE,
                    "error",
                    "001 §10.1.5",
                    f"manifest entry {e.path} {reason}",
                    "a manifest lists only files inside its version folder; re-export the version",
                    version=version,
                    file=MANIFEST_NAME,
                    field="files[].path",
                )
            )
    for rel in sorted(on_disk - listed):
        out.append(
            _f(
                "FILE_EXTRA",
                "error",
                "001 §10.2.4",
                f"{rel} is not in the manifest",
                "remove it, or export a new version that includes it",
                version=version,
                file=rel,
            )
        )
    for e in manifest.files:
        path = vdir / e.path
        if e.path in bad_paths:
            continue
        if e.path not in on_disk:
            out.append(
                _f(
                    "FILE_MISSING",
                    "error",
                    "001 §10.2.4",
                    f"{e.path} ({e.role}) is missing",
                    "restore it from a backup of this version",
                    version=version,
                    file=e.path,
                )
            )
        elif path.stat().st_size != e.size or sha256_file(path) != e.sha256:
            out.append(
                _f(
                    "FILE_CHANGED",
                    "error",
                    "001 §10.2.4",
                    f"{e.path} ({e.role}) changed since export (size or SHA-256 differs)",
                    "restore the exported file; changes need a new version",
                    version=version,
                    file=e.path,
                )
            )
    referenced = {r for e in manifest.files for r in e.references}
    for e in manifest.files:
        for r in e.references:
            if r not in listed:
                out.append(
                    _f(
                        "REFERENCE_DANGLING",
                        "error",
                        "001 §10.1.5",
                        f"{e.path} references {r}, which is not in the manifest",
                        version=version,
                        file=e.path,
                    )
                )
        if e.role not in ROOT_ROLES and e.path not in referenced:
            out.append(
                _f(
                    "FILE_UNREFERENCED",
                    "error",
                    "001 §10.1.5",
                    f"{e.path} ({e.role}) is referenced by no package",
                    "remove it or reference it",
                    version=version,
                    file=e.path,
                )
            )
    return out


def _packages(vdir: Path, manifest: Manifest, version: str, taxonomy: Taxonomy | None) -> list[Finding]:
    out = []
    listed = {e.path for e in manifest.files}
    cache = QCCache()
    for rel in manifest.packages:
        path = vdir / rel
        if not path.is_file():
            continue  # reported as missing
        try:
            sources = read_sources(path, root=vdir)
        except AimdError as err:
            out.append(
                _f(
                    "PACKAGE_INVALID",
                    "error",
                    "001 §10.2.4",
                    f"{rel} no longer parses: {err.message}",
                    "restore the exported package",
                    version=version,
                    file=rel,
                )
            )
            continue
        for source in sources:
            pkg = source.package
            if pkg.metadata.version != version:
                out.append(
                    _f(
                        "PACKAGE_VERSION_MISMATCH",
                        "error",
                        "001 §6.6.2",
                        f"{rel} says version {pkg.metadata.version}, the export is version {version}",
                        "packages and export must name the same version",
                        version=version,
                        file=rel,
                    )
                )
            escaping = {ref for ref, *_ in source.escapes()}
            for ref, role, owner, reason in source.escapes():
                out.append(
                    _f(
                        ESCAPE_CODE,
                        "error",
                        "001 §10.1.5",
                        f"{rel} references {ref} ({role.value} of {owner}), which {reason}",
                        "an exported package references only files of its own version folder",
                        version=version,
                        file=rel,
                        field=role.value,
                        owner=owner,
                    )
                )
            for ref, role, owner in pkg.referenced_files():
                if ref in escaping:
                    continue
                target = source.resolve(ref).resolve()
                inside = target.is_relative_to(vdir.resolve())
                rel_target = target.relative_to(vdir.resolve()).as_posix() if inside else str(target)
                in_manifest = rel_target in listed or any(x.startswith(rel_target + "/") for x in listed)
                if not in_manifest:
                    out.append(
                        _f(
                            "PACKAGE_REFERENCE_NOT_IN_MANIFEST",
                            "error",
                            "001 §10.1.5",
                            f"{rel} references {ref} ({role.value} of {owner}), which the manifest does not hold",
                            version=version,
                            file=rel,
                        )
                    )
            ctx = QCContext.build(source, taxonomy=taxonomy, cache=cache)
            for check in (check_files, check_image_files, check_mask_geometry):
                out += [
                    f.model_copy(update={"location": {**f.location, "version": version}})
                    for f in check(ctx)
                    if f.severity is not Severity.INFO and f.code not in ("FILE_UNREFERENCED", ESCAPE_CODE)
                ]
    return out


def _writable(vdir: Path, version: str) -> list[Finding]:
    writable = [
        p for p in [vdir, *vdir.rglob("*")] if os.lstat(p).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    ]
    if not writable:
        return []
    first = writable[0].relative_to(vdir).as_posix() or "."
    return [
        _f(
            "NOT_READ_ONLY",
            "warning",
            "001 §11.5.2",
            f"{len(writable)} file(s)/folder(s) of the frozen version are writable (e.g. {first})",
            "re-freeze the version (chmod a-w) and check who changed it",
            version=version,
            file=first,
        )
    ]


def _verify_version(vdir: Path, record: VersionRecord | None, taxonomy: Taxonomy | None) -> list[Finding]:
    label = record.version if record else vdir.name
    if not vdir.is_dir():
        return [
            _f(
                "VERSION_MISSING",
                "error",
                "001 §11.5.2",
                f"version folder {vdir.name} is missing",
                "restore it: frozen versions are kept",
                version=label,
            )
        ]
    try:
        manifest = read_manifest(vdir)
    except AimdError as err:
        return [_f("MANIFEST_INVALID", "error", "001 §10.1.5", err.message, version=label, file=MANIFEST_NAME)]
    out = []
    if record is not None and sha256_file(vdir / MANIFEST_NAME) != record.manifest_sha256:
        out.append(
            _f(
                "MANIFEST_CHANGED",
                "error",
                "001 §10.2.4",
                f"manifest.json differs from the one recorded in {VERSIONS_NAME} at export",
                "restore the exported manifest",
                version=label,
                file=MANIFEST_NAME,
            )
        )
    if manifest.content_sha256 != manifest.compute_content_sha256():
        out.append(
            _f(
                "MANIFEST_INCONSISTENT",
                "error",
                "001 §10.1.5",
                "the manifest's content hash does not match its file list",
                version=label,
                file=MANIFEST_NAME,
            )
        )
    if record is not None and manifest.version != record.version:
        out.append(
            _f(
                "VERSION_MISMATCH",
                "error",
                "001 §6.6.2",
                f"manifest says version {manifest.version}, the index says {record.version}",
                version=label,
            )
        )
    out += _files(vdir, manifest, manifest.version)
    out += _packages(vdir, manifest, manifest.version, taxonomy)
    out += _writable(vdir, manifest.version)
    return out


def verify_export(path: str | Path, version: str | None = None, *, taxonomy: Taxonomy | None = None) -> list[Finding]:
    """Findings for an export root (every version, or ``version``) or one version folder.

    Example
    -------
    >>> import tempfile, pathlib
    >>> try:
    ...     verify_export(pathlib.Path(tempfile.mkdtemp()))
    ... except InvalidInputError as e:
    ...     print("not an aimd export" in e.message)
    True
    """
    p = Path(path)
    if (p / VERSIONS_NAME).is_file():
        index = read_versions(p)
        records = [r for r in index.versions if version is None or r.version == version]
        if version is not None and not records:
            raise InvalidInputError(
                f"version {version} is not in this export",
                where=str(p),
                hint=f"known versions: {[r.version for r in index.versions]}",
            )
        out = []
        for r in records:
            out += _verify_version(p / r.path, r, taxonomy)
        listed = {r.path for r in index.versions}
        for extra in sorted(d for d in p.iterdir() if d.is_dir() and (d / MANIFEST_NAME).is_file()):
            if version is None and extra.name not in listed:
                out.append(
                    _f(
                        "VERSION_NOT_IN_INDEX",
                        "error",
                        "001 §11.5.2",
                        f"version folder {extra.name} is not in {VERSIONS_NAME}",
                        "versions are only added by `aimd package export`",
                        file=extra.name,
                    )
                )
        return out
    if (p / MANIFEST_NAME).is_file():
        record = None
        if (p.parent / VERSIONS_NAME).is_file():
            record = next((r for r in read_versions(p.parent).versions if r.path == p.name), None)
        return _verify_version(p, record, taxonomy)
    raise InvalidInputError(
        "not an aimd export (no versions.json or manifest.json)",
        where=str(p),
        hint="pass the folder `aimd package export` wrote, or one of its version folders",
    )
