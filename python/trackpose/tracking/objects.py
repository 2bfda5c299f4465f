"""Label images -> spots: position, radius, quality, area and (2D) outline of each object, in physical units.

Positions follow ImageJ/TrackMate: the centre of pixel (row i, column j) is at (j * dx, i * dy).
"""
from __future__ import annotations

import numpy as np

from .. import contours, measure
from ..errors import InputError
from .spots import Spots, make_spots

__all__ = ["frame_spots", "concat_spots"]


def frame_spots(labels, frame: int, spacing=None, cellprob=None, outlines: bool = True) -> Spots:
    """Spots of one label image (2D (Y, X) or 3D (Z, Y, X)); ``spacing`` in array axis order, default 1.

    quality = mean sigmoid(cellprob) when ``cellprob`` is given, else the object's pixel/voxel count.
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise InputError(f"a label frame must be 2D or 3D, got shape {labels.shape}")
    ndim = labels.ndim
    spacing = np.ones(ndim) if spacing is None else np.asarray(spacing, np.float64)
    table = measure.object_table(labels, spacing=spacing, cellprob=cellprob)
    if not table:
        return make_spots(np.zeros(0), np.zeros((0, 3)))
    xyz_spacing = spacing[::-1]  # x, y(, z)
    centroid = np.array([row["centroid"] for row in table], np.float64)
    position = (centroid - 0.5) * xyz_spacing
    features = {"AREA": [row["area_physical"] for row in table]} if ndim == 2 else {}
    polygons = None
    if ndim == 2 and outlines:
        outline = contours.outlines(labels)  # smooth: TrackMate's shape features measure them right
        polygons = [(outline[row["label"]] - 0.5) * xyz_spacing - position[k] for k, row in enumerate(table)]
    return make_spots(np.full(len(table), frame), position, radius=[row["radius_physical"] for row in table],
                      quality=[row["quality"] for row in table], label=[row["label"] for row in table],
                      features=features, polygons=polygons)


def concat_spots(parts) -> Spots:
    """One table from per-frame tables (row order kept: frame by frame)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return make_spots(np.zeros(0), np.zeros((0, 3)))
    names = set(parts[0].features)
    polygons = None
    if all(p.polygons is not None for p in parts):
        polygons = [poly for p in parts for poly in p.polygons]
    return make_spots(np.concatenate([p.frame for p in parts]), np.concatenate([p.position for p in parts]),
                      radius=np.concatenate([p.radius for p in parts]),
                      quality=np.concatenate([p.quality for p in parts]),
                      label=np.concatenate([p.label for p in parts]),
                      features={k: np.concatenate([p.features[k] for p in parts]) for k in names},
                      polygons=polygons)
