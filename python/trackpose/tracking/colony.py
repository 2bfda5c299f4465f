"""Colony tracker: motion-compensated overlap with division hypotheses, one exact assignment per frame pair.

For growing, crowded colonies (rods that divide, a colony that expands), neither distance nor raw overlap is the
right cost: rim cells move further than a cell radius per frame, and a mother's centre lies between her daughters.
For each pair of consecutive frames ``t -> t+1`` this tracker

1. **predicts where every object of frame t moves** (its displacement ``d_a``): from its own previous displacement
   when it was linked at ``t-1 -> t`` (the colony's expansion is smooth in time), else from the colony's
   expansion field (foreground centroid shift and area growth: ``x -> c' + s (x - c)``);
2. **scores candidates on the warped objects**: each object's pixels (voxels) are shifted by its ``d_a`` and
   intersected with frame t+1's labels. A link ``a -> b`` costs ``1 - IoU``; a **division** ``a -> {b, c}`` costs
   ``1 - IoU(a, b | c) + DIVISION_COST`` plus a penalty when the daughters are unequal or do not lie along the
   mother's long axis. Candidates are pairs that overlap after warping or whose predicted centres are within
   MAX_DISTANCE (those cost 1 + distance / MAX_DISTANCE), the nearest few per object;
3. **solves** the frame pair exactly as a set partitioning: every object of t ends, links once, or divides once,
   and every object of t+1 is linked, a daughter, or starts, at a cost of 1 for a start and for an end
   (scipy's MILP solver, HiGHS);
4. **refines the motion** from the confident links of that solution: each object's displacement is corrected by
   the median residual of its nearest confidently linked neighbours, and steps 2-3 run again (REFINE times).

The result is TrackMate's edge list (source earlier, cost = the chosen hypothesis' cost, a mother has two edges),
so the TrackMate XML, CTC and CSV exports apply unchanged. No gap closing: each link spans one frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.spatial import cKDTree

from ..errors import InputError
from .lap import Edges
from .spots import Spots

__all__ = ["COLONY_DEFAULTS", "check_colony_settings", "colony_track"]

#: TrackMate-style keys of the colony tracker and their defaults (MAX_DISTANCE 0 = 4 median radii, per movie)
COLONY_DEFAULTS = {"MAX_DISTANCE": 0.0, "DIVISION_COST": 0.15, "ALIGNMENT_WEIGHT": 0.5, "SYMMETRY_WEIGHT": 0.3,
                   "REFINE": 1, "NEIGHBOURS": 6}
_START_COST = 1.0   # an object of t+1 with no source
_END_COST = 1.0     # an object of t with no target
_CANDIDATES = 6     # nearest targets per source considered (besides all overlapping ones)
_CONFIDENT_IOU = 0.3


def check_colony_settings(settings: dict) -> dict:
    """Settings merged with the defaults and range-checked (InputError)."""
    unknown = set(settings) - set(COLONY_DEFAULTS)
    if unknown:
        raise InputError(f"unknown colony tracker settings {sorted(unknown)}; known: {sorted(COLONY_DEFAULTS)}")
    out = {**COLONY_DEFAULTS, **settings}
    for key in ("MAX_DISTANCE", "DIVISION_COST", "ALIGNMENT_WEIGHT", "SYMMETRY_WEIGHT"):
        out[key] = float(out[key])
        if not (np.isfinite(out[key]) and out[key] >= 0):
            raise InputError(f"{key} must be a finite number >= 0, got {out[key]!r}")
    for key in ("REFINE", "NEIGHBOURS"):
        if int(out[key]) != out[key] or out[key] < (0 if key == "REFINE" else 1):
            raise InputError(f"{key} must be an integer >= {0 if key == 'REFINE' else 1}, got {out[key]!r}")
        out[key] = int(out[key])
    return out


@dataclass
class _Frame:
    """Objects of one label frame: pixel coordinates grouped by label, centroids (physical), sizes, axes."""

    labels: np.ndarray
    coords: np.ndarray      # (N, ndim) int pixel coordinates of the foreground, grouped by label
    owner: np.ndarray       # (N,) object index (label - 1)
    size: np.ndarray        # (n,) pixels
    centre: np.ndarray      # (n, ndim) physical, array axis order
    axis: np.ndarray        # (n, ndim) unit long axis


def _frame(labels: np.ndarray, spacing: np.ndarray) -> _Frame:
    flat = labels.ravel()
    fg = np.flatnonzero(flat)
    owner = flat[fg].astype(np.int64) - 1
    order = np.argsort(owner, kind="stable")
    fg, owner = fg[order], owner[order]
    coords = np.column_stack(np.unravel_index(fg, labels.shape))
    n = int(labels.max())
    size = np.bincount(owner, minlength=n).astype(np.float64)
    phys = coords * spacing
    centre = np.stack([np.bincount(owner, phys[:, k], n) for k in range(labels.ndim)], 1) / size[:, None]
    rel = phys - centre[owner]
    cov = np.stack([np.stack([np.bincount(owner, rel[:, i] * rel[:, j], n) for j in range(labels.ndim)], -1)
                    for i in range(labels.ndim)], -2) / size[:, None, None]
    axis = np.linalg.eigh(cov)[1][..., -1]
    return _Frame(labels, coords, owner, size, centre, axis)


def _warped_overlap(a: _Frame, b: _Frame, shift_px: np.ndarray):
    """(source, target, intersection) of every pair overlapping once each source is shifted by its own pixels."""
    moved = a.coords + shift_px[a.owner]
    inside = np.all((moved >= 0) & (moved < np.array(b.labels.shape)), axis=1)
    tgt = np.zeros(len(moved), np.int64)
    tgt[inside] = b.labels[tuple(moved[inside].T)]
    hit = tgt > 0
    key = a.owner[hit] * (len(b.size) + 1) + tgt[hit] - 1
    pairs, inter = np.unique(key, return_counts=True)
    return pairs // (len(b.size) + 1), pairs % (len(b.size) + 1), inter.astype(np.float64)


def _hypotheses(a: _Frame, b: _Frame, disp: np.ndarray, spacing, settings, gate: float):
    """Candidate links and divisions with their costs."""
    shift_px = np.round(disp / spacing).astype(np.int64)
    s, t, inter = _warped_overlap(a, b, shift_px)
    inter_of = dict(zip(zip(s.tolist(), t.tolist()), inter.tolist()))
    pred = a.centre + disp
    tree = cKDTree(b.centre)
    k = min(_CANDIDATES, len(b.size))
    dist, near = tree.query(pred, k=k)
    dist, near = dist.reshape(len(pred), k), near.reshape(len(pred), k)
    cand: dict[int, set] = {i: set() for i in range(len(a.size))}
    for i, j in inter_of:
        cand[i].add(j)
    for i in range(len(a.size)):
        cand[i].update(near[i][dist[i] <= gate].tolist())
    links, divisions = [], []
    for i, targets in cand.items():
        targets = sorted(targets)
        for j in targets:
            x = inter_of.get((i, j), 0.0)
            if x > 0:
                cost = 1.0 - x / (a.size[i] + b.size[j] - x)
            else:
                cost = 1.0 + min(np.linalg.norm(b.centre[j] - pred[i]) / gate, 1.0)
            links.append((i, j, cost))
        olap = [j for j in targets if inter_of.get((i, j), 0.0) > 0]
        for m, j in enumerate(olap):
            for l in olap[m + 1:]:
                x = inter_of[(i, j)] + inter_of[(i, l)]
                iou = x / (a.size[i] + b.size[j] + b.size[l] - x)
                v = b.centre[l] - b.centre[j]
                align = abs(float(v @ a.axis[i])) / max(float(np.linalg.norm(v)), 1e-9)
                sym = abs(np.log(b.size[j] / b.size[l]))
                cost = (1.0 - iou + settings["DIVISION_COST"] + settings["ALIGNMENT_WEIGHT"] * (1 - align)
                        + settings["SYMMETRY_WEIGHT"] * sym)
                divisions.append((i, j, l, cost))
    return links, divisions


def _solve(n_a: int, n_b: int, links, divisions):
    """Exact set partitioning (scipy milp): every source ends/links/divides once, every target is covered once."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    nl, nd = len(links), len(divisions)
    li = np.array([x[0] for x in links], np.int64).reshape(-1)
    lj = np.array([x[1] for x in links], np.int64).reshape(-1)
    di = np.array([x[0] for x in divisions], np.int64).reshape(-1)
    dj = np.array([x[1] for x in divisions], np.int64).reshape(-1)
    dl = np.array([x[2] for x in divisions], np.int64).reshape(-1)
    cost = np.concatenate([[x[2] for x in links], [x[3] for x in divisions], np.full(n_a, _END_COST),
                           np.full(n_b, _START_COST)])
    var_l, var_d = np.arange(nl), nl + np.arange(nd)
    var_end, var_start = nl + nd + np.arange(n_a), nl + nd + n_a + np.arange(n_b)
    rows = np.concatenate([li, di, np.arange(n_a), n_a + lj, n_a + dj, n_a + dl, n_a + np.arange(n_b)])
    cols = np.concatenate([var_l, var_d, var_end, var_l, var_d, var_d, var_start])
    matrix = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_a + n_b, len(cost))).tocsr()
    res = milp(cost, constraints=LinearConstraint(matrix, 1, 1), integrality=np.ones(len(cost)),
               bounds=Bounds(0, 1))
    if res.x is None:  # pragma: no cover - the all-end/all-start assignment is always feasible
        raise InputError(f"the colony tracker's assignment failed: {res.message}")
    x = res.x > 0.5
    chosen_links = [links[k] for k in np.flatnonzero(x[:nl])]
    chosen_div = [divisions[k] for k in np.flatnonzero(x[nl:nl + nd])]
    return chosen_links, chosen_div, float(cost @ x)


def _refine(a: _Frame, b: _Frame, disp, links, divisions, neighbours: int) -> np.ndarray:
    """Correct each displacement by the median residual of its nearest confidently linked objects."""
    src, res = [], []
    for i, j, c in links:
        if c <= 1 - _CONFIDENT_IOU:
            src.append(i)
            res.append(b.centre[j] - a.centre[i] - disp[i])
    for i, j, l, _ in divisions:
        centre = (b.centre[j] * b.size[j] + b.centre[l] * b.size[l]) / (b.size[j] + b.size[l])
        src.append(i)
        res.append(centre - a.centre[i] - disp[i])
    if not src:
        return disp
    src, res = np.array(src), np.array(res)
    k = min(neighbours, len(src))
    _, near = cKDTree(a.centre[src]).query(a.centre, k=k)
    near = near.reshape(len(a.centre), k)
    return disp + np.median(res[near], axis=1)


def colony_track(spots: Spots, label_frames, spacing=None, settings: dict | None = None) -> Edges:
    """Link the objects of consecutive label frames (see the module's description).

    Parameters
    ----------
    spots : Spots
        The objects (``spots.frame``, ``spots.label`` say which row is which object).
    label_frames : sequence of (Y, X) or (Z, Y, X) int arrays, labels 1..n per frame
    spacing : pixel (voxel) size in array axis order; distances are in these units
    settings : dict, optional
        COLONY_DEFAULTS keys: MAX_DISTANCE (0 = four times the median equivalent radius), DIVISION_COST,
        ALIGNMENT_WEIGHT, SYMMETRY_WEIGHT, REFINE (motion refinement rounds), NEIGHBOURS (for the refinement).
    """
    settings = check_colony_settings(settings or {})
    frames = list(label_frames)
    if not frames:
        return Edges(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    spacing = np.ones(frames[0].ndim) if spacing is None else np.asarray(spacing, np.float64)
    row_of = {}
    for k, (f, lab) in enumerate(zip(spots.frame.tolist(), spots.label.tolist())):
        row_of[(f, lab)] = k
    gate = settings["MAX_DISTANCE"] or 4 * float(np.median(spots.radius))
    src_out, tgt_out, cost_out = [], [], []
    prev = _frame(np.asarray(frames[0]), spacing)
    prev_disp = None     # displacement into ``prev`` of each of its objects (NaN: none)
    for t in range(1, len(frames)):
        cur = _frame(np.asarray(frames[t]), spacing)
        # initial motion: the colony's expansion field, or the object's own last displacement
        mass_a = prev.centre.T @ prev.size / prev.size.sum()
        mass_b = cur.centre.T @ cur.size / cur.size.sum()
        scale = (cur.size.sum() / prev.size.sum()) ** (1 / len(spacing))
        field = mass_b + scale * (prev.centre - mass_a) - prev.centre
        starts = [field]
        if prev_disp is not None:
            known = np.all(np.isfinite(prev_disp), axis=1)
            own = field.copy()
            own[known] = prev_disp[known]
            starts.insert(0, own)
        best = None
        for disp in starts:  # each motion guess, refined; the cheapest solution wins
            for round_ in range(settings["REFINE"] + 1):
                hyp = _hypotheses(prev, cur, disp, spacing, settings, gate)
                solution = _solve(len(prev.size), len(cur.size), *hyp)
                if round_ < settings["REFINE"]:
                    disp = _refine(prev, cur, disp, solution[0], solution[1], settings["NEIGHBOURS"])
            if best is None or solution[2] < best[2]:
                best = solution
        links, divisions, _ = best
        nxt = np.full(cur.centre.shape, np.nan)
        for i, j, c in links:
            src_out.append(row_of[(t - 1, i + 1)])
            tgt_out.append(row_of[(t, j + 1)])
            cost_out.append(c)
            nxt[j] = cur.centre[j] - prev.centre[i]
        for i, j, l, c in divisions:
            union = (cur.centre[j] * cur.size[j] + cur.centre[l] * cur.size[l]) / (cur.size[j] + cur.size[l])
            for d in (j, l):
                src_out.append(row_of[(t - 1, i + 1)])
                tgt_out.append(row_of[(t, d + 1)])
                cost_out.append(c)
                nxt[d] = union - prev.centre[i]  # daughters move on as their mother's pair did
        prev, prev_disp = cur, nxt
    src, tgt, cost = np.asarray(src_out, np.int64), np.asarray(tgt_out, np.int64), np.asarray(cost_out)
    order = np.lexsort((tgt, src))
    return Edges(src[order], tgt[order], cost[order])
