"""The aimd error hierarchy.

Every error aimd raises for bad input derives from :class:`AimdError` and carries
*what* went wrong, *where* (file, tag, slice, field) and *how to fix it*, so the CLI
can print one clear line and exit with code 2 instead of a traceback.

Example
-------
>>> try:
...     raise InvalidInputError("not a DICOM file", where="scan/1.dcm", hint="pass a folder of .dcm files")
... except AimdError as err:
...     print(err)
scan/1.dcm: not a DICOM file (fix: pass a folder of .dcm files)
"""

from __future__ import annotations


class AimdError(Exception):
    """Base class of every error aimd raises on purpose.

    Parameters
    ----------
    message:
        What went wrong, stating the value received where there is one.
    where:
        The file, tag, slice or field concerned.
    hint:
        How the user can fix it.
    """

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None) -> None:
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" (fix: {self.hint})"
        return text

    def to_dict(self) -> dict[str, str | None]:
        """Machine-readable form used by ``--json`` output."""
        return {"error": type(self).__name__, "message": self.message, "where": self.where, "hint": self.hint}


class InvalidInputError(AimdError):
    """An input file, folder, table or value cannot be used as given."""


class GeometryError(InvalidInputError):
    """Image geometry is missing, inconsistent or cannot be reconstructed."""


class SchemaError(InvalidInputError):
    """A JSON/YAML document does not match its schema."""


class ConfigError(InvalidInputError):
    """A setting (environment variable or aimd.toml) is invalid."""


class IntegrityError(AimdError):
    """Stored data does not match its recorded hash, size or references."""

    exit_code = 1


class PermissionDeniedError(AimdError):
    """The caller may not perform the requested action."""


__all__ = [
    "AimdError",
    "ConfigError",
    "GeometryError",
    "IntegrityError",
    "InvalidInputError",
    "PermissionDeniedError",
    "SchemaError",
]
