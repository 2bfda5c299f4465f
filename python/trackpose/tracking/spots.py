"""Spots: the objects of a movie, one row per object per frame, in physical units.

A ``Spots`` table is what the trackers link and what the exports write. Row order is the spot ID order (TrackMate
sorts its LAP rows and columns by spot ID, so the order decides ties the same way).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import InputError

__all__ = ["Spots", "make_spots"]


@dataclass
class Spots:
    """Objects of a movie.

    Attributes
    ----------
    frame : (n,) int64
        Frame index of each spot.
    position : (n, 3) float64
        x, y, z in physical units (z = 0 in 2D).
    radius : (n,) float64
        Equivalent radius in physical units (2D: sqrt(area / pi); 3D: of the equal-volume sphere).
    quality : (n,) float64
    label : (n,) int64
        The object's id in its frame's label image (0 when the spots did not come from labels).
    features : dict name -> (n,) float64
        Further numeric features (e.g. AREA, MEAN_INTENSITY), usable as feature penalties.
    polygons : list of (k, 2) arrays or None
        2D outline of each spot, x y in physical units relative to the spot's position (TrackMate's ROI).
    """

    frame: np.ndarray
    position: np.ndarray
    radius: np.ndarray
    quality: np.ndarray
    label: np.ndarray
    features: dict = field(default_factory=dict)
    polygons: Optional[list] = None

    def __len__(self) -> int:
        return len(self.frame)

    def feature(self, name: str) -> np.ndarray:
        """A feature by its TrackMate name (POSITION_X/Y/Z, FRAME, RADIUS, QUALITY or one of ``features``)."""
        builtin = {"POSITION_X": lambda: self.position[:, 0], "POSITION_Y": lambda: self.position[:, 1],
                   "POSITION_Z": lambda: self.position[:, 2], "FRAME": lambda: self.frame.astype(float),
                   "RADIUS": lambda: self.radius, "QUALITY": lambda: self.quality}
        if name in builtin:
            return np.asarray(builtin[name](), np.float64)
        if name not in self.features:
            known = sorted(builtin) + sorted(self.features)
            raise InputError(f"unknown spot feature {name!r}; known: {', '.join(known)}")
        return np.asarray(self.features[name], np.float64)


def make_spots(frame, position, radius=None, quality=None, label=None, features=None, polygons=None) -> Spots:
    """Build a :class:`Spots` table from arrays; ``position`` is (n, 2) x y or (n, 3) x y z, physical units."""
    frame = np.asarray(frame, np.int64).ravel()
    position = np.asarray(position, np.float64)
    n = len(frame)
    if position.ndim != 2 or position.shape[0] != n or position.shape[1] not in (2, 3):
        raise InputError(f"position must be (n, 2) or (n, 3) with n = {n} spots, got {position.shape}")
    if position.shape[1] == 2:
        position = np.column_stack([position, np.zeros(n)])
    if not np.all(np.isfinite(position)):
        raise InputError("spot positions must be finite")
    if n and frame.min() < 0:
        raise InputError("spot frames must be >= 0")

    def column(values, default):
        out = np.full(n, default, np.float64) if values is None else np.asarray(values, np.float64).ravel()
        if out.shape != (n,):
            raise InputError(f"expected one value per spot ({n}), got shape {out.shape}")
        return out
    feats = {k: column(v, np.nan) for k, v in (features or {}).items()}
    return Spots(frame, position, column(radius, 1.0), column(quality, 1.0),
                 column(label, 0).astype(np.int64), feats, polygons)
