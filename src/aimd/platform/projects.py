"""Projects, de-identified case import, task distribution, progress, freezing, change requests and
destruction (001 §6.2–§6.4, App. A, §10.1.1, §11.1.1, §11.2.1, §11.4.2, §11.5.2).

Every function takes an open ORM session and the audit log; the caller commits, so a state change and
its audit entry are stored together.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field, field_validator
from sqlalchemy.orm import Session

from aimd.annotation.taxonomy import default_taxonomy
from aimd.core.errors import InvalidInputError
from aimd.platform.errors import ConflictError, IdentifiersFoundError, NotFoundError, require_unfrozen
from aimd.platform.models import (
    Case,
    CaseSeries,
    ChangeRequest,
    Decision,
    DestructionRecord,
    Project,
    ProjectMember,
    Submission,
    Task,
    User,
    utcnow,
)
from aimd.platform.rbac import CLASSIFICATIONS, Role, visible_project_ids
from aimd.platform.series.intake import (
    CaseImport,
    identifier_findings,
    import_case,
    read_image_b64,
    store_image,
)
from aimd.platform.series.registration import DEFAULT_MAX_MI
from aimd.platform.series.store import series_blobs
from aimd.store import AuditLog, BlobStore

__all__ = [
    "APP_A_ELEMENTS",
    "CaseImport",
    "ConflictError",
    "IdentifiersFoundError",
    "NotFoundError",
    "ProjectCreate",
    "TaskDefinition",
    "collect_blobs",
    "create_project",
    "destroy_project",
    "distribute",
    "get_project",
    "identifier_findings",
    "import_case",
    "member_ids",
    "pick_assignee",
    "progress",
    "read_image_b64",
    "referenced_blobs",
    "require_unfrozen",
    "store_image",
    "visible_projects",
]

APP_A_ELEMENTS = ("goal", "modalities", "objects_and_outputs", "alignment_rules", "qc_and_traceability")
"""Elements every written task definition holds (001 §6.3.3, App. A.2–A.3)."""


class TaskDefinition(BaseModel):
    """The written task definition (001 §6.3.3 / App. A): every element is required and non-empty."""

    goal: str = Field(min_length=1, description="task goal (App. A.2.1)")
    modalities: list[str] = Field(min_length=1, description="data modalities (App. A.2.2)")
    objects_and_outputs: str = Field(min_length=1, description="annotation objects and deliverables (A.2.3–A.2.5)")
    alignment_rules: str = Field(min_length=1, description="cross-modal alignment rules (A.3.4)")
    qc_and_traceability: str = Field(min_length=1, description="QC and traceability elements (A.3.5, A.5)")
    roles: str = Field("", description="roles and responsibilities (A.3.6)")
    annotation_method: str = Field("", description="manual, model-assisted ... (A.2.3)")


class ProjectCreate(BaseModel):
    """A new project."""

    name: str = Field(min_length=1, max_length=200)
    task_definition: TaskDefinition
    label_map: dict[int, str] = Field(min_length=1, description="mask value → taxonomy label code")
    readers: int = Field(2, ge=1, le=10, description="K readers per case")
    sampling_ratio: float = Field(0.1, ge=0, le=1, description="QC sampling-inspection ratio (§9.3)")
    dice_threshold: float = Field(0.85, ge=0, le=1)
    kappa_threshold: float = Field(0.75, ge=-1, le=1)
    registration_max_mi: float = Field(
        DEFAULT_MAX_MI,
        ge=-10,
        le=0,
        description="worst final Mattes MI (SimpleITK's negative MI, lower is better) a series registration "
        "may reach before it is marked failed (001 §6.4.1)",
    )
    classification: str = Field("internal", description=f"one of {list(CLASSIFICATIONS)} (001 §11.1.1)")

    @field_validator("classification")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CLASSIFICATIONS:
            raise ValueError(f"classification must be one of {list(CLASSIFICATIONS)}, got {value!r}")
        return value

    @field_validator("label_map")
    @classmethod
    def _codes(cls, value: dict[int, str]) -> dict[int, str]:
        tax = default_taxonomy()
        unknown = sorted(c for c in value.values() if tax.get(c) is None)
        if unknown:
            raise ValueError(f"label codes {unknown} are not in taxonomy {tax.name} {tax.version}")
        if any(v < 1 or v > 65535 for v in value):
            raise ValueError("mask values must be 1 … 65535 (0 is background)")
        return value


def visible_projects(db: Session, user: User) -> list[Project]:
    """Projects the user may see (:func:`aimd.platform.rbac.visible_project_ids` decides)."""
    query = sa.select(Project).where(Project.id.in_(visible_project_ids(user))).order_by(Project.id)
    return list(db.scalars(query))


def member_ids(db: Session, project: Project) -> set[int] | None:
    """Ids of the project's members, or ``None`` when the project is open to every cleared account."""
    if not project.members_only:
        return None
    return set(db.scalars(sa.select(ProjectMember.user_id).where(ProjectMember.project_id == project.id)))


def get_project(db: Session, user: User, project_id: int) -> Project:
    """The project if the user may see it, else :class:`NotFoundError`."""
    project = db.get(Project, project_id)
    visible = db.scalar(visible_project_ids(user).where(Project.id == project_id)) if project else None
    if project is None or visible is None:
        raise NotFoundError(f"no project {project_id}", where="project", hint="list /api/v1/projects")
    return project


def create_project(db: Session, audit: AuditLog, actor: User, spec: ProjectCreate) -> Project:
    """Create a project with its task definition, taxonomy, label map, thresholds and K."""
    if db.scalar(sa.select(Project).where(Project.name == spec.name)) is not None:
        raise ConflictError(f"project {spec.name!r} exists", where="name", hint="choose another name")
    tax = default_taxonomy()
    project = Project(
        name=spec.name,
        task_definition=spec.task_definition.model_dump(),
        taxonomy={"name": tax.name, "version": tax.version},
        label_map={str(k): v for k, v in spec.label_map.items()},
        template={},
        readers=spec.readers,
        sampling_ratio=spec.sampling_ratio,
        dice_threshold=spec.dice_threshold,
        kappa_threshold=spec.kappa_threshold,
        registration_max_mi=spec.registration_max_mi,
        classification=spec.classification,
        created_by=actor.username,
    )
    db.add(project)
    db.flush()
    audit.append(actor.username, "project.create", f"project:{project.id}", spec.model_dump(mode="json"), connection=db)
    return project


def _load(db: Session, role: str, members: set[int] | None = None) -> dict[int, int]:
    users = db.scalars(sa.select(User).where(User.role == role, User.disabled.is_(False))).all()
    counts = dict(
        db.execute(
            sa.select(Task.assignee_id, sa.func.count()).where(Task.status == "open").group_by(Task.assignee_id)
        ).all()
    )
    return {u.id: int(counts.get(u.id, 0)) for u in users if members is None or u.id in members}


def pick_assignee(db: Session, role: str, exclude: set[int], project: Project | None = None) -> int | None:
    """The least-loaded active user of ``role`` not in ``exclude`` (nobody reviews their own work);
    for a members-only ``project``, a member."""
    members = member_ids(db, project) if project is not None else None
    load = {u: n for u, n in _load(db, role, members).items() if u not in exclude}
    return min(load, key=lambda u: (load[u], u)) if load else None


def distribute(
    db: Session, audit: AuditLog, actor: User, project: Project, annotators: list[str] | None = None
) -> list[Task]:
    """Give every case without annotate tasks K tasks, to K different annotators, balanced by open load
    (members only, for a members-only project)."""
    query = sa.select(User).where(User.role == Role.ANNOTATOR, User.disabled.is_(False))
    if annotators:
        query = query.where(User.username.in_(annotators))
    pool = list(db.scalars(query))
    members = member_ids(db, project)
    if members is not None:
        outside = sorted(u.username for u in pool if u.id not in members)
        if annotators and outside:
            raise ConflictError(
                f"{', '.join(outside)} not on the member list of project {project.id}",
                where="annotators",
                hint="add them as members first",
            )
        pool = [u for u in pool if u.id in members]
    if len(pool) < project.readers:
        raise ConflictError(
            f"{project.readers} readers per case need {project.readers} annotators, {len(pool)} available",
            where="annotators",
            hint="add annotator accounts" + (" to the member list" if members is not None else ""),
        )
    load = _load(db, Role.ANNOTATOR)
    created: list[Task] = []
    cases = db.scalars(sa.select(Case).where(Case.project_id == project.id).order_by(Case.id)).all()
    for case in cases:
        if db.scalar(sa.select(Task.id).where(Task.case_id == case.id, Task.kind == "annotate").limit(1)):
            continue
        chosen = sorted(pool, key=lambda u: (load.get(u.id, 0), u.id))[: project.readers]
        for reader, user in enumerate(chosen, start=1):
            task = Task(project_id=project.id, case_id=case.id, kind="annotate", assignee_id=user.id, reader=reader)
            db.add(task)
            load[user.id] = load.get(user.id, 0) + 1
            created.append(task)
    db.flush()
    audit.append(
        actor.username,
        "distribute",
        f"project:{project.id}",
        {"tasks": [(t.id, t.case_id, t.assignee_id) for t in created]},
        connection=db,
    )
    return created


def progress(db: Session, project: Project) -> dict[str, Any]:
    """Tasks by kind and status, per person, and cases accepted (§6.4: progress per project and person)."""
    rows = db.execute(
        sa.select(Task.kind, Task.status, User.username, sa.func.count())
        .join(User, User.id == Task.assignee_id, isouter=True)
        .where(Task.project_id == project.id)
        .group_by(Task.kind, Task.status, User.username)
    ).all()
    per_person: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for kind, status, username, n in rows:
        key = f"{kind}.{status}"
        totals[key] = totals.get(key, 0) + n
        person = per_person.setdefault(username or "-", {})
        person[key] = person.get(key, 0) + n
    cases = db.scalar(sa.select(sa.func.count()).select_from(Case).where(Case.project_id == project.id))
    accepted = len(accepted_case_ids(db, project))
    return {"project": project.id, "cases": cases, "accepted": accepted, "tasks": totals, "per_person": per_person}


def accepted_case_ids(db: Session, project: Project) -> list[int]:
    """Cases whose latest review decision is an accept."""
    out = []
    for case_id in db.scalars(sa.select(Case.id).where(Case.project_id == project.id).order_by(Case.id)):
        last = db.scalar(
            sa.select(Decision)
            .where(Decision.case_id == case_id, Decision.kind.in_(("review", "qc_sample", "change")))
            .order_by(Decision.id.desc())
            .limit(1)
        )
        if (
            last is not None
            and last.kind == "review"
            and last.outcome == "accept"
            or last is not None
            and last.kind == "qc_sample"
            and last.outcome == "pass"
        ):
            out.append(case_id)
    return out


def freeze(db: Session, audit: AuditLog, actor: User, project: Project) -> Project:
    """Freeze the project's current version: its annotations become read-only (001 §10.2.4, §11.5.2)."""
    if project.frozen:
        raise ConflictError(
            f"version {project.version} is already frozen",
            where=f"project {project.id}",
            hint="open a change request to revise it",
        )
    project.frozen, project.frozen_at = True, utcnow()
    audit.append(actor.username, "freeze", f"project:{project.id}", {"version": project.version}, connection=db)
    return project


def request_change(
    db: Session, audit: AuditLog, actor: User, project: Project, case_id: int, reason: str
) -> ChangeRequest:
    """Ask to revise a case of a frozen version (the old version is kept)."""
    if not project.frozen:
        raise ConflictError(
            "the project is not frozen",
            where=f"project {project.id}",
            hint="edit the annotations directly until the version is frozen",
        )
    case = db.get(Case, case_id)
    if case is None or case.project_id != project.id:
        raise NotFoundError(f"no case {case_id} in project {project.id}", where="case_id", hint="check the id")
    if not reason.strip():
        raise InvalidInputError("a change request needs a reason", where="reason", hint="say what must change")
    cr = ChangeRequest(
        project_id=project.id, case_id=case_id, reason=reason, requested_by=actor.username, from_version=project.version
    )
    db.add(cr)
    db.flush()
    audit.append(
        actor.username, "change.request", f"change:{cr.id}", {"case": case_id, "reason": reason}, connection=db
    )
    return cr


def decide_change(db: Session, audit: AuditLog, actor: User, cr: ChangeRequest, approve: bool) -> ChangeRequest:
    """Approve (new project version, rework tasks from the frozen submissions) or reject a change request."""
    if cr.status != "open":
        raise ConflictError(f"change request {cr.id} is {cr.status}", where="change request", hint="nothing to do")
    project = db.get(Project, cr.project_id)
    assert project is not None
    cr.status, cr.decided_by = ("approved" if approve else "rejected"), actor.username
    detail: dict[str, Any] = {"approve": approve, "from_version": cr.from_version}
    if approve:
        project.version += 1
        project.frozen = False
        for sub in db.scalars(
            sa.select(Submission).where(Submission.case_id == cr.case_id, Submission.current.is_(True))
        ):
            origin = db.get(Task, sub.task_id)
            assert origin is not None
            db.add(
                Task(
                    project_id=project.id,
                    case_id=cr.case_id,
                    kind="rework",
                    assignee_id=origin.assignee_id,
                    reader=sub.reader,
                    parent_id=origin.id,
                    draft_sha256=sub.mask_sha256,
                    draft_version=1,
                    draft_source=f"submission:{sub.id}",
                )
            )
        db.add(
            Decision(
                case_id=cr.case_id,
                kind="change",
                outcome="approved",
                reason=cr.reason,
                detail={"change_request": cr.id},
                decided_by=actor.username,
            )
        )
        detail["new_version"] = project.version
    audit.append(actor.username, "change.decide", f"change:{cr.id}", detail, connection=db)
    return cr


def destroy_project(db: Session, audit: AuditLog, actor: User, project: Project, reason: str) -> DestructionRecord:
    """Delete a project's rows, keeping a destruction record (001 §11.4.2).

    Its blobs are listed in the record; :func:`collect_blobs` unlinks the unshared ones after the commit.
    """
    if not reason.strip():
        raise InvalidInputError("destruction needs a reason", where="reason", hint="state why the data is destroyed")
    cases = db.scalars(sa.select(Case).where(Case.project_id == project.id)).all()
    shas = {c.image_sha256 for c in cases} | {c.image.get("nifti_sha256") for c in cases}
    case_ids = [c.id for c in cases]
    subs = (
        db.scalars(sa.select(Submission.mask_sha256).where(Submission.case_id.in_(case_ids))).all() if case_ids else []
    )
    drafts = db.execute(sa.select(Task.draft_sha256, Task.prelabel_sha256).where(Task.project_id == project.id)).all()
    shas |= set(subs) | {sha for row in drafts for sha in row} | series_blobs(db, case_ids)
    shas.discard(None)
    what = {
        "project": project.name,
        "project_id": project.id,
        "version": project.version,
        "cases": [c.case_key for c in cases],
        "blobs": sorted(shas),
    }
    for table in (Decision, Submission):
        if case_ids:
            db.execute(sa.delete(table).where(table.case_id.in_(case_ids)))
    db.execute(sa.delete(ChangeRequest).where(ChangeRequest.project_id == project.id))
    db.execute(sa.update(Task).where(Task.project_id == project.id).values(parent_id=None))
    db.execute(sa.delete(Task).where(Task.project_id == project.id))
    if case_ids:
        db.execute(sa.delete(CaseSeries).where(CaseSeries.case_id.in_(case_ids)))
    db.execute(sa.delete(Case).where(Case.project_id == project.id))
    db.delete(project)
    record = DestructionRecord(
        what=what,
        method="database rows deleted; blob files no longer referenced unlinked after the commit; audit entries kept",
        reason=reason,
        destroyed_by=actor.username,
    )
    db.add(record)
    db.flush()
    audit.append(
        actor.username,
        "destroy",
        f"project:{what['project_id']}",
        {"record": record.id, "reason": reason, "cases": len(cases), "blobs": len(shas)},
        connection=db,
    )
    return record


def referenced_blobs(db: Session) -> set[str]:
    """Every blob a row still names: case images and their NIfTI files, submissions, drafts, pre-labels."""
    refs = set(db.scalars(sa.select(Submission.mask_sha256)))
    for image_sha, image in db.execute(sa.select(Case.image_sha256, Case.image)):
        refs.add(image_sha)
        refs.add((image or {}).get("nifti_sha256"))
    for draft, pre in db.execute(sa.select(Task.draft_sha256, Task.prelabel_sha256)):
        refs |= {draft, pre}
    refs |= series_blobs(db, None)
    refs.discard(None)
    return refs


def collect_blobs(
    db: Session,
    audit: AuditLog,
    blobs: BlobStore,
    actor: str,
    *,
    candidates: set[str] | None = None,
    grace_seconds: float = 600.0,
) -> list[str]:
    """Unlink blobs no committed row names (of ``candidates``, or the whole store) and audit it.

    Run after the commit that dropped the references: a failure before that commit leaves every
    blob in place, a crash after it leaves only unreferenced files for the next collection.
    """
    db.commit()  # read the references as committed
    removed = blobs.collect(referenced_blobs(db), candidates=candidates, grace_seconds=grace_seconds)
    if removed:
        audit.append(actor, "blobs.collect", "blobs", {"removed": removed}, connection=db)
    return removed
