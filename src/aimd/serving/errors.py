"""Errors of the inference service and the HTTP status each one answers with.

Every bad request is an :class:`~aimd.core.errors.AimdError` naming the field and the fix; the app
maps it to a 4xx answer (never 5xx) with the same ``error``/``message``/``where``/``hint`` body the
CLI prints with ``--json``.

Example
-------
>>> http_status(UploadTooLargeError("upload is 9 MB", where="files", hint="send at most 1 MB"))
413
"""

from __future__ import annotations

from aimd.core.errors import AimdError, InvalidInputError, PermissionDeniedError


class NotFoundError(InvalidInputError):
    """A model, version, result or job does not exist."""


class UploadTooLargeError(InvalidInputError):
    """An upload exceeds the size or voxel-count limit."""


class UnsupportedMediaError(InvalidInputError):
    """The request body is not a NIfTI, DICOM, zip, PNG or JSON study reference."""


class AuthenticationError(PermissionDeniedError):
    """No bearer token, or an unknown or revoked one."""


class ScopeError(PermissionDeniedError):
    """The token lacks the scope the route needs."""


class RateLimitedError(PermissionDeniedError):
    """The token sent more requests than its rate allows."""

    def __init__(self, message: str, *, retry_after: float, where: str | None = None, hint: str | None = None):
        super().__init__(message, where=where, hint=hint)
        self.retry_after = retry_after


class BusyError(AimdError):
    """The model's queue is full, or the request waited longer than its timeout."""

    def __init__(
        self, message: str, *, retry_after: float = 1.0, where: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message, where=where, hint=hint)
        self.retry_after = retry_after


class DatabaseUnavailableError(BusyError):
    """The database does not answer (connection refused, reset or lost): retry later (503 with Retry-After)."""


class PacsError(AimdError):
    """The PACS is unreachable, refuses a request or does not hold what was asked for.

    ``transient``: a fault that may go away by itself (no connection, timeout, HTTP 429/5xx), so the
    call is worth repeating.
    """

    exit_code = 1

    def __init__(
        self, message: str, *, where: str | None = None, hint: str | None = None, transient: bool = False
    ) -> None:
        super().__init__(message, where=where, hint=hint)
        self.transient = transient


class CancelledError(AimdError):
    """The client went away; its queued work was dropped."""


_STATUS: tuple[tuple[type[AimdError], int], ...] = (
    (NotFoundError, 404),
    (UploadTooLargeError, 413),
    (UnsupportedMediaError, 415),
    (AuthenticationError, 401),
    (ScopeError, 403),
    (RateLimitedError, 429),
    (BusyError, 503),
    (PacsError, 502),
    (CancelledError, 499),
    (PermissionDeniedError, 403),
    (InvalidInputError, 422),
)


def http_status(err: AimdError) -> int:
    """The HTTP status code of ``err`` (422 for any other bad input, 400 for the rest)."""
    for cls, status in _STATUS:
        if isinstance(err, cls):
            return status
    return 400


__all__ = [
    "AuthenticationError",
    "BusyError",
    "CancelledError",
    "DatabaseUnavailableError",
    "NotFoundError",
    "PacsError",
    "RateLimitedError",
    "ScopeError",
    "UnsupportedMediaError",
    "UploadTooLargeError",
    "http_status",
]
