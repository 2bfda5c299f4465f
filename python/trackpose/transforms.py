"""Image transforms before the network: axes and channels, normalisation, intensity adjustments, resizing, tiles.

Semantics follow cellpose 3.1 (``reference/cellpose-facts.md`` section 2 and 3) so that the same image and
settings give the network the same input; decisions cellpose takes silently (which axis is Z, which is the
channel axis) are logged here.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import settings
from .errors import InputError

log = logging.getLogger("trackpose")

DEFAULT_PERCENTILES = settings.default("percentiles")


# ---------------------------------------------------------------------------------------------- axes, channels

def _squeeze_tracking(x: np.ndarray, axes: dict) -> tuple[np.ndarray, dict]:
    """Drop singleton axes, keeping the positions of named axes (None when their axis was dropped)."""
    keep = [i for i, s in enumerate(x.shape) if s != 1]
    if len(keep) < 2:
        raise InputError(f"image of shape {x.shape} has fewer than two non-singleton axes; expected a 2D image "
                         "(Y, X) or more")
    new = {}
    for name, ax in axes.items():
        if ax is None:
            new[name] = None
            continue
        ax = ax % x.ndim
        new[name] = keep.index(ax) if ax in keep else None
    return x.reshape([x.shape[i] for i in keep]), new


def to_planes(image: np.ndarray, channels: Optional[Sequence[int]] = (0, 0), channel_axis: Optional[int] = None,
              z_axis: Optional[int] = None, nchan: int = 2, volume: bool = False) -> np.ndarray:
    """Bring an image into the network's layout: (Z, Y, X, nchan) float32, Z = 1 for a 2D image.

    Parameters
    ----------
    image : array
        2D (Y, X), 2D with channels, a Z stack, or a Z stack with channels, in any axis order.
    channels : (chan, chan2) or None
        1-based channel to segment and optional second (nuclear) channel; 0 = grayscale (mean of all channels)
        / none, as in cellpose. ``None`` keeps the first ``nchan`` channels.
    channel_axis, z_axis : int, optional
        Axis positions in ``image``. When absent they are guessed as cellpose does: with more than two axes and
        every axis longer than 5, the shortest axis is Z; then the shortest axis is the channel axis if it is
        shorter than 10. The guess is logged.
    volume : bool
        The caller wants a volume (3D mode or stitching): a 3-axis image without channels is then a Z stack.

    Returns
    -------
    np.ndarray, float32, shape (Z, Y, X, nchan)
    """
    x = np.asarray(image)
    if x.dtype == bool:
        x = x.astype(np.uint8)
    if not (np.issubdtype(x.dtype, np.number)) or np.iscomplexobj(x):
        raise InputError(f"image has dtype {x.dtype}; expected a real-valued numeric array")
    if x.ndim < 2 or x.ndim > 5:
        raise InputError(f"image has {x.ndim} axes (shape {x.shape}); expected 2 to 4 axes (Y, X with optional "
                         "Z and channel axes)")
    for name, ax in (("channel_axis", channel_axis), ("z_axis", z_axis)):
        if ax is not None and not -x.ndim <= ax < x.ndim:
            raise InputError(f"{name}={ax} is out of range for an image with {x.ndim} axes (shape {x.shape})")
    if channel_axis is not None and z_axis is not None and channel_axis % x.ndim == z_axis % x.ndim:
        raise InputError(f"channel_axis and z_axis are the same axis ({channel_axis})")
    x, axes = _squeeze_tracking(x, {"c": channel_axis, "z": z_axis})
    c_ax, z_ax = axes["c"], axes["z"]
    if x.ndim > 4:
        raise InputError(f"image has {x.ndim} non-singleton axes (shape {x.shape}); trackpose segments one "
                         "2D image or Z stack at a time: pass one time point")

    if z_ax is None and x.ndim > 2 and min(x.shape) > 5 and (x.ndim == 4 or c_ax is None or volume):
        shortest = int(np.argmin(x.shape))
        if shortest != c_ax:
            z_ax = shortest
            log.info("z_axis not given: taking axis %d (length %d) of shape %s as Z; pass z_axis/channel_axis "
                     "if that is wrong", z_ax, x.shape[z_ax], x.shape)
    if z_ax is None and x.ndim == 4:
        # Z stack with channels: the channel axis is the shortest (< 10) unless given, Z the shorter of the rest
        if c_ax is None:
            c_ax = int(np.argmin(x.shape))
            if x.shape[c_ax] >= 10:
                raise InputError(f"cannot tell Z from channels in an image of shape {image.shape}: pass z_axis "
                                 "and channel_axis")
        rest = [i for i in range(4) if i != c_ax]
        z_ax = min(rest, key=lambda i: x.shape[i])
        log.info("z_axis not given: taking axis %d (length %d) of shape %s as Z and axis %d as channels", z_ax,
                 x.shape[z_ax], x.shape, c_ax)
    if z_ax is not None and x.ndim == 2:
        z_ax = None
    if z_ax is not None:
        x = np.moveaxis(x, z_ax, 0)
        if c_ax is not None:
            c_ax = c_ax + 1 if c_ax < z_ax else c_ax
    else:
        if x.ndim == 4:
            raise InputError(f"cannot tell Z from channels in an image of shape {image.shape}: pass z_axis "
                             "(and channel_axis)")
        x = x[np.newaxis]
        c_ax = c_ax + 1 if c_ax is not None else None
    # x is (Z, ...) with the remaining axes Y, X and maybe C
    if x.ndim == 3:
        if c_ax is not None:
            raise InputError(f"channel_axis given but the image has no channel axis besides Y and X "
                             f"(shape {image.shape})")
        x = x[..., np.newaxis]
    elif c_ax is None:
        shortest = 1 + int(np.argmin(x.shape[1:]))
        if x.shape[shortest] >= 10:
            raise InputError(f"cannot tell which axis holds channels in an image of shape {image.shape}: "
                             "pass channel_axis (or z_axis)")
        c_ax = shortest
        if c_ax != x.ndim - 1:
            log.info("channel_axis not given: taking the shortest axis (length %d) as channels", x.shape[c_ax])
        x = np.moveaxis(x, c_ax, -1)
    else:
        x = np.moveaxis(x, c_ax, -1)
    x = x.astype(np.float32, copy=True)
    return select_channels(x, channels, nchan)


def select_channels(x: np.ndarray, channels: Optional[Sequence[int]], nchan: int = 2) -> np.ndarray:
    """(..., C) float32 -> (..., nchan) with cellpose's channel semantics."""
    nc = x.shape[-1]
    if channels is None:
        x = x[..., :nchan]
    else:
        if len(channels) != 2:
            raise InputError(f"channels must be two numbers [chan, chan2], got {list(channels)}")
        chan, chan2 = (int(c) for c in channels)
        for name, c in (("chan", chan), ("chan2", chan2)):
            if c < 0 or (c > nc and nc > 1) or (c > 1 and nc == 1):
                raise InputError(f"{name}={c} does not exist: the image has {nc} channel(s); channels are "
                                 f"numbered from 1, 0 = grayscale/none")
        if nc == 1:
            pass
        elif chan == 0:
            x = x.mean(axis=-1, keepdims=True)
        else:
            picked = [chan - 1] + ([chan2 - 1] if chan2 > 0 else [])
            x = x[..., picked]
            for i in range(x.shape[-1]):
                if np.ptp(x[..., i]) == 0:
                    log.warning("channel %d has a constant value everywhere", picked[i] + 1)
    if x.shape[-1] < nchan:
        x = np.concatenate([x, np.zeros(x.shape[:-1] + (nchan - x.shape[-1],), np.float32)], axis=-1)
    return np.ascontiguousarray(x)


# ----------------------------------------------------------------------------------------------- intensities

def check_finite(x: np.ndarray) -> None:
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise InputError(f"image contains {bad} NaN or infinite pixel value(s); replace them (e.g. with 0 or the "
                         "background level) before segmenting")


def _percentile_pair(values: np.ndarray, lower: float, upper: float, subsample: bool) -> tuple[float, float]:
    v = values
    if subsample and v.size > 224 ** 3:  # cellpose's strided subsample for large arrays
        step = [max(1, s // 224) for s in v.shape]
        if v.ndim == 3:
            step[0] = max(1, v.shape[0] // 50)
        v = v[tuple(slice(None, None, s) for s in step)]
    lo, hi = np.percentile(v, [lower, upper])
    return float(lo), float(hi)


def normalize(x: np.ndarray, percentiles: Sequence[float] = DEFAULT_PERCENTILES, lowhigh=None,
              per_plane: bool = True, invert: bool = False) -> np.ndarray:
    """Scale each channel so that the lower/upper percentiles map to 0 and 1 (in place on float32 input).

    Parameters
    ----------
    x : (Z, Y, X, C) float32
    percentiles : (low, high)
        Percentiles in 0..100 (cellpose: 1 and 99). A higher upper percentile keeps bright objects apart.
    lowhigh : (low, high), optional
        Fixed intensities for 0 and 1 instead of percentiles (e.g. a camera's range); applies to all channels.
    per_plane : bool
        Normalise each Z plane on its own (2D segmentation of a stack) or the stack as one volume (3D, stitching).
    invert : bool
        Use 1 - x after scaling (dark cells on a bright background).

    Channels whose values are constant are left as they are (zeros stay zeros); a channel whose percentiles
    are closer than 1e-3 becomes 0, as in cellpose.
    """
    lo_p, hi_p = (float(p) for p in percentiles)
    if not 0 <= lo_p < hi_p <= 100:
        raise InputError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
    if lowhigh is not None:
        low, high = (float(v) for v in lowhigh)
        if not high > low:
            raise InputError(f"normalisation range low={low}, high={high}: high must be greater than low")
        good = np.zeros(x.shape[-1], bool)
        for c in range(x.shape[-1]):
            ch = x[..., c]
            if ch.size == 0 or np.ptp(ch) <= 0:  # an empty channel (no nuclear stain) stays empty; cellpose
                continue                          # shifts it to -low / (high - low), which derails the network
            ch -= low
            ch /= high - low
            good[c] = True
    else:
        groups = [x[z] for z in range(x.shape[0])] if per_plane else [x]
        good = np.zeros(x.shape[-1], bool)
        for g in groups:
            for c in range(g.shape[-1]):
                ch = g[..., c]
                if ch.size == 0 or np.ptp(ch) <= 0:
                    continue
                lo, hi = _percentile_pair(ch, lo_p, hi_p, subsample=True)
                if hi - lo > 1e-3:
                    ch -= lo
                    ch /= hi - lo
                else:
                    ch[...] = 0
                good[c] = True
    if invert:
        for c in np.nonzero(good)[0]:
            x[..., c] = 1 - x[..., c]
    return x


def adjust_intensity(x: np.ndarray, gamma: float = 1.0, wiener_noise: float = 0.0) -> np.ndarray:
    """Image Analyst-style adjustments on a normalised (Z, Y, X, C) image, in place.

    gamma : float
        Applied to the normalised intensity clipped at 0: ``x <- max(x, 0) ** gamma``. > 1 darkens mid-tones
        relative to bright objects, < 1 brightens them. 1 = off.
    wiener_noise : float in 0..1
        Adaptive Wiener smoothing (5x5 window) per plane and channel with a noise power of ``wiener_noise`` times
        the channel's variance: higher values smooth more. 0 = off.
    """
    if gamma <= 0 or not np.isfinite(gamma):
        raise InputError(f"gamma must be a positive number, got {gamma}")
    if not 0 <= wiener_noise <= 1:
        raise InputError(f"wiener_noise (smoothing) must be in 0..1, got {wiener_noise}")
    if wiener_noise > 0:
        from scipy.signal import wiener
        for z in range(x.shape[0]):
            for c in range(x.shape[-1]):
                plane = x[z, ..., c]
                var = float(plane.var())
                if var > 0:
                    x[z, ..., c] = wiener(plane.astype(np.float64), (5, 5), noise=wiener_noise * var)
    if gamma != 1.0:
        np.maximum(x, 0, out=x)
        np.power(x, gamma, out=x)
    return x


# ------------------------------------------------------------------------------------------------ resizing

def resize_planes(x: np.ndarray, ly: int, lx: int, nearest: bool = False) -> np.ndarray:
    """Resize (N, Y, X, C) or (N, Y, X) planes to (ly, lx); bilinear with pixel-centre alignment (as OpenCV's
    INTER_LINEAR, no anti-aliasing) or nearest neighbour (for labels)."""
    if ly < 1 or lx < 1:
        raise InputError(f"resizing to {ly} x {lx} pixels: the diameter/anisotropy make the image vanish; check "
                         "the diameter (pixels) and anisotropy")
    if x.shape[1] == ly and x.shape[2] == lx:
        return x
    if nearest:
        # OpenCV INTER_NEAREST: source index floor(dst * (1 / (dst_len / src_len))), same rounding
        yi = np.minimum(np.floor(np.arange(ly) * (1.0 / (ly / x.shape[1]))).astype(np.int64), x.shape[1] - 1)
        xi = np.minimum(np.floor(np.arange(lx) * (1.0 / (lx / x.shape[2]))).astype(np.int64), x.shape[2] - 1)
        return x[:, yi][:, :, xi]
    has_c = x.ndim == 4
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    t = t.permute(0, 3, 1, 2) if has_c else t[:, None]
    out = F.interpolate(t, size=(ly, lx), mode="bilinear", align_corners=False)
    out = out.permute(0, 2, 3, 1) if has_c else out[:, 0]
    return np.ascontiguousarray(out.numpy())


# ------------------------------------------------------------------------------------------------ tiling

#: zeros cellpose adds on each side of a plane beyond the next multiple of 16
CELLPOSE_MARGIN = 8


def pad_to_16(ly: int, lx: int, margin: int = CELLPOSE_MARGIN) -> tuple[int, int, int, int]:
    """Zero padding (top, bottom, left, right) making each side a multiple of 16, plus ``margin`` pixels on each
    side: cellpose's 8, or 0 (3D mode's ZX and ZY slices with the compact tiling: a 14-pixel-high ZX slice of a
    thin stack pads to 16 rows, not 32)."""
    def one(length):
        extra = int(16 * np.ceil(length / 16) - length)
        return margin + extra // 2, margin + extra - extra // 2
    return (*one(ly), *one(lx))


TILINGS = ("compact", "cellpose")


def check_tiling(tiling: str) -> None:
    """InputError unless ``tiling`` names a tile layout of :func:`tile_starts`."""
    if tiling not in TILINGS:
        from .errors import InputError
        raise InputError(f"tiling must be one of {', '.join(TILINGS)}, got {tiling!r}")


def tile_starts(length: int, bsize: int, tile_overlap: float, augment: bool,
                tiling: str) -> tuple[np.ndarray, int]:
    """Start positions and size of tiles along one axis of ``length`` (padded) pixels.

    ``"cellpose"``: cellpose's layout, tiles of ``bsize`` (or the whole axis when shorter), as many as
    ``(1 + 2 * tile_overlap) * length / bsize`` rounded up. Its overlap is large where ``length`` is just above a
    multiple of ``bsize``: a 464-pixel axis gets 3 tiles of 224 (672 pixels of tiles for 464 of image).

    ``"compact"``: the fewest tile pixels with tiles of ``bsize`` to ``2 * bsize`` pixels (multiples of 16) whose
    neighbours overlap by at least ``2 * tile_overlap * bsize`` pixels (45 for the defaults; cellpose's layout
    gives 37 to 110); an axis up to ``2 * bsize`` is one tile. The 464-pixel axis gets 2 tiles of 256 (512
    pixels). ``augment`` always uses cellpose's layout (flipped, half-overlapping ``bsize`` squares).
    """
    check_tiling(tiling)
    tile_overlap = min(0.5, max(0.05, tile_overlap))
    if augment:
        n = max(2, int(np.ceil(2.0 * length / bsize)))
        size = bsize
    elif tiling == "cellpose" or length <= bsize:
        n = 1 if length <= bsize else int(np.ceil((1.0 + 2 * tile_overlap) * length / bsize))
        size = min(bsize, length)
    elif length <= 2 * bsize:
        n, size = 1, length
    else:
        overlap = int(np.ceil(2 * tile_overlap * bsize))
        # cost n * s for each size s; the first (smallest) tile size among the cheapest wins
        layouts = ((int(np.ceil((length - overlap) / (s - overlap))), s) for s in range(bsize, 2 * bsize + 1, 16))
        n, size = min(layouts, key=lambda ns: ns[0] * ns[1])
    return np.linspace(0, length - size, n).astype(int), size


def taper_mask(ly: int, lx: int, sig: float = 7.5) -> np.ndarray:
    """Weights that fade each tile's output towards its borders (logistic profile), (ly, lx) float32."""
    b = max(224, ly, lx)
    d = np.abs(np.arange(b) - (b - 1) / 2)
    prof = 1 / (1 + np.exp((d - (b / 2 - 20)) / sig))
    mask = prof[:, None] * prof[None, :]
    y0, x0 = b // 2 - ly // 2, b // 2 - lx // 2
    return mask[y0:y0 + ly, x0:x0 + lx].astype(np.float32)
