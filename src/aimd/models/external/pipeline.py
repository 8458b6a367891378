"""Shared pieces for running third-party 3-D networks through aimd's adapters (000 §4.2.4, §6.1).

A third-party model often arrives as a bare TorchScript archive whose forward already ends in a
channel softmax, and whose own preprocessing (orientation, cropping, resampling, intensity
normalisation) is documented only by its package's code. aimd re-states that preprocessing as its
own code, built from these pieces:

* :class:`ProbabilityOutputPredictor` — aimd's TorchScript adapter for a network that returns
  softmax probabilities: ``log p`` are valid logits (``softmax(log p) = p``), so the declared
  ``softmax`` activation reproduces the network's own output exactly;
* :class:`Orientation` — the closest RAS axis order of a :class:`Volume` and the way back;
* :func:`resize_nearest`, :func:`largest_component` and :func:`fill_holes` — resampling and mask
  clean-up on arrays;
* :class:`PreparedVolume` and the :class:`VolumePipeline` protocol — one network input per volume,
  with everything needed to map an output or a reference mask between the volume and the grid.

Example
-------
>>> import numpy as np
>>> from aimd.imaging.volume import Volume
>>> vol = Volume(np.arange(24).reshape(2, 3, 4))
>>> o = Orientation.of(vol)
>>> o.codes, o.to_ras(vol.array).shape
(('L', 'P', 'S'), (4, 3, 2))
>>> bool((o.from_ras(o.to_ras(vol.array)) == vol.array).all())
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from scipy import ndimage

from aimd.core.errors import InvalidInputError
from aimd.imaging.nifti_io import volume_affine_ras
from aimd.imaging.volume import Volume
from aimd.models.adapters.torchscript import TorchScriptPredictor
from aimd.models.predictor import BasePredictor

_RAS = nib.orientations.axcodes2ornt(("R", "A", "S"))


class ProbabilityOutputPredictor(TorchScriptPredictor):
    """TorchScript adapter for a network whose forward ends in a softmax over channels.

    The adapter returns ``log p`` as logits; the declared ``softmax`` activation turns them back
    into ``p``. Every call checks that the outputs really are probabilities (non-negative, summing
    to 1 over channels), so a network returning logits is rejected instead of silently distorted.

    Example
    -------
    >>> import tempfile, pathlib, torch
    >>> from aimd.models.specs import InputSpec, OutputSpec
    >>> net = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.Softmax(dim=1)))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "soft.pt"
    >>> torch.jit.save(net, str(path))
    >>> spec_in = InputSpec(modality="MR", patch_size=(4, 4))
    >>> spec_out = OutputSpec(task="segmentation", labels={0: "bg", 1: "fg"}, activation="softmax")
    >>> p = ProbabilityOutputPredictor(path, spec_in, spec_out)
    >>> x = np.random.default_rng(0).random((1, 1, 4, 4), dtype=np.float32)
    >>> with torch.inference_mode():
    ...     direct = net(torch.from_numpy(x)).numpy()
    >>> bool(np.abs(p.predict(x) - direct).max() < 1e-6)
    True
    """

    def _logits(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        probs = super()._logits(batch)
        sums = probs.sum(axis=1)
        if probs.min() < -1e-6 or not np.allclose(sums, 1.0, atol=1e-3):
            raise InvalidInputError(
                f"the network's outputs are not softmax probabilities (channel sums {float(sums.min()):.4g}"
                f"–{float(sums.max()):.4g})",
                where=str(self.metadata.get("source", "model")),
                hint="use TorchScriptPredictor for a network that returns logits",
            )
        return np.log(np.maximum(probs, np.finfo(np.float32).tiny)).astype(np.float32)


@dataclass(frozen=True)
class Orientation:
    """Axis order and flips taking a :class:`Volume`'s ``(z, y, x)`` array to the closest RAS order.

    ``ornt`` is nibabel's orientation of the ``(x, y, z)`` index axes; RAS arrays are indexed
    ``(R, A, S)``.
    """

    ornt: NDArray[np.float64]
    codes: tuple[str, ...]

    @classmethod
    def of(cls, volume: Volume) -> Orientation:
        """The orientation of ``volume`` (from its direction cosines, via nibabel)."""
        ornt = nib.orientations.io_orientation(volume_affine_ras(volume))
        codes = tuple(str(c) for c in nib.orientations.aff2axcodes(volume_affine_ras(volume)))
        return cls(ornt=ornt, codes=codes)

    def to_ras(self, array: NDArray[Any]) -> NDArray[Any]:
        """``array`` ``(z, y, x)`` reordered and flipped to ``(R, A, S)``."""
        xyz = np.transpose(array, (2, 1, 0))
        return np.ascontiguousarray(nib.orientations.apply_orientation(xyz, self.ornt))

    def from_ras(self, array: NDArray[Any]) -> NDArray[Any]:
        """Inverse of :meth:`to_ras`: an ``(R, A, S)`` array back to the volume's ``(z, y, x)`` order."""
        back = nib.orientations.ornt_transform(_RAS, self.ornt)
        xyz = nib.orientations.apply_orientation(array, back)
        return np.ascontiguousarray(np.transpose(xyz, (2, 1, 0)))


def resize_nearest(array: NDArray[Any], shape: tuple[int, ...]) -> NDArray[Any]:
    """Resample a 3-D ``array`` to ``shape`` by nearest neighbour (PyTorch ``nearest-exact``).

    Example
    -------
    >>> resize_nearest(np.arange(8, dtype=np.float32).reshape(2, 2, 2), (4, 4, 4)).shape
    (4, 4, 4)
    """
    if tuple(array.shape) == tuple(shape):
        return array
    dtype = array.dtype
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    out = F.interpolate(tensor, size=tuple(int(s) for s in shape), mode="nearest-exact")[0, 0].numpy()
    return out.astype(dtype, copy=False)


_FULL = ndimage.generate_binary_structure(3, 3)


def largest_component(mask: NDArray[Any]) -> NDArray[np.bool_]:
    """The largest 26-connected component of ``mask`` (empty stays empty).

    Example
    -------
    >>> m = np.zeros((1, 1, 7), bool); m[0, 0, [0, 2, 3, 4]] = True
    >>> largest_component(m)[0, 0].astype(int).tolist()
    [0, 0, 1, 1, 1, 0, 0]
    """
    labels, count = ndimage.label(np.asarray(mask, dtype=bool), structure=_FULL)
    if count == 0:
        return np.zeros(mask.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return np.asarray(labels == int(np.argmax(sizes)))


def fill_holes(mask: NDArray[Any]) -> NDArray[np.bool_]:
    """``mask`` with every enclosed cavity filled (SciPy binary hole filling).

    Example
    -------
    >>> m = np.ones((3, 3, 3), bool); m[1, 1, 1] = False
    >>> bool(fill_holes(m).all())
    True
    """
    return np.asarray(ndimage.binary_fill_holes(np.asarray(mask, dtype=bool)))


@dataclass
class PreparedVolume:
    """One volume turned into a network input, and the way back.

    ``inputs``: ``(channels, *grid)`` float32 network input. ``box``: the crop in the RAS-ordered
    array that the grid covers. ``ras_shape``: shape of that RAS array. ``orientation``: from the
    volume to RAS. ``record``: every step applied, with its parameters.
    """

    inputs: NDArray[np.float32]
    box: tuple[slice, slice, slice]
    ras_shape: tuple[int, int, int]
    orientation: Orientation
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def box_shape(self) -> tuple[int, int, int]:
        """Size of the crop in RAS voxels."""
        return tuple(int(s.stop - s.start) for s in self.box)  # type: ignore[return-value]

    def labels_to_grid(self, labels: Volume) -> NDArray[np.int64]:
        """A label volume on the same voxels as the prepared image, mapped onto the network grid."""
        ras = self.orientation.to_ras(np.asarray(labels.array))
        if tuple(ras.shape) != self.ras_shape:
            raise InvalidInputError(
                f"label grid {labels.shape} differs from the image grid",
                where="labels",
                hint="pass a mask on the same voxels as the image",
            )
        return resize_nearest(ras[self.box].astype(np.int64), tuple(self.inputs.shape[1:])).astype(np.int64)

    def grid_to_volume(self, grid: NDArray[Any]) -> NDArray[Any]:
        """Map a grid-shaped array back into the crop of the full RAS array, then to ``(z, y, x)``."""
        full = np.zeros(self.ras_shape, dtype=grid.dtype)
        full[self.box] = resize_nearest(grid, self.box_shape)
        return self.orientation.from_ras(full)

    def outside_fraction(self, labels: Volume) -> float:
        """Fraction of the foreground of ``labels`` that lies outside the crop (lost to the network)."""
        ras = self.orientation.to_ras(np.asarray(labels.array) > 0)
        total = int(ras.sum())
        return 0.0 if total == 0 else round(1.0 - int(ras[self.box].sum()) / total, 6)


class VolumePipeline(Protocol):
    """What the volume evaluation needs from a third-party model's pipeline."""

    @property
    def predictor(self) -> BasePredictor:
        """The network under evaluation, behind an aimd adapter."""
        ...

    def prepare(self, volume: Volume, *, modality: str | None = None, where: str = "input") -> PreparedVolume:
        """Check ``volume`` and turn it into the network input."""
        ...


__all__ = [
    "Orientation",
    "PreparedVolume",
    "ProbabilityOutputPredictor",
    "VolumePipeline",
    "fill_holes",
    "largest_component",
    "resize_nearest",
]
