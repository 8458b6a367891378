"""Errors of the platform's services and the frozen-version guard, shared by every platform module.

Example
-------
>>> from types import SimpleNamespace
>>> try:
...     require_unfrozen(SimpleNamespace(id=3, version=2, frozen=True))
... except ConflictError as err:
...     print(err.message)
version 2 of project 3 is frozen and read-only
"""

from __future__ import annotations

from typing import Any

from aimd.core.errors import InvalidInputError

__all__ = ["ConflictError", "IdentifiersFoundError", "NotFoundError", "require_unfrozen"]


class NotFoundError(InvalidInputError):
    """No such resource, or not visible to the caller (HTTP 404)."""


class ConflictError(InvalidInputError):
    """The request conflicts with the resource's state (HTTP 409): stale version, frozen project..."""


class IdentifiersFoundError(InvalidInputError):
    """Import refused: identifiers remain (HTTP 422)."""

    def __init__(self, hits: list[dict[str, str]]) -> None:
        kinds = sorted({h["kind"] for h in hits})
        places = sorted({h["where"] for h in hits})
        super().__init__(
            f"the case still carries identifiers ({', '.join(kinds)}) in {', '.join(places)}",
            where="import",
            hint="de-identify with `aimd data deid` before importing (001 §11.2.1)",
        )
        self.hits = hits


def require_unfrozen(project: Any) -> None:
    """Refuse writes to a frozen version."""
    if project.frozen:
        raise ConflictError(
            f"version {project.version} of project {project.id} is frozen and read-only",
            where=f"project {project.id}",
            hint="open a change request (001 §11.5.2)",
        )
