"""Export annotation packages as a frozen, hashed, versioned folder (001 §6.6, §10.1.5, §10.2.4, §11.5).

Layout of ``DST/v<version>/`` (001 §6.6.1: annotation files, description document, QC records)::

    manifest.json                     every file: SHA-256, size, role, references
    README.md                         description of the delivery (标注说明文档)
    qc/qc_check.json                  level-1 QC findings per package (+ qc/agreement.json)
    taxonomy/taxonomy.json            taxonomy (and taxonomy/template.json) used
    cases/<case>/images/...           image files (NIfTI, DICOM series folders, radiographs)
    cases/<case>/annotations/<p>.json packages, file paths rewritten relative to themselves
    cases/<case>/annotations/<p>/...  their masks and transforms
    cases/<case>/text/...             report text files
    cases/<case>/seg/<p>.dcm          masks as DICOM SEG (when the image has a DICOM series)
    coco/boxes.json                   boxes as COCO JSON

A package with level-1 QC errors is refused unless forced with a reason, which is recorded in the
manifest, the version index, each package's QC state and audit trail. The version folder is written
atomically and frozen read-only; exporting again needs a new version, which records its parent and
the files changed, and keeps the old one (001 §11.5.2). ``DST/versions.json`` indexes the versions.

Example
-------
>>> import tempfile, pathlib
>>> from aimd.phantoms import generate_dataset
>>> from aimd.annotation.simulate import simulate_annotators
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> _ = generate_dataset(out / "ph", cases=1, seed=6, size=32, workers=1)
>>> pkg = simulate_annotators(out / "ph", 1, seed=0)[0]
>>> res = export_packages(pkg, out / "export", "1.0")
>>> res.version_dir.name, (res.version_dir / "manifest.json").is_file()
('v1.0', True)
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimd import __version__
from aimd.annotation.agreement import AgreementResult
from aimd.annotation.audit import append_audit
from aimd.annotation.coco import export_coco
from aimd.annotation.export_layout import Layout, readme_text
from aimd.annotation.io import PackageSource, discover_packages, read_sources
from aimd.annotation.manifest import (
    MANIFEST_NAME,
    Changes,
    ForcedExport,
    Manifest,
    ManifestEntry,
    VersionRecord,
    read_manifest,
    read_versions,
    version_dir_name,
    write_versions,
)
from aimd.annotation.paths import ESCAPE_CODE
from aimd.annotation.qc import QCCache, findings_summary, run_qc
from aimd.annotation.qc.config import QCConfig, load_qc_config
from aimd.annotation.schema import AnnotationPackage, QCState
from aimd.annotation.seg_export import export_seg
from aimd.annotation.taxonomy import Taxonomy, default_taxonomy
from aimd.annotation.templates import AnnotationTemplate
from aimd.core.atomic import atomic_dir, atomic_write_json
from aimd.core.errors import AimdError, IntegrityError, InvalidInputError
from aimd.core.findings import Finding
from aimd.core.hashing import sha256_file

__all__ = ["ExportRefusedError", "ExportResult", "collect_sources", "export_packages", "freeze"]


class ExportRefusedError(IntegrityError):
    """Packages with level-1 QC errors were not exported (exit code 1)."""

    def __init__(self, findings: list[Finding], where: str) -> None:
        self.findings = findings
        errors = [f for f in findings if f.is_error]
        codes = sorted({f.code for f in errors})
        super().__init__(
            f"{len(errors)} QC error(s) ({', '.join(codes)}): export refused",
            where=where,
            hint="fix them (see `aimd qc check`), or export anyway with --force --reason '...'",
        )


@dataclass
class ExportResult:
    """What an export wrote."""

    root: Path
    version: str
    version_dir: Path
    manifest: Manifest
    findings: list[Finding]
    forced: bool
    seg_files: list[str] = field(default_factory=list)
    coco_file: str | None = None
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON summary."""
        return {
            "root": str(self.root),
            "version": self.version,
            "version_dir": str(self.version_dir),
            "files": len(self.manifest.files),
            "bytes": sum(e.size for e in self.manifest.files),
            "packages": self.manifest.packages,
            "forced": self.forced,
            "forced_reason": self.manifest.forced.reason if self.manifest.forced else None,
            "parent_version": self.manifest.parent_version,
            "changes": self.manifest.changes.model_dump() if self.manifest.changes else None,
            "qc": findings_summary(self.findings),
            "seg_files": self.seg_files,
            "coco_file": self.coco_file,
            "skipped": self.skipped,
            "content_sha256": self.manifest.content_sha256,
        }


def collect_sources(src: str | Path | Sequence[str | Path]) -> list[PackageSource]:
    """Packages from a file, a folder (searched recursively) or a list of them."""
    items = [src] if isinstance(src, str | Path) else list(src)
    roots: dict[Path, Path | None] = {}
    for item in items:
        for f in discover_packages(item):
            roots.setdefault(f.resolve(), Path(item).absolute() if Path(item).is_dir() else None)
    out = [s for f, root in roots.items() for s in read_sources(f, root=root)]
    if not out:
        raise InvalidInputError(
            "no annotation package found",
            where=", ".join(str(i) for i in items),
            hint="pass a package .json/.jsonl file or a folder holding some",
        )
    return out


def refuse_escaping(sources: list[PackageSource]) -> None:
    """Raise :class:`InvalidInputError` when a package references a file outside its root.

    Never overridable (``--force`` exports QC errors, not files from elsewhere on the disk).
    """
    bad = [(s, ref, role, owner, reason) for s in sources for ref, role, owner, reason in s.escapes()]
    if not bad:
        return
    lines = [
        f"{ESCAPE_CODE}: {s.where} field {role.value} ({owner}) references {ref}, which {reason}"
        for s, ref, role, owner, reason in bad[:5]
    ]
    more = f"\n... and {len(bad) - 5} more" if len(bad) > 5 else ""
    raise InvalidInputError(
        f"{len(bad)} reference(s) leave the export's root folder {bad[0][0].root_dir}:\n" + "\n".join(lines) + more,
        where=bad[0][0].where,
        hint="copy the files into the dataset folder and reference them relative to the package",
    )


def freeze(folder: Path) -> None:
    """Make every file and folder under ``folder`` (and itself) read-only (001 §10.2.4, §11.5.2)."""
    for dirpath, _dirnames, filenames in os.walk(folder, topdown=False):
        for name in filenames:
            os.chmod(Path(dirpath) / name, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.chmod(dirpath, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _stamp(pkg: AnnotationPackage, version: str, findings: list[Finding], reason: str | None) -> AnnotationPackage:
    errors = [f for f in findings if f.is_error]
    qc = QCState(
        status="forced" if errors else "passed",
        issues=sorted({f.code for f in findings if f.severity.value != "info"}),
        checked=_now(),
    )
    pkg = pkg.model_copy(update={"metadata": pkg.metadata.model_copy(update={"version": version, "qc": qc})})
    detail = f"exported as version {version}" + (
        f"; forced despite {len(errors)} QC error(s): {reason}" if errors else ""
    )
    return append_audit(pkg, actor="aimd package export", action="export", detail=detail, timestamp=_now())


def _changes(root: Path, parent: str | None, parent_path: str | None, entries: list[ManifestEntry]) -> Changes | None:
    if parent is None or parent_path is None:
        return None
    try:
        old = {e.path: e.sha256 for e in read_manifest(root / parent_path).files}
    except AimdError:
        return Changes(parent=parent)
    new = {e.path: e.sha256 for e in entries}
    return Changes(
        parent=parent,
        added=sorted(new.keys() - old.keys()),
        removed=sorted(old.keys() - new.keys()),
        changed=sorted(p for p in new.keys() & old.keys() if new[p] != old[p]),
    )


def _derived(
    layout: Layout,
    tmp: Path,
    exported: list[tuple[str, PackageSource]],
    tax: Taxonomy,
    seg: bool,
    coco: bool,
    result_seg: list[str],
    skipped: list[str],
) -> str | None:
    if seg:
        for rel, source in exported:
            case = rel.split("/")[1]
            out_rel = f"cases/{case}/seg/{Path(rel).stem}.dcm"
            try:
                export_seg(source, tmp / out_rel, taxonomy=tax)
            except AimdError as err:
                skipped.append(f"DICOM SEG of {rel}: {err.message}")
                continue
            layout.add(out_rel, "dicom_seg", [rel, *layout.image_files(rel)])
            result_seg.append(out_rel)
    if coco and any(a.type.value == "bbox" for _, s in exported for a in s.package.annotations):
        export_coco(
            [s for _, s in exported],
            tmp / "coco/boxes.json",
            taxonomy=tax,
            file_name=lambda s, ref: (s.resolve(ref)).relative_to(tmp).as_posix(),
        )
        layout.add("coco/boxes.json", "coco", [rel for rel, _ in exported])
        return "coco/boxes.json"
    return None


def export_packages(
    src: str | Path | Sequence[str | Path],
    dst: str | Path,
    version: str,
    *,
    force: bool = False,
    reason: str | None = None,
    taxonomy: Taxonomy | None = None,
    template: AnnotationTemplate | None = None,
    config: QCConfig | None = None,
    agreement: AgreementResult | None = None,
    seg: bool = True,
    coco: bool = True,
    progress: Callable[[int], object] | None = None,
) -> ExportResult:
    """Check, copy, hash and freeze packages as version ``version`` of the export folder ``dst``.

    Raises :class:`ExportRefusedError` when QC finds errors and ``force`` is not set; ``force``
    needs a ``reason``. An existing version is never overwritten.
    """
    sources = collect_sources(src)
    refuse_escaping(sources)
    tax = taxonomy or default_taxonomy()
    cfg = config or (
        load_qc_config().with_overrides(template.qc, where=f"template {template.id}") if template else load_qc_config()
    )
    cache = QCCache()
    per_package = {s.where: run_qc(s, taxonomy=tax, template=template, config=cfg, cache=cache) for s in sources}
    findings = [f for fs in per_package.values() for f in fs]
    errors = [f for f in findings if f.is_error]
    if errors and not force:
        raise ExportRefusedError(findings, where=", ".join(sorted({s.where for s in sources}))[:300])
    if errors and not (reason and reason.strip()):
        raise InvalidInputError(
            "a forced export needs a reason",
            where="--reason",
            hint="say why packages with QC errors are exported, e.g. --reason 'arbitration'",
        )
    root = Path(dst)
    index = read_versions(root)
    vname = version_dir_name(version)
    if index.get(version) is not None or (root / vname).exists():
        raise InvalidInputError(
            f"version {version} is already exported and frozen",
            where=str(root / vname),
            hint="a change makes a new version: pass another --version, e.g. 1.1",
        )
    parent = index.versions[-1] if index.versions else None
    seg_files: list[str] = []
    skipped: list[str] = []
    forced = (
        ForcedExport(reason=reason.strip(), error_count=len(errors), codes=sorted({f.code for f in errors}))
        if errors and reason
        else None
    )
    with atomic_dir(root / vname) as tmp:
        layout = Layout(tmp)
        exported = []
        for s in sources:
            rel, new_source = layout.add_package(s, lambda p, s=s: _stamp(p, version, per_package[s.where], reason))
            exported.append((rel, new_source))
            if progress is not None:
                progress(1)
        atomic_write_json(tmp / "taxonomy/taxonomy.json", tax.model_dump(mode="json", exclude_none=True))
        layout.add("taxonomy/taxonomy.json", "taxonomy", [])
        if template is not None:
            atomic_write_json(tmp / "taxonomy/template.json", template.model_dump(mode="json"))
            layout.add("taxonomy/template.json", "template", [])
        qc_record = {
            "format": "aimd-qc-record",
            "kind": "level1",
            "created": _now().isoformat(),
            "aimd_version": __version__,
            "config": cfg.model_dump(),
            "forced": forced.model_dump() if forced else None,
            "packages": {
                rel: {
                    "source": s.where,
                    "summary": findings_summary(per_package[s.where]),
                    "findings": [f.model_dump(mode="json") for f in per_package[s.where]],
                }
                for (rel, _), s in zip(exported, sources, strict=True)
            },
        }
        atomic_write_json(tmp / "qc/qc_check.json", qc_record)
        layout.add("qc/qc_check.json", "qc_record", [rel for rel, _ in exported])
        if agreement is not None:
            atomic_write_json(
                tmp / "qc/agreement.json", {"format": "aimd-qc-record", "kind": "agreement", **agreement.to_dict()}
            )
            layout.add("qc/agreement.json", "qc_record", [rel for rel, _ in exported])
        coco_rel = _derived(layout, tmp, exported, tax, seg, coco, seg_files, skipped)
        (tmp / "README.md").write_text(
            readme_text(version, exported, tax, template, forced, findings, skipped), encoding="utf-8"
        )
        layout.add("README.md", "description", [])
        entries = layout.entries()
        manifest = Manifest(
            version=version,
            created=_now().isoformat(),
            aimd_version=__version__,
            parent_version=parent.version if parent else None,
            forced=forced,
            packages=[rel for rel, _ in exported],
            files=entries,
            changes=_changes(root, parent.version if parent else None, parent.path if parent else None, entries),
        )
        manifest.content_sha256 = manifest.compute_content_sha256()
        atomic_write_json(tmp / MANIFEST_NAME, manifest.model_dump(mode="json"))
        manifest_sha = sha256_file(tmp / MANIFEST_NAME)
        freeze(tmp)
    index.versions.append(
        VersionRecord(
            version=version,
            path=vname,
            created=manifest.created,
            manifest_sha256=manifest_sha,
            parent=parent.version if parent else None,
            forced_reason=forced.reason if forced else None,
        )
    )
    write_versions(root, index)
    return ExportResult(
        root, version, root / vname, manifest, findings, forced is not None, seg_files, coco_rel, skipped
    )
