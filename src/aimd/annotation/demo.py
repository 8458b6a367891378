"""The annotation part of ``aimd demo``: phantom readers → QC → agreement → export → verify → HTML report.

Example
-------
>>> import tempfile, pathlib
>>> from aimd.phantoms import generate_dataset
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = generate_dataset(root / "ph", cases=1, seed=3, size=32, workers=1)
>>> res = run_annotation_demo(root / "ph", root / "demo", readers=2, seed=0, seg=False)
>>> res["verify_errors"], pathlib.Path(res["report"]).name
(0, 'qc_report.html')
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aimd.annotation.agreement import agree, dataset_readers, write_qc_record
from aimd.annotation.export import ExportRefusedError, export_packages
from aimd.annotation.io import read_sources
from aimd.annotation.manifest import read_versions
from aimd.annotation.qc import QCCache, findings_summary, run_qc
from aimd.annotation.report import render_qc_report
from aimd.annotation.simulate import simulate_annotators
from aimd.annotation.templates import default_template
from aimd.annotation.verify import verify_export
from aimd.core.atomic import atomic_write_json
from aimd.core.findings import Finding

__all__ = ["DEMO_STAGES", "run_annotation_demo"]

DEMO_STAGES = ("annotate", "qc check", "agree", "export", "verify", "report")

FORCE_REASON = (
    "demo: packages with level-1 QC errors are exported for third-level arbitration "
    "(001 §9.3.1 c); the errors stay recorded in qc/qc_check.json"
)


def run_annotation_demo(
    dataset_dir: str | Path,
    out_dir: str | Path,
    *,
    readers: int = 3,
    seed: int = 0,
    seg: bool = True,
    progress: Callable[[str], object] | None = None,
) -> dict[str, Any]:
    """Annotate a phantom dataset with simulated readers, check, compare, export, verify and report.

    Parameters
    ----------
    dataset_dir:
        A phantom dataset (``aimd data phantom``); packages are written into its case folders.
    out_dir:
        Receives ``qc_check.json``, ``qc_record.json`` (agreement), ``export/`` and ``qc_report.html``.
    readers:
        Simulated readers per case (≥ 2; the last one is model-assisted).
    seg:
        Also export masks as DICOM SEG (slower).
    progress:
        Called with 1 after each of the six :data:`DEMO_STAGES`.

    Returns
    -------
    dict
        Paths and key numbers (QC errors, mean/min Dice, review counts, export size, verify errors).
    """

    def done() -> None:
        if progress is not None:
            progress(1)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = simulate_annotators(dataset_dir, readers, seed)
    done()
    template = default_template()
    cache = QCCache()
    qc: dict[str, list[Finding]] = {}
    for p in paths:
        for source in read_sources(p):
            qc[str(Path(p).relative_to(Path(dataset_dir)))] = run_qc(source, template=template, cache=cache)
    all_findings = [f for fs in qc.values() for f in fs]
    atomic_write_json(out / "qc_check.json", {k: [f.model_dump(mode="json") for f in v] for k, v in qc.items()})
    done()
    agreement = agree(dataset_readers(dataset_dir))
    write_qc_record(agreement, out / "qc_record.json")
    done()
    export_dir = out / "export"
    version = f"1.{len(read_versions(export_dir).versions)}"  # a re-run adds a version, the old one stays
    refused: str | None = None
    try:
        result = export_packages(paths, export_dir, version, template=template, agreement=agreement, seg=seg)
    except ExportRefusedError as err:
        refused = err.message
        result = export_packages(
            paths, export_dir, version, template=template, agreement=agreement, seg=seg, force=True, reason=FORCE_REASON
        )
    done()
    verify = verify_export(export_dir)
    done()
    export_summary = result.to_dict()
    export_summary["refused_without_force"] = refused
    report = render_qc_report(
        out / "qc_report.html",
        qc=qc,
        agreement=agreement,
        export={k: v for k, v in export_summary.items() if k not in ("packages", "changes")},
        verify=verify,
    )
    done()
    summary = agreement.summary()
    return {
        "packages": [str(p) for p in paths],
        "qc_check": str(out / "qc_check.json"),
        "qc_record": str(out / "qc_record.json"),
        "export": str(result.version_dir),
        "report": str(report),
        "qc": findings_summary(all_findings),
        "export_refused_without_force": refused is not None,
        "export_forced": result.forced,
        "export_files": len(result.manifest.files),
        "export_bytes": sum(e.size for e in result.manifest.files),
        "seg_files": len(result.seg_files),
        "mean_dice": summary["mean_dice"],
        "min_dice": summary["min_dice"],
        "second_review": summary["second_review"],
        "special_review": summary["special_review"],
        "single_reader_objects": summary["single_reader_objects"],
        "verify_errors": sum(f.is_error for f in verify),
        "verify_findings": len(verify),
    }
