"""Geometry and pixel-value checks of input images (001 §7.2 a–f) → ``list[Finding]``.

``check_series(path)`` reads headers first, so it can name unreadable files and mixed series or
orientations that stop a volume from being built; every series that can be built is then read and
passed to ``check_volume(volume)``, which works from the volume's grid and from the per-slice
metadata the readers keep (positions, files, instance numbers, missing tags).

Codes (clause): FILE_UNREADABLE, NON_IMAGE_SKIPPED, NO_SERIES_UID, MIXED_SERIES, MIXED_SIZE (a);
MIXED_ORIENTATION, DIRECTION_MISSING, DIRECTION_NOT_ORTHONORMAL, DIRECTION_LEFT_HANDED (b); SPACING_MISSING,
SPACING_NON_UNIFORM (c); ORIGIN_MISSING (d); SLICE_DUPLICATE, SLICE_GAP, SLICE_OFF_NORMAL,
SLICE_ORDER_REVERSED, SLICE_ORDER_INCONSISTENT (e); RESCALE_MISSING, HU_UNIT, HU_OUT_OF_RANGE (f).
Tolerances come from ``get_settings().geometry``. Projection images (CR, DX, ...) need no patient
orientation, so missing direction/origin there is a warning rather than an error.

Example
-------
>>> import numpy as np
>>> from aimd.imaging.volume import Volume
>>> vol = Volume(np.zeros((3, 4, 4), np.int16), direction=np.diag([1.0, 1.0, 1.02]))
>>> [f.code for f in check_volume(vol)]
['DIRECTION_NOT_ORTHONORMAL']
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.core.config import get_settings
from aimd.core.errors import InvalidInputError
from aimd.core.findings import Finding, Severity
from aimd.imaging.dicom_headers import NON_DICOM_SUFFIXES, FrameHeader, natural_key, scan_dicom
from aimd.imaging.dicom_read import assemble_volume
from aimd.imaging.nifti_io import is_nifti_path, read_nifti
from aimd.imaging.quality import check_quality
from aimd.imaging.volume import Volume

A, B, C, D, E, F = (f"001 §7.2 {c}" for c in "abcdef")
_TAGS = {
    "orientation": "(0020,0037) ImageOrientationPatient",
    "position": "(0020,0032) ImagePositionPatient",
    "pixel_spacing": "(0028,0030) PixelSpacing",
    "slice_spacing": "(0020,0032) ImagePositionPatient",
}
_MAX_LISTED = 5


def _finding(code: str, severity: Severity, clause: str, message: str, hint: str = "", **location: Any) -> Finding:
    return Finding(
        code=code,
        severity=severity,
        clause=clause,
        message=message,
        hint=hint,
        location={k: v for k, v in location.items() if v is not None},
    )


def _series_loc(volume: Volume) -> dict[str, Any]:
    uid = volume.metadata.get("series_uid")
    return {"series_uid": uid} if uid else {}


def _files_loc(files: list[str]) -> dict[str, Any]:
    if len(files) == 1:
        return {"file": files[0]}
    return {"files": files[:_MAX_LISTED], "n_files": len(files)}


# ----------------------------------------------------------------------------- volume checks
def _check_missing(volume: Volume) -> list[Finding]:
    missing: dict[str, list[str]] = volume.metadata.get("geometry_missing") or {}
    projection = bool(volume.metadata.get("projection"))
    soft = Severity.WARNING if projection else Severity.ERROR
    out = []
    spec = {
        "orientation": (
            "DIRECTION_MISSING",
            soft,
            B,
            "no image orientation: the direction matrix is undefined (identity assumed)",
            "re-export with ImageOrientationPatient / a NIfTI sform or qform",
        ),
        "position": (
            "ORIGIN_MISSING",
            soft,
            D,
            "no image position: the origin is undefined (0,0,0 assumed)",
            "re-export with ImagePositionPatient / a NIfTI sform or qform",
        ),
        "pixel_spacing": (
            "SPACING_MISSING",
            soft,
            C,
            "pixel spacing missing or zero (1 mm assumed)",
            "re-export with PixelSpacing (or ImagerPixelSpacing for projection images)",
        ),
        "slice_spacing": (
            "SPACING_MISSING",
            Severity.ERROR,
            C,
            "all slices share one position: the slice spacing is undefined",
            "re-export the series with distinct ImagePositionPatient",
        ),
    }
    for key, (code, sev, clause, msg, hint) in spec.items():
        files = missing.get(key) or []
        if files:
            out.append(
                _finding(
                    code,
                    sev,
                    clause,
                    f"{msg} in {len(files)} file(s)",
                    hint,
                    tag=_TAGS[key],
                    **_files_loc(files),
                    **_series_loc(volume),
                )
            )
    return out


def _check_direction(volume: Volume) -> list[Finding]:
    tol = get_settings().geometry.orthonormal_atol
    out = []
    raw = volume.metadata.get("orientation")
    d = volume.direction
    if raw is not None and len(raw) == 6:
        row, col = np.asarray(raw[:3], float), np.asarray(raw[3:], float)
        err = max(abs(np.linalg.norm(row) - 1), abs(np.linalg.norm(col) - 1), abs(float(row @ col)))
        what = f"ImageOrientationPatient {[round(v, 6) for v in raw]}"
    else:
        err = float(np.max(np.abs(d.T @ d - np.eye(3))))
        what = f"direction {np.round(d, 6).tolist()}"
    if err > tol:
        out.append(
            _finding(
                "DIRECTION_NOT_ORTHONORMAL",
                Severity.ERROR,
                B,
                f"{what} is not orthonormal (deviation {err:.2e} > {tol:g})",
                "correct the orientation cosines so they are unit length and perpendicular",
                tag=_TAGS["orientation"] if raw is not None else None,
                **_series_loc(volume),
            )
        )
    if np.linalg.det(d) < 0:
        out.append(
            _finding(
                "DIRECTION_LEFT_HANDED",
                Severity.WARNING,
                B,
                f"direction {np.round(d, 6).tolist()} is left-handed (det < 0): slice axis "
                "flipped relative to row × column",
                "reorient (e.g. flip the slice axis) if a right-handed grid is expected",
                **_series_loc(volume),
            )
        )
    return out


def _slice_refs(volume: Volume, k: int) -> dict[str, Any]:
    slices = volume.metadata.get("slices") or []
    ref: dict[str, Any] = {"slice": k}
    if k < len(slices):
        ref["file"] = slices[k].get("file")
        if slices[k].get("frame") is not None:
            ref["frame"] = slices[k]["frame"]
    return ref


def _check_positions(volume: Volume) -> list[Finding]:
    positions = volume.metadata.get("slice_positions")
    if not positions or len(positions) < 2 or any(p is None for p in positions):
        return []
    tol = get_settings().geometry
    pts = np.asarray(positions, dtype=np.float64)
    normal = volume.direction[:, 2] / np.linalg.norm(volume.direction[:, 2])
    proj = pts @ normal
    steps = np.diff(proj)
    loc = _series_loc(volume)
    out = []
    for k in np.flatnonzero(np.abs(steps) <= tol.position_atol_mm):
        a, b = _slice_refs(volume, int(k)), _slice_refs(volume, int(k) + 1)
        out.append(
            _finding(
                "SLICE_DUPLICATE",
                Severity.ERROR,
                E,
                f"slices {k} and {k + 1} share the position {np.round(pts[k], 4).tolist()}",
                "remove the duplicate file (or split repeated acquisitions into series)",
                slice=int(k) + 1,
                file=b.get("file"),
                duplicate_of=a.get("file"),
                tag=_TAGS["position"],
                **loc,
            )
        )
    real = steps[np.abs(steps) > tol.position_atol_mm]
    if real.size == 0:
        return out
    median = float(np.sort(real)[(real.size - 1) // 2])  # lower median: with 2 steps, the smaller one
    gaps = [int(k) for k in np.flatnonzero(steps > tol.gap_factor * median)]
    for k in gaps:
        n_missing = max(1, round(float(steps[k]) / median) - 1)
        out.append(
            _finding(
                "SLICE_GAP",
                Severity.ERROR,
                E,
                f"gap of {steps[k]:.4g} mm between slices {k} and {k + 1} (typical step {median:.4g} mm): about "
                f"{n_missing} slice(s) missing; the volume grid uses the mean step {volume.spacing[2]:.4g} mm",
                "re-export the complete series from the PACS",
                slice=k + 1,
                file=_slice_refs(volume, k + 1).get("file"),
                previous_file=_slice_refs(volume, k).get("file"),
                tag=_TAGS["position"],
                **loc,
            )
        )
    gap_set = set(gaps)
    uneven = [
        k
        for k in range(len(steps))
        if k not in gap_set
        and abs(steps[k]) > tol.position_atol_mm
        and abs(steps[k] - median) > tol.spacing_rtol * median
    ]
    if uneven:
        worst = max(uneven, key=lambda k: abs(steps[k] - median))
        out.append(
            _finding(
                "SPACING_NON_UNIFORM",
                Severity.WARNING,
                C,
                f"{len(uneven)} slice step(s) differ from the typical step {median:.4g} mm by more than "
                f"{tol.spacing_rtol:.0%}; worst {steps[worst]:.4g} mm between slices {worst} and {worst + 1}",
                "resample to a uniform grid and record the spacing (001 §7.2 c)",
                slice=worst + 1,
                file=_slice_refs(volume, worst + 1).get("file"),
                worst_step_mm=round(float(steps[worst]), 6),
                typical_step_mm=round(median, 6),
                **loc,
            )
        )
    rel = pts - pts[0]
    perp = np.linalg.norm(rel - np.outer(rel @ normal, normal), axis=1)
    limit = max(tol.position_atol_mm, 0.5 * min(volume.spacing[0], volume.spacing[1]))
    if perp.max() > limit:
        k = int(np.argmax(perp))
        out.append(
            _finding(
                "SLICE_OFF_NORMAL",
                Severity.WARNING,
                E,
                f"slice positions drift {perp.max():.3g} mm sideways from the slice normal "
                "(gantry tilt or shear); a regular grid cannot represent it",
                "resample the series to correct the tilt",
                slice=k,
                file=_slice_refs(volume, k).get("file"),
                tag=_TAGS["position"],
                **loc,
            )
        )
    return out


def _check_order(volume: Volume) -> list[Finding]:
    slices = volume.metadata.get("slices") or []
    if len(slices) < 2 or any(s.get("frame") is not None for s in slices):
        return []
    numbers = [s.get("instance_number") for s in slices]
    if all(n is not None for n in numbers) and len(set(numbers)) == len(numbers):
        seq, what = np.asarray(numbers, dtype=float), "InstanceNumber"
    else:
        files = [s.get("file") or "" for s in slices]
        ranks = sorted(range(len(files)), key=lambda i: natural_key(Path(files[i])))
        seq, what = np.argsort(ranks).astype(float), "file name"
    diffs = np.diff(seq)
    loc = _series_loc(volume)
    if np.all(diffs > 0):
        return []
    if np.all(diffs < 0):
        return [
            _finding(
                "SLICE_ORDER_REVERSED",
                Severity.WARNING,
                E,
                f"{what} order runs opposite to the spatial order (slice 0 is the last by {what}); "
                "tools that stack by file order get a flipped volume — aimd sorts by position",
                "no action needed for aimd; renumber if other tools read the files in order",
                slice=0,
                file=slices[0].get("file"),
                **loc,
            )
        ]
    k = int(np.flatnonzero(np.sign(diffs) != np.sign(diffs[0]))[0]) + 1
    return [
        _finding(
            "SLICE_ORDER_INCONSISTENT",
            Severity.WARNING,
            E,
            f"{what} order does not follow the spatial order (breaks at slice {k})",
            "check the series for mixed acquisitions; aimd sorts by position",
            slice=k,
            file=slices[k].get("file"),
            **loc,
        )
    ]


def _check_finite(volume: Volume) -> list[Finding]:
    arr = volume.array
    if not np.issubdtype(arr.dtype, np.floating):
        return []
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if not bad:
        return []
    first = np.argwhere(~np.isfinite(arr))[0].tolist()
    return [
        _finding(
            "PIXEL_NOT_FINITE",
            Severity.ERROR,
            F,
            f"{bad} voxel(s) are NaN or infinite (first at z, y, x = {first})",
            "fix the conversion that produced them, or mask them before use",
            slice=int(first[0]),
            **_series_loc(volume),
        )
    ]


_SLAB_VOXELS = 1 << 22
"""Voxels of the slab of slices the value check looks at a time (its masks stay a few MiB)."""


def _hu_counts(
    arr: NDArray[Any], pad: float | None, lo: float, hi: float
) -> tuple[int, NDArray[np.int64], float, float]:
    """Voxels not equal to the padding value ``pad``, those of them outside [lo, hi] per slice, and their
    min and max, slab by slab of slices (no mask as large as the volume).

    >>> _hu_counts(np.array([[[-3000, 0]], [[5, -2000]]], np.int16), -3000, -1024, 3071)[:2]
    (3, array([0, 1]))
    """
    n_valid, low, high = 0, np.inf, -np.inf
    per_slice = np.zeros(arr.shape[0], np.int64)
    step = max(1, _SLAB_VOXELS // max(1, arr[0].size))
    for k in range(0, arr.shape[0], step):
        slab = arr[k : k + step]
        valid = None if pad is None else slab != pad
        outside = (slab < lo) | (slab > hi)
        if valid is not None:
            outside &= valid
        per_slice[k : k + step] = outside.reshape(slab.shape[0], -1).sum(axis=1)
        kept = slab if valid is None else slab[valid]
        n_valid += int(kept.size)
        if kept.size:
            low, high = min(low, float(kept.min())), max(high, float(kept.max()))
    return n_valid, per_slice, low, high


def _check_values(volume: Volume) -> list[Finding]:
    finite = _check_finite(volume)
    if finite:
        return finite
    modality = (volume.modality or volume.metadata.get("modality") or "").upper()
    if modality != "CT":
        return []
    tol = get_settings().geometry
    loc = _series_loc(volume)
    out = []
    meta = volume.metadata
    if meta.get("source") == "dicom" and not meta.get("rescale_tags", True):
        out.append(
            _finding(
                "RESCALE_MISSING",
                Severity.WARNING,
                F,
                "CT without RescaleSlope/RescaleIntercept: stored values are taken as HU",
                "confirm the values are HU or add the rescale tags",
                tag="(0028,1053) RescaleSlope",
                **loc,
            )
        )
    rtype = meta.get("rescale_type")
    if rtype and str(rtype).upper() != "HU":
        out.append(
            _finding(
                "HU_UNIT",
                Severity.WARNING,
                F,
                f"CT RescaleType is {rtype!r}, not 'HU'",
                "confirm the unit of the CT values",
                tag="(0028,1054) RescaleType",
                **loc,
            )
        )
    arr = volume.array
    pad = meta.get("pixel_padding_value")
    n_valid, per_slice, low, high = _hu_counts(arr, pad, tol.ct_hu_min, tol.ct_hu_max)
    if n_valid == 0:
        return out
    n_out = int(per_slice.sum())
    if n_out:
        frac = n_out / n_valid
        worst = int(np.argmax(per_slice))
        severity = Severity.ERROR if frac > tol.out_of_range_fraction else Severity.INFO
        out.append(
            _finding(
                "HU_OUT_OF_RANGE",
                severity,
                F,
                f"{n_out} voxel(s) ({frac:.3%}) lie outside [{tol.ct_hu_min:g}, {tol.ct_hu_max:g}] HU "
                f"(min {low:g}, max {high:g}); allowed fraction "
                f"{tol.out_of_range_fraction:.3%}",
                "check RescaleSlope/Intercept and PixelPaddingValue",
                **_slice_refs(volume, worst),
                **loc,
            )
        )
    return out


def check_volume(volume: Volume) -> list[Finding]:
    """Check a volume's geometry and values (001 §7.2 b–f).

    Example
    -------
    >>> import numpy as np
    >>> from aimd.imaging.volume import Volume
    >>> ct = Volume(np.full((2, 4, 4), -3000, np.int16), modality="CT")
    >>> [(f.code, f.severity.value) for f in check_volume(ct)]
    [('HU_OUT_OF_RANGE', 'error')]
    """
    return [
        *_check_missing(volume),
        *_check_direction(volume),
        *_check_positions(volume),
        *_check_order(volume),
        *_check_values(volume),
    ]


# ----------------------------------------------------------------------------- series checks
def _header_checks(uid: str, frames: list[FrameHeader]) -> list[Finding]:
    tol = get_settings().geometry
    loc = {"series_uid": uid} if uid else {}
    out = []
    if not uid:
        out.append(
            _finding(
                "NO_SERIES_UID",
                Severity.WARNING,
                A,
                "files without SeriesInstanceUID",
                "re-export with complete headers",
                tag="(0020,000E) SeriesInstanceUID",
                **_files_loc(sorted({str(f.path) for f in frames})),
            )
        )
    sizes: dict[tuple[int, int], list[str]] = {}
    for f in frames:
        sizes.setdefault((f.pixels.rows, f.pixels.columns), []).append(str(f.path))
    if len(sizes) > 1:
        common = max(sizes, key=lambda s: len(sizes[s]))
        odd = sorted({p for s, ps in sizes.items() if s != common for p in ps})
        out.append(
            _finding(
                "MIXED_SIZE",
                Severity.ERROR,
                A,
                f"slices have different sizes {sorted(sizes)} (most are {common[0]}×{common[1]})",
                "split or re-export the series",
                tag="(0028,0010) Rows / (0028,0011) Columns",
                **_files_loc(odd),
                **loc,
            )
        )
    oris = [(f, np.asarray(f.orientation)) for f in frames if f.orientation is not None]
    if oris:
        ref = oris[0][1]
        odd = sorted({str(f.path) for f, o in oris if np.max(np.abs(o - ref)) > tol.orthonormal_atol})
        if odd:
            out.append(
                _finding(
                    "MIXED_ORIENTATION",
                    Severity.ERROR,
                    B,
                    f"{len(odd)} file(s) have an ImageOrientationPatient different from {np.round(ref, 5).tolist()}",
                    "split the series by orientation (e.g. remove localizer images)",
                    tag=_TAGS["orientation"],
                    **_files_loc(odd),
                    **loc,
                )
            )
    return out


def check_series(
    path: str | Path, series_uid: str | None = None, *, on_file: Callable[[], None] | None = None, quality: bool = False
) -> list[Finding]:
    """Check every series under ``path`` (folder, DICOM file or NIfTI file) (001 §7.2 a–f).

    With ``quality`` every volume that can be built also gets the image-quality checks of
    001 §7.2 g (:func:`aimd.imaging.quality.check_quality`).

    Unreadable files become FILE_UNREADABLE errors; a path holding no image at all (empty folder,
    non-image file) is an :class:`InvalidInputError`.

    Example
    -------
    >>> from pydicom.data import get_testdata_file
    >>> from pathlib import Path
    >>> folder = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests/77654033/CT2"
    >>> sorted({f.code for f in check_series(folder)})
    ['SLICE_GAP']
    """
    settings = get_settings()  # a bad setting fails here, before any work
    del settings
    p = Path(path)
    if not p.exists():
        raise InvalidInputError("path does not exist", where=str(p), hint="check the path")
    if p.is_file() and is_nifti_path(p):
        try:
            volume = read_nifti(p)
            found = check_volume(volume)
            usable = not any(f.code == "PIXEL_NOT_FINITE" for f in found)  # quality needs finite values
            return found + (check_quality(volume) if quality and usable else [])
        except InvalidInputError as err:
            return [_finding("FILE_UNREADABLE", Severity.ERROR, A, err.message, err.hint or "", file=str(p))]
    if p.is_file() and p.suffix.lower() in NON_DICOM_SUFFIXES:
        raise InvalidInputError(
            f"unknown image format {p.suffix!r}",
            where=str(p),
            hint="pass a DICOM folder/file or a NIfTI .nii/.nii.gz file",
        )
    scan = scan_dicom(p, on_file=on_file)
    findings = [
        _finding("FILE_UNREADABLE", Severity.ERROR, A, why, "re-export the file or remove it", file=str(f))
        for f, why in scan.unreadable
    ]
    groups = scan.series()
    if not groups and not scan.unreadable:
        extra = f"; skipped: {scan.skipped[0][1]}" if scan.skipped else ""
        raise InvalidInputError(
            f"no DICOM or NIfTI images found{extra}",
            where=str(p),
            hint="pass a folder of DICOM files, a DICOM file or a NIfTI file",
        )
    findings += [_finding("NON_IMAGE_SKIPPED", Severity.INFO, A, why, "", file=str(f)) for f, why in scan.skipped]
    if series_uid is not None:
        if series_uid not in groups:
            raise InvalidInputError(
                f"series {series_uid!r} not found; present: {sorted(groups)}",
                where=str(p),
                hint="pass one of the listed SeriesInstanceUIDs",
            )
        groups = {series_uid: groups[series_uid]}
    elif len(groups) > 1:
        findings.append(
            _finding(
                "MIXED_SERIES",
                Severity.WARNING,
                A,
                f"{len(groups)} series in one folder: {sorted(groups)}",
                "keep one series per folder, or choose one with --series",
                folder=str(p),
            )
        )
    for uid, frames in groups.items():
        header = _header_checks(uid, frames)
        findings += header
        if any(f.code in ("MIXED_SIZE", "MIXED_ORIENTATION") for f in header):
            continue
        try:
            volume = assemble_volume(frames, on_file=on_file)
        except InvalidInputError as err:
            findings.append(
                _finding(
                    "FILE_UNREADABLE",
                    Severity.ERROR,
                    A,
                    err.message,
                    err.hint or "",
                    file=err.where,
                    series_uid=uid or None,
                )
            )
            continue
        findings += check_volume(volume)
        if quality:
            findings += check_quality(volume)
    return findings


__all__ = ["check_series", "check_volume"]
