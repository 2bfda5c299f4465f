"""TrackMate's LAP tracker (``SparseLAPTracker``, Jaqaman et al. 2008), same keys, defaults and edges.

Two steps, as TrackMate 8 runs them (``tracking/jaqaman/``):

1. **Frame to frame.** For each pair of consecutive frames that hold spots (not necessarily 1 apart), candidate
   links are pairs with cost < LINKING_MAX_DISTANCE²; one LAP per pair, with the alternative (no-link) cost
   ALTERNATIVE_LINKING_COST_FACTOR x the largest candidate cost.
2. **Segments.** The linked chains with >= 2 spots are segments (a spot left alone in step 1 stays alone). One LAP
   over all candidate gap closings (end -> start, 1 <= frame gap <= MAX_FRAME_GAP), merges (end -> a middle spot,
   1 frame later) and splits (a middle spot -> start, 1 frame later), each kept when cost <= its max distance²; the
   alternative cost is the factor x the CUTOFF_PERCENTILE of all candidate costs.

A cost is the squared distance (0 becomes the smallest normal double), times (1 + sum_f 1.5 w_f |a-b| / ((a+b)/2))²
with feature penalties; the max-distance tests apply to that cost. Edge weight = the link's cost.

**Overlap cost** (``lap_track(..., overlaps=...)``, trackpose's own, not TrackMate's): the same two steps, the same
candidates (gated by the same max distances) and alternative-cost rules, but a candidate costs
``(1 - IoU) + (d / D)²`` (times the same penalty factor), IoU = shared pixels / voxels of the two objects' masks
(``overlap.LabelOverlaps``, also across a gap), d their distance, D the step's max distance. Mask overlap
decides; distance only ranks candidates that overlap equally (often: not at all).

Each LAP is TrackMate's augmented matrix solved by scipy's sparse Jonker-Volgenant (``assignment``). Where the
optimum is unique the edges are TrackMate's; on exact ties (equidistant candidates) they may differ from
TrackMate's while having the same number of links and the same total cost.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
import math

import numpy as np
from scipy.spatial import cKDTree

from ..errors import InputError
from .assignment import augmented_matrix, solve
from .lap_settings import TRACKER_KEYS, LAPSettings
from .spots import Spots

__all__ = ["LAPSettings", "lap_track", "link_frames", "link_segments", "Edges", "TRACKER_KEYS"]

_MIN_NORMAL = float(np.finfo(np.float64).tiny)  # Java's Double.MIN_NORMAL

@dataclass
class Edges:
    """Links between spots: ``source`` (earlier frame) and ``target`` row indices, ``cost`` = TrackMate's weight."""

    source: np.ndarray
    target: np.ndarray
    cost: np.ndarray

    def __len__(self) -> int:
        return len(self.source)

    def pairs(self) -> set:
        return set(zip(self.source.tolist(), self.target.tolist()))


def _costs(spots: Spots, src, tgt, penalties: dict, overlaps=None, max_distance: float = 1.0) -> np.ndarray:
    """TrackMate's linking cost of the pairs (src[k], tgt[k]), with the same floating-point operations; with
    ``overlaps``, the overlap cost (1 - IoU) + (d / max_distance)² instead of d²."""
    a, b = spots.position[src], spots.position[tgt]
    d = a - b
    cost = d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] + d[:, 2] * d[:, 2]
    cost = np.where(cost == 0, _MIN_NORMAL, cost)
    if overlaps is not None:
        cost = (1.0 - overlaps.iou(src, tgt)) + cost / (max_distance * max_distance)
        cost = np.maximum(cost, _MIN_NORMAL)  # the solver needs costs > 0
    if penalties:
        penalty = np.ones(len(src))
        for name, weight in penalties.items():
            values = spots.feature(name)
            fa, fb = values[src], values[tgt]
            with np.errstate(divide="ignore", invalid="ignore"):
                ndiff = np.where(fa == -fb, 0.0, np.abs(fa - fb) / ((fa + fb) / 2))
            term = (float(weight) * 1.5) * ndiff
            penalty = np.where(np.isnan(ndiff), penalty, penalty + term)
        cost = cost * penalty * penalty
    return cost


def _pairs_within(spots: Spots, sources: np.ndarray, targets: np.ndarray, max_distance: float):
    """Candidate (source, target) pairs closer than max_distance (a superset of cost <= max_distance²)."""
    if len(sources) == 0 or len(targets) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    radius = max_distance * (1 + 1e-9) + 1e-12
    tree_s = cKDTree(spots.position[sources])
    tree_t = cKDTree(spots.position[targets])
    found = tree_s.query_ball_tree(tree_t, radius)
    counts = np.fromiter((len(f) for f in found), np.int64, len(found))
    i = np.repeat(np.arange(len(sources)), counts)
    j = np.fromiter((k for f in found for k in f), np.int64, int(counts.sum()))
    return sources[i], targets[j]


def _java_percentile(values: np.ndarray, p: float) -> float:
    """imglib2 ``Util.percentile``: the sorted value at Math.round((n - 1) p)."""
    n = len(values)
    pos = min(n - 1, max(0, int(math.floor((n - 1) * p + 0.5))))
    return float(np.partition(values, pos)[pos])


def _solve(src, tgt, cost, alternative: float):
    """One TrackMate LAP (``JaqamanLinker``): rows/cols = unique spots by ID; returns the chosen (src, tgt, cost)."""
    rows, r = np.unique(src, return_inverse=True)
    cols, c = np.unique(tgt, return_inverse=True)
    cc, kk, start, n = augmented_matrix(r, c, cost, len(rows), len(cols), alternative)
    assign = solve(cc, kk, start, n)
    chosen = np.nonzero((assign[: len(rows)] >= 0) & (assign[: len(rows)] < len(cols)))[0]
    keys = r * len(cols) + c
    order = np.argsort(keys, kind="stable")
    out_cost = cost[order[np.searchsorted(keys[order], chosen * len(cols) + assign[chosen])]]
    return rows[chosen], cols[assign[chosen]], out_cost


def link_frames(spots: Spots, s: LAPSettings, progress=None, overlaps=None) -> Edges:
    """Step 1 (TrackMate's ``SparseLAPFrameToFrameTracker``): one LAP per pair of consecutive frames."""
    frames = np.unique(spots.frame)
    by_frame = {int(f): np.nonzero(spots.frame == f)[0] for f in frames}
    threshold = s.linking_max_distance * s.linking_max_distance
    out = []
    for k, (f0, f1) in enumerate(zip(frames[:-1], frames[1:])):
        src, tgt = _pairs_within(spots, by_frame[int(f0)], by_frame[int(f1)], s.linking_max_distance)
        if overlaps is not None:  # gate on the distance, cost from the overlap
            d2 = _costs(spots, src, tgt, {})
            src, tgt = src[d2 < threshold], tgt[d2 < threshold]
        cost = _costs(spots, src, tgt, s.linking_feature_penalties, overlaps, s.linking_max_distance)
        keep = cost < threshold if overlaps is None else np.ones(len(cost), bool)
        src, tgt, cost = src[keep], tgt[keep], cost[keep]
        if len(cost):
            out.append(_solve(src, tgt, cost, s.alternative_linking_cost_factor * float(cost.max())))
        if progress:
            progress(k + 1, len(frames) - 1)
    return _concat(out)


def _concat(parts) -> Edges:
    if not parts:
        return Edges(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    return Edges(*(np.concatenate([p[i] for p in parts]) for i in range(3)))


def _segments(n: int, edges: Edges):
    """Starts, ends and middle spots of the step-1 chains with >= 2 spots."""
    nxt = np.full(n, -1, np.int64)
    prv = np.full(n, -1, np.int64)
    nxt[edges.source] = edges.target
    prv[edges.target] = edges.source
    starts = np.nonzero((prv < 0) & (nxt >= 0))[0]
    ends = np.nonzero((nxt < 0) & (prv >= 0))[0]
    middles = np.nonzero((prv >= 0) & (nxt >= 0))[0]
    return starts, ends, middles


def _gated(spots: Spots, sources, targets, dframe, max_distance: float, penalties: dict, overlaps=None):
    """Candidates from sources to targets ``dframe`` (a set of allowed frame differences) later, cost <= D²
    (with ``overlaps``: distance <= D, overlap cost)."""
    src, tgt = _pairs_within(spots, sources, targets, max_distance)
    gap = spots.frame[tgt] - spots.frame[src]
    keep = np.isin(gap, list(dframe))
    src, tgt = src[keep], tgt[keep]
    if overlaps is not None:
        keep = _costs(spots, src, tgt, {}) <= max_distance * max_distance
        src, tgt = src[keep], tgt[keep]
        return src, tgt, _costs(spots, src, tgt, penalties, overlaps, max_distance)
    cost = _costs(spots, src, tgt, penalties)
    keep = cost <= max_distance * max_distance
    return src[keep], tgt[keep], cost[keep]


def link_segments(spots: Spots, step1: Edges, s: LAPSettings, overlaps=None) -> Edges:
    """Step 2 (TrackMate's ``SegmentTracker``): one LAP over the gap closings, merges and splits of the segments
    that ``step1``'s links form; returns the new links only."""
    if not (s.allow_gap_closing or s.allow_track_splitting or s.allow_track_merging):
        return _concat([])
    starts, ends, middles = _segments(len(spots), step1)
    parts = []
    if s.allow_gap_closing:
        parts.append(_gated(spots, ends, starts, range(1, s.max_frame_gap + 1), s.gap_closing_max_distance,
                            s.gap_closing_feature_penalties, overlaps))
    if s.allow_track_merging:
        parts.append(_gated(spots, ends, middles, (1,), s.merging_max_distance, s.merging_feature_penalties,
                            overlaps))
    if s.allow_track_splitting:
        parts.append(_gated(spots, middles, starts, (1,), s.splitting_max_distance, s.splitting_feature_penalties,
                            overlaps))
    cand = _concat(parts)
    if len(cand) == 0:
        return cand
    p = s.cutoff_percentile
    base = float(cand.cost.max()) if p == 1 else _java_percentile(cand.cost, p)
    return _concat([_solve(cand.source, cand.target, cand.cost, s.alternative_linking_cost_factor * base)])


def lap_track(spots: Spots, settings: LAPSettings | None = None, *, progress=None, overlaps=None,
              **overrides) -> Edges:
    """Link spots as TrackMate's LAP tracker does; returns the edges (source = earlier frame).

    Parameters
    ----------
    spots : Spots
        Row order = spot ID order (the row and column order of each LAP, as in TrackMate).
    settings : LAPSettings, optional
        Default: TrackMate's defaults; ``overrides`` (snake-case keys, e.g. ``linking_max_distance=10``) replace
        single values.
    progress : callable(done, total), optional
        Called after each frame pair of step 1.
    overlaps : overlap.LabelOverlaps, optional
        The objects' mask overlaps (``LabelOverlaps.from_labels``): links then cost (1 - IoU) + (d / D)², with
        the distance D as the gate (see the module's notes). Not TrackMate's (its LAP knows positions only).
    """
    s = LAPSettings(**{**asdict(settings or LAPSettings()), **overrides})
    for penalties in (s.linking_feature_penalties, s.gap_closing_feature_penalties,
                      s.splitting_feature_penalties, s.merging_feature_penalties):
        for name in penalties:
            spots.feature(name)  # unknown feature -> InputError naming it
    if overlaps is not None and overlaps.max_frame_gap < (s.max_frame_gap if s.allow_gap_closing else 1):
        raise InputError(f"overlaps were measured up to {overlaps.max_frame_gap} frames apart, the settings close "
                         f"gaps of {s.max_frame_gap}")
    step1 = link_frames(spots, s, progress, overlaps)
    step2 = link_segments(spots, step1, s, overlaps)
    edges = _concat([(step1.source, step1.target, step1.cost), (step2.source, step2.target, step2.cost)])
    order = np.lexsort((edges.target, edges.source))
    return Edges(edges.source[order], edges.target[order], edges.cost[order])
