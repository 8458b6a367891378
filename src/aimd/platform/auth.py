"""Accounts and logins (001 §10.1.7, §11.3.1): argon2id passwords with a policy, lockout after repeated
failures, TOTP for privileged roles, expiring sessions and one active session per account.

A session token is 32 random bytes shown once to the client; the database keeps only its SHA-256.
A new login ends the account's other sessions (no account sharing) and says so in the audit log.

Example
-------
>>> check_password_policy("short", min_length=12)
'the password must have at least 12 characters'
>>> h = hash_password("correct horse 42 battery")
>>> h.startswith("$argon2id$"), verify_password(h, "correct horse 42 battery"), verify_password(h, "x")
(True, True, False)
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.orm import Session

from aimd.core.config import PlatformSettings
from aimd.core.errors import InvalidInputError, PermissionDeniedError
from aimd.core.hashing import sha256_bytes
from aimd.core.otp import matched_step
from aimd.platform.models import AuthSession, User, utcnow
from aimd.platform.rbac import Role
from aimd.store.audit import AuditLog

__all__ = [
    "AuthError",
    "Login",
    "begin_login",
    "check_password_policy",
    "create_user",
    "finish_login",
    "hash_password",
    "login",
    "logout",
    "new_password",
    "resolve_token",
    "verify_password",
    "verify_password_queued",
]

_HASHER = PasswordHasher()  # argon2id with the library's current recommended cost


class AuthError(PermissionDeniedError):
    """Login refused or token no longer valid (HTTP 401)."""


def hash_password(password: str) -> str:
    """argon2id hash of ``password``."""
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """True when ``password`` matches the stored argon2 hash."""
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_password_policy(password: str, *, min_length: int) -> str | None:
    """What is wrong with ``password`` under the policy, or ``None``."""
    if len(password) < min_length:
        return f"the password must have at least {min_length} characters"
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        return "the password must mix letters and digits"
    return None


def new_password() -> str:
    """A random password that meets the policy (shown once at creation)."""
    return secrets.token_urlsafe(18) + "7a"


def create_user(
    db: Session,
    audit: AuditLog,
    settings: PlatformSettings,
    *,
    username: str,
    role: str,
    password: str | None = None,
    clearance: int = 1,
    actor: str = "aimd platform",
) -> tuple[User, dict]:
    """Create an account; returns it and the one-time secrets (password, TOTP secret and URI)."""
    try:
        Role(role)
    except ValueError:
        raise InvalidInputError(
            f"unknown role {role!r}", where="role", hint=f"use one of {[r.value for r in Role]}"
        ) from None
    if db.scalar(sa.select(User).where(User.username == username)) is not None:
        raise InvalidInputError(f"user {username!r} already exists", where="username", hint="choose another name")
    password = password or new_password()
    problem = check_password_policy(password, min_length=settings.password_min_length)
    if problem:
        raise InvalidInputError(problem, where="password", hint="choose a longer password with letters and digits")
    secret = pyotp.random_base32() if role in settings.mfa_roles else None
    user = User(
        username=username, role=role, password_hash=hash_password(password), totp_secret=secret, clearance=clearance
    )
    db.add(user)
    db.flush()
    audit.append(
        actor,
        "user.create",
        f"user:{username}",
        {"role": role, "clearance": clearance, "mfa": bool(secret)},
        connection=db,
    )
    shown = {
        "username": username,
        "role": role,
        "password": password,
        "totp_secret": secret,
        "totp_uri": pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="aimd") if secret else None,
    }
    return user, shown


@dataclass
class Login:
    """A successful login: the token (shown once) and when it expires."""

    token: str
    expires_at: dt.datetime
    user: User
    ended_sessions: int


def begin_login(db: Session, audit: AuditLog, *, username: str, client: str = "") -> User:
    """First half of a login: the account, if it exists, is enabled and not locked (audited otherwise).

    The caller commits before the slow password check, so the hash never holds the database.
    """
    user = db.scalar(sa.select(User).where(User.username == username))
    subject = f"user:{username}"
    if user is None or user.disabled:
        audit.append(
            username, "login.failed", subject, {"reason": "unknown or disabled", "client": client}, connection=db
        )
        raise AuthError("wrong user name or password", where="login", hint="check the credentials")
    if user.locked_until is not None and user.locked_until > utcnow():
        audit.append(username, "login.failed", subject, {"reason": "locked", "client": client}, connection=db)
        raise AuthError(
            f"the account is locked until {user.locked_until.isoformat()}Z after repeated failures",
            where="login",
            hint="wait, or ask an admin",
        )
    return user


def finish_login(
    db: Session,
    audit: AuditLog,
    settings: PlatformSettings,
    user: User,
    *,
    password_ok: bool,
    totp: str | None,
    client: str = "",
) -> Login:
    """Second half: count a failure (and lock), or check TOTP, start a session and end the others."""
    now = utcnow()
    subject = f"user:{user.username}"
    reason = None
    if not password_ok:
        reason = "password"
    elif user.role in settings.mfa_roles:
        if not user.totp_secret:
            reason = "mfa not set up"
        elif not totp or (step := matched_step(user.totp_secret, totp)) is None:
            reason = "totp"
        elif not _claim_step(db, user, step):
            reason = "totp reused"
    if reason is not None:
        user.failed_logins += 1
        detail: dict[str, object] = {"reason": reason, "client": client, "failures": user.failed_logins}
        if user.failed_logins >= settings.lockout_attempts:
            user.locked_until = now + dt.timedelta(minutes=settings.lockout_minutes)
            user.failed_logins = 0
            detail["locked_until"] = user.locked_until.isoformat()
        audit.append(user.username, "login.failed", subject, detail, connection=db)
        what, hint = {
            "totp": ("one-time code (TOTP) missing or wrong", "check the credentials"),
            "mfa not set up": ("one-time code (TOTP) missing or wrong", "check the credentials"),
            "totp reused": ("this one-time code (TOTP) was used already", "wait for the next code (30 s)"),
        }.get(reason, ("wrong user name or password", "check the credentials"))
        raise AuthError(what, where="login", hint=hint)
    user.failed_logins = 0
    user.locked_until = None
    ended = 0
    for other in db.scalars(
        sa.select(AuthSession).where(AuthSession.user_id == user.id, AuthSession.ended_at.is_(None))
    ):
        other.ended_at, other.end_reason = now, "replaced by a new login"
        ended += 1
    token = secrets.token_urlsafe(32)
    expires = now + dt.timedelta(minutes=settings.session_minutes)
    db.add(AuthSession(user_id=user.id, token_sha256=sha256_bytes(token.encode()), created_at=now, expires_at=expires))
    audit.append(user.username, "login", subject, {"client": client, "ended_other_sessions": ended}, connection=db)
    return Login(token=token, expires_at=expires, user=user, ended_sessions=ended)


def _claim_step(db: Session, user: User, step: int) -> bool:
    """Record ``step`` as the account's last accepted code unless it is not newer than that: one
    conditional UPDATE, so of two logins racing with one code only one wins (RFC 6238 §5.2)."""
    done = db.execute(
        sa.update(User)
        .where(User.id == user.id, sa.or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return bool(done.rowcount)


def login(
    db: Session,
    audit: AuditLog,
    settings: PlatformSettings,
    *,
    username: str,
    password: str,
    totp: str | None,
    client: str = "",
) -> Login:
    """Check the password (and TOTP where the role needs it), start a session, end the others.

    Failed attempts count towards the lockout; every outcome is audited. The caller commits.
    """
    user = begin_login(db, audit, username=username, client=client)
    db.commit()  # end the read: the deliberately slow hash check must not hold the database
    ok = verify_password(user.password_hash, password)
    return finish_login(db, audit, settings, user, password_ok=ok, totp=totp, client=client)


async def verify_password_queued(stored: str, password: str) -> bool:
    """:func:`verify_password` on the bounded hashing pool: simultaneous logins queue for a core each
    instead of running dozens of memory-hard hashes at once and starving every other request."""
    import asyncio

    return await asyncio.get_running_loop().run_in_executor(_hash_pool(), verify_password, stored, password)


_POOL: list[ThreadPoolExecutor] = []


def _hash_pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="argon2"))
    return _POOL[0]


def resolve_token(db: Session, token: str) -> tuple[User, AuthSession]:
    """The account behind a bearer token; expired, ended or unknown tokens are :class:`AuthError`."""
    row = db.scalar(sa.select(AuthSession).where(AuthSession.token_sha256 == sha256_bytes(token.encode())))
    if row is None:
        raise AuthError("unknown session token", where="Authorization", hint="log in again")
    if row.ended_at is not None:
        raise AuthError(f"the session ended: {row.end_reason}", where="Authorization", hint="log in again")
    if row.expires_at <= utcnow():
        raise AuthError("the session expired", where="Authorization", hint="log in again")
    user = db.get(User, row.user_id)
    if user is None or user.disabled:
        raise AuthError("the account is disabled", where="Authorization", hint="ask an admin")
    return user, row


def logout(db: Session, audit: AuditLog, user: User, session: AuthSession) -> None:
    """End ``session``."""
    session.ended_at, session.end_reason = utcnow(), "logout"
    audit.append(user.username, "logout", f"user:{user.username}", {}, connection=db)
