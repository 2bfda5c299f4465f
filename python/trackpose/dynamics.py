"""Flows <-> masks: the Cellpose dynamics.

Two directions live here:

* ``masks_to_flows``: label image -> unit flow field, by heat diffusion from a centre pixel of every mask
  (what the network is trained to predict);
* ``compute_masks``: network flows + cell probability -> label image, by following the flows to their sinks,
  grouping pixels that meet, checking each mask's flows against the flows its own shape implies (2D), filling
  holes and dropping small masks.

Both follow cellpose 3.1.1.2 (CPU path) number for number: 2D flows, 2D end points and hence 2D masks and
their label numbers are bit-identical. The heavy loops are numba kernels that process all masks / all pixels
in one compiled call (parallel over masks or pixel groups).

Differences from cellpose 3.1.1.2, on purpose:

* ``fill_holes_and_remove_small_masks`` removes masks by their own label's size. Cellpose 3.1.1.2 takes the
  position of a count in its list of present labels as the label id, so when an earlier step (the flow QC)
  left gaps in the labels it deletes the wrong masks, large ones included. Here exactly the masks smaller
  than ``min_size`` go.
* 3D ``follow_flows`` samples the flow trilinearly at the point itself, like the 2D CPU path. Cellpose runs
  3D (and all GPU) dynamics with ``torch.nn.functional.grid_sample(align_corners=False)``, which samples at
  ``p * L / (L - 1) - 0.5`` and reads zeros past the border: up to half a pixel off near the image edges.
  2D CPU results are bit-identical to cellpose's.
* ``follow_flows`` detects when a pixel's trajectory has become periodic (float32 positions repeat, which
  they do once a pixel sits in its sink) and jumps ahead; the final positions are exactly those of running
  all ``niter`` steps, only faster, so ``niter`` in the thousands costs little.
* ``flow_error`` compares against the mask flows rounded to float32 (cellpose keeps float64): errors agree
  to about 1e-7, which changes a keep/remove decision only for an error within that of the threshold.
* NaN or infinite flows or probabilities raise ``InputError`` instead of giving silently wrong masks.
* Seeds with equal histogram counts are ordered by raster position (a stable sort); cellpose uses torch's
  default (unstable) ``argsort``, so which of two equal-count neighbouring seeds wins a shared bin may differ.

Kept from cellpose, worth knowing:

* The diffusion centre of a mask is the mask pixel nearest to the mean pixel coordinate (first in raster
  order on ties), and the number of diffusion steps is ``2 * (h + w + 4)`` for a bounding box of h x w.
* 3D ``masks_to_flows`` is the sum of the 2D flows over the YX, ZX and ZY planes and is *not* renormalised
  (components reach up to 2): five times it has the scale of 3D network output, which is also a sum of two
  2D predictions per axis.
* Hole filling writes the filling mask's label over any other mask it encloses.
* ``compute_masks`` and ``fill_holes_and_remove_small_masks`` number masks in raster order of first
  appearance; ``renumber`` and ``remove_edge_masks`` keep the order of the label values (as cellpose).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from trackpose.errors import InputError

__all__ = [
    "masks_to_flows",
    "compute_masks",
    "follow_flows",
    "get_masks",
    "flow_error",
    "remove_bad_flow_masks",
    "fill_holes_and_remove_small_masks",
    "remove_edge_masks",
    "renumber",
]

#: Euler steps of the flow dynamics (cellpose default).
DEFAULT_NITER = 200
#: Cell-probability logit above which a pixel takes part in the dynamics.
DEFAULT_CELLPROB_THRESHOLD = 0.0
#: Masks whose mean squared flow error exceeds this are removed (2D only); <= 0 or None skips the check.
DEFAULT_FLOW_THRESHOLD = 0.4
#: Masks smaller than this many pixels (voxels in 3D) are removed.
DEFAULT_MIN_SIZE = 15
#: Masks covering more than this fraction of the image are removed.
DEFAULT_MAX_SIZE_FRACTION = 0.4
#: Network flows are this many times the unit flows.
FLOW_SCALE = 5.0

# get_masks constants (cellpose): a histogram bin is a seed when it holds more than _SEED_MIN_COUNT end
# points and is the maximum of its (2 * _SEED_RADIUS + 1)^d neighbourhood; a seed grows _GROW_STEPS 3^d
# dilations into bins holding more than _GROW_MIN_COUNT end points.
_SEED_MIN_COUNT = 10
_SEED_RADIUS = 2
_GROW_STEPS = 5
_GROW_MIN_COUNT = 2


# ----------------------------------------------------------------------------------------------------------
# helpers on label images
# ----------------------------------------------------------------------------------------------------------

def _check_labels(masks, name="masks"):
    """Return ``masks`` as a C-contiguous int32 label array (2D or 3D), compacting huge label values."""
    masks = np.asarray(masks)
    if masks.ndim not in (2, 3):
        raise InputError(f"{name} must be a 2D (Ly, Lx) or 3D (Lz, Ly, Lx) label array, got shape {masks.shape}")
    if masks.dtype == bool:
        return np.ascontiguousarray(masks, dtype=np.int32)
    if not np.issubdtype(masks.dtype, np.integer):
        raise InputError(f"{name} must hold integer labels, got dtype {masks.dtype}")
    if masks.size == 0:
        return np.zeros(masks.shape, np.int32)
    lo, hi = int(masks.min()), int(masks.max())
    if lo < 0:
        raise InputError(f"{name} must not hold negative labels (found {lo})")
    if hi > np.iinfo(np.int32).max or hi > 4 * masks.size + 1024:
        # sparse huge ids: compact them so per-label tables stay small (order preserved)
        _, inverse = np.unique(masks, return_inverse=True)
        first = 0 if lo == 0 else 1
        return np.ascontiguousarray((inverse.reshape(masks.shape) + first).astype(np.int32))
    return np.ascontiguousarray(masks, dtype=np.int32)


def renumber(masks):
    """Relabel masks to 1..N, keeping the order of the label values; 0 stays background.

    Parameters
    ----------
    masks : np.ndarray of int, shape (Ly, Lx) or (Lz, Ly, Lx)
        Label image, 0 = background.

    Returns
    -------
    np.ndarray of int32, same shape
        Labels 1..N without gaps; label a < label b before implies a' < b' after.
    """
    labels = _check_labels(masks)
    if labels.size == 0:
        return labels
    present = np.bincount(labels.ravel())
    present[0] = 0
    lut = np.cumsum(present > 0).astype(np.int32)
    lut[present == 0] = 0
    return lut[labels]


@njit(cache=True, nogil=True)
def _renumber_by_appearance(labels):
    """Labels 1..N in raster order of first appearance (as fastremap.renumber numbers them), int32."""
    flat = labels.copy().reshape(-1)
    max_label = 0
    for v in flat:
        if v > max_label:
            max_label = v
    new_id = np.zeros(max_label + 1, np.int32)
    next_id = 1
    for i in range(flat.shape[0]):
        v = flat[i]
        if v == 0:
            continue
        if new_id[v] == 0:
            new_id[v] = next_id
            next_id += 1
        flat[i] = new_id[v]
    return flat.reshape(labels.shape)


def _label_sizes(labels):
    """Pixel count per label value, shape (labels.max() + 1,), int64."""
    return np.bincount(labels.ravel(), minlength=1)


def remove_edge_masks(masks):
    """Remove masks that touch the image border, then renumber.

    Parameters
    ----------
    masks : np.ndarray of int, shape (Ly, Lx) or (Lz, Ly, Lx)
        Label image, 0 = background.

    Returns
    -------
    np.ndarray of int32, same shape
        The masks with no pixel on the first or last row/column (plane), relabelled 1..N in label order.
    """
    labels = _check_labels(masks)
    if labels.size == 0:
        return labels
    on_edge = np.zeros(int(labels.max()) + 1, bool)
    for axis in range(labels.ndim):
        for index in (0, -1):
            on_edge[np.take(labels, index, axis=axis).ravel()] = True
    on_edge[0] = False
    return renumber(np.where(on_edge[labels], 0, labels))


# ----------------------------------------------------------------------------------------------------------
# masks -> flows (heat diffusion)
# ----------------------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _plane_objects(labels):
    """Bounding boxes of every (plane, label) pair of a stack of 2D label planes.

    labels: int32 (P, R, C). Returns int64 arrays plane, label, r0, r1, c0, c1 (half-open boxes), one entry per
    object, ordered by plane, then by first appearance in raster order.
    """
    P, R, C = labels.shape
    max_label = 0
    for p in range(P):
        for r in range(R):
            for c in range(C):
                if labels[p, r, c] > max_label:
                    max_label = labels[p, r, c]
    slot = np.full(max_label + 1, -1, np.int64)
    touched = np.empty(min(max_label, R * C) + 1, np.int64)

    # pass 1: how many objects
    n_obj = 0
    for p in range(P):
        n_touched = 0
        for r in range(R):
            for c in range(C):
                lab = labels[p, r, c]
                if lab > 0 and slot[lab] < 0:
                    slot[lab] = 0
                    touched[n_touched] = lab
                    n_touched += 1
        n_obj += n_touched
        for t in range(n_touched):
            slot[touched[t]] = -1

    plane = np.empty(n_obj, np.int64)
    label = np.empty(n_obj, np.int64)
    r0 = np.empty(n_obj, np.int64)
    r1 = np.empty(n_obj, np.int64)
    c0 = np.empty(n_obj, np.int64)
    c1 = np.empty(n_obj, np.int64)
    # pass 2: boxes
    k = 0
    for p in range(P):
        n_touched = 0
        for r in range(R):
            for c in range(C):
                lab = labels[p, r, c]
                if lab == 0:
                    continue
                o = slot[lab]
                if o < 0:
                    o = k
                    k += 1
                    slot[lab] = o
                    touched[n_touched] = lab
                    n_touched += 1
                    plane[o] = p
                    label[o] = lab
                    r0[o] = r
                    r1[o] = r + 1
                    c0[o] = c
                    c1[o] = c + 1
                else:
                    # rows arrive in order, so only the row end and the column range can grow
                    r1[o] = r + 1
                    if c < c0[o]:
                        c0[o] = c
                    if c + 1 > c1[o]:
                        c1[o] = c + 1
        for t in range(n_touched):
            slot[touched[t]] = -1
    return plane, label, r0, r1, c0, c1


@njit(cache=True, nogil=True, parallel=True)
def _diffuse_objects(labels, plane, label, r0, r1, c0, c1, niter, orientation, out):
    """Heat-diffusion flows of every object of a plane stack, added into ``out``.

    labels: int32 (P, R, C) planes. out: (2, P, R, C) for orientation -1 (2D), else (3, Z, Y, X) with the
    planes being Z (orientation 0, rows Y, cols X), Y (1: rows Z, cols X) or X (2: rows Z, cols Y).
    Each object's normalised (d_row, d_col) is added in float64 to the current value of ``out`` and stored in
    out's dtype, as cellpose does. niter <= 0 means 2 * (h + w + 4) per object.
    """
    third = 1.0 / 9.0
    for k in prange(plane.shape[0]):
        p = plane[k]
        lab = label[k]
        h = r1[k] - r0[k]
        w = c1[k] - c0[k]
        ly = h + 2
        lx = w + 2
        inside = np.zeros(ly * lx, np.float64)
        # local coordinates are offset by 1 (padding) exactly as cellpose computes them
        sum_y = 0
        sum_x = 0
        count = 0
        for i in range(h):
            for j in range(w):
                if labels[p, r0[k] + i, c0[k] + j] == lab:
                    inside[(i + 1) * lx + j + 1] = 1.0
                    sum_y += i + 1
                    sum_x += j + 1
                    count += 1
        y_mean = sum_y / count
        x_mean = sum_x / count
        best = np.inf
        centre = 0
        for i in range(1, ly - 1):
            for j in range(1, lx - 1):
                q = i * lx + j
                if inside[q] > 0.0:
                    d = (j - x_mean) ** 2 + (i - y_mean) ** 2
                    if d < best:
                        best = d
                        centre = q
        n_steps = niter if niter > 0 else 2 * (ly + lx)

        heat = np.zeros(ly * lx, np.float64)
        new = np.zeros(ly * lx, np.float64)
        # unsigned indices: no negative-index wraparound test, so LLVM vectorises the row loop (~8x faster)
        one = np.uint64(1)
        row = np.uint64(lx)
        for _ in range(n_steps):
            heat[centre] += 1.0
            # Jacobi step: every mask pixel becomes the mean of its 3x3 neighbourhood (cellpose's summation
            # order), other pixels stay 0
            for i in range(1, ly - 1):
                base = np.uint64(i) * row
                for j in range(one, row - one):
                    q = base + j
                    new[q] = inside[q] * (third * (heat[q] + heat[q - row] + heat[q + row] + heat[q - one]
                                                   + heat[q + one] + heat[q - row - one] + heat[q - row + one]
                                                   + heat[q + row - one] + heat[q + row + one]))
            heat, new = new, heat

        for i in range(1, ly - 1):
            for j in range(1, lx - 1):
                q = i * lx + j
                if inside[q] == 0.0:
                    continue
                d_row = heat[q + lx] - heat[q - lx]
                d_col = heat[q + 1] - heat[q - 1]
                norm = 1e-60 + np.sqrt(d_row * d_row + d_col * d_col)
                v_row = d_row / norm
                v_col = d_col / norm
                rr = r0[k] + i - 1
                cc = c0[k] + j - 1
                if orientation == -1:
                    out[0, p, rr, cc] = out[0, p, rr, cc] + v_row
                    out[1, p, rr, cc] = out[1, p, rr, cc] + v_col
                elif orientation == 0:
                    out[1, p, rr, cc] = out[1, p, rr, cc] + v_row
                    out[2, p, rr, cc] = out[2, p, rr, cc] + v_col
                elif orientation == 1:
                    out[0, rr, p, cc] = out[0, rr, p, cc] + v_row
                    out[2, rr, p, cc] = out[2, rr, p, cc] + v_col
                else:
                    out[0, rr, cc, p] = out[0, rr, cc, p] + v_row
                    out[1, rr, cc, p] = out[1, rr, cc, p] + v_col


def _diffuse_planes(planes, niter, orientation, out):
    objects = _plane_objects(planes)
    if objects[0].shape[0]:
        _diffuse_objects(planes, *objects, np.int64(niter), np.int64(orientation), out)


def _flows_2d(labels, niter=None):
    """Unit flows (2, Ly, Lx) float32 of an int32 label image: cellpose's CPU masks_to_flows, rounded to float32."""
    out = np.zeros((2, 1) + labels.shape, np.float32)
    _diffuse_planes(labels[np.newaxis], 0 if niter is None else int(niter), -1, out)
    return out[:, 0]


def masks_to_flows(masks, niter=None):
    """Flow field of a label image, by heat diffusion from each mask's centre (cellpose's training target).

    For every mask, on its bounding box padded by one pixel: the centre is the mask pixel nearest to the mean
    pixel coordinate; ``niter`` times, one unit of heat is added at the centre and every mask pixel takes the
    mean of its 3x3 neighbourhood (pixels outside the mask count as 0). The flow is the central-difference
    gradient of the heat, normalised to unit length. In 3D the 2D flows of every YX, ZX and ZY plane are
    summed (not renormalised), as cellpose does.

    Parameters
    ----------
    masks : np.ndarray of int, shape (Ly, Lx) or (Lz, Ly, Lx)
        Label image, 0 = background. Label values need not be contiguous.
    niter : int, optional
        Diffusion steps per mask; default ``2 * (h + w + 4)`` for a bounding box of h x w pixels.

    Returns
    -------
    np.ndarray of float32, shape (2, Ly, Lx) or (3, Lz, Ly, Lx)
        (dy, dx) or (dz, dy, dx). 2D: unit vectors inside masks (0 at pixels the centre's heat cannot reach),
        0 outside. 3D: components in [-2, 2]. Multiply by 5 for the network's scale.
    """
    labels = _check_labels(masks)
    if niter is not None and int(niter) < 1:
        raise InputError(f"niter must be a positive number of diffusion steps, got {niter}")
    if labels.ndim == 2:
        return _flows_2d(labels, niter)
    flows = np.zeros((3,) + labels.shape, np.float32)
    n = 0 if niter is None else int(niter)
    # same order as cellpose (YX, then ZX, then ZY planes): the float32 sums round identically
    _diffuse_planes(labels, n, 0, flows)
    _diffuse_planes(np.ascontiguousarray(labels.transpose(1, 0, 2)), n, 1, flows)
    _diffuse_planes(np.ascontiguousarray(labels.transpose(2, 0, 1)), n, 2, flows)
    return flows


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


def _check_flows(dP, name="dP"):
    dP = np.asarray(dP)
    if dP.ndim not in (3, 4) or dP.shape[0] != dP.ndim - 1:
        raise InputError(f"{name} must have shape (2, Ly, Lx) or (3, Lz, Ly, Lx), got {dP.shape}")
    if not np.issubdtype(dP.dtype, np.number) or np.issubdtype(dP.dtype, np.complexfloating):
        raise InputError(f"{name} must hold real numbers, got dtype {dP.dtype}")
    return dP


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
    dP = _check_flows(dP)
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
# quality control
# ----------------------------------------------------------------------------------------------------------

def flow_error(masks, dP):
    """Mean squared difference between each mask's own flows and the network's flows (2D).

    Parameters
    ----------
    masks : np.ndarray of int, shape (Ly, Lx)
        Label image, 0 = background.
    dP : np.ndarray of float, shape (2, Ly, Lx)
        Network flows (5 x unit flows).

    Returns
    -------
    np.ndarray of float64, shape (masks.max(),)
        Entry ``i`` is the error of label ``i + 1``: the mean over its pixels of
        ``sum_c (masks_to_flows(masks)[c] - dP[c] / 5) ** 2``; NaN for labels not present.
    """
    labels = _check_labels(masks)
    dP = _check_flows(dP)
    if labels.ndim != 2 or dP.shape[0] != 2 or dP.shape[1:] != labels.shape:
        raise InputError(f"flow_error needs 2D masks and dP of shape (2, *masks.shape); "
                         f"got masks {labels.shape}, dP {dP.shape}")
    n_labels = int(labels.max()) if labels.size else 0
    if n_labels == 0:
        return np.zeros(0, np.float64)
    # only pixels inside masks matter; the diffusion runs on the masks present and nowhere else
    own = _flows_2d(labels)
    flat = labels.ravel()
    counts = np.bincount(flat, minlength=n_labels + 1)[1:].astype(np.float64)
    errors = np.zeros(n_labels, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        for c in range(2):
            net = (dP[c].astype(np.float32, copy=False) / np.float32(FLOW_SCALE)).astype(np.float64)
            squared = (own[c].astype(np.float64) - net) ** 2
            errors += np.bincount(flat, weights=squared.ravel(), minlength=n_labels + 1)[1:] / counts
    return errors


def remove_bad_flow_masks(masks, dP, threshold=DEFAULT_FLOW_THRESHOLD):
    """Remove masks whose flow error exceeds ``threshold`` (2D). Labels are not renumbered.

    Parameters
    ----------
    masks : np.ndarray of int, shape (Ly, Lx)
        Label image, 0 = background.
    dP : np.ndarray of float, shape (2, Ly, Lx)
        Network flows (5 x unit flows).
    threshold : float
        Largest accepted mean squared flow error (see ``flow_error``).

    Returns
    -------
    np.ndarray of int32, shape (Ly, Lx)
        A copy of the masks with the bad ones set to 0.
    """
    labels = _check_labels(masks).copy()
    errors = flow_error(labels, dP)
    bad = np.zeros(errors.shape[0] + 1, bool)
    bad[1:] = errors > threshold
    labels[bad[labels]] = 0
    return labels


# ----------------------------------------------------------------------------------------------------------
# hole filling and size filtering
# ----------------------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _fill_holes(labels, is_2d):
    """Fill the holes of every mask in place, masks in increasing label order (cellpose's order).

    labels: int32 (Z, Y, X); 2D images come as Z == 1 with ``is_2d`` set. A hole of mask L is a set of
    non-L pixels of L's bounding box that is not 4-connected (6 in 3D) to the box border through non-L
    pixels; it takes label L, whatever it held (an enclosed mask is absorbed).
    """
    Z, Y, X = labels.shape
    max_label = 0
    for v in labels.ravel():
        if v > max_label:
            max_label = v
    big = np.iinfo(np.int64).max
    z0 = np.full(max_label + 1, big, np.int64)
    y0 = np.full(max_label + 1, big, np.int64)
    x0 = np.full(max_label + 1, big, np.int64)
    z1 = np.zeros(max_label + 1, np.int64)
    y1 = np.zeros(max_label + 1, np.int64)
    x1 = np.zeros(max_label + 1, np.int64)
    for z in range(Z):
        for y in range(Y):
            for x in range(X):
                lab = labels[z, y, x]
                if lab == 0:
                    continue
                z0[lab] = min(z0[lab], z)
                y0[lab] = min(y0[lab], y)
                x0[lab] = min(x0[lab], x)
                z1[lab] = max(z1[lab], z + 1)
                y1[lab] = max(y1[lab], y + 1)
                x1[lab] = max(x1[lab], x + 1)
    for lab in range(1, max_label + 1):
        if z1[lab] == 0:
            continue
        dz = z1[lab] - z0[lab]
        dy = y1[lab] - y0[lab]
        dx = x1[lab] - x0[lab]
        # a box of width <= 2 along a border axis has no interior pixel, so no hole
        if dy <= 2 or dx <= 2 or (not is_2d and dz <= 2):
            continue
        outside = np.zeros((dz, dy, dx), np.uint8)
        stack = np.empty(dz * dy * dx, np.int64)  # flat box indices k * dy * dx + i * dx + j
        top = 0
        # seed the flood fill with the non-mask pixels on the box border
        for k in range(dz):
            for i in range(dy):
                for j in range(dx):
                    border = i == 0 or i == dy - 1 or j == 0 or j == dx - 1
                    if not is_2d:
                        border = border or k == 0 or k == dz - 1
                    if border and labels[z0[lab] + k, y0[lab] + i, x0[lab] + j] != lab:
                        outside[k, i, j] = 1
                        stack[top] = (k * dy + i) * dx + j
                        top += 1
        while top > 0:
            top -= 1
            k = stack[top] // (dy * dx)
            i = (stack[top] // dx) % dy
            j = stack[top] % dx
            for nb in range(6):
                kk = k
                ii = i
                jj = j
                if nb == 0:
                    ii -= 1
                elif nb == 1:
                    ii += 1
                elif nb == 2:
                    jj -= 1
                elif nb == 3:
                    jj += 1
                elif nb == 4:
                    kk -= 1
                else:
                    kk += 1
                if kk < 0 or kk >= dz or ii < 0 or ii >= dy or jj < 0 or jj >= dx:
                    continue
                if outside[kk, ii, jj] or labels[z0[lab] + kk, y0[lab] + ii, x0[lab] + jj] == lab:
                    continue
                outside[kk, ii, jj] = 1
                stack[top] = (kk * dy + ii) * dx + jj
                top += 1
        for k in range(dz):
            for i in range(dy):
                for j in range(dx):
                    if not outside[k, i, j]:
                        labels[z0[lab] + k, y0[lab] + i, x0[lab] + j] = lab


def fill_holes_and_remove_small_masks(masks, min_size=DEFAULT_MIN_SIZE, max_size=None):
    """Fill holes in every mask, drop masks outside the size range, renumber 1..N.

    Masks smaller than ``min_size`` are removed first, then holes are filled (in 2D and 3D: background
    regions a mask encloses, 4-/6-connected, take its label), then masks still smaller than ``min_size`` or
    larger than ``max_size`` are removed. Sizes are counted per label (see the module notes on cellpose's
    label-gap bug, which this avoids).

    Parameters
    ----------
    masks : np.ndarray of int, shape (Ly, Lx) or (Lz, Ly, Lx)
        Label image, 0 = background; gaps in the labels are fine.
    min_size : int
        Smallest kept mask, in pixels (voxels in 3D); <= 0 keeps all.
    max_size : int, optional
        Largest kept mask after filling, in pixels (voxels); None or 0 means no upper limit.

    Returns
    -------
    np.ndarray of int32, same shape
        Labels 1..N in raster order of first appearance (as cellpose numbers them).
    """
    labels = _check_labels(masks).copy()
    if labels.size == 0:
        return labels
    min_size = 0 if min_size is None else int(min_size)
    if min_size > 0:
        sizes = _label_sizes(labels)
        small = sizes < min_size
        small[0] = False
        if small.any():
            labels[small[labels]] = 0
    _fill_holes(labels.reshape((1,) + labels.shape) if labels.ndim == 2 else labels, labels.ndim == 2)
    sizes = _label_sizes(labels)
    drop = np.zeros(sizes.shape, bool)
    if min_size > 0:
        drop |= sizes < min_size
    if max_size:
        drop |= sizes > int(max_size)
    drop[0] = False
    if drop.any():
        labels[drop[labels]] = 0
    return _renumber_by_appearance(labels)


# ----------------------------------------------------------------------------------------------------------
# flows -> masks
# ----------------------------------------------------------------------------------------------------------

def compute_masks(dP, cellprob, niter=DEFAULT_NITER, cellprob_threshold=DEFAULT_CELLPROB_THRESHOLD,
                  flow_threshold=DEFAULT_FLOW_THRESHOLD, min_size=DEFAULT_MIN_SIZE, max_size=None,
                  max_size_fraction=DEFAULT_MAX_SIZE_FRACTION):
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

    Returns
    -------
    np.ndarray of int32, shape ``cellprob.shape``
        Label image, 0 = background, labels 1..N.
    """
    dP = _check_flows(dP)
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
    ends = follow_flows(field, inds, niter)
    del field
    masks = get_masks(ends, inds, cellprob.shape, max_size_fraction=max_size_fraction)
    del ends, inds
    if dP.shape[0] == 2 and flow_threshold is not None and flow_threshold > 0 and masks.max() > 0:
        masks = remove_bad_flow_masks(masks, dP, threshold=flow_threshold)
    return fill_holes_and_remove_small_masks(masks, min_size=min_size, max_size=max_size)
