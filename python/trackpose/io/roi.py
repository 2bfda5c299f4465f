"""ImageJ ROI files: the areas of the shapes a user drew (``RoiSet.zip`` from the ROI Manager, or one ``.roi``).

Parsed here from ImageJ's binary ROI format; ``trackpose.diameter.diameter_from_file`` turns the areas into a
typical diameter.
"""
from __future__ import annotations

import logging
import math
import os
import struct
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


_ROI_TYPES = {0: "polygon", 1: "rectangle", 2: "oval", 3: "line", 4: "freeline", 5: "polyline", 6: "noroi",
              7: "freehand", 8: "traced", 9: "angle", 10: "point"}
_AREA_POLYGONS = ("polygon", "freehand", "traced")
_SUB_PIXEL_RESOLUTION = 128
_HEADER_SIZE = 64


def _polygon_area(x: np.ndarray, y: np.ndarray) -> float:
    """Area of a closed polygon (shoelace formula), square pixels."""
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def read_roi(data: bytes, name: str = "roi") -> RoiShape:
    """Parse one ROI in ImageJ's binary ``.roi`` format and return its area.

    The format (big-endian): ``"Iout"``, version (int16), type (byte at offset 6), top, left, bottom, right
    (int16 at 8..15), number of coordinates (uint16 at 16), float bounds for sub-pixel rectangles and ovals (at
    18..33), options (int16 at 50); from offset 64 the x then the y coordinates as int16 relative to left / top,
    followed, when the option SUB_PIXEL_RESOLUTION (128) is set, by absolute float32 x then y coordinates.

    Areas: polygon, freehand and traced by the shoelace formula on their vertices; rectangle ``w * h``; oval
    ``pi w h / 4``. Lines, points and angles have no area and raise :class:`InputError`, as do composite
    (shape) ROIs.
    """
    if len(data) < _HEADER_SIZE or data[:4] != b"Iout":
        raise InputError(f"{name}: not an ImageJ ROI (no 'Iout' header)")
    version, type_code = struct.unpack(">hB", data[4:7])
    top, left, bottom, right = struct.unpack(">hhhh", data[8:16])
    (n,) = struct.unpack(">H", data[16:18])
    shape_roi_size = struct.unpack(">i", data[36:40])[0]
    (options,) = struct.unpack(">h", data[50:52])
    kind = _ROI_TYPES.get(type_code, f"type {type_code}")
    if shape_roi_size > 0:
        raise InputError(f"{name}: composite (shape) ROIs are not supported; convert it to a polygon in ImageJ "
                         "(Edit > Selection > Convert to polygon... or draw it with a polygon/freehand tool)")
    width, height = right - left, bottom - top
    sub_pixel = bool(options & _SUB_PIXEL_RESOLUTION) and version >= 222
    if kind in ("rectangle", "oval"):
        if sub_pixel:  # float bounds x, y, w, h at 18..33
            _, _, width, height = struct.unpack(">ffff", data[18:34])
        if width <= 0 or height <= 0:
            raise InputError(f"{name}: empty {kind} ({width} x {height} pixels)")
        area = width * height if kind == "rectangle" else math.pi * width * height / 4
        return RoiShape(name, kind, float(area))
    if kind not in _AREA_POLYGONS:
        raise InputError(f"{name}: a {kind} ROI has no area; draw cells with the oval, polygon, freehand or wand "
                         "tool")
    end = _HEADER_SIZE + 4 * n
    if n < 3 or len(data) < end:
        raise InputError(f"{name}: {kind} ROI with {n} coordinates is incomplete or too short to enclose an area")
    if sub_pixel and len(data) >= end + 8 * n:
        coords = np.frombuffer(data, ">f4", 2 * n, end).astype(np.float64)
        x, y = coords[:n], coords[n:]
    else:
        coords = np.frombuffer(data, ">i2", 2 * n, _HEADER_SIZE).astype(np.float64)
        x, y = coords[:n] + left, coords[n:] + top
    return RoiShape(name, kind, _polygon_area(x, y))


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
