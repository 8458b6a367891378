"""Roles and the one permission matrix of the platform (001 §11.1.2: least privilege per account).

Every route names one :class:`Permission`; :func:`allowed` is the only place that decides whether a
role holds it. Data visibility is narrowed further elsewhere: an annotator sees only the cases of the
tasks assigned to them, and a project's data classification (001 §11.1.1) must not exceed the
account's clearance.

Example
-------
>>> allowed(Role.ANNOTATOR, Permission.TASK_ANNOTATE), allowed(Role.ANNOTATOR, Permission.AUDIT_READ)
(True, False)
>>> print(matrix_markdown().splitlines()[0])
| permission | intake | annotator | reviewer | qc | arbiter | admin |
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CLASSIFICATIONS", "MATRIX", "Permission", "Role", "allowed", "matrix_markdown"]


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
            _P.PROGRESS_READ,
            _P.CASE_IMPORT,
            _P.TASK_DISTRIBUTE,
            _P.DIFF_READ,
            _P.MODEL_REGISTER,
            _P.PRELABEL,
            _P.CHANGE_DECIDE,
            _P.EXPORT,
            _P.AUDIT_READ,
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


def matrix_markdown() -> str:
    """The matrix as a Markdown table (docs/platform.md prints it)."""
    roles = list(Role)
    lines = ["| permission | " + " | ".join(r.value for r in roles) + " |", "|---|" + "---|" * len(roles)]
    for p in Permission:
        lines.append(f"| `{p.value}` | " + " | ".join("✓" if p in MATRIX[r] else "" for r in roles) + " |")
    return "\n".join(lines)
