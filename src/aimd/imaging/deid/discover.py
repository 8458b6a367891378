"""Find the files under a source path and decide how each is de-identified.

Kinds: ``dicom`` (profile), ``text`` (text rules), ``json`` (text rules + identity keys + spans),
``nifti`` (header text and extensions cleaned), ``analyze`` (an ``.img`` voxel file, written only when its
``.hdr`` is beside it and the sizes agree), ``npy`` (numeric arrays), ``skip`` (never copied: DICOMDIR,
hidden files, pseudonym maps), ``unknown`` (formats aimd cannot check for identifying text or burned-in
pixels) and ``link`` (symbolic links and other non-regular files: never followed, never copied). Every
file is either parsed and de-identified or listed as not handled; nothing is copied through unread.

Example
-------
>>> classify(Path("cases/c1/report_zh.txt"), b"")
('text', '')
>>> classify(Path("DICOMDIR"), b"")[0]
'skip'
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from pathlib import Path

_DICOM_EXT = (".dcm", ".dicom", ".ima")
_TEXT_EXT = (
    ".txt",
    ".md",
    ".csv",
    ".tsv",
    ".log",
    ".xml",
    ".html",
    ".htm",
    ".yaml",
    ".yml",
    ".jsonl",
    ".rtf",
    ".ini",
    ".cfg",
    ".tex",
)
_NIFTI_EXT = (".nii", ".nii.gz", ".hdr")
_ANALYZE_EXT = (".img",)


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
    if name.endswith(_ANALYZE_EXT):
        return "analyze", ""
    if name.endswith(".npy") and head[:6] == b"\x93NUMPY":
        return "npy", ""
    return "unknown", "unknown format: cannot be checked for identifying content"


def discover(src: Path, *, exclude: tuple[Path, ...] = ()) -> tuple[Path, list[SourceFile]]:
    """All entries under ``src`` (or ``src`` itself), sorted; returns the root their ``rel`` is based on.

    Symbolic links (to files or folders, inside or outside ``src``) and special files are listed with
    kind ``link`` and never followed, so nothing outside ``src`` can reach the output.
    """
    src = Path(os.path.abspath(src))
    excluded = {p.resolve() for p in exclude}
    if not src.is_dir() or src.is_symlink():
        root, entries = src.parent, [src]
    else:
        root, entries = src, _walk(src)
    files = []
    for path in entries:
        rel = path.relative_to(root)
        if path.is_symlink() or not path.is_file():
            target = os.path.realpath(path)
            where = "inside" if Path(target).is_relative_to(src) and path != src else "outside"
            what = "symbolic link" if path.is_symlink() else "not a regular file"
            files.append(SourceFile(path, rel, "link", f"{what} (target {where} the source): not followed"))
            continue
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


def _walk(src: Path) -> list[Path]:
    """Every non-folder entry under ``src`` without following symbolic links (links are entries)."""
    out = []
    for folder, dirs, names in os.walk(src, followlinks=False):
        base = Path(folder)
        out += [base / d for d in dirs if (base / d).is_symlink()]
        out += [base / n for n in names]
    return sorted(out)


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
