"""Submit → QC → agreement → arbitration or review → accept, or reject with a reason → rework; QC
sampling inspection; diffs between submissions (001 §6.5, §9.3, §9.4.2)."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import sqlalchemy as sa
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from aimd.core.errors import InvalidInputError
from aimd.platform.masks import mask_diff
from aimd.platform.models import Case, Decision, Project, Submission, Task, User, utcnow
from aimd.platform.projects import ConflictError, NotFoundError, pick_assignee, require_unfrozen
from aimd.platform.rbac import Role
from aimd.platform.workflow.drafts import case_mask
from aimd.platform.workflow.packages import agreement, level1_qc
from aimd.store import AuditLog, BlobStore

__all__ = ["QCFailedError", "diff_submissions", "review", "sample_for_qc", "submit"]


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
