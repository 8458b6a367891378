"""Unpack a study upload (a zip archive) into a private folder, refusing hostile archives before a byte of
them is trusted: member names that leave the folder (absolute paths, ``..``, drive letters, backslashes),
links and special files, encrypted members, more files or more bytes than allowed, members inflating
beyond a compression ratio no image file reaches (zip bombs), and archives whose members lie about their
size.

Example
-------
>>> import io, tempfile, zipfile
>>> buf = io.BytesIO()
>>> with zipfile.ZipFile(buf, "w") as z:
...     z.writestr("../../etc/cron.d/x", b"evil")
>>> try:
...     unpack_zip(buf.getvalue(), Path(tempfile.mkdtemp()))
... except StudyArchiveError as err:
...     print(err.where, err.status)
../../etc/cron.d/x 400
"""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path, PurePosixPath

from aimd.core.errors import InvalidInputError

__all__ = ["MAX_FILES", "MAX_RATIO", "MAX_UNPACKED_BYTES", "StudyArchiveError", "check_zip", "unpack_zip"]

MAX_FILES = 20_000
"""Most members a study archive may hold."""
MAX_UNPACKED_BYTES = 4 << 30
"""Most bytes a study archive may unpack to."""
MAX_RATIO = 100
"""Highest compression ratio of a member above 1 MiB (uncompressed DICOM images reach ~10)."""
_CHUNK = 1 << 20


class StudyArchiveError(InvalidInputError):
    """A study upload that cannot be unpacked safely (HTTP ``status``: 400, or 413 when too large)."""

    def __init__(self, message: str, *, where: str, hint: str, status: int = 400) -> None:
        super().__init__(message, where=where, hint=hint)
        self.status = status


def _safe_name(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's relative path, or None for a folder entry; a path leaving the folder is refused."""
    name = info.filename
    path = PurePosixPath(name)
    bad = (
        "\\" in name
        or "\x00" in name
        or path.is_absolute()
        or ".." in path.parts
        or (path.parts and ":" in path.parts[0])
    )
    if bad:
        raise StudyArchiveError(
            "the archive member's path leaves the upload folder (path traversal)",
            where=name,
            hint="zip the study folder with relative paths only (e.g. `cd study && zip -r ../study.zip .`)",
        )
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)  # 0 when the archiver wrote permission bits only
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        raise StudyArchiveError(
            "the archive member is a link or a special file",
            where=name,
            hint="zip regular files only (zip without --symlinks)",
        )
    if info.flag_bits & 0x1:
        raise StudyArchiveError("the archive member is encrypted", where=name, hint="zip the study without a password")
    return None if info.is_dir() else path


def _members(archive: zipfile.ZipFile, max_files: int, max_bytes: int) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    infos = archive.infolist()
    if len(infos) > max_files:
        raise StudyArchiveError(
            f"the archive holds {len(infos)} members, more than the {max_files} a study may have",
            where="archive",
            hint="import the study in parts, one case per archive",
            status=413,
        )
    out, total = [], 0
    for info in infos:
        path = _safe_name(info)
        if path is None:
            continue
        total += info.file_size
        if total > max_bytes:
            raise StudyArchiveError(
                f"the archive unpacks to more than {max_bytes} bytes",
                where=info.filename,
                hint="import the study in parts, one case per archive",
                status=413,
            )
        if info.file_size > _CHUNK and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise StudyArchiveError(
                f"the member inflates {info.file_size // max(info.compress_size, 1)}-fold, more than any image file "
                f"(at most {MAX_RATIO}-fold): a zip bomb",
                where=info.filename,
                hint="upload the study's DICOM files as they are",
                status=413,
            )
        out.append((info, path))
    return out


def _open(source: bytes | Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else Path(source))
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise StudyArchiveError(
            f"the upload is not a zip archive ({err})",
            where="archive",
            hint="upload the study folder as a .zip file (DICOM files inside)",
        ) from None


def _checked(archive: zipfile.ZipFile, max_files: int, max_bytes: int) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    members = _members(archive, max_files, max_bytes)
    seen: set[str] = set()
    for info, rel in members:
        key = rel.as_posix().lower()
        if key in seen:
            raise StudyArchiveError("the archive holds this path twice", where=info.filename, hint="zip each file once")
        seen.add(key)
    return members


def check_zip(source: bytes | Path, *, max_files: int = MAX_FILES, max_bytes: int = MAX_UNPACKED_BYTES) -> int:
    """Check the zip archive ``source`` (its bytes or its file) from its central directory alone: a zip,
    no member leaving the folder, no link, no encrypted member, not too many files or bytes, no member
    inflating like a zip bomb, no path twice. Returns the number of files; nothing is inflated.

    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w") as z:
    ...     z.writestr("t1/a.dcm", b"DICM")
    >>> check_zip(buf.getvalue())
    1
    """
    with _open(source) as archive:
        return len(_checked(archive, max_files, max_bytes))


def unpack_zip(
    source: bytes | Path, dest: Path, *, max_files: int = MAX_FILES, max_bytes: int = MAX_UNPACKED_BYTES
) -> list[Path]:
    """Unpack the zip archive ``source`` (its bytes or its file) into the existing folder ``dest``; the
    files written.

    Every member is checked before anything is written (:func:`check_zip`), and each is inflated with a
    cap at the size it declares, so a member that lies about its size is refused too.
    """
    archive = _open(source)
    written: list[Path] = []
    with archive:
        for info, rel in _checked(archive, max_files, max_bytes):
            target = dest.joinpath(*rel.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            size = 0
            try:
                with archive.open(info) as src, open(target, "xb") as out:
                    while chunk := src.read(_CHUNK):
                        size += len(chunk)
                        if size > info.file_size:
                            raise StudyArchiveError(
                                "the member inflates beyond the size the archive declares for it",
                                where=info.filename,
                                hint="re-create the archive with a standard zip tool",
                                status=413,
                            )
                        out.write(chunk)
            except (
                zipfile.BadZipFile,
                zipfile.LargeZipFile,
                EOFError,
                OSError,
                ValueError,
                NotImplementedError,
            ) as err:
                raise StudyArchiveError(
                    f"the archive member cannot be read ({err})",
                    where=info.filename,
                    hint="re-create the archive with a standard zip tool (stored or deflated members)",
                ) from None
            written.append(target)
    return written
