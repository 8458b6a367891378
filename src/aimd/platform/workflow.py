"""The annotation workflow (001 §6.4–§6.5, §9.3, §10.1.4, §10.1.6, §10.2.2):
autosave drafts with versions → submit with level-1 QC → agreement across the K readers →
arbitration (below the Dice threshold) or review → accept, or reject with a reason → rework → review;
QC sampling inspection at the project ratio; model pre-labels as drafts with correction records.

Level-1 QC and agreement are the annotation engine's own (:func:`aimd.annotation.check_package`,
:func:`aimd.annotation.agree`): each submission is written as an App. C package on the case's image
grid in a temporary folder and checked there.
"""

from __future__ import annotations

import math
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from aimd.annotation import agree, append_audit, check_package, new_package, reader_sets, save_package, write_mask
from aimd.annotation.qc import QCConfig
from aimd.annotation.schema import AIModel, Annotation, TextDocument
from aimd.annotation.taxonomy import default_taxonomy
from aimd.core.errors import InvalidInputError, PermissionDeniedError
from aimd.imaging.nifti_io import write_nifti
from aimd.imaging.volume import Volume
from aimd.platform.masks import mask_diff, parse_mask, to_npy
from aimd.platform.models import Case, Decision, Project, Submission, Task, User, utcnow
from aimd.platform.projects import ConflictError, NotFoundError, pick_assignee, require_unfrozen
from aimd.platform.rbac import Role, visible_project_ids
from aimd.store import AuditLog, BlobStore

__all__ = [
    "QCFailedError",
    "advance_draft",
    "case_mask",
    "case_volume",
    "diff_submissions",
    "get_task",
    "review",
    "sample_for_qc",
    "save_draft",
    "submit",
    "visible_tasks",
]

_ROLE_KINDS = {
    Role.ANNOTATOR: ("annotate", "rework"),
    Role.REVIEWER: ("review",),
    Role.ARBITER: ("arbitrate",),
    Role.QC: ("qc_sample",),
}


class QCFailedError(InvalidInputError):
    """Level-1 QC found errors: the submission is refused with the findings (HTTP 422)."""

    def __init__(self, findings: list[dict[str, Any]]) -> None:
        codes = sorted({f["code"] for f in findings})
        super().__init__(
            f"level-1 QC found {len(findings)} error(s): {', '.join(codes)}",
            where="submission",
            hint="fix the findings and submit again",
        )
        self.findings = findings


def visible_tasks(db: Session, user: User, *, project_id: int | None = None, status: str | None = None) -> list[Task]:
    """Tasks the user may see: their own (annotator, reviewer, arbiter, QC) or all (admin), in visible projects."""
    query = sa.select(Task).where(Task.project_id.in_(visible_project_ids(user))).order_by(Task.id)
    if user.role != Role.ADMIN:
        query = query.where(Task.assignee_id == user.id)
    if project_id is not None:
        query = query.where(Task.project_id == project_id)
    if status is not None:
        query = query.where(Task.status == status)
    return list(db.scalars(query))


def get_task(db: Session, user: User, task_id: int, *, kinds: tuple[str, ...] | None = None) -> Task:
    """A task the user may see (404 otherwise) and, with ``kinds``, may work on (403 otherwise)."""
    task = db.get(Task, task_id)
    if (
        task is None
        or (user.role != Role.ADMIN and task.assignee_id != user.id)
        or db.scalar(visible_project_ids(user).where(Project.id == task.project_id)) is None
    ):
        raise NotFoundError(f"no task {task_id}", where="task", hint="list /api/v1/tasks")
    if kinds is not None and (task.kind not in kinds or task.assignee_id != user.id):
        raise PermissionDeniedError(
            f"task {task_id} is a {task.kind} task of another role or person",
            where="task",
            hint="work on your own tasks",
        )
    return task


def case_volume(blobs: BlobStore, case: Case) -> Volume:
    """The case image as a :class:`Volume`."""
    import io

    arr = np.load(io.BytesIO(blobs.get(case.image_sha256)), allow_pickle=False)
    img = case.image
    return Volume(
        arr,
        spacing=tuple(img["spacing"]),
        origin=tuple(img["origin"]),
        direction=np.asarray(img["direction"]),
        modality=img.get("modality"),
    )


def case_mask(blobs: BlobStore, sha: str) -> NDArray[Any]:
    """A stored mask."""
    import io

    return np.load(io.BytesIO(blobs.get(sha)), allow_pickle=False)


def _allowed(project: Project) -> set[int]:
    return {int(k) for k in project.label_map}


def save_draft(
    db: Session,
    audit: AuditLog,
    blobs: BlobStore,
    user: User,
    task: Task,
    body: bytes,
    if_match: str | None,
    *,
    source: str = "manual",
) -> Task:
    """Autosave: store the mask and bump the draft version; a stale ``If-Match`` is a 409 (no lost update)."""
    project = db.get(Project, task.project_id)
    case = db.get(Case, task.case_id)
    assert project is not None and case is not None
    require_unfrozen(project)
    if task.status != "open":
        raise ConflictError(f"task {task.id} is {task.status}", where="task", hint="drafts go to open tasks")
    if if_match is None:
        raise PreconditionRequiredError()
    expected = if_match.strip().strip('"').removeprefix("W/").strip('"')
    if expected != str(task.draft_version):
        raise ConflictError(
            f"stale draft: you sent version {expected}, the server has {task.draft_version}",
            where="If-Match",
            hint="reload the draft, merge your edits and save again",
        )
    shape, allowed, version = case.image["shape"], _allowed(project), task.draft_version
    db.commit()  # end the read: a large upload is parsed and stored without holding the database
    mask = parse_mask(body, shape=shape, allowed=allowed)
    sha = blobs.put(to_npy(mask))
    if not advance_draft(db, task, version, sha, source):
        raise ConflictError("stale draft: another save won", where="If-Match", hint="reload the draft")
    audit.append(
        user.username,
        "save",
        f"task:{task.id}",
        {"version": task.draft_version, "mask_sha256": sha, "source": source},
        connection=db,
    )
    return task


def advance_draft(db: Session, task: Task, version: int, sha: str, source: str, *, prelabel: bool = False) -> bool:
    """Make ``sha`` the task's draft if its version is still ``version`` (checked inside the UPDATE, so two
    concurrent writers cannot both win); with ``prelabel`` it is also the model's pre-label. False when
    another write won."""
    now = utcnow()
    values: dict[str, Any] = {"draft_sha256": sha, "draft_version": version + 1, "draft_source": source}
    if prelabel:
        values |= {"prelabel_sha256": sha, "prelabel_source": source}
    result = db.execute(
        sa.update(Task)
        .where(Task.id == task.id, Task.draft_version == version, Task.status == "open")
        .values(**values, updated_at=now, started_at=sa.func.coalesce(Task.started_at, now))
    )
    if result.rowcount != 1:
        return False
    db.refresh(task)
    return True


class PreconditionRequiredError(InvalidInputError):
    """A draft save without ``If-Match`` (HTTP 428)."""

    def __init__(self) -> None:
        super().__init__(
            "saving a draft needs the If-Match header with the draft version you loaded",
            where="If-Match",
            hint='send If-Match: "<version>" (0 for the first save)',
        )


# ---------------------------------------------------------------------------------------- packages
def _package_for(
    workdir: Path,
    blobs: BlobStore,
    project: Project,
    case: Case,
    mask: NDArray[Any],
    *,
    annotator: str,
    reader: int,
    version: str,
    model: str | None = None,
    audit_trail: list[dict[str, Any]] | None = None,
    reviewer: str | None = None,
    attributes: dict[str, dict[str, Any]] | None = None,
    marks: dict[str, Any] | None = None,
) -> Path:
    """Write an App. C package (image, mask, annotations) for ``mask`` under ``workdir``; return its path.

    ``marks`` carries what the workspace drew beside the mask: vector ``objects`` (bbox / point /
    polygon annotations), report ``spans`` and ``links`` (mask value → span ids).
    """
    tax = default_taxonomy()
    image_path = workdir / "image.nii.gz"
    if not image_path.exists():
        write_nifti(case_volume(blobs, case), image_path)
    reader_dir = workdir / f"reader_{reader}"
    pkg_path = reader_dir / f"{case.case_key}.json"
    pkg = new_package(
        image_path,
        pkg_path,
        task_id=f"{project.name}/{case.case_key}",
        annotator=annotator,
        version=version,
        taxonomy=tax,
        case_id=case.case_key,
    )
    mask_rel = f"masks/{case.case_key}.nii.gz"
    write_mask(pkg.image, mask, reader_dir / mask_rel)
    anns = []
    for value in sorted({int(v) for v in np.unique(mask)} - {0}):
        code = project.label_map[str(value)]
        node = tax.get(code)
        assert node is not None
        prov = {"source": "model_corrected", "model": model} if model else None
        links = [{"target": t} for t in ((marks or {}).get("links") or {}).get(str(value), [])]
        anns.append(
            Annotation.model_validate(
                {
                    "id": f"{code}_{value}",
                    "category": node.category.value,
                    "label_code": code,
                    "type": "mask",
                    "data": {
                        "mask_file": mask_rel,
                        "mask_value": value,
                        "attributes": dict((attributes or {}).get(str(value), {})),
                    },
                    "provenance": prov,
                    "cross_modal_links": links,
                }
            )
        )
    anns += [_vector_annotation(tax, obj) for obj in (marks or {}).get("objects") or []]
    texts = []
    if (marks or {}).get("spans"):
        texts.append(
            {"id": "report", "kind": "report", "language": "zh", "text": case.report_text, "spans": marks["spans"]}
        )
    meta = pkg.metadata.model_copy(update={"reviewer": reviewer})
    if model:
        name, _, ver = model.partition("@")
        meta.software.ai_model = AIModel(name=name, version=ver or "unknown")
    try:
        docs = [TextDocument.model_validate(t) for t in texts]
    except ValueError as err:
        raise InvalidInputError(
            f"the report spans are not valid: {err}", where="spans", hint="send spans with id, start, end, text"
        ) from None
    pkg = pkg.model_copy(update={"annotations": anns, "metadata": meta, "texts": docs})
    for entry in audit_trail or [{"actor": annotator, "action": "submit", "detail": ""}]:
        pkg = append_audit(pkg, actor=entry["actor"], action=entry["action"], detail=str(entry.get("detail", "")))
    save_package(pkg, pkg_path)
    return pkg_path


def _vector_annotation(tax: Any, obj: dict[str, Any]) -> Annotation:
    """A box / point / polygon drawn in the workspace as an App. C annotation (001 App. C.3)."""
    node = tax.get(str(obj.get("label_code", "")))
    if node is None:
        raise InvalidInputError(
            f"object {obj.get('id')!r} names no taxonomy label", where="objects", hint="use a code of the label map"
        )
    data = {k: obj[k] for k in ("bbox", "point", "polygon", "slice_index") if obj.get(k) is not None}
    try:
        return Annotation.model_validate(
            {
                "id": str(obj.get("id", "")),
                "category": node.category.value,
                "label_code": node.code,
                "type": obj.get("type"),
                "data": {**data, "attributes": dict(obj.get("attributes") or {})},
                "cross_modal_links": [{"target": t} for t in obj.get("links") or []],
            }
        )
    except ValueError as err:
        raise InvalidInputError(
            f"object {obj.get('id')!r} is not a valid annotation: {err}",
            where="objects",
            hint="send type bbox / point / polygon with its coordinates",
        ) from None


def _finding_dict(f: Any) -> dict[str, Any]:
    return f.model_dump(mode="json")


def level1_qc(
    blobs: BlobStore,
    project: Project,
    case: Case,
    mask: NDArray[Any],
    annotator: str,
    model: str | None,
    attributes: dict[str, dict[str, Any]],
    marks: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Findings of the annotation engine's level-1 QC on this submission."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _package_for(
            Path(tmp),
            blobs,
            project,
            case,
            mask,
            annotator=annotator,
            reader=1,
            version="draft",
            model=model,
            attributes=attributes,
            marks=marks,
        )
        findings = check_package(path, taxonomy=default_taxonomy(), config=QCConfig(check_unreferenced=False))
    return [_finding_dict(f) for f in findings]


def submit(
    db: Session,
    audit: AuditLog,
    blobs: BlobStore,
    user: User,
    task: Task,
    attributes: dict[str, dict[str, Any]] | None = None,
    marks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Submit the task's draft: QC, record the correction, then route the case (agreement / review)."""
    project = db.get(Project, task.project_id)
    case = db.get(Case, task.case_id)
    assert project is not None and case is not None
    require_unfrozen(project)
    if task.status != "open":
        raise ConflictError(f"task {task.id} is already {task.status}", where="task", hint="nothing to submit")
    if task.draft_sha256 is None:
        raise ConflictError("nothing to submit: no draft saved", where="task", hint="save a draft first")
    mask = case_mask(blobs, task.draft_sha256)
    model = task.prelabel_source
    attributes = attributes or {}
    findings = level1_qc(blobs, project, case, mask, user.username, model, attributes, marks)
    errors = [f for f in findings if f["severity"] == "error"]
    if errors:
        audit.append(
            user.username, "submit.refused", f"task:{task.id}", {"errors": [f["code"] for f in errors]}, connection=db
        )
        raise QCFailedError(errors)
    correction = _correction(blobs, task, mask, case)
    reader = task.reader or 1
    db.execute(
        sa.update(Submission).where(Submission.case_id == case.id, Submission.reader == reader).values(current=False)
    )
    sub = Submission(
        task_id=task.id,
        case_id=case.id,
        annotator=user.username,
        reader=reader,
        mask_sha256=task.draft_sha256,
        project_version=project.version,
        qc={"findings": findings, "errors": 0, "attributes": attributes, "marks": marks or {}},
        correction=correction,
    )
    db.add(sub)
    task.status, task.updated_at = "submitted", utcnow()
    db.flush()
    audit.append(
        user.username,
        "submit",
        f"task:{task.id}",
        {"submission": sub.id, "mask_sha256": sub.mask_sha256, "correction": correction},
        connection=db,
    )
    routed = _route(db, audit, blobs, project, case, task, sub)
    return {
        "submission": sub.id,
        "task": task.id,
        "qc": {"findings": len(findings), "errors": 0},
        "correction": correction,
        "routed": routed,
    }


def _correction(blobs: BlobStore, task: Task, final: NDArray[Any], case: Case) -> dict[str, Any]:
    spent = (utcnow() - task.started_at).total_seconds() if task.started_at else None
    if task.prelabel_sha256 is None:
        return {"model": None, "seconds_spent": spent}
    pre = case_mask(blobs, task.prelabel_sha256)
    edited = int(np.count_nonzero(pre != final))
    a, b = pre > 0, final > 0
    denom = int(a.sum() + b.sum())
    dice = 1.0 if denom == 0 else 2.0 * float(np.logical_and(a, b).sum()) / denom
    return {
        "model": task.prelabel_source,
        "dice_model_to_final": dice,
        "edited_voxels": edited,
        "identical_to_model": edited == 0,
        "seconds_spent": spent,
    }


def _new_task(
    db: Session, project: Project, case: Case, kind: str, role: str, exclude: set[int], parent: Task | None = None
) -> Task:
    assignee = pick_assignee(db, role, exclude, project)
    task = Task(
        project_id=project.id, case_id=case.id, kind=kind, assignee_id=assignee, parent_id=parent.id if parent else None
    )
    db.add(task)
    db.flush()
    return task


def _annotators(db: Session, case: Case) -> set[int]:
    return set(
        db.scalars(sa.select(Task.assignee_id).where(Task.case_id == case.id, Task.kind.in_(("annotate", "rework"))))
    )


def _route(
    db: Session, audit: AuditLog, blobs: BlobStore, project: Project, case: Case, task: Task, sub: Submission
) -> dict[str, Any]:
    if task.kind == "arbitrate":
        db.add(
            Decision(
                case_id=case.id,
                task_id=task.id,
                kind="arbitration",
                outcome="resolved",
                reason="arbiter's mask submitted",
                detail={"submission": sub.id},
                decided_by=sub.annotator,
            )
        )
        nxt = _new_task(db, project, case, "review", Role.REVIEWER, _annotators(db, case))
        audit.append("aimd platform", "route.review", f"case:{case.id}", {"task": nxt.id}, connection=db)
        return {"next": "review", "task": nxt.id}
    if task.kind == "rework":
        nxt = _new_task(db, project, case, "review", Role.REVIEWER, _annotators(db, case))
        audit.append("aimd platform", "route.review", f"case:{case.id}", {"task": nxt.id}, connection=db)
        return {"next": "review", "task": nxt.id}
    open_left = db.scalar(
        sa.select(sa.func.count())
        .select_from(Task)
        .where(Task.case_id == case.id, Task.kind == "annotate", Task.status == "open")
    )
    if open_left:
        return {"next": "waiting for readers", "open_annotate_tasks": int(open_left)}
    current = list(
        db.scalars(
            sa.select(Submission)
            .where(Submission.case_id == case.id, Submission.current.is_(True))
            .order_by(Submission.reader)
        )
    )
    summary = agreement(blobs, project, case, current) if len(current) >= 2 else None
    below = summary is not None and (
        summary["min_dice"] is None
        or summary["min_dice"] < project.dice_threshold
        or summary["kappa_below"]
        or summary["single_reader_objects"] > 0
    )
    db.add(
        Decision(
            case_id=case.id,
            kind="agreement",
            outcome="below" if below else "ok",
            detail=summary or {"readers": len(current), "note": "one reader: agreement not evaluated"},
            decided_by="aimd platform",
        )
    )
    if below:
        nxt = _new_task(db, project, case, "arbitrate", Role.ARBITER, _annotators(db, case))
        audit.append(
            "aimd platform",
            "route.arbitration",
            f"case:{case.id}",
            {"task": nxt.id, "min_dice": summary and summary["min_dice"]},
            connection=db,
        )
        return {"next": "arbitration", "task": nxt.id, "agreement": summary}
    nxt = _new_task(db, project, case, "review", Role.REVIEWER, _annotators(db, case))
    audit.append("aimd platform", "route.review", f"case:{case.id}", {"task": nxt.id}, connection=db)
    return {"next": "review", "task": nxt.id, "agreement": summary}


def agreement(blobs: BlobStore, project: Project, case: Case, subs: list[Submission]) -> dict[str, Any]:
    """Agreement of the readers' current submissions by :func:`aimd.annotation.agree`."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = [
            _package_for(
                Path(tmp),
                blobs,
                project,
                case,
                case_mask(blobs, s.mask_sha256),
                annotator=s.annotator,
                reader=s.reader,
                version=f"v{project.version}",
                attributes=s.qc.get("attributes"),
                marks=s.qc.get("marks"),
            )
            for s in subs
        ]
        config = QCConfig(
            dice_second_review=project.dice_threshold,
            dice_special_review=min(0.75, project.dice_threshold),
            check_unreferenced=False,
        )
        result = agree(reader_sets([p.parent for p in paths]), config=config)
    summary = result.summary()
    kappas = [v.get("kappa") for v in result.attributes.values() if isinstance(v, dict) and v.get("kappa") is not None]
    return {
        "readers": summary["readers"],
        "pairs": summary["pairs"],
        "mean_dice": summary["mean_dice"],
        "min_dice": summary["min_dice"],
        "single_reader_objects": summary["single_reader_objects"],
        "dice_threshold": project.dice_threshold,
        "kappa_threshold": project.kappa_threshold,
        "kappa": kappas or None,
        "kappa_below": any(k < project.kappa_threshold for k in kappas),
        "kappa_note": None if kappas else "no categorical attributes: kappa not evaluated",
        "pair_dice": [
            {"a": p.get("reader_a"), "b": p.get("reader_b"), "object": p.get("label_code"), "dice": p["value"]}
            for p in result.pairs
            if p["metric"] == "dice"
        ],
    }


def review(db: Session, audit: AuditLog, user: User, task: Task, outcome: str, reason: str) -> dict[str, Any]:
    """Reviewer (or QC sampling) decision: accept / reject with a written reason → rework tasks."""
    project = db.get(Project, task.project_id)
    case = db.get(Case, task.case_id)
    assert project is not None and case is not None
    require_unfrozen(project)
    if task.status != "open":
        raise ConflictError(f"task {task.id} is already {task.status}", where="task", hint="nothing to decide")
    ok_outcomes = ("accept", "reject") if task.kind == "review" else ("pass", "fail")
    if outcome not in ok_outcomes:
        raise InvalidInputError(
            f"outcome must be one of {list(ok_outcomes)}, got {outcome!r}",
            where="outcome",
            hint=f"send {ok_outcomes[0]} or {ok_outcomes[1]}",
        )
    rejected = outcome in ("reject", "fail")
    if rejected and not reason.strip():
        raise InvalidInputError(
            "a rejection needs a written reason",
            where="reason",
            hint="say what the annotators must change (001 §6.5.2)",
        )
    task.status, task.updated_at = "done", utcnow()
    db.add(
        Decision(
            case_id=case.id,
            task_id=task.id,
            kind=task.kind,
            outcome=outcome,
            reason=reason,
            detail={},
            decided_by=user.username,
        )
    )
    rework = []
    if rejected:
        for sub in db.scalars(sa.select(Submission).where(Submission.case_id == case.id, Submission.current.is_(True))):
            origin = db.get(Task, sub.task_id)
            assert origin is not None
            assignee = origin.assignee_id if origin.kind in ("annotate", "rework") else None
            if assignee is None:
                continue
            t = Task(
                project_id=project.id,
                case_id=case.id,
                kind="rework",
                assignee_id=assignee,
                reader=sub.reader,
                parent_id=origin.id,
                draft_sha256=sub.mask_sha256,
                draft_version=1,
                draft_source=f"submission:{sub.id}",
            )
            db.add(t)
            db.flush()
            rework.append(t.id)
    audit.append(
        user.username,
        task.kind,
        f"case:{case.id}",
        {"task": task.id, "outcome": outcome, "reason": reason, "rework_tasks": rework},
        connection=db,
    )
    return {"task": task.id, "outcome": outcome, "rework_tasks": rework}


def sample_for_qc(db: Session, audit: AuditLog, user: User, project: Project, seed: int) -> dict[str, Any]:
    """Draw the sampling inspection (001 §9.3): ceil(ratio × accepted cases) not yet sampled, to this QC user."""
    from aimd.platform.projects import accepted_case_ids

    accepted = accepted_case_ids(db, project)
    sampled = set(db.scalars(sa.select(Task.case_id).where(Task.project_id == project.id, Task.kind == "qc_sample")))
    pool = [c for c in accepted if c not in sampled]
    n = min(len(pool), math.ceil(project.sampling_ratio * len(accepted))) if accepted else 0
    chosen = sorted(random.Random(seed).sample(pool, n)) if n else []
    tasks = []
    for case_id in chosen:
        t = Task(project_id=project.id, case_id=case_id, kind="qc_sample", assignee_id=user.id)
        db.add(t)
        db.flush()
        tasks.append(t.id)
    audit.append(
        user.username,
        "qc.sample",
        f"project:{project.id}",
        {"seed": seed, "ratio": project.sampling_ratio, "accepted": len(accepted), "cases": chosen, "tasks": tasks},
        connection=db,
    )
    return {"accepted": len(accepted), "ratio": project.sampling_ratio, "sampled_cases": chosen, "tasks": tasks}


def diff_submissions(db: Session, blobs: BlobStore, a_id: int, b_id: int) -> dict[str, Any]:
    """Per-label Dice, HD95, volume change and changed slices between two submissions of one case."""
    a, b = db.get(Submission, a_id), db.get(Submission, b_id)
    if a is None or b is None:
        raise NotFoundError(f"no submission {a_id if a is None else b_id}", where="diff", hint="check the ids")
    if a.case_id != b.case_id:
        raise InvalidInputError(
            "the submissions belong to different cases", where="diff", hint="compare versions or readers of one case"
        )
    case = db.get(Case, a.case_id)
    project = db.get(Project, case.project_id) if case else None
    assert case is not None and project is not None
    names = {int(k): v for k, v in project.label_map.items()}
    out = mask_diff(
        case_mask(blobs, a.mask_sha256),
        case_mask(blobs, b.mask_sha256),
        spacing_zyx=case.image["spacing_zyx"],
        label_names=names,
    )
    return {
        "case": case.id,
        "a": {"submission": a.id, "annotator": a.annotator, "reader": a.reader},
        "b": {"submission": b.id, "annotator": b.annotator, "reader": b.reader},
        **out,
    }
