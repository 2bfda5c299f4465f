"""ImageJ ROI files: the areas of the shapes a user drew (``RoiSet.zip`` from the ROI Manager, or one ``.roi``).

Read with ``roifile`` (by the author of tifffile); ``trackpose.diameter.diameter_from_file`` turns the areas into a
typical diameter.
"""
from __future__ import annotations

import logging
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from ..errors import InputError

__all__ = ["RoiShape", "read_roi", "read_roi_file"]

log = logging.getLogger("trackpose")


@dataclass
class RoiShape:
    """One ImageJ ROI read from a ``.roi`` file: its name, ImageJ type name and area in square pixels."""

    name: str
    kind: str
    area: float


_AREA_POLYGONS = ("polygon", "freehand", "traced")


def _roifile():
    """The ``roifile`` module (optional: only ROI sets need it)."""
    try:
        import roifile
    except ImportError:
        raise InputError("reading ImageJ ROI files needs the roifile package: pip install 'trackpose[roi]' "
                         "(or pip install roifile)") from None
    return roifile


def _polygon_area(x: np.ndarray, y: np.ndarray) -> float:
    """Area of a closed polygon (shoelace formula), square pixels."""
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def read_roi(data: bytes, name: str = "roi") -> RoiShape:
    """Parse one ROI in ImageJ's binary ``.roi`` format (with ``roifile``) and return its area.

    Areas: polygon, freehand and traced by the shoelace formula on their vertices (sub-pixel ones when stored);
    rectangle ``w * h``; oval ``pi w h / 4`` (float bounds of sub-pixel rectangles and ovals when stored). Lines,
    points and angles have no area and raise :class:`InputError`, as do composite (shape) ROIs.
    """
    if len(data) < 64 or data[:4] != b"Iout":
        raise InputError(f"{name}: not an ImageJ ROI (no 'Iout' header)")
    roifile = _roifile()
    try:
        roi = roifile.ImagejRoi.frombytes(data)
    except Exception as error:  # roifile raises ValueError, struct.error, IndexError... on damaged files
        raise InputError(f"{name}: damaged ImageJ ROI ({type(error).__name__}: {error})") from None
    kind = roi.roitype.name.lower() if roi.roitype in roifile.ROI_TYPE else f"type {int(roi.roitype)}"
    kind = {"rect": "rectangle"}.get(kind, kind)
    if roi.shape_roi_size > 0 or roi.composite:
        raise InputError(f"{name}: composite (shape) ROIs are not supported; convert it to a polygon in ImageJ "
                         "(Edit > Selection > Convert to polygon... or draw it with a polygon/freehand tool)")
    sub_pixel = bool(roi.options & roifile.ROI_OPTIONS.SUB_PIXEL_RESOLUTION) and roi.version >= 222
    if kind in ("rectangle", "oval"):
        width, height = roi.right - roi.left, roi.bottom - roi.top
        if sub_pixel and roi.subpixelrect is not None:
            width, height = float(roi.subpixelrect[2]), float(roi.subpixelrect[3])
        if width <= 0 or height <= 0:
            raise InputError(f"{name}: empty {kind} ({width} x {height} pixels)")
        area = width * height if kind == "rectangle" else math.pi * width * height / 4
        return RoiShape(name, kind, float(area))
    if kind not in _AREA_POLYGONS:
        raise InputError(f"{name}: a {kind} ROI has no area; draw cells with the oval, polygon, freehand or wand "
                         "tool")
    n = int(roi.n_coordinates)
    if n < 3 or len(data) < 64 + 4 * n:
        raise InputError(f"{name}: {kind} ROI with {n} coordinates is incomplete or too short to enclose an area")
    coords = np.asarray(roi.coordinates(), np.float64)  # sub-pixel ones when stored, else left/top + integers
    return RoiShape(name, kind, _polygon_area(coords[:, 0], coords[:, 1]))


def read_roi_file(path: Union[str, os.PathLike]) -> list[RoiShape]:
    """Shapes of an ImageJ ROI set (``RoiSet.zip`` from the ROI Manager) or of a single ``.roi`` file.

    Entries without an area (lines, points) are skipped with a warning; a set with no area at all is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    if zipfile.is_zipfile(path):
        shapes, skipped = [], []
        with zipfile.ZipFile(path) as archive:
            entries = [e for e in archive.infolist() if e.filename.lower().endswith(".roi")]
            if not entries:
                raise InputError(f"{path}: the zip holds no .roi entries; save the ROI Manager's ROIs with "
                                 "More > Save...")
            for entry in entries:
                if entry.file_size > 64 << 20:
                    raise InputError(f"{path}: entry {entry.filename} is implausibly large for a ROI")
                try:
                    shapes.append(read_roi(archive.read(entry), entry.filename))
                except InputError as exc:
                    skipped.append(str(exc))
        for reason in skipped:
            log.warning("skipped %s", reason)
        if not shapes:
            raise InputError(f"{path}: none of its {len(entries)} ROI(s) encloses an area ({skipped[0]})")
        return shapes
    data = path.read_bytes()
    return [read_roi(data, path.name)]
