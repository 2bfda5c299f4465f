"""Masks -> flows: the training target of the network, by heat diffusion from a centre pixel of every mask.

``masks_to_flows`` follows cellpose 3.1.1.2 (CPU path) number for number: 2D flows are bit-identical. The heavy
loop is one numba kernel that diffuses every mask of a stack of planes in one compiled call (parallel over
masks).

Kept from cellpose, worth knowing:

* The diffusion centre of a mask is the mask pixel nearest to the mean pixel coordinate (first in raster
  order on ties), and the number of diffusion steps is ``2 * (h + w + 4)`` for a bounding box of h x w.
* 3D ``masks_to_flows`` is the sum of the 2D flows over the YX, ZX and ZY planes and is *not* renormalised
  (components reach up to 2): five times it has the scale of 3D network output, which is also a sum of two
  2D predictions per axis.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from trackpose.errors import InputError
from trackpose.labels import as_label_image, compact_labels

__all__ = ["masks_to_flows", "as_flow_field", "FLOW_SCALE"]

#: Network flows are this many times the unit flows.
FLOW_SCALE = 5.0


def as_flow_field(dP, name="dP"):
    """Check that ``dP`` is a flow field, (2, Ly, Lx) or (3, Lz, Ly, Lx) real numbers, and return it as an array.

    Raises
    ------
    InputError
        Wrong shape or a non-real dtype.
    """
    dP = np.asarray(dP)
    if dP.ndim not in (3, 4) or dP.shape[0] != dP.ndim - 1:
        raise InputError(f"{name} must have shape (2, Ly, Lx) or (3, Lz, Ly, Lx), got {dP.shape}")
    if not np.issubdtype(dP.dtype, np.number) or np.issubdtype(dP.dtype, np.complexfloating):
        raise InputError(f"{name} must hold real numbers, got dtype {dP.dtype}")
    return dP


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
    labels, _ = compact_labels(as_label_image(masks, "masks", floats=False))
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
