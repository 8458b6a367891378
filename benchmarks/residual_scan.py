"""The residual scan's PHI patterns (mobile number, resident ID, e-mail) searched around their anchors (runs
of 11+ digits, an "@" that a domain follows) against the same regular expressions run over each whole file,
on real DICOM files: pydicom's bundled test files and pydicom-data's (CT, MR, US, X-ray, SEG), plus a
512×512 slice whose pixel bytes are random. The kinds found are compared file by file first; a mismatch
stops the run before any figure is printed.

Usage: ``python benchmarks/residual_scan.py [--repeat 5] [--json out.json]``
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.data.data_manager import DATA_ROOT, external_data_sources

from aimd.imaging.deid.residual import _EMAIL, _MOBILE, _RESIDENT, _patterns


def _whole_text(low: bytes) -> set[str]:
    """The peer: each pattern searched over the whole of ``low``."""
    found = set()
    if _MOBILE.search(low):
        found.add("PHONE")
    if _RESIDENT.search(low):
        found.add("RESIDENT_ID")
    if b"@" in low and _EMAIL.search(low):
        found.add("EMAIL")
    return found


def _files() -> dict[str, bytes]:
    out = {}
    folders = [Path(DATA_ROOT) / "test_files", *(Path(s.data_path) for s in external_data_sources().values())]
    for path in sorted(p for folder in folders for p in folder.glob("*.dcm")):  # on disk only: nothing fetched
        data = path.read_bytes()
        if len(data) >= 1024:
            out[path.name] = data
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.Rows = ds.Columns = 512
    ds.PixelData = np.random.default_rng(0).integers(0, 4096, (512, 512)).astype(np.uint16).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer)
    out["random-512x512.dcm"] = buffer.getvalue()
    return out


def _cpu_s(fn, lows: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for low in lows:
            fn(low)
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    files = _files()
    lows = [data.lower() for data in files.values()]
    mismatched = [name for name, low in zip(files, lows, strict=True) if _patterns(low) != _whole_text(low)]
    if mismatched:
        raise SystemExit(f"the windowed scan differs from the whole-text search on {mismatched}")
    found = sum(bool(_patterns(low)) for low in lows)
    whole = _cpu_s(_whole_text, lows, args.repeat)
    windowed = _cpu_s(_patterns, lows, args.repeat)
    result = {
        "files": len(files),
        "megabytes": round(sum(map(len, lows)) / 1e6, 1),
        "files_with_a_pattern": found,
        "same_kinds_on_every_file": True,
        "whole_text_cpu_s": round(whole, 4),
        "windowed_cpu_s": round(windowed, 4),
        "speed_up": round(whole / windowed, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
