"""NIfTI (.nii / .nii.gz) read and write through nibabel; RAS↔LPS at this boundary only (001 §7.2, App. B.2).

NIfTI stores world coordinates in RAS, aimd's :class:`Volume` in LPS (DICOM/ITK): the affine is
multiplied by ``diag(-1, -1, 1, 1)`` on the way in and out. The voxel-to-world affine is the one
nibabel chooses (``img.affine``: the sform when its code is set, else the qform, else the pixdim
scaling), so aimd and nibabel agree on every voxel's position.

A NIfTI file with neither sform nor qform has no defined orientation (001 §7.2 b, d): the volume
still loads, and ``metadata["geometry_missing"]`` names the file so ``check_volume`` reports it.

Example
-------
>>> import numpy as np, tempfile, pathlib
>>> from aimd.imaging.volume import Volume
>>> vol = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), spacing=(0.5, 0.6, 2.0), origin=(1, 2, 3))
>>> path = pathlib.Path(tempfile.mkdtemp()) / "v.nii.gz"
>>> write_nifti(vol, path)
>>> back = read_nifti(path)
>>> back.same_grid(vol) and bool((back.array == vol.array).all())
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import NDArray

from aimd.core.atomic import atomic_file
from aimd.core.errors import GeometryError, InvalidInputError
from aimd.imaging.volume import Volume

#: Multiplying an affine by this flips RAS ↔ LPS (x and y change sign).
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
NIFTI_SUFFIXES = (".nii", ".nii.gz")
_DESCRIP_PREFIX = "aimd modality="


def is_nifti_path(path: str | Path) -> bool:
    """True when ``path`` ends in ``.nii`` or ``.nii.gz``."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def affine_to_geometry(
    affine_lps: NDArray[np.float64],
) -> tuple[tuple[float, float, float], tuple[float, float, float], NDArray[np.float64], list[str]]:
    """Split a 4×4 LPS affine into spacing, origin and direction (columns = unit axis directions).

    Returns also the list of problems found (``"pixel_spacing"`` when a column has zero length).

    Example
    -------
    >>> sp, org, d, problems = affine_to_geometry(np.diag([-2.0, 3.0, 1.0, 1.0]))
    >>> sp, float(d[0, 0]), problems
    ((2.0, 3.0, 1.0), -1.0, [])
    """
    m = np.asarray(affine_lps, dtype=np.float64)[:3, :3]
    norms = np.linalg.norm(m, axis=0)
    problems: list[str] = []
    direction = np.eye(3)
    spacing = [1.0, 1.0, 1.0]
    for axis in range(3):
        if norms[axis] > 1e-12 and np.isfinite(norms[axis]):
            spacing[axis] = float(norms[axis])
            direction[:, axis] = m[:, axis] / norms[axis]
        else:
            problems.append("pixel_spacing")
    origin = np.asarray(affine_lps, dtype=np.float64)[:3, 3]
    return (
        (spacing[0], spacing[1], spacing[2]),
        (float(origin[0]), float(origin[1]), float(origin[2])),
        direction,
        sorted(set(problems)),
    )


def read_nifti(path: str | Path, *, volume_index: int | None = None) -> Volume:
    """Read a NIfTI-1/2 file into a :class:`Volume` in LPS.

    Parameters
    ----------
    path:
        ``.nii`` or ``.nii.gz`` file.
    volume_index:
        For 4-D files, which volume (4th index) to read; a 4-D file with more than one volume
        needs it.

    Example
    -------
    >>> from nibabel.testing import data_path
    >>> vol = read_nifti(f"{data_path}/anatomical.nii")
    >>> vol.shape, vol.origin
    ((25, 41, 33), (-32.0, 40.0, -16.0))
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError("file does not exist", where=str(path), hint="check the path")
    try:
        img = nib.load(str(path))
        if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
            raise InvalidInputError(
                f"not a NIfTI image ({type(img).__name__})",
                where=str(path),
                hint="pass a NIfTI-1/2 .nii or .nii.gz file",
            )
        data = np.asanyarray(img.dataobj)
    except InvalidInputError:
        raise
    except Exception as err:  # damaged files raise many types (ImageFileError, EOFError, zlib.error ...)
        raise InvalidInputError(
            f"cannot read NIfTI file ({type(err).__name__}: {err})",
            where=str(path),
            hint="the file is damaged or not NIfTI; re-export it",
        ) from None
    if data.ndim == 4:
        if volume_index is None and data.shape[3] != 1:
            raise GeometryError(
                f"4-D NIfTI with {data.shape[3]} volumes, shape {data.shape}",
                where=str(path),
                hint="choose one volume with volume_index=...",
            )
        data = data[..., volume_index or 0]
    elif data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise GeometryError(
            f"NIfTI image has {data.ndim} dimensions, shape {data.shape}",
            where=str(path),
            hint="aimd reads 2-D, 3-D or 4-D (one volume at a time) images",
        )
    if data.dtype.kind not in "iufb":
        raise InvalidInputError(
            f"unsupported NIfTI data type {data.dtype}", where=str(path), hint="store scalar integer or float voxels"
        )
    header: Any = img.header
    qcode, scode = int(header["qform_code"]), int(header["sform_code"])
    spacing, origin, direction, problems = affine_to_geometry(RAS_TO_LPS @ img.affine)
    missing: dict[str, list[str]] = {p: [str(path)] for p in problems}
    if qcode == 0 and scode == 0:
        missing["orientation"] = [str(path)]
        missing["position"] = [str(path)]
    descrip = header["descrip"].tobytes().split(b"\0")[0].decode("latin-1").strip()
    modality = (
        descrip[len(_DESCRIP_PREFIX) :].split()[0]
        if descrip.startswith(_DESCRIP_PREFIX) and len(descrip) > len(_DESCRIP_PREFIX)
        else None
    )
    slope, inter = header.get_slope_inter()
    metadata: dict[str, Any] = {
        "source": "nifti",
        "files": [str(path)],
        "n_files": 1,
        "modality": modality,
        "qform_code": qcode,
        "sform_code": scode,
        "original_dtype": str(img.get_data_dtype()),
        "rescale": {
            "slope": 1.0 if slope is None else float(slope),
            "intercept": 0.0 if inter is None else float(inter),
        },
        "geometry_missing": missing,
    }
    array = np.ascontiguousarray(np.transpose(data, (2, 1, 0)))
    return Volume(array, spacing=spacing, origin=origin, direction=direction, modality=modality, metadata=metadata)


def volume_affine_ras(volume: Volume) -> NDArray[np.float64]:
    """The NIfTI (RAS) affine of ``volume``."""
    return RAS_TO_LPS @ volume.affine


def write_nifti(volume: Volume, path: str | Path) -> None:
    """Write ``volume`` atomically as NIfTI-1 (``.nii`` or ``.nii.gz``), sform and qform both set.

    Booleans are stored as uint8; the modality goes into the header's ``descrip`` field.

    Example
    -------
    >>> import numpy as np, tempfile, pathlib
    >>> from aimd.imaging.volume import Volume
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "mask.nii"
    >>> write_nifti(Volume(np.ones((1, 2, 2), bool)), target)
    >>> read_nifti(target).array.dtype.name
    'uint8'
    """
    path = Path(path)
    if not is_nifti_path(path):
        raise InvalidInputError(
            "NIfTI output must end in .nii or .nii.gz", where=str(path), hint="rename the output, e.g. scan.nii.gz"
        )
    array = volume.array
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if array.dtype.kind not in "iuf":
        raise InvalidInputError(
            f"cannot store dtype {array.dtype} in NIfTI",
            where=str(path),
            hint="convert the array to an integer or float type",
        )
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    affine = volume_affine_ras(volume)
    img = nib.Nifti1Image(np.transpose(array, (2, 1, 0)), affine)
    img.set_sform(affine, code=1)
    # the qform cannot hold shears; nibabel then keeps the nearest rigid rotation, the sform stays exact
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units(xyz="mm")
    if volume.modality:
        img.header["descrip"] = f"{_DESCRIP_PREFIX}{volume.modality}"[:79].encode("latin-1", "replace")
    suffix = ".nii.gz" if str(path).lower().endswith(".gz") else ".nii"
    with atomic_file(path, suffix=suffix) as tmp:
        nib.save(img, str(tmp))


__all__ = [
    "NIFTI_SUFFIXES",
    "RAS_TO_LPS",
    "affine_to_geometry",
    "is_nifti_path",
    "read_nifti",
    "volume_affine_ras",
    "write_nifti",
]
