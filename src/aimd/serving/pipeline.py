"""One inference, start to finish: predict → findings → result files → (optionally) the PACS.

:func:`run_inference` runs a checked :class:`~aimd.serving.inputs.InputImage` through a loaded model
and writes the result folder atomically — label mask (NIfTI), DICOM SEG and TID 1500 SR (when the
input was DICOM), heatmaps (NIfTI + PNG) and ``result.json`` — so a failure leaves nothing behind.
:func:`store_to_pacs` sends SEG and SR in one STOW-RS request.

The result records the model name, version and weights hash (001 §10.1.6), the input hash, the
hash of every output file and the time of every stage.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from aimd.core.atomic import atomic_dir
from aimd.core.hashing import sha256_file
from aimd.imaging.nifti_io import write_nifti
from aimd.models.predictor import BasePredictor, Prediction
from aimd.serving.dicom_results import Algorithm, write_seg, write_sr
from aimd.serving.findings import (
    GradeThresholds,
    InferenceFinding,
    classification_findings,
    detection_findings,
    extract_findings,
)
from aimd.serving.inputs import InputImage
from aimd.serving.registry import LoadedModel
from aimd.serving.volumes import predict_image

RESULT_FILE = "result.json"


@dataclass
class Timer:
    """Seconds per named stage."""

    stages: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return fn()
        finally:
            self.stages[name] = round(self.stages.get(name, 0.0) + time.perf_counter() - started, 4)


def new_result_id() -> str:
    """A fresh result id (32 hex digits)."""
    return uuid.uuid4().hex


def algorithm_of(model: LoadedModel) -> Algorithm:
    """The algorithm identification written into SEG and SR."""
    return Algorithm(model.name, model.version, model.sha256)


def run_inference(
    model: LoadedModel,
    image: InputImage,
    results_dir: str | Path,
    *,
    predictor: BasePredictor | None = None,
    thresholds: GradeThresholds | None = None,
    result_id: str | None = None,
    explainer: Callable[..., dict[str, Any]] | None = None,
    timer: Timer | None = None,
    source: dict[str, Any] | None = None,
    on_predicted: Callable[[], Any] | None = None,
    started: float | None = None,
) -> dict[str, Any]:
    """Run ``image`` through ``model`` and write ``results_dir/<result id>/``; the result document.

    Parameters
    ----------
    predictor:
        The predictor to call (e.g. a :class:`~aimd.serving.batching.BatchedPredictor`); the model's own
        by default.
    explainer:
        ``explainer(model, image, prediction, findings, out_dir)`` adds heatmaps and per-finding
        explanations; ``None`` skips explanations.
    source:
        Where the input came from (upload, PACS study/series, DIMSE association).
    on_predicted:
        Called once the network calls are over (the batcher then stops waiting for this request).
    started:
        ``time.perf_counter()`` when the request started; ``timings.total`` counts from it.
    """
    started = time.perf_counter() if started is None else started
    timer = timer or Timer()
    rid = result_id or new_result_id()
    thresholds = thresholds or GradeThresholds()
    pred = predictor or model.predictor
    spec_out = model.predictor.output_spec
    volume = image.volume
    prediction: Prediction = timer.run(
        "inference",
        lambda: predict_image(
            model.predictor,
            volume,
            batched=None if pred is model.predictor else pred,
            modality=model.predictor.input_spec.modality if not volume.modality else None,
            where="files",
        ),
    )
    if on_predicted is not None:
        on_predicted()
    findings: list[InferenceFinding]
    if "detections" in prediction.record:
        findings = timer.run(
            "findings",
            lambda: detection_findings(prediction.record["detections"], spec_out, volume, thresholds=thresholds),
        )
    elif spec_out.task == "classification":
        assert prediction.scores is not None
        findings = timer.run(
            "findings", lambda: classification_findings(prediction.scores, spec_out, thresholds=thresholds)
        )
    else:
        assert prediction.labels is not None
        findings = timer.run(
            "findings",
            lambda: extract_findings(
                prediction.labels, prediction.probabilities, spec_out, image=volume, thresholds=thresholds
            ),
        )
    root = Path(results_dir)
    files: dict[str, str] = {}
    explanation: dict[str, Any] = {"method": None, "reason": "explanations are off"}
    with atomic_dir(root / rid) as out:
        if prediction.labels is not None:
            timer.run("mask", lambda: write_nifti(prediction.labels, out / "mask.nii.gz"))
            files["mask_nifti"] = "mask.nii.gz"
        if explainer is not None:
            explanation = timer.run("explain", lambda: explainer(model, image, prediction, findings, out))
            files.update(explanation.pop("files", {}))
        if image.datasets and prediction.labels is not None:

            def dicom() -> None:
                algorithm = algorithm_of(model)
                seg = write_seg(image.datasets, prediction.labels, spec_out.labels, algorithm, result_id=rid)
                if seg is not None:
                    seg.save_as(out / "seg.dcm")
                    files["seg"] = "seg.dcm"
                sr = write_sr(image.datasets, seg, findings, algorithm, result_id=rid)
                if sr is not None:
                    sr.save_as(out / "sr.dcm")
                    files["sr"] = "sr.dcm"

            timer.run("dicom", dicom)
        hashes = {name: sha256_file(out / rel) for name, rel in sorted(files.items())}
        doc = {
            "id": rid,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "model": {"name": model.name, "version": model.version, "sha256": model.sha256, "runtime": model.runtime},
            "input": {
                "kind": image.kind,
                "sha256": image.sha256,
                "shape": list(volume.shape),
                "spacing_mm": list(volume.spacing),
                "modality": volume.modality,
                "study_uid": _uid(image, "StudyInstanceUID"),
                "series_uid": _uid(image, "SeriesInstanceUID"),
                **(source or {}),
            },
            "task": spec_out.task,
            "findings": [f.model_dump(mode="json") for f in findings],
            "review_recommended": any(f.review_recommended for f in findings),
            "thresholds": thresholds.model_dump(),
            "explanation": explanation,
            "files": files,
            "output_sha256": hashes,
            "record": prediction.record,
            "timings": {**timer.stages, "total": round(time.perf_counter() - started, 4)},
        }
        (out / RESULT_FILE).write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    return doc


def _uid(image: InputImage, keyword: str) -> str | None:
    if not image.datasets:
        return None
    return str(image.datasets[0].get(keyword, "")) or None


def load_result(results_dir: str | Path, result_id: str) -> dict[str, Any] | None:
    """The stored result document, ``None`` when there is none (ids are hex only)."""
    if not result_id or any(c not in "0123456789abcdef" for c in result_id):
        return None
    path = Path(results_dir) / result_id / RESULT_FILE
    if not path.is_file():
        return None
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def store_to_pacs(pacs: Any, results_dir: str | Path, doc: dict[str, Any]) -> list[str]:
    """STOW-RS the result's SEG and SR in one request; the stored SOP instance UIDs."""
    folder = Path(results_dir) / doc["id"]
    datasets = [pydicom.dcmread(folder / doc["files"][k]) for k in ("seg", "sr") if k in doc["files"]]
    return list(pacs.store(datasets))


def mask_of(results_dir: str | Path, doc: dict[str, Any]) -> np.ndarray | None:
    """The result's label mask array ``(z, y, x)``, ``None`` for classification results."""
    from aimd.imaging.nifti_io import read_nifti

    rel = doc.get("files", {}).get("mask_nifti")
    return None if rel is None else np.asarray(read_nifti(Path(results_dir) / doc["id"] / rel).array)


__all__ = [
    "RESULT_FILE",
    "Timer",
    "algorithm_of",
    "load_result",
    "mask_of",
    "new_result_id",
    "run_inference",
    "store_to_pacs",
]
