"""Where exported files go, how package paths are rewritten, and the export's description document.

:class:`Layout` copies one package's image, mask, transform and text files into the export layout
(images shared by several packages are copied once), rewrites the package's references relative to
its new place, records each file's role and what it references, and hashes everything for the
manifest (001 §10.1.5).

Example
-------
>>> safe_name("1.2.840/ct 01")
'1.2.840_ct_01'
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aimd.annotation.io import PackageSource, save_package
from aimd.annotation.manifest import ForcedExport, ManifestEntry, Role
from aimd.annotation.qc.files import asset_dir
from aimd.annotation.schema import AnnotationData, AnnotationPackage, FileRole, ImageRef
from aimd.annotation.taxonomy import Taxonomy
from aimd.annotation.templates import AnnotationTemplate
from aimd.core.findings import Finding
from aimd.core.hashing import sha256_file

__all__ = ["Layout", "readme_text", "safe_name"]


def safe_name(name: str) -> str:
    """A file-name-safe form of an id."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "item"


class Layout:
    """Builds the file tree of one export version inside ``root`` (a temporary folder)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.roles: dict[str, Role] = {}
        self.refs: dict[str, set[str]] = {}
        self._copied: dict[Path, str] = {}
        self._images: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ bookkeeping
    def add(self, rel: str, role: Role, references: list[str] | set[str]) -> None:
        """Record the role and references of a file already written at ``rel``."""
        self.roles[rel] = role
        self.refs.setdefault(rel, set()).update(references)

    def files_under(self, rel: str) -> list[str]:
        """``rel`` itself, or every file inside it when it is a folder."""
        path = self.root / rel
        if path.is_dir():
            return sorted(p.relative_to(self.root).as_posix() for p in path.rglob("*") if p.is_file())
        return [rel]

    def image_files(self, package_rel: str) -> list[str]:
        """Exported files of a package's main image."""
        return self._images.get(package_rel, [])

    def _unique(self, rel: str) -> str:
        taken = set(self.roles) | set(self._copied.values())
        if rel not in taken and not (self.root / rel).exists():
            return rel
        base = Path(rel)
        stem = base.name[: -len("".join(base.suffixes))] if base.suffixes else base.name
        for n in range(2, 10_000):
            cand = (base.parent / f"{stem}_{n}{''.join(base.suffixes)}").as_posix()
            if cand not in taken and not (self.root / cand).exists():
                return cand
        raise RuntimeError(f"cannot find a free name for {rel}")

    def _copy(self, src: Path, dest_rel: str, role: Role, references: list[str]) -> str:
        key = src.resolve()
        if key in self._copied:
            return self._copied[key]
        dest_rel = self._unique(dest_rel)
        dest = self.root / dest_rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest)
        else:
            shutil.copyfile(src, dest)
        self._copied[key] = dest_rel
        for f in self.files_under(dest_rel):
            self.add(f, role, references)
        return dest_rel

    # ------------------------------------------------------------------ packages
    def add_package(
        self, source: PackageSource, stamp: Callable[[AnnotationPackage], AnnotationPackage]
    ) -> tuple[str, PackageSource]:
        """Copy a package's files, rewrite its references, save it; return its path and new source."""
        pkg = source.package.model_copy(deep=True)
        key = safe_name(pkg.image.case_id or pkg.image.uid)
        stem = safe_name(source.path.stem + (f"_{source.line}" if source.line is not None else ""))
        pkg_rel = self._unique(f"cases/{key}/annotations/{stem}.json")
        stem = Path(pkg_rel).stem
        pkg_dir = f"cases/{key}/annotations"
        assets = asset_dir(source.path).resolve()
        used: set[str] = set()

        def rel_to_pkg(dest_rel: str) -> str:
            used.update(self.files_under(dest_rel))
            return os.path.relpath(self.root / dest_rel, self.root / pkg_dir).replace(os.sep, "/")

        image_files: dict[str, list[str]] = {}
        for image in pkg.images():
            image_files[image.uid] = self._images_of(image, source, key, rel_to_pkg)
        self._images[pkg_rel] = image_files.get(pkg.image.uid, [])

        def own(rel: str, sub: str, role: Role, references: list[str]) -> str:
            src = source.resolve(rel)
            if not src.exists():
                return rel
            inside = src.resolve().is_relative_to(assets)
            tail = src.resolve().relative_to(assets).as_posix() if inside else f"{sub}/{src.name}"
            return rel_to_pkg(self._copy(src, f"{pkg_dir}/{stem}/{tail}", role, references))

        renamed: dict[str, str] = {}
        rejected = pkg.metadata.model_assistance.rejected if pkg.metadata.model_assistance else []
        for ann in [*pkg.annotations, *rejected]:
            refs = image_files.get(ann.image_uid or pkg.image.uid, [])
            payloads: list[AnnotationData] = [ann.data]
            if ann.provenance is not None and ann.provenance.initial is not None:
                payloads.append(ann.provenance.initial)
            for data in payloads:
                if data.mask_file:
                    old = data.mask_file
                    data.mask_file = renamed.setdefault(old, own(old, "files", "mask", refs))
        for old in pkg.label_maps:
            if old not in renamed:
                renamed[old] = own(old, "files", "mask", image_files.get(pkg.image.uid, []))
        pkg.label_maps = {renamed[k]: v for k, v in pkg.label_maps.items()}
        for reg in pkg.registrations:
            refs = image_files.get(reg.fixed_image, []) + image_files.get(reg.moving_image, [])
            reg.transform_file = own(reg.transform_file, "transforms", "transform", refs)
        for doc in pkg.texts:
            if doc.source_file:
                src = source.resolve(doc.source_file)
                if src.exists():
                    doc.source_file = rel_to_pkg(self._copy(src, f"cases/{key}/text/{src.name}", "text", []))
        pkg = stamp(pkg)
        save_package(pkg, self.root / pkg_rel)
        self.add(pkg_rel, "annotation_package", used)
        return pkg_rel, PackageSource(pkg, self.root / pkg_rel)

    def _images_of(
        self, image: ImageRef, source: PackageSource, key: str, rel_to_pkg: Callable[[str], str]
    ) -> list[str]:
        out: list[str] = []
        for ref in image.files:
            src = source.resolve(ref.path)
            if not src.exists():
                continue
            role: Role = "dicom_series" if ref.role is FileRole.DICOM_SERIES else "image"
            dest_rel = self._copy(src, f"cases/{key}/images/{src.name}", role, [])
            ref.path = rel_to_pkg(dest_rel)
            if src.is_file():
                ref.sha256 = sha256_file(src)
            out += self.files_under(dest_rel)
        return out

    def entries(self) -> list[ManifestEntry]:
        """Manifest entries of every file written so far (sorted by path)."""
        out = []
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            rel = path.relative_to(self.root).as_posix()
            out.append(
                ManifestEntry(
                    path=rel,
                    sha256=sha256_file(path),
                    size=path.stat().st_size,
                    role=self.roles.get(rel, "other"),
                    references=sorted(self.refs.get(rel, ())),
                )
            )
        return out


def readme_text(
    version: str,
    exported: list[tuple[str, PackageSource]],
    tax: Taxonomy,
    template: AnnotationTemplate | None,
    forced: ForcedExport | None,
    findings: list[Finding],
    skipped: list[str],
) -> str:
    """The description document of the export (001 §6.6.1 标注说明文档)."""
    tasks = sorted({s.package.task_id for _, s in exported})
    annotators = sorted({s.package.metadata.annotator for _, s in exported})
    n_ann = sum(len(s.package.annotations) for _, s in exported)
    lines: list[Any] = [
        f"# Annotation export, version {version}",
        "",
        f"- tasks: {', '.join(tasks)}",
        f"- packages: {len(exported)}; annotations: {n_ann}",
        f"- annotators: {', '.join(annotators)}",
        f"- taxonomy: {tax.name} {tax.version}",
        f"- template: {template.id} {template.version}" if template else "- template: none",
        f"- level-1 QC: {sum(f.is_error for f in findings)} error(s), "
        f"{sum(f.severity.value == 'warning' for f in findings)} warning(s) (qc/qc_check.json)",
    ]
    if forced is not None:
        lines.append(f"- FORCED EXPORT despite {forced.error_count} QC error(s) {forced.codes}: {forced.reason}")
    lines += [
        "",
        "## Layout",
        "",
        "- `manifest.json`: SHA-256, size, role and references of every file (001 §10.1.5)",
        "- `cases/<case>/images/`: images; `cases/<case>/annotations/`: packages (001 App. C) and masks",
        "- `cases/<case>/seg/`: masks as DICOM SEG; `coco/boxes.json`: boxes as COCO JSON",
        "- `qc/`: QC records; `taxonomy/`: taxonomy and template",
        "",
        "Coordinates: image shape, spacing and origin in (x, y, z); direction columns are the LPS axis",
        "directions; boxes, polygons and points in voxel-edge coordinates (voxel i spans [i, i+1)).",
        "This version is frozen read-only; changes make a new version (001 §11.5.2). Check it with",
        "`aimd package verify <folder>`.",
    ]
    if skipped:
        lines += ["", "## Not exported", "", *(f"- {s}" for s in skipped)]
    return "\n".join(str(x) for x in lines) + "\n"
