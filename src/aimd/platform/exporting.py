"""Export of a project's accepted cases through the annotation engine's frozen, hashed package export,
with traceability (001 §6.6, §10.2.4, §11.5.1): data source, annotators, model assistance, QC,
agreement, review, arbitration and sampling records go into each package's audit trail and into a
``traceability.json`` beside the export.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aimd.annotation import export_packages
from aimd.annotation.qc import QCConfig
from aimd.annotation.taxonomy import default_taxonomy
from aimd.core.atomic import atomic_write_json
from aimd.platform.models import Case, Decision, Project, Submission, User
from aimd.platform.projects import ConflictError, accepted_case_ids
from aimd.platform.workflow import case_mask
from aimd.platform.workflow.packages import _package_for
from aimd.store import AuditLog, BlobStore

__all__ = ["export_project"]


def _trail(sub: Submission, decisions: list[Decision]) -> list[dict[str, Any]]:
    trail = [
        {
            "actor": sub.annotator,
            "action": "submit",
            "detail": f"submission {sub.id}, QC errors 0, correction {sub.correction}",
        }
    ]
    for d in decisions:
        trail.append({"actor": d.decided_by, "action": d.kind, "detail": f"{d.outcome}: {d.reason} {d.detail}"})
    return trail


def export_project(
    db: Session, audit: AuditLog, blobs: BlobStore, user: User, project: Project, out_root: Path
) -> dict[str, Any]:
    """Export version ``v<project.version>`` of the project's accepted cases; returns the export summary."""
    accepted = accepted_case_ids(db, project)
    if not accepted:
        raise ConflictError(
            "no accepted case to export", where=f"project {project.id}", hint="finish review of at least one case"
        )
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for case_id in accepted:
            case = db.get(Case, case_id)
            assert case is not None
            decisions = list(db.scalars(sa.select(Decision).where(Decision.case_id == case_id).order_by(Decision.id)))
            reviewer = next((d.decided_by for d in reversed(decisions) if d.kind == "review"), None)
            subs = list(
                db.scalars(
                    sa.select(Submission)
                    .where(Submission.case_id == case_id, Submission.current.is_(True))
                    .order_by(Submission.reader)
                )
            )
            for sub in subs:
                model = sub.correction.get("model")
                paths.append(
                    _package_for(
                        Path(tmp) / case.case_key,
                        blobs,
                        project,
                        case,
                        case_mask(blobs, sub.mask_sha256),
                        annotator=sub.annotator,
                        reader=sub.reader,
                        version=f"v{project.version}",
                        model=model,
                        audit_trail=_trail(sub, decisions),
                        reviewer=reviewer,
                        attributes=sub.qc.get("attributes"),
                        marks=sub.qc.get("marks"),
                    )
                )
            records.append(
                {
                    "case": case.case_key,
                    "data_source": case.source,
                    "imported_by": case.imported_by,
                    "image_sha256": case.image_sha256,
                    "annotators": [
                        {
                            "reader": s.reader,
                            "annotator": s.annotator,
                            "submission": s.id,
                            "mask_sha256": s.mask_sha256,
                            "qc": s.qc,
                            "model_assistance": s.correction,
                        }
                        for s in subs
                    ],
                    "decisions": [
                        {
                            "kind": d.kind,
                            "outcome": d.outcome,
                            "reason": d.reason,
                            "by": d.decided_by,
                            "at": d.created_at.isoformat(),
                            "detail": d.detail,
                        }
                        for d in decisions
                    ],
                }
            )
        dest = out_root / project.name
        result = export_packages(
            paths,
            dest,
            f"v{project.version}",
            taxonomy=default_taxonomy(),
            config=QCConfig(check_unreferenced=False),
            seg=False,
            coco=False,
        )
    summary = result.to_dict()
    trace = {
        "project": project.name,
        "version": project.version,
        "task_definition": project.task_definition,
        "thresholds": {"dice": project.dice_threshold, "kappa": project.kappa_threshold},
        "readers": project.readers,
        "sampling_ratio": project.sampling_ratio,
        "cases": records,
        "export": summary,
        "audit_head_sha256": audit.head(connection=db),
    }
    atomic_write_json(dest / f"traceability-v{project.version}.json", trace)
    audit.append(
        user.username,
        "export",
        f"project:{project.id}",
        {"version": project.version, "cases": len(accepted), "dest": str(dest), "files": summary["files"]},
        connection=db,
    )
    return {**summary, "traceability": str(dest / f"traceability-v{project.version}.json")}
