"""What every characteristic runs on: the model, the held-out data and the run settings.

:class:`EvalData` holds preprocessed network inputs ``(n, c, h, w)`` in [0, 1] with their
targets, owning cases and sites; :class:`EvaluationContext` adds the :class:`Predictor`, the
``nn.Module`` behind it when there is one (FLOPs, ONNX export), the model file, its 000 §4
description, the output folder, the seed and the thread budget.

Example
-------
>>> import numpy as np
>>> d = EvalData(np.zeros((4, 1, 8, 8), np.float32), np.zeros((4, 8, 8), np.int64),
...              ["a", "a", "b", "b"], {"a": "S1", "b": "S2"}, task="segmentation")
>>> d.cases, len(d.subset(np.array([0, 1])))
(['a', 'b'], 2)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from torch import nn

from aimd.core.errors import InvalidInputError
from aimd.models.predictor import BasePredictor


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
            raise InvalidInputError("the evaluation data holds no images", where="data",
                                    hint="use a dataset whose test split has cases")
        if self.targets.shape[0] != n or len(self.case_ids) != n:
            raise InvalidInputError(f"{n} images but {self.targets.shape[0]} targets and {len(self.case_ids)} "
                                    "case ids", where="data", hint="pass one target and case id per image")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def cases(self) -> list[str]:
        """Distinct case ids in first-seen order."""
        return list(dict.fromkeys(self.case_ids))

    def subset(self, index: NDArray[np.int64]) -> EvalData:
        """The items at ``index`` (targets, cases and sites follow)."""
        idx = np.asarray(index, dtype=np.int64)
        ids = [self.case_ids[i] for i in idx.tolist()]
        return EvalData(self.images[idx], self.targets[idx], ids, {c: self.sites.get(c, "") for c in set(ids)},
                        self.task, self.hashes)

    def with_images(self, images: NDArray[np.float32]) -> EvalData:
        """The same items with other (e.g. perturbed) images."""
        return EvalData(images.astype(np.float32, copy=False), self.targets, self.case_ids, self.sites, self.task,
                        self.hashes)

    @classmethod
    def from_array_set(cls, data: Any, task: Literal["segmentation", "classification"]) -> EvalData:
        """Build from :class:`aimd.models.ArraySet` (its file hashes become the data hashes)."""
        return cls(np.asarray(data.images, np.float32), np.asarray(data.targets, np.int64), list(data.case_ids),
                   dict(data.sites), task, dict(data.files))


@dataclass
class EvaluationContext:
    """Everything a characteristic needs; built by the runner or a test.

    Parameters
    ----------
    predictor:
        The model under evaluation.
    data:
        Held-out test data, already preprocessed.
    out_dir:
        Report folder; characteristics write evidence files under ``out_dir / "evidence"``.
    network:
        The ``nn.Module`` behind the predictor, when known (FLOPs, memory, ONNX export).
    model_file:
        The model's file on disk (size, hash).
    description:
        The model's 000 §4 description (``aimd model describe --format json``).
    run_dir, dataset_dir:
        The model's training-run folder (when it is one) and the dataset folder; training-based
        characteristics (trainability, transferability) need both.
    train_data:
        Images the model was trained on (membership inference); read from the dataset's train
        split when ``None``.
    seed, threads:
        Master seed and CPU thread budget.
    progress:
        Called with a short message as long steps advance.
    """

    predictor: BasePredictor
    data: EvalData
    out_dir: Path
    network: nn.Module | None = None
    model_file: Path | None = None
    description: dict[str, Any] | None = None
    model_label: str = ""
    run_dir: Path | None = None
    dataset_dir: Path | None = None
    train_data: EvalData | None = None
    seed: int = 0
    threads: int = 2
    progress: Callable[[str], object] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def evidence_dir(self) -> Path:
        """Folder for evidence files (created on first use)."""
        path = self.out_dir / "evidence"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def note(self, message: str) -> None:
        """Report progress of a long step."""
        if self.progress is not None:
            self.progress(message)


__all__ = ["EvalData", "EvaluationContext"]
