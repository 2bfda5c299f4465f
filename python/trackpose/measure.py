"""Per-object measurements of a label image: centroid, size, bounding box, equivalent radius and quality.

The last numerical step of the pipeline next to ``contours`` and ``meshes`` (masks -> shapes): the table of
objects TrackMate turns into spot features.

Coordinate conventions (shared with ``contours``, ``meshes`` and ``shapes.json`` of the bridge protocol):

* Pixel ``(i, j)`` of a 2D label image (row ``i``, column ``j``) is the square ``x in [j, j + 1]``,
  ``y in [i, i + 1]``; its centre is ``(j + 0.5, i + 0.5)``. Voxel ``(k, i, j)`` is the cube
  ``[j, j + 1] x [i, i + 1] x [k, k + 1]`` with centre ``(j + 0.5, i + 0.5, k + 0.5)``. Points are always
  given as ``(x, y)`` or ``(x, y, z)``, i.e. in the reverse of the array axis order.
* ``spacing`` is the physical size of a pixel / voxel **in array axis order**, ``(dy, dx)`` or
  ``(dz, dy, dx)`` (as in scipy and scikit-image); a single number means isotropic. Physical coordinates are the
  pixel coordinates above times the spacing of their axis.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from trackpose.errors import InputError
from trackpose.labels import as_label_image, compact_labels

__all__ = ["object_table", "object_stats", "as_spacing"]


def as_spacing(spacing, ndim: int) -> np.ndarray:
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


@njit(cache=True, nogil=True)
def object_stats(labels, n, cellprob, use_cellprob):
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
    sizes = as_spacing(spacing, ndim)
    use_cellprob = cellprob is not None
    if use_cellprob:
        cellprob = np.asarray(cellprob)
        if cellprob.shape != labels.shape:
            raise InputError(f"cellprob must have the shape of labels {labels.shape}, got {cellprob.shape}")
        if cellprob.dtype.kind not in "fiu":
            raise InputError(f"cellprob must hold numbers (logits), got dtype {cellprob.dtype}")
        cellprob = cellprob.astype(np.float32, copy=False)
    kernel_labels, ids = compact_labels(labels)
    volume = kernel_labels if ndim == 3 else kernel_labels[None]
    values = (cellprob if ndim == 3 else cellprob[None]) if use_cellprob else np.zeros((1, 1, 1), np.float32)
    n = int(volume.max()) if volume.size else 0
    count, sums, low, high, prob = object_stats(volume, n, values, use_cellprob)
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
