"""``aimd platform`` — the annotation platform server: init, serve, accounts, backup and restore."""

from __future__ import annotations

from pathlib import Path

import typer

from aimd.cli.common import EXIT_FINDINGS, JsonOption, console, new_typer, print_json

app = new_typer(
    "The annotation platform server (001 §6, §9–§11).\n\n"
    "Example: aimd platform init --data aimd-platform && aimd platform serve --data aimd-platform"
)
user_app = new_typer("Accounts.\n\nExample: aimd platform user add --data aimd-platform ann1 --role annotator")
app.add_typer(user_app, name="user")
member_app = new_typer(
    "Per-project member lists: a project with members is seen and worked on by its members (and admins) only.\n\n"
    "Example: aimd platform member add nodules ann1 ann2 --data aimd-platform"
)
app.add_typer(member_app, name="member")

DataOption = typer.Option(Path("aimd-platform"), "--data", help="Platform folder (database, blobs, exports).")
DbOption = typer.Option(None, "--db", help="Database URL (default: SQLite in --data; or AIMD_PLATFORM__DATABASE_URL).")


def _open(data: Path, db: str | None):
    from aimd.platform import Platform

    return Platform.open(data, database_url=db)


def _shown(shown: dict, json_out: bool) -> None:
    if json_out:
        print_json(shown)
        return
    console.print(f"user [bold]{shown['username']}[/bold] ({shown['role']})", highlight=False)
    console.print(f"  password (shown once): {shown['password']}", highlight=False)
    if shown.get("totp_secret"):
        console.print(f"  TOTP secret (shown once): {shown['totp_secret']}", highlight=False)
        console.print(f"  TOTP URI: {shown['totp_uri']}", highlight=False)


@app.command("init", epilog="Example: aimd platform init --data aimd-platform --json")
def init(
    data: Path = DataOption,
    db: str | None = DbOption,
    admin: str = typer.Option("admin", "--admin", help="Name of the first admin."),
    json_out: bool = JsonOption,
) -> None:
    """Create the schema and a first admin (random password and TOTP secret printed once)."""
    import sqlalchemy as sa

    from aimd.platform.auth import create_user
    from aimd.platform.models import User

    platform = _open(data, db)
    try:
        with platform.sessions() as s:
            if s.scalar(sa.select(sa.func.count()).select_from(User)):
                from aimd.core.errors import InvalidInputError

                raise InvalidInputError(
                    "the platform already has accounts", where=str(data), hint="use aimd platform user add"
                )
            _, shown = create_user(
                s,
                platform.audit,
                platform.settings,
                username=admin,
                role="admin",
                clearance=3,
                actor="aimd platform init",
            )
            s.commit()
    finally:
        platform.close()
    _shown({**shown, "data": str(data.resolve())}, json_out)


@app.command("serve", epilog="Example: aimd platform serve --data aimd-platform --port 8600")
def serve(
    data: Path = DataOption,
    db: str | None = DbOption,
    host: str | None = typer.Option(None, "--host", help="Bind address (loopback unless TLS is set)."),
    port: int | None = typer.Option(None, "--port"),
    tls_cert: Path | None = typer.Option(None, "--tls-cert"),
    tls_key: Path | None = typer.Option(None, "--tls-key"),
    json_out: bool = JsonOption,
) -> None:
    """Serve the JSON API (/api/v1, /docs, /v2/health/live|ready, /metrics)."""
    import uvicorn

    from aimd.core.config import get_settings
    from aimd.platform import Platform
    from aimd.platform.api import create_app
    from aimd.platform.settings import check_bind

    base = get_settings().platform
    settings = base.model_copy(
        update={
            k: v
            for k, v in {"host": host, "port": port, "tls_cert": tls_cert, "tls_key": tls_key}.items()
            if v is not None
        }
    )
    check_bind(settings)
    platform = Platform.open(data, database_url=db, settings=settings)
    scheme = "https" if settings.tls_cert else "http"
    where = {
        "url": f"{scheme}://{settings.host}:{settings.port}",
        "docs": "/docs",
        "api": "/api/v1",
        "data": str(platform.data_dir),
        "database": platform.engine.dialect.name,
    }
    if json_out:
        print_json(where)
    else:
        console.print(
            f"aimd platform on {where['url']} ({where['database']}); API docs at {where['url']}/docs", highlight=False
        )
    uvicorn.run(
        create_app(platform),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        # keep idle connections longer than a busy client's pause between requests (uvicorn's 5 s closed
        # them while a client was about to reuse them: "remote end closed connection" under load)
        timeout_keep_alive=75,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
    )


@user_app.command("add", epilog="Example: aimd platform user add ann1 --role annotator --data aimd-platform")
def user_add(
    username: str,
    role: str = typer.Option(..., "--role", help="intake, annotator, reviewer, qc, arbiter, admin"),
    clearance: str = typer.Option("internal", "--clearance", help="public, internal, confidential, restricted"),
    data: Path = DataOption,
    db: str | None = DbOption,
    json_out: bool = JsonOption,
) -> None:
    """Add an account (password and, for privileged roles, TOTP secret printed once)."""
    from aimd.core.errors import InvalidInputError
    from aimd.platform.auth import create_user
    from aimd.platform.rbac import CLASSIFICATIONS

    if clearance not in CLASSIFICATIONS:
        raise InvalidInputError(
            f"unknown clearance {clearance!r}", where="--clearance", hint=f"use one of {list(CLASSIFICATIONS)}"
        )
    platform = _open(data, db)
    try:
        with platform.sessions() as s:
            _, shown = create_user(
                s,
                platform.audit,
                platform.settings,
                username=username,
                role=role,
                clearance=CLASSIFICATIONS[clearance],
                actor="aimd platform user add",
            )
            s.commit()
    finally:
        platform.close()
    _shown(shown, json_out)


def _change(username: str, data: Path, db: str | None, json_out: bool, **change: object) -> None:
    import sqlalchemy as sa

    from aimd.core.errors import InvalidInputError
    from aimd.platform.models import AuthSession, User, utcnow
    from aimd.platform.rbac import Role

    if "role" in change and change["role"] not in {r.value for r in Role}:
        raise InvalidInputError(
            f"unknown role {change['role']!r}", where="ROLE", hint=f"use one of {[r.value for r in Role]}"
        )
    platform = _open(data, db)
    try:
        with platform.sessions() as s:
            user = s.scalar(sa.select(User).where(User.username == username))
            if user is None:
                raise InvalidInputError(f"no user {username!r}", where="USERNAME", hint="check the name")
            for key, value in change.items():
                setattr(user, key, value)
            if change.get("disabled"):
                s.execute(
                    sa.update(AuthSession)
                    .where(AuthSession.user_id == user.id, AuthSession.ended_at.is_(None))
                    .values(ended_at=utcnow(), end_reason="account disabled")
                )
            platform.audit.append("aimd platform cli", "user.change", f"user:{username}", change, connection=s)
            s.commit()
            out = {"username": user.username, "role": user.role, "disabled": user.disabled}
    finally:
        platform.close()
    if json_out:
        print_json(out)
    else:
        console.print(f"{out['username']}: role {out['role']}, disabled {out['disabled']}", highlight=False)


@user_app.command("disable", epilog="Example: aimd platform user disable ann1 --data aimd-platform")
def user_disable(
    username: str, data: Path = DataOption, db: str | None = DbOption, json_out: bool = JsonOption
) -> None:
    """Disable an account and end its sessions."""
    _change(username, data, db, json_out, disabled=True)


@user_app.command("role", epilog="Example: aimd platform user role ann1 reviewer --data aimd-platform")
def user_role(
    username: str, role: str, data: Path = DataOption, db: str | None = DbOption, json_out: bool = JsonOption
) -> None:
    """Change an account's role."""
    _change(username, data, db, json_out, role=role)


@app.command("backup", epilog="Example: aimd platform backup backups/2026-12-04 --data aimd-platform")
def backup_cmd(dest: Path, data: Path = DataOption, db: str | None = DbOption, json_out: bool = JsonOption) -> None:
    """Back up database and blobs with a hash manifest."""
    from aimd.platform.backup import backup

    platform = _open(data, db)
    try:
        manifest = backup(platform, dest)
    finally:
        platform.close()
    out = {
        "dest": str(dest),
        "files": len(manifest["files"]),
        "database": manifest["database"],
        "audit": manifest["audit"],
    }
    if json_out:
        print_json(out)
    else:
        console.print(
            f"backup written: {dest} ({out['files']} files, audit head {manifest['audit']['head_sha256']})",
            highlight=False,
        )


@app.command("restore", epilog="Example: aimd platform restore backups/2026-12-04 --data aimd-platform-restored")
def restore_cmd(src: Path, data: Path = DataOption, db: str | None = DbOption, json_out: bool = JsonOption) -> None:
    """Verify every hash of a backup, then restore it into an empty platform folder (and database)."""
    from aimd.platform.backup import restore

    out = restore(src, data, database_url=db)
    if json_out:
        print_json(out)
    else:
        console.print(
            f"restored {out['audit_entries']} audit entries and the blobs into {data}; checks pass", highlight=False
        )


@app.command("gc", epilog="Example: aimd platform gc --data aimd-platform --json")
def gc_cmd(
    data: Path = DataOption,
    db: str | None = DbOption,
    grace: float | None = typer.Option(None, "--grace-seconds", help="Spare blobs touched this recently."),
    json_out: bool = JsonOption,
) -> None:
    """Unlink blobs that no committed row names (left behind by a crash after a project deletion)."""
    from aimd.platform.projects import collect_blobs

    platform = _open(data, db)
    try:
        with platform.sessions() as s:
            wait = platform.settings.blob_gc_grace_seconds if grace is None else grace
            removed = collect_blobs(s, platform.audit, platform.blobs, "aimd platform gc", grace_seconds=wait)
            s.commit()
            kept = len(platform.blobs)
    finally:
        platform.close()
    if json_out:
        print_json({"removed": removed, "kept": kept})
    else:
        console.print(f"{len(removed)} unreferenced blob(s) removed, {kept} kept", highlight=False)


@app.command("verify", epilog="Example: aimd platform verify --data aimd-platform --json")
def verify_cmd(data: Path = DataOption, db: str | None = DbOption, json_out: bool = JsonOption) -> None:
    """Check the stored data: the audit chain, every blob and mask slab against its SHA-256 name, and that
    every version a row names (images, drafts, pre-labels, submissions) has its blob and all its slabs.
    Exit 1 names what fails."""
    from aimd.platform.mask_store import missing_parts
    from aimd.platform.projects import referenced_blobs

    platform = _open(data, db)
    try:
        with platform.sessions() as s:
            referenced = referenced_blobs(s)
        out = {
            "audit_first_bad": platform.audit.verify(),
            "damaged": platform.blobs.verify(),
            "missing": missing_parts(platform.blobs, referenced),
            "versions_checked": len(referenced),
        }
    finally:
        platform.close()
    out["ok"] = out["audit_first_bad"] is None and not out["damaged"] and not out["missing"]
    if json_out:
        print_json(out)
    elif out["ok"]:
        console.print(f"[green]stored data holds[/green]: {out['versions_checked']} referenced blobs", highlight=False)
    else:
        console.print(f"[red]stored data fails its checks[/red]: {out}", highlight=False)
    if not out["ok"]:
        raise typer.Exit(EXIT_FINDINGS)


def _project(s, project: str):
    """The project named (or numbered) ``project``."""
    import sqlalchemy as sa

    from aimd.core.errors import InvalidInputError
    from aimd.platform.models import Project

    found = s.scalar(sa.select(Project).where(Project.name == project))
    if found is None and project.isdigit():
        found = s.get(Project, int(project))
    if found is None:
        raise InvalidInputError(f"no project {project!r}", where="PROJECT", hint="give its name or id")
    return found


def _members(project: str, data: Path, db: str | None, json_out: bool, change) -> None:
    from aimd.platform.models import User

    platform = _open(data, db)
    try:
        with platform.sessions() as s:
            found = _project(s, project)
            actor = User(username="aimd platform cli")
            out = change(s, platform.audit, actor, found)
            s.commit()
    finally:
        platform.close()
    if json_out:
        print_json(out)
        return
    names = ", ".join(f"{m['username']} ({m['role']})" for m in out["members"]) or "none"
    console.print(f"project {out['project']}: members-only {out['members_only']}; members: {names}", highlight=False)
    if out.get("open_tasks_of_removed"):
        console.print(f"  open tasks of {out['removed']} to redistribute: {out['open_tasks_of_removed']}")


@member_app.command("add", epilog="Example: aimd platform member add nodules ann1 ann2 --data aimd-platform")
def member_add(
    project: str,
    usernames: list[str],
    data: Path = DataOption,
    db: str | None = DbOption,
    json_out: bool = JsonOption,
) -> None:
    """Add accounts to a project's member list (the project becomes members-only)."""
    from aimd.platform.members import add_members

    _members(project, data, db, json_out, lambda s, audit, actor, p: add_members(s, audit, actor, p, usernames))


@member_app.command("remove", epilog="Example: aimd platform member remove nodules ann2 --data aimd-platform")
def member_remove(
    project: str, username: str, data: Path = DataOption, db: str | None = DbOption, json_out: bool = JsonOption
) -> None:
    """Take an account off a project's member list (its open tasks there are listed for redistribution)."""
    from aimd.platform.members import remove_member

    _members(project, data, db, json_out, lambda s, audit, actor, p: remove_member(s, audit, actor, p, username))


@member_app.command("list", epilog="Example: aimd platform member list nodules --data aimd-platform --json")
def member_list(project: str, data: Path = DataOption, db: str | None = DbOption, json_out: bool = JsonOption) -> None:
    """Show a project's member list."""
    from aimd.platform.members import list_members

    _members(project, data, db, json_out, lambda s, _audit, _actor, p: list_members(s, p))


@app.command(
    "import-study",
    epilog="Example: aimd platform import-study nodules study-deid/ --case-key case-0001 --data aimd-platform",
)
def import_study_cmd(
    project: str,
    study: Path = typer.Argument(..., help="Folder or .zip archive of the study's de-identified DICOM files."),
    case_key: str = typer.Option(..., "--case-key", help="Key of the new case."),
    primary: str | None = typer.Option(
        None, "--primary", help="SeriesInstanceUID to annotate (default: the volume with the most slices)."
    ),
    report: Path | None = typer.Option(None, "--report", help="Report text file (UTF-8) kept with the case."),
    data: Path = DataOption,
    db: str | None = DbOption,
    json_out: bool = JsonOption,
) -> None:
    """Import a DICOM study as one case: its series split, checked and registered onto the primary series."""
    from aimd.core.errors import InvalidInputError
    from aimd.platform.models import User
    from aimd.platform.projects import IdentifiersFoundError
    from aimd.platform.series.study import StudyImport, import_study

    if not study.exists():
        raise InvalidInputError("no such folder or file", where=str(study), hint="pass the study's folder or .zip")
    spec = StudyImport(
        case_key=case_key, primary_series_uid=primary, report_text=report.read_text("utf-8") if report else ""
    )
    source = {"archive": study} if study.is_file() else {"folder": study}  # a zip is read from its file
    platform = _open(data, db)
    try:
        with platform.sessions() as s:
            actor = User(username="aimd platform cli")
            try:
                out = import_study(s, platform.audit, platform.blobs, actor, _project(s, project), spec, **source)
            except IdentifiersFoundError:
                s.commit()  # the refusal is audited
                raise
            s.commit()
    finally:
        platform.close()
    if json_out:
        print_json(out)
        return
    console.print(f"case {out['case']['case_key']} (id {out['case']['id']}): primary {out['primary']}", highlight=False)
    for row in out["series"]:
        reg = row["registration"] or {}
        what = (
            row["role"]
            if not reg
            else f"{reg['method']} {reg['status']} coverage {reg['overlap']:.0%} MI {reg['mattes_mi']}"
        )
        console.print(f"  {row['series_uid']} {row['modality']} {row['slices']} slices: {what}", highlight=False)


@app.command("audit-archive", epilog="Example: aimd platform audit-archive --data aimd-platform --days 1825")
def audit_archive_cmd(
    data: Path = DataOption,
    db: str | None = DbOption,
    days: int | None = typer.Option(
        None, "--days", help="Keep this many days (default: platform.audit_retention_days)."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Archive audit entries older than the retention into verified segments (DATA/audit-archive), then purge them."""
    from aimd.platform.retention import archive_audit

    platform = _open(data, db)
    try:
        out = archive_audit(platform, actor="aimd platform audit-archive", days=days)
        kept = len(platform.audit)
    finally:
        platform.close()
    out["kept"] = kept
    if json_out:
        print_json(out)
    elif out["entries"]:
        console.print(
            f"archived {out['entries']} audit entries (seq {out['first_seq']}–{out['through_seq']}) to "
            f"{out['folder']}/{out['segment']}; {kept} kept",
            highlight=False,
        )
    else:
        console.print(f"no audit entry older than {out['retention_days']} days; {kept} kept", highlight=False)
