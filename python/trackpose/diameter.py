"""Object size in pixels: the diameter of labelled objects or of shapes a user drew.

- :func:`estimate_diameter` measures a label image (cellpose's definition: the median over objects of
  ``sqrt(area) / (sqrt(pi) / 2)``, the diameter of a disc of the object's area);
- :func:`diameter_from_file` measures shapes a user drew: a label image file, or an ImageJ ROI set
  (``RoiSet.zip`` / ``.roi``, read by :mod:`trackpose.io.roi`);
- :func:`anisotropy_from_masks` tells a stack's Z step from the shape of its objects (``segment``'s
  ``anisotropy="auto"``).

Estimating the diameter of an image from the network's style vector is the size model's job
(:mod:`trackpose.size_model`, :mod:`trackpose.size_estimation`).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Union

import numpy as np

from .errors import InputError
from .labels import as_label_image

__all__ = ["estimate_diameter", "equivalent_diameter", "diameter_from_file", "anisotropy_from_masks"]

_DISC = math.sqrt(math.pi) / 2  # sqrt(area) of a disc of diameter 1


def estimate_diameter(masks: np.ndarray) -> float:
    """Typical object diameter of a label image, in pixels.

    Parameters
    ----------
    masks : (Y, X) or (Z, Y, X) integer array
        Labels, 0 = background.

    Returns
    -------
    float
        2D: the median over objects of ``sqrt(area) / (sqrt(pi) / 2)`` (cellpose's ``utils.diameters``), i.e. the
        median diameter of discs with the objects' areas. 3D: the same over each object's largest cross-section in
        a Z plane (its "equator"), so that the result is an XY diameter in pixels, the quantity ``segment``'s
        ``diameter`` means, whatever the Z spacing (cellpose applies its 2D formula to voxel counts, which gives
        neither a diameter nor the same number for two Z spacings). NaN when there is no object.
    """
    labels = as_label_image(masks, "masks")
    if labels.ndim == 2:
        areas = np.bincount(labels.ravel().astype(np.int64))[1:]
    else:
        areas, _ = _sections(labels)
    areas = areas[areas > 0]
    if areas.size == 0:
        return float("nan")
    return float(np.median(np.sqrt(areas)) / _DISC)


#: fewer objects spanning two planes or more than this, and the Z step cannot be told from a stack
MIN_OBJECTS_FOR_ANISOTROPY = 5


def anisotropy_from_masks(masks: np.ndarray) -> tuple[float, int]:
    """The Z step of a stack in XY pixels (``segment``'s ``anisotropy``), told from the shape of its objects.

    Each object spanning at least two planes gives its XY diameter (that of its largest section) over the number
    of planes it spans; the estimate is the median over those objects. For round objects (nuclei), whose extent
    along Z is their XY diameter, a plane falls inside an object of diameter ``d`` on ``d / step`` planes on
    average, wherever the planes sit. Objects flattened along Z (cells spread on glass) make the estimate too
    large, objects stretched along it too small; objects that span one plane only are left out.

    Parameters
    ----------
    masks : (Z, Y, X) integer array
        Labels of a stack, 0 = background (e.g. 2D masks stitched across Z).

    Returns
    -------
    anisotropy : float
        The estimated Z step / XY pixel size; NaN when fewer than ``MIN_OBJECTS_FOR_ANISOTROPY`` objects span two
        planes or more.
    count : int
        The number of objects it was told from.
    """
    labels = as_label_image(masks, "masks")
    if labels.ndim != 3:
        raise InputError(f"anisotropy_from_masks needs a (Z, Y, X) stack of labels, got shape {labels.shape}")
    largest, planes = _sections(labels)
    spanning = planes >= 2
    if spanning.sum() < MIN_OBJECTS_FOR_ANISOTROPY:
        return float("nan"), int(spanning.sum())
    ratios = np.sqrt(largest[spanning]) / _DISC / planes[spanning]
    return float(np.median(ratios)), int(spanning.sum())


def _sections(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per label 1..n of a (Z, Y, X) stack: the area of its largest plane section and the number of planes it
    is on."""
    n = int(labels.max()) if labels.size else 0
    largest = np.zeros(n, np.int64)
    planes = np.zeros(n, np.int64)
    for plane in labels:
        counts = np.bincount(plane.ravel().astype(np.int64), minlength=n + 1)[1:]
        np.maximum(largest, counts, out=largest)
        planes += counts > 0
    return largest, planes


def equivalent_diameter(area: float) -> float:
    """Diameter (pixels) of the disc whose area is ``area`` square pixels: ``2 * sqrt(area / pi)``."""
    return 2.0 * math.sqrt(area / math.pi)


def diameter_from_file(path: Union[str, os.PathLike]) -> tuple[float, int]:
    """Typical diameter (pixels) of shapes a user drew: an ImageJ ROI set / ``.roi`` file, or a label image.

    Returns
    -------
    diameter : float
        Median over shapes of the equivalent diameter ``2 sqrt(area / pi)``; for label images
        :func:`estimate_diameter`.
    count : int
        Number of shapes measured.
    """
    path = Path(path)
    if path.suffix.lower() in (".zip", ".roi"):
        from .io import read_roi_file
        shapes = read_roi_file(path)
        return float(np.median([equivalent_diameter(s.area) for s in shapes])), len(shapes)
    from . import io
    labels, meta = io.read_image(path)
    if any(a in meta.axes for a in "CST"):
        raise InputError(f"{path} has axes {meta.axes}; give one 2D or 3D label image (or an ImageJ RoiSet.zip)")
    labels = as_label_image(labels, str(path))
    count = len(np.unique(labels[labels > 0]))
    if count == 0:
        raise InputError(f"{path} holds no objects (all pixels are 0); draw or label at least one cell")
    return estimate_diameter(labels), count
