"""Span precision/recall/F1 (000 A.10.3) against brute-force matching."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aimd.core.errors import InvalidInputError
from aimd.metrics import Span, TextAccumulator, span_scores
from aimd.metrics.text import count_matches


def _brute_max_matching(ref: list[Span], pred: list[Span]) -> int:
    """Largest set of disjoint overlapping same-label pairs, by trying every assignment."""
    best = 0
    for k in range(min(len(ref), len(pred)), 0, -1):
        for rs in itertools.combinations(range(len(ref)), k):
            for ps in itertools.permutations(range(len(pred)), k):
                pairs = zip(rs, ps, strict=True)
                if all(ref[i].label == pred[j].label and ref[i].overlaps(pred[j]) for i, j in pairs):
                    return k
    return best


spans = st.lists(
    st.tuples(st.integers(0, 30), st.integers(1, 8), st.sampled_from(["A", "B"])).map(
        lambda t: Span(t[0], t[0] + t[1], t[2])
    ),
    max_size=5,
)


@settings(max_examples=80, deadline=None)
@given(ref=spans, pred=spans)
def test_overlap_is_maximum_matching_exact_is_intersection(ref: list[Span], pred: list[Span]) -> None:
    assert count_matches(ref, pred, "overlap") == _brute_max_matching(ref, pred)
    exact = sum(min(ref.count(s), pred.count(s)) for s in set(ref))
    assert count_matches(ref, pred, "exact") == exact
    s = span_scores(ref, pred, "overlap").micro
    assert 0.0 <= s.precision <= 1.0 and 0.0 <= s.recall <= 1.0
    assert span_scores(ref, pred, "exact").micro.tp <= s.tp


def test_formulas_a9_to_a11() -> None:
    ref = [(0, 5, "DRUG"), (10, 14, "DOSE"), (20, 25, "DRUG")]
    pred = [(0, 5, "DRUG"), (10, 12, "DOSE"), (30, 33, "DRUG"), (40, 44, "DOSE")]
    exact = span_scores(ref, pred, "exact").micro
    assert (exact.tp, exact.precision, exact.recall) == (1, 1 / 4, 1 / 3)
    assert exact.f1 == pytest.approx(2 * (1 / 4) * (1 / 3) / (1 / 4 + 1 / 3))
    overlap = span_scores(ref, pred, "overlap")
    assert overlap.micro.tp == 2
    assert overlap.per_label["DOSE"].recall == 1.0 and overlap.per_label["DRUG"].recall == 0.5


def test_one_long_prediction_covering_two_references_counts_once() -> None:
    s = span_scores([(0, 4, "X"), (6, 9, "X")], [(0, 9, "X")], "overlap").micro
    assert (s.tp, s.precision, s.recall) == (1, 1.0, 0.5)


def test_accumulator_pools_documents() -> None:
    acc = TextAccumulator("exact")
    acc.update([(0, 3, "A")], [(0, 3, "A")])
    acc.update([(0, 3, "A"), (5, 7, "B")], [(1, 3, "A")])
    out = acc.aggregate()
    assert out["n_documents"] == 2
    assert out["micro"]["tp"] == 1 and out["micro"]["fn"] == 2 and out["micro"]["fp"] == 1
    assert np.isclose(out["micro"]["precision"], 0.5)


def test_empty_and_bad_spans() -> None:
    assert span_scores([], [], "exact").micro.f1 == 1.0
    assert span_scores([(0, 2, "A")], [], "exact").micro.f1 == 0.0
    with pytest.raises(InvalidInputError, match=r"prediction\[0\]"):
        span_scores([], [(5, 3, "A")])
    with pytest.raises(InvalidInputError, match="mode"):
        span_scores([], [], "fuzzy")  # type: ignore[arg-type]
