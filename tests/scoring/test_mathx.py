"""NNLS and Spearman, exact, against scipy's references (test-only dependency)."""

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import nnls as scipy_nnls
from scipy.stats import spearmanr

from scoring import mathx


def test_nnls_on_a_small_problem_worked_out_by_hand():
    # Unconstrained least squares of b on [1, 0], [0, 1], [1, 1] with b = (1, -1, 0) is (1, -1)
    # with a negative weight; NNLS sets the second to 0, then x1 minimises (x-1)² + 1 + x²:
    # x1 = 1/2.
    a = [[1, 0], [0, 1], [1, 1]]
    assert mathx.nnls(a, [1, -1, 0]) == [Fraction(1, 2), Fraction(0)]


def test_nnls_recovers_exact_non_negative_weights():
    a = [[1, 2, 3, 4], [2, 0, 1, 5], [3, 1, 0, 2], [4, 4, 1, 0], [0, 1, 2, 1], [5, 3, 3, 3]]
    weights = [Fraction(1, 4), Fraction(0), Fraction(3, 5), Fraction(7, 20)]
    b = [sum(w * v for w, v in zip(weights, row, strict=True)) for row in a]
    assert mathx.nnls(a, b) == weights


@settings(max_examples=300, deadline=None)
@given(
    data=st.integers(min_value=1, max_value=4).flatmap(
        lambda n: st.tuples(
            st.lists(
                st.lists(st.integers(-100, 100), min_size=n, max_size=n),
                min_size=n + 1,
                max_size=12,
            ),
            st.lists(st.integers(-100, 100), min_size=12, max_size=12),
        )
    )
)
def test_nnls_agrees_with_scipy(data):
    rows, rhs = data
    b = rhs[: len(rows)]
    a_float = np.array(rows, dtype=float)
    if np.linalg.matrix_rank(a_float) < a_float.shape[1]:
        return  # scipy's answer is one of many; the residual check below covers uniqueness
    ours = mathx.nnls(rows, b)
    theirs, _ = scipy_nnls(a_float, np.array(b, dtype=float))
    assert all(x >= 0 for x in ours)
    assert [float(x) for x in ours] == pytest.approx(list(theirs), abs=1e-6)


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), min_size=2, max_size=25))
def test_spearman_agrees_with_scipy_ties_included(pairs):
    x = [p[0] for p in pairs]
    y = [p[1] for p in pairs]
    ours = mathx.spearman(x, y)
    if len(set(x)) < 2 or len(set(y)) < 2:
        assert ours is None
        return
    theirs = spearmanr(x, y).statistic
    assert float(ours) == pytest.approx(theirs, abs=1e-4)


def test_spearman_of_a_perfect_and_a_reversed_ranking():
    assert mathx.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == Decimal("1.0000")
    assert mathx.spearman([1, 2, 3, 4], [40, 30, 20, 10]) == Decimal("-1.0000")
    # d = (0, 0, 1, -1): 1 - 6 * 2 / (4 * 15) = 0.8
    assert mathx.spearman([1, 2, 3, 4], [1, 2, 4, 3]) == Decimal("0.8000")
    assert mathx.spearman([1], [2]) is None
