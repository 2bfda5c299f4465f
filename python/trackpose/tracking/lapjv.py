"""Sparse linear assignment: TrackMate's Jonker-Volgenant solver, and scipy's as an alternative.

TrackMate solves every LAP with its own sparse Jonker-Volgenant implementation (``costmatrix/LAPJV.java``, after
Jonker & Volgenant 1987 and Jaqaman et al. 2008). When several assignments have the same optimal total cost (spots
on a grid, equidistant neighbours), which one a solver returns depends on its search order, so only the same
algorithm, visiting rows and columns in the same order, gives the same edges as TrackMate. ``solve_jv`` is that
algorithm, step for step, compiled with numba; ``solve_scipy`` uses scipy's
``min_weight_full_bipartite_matching`` (LAPJVsp) and gives an assignment of the same total cost.

Matrices are CSR: ``cc`` (costs), ``kk`` (column of each cost, ascending within a row), ``start`` (first entry of
each row, length n_rows + 1).
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["solve_jv", "solve_scipy", "augmented_matrix"]

_BIG = np.finfo(np.float64).max  # Java's Double.MAX_VALUE


@numba.njit(cache=True)
def _find(kk, lo, hi, j):
    """Index of column j in kk[lo:hi] (sorted), or -1 (Java's Arrays.binarySearch, found or not)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if kk[mid] < j:
            lo = mid + 1
        elif kk[mid] > j:
            hi = mid
        else:
            return mid
    return -1


@numba.njit(cache=True)
def _jv(cc, kk, start, n_rows, n_cols):  # noqa: C901 - a faithful port keeps the original's shape
    x = np.zeros(n_rows, np.int64)
    y = np.zeros(n_cols, np.int64)
    v = np.full(n_cols, _BIG)
    col = np.arange(n_cols)
    # column reduction
    for i in range(n_rows):
        for k in range(start[i], start[i + 1]):
            j = kk[k]
            if cc[k] < v[j]:
                v[j] = cc[k]
                y[j] = i + 1
    for j in range(n_cols - 1, -1, -1):
        i = y[j] - 1
        if x[i] == 0:
            x[i] = j + 1
        else:
            if x[i] > 0:
                x[i] = -x[i]
            y[j] = 0
    # reduction transfer
    f = 0
    free = np.zeros(n_rows, np.int64)
    for i in range(n_rows):
        if x[i] == 0:
            free[f] = i
            f += 1
        elif x[i] < 0:
            x[i] = -x[i]
        else:
            j1 = x[i] - 1
            mn = _BIG
            for k in range(start[i], start[i + 1]):
                j = kk[k]
                if j != j1 and cc[k] - v[j] < mn:
                    mn = cc[k] - v[j]
            v[j1] -= mn
    if f == 0:
        return x - 1
    # augmenting row reduction, twice
    for _ in range(2):
        k = 0
        f0 = f
        f = 0
        while k < f0:
            i = free[k]
            k += 1
            v0 = _BIG
            j0 = 0
            j1 = -1
            vj = _BIG
            for kj in range(start[i], start[i + 1]):
                j = kk[kj]
                h = cc[kj] - v[j]
                if h < vj:
                    if h > v0:
                        vj = h
                        j1 = j
                    else:
                        vj = v0
                        v0 = h
                        j1 = j0
                        j0 = j
            i0 = y[j0] - 1
            if v0 < vj:
                v[j0] -= vj - v0
            elif i0 >= 0:
                j0 = j1
                i0 = y[j1] - 1
            if i0 >= 0:
                if v0 < vj:
                    k -= 1
                    free[k] = i0
                else:
                    free[f] = i0
                    f += 1
            x[i] = j0 + 1
            y[j0] = i + 1
    # augmentation by shortest paths
    f0 = f
    d = np.empty(n_cols)
    pred = np.zeros(n_cols, np.int64)
    for f in range(f0):
        i1 = free[f]
        low = 0
        up = 0
        d[:] = _BIG
        for k in range(start[i1], start[i1 + 1]):
            j = kk[k]
            d[j] = cc[k] - v[j]
            pred[j] = i1
        last = 0
        j = -1
        mn = _BIG
        found = False
        while True:
            last = low
            mn = d[col[up]]
            up += 1
            for k in range(up, n_cols):
                j = col[k]
                h = d[j]
                if h <= mn:
                    if h < mn:
                        up = low
                        mn = h
                    col[k] = col[up]
                    col[up] = j
                    up += 1
            for hh in range(low, up):
                j = col[hh]
                if y[j] == 0:
                    found = True
                    break
            if found:
                break
            while True:
                j1 = col[low]
                low += 1
                i = y[j1] - 1
                kj1 = _find(kk, start[i], start[i + 1], j1)
                if kj1 >= 0:
                    u1 = cc[kj1] - v[j1] - mn
                    for k in range(up, n_cols):
                        j = col[k]
                        kj = _find(kk, start[i], start[i + 1], j)
                        if kj < 0:
                            continue
                        h = cc[kj] - v[j] - u1
                        if h < d[j]:
                            d[j] = h
                            pred[j] = i
                            if h == mn:
                                if y[j] == 0:
                                    found = True
                                    break
                                col[k] = col[up]
                                col[up] = j
                                up += 1
                    if found:
                        break
                if low == up:
                    break
            if found:
                break
        for k in range(last):
            j0 = col[k]
            v[j0] += d[j0] - mn
        while True:
            i = pred[j]
            y[j] = i + 1
            k = j
            j = x[i] - 1
            x[i] = k + 1
            if i == i1:
                break
    return x - 1


def solve_jv(cc, kk, start, n_cols: int) -> np.ndarray:
    """Row -> assigned column of a square sparse cost matrix, by TrackMate's LAPJV (same ties, same result).

    Costs must be strictly positive and every row and column must have an entry (as in TrackMate's augmented
    matrices, which always have a full assignment).
    """
    start = np.asarray(start, np.int64)
    return _jv(np.asarray(cc, np.float64), np.asarray(kk, np.int64), start, len(start) - 1, int(n_cols))


def solve_scipy(cc, kk, start, n_cols: int) -> np.ndarray:
    """Row -> assigned column by scipy's ``min_weight_full_bipartite_matching`` (an optimum; ties may differ)."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import min_weight_full_bipartite_matching
    start = np.asarray(start, np.int64)
    matrix = csr_matrix((np.asarray(cc, np.float64), np.asarray(kk), start), shape=(len(start) - 1, int(n_cols)))
    rows, cols = min_weight_full_bipartite_matching(matrix)
    out = np.full(len(start) - 1, -1, np.int64)
    out[rows] = cols
    return out


def augmented_matrix(rows, cols, costs, n_rows: int, n_cols: int, alternative: float):
    """TrackMate's LAP matrix ``[[C, alt I], [alt I, C^T pattern filled with alt]]`` (``JaqamanLinker``) as CSR.

    ``rows``, ``cols``, ``costs``: the candidate links (row < n_rows, col < n_cols, unique pairs).
    Returns ``(cc, kk, start, size)``; the matrix is (n_rows + n_cols) square.
    """
    rows = np.asarray(rows, np.int64)
    cols = np.asarray(cols, np.int64)
    costs = np.asarray(costs, np.float64)
    n = n_rows + n_cols
    # top: C then alt on the diagonal of the top-right block; bottom: alt diagonal, then C^T's pattern
    top_r = np.concatenate([rows, np.arange(n_rows)])
    top_c = np.concatenate([cols, n_cols + np.arange(n_rows)])
    top_v = np.concatenate([costs, np.full(n_rows, alternative)])
    bot_r = np.concatenate([n_rows + np.arange(n_cols), n_rows + cols])
    bot_c = np.concatenate([np.arange(n_cols), n_cols + rows])
    bot_v = np.full(n_cols + len(rows), alternative)
    r = np.concatenate([top_r, bot_r])
    c = np.concatenate([top_c, bot_c])
    val = np.concatenate([top_v, bot_v])
    order = np.lexsort((c, r))
    r, c, val = r[order], c[order], val[order]
    start = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(r, minlength=n), out=start[1:])
    return val, c, start, n
