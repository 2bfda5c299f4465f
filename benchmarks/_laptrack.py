"""laptrack's LAP tracker on trackpose's spots, as the benchmarks compare it (laptrack is a test extra).

    edges, seconds = predict_edges(lt, spots, ndim)

``lt`` is a configured ``laptrack.LapTrack``; its tree's edges become trackpose ``Edges`` between spot rows (source
in the earlier frame); ``seconds`` is the time of ``lt.predict`` alone.
"""
from __future__ import annotations

import time

import numpy as np

from trackpose.tracking.lap import Edges


def predict_edges(lt, spots, ndim: int):
    n_frames = int(spots.frame.max()) + 1 if len(spots.frame) else 0
    index = [np.flatnonzero(spots.frame == t) for t in range(n_frames)]
    coords = [spots.position[i][:, :ndim] for i in index]
    t0 = time.perf_counter()
    tree = lt.predict(coords)
    elapsed = time.perf_counter() - t0
    src, tgt = [], []
    for (f1, i1), (f2, i2) in tree.edges():
        a, b = index[f1][i1], index[f2][i2]
        if f1 > f2:
            a, b = b, a
        src.append(a)
        tgt.append(b)
    return Edges(np.array(src, np.int64), np.array(tgt, np.int64), np.zeros(len(src))), elapsed
