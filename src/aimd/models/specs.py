"""Input and output specifications every aimd model declares (000 §4.2.4, 003 §2.2).

An :class:`InputSpec` says what a model accepts: modality, spatial dims, channels, pixel spacing,
the raw data types it takes, the intensity preprocessing (window or bit-depth scaling to [0, 1],
003 §2.2.1–§2.2.2) and any declared resize. An :class:`OutputSpec` says what it returns: task,
class labels, activation and post-processing. Both serialise to JSON and travel with every
exported artefact (ONNX metadata, TorchScript extra file, MONAI bundle metadata, run folder), so
the model's description (000 §4.2.4 a–d) is derived from them and never written by hand.

Example
-------
>>> spec = InputSpec(modality="CT", intensity=Intensity(method="window", windows=((40, 400),)))
>>> spec.intensity.describe()
'CT window centre 40 / width 400 (clip, scale linearly to [0, 1]; one channel per window)'
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aimd.core.errors import SchemaError


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Intensity(_Frozen):
    """Intensity preprocessing that maps raw values to float32 [0, 1] (003 §2.2.1–§2.2.2).

    ``method``: ``window`` (CT HU: one output channel per ``(centre, width)`` in ``windows``, e.g.
    a lung and a mediastinal window), ``bit_depth`` (X-ray: divide by ``2**bits - 1``; ``bits`` from
    the image when ``None``; MONOCHROME1 inverted), ``minmax`` (per image), ``none`` (input already
    in [0, 1], or normalised by a third-party model's own pipeline, which ``note`` then describes).
    """

    method: Literal["window", "bit_depth", "minmax", "none"] = "none"
    windows: tuple[tuple[float, float], ...] = ()
    bits: int | None = None
    note: str = ""

    @field_validator("windows")
    @classmethod
    def _positive_width(cls, value: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        for center, width in value:
            if width <= 0:
                raise ValueError(f"window width must be > 0, got {width} (centre {center})")
        return value

    @model_validator(mode="after")
    def _windows_for_window(self) -> Intensity:
        if self.method == "window" and not self.windows:
            raise ValueError("method 'window' needs at least one (centre, width) in windows")
        return self

    @property
    def channels(self) -> int | None:
        """Channels this mapping produces (one per window), ``None`` when it keeps the input's."""
        return len(self.windows) if self.method == "window" else None

    def describe(self) -> str:
        """One human sentence for the model description (000 §4.2.4 d)."""
        if self.method == "window":
            parts = [f"centre {c:g} / width {w:g}" for c, w in self.windows]
            return (
                f"CT window{'s' if len(parts) > 1 else ''} "
                + "; ".join(parts)
                + " (clip, scale linearly to [0, 1]; one channel per window)"
            )
        if self.method == "bit_depth":
            bits = f"{self.bits}-bit" if self.bits else "stored bit depth"
            return f"divide by the largest {bits} value, MONOCHROME1 inverted, giving [0, 1]"
        if self.method == "minmax":
            return "per-image min–max scaling to [0, 1]"
        if self.note:
            return f"by the model's own pipeline: {self.note}"
        return "none (input must already lie in [0, 1])"


class InputSpec(_Frozen):
    """What a model accepts (000 §4.2.4 a–d).

    Parameters
    ----------
    modality:
        DICOM modality the model was trained on (``CT``, ``DX``...). Inputs of another modality are
        rejected, never converted.
    dims:
        Spatial dimensions of one network input (2 for slice-wise models).
    channels:
        Channels of one network input.
    patch_size:
        Spatial size the model was trained on; larger images use sliding-window inference.
    fixed_size:
        ``True`` when the network only accepts exactly ``patch_size`` (e.g. a ViT with learned
        position embeddings); images are then resized as declared by ``resize_to``.
    size_multiple:
        Each spatial size must be a multiple of this (16 for a U-Net with four 2× poolings).
    spacing_mm:
        In-plane pixel spacing ``(x, y)`` of the training data; ``None`` when not applicable.
    spacing_tolerance:
        Accepted relative deviation from ``spacing_mm`` before an input is rejected.
    raw_dtypes:
        Raw data types accepted before preprocessing (``int``, ``float``).
    dtype:
        Data type of the preprocessed network input.
    intensity:
        Intensity preprocessing to [0, 1].
    resize_to:
        Declared resize of each 2-D image (bilinear) before the network; ``None`` for none.
    slice_axis:
        How a 3-D volume is fed to a 2-D network (``axial``: one slice per z index).
    """

    modality: str
    dims: int = 2
    channels: int = 1
    patch_size: tuple[int, ...] = (64, 64)
    fixed_size: bool = False
    size_multiple: int = 1
    spacing_mm: tuple[float, float] | None = None
    spacing_tolerance: float = Field(0.5, ge=0)
    raw_dtypes: tuple[str, ...] = ("int", "float")
    dtype: str = "float32"
    intensity: Intensity = Intensity()
    value_range: tuple[float, float] = (0.0, 1.0)
    resize_to: tuple[int, int] | None = None
    slice_axis: Literal["axial"] = "axial"

    @field_validator("modality")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _channels_match(self) -> InputSpec:
        made = self.intensity.channels
        if made is not None and made != self.channels:
            raise ValueError(f"{made} intensity window(s) make {made} channel(s), but channels={self.channels}")
        if len(self.patch_size) != self.dims:
            raise ValueError(f"patch_size {self.patch_size} needs {self.dims} values (dims={self.dims})")
        return self

    def input_shape(self, batch: int | None = None) -> list[int]:
        """Network input shape; ``-1`` for the batch when ``batch`` is None (as in 000 Table B.1)."""
        return [-1 if batch is None else batch, self.channels, *self.patch_size]


class OutputSpec(_Frozen):
    """What a model returns (000 §4.2.4 c–d).

    ``labels`` maps each output channel to a class name; ``source_labels`` maps each class to the
    dataset label values it stands for. ``activation`` turns logits into probabilities; the
    post-processing turns those into labels (``argmax`` for softmax, ``threshold`` for sigmoid).
    """

    task: Literal["segmentation", "classification"]
    labels: dict[int, str]
    activation: Literal["sigmoid", "softmax"]
    threshold: float = Field(0.5, gt=0, lt=1)
    source_labels: dict[int, list[int]] = Field(default_factory=dict)
    target: str = ""
    description: str = ""

    @property
    def channels(self) -> int:
        """Number of output channels."""
        return len(self.labels) if self.activation == "softmax" else 1

    @property
    def positive_class(self) -> int:
        """The class whose probability is the model's score (sigmoid: 1; binary softmax: 1)."""
        return max(self.labels)

    def postprocessing(self) -> str:
        """One sentence describing post-processing (000 §4.2.4 d)."""
        if self.activation == "softmax":
            return "softmax over channels, then argmax → class index per " + (
                "pixel" if self.task == "segmentation" else "image"
            )
        return f"sigmoid, then threshold {self.threshold:g} → binary " + (
            "mask" if self.task == "segmentation" else "decision"
        )

    def encoding(self) -> str:
        """Label encoding used in training (000 §4.2.4 c)."""
        if self.activation == "softmax":
            return f"one-hot encoding over {len(self.labels)} classes"
        return "binary (0/1) label encoding of one class"


def spec_to_json(spec: BaseModel) -> str:
    """Compact JSON of a spec (keys sorted), as embedded in exported files."""
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)


def parse_input_spec(data: str | dict[str, Any], *, where: str) -> InputSpec:
    """Read an :class:`InputSpec` from JSON text or a dict, naming ``where`` on error.

    Example
    -------
    >>> parse_input_spec('{"modality": "ct"}', where="x").modality
    'CT'
    """
    return _parse(InputSpec, data, where)


def parse_output_spec(data: str | dict[str, Any], *, where: str) -> OutputSpec:
    """Read an :class:`OutputSpec` from JSON text or a dict, naming ``where`` on error."""
    return _parse(OutputSpec, data, where)


def _parse(cls: type[Any], data: str | dict[str, Any], where: str) -> Any:
    try:
        obj = json.loads(data) if isinstance(data, str) else data
        return cls.model_validate(obj)
    except json.JSONDecodeError as err:
        raise SchemaError(
            f"{cls.__name__} is not valid JSON ({err.msg} at {err.pos})",
            where=where,
            hint="re-export the model with aimd",
        ) from err
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise SchemaError(
            f"{cls.__name__} field {field!r}: {first['msg']}",
            where=where,
            hint="fix the spec or re-export the model with aimd",
        ) from err


__all__ = ["InputSpec", "Intensity", "OutputSpec", "parse_input_spec", "parse_output_spec", "spec_to_json"]
