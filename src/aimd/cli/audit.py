"""``aimd audit`` — verify a hash-chained audit trail (platform, service or annotation package)."""

from __future__ import annotations

from pathlib import Path

import typer

from aimd.cli.common import EXIT_FINDINGS, JsonOption, console, new_typer, print_json

app = new_typer("Audit trails.\n\nExample: aimd audit verify aimd-platform")


@app.command("verify", epilog="Example: aimd audit verify postgresql+psycopg://aimd@127.0.0.1/aimd --json")
def verify(
    target: str = typer.Argument(
        ...,
        help="Database URL, SQLite file, folder holding one *.db, JSON trail, archived segment or annotation package.",
    ),
    archive: Path | None = typer.Option(
        None, "--archive", help="Folder of archived segments (default: audit-archive beside a SQLite database)."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Check that no audit entry was changed, deleted, inserted or reordered (exit 1 names the first bad one).

    Once old entries are archived, the kept entries must link to the newest archived head, and every
    archived segment must match its record (SHA-256, chain, link to the segment before).
    """
    from aimd.core.audit import chain_break
    from aimd.store.audit import check_archive, describe_break, read_trail

    trail = read_trail(target)
    entries = trail.entries
    broken = chain_break(entries, trail.start)
    folder = archive or trail.archive_folder
    problems: list[str] = []
    if trail.archives:
        if folder is None or not folder.is_dir():
            problems.append(f"{len(trail.archives)} archived segment(s) recorded; pass --archive with their folder")
        else:
            problems = check_archive(trail.archives, folder)
    ok = broken is None and not problems
    message = "the chain holds" if broken is None else describe_break(entries, broken)
    result = {
        "target": target,
        "kind": trail.kind,
        "entries": len(entries),
        "ok": ok,
        "first_bad_index": broken,
        "message": message if not problems else "; ".join([message, *problems]),
        "head_sha256": entries[-1].get("sha256") if entries and broken is None else None,
        "starts_after": trail.start,
        "archived_segments": len(trail.archives),
        "archived_entries": sum(a["entries"] for a in trail.archives),
        "archive_problems": problems,
    }
    if json_out:
        print_json(result)
    elif ok:
        archived = (
            f", {result['archived_entries']} archived in {len(trail.archives)} segment(s)" if trail.archives else ""
        )
        console.print(
            f"[green]audit trail holds[/green]: {len(entries)} entries ({trail.kind}){archived}", highlight=False
        )
    else:
        console.print(f"[red]audit trail broken[/red]: {result['message']}", highlight=False)
    if not ok:
        raise typer.Exit(EXIT_FINDINGS)
