"""Flows -> masks: follow the network's flows to their sinks and group the pixels that meet.

``compute_masks`` is the whole step (network flows + cell probability -> label image): pixels follow the flows
(``follow_flows``), end points are clustered into masks (``get_masks``), then the masks are post-processed
(``trackpose.masks``: flow check, hole filling, small masks). The flows the network is trained to predict come
from ``trackpose.flows.masks_to_flows``, re-exported here (public contract: ``trackpose.dynamics.masks_to_flows``
and ``trackpose.dynamics.compute_masks``).

Both follow cellpose 3.1.1.2 (CPU path) number for number: 2D end points and hence 2D masks and their label
numbers are bit-identical. The heavy loops are numba kernels that process all pixels in one compiled call
(parallel over pixel groups).

Differences from cellpose 3.1.1.2, on purpose:

* 3D ``follow_flows`` samples the flow trilinearly at the point itself, like the 2D CPU path. Cellpose runs
  3D (and all GPU) dynamics with ``torch.nn.functional.grid_sample(align_corners=False)``, which samples at
  ``p * L / (L - 1) - 0.5`` and reads zeros past the border: up to half a pixel off near the image edges.
  2D CPU results are bit-identical to cellpose's.
* ``follow_flows`` detects when a pixel's trajectory has become periodic (float32 positions repeat, which
  they do once a pixel sits in its sink) and jumps ahead; the final positions are exactly those of running
  all ``niter`` steps, only faster, so ``niter`` in the thousands costs little.
* NaN or infinite flows or probabilities raise ``InputError`` instead of giving silently wrong masks.
* Seeds with equal histogram counts are ordered by raster position (a stable sort); cellpose uses torch's
  default (unstable) ``argsort``, so which of two equal-count neighbouring seeds wins a shared bin may differ.
* Mask post-processing differs where ``trackpose.masks`` says so.

Kept from cellpose, worth knowing:

* ``compute_masks`` numbers masks in raster order of first appearance.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from trackpose.errors import InputError
from trackpose.flows import FLOW_SCALE, as_flow_field, masks_to_flows
from trackpose.masks import (DEFAULT_FLOW_THRESHOLD, DEFAULT_MIN_SIZE, fill_holes_and_remove_small_masks,
                             remove_bad_flow_masks)

__all__ = [
    "masks_to_flows",
    "compute_masks",
    "follow_flows",
    "get_masks",
]

#: Euler steps of the flow dynamics (cellpose default).
DEFAULT_NITER = 200
#: Cell-probability logit above which a pixel takes part in the dynamics.
DEFAULT_CELLPROB_THRESHOLD = 0.0
#: Masks covering more than this fraction of the image are removed.
DEFAULT_MAX_SIZE_FRACTION = 0.4

# get_masks constants (cellpose): a histogram bin is a seed when it holds more than _SEED_MIN_COUNT end
# points and is the maximum of its (2 * _SEED_RADIUS + 1)^d neighbourhood; a seed grows _GROW_STEPS 3^d
# dilations into bins holding more than _GROW_MIN_COUNT end points.
_SEED_MIN_COUNT = 10
_SEED_RADIUS = 2
_GROW_STEPS = 5
_GROW_MIN_COUNT = 2


# ----------------------------------------------------------------------------------------------------------
# following the flows
# ----------------------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _bilinear_cellpose(plane, y0, x0, y1, x1, fy, fx):
    """Bilinear value with cellpose's CPU rounding: the two terms weighted by fy use float32 products
    (numba types float32 * float32 as float32), the others float64; the sum is rounded to float32."""
    return np.float32(np.float64(plane[y0, x0]) * (1.0 - fy) * (1.0 - fx)
                      + np.float64(plane[y0, x1]) * (1.0 - fy) * fx
                      + np.float64(np.float32(plane[y1, x0] * fy)) * (1.0 - fx)
                      + np.float64(np.float32(np.float32(plane[y1, x1] * fy) * fx)))


@njit(cache=True, nogil=True)
def _step_2d(field, y, x):
    """One Euler step with bilinear sampling at (y, x), neighbours clamped (cellpose's CPU map_coordinates).

    y, x and the result are float32; bit-identical to cellpose 3.1.1.2's CPU dynamics.
    """
    Ly = field.shape[1]
    Lx = field.shape[2]
    yi = np.int64(y)
    xi = np.int64(x)
    # fractions are exact in float32 (y - floor(y))
    fy = y - np.float32(yi)
    fx = x - np.float32(xi)
    y0 = min(Ly - 1, max(0, yi))
    x0 = min(Lx - 1, max(0, xi))
    y1 = min(Ly - 1, y0 + 1)
    x1 = min(Lx - 1, x0 + 1)
    dy = _bilinear_cellpose(field[0], y0, x0, y1, x1, fy, fx)
    dx = _bilinear_cellpose(field[1], y0, x0, y1, x1, fy, fx)
    ny = min(np.float32(Ly - 1), max(np.float32(0.0), np.float32(y + dy)))
    nx = min(np.float32(Lx - 1), max(np.float32(0.0), np.float32(x + dx)))
    return ny, nx


# Points are advanced in interleaved groups: one trajectory is a chain of dependent steps (latency-bound),
# a group of independent ones keeps the CPU busy. A trajectory stops early, exactly, once its float32 position
# repeats: the map position -> next position is deterministic, so from then on the trajectory is periodic and
# the final position is (niter - t) mod period steps away. Repeats at lag 1 or 2 (a pixel resting in its
# sink) are caught at once, longer cycles by Brent's method (compare with a position saved at t = 1, 2, 4..).
_GROUP = 32


@njit(cache=True, nogil=True, parallel=True)
def _follow_2d(field, start_y, start_x, niter, out):
    """Final float32 positions after ``niter`` steps for every start point (parallel over groups of points)."""
    n = start_y.shape[0]
    n_groups = (n + _GROUP - 1) // _GROUP
    for group in prange(n_groups):
        lo = group * _GROUP
        m = min(n, lo + _GROUP) - lo
        y = np.empty(_GROUP, np.float32)
        x = np.empty(_GROUP, np.float32)
        prev_y = np.empty(_GROUP, np.float32)  # position one step back
        prev_x = np.empty(_GROUP, np.float32)
        prev2_y = np.full(_GROUP, np.nan, np.float32)  # two steps back
        prev2_x = np.full(_GROUP, np.nan, np.float32)
        saved_y = np.empty(_GROUP, np.float32)  # Brent's saved position
        saved_x = np.empty(_GROUP, np.float32)
        since_saved = np.zeros(_GROUP, np.int64)
        save_every = np.ones(_GROUP, np.int64)
        running = np.zeros(_GROUP, np.bool_)
        for g in range(m):
            y[g] = np.float32(start_y[lo + g])
            x[g] = np.float32(start_x[lo + g])
            prev_y[g] = y[g]
            prev_x[g] = x[g]
            saved_y[g] = y[g]
            saved_x[g] = x[g]
            running[g] = True
        n_running = m
        t = 0
        while t < niter and n_running > 0:
            t += 1
            for g in range(m):
                if not running[g]:
                    continue
                ny, nx = _step_2d(field, y[g], x[g])
                period = 0
                if ny == prev_y[g] and nx == prev_x[g]:
                    period = 1
                elif ny == prev2_y[g] and nx == prev2_x[g]:
                    period = 2
                else:
                    since_saved[g] += 1
                    if ny == saved_y[g] and nx == saved_x[g]:
                        period = since_saved[g]
                    elif since_saved[g] == save_every[g]:
                        saved_y[g] = ny
                        saved_x[g] = nx
                        save_every[g] *= 2
                        since_saved[g] = 0
                if period > 0:
                    for _ in range((niter - t) % period):
                        ny, nx = _step_2d(field, ny, nx)
                    running[g] = False
                    n_running -= 1
                prev2_y[g] = prev_y[g]
                prev2_x[g] = prev_x[g]
                prev_y[g] = ny
                prev_x[g] = nx
                y[g] = ny
                x[g] = nx
        for g in range(m):
            out[0, lo + g] = y[g]
            out[1, lo + g] = x[g]


@njit(cache=True, nogil=True)
def _trilinear(volume, z0, y0, x0, z1, y1, x1, fz, fy, fx):
    """Trilinear value (float64 arithmetic, rounded to float32)."""
    gz = 1.0 - fz
    gy = 1.0 - fy
    gx = 1.0 - fx
    return np.float32(gz * (gy * (gx * np.float64(volume[z0, y0, x0]) + fx * np.float64(volume[z0, y0, x1]))
                            + fy * (gx * np.float64(volume[z0, y1, x0]) + fx * np.float64(volume[z0, y1, x1])))
                      + fz * (gy * (gx * np.float64(volume[z1, y0, x0]) + fx * np.float64(volume[z1, y0, x1]))
                              + fy * (gx * np.float64(volume[z1, y1, x0]) + fx * np.float64(volume[z1, y1, x1]))))


@njit(cache=True, nogil=True)
def _step_3d(field, z, y, x):
    """One Euler step with trilinear sampling at (z, y, x), neighbours clamped; float32 positions."""
    Lz = field.shape[1]
    Ly = field.shape[2]
    Lx = field.shape[3]
    zi = np.int64(z)
    yi = np.int64(y)
    xi = np.int64(x)
    fz = np.float64(z) - zi
    fy = np.float64(y) - yi
    fx = np.float64(x) - xi
    z0 = min(Lz - 1, max(0, zi))
    y0 = min(Ly - 1, max(0, yi))
    x0 = min(Lx - 1, max(0, xi))
    z1 = min(Lz - 1, z0 + 1)
    y1 = min(Ly - 1, y0 + 1)
    x1 = min(Lx - 1, x0 + 1)
    dz = _trilinear(field[0], z0, y0, x0, z1, y1, x1, fz, fy, fx)
    dy = _trilinear(field[1], z0, y0, x0, z1, y1, x1, fz, fy, fx)
    dx = _trilinear(field[2], z0, y0, x0, z1, y1, x1, fz, fy, fx)
    nz = min(np.float32(Lz - 1), max(np.float32(0.0), np.float32(z + dz)))
    ny = min(np.float32(Ly - 1), max(np.float32(0.0), np.float32(y + dy)))
    nx = min(np.float32(Lx - 1), max(np.float32(0.0), np.float32(x + dx)))
    return nz, ny, nx


@njit(cache=True, nogil=True, parallel=True)
def _follow_3d(field, start_z, start_y, start_x, niter, out):
    """3D twin of _follow_2d (trilinear sampling, same exact early stop)."""
    n = start_z.shape[0]
    n_groups = (n + _GROUP - 1) // _GROUP
    for group in prange(n_groups):
        lo = group * _GROUP
        m = min(n, lo + _GROUP) - lo
        pos = np.empty((_GROUP, 3), np.float32)
        prev = np.empty((_GROUP, 3), np.float32)
        prev2 = np.full((_GROUP, 3), np.nan, np.float32)
        saved = np.empty((_GROUP, 3), np.float32)
        since_saved = np.zeros(_GROUP, np.int64)
        save_every = np.ones(_GROUP, np.int64)
        running = np.zeros(_GROUP, np.bool_)
        for g in range(m):
            pos[g, 0] = np.float32(start_z[lo + g])
            pos[g, 1] = np.float32(start_y[lo + g])
            pos[g, 2] = np.float32(start_x[lo + g])
            prev[g, :] = pos[g, :]
            saved[g, :] = pos[g, :]
            running[g] = True
        n_running = m
        t = 0
        while t < niter and n_running > 0:
            t += 1
            for g in range(m):
                if not running[g]:
                    continue
                nz, ny, nx = _step_3d(field, pos[g, 0], pos[g, 1], pos[g, 2])
                period = 0
                if nz == prev[g, 0] and ny == prev[g, 1] and nx == prev[g, 2]:
                    period = 1
                elif nz == prev2[g, 0] and ny == prev2[g, 1] and nx == prev2[g, 2]:
                    period = 2
                else:
                    since_saved[g] += 1
                    if nz == saved[g, 0] and ny == saved[g, 1] and nx == saved[g, 2]:
                        period = since_saved[g]
                    elif since_saved[g] == save_every[g]:
                        saved[g, 0] = nz
                        saved[g, 1] = ny
                        saved[g, 2] = nx
                        save_every[g] *= 2
                        since_saved[g] = 0
                if period > 0:
                    for _ in range((niter - t) % period):
                        nz, ny, nx = _step_3d(field, nz, ny, nx)
                    running[g] = False
                    n_running -= 1
                prev2[g, :] = prev[g, :]
                prev[g, 0] = nz
                prev[g, 1] = ny
                prev[g, 2] = nx
                pos[g, 0] = nz
                pos[g, 1] = ny
                pos[g, 2] = nx
        for g in range(m):
            out[0, lo + g] = pos[g, 0]
            out[1, lo + g] = pos[g, 1]
            out[2, lo + g] = pos[g, 2]


def _check_points(inds, ndim, shape=None):
    if isinstance(inds, np.ndarray) and inds.ndim == 2:
        inds = tuple(inds)
    inds = tuple(np.asarray(i).ravel() for i in inds)
    if len(inds) != ndim:
        raise InputError(f"inds must give {ndim} coordinate arrays (one per axis), got {len(inds)}")
    if len({i.shape[0] for i in inds}) != 1:
        raise InputError("inds coordinate arrays must all have the same length")
    if shape is not None and inds[0].shape[0]:
        for axis, (coords, size) in enumerate(zip(inds, shape)):
            if coords.min() < 0 or coords.max() > size - 1:
                raise InputError(f"inds[{axis}] leaves the image (axis length {size})")
    return inds


def follow_flows(dP, inds, niter=DEFAULT_NITER):
    """Move pixels along a flow field by Euler integration.

    Each step samples the field at the point's float position (bilinear in 2D, trilinear in 3D, neighbours
    clamped to the image) and adds it to the position, which is then clipped to [0, L - 1] per axis; float32
    arithmetic as cellpose's CPU path.

    Parameters
    ----------
    dP : np.ndarray of float, shape (2, Ly, Lx) or (3, Lz, Ly, Lx)
        Step per iteration in pixels, (dy, dx) or (dz, dy, dx). ``compute_masks`` passes the network flows
        divided by 5 and set to 0 outside cells.
    inds : tuple of ndim arrays of shape (n,), or array of shape (ndim, n)
        Start positions: pixel indices, e.g. ``np.nonzero(cellprob > 0)``, or float positions (such as an
        earlier call's output, to continue a trajectory).
    niter : int
        Number of Euler steps (any size: trajectories that became periodic are skipped ahead exactly).

    Returns
    -------
    np.ndarray of float32, shape (ndim, n)
        Final positions, in pixels.
    """
    dP = as_flow_field(dP)
    if not np.isfinite(dP).all():
        raise InputError("dP holds NaN or infinite values")
    ndim = dP.shape[0]
    inds = _check_points(inds, ndim, dP.shape[1:])
    niter = int(niter)
    if niter < 0:
        raise InputError(f"niter must be >= 0, got {niter}")
    field = np.ascontiguousarray(dP, dtype=np.float32)
    starts = [np.ascontiguousarray(i, dtype=np.float32) for i in inds]
    out = np.empty((ndim, starts[0].shape[0]), np.float32)
    if starts[0].shape[0] == 0:
        return out
    if ndim == 2:
        _follow_2d(field, starts[0], starts[1], np.int64(niter), out)
    else:
        _follow_3d(field, starts[0], starts[1], starts[2], np.int64(niter), out)
    return out


# ----------------------------------------------------------------------------------------------------------
# end points -> masks
# ----------------------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _cluster_end_points(pz, py, px, Z, Y, X, max_size):
    """Label per end point from the histogram of end points (cellpose's get_masks), 2D as Z == 1.

    Returns int32 labels (n,), 0 = unassigned or in a too-large mask, numbered by first appearance in the
    order of the points.
    """
    n = pz.shape[0]
    hist = np.zeros((Z, Y, X), np.int32)
    for i in range(n):
        hist[pz[i], py[i], px[i]] += 1

    # seeds: bins with > SEED_MIN_COUNT points that are the maximum of their 5^d neighbourhood
    n_cand = 0
    for v in hist.ravel():
        if v > _SEED_MIN_COUNT:
            n_cand += 1
    seed_z = np.empty(n_cand, np.int64)
    seed_y = np.empty(n_cand, np.int64)
    seed_x = np.empty(n_cand, np.int64)
    seed_count = np.empty(n_cand, np.int64)
    n_seeds = 0
    rad = _SEED_RADIUS
    for z in range(Z):
        for y in range(Y):
            for x in range(X):
                v = hist[z, y, x]
                if v <= _SEED_MIN_COUNT:
                    continue
                is_max = True
                for zz in range(max(0, z - rad), min(Z, z + rad + 1)):
                    for yy in range(max(0, y - rad), min(Y, y + rad + 1)):
                        for xx in range(max(0, x - rad), min(X, x + rad + 1)):
                            if hist[zz, yy, xx] > v:
                                is_max = False
                                break
                        if not is_max:
                            break
                    if not is_max:
                        break
                if is_max:
                    seed_z[n_seeds] = z
                    seed_y[n_seeds] = y
                    seed_x[n_seeds] = x
                    seed_count[n_seeds] = v
                    n_seeds += 1
    order = np.argsort(seed_count[:n_seeds], kind="mergesort")

    # grow each seed GROW_STEPS chessboard steps through bins with > GROW_MIN_COUNT points; seeds with more
    # points are drawn later and win shared bins
    bin_label = np.zeros((Z, Y, X), np.int32)
    width = 2 * _GROW_STEPS + 1
    visited = np.zeros((width, width, width), np.int32)
    queue = np.empty((width * width * width, 3), np.int64)
    for rank in range(n_seeds):
        s = order[rank]
        stamp = rank + 1
        cz = seed_z[s]
        cy = seed_y[s]
        cx = seed_x[s]
        queue[0, 0] = cz
        queue[0, 1] = cy
        queue[0, 2] = cx
        visited[_GROW_STEPS, _GROW_STEPS, _GROW_STEPS] = stamp
        head = 0
        tail = 1
        for _ in range(_GROW_STEPS):
            layer_end = tail
            while head < layer_end:
                qz = queue[head, 0]
                qy = queue[head, 1]
                qx = queue[head, 2]
                head += 1
                for zz in range(max(0, qz - 1), min(Z, qz + 2)):
                    for yy in range(max(0, qy - 1), min(Y, qy + 2)):
                        for xx in range(max(0, qx - 1), min(X, qx + 2)):
                            wz = zz - cz + _GROW_STEPS
                            wy = yy - cy + _GROW_STEPS
                            wx = xx - cx + _GROW_STEPS
                            if visited[wz, wy, wx] == stamp or hist[zz, yy, xx] <= _GROW_MIN_COUNT:
                                continue
                            visited[wz, wy, wx] = stamp
                            queue[tail, 0] = zz
                            queue[tail, 1] = yy
                            queue[tail, 2] = xx
                            tail += 1
        for q in range(tail):
            bin_label[queue[q, 0], queue[q, 1], queue[q, 2]] = rank + 1

    labels = np.empty(n, np.int32)
    size = np.zeros(n_seeds + 1, np.int64)
    for i in range(n):
        lab = bin_label[pz[i], py[i], px[i]]
        labels[i] = lab
        size[lab] += 1
    # drop masks that are too large, then number the rest by first appearance
    new_id = np.zeros(n_seeds + 1, np.int32)
    for lab in range(1, n_seeds + 1):
        if size[lab] > max_size:
            new_id[lab] = -1
    next_id = 1
    for i in range(n):
        lab = labels[i]
        if lab == 0:
            continue
        if new_id[lab] == 0:
            new_id[lab] = next_id
            next_id += 1
        labels[i] = max(new_id[lab], 0)
    return labels


@njit(cache=True, nogil=True)
def _end_bins(positions, length):
    """Histogram bin (int32) of each end position: truncated toward zero, then clipped to 0..length - 1.

    The same numbers as ``np.clip(positions.astype(np.int64), 0, length - 1)`` without its two 8-byte
    temporaries per point (hundreds of MB per axis for a large volume).
    """
    out = np.empty(positions.shape[0], np.int32)
    for i in range(positions.shape[0]):
        out[i] = min(max(np.int64(positions[i]), 0), length - 1)
    return out


@njit(cache=True, nogil=True)
def _pixels_of(mask):
    """(z, y, x) int32 indices of the True voxels of a (Z, Y, X) bool array, in raster order (np.nonzero's).

    Half the memory of np.nonzero's int64 indices, which for a large volume are the biggest arrays of the
    dynamics.
    """
    Z, Y, X = mask.shape
    n = 0
    for z in range(Z):
        for y in range(Y):
            for x in range(X):
                if mask[z, y, x]:
                    n += 1
    zs = np.empty(n, np.int32)
    ys = np.empty(n, np.int32)
    xs = np.empty(n, np.int32)
    k = 0
    for z in range(Z):
        for y in range(Y):
            for x in range(X):
                if mask[z, y, x]:
                    zs[k] = z
                    ys[k] = y
                    xs[k] = x
                    k += 1
    return zs, ys, xs


def get_masks(p, inds, shape, max_size_fraction=DEFAULT_MAX_SIZE_FRACTION):
    """Group pixels by where their flow trajectories end.

    The end positions (truncated to integer pixels) are histogrammed; bins holding more than 10 points that
    are the maximum of their 5x5 (5x5x5) neighbourhood seed masks; each seed grows 5 steps of 3x3 (3x3x3)
    dilation into bins holding more than 2 points (seeds with more points win shared bins); every pixel takes
    the label of its end bin. Masks larger than ``max_size_fraction`` of the image are removed and labels are
    renumbered 1..N in raster order of first appearance.

    Parameters
    ----------
    p : np.ndarray of float, shape (ndim, n)
        End positions of the pixels, in pixels (``follow_flows`` output).
    inds : tuple of ndim int arrays of shape (n,), or int array of shape (ndim, n)
        Start pixels that ``p`` belongs to (raster order for cellpose's numbering).
    shape : tuple of int
        Image shape (Ly, Lx) or (Lz, Ly, Lx).
    max_size_fraction : float
        Masks with more than ``max_size_fraction * prod(shape)`` pixels are removed.

    Returns
    -------
    np.ndarray of int32, shape ``shape``
        Label image, 0 = background.
    """
    shape = tuple(int(s) for s in shape)
    ndim = len(shape)
    if ndim not in (2, 3):
        raise InputError(f"shape must be (Ly, Lx) or (Lz, Ly, Lx), got {shape}")
    p = np.asarray(p)
    if p.ndim != 2 or p.shape[0] != ndim:
        raise InputError(f"p must have shape ({ndim}, n), got {p.shape}")
    inds = _check_points(inds, ndim, shape)
    if not all(np.issubdtype(i.dtype, np.integer) for i in inds):
        raise InputError("inds must hold integer pixel indices")
    if inds[0].shape[0] != p.shape[1]:
        raise InputError(f"p has {p.shape[1]} points but inds has {inds[0].shape[0]}")
    masks = np.zeros(shape, np.int32)
    if p.shape[1] == 0:
        return masks
    # truncation toward zero as cellpose's int cast; clip in case p comes from elsewhere
    ends = [_end_bins(p[axis], shape[axis]) for axis in range(ndim)]
    if ndim == 2:
        ends.insert(0, np.zeros_like(ends[0]))
    full = (1,) * (3 - ndim) + shape
    max_size = float(np.prod(shape)) * float(max_size_fraction)
    labels = _cluster_end_points(ends[0], ends[1], ends[2], full[0], full[1], full[2], max_size)
    masks[inds] = labels
    return masks




# ----------------------------------------------------------------------------------------------------------
# flows -> masks
# ----------------------------------------------------------------------------------------------------------

def compute_masks(dP, cellprob, niter=DEFAULT_NITER, cellprob_threshold=DEFAULT_CELLPROB_THRESHOLD,
                  flow_threshold=DEFAULT_FLOW_THRESHOLD, min_size=DEFAULT_MIN_SIZE, max_size=None,
                  max_size_fraction=DEFAULT_MAX_SIZE_FRACTION, step_scale=None):
    """Label image from network flows and cell probability (2D or 3D, by ``dP.shape[0]``).

    Pixels with ``cellprob > cellprob_threshold`` follow ``dP / 5`` (set to 0 outside those pixels) for
    ``niter`` steps (``follow_flows``); pixels ending together form masks (``get_masks``); in 2D, masks whose
    flows disagree with their shape are removed (``remove_bad_flow_masks``); finally holes are filled and
    masks outside [min_size, max_size] removed (``fill_holes_and_remove_small_masks``).

    Parameters
    ----------
    dP : np.ndarray of float, shape (2, Ly, Lx) or (3, Lz, Ly, Lx)
        Flows in network scale (5 x unit flows), (dy, dx) or (dz, dy, dx).
    cellprob : np.ndarray of float, shape (Ly, Lx) or (Lz, Ly, Lx)
        Cell-probability logits.
    niter : int
        Euler steps of the dynamics; None means 200.
    cellprob_threshold : float
        Logit a pixel must exceed to belong to a cell.
    flow_threshold : float or None
        Largest mean squared flow error of a kept mask (2D only); None or <= 0 skips the check.
    min_size : int
        Smallest kept mask in pixels (voxels); <= 0 keeps all.
    max_size : int, optional
        Largest kept mask in pixels (voxels); None or 0 means no limit.
    max_size_fraction : float
        Masks covering more than this fraction of the image are removed before the flow check.
    step_scale : sequence of float, optional
        Per-axis factor on the steps (one per flow component): flows measured on another grid than ``dP``'s
        (a network run on a resized image, its flows resampled to ``dP``'s grid) are steps of that grid, and
        ``dP``'s size / that grid's size along each axis turns them into steps of this one. None: 1 on every axis
        (cellpose's behaviour).

    Returns
    -------
    np.ndarray of int32, shape ``cellprob.shape``
        Label image, 0 = background, labels 1..N.
    """
    dP = as_flow_field(dP)
    cellprob = np.asarray(cellprob)
    if cellprob.shape != dP.shape[1:]:
        raise InputError(f"cellprob must have shape {dP.shape[1:]} to match dP {dP.shape}, got {cellprob.shape}")
    if not (np.isfinite(dP).all() and np.isfinite(cellprob).all()):
        # a network that produced NaN has failed; say so rather than return empty masks
        raise InputError("dP or cellprob holds NaN or infinite values")
    niter = DEFAULT_NITER if niter is None else int(niter)
    if niter < 0:
        raise InputError(f"niter must be >= 0, got {niter}")
    is_cell = cellprob > cellprob_threshold
    # memory matters here for large volumes (see docs/engine.md): int32 indices, in-place scaling, and every
    # intermediate dropped as soon as it is used
    inds = _pixels_of(is_cell.reshape((1,) * (3 - is_cell.ndim) + is_cell.shape))[3 - is_cell.ndim:]
    if inds[0].shape[0] == 0:
        return np.zeros(cellprob.shape, np.int32)
    field = dP.astype(np.float32, copy=False) * is_cell
    del is_cell
    field /= np.float32(FLOW_SCALE)
    if step_scale is not None:
        if len(step_scale) != dP.shape[0]:
            raise InputError(f"step_scale needs one factor per flow component ({dP.shape[0]}), got {step_scale}")
        for axis, factor in enumerate(step_scale):
            field[axis] *= np.float32(factor)
    ends = follow_flows(field, inds, niter)
    del field
    masks = get_masks(ends, inds, cellprob.shape, max_size_fraction=max_size_fraction)
    del ends, inds
    if dP.shape[0] == 2 and flow_threshold is not None and flow_threshold > 0 and masks.max() > 0:
        masks = remove_bad_flow_masks(masks, dP, threshold=flow_threshold)
    return fill_holes_and_remove_small_masks(masks, min_size=min_size, max_size=max_size)
