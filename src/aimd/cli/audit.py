"""``aimd audit`` — verify a hash-chained audit trail (platform, service or annotation package)."""

from __future__ import annotations

import typer

from aimd.cli.common import EXIT_FINDINGS, JsonOption, console, new_typer, print_json

app = new_typer("Audit trails.\n\nExample: aimd audit verify aimd-data/platform")


@app.command("verify", epilog="Example: aimd audit verify postgresql+psycopg://aimd@127.0.0.1/aimd --json")
def verify(
    target: str = typer.Argument(
        ..., help="Database URL, SQLite file, folder holding one *.db, JSON trail or annotation package."
    ),
    json_out: bool = JsonOption,
) -> None:
    """Check that no audit entry was changed, deleted, inserted or reordered (exit 1 names the first bad one)."""
    from aimd.core.audit import chain_break
    from aimd.store.audit import describe_break, load_trail

    kind, entries = load_trail(target)
    broken = chain_break(entries)
    result = {
        "target": target,
        "kind": kind,
        "entries": len(entries),
        "ok": broken is None,
        "first_bad_index": broken,
        "message": "the chain holds" if broken is None else describe_break(entries, broken),
        "head_sha256": entries[-1].get("sha256") if entries and broken is None else None,
    }
    if json_out:
        print_json(result)
    elif broken is None:
        console.print(f"[green]audit trail holds[/green]: {len(entries)} entries ({kind})", highlight=False)
    else:
        console.print(f"[red]audit trail broken[/red]: {result['message']}", highlight=False)
    if broken is not None:
        raise typer.Exit(EXIT_FINDINGS)
