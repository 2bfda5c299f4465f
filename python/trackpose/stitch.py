"""2D + Z stitching: link per-plane 2D masks into 3D objects by their overlap between consecutive planes.

Semantics of cellpose 3.1.1.2's ``utils.stitch3D`` (what ``stitch_threshold > 0`` does): going up the stack,
every mask of plane ``z + 1`` is compared with the (already stitched) masks of plane ``z`` by intersection over
union (IoU). IoUs below ``stitch_threshold`` are ignored, and so is every IoU that is not the largest one in its
column (for a mask of plane ``z``, only its best-matching masks of plane ``z + 1`` may take its label). A mask
of plane ``z + 1`` then takes the label of the plane-``z`` mask it has the highest remaining IoU with (the
lower label on a tie), or a new label when none is left.

How it differs from cellpose 3.1.1.2:

* Only the pairs of masks that really overlap are counted, by one pass over the pixels of each plane pair
  (memory and time grow with pixels + overlapping pairs). Cellpose builds a dense
  (masks in plane z + 1) x (largest label so far) matrix per plane pair, which grows with the number of
  objects in the whole stack and is what makes it slow on thousands of objects.
* Labels are numbered 1..N without gaps, in order of first appearance (plane by plane, then by the input
  label within a plane). For input planes whose labels are 1..n without gaps this is exactly cellpose's
  numbering; cellpose keeps gaps of the first plane and spends label ids on absent labels of later planes.
* Masks after an empty plane get labels never used before. Cellpose 3.1.1.2 resets its label counter at an
  empty plane met before any two consecutive planes both had masks, so the next masks reuse the labels of
  the planes before the gap: unrelated objects share a label (e.g. masks on planes 0 and 2 only).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from trackpose.errors import InputError
from trackpose.labels import as_label_image, compact_labels
from trackpose.settings import DEFAULTS

__all__ = ["stitch_masks", "split_at_z_valleys", "trim_dim_ends", "DEFAULT_STITCH_THRESHOLD", "DEFAULT_STITCH_SPLIT",
           "DEFAULT_STITCH_TRIM"]

#: IoU a mask needs with a mask of the previous plane to take its label (TrackMate-Cellpose's default).
DEFAULT_STITCH_THRESHOLD = 0.25
#: Depth of an intensity valley along Z (a fraction of the dimmer of the two brighter parts around it) at which
#: ``segment`` splits a stitched object (the ``stitch_split`` setting's default); 0 = never, cellpose's stitching.
DEFAULT_STITCH_SPLIT = DEFAULTS["stitch_split"]
#: Planes at the top and bottom of a stitched object dimmer than this fraction of its brightest plane are dropped by
#: ``segment`` (the ``stitch_trim`` setting's default); 0 = never.
DEFAULT_STITCH_TRIM = DEFAULTS["stitch_trim"]


def stitch_masks(masks, stitch_threshold=DEFAULT_STITCH_THRESHOLD):
    """Link per-plane 2D masks across consecutive planes by IoU into 3D labels.

    Parameters
    ----------
    masks : array_like of int, shape (Lz, Ly, Lx)
        One 2D label image per plane (0 = background); labels need not be related between planes.
        Whole-number float arrays (ImageJ 32-bit label images) are accepted.
    stitch_threshold : float, default 0.25
        Smallest IoU (0..1) at which a mask continues an object of the previous plane. 0 links any overlap;
        above 1 nothing is linked.

    Returns
    -------
    np.ndarray of int32, shape (Lz, Ly, Lx)
        Labels 1..N, one per object followed through Z; 0 is background.

    Raises
    ------
    InputError
        ``masks`` is not a 3D label array, or ``stitch_threshold`` is negative or not a number.
    """
    labels, _ = compact_labels(as_label_image(masks, name="masks", ndims=(3,)))  # huge ids renumbered in order
    try:
        threshold = float(stitch_threshold)
    except (TypeError, ValueError):
        raise InputError(f"stitch_threshold must be a number, got {stitch_threshold!r}") from None
    if not threshold >= 0:  # also rejects NaN
        raise InputError(f"stitch_threshold must be >= 0 (an IoU), got {stitch_threshold!r}")
    out = np.zeros(labels.shape, np.int32)
    if labels.size:
        n_labels = int(labels.max()) + 1
        _stitch(labels.reshape(labels.shape[0], -1), n_labels, threshold, out.reshape(labels.shape[0], -1))
    return out


def split_at_z_valleys(labels: np.ndarray, intensity: np.ndarray, depth: float = DEFAULT_STITCH_SPLIT) -> np.ndarray:
    """Split 3D objects where their brightness along Z dips: nuclei of successive layers chained into one object.

    2D + Z stitching links a nucleus to the one above it whenever the light between them is segmented in the
    planes in between. For each object, its mean ``intensity`` per plane is a profile along Z; where the profile
    falls below ``(1 - depth)`` times the dimmer of its maxima on either side, the object is cut at the deepest
    such plane (which goes with the part above it), and both parts are examined again.

    Parameters
    ----------
    labels : (Z, Y, X) int array
        3D labels numbered 1..N (as :func:`stitch_masks` returns them); not modified.
    intensity : (Z, Y, X) float array
        The image the labels were found in, normalised so that background is near 0 (e.g. 1-99 % percentiles).
    depth : float in [0, 1)
        How deep a valley must be, as a fraction of the dimmer side's maximum. 0 returns a copy of ``labels``.

    Returns
    -------
    np.ndarray of int32
        The labels with every cut object's upper parts under new labels (after the largest input label).
    """
    depth, out, intensity, lut = _prepare(labels, intensity, depth, "stitch_split", "a valley's depth as a fraction")
    if depth == 0 or lut is None:
        return out
    next_label = n = len(lut)
    for label, planes, profile in _profiles(out, intensity, n, min_planes=3):
        for start, stop in _valley_cuts(profile, 1 - depth)[1:]:
            lut[label, planes[start:stop]] = next_label
            next_label += 1
    if next_label > n:
        _relabel(out.reshape(out.shape[0], -1), lut)
    return out


def trim_dim_ends(labels: np.ndarray, intensity: np.ndarray, fraction: float = DEFAULT_STITCH_TRIM) -> np.ndarray:
    """Drop the planes at the top and bottom of each 3D object whose mean ``intensity`` inside it is below
    ``fraction`` of its brightest plane's: the out-of-focus light above and below a nucleus that per-plane 2D
    segmentation calls part of it. Planes between two kept planes are kept. ``fraction`` 0 returns a copy.
    ``labels`` and ``intensity`` as in :func:`split_at_z_valleys`; not modified."""
    fraction, out, intensity, lut = _prepare(labels, intensity, fraction, "stitch_trim",
                                             "a fraction of an object's brightest plane")
    if fraction == 0 or lut is None:
        return out
    changed = False
    for label, planes, profile in _profiles(out, intensity, len(lut), min_planes=2):
        if profile.max() <= 0:  # darker than the background everywhere: nothing to measure against
            continue
        bright = np.flatnonzero(profile >= fraction * profile.max())
        drop = np.r_[planes[:bright[0]], planes[bright[-1] + 1:]]
        if len(drop):
            lut[label, drop] = 0
            changed = True
    if changed:
        _relabel(out.reshape(out.shape[0], -1), lut)
    return out


def _prepare(labels, intensity, value, setting, meaning):
    """The checked setting, the labels as a fresh C-ordered int32 copy, the intensity as C-ordered float32, and an
    identity (label, plane) -> label table (None when there are no labels)."""
    value = float(value)
    if not 0 <= value < 1:
        raise InputError(f"{setting} must be in [0, 1) ({meaning}), got {value}")
    labels = as_label_image(labels, name="labels", ndims=(3,), dtype=np.int32)
    intensity = np.asarray(intensity)
    if intensity.shape != labels.shape:
        raise InputError(f"{setting} needs an intensity image of the labels' shape {labels.shape}, got "
                         f"{intensity.shape}")
    out = np.array(labels, order="C", copy=True)
    n = int(out.max()) + 1 if out.size else 1
    lut = np.tile(np.arange(n, dtype=np.int32)[:, None], (1, out.shape[0])) if n > 1 else None
    return value, out, np.ascontiguousarray(intensity, dtype=np.float32), lut


def _profiles(labels, intensity, n, min_planes):
    """(label, planes it is in, its mean intensity in each) for every label in at least ``min_planes`` planes."""
    nz = labels.shape[0]
    area, total = _plane_sums(labels.reshape(nz, -1), intensity.reshape(nz, -1), n)
    for label in range(1, n):
        planes = np.flatnonzero(area[label])
        if len(planes) >= min_planes:
            yield label, planes, total[label, planes] / area[label, planes]


@njit(cache=True, nogil=True)
def _plane_sums(labels, intensity, n):
    """Pixels and summed intensity of each label in each plane: two (n, planes) arrays."""
    n_planes, n_pixels = labels.shape
    area = np.zeros((n, n_planes), np.int64)
    total = np.zeros((n, n_planes), np.float64)
    for z in range(n_planes):
        for p in range(n_pixels):
            label = labels[z, p]
            if label > 0:
                area[label, z] += 1
                total[label, z] += intensity[z, p]
    return area, total


@njit(cache=True, nogil=True)
def _relabel(labels, lut):
    n_planes, n_pixels = labels.shape
    for z in range(n_planes):
        for p in range(n_pixels):
            labels[z, p] = lut[labels[z, p], z]


def _valley_cuts(profile: np.ndarray, keep: float) -> list:
    """(start, stop) index ranges of ``profile`` after cutting, recursively, at its deepest valley below ``keep``
    times the dimmer of the maxima on either side; in order along the profile."""
    pieces, todo = [], [(0, len(profile))]
    while todo:
        start, stop = todo.pop()
        p = profile[start:stop]
        cut = None
        if len(p) >= 3:
            above = np.maximum.accumulate(p)[:-2]              # brightest plane before each inner plane
            below = np.maximum.accumulate(p[::-1])[::-1][2:]   # and after it
            side = np.minimum(above, below)
            drop = np.where(p[1:-1] < keep * side, side - p[1:-1], 0.0)
            if drop.max() > 0:
                cut = int(np.argmax(drop)) + 1
        if cut is None:
            pieces.append((start, stop))
        else:
            todo += [(start, start + cut), (start + cut, stop)]
    return sorted(pieces)


@njit(cache=True, nogil=True)
def _stitch(planes, n_labels, threshold, out):
    """Stitch ``planes`` (Lz, pixels) with labels < n_labels into ``out`` (same shape, output labels)."""
    n_planes, n_pixels = planes.shape
    lut = np.zeros(n_labels, np.int32)
    present = np.zeros(n_labels, np.bool_)
    last = 0  # largest output label handed out so far
    # plane 0: its labels in increasing order become 1..n0
    for p in range(n_pixels):
        present[planes[0, p]] = True
    for label in range(1, n_labels):
        if present[label]:
            last += 1
            lut[label] = last
    for p in range(n_pixels):
        out[0, p] = lut[planes[0, p]]

    # work arrays, reused plane after plane (the previous plane's labels are output labels <= last)
    area_new = np.zeros(n_labels, np.int64)
    shared_new = np.zeros(n_labels, np.int64)  # pixels a new-plane mask shares with any previous-plane mask
    start = np.zeros(n_labels + 1, np.int64)
    fill = np.zeros(n_labels, np.int64)
    previous_of_shared = np.zeros(n_pixels, np.int32)
    for z in range(1, n_planes):
        new = planes[z]
        prev = out[z - 1]
        area_prev = np.zeros(last + 1, np.int64)
        column_best = np.zeros(last + 1, np.float64)
        count = np.zeros(last + 1, np.int64)  # scratch: overlap of one new mask with each previous mask
        touched = np.zeros(last + 1, np.int32)
        area_new[:] = 0
        shared_new[:] = 0
        for p in range(n_pixels):
            area_new[new[p]] += 1
            area_prev[prev[p]] += 1
            if new[p] > 0 and prev[p] > 0:
                shared_new[new[p]] += 1
        # group the previous-plane labels of the shared pixels by new-plane label (counting sort)
        start[0] = 0
        for label in range(n_labels):
            start[label + 1] = start[label] + shared_new[label]
            fill[label] = start[label]
        for p in range(n_pixels):
            if new[p] > 0 and prev[p] > 0:
                previous_of_shared[fill[new[p]]] = prev[p]
                fill[new[p]] += 1

        # pass 1: the best IoU (at or above threshold) each previous-plane mask has with any new mask
        for label in range(1, n_labels):
            n_touched = 0
            for k in range(start[label], start[label + 1]):
                q = previous_of_shared[k]
                if count[q] == 0:
                    touched[n_touched] = q
                    n_touched += 1
                count[q] += 1
            for t in range(n_touched):
                q = touched[t]
                iou = count[q] / (area_new[label] + area_prev[q] - count[q])
                if iou >= threshold and iou > column_best[q]:
                    column_best[q] = iou
                count[q] = 0

        # pass 2: each new mask takes the previous label of its best surviving IoU, else a new label
        for label in range(1, n_labels):
            lut[label] = 0
            if area_new[label] == 0:
                continue
            n_touched = 0
            for k in range(start[label], start[label + 1]):
                q = previous_of_shared[k]
                if count[q] == 0:
                    touched[n_touched] = q
                    n_touched += 1
                count[q] += 1
            best_iou = 0.0
            best = 0
            for t in range(n_touched):
                q = touched[t]
                iou = count[q] / (area_new[label] + area_prev[q] - count[q])
                count[q] = 0
                if iou >= threshold and iou >= column_best[q] and iou > 0.0:
                    if iou > best_iou or (iou == best_iou and q < best):
                        best_iou = iou
                        best = q
            if best == 0:
                last += 1
                best = last
            lut[label] = best
        for p in range(n_pixels):
            out[z, p] = lut[new[p]]
