"""Lazy inputs (Zarr, OME-Zarr, TIFF through tifffile's Zarr store) and OME-Zarr label outputs.

Outputs are OME-NGFF 0.4 label images in Zarr format 2 (what napari-ome-zarr, Fiji's N5/Zarr readers, MoBIE and
``ome_zarr.reader`` read): a group with ``multiscales`` (axes with units, one scale per level) and
``image-label`` attributes, level ``0`` at full resolution and levels ``1``, ``2``, ... halved in Y and X (labels
are subsampled, never averaged). A run writes ``trackpose_complete`` into the group's attributes last, so a group
without it is incomplete and is resumed, never trusted.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .. import io
from ..errors import InputError

log = logging.getLogger("trackpose")

__all__ = ["LazySource", "open_source", "is_zarr", "create_labels", "write_pyramid", "mark_complete",
           "is_complete", "read_labels"]

NGFF_VERSION = "0.4"
COMPLETE_KEY = "trackpose_complete"
_UNITS = {"micron": "micrometer", "um": "micrometer", "µm": "micrometer", "nm": "nanometer", "mm": "millimeter"}


def is_zarr(path) -> bool:
    """True for a Zarr store folder (format 2 or 3), also an OME-Zarr group."""
    path = Path(path)
    return path.is_dir() and any((path / name).exists() for name in (".zgroup", ".zarray", "zarr.json"))


def _open_zarr_array(path: Path, component: Optional[str]):
    import zarr
    node = zarr.open(str(path), mode="r")
    if component:
        return node[component]
    if hasattr(node, "shape"):
        return node
    return node[_multiscales(node.attrs)[0]["datasets"][0]["path"]]


def _multiscales(attrs) -> list:
    attrs = dict(attrs)
    found = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if not found:
        raise InputError("the Zarr group holds no array and no OME-Zarr 'multiscales'; name the array as "
                         "PATH.zarr/ARRAY")
    return found


@dataclass
class LazySource:
    """A picklable handle on a chunked volume or movie on disk; slicing reads only what is asked.

    ``axes`` are the array's axes (letters of ``TZCYX``); ``meta`` holds the calibration.
    """
    path: str
    axes: str
    shape: tuple
    dtype: str
    component: Optional[str] = None
    tiff_series: Optional[int] = None
    meta: io.ImageMeta = field(default=None)
    _array: object = field(default=None, init=False, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_array"] = None  # each process opens the file itself
        return state

    def _open(self):
        if self._array is None:
            if self.tiff_series is not None:
                import tifffile
                import zarr
                store = tifffile.imread(self.path, aszarr=True, series=self.tiff_series, level=0)
                self._array = zarr.open(store, mode="r")
            else:
                self._array = _open_zarr_array(Path(self.path), self.component)
        return self._array

    def __getitem__(self, item) -> np.ndarray:
        return np.asarray(self._open()[item])

    @property
    def ndim(self) -> int:
        return len(self.shape)


def _tiff_meta(tif, axes: str, path: Path) -> io.ImageMeta:
    """Calibration from ImageJ metadata and the resolution tags (pixel size, Z spacing, unit, frame interval)."""
    page = tif.pages[0]
    ij = tif.imagej_metadata or {}
    pixel = None
    tag = page.tags.get("XResolution")
    if tag is not None:
        num, den = tag.value
        if num:
            pixel = den / num
    unit = ij.get("unit")
    unit = {"\\u00B5m": "micron", "µm": "micron", "um": "micron"}.get(unit, unit)
    return io.ImageMeta(axes=axes, pixel_size_x=pixel, pixel_size_y=pixel, z_spacing=ij.get("spacing"),
                        unit=unit, time_interval=ij.get("finterval"), source=str(path))


def open_source(path, axes: Optional[str] = None) -> LazySource:
    """Open a TIFF or (OME-)Zarr volume or movie lazily.

    Parameters
    ----------
    path : str or Path
        A TIFF file (read through tifffile's Zarr store: only the planes asked for are read), a Zarr array, an
        OME-Zarr image group (its full-resolution level), or ``GROUP.zarr/ARRAY``.
    axes : str, optional
        Letters of ``TZCYX`` for the array's axes, when the file does not say (plain Zarr arrays). Generic TIFF
        axes (a stack without ImageJ hyperstack metadata) are read as Z.
    """
    path = Path(path)
    component = None
    if not path.exists() and is_zarr(path.parent):
        path, component = path.parent, path.name
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if is_zarr(path):
        import zarr
        array = _open_zarr_array(path, component)
        found = None
        node = zarr.open(str(path), mode="r")
        if not hasattr(node, "shape"):
            try:
                found = "".join(a["name"].upper() if isinstance(a, dict) else a.upper()
                                for a in _multiscales(node.attrs)[0].get("axes", []))
            except InputError:
                pass
        axes = axes or found or {2: "YX", 3: "ZYX", 4: "TZYX"}.get(array.ndim)
        scale = _ngff_scale(node, axes) if found else {}
        meta = io.ImageMeta(axes=axes, pixel_size_x=scale.get("X"), pixel_size_y=scale.get("Y"),
                            z_spacing=scale.get("Z"), unit="micron" if scale else None, source=str(path))
        source = LazySource(str(path), axes, tuple(array.shape), str(array.dtype), component=component, meta=meta)
    else:
        import tifffile
        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                found = series.axes.upper().replace("I", "Z").replace("Q", "Z")
                meta = _tiff_meta(tif, axes or found, path)
                source = LazySource(str(path), axes or found, tuple(series.shape), str(series.dtype),
                                    tiff_series=0, meta=meta)
        except tifffile.TiffFileError as exc:
            raise InputError(f"{path}: not a TIFF or Zarr volume ({exc})") from None
    if len(source.axes) != len(source.shape) or set(source.axes) - set("TZCYXS"):
        raise InputError(f"{path}: axes {source.axes!r} do not fit the array's shape {source.shape}")
    return source


def _ngff_scale(group, axes: str) -> dict:
    try:
        dataset = _multiscales(group.attrs)[0]["datasets"][0]
        scale = next(t["scale"] for t in dataset["coordinateTransformations"] if t["type"] == "scale")
        return dict(zip(axes, scale))
    except (KeyError, StopIteration, IndexError, TypeError):
        return {}


def _create_array(group, name: str, shape, chunks, dtype):
    create = getattr(group, "create_array", None) or group.create_dataset  # zarr 3 / zarr 2
    return create(name, shape=tuple(shape), chunks=tuple(chunks), dtype=dtype, fill_value=0, overwrite=True)


def _open_group(path, mode: str):
    import zarr
    try:
        return zarr.open_group(str(path), mode=mode, zarr_format=2)
    except TypeError:  # zarr 2
        return zarr.open_group(str(path), mode=mode)


def create_labels(path, shape: Sequence[int], chunks: Sequence[int], axes: str,
                  meta: Optional[io.ImageMeta] = None, name: str = "labels", dtype="uint32"):
    """Create (or reopen, for a resumed run) an OME-Zarr label image and return its full-resolution array.

    ``axes``: letters of ``TZYX`` for ``shape``. The physical scale comes from ``meta`` (micrometres when known).
    """
    group = _open_group(path, "a")
    if "0" in group and tuple(group["0"].shape) == tuple(shape) and dict(group.attrs).get("trackpose_shape"):
        return group["0"]
    array = _create_array(group, "0", shape, chunks, dtype)
    group.attrs.update({"trackpose_shape": list(shape), "trackpose_axes": axes,
                        "trackpose_scale": _scale(axes, meta), "trackpose_name": name})
    return array


def _scale(axes: str, meta: Optional[io.ImageMeta]) -> list:
    if meta is None:
        return [1.0] * len(axes)
    by_axis = {"X": meta.pixel_size_x, "Y": meta.pixel_size_y or meta.pixel_size_x, "Z": meta.z_spacing,
               "T": meta.time_interval}
    return [float(by_axis.get(a) or 1.0) for a in axes]


def write_pyramid(path, min_size: int = 256, max_levels: int = 5, image: Optional[str] = None) -> int:
    """Add halved levels (Y and X subsampled by 2, other axes kept) until the image is under ``min_size`` pixels
    in Y and X, then write the OME-NGFF metadata; runs on the current Dask client. Returns the number of levels."""
    import warnings

    import dask
    import dask.array as da
    from dask.array.core import PerformanceWarning
    from dask.utils import parse_bytes

    group = _open_group(path, "a")
    attrs = dict(group.attrs)
    axes, scale = attrs["trackpose_axes"], attrs["trackpose_scale"]
    level = da.from_zarr(group["0"])
    chunks = group["0"].chunks
    # dask writes each level in tasks of up to "array.chunk-size" (128 MiB by default), each reading four times that
    # from the level above: tasks of at most 16 output chunks keep a worker near the memory of one block
    task_bytes = 16 * int(np.prod(chunks)) * group["0"].dtype.itemsize
    task_bytes = min(task_bytes, parse_bytes(dask.config.get("array.chunk-size")))
    n_levels = 1
    with dask.config.set({"array.chunk-size": task_bytes}):
        while n_levels < max_levels and max(level.shape[-2:]) > min_size:
            level = level[..., ::2, ::2]
            level_chunks = tuple(min(c, s) for c, s in zip(chunks, level.shape))  # one chunk where the level is smaller
            target = _create_array(group, str(n_levels), level.shape, level_chunks, group["0"].dtype)
            with warnings.catch_warnings():
                if level.nbytes <= task_bytes:
                    # dask writes a level this small as one chunk (its "auto" chunks), which is safe; its check only
                    # sees that the level's length is not a multiple of the Zarr chunk and warns of unsafe writes
                    warnings.filterwarnings("ignore", "The input Dask array will be rechunked", PerformanceWarning)
                da.to_zarr(level.rechunk(level_chunks), target)
            level = da.from_zarr(group[str(n_levels)])
            n_levels += 1
    kinds = {"T": "time", "C": "channel"}
    units = {"T": "second"}
    unit = _UNITS.get(attrs.get("trackpose_unit") or "micron", "micrometer")
    ngff_axes = [dict(name=a.lower(), type=kinds.get(a, "space"), unit=units.get(a, unit)) for a in axes]
    datasets = []
    for k in range(n_levels):
        factors = [2.0 ** k if a in "YX" else 1.0 for a in axes]
        datasets.append({"path": str(k), "coordinateTransformations": [
            {"type": "scale", "scale": [s * f for s, f in zip(scale, factors)]}]})
    group.attrs.update({
        "multiscales": [{"version": NGFF_VERSION, "name": attrs.get("trackpose_name", "labels"),
                         "axes": ngff_axes, "datasets": datasets}],
        "image-label": {"version": NGFF_VERSION, **({"source": {"image": image}} if image else {})},
    })
    return n_levels


def add_to_image_labels(image_group, name: str) -> Path:
    """Register ``labels/<name>`` in an OME-Zarr image's ``labels`` group and return the label group's path."""
    labels = _open_group(Path(image_group) / "labels", "a")
    names = list(dict(labels.attrs).get("labels", []))
    if name not in names:
        labels.attrs.update({"labels": names + [name]})
    return Path(image_group) / "labels" / name


def mark_complete(path, **info) -> None:
    _open_group(path, "a").attrs.update({COMPLETE_KEY: dict(info) or True})


def is_complete(path) -> bool:
    if not is_zarr(path):
        return False
    return bool(dict(_open_group(path, "r").attrs).get(COMPLETE_KEY))


def read_labels(path, level: int = 0) -> np.ndarray:
    """The labels of an OME-Zarr label group at ``level`` (0 = full resolution), in memory."""
    return np.asarray(_open_group(path, "r")[str(level)][...])
