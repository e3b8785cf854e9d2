"""Minimum-cost assignment (the Hungarian method) in NumPy, so the tracker needs no SciPy.

:func:`linear_sum_assignment` takes and returns what ``scipy.optimize.linear_sum_assignment``
does for finite costs: row indices in increasing order and the column of each, one per row
of the smaller side. The method is the shortest-augmenting-path form with row and column
potentials, O(n² m) with the inner scan over columns vectorised; a tracker's matrices are a
few dozen people wide.
"""

from __future__ import annotations

import numpy as np

__all__ = ["linear_sum_assignment"]


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the assignment of least total ``cost`` ``(n, m)``."""
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"the cost matrix must be 2-D, got shape {cost.shape}")
    if cost.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if not np.isfinite(cost).all():
        raise ValueError("the cost matrix has non-finite entries")
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    n, m = cost.shape
    # The common tracking case, people apart: each row's cheapest column is its own, and
    # no assignment can cost less than every row at its minimum (strict minima only, so
    # that ties are left to the method below).
    order = np.argsort(cost, axis=1, kind="stable")
    best = order[:, 0]
    rows_range = np.arange(n)
    strict = m == 1 or bool((cost[rows_range, best] < cost[rows_range, order[:, 1]]).all())
    if strict and np.bincount(best, minlength=m).max() == 1:
        rows, cols = (best, rows_range) if transposed else (rows_range, best)
        order = np.argsort(rows, kind="stable")
        return rows[order].astype(np.int64), cols[order].astype(np.int64)
    u = np.zeros(n + 1)  # row potentials (1-based; 0 unused)
    v = np.zeros(m + 1)  # column potentials; column 0 is the augmenting path's root
    owner = np.zeros(m + 1, dtype=np.int64)  # the row (1-based) holding each column, 0: free
    way = np.zeros(m + 1, dtype=np.int64)
    for row in range(1, n + 1):
        owner[0] = row
        col = 0
        slack = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, dtype=bool)
        while True:
            used[col] = True
            i = owner[col]
            reduced = cost[i - 1] - u[i] - v[1:]
            free = ~used[1:]
            better = free & (reduced < slack[1:])
            slack[1:][better] = reduced[better]
            way[1:][better] = col
            candidates = np.where(free, slack[1:], np.inf)
            nearest = int(np.argmin(candidates)) + 1
            delta = candidates[nearest - 1]
            held = np.nonzero(used)[0]
            u[owner[held]] += delta
            v[held] -= delta
            slack[1:][free] -= delta
            col = nearest
            if owner[col] == 0:
                break
        while col:  # flip the path's edges: each column goes to the row before it
            previous = way[col]
            owner[col] = owner[previous]
            col = previous
    cols = np.nonzero(owner[1:])[0]
    rows = owner[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows, kind="stable")
    return rows[order].astype(np.int64), cols[order].astype(np.int64)
