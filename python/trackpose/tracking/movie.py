"""Movies on disk for ``trackpose track``: a TIFF with a T axis, or a folder of per-frame images. Frames are read
one at a time (from a TIFF: only that time point's pixels are decoded), and the calibration is checked to be the
same in every frame of a folder."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .. import io
from ..errors import InputError
from ..io.images import read_tiff_frames

__all__ = ["open_movie", "Movie"]


@dataclass
class Movie:
    source: Path
    name: str
    axes: str                 # axes of one frame, e.g. "YX", "ZYX", "CYX"
    n_frames: int
    spacing: tuple            # (dz,) dy, dx
    unit: str
    time_interval: float
    _array: Optional[np.ndarray] = None
    _paths: Optional[list] = None

    def frames(self):
        if self._array is not None:  # an array, or io.images.TiffFrames: decoded one frame at a time
            for t in range(self.n_frames):
                yield np.asarray(self._array[t])
            return
        for path in self._paths:
            image, _ = io.read_image(path)
            yield image

    def segment_axes(self, settings: dict) -> dict:
        out = {}
        if "C" in self.axes and settings.get("channel_axis") is None:
            out["channel_axis"] = self.axes.index("C")
        if "Z" in self.axes and settings.get("z_axis") is None:
            out["z_axis"] = self.axes.index("Z")
            if settings.get("anisotropy") is None and settings.get("do_3d"):
                out["anisotropy"] = self.spacing[0] / self.spacing[-1]
        return out


def _calibration(meta, path):
    dy, dx = meta.pixel_size_y or 1.0, meta.pixel_size_x or 1.0
    return (meta.z_spacing or 1.0, dy, dx) if "Z" in meta.axes else (dy, dx)


def open_movie(path, labels: bool = False) -> Movie:
    """Open INPUT of ``trackpose track``; errors name the file and what is wrong."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        paths = io.find_images(path)
        if not paths:
            raise InputError(f"{path} holds no images")
        first, meta = io.read_image(paths[0])
        if "T" in meta.axes:
            raise InputError(f"{paths[0]} is itself a movie; a folder must hold one image per frame")
        spacing = _calibration(meta, paths[0])
        for p in paths[1:]:
            _, m = io.read_image(p)  # small per-frame files; the pixel data is dropped at once
            if m.axes != meta.axes or _calibration(m, p) != spacing or (m.unit or None) != (meta.unit or None):
                raise InputError(f"{p.name} has axes {m.axes}, calibration {_calibration(m, p)} {m.unit or ''}, "
                                 f"but {paths[0].name} has {meta.axes}, {spacing} {meta.unit or ''}: all frames "
                                 "must share axes and calibration")
        return Movie(path, path.name, meta.axes, len(paths), spacing, meta.unit or "pixel",
                     meta.time_interval or 1.0, _paths=paths)
    with open(path, "rb") as handle:
        tiff = handle.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
    if tiff:  # frame by frame: the movie is never decoded whole (io.images.TiffFrames)
        array, meta = read_tiff_frames(path)
    else:
        array, meta = io.read_image(path)
    if "T" not in meta.axes:
        if "Z" in meta.axes:
            raise InputError(f"{path} has axes {meta.axes}: its first axis could be time or Z. Save it as an ImageJ "
                             "hyperstack with frames (Image > Hyperstacks > Re-order, or Image > Properties: "
                             "frames), or give a folder of one image per frame")
        raise InputError(f"{path} has axes {meta.axes} and no time axis: it is not a movie")
    if meta.axes.index("T") != 0:  # (TIFFs come with T first)
        array = np.moveaxis(array, meta.axes.index("T"), 0)
    axes = meta.axes.replace("T", "")
    if labels and ("C" in axes or "S" in axes):
        raise InputError(f"{path} has axes {meta.axes}; label movies have one channel")
    return Movie(path, io.image_stem(path), axes, len(array), _calibration(meta, path), meta.unit or "pixel",
                 meta.time_interval or 1.0, _array=array)
