"""The annotation workflow (001 §6.4–§6.5, §9.3, §10.1.4, §10.1.6, §10.2.2):
autosave drafts with versions → submit with level-1 QC → agreement across the K readers →
arbitration (below the Dice threshold) or review → accept, or reject with a reason → rework → review;
QC sampling inspection at the project ratio; model pre-labels as drafts with correction records.

Level-1 QC and agreement are the annotation engine's own (:func:`aimd.annotation.check_package`,
:func:`aimd.annotation.agree`): each submission is written as an App. C package on the case's image
grid in a temporary folder and checked there.
"""

from __future__ import annotations

from aimd.platform.workflow.drafts import (
    PreconditionRequiredError,
    advance_draft,
    case_mask,
    case_volume,
    get_task,
    save_draft,
    visible_tasks,
)
from aimd.platform.workflow.packages import agreement, level1_qc
from aimd.platform.workflow.routing import QCFailedError, diff_submissions, review, sample_for_qc, submit

__all__ = [
    "PreconditionRequiredError",
    "QCFailedError",
    "advance_draft",
    "agreement",
    "case_mask",
    "case_volume",
    "diff_submissions",
    "get_task",
    "level1_qc",
    "review",
    "sample_for_qc",
    "save_draft",
    "submit",
    "visible_tasks",
]
