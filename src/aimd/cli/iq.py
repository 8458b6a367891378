"""``aimd iq``: installation qualification (002) — protocol, release bundles, install, rollback, IQ run."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from aimd.cli.common import EXIT_FINDINGS, JsonOption, console, new_typer, print_json

app = new_typer(
    "Installation qualification (002): protocol template, signed release bundles, offline install with "
    "automatic rollback, one-command rollback, the IQ run and its report.\n\n"
    "Example: aimd iq protocol-template > iq.yaml"
)
bundle_app = new_typer(
    "Signed release bundles (002 §5.2.1, §5.5, §6.6).\n\n"
    "Example: aimd iq bundle build out/ --version 1.0.0 --key release.key --notes NOTES.md"
)
app.add_typer(bundle_app, name="bundle")


@app.command("protocol-template", epilog="Example: aimd iq protocol-template > iq.yaml")
def protocol_template_cmd(
    version: str | None = typer.Option(None, "--version", help="Device version (default: aimd's)."),
    json_out: bool = JsonOption,
) -> None:
    """Print the IQ protocol of aimd's device as YAML (sites fill people, training and site)."""
    from aimd.iq.protocol import dump_protocol
    from aimd.iq.template import protocol_template

    protocol = protocol_template(version) if version else protocol_template()
    if json_out:
        print_json(protocol.model_dump(mode="json"))
    else:
        print(dump_protocol(protocol), end="")


@app.command("protocol-schema", epilog="Example: aimd iq protocol-schema > iq.schema.json")
def protocol_schema_cmd(json_out: bool = JsonOption) -> None:
    """Print the JSON Schema of the protocol (always JSON)."""
    from aimd.iq.protocol import protocol_schema

    print_json(protocol_schema())


@app.command("protocol-check", epilog="Example: aimd iq protocol-check iq.yaml")
def protocol_check_cmd(path: Path = typer.Argument(..., help="Protocol YAML."), json_out: bool = JsonOption) -> None:
    """Validate a protocol against the schema (exit 2 naming the field when it does not match)."""
    from aimd.iq.protocol import load_protocol

    protocol = load_protocol(path)
    info = {"protocol_id": protocol.protocol_id, "version": protocol.device.version, "valid": True}
    print_json(info) if json_out else console.print(f"[green]{path}: valid[/green] ({protocol.protocol_id})")


@app.command("keygen", epilog="Example: aimd iq keygen release.key")
def keygen_cmd(
    path: Path = typer.Argument(..., help="Private key file to create (public key: PATH.pub)."),
    json_out: bool = JsonOption,
) -> None:
    """Create an Ed25519 signing key pair for release bundles."""
    from aimd.iq.signing import fingerprint, generate_key

    pub = generate_key(path)
    info = {"private_key": str(path), "public_key": str(pub), "fingerprint": fingerprint(pub.read_bytes())}
    if json_out:
        print_json(info)
    else:
        console.print(f"private key {path} (0600), public key {pub}, fingerprint {info['fingerprint']}")


@bundle_app.command(
    "build",
    epilog="Example: aimd iq bundle build dist/aimd-1.0.0 --version 1.0.0 "
    "--key release.key --notes RELEASE-NOTES.md --doc manual.md",
)
def bundle_build_cmd(
    out: Path = typer.Argument(..., help="Bundle folder to create."),
    version: str = typer.Option(..., "--version", help="Release version MAJOR.MINOR.PATCH."),
    key: Path = typer.Option(..., "--key", help="Ed25519 private key (aimd iq keygen)."),
    notes: Path = typer.Option(..., "--notes", help="Release notes (Changes, Fixes, Dependencies)."),
    wheel: Path | None = typer.Option(None, "--wheel", help="Built product wheel (default: build aimd)."),
    source: Path | None = typer.Option(None, "--source", help="Project source tree to build the wheel from."),
    wheels_from: Path | None = typer.Option(None, "--wheels-from", help="Folder of dependency wheels to include."),
    lock: Path | None = typer.Option(None, "--lock", help="name==version requirements to download as wheels."),
    model: list[Path] | None = typer.Option(None, "--model", help="Model file (repeatable)."),
    config: Path | None = typer.Option(None, "--config", help="Default configuration (aimd.toml)."),
    doc: list[Path] | None = typer.Option(None, "--doc", help="User document naming the version (repeatable)."),
    migration: list[Path] | None = typer.Option(None, "--migration", help="NNNN_name.sql migration (repeatable)."),
    json_out: bool = JsonOption,
) -> None:
    """Build a signed release bundle."""
    from aimd.iq.bundle import build_bundle

    manifest = build_bundle(
        out,
        version=version,
        key=key,
        release_notes=notes,
        product_wheel=wheel,
        source=source,
        wheels_from=wheels_from,
        lock=lock,
        models=model,
        config=config,
        docs=doc,
        migrations=migration,
    )
    if json_out:
        print_json(manifest)
    else:
        size = sum(f["size"] for f in manifest["files"])
        console.print(
            f"bundle {out}: {manifest['product']['name']} {version}, {len(manifest['files'])} files, "
            f"{size} bytes, signer {manifest['signer']}"
        )


@bundle_app.command("verify", epilog="Example: aimd iq bundle verify dist/aimd-1.0.0 --public-key release.key.pub")
def bundle_verify_cmd(
    bundle: Path = typer.Argument(..., help="Bundle folder."),
    public_key: Path | None = typer.Option(None, "--public-key", help="Trusted public key (default: the bundle's)."),
    json_out: bool = JsonOption,
) -> None:
    """Check the signature and every file's SHA-256 and size; exit 1 on any problem."""
    from aimd.iq.bundle import bundle_problems

    problems = bundle_problems(bundle, public_key=public_key.read_bytes() if public_key else None)
    if json_out:
        print_json({"bundle": str(bundle), "problems": problems, "sound": not problems})
    else:
        for p in problems:
            console.print(f"[red]{p}[/red]")
        if not problems:
            console.print(f"[green]{bundle}: signature and hashes verified[/green]")
    if problems:
        raise typer.Exit(EXIT_FINDINGS)


@app.command("install", epilog="Example: aimd iq install dist/aimd-1.0.0 --prefix /opt/aimd --approved-by qa")
def install_cmd(
    bundle: Path = typer.Argument(..., help="Bundle folder."),
    prefix: Path = typer.Option(..., "--prefix", help="Installation prefix."),
    public_key: Path | None = typer.Option(None, "--public-key", help="Trusted public key (default: the bundle's)."),
    operator: str | None = typer.Option(None, "--operator", help="Who installs (default: AIMD_OPERATOR or login)."),
    approved_by: str | None = typer.Option(None, "--approved-by", help="Who approved the install."),
    service_user: str | None = typer.Option(
        None,
        "--service-user",
        help="Unprivileged account the services run as: owns data/, reads config/ (root-owned) through its group.",
    ),
    python: str | None = typer.Option(None, "--python", help="Interpreter of the release's venv (default: this one)."),
    json_out: bool = JsonOption,
) -> None:
    """Verify and install a bundle; any failure rolls back automatically (exit 1)."""
    from aimd.iq.install import install

    result = install(
        bundle,
        prefix,
        operator=operator,
        approved_by=approved_by,
        public_key=public_key.read_bytes() if public_key else None,
        service_user=service_user,
        python=python,
    )
    if json_out:
        print_json(result.to_dict())
    else:
        console.print(
            f"[green]installed {result.version}[/green] (previous {result.previous}) in "
            f"{result.seconds:.1f} s: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.steps.items())
        )


@app.command("rollback", epilog="Example: aimd iq rollback --prefix /opt/aimd")
def rollback_cmd(
    prefix: Path = typer.Option(..., "--prefix", help="Installation prefix."),
    operator: str | None = typer.Option(None, "--operator", help="Who rolls back."),
    approved_by: str | None = typer.Option(None, "--approved-by", help="Who approved the rollback."),
    json_out: bool = JsonOption,
) -> None:
    """Go back to the previous release with data and configuration as before the last install."""
    from aimd.iq.install import rollback

    result = rollback(prefix, operator=operator, approved_by=approved_by)
    if json_out:
        print_json(result.to_dict())
    else:
        console.print(
            f"[green]rolled back {result.previous} → {result.version}[/green] in {result.seconds:.2f} s; "
            f"data and configuration hash-identical to the backup"
        )


@app.command("log", epilog="Example: aimd iq log --prefix /opt/aimd --task 1a2b3c")
def log_cmd(
    prefix: Path = typer.Option(..., "--prefix", help="Installation prefix."),
    task: str | None = typer.Option(None, "--task", help="Only this task id."),
    event: str | None = typer.Option(None, "--event", help="Only this event (created, approved, executed, ...)."),
    json_out: bool = JsonOption,
) -> None:
    """Retrieve install / rollback events (002 §6.5.1 c); exit 1 when the hash chain is broken."""
    from aimd.iq.events import chain_break, read_events
    from aimd.iq.install import Layout

    events = read_events(Layout(prefix).events)
    broken = chain_break(events)
    rows = [e for e in events if (task is None or e["task_id"] == task) and (event is None or e["event"] == event)]
    if json_out:
        print_json({"events": rows, "chain_break": broken})
    else:
        for e in rows:
            console.print(
                f"{e['time']} {e['task_id']} {e['kind']:8} {e['event']:9} {e['step'] or '':14} "
                f"{e['operator']} {json.dumps(e['result'], ensure_ascii=False, default=str)[:100]}",
                highlight=False,
            )
        if broken is not None:
            console.print(f"[red]hash chain broken at entry {broken}[/red]")
    if broken is not None:
        raise typer.Exit(EXIT_FINDINGS)


@app.command(
    "run",
    epilog="Example: aimd iq run --protocol iq.yaml --prefix /opt/aimd --target "
    "https://127.0.0.1:8443 --out iq-report/ --profile quick",
)
def run_cmd(
    protocol: Path | None = typer.Option(None, "--protocol", help="Protocol YAML (default: aimd's template)."),
    prefix: Path | None = typer.Option(None, "--prefix", help="Installation prefix to qualify."),
    target: str | None = typer.Option(None, "--target", help="URL of the running service to qualify."),
    out: Path = typer.Option(Path("iq-report"), "--out", help="Report folder."),
    profile: str = typer.Option("quick", "--profile", help="quick (minutes) or full (large drills, all levels)."),
    token: str | None = typer.Option(None, "--token", help="Bearer token for baseline requests."),
    platform: str | None = typer.Option(None, "--platform", help="URL of the running annotation platform."),
    platform_admin: Path | None = typer.Option(
        None, "--platform-admin", help="JSON with the platform admin's username, password, totp_secret."
    ),
    only: list[str] | None = typer.Option(None, "--only", help="Only these checks or areas (repeatable)."),
    pdf: bool = typer.Option(True, "--pdf/--no-pdf", help="Also write iq-report.pdf."),
    json_out: bool = JsonOption,
) -> None:
    """Run the IQ checks and write iq-report.json/html/pdf; exit 1 unless the conclusion is pass."""
    from rich.table import Table

    from aimd.iq.runner import run_iq
    from aimd.iq.template import protocol_template

    style = {"pass": "green", "fail": "red", "not_evaluated": "yellow"}

    def show(res: object) -> None:
        if not json_out:
            console.print(f"[{style[res.verdict.value]}]{res.verdict.value:14}[/] {res.key}", highlight=False)

    report = run_iq(
        protocol if protocol else protocol_template(),
        out,
        prefix=prefix,
        target=target,
        profile=profile,
        token=token,
        platform=platform,
        platform_admin=platform_admin,
        pdf=pdf,
        only=only,
        progress=show,
    )
    if json_out:
        print_json(
            {
                "conclusion": report.basic.conclusion,
                "scores": report.scores,
                "report": str(out),
                "seconds": report.seconds,
            }
        )
    else:
        table = Table(title=f"IQ {report.basic.report_id}: {report.basic.conclusion.upper()}")
        for col in ("area", "weight", "passed", "failed", "not evaluated", "score"):
            table.add_column(col)
        for name, a in report.scores["areas"].items():
            table.add_row(
                name,
                str(a["weight"]),
                str(a["passed"]),
                str(a["failed"]),
                str(a["not_evaluated"]),
                "—" if a["score"] is None else str(a["score"]),
            )
        console.print(table)
        console.print(f"weighted score {report.scores['total']} · " + "; ".join(report.scores["reasons"]))
        console.print(f"report: {out / 'iq-report.html'} ({report.seconds:.1f} s)")
    if report.basic.conclusion != "pass":
        raise typer.Exit(EXIT_FINDINGS)
