"""The runtime's Hungarian method gives SciPy's assignments (the tracker used SciPy's)."""

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment as scipy_assignment

from humanpose.runtime.assignment import linear_sum_assignment


@pytest.mark.parametrize("seed", range(5))
def test_same_assignment_as_scipy_on_random_rectangular_costs(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n, m = rng.integers(1, 15, 2)
        cost = rng.normal(size=(n, m)) * 10
        rows, cols = linear_sum_assignment(cost)
        want_rows, want_cols = scipy_assignment(cost)
        np.testing.assert_array_equal(rows, want_rows)
        np.testing.assert_array_equal(cols, want_cols)


def test_ties_give_an_optimal_assignment_and_empty_or_bad_input():
    rng = np.random.default_rng(9)
    for _ in range(300):
        cost = rng.integers(0, 3, rng.integers(1, 9, 2)).astype(float)
        rows, cols = linear_sum_assignment(cost)
        want_rows, want_cols = scipy_assignment(cost)
        assert len(rows) == min(cost.shape) and len(set(cols.tolist())) == len(cols)
        assert cost[rows, cols].sum() == pytest.approx(cost[want_rows, want_cols].sum())
    rows, cols = linear_sum_assignment(np.zeros((0, 3)))
    assert rows.shape == cols.shape == (0,)
    with pytest.raises(ValueError, match="non-finite"):
        linear_sum_assignment(np.array([[np.inf, 1.0]]))
    with pytest.raises(ValueError, match="2-D"):
        linear_sum_assignment(np.zeros(3))
