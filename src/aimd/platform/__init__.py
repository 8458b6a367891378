"""aimd.platform — the annotation platform server of standard 001 (§6, §9, §10, §11).

Projects with written task definitions, de-identified case import, roles with one permission matrix,
argon2id + TOTP logins, the annotate → QC → agreement → arbitration / review → rework workflow, model
pre-labels with correction records, autosave with versions, freezing and change requests, export with
traceability, the hash-chained audit log, backup and restore — a JSON API under ``/api/v1``.
"""

from aimd.platform.app_state import Platform
from aimd.platform.rbac import MATRIX, Permission, Role, allowed

__all__ = ["MATRIX", "Permission", "Platform", "Role", "allowed"]
