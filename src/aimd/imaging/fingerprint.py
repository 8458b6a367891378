"""Device-protocol fingerprints of CT series and the mapping that harmonises them to a reference (003 §5.3).

A CT series' *device configuration* is what its DICOM header says about the scanner and protocol:
Manufacturer, ManufacturerModelName, ConvolutionKernel, SliceThickness and KVP. :func:`fingerprint`
groups every CT series below a folder by configuration and measures, from the HU of the series
themselves, three tissue regions found by HU range:

* **air** (-1100 to -920 HU, clear of the lungs): its median, and the image noise as the robust
  spread of its upper half (``(p75 - p50) / 0.6745``); neither moves when a scanner clips the
  lowest values (at -1024 HU, say), as long as less than a quarter of the air is clipped;
* **fat** (-250 to -40 HU) and **water**-like soft tissue (-40 to 100 HU): their medians.

One configuration is the *reference protocol* (given, or the one with the most series). Each
configuration's **HU offset** to the reference is learned from the data: the difference of the air
medians when both have air — air is -1000 HU on any calibrated scanner and is homogeneous — and
otherwise the mean difference of the fat and water medians that both have, re-measured in HU ranges
moved by the estimate until it settles (a fixed range would cut a shifted tissue differently). Its
**recommended window** is the reference soft-tissue window (level 40, width 400 HU) moved by that
offset, so that a model trained on the reference sees the same grey values. :func:`harmonise` applies the mapping before
inference: it subtracts the offset of the volume's configuration. A configuration whose offset cannot
be learned (no shared region) is reported with ``hu_offset: None`` and is left unchanged.

Example
-------
>>> import numpy as np
>>> hu = np.concatenate([np.full(500, -990.0), np.full(300, -95.0), np.full(200, 45.0)])
>>> r = region_stats(hu)
>>> r["air"]["median"], r["fat"]["median"], r["water"]["median"]
(-990.0, -95.0, 45.0)
"""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.core.errors import InvalidInputError
from aimd.imaging.volume import Volume

KEY_FIELDS = ("Manufacturer", "ManufacturerModelName", "ConvolutionKernel", "SliceThickness", "KVP")
REGIONS = {"air": (-1100.0, -920.0), "fat": (-250.0, -40.0), "water": (-40.0, 100.0)}
REFERENCE_WINDOW = (40.0, 400.0)  # soft-tissue level and width of the reference protocol
MIN_VOXELS = 200  # a region with fewer voxels is not measured
_MAD_TO_SD = 0.6745
_REFINE_STEPS = 20


def _text(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def config_key(header: Any) -> dict[str, str]:
    """The five header fields that name a device configuration (``""`` where absent).

    Numbers are written without trailing zeros so ``"5.000000"`` and ``"5"`` are one thickness.
    """
    out: dict[str, str] = {}
    for name in KEY_FIELDS:
        text = _text(header.get(name) if hasattr(header, "get") else None)
        if name in ("SliceThickness", "KVP") and text:
            with contextlib.suppress(ValueError):
                text = f"{float(text):g}"
        out[name] = text
    return out


def key_label(key: dict[str, str]) -> str:
    """One line for a configuration: ``SIEMENS | SOMATOM | B30f | 2 mm | 120 kV``."""
    kernel = key["ConvolutionKernel"] or "kernel ?"
    thick = f"{key['SliceThickness']} mm" if key["SliceThickness"] else "? mm"
    kvp = f"{key['KVP']} kV" if key["KVP"] else "? kV"
    return " | ".join([key["Manufacturer"] or "?", key["ManufacturerModelName"] or "?", kernel, thick, kvp])


def region_stats(hu: NDArray[Any], shift: float = 0.0) -> dict[str, Any]:
    """Median (and voxel count) of the air, fat and water regions of ``hu``; image noise from the air.

    ``shift``: move every region's HU range by this much (a configuration reading ``shift`` HU high).
    A region with fewer than :data:`MIN_VOXELS` voxels has ``median`` ``None``.
    """
    values = np.asarray(hu, dtype=np.float32).ravel()
    out: dict[str, Any] = {}
    for name, (lo, hi) in REGIONS.items():
        inside = values[(values >= lo + shift) & (values < hi + shift)]
        n = int(inside.size)
        out[name] = {"median": round(float(np.median(inside)), 2) if n >= MIN_VOXELS else None, "voxels": n}
        if name == "air":
            if n >= MIN_VOXELS:
                p50, p75 = np.percentile(inside, [50, 75])
                out["noise_hu"] = round(float(p75 - p50) / _MAD_TO_SD, 2)
            else:
                out["noise_hu"] = None
    return out


def _offset(values: NDArray[Any], mine: dict[str, Any], ref: dict[str, Any]) -> tuple[float | None, str]:
    if mine["air"]["median"] is not None and ref["air"]["median"] is not None:
        return round(mine["air"]["median"] - ref["air"]["median"], 2), "air"
    shared = [r for r in ("fat", "water") if mine[r]["median"] is not None and ref[r]["median"] is not None]
    if not shared:
        return None, "no region measured in both this configuration and the reference"
    # fixed HU ranges cut a shifted tissue differently: re-measure in ranges moved by the estimate until it settles
    diff = 0.0
    for _ in range(_REFINE_STEPS):
        moved = region_stats(values, shift=diff)
        if any(moved[r]["median"] is None for r in shared):
            break
        new = float(np.mean([moved[r]["median"] - ref[r]["median"] for r in shared]))
        if abs(new - diff) < 0.05:
            diff = new
            break
        diff = new
    return round(diff, 2), "+".join(shared)


def _ct_series(root: Path) -> tuple[list[tuple[dict[str, str], Volume, str]], list[dict[str, str]]]:
    import pydicom

    from aimd.imaging.dicom_headers import scan_dicom
    from aimd.imaging.dicom_read import assemble_volume

    if not root.exists():
        raise InvalidInputError("folder does not exist", where=str(root), hint="pass a folder of DICOM files")
    scan = scan_dicom(root)
    found: list[tuple[dict[str, str], Volume, str]] = []
    skipped: list[dict[str, str]] = []
    for uid, frames in scan.series().items():
        if frames[0].modality != "CT":
            skipped.append({"series": uid, "reason": f"modality {frames[0].modality or '?'}, not CT: no HU"})
            continue
        header = pydicom.dcmread(frames[0].path, stop_before_pixels=True, specific_tags=list(KEY_FIELDS))
        found.append((config_key(header), assemble_volume(frames), uid))
    if not found:
        raise InvalidInputError(
            "no CT series found",
            where=str(root),
            hint="pass a folder holding CT DICOM series (other modalities carry no HU)",
        )
    return found, skipped


def fingerprint(root: str | Path, *, reference: str | None = None) -> dict[str, Any]:
    """The configuration table of every CT series below ``root``, mapped to the reference protocol.

    ``reference``: the :func:`key_label` of the reference configuration (default: the one with most
    series; ties go to the first found).
    """
    series, skipped = _ct_series(Path(root))
    groups: dict[str, dict[str, Any]] = {}
    for key, volume, uid in series:
        label = key_label(key)
        group = groups.setdefault(label, {"key": key, "series": [], "arrays": []})
        group["series"].append(uid)
        group["arrays"].append(np.asarray(volume.array, dtype=np.float32).ravel())
    counts = Counter({label: len(g["series"]) for label, g in groups.items()})
    if reference is None:
        reference = max(groups, key=lambda label: counts[label])
    elif reference not in groups:
        raise InvalidInputError(
            f"reference configuration {reference!r} is not among the series",
            where="--reference",
            hint="use one of: " + "; ".join(groups),
        )
    stats = {label: region_stats(np.concatenate(g["arrays"])) for label, g in groups.items()}
    rows = []
    for label, group in groups.items():
        offset, basis = _offset(np.concatenate(group["arrays"]), stats[label], stats[reference])
        level, width = REFERENCE_WINDOW
        rows.append(
            {
                "configuration": label,
                **group["key"],
                "series": len(group["series"]),
                "voxels": int(sum(a.size for a in group["arrays"])),
                "air_median_hu": stats[label]["air"]["median"],
                "fat_median_hu": stats[label]["fat"]["median"],
                "water_median_hu": stats[label]["water"]["median"],
                "noise_hu": stats[label]["noise_hu"],
                "hu_offset": offset,
                "offset_from": basis,
                "recommended_window": None if offset is None else {"level": round(level + offset, 1), "width": width},
                "reference": label == reference,
            }
        )
    return {"reference": reference, "key_fields": list(KEY_FIELDS), "configurations": rows, "skipped": skipped}


def harmonise(volume: Volume, table: dict[str, Any], key: dict[str, str]) -> tuple[Volume, dict[str, Any]]:
    """``volume`` (HU) mapped to the reference protocol of ``table``: the offset of ``key``'s configuration removed.

    Returns the new volume and what was done; a configuration missing from the table, or without a
    learned offset, leaves the volume unchanged and says so.
    """
    label = key_label(key)
    row = next((r for r in table.get("configurations", []) if r["configuration"] == label), None)
    if row is None or row["hu_offset"] is None:
        why = "not in the fingerprint table" if row is None else row["offset_from"]
        return volume, {"configuration": label, "applied": False, "reason": why}
    shifted = np.asarray(volume.array, dtype=np.float32) - np.float32(row["hu_offset"])
    out = Volume(
        shifted,
        spacing=volume.spacing,
        origin=volume.origin,
        direction=volume.direction,
        modality=volume.modality,
        metadata={**volume.metadata, "harmonised_to": table["reference"]},
    )
    return out, {"configuration": label, "applied": True, "hu_offset": row["hu_offset"], "to": table["reference"]}


def harmonise_image(path: Path, volume: Volume, table_file: Path) -> tuple[Volume, dict[str, Any]]:
    """:func:`harmonise` for an image read from ``path``: its configuration taken from its DICOM header."""
    import json

    import pydicom

    from aimd.imaging.dicom_headers import scan_dicom

    try:
        table = json.loads(Path(table_file).read_text(encoding="utf-8"))
        if not isinstance(table["configurations"], list):
            raise TypeError("configurations is not a list")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InvalidInputError(
            f"not a fingerprint table: {err}", where=str(table_file), hint="write one with aimd data fingerprint --out"
        ) from err
    frames = scan_dicom(path).frames if path.is_dir() or path.suffix.lower() == ".dcm" else []
    if not frames:
        raise InvalidInputError(
            "harmonisation needs the image's DICOM header (scanner and protocol)",
            where=str(path),
            hint="pass the DICOM series, or drop --harmonise",
        )
    header = pydicom.dcmread(frames[0].path, stop_before_pixels=True, specific_tags=list(KEY_FIELDS))
    return harmonise(volume, table, config_key(header))


__all__ = [
    "KEY_FIELDS",
    "REGIONS",
    "config_key",
    "fingerprint",
    "harmonise",
    "harmonise_image",
    "key_label",
    "region_stats",
]
