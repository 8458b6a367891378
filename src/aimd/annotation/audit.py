"""Hash-chained audit entries inside a package (001 App. C.4 f, §11.5.1).

Each :class:`~aimd.annotation.schema.AuditEntry` stores the SHA-256 of its own content together with
the previous entry's hash, so a changed, removed or reordered entry breaks the chain and
:func:`audit_chain_break` finds where.

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
import json
from collections.abc import Sequence

from aimd.annotation.schema import AnnotationPackage, AuditEntry
from aimd.core.hashing import sha256_bytes

__all__ = ["append_audit", "audit_chain_break", "audit_entry_hash"]


def audit_entry_hash(entry: AuditEntry, prev_sha256: str | None) -> str:
    """SHA-256 over the entry's content (without its own hash) and the previous entry's hash."""
    body = entry.model_dump(mode="json", exclude={"sha256", "prev_sha256"})
    body["prev_sha256"] = prev_sha256
    return sha256_bytes(json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8"))


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

    Entries without any hash are an unchained trail and are not judged.
    """
    if not entries or all(e.sha256 is None and e.prev_sha256 is None for e in entries):
        return None
    prev: str | None = None
    for i, entry in enumerate(entries):
        if entry.prev_sha256 != prev or entry.sha256 != audit_entry_hash(entry, prev):
            return i
        prev = entry.sha256
    return None
