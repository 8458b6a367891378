"""Save-path pieces of ``platform_load.py``: the brush stroke a simulated annotator draws, and CPU
seconds of one save measured apart — before and after mask slabs, and per slab size.

Example
-------
>>> at, box = stroke(7, (16, 128, 128))
>>> box.shape, box.dtype.name, all(0 <= a for a in at)
((3, 40, 40), 'uint8', True)
"""

from __future__ import annotations

import io
import tempfile
import time

import numpy as np

STROKE = (3, 40, 40)  # slices × rows × columns of the box one brush stroke changes


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as ``.npy`` bytes (what the workspace sends, and what the platform stores)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def stroke(seed: int, shape: tuple[int, int, int]) -> tuple[tuple[int, int, int], np.ndarray]:
    """A brush stroke of a 6-voxel radius along a seed-dependent line through a box of up to 3 × 40 × 40
    voxels: its offset (z, y, x) in the grid and the box as the workspace sends it (label 1 on the
    stroke, background elsewhere in the box)."""
    rng = np.random.default_rng(seed)
    d, h, w = (min(n, lim) for n, lim in zip(STROKE, shape, strict=True))
    at = tuple(int(rng.integers(0, lim - n + 1)) for n, lim in zip((d, h, w), shape, strict=True))
    (y0, y1), (x0, x1) = rng.uniform(0, h - 1, 2), rng.uniform(0, w - 1, 2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    dy, dx = y1 - y0, x1 - x0
    t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / max(dy * dy + dx * dx, 1e-9), 0, 1)
    disc = np.hypot(yy - (y0 + t * dy), xx - (x0 + t * dx)) <= min(6, h // 4, w // 4)
    box = np.repeat(disc[None].astype(np.uint8), d, axis=0)
    return at, box  # type: ignore[return-value]


def cpu_per_save(shape: tuple[int, int, int], repeats: int = 5) -> dict[str, float]:
    """CPU seconds of the save path's own work for one save, before and after mask slabs, measured
    interleaved: a whole mask sent with ``Content-Encoding: deflate`` stored as one blob (before: inflate,
    check, hash, keep the stream) and as slabs (after: inflate, check, hash and store the new slabs), and a
    delta save of one brush stroke onto a whole-blob draft (before: read the draft, apply the gzip box,
    serialise, hash, store) and onto a slab draft (after: read, patch, hash, store the touched slabs)."""
    import gzip
    import zlib

    from aimd.platform.mask_patch import apply_patch, read_patch
    from aimd.platform.mask_store import MaskStore, load_mask, mask_npy, patch_version, store_npy
    from aimd.platform.masks import read_mask_upload, to_npy

    allowed = {1}
    names = ("whole_blob", "whole_slabs", "delta_blob", "delta_slabs")
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for k in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            blobs = MaskStore(tmp)
            mask = np.zeros(shape, np.uint8)
            mask[k % shape[0], : shape[1] // 2, : shape[2] // 2] = 1
            raw = to_npy(mask)
            bases = {"delta_blob": blobs.put(raw), "delta_slabs": store_npy(blobs, raw)}
            other = mask.copy()
            other[(k + 1) % shape[0], 1, 1] = 1
            body = zlib.compress(to_npy(other), 1)
            (z, y, x), box = stroke(k, shape)
            expected = mask.copy()
            expected[z : z + box.shape[0], y : y + box.shape[1], x : x + box.shape[2]] = box
            patch = gzip.compress(npy_bytes(box), 1)
            for name in names[:: 1 if k % 2 else -1]:
                started = time.process_time()
                if name == "whole_blob":
                    up = read_mask_upload(body, shape=shape, allowed=allowed, encoding="deflate")
                    sha = blobs.put_compressed(up.sha256, body)
                elif name == "whole_slabs":
                    up = read_mask_upload(body, shape=shape, allowed=allowed, encoding="deflate", digest=False)
                    sha = store_npy(blobs, up.npy)
                elif name == "delta_blob":
                    stored = apply_patch(
                        load_mask(blobs, bases[name]), patch, (z, y, x), allowed=allowed, encoding="gzip"
                    )
                    sha = blobs.put(to_npy(stored))
                else:
                    at, part = read_patch(patch, (z, y, x), shape, allowed=allowed, encoding="gzip")
                    sha = patch_version(blobs, bases[name], shape, part, at)
                cpu[name].append(time.process_time() - started)
                want = to_npy(other) if name.startswith("whole") else npy_bytes(expected)
                assert mask_npy(blobs, sha) == want  # values first: each stores the bytes it should
    out = {f"{name}_cpu_s": round(float(np.median(v)), 4) for name, v in cpu.items()}
    out["ratio_whole_blob_over_slabs"] = round(out["whole_blob_cpu_s"] / max(out["whole_slabs_cpu_s"], 1e-6), 1)
    out["ratio_delta_blob_over_slabs"] = round(out["delta_blob_cpu_s"] / max(out["delta_slabs_cpu_s"], 1e-6), 1)
    return out


def slab_sizes(shape: tuple[int, int, int], strokes: int = 12) -> dict[str, dict[str, float]]:
    """CPU seconds (median over ``strokes``) of a delta stroke and of building a load's deflate stream,
    and of storing one whole mask, for slabs of 1, 2, 4, 8 and 16 slices: what ``SLAB_SLICES`` is chosen by."""
    from aimd.platform.mask_store import MaskStore, manifest_of, manifest_stream, mask_npy, patch_version, store_npy
    from aimd.platform.masks import to_npy

    base = np.zeros(shape, np.uint8)
    z, y, x = shape
    base[z // 4 : 3 * z // 4, y // 4 : 3 * y // 4, x // 4 : 3 * x // 4] = 1
    raw = to_npy(base)
    out = {}
    for slices in (1, 2, 4, 8, 16):
        with tempfile.TemporaryDirectory() as tmp:
            store = MaskStore(tmp)
            started = time.process_time()
            version = store_npy(store, raw, slab_slices=slices)
            whole = time.process_time() - started
            delta, load = [], []
            expected = base.copy()
            for k in range(strokes):
                at, box = stroke(k, shape)
                started = time.process_time()
                version = patch_version(store, version, shape, box, at)
                delta.append(time.process_time() - started)
                started = time.process_time()
                manifest_stream(store, manifest_of(store, version))
                load.append(time.process_time() - started)
                d, h, w = box.shape
                expected[at[0] : at[0] + d, at[1] : at[1] + h, at[2] : at[2] + w] = box
            assert mask_npy(store, version) == to_npy(expected)  # values first
        out[str(slices)] = {
            "whole_cpu_s": round(whole, 4),
            "delta_cpu_s": round(float(np.median(delta)), 4),
            "deflate_load_cpu_s": round(float(np.median(load)), 4),
        }
    return out
