"""Read DICOM series, single files and multi-frame objects into a :class:`Volume` (001 §7.2 a–e).

How a folder becomes a volume:

1. Every file's header is read once (``stop_before_pixels``); for uncompressed little-endian
   files the byte offset of the pixel data is kept, so pixels are later read with NumPy directly.
   Headers and pixels are read on a thread pool.
2. Frames are grouped by SeriesInstanceUID. A folder holding several series needs ``series_uid``.
3. Slices are sorted by their position along the slice normal ``row × col`` of
   ImageOrientationPatient — never by file name or InstanceNumber alone (001 §7.2 e).
4. Spacing z is ``|p_last - p_first| / (n - 1)`` over the sorted positions. This is the rule of
   ITK's ``ImageSeriesReader`` (SimpleITK), so aimd and SimpleITK place every voxel alike; it is the
   mean step, not the median. Gaps are *not* hidden: every slice's own position is kept in
   ``metadata["slice_positions"]`` and ``aimd.imaging.geometry`` reports gaps, duplicates and
   non-uniform steps from it. With one slice, or without positions, z is SpacingBetweenSlices when
   present, else 1 mm (SimpleITK's rule for single files).
5. RescaleSlope/Intercept are applied (HU for CT): the stored dtype is kept when the rescale is the
   identity, int16 (or int32) when slope and intercept are integers, float32 otherwise.

Metadata of the returned volume: ``source`` ("dicom"), ``modality``, ``series_uid``, ``study_uid``,
``frame_of_reference_uid``, ``series_description``, ``sop_class_uid``, ``n_files``, ``files``
(spatial order), ``slices`` (per slice: file, frame, instance_number, position),
``slice_positions``, ``orientation`` (raw ImageOrientationPatient), ``spacing_source``,
``geometry_missing`` (files lacking orientation, position or pixel spacing), ``original_dtype``,
``bits_stored``, ``rescale``, ``rescale_tags``, ``rescale_type``, ``photometric``,
``transfer_syntax``, ``pixel_padding_value`` (after rescale), ``multi_frame``, ``projection``.

Pixel values are the stored values after rescale: MONOCHROME1 images are *not* inverted here
(SimpleITK/GDCM invert them; ``aimd.imaging.windowing.normalize`` does it for display).

Example
-------
>>> from pydicom.data import get_testdata_file
>>> vol = read_dicom_file(get_testdata_file("CT_small.dcm"))
>>> vol.shape, vol.modality, str(vol.array.dtype)
((1, 128, 128), 'CT', 'int16')
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray

from aimd.core.config import get_settings
from aimd.core.errors import GeometryError, InvalidInputError
from aimd.imaging.dicom_headers import (
    PROJECTION_MODALITIES,
    DicomScan,
    FrameHeader,
    PixelLocation,
    SeriesInfo,
    natural_key,
    read_frame_headers,
    scan_dicom,
    workers,
)
from aimd.imaging.volume import Volume


# ----------------------------------------------------------------------------- pixel reading
def _native_dtype(loc: PixelLocation) -> np.dtype[Any]:
    return np.dtype(f"<{'i' if loc.signed else 'u'}{loc.bits_allocated // 8}")


def _unused_bits(arr: NDArray[Any], loc: PixelLocation) -> NDArray[Any]:
    """Sign-extend (signed) or mask (unsigned) values stored in fewer bits than allocated, in place."""
    if loc.bits_stored < loc.bits_allocated:
        shift = loc.bits_allocated - loc.bits_stored
        if loc.signed:
            arr <<= shift
            arr >>= shift
        else:
            arr &= (1 << loc.bits_stored) - 1
    return arr


def _pixel_error(path: Path, err: Exception) -> InvalidInputError:
    return InvalidInputError(
        f"pixel data cannot be read ({type(err).__name__}: {err})",
        where=str(path),
        hint="the file is truncated or its compression is unsupported; re-export it",
    )


def _read_native_into(path: Path, loc: PixelLocation, out: NDArray[Any]) -> None:
    """Read uncompressed little-endian pixels straight into ``out`` (no intermediate copy)."""
    try:
        if loc.offset is None or loc.length is None or loc.length < out.nbytes:
            raise ValueError(f"pixel data holds {loc.length} bytes, {out.nbytes} expected")
        with open(path, "rb") as fh:
            fh.seek(loc.offset)
            got = fh.readinto(memoryview(out).cast("B"))
        if got != out.nbytes:
            raise ValueError(f"file ends after {got} of {out.nbytes} pixel bytes (truncated)")
    except (OSError, ValueError) as err:
        raise _pixel_error(path, err) from None
    _unused_bits(out, loc)


def _decode_file(path: Path, loc: PixelLocation) -> NDArray[Any]:
    """All frames of one file as ``(frames, rows, columns)`` stored values."""
    if loc.offset is not None:
        arr = np.empty((loc.n_frames, loc.rows, loc.columns), _native_dtype(loc))
        _read_native_into(path, loc, arr)
        return arr
    try:
        arr = np.asarray(pydicom.dcmread(path).pixel_array)
        return arr.reshape(loc.n_frames, loc.rows, loc.columns)
    except (
        OSError,
        ValueError,
        EOFError,
        RuntimeError,
        NotImplementedError,
        AttributeError,
        KeyError,
        struct.error,
        TypeError,
    ) as err:
        raise _pixel_error(path, err) from None


def read_stored_values(ordered: Sequence[FrameHeader], *, on_file: Callable[[], None] | None = None) -> NDArray[Any]:
    """Stored pixel values of ``ordered`` frames as one ``(n, rows, columns)`` array, on a thread pool.

    Single-frame uncompressed files are read straight into their slice of the result.
    """
    first = ordered[0]
    shape = (len(ordered), first.pixels.rows, first.pixels.columns)

    def tick() -> None:
        if on_file is not None:
            on_file()

    direct = (
        all(f.frame is None and f.pixels.offset is not None for f in ordered)
        and len({_native_dtype(f.pixels) for f in ordered}) == 1
    )
    if direct:
        raw = np.empty(shape, _native_dtype(first.pixels))

        def load_into(k: int) -> None:
            _read_native_into(ordered[k].path, ordered[k].pixels, raw[k])
            tick()

        with ThreadPoolExecutor(workers(len(ordered))) as pool:
            list(pool.map(load_into, range(len(ordered))))
        return raw
    locs = {f.path: f.pixels for f in ordered}
    slots: dict[Path, list[tuple[int, int]]] = {}
    for k, f in enumerate(ordered):
        slots.setdefault(f.path, []).append((k, f.frame or 0))
    natives = {_native_dtype(f.pixels) for f in ordered}
    # decoded files go straight into their slices when they come out in the dtype their header names,
    # so the decoded volume is never held beside the result; others wait and set the result's dtype
    raw = np.empty(shape, natives.pop()) if len(natives) == 1 else None

    def load(p: Path) -> tuple[Path, NDArray[Any] | None]:
        arr = _decode_file(p, locs[p])
        tick()
        if raw is None or arr.dtype != raw.dtype:
            return p, arr
        for k, frame in slots[p]:
            raw[k] = arr[frame]
        return p, None

    with ThreadPoolExecutor(workers(len(slots))) as pool:
        waiting = {p: a for p, a in pool.map(load, list(slots)) if a is not None}
    if not waiting:
        assert raw is not None
        return raw
    placed = [raw.dtype] if raw is not None and len(waiting) < len(slots) else []
    dtype = np.result_type(*placed, *[a.dtype for a in waiting.values()])
    raw = raw.astype(dtype, copy=False) if raw is not None and placed else np.empty(shape, dtype)
    for p, arr in waiting.items():
        for k, frame in slots[p]:
            raw[k] = arr[frame]
    return raw


def apply_rescale(
    raw: NDArray[Any], rescales: Sequence[tuple[float, float]], *, in_place: bool = False
) -> NDArray[Any]:
    """Apply per-slice (slope, intercept); dtype kept for identity, int16/int32 when exact, else float32.

    Integer rescales are computed in the output dtype: integer arithmetic wraps modulo 2**bits, so
    the result is exact whenever the true value fits — which ``_output_dtype`` guarantees. The same
    wrap lets ``in_place`` compute in ``raw``'s own memory when the output's integers have its size
    (unsigned 16-bit CT to int16 HU: no second copy of the volume); ``raw`` is then overwritten.

    Example
    -------
    >>> apply_rescale(np.array([[[0, 4095]]], np.uint16), [(1.0, -1024.0)]).tolist()
    [[[-1024, 3071]]]
    """
    unique = set(rescales)
    if unique == {(1.0, 0.0)}:
        return raw
    out_dtype = _output_dtype(raw.dtype, unique, float(raw.min()), float(raw.max()))
    if out_dtype.kind == "f":
        out = np.empty(raw.shape, np.float32)
        for k, (slope, intercept) in enumerate(rescales):
            out[k] = raw[k].astype(np.float64) * slope + intercept
        return out
    if in_place and raw.dtype.kind in "iu" and raw.dtype.itemsize == out_dtype.itemsize:
        out = raw.view(out_dtype)  # same bits modulo 2**bits: what astype would give, without a copy
    else:
        out = raw.astype(out_dtype, copy=raw.dtype != out_dtype)
    pairs = (
        [(slice(None), *next(iter(unique)))]
        if len(unique) == 1
        else [(slice(k, k + 1), s, i) for k, (s, i) in enumerate(rescales)]
    )
    for sl, slope, intercept in pairs:
        if slope != 1:
            out[sl] *= np.array(int(slope)).astype(out_dtype)
        if intercept:
            out[sl] += np.array(int(intercept)).astype(out_dtype)
    return out


# ----------------------------------------------------------------------------- geometry
@dataclass
class SeriesGeometry:
    """Spatial order and grid of one series' frames."""

    order: list[int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: NDArray[np.float64]
    spacing_source: dict[str, str]
    missing: dict[str, list[str]]
    orientation: list[float] | None


def series_geometry(frames: Sequence[FrameHeader]) -> SeriesGeometry:
    """Sort ``frames`` along the slice normal and derive spacing, origin and direction.

    Raises :class:`GeometryError` when the frames cannot share one grid (different sizes or
    orientations). Missing tags fall back to defaults and are listed in ``missing``.
    """
    if not frames:
        raise InvalidInputError("no DICOM image frames to assemble")
    tol = get_settings().geometry
    sizes = {(f.pixels.rows, f.pixels.columns) for f in frames}
    if len(sizes) > 1:
        raise GeometryError(
            f"slices of one series have different sizes {sorted(sizes)}",
            where=str(frames[0].path.parent),
            hint="run `aimd data validate` to locate them",
        )
    oris = [f.orientation for f in frames if f.orientation is not None]
    if oris and np.max(np.abs(np.asarray(oris) - np.asarray(oris[0]))) > tol.orthonormal_atol:
        raise GeometryError(
            "slices of one series have different ImageOrientationPatient (mixed orientations)",
            where=str(frames[0].path.parent),
            hint="split the series by orientation; run `aimd data validate` to locate them",
        )
    missing = {
        "orientation": sorted({str(f.path) for f in frames if f.orientation is None}),
        "position": sorted({str(f.path) for f in frames if f.position is None}),
        "pixel_spacing": sorted({str(f.path) for f in frames if f.pixel_spacing is None or min(f.pixel_spacing) <= 0}),
    }
    row, col = (np.asarray(oris[0][:3]), np.asarray(oris[0][3:])) if oris else (np.eye(3)[0], np.eye(3)[1])
    normal = np.cross(row, col)
    direction = np.column_stack([row, col, normal])
    tie = [
        (f.instance_number if f.instance_number is not None else 0, natural_key(f.path), f.frame or 0) for f in frames
    ]
    have_pos = not missing["position"]
    if have_pos:
        proj = [float(np.dot(np.asarray(f.position), normal)) for f in frames]
        order = sorted(range(len(frames)), key=lambda i: (proj[i], tie[i]))
    else:
        order = sorted(range(len(frames)), key=lambda i: tie[i])
    first = frames[order[0]]
    px = next((f.pixel_spacing for f in frames if f.pixel_spacing and min(f.pixel_spacing) > 0), None)
    spacing_source = {"xy": (first.spacing_tag or "default") if px else "default"}
    sx, sy = (px[1], px[0]) if px else (1.0, 1.0)
    sz = 0.0
    if have_pos and len(frames) > 1:
        span = np.asarray(frames[order[-1]].position) - np.asarray(first.position)
        sz = float(np.linalg.norm(span)) / (len(frames) - 1)
        spacing_source["z"] = "positions"
    if sz <= tol.position_atol_mm:
        if len(frames) > 1 and have_pos:
            missing.setdefault("slice_spacing", []).append(str(first.path))
        if first.spacing_between_slices and first.spacing_between_slices > 0:
            sz, spacing_source["z"] = first.spacing_between_slices, "SpacingBetweenSlices"
        else:
            sz, spacing_source["z"] = 1.0, "default"
    origin = first.position if first.position is not None else (0.0, 0.0, 0.0)
    return SeriesGeometry(
        order=order,
        spacing=(sx, sy, sz),
        origin=origin,
        direction=direction,
        spacing_source=spacing_source,
        missing={k: v for k, v in missing.items() if v},
        orientation=list(oris[0]) if oris else None,
    )


# ----------------------------------------------------------------------------- assembly
def _output_dtype(raw_dtype: np.dtype[Any], rescales: set[tuple[float, float]], lo: float, hi: float) -> np.dtype[Any]:
    if rescales == {(1.0, 0.0)}:
        return raw_dtype
    integral = raw_dtype.kind in "iub" and all(float(s).is_integer() and float(i).is_integer() for s, i in rescales)
    if integral:
        ends = [s * v + i for s, i in rescales for v in (lo, hi)]
        if min(ends) >= np.iinfo(np.int16).min and max(ends) <= np.iinfo(np.int16).max:
            return np.dtype(np.int16)
        if min(ends) >= np.iinfo(np.int32).min and max(ends) <= np.iinfo(np.int32).max:
            return np.dtype(np.int32)
    return np.dtype(np.float32)


def assemble_volume(frames: Sequence[FrameHeader], *, on_file: Callable[[], None] | None = None) -> Volume:
    """Read the pixels of ``frames`` (one series) and build the :class:`Volume`.

    Example
    -------
    >>> from pydicom.data import get_testdata_file
    >>> vol = assemble_volume(read_frame_headers(get_testdata_file("eCT_Supplemental.dcm")))
    >>> vol.shape
    (2, 512, 512)
    """
    geo = series_geometry(frames)
    ordered = [frames[i] for i in geo.order]
    paths = list(dict.fromkeys(f.path for f in ordered))
    raw = read_stored_values(ordered, on_file=on_file)
    raw_dtype = raw.dtype
    array = apply_rescale(raw, [(f.slope, f.intercept) for f in ordered], in_place=True)
    rescales = {(f.slope, f.intercept) for f in ordered}
    first = ordered[0]
    uniform = len(rescales) == 1
    pad = first.pixel_padding
    metadata: dict[str, Any] = {
        "source": "dicom",
        "modality": first.modality or None,
        "series_uid": first.series_uid,
        "study_uid": first.study_uid,
        "frame_of_reference_uid": first.frame_of_reference_uid,
        "series_description": first.description,
        "sop_class_uid": first.sop_class,
        "n_files": len(paths),
        "files": [str(p) for p in paths],
        "slices": [
            {
                "file": str(f.path),
                "frame": f.frame,
                "instance_number": f.instance_number,
                "position": list(f.position) if f.position else None,
            }
            for f in ordered
        ],
        "slice_positions": [list(f.position) if f.position else None for f in ordered],
        "orientation": geo.orientation,
        "spacing_source": geo.spacing_source,
        "geometry_missing": geo.missing,
        "original_dtype": str(raw_dtype),
        "bits_stored": first.pixels.bits_stored,
        "rescale": (
            {"slope": first.slope, "intercept": first.intercept}
            if uniform
            else {"slope": [f.slope for f in ordered], "intercept": [f.intercept for f in ordered]}
        ),
        "rescale_tags": all(f.rescale_tags for f in ordered),
        "rescale_type": first.rescale_type,
        "photometric": first.pixels.photometric,
        "transfer_syntax": first.pixels.transfer_syntax,
        "pixel_padding_value": pad * first.slope + first.intercept if pad is not None else None,
        "multi_frame": any(f.frame is not None for f in ordered),
        "projection": first.modality.upper() in PROJECTION_MODALITIES,
    }
    return Volume(
        array,
        spacing=geo.spacing,
        origin=geo.origin,
        direction=geo.direction,
        modality=first.modality or None,
        metadata=metadata,
    )


class AmbiguousSeriesError(InvalidInputError):
    """A folder holds several series and none was chosen; ``series`` lists them."""

    def __init__(
        self, message: str, *, series: list[SeriesInfo], where: str | None = None, hint: str | None = None
    ) -> None:
        self.series = series
        super().__init__(message, where=where, hint=hint)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "series": [s.to_dict() for s in self.series]}


def series_infos(scan: DicomScan) -> list[SeriesInfo]:
    """One :class:`SeriesInfo` per series of ``scan``."""
    out = []
    for uid, frames in scan.series().items():
        files = tuple(dict.fromkeys(str(f.path) for f in frames))
        first = frames[0]
        shape = (len(frames), first.pixels.rows, first.pixels.columns)
        out.append(
            SeriesInfo(
                uid=uid,
                modality=first.modality,
                description=first.description,
                n_files=len(files),
                shape=shape,
                files=files,
            )
        )
    return out


def _series_uids_message(infos: list[SeriesInfo]) -> str:
    return ", ".join(f"{s.uid or '(no SeriesInstanceUID)'} ({s.modality}, {s.n_files} files)" for s in infos)


def select_series(scan: DicomScan, series_uid: str | None, where: str) -> list[FrameHeader]:
    """The frames of one series of ``scan``.

    No image, an unknown uid, or several series without a uid (:class:`AmbiguousSeriesError`)
    are :class:`InvalidInputError` errors naming the series present.
    """
    groups = scan.series()
    if not groups:
        skipped = (
            f" ({len(scan.skipped)} non-image DICOM file(s) skipped: {scan.skipped[0][1]})" if scan.skipped else ""
        )
        raise InvalidInputError(
            f"no DICOM images found{skipped}",
            where=where,
            hint="pass a folder or file holding DICOM image files (.dcm)",
        )
    if series_uid is not None:
        if series_uid not in groups:
            raise InvalidInputError(
                f"series {series_uid!r} not found; the folder holds: {_series_uids_message(series_infos(scan))}",
                where=where,
                hint="pass one of the listed SeriesInstanceUIDs",
            )
        return groups[series_uid]
    if len(groups) > 1:
        infos = series_infos(scan)
        raise AmbiguousSeriesError(
            f"folder holds {len(groups)} series: {_series_uids_message(infos)}",
            series=infos,
            where=where,
            hint="choose one with --series UID (read_volume(..., series_uid=...))",
        )
    return next(iter(groups.values()))


def read_dicom_series(
    path: str | Path, series_uid: str | None = None, *, on_file: Callable[[], None] | None = None
) -> Volume:
    """Read one DICOM series from a folder (or a single, possibly multi-frame, file).

    Parameters
    ----------
    path:
        Folder searched recursively, or one DICOM file.
    series_uid:
        SeriesInstanceUID to read when the folder holds several series.
    on_file:
        Called once per header and once per pixel file read (for progress bars).

    Example
    -------
    >>> from pydicom.data import get_testdata_file
    >>> from pathlib import Path
    >>> folder = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests/98892001/CT5N"
    >>> vol = read_dicom_series(folder)
    >>> vol.shape, round(vol.spacing[2], 3)
    ((5, 16, 16), 2.5)
    """
    scan = scan_dicom(path, on_file=on_file)
    if scan.unreadable:
        names = "; ".join(f"{p}: {why}" for p, why in scan.unreadable[:5])
        raise InvalidInputError(
            f"{len(scan.unreadable)} file(s) cannot be read as DICOM images: {names}",
            where=str(path),
            hint="remove or re-export them; `aimd data validate` lists all",
        )
    return assemble_volume(select_series(scan, series_uid, str(path)), on_file=on_file)


def read_dicom_file(path: str | Path) -> Volume:
    """Read one DICOM file: a 2-D image becomes a 1-slice volume, a multi-frame file a full volume.

    Example
    -------
    >>> from pydicom.data import get_testdata_file
    >>> read_dicom_file(get_testdata_file("MR_small.dcm")).spacing
    (0.3125, 0.3125, 1.0)
    """
    frames = read_frame_headers(path)
    return assemble_volume(frames)


def list_dicom_series(path: str | Path) -> list[SeriesInfo]:
    """Every series under ``path`` with uid, modality, description, file count and shape (z, y, x).

    Example
    -------
    >>> from pydicom.data import get_testdata_file
    >>> from pathlib import Path
    >>> folder = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests/98892003/MR1"
    >>> len(list_dicom_series(folder))
    3
    """
    scan = scan_dicom(path)
    if not scan.frames:
        if scan.unreadable or scan.skipped:
            p, why = (scan.unreadable or scan.skipped)[0]
            raise InvalidInputError(why, where=str(p), hint="pass a folder or file holding DICOM images")
        raise InvalidInputError(
            "no DICOM images found", where=str(path), hint="pass a folder or file holding DICOM image files (.dcm)"
        )
    return series_infos(scan)


__all__ = [
    "AmbiguousSeriesError",
    "apply_rescale",
    "read_stored_values",
    "SeriesGeometry",
    "assemble_volume",
    "list_dicom_series",
    "read_dicom_file",
    "read_dicom_series",
    "select_series",
    "series_geometry",
    "series_infos",
]
