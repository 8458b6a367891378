"""Per-project member lists (001 §11.1.1, §11.1.2): who may see and work in a project beyond global roles.

A project becomes members-only when its first member is added; from then on an account that is not
on the list (admins excepted) sees nothing of it: not the project, its cases, its tasks nor its
submissions, and new tasks go to members only. Who may see what is decided in one place,
:func:`aimd.platform.rbac.visible_project_ids`; this module only keeps the list.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aimd.platform.models import Project, ProjectMember, Task, User
from aimd.platform.projects import NotFoundError, member_ids
from aimd.store import AuditLog

__all__ = ["add_members", "list_members", "remove_member"]


def list_members(db: Session, project: Project) -> dict[str, Any]:
    """The member list with each member's role."""
    rows = db.execute(
        sa.select(User.username, User.role, ProjectMember.added_by)
        .join(ProjectMember, ProjectMember.user_id == User.id)
        .where(ProjectMember.project_id == project.id)
        .order_by(User.username)
    ).all()
    return {
        "project": project.id,
        "members_only": project.members_only,
        "members": [{"username": u, "role": r, "added_by": by} for u, r, by in rows],
    }


def _users(db: Session, usernames: list[str]) -> list[User]:
    found = {u.username: u for u in db.scalars(sa.select(User).where(User.username.in_(usernames)))}
    unknown = sorted(set(usernames) - set(found))
    if unknown:
        raise NotFoundError(f"no user {', '.join(map(repr, unknown))}", where="usernames", hint="list /api/v1/users")
    return [found[n] for n in dict.fromkeys(usernames)]


def add_members(db: Session, audit: AuditLog, actor: User, project: Project, usernames: list[str]) -> dict[str, Any]:
    """Add accounts to the member list; the project is members-only from now on."""
    users = _users(db, usernames)
    present = member_ids(db, project) or set()
    added = [u for u in users if u.id not in present]
    for user in added:
        db.add(ProjectMember(project_id=project.id, user_id=user.id, added_by=actor.username))
    project.members_only = True
    db.flush()
    audit.append(
        actor.username,
        "project.members.add",
        f"project:{project.id}",
        {"added": [u.username for u in added], "members_only": True},
        connection=db,
    )
    return list_members(db, project)


def remove_member(db: Session, audit: AuditLog, actor: User, project: Project, username: str) -> dict[str, Any]:
    """Take an account off the member list; its open tasks in the project are reported for redistribution."""
    (user,) = _users(db, [username])
    gone = db.execute(
        sa.delete(ProjectMember).where(ProjectMember.project_id == project.id, ProjectMember.user_id == user.id)
    )
    if gone.rowcount != 1:
        raise NotFoundError(
            f"{username!r} is not a member of project {project.id}", where="username", hint="list the members"
        )
    open_tasks = list(
        db.scalars(
            sa.select(Task.id).where(Task.project_id == project.id, Task.assignee_id == user.id, Task.status == "open")
        )
    )
    audit.append(
        actor.username,
        "project.members.remove",
        f"project:{project.id}",
        {"removed": username, "open_tasks": open_tasks},
        connection=db,
    )
    return {**list_members(db, project), "removed": username, "open_tasks_of_removed": open_tasks}
