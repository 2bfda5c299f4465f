"""Shapes of labelled objects: 2D contour polygons, 3D triangle meshes and per-object measurements.

This is the last numerical step of the pipeline (masks -> shapes): it turns a label image into what TrackMate
shows as spots (2D polygons, 3D meshes) and into a table of centroids, sizes and qualities.

Coordinate conventions (shared by every function here and by ``shapes.json`` of the bridge protocol):

* Pixel ``(i, j)`` of a 2D label image (row ``i``, column ``j``) is the square ``x in [j, j + 1]``,
  ``y in [i, i + 1]``; its centre is ``(j + 0.5, i + 0.5)``. Voxel ``(k, i, j)`` is the cube
  ``[j, j + 1] x [i, i + 1] x [k, k + 1]`` with centre ``(j + 0.5, i + 0.5, k + 0.5)``. Points are always
  given as ``(x, y)`` or ``(x, y, z)``, i.e. in the reverse of the array axis order.
* ``spacing`` is the physical size of a pixel / voxel **in array axis order**, ``(dy, dx)`` or
  ``(dz, dy, dx)`` (as in scipy and scikit-image); a single number means isotropic. Physical coordinates are the
  pixel coordinates above times the spacing of their axis.
* Polygons run counter-clockwise **as seen on screen**, with x to the right and y downwards: the object is on
  the left of every edge. In these y-down coordinates the shoelace sum
  ``0.5 * sum(x[k] * y[k+1] - x[k+1] * y[k])`` is therefore *negative*: minus the enclosed area.
* Mesh triangles ``(a, b, c)`` are ordered so that ``cross(b - a, c - a)``, computed on the ``(x, y, z)``
  vertices, points out of the object: the signed volume ``sum(dot(a, cross(b, c))) / 6`` is positive.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

from trackpose.errors import InputError
from trackpose.labels import as_label_image as _as_label_image

__all__ = [
    "contours",
    "simplify_polygon",
    "meshes",
    "object_table",
    "write_ply",
    "read_ply",
    "polygon_area",
    "mesh_volume",
    "as_label_image",
    "DEFAULT_SIMPLIFY_TOLERANCE",
]

#: Douglas-Peucker tolerance in pixels used when ``simplify=True`` (TrackMate's own simplification epsilon).
DEFAULT_SIMPLIFY_TOLERANCE = 0.5

# Taubin smoothing: a shrinking step (lambda) then an inflating one (mu), |mu| slightly above lambda so that the
# pass-band (k_pb = 1 / lambda + 1 / mu ~ 0.1) keeps the shape's low frequencies and its volume.
_TAUBIN_LAMBDA = 0.5
_TAUBIN_MU = -0.53


# ----------------------------------------------------------------------------------------------------------
# label images
# ----------------------------------------------------------------------------------------------------------

def as_label_image(labels, name="labels", ndims=(2, 3)) -> np.ndarray:
    """:func:`trackpose.labels.as_label_image`, returning int32 (int64 above the int32 range)."""
    array = _as_label_image(labels, name=name, ndims=ndims)
    if array.size and array.max() > np.iinfo(np.int32).max:
        return array.astype(np.int64, copy=False)
    return array.astype(np.int32, copy=False)


def _kernel_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels the numba kernels can index tables with: (int32 C-contiguous labels, ids).

    ``ids`` is None when the labels are used as they are (kernel label k is label k); when label values are
    huge compared with the image (say 10**9 in a small image) they are renumbered 1..n in order and
    ``ids[k]`` gives the original id of kernel label k (``ids[0] = 0``).
    """
    if labels.size == 0:
        return np.zeros(labels.shape, np.int32), None
    high = int(labels.max())
    if high <= 4 * labels.size + 1024:
        return np.ascontiguousarray(labels, dtype=np.int32), None
    ids, inverse = np.unique(labels, return_inverse=True)
    if ids[0] != 0:
        ids, inverse = np.concatenate([[0], ids]), inverse + 1
    return np.ascontiguousarray(inverse.reshape(labels.shape), dtype=np.int32), ids.astype(np.int64)


def _spacing(spacing, ndim: int) -> np.ndarray:
    """Spacing in array axis order as a float64 array of length ndim (a scalar means isotropic)."""
    if spacing is None:
        return np.ones(ndim)
    values = np.asarray(spacing, dtype=np.float64) if np.ndim(spacing) else np.full(ndim, float(spacing))
    if values.shape != (ndim,):
        raise InputError(f"spacing must be one number or {ndim} numbers in array axis order "
                         f"({'(dz, dy, dx)' if ndim == 3 else '(dy, dx)'}), got {spacing!r}")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise InputError(f"spacing must be positive and finite, got {spacing!r}")
    return values


# ----------------------------------------------------------------------------------------------------------
# per-object measurements
# ----------------------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _object_stats(labels, n, cellprob, use_cellprob):
    """One pass over a (Lz, Ly, Lx) label volume (labels <= n): per label the voxel count, coordinate sums,
    inclusive min / max index per axis (z, y, x), and the sum of sigmoid(cellprob)."""
    count = np.zeros(n + 1, np.int64)
    sums = np.zeros((n + 1, 3), np.float64)
    low = np.full((n + 1, 3), np.iinfo(np.int64).max, np.int64)
    high = np.full((n + 1, 3), -1, np.int64)
    prob = np.zeros(n + 1, np.float64)
    depth, height, width = labels.shape
    for z in range(depth):
        for y in range(height):
            for x in range(width):
                label = labels[z, y, x]
                if label == 0:
                    continue
                count[label] += 1
                sums[label, 0] += z
                sums[label, 1] += y
                sums[label, 2] += x
                low[label, 0] = min(low[label, 0], z)
                low[label, 1] = min(low[label, 1], y)
                low[label, 2] = min(low[label, 2], x)
                high[label, 0] = max(high[label, 0], z)
                high[label, 1] = max(high[label, 1], y)
                high[label, 2] = max(high[label, 2], x)
                if use_cellprob:
                    prob[label] += 1.0 / (1.0 + np.exp(-cellprob[z, y, x]))
    return count, sums, low, high, prob


def object_table(labels, spacing=None, cellprob=None) -> list[dict]:
    """Centroid, size, bounding box, equivalent radius and quality of every object of a label image.

    Parameters
    ----------
    labels : array_like of int, shape (Ly, Lx) or (Lz, Ly, Lx)
        Label image, 0 = background. A label split into several pieces is measured over all its pixels.
    spacing : float or sequence of float, optional
        Physical pixel / voxel size in array axis order, ``(dy, dx)`` or ``(dz, dy, dx)``; default 1.
    cellprob : array_like of float, same shape as ``labels``, optional
        The network's cell-probability logits. When given, ``quality`` is the object's mean of
        ``sigmoid(cellprob)`` (0..1); otherwise it is the object's area (2D) or volume (3D) in pixels.

    Returns
    -------
    list of dict, one per label in increasing label order, with keys

    - ``label`` (int);
    - ``centroid``: mean pixel centre ``[x, y]`` or ``[x, y, z]`` in pixels, pixel ``(i, j)`` centred at
      ``(j + 0.5, i + 0.5)`` (so a polygon from :func:`contours` of a hole-free object has the same centroid);
    - 2D: ``area`` (pixels) and ``area_physical``; 3D: ``volume`` (voxels) and ``volume_physical``;
    - ``bbox``: ``[xmin, ymin, xmax, ymax]`` or ``[xmin, ymin, zmin, xmax, ymax, zmax]`` on pixel corners
      (``xmax`` is one past the last column), i.e. the bounding box of the object's polygon or mesh;
    - ``radius``: equivalent radius in pixels, ``sqrt(area / pi)`` or ``cbrt(3 volume / (4 pi))``, and
      ``radius_physical``, the same from the physical area or volume;
    - ``quality`` (float).
    """
    labels = as_label_image(labels)
    ndim = labels.ndim
    sizes = _spacing(spacing, ndim)
    use_cellprob = cellprob is not None
    if use_cellprob:
        cellprob = np.asarray(cellprob)
        if cellprob.shape != labels.shape:
            raise InputError(f"cellprob must have the shape of labels {labels.shape}, got {cellprob.shape}")
        if cellprob.dtype.kind not in "fiu":
            raise InputError(f"cellprob must hold numbers (logits), got dtype {cellprob.dtype}")
        cellprob = cellprob.astype(np.float32, copy=False)
    kernel_labels, ids = _kernel_labels(labels)
    volume = kernel_labels if ndim == 3 else kernel_labels[None]
    values = (cellprob if ndim == 3 else cellprob[None]) if use_cellprob else np.zeros((1, 1, 1), np.float32)
    n = int(volume.max()) if volume.size else 0
    count, sums, low, high, prob = _object_stats(volume, n, values, use_cellprob)
    present = np.flatnonzero(count[1:]) + 1
    label_ids = present if ids is None else ids[present]
    count, sums, low, high, prob = count[present], sums[present], low[present], high[present], prob[present]
    axes = slice(None, None, -1) if ndim == 3 else slice(None, 0, -1)  # (z, y, x) columns -> x, y[, z]
    centroid = sums[:, axes] / count[:, None] + 0.5
    low, high = low[:, axes], high[:, axes] + 1
    cell = float(np.prod(sizes))
    size_px = count.astype(np.float64)
    if ndim == 2:
        radius = np.sqrt(size_px / np.pi)
        radius_physical = np.sqrt(size_px * cell / np.pi)
    else:
        radius = np.cbrt(3 * size_px / (4 * np.pi))
        radius_physical = np.cbrt(3 * size_px * cell / (4 * np.pi))
    quality = prob / size_px if use_cellprob else size_px
    size_key = "area" if ndim == 2 else "volume"
    table = []
    for k in range(len(present)):
        table.append({
            "label": int(label_ids[k]),
            "centroid": centroid[k].tolist(),
            size_key: int(count[k]),
            size_key + "_physical": float(size_px[k] * cell),
            "bbox": low[k].tolist() + high[k].tolist(),
            "radius": float(radius[k]),
            "radius_physical": float(radius_physical[k]),
            "quality": float(quality[k]),
        })
    return table


# ----------------------------------------------------------------------------------------------------------
# 2D contours
# ----------------------------------------------------------------------------------------------------------

@njit(cache=True, nogil=True)
def _row_runs(labels):
    """Runs of equal non-zero labels along the rows of a 2D label image, in raster order: (row, first column,
    one past the last column, label) as four int64 arrays."""
    height, width = labels.shape
    n = 0
    for y in range(height):
        for x in range(width):
            if labels[y, x] != 0 and (x == 0 or labels[y, x - 1] != labels[y, x]):
                n += 1
    row = np.empty(n, np.int64)
    first = np.empty(n, np.int64)
    end = np.empty(n, np.int64)
    label = np.empty(n, np.int64)
    k = -1
    for y in range(height):
        for x in range(width):
            value = labels[y, x]
            if value != 0:
                if x == 0 or labels[y, x - 1] != value:
                    k += 1
                    row[k], first[k], label[k] = y, x, value
                end[k] = x + 1
    return row, first, end, label


@njit(cache=True, nogil=True)
def _root(parent, k):
    while parent[k] != k:
        parent[k] = parent[parent[k]]
        k = parent[k]
    return k


@njit(cache=True, nogil=True)
def _largest_piece_starts(labels, n):
    """Row and column of the first pixel (raster order) of the largest 8-connected piece of each label 0..n
    (the earliest piece on a tie); -1 for absent labels. Pieces are found by joining row runs."""
    row, first, end, label = _row_runs(labels)
    n_runs = row.shape[0]
    parent = np.arange(n_runs)
    # runs of consecutive rows touch (8-connectivity) when their column ranges grown by one overlap; the
    # root of a piece is always its first run in raster order
    above = 0  # first run of the row above that may still touch a run of this row
    row_start = 0  # first run of this row; runs above..row_start-1 lie in the row above
    for k in range(n_runs):
        if k > 0 and row[k] != row[k - 1]:
            above = row_start if row[k] == row[k - 1] + 1 else k  # else: no runs in the row above
            row_start = k
        j = above
        while j < row_start and end[j] < first[k]:
            j += 1
        above = j
        while j < row_start and first[j] <= end[k]:
            if label[j] == label[k]:
                r0, r1 = _root(parent, j), _root(parent, k)
                if r0 < r1:
                    parent[r1] = r0
                elif r1 < r0:
                    parent[r0] = r1
            j += 1
    size = np.zeros(n_runs, np.int64)
    for k in range(n_runs):
        size[_root(parent, k)] += end[k] - first[k]
    start_row = np.full(n + 1, -1, np.int64)
    start_col = np.full(n + 1, -1, np.int64)
    best = np.zeros(n + 1, np.int64)
    for k in range(n_runs):  # raster order: the earliest piece wins ties
        if size[k] > best[label[k]]:
            best[label[k]] = size[k]
            start_row[label[k]], start_col[label[k]] = row[k], first[k]
    return start_row, start_col


@njit(cache=True, nogil=True)
def _pixel(labels, y, x):
    if 0 <= y < labels.shape[0] and 0 <= x < labels.shape[1]:
        return labels[y, x]
    return 0


@njit(cache=True, nogil=True)
def _trace(labels, label, y0, x0, out):
    """Walk the outer boundary of the piece of ``label`` whose first pixel is (y0, x0) along pixel edges,
    object on the left; write the corners where the walk turns into ``out`` (when it has room) and return their
    number. Pixels of the label touching diagonally belong to the piece (8-connectivity).

    Headings on screen (x right, y down): 0 east (+x), 1 south (+y), 2 west (-x), 3 north (-y); a right turn is
    d + 1, a left turn d + 3 (mod 4). At corner (x, y) the four pixels around are (y - 1, x - 1), (y - 1, x),
    (y, x - 1) and (y, x); the walk looks at the two ahead of it."""
    x, y, d = x0, y0, 1  # top-left corner of the first pixel, heading south down its left side
    if out.shape[0] > 0:
        out[0, 0], out[0, 1] = x0, y0
    n = 1
    while True:
        if d == 0:
            x += 1
            left, right = _pixel(labels, y - 1, x), _pixel(labels, y, x)
        elif d == 1:
            y += 1
            left, right = _pixel(labels, y, x), _pixel(labels, y, x - 1)
        elif d == 2:
            x -= 1
            left, right = _pixel(labels, y, x - 1), _pixel(labels, y - 1, x - 1)
        else:
            y -= 1
            left, right = _pixel(labels, y - 1, x - 1), _pixel(labels, y - 1, x)
        if x == x0 and y == y0:
            return n
        if right == label:  # turn right (also across a diagonal contact: 8-connectivity)
            d = (d + 1) % 4
        elif left == label:  # straight on: not a corner
            continue
        else:
            d = (d + 3) % 4
        if out.shape[0] > n:
            out[n, 0], out[n, 1] = x, y
        n += 1


@njit(cache=True, nogil=True)
def _trace_all(labels, start_row, start_col):
    n_labels = start_row.shape[0]
    counts = np.zeros(n_labels, np.int64)
    none = np.zeros((0, 2), np.int64)
    for k in range(n_labels):
        if start_row[k] >= 0:
            counts[k] = _trace(labels, k, start_row[k], start_col[k], none)
    offsets = np.zeros(n_labels + 1, np.int64)
    for k in range(n_labels):
        offsets[k + 1] = offsets[k] + counts[k]
    vertices = np.empty((offsets[n_labels], 2), np.int64)
    for k in range(n_labels):
        if start_row[k] >= 0:
            _trace(labels, k, start_row[k], start_col[k], vertices[offsets[k]:offsets[k + 1]])
    return vertices, offsets


@njit(cache=True, nogil=True)
def _segment_distance(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length2))
    ex, ey = ax + t * dx - px, ay + t * dy - py
    return np.sqrt(ex * ex + ey * ey)


@njit(cache=True, nogil=True)
def _douglas_peucker_closed(polygon, tolerance):
    """Boolean mask of the vertices of a closed polygon kept by Douglas-Peucker (at least 3 when possible)."""
    n = polygon.shape[0]
    keep = np.zeros(n, np.bool_)
    if n <= 3:
        keep[:] = True
        return keep
    # split the loop at vertex 0 and the vertex farthest from it; simplify both chains
    far, far_d = 1, -1.0
    for i in range(1, n):
        d = (polygon[i, 0] - polygon[0, 0]) ** 2 + (polygon[i, 1] - polygon[0, 1]) ** 2
        if d > far_d:
            far, far_d = i, d
    keep[0] = True
    keep[far] = True
    stack = np.empty((2 * n + 4, 2), np.int64)
    stack[0, 0], stack[0, 1] = 0, far
    stack[1, 0], stack[1, 1] = far, n  # index n stands for vertex 0 closing the loop
    top = 2
    best_i, best_d = -1, -1.0  # the vertex farthest from any dropped chord, in case fewer than 3 survive
    while top > 0:
        top -= 1
        i0, i1 = stack[top, 0], stack[top, 1]
        if i1 - i0 < 2:
            continue
        b = i1 % n
        ax, ay, bx, by = polygon[i0, 0], polygon[i0, 1], polygon[b, 0], polygon[b, 1]
        worst, worst_d = -1, -1.0
        for i in range(i0 + 1, i1):
            d = _segment_distance(polygon[i, 0], polygon[i, 1], ax, ay, bx, by)
            if d > worst_d:
                worst, worst_d = i, d
        if worst_d > tolerance:
            keep[worst] = True
            stack[top, 0], stack[top, 1] = i0, worst
            stack[top + 1, 0], stack[top + 1, 1] = worst, i1
            top += 2
        elif worst_d > best_d:
            best_i, best_d = worst, worst_d
    if keep.sum() < 3 and best_i >= 0:
        keep[best_i] = True
    return keep


@njit(cache=True, nogil=True)
def _simplify_all(vertices, offsets, tolerance):
    keep = np.zeros(vertices.shape[0], np.bool_)
    for k in range(offsets.shape[0] - 1):
        a, b = offsets[k], offsets[k + 1]
        if b > a:
            keep[a:b] = _douglas_peucker_closed(vertices[a:b], tolerance)
    return keep


def _tolerance(simplify):
    if simplify is None or simplify is False:
        return None
    if simplify is True:
        return DEFAULT_SIMPLIFY_TOLERANCE
    try:
        tolerance = float(simplify)
    except (TypeError, ValueError):
        raise InputError(f"simplify must be None, True or a tolerance in pixels, got {simplify!r}") from None
    if not tolerance >= 0 or not np.isfinite(tolerance):
        raise InputError(f"simplify must be a tolerance >= 0 in pixels, got {simplify!r}")
    return tolerance if tolerance > 0 else None


def contours(labels, simplify=None) -> dict[int, np.ndarray]:
    """Outer boundary polygon of every object of a 2D label image.

    Parameters
    ----------
    labels : array_like of int, shape (Ly, Lx)
        Label image, 0 = background.
    simplify : None, bool or float
        None / False: the pixel-exact boundary. A number > 0: Douglas-Peucker simplification with that
        tolerance in pixels (largest distance of a dropped vertex from the simplified outline); True means
        ``DEFAULT_SIMPLIFY_TOLERANCE`` (0.5 px). The simplified polygon keeps at least 3 vertices.

    Returns
    -------
    dict int -> np.ndarray of float64, shape (N, 2)
        For each label, the ``(x, y)`` vertices of a closed polygon (the first vertex is not repeated) on pixel
        corners: pixel ``(i, j)`` is the square ``[j, j + 1] x [i, i + 1]``. The polygon runs counter-clockwise
        as seen on screen (x right, y down), object on the left, starting at the top-left corner of the
        object's first pixel in raster order; only corners are listed (no collinear vertices).

    Notes
    -----
    The pixel-exact polygon is the outer boundary of the object: it encloses exactly the object's pixels plus
    its holes, so its area equals the pixel count of a hole-free object. Pixels touching only diagonally count
    as connected (8-connectivity); there the polygon passes twice through the shared corner. A label made of
    several separate pieces gets the polygon of its largest piece (the first in raster order on a tie).
    """
    labels = as_label_image(labels, ndims=(2,))
    tolerance = _tolerance(simplify)
    kernel_labels, ids = _kernel_labels(labels)
    n = int(kernel_labels.max()) if kernel_labels.size else 0
    start_row, start_col = _largest_piece_starts(kernel_labels, n)
    vertices, offsets = _trace_all(kernel_labels, start_row, start_col)
    vertices = vertices.astype(np.float64)
    if tolerance is not None:
        keep = _simplify_all(vertices, offsets, tolerance)
        owner = np.repeat(np.arange(n + 1), np.diff(offsets))
        offsets = np.concatenate([[0], np.cumsum(np.bincount(owner[keep], minlength=n + 1))])
        vertices = vertices[keep]
    present = np.flatnonzero(start_row >= 0)
    label_ids = present if ids is None else ids[present]
    return {int(label): vertices[offsets[k]:offsets[k + 1]] for label, k in zip(label_ids, present)}


def simplify_polygon(polygon, tolerance=DEFAULT_SIMPLIFY_TOLERANCE) -> np.ndarray:
    """Douglas-Peucker simplification of one closed polygon.

    Parameters
    ----------
    polygon : array_like of float, shape (N, 2)
        Vertices of a closed polygon, first vertex not repeated.
    tolerance : float
        Largest distance (same units as the vertices) of a dropped vertex from the simplified outline.

    Returns
    -------
    np.ndarray of float64, shape (M, 2), M <= N: a subset of the vertices in their order (at least 3 kept
    when N >= 3).
    """
    polygon = np.asarray(polygon, dtype=np.float64)
    if polygon.ndim != 2 or polygon.shape[1] != 2:
        raise InputError(f"polygon must have shape (N, 2), got {polygon.shape}")
    tolerance = _tolerance(tolerance)
    if tolerance is None or len(polygon) == 0:
        return polygon.copy()
    return polygon[_douglas_peucker_closed(np.ascontiguousarray(polygon), tolerance)]


def polygon_area(polygon) -> float:
    """Area enclosed by a closed polygon in this module's orientation (counter-clockwise on screen, y down).

    Positive for polygons from :func:`contours` (it is minus the shoelace sum in y-down coordinates).
    """
    polygon = np.asarray(polygon, dtype=np.float64)
    x, y = polygon[:, 0], polygon[:, 1]
    return float(-0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


# ----------------------------------------------------------------------------------------------------------
# 3D meshes
# ----------------------------------------------------------------------------------------------------------

def _marching_cubes_table():
    """Triangles of each of the 256 inside/outside patterns of a cube's corners, as triples of cube edges.

    Derived rather than tabulated: on each cube face the iso-line cuts off every run of consecutive inside
    corners (two inside corners on a diagonal are cut off separately, so the object is 6-connected across a
    face). Adjacent cubes therefore cut their shared face identically, which makes the surface watertight. The
    cut segments of the six faces chain into closed loops, each triangulated as a fan. Segments are oriented
    so that triangle normals (right-hand rule) point from inside to outside.

    Corner ``c`` of a cube sits at offset ``(c & 1, c >> 1 & 1, c >> 2 & 1)`` in (x, y, z). Returns
    ``(edge_corner, edge_axis, triangles, counts)``: the lower corner and the axis (0 x, 1 y, 2 z) of each
    of the 12 edges, int8 (256, 5, 3) edge triples and the number of triangles per pattern.
    """
    edge_of = {}
    edge_corner, edge_axis = [], []
    for axis in range(3):
        for corner in range(8):
            if not corner >> axis & 1:
                other = corner | (1 << axis)
                edge_of[corner, other] = edge_of[other, corner] = len(edge_corner)
                edge_corner.append(corner)
                edge_axis.append(axis)
    faces = []  # four corners of each face, counter-clockwise seen from outside the cube
    for axis in range(3):
        for side in (0, 1):
            u, v = ((axis + 1) % 3, (axis + 2) % 3) if side else ((axis + 2) % 3, (axis + 1) % 3)
            faces.append([(side << axis) | (bu << u) | (bv << v) for bu, bv in ((0, 0), (1, 0), (1, 1), (0, 1))])
    triangles = np.zeros((256, 5, 3), np.int8)
    counts = np.zeros(256, np.int8)
    for pattern in range(256):
        inside = [pattern >> c & 1 for c in range(8)]
        following = {}  # cut edge -> next cut edge along the surface boundary loop
        for corners in faces:
            flags = [inside[c] for c in corners]
            for k in range(4):
                if flags[k] and not flags[k - 1]:  # a run of inside corners starts at k
                    m = k
                    while flags[(m + 1) % 4]:
                        m = (m + 1) % 4
                    following[edge_of[corners[k - 1], corners[k]]] = edge_of[corners[m], corners[(m + 1) % 4]]
        assert sorted(following) == sorted(following.values())
        remaining = set(following)
        loops = []
        while remaining:
            loop = [min(remaining)]
            while following[loop[-1]] != loop[0]:
                loop.append(following[loop[-1]])
            remaining -= set(loop)
            loops.append(loop)
        fan = [(loop[0], loop[i], loop[i + 1]) for loop in loops for i in range(1, len(loop) - 1)]
        counts[pattern] = len(fan)
        if fan:
            triangles[pattern, :len(fan)] = fan
    return np.array(edge_corner, np.int64), np.array(edge_axis, np.int64), triangles, counts


_EDGE_CORNER, _EDGE_AXIS, _TRIANGLES, _TRIANGLE_COUNTS = _marching_cubes_table()


@njit(cache=True, nogil=True)
def _march_object(labels, label, z0, y0, x0, z1, y1, x1, edge_corner, edge_axis, triangles, counts,
                  vertices, faces):
    """Marching cubes at iso 0.5 on ``labels == label`` inside the box [z0, z1) x [y0, y1) x [x0, x1) grown by
    one voxel of background on every side, so the surface is closed. Vertices are shared through the cube edge
    they lie on. Writes (x, y, z) vertices in voxel-corner coordinates and faces when the arrays have room;
    returns the numbers of vertices and faces."""
    depth, height, width = labels.shape
    nz, ny, nx = z1 - z0 + 2, y1 - y0 + 2, x1 - x0 + 2  # sample grid: the box plus one voxel each side
    inside = np.zeros((nz, ny, nx), np.uint8)  # grid point (gz, gy, gx) is voxel (z0 - 1 + gz, ...)
    for gz in range(1, nz - 1):
        for gy in range(1, ny - 1):
            for gx in range(1, nx - 1):
                if labels[z0 - 1 + gz, y0 - 1 + gy, x0 - 1 + gx] == label:
                    inside[gz, gy, gx] = 1
    write = vertices.shape[0] > 0
    vertex_of_edge = np.full(nz * ny * nx * 3, -1, np.int32)
    n_vertices = 0
    n_faces = 0
    for gz in range(nz - 1):
        for gy in range(ny - 1):
            for gx in range(nx - 1):
                pattern = (inside[gz, gy, gx] | inside[gz, gy, gx + 1] << 1 | inside[gz, gy + 1, gx] << 2
                           | inside[gz, gy + 1, gx + 1] << 3 | inside[gz + 1, gy, gx] << 4
                           | inside[gz + 1, gy, gx + 1] << 5 | inside[gz + 1, gy + 1, gx] << 6
                           | inside[gz + 1, gy + 1, gx + 1] << 7)
                if pattern == 0 or pattern == 255:
                    continue
                for t in range(counts[pattern]):
                    for s in range(3):
                        e = triangles[pattern, t, s]
                        c = edge_corner[e]
                        ez, ey, ex = gz + (c >> 2 & 1), gy + (c >> 1 & 1), gx + (c & 1)
                        key = ((ez * ny + ey) * nx + ex) * 3 + edge_axis[e]
                        v = vertex_of_edge[key]
                        if v < 0:
                            v = n_vertices
                            vertex_of_edge[key] = v
                            n_vertices += 1
                            if write:  # voxel index + 0.5 is the voxel centre; + 0.5 more along the edge
                                vertices[v, 0] = x0 - 0.5 + ex + (0.5 if edge_axis[e] == 0 else 0.0)
                                vertices[v, 1] = y0 - 0.5 + ey + (0.5 if edge_axis[e] == 1 else 0.0)
                                vertices[v, 2] = z0 - 0.5 + ez + (0.5 if edge_axis[e] == 2 else 0.0)
                        if write:
                            faces[n_faces, s] = v
                    n_faces += 1
    return n_vertices, n_faces


@njit(cache=True, nogil=True)
def _march_all(labels, boxes, edge_corner, edge_axis, triangles, counts):
    """Meshes of labels 1..n (boxes (n + 1, 6): z0, y0, x0, z1, y1, x1), concatenated with offsets."""
    n = boxes.shape[0] - 1
    sizes = np.zeros((n + 1, 2), np.int64)
    no_vertices = np.zeros((0, 3), np.float64)
    no_faces = np.zeros((0, 3), np.int64)
    for k in range(1, n + 1):
        b = boxes[k]
        if b[3] > b[0]:
            sizes[k, 0], sizes[k, 1] = _march_object(labels, k, b[0], b[1], b[2], b[3], b[4], b[5], edge_corner,
                                                     edge_axis, triangles, counts, no_vertices, no_faces)
    vertex_start = np.zeros(n + 2, np.int64)
    face_start = np.zeros(n + 2, np.int64)
    for k in range(n + 1):
        vertex_start[k + 1] = vertex_start[k] + sizes[k, 0]
        face_start[k + 1] = face_start[k] + sizes[k, 1]
    vertices = np.empty((vertex_start[n + 1], 3), np.float64)
    faces = np.empty((face_start[n + 1], 3), np.int64)
    for k in range(1, n + 1):
        b = boxes[k]
        if b[3] > b[0]:
            _march_object(labels, k, b[0], b[1], b[2], b[3], b[4], b[5], edge_corner, edge_axis, triangles,
                          counts, vertices[vertex_start[k]:vertex_start[k + 1]],
                          faces[face_start[k]:face_start[k + 1]])
    return vertices, faces, vertex_start, face_start


@njit(cache=True, nogil=True)
def _taubin(vertices, faces, iterations, factors):
    """Taubin smoothing in place: per round, each factor f moves every vertex by f * (mean of its neighbours -
    itself), uniform weights."""
    n = vertices.shape[0]
    # In a closed, consistently oriented mesh every edge a-b occurs once as a -> b and once as b -> a, so the
    # directed edges of the faces list each neighbour of a vertex exactly once.
    degree = np.zeros(n + 1, np.int64)
    for f in range(faces.shape[0]):
        for s in range(3):
            degree[faces[f, s] + 1] += 1
    start = np.cumsum(degree)
    neighbours = np.empty(start[n], np.int64)
    fill = start[:n].copy()
    for f in range(faces.shape[0]):
        for s in range(3):
            a = faces[f, s]
            neighbours[fill[a]] = faces[f, (s + 1) % 3]
            fill[a] += 1
    moved = np.empty_like(vertices)
    for _ in range(iterations):
        for factor in factors:
            for v in range(n):
                count = start[v + 1] - start[v]
                sx, sy, sz = 0.0, 0.0, 0.0
                for k in range(start[v], start[v + 1]):
                    w = neighbours[k]
                    sx += vertices[w, 0]
                    sy += vertices[w, 1]
                    sz += vertices[w, 2]
                if count == 0:
                    moved[v] = vertices[v]
                else:
                    moved[v, 0] = vertices[v, 0] + factor * (sx / count - vertices[v, 0])
                    moved[v, 1] = vertices[v, 1] + factor * (sy / count - vertices[v, 1])
                    moved[v, 2] = vertices[v, 2] + factor * (sz / count - vertices[v, 2])
            vertices[:] = moved


@njit(cache=True, nogil=True)
def _quadric_cost(q, x, y, z):
    """Sum of squared distances to the planes of quadric ``q`` (a^2 ab ac ad b^2 bc bd c^2 cd d^2) at (x, y, z)."""
    return (q[0] * x * x + 2 * q[1] * x * y + 2 * q[2] * x * z + 2 * q[3] * x + q[4] * y * y + 2 * q[5] * y * z
            + 2 * q[6] * y + q[7] * z * z + 2 * q[8] * z + q[9])


@njit(cache=True, nogil=True)
def _heap_push(cost, edge, stamp, size, value, edge_value, stamp_value):
    """Push onto a binary min-heap kept in three parallel arrays; returns the new size."""
    k = size
    while k > 0:
        parent = (k - 1) // 2
        if cost[parent] <= value:
            break
        cost[k], edge[k], stamp[k] = cost[parent], edge[parent], stamp[parent]
        k = parent
    cost[k], edge[k], stamp[k] = value, edge_value, stamp_value
    return size + 1


@njit(cache=True, nogil=True)
def _heap_pop(cost, edge, stamp, size):
    """Move the smallest entry of the heap to index size - 1 and return the new size (size - 1)."""
    last = size - 1
    value, edge_value, stamp_value = cost[last], edge[last], stamp[last]
    cost[last], edge[last], stamp[last] = cost[0], edge[0], stamp[0]
    if last == 0:
        return 0
    k = 0
    while True:
        child = 2 * k + 1
        if child >= last:
            break
        if child + 1 < last and cost[child + 1] < cost[child]:
            child += 1
        if cost[child] >= value:
            break
        cost[k], edge[k], stamp[k] = cost[child], edge[child], stamp[child]
        k = child
    cost[k], edge[k], stamp[k] = value, edge_value, stamp_value
    return last


@njit(cache=True, nogil=True)
def _face_normal(pos, a, b, c):
    ux, uy, uz = pos[b, 0] - pos[a, 0], pos[b, 1] - pos[a, 1], pos[b, 2] - pos[a, 2]
    vx, vy, vz = pos[c, 0] - pos[a, 0], pos[c, 1] - pos[a, 1], pos[c, 2] - pos[a, 2]
    return uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx


@njit(cache=True, nogil=True)
def _prune(head, tail, following, face_alive, v):
    """Unlink the removed triangles from vertex v's list of incident triangles."""
    previous = -1
    entry = head[v]
    while entry >= 0:
        after = following[entry]
        if face_alive[entry // 3]:
            previous = entry
        elif previous < 0:
            head[v] = after
        else:
            following[previous] = after
        entry = after
    tail[v] = previous


@njit(cache=True, nogil=True)
def _collapse_edges(vertices, faces, target_faces):
    """Quadric-error edge collapse of one closed mesh down to about ``target_faces`` triangles.

    A collapse merges the end points of an edge at whichever of the two end points or the midpoint has the
    least quadric error (Garland & Heckbert). It is only done when the mesh stays a closed 2-manifold (the
    two end points share exactly the two neighbours of the edge's triangles: the link condition) and no
    remaining triangle turns over. Returns (vertices, faces) with unused vertices dropped."""
    n_vertices, n_faces = vertices.shape[0], faces.shape[0]
    pos = vertices.copy()
    tri = faces.copy()
    face_alive = np.ones(n_faces, np.bool_)
    vertex_alive = np.ones(n_vertices, np.bool_)
    version = np.zeros(n_vertices, np.int64)
    quadric = np.zeros((n_vertices, 10))
    for f in range(n_faces):
        a, b, c = tri[f, 0], tri[f, 1], tri[f, 2]
        nx, ny, nz = _face_normal(pos, a, b, c)
        norm = np.sqrt(nx * nx + ny * ny + nz * nz)
        if norm == 0:
            continue
        nx, ny, nz = nx / norm, ny / norm, nz / norm
        d = -(nx * pos[a, 0] + ny * pos[a, 1] + nz * pos[a, 2])
        weight = norm / 2  # area-weighted planes
        plane = (nx * nx, nx * ny, nx * nz, nx * d, ny * ny, ny * nz, ny * d, nz * nz, nz * d, d * d)
        for s in range(3):
            for i in range(10):
                quadric[tri[f, s], i] += weight * plane[i]
    # incident faces of each vertex as linked lists (entry 3 f + s is face f); collapses splice lists
    head = np.full(n_vertices, -1, np.int64)
    tail = np.full(n_vertices, -1, np.int64)
    following = np.full(3 * n_faces, -1, np.int64)
    for f in range(n_faces):
        for s in range(3):
            v, entry = tri[f, s], 3 * f + s
            if head[v] < 0:
                head[v] = entry
            else:
                following[tail[v]] = entry
            tail[v] = entry
    # heap of candidate collapses: cost, edge (u << 32 | v), versions of u and v at push time (packed alike)
    capacity = 3 * n_faces + 64
    cost = np.empty(capacity)
    edge = np.empty(capacity, np.int64)
    pushed = np.empty(capacity, np.int64)
    size = 0
    for f in range(n_faces):
        for s in range(3):
            u, v = tri[f, s], tri[f, (s + 1) % 3]
            if u < v:  # each edge of a closed oriented mesh appears once with u < v
                q = quadric[u] + quadric[v]
                best = min(_quadric_cost(q, pos[u, 0], pos[u, 1], pos[u, 2]),
                           _quadric_cost(q, pos[v, 0], pos[v, 1], pos[v, 2]),
                           _quadric_cost(q, (pos[u, 0] + pos[v, 0]) / 2, (pos[u, 1] + pos[v, 1]) / 2,
                                         (pos[u, 2] + pos[v, 2]) / 2))
                size = _heap_push(cost, edge, pushed, size, best, (u << 32) | v, 0)
    mark = np.zeros(n_vertices, np.int64)  # mark[w] == stamp: w is a neighbour of the current u
    seen = np.zeros(n_vertices, np.int64)
    stamp = 0
    alive_faces, alive_vertices = n_faces, n_vertices
    while alive_faces > target_faces and size > 0 and alive_vertices > 4:
        size = _heap_pop(cost, edge, pushed, size)
        u, v = edge[size] >> 32, edge[size] & 0xFFFFFFFF
        version_u, version_v = pushed[size] >> 32, pushed[size] & 0xFFFFFFFF
        if not (vertex_alive[u] and vertex_alive[v]) or version[u] != version_u or version[v] != version_v:
            continue  # stale: an end point moved or vanished since this entry was pushed
        _prune(head, tail, following, face_alive, u)
        _prune(head, tail, following, face_alive, v)
        # link condition: u and v must have exactly two common neighbours
        stamp += 1
        entry = head[u]
        while entry >= 0:
            f = entry // 3
            if face_alive[f]:
                for s in range(3):
                    mark[tri[f, s]] = stamp
            entry = following[entry]
        if mark[v] != stamp:
            continue
        common = 0
        entry = head[v]
        while entry >= 0:
            f = entry // 3
            if face_alive[f]:
                for s in range(3):
                    w = tri[f, s]
                    if w != u and w != v and mark[w] == stamp and seen[w] != stamp:
                        seen[w] = stamp
                        common += 1
            entry = following[entry]
        if common != 2:
            continue
        # where the merged vertex goes
        q = quadric[u] + quadric[v]
        px, py, pz = pos[u, 0], pos[u, 1], pos[u, 2]
        best = _quadric_cost(q, px, py, pz)
        c = _quadric_cost(q, pos[v, 0], pos[v, 1], pos[v, 2])
        if c < best:
            px, py, pz, best = pos[v, 0], pos[v, 1], pos[v, 2], c
        mx, my, mz = (pos[u, 0] + pos[v, 0]) / 2, (pos[u, 1] + pos[v, 1]) / 2, (pos[u, 2] + pos[v, 2]) / 2
        c = _quadric_cost(q, mx, my, mz)
        if c < best:
            px, py, pz = mx, my, mz
        # no remaining triangle around u or v may turn over
        flips = False
        for end in (u, v):
            entry = head[end]
            while entry >= 0 and not flips:
                f = entry // 3
                entry = following[entry]
                if not face_alive[f]:
                    continue
                a, b, c3 = tri[f, 0], tri[f, 1], tri[f, 2]
                if (a == u or b == u or c3 == u) and (a == v or b == v or c3 == v):
                    continue  # one of the two triangles the collapse removes
                ox, oy, oz = _face_normal(pos, a, b, c3)
                sx, sy, sz = pos[end, 0], pos[end, 1], pos[end, 2]
                pos[end, 0], pos[end, 1], pos[end, 2] = px, py, pz
                nx, ny, nz = _face_normal(pos, a, b, c3)
                pos[end, 0], pos[end, 1], pos[end, 2] = sx, sy, sz
                if ox * nx + oy * ny + oz * nz <= 0:
                    flips = True
        if flips:
            continue
        # collapse v into u
        entry = head[v]
        while entry >= 0:
            f = entry // 3
            if face_alive[f]:
                a, b, c3 = tri[f, 0], tri[f, 1], tri[f, 2]
                if a == u or b == u or c3 == u:
                    face_alive[f] = False
                    alive_faces -= 1
                else:
                    for s in range(3):
                        if tri[f, s] == v:
                            tri[f, s] = u
            entry = following[entry]
        following[tail[u]] = head[v]
        tail[u] = tail[v]
        vertex_alive[v] = False
        alive_vertices -= 1
        pos[u, 0], pos[u, 1], pos[u, 2] = px, py, pz
        quadric[u] = q
        version[u] += 1
        # new costs of the edges around u
        stamp += 1
        mark[u] = stamp
        entry = head[u]
        while entry >= 0:
            f = entry // 3
            entry = following[entry]
            if not face_alive[f]:
                continue
            for s in range(3):
                w = tri[f, s]
                if mark[w] == stamp:
                    continue
                mark[w] = stamp
                if size == capacity:
                    capacity *= 2
                    grown_cost = np.empty(capacity)
                    grown_edge = np.empty(capacity, np.int64)
                    grown_pushed = np.empty(capacity, np.int64)
                    grown_cost[:size] = cost[:size]
                    grown_edge[:size] = edge[:size]
                    grown_pushed[:size] = pushed[:size]
                    cost, edge, pushed = grown_cost, grown_edge, grown_pushed
                qw = quadric[u] + quadric[w]
                best = min(_quadric_cost(qw, pos[u, 0], pos[u, 1], pos[u, 2]),
                           _quadric_cost(qw, pos[w, 0], pos[w, 1], pos[w, 2]),
                           _quadric_cost(qw, (pos[u, 0] + pos[w, 0]) / 2, (pos[u, 1] + pos[w, 1]) / 2,
                                         (pos[u, 2] + pos[w, 2]) / 2))
                size = _heap_push(cost, edge, pushed, size, best, (u << 32) | w,
                                  (version[u] << 32) | version[w])
    new_index = np.full(n_vertices, -1, np.int64)
    n_kept = 0
    for v in range(n_vertices):
        if vertex_alive[v]:
            new_index[v] = n_kept
            n_kept += 1
    out_vertices = np.empty((n_kept, 3))
    for v in range(n_vertices):
        if vertex_alive[v]:
            out_vertices[new_index[v]] = pos[v]
    out_faces = np.empty((alive_faces, 3), np.int64)
    k = 0
    for f in range(n_faces):
        if face_alive[f]:
            for s in range(3):
                out_faces[k, s] = new_index[tri[f, s]]
            k += 1
    return out_vertices, out_faces


def meshes(labels, spacing=(1.0, 1.0, 1.0), smooth_iterations=0, decimate=None) -> dict:
    """Closed triangle mesh of every object of a 3D label image, by marching cubes.

    Parameters
    ----------
    labels : array_like of int, shape (Lz, Ly, Lx)
        Label image, 0 = background. A label made of several pieces gets one mesh with several closed shells.
    spacing : float or sequence of 3 floats
        Physical voxel size in array axis order ``(dz, dy, dx)``.
    smooth_iterations : int
        Rounds of Taubin smoothing (a lambda = 0.5 step then a mu = -0.53 step, uniform neighbour weights),
        which removes the voxel staircase while keeping the volume (a few percent) instead of shrinking the
        object like plain Laplacian smoothing; 0 = none. 5 to 20 is typical.
    decimate : float, optional
        Fraction (0 < decimate <= 1) of each mesh's triangles to keep, by quadric-error edge collapse
        (Garland & Heckbert; merged vertices go to an end point or the midpoint of the edge). Collapses that
        would break the closed 2-manifold or turn a triangle over are skipped, so decimated meshes stay
        watertight and outward-facing; a mesh may keep more triangles than asked when no allowed collapse
        is left. Applied after smoothing.

    Returns
    -------
    dict int -> (vertices, faces)
        vertices: float64 (V, 3) ``(x, y, z)`` in physical units, voxel ``(k, i, j)`` spanning
        ``[j, j + 1] x [i, i + 1] x [k, k + 1]`` times the spacing (so with spacing 1 they are pixel
        coordinates of the same convention as :func:`contours`); faces: int64 (F, 3) vertex indices.

    Notes
    -----
    The surface is the iso-0.5 surface of the object's binary mask with one voxel of background around it,
    so every mesh is closed: watertight (every edge is shared by exactly two triangles), with shared (merged)
    vertices and outward normals (positive :func:`mesh_volume`); smoothing and decimation keep this. Voxels
    touching only along an edge or a corner are not joined (6-connectivity, where :func:`contours` joins
    diagonal pixels). The enclosed volume is a little below the voxel count (the surface cuts the corners
    of the voxel staircase): within a few percent for objects of radius >= 5 voxels.
    """
    labels = as_label_image(labels, ndims=(3,))
    sizes = _spacing(spacing, 3)
    if int(smooth_iterations) != smooth_iterations or smooth_iterations < 0:
        raise InputError(f"smooth_iterations must be a whole number >= 0, got {smooth_iterations!r}")
    if decimate is not None and not (np.isfinite(decimate) and 0 < decimate <= 1):
        raise InputError(f"decimate must be None or the fraction of triangles to keep (0 < decimate <= 1), "
                         f"got {decimate!r}")
    kernel_labels, ids = _kernel_labels(labels)
    n = int(kernel_labels.max()) if kernel_labels.size else 0
    count, _, low, high, _ = _object_stats(kernel_labels, n, np.zeros((1, 1, 1), np.float32), False)
    present = np.flatnonzero(count[1:]) + 1
    if len(present) == 0:
        return {}
    boxes = np.concatenate([low, high + 1], axis=1)
    boxes[count == 0] = 0
    vertices, faces, vertex_start, face_start = _march_all(kernel_labels, boxes, _EDGE_CORNER, _EDGE_AXIS,
                                                           _TRIANGLES, _TRIANGLE_COUNTS)
    vertex_start, face_start = vertex_start[1:], face_start[1:]  # label 0 has no mesh
    vertices *= sizes[::-1]
    # faces hold per-object vertex indices; make them global for smoothing / decimation
    faces += np.repeat(vertex_start[:-1], np.diff(face_start))[:, None]
    if smooth_iterations:
        _taubin(vertices, faces, int(smooth_iterations), np.array([_TAUBIN_LAMBDA, _TAUBIN_MU]))
    result = {}
    for k in present - 1:
        v0, v1, f0, f1 = vertex_start[k], vertex_start[k + 1], face_start[k], face_start[k + 1]
        mesh = vertices[v0:v1], faces[f0:f1] - v0
        if decimate is not None and decimate < 1:
            mesh = _collapse_edges(mesh[0], mesh[1], int(np.ceil(decimate * (f1 - f0))))
        result[int(k + 1 if ids is None else ids[k + 1])] = mesh
    return result


def mesh_volume(vertices, faces) -> float:
    """Signed volume enclosed by a closed triangle mesh (positive when the normals point outwards)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    a, b, c = (vertices[np.asarray(faces)[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->", a, np.cross(b, c)) / 6.0)


# ----------------------------------------------------------------------------------------------------------
# PLY files
# ----------------------------------------------------------------------------------------------------------

_PLY_FACE = np.dtype([("n", "u1"), ("index", "<i4", (3,))])


def write_ply(path, vertices, faces) -> None:
    """Write a triangle mesh as a binary little-endian PLY file.

    Parameters
    ----------
    path : str or Path
    vertices : array_like of float, shape (V, 3)
        ``(x, y, z)``, stored as float32 properties ``x, y, z``.
    faces : array_like of int, shape (F, 3)
        Vertex indices, stored as ``list uchar int vertex_indices``.
    """
    vertices = np.asarray(vertices)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise InputError(f"vertices must have shape (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise InputError(f"faces must have shape (F, 3), got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise InputError(f"faces index vertices 0..{len(vertices) - 1}, found {faces.min()}..{faces.max()}")
    header = ("ply\nformat binary_little_endian 1.0\ncomment written by trackpose\n"
              f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
              f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    records = np.empty(len(faces), _PLY_FACE)
    records["n"] = 3
    records["index"] = faces
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(np.ascontiguousarray(vertices, dtype="<f4").tobytes())
        f.write(records.tobytes())


def read_ply(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh written by :func:`write_ply` (binary little-endian, float x y z, triangle faces).

    Returns (vertices float32 (V, 3), faces int32 (F, 3)).
    """
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise InputError(f"path {path}: not a PLY file")
    header = data[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise InputError(f"path {path}: only binary little-endian PLY files are read")
    expected = ["property float x", "property float y", "property float z",
                "property list uchar int vertex_indices"]
    if [line for line in header if line.startswith("property ")] != expected:
        raise InputError(f"path {path}: vertex and face properties differ from those write_ply writes")
    counts = {line.split()[1]: int(line.split()[2]) for line in header if line.startswith("element ")}
    body = end + len(b"end_header\n")
    n_vertices, n_faces = counts.get("vertex", 0), counts.get("face", 0)
    vertices = np.frombuffer(data, "<f4", n_vertices * 3, body).reshape(n_vertices, 3)
    records = np.frombuffer(data, _PLY_FACE, n_faces, body + 12 * n_vertices)
    if n_faces and np.any(records["n"] != 3):
        raise InputError(f"path {path}: only triangle faces are read")
    return vertices.copy(), records["index"].astype(np.int32)

