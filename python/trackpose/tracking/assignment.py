"""The sparse linear assignment problems of TrackMate's LAP tracker, solved by scipy.

TrackMate (``JaqamanLinker``) poses each LAP as the square matrix ``[[C, alt I], [alt I, B]]``: ``C`` holds the
candidate link costs (rows = sources, columns = targets), each row and each column may instead take its
alternative (no-link) cost on the diagonals, and ``B`` (the pattern of ``C``'s transpose, every entry ``alt``)
lets the dummies of linked rows and columns pair up. A full assignment always exists.

The optimum is found by scipy's ``min_weight_full_bipartite_matching`` (LAPJVsp, a sparse Jonker-Volgenant
solver). Where the optimum is unique, which is the rule for measured positions, it is TrackMate's assignment.
Where several assignments have the same optimal total cost (equidistant candidates, e.g. spots on an integer
grid), any solver returns one of them, and which one depends on its search order: ours may then differ from
TrackMate's while being equally optimal.

Matrices are CSR: ``cc`` (costs), ``kk`` (column of each cost, ascending within a row), ``start`` (first entry of
each row, length n_rows + 1).
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

__all__ = ["augmented_matrix", "solve"]


def solve(cc, kk, start, n_cols: int) -> np.ndarray:
    """Row -> assigned column of a minimum-cost full assignment of the square sparse matrix (scipy LAPJVsp).

    Costs must be > 0 and a full assignment must exist (TrackMate's augmented matrices always have one).
    """
    start = np.asarray(start, np.int64)
    n_rows = len(start) - 1
    matrix = csr_matrix((np.asarray(cc, np.float64), np.asarray(kk, np.int64), start), shape=(n_rows, int(n_cols)))
    rows, cols = min_weight_full_bipartite_matching(matrix)
    out = np.full(n_rows, -1, np.int64)
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
