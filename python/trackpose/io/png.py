"""PNG codec: a small decoder/encoder of our own (``zlib`` + the five PNG filters).

Decodes 1-16 bit gray, gray+alpha, RGB, RGBA and palette images, interlaced or not; encodes 8/16-bit
non-interlaced images (cellpose's 16-bit ``_cp_masks.png``). ``trackpose.io.images`` reads and writes files with it.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from ..errors import InputError

__all__ = ["decode_png", "encode_png", "PNG_SIGNATURE"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
# Adam7 passes: (x start, y start, x step, y step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))



def decode_png(content: bytes, name="PNG data") -> np.ndarray:
    """Decode PNG bytes into an array: (H, W) for gray, (H, W, S) for gray+alpha, RGB (palette too), RGBA.

    8-bit samples give uint8 and 16-bit give uint16; 1/2/4-bit gray gives the raw values (0..2**depth-1) as
    uint8. Ancillary chunks (gamma, transparency, physical size, text) are ignored.
    """
    if content[:8] != PNG_SIGNATURE:
        raise InputError(f"{name}: not a PNG file (bad signature).")
    position, header, palette, compressed, ended = 8, None, None, [], False
    while position < len(content):
        if position + 8 > len(content):
            break
        length, kind = struct.unpack(">I4s", content[position:position + 8])
        body = content[position + 8:position + 8 + length]
        crc = content[position + 8 + length:position + 12 + length]
        if len(body) < length or len(crc) < 4:
            break
        if struct.unpack(">I", crc)[0] != zlib.crc32(kind + body) & 0xFFFFFFFF:
            raise InputError(f"{name}: corrupt PNG (checksum error in the {kind.decode('latin-1')!r} chunk). "
                             "Export the image again.")
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body[:13])
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            compressed.append(body)
        elif kind == b"IEND":
            ended = True
            break
        elif not kind[0] & 0x20:  # upper-case first letter: a critical chunk we do not know
            raise InputError(f"{name}: PNG uses an unsupported critical chunk {kind!r}.")
    if header is None or not ended:
        raise InputError(f"{name}: truncated PNG (the file ends before its IEND chunk). Export the image again.")

    width, height, depth, colour, compression, filter_method, interlace = header
    if colour not in _PNG_CHANNELS or depth not in _PNG_DEPTHS[colour] or compression or filter_method \
            or interlace > 1 or width == 0 or height == 0:
        raise InputError(f"{name}: invalid or unsupported PNG header (colour type {colour}, bit depth {depth}, "
                         f"interlace {interlace}, {width}x{height}).")
    if colour == 3 and palette is None:
        raise InputError(f"{name}: palette PNG without a palette (PLTE chunk).")

    decompressor = zlib.decompressobj()
    try:
        raw = decompressor.decompress(b"".join(compressed))
    except zlib.error as error:
        raise InputError(f"{name}: corrupt PNG image data ({error}). Export the image again.") from error
    if not decompressor.eof:
        raise InputError(f"{name}: truncated PNG image data. Export the image again.")

    channels = _PNG_CHANNELS[colour]
    bits_per_pixel = channels * depth
    filter_unit = max(1, bits_per_pixel // 8)
    passes = _ADAM7 if interlace else ((0, 0, 1, 1),)
    sample_dtype = np.uint16 if depth == 16 else np.uint8
    image = np.zeros((height, width, channels), sample_dtype)
    offset = 0
    for x0, y0, dx, dy in passes:
        pass_width, pass_height = -(-(width - x0) // dx), -(-(height - y0) // dy)
        if pass_width <= 0 or pass_height <= 0:
            continue
        row_bytes = -(-pass_width * bits_per_pixel // 8)
        size = pass_height * (row_bytes + 1)
        if offset + size > len(raw):
            raise InputError(f"{name}: truncated PNG image data ({len(raw)} bytes, more expected).")
        block = np.frombuffer(raw, np.uint8, size, offset).reshape(pass_height, row_bytes + 1)
        offset += size
        rows = _png_unfilter(block, filter_unit, name)
        image[y0::dy, x0::dx] = _png_samples(rows, pass_width, channels, depth)
    if colour == 3:
        indices = image[..., 0]
        if indices.max() >= len(palette):
            raise InputError(f"{name}: corrupt palette PNG (index beyond the palette).")
        image = palette[indices]
    return image[..., 0] if image.shape[-1] == 1 else image


def _png_samples(rows: np.ndarray, width: int, channels: int, depth: int) -> np.ndarray:
    """Unfiltered rows (h, row_bytes) -> samples (h, width, channels)."""
    height = rows.shape[0]
    if depth == 8:
        return rows[:, :width * channels].reshape(height, width, channels)
    if depth == 16:
        return rows[:, :width * channels * 2].copy().view(">u2").astype(np.uint16).reshape(height, width, channels)
    bits = np.unpackbits(rows, axis=1)[:, :width * depth].reshape(height, width, depth)
    weights = (1 << np.arange(depth - 1, -1, -1)).astype(np.uint8)
    return (bits * weights).sum(axis=2, dtype=np.uint8)[..., None]


def _png_unfilter(block: np.ndarray, unit: int, name) -> np.ndarray:
    """Undo PNG filtering of ``block`` (rows, 1 + row_bytes); ``unit`` = bytes per complete pixel (>= 1)."""
    kinds = block[:, 0]
    filtered = block[:, 1:]
    height, row_bytes = filtered.shape
    if kinds.max() > 4:
        raise InputError(f"{name}: corrupt PNG (unknown row filter {int(kinds.max())}).")
    if np.all(kinds <= 2):
        # None, Sub and Up only: each row is one vectorised step
        out = np.empty_like(filtered)
        previous = np.zeros(row_bytes, np.uint8)
        for r in range(height):
            line = filtered[r]
            if kinds[r] == 1:
                line = np.cumsum(line.reshape(-1, unit), axis=0, dtype=np.uint8).reshape(-1)
            elif kinds[r] == 2:
                line = line + previous
            out[r] = line
            previous = out[r]
        return out
    # Average and Paeth depend on the left, upper and upper-left neighbours: sweep anti-diagonals of pixels,
    # each one vectorised over rows (rows + columns steps instead of rows x columns).
    pixels = row_bytes // unit
    source = filtered.reshape(height, pixels, unit).astype(np.int16)
    padded = np.zeros((height + 1, pixels + 1, unit), np.int16)  # one zero row above, one zero column left
    kinds = kinds.astype(np.int16)
    for diagonal in range(height + pixels - 1):
        r = np.arange(max(0, diagonal - pixels + 1), min(height - 1, diagonal) + 1)
        c = diagonal - r
        left, up, up_left = padded[r + 1, c], padded[r, c + 1], padded[r, c]
        kind = kinds[r][:, None]
        estimate = left + up - up_left
        to_left, to_up, to_corner = np.abs(estimate - left), np.abs(estimate - up), np.abs(estimate - up_left)
        paeth = np.where((to_left <= to_up) & (to_left <= to_corner), left,
                         np.where(to_up <= to_corner, up, up_left))
        prediction = np.select([kind == 1, kind == 2, kind == 3, kind == 4],
                               [left, up, (left + up) >> 1, paeth], 0)
        padded[r + 1, c + 1] = (source[r, c] + prediction) & 0xFF
    return padded[1:, 1:].astype(np.uint8).reshape(height, row_bytes)


def encode_png(image) -> bytes:
    """Encode a uint8 or uint16 array (H, W) or (H, W, S) with S in 1..4 as PNG bytes (non-interlaced)."""
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"PNG stores 8- or 16-bit unsigned samples, not {image.dtype}; convert the array first.")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (2, 3, 4)) or 0 in image.shape:
        raise InputError(f"PNG holds one 2-D plane with 1 to 4 samples per pixel, not shape {image.shape}.")
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    depth = 8 * image.dtype.itemsize
    unit = channels * image.dtype.itemsize
    rows = np.ascontiguousarray(image.astype(">u2") if depth == 16 else image).view(np.uint8)
    rows = rows.reshape(height, width * unit)

    # per row, keep the cheapest of None / Sub / Up (smallest sum of |signed byte|, the usual heuristic)
    sub = rows.copy()
    sub[:, unit:] -= rows[:, :-unit]
    up = rows.copy()
    up[1:] -= rows[:-1]
    candidates = np.stack([rows, sub, up])
    cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)
    choice = np.argmin(cost, axis=0)
    filtered = candidates[choice, np.arange(height)]
    raw = np.concatenate([choice.astype(np.uint8)[:, None], filtered], axis=1).tobytes()
    compressed = zlib.compress(raw, 6)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    parts = [PNG_SIGNATURE, chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))]
    step = 1 << 20
    parts += [chunk(b"IDAT", compressed[i:i + step]) for i in range(0, len(compressed), step)]
    parts.append(chunk(b"IEND", b""))
    return b"".join(parts)
