"""Residual scan: search every output file for every original identifier in the map (001 §7.3 抽检).

After de-identification each written file is read back — DICOM attribute values, decoded text and JSON,
NIfTI header bytes, raw bytes of anything copied — and searched for the original patient ids, names (all
spellings), accession numbers, names and numbers found in text, institution names and UIDs. A file with a
hit is removed from the output and reported as failed: nothing leaves un-de-identified.

Example
-------
>>> scanner = ResidualScanner({"1209457875": "ID", "宋华": "NAME"})
>>> scanner.scan_text("病历号：ANON-1A2B 患者宋华")
['NAME']
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pydicom

from aimd.imaging.deid.index import IdentifierIndex

_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR",
                       "UT"})
_MIN_TEXT = 4
_MIN_BINARY = 6


class ResidualScanner:
    """Search text or files for a set of original identifiers (``value -> kind``)."""

    def __init__(self, originals: dict[str, str]) -> None:
        kept = {v.strip(): k for v, k in originals.items() if _scan_worthy(v.strip())}
        self._kind = {v.casefold(): k for v, k in kept.items()}
        self._text_index = IdentifierIndex(kept)
        self._binary_index = IdentifierIndex(v for v in kept if len(v.encode("utf-8")) >= _MIN_BINARY)

    @property
    def size(self) -> int:
        """How many identifiers are searched for."""
        return len(self._kind)

    def scan_text(self, text: str, *, binary: bool = False) -> list[str]:
        """Kinds of the identifiers found in ``text`` (sorted, unique)."""
        index = self._binary_index if binary else self._text_index
        return sorted({self._kind.get(" ".join(found.split()).casefold(), "ID")
                       for _, _, found in index.finditer(text)})

    def scan_file(self, path: Path, kind: str) -> list[str]:
        """Kinds found in one output file, read the way its ``kind`` is stored."""
        if kind == "dicom":
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            values = [str(e.value) for e in ds.file_meta.iterall() if e.VR in _TEXT_VRS]
            values += [str(e.value) for e in ds.iterall() if e.VR in _TEXT_VRS]
            return self.scan_text("\n".join(values))
        data = path.read_bytes()
        if kind == "nifti":  # text lives in the header and its extensions, before vox_offset
            if data[:2] == b"\x1f\x8b":
                with gzip.open(path, "rb") as handle:
                    data = handle.read(1 << 16)
            data = data[:_nifti_text_end(data)]
            return self.scan_text(data.decode("latin-1"), binary=True)
        if kind in ("text", "json"):
            hits = set(self.scan_text(data.decode("utf-8", "ignore")))
            hits |= set(self.scan_text(data.decode("gb18030", "ignore")))
            return sorted(hits)
        text = data.decode("latin-1") + "\n" + data.decode("utf-8", "ignore")
        return self.scan_text(text, binary=True)


def _nifti_text_end(data: bytes) -> int:
    """End of the header + extensions (``vox_offset``) of a NIfTI-1/2 file, else all of ``data``."""
    for order in ("little", "big"):
        size = int.from_bytes(data[:4], order) if len(data) >= 4 else 0
        if size == 348 and len(data) >= 112:
            fmt = "<f" if order == "little" else ">f"
            return max(352, min(len(data), int(struct.unpack(fmt, data[108:112])[0])))
        if size == 540 and len(data) >= 176:
            return max(544, min(len(data), int.from_bytes(data[168:176], order)))
    return len(data)


def _scan_worthy(value: str) -> bool:
    if not value:
        return False
    if value.isascii():
        return len(value) >= _MIN_TEXT
    return len(value) >= 2


__all__ = ["ResidualScanner"]
