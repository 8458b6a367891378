"""``aimd model predict``: one image, or every case of a dataset (in this process or on Ray)."""

from __future__ import annotations

from pathlib import Path

import typer

from aimd.cli.common import JsonOption, RayAddressOption, RayOption, console, print_json, progress_bar, status
from aimd.core.errors import InvalidInputError

_EPILOG = (
    "Example: aimd model predict run1 case/ct.nii.gz --modality CT --out mask.nii.gz\n\n"
    "A whole dataset: aimd model predict run1 --data ph/ --out preds/\n\n"
    "A dataset on Ray, local: aimd model predict run1 --data ph/ --out preds/ --ray\n\n"
    "A dataset on a Ray cluster: aimd model predict run1 --data ph/ --out preds/ --ray-address head:6379"
)


def predict_cmd(
    model: Path = typer.Argument(
        ...,
        help="Run folder, MONAI bundle, .onnx or TorchScript file, or a reference "
        "device: device-lesions, device-nodules.",
    ),
    image: Path | None = typer.Argument(None, help="DICOM series folder, DICOM file or NIfTI (or use --data)."),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Predict every case of this dataset folder (dataset.json) or folder of images; "
        "--out is then a new folder for masks/ and summary.json.",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Label output (.nii.gz or DICOM folder), segmentation; with --data the output folder."
    ),
    modality: str | None = typer.Option(None, "--modality", help="Modality to assume when the file has none."),
    threads: int = typer.Option(2, "--threads", help="CPU threads (per case with --data)."),
    runtime: str = typer.Option("onnxruntime", "--runtime", help="For .onnx models: onnxruntime or openvino."),
    ray: bool = RayOption,
    ray_address: str | None = RayAddressOption,
    workers: int = typer.Option(0, "--workers", help="With --ray: CPUs of the local Ray instance (0 = all cores)."),
    harmonise: Path | None = typer.Option(
        None,
        "--harmonise",
        help="Fingerprint table (aimd data fingerprint --out): map a DICOM CT image to the reference protocol first.",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT."),
    json_out: bool = JsonOption,
) -> None:
    """Run a model on one image, or on every case of a dataset, through its declared checks and preprocessing."""
    if (image is None) == (data is None):
        raise InvalidInputError(
            "give either IMAGE or --data DIR", where="aimd model predict", hint="one image, or a dataset folder"
        )
    if data is not None:
        _predict_data(
            model,
            data,
            out,
            modality,
            threads,
            runtime,
            ray_address or ("local" if ray else None),
            workers,
            force,
            json_out,
        )
        return
    if ray or ray_address:
        raise InvalidInputError("--ray distributes the cases of --data DIR", where="--ray", hint="add --data DIR")
    from aimd.imaging.fingerprint import harmonise_image
    from aimd.imaging.io import read_volume, write_volume
    from aimd.models.adapters import load_predictor
    from aimd.models.dataset_predict import prediction_summary

    assert image is not None
    with status(f"loading model {model}", enabled=not json_out) as update:
        predictor = load_predictor(model, threads=threads, runtime=runtime)
        update(f"reading {image}")
        volume = read_volume(image)
        harmonised = None if harmonise is None else harmonise_image(image, volume, harmonise)
        if harmonised is not None:
            volume = harmonised[0]
        update(f"predicting {image.name}")
        result = predictor.predict_volume(volume, modality=modality, where=str(image))
    summary: dict[str, object] = {
        "model": str(model),
        "adapter": predictor.metadata.get("adapter"),
        "image": str(image),
        **prediction_summary(predictor, result),
    }
    if harmonised is not None:
        summary["harmonisation"] = harmonised[1]
    if result.labels is not None and out is not None:
        write_volume(result.labels, out, overwrite=force)
        summary["out"] = str(out)
    if json_out:
        print_json(summary)
        return
    console.print(f"{model} ({summary['adapter']}, {summary['task']}) on {image}", highlight=False)
    for name, count in dict(summary.get("voxels_per_label") or {}).items():  # type: ignore[call-overload]
        console.print(f"  {name}: {count} voxels", highlight=False)
    if result.scores is not None:
        console.print("  scores: " + ", ".join(f"{float(s):.4g}" for s in result.scores), highlight=False)
    if "out" in summary:
        console.print(f"[green]wrote[/green] {summary['out']}")


def _predict_data(
    model: Path,
    data: Path,
    out: Path | None,
    modality: str | None,
    threads: int,
    runtime: str,
    ray: str | None,
    workers: int,
    force: bool,
    json_out: bool,
) -> None:
    from aimd.models.dataset_predict import dataset_cases, predict_dataset

    if out is None:
        raise InvalidInputError("--data needs --out DIR for the masks and summary.json", where="--out")
    total = len(dataset_cases(model, data, threads=threads, runtime=runtime))
    with progress_bar("predicting", total, enabled=total > 1 and not json_out) as advance:
        report = predict_dataset(
            model,
            data,
            out,
            modality=modality,
            threads=threads,
            runtime=runtime,
            ray=ray,
            num_cpus=workers or None,
            force=force,
            progress=advance,
        )
    if json_out:
        print_json(report)
        return
    console.print(
        f"[green]wrote[/green] {out}: {report['n_cases']} case(s) by {model} ({report['execution']}, "
        f"{report['timings']['total_seconds']} s)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``predict`` to the ``aimd model`` group."""
    app.command("predict", epilog=_EPILOG)(predict_cmd)


__all__ = ["predict_cmd", "register"]
