"""Files and formats: images with their calibration, label images ImageJ opens, meshes, ImageJ ROIs.

The first and last steps of the data flow (read -> ... -> write). One module per format family:

- :mod:`trackpose.io.images`: TIFF (ImageJ, OME, plain), PNG and ``.npy`` images with their calibration; label
  images written as ImageJ TIFF or cellpose's 16-bit PNG; finding the images of a folder;
- :mod:`trackpose.io.png`: the PNG codec;
- :mod:`trackpose.io.ply`: triangle meshes as binary PLY (what the Java bridge reads);
- :mod:`trackpose.io.roi`: ImageJ ROI sets (``RoiSet.zip``, ``.roi``).

The names below are re-exported so that ``from trackpose import io; io.read_image(...)`` reads as before.
"""
from __future__ import annotations

from .images import (BOMB_MIN_BYTES, CANONICAL_AXES, IMAGE_SUFFIXES, MAX_COMPRESSION_RATIO, MAX_FLOAT32_LABEL,
                     OUTPUT_SUFFIXES, ImageMeta, default_axes, find_images, image_stem, natural_key, read_image,
                     write_labels, write_png, write_png_labels, write_tiff)
from .ply import read_ply, write_ply
from .png import decode_png, encode_png
from .roi import RoiShape, read_roi, read_roi_file

__all__ = ["ImageMeta", "read_image", "write_labels", "write_tiff", "write_png", "write_png_labels",
           "decode_png", "encode_png", "default_axes", "image_stem", "natural_key", "find_images",
           "read_ply", "write_ply", "RoiShape", "read_roi", "read_roi_file",
           "IMAGE_SUFFIXES", "CANONICAL_AXES", "OUTPUT_SUFFIXES", "MAX_FLOAT32_LABEL", "MAX_COMPRESSION_RATIO",
           "BOMB_MIN_BYTES"]
