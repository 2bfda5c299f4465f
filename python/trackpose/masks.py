"""Mask post-processing: flow quality check, hole filling, size and edge filters, renumbering.

The last steps of ``dynamics.compute_masks`` and what callers apply to label images afterwards. They follow
cellpose 3.1.1.2 (CPU path) number for number, except where noted.

Differences from cellpose 3.1.1.2, on purpose:

* ``fill_holes_and_remove_small_masks`` removes masks by their own label's size. Cellpose 3.1.1.2 takes the
  position of a count in its list of present labels as the label id, so when an earlier step (the flow QC)
  left gaps in the labels it deletes the wrong masks, large ones included. Here exactly the masks smaller
  than ``min_size`` go.
* ``flow_error`` compares against the mask flows rounded to float32 (cellpose keeps float64): errors agree
  to about 1e-7, which changes a keep/remove decision only for an error within that of the threshold.

Kept from cellpose, worth knowing:

* Hole filling writes the filling mask's label over any other mask it encloses.
* ``fill_holes_and_remove_small_masks`` numbers masks in raster order of first appearance; ``renumber`` and
  ``remove_edge_masks`` keep the order of the label values (as cellpose).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from trackpose.errors import InputError
from trackpose.flows import FLOW_SCALE, as_flow_field, masks_to_flows
from trackpose.labels import as_label_image, compact_labels

__all__ = [
    "flow_error",
    "remove_bad_flow_masks",
    "fill_holes_and_remove_small_masks",
    "remove_edge_masks",
    "remove_faint_masks",
    "renumber",
]

#: Masks whose mean squared flow error exceeds this are removed (2D only); <= 0 or None skips the check.
DEFAULT_FLOW_THRESHOLD = 0.4
#: Masks smaller than this many pixels (voxels in 3D) are removed.
DEFAULT_MIN_SIZE = 15


def _as_int32_labels(masks, name="masks"):
    """``masks`` as C-contiguous int32 labels (2D or 3D; huge sparse ids compacted in order)."""
    return compact_labels(as_label_image(masks, name, floats=False))[0]


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
    labels = _as_int32_labels(masks)
    if labels.size == 0:
        return labels
    present = np.bincount(labels.ravel()) > 0
    present[0] = False
    return _compacting_lut(present)[labels]


def _compacting_lut(keep: np.ndarray) -> np.ndarray:
    """Lookup table mapping each kept label to 1..N in order and every other label (and 0) to 0."""
    lut = np.cumsum(keep).astype(np.int32)
    lut[~keep] = 0
    return lut


_SLAB_VOXELS = 1 << 22


def remove_faint_masks(masks, cellprob, threshold):
    """Remove objects whose mean cell probability is below ``threshold`` and renumber the rest 1..N in order.

    Parameters
    ----------
    masks : np.ndarray of int, (Ly, Lx) or (Lz, Ly, Lx)
        Label image, 0 = background.
    cellprob : np.ndarray of float, same shape
        The cell-probability logits the masks were found on (in 3D mode the sum of the three views').
    threshold : float
        Objects whose mean logit is below it are removed; <= 0 removes nothing.

    Returns
    -------
    np.ndarray of int32, same shape
    """
    labels = _as_int32_labels(masks)
    if threshold <= 0 or labels.size == 0 or labels.max() == 0:
        return labels
    if cellprob.shape != labels.shape:
        raise ValueError(f"cellprob {cellprob.shape} and masks {labels.shape} differ in shape")
    sizes = np.bincount(labels.ravel())
    sums = np.zeros(len(sizes))
    # in slabs along the first axis: bincount's weights are float64, a copy of the slab only (2D + Z passes a strided
    # view of the network output, and a whole-volume float64 copy would be 8 bytes per voxel)
    step = max(1, _SLAB_VOXELS // max(1, labels[0].size))
    for a in range(0, labels.shape[0], step):
        sums += np.bincount(labels[a:a + step].ravel(), weights=np.asarray(cellprob[a:a + step], np.float64).ravel(),
                            minlength=len(sizes))
    keep = np.zeros(len(sizes), bool)
    present = sizes > 0
    keep[present] = sums[present] / sizes[present] >= threshold
    keep[0] = False
    return _compacting_lut(keep)[labels]


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
    labels = _as_int32_labels(masks)
    if labels.size == 0:
        return labels
    on_edge = np.zeros(int(labels.max()) + 1, bool)
    for axis in range(labels.ndim):
        for index in (0, -1):
            on_edge[np.take(labels, index, axis=axis).ravel()] = True
    on_edge[0] = False
    return renumber(np.where(on_edge[labels], 0, labels))



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
    labels = _as_int32_labels(masks)
    dP = as_flow_field(dP)
    if labels.ndim != 2 or dP.shape[0] != 2 or dP.shape[1:] != labels.shape:
        raise InputError(f"flow_error needs 2D masks and dP of shape (2, *masks.shape); "
                         f"got masks {labels.shape}, dP {dP.shape}")
    n_labels = int(labels.max()) if labels.size else 0
    if n_labels == 0:
        return np.zeros(0, np.float64)
    # only pixels inside masks matter; the diffusion runs on the masks present and nowhere else
    own = masks_to_flows(labels)
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
    labels = _as_int32_labels(masks).copy()
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
    labels = _as_int32_labels(masks).copy()
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
