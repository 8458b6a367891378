"""Routes of logins, sessions and accounts (001 §10.1.7, §11.1, §11.3.1)."""

from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request

from aimd.platform import auth, projects
from aimd.platform.api import schemas
from aimd.platform.api.common import (
    Deps,
    LoginIn,
    UserIn,
    UserPatch,
    _clearance,
    _user_out,
)
from aimd.platform.models import (
    AuthSession,
    User,
)
from aimd.platform.rbac import Permission

__all__ = ["register"]


def register(app: FastAPI, d: Deps) -> None:
    platform, DB, Current, need = d.platform, d.DB, d.Current, d.need
    audit = platform.audit

    @app.post("/api/v1/auth/login", tags=["auth"], response_model=schemas.LoginOut)
    async def login(body: LoginIn, request: Request) -> dict[str, Any]:
        from starlette.concurrency import run_in_threadpool

        client = request.client.host if request.client else ""

        def first() -> tuple[int, str]:
            with platform.sessions() as db:
                try:
                    user = auth.begin_login(db, audit, username=body.username, client=client)
                finally:
                    db.commit()  # refusals and their audit entries are kept; the hash runs outside
                return user.id, user.password_hash

        user_id, stored = await run_in_threadpool(first)
        ok = await auth.verify_password_queued(stored, body.password)

        def second() -> dict[str, Any]:
            with platform.sessions() as db:
                user = db.get(User, user_id)
                assert user is not None
                try:
                    result = auth.finish_login(
                        db, audit, platform.settings, user, password_ok=ok, totp=body.totp, client=client
                    )
                finally:
                    db.commit()  # failed attempts and their audit entries are kept
                return {
                    "token": result.token,
                    "expires_at": result.expires_at.isoformat() + "Z",
                    "user": _user_out(result.user),
                    "ended_other_sessions": result.ended_sessions,
                }

        return await run_in_threadpool(second)

    @app.post("/api/v1/auth/logout", tags=["auth"], response_model=schemas.OkOut)
    def logout(who: Current, db: DB) -> dict[str, bool]:
        user, sess = who
        auth.logout(db, audit, db.merge(user), db.merge(sess))
        db.commit()
        return {"ok": True}

    @app.get("/api/v1/me", tags=["auth"], response_model=schemas.UserOut)
    def me(who: Current) -> dict[str, Any]:
        return _user_out(who[0])

    @app.get("/api/v1/users", tags=["users"], response_model=list[schemas.UserOut])
    def list_users(user: need(Permission.USER_MANAGE), db: DB) -> list[dict[str, Any]]:
        return [_user_out(u) for u in db.scalars(sa.select(User).order_by(User.id))]

    @app.post("/api/v1/users", tags=["users"], status_code=201, response_model=schemas.NewUserOut)
    def add_user(body: UserIn, user: need(Permission.USER_MANAGE), db: DB) -> dict[str, Any]:
        level = _clearance(body.clearance)
        _, shown = auth.create_user(
            db,
            audit,
            platform.settings,
            username=body.username,
            role=body.role.value,
            password=body.password,
            clearance=level,
            actor=user.username,
        )
        db.commit()
        return shown

    @app.patch("/api/v1/users/{username}", tags=["users"], response_model=schemas.UserOut)
    def patch_user(username: str, body: UserPatch, user: need(Permission.USER_MANAGE), db: DB) -> dict[str, Any]:
        target = db.scalar(sa.select(User).where(User.username == username))
        if target is None:
            raise projects.NotFoundError(f"no user {username!r}", where="username", hint="list /api/v1/users")
        change = body.model_dump(exclude_none=True, mode="json")
        if body.role is not None:
            target.role = body.role.value
        if body.disabled is not None:
            target.disabled = body.disabled
            if body.disabled:
                db.execute(
                    sa.update(AuthSession)
                    .where(AuthSession.user_id == target.id, AuthSession.ended_at.is_(None))
                    .values(ended_at=sa.func.current_timestamp(), end_reason="account disabled")
                )
        if body.clearance is not None:
            target.clearance = _clearance(body.clearance)
        audit.append(user.username, "user.change", f"user:{username}", change, connection=db)
        db.commit()
        return _user_out(target)
