"""Hash-chained audit entries inside a package (001 App. C.4 f, §11.5.1).

Each :class:`~aimd.annotation.schema.AuditEntry` stores the SHA-256 of its own content together with
the previous entry's hash, so a changed, removed or reordered entry breaks the chain and
:func:`audit_chain_break` finds where. The chain itself is :mod:`aimd.core.audit`, shared with the
platform and the inference service.

Example
-------
>>> from aimd.annotation.schema import AnnotationPackage
>>> pkg = AnnotationPackage.model_validate({"task_id": "T", "image": {"uid": "1", "modality": "CT",
...     "shape": [2, 2, 1], "spacing": [1, 1, 1], "origin": [0, 0, 0]},
...     "metadata": {"annotator": "a", "version": "v1"}})
>>> pkg = append_audit(pkg, actor="a", action="create")
>>> pkg = append_audit(pkg, actor="b", action="review", detail="boundaries checked")
>>> audit_chain_break(pkg.metadata.audit) is None
True
>>> pkg.metadata.audit[0].detail = "edited later"
>>> audit_chain_break(pkg.metadata.audit)
0
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from aimd.annotation.schema import AnnotationPackage, AuditEntry
from aimd.core.audit import chain_break, entry_hash

__all__ = ["append_audit", "audit_chain_break", "audit_entry_hash"]


def audit_entry_hash(entry: AuditEntry, prev_sha256: str | None) -> str:
    """SHA-256 over the entry's content (without its own hash) and the previous entry's hash."""
    return entry_hash(entry.model_dump(mode="json"), prev_sha256)


def append_audit(
    package: AnnotationPackage,
    *,
    actor: str,
    action: str,
    detail: str = "",
    annotation_ids: Sequence[str] = (),
    timestamp: dt.datetime | None = None,
) -> AnnotationPackage:
    """A copy of ``package`` with one more chained audit entry."""
    trail = list(package.metadata.audit)
    prev = trail[-1].sha256 if trail else None
    entry = AuditEntry(
        timestamp=timestamp or dt.datetime.now(dt.UTC),
        actor=actor,
        action=action,
        detail=detail,
        annotation_ids=list(annotation_ids),
        prev_sha256=prev,
    )
    entry.sha256 = audit_entry_hash(entry, prev)
    metadata = package.metadata.model_copy(update={"audit": [*trail, entry]})
    return package.model_copy(update={"metadata": metadata})


def audit_chain_break(entries: Sequence[AuditEntry]) -> int | None:
    """Index of the first entry whose hash or link is wrong, or ``None`` when the chain holds.

    The chain is checked by :func:`aimd.core.audit.chain_break`: an entry without a hash is a
    break, so a trail recorded without hashes breaks at entry 0.
    """
    return chain_break([e.model_dump(mode="json") for e in entries])
