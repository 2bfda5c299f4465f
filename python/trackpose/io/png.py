"""PNG codec: ``imagecodecs`` (libpng; by the author of tifffile) with our checks and error messages.

Decodes 1-16 bit gray, gray+alpha, RGB, RGBA and palette images, interlaced or not; encodes 8/16-bit images
(cellpose's 16-bit ``_cp_masks.png``). ``trackpose.io.images`` reads and writes files with it.
"""

from __future__ import annotations

import imagecodecs
import numpy as np

from ..errors import InputError

__all__ = ["decode_png", "encode_png", "PNG_SIGNATURE"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode_png(content: bytes, name="PNG data") -> np.ndarray:
    """Decode PNG bytes into an array: (H, W) for gray, (H, W, S) for gray+alpha, RGB (palette too), RGBA.

    8-bit samples give uint8 and 16-bit give uint16; 1/2/4-bit gray gives the raw values (0..2**depth-1) as
    uint8 (libpng scales them to 0..255; they are scaled back, exactly). Ancillary chunks (gamma, transparency,
    physical size, text) are ignored.
    """
    content = bytes(content)
    if content[:8] != PNG_SIGNATURE:
        raise InputError(f"{name}: not a PNG file (bad signature).")
    if len(content) < 33 or content[12:16] != b"IHDR":
        raise InputError(f"{name}: truncated PNG (no complete IHDR chunk). Export the image again.")
    depth, colour = content[24], content[25]
    try:
        image = imagecodecs.png_decode(content)
    except Exception as error:  # libpng reports checksum errors, truncation and bad headers in several types
        raise InputError(f"{name}: corrupt, truncated or unsupported PNG ({type(error).__name__}: {error}). "
                         "Export the image again.") from None
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if colour == 0 and depth < 8:  # libpng expands low-bit gray to 0..255 by v * 255 / (2**depth - 1)
        image = (image // (255 // (2 ** depth - 1))).astype(np.uint8)
    return image


def encode_png(image) -> bytes:
    """Encode a uint8 or uint16 array (H, W) or (H, W, S) with S in 1..4 as PNG bytes (non-interlaced)."""
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"PNG stores 8- or 16-bit unsigned samples, not {image.dtype}; convert the array first.")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (2, 3, 4)) or 0 in image.shape:
        raise InputError(f"PNG holds one 2-D plane with 1 to 4 samples per pixel, not shape {image.shape}.")
    return bytes(imagecodecs.png_encode(np.ascontiguousarray(image), level=6))
