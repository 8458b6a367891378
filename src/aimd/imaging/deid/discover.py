"""Find the files under a source path and decide how each is de-identified.

Kinds: ``dicom`` (profile), ``text`` (text rules), ``json`` (text rules + identity keys + spans),
``nifti`` (header text and extensions cleaned), ``copy`` (data without free text: Analyze ``.img``
voxels, numeric ``.npy``), ``skip`` (never copied: DICOMDIR, hidden files, pseudonym maps, unknown
formats that could carry identifying text or burned-in pixels).

Example
-------
>>> classify(Path("cases/c1/report_zh.txt"), b"")
('text', '')
>>> classify(Path("DICOMDIR"), b"")[0]
'skip'
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

_DICOM_EXT = (".dcm", ".dicom", ".ima")
_TEXT_EXT = (".txt", ".md", ".csv", ".tsv", ".log", ".xml", ".html", ".htm", ".yaml", ".yml", ".jsonl",
             ".rtf", ".ini", ".cfg", ".tex")
_NIFTI_EXT = (".nii", ".nii.gz", ".hdr")
_COPY_EXT = (".img",)


@dataclass(frozen=True)
class SourceFile:
    """One input file: absolute path, path relative to the source root, kind, and why (for skips)."""

    path: Path
    rel: Path
    kind: str
    reason: str = ""


def classify(rel: Path, head: bytes) -> tuple[str, str]:
    """Kind of a file from its name and first 132 bytes, with the reason when it is skipped."""
    name = rel.name.lower()
    if any(part.startswith(".") for part in rel.parts):
        return "skip", "hidden file"
    if name == "dicomdir":
        return "skip", "DICOMDIR indexes identifying data; rebuild it from the de-identified files"
    if name.endswith(_DICOM_EXT) or head[128:132] == b"DICM":
        return "dicom", ""
    if name.endswith(_NIFTI_EXT):
        return "nifti", ""
    if name.endswith(".json"):
        return "json", ""
    if name.endswith(_TEXT_EXT):
        return "text", ""
    if name.endswith(_COPY_EXT):
        return "copy", ""
    if name.endswith(".npy") and head[:6] == b"\x93NUMPY":
        return "npy", ""
    return "unknown", "unknown format: cannot be checked for identifying content"


def discover(src: Path, *, exclude: tuple[Path, ...] = ()) -> tuple[Path, list[SourceFile]]:
    """All files under ``src`` (or ``src`` itself), sorted; returns the root their ``rel`` is based on."""
    src = src.resolve()
    excluded = {p.resolve() for p in exclude}
    if src.is_file():
        root, paths = src.parent, [src]
    else:
        root = src
        paths = sorted(p for p in src.rglob("*") if p.is_file() and not _in_symlinked_dir(p, src))
    files = []
    for path in paths:
        rel = path.relative_to(root)
        if path.resolve() in excluded:
            files.append(SourceFile(path, rel, "skip", "pseudonym map: never copied into the output"))
            continue
        if rel.as_posix() == "deid_log.json":
            files.append(SourceFile(path, rel, "skip", "log of an earlier de-identification run"))
            continue
        with open(path, "rb") as handle:
            head = handle.read(132)
        kind, reason = classify(rel, head)
        files.append(SourceFile(path, rel, kind, reason))
    return root, files


def _in_symlinked_dir(path: Path, root: Path) -> bool:
    parent = path.parent
    while parent != root and root in parent.parents:
        if parent.is_symlink():
            return True
        parent = parent.parent
    return False


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode report text: UTF-8 (with or without BOM), UTF-16 with BOM, else strict GB18030.

    Returns ``(text, encoding)``; raises ``UnicodeDecodeError``/``ValueError`` for undecodable or binary
    data.

    Example
    -------
    >>> decode_text("姓名".encode("gb18030"))
    ('姓名', 'gb18030')
    """
    if data.startswith(codecs.BOM_UTF8):
        text, encoding = data[3:].decode("utf-8"), "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text, encoding = data.decode("utf-16"), "utf-16"
    else:
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = data.decode("gb18030"), "gb18030"
    if "\x00" in text:
        raise ValueError("binary data (NUL characters) in a text file")
    return text, encoding


def encode_text(text: str, encoding: str) -> bytes:
    """Encode ``text`` back in the encoding it was read with (BOM kept)."""
    if encoding == "utf-8-sig":
        return codecs.BOM_UTF8 + text.encode("utf-8")
    return text.encode(encoding)


__all__ = ["SourceFile", "classify", "decode_text", "discover", "encode_text"]
