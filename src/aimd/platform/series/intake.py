"""Import of a de-identified case: its image (the annotated reference series), report text and clinical
fields kept together (001 §10.1.1), refused while identifiers remain (§11.2.1).

Example
-------
>>> [h["kind"] for h in identifier_findings("姓名：张伟 电话：13812345678", "report")]
['NAME', 'PHONE']
"""

from __future__ import annotations

import base64
import binascii
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from aimd.core.errors import InvalidInputError
from aimd.imaging.deid import TextDeidentifier
from aimd.imaging.nifti_io import read_nifti
from aimd.imaging.volume import Volume
from aimd.platform.errors import ConflictError, IdentifiersFoundError
from aimd.platform.models import Case, Project, User
from aimd.store import AuditLog, BlobStore

__all__ = [
    "CaseImport",
    "add_case",
    "identifier_findings",
    "import_case",
    "put_npy",
    "read_image_b64",
    "refuse_identifiers",
    "require_open",
    "store_image",
    "text_findings",
]


class CaseImport(BaseModel):
    """One case: the image (NIfTI, base64), its report text and clinical fields, kept together (§10.1.1)."""

    case_key: str = Field(min_length=1, max_length=200)
    image_nifti_b64: str = Field(min_length=1)
    report_text: str = ""
    fields: dict[str, Any] = Field(default_factory=dict)
    source: dict[str, Any] = Field(default_factory=dict, description="data source (site, device, batch)")
    frame_of_reference_uid: str | None = Field(
        None, max_length=64, description="DICOM FrameOfReferenceUID of the image (series sharing it align by geometry)"
    )


_PSEUDONYM = re.compile(r"^(\[[A-Z]+(-[0-9A-Za-z]+)?\]|[A-Z]{2,12}-[0-9A-Fa-f]{4,})$")
_KEPT_KINDS = ("DATE", "UID")  # de-identification shifts dates and remaps UIDs; they stay in the data


def identifier_findings(text: str, where: str) -> list[dict[str, str]]:
    """Identifiers the de-identification detectors still find in ``text``.

    Pseudonyms and placeholders written by de-identification (``ANON-64E8…``, ``[ADDRESS]``) are not
    identifiers; shifted dates and remapped UIDs are kept by design.

    Example
    -------
    >>> [h["kind"] for h in identifier_findings("姓名：张伟 电话：13812345678", "report")]
    ['NAME', 'PHONE']
    >>> identifier_findings("姓名：ANON-64E88F6B60 住址：[ADDRESS]", "report")
    []
    """
    hits = []
    for r in TextDeidentifier().find(text):
        word = re.match(r"[^\s，。；,;]*", text[r.start :])
        value = (word.group() if word else "").split("：")[-1].split(":")[-1]
        if r.kind in _KEPT_KINDS or _PSEUDONYM.match(value):
            continue
        hits.append({"where": where, "kind": r.kind, "rule": r.rule})
    return hits


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [x for i, v in enumerate(value) for x in _strings(v, f"{path}[{i}]")]
    return []


def text_findings(report_text: str, fields: dict[str, Any]) -> list[dict[str, str]]:
    """Identifiers left in a case's report text and clinical fields."""
    hits = identifier_findings(report_text, "report_text")
    for where, text in _strings(fields, "fields"):
        hits += identifier_findings(text, where)
    return hits


def refuse_identifiers(
    db: Session, audit: AuditLog, actor: User, target: str, detail: dict[str, Any], hits: list[dict[str, str]]
) -> None:
    """Audit the refusal and raise :class:`IdentifiersFoundError` when ``hits`` is not empty."""
    if hits:
        audit.append(actor.username, "import.refused", target, {**detail, "identifiers": hits}, connection=db)
        raise IdentifiersFoundError(hits)


def read_image_b64(b64: str, where: str = "image_nifti_b64") -> tuple[Volume, bytes]:
    """The volume in a base64 NIfTI file and the file's bytes; an unreadable one names ``where``."""
    try:
        raw = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(
            f"{where} is not base64", where=where, hint="send the NIfTI file's bytes base64-encoded"
        ) from None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("image.nii.gz" if raw[:2] == b"\x1f\x8b" else "image.nii")
        path.write_bytes(raw)
        try:
            return read_nifti(path), raw
        except Exception as err:  # nibabel raises many kinds for a damaged file
            raise InvalidInputError(
                f"the image is not a readable NIfTI file ({err})", where=where, hint="send a .nii or .nii.gz file"
            ) from None


def put_npy(blobs: BlobStore, array: Any) -> str:
    """Store ``array`` as ``.npy`` (the bytes of :func:`~aimd.platform.masks.to_npy`), streamed into the
    blob store a chunk at a time (no second copy of the array in memory); returns its SHA-256.

    >>> import tempfile
    >>> from aimd.platform.masks import to_npy
    >>> store, a = BlobStore(tempfile.mkdtemp()), np.arange(12, dtype=np.int16).reshape(3, 2, 2)
    >>> put_npy(store, a) == store.put(to_npy(a))
    True
    """
    with blobs.writer() as out:
        np.save(out, np.ascontiguousarray(array), allow_pickle=False)
    assert out.sha256 is not None
    return out.sha256


def store_image(blobs: BlobStore, volume: Volume, raw: bytes | Path) -> tuple[str, dict[str, Any]]:
    """Store a volume's voxels (``.npy``) and its NIfTI file (its bytes, or the file to stream in); the
    voxels' SHA-256 and the geometry record."""
    arr = volume.array
    image = {
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
        "spacing_zyx": list(volume.spacing[::-1]),
        "spacing": list(volume.spacing),
        "origin": list(volume.origin),
        "direction": np.asarray(volume.direction).tolist(),
        "modality": volume.modality or "CT",
        "nifti_sha256": blobs.put(raw) if isinstance(raw, bytes) else blobs.put_file(raw),
    }
    return put_npy(blobs, arr), image


def require_open(project: Project) -> None:
    if project.frozen:
        raise ConflictError(
            "the project is frozen",
            where=f"project {project.id}",
            hint="open a change request to revise a frozen version",
        )


def _require_new(db: Session, project: Project, case_key: str) -> None:
    if db.scalar(sa.select(Case).where(Case.project_id == project.id, Case.case_key == case_key)):
        raise ConflictError(f"case {case_key!r} is already imported", where="case_key", hint="use a new case key")


def add_case(
    db: Session,
    audit: AuditLog,
    blobs: BlobStore,
    actor: User,
    project: Project,
    spec: Any,
    volume: Volume,
    raw: bytes | Path,
    *,
    frame_of_reference_uid: str | None = None,
    image_extra: dict[str, Any] | None = None,
) -> Case:
    """Store a checked case (``volume`` with its NIfTI file ``raw``: bytes or a path; ``spec`` names its
    case key, report text, fields and source) and audit the import."""
    _require_new(db, project, spec.case_key)
    sha, image = store_image(blobs, volume, raw)
    if frame_of_reference_uid:
        image["frame_of_reference_uid"] = frame_of_reference_uid
    image |= image_extra or {}
    case = Case(
        project_id=project.id,
        case_key=spec.case_key,
        image_sha256=sha,
        image=image,
        report_text=spec.report_text,
        fields=spec.fields,
        source=spec.source,
        imported_by=actor.username,
    )
    db.add(case)
    db.flush()
    audit.append(
        actor.username,
        "import",
        f"case:{case.id}",
        {"project": project.id, "case_key": spec.case_key, "image_sha256": sha, "deid_check": "no identifiers found"},
        connection=db,
    )
    return case


def import_case(
    db: Session, audit: AuditLog, blobs: BlobStore, actor: User, project: Project, spec: CaseImport
) -> Case:
    """Import one de-identified case; a file that still carries identifiers is refused (001 §11.2.1)."""
    require_open(project)
    volume, raw = read_image_b64(spec.image_nifti_b64)
    hits = text_findings(spec.report_text, spec.fields) + identifier_findings(volume.modality or "", "image header")
    refuse_identifiers(db, audit, actor, f"project:{project.id}", {"case_key": spec.case_key}, hits)
    _require_new(db, project, spec.case_key)
    return add_case(
        db, audit, blobs, actor, project, spec, volume, raw, frame_of_reference_uid=spec.frame_of_reference_uid
    )
