"""Find many literal identifiers in text at once (the known-identifier rule and the residual scan).

Example
-------
>>> list(IdentifierIndex(["Zhang Wei"]).finditer("Dr. ZHANG WEI"))
[(4, 13, 'ZHANG WEI')]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any


class IdentifierIndex:
    """Find many literal identifiers in text in one pass (case-insensitive, leftmost-longest).

    The values are compiled into one regular expression shaped as a prefix tree, so at each position the
    regex engine walks the tree once instead of trying every value: the cost grows with the text, not with
    the number of identifiers. Values starting or ending with a letter/digit only match at word/number
    boundaries.

    Example
    -------
    >>> list(IdentifierIndex(["P0012", "宋华"]).finditer("p0012, P00123 宋华"))
    [(0, 5, 'p0012'), (14, 16, '宋华')]
    """

    def __init__(self, values: Iterable[str]) -> None:
        self._values = sorted({_fold(" ".join(v.split())) for v in values if v.strip()})
        self._pattern = re.compile(_trie_regex(self._values)) if self._values else None

    def __len__(self) -> int:
        return len(self._values)

    def finditer(self, text: str) -> Iterator[tuple[int, int, str]]:
        """``(start, end, matched text)`` of non-overlapping matches, left to right."""
        if self._pattern is None:
            return
        folded = _fold(text)
        search = self._pattern.search
        found = search(folded)
        while found is not None:
            start, end = found.span()
            if _bounded(folded, start, end, folded[start:end]):
                yield start, end, text[start:end]
                found = search(folded, end)
            else:
                found = search(folded, start + 1)


def _trie_regex(values: Sequence[str]) -> str:
    """A regex matching exactly ``values``, longest first at each position (a prefix tree of groups)."""
    root: dict[str, Any] = {}
    for value in values:
        node = root
        for ch in value:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = []
        for ch in sorted(k for k in node if k):
            child, chain = node[ch], re.escape(ch)
            while len(child) == 1 and "" not in child:  # collapse single-child chains into literals
                ((nxt, child),) = child.items()
                chain += re.escape(nxt)
            branches.append(chain + emit(child))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if ends else body

    return emit(root)


def _fold(text: str) -> str:
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def _bounded(text: str, start: int, end: int, value: str) -> bool:
    if value[0].isascii() and value[0].isalnum() and start > 0:
        before = text[start - 1]
        if (before.isascii() and before.isalnum()) or (before == "." and start > 1 and text[start - 2].isdigit()):
            return False
    if value[-1].isascii() and value[-1].isalnum() and end < len(text):
        after = text[end]
        if (after.isascii() and after.isalnum()) or (after == "." and end + 1 < len(text) and text[end + 1].isdigit()):
            return False
    return True


def long_enough(value: str) -> bool:
    """Worth searching for: 3+ characters of ASCII, 2+ otherwise (Chinese names are two characters)."""
    value = value.strip()
    if not value:
        return False
    return len(value) >= 3 if value.isascii() else len(value) >= 2


def build_lookup(known: Sequence[tuple[str, str, str]]) -> tuple[dict[str, tuple[str, str]], IdentifierIndex]:
    """``(casefolded original -> (replacement, kind), index)`` for ``(original, replacement, kind)`` rows.

    Example
    -------
    >>> table, index = build_lookup([("宋华", "ANON-1", "NAME")])
    >>> table["宋华"], len(index)
    (('ANON-1', 'NAME'), 1)
    """
    table = {value.casefold(): (repl, kind) for value, repl, kind in known}
    return table, IdentifierIndex(v for v, _, _ in known if long_enough(v))


__all__ = ["IdentifierIndex", "build_lookup", "long_enough"]
