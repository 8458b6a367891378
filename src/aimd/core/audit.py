"""The hash-chained audit trail: one implementation for packages, the service and the platform.

Each entry stores the SHA-256 of its own content together with the previous entry's hash
(``sha256`` and ``prev_sha256``), so a changed, removed, inserted or reordered entry breaks the
chain, and :func:`chain_break` names the first entry that does not hold. A trail whose entries
carry no hashes cannot prove anything and breaks at entry 0 (DESIGN: a change is always detected).

Example
-------
>>> trail = []
>>> for action in ("create", "review", "submit"):
...     trail.append(link({"actor": "a", "action": action}, trail[-1]["sha256"] if trail else None))
>>> chain_break(trail) is None
True
>>> trail[1]["action"] = "approve"
>>> chain_break(trail)
1
>>> chain_break([{"actor": "a", "action": "create"}])
0
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aimd.core.hashing import sha256_bytes

HASH_KEY = "sha256"
PREV_KEY = "prev_sha256"

__all__ = ["HASH_KEY", "PREV_KEY", "chain_break", "entry_hash", "link", "unhashed"]


def entry_hash(body: Mapping[str, Any], prev: str | None) -> str:
    """SHA-256 over an entry's content (its own hash fields left out) and the previous entry's hash.

    The content is serialised as canonical JSON (sorted keys, UTF-8), so the hash does not depend
    on key order or on the store the entry came from.

    Example
    -------
    >>> entry_hash({"b": 1, "a": 2}, None) == entry_hash({"a": 2, "b": 1, "sha256": "x"}, None)
    True
    >>> entry_hash({"a": 1}, None) == entry_hash({"a": 1}, "0" * 64)
    False
    """
    content = {k: v for k, v in body.items() if k not in (HASH_KEY, PREV_KEY)}
    content[PREV_KEY] = prev
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, default=str)
    return sha256_bytes(text.encode("utf-8"))


def link(body: Mapping[str, Any], prev: str | None) -> dict[str, Any]:
    """A copy of ``body`` chained to ``prev``: with ``prev_sha256`` and its own ``sha256``.

    Example
    -------
    >>> first = link({"action": "create"}, None)
    >>> link({"action": "submit"}, first["sha256"])["prev_sha256"] == first["sha256"]
    True
    """
    out = {k: v for k, v in body.items() if k not in (HASH_KEY, PREV_KEY)}
    out[PREV_KEY] = prev
    out[HASH_KEY] = entry_hash(out, prev)
    return out


def chain_break(entries: Sequence[Mapping[str, Any]], start: str | None = None) -> int | None:
    """Index of the first entry whose hash or link is wrong, or ``None`` when the whole chain holds.

    An entry without a hash is a break (a trail without hashes breaks at entry 0). An empty trail
    holds nothing to break and gives ``None``; whether an empty trail is acceptable is the caller's call.
    ``start`` is the hash the first entry links to when older entries were archived (``None``: the
    trail begins at its first entry).

    Example
    -------
    >>> a = link({"n": 1}, None); b = link({"n": 2}, a["sha256"]); c = link({"n": 3}, b["sha256"])
    >>> chain_break([a, c])          # b removed
    1
    >>> chain_break([b, a, c])       # reordered
    0
    >>> chain_break([b, c], start=a["sha256"]), chain_break([b, c])   # a archived
    (None, 0)
    """
    prev: str | None = start
    for i, entry in enumerate(entries):
        recorded = entry.get(HASH_KEY)
        if not recorded or entry.get(PREV_KEY) != prev or recorded != entry_hash(entry, prev):
            return i
        prev = recorded
    return None


def unhashed(entry: Mapping[str, Any]) -> bool:
    """True when an entry carries no hash at all (it was never chained).

    Example
    -------
    >>> unhashed({"action": "create"}), unhashed(link({"action": "create"}, None))
    (True, False)
    """
    return not entry.get(HASH_KEY)
