"""``aimd qc``, ``aimd package``, ``aimd annotation`` and ``aimd data register``: the annotation engine's CLI.

Exit codes: 0 ok, 1 checks found errors (QC errors, special review, refused export, failed
verification, insufficient taxonomy version bump, registration error over the limit), 2 bad input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

import aimd.annotation as ann

if TYPE_CHECKING:
    from aimd.annotation import QCConfig
    from aimd.annotation.taxonomy import Taxonomy
    from aimd.annotation.templates import AnnotationTemplate
from aimd.cli.common import (
    EXIT_FINDINGS,
    JsonOption,
    console,
    findings_sentence,
    new_typer,
    plural,
    print_json,
    progress_bar,
    render_findings,
)
from aimd.core.errors import InvalidInputError
from aimd.core.findings import Finding, has_errors

__all__ = ["annotation_app", "package_app", "qc_app", "register_data_commands"]

#: Registration methods for the help text (a test keeps it equal to :data:`aimd.annotation.METHODS`,
#: which lives beside SimpleITK).
REGISTRATION_METHODS = ("rigid", "affine", "bspline")

qc_app = new_typer(
    "Automatic QC and reader agreement (001 §6.5, §8.4, §9).\n\n"
    "Example: aimd qc check case/annotations/reader_1.json --json"
)
package_app = new_typer(
    "Export frozen, hashed annotation versions and verify them (001 §6.6, §10.1.5, §10.2.4).\n\n"
    "Example: aimd package export annotations/ export/ --version 1.0"
)
annotation_app = new_typer(
    "Annotation package schema, taxonomy, templates and simulated readers (001 §8.2, App. C).\n\n"
    "Example: aimd annotation schema > package.schema.json"
)
taxonomy_app = new_typer(
    "Label taxonomy (001 §8.2–§8.3): show, validate, diff versions.\n\n"
    "Example: aimd annotation taxonomy diff old.json new.json --json"
)
template_app = new_typer("Annotation templates (001 §10.1.3).\n\nExample: aimd annotation template show --json")
annotation_app.add_typer(taxonomy_app, name="taxonomy")
annotation_app.add_typer(template_app, name="template")

TaxonomyOpt = typer.Option(None, "--taxonomy", help="Taxonomy JSON (default: the built-in aimd taxonomy).")
TemplateOpt = typer.Option(None, "--template", help="Template JSON, or 'default' for the built-in phantom template.")
ConfigOpt = typer.Option(None, "--config", help="QC thresholds file (.toml with a [qc] table, or .json).")


def _taxonomy(path: Path | None) -> Taxonomy:
    return ann.load_taxonomy(path) if path else ann.default_taxonomy()


def _template(value: str | None) -> AnnotationTemplate | None:
    if value is None:
        return None
    return ann.default_template() if value == "default" else ann.load_template(value)


def _config(path: Path | None, template: AnnotationTemplate | None, **overrides: Any) -> QCConfig:
    base = ann.load_qc_config(path)
    if template is not None and path is None:
        base = base.with_overrides(template.qc, where=f"template {template.id}")
    return base.with_overrides({k: v for k, v in overrides.items() if v is not None})


def _exit_on(findings: list[Finding]) -> None:
    if has_errors(findings):
        raise typer.Exit(EXIT_FINDINGS)


# ------------------------------------------------------------------------------------------------ qc
@qc_app.command("check", epilog="Example: aimd qc check cases/ --template default --json")
def qc_check(
    packages: list[Path] = typer.Argument(..., help="Package files (.json/.jsonl) or folders holding them."),
    taxonomy: Path | None = TaxonomyOpt,
    template: str | None = TemplateOpt,
    config: Path | None = ConfigOpt,
    max_registration_error_mm: float | None = typer.Option(
        None, "--max-registration-error-mm", help="Registration error limit, 3–5 mm (§8.5.1.3)."
    ),
    lab_gap_days: int | None = typer.Option(None, "--lab-gap-days", help="Image–lab gap needing a label (§8.5.3.4)."),
    json_out: bool = JsonOption,
) -> None:
    """Level-1 automatic QC: geometry, masks, shapes, labels, attributes, links, fields, registrations, files."""
    tax, tpl = _taxonomy(taxonomy), _template(template)
    cfg = _config(config, tpl, registration_max_error_mm=max_registration_error_mm, lab_gap_days=lab_gap_days)
    sources = ann.collect_sources(packages)
    cache = ann.QCCache()
    results: dict[str, list[Finding]] = {}
    with progress_bar("QC check", len(sources), enabled=not json_out) as advance:
        for s in sources:
            results[s.where] = ann.run_qc(s, taxonomy=tax, template=tpl, config=cfg, cache=cache)
            advance()
    every = [f for fs in results.values() for f in fs]
    if json_out:
        print_json(
            {
                "summary": ann.findings_summary(every),
                "taxonomy": f"{tax.name} {tax.version}",
                "template": f"{tpl.id} {tpl.version}" if tpl else None,
                "packages": {
                    k: {"summary": ann.findings_summary(v), "findings": [f.model_dump(mode="json") for f in v]}
                    for k, v in results.items()
                },
            }
        )
    else:
        for where, fs in results.items():
            render_findings(fs, f"QC {where}")
        console.print(f"{plural(len(results), 'package')}: {findings_sentence(every)}")
    _exit_on(every)


@qc_app.command("agree", epilog="Example: aimd qc agree reader_1.json reader_2.json --record qc_record.json --json")
def qc_agree(
    packages: list[Path] = typer.Argument(None, help="One package file or folder per reader (or version)."),
    dataset: Path | None = typer.Option(
        None, "--dataset", help="Phantom dataset: readers are annotations/<name>.json."
    ),
    config: Path | None = ConfigOpt,
    second_review: float | None = typer.Option(None, "--second-review", help="Dice threshold for second review."),
    special_review: float | None = typer.Option(None, "--special-review", help="Dice threshold for special review."),
    record: Path | None = typer.Option(None, "--record", help="Write the QC record (JSON) here."),
    html: Path | None = typer.Option(None, "--html", help="Write an HTML QC report here."),
    json_out: bool = JsonOption,
) -> None:
    """Agreement: Dice/IoU/HD/HD95, box IoU, kappa, ICC, Pearson; review flags; model-assisted deviation."""
    if dataset is None and (not packages or len(packages) < 2):
        raise InvalidInputError(
            "pass two or more packages/folders, or --dataset",
            where="aimd qc agree",
            hint="aimd qc agree reader_1.json reader_2.json",
        )
    cfg = _config(config, None, dice_second_review=second_review, dice_special_review=special_review)
    readers = ann.dataset_readers(dataset) if dataset is not None else ann.reader_sets(list(packages))
    n_cases = len({s.package.image.uid for r in readers for s in r.sources})
    with progress_bar("agreement", n_cases, enabled=not json_out) as advance:
        result = ann.agree(readers, config=cfg, progress=lambda n: advance(n))
    if record is not None:
        ann.write_qc_record(result, record)
    if html is not None:
        ann.render_qc_report(html, agreement=result)
    if json_out:
        print_json(result.to_dict())
    else:
        table = Table(title="agreement (001 §9.2)")
        for col in ("case", "readers", "objects", "label", "metric", "value", "HD95 mm", "flag"):
            table.add_column(col, overflow="fold")
        for p in result.pairs:
            hd95 = p.get("hd95_mm")
            table.add_row(
                p["case"],
                f"{p['reader_a']}/{p['reader_b']}",
                f"{p['id_a']}/{p['id_b']}",
                p["label_a"],
                p["metric"],
                f"{p['value']:.3f}",
                "" if hd95 is None else f"{hd95:.2f}",
                p["flag"] or "",
            )
        console.print(table)
        render_findings(result.findings, "agreement findings")
        console.print(json.dumps(result.summary()))
    _exit_on(result.findings)


# ----------------------------------------------------------------------------------------- package
@package_app.command("export", epilog="Example: aimd package export phantom/cases export/ --version 1.0 --json")
def package_export(
    src: Path = typer.Argument(..., help="A package file (.json/.jsonl) or a folder of packages."),
    dst: Path = typer.Argument(..., help="Export folder; versions live side by side inside it."),
    version: str = typer.Option(..., "--version", help="Version to write, e.g. 1.0; never overwritten."),
    force: bool = typer.Option(False, "--force", help="Export despite QC errors (needs --reason)."),
    reason: str | None = typer.Option(None, "--reason", help="Why a forced export is acceptable (recorded)."),
    taxonomy: Path | None = TaxonomyOpt,
    template: str | None = TemplateOpt,
    config: Path | None = ConfigOpt,
    seg: bool = typer.Option(True, "--seg/--no-seg", help="Also write masks as DICOM SEG."),
    coco: bool = typer.Option(True, "--coco/--no-coco", help="Also write boxes as COCO JSON."),
    json_out: bool = JsonOption,
) -> None:
    """Write the agreed layout + manifest.json (SHA-256, size, role, references) and freeze the version."""
    tpl = _template(template)
    sources = ann.collect_sources(src)
    try:
        with progress_bar("export", len(sources), enabled=not json_out) as advance:
            result = ann.export_packages(
                src,
                dst,
                version,
                force=force,
                reason=reason,
                taxonomy=_taxonomy(taxonomy),
                template=tpl,
                config=_config(config, tpl) if config or tpl else None,
                seg=seg,
                coco=coco,
                progress=lambda n: advance(n),
            )
    except ann.ExportRefusedError as err:
        if json_out:
            print_json(
                {
                    **err.to_dict(),
                    "refused": True,
                    "qc": ann.findings_summary(err.findings),
                    "findings": [f.model_dump(mode="json") for f in err.findings if f.is_error],
                }
            )
        else:
            render_findings([f for f in err.findings if f.is_error], "QC errors")
            console.print(f"[red]export refused:[/red] {err}")
        raise typer.Exit(EXIT_FINDINGS) from None
    if json_out:
        print_json(result.to_dict())
    else:
        d = result.to_dict()
        console.print(
            f"[green]exported version {d['version']}[/green] to {d['version_dir']}: {d['files']} files, "
            f"{d['bytes']} bytes, frozen read-only" + (" (FORCED)" if d["forced"] else "")
        )


@package_app.command("verify", epilog="Example: aimd package verify export/ --json")
def package_verify(
    dst: Path = typer.Argument(..., help="Export folder or one of its version folders."),
    version: str | None = typer.Option(None, "--version", help="Verify only this version."),
    json_out: bool = JsonOption,
) -> None:
    """Detect changed, missing, extra or unreferenced files and image↔annotation geometry mismatches."""
    findings = ann.verify_export(dst, version)
    if json_out:
        print_json(
            {
                "ok": not has_errors(findings),
                "summary": ann.findings_summary(findings),
                "findings": [f.model_dump(mode="json") for f in findings],
            }
        )
    else:
        render_findings(findings, f"verify {dst}")
    _exit_on(findings)


# -------------------------------------------------------------------------------------- annotation
@annotation_app.command("schema", epilog="Example: aimd annotation schema --model taxonomy")
def annotation_schema(
    model: str = typer.Option("package", "--model", help="package, taxonomy or template."),
    json_out: bool = JsonOption,
) -> None:
    """Print the JSON Schema generated from the models (001 App. C.2); plain JSON with --json."""
    schemas = {
        "package": ann.package_json_schema,
        "taxonomy": ann.taxonomy_json_schema,
        "template": ann.template_json_schema,
    }
    if model not in schemas:
        raise InvalidInputError(f"unknown model {model!r}", where="--model", hint=f"use one of {sorted(schemas)}")
    if json_out:
        print_json(schemas[model]())
    else:
        console.print_json(data=schemas[model]())


@annotation_app.command("validate", epilog="Example: aimd annotation validate reader_1.json")
def annotation_validate(
    packages: list[Path] = typer.Argument(..., help="Package files (.json/.jsonl)."), json_out: bool = JsonOption
) -> None:
    """Check that files parse as annotation packages (unknown fields rejected)."""
    counts = {str(p): len(ann.read_sources(p)) for p in packages}
    if json_out:
        print_json({"valid": True, "packages": counts})
    else:
        console.print(f"[green]valid[/green]: {sum(counts.values())} package(s) in {len(counts)} file(s)")


@annotation_app.command("simulate", epilog="Example: aimd annotation simulate phantom/ --readers 3 --seed 0")
def annotation_simulate(
    dataset: Path = typer.Argument(..., help="Phantom dataset folder (aimd data phantom)."),
    readers: int = typer.Option(3, "--readers", help="Readers per case (1–10); the last is model-assisted."),
    seed: int = typer.Option(0, "--seed", help="Same seed, same packages."),
    json_out: bool = JsonOption,
) -> None:
    """Write simulated readers' packages into every case (annotations/reader_<n>.json + masks)."""
    n_cases = len(list((dataset / "cases").glob("*"))) if (dataset / "cases").is_dir() else None
    with progress_bar("simulated readers", n_cases, enabled=not json_out) as advance:
        paths = ann.simulate_annotators(dataset, readers, seed, progress=lambda n: advance(n))
    if json_out:
        print_json({"packages": [str(p) for p in paths], "readers": readers, "seed": seed})
    else:
        console.print(f"[green]wrote {len(paths)} packages[/green] ({readers} reader(s) per case)")


@taxonomy_app.command("show", epilog="Example: aimd annotation taxonomy show --json")
def taxonomy_show(
    file: Path | None = typer.Option(None, "--file", help="Taxonomy JSON (default built-in)."),
    json_out: bool = JsonOption,
) -> None:
    """Print the label hierarchy with codes, categories and attributes."""
    tax = _taxonomy(file)
    if json_out:
        print_json(tax.model_dump(mode="json", exclude_none=True))
        return
    table = Table(title=f"{tax.name} {tax.version}")
    for col in ("code", "level", "category", "parent", "name", "attributes"):
        table.add_column(col, overflow="fold")
    for n in tax.labels:
        depth = len(tax.path(n.code)) - 1
        table.add_row(
            "  " * depth + n.code,
            n.level.value if n.level else "",
            n.category.value,
            n.parent or "",
            f"{n.name_en} {n.name_zh}",
            ", ".join(a.name + ("*" if a.required else "") for a in n.attributes),
        )
    console.print(table)


@taxonomy_app.command("validate", epilog="Example: aimd annotation taxonomy validate my_taxonomy.json")
def taxonomy_validate(file: Path = typer.Argument(..., help="Taxonomy JSON."), json_out: bool = JsonOption) -> None:
    """Check a taxonomy: unique UPPER_SNAKE codes, parents, levels, attribute schemas."""
    tax = ann.load_taxonomy(file)
    if json_out:
        print_json({"valid": True, "name": tax.name, "version": tax.version, "labels": len(tax.labels)})
    else:
        console.print(f"[green]valid[/green]: {tax.name} {tax.version}, {len(tax.labels)} labels")


@taxonomy_app.command("diff", epilog="Example: aimd annotation taxonomy diff v1.json v2.json --json")
def taxonomy_diff(
    old: Path = typer.Argument(..., help="Older taxonomy JSON."),
    new: Path = typer.Argument(..., help="Newer taxonomy JSON."),
    json_out: bool = JsonOption,
) -> None:
    """Report every change between two taxonomy versions; exit 1 when the version bump is too small."""
    d = ann.diff_taxonomies(ann.load_taxonomy(old), ann.load_taxonomy(new))
    if json_out:
        print_json(d.model_dump(mode="json"))
    else:
        table = Table(title=f"{d.old.version} → {d.new.version} (needs a {d.required_bump} bump)")
        for col in ("change", "code", "field", "old", "new", "breaking"):
            table.add_column(col, overflow="fold")
        for c in d.changes:
            table.add_row(
                c.kind, c.code, c.field or "", str(c.old or ""), str(c.new or ""), "yes" if c.breaking else ""
            )
        console.print(table)
    if not d.version_bump_ok:
        raise typer.Exit(EXIT_FINDINGS)


@template_app.command("show", epilog="Example: aimd annotation template show --json")
def template_show(
    file: Path | None = typer.Option(None, "--file", help="Template JSON (default built-in)."),
    json_out: bool = JsonOption,
) -> None:
    """Print a template: labels, annotation types, required attributes, QC thresholds."""
    tpl = ann.load_template(file) if file else ann.default_template()
    problems = tpl.problems_with(ann.default_taxonomy()) if file is None else []
    if json_out:
        print_json({**tpl.model_dump(mode="json"), "problems": problems})
        return
    table = Table(title=f"{tpl.id} {tpl.version} (taxonomy {tpl.taxonomy.name} {tpl.taxonomy.version})")
    for col in ("label", "types", "required attributes", "max"):
        table.add_column(col, overflow="fold")
    for e in tpl.entries:
        table.add_row(
            e.label_code, ", ".join(t.value for t in e.types), ", ".join(e.required_attributes), str(e.max_count or "")
        )
    console.print(table)


# ------------------------------------------------------------------------------------------ register
def data_register(
    fixed: Path = typer.Argument(..., help="Fixed image (DICOM folder, DICOM file or NIfTI)."),
    moving: Path = typer.Argument(..., help="Moving image."),
    out: Path = typer.Argument(..., help="Output folder: transform.tfm, moving_resampled.nii.gz, registration.json."),
    method: str = typer.Option("rigid", "--method", help=f"One of {', '.join(REGISTRATION_METHODS)}."),
    landmarks_fixed: Path | None = typer.Option(None, "--landmarks-fixed", help="JSON [[x, y, z], ...] LPS mm."),
    landmarks_moving: Path | None = typer.Option(None, "--landmarks-moving", help="Paired moving landmarks."),
    mask: list[Path] = typer.Option(None, "--mask", help="Mask on the moving image to carry onto the fixed grid."),
    seed: int = typer.Option(0, "--seed", help="Seed of the metric sampling."),
    iterations: int = typer.Option(100, "--iterations", help="Optimizer iterations per level."),
    max_error_mm: float = typer.Option(3.0, "--max-error-mm", help="TRE limit, 3–5 mm (001 §8.5.1.3)."),
    json_out: bool = JsonOption,
) -> None:
    """Register MOVING to FIXED (rigid, affine or B-spline) and save the transform, error and resampled image."""
    if (landmarks_fixed is None) != (landmarks_moving is None):
        raise InvalidInputError(
            "give both --landmarks-fixed and --landmarks-moving, or neither",
            where="--landmarks-fixed/--landmarks-moving",
        )
    pair = (landmarks_fixed, landmarks_moving) if landmarks_fixed and landmarks_moving else None
    with progress_bar(f"{method} registration", None, enabled=not json_out):
        res = ann.register_files(
            fixed, moving, out, method=method, landmarks=pair, masks=list(mask or []), seed=seed, iterations=iterations
        )
    err = res.record.error
    over = err is not None and err.unit == "mm" and err.value > max_error_mm
    if json_out:
        print_json({**res.to_dict(), "max_error_mm": max_error_mm, "error_over_limit": over})
    else:
        unit = f" {err.unit}" if err and err.unit else ""
        console.print(
            f"[{'red' if over else 'green'}]{method} registration[/]: {err.metric if err else ''} = "
            f"{err.value if err else float('nan'):.4g}{unit}; transform {res.transform_file}"
        )
    if over:
        raise typer.Exit(EXIT_FINDINGS)


def register_data_commands(app: typer.Typer) -> None:
    """Add ``register`` to the ``aimd data`` group."""
    app.command("register", epilog="Example: aimd data register ct.nii.gz mr.nii.gz reg/ --method affine --json")(
        data_register
    )
