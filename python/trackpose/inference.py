"""Running the network over planes: resizing, padding, overlapping tiles, test-time flips, model ensembles.

Input planes are (N, Y, X, C) normalised float32; the output is the network's (dY, dX, cellprob) per plane at the
resized ("network") scale, averaged over tiles with tapered weights, plus the style vector of each plane. The tiles
are laid out as cellpose lays them out (``tiling="cellpose"``), or, by default, with fewer pixels in total
(``tiling="compact"``: larger tiles, less redundant overlap; see ``transforms.tile_starts``).
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch

from . import malloc, transforms
from .models import Model


def _plane_tiles(plane: np.ndarray, ys: np.ndarray, ly: int, xs: np.ndarray, lx: int, augment: bool):
    """Tiles (n, C, ly, lx) of one padded (C, Ly, Lx) plane at the given starts, and their (y0, x0) corners."""
    tiles = np.empty((len(ys) * len(xs), plane.shape[0], ly, lx), np.float32)
    corners = []
    k = 0
    for j, y0 in enumerate(ys):
        for i, x0 in enumerate(xs):
            tile = plane[:, y0:y0 + ly, x0:x0 + lx]
            if augment:  # flip by tile parity so that overlapping tiles see different orientations
                if i % 2 == 1:
                    tile = tile[:, ::-1, :]
                if j % 2 == 1:
                    tile = tile[:, :, ::-1]
            tiles[k] = tile
            corners.append((y0, x0, j, i))
            k += 1
    return tiles, corners


def _unflip(y: np.ndarray, j: int, i: int) -> np.ndarray:
    """Undo the parity flips of a tile's output (C, ly, lx) and negate the flipped flow components."""
    if i % 2 == 1:
        y = y[:, ::-1, :].copy()
        y[0] *= -1
    if j % 2 == 1:
        y = y[:, :, ::-1].copy()
        y[1] *= -1
    return y


def _forward(model: Model, batch: np.ndarray, bfloat16: bool = False) -> tuple[np.ndarray, np.ndarray]:
    net = model.inference_net
    x = torch.from_numpy(batch).to(model.device).contiguous(memory_format=torch.channels_last)
    # bfloat16: convolutions in bfloat16 (float32 accumulation), everything torch keeps in float32 stays so
    with torch.inference_mode(), torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=bfloat16):
        y, style = net(x)
    return y.float().cpu().numpy(), style.float().cpu().numpy()


def bfloat16_support(device: torch.device) -> Optional[str]:
    """None when ``device`` runs bfloat16 convolutions natively, else why the option will not pay off there."""
    if device.type == "cuda":
        return None if torch.cuda.is_bf16_supported() else "this GPU has no bfloat16 support"
    if device.type == "cpu":
        if torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return None
        return "this CPU has no native bfloat16 instructions (AVX512-BF16 or AMX): it would be emulated, slower " \
               "than float32"
    return f"bfloat16 is not supported on {device.type}"


def run_network(models: Sequence[Model], planes: np.ndarray, rescale: float = 1.0, bsize: int = 224,
                tile_overlap: float = 0.1, augment: bool = False, batch_size: int = 8, tiling: str = "compact",
                bfloat16: bool = False,
                pad_margin: int = transforms.CELLPOSE_MARGIN,
                progress: Optional[Callable[[int, int], None]] = None) -> tuple[np.ndarray, np.ndarray]:
    """Network output for each plane at network scale.

    Parameters
    ----------
    models : sequence of Model
        One model, or several of the same architecture whose outputs are averaged (ensembling).
    planes : (N, Y, X, C) float32
        Normalised planes.
    rescale : float
        Resize factor applied to Y and X before the network (diam_mean / diameter).
    bsize, tile_overlap, augment, batch_size, tiling :
        Tile size, fractional overlap, flipped half-overlapping tiles, tiles of ``bsize`` x ``bsize`` pixels per
        forward pass (larger tiles go fewer to a pass, so that a pass holds about as many pixels), and the tile
        layout (``transforms.tile_starts``: ``"compact"`` or cellpose's ``"cellpose"``).
    pad_margin : int
        Zeros added on each side of a plane beyond the next multiple of 16 (``transforms.pad_to_16``): cellpose's 8,
        or 0 for 3D mode's ZX and ZY slices with the compact tiling.
    bfloat16 : bool
        Run the network in bfloat16 (autocast): about 1.7x faster on CPUs with AVX512-BF16 or AMX and on recent
        GPUs, outputs within ~1% of float32 (docs/engine.md, "bfloat16").
    progress : callable(done, total), optional
        Called after each forward pass with the number of tiles done.

    Returns
    -------
    y : (N, 3, Yr, Xr) float32 with Yr = int(Y * rescale): dY, dX, cellprob logit (network scale)
    styles : (N, 256) float32, L2-normalised sum of tile styles (first model)
    """
    if bsize < 16 or bsize % 16:
        from .errors import InputError
        raise InputError(f"bsize must be a positive multiple of 16, got {bsize}")
    n, ly0, lx0, nchan = planes.shape
    lyr, lxr = (int(ly0 * rescale), int(lx0 * rescale)) if rescale != 1.0 else (ly0, lx0)
    pt, pb, pl, pr = transforms.pad_to_16(lyr, lxr, margin=pad_margin)
    ly_pad, lx_pad = lyr + pt + pb, lxr + pl + pr
    if augment:  # flipped tiles are bsize squares: the padded plane must hold at least one
        pb += max(0, bsize - ly_pad)
        pr += max(0, bsize - lx_pad)
        ly_pad, lx_pad = lyr + pt + pb, lxr + pl + pr
    nout = 3
    out = np.zeros((n, nout, lyr, lxr), np.float32)
    styles = np.zeros((n, 256), np.float32)
    tys, tly = transforms.tile_starts(ly_pad, bsize, tile_overlap, augment, tiling)
    txs, tlx = transforms.tile_starts(lx_pad, bsize, tile_overlap, augment, tiling)
    taper = transforms.taper_mask(tly, tlx)
    tiles_per_plane = len(tys) * len(txs)
    total = n * tiles_per_plane * len(models)
    done = 0
    # A forward pass holds about batch_size tiles' worth of bsize x bsize pixels: more thin tiles (3D's ZX/ZY
    # slices), fewer large ones (compact tiling). The cost per pixel does not depend on the batch; memory does.
    per_pass = max(1, int(batch_size * bsize * bsize // (tly * tlx)))
    # Several planes per batch when tiles are few, as cellpose does; memory stays bounded by the group size.
    group = max(1, per_pass // tiles_per_plane)
    # The output arrays above stay mmapped (freed to the system); the batches' temporaries reuse heap pages.
    with malloc.reuse_large_buffers():
        for g0 in range(0, n, group):
            idx = range(g0, min(n, g0 + group))
            tiles, corners = [], []
            for p in idx:
                plane = planes[p]
                if rescale != 1.0:
                    plane = transforms.resize_planes(plane[None], lyr, lxr)[0]
                plane = np.pad(plane.transpose(2, 0, 1), ((0, 0), (pt, pb), (pl, pr)))
                t, c = _plane_tiles(plane, tys, tly, txs, tlx, augment)
                tiles.append(t)
                corners.append(c)
            tiles = np.concatenate(tiles)
            y_sum = None
            for m_i, model in enumerate(models):
                ys, ss = [], []
                for b0 in range(0, len(tiles), per_pass):
                    y, s = _forward(model, tiles[b0:b0 + per_pass], bfloat16)
                    ys.append(y)
                    ss.append(s)
                    done += len(y)
                    if progress is not None:
                        progress(done, total)
                y_all = np.concatenate(ys)
                y_sum = y_all if y_sum is None else y_sum + y_all
                if m_i == 0:
                    s_all = np.concatenate(ss)
            y_all = y_sum / len(models) if len(models) > 1 else y_sum
            for k, p in enumerate(idx):
                acc = np.zeros((nout, ly_pad, lx_pad), np.float32)
                weight = np.zeros((ly_pad, lx_pad), np.float32)
                for t_i, (y0, x0, j, i) in enumerate(corners[k]):
                    y = y_all[k * tiles_per_plane + t_i]
                    if augment:
                        y = _unflip(y, j, i)
                    acc[:, y0:y0 + tly, x0:x0 + tlx] += y * taper
                    weight[y0:y0 + tly, x0:x0 + tlx] += taper
                acc /= weight
                out[p] = acc[:, pt:pt + lyr, pl:pl + lxr]
                style = s_all[k * tiles_per_plane:(k + 1) * tiles_per_plane].sum(axis=0)
                styles[p] = style / np.sqrt((style ** 2).sum())
    return out, styles
