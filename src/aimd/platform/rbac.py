"""Roles and the one permission matrix of the platform (001 §11.1.2: least privilege per account).

Every route names one :class:`Permission`; :func:`allowed` is the only place that decides whether a
role holds it, and :func:`visible_project_ids` the only place that decides which projects an account
sees: a project's data classification (001 §11.1.1) must not exceed the account's clearance, a
members-only project is seen by its members (and admins) only, and an annotator sees only projects with
tasks assigned to them (and, within them, only those tasks' cases).

Example
-------
>>> allowed(Role.ANNOTATOR, Permission.TASK_ANNOTATE), allowed(Role.ANNOTATOR, Permission.AUDIT_READ)
(True, False)
>>> print(matrix_markdown().splitlines()[0])
| permission | intake | annotator | reviewer | qc | arbiter | admin |
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import sqlalchemy as sa

from aimd.platform.models import Project, ProjectMember, Task

if TYPE_CHECKING:
    from aimd.platform.models import User

__all__ = [
    "CLASSIFICATIONS",
    "MATRIX",
    "Permission",
    "Role",
    "allowed",
    "matrix_markdown",
    "visible_project_ids",
]


class Role(StrEnum):
    """Platform roles (001 §11.1.2: data intake / preprocessing, annotation, review, QC, admin; App. A.3.6
    adds arbitration)."""

    INTAKE = "intake"
    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"
    QC = "qc"
    ARBITER = "arbiter"
    ADMIN = "admin"


class Permission(StrEnum):
    """What a route does."""

    USER_MANAGE = "user.manage"
    PROJECT_CREATE = "project.create"
    PROJECT_READ = "project.read"
    PROJECT_FREEZE = "project.freeze"
    PROJECT_DELETE = "project.delete"
    PROJECT_MEMBERS = "project.members"
    PROGRESS_READ = "progress.read"
    CASE_IMPORT = "case.import"
    TASK_DISTRIBUTE = "task.distribute"
    TASK_ANNOTATE = "task.annotate"
    TASK_REVIEW = "task.review"
    TASK_ARBITRATE = "task.arbitrate"
    QC_SAMPLE = "qc.sample"
    DIFF_READ = "diff.read"
    MODEL_REGISTER = "model.register"
    PRELABEL = "prelabel.run"
    CHANGE_REQUEST = "change.request"
    CHANGE_DECIDE = "change.decide"
    EXPORT = "export.run"
    AUDIT_READ = "audit.read"
    AUDIT_ARCHIVE = "audit.archive"


_P = Permission
MATRIX: dict[Role, frozenset[Permission]] = {
    Role.INTAKE: frozenset({_P.PROJECT_READ, _P.CASE_IMPORT}),
    Role.ANNOTATOR: frozenset({_P.PROJECT_READ, _P.TASK_ANNOTATE, _P.PRELABEL, _P.CHANGE_REQUEST}),
    Role.REVIEWER: frozenset({_P.PROJECT_READ, _P.PROGRESS_READ, _P.TASK_REVIEW, _P.DIFF_READ, _P.CHANGE_REQUEST}),
    Role.QC: frozenset({_P.PROJECT_READ, _P.PROGRESS_READ, _P.QC_SAMPLE, _P.DIFF_READ, _P.AUDIT_READ, _P.EXPORT}),
    Role.ARBITER: frozenset({_P.PROJECT_READ, _P.TASK_ARBITRATE, _P.DIFF_READ}),
    Role.ADMIN: frozenset(
        {
            _P.USER_MANAGE,
            _P.PROJECT_CREATE,
            _P.PROJECT_READ,
            _P.PROJECT_FREEZE,
            _P.PROJECT_DELETE,
            _P.PROJECT_MEMBERS,
            _P.PROGRESS_READ,
            _P.CASE_IMPORT,
            _P.TASK_DISTRIBUTE,
            _P.DIFF_READ,
            _P.MODEL_REGISTER,
            _P.PRELABEL,
            _P.CHANGE_DECIDE,
            _P.EXPORT,
            _P.AUDIT_READ,
            _P.AUDIT_ARCHIVE,
        }
    ),
}

CLASSIFICATIONS = {"public": 0, "internal": 1, "confidential": 2, "restricted": 3}
"""Project data classification levels (001 §11.1.1); an account sees projects up to its clearance."""


def allowed(role: Role | str, permission: Permission) -> bool:
    """True when ``role`` holds ``permission``."""
    try:
        return permission in MATRIX[Role(role)]
    except ValueError:
        return False


def visible_project_ids(user: User) -> sa.Select[tuple[int]]:
    """The ids of the projects ``user`` may see, as a query (the one place project visibility is decided).

    Example
    -------
    >>> from aimd.platform.models import User
    >>> def sql(role):
    ...     return str(visible_project_ids(User(id=7, role=role, clearance=1)))
    >>> "pf_project_member" in sql("reviewer"), "pf_project_member" in sql("admin"), "pf_task" in sql("annotator")
    (True, False, True)
    """
    levels = [k for k, v in CLASSIFICATIONS.items() if v <= user.clearance]
    query = sa.select(Project.id).where(Project.classification.in_(levels))
    if user.role != Role.ADMIN:
        members = sa.select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)
        query = query.where(sa.or_(Project.members_only.is_(False), Project.id.in_(members)))
    if user.role == Role.ANNOTATOR:
        query = query.where(Project.id.in_(sa.select(Task.project_id).where(Task.assignee_id == user.id)))
    return query


def matrix_markdown() -> str:
    """The matrix as a Markdown table (docs/platform.md prints it)."""
    roles = list(Role)
    lines = ["| permission | " + " | ".join(r.value for r in roles) + " |", "|---|" + "---|" * len(roles)]
    for p in Permission:
        lines.append(f"| `{p.value}` | " + " | ".join("✓" if p in MATRIX[r] else "" for r in roles) + " |")
    return "\n".join(lines)
