"""Learning targets on a phantom dataset: what a model learns to output, and from which labels.

Each :class:`Target` names a task domain (000 §4.4.3), its classes and the dataset labels each
class stands for, looked up *by name* in dataset.json's ``label_map`` so the numbers are never
assumed. ``body`` is the source task of 000 App. B (B.1.5.3); ``organs`` the multi-organ source
task used for pre-training; ``lesions`` / ``lung_nodule`` / ``liver_tumour`` downstream tasks; and
``nodule_present`` the radiograph anomaly task of 003 (a lung nodule box on the DX image).

Example
-------
>>> spec = get_target("lesions").output_spec({"5": "lung_nodule", "6": "liver_tumour"})
>>> spec.source_labels, spec.activation
({1: [5, 6]}, 'sigmoid')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aimd.core.errors import InvalidInputError, SchemaError
from aimd.models.specs import OutputSpec

_ANATOMY = ("body", "lung", "liver", "spine_bone", "lung_nodule", "liver_tumour")


@dataclass(frozen=True)
class Target:
    """One learning target: task, classes, activation and the dataset labels behind each class."""

    name: str
    task: Literal["seg", "cls"]
    activation: Literal["sigmoid", "softmax"]
    classes: dict[int, str]
    label_names: dict[int, tuple[str, ...]]
    source: Literal["labels", "dx_boxes"]
    domain: str

    @property
    def output_task(self) -> Literal["segmentation", "classification"]:
        """Task name used in :class:`OutputSpec`."""
        return "segmentation" if self.task == "seg" else "classification"

    @property
    def channels(self) -> int:
        """Network output channels."""
        return len(self.classes) if self.activation == "softmax" else 1

    def label_values(self, label_map: dict[str, str]) -> dict[int, list[int]]:
        """Class → dataset label values, resolved by name in ``label_map`` (dataset.json)."""
        by_name = {str(name): int(value) for value, name in label_map.items()}
        out: dict[int, list[int]] = {}
        for cls, names in self.label_names.items():
            missing = [n for n in names if n not in by_name]
            if missing:
                raise SchemaError(
                    f"label_map has no {missing} needed by target {self.name!r}",
                    where="dataset.json: label_map",
                    hint=f"regenerate the dataset or pick another target from {sorted(TARGETS)}",
                )
            out[cls] = sorted(by_name[n] for n in names)
        return out

    def output_spec(self, label_map: dict[str, str] | None = None, threshold: float = 0.5) -> OutputSpec:
        """The :class:`OutputSpec` of a model trained on this target."""
        return OutputSpec(
            task=self.output_task,
            labels=dict(self.classes),
            activation=self.activation,
            threshold=threshold,
            source_labels=self.label_values(label_map) if label_map and self.source == "labels" else {},
            target=self.name,
            description=self.domain,
        )


TARGETS: dict[str, Target] = {
    "body": Target(
        "body",
        "seg",
        "sigmoid",
        {1: "body"},
        {1: _ANATOMY},
        "labels",
        "CT body-region (patient outline) segmentation, 000 B.1.5.3",
    ),
    "organs": Target(
        "organs",
        "seg",
        "softmax",
        {0: "background", 1: "body", 2: "lung", 3: "liver", 4: "spine_bone"},
        {1: ("body",), 2: ("lung", "lung_nodule"), 3: ("liver", "liver_tumour"), 4: ("spine_bone",)},
        "labels",
        "CT multi-organ segmentation (body, lungs, liver, spine) on axial slices",
    ),
    "lesions": Target(
        "lesions",
        "seg",
        "sigmoid",
        {1: "lesion"},
        {1: ("lung_nodule", "liver_tumour")},
        "labels",
        "CT lesion segmentation (lung nodules and liver tumours) on axial slices",
    ),
    "lung_nodule": Target(
        "lung_nodule",
        "seg",
        "sigmoid",
        {1: "lung_nodule"},
        {1: ("lung_nodule",)},
        "labels",
        "CT lung-nodule segmentation on axial slices",
    ),
    "liver_tumour": Target(
        "liver_tumour",
        "seg",
        "sigmoid",
        {1: "liver_tumour"},
        {1: ("liver_tumour",)},
        "labels",
        "CT liver-tumour segmentation on axial slices",
    ),
    "nodule_present": Target(
        "nodule_present",
        "cls",
        "softmax",
        {0: "no_nodule", 1: "nodule"},
        {},
        "dx_boxes",
        "radiograph anomaly detection: is a lung nodule present (003 §3)",
    ),
}


def get_target(name: str) -> Target:
    """The :class:`Target` called ``name``; an :class:`InvalidInputError` lists the known ones."""
    if name not in TARGETS:
        raise InvalidInputError(f"unknown target {name!r}", where="--target", hint=f"use one of {sorted(TARGETS)}")
    return TARGETS[name]


__all__ = ["TARGETS", "Target", "get_target"]
