"""Track bookkeeping over an edge list: track ids (connected components) and CTC tracklets."""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .lap import Edges
from .spots import Spots

__all__ = ["track_ids", "tracklets"]


def track_ids(n_spots: int, edges: Edges) -> np.ndarray:
    """Track id (1, 2, ...) of every spot: connected components, numbered in order of their first spot row.

    A spot with no link is a track of its own (TrackMate leaves it out of its track list; the tables and the
    tracked label movie keep it).
    """
    if n_spots == 0:
        return np.zeros(0, np.int64)
    graph = coo_matrix((np.ones(len(edges)), (edges.source, edges.target)), shape=(n_spots, n_spots))
    _, comp = connected_components(graph, directed=False)
    _, first = np.unique(comp, return_index=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first)] = np.arange(1, len(first) + 1)
    return rank[comp]


def tracklets(spots: Spots, edges: Edges):
    """CTC tracklets: label per spot and ``[(label, first frame, last frame, parent)]``.

    A tracklet continues from a spot to its single successor in the next frame when that successor has no other
    predecessor. A division (2+ successors), a gap (successor more than 1 frame later) or a merge (2+
    predecessors) starts new tracklets whose parent is the tracklet before (for a merge, the one with the cheapest
    link; CTC has no merges).
    """
    n = len(spots)
    out_deg = np.bincount(edges.source, minlength=n)
    preds: dict[int, list] = {}
    for s, t, c in zip(edges.source.tolist(), edges.target.tolist(), edges.cost.tolist()):
        preds.setdefault(t, []).append((c, s))
    label = np.zeros(n, np.int64)
    rows = []  # [label, begin, end, parent]
    for k in np.lexsort((np.arange(n), spots.frame)):
        k = int(k)
        p = sorted(preds.get(k, []))
        frame = int(spots.frame[k])
        if len(p) == 1 and out_deg[p[0][1]] == 1 and frame - int(spots.frame[p[0][1]]) == 1:
            label[k] = label[p[0][1]]
            rows[label[k] - 1][2] = frame
            continue
        parent = int(label[p[0][1]]) if p else 0
        rows.append([len(rows) + 1, frame, frame, parent])
        label[k] = len(rows)
    return label, [tuple(r) for r in rows]
