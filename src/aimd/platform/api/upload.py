"""A multipart upload streamed to a file, never held in memory (001 §10.2.4): the request body is parsed
as it arrives (python-multipart); the file part is written to a temporary file in the target folder,
counted and hashed (SHA-256) chunk by chunk, and renamed to its final name only when complete. A body
declaring or reaching more than the cap is refused with 413 at once; text fields are kept (each capped).

Example
-------
>>> FIELD_CAP
1048576
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from aimd.platform.series.unpack import StudyArchiveError

__all__ = ["FIELD_CAP", "Upload", "receive_file"]

FIELD_CAP = 1 << 20
"""Most bytes of one text field of the form."""
# python-multipart logs a warning before raising on a malformed body; the refusal is the answer (400 naming
# the fault), so the parser's line would only repeat it, unformatted, in the server log.
logging.getLogger("python_multipart.multipart").setLevel(logging.ERROR)
_FORM_SLACK = 1 << 20  # the form's text fields and part headers beside the file


@dataclass
class Upload:
    """The received form: its text fields and the file part, stored as ``path``."""

    fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    filename: str = ""
    sha256: str = ""
    size: int = 0

    def discard(self) -> None:
        """Remove the stored file (a refused upload leaves nothing behind)."""
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def _bad(message: str, hint: str, status: int = 400, where: str = "body") -> StudyArchiveError:
    return StudyArchiveError(message, where=where, hint=hint, status=status)


class _Parts:
    """python-multipart callbacks writing the file part to an open temp file."""

    def __init__(self, file_field: str, out: Any, max_bytes: int) -> None:
        self.file_field, self.out, self.max_bytes = file_field, out, max_bytes
        self.upload = Upload()
        self.digest = hashlib.sha256()
        self._header: list[bytes] = [b"", b""]
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._is_file = False
        self._text = bytearray()
        self.file_started = False
        self.error: StudyArchiveError | None = None

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._add(0, d[s:e]),
            "on_header_value": lambda d, s, e: self._add(1, d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._end,
        }

    def _begin(self) -> None:
        self._headers, self._name, self._is_file, self._text = {}, "", False, bytearray()

    def _add(self, which: int, data: bytes) -> None:
        self._header[which] += data

    def _header_end(self) -> None:
        self._headers[self._header[0].lower()] = self._header[1]
        self._header = [b"", b""]

    def _headers_done(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = params.get(b"name", b"").decode("utf-8", "replace")
        if self._name == self.file_field:
            if self.file_started:
                self.error = _bad(f"the form holds {self.file_field!r} twice", "send one archive per request", 422)
            self.file_started = self._is_file = True
            self.upload.filename = params.get(b"filename", b"").decode("utf-8", "replace")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        chunk = data[start:end]
        if self._is_file:
            self.upload.size += len(chunk)
            if self.upload.size > self.max_bytes:
                self.error = _bad(
                    f"the study archive is larger than {self.max_bytes} bytes",
                    "import the study in parts, one case per archive",
                    413,
                    self.file_field,
                )
                return
            self.digest.update(chunk)
            self.out.write(chunk)
            return
        self._text += chunk
        if len(self._text) > FIELD_CAP:
            self.error = _bad(f"the form field {self._name!r} is larger than {FIELD_CAP} bytes", "send less", 413)

    def _end(self) -> None:
        if not self._is_file and self._name and self.error is None:
            self.upload.fields[self._name] = self._text.decode("utf-8", "replace")


async def receive_file(
    request: Request,
    folder: Path,
    max_bytes: int,
    *,
    file_field: str = "file",
    suffix: str = ".zip",
    before_file: Callable[[dict[str, str]], Awaitable[None]] | None = None,
) -> Upload:
    """Stream the multipart/form-data body of ``request``: the part ``file_field`` into a new file of
    ``folder`` (a uniquely named temp file, renamed when complete), the other parts as text fields.

    ``before_file`` is awaited with the fields sent so far when the file part begins (a refusal there
    stops the upload before its bytes are taken). Raises :class:`StudyArchiveError` (400, 413, 422)."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + _FORM_SLACK:
        raise _bad(
            f"the study archive is larger than {max_bytes} bytes (Content-Length {length})",
            "import the study in parts, one case per archive",
            413,
            file_field,
        )
    kind, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise _bad("the body is not multipart/form-data", "send the archive as a form field named file", 422)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".upload-", suffix=".tmp", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            parts = _Parts(file_field, out, max_bytes)
            parser = MultipartParser(boundary, parts.callbacks())
            asked = before_file is None
            async for chunk in request.stream():
                try:
                    parser.write(chunk)
                except MultipartParseError as err:
                    raise _bad(f"the form cannot be read ({err})", "send a well-formed multipart body") from None
                if parts.error is not None:
                    raise parts.error
                if not asked and parts.file_started:
                    asked = True
                    await before_file(dict(parts.upload.fields))  # type: ignore[misc]
            try:
                parser.finalize()
            except MultipartParseError as err:
                raise _bad(f"the form ends early ({err})", "send the whole body") from None
            if parts.error is not None:
                raise parts.error
            if not parts.file_started:
                hint = f"send the archive as the form field {file_field!r}"
                raise _bad("the form has no file", hint, 422, file_field)
            out.flush()
            os.fsync(out.fileno())
        upload = parts.upload
        upload.sha256 = parts.digest.hexdigest()
        upload.path = folder / f"{uuid.uuid4().hex}{suffix}"
        os.replace(tmp, upload.path)
        return upload
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
