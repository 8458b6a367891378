"""What every characteristic runs on: the model, the held-out data and the run settings.

:class:`EvalData` holds preprocessed network inputs ``(n, c, h, w)`` (or ``(n, c, d, h, w)`` for a
volume model) in [0, 1] with their targets, owning cases and sites; :class:`EvaluationContext`
adds the :class:`Predictor`, the ``nn.Module`` behind it when there is one (FLOPs, ONNX export),
the model file, its 000 §4 description and who wrote it, the volume pipeline and perturbed copies
of a third-party model, the output folder, the seed and the thread budget — every field typed.

Example
-------
>>> import numpy as np
>>> d = EvalData(np.zeros((4, 1, 8, 8), np.float32), np.zeros((4, 8, 8), np.int64),
...              ["a", "a", "b", "b"], {"a": "S1", "b": "S2"}, task="segmentation")
>>> d.cases, len(d.subset(np.array([0, 1]))), d.dims
(['a', 'b'], 2, 2)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray
from torch import nn

from aimd.core.errors import InvalidInputError
from aimd.models.predictor import BasePredictor

if TYPE_CHECKING:
    from aimd.models.external.pipeline import VolumePipeline


@dataclass
class EvalData:
    """Preprocessed held-out data: one item per slice (segmentation) or image (classification)."""

    images: NDArray[np.float32]
    targets: NDArray[np.int64]
    case_ids: list[str]
    sites: dict[str, str]
    task: Literal["segmentation", "classification"]
    hashes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = int(self.images.shape[0])
        if n == 0:
            raise InvalidInputError(
                "the evaluation data holds no images", where="data", hint="use a dataset whose test split has cases"
            )
        if self.targets.shape[0] != n or len(self.case_ids) != n:
            raise InvalidInputError(
                f"{n} images but {self.targets.shape[0]} targets and {len(self.case_ids)} case ids",
                where="data",
                hint="pass one target and case id per image",
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def cases(self) -> list[str]:
        """Distinct case ids in first-seen order."""
        return list(dict.fromkeys(self.case_ids))

    @property
    def dims(self) -> int:
        """Spatial dimensions of one item: 2 (slices, images) or 3 (volumes)."""
        return int(self.images.ndim - 2)

    def subset(self, index: NDArray[np.int64]) -> EvalData:
        """The items at ``index`` (targets, cases and sites follow)."""
        idx = np.asarray(index, dtype=np.int64)
        ids = [self.case_ids[i] for i in idx.tolist()]
        return EvalData(
            self.images[idx],
            self.targets[idx],
            ids,
            {c: self.sites.get(c, "") for c in set(ids)},
            self.task,
            self.hashes,
        )

    def with_images(self, images: NDArray[np.float32]) -> EvalData:
        """The same items with other (e.g. perturbed) images."""
        return EvalData(
            images.astype(np.float32, copy=False), self.targets, self.case_ids, self.sites, self.task, self.hashes
        )

    @classmethod
    def from_array_set(cls, data: Any, task: Literal["segmentation", "classification"]) -> EvalData:
        """Build from :class:`aimd.models.ArraySet` (its file hashes become the data hashes)."""
        return cls(
            np.asarray(data.images, np.float32),
            np.asarray(data.targets, np.int64),
            list(data.case_ids),
            dict(data.sites),
            task,
            dict(data.files),
        )


@dataclass
class EvaluationContext:
    """Everything a characteristic needs; built by :func:`~aimd.evaluation.loading.build_context`,
    :func:`~aimd.evaluation.external.volume_context` or a test.

    Parameters
    ----------
    predictor:
        The model under evaluation.
    data:
        Held-out test data, already preprocessed.
    out_dir:
        Report folder; characteristics write evidence files under ``out_dir / "evidence"``.
    network:
        The ``nn.Module`` behind the predictor, when known (FLOPs, memory, gradients, ONNX export).
    model_file:
        The model's file on disk (size, hash).
    description, description_source:
        The model's 000 §4 description and who wrote it: ``"provider"`` (supplied with the model) or
        ``"aimd"`` (derived by aimd from the model itself, so its accuracy is not evaluated).
    model_label, model_identity, data_identity:
        Names, paths and hashes the report header records.
    run_dir, dataset_dir:
        The model's training-run folder (when it is one) and the dataset folder; training-based
        characteristics (trainability, transferability) need both.
    train_data:
        Images the model was trained on (membership inference); read from the dataset's train
        split when ``None``.
    pipeline, perturbed, perturbations:
        A third-party volume model's own preprocessing (out-of-distribution probes go through it),
        the dataset's perturbed copies by ``(artefact, severity)`` and the record of each copy.
    seed, threads, bootstrap_resamples:
        Master seed, CPU thread budget and bootstrap resamples of every CI.
    progress:
        Called with a short message as long steps advance.
    egress_attempts:
        Network connections attempted while the characteristics ran (filled by the runner's guard).
    network_isolation:
        How egress was prevented (the runner records it; see :mod:`aimd.evaluation.support.egress`).
    ray:
        Where independent pieces of work (one per perturbation, per attack budget) run:
        ``None`` in this process, ``"local"`` or a cluster address as Ray tasks
        (:mod:`aimd.evaluation.support.parallel`).
    """

    predictor: BasePredictor
    data: EvalData
    out_dir: Path
    network: nn.Module | None = None
    model_file: Path | None = None
    description: dict[str, Any] | None = None
    description_source: Literal["provider", "aimd"] | None = None
    model_label: str = ""
    model_identity: dict[str, Any] = field(default_factory=dict)
    data_identity: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    dataset_dir: Path | None = None
    train_data: EvalData | None = None
    pipeline: VolumePipeline | None = None
    perturbed: dict[tuple[str, float], EvalData] | None = None
    perturbations: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0
    threads: int = 2
    bootstrap_resamples: int = 1000
    progress: Callable[[str], object] | None = None
    egress_attempts: list[dict[str, Any]] = field(default_factory=list)
    network_isolation: dict[str, Any] = field(default_factory=dict)
    onnx_files: dict[str, Path] = field(default_factory=dict, repr=False)
    ray: str | None = None

    @property
    def evidence_dir(self) -> Path:
        """Folder for evidence files (created on first use)."""
        path = self.out_dir / "evidence"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def trained_run(self) -> bool:
        """Whether the model comes as an aimd training run with its dataset (training-based clauses)."""
        return self.run_dir is not None and self.dataset_dir is not None

    def note(self, message: str) -> None:
        """Report progress of a long step."""
        if self.progress is not None:
            self.progress(message)


__all__ = ["EvalData", "EvaluationContext"]
