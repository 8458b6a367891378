"""Content-addressed blob store: each blob is named by the SHA-256 of its bytes, kept compressed.

Blobs (volumes, masks, reports) are written once under ``root/<first two hex>/<sha256>.z`` with
zlib compression, atomically (temporary file, fsync, rename): a reader sees a whole blob or none.
Putting the same bytes twice stores them once. :meth:`BlobStore.get` checks the hash of what it
returns; :meth:`BlobStore.verify` checks every blob on disk. A large blob is streamed in
(:meth:`BlobStore.writer`, :meth:`BlobStore.put_file`): hashed and compressed chunk by chunk into a
temporary file in the store's folder, fsynced and renamed to its name, never held whole in memory.

Example
-------
>>> import tempfile
>>> store = BlobStore(tempfile.mkdtemp())
>>> sha = store.put(b"mask bytes" * 100)
>>> store.get(sha) == b"mask bytes" * 100, store.put(b"mask bytes" * 100) == sha, len(store)
(True, True, 1)
>>> with store.writer() as out:
...     _ = out.write(b"mask bytes" * 60)
...     _ = out.write(b"mask bytes" * 40)
>>> out.sha256 == sha, len(store)
(True, 1)
>>> store.verify()
[]
>>> store.collect(referenced=set(), grace_seconds=0) == [sha], len(store)
(True, 0)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from isal import isal_zlib

from aimd.core.atomic import atomic_write_bytes, default_mode, fsync_dir
from aimd.core.errors import IntegrityError, InvalidInputError
from aimd.core.hashing import sha256_bytes

__all__ = ["BlobStore", "BlobWriter", "read_checked", "read_stored", "unlink_if_stale", "write_once"]

_SHA = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
_PART = ".part-"  # streamed blobs being written: <root>/.part-*.tmp
_LEVEL = 1  # masks are mostly background: fast levels already shrink them a hundredfold
# ISA-L writes and reads the same zlib streams as zlib, 2-30 times faster (a 52 MB mask: 6 ms vs 70 ms)


def read_stored(target: Path, sha: str, *, what: str) -> bytes:
    """The bytes of file ``target`` as stored; a missing file is an :class:`IntegrityError` naming ``sha``."""
    try:
        return target.read_bytes()
    except FileNotFoundError:
        raise IntegrityError(
            f"{what} {sha} is missing", where=str(target), hint="restore the blob store from a backup"
        ) from None


def write_once(target: Path, make: Callable[[], bytes]) -> None:
    """Write ``make()`` to ``target`` atomically unless it exists; an existing file is touched instead
    (re-use counts as a write: :meth:`BlobStore.collect` spares files touched within its grace period)."""
    try:
        os.utime(target)
    except FileNotFoundError:
        atomic_write_bytes(target, make())


def read_checked(target: Path, sha: str, *, wbits: int, what: str) -> bytes:
    """The inflated content of file ``target`` (zlib ``wbits``), checked to hash to its name ``sha``."""
    stored = read_stored(target, sha, what=what)
    try:
        data = isal_zlib.decompressobj(wbits).decompress(stored)
    except (zlib.error, isal_zlib.error) as err:
        raise IntegrityError(
            f"{what} {sha} cannot be decompressed ({err})",
            where=str(target),
            hint="restore the blob store from a backup",
        ) from None
    if sha256_bytes(data) != sha:
        raise IntegrityError(
            f"{what} {sha} does not match its name", where=str(target), hint="restore the blob store from a backup"
        )
    return data


def unlink_if_stale(path: Path, cutoff: float) -> bool:
    """Unlink ``path`` unless it was written or re-used after ``cutoff`` (epoch seconds); True when unlinked."""
    try:
        if path.stat().st_mtime > cutoff:
            return False
        path.unlink()
    except FileNotFoundError:
        return False
    return True


class BlobWriter:
    """A blob being streamed into a :class:`BlobStore` (:meth:`BlobStore.writer`): a binary file to
    ``write`` to (``np.save`` and ``shutil.copyfileobj`` accept it). Each chunk is hashed and compressed
    into a temporary file in the store's folder; :meth:`close` fsyncs it and renames it to its name
    (or drops it when that blob is already stored), then :attr:`sha256` names the blob."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        fd, tmp = tempfile.mkstemp(prefix=_PART, suffix=".tmp", dir=store.root)
        os.fchmod(fd, default_mode())
        self._tmp = Path(tmp)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._deflate = isal_zlib.compressobj(_LEVEL)
        self.sha256: str | None = None
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Add ``data`` to the blob; returns its length in bytes."""
        if self.sha256 is not None:
            raise ValueError("the blob is already stored")
        view = memoryview(data).cast("B")
        self._hash.update(view)
        self._file.write(self._deflate.compress(view))
        self.size += view.nbytes
        return view.nbytes

    def close(self) -> str:
        """Store the blob written (fsync, then an atomic rename) and return its SHA-256."""
        if self.sha256 is not None:
            return self.sha256
        try:
            self._file.write(self._deflate.flush())
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            sha = self._hash.hexdigest()
            target = self._store.path(sha)
            try:
                os.utime(target)  # stored already: re-use counts as a write (see BlobStore.collect)
                self._tmp.unlink()
            except FileNotFoundError:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self._tmp, target)
                fsync_dir(target.parent)
        except BaseException:
            self.abort()
            raise
        self.sha256 = sha
        return sha

    def abort(self) -> None:
        """Drop what was written; nothing is stored."""
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()


class BlobStore:
    """Content-addressed, compressed, write-once blobs in a folder.

    Parameters
    ----------
    root:
        Folder of the store (created when missing).
    """

    suffix = ".z"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha: str) -> Path:
        """Where the blob ``sha`` lives (whether or not it exists)."""
        if not _SHA.match(sha):
            raise InvalidInputError(
                f"not a SHA-256 blob name: {sha!r}",
                where="blob store",
                hint="use the 64-character lower-case hex name that put() returned",
            )
        return self.root / sha[:2] / f"{sha}{self.suffix}"

    def put(self, data: bytes) -> str:
        """Store ``data`` (once) and return its SHA-256."""
        sha = sha256_bytes(data)
        target = self.path(sha)
        if target.exists():
            # re-use counts as a write: collect() spares blobs touched within its grace period
            try:
                os.utime(target)
            except FileNotFoundError:
                atomic_write_bytes(target, isal_zlib.compress(data, _LEVEL))
        else:
            atomic_write_bytes(target, isal_zlib.compress(data, _LEVEL))
        return sha

    @contextlib.contextmanager
    def writer(self) -> Iterator[BlobWriter]:
        """A :class:`BlobWriter` to stream one blob into the store; stored when the block ends without an
        error (then ``writer.sha256`` names it), dropped otherwise."""
        out = BlobWriter(self)
        try:
            yield out
        except BaseException:
            out.abort()
            raise
        out.close()

    def put_file(self, path: str | Path) -> str:
        """Store the content of file ``path`` (once), read chunk by chunk; returns its SHA-256."""
        with self.writer() as out, open(path, "rb") as src:
            while chunk := src.read(_CHUNK):
                out.write(chunk)
        assert out.sha256 is not None
        return out.sha256

    def put_compressed(self, sha: str, compressed: bytes) -> str:
        """Store a blob from its zlib stream ``compressed`` whose content the caller has hashed to ``sha``
        (no second compression of a body that arrived compressed); returns ``sha``."""
        write_once(self.path(sha), lambda: compressed)
        return sha

    def get_compressed(self, sha: str) -> bytes:
        """The stored zlib stream of blob ``sha`` as it is on disk (HTTP ``Content-Encoding: deflate``);
        unlike :meth:`get` its hash is not checked here (:meth:`verify` does)."""
        return read_stored(self.path(sha), sha, what="blob")

    def has(self, sha: str) -> bool:
        """True when the blob is stored."""
        return self.path(sha).exists()

    def __contains__(self, sha: object) -> bool:
        return isinstance(sha, str) and _SHA.match(sha) is not None and self.has(sha)

    def get(self, sha: str) -> bytes:
        """The bytes of blob ``sha``; a missing or damaged blob is an :class:`IntegrityError`."""
        return read_checked(self.path(sha), sha, wbits=15, what="blob")

    def __iter__(self) -> Iterator[str]:
        for path in sorted(self.root.glob(f"??/*{self.suffix}")):
            yield path.name[: -len(self.suffix)]

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def collect(
        self, referenced: set[str], *, candidates: set[str] | None = None, grace_seconds: float = 600.0
    ) -> list[str]:
        """Unlink blobs not in ``referenced`` (only those in ``candidates`` when given); return their names.

        Blobs written or re-used within ``grace_seconds`` are kept: a transaction that stored a blob
        and has not yet committed the row naming it must not lose it. Call this only *after* the
        transaction that dropped the references committed, so a crash in between leaves unreferenced
        files (collected next time), never references to missing blobs.
        """
        cutoff = time.time() - grace_seconds
        for part in self.root.glob(f"{_PART}*.tmp"):  # streams a killed process left unfinished
            unlink_if_stale(part, cutoff)
        pool = sorted(candidates if candidates is not None else set(self))
        return [sha for sha in pool if sha not in referenced and unlink_if_stale(self.path(sha), cutoff)]

    def verify(self) -> list[str]:
        """Names of the blobs whose content no longer matches their name (empty when all hold)."""
        bad = []
        for sha in self:
            try:
                self.get(sha)
            except (IntegrityError, InvalidInputError):
                bad.append(sha)
        return bad
