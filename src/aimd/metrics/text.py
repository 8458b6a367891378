"""Span / entity extraction metrics: precision, recall and F1 with exact or overlap matching.

000 App. A.10.3 (formulas A.9–A.11) for text-processing models; 001 §9.2 d for text-label
consistency. A span is a half-open character range ``[start, end)`` with a label.

Matching rules (stated in every output):

* ``exact`` — a predicted span is a true positive when a reference span has the same start,
  end and label (each reference span counted once);
* ``overlap`` — predicted and reference spans of the same label that share at least one
  character may pair; TP is the size of a *maximum* one-to-one pairing (bipartite matching), so
  one long prediction covering two reference spans counts once.

Micro averages pool counts over labels (and documents); macro averages are the mean over labels
that occur in the reference or the prediction. A ratio with a zero denominator is 0, except that
precision, recall and F1 are all 1 when both reference and prediction are empty.

Example
-------
>>> ref = [(0, 5, "DRUG"), (10, 14, "DOSE")]
>>> pred = [(0, 5, "DRUG"), (10, 13, "DOSE")]
>>> span_scores(ref, pred, mode="exact").micro.f1, span_scores(ref, pred, mode="overlap").micro.f1
(0.5, 1.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from aimd.core.errors import InvalidInputError

__all__ = [
    "PRF",
    "Span",
    "SpanScores",
    "as_spans",
    "count_matches",
    "span_scores",
]

MatchMode = Literal["exact", "overlap"]


@dataclass(frozen=True, order=True)
class Span:
    """A labelled half-open character range ``[start, end)``."""

    start: int
    end: int
    label: str = ""

    def __post_init__(self) -> None:
        if self.start < 0 or self.end <= self.start:
            raise InvalidInputError(f"span needs 0 <= start < end, got [{self.start}, {self.end})")

    def overlaps(self, other: Span) -> bool:
        """True when the two ranges share at least one character."""
        return self.start < other.end and other.start < self.end


def as_spans(items: Iterable[Any], name: str = "spans") -> list[Span]:
    """Spans from tuples ``(start, end[, label])``, mappings with start/end/label keys, or Span objects.

    Examples
    --------
    >>> as_spans([(0, 3, "A"), {"start": 5, "end": 7, "label": "B"}])
    [Span(start=0, end=3, label='A'), Span(start=5, end=7, label='B')]
    """
    out = []
    for i, item in enumerate(items):
        try:
            if isinstance(item, Span):
                out.append(item)
            elif isinstance(item, Mapping):
                out.append(Span(int(item["start"]), int(item["end"]), str(item.get("label", ""))))
            else:
                seq = list(item)
                out.append(Span(int(seq[0]), int(seq[1]), str(seq[2]) if len(seq) > 2 else ""))
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise InvalidInputError(f"{name}[{i}] is not a span (start, end, label): {item!r}") from err
        except InvalidInputError as err:
            raise InvalidInputError(f"{name}[{i}]: {err.message}") from err
    return out


def count_matches(ref: Sequence[Span], pred: Sequence[Span], mode: MatchMode = "exact") -> int:
    """Number of one-to-one matched (reference, prediction) pairs under ``mode``.

    Examples
    --------
    >>> count_matches([Span(0, 4, "X"), Span(6, 9, "X")], [Span(0, 9, "X")], "overlap")
    1
    """
    if mode == "exact":
        remaining: dict[Span, int] = {}
        for s in ref:
            remaining[s] = remaining.get(s, 0) + 1
        hits = 0
        for s in pred:
            if remaining.get(s, 0) > 0:
                remaining[s] -= 1
                hits += 1
        return hits
    if mode != "overlap":
        raise InvalidInputError(f"mode must be 'exact' or 'overlap', got {mode!r}")
    if not ref or not pred:
        return 0
    rows, cols = [], []
    for i, r in enumerate(ref):
        for j, p in enumerate(pred):
            if r.label == p.label and r.overlaps(p):
                rows.append(i)
                cols.append(j)
    if not rows:
        return 0
    graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(ref), len(pred)))
    return int(np.count_nonzero(maximum_bipartite_matching(graph, perm_type="column") >= 0))


@dataclass(frozen=True)
class PRF:
    """Counts and precision / recall / F1 (000 A.9–A.11)."""

    tp: int
    n_ref: int
    n_pred: int

    @property
    def precision(self) -> float:
        """TP / (TP + FP) = TP / predicted spans (A.9)."""
        if self.n_pred == 0:
            return 1.0 if self.n_ref == 0 else 0.0
        return self.tp / self.n_pred

    @property
    def recall(self) -> float:
        """TP / (TP + FN) = TP / reference spans (A.10)."""
        if self.n_ref == 0:
            return 1.0 if self.n_pred == 0 else 0.0
        return self.tp / self.n_ref

    @property
    def f1(self) -> float:
        """2PR / (P + R) (A.11)."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values."""
        return {
            "tp": self.tp,
            "fp": self.n_pred - self.tp,
            "fn": self.n_ref - self.tp,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


@dataclass(frozen=True)
class SpanScores:
    """Per-label and micro/macro span scores."""

    mode: str
    per_label: dict[str, PRF] = field(default_factory=dict)

    @property
    def micro(self) -> PRF:
        """Counts pooled over labels."""
        vals = self.per_label.values()
        return PRF(sum(v.tp for v in vals), sum(v.n_ref for v in vals), sum(v.n_pred for v in vals))

    @property
    def macro_f1(self) -> float:
        """Mean F1 over labels (1.0 when there are no labels at all)."""
        return float(np.mean([v.f1 for v in self.per_label.values()])) if self.per_label else 1.0

    def merged(self, other: SpanScores) -> SpanScores:
        """Counts of two document sets added together."""
        if other.mode != self.mode:
            raise InvalidInputError(f"cannot pool {self.mode} and {other.mode} matching")
        labels = set(self.per_label) | set(other.per_label)
        zero = PRF(0, 0, 0)
        return SpanScores(
            self.mode,
            {
                k: PRF(
                    self.per_label.get(k, zero).tp + other.per_label.get(k, zero).tp,
                    self.per_label.get(k, zero).n_ref + other.per_label.get(k, zero).n_ref,
                    self.per_label.get(k, zero).n_pred + other.per_label.get(k, zero).n_pred,
                )
                for k in sorted(labels)
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values with the stated matching rule."""
        rule = (
            "same start, end and label"
            if self.mode == "exact"
            else "same label and >= 1 shared character; maximum one-to-one pairing"
        )
        return {
            "mode": self.mode,
            "rule": rule,
            "micro": self.micro.to_dict(),
            "macro_f1": self.macro_f1,
            "per_label": {k: v.to_dict() for k, v in self.per_label.items()},
        }


def span_scores(ref: Iterable[Any], pred: Iterable[Any], mode: MatchMode = "exact") -> SpanScores:
    """Precision, recall and F1 of predicted spans against reference spans of one document.

    Examples
    --------
    >>> s = span_scores([(0, 4, "A"), (5, 8, "B")], [(0, 4, "A"), (5, 8, "A")])
    >>> s.per_label["A"].precision, s.per_label["B"].recall
    (0.5, 0.0)
    """
    if mode not in ("exact", "overlap"):
        raise InvalidInputError(f"mode must be 'exact' or 'overlap', got {mode!r}")
    r, p = as_spans(ref, "reference"), as_spans(pred, "prediction")
    labels = sorted({s.label for s in r} | {s.label for s in p})
    per_label = {}
    for label in labels:
        rl = [s for s in r if s.label == label]
        pl = [s for s in p if s.label == label]
        per_label[label] = PRF(count_matches(rl, pl, mode), len(rl), len(pl))
    return SpanScores(mode, per_label)
