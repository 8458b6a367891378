"""deepbet — third-party brain extraction of T1-weighted MRI — described and run by aimd (000 §4.2.4, §6.1).

The ``deepbet`` wheel on PyPI (1.0.2, MIT) ships two TorchScript LinkNet3d networks under
``site-packages/data/models``: ``bbox_model.pt`` finds the brain on a coarse 128³ copy of the
head, ``model.pt`` segments it on a 256³ copy of the brain's box. aimd locates both files from
the package's installed-files record (deepbet itself is never imported, so its runtime
dependencies are not needed: ``pip install --no-deps deepbet==1.0.2``), declares their
:class:`InputSpec`/:class:`OutputSpec`, and re-states the preprocessing the networks expect:

1. orientation — the volume is reordered to the closest RAS axis order;
2. intensity window — the 0.5 % and 99.5 % quantiles of the head resized (nearest) to 128³;
3. normalisation — clip to the window and scale to [0, 1], standardise over the network input,
   then scale to mean 0.449 / standard deviation 0.226;
4. localisation — ``bbox_model.pt`` on the 128³ head; its brain probability > 0.5, largest
   component; per axis the planes holding > 2 % brain give the extent, grown by 10 % of the
   size on each side and mapped to the full grid;
5. segmentation — the box resized (nearest) to the grid (256³ as trained; a smaller multiple of
   32 trades accuracy for time), ``model.pt``'s brain probability resized back into the box;
6. post-processing — probability > 0.5, largest 26-connected component, holes filled.

Both networks run through aimd's TorchScript adapter (:class:`ProbabilityOutputPredictor`), so
their inputs are checked against the specs on every call.

Example
-------
>>> spec_in, spec_out = deepbet_specs(grid=128)
>>> spec_in.input_shape(), spec_out.labels[1]
([-1, 1, 128, 128, 128], 'brain')
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.core.errors import InvalidInputError
from aimd.imaging.volume import Volume
from aimd.models.describe.provider import ProviderInfo
from aimd.models.external.describe import describe_torchscript
from aimd.models.external.pipeline import (
    Orientation,
    PreparedVolume,
    ProbabilityOutputPredictor,
    fill_holes,
    largest_component,
    resize_nearest,
)
from aimd.models.preprocess import check_volume
from aimd.models.specs import InputSpec, Intensity, OutputSpec

PACKAGE = "deepbet"
PINNED_VERSION = "1.0.2"
INSTALL_HINT = f"pip install --no-deps {PACKAGE}=={PINNED_VERSION} (the wheel ships its TorchScript weights)"
MODEL_FILES = {"model": "data/models/model.pt", "bbox_model": "data/models/bbox_model.pt"}
GRID = 256
BBOX_GRID = 128
SIZE_MULTIPLE = 32
# Output of the normalisation: (z-score) * 0.226 + 0.449. At least 0.5 % of the voxels sit at each end of the
# quantile window, which bounds |z| by sqrt(0.995 / 0.005) ≈ 14.1 and the values by about [-2.75, 3.64].
NORM_MEAN, NORM_STD = 0.449, 0.226
VALUE_RANGE = (-3.0, 4.0)
QUANTILES = (0.005, 0.995)
BOX_MARGIN = 0.1
PLANE_FRACTION = 0.02
THRESHOLD = 0.5

PREPROCESSING = (
    "reorder to the closest RAS axis order",
    f"intensity window: {QUANTILES[0]:.1%} and {QUANTILES[1]:.1%} quantiles of the head resized (nearest) to "
    f"{BBOX_GRID}³",
    f"localise: bbox_model.pt on the {BBOX_GRID}³ head, brain probability > {THRESHOLD}, largest component, "
    f"planes with > {PLANE_FRACTION:.0%} brain, box grown by {BOX_MARGIN:.0%} per side",
    "crop the box and resize it (nearest) to the network grid",
    f"clip to the window, scale to [0, 1], standardise, then × {NORM_STD} + {NORM_MEAN}",
)
POSTPROCESSING = (
    f"softmax probability of 'brain' resized (nearest) back into the box; > {THRESHOLD}; "
    "largest 26-connected component; holes filled; back to the input's axis order"
)


@dataclass(frozen=True)
class DeepBetFiles:
    """The installed deepbet wheel: its two TorchScript files and its package metadata."""

    model: Path
    bbox_model: Path
    version: str
    summary: str = ""
    author: str = ""
    home_page: str = ""
    license: str = ""


def find_deepbet() -> DeepBetFiles:
    """Locate deepbet's TorchScript files through the installed package's file record.

    Raises
    ------
    InvalidInputError
        deepbet is not installed, or its wheel lacks a model file.

    Example
    -------
    >>> try:
    ...     files = find_deepbet()
    ... except InvalidInputError as err:
    ...     files = None
    >>> files is None or files.model.name == "model.pt"
    True
    """
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError as err:
        raise InvalidInputError("the deepbet package is not installed", where=PACKAGE, hint=INSTALL_HINT) from err
    found: dict[str, Path] = {}
    for entry in dist.files or []:
        posix = str(entry).replace("\\", "/")
        for key, rel in MODEL_FILES.items():
            if posix.endswith(rel):
                found[key] = Path(str(dist.locate_file(entry))).resolve()
    missing = [rel for key, rel in MODEL_FILES.items() if key not in found or not found[key].is_file()]
    if missing:
        raise InvalidInputError(
            f"deepbet {dist.version} lacks {missing}",
            where=str(dist.locate_file("")),
            hint=f"reinstall: {INSTALL_HINT}",
        )
    meta = dist.metadata
    return DeepBetFiles(
        model=found["model"],
        bbox_model=found["bbox_model"],
        version=dist.version,
        summary=meta.get("Summary") or "",
        author=meta.get("Author") or "",
        home_page=meta.get("Home-page") or "",
        license=meta.get("License") or "",
    )


def _check_grid(grid: int) -> int:
    if grid % SIZE_MULTIPLE or grid < 3 * SIZE_MULTIPLE:
        raise InvalidInputError(
            f"grid must be a multiple of {SIZE_MULTIPLE} and at least {3 * SIZE_MULTIPLE}, got {grid}",
            where="grid",
            hint=f"use {GRID} (as trained), 192 or 160",
        )
    return int(grid)


def deepbet_specs(grid: int = GRID) -> tuple[InputSpec, OutputSpec]:
    """Input and output specs of deepbet's ``model.pt`` on a ``grid``³ network input (000 §4.2.4).

    The network is fully convolutional (sizes must be multiples of 32); it was trained on 256³
    boxes. Inputs are the normalised values described in :data:`PREPROCESSING`; the output is a
    softmax over ``background`` / ``brain``.

    Example
    -------
    >>> spec_in, spec_out = deepbet_specs()
    >>> spec_in.patch_size, spec_in.size_multiple, spec_out.activation
    ((256, 256, 256), 32, 'softmax')
    """
    g = _check_grid(grid)
    note = (
        f"clip to the {QUANTILES[0]:.1%}–{QUANTILES[1]:.1%} quantile window of the head, scale to [0, 1], "
        f"standardise, then × {NORM_STD} + {NORM_MEAN}"
    )
    spec_in = InputSpec(
        modality="MR",
        dims=3,
        channels=1,
        patch_size=(g, g, g),
        fixed_size=False,
        size_multiple=SIZE_MULTIPLE,
        spacing_mm=None,
        raw_dtypes=("int", "float"),
        intensity=Intensity(method="none", note=note),
        value_range=VALUE_RANGE,
    )
    spec_out = OutputSpec(
        task="segmentation",
        labels={0: "background", 1: "brain"},
        activation="softmax",
        target="brain",
        description="brain extraction (skull stripping) of T1-weighted head MRI",
    )
    return spec_in, spec_out


def bbox_specs() -> tuple[InputSpec, OutputSpec]:
    """Specs of deepbet's ``bbox_model.pt`` (coarse brain localisation on the 128³ head).

    Example
    -------
    >>> bbox_specs()[0].patch_size
    (128, 128, 128)
    """
    spec_in = deepbet_specs(BBOX_GRID)[0]
    spec_out = OutputSpec(
        task="segmentation",
        labels={0: "background", 1: "brain"},
        activation="softmax",
        target="brain_box",
        description="coarse brain localisation on the whole head",
    )
    return spec_in, spec_out


def deepbet_normalise(array: NDArray[Any], low: float, high: float) -> NDArray[np.float32]:
    """Clip to ``[low, high]`` scaled to [0, 1], standardise, then scale to 0.449 ± 0.226.

    Example
    -------
    >>> x = deepbet_normalise(np.array([0.0, 1.0, 2.0, 3.0]), 1.0, 2.0)
    >>> round(float(x.mean()), 3), round(float(x.std(ddof=1)), 3)
    (0.449, 0.226)
    """
    if not high > low:
        raise InvalidInputError(
            f"intensity window is empty (low {low:g}, high {high:g}): the image is constant",
            where="intensity",
            hint="pass a T1-weighted head image",
        )
    unit = np.clip((np.asarray(array, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    std = float(unit.std(ddof=1))
    if std == 0.0:
        raise InvalidInputError(
            "the network input is constant after windowing", where="intensity", hint="pass a T1-weighted head image"
        )
    return ((unit - unit.mean()) / std * NORM_STD + NORM_MEAN).astype(np.float32)


def brain_box(
    mask: NDArray[np.bool_],
    full_shape: tuple[int, int, int],
    *,
    margin: float = BOX_MARGIN,
    plane_fraction: float = PLANE_FRACTION,
) -> tuple[slice, slice, slice]:
    """The crop of a ``full_shape`` array holding the brain found on the coarse ``mask``.

    Per axis, the planes of ``mask`` whose brain fraction exceeds ``plane_fraction`` give the
    extent; centre and size are scaled to ``full_shape``, the size grown by ``margin`` per side.

    Example
    -------
    >>> m = np.zeros((10, 10, 10), bool); m[2:8, 3:7, 4:6] = True
    >>> brain_box(m, (20, 20, 20), margin=0.0)
    (slice(4, 16, None), slice(6, 14, None), slice(8, 12, None))
    """
    box: list[slice] = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        occupied = np.flatnonzero(mask.mean(axis=others) > plane_fraction)
        if occupied.size == 0:
            raise InvalidInputError(
                "the localisation network found no brain",
                where="bbox_model",
                hint="pass a T1-weighted MR image of a head",
            )
        scale = full_shape[axis] / mask.shape[axis]
        lo, hi = int(occupied[0]), int(occupied[-1]) + 1
        centre = round((lo + hi) / 2 * scale)
        size = round((hi - lo) * scale * (1 + 2 * margin))
        box.append(slice(max(0, int(centre - size / 2)), min(full_shape[axis], int(centre + size / 2))))
    return box[0], box[1], box[2]


@dataclass
class BrainExtraction:
    """Result of :meth:`DeepBet.extract`: the brain mask on the input's voxels and every step applied."""

    mask: Volume
    record: dict[str, Any] = field(default_factory=dict)


class DeepBet:
    """deepbet's two networks behind aimd's TorchScript adapter, with their pre/post-processing.

    Parameters
    ----------
    files:
        The installed wheel (default: :func:`find_deepbet`).
    grid:
        Network grid edge for ``model.pt``: 256 as trained; 192 or 160 for faster runs.

    Example
    -------
    >>> try:
    ...     bet = DeepBet(grid=160)
    ... except InvalidInputError:
    ...     bet = None
    >>> bet is None or bet.predictor.input_spec.patch_size == (160, 160, 160)
    True
    """

    def __init__(self, files: DeepBetFiles | None = None, *, grid: int = GRID) -> None:
        self.files = files or find_deepbet()
        spec_in, spec_out = deepbet_specs(grid)
        self._predictor = ProbabilityOutputPredictor(self.files.model, spec_in, spec_out)
        self._predictor.metadata.update(
            {
                "model": f"deepbet {self.files.version} (model.pt)",
                "package": PACKAGE,
                "package_version": self.files.version,
                "grid": grid,
                "preprocessing": "; ".join(PREPROCESSING),
                "postprocessing": POSTPROCESSING,
            }
        )
        box_in, box_out = bbox_specs()
        self.bbox_predictor = ProbabilityOutputPredictor(self.files.bbox_model, box_in, box_out)
        self.bbox_predictor.metadata.update({"model": f"deepbet {self.files.version} (bbox_model.pt)"})
        self.grid = grid

    @property
    def predictor(self) -> ProbabilityOutputPredictor:
        """``model.pt``, the network under evaluation."""
        return self._predictor

    def _localise(self, ras: NDArray[np.float32]) -> tuple[tuple[slice, slice, slice], float, float, dict[str, Any]]:
        small = resize_nearest(ras, (BBOX_GRID,) * 3)
        low, high = (float(q) for q in np.quantile(small, QUANTILES))
        probs = self.bbox_predictor.predict(deepbet_normalise(small, low, high)[None, None])
        coarse = largest_component(probs[0, 1] > THRESHOLD)
        box = brain_box(coarse, tuple(ras.shape))  # type: ignore[arg-type]
        record = {
            "window": [round(low, 6), round(high, 6)],
            "coarse_brain_voxels": int(coarse.sum()),
            "box_ras": [[s.start, s.stop] for s in box],
        }
        return box, low, high, record

    def prepare(self, volume: Volume, *, modality: str | None = None, where: str = "input") -> PreparedVolume:
        """Check ``volume`` (MR, numeric) and turn it into ``model.pt``'s input on the grid.

        Parameters
        ----------
        volume:
            A T1-weighted head volume in stored intensities.
        modality:
            Modality to assume when the file carries none (NIfTI); a modality the volume carries wins.
        where:
            Name used in error messages.
        """
        started = time.perf_counter()
        check_volume(volume, self.predictor.input_spec, modality=modality, where=where)
        orientation = Orientation.of(volume)
        ras = np.nan_to_num(orientation.to_ras(np.asarray(volume.array, dtype=np.float32)))
        box, low, high, record = self._localise(ras)
        crop = resize_nearest(ras[box], (self.grid,) * 3)
        inputs = deepbet_normalise(crop, low, high)[None]
        record.update(
            {
                "orientation": "".join(orientation.codes),
                "grid": [self.grid] * 3,
                "box_shape": [s.stop - s.start for s in box],
                "value_range": [round(float(inputs.min()), 4), round(float(inputs.max()), 4)],
                "steps": list(PREPROCESSING),
                "seconds": round(time.perf_counter() - started, 4),
            }
        )
        return PreparedVolume(
            inputs=inputs,
            box=box,
            ras_shape=tuple(ras.shape),  # type: ignore[arg-type]
            orientation=orientation,
            record=record,
        )

    def extract(self, volume: Volume, *, modality: str | None = None, where: str = "input") -> BrainExtraction:
        """The brain mask of ``volume`` on its own voxels (uint8 :class:`Volume`, modality ``SEG``).

        Example
        -------
        >>> from aimd.imaging.volume import Volume
        >>> try:
        ...     DeepBet(grid=96).extract(Volume(np.zeros((4, 4, 4)), modality="CT"))
        ... except InvalidInputError as err:
        ...     print(err.message)
        model expects MR images, got CT
        """
        started = time.perf_counter()
        prepared = self.prepare(volume, modality=modality, where=where)
        t0 = time.perf_counter()
        probs = self.predictor.predict(prepared.inputs[None])[0, 1]
        network_s = time.perf_counter() - t0
        brain = prepared.grid_to_volume(probs) > THRESHOLD
        cleaned = fill_holes(largest_component(brain))
        mask = Volume(
            cleaned.astype(np.uint8),
            spacing=volume.spacing,
            origin=volume.origin,
            direction=volume.direction,
            modality="SEG",
            metadata={"labels": {"1": "brain"}},
        )
        record = {
            **prepared.record,
            "network_seconds": round(network_s, 4),
            "threshold": THRESHOLD,
            "postprocessing": POSTPROCESSING,
            "voxels_before_cleanup": int(brain.sum()),
            "voxels": int(cleaned.sum()),
            "volume_ml": round(float(cleaned.sum()) * float(np.prod(volume.spacing)) / 1000.0, 3),
            "total_seconds": round(time.perf_counter() - started, 4),
            "model_sha256": self.predictor.metadata.get("weights_sha256"),
        }
        return BrainExtraction(mask=mask, record=record)


def describe_deepbet(bet: DeepBet, info: ProviderInfo | None = None) -> dict[str, Any]:
    """000 §4 description of deepbet's ``model.pt``, from the archive, the specs and the wheel's metadata.

    The wheel states name, version, author, home page and licence; it states nothing about the
    training data or the learning method, so those items are gaps unless ``info`` supplies them.

    Example
    -------
    >>> doc = describe_deepbet(DeepBet(grid=96))  # doctest: +SKIP
    >>> doc["sections"]["4.2.3"]["items"]["total"]["value"]  # doctest: +SKIP
    2126258
    """
    f = bet.files
    who = ", ".join(x for x in (f.author, f.home_page, f"licence {f.license}" if f.license else "") if x)
    return describe_torchscript(
        bet.predictor,
        name=PACKAGE,
        version=f.version,
        provider=who or None,
        preprocessing=PREPROCESSING,
        postprocessing=POSTPROCESSING,
        info=info,
        sources=dict.fromkeys(("version", "provider"), f"{PACKAGE} wheel metadata"),
    )


__all__ = [
    "BBOX_GRID",
    "GRID",
    "INSTALL_HINT",
    "PINNED_VERSION",
    "POSTPROCESSING",
    "PREPROCESSING",
    "BrainExtraction",
    "DeepBet",
    "DeepBetFiles",
    "bbox_specs",
    "brain_box",
    "deepbet_normalise",
    "deepbet_specs",
    "describe_deepbet",
    "find_deepbet",
]
