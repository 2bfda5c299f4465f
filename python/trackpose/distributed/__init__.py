"""trackpose over Dask: movie frames across workers, and volumes larger than memory segmented block by block
with labels merged across the seams, read from and written to (OME-)Zarr. User guide: docs/distributed.md.

Needs the ``distributed`` extra (``pip install trackpose[distributed]``: dask[distributed], zarr, ome-zarr). The
names below are imported on first use, so that the command line's help does not import Dask.

- :func:`segment_volume` (``volume``): blockwise segmentation of a volume into an OME-Zarr label image;
- :func:`segment_frames` (``frames``): image files and movie frames over workers, written as they finish;
- :func:`connect` (``cluster``): a Dask client for ``"local"``, ``"tcp://HOST:PORT"`` or a given client;
- :func:`merge_label_blocks`, :func:`block_grid` (``blocks``): block geometry and seam merging, in memory;
- :func:`open_source`, :func:`read_labels` (``zarr_io``): lazy TIFF/Zarr inputs, OME-Zarr label outputs.
"""
from __future__ import annotations

from ..lazy import lazy_names

_LAZY = {
    "segment_volume": "volume",
    "VolumeResult": "volume",
    "segment_frames": "frames",
    "connect": "cluster",
    "default_layout": "cluster",
    "block_grid": "blocks",
    "merge_label_blocks": "blocks",
    "open_source": "zarr_io",
    "read_labels": "zarr_io",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
