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
   mother's long axis (weighted by how elongated the mother is: a round cell has no long axis). Candidates are
   pairs that overlap after warping or whose predicted centres are within MAX_DISTANCE (those cost
   1 + distance / MAX_DISTANCE), the nearest few per object;
3. **closes gaps** (an object missed in up to ``MAX_FRAME_GAP - 1`` frames): the tracks that ended without
   dividing at frames ``t+1 - MAX_FRAME_GAP .. t-1`` are extra sources of the pair. Each is carried to frame t+1
   by its neighbours' motion (at each frame in between, the median displacement of its nearest objects that were
   linked onward; for the last step, of the current motion guess) and its shifted pixels are intersected with
   frame t+1's labels: a continuation costs ``1 - IoU``, staying ended costs as much as an end. In the same
   assignment as the links, so a reappearing object is not taken for a neighbour's false daughter;
4. **solves** the frame pair exactly as a set partitioning: every object of t ends, links once, or divides once,
   every ended track stays ended or continues once, and every object of t+1 is linked, a daughter, a
   continuation, or starts, at a cost of 1 for a start and for an end. The linear relaxation is solved first
   (HiGHS dual simplex through scipy); it is integral on these problems, and then optimal; otherwise scipy's
   ``milp`` solves the integer problem;
5. **refines the motion** from the confident links of that solution: each object's displacement is corrected by
   the median residual of its nearest confidently linked neighbours, and steps 2-4 run again (REFINE times). Both
   motion guesses of step 1 are tried; the cheaper solution is kept.

The result is TrackMate's edge list (source earlier, cost = the chosen hypothesis' cost, a mother has two edges,
a bridge spans more than one frame), so the TrackMate XML, CTC and CSV exports apply unchanged.
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
                   "REFINE": 1, "NEIGHBOURS": 6, "MAX_FRAME_GAP": 2}
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
    for key, low in (("REFINE", 0), ("NEIGHBOURS", 1), ("MAX_FRAME_GAP", 1)):
        if isinstance(out[key], bool) or int(out[key]) != out[key] or out[key] < low:
            raise InputError(f"{key} must be an integer >= {low}, got {out[key]!r}")
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
    elongation: np.ndarray  # (n,) 1 - smallest / largest axis length (0: round, towards 1: a long rod)


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
    value, vector = np.linalg.eigh(cov)
    elongation = 1 - np.sqrt(np.maximum(value[:, 0], 0) / np.maximum(value[:, -1], 1e-12))
    return _Frame(labels, coords, owner, size, centre, vector[..., -1], elongation)


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
    """Candidate links ``(source, target, cost)`` and divisions ``(source, daughter, daughter, cost)``, as arrays.

    A division whose cost is at least that of linking the mother to one of its daughters plus a start for the
    other can never be part of a cheaper solution than that pair, so it is left out (the optimum is unchanged).
    """
    nb = len(b.size)
    shift_px = np.round(disp / spacing).astype(np.int64)
    s, t, inter = _warped_overlap(a, b, shift_px)
    ov_key = s * nb + t
    pred = a.centre + disp
    k = min(_CANDIDATES, nb)
    dist, near = cKDTree(b.centre).query(pred, k=k)
    dist, near = dist.reshape(len(pred), k), near.reshape(len(pred), k)
    close = dist <= gate
    near_key = (np.repeat(np.arange(len(pred)), k) * nb + near.ravel())[close.ravel()]
    key = np.union1d(ov_key, near_key)
    li, lj = key // nb, key % nb
    x = np.zeros(len(key))
    if len(ov_key):
        pos = np.minimum(np.searchsorted(ov_key, key), len(ov_key) - 1)
        x = np.where(ov_key[pos] == key, inter[pos], 0.0)
    far = 1.0 + np.minimum(np.linalg.norm(b.centre[lj] - pred[li], axis=1) / gate, 1.0)
    lcost = np.where(x > 0, 1.0 - x / (a.size[li] + b.size[lj] - np.maximum(x, 0)), far)
    links = (li, lj, lcost)
    # divisions: every pair of targets that a source overlaps after warping (s, t sorted by source, then target)
    empty = (np.zeros(0, np.int64),) * 3 + (np.zeros(0),)
    if len(s) < 2:
        return links, empty
    first = np.searchsorted(s, np.arange(len(a.size)))
    count = np.bincount(s, minlength=len(a.size))
    m = int(count.max())
    rank = np.arange(len(s)) - first[s]
    slot = np.full((len(a.size), m), -1, np.int64)
    slot[s, rank] = np.arange(len(s))
    p, q = np.triu_indices(m, 1)
    src = np.repeat(np.arange(len(a.size)), len(p))
    e1, e2 = slot[:, p].ravel(), slot[:, q].ravel()
    ok = (e1 >= 0) & (e2 >= 0)
    src, e1, e2 = src[ok], e1[ok], e2[ok]
    if len(src) == 0:
        return links, empty
    j, l = t[e1], t[e2]
    both = inter[e1] + inter[e2]
    iou = both / (a.size[src] + b.size[j] + b.size[l] - both)
    v = b.centre[l] - b.centre[j]
    align = np.abs(np.sum(v * a.axis[src], axis=1)) / np.maximum(np.linalg.norm(v, axis=1), 1e-9)
    sym = np.abs(np.log(b.size[j] / b.size[l]))
    dcost = (1.0 - iou + settings["DIVISION_COST"] + settings["ALIGNMENT_WEIGHT"] * a.elongation[src] * (1 - align)
             + settings["SYMMETRY_WEIGHT"] * sym)
    single = 1.0 - inter / (a.size[s] + b.size[t] - inter)  # the link cost of each overlapping pair
    keep = dcost < np.minimum(single[e1], single[e2]) + _START_COST
    return links, (src[keep], j[keep], l[keep], dcost[keep])


def _solve(n_a: int, n_b: int, links, divisions):
    """Exact set partitioning: every source ends/links/divides once, every target is covered once.

    The linear relaxation is solved first (HiGHS dual simplex through scipy's ``linprog``); on these problems
    its optimum is almost always integral, and an integral optimum of the relaxation is an optimum of the
    integer problem. Otherwise the integer problem is solved (scipy's ``milp``, HiGHS branch and bound).
    Returns (links as (i, j, cost) rows, divisions as (i, j, l, cost) rows, total cost).
    """
    from scipy.optimize import Bounds, LinearConstraint, linprog, milp
    li, lj, lc = links
    di, dj, dl, dc = divisions
    nl, nd = len(li), len(di)
    cost = np.concatenate([lc, dc, np.full(n_a, _END_COST), np.full(n_b, _START_COST)])
    var_l, var_d = np.arange(nl), nl + np.arange(nd)
    var_end, var_start = nl + nd + np.arange(n_a), nl + nd + n_a + np.arange(n_b)
    rows = np.concatenate([li, di, np.arange(n_a), n_a + lj, n_a + dj, n_a + dl, n_a + np.arange(n_b)])
    cols = np.concatenate([var_l, var_d, var_end, var_l, var_d, var_d, var_start])
    matrix = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_a + n_b, len(cost))).tocsr()
    res = linprog(cost, A_eq=matrix, b_eq=np.ones(n_a + n_b), bounds=(0, 1), method="highs-ds")
    x = res.x
    if x is None or np.any(np.abs(x - np.round(x)) > 1e-6):
        res = milp(cost, constraints=LinearConstraint(matrix, 1, 1), integrality=np.ones(len(cost)),
                   bounds=Bounds(0, 1))
        x = res.x
    if x is None:  # pragma: no cover - the all-end/all-start assignment is always feasible
        raise InputError(f"the colony tracker's assignment failed: {res.message}")
    x = x > 0.5
    chosen_l = np.flatnonzero(x[:nl])
    chosen_d = np.flatnonzero(x[nl:nl + nd])
    return ((li[chosen_l], lj[chosen_l], lc[chosen_l]), (di[chosen_d], dj[chosen_d], dl[chosen_d], dc[chosen_d]),
            float(cost @ x))


def _refine(a: _Frame, b: _Frame, disp, links, divisions, neighbours: int) -> np.ndarray:
    """Correct each displacement by the median residual of its nearest confidently linked objects."""
    li, lj, lc = links
    di, dj, dl, _ = divisions
    sure = lc <= 1 - _CONFIDENT_IOU
    union = (b.centre[dj] * b.size[dj, None] + b.centre[dl] * b.size[dl, None]) / (b.size[dj] + b.size[dl])[:, None]
    src = np.concatenate([li[sure], di])
    if len(src) == 0:
        return disp
    res = np.concatenate([b.centre[lj[sure]], union]) - a.centre[src] - disp[src]
    k = min(neighbours, len(src))
    _, near = cKDTree(a.centre[src]).query(a.centre, k=k)
    near = near.reshape(len(a.centre), k)
    return disp + np.median(res[near], axis=1)


def _neighbour_motion(centre: np.ndarray, disp: np.ndarray, points: np.ndarray, neighbours: int) -> np.ndarray:
    """Median displacement ``disp`` of the ``neighbours`` objects (``centre``) nearest each point (NaN rows of
    ``disp`` left out; zero motion when none is known)."""
    known = np.flatnonzero(np.all(np.isfinite(disp), axis=1))
    if len(known) == 0 or len(points) == 0:
        return np.zeros_like(points)
    k = min(neighbours, len(known))
    _, near = cKDTree(centre[known]).query(points, k=k)
    return np.median(disp[known[near.reshape(len(points), k)]], axis=1)


def _gap_candidates(window, ended, carried, cur: _Frame, spacing):
    """Bridges from ended objects (``ended``: (window index, object) rows; ``carried``: their predicted centres in
    ``cur``'s frame) to the objects of ``cur`` they overlap once shifted there: (ended row, target, 1 - IoU)."""
    nb = len(cur.size)
    rows, targets, costs = [], [], []
    for w in np.unique(ended[:, 0]):
        frame = window[w][1]
        mine = np.flatnonzero(ended[:, 0] == w)
        member = np.full(len(frame.size), -1, np.int64)
        member[ended[mine, 1]] = np.arange(len(mine))
        pick = member[frame.owner] >= 0
        owner = member[frame.owner[pick]]
        shift = np.round((carried[mine] - frame.centre[ended[mine, 1]]) / spacing).astype(np.int64)
        moved = frame.coords[pick] + shift[owner]
        inside = np.all((moved >= 0) & (moved < np.array(cur.labels.shape)), axis=1)
        hit = np.zeros(len(moved), np.int64)
        hit[inside] = cur.labels[tuple(moved[inside].T)]
        ok = hit > 0
        pair, inter = np.unique(owner[ok] * (nb + 1) + hit[ok] - 1, return_counts=True)
        e, j = pair // (nb + 1), pair % (nb + 1)
        rows.append(mine[e])
        targets.append(j)
        costs.append(1.0 - inter / (frame.size[ended[mine[e], 1]] + cur.size[j] - inter))
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(rows), np.concatenate(targets), np.concatenate(costs)


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
        ALIGNMENT_WEIGHT, SYMMETRY_WEIGHT, REFINE (motion refinement rounds), NEIGHBOURS (for the refinement
        and the gap closing), MAX_FRAME_GAP (largest frame difference a bridge spans; 1: no gap closing).
    """
    settings = check_colony_settings(settings or {})
    frames = list(label_frames)
    if not frames:
        return Edges(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    spacing = np.ones(frames[0].ndim) if spacing is None else np.asarray(spacing, np.float64)
    rows = []  # rows[t][label - 1]: the spot row of each object of frame t
    for t, f in enumerate(frames):
        at = np.flatnonzero(spots.frame == t)
        row = np.full(int(np.max(f)), -1, np.int64)
        row[spots.label[at] - 1] = at
        rows.append(row)
    gate = settings["MAX_DISTANCE"] or 4 * float(np.median(spots.radius))
    src_out, tgt_out, cost_out = [], [], []
    prev = _frame(np.asarray(frames[0]), spacing)
    prev_disp = None     # displacement into ``prev`` of each of its objects (NaN: none)
    window = []          # gap closing: the last frames' objects, ended tracks and onward displacements
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
        # gap closing: the window's unbridged ended objects, carried to frame t - 1 by their neighbours' motion
        ended = np.array([(w, i) for w, entry in enumerate(window) for i in entry[2].tolist()],
                         np.int64).reshape(-1, 2)
        carried = np.zeros((len(ended), len(spacing)))
        for w, (_, frame, _, _) in enumerate(window):
            mine = ended[:, 0] == w
            pos = frame.centre[ended[mine, 1]]
            for _, here, _, out_disp in window[w:]:
                pos = pos + _neighbour_motion(here.centre, out_disp, pos, settings["NEIGHBOURS"])
            carried[mine] = pos
        n_a = len(prev.size)
        best = None
        for disp in starts:  # each motion guess, refined; the cheapest solution wins
            for round_ in range(settings["REFINE"] + 1):
                (li, lj, lc), divisions = _hypotheses(prev, cur, disp, spacing, settings, gate)
                if len(ended):  # bridges: extra sources that may each take one target instead of staying ended
                    step = _neighbour_motion(prev.centre, disp, carried, settings["NEIGHBOURS"])
                    e, j, c = _gap_candidates(window, ended, carried + step, cur, spacing)
                    li, lj, lc = np.concatenate([li, n_a + e]), np.concatenate([lj, j]), np.concatenate([lc, c])
                solution = _solve(n_a + len(ended), len(cur.size), (li, lj, lc), divisions)
                if round_ < settings["REFINE"]:
                    linked = solution[0][0] < n_a  # links between the two frames, not bridges
                    disp = _refine(prev, cur, disp, tuple(x[linked] for x in solution[0]), solution[1],
                                   settings["NEIGHBOURS"])
            if best is None or solution[2] < best[2]:
                best = solution
        (li, lj, lc), (di, dj, dl, dc), _ = best
        bridged = np.zeros(len(ended), bool)
        bj, bc = np.zeros(len(ended), np.int64), np.zeros(len(ended))
        gap = li >= n_a
        bridged[li[gap] - n_a], bj[li[gap] - n_a], bc[li[gap] - n_a] = True, lj[gap], lc[gap]
        li, lj, lc = li[~gap], lj[~gap], lc[~gap]
        nxt = np.full(cur.centre.shape, np.nan)
        nxt[lj] = cur.centre[lj] - prev.centre[li]
        union = ((cur.centre[dj] * cur.size[dj, None] + cur.centre[dl] * cur.size[dl, None])
                 / (cur.size[dj] + cur.size[dl])[:, None])
        nxt[dj] = nxt[dl] = union - prev.centre[di]  # daughters move on as their mother's pair did
        src_out += [rows[t - 1][li], rows[t - 1][di], rows[t - 1][di]]
        tgt_out += [rows[t][lj], rows[t][dj], rows[t][dl]]
        cost_out += [lc, dc, dc]
        if settings["MAX_FRAME_GAP"] >= 2:  # bridged ends leave the window; this frame's ends join it
            for e in np.flatnonzero(bridged):
                w, i = ended[e]
                f, frame = window[w][0], window[w][1]
                src_out.append(rows[f][[i]])
                tgt_out.append(rows[t][[bj[e]]])
                cost_out.append(bc[[e]])
                nxt[bj[e]] = (cur.centre[bj[e]] - frame.centre[i]) / (t - f)
                window[w] = window[w][:2] + (window[w][2][window[w][2] != i],) + window[w][3:]
            out_disp = np.full(prev.centre.shape, np.nan)
            out_disp[li] = cur.centre[lj] - prev.centre[li]
            out_disp[di] = nxt[dj]
            gone = np.setdiff1d(np.arange(len(prev.size)), np.concatenate([li, di]))
            window = (window + [(t - 1, prev, gone, out_disp)])[-(settings["MAX_FRAME_GAP"] - 1):]
        prev, prev_disp = cur, nxt
    src = np.concatenate(src_out) if src_out else np.zeros(0, np.int64)
    tgt = np.concatenate(tgt_out) if tgt_out else np.zeros(0, np.int64)
    cost = np.concatenate(cost_out) if cost_out else np.zeros(0)
    order = np.lexsort((tgt, src))
    return Edges(src[order], tgt[order], cost[order])
