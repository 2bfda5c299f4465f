"""Blockwise segmentation of a volume larger than memory, over Dask, into an OME-Zarr label image.

Three passes, each a set of independent tasks (run inline when no client is given):

1. segment each block's padded box with ``trackpose.segment`` (3D mode or 2D + Z stitching, the caller's
   settings, one diameter and one intensity range for the whole volume) and save its labels as
   ``<out>.trackpose-blocks/<block>.npz`` (written to a temporary name, then renamed: a block file that exists is
   whole, and a resumed run skips it);
2. count, for every pair of neighbouring blocks, which of their labels overlap in the slab they share;
3. join those labels (:func:`trackpose.distributed.blocks.global_ids`), then write each core, relabelled, into the
   output's chunks (chunks = cores, so no two tasks write the same chunk).

A worker holds one padded block, its network outputs and its masks at a time: the block size, not the volume,
sets its memory.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import InputError
from ..settings import DEFAULTS
from . import zarr_io
from .blocks import (DEFAULT_MERGE_FRACTION, Block, block_grid, core_labels_of, global_ids, neighbour_pairs,
                     overlap_counts)
from .cluster import run_tasks, worker_model

log = logging.getLogger("trackpose")

__all__ = ["segment_volume", "VolumeResult", "default_overlap"]

#: labels of uniform boxes (every voxel one value: the zero padding around a fused light-sheet sample, a Zarr
#: region never written) kept per worker, by (shape, value, settings, model). Segmentation is deterministic, so
#: such a box gives the same labels every time: it is segmented once and its labels reused.
_UNIFORM_BOXES: "OrderedDict[tuple, np.ndarray]" = OrderedDict()
_UNIFORM_LOCK = threading.Lock()
_UNIFORM_KEEP = 8

#: voxels read to estimate the volume's intensity percentiles (a strided sample of the whole volume)
NORMALISATION_SAMPLE = 1 << 24


@dataclass
class VolumeResult:
    """What :func:`segment_volume` did."""
    path: Path
    n_objects: int
    n_blocks: int
    skipped_blocks: int
    diameter: float
    overlap: tuple
    block_seconds: list = field(default_factory=list)  # network + masks time of each block segmented now
    uniform_blocks: int = 0  # blocks segmented now whose box held one value (labels reused, see _UNIFORM_BOXES)
    seconds: float = 0.0


def default_overlap(diameter: float, ndim: int, anisotropy: float = 1.0) -> tuple:
    """One object diameter on each side (in Z, the diameter over the anisotropy), rounded up."""
    xy = int(math.ceil(diameter))
    if ndim == 2:
        return xy, xy
    return int(math.ceil(diameter / max(anisotropy, 1e-6))), xy, xy


def _intensity_range(source, settings: dict) -> Optional[tuple]:
    """The volume's (low, high) percentiles from a strided sample, so that every block is scaled alike."""
    if not settings.get("normalize", True) or settings.get("lowhigh") is not None:
        return settings.get("lowhigh")
    size = int(np.prod(source.shape))
    stride = max(1, int(math.ceil((size / NORMALISATION_SAMPLE) ** (1 / source.ndim))))
    sample = np.asarray(source[tuple(slice(None, None, stride) for _ in source.shape)], np.float32)
    low_p, high_p = settings.get("percentiles") or DEFAULTS["percentiles"]
    low, high = np.percentile(sample, [low_p, high_p])
    if not high > low:
        high = low + 1.0
    return float(low), float(high)


def _block_kwargs(settings: dict, ndim: int) -> dict:
    kwargs = dict(settings)
    kwargs.pop("model", None)
    kwargs.pop("exclude_on_edges", None)  # an edge of a block is not an edge of the volume
    kwargs.pop("channel_axis", None)
    if ndim == 3:
        kwargs["z_axis"] = 0
    else:
        kwargs.pop("z_axis", None)
    return kwargs


def segment_block(block: Block, data, settings: dict, model, scratch: str) -> tuple[int, np.ndarray, float, bool]:
    """Segment one padded block and save its labels; returns (largest label, labels in the core, seconds, whether
    the box was uniform and its labels reused).

    ``data`` is the block's pixels or a :class:`~trackpose.distributed.zarr_io.LazySource` to read them from.
    """
    t0 = time.perf_counter()
    pixels = data[block.padded_slices] if isinstance(data, zarr_io.LazySource) else np.asarray(data)
    kwargs = _block_kwargs(settings, pixels.ndim)
    if kwargs.get("normalize", True) and kwargs.get("lowhigh") is not None:
        # scaled here, and (0, 1) passed on: segment's fixed range would also shift the empty second channel
        low, high = kwargs["lowhigh"]
        pixels = (np.asarray(pixels, np.float32) - np.float32(low)) / np.float32(high - low)
        kwargs["lowhigh"] = (0.0, 1.0)
    labels, uniform = _box_labels(pixels, kwargs, model, settings)
    core = core_labels_of(labels, block)
    seconds = time.perf_counter() - t0
    target = Path(scratch) / f"{block.name}.npz"
    partial = target.with_name(f"{block.name}.{os.getpid()}.partial.npz")
    np.savez_compressed(partial, labels=labels, core=core, seconds=seconds)
    os.replace(partial, target)  # the file appears whole or not at all
    return int(labels.max(initial=0)), core, seconds, uniform


def _box_labels(pixels: np.ndarray, kwargs: dict, model, settings: dict) -> tuple[np.ndarray, bool]:
    """The box's labels, and whether the box was uniform (then segmented once per worker, see _UNIFORM_BOXES)."""
    low, high = (pixels.min(), pixels.max()) if pixels.size else (0, 1)
    if low != high:  # NaN compares unequal too: segmented as given
        return _segment_box(pixels, kwargs, model, settings), False
    from .frames import settings_fingerprint
    key = (pixels.shape, str(pixels.dtype), float(low), settings_fingerprint(dict(kwargs, model=model)))
    with _UNIFORM_LOCK:
        labels = _UNIFORM_BOXES.get(key)
        if labels is not None:
            _UNIFORM_BOXES.move_to_end(key)
            return labels, True
    labels = _segment_box(pixels, kwargs, model, settings)
    labels.setflags(write=False)
    with _UNIFORM_LOCK:
        _UNIFORM_BOXES[key] = labels
        while len(_UNIFORM_BOXES) > _UNIFORM_KEEP:
            _UNIFORM_BOXES.popitem(last=False)
    return labels, True


def _segment_box(pixels: np.ndarray, kwargs: dict, model, settings: dict) -> np.ndarray:
    from ..segmentation import segment
    result = segment(pixels, model=worker_model(model, settings.get("device"), settings.get("gpu", False)),
                     **kwargs)
    labels = np.asarray(result.masks)
    return labels.astype(np.uint16 if labels.max(initial=0) < 65536 else np.uint32)


def _load_block(scratch: str, block: Block) -> np.ndarray:
    with np.load(Path(scratch) / f"{block.name}.npz") as saved:
        return saved["labels"]


def block_pairs(i: int, block: Block, neighbours: Sequence[tuple], scratch: str) -> list:
    """Overlap counts between block ``i`` and each (j, block_j, shared box) in ``neighbours``."""
    labels = _load_block(scratch, block)
    return [(i, j, overlap_counts(labels, block, _load_block(scratch, other), other, box))
            for j, other, box in neighbours]


def write_core(block: Block, lut: np.ndarray, scratch: str, out: str) -> None:
    """Relabel the block's core with ``lut`` and write it into level 0 of the output."""
    labels = _load_block(scratch, block)
    _level0(out)[block.core_slices] = lut[labels[block.core_in_padded]]


def _level0(out: str):
    import zarr
    return zarr.open_array(str(Path(out) / "0"), mode="r+")


def _as_source(volume) -> Union[zarr_io.LazySource, np.ndarray]:
    if isinstance(volume, zarr_io.LazySource):
        return volume
    if isinstance(volume, (str, os.PathLike)):
        return zarr_io.open_source(volume)
    return np.asarray(volume)


def segment_volume(volume, out, *, block_size, overlap=None, settings: Optional[dict] = None, client=None,
                   merge_fraction: float = DEFAULT_MERGE_FRACTION, progress=None, keep_blocks: bool = False,
                   label_name: str = "labels", image_path: Optional[str] = None) -> VolumeResult:
    """Segment a (Z, Y, X) or (Y, X) volume block by block and write an OME-Zarr label image.

    Parameters
    ----------
    volume : path (TIFF, Zarr, OME-Zarr), :class:`~trackpose.distributed.zarr_io.LazySource`, or array
        One channel. Paths and sources are read by the workers, block by block.
    out : path
        The OME-Zarr label group to write (level ``0`` at full resolution, then halved levels). A run that stopped
        resumes from the blocks already saved in ``<out>.trackpose-blocks``.
    block_size : int or (Z, Y, X)
        Core size of each block and chunk size of the output; with ``overlap`` it sets each worker's memory.
    overlap : int or (Z, Y, X), optional
        Voxels each block reads past its core on each side; default one object diameter (:func:`default_overlap`).
    settings : dict
        ``trackpose.segment`` keyword arguments (``model`` as a name or path: each worker loads it once).
        ``do_3d=True`` or ``stitch_threshold > 0`` for a volume. ``diameter`` 0 or None: estimated once, on the
        central block, and used for every block.
    client : dask.distributed.Client, optional
        Where the blocks run; None runs them one after another in this process.
    merge_fraction : see :func:`trackpose.distributed.blocks.global_ids`
    progress : callable(done, total, stage), optional

    Returns
    -------
    VolumeResult
    """
    t0 = time.perf_counter()
    settings = dict(settings or {})
    settings.setdefault("model", DEFAULTS["model"])
    source = _as_source(volume)
    if source.ndim not in (2, 3) or (isinstance(source, zarr_io.LazySource) and set(source.axes) - set("ZYX")):
        axes = getattr(source, "axes", "")
        raise InputError(f"blockwise segmentation takes one-channel (Z, Y, X) or (Y, X) volumes; got shape "
                         f"{tuple(source.shape)} {axes}. Select the channel or time point first.")
    if source.ndim == 3 and not settings.get("do_3d") and not settings.get("stitch_threshold"):
        raise InputError("a blockwise volume needs 3D mode (do_3d / --do-3d) or 2D + Z stitching "
                         "(stitch_threshold / --stitch-threshold)")
    out = Path(out)
    scratch = Path(f"{out}.trackpose-blocks")
    meta = getattr(source, "meta", None)
    if settings.get("anisotropy") == "auto":  # each block would tell a Z step of its own
        raise InputError("anisotropy \"auto\" is not available blockwise: the blocks would each run at a Z step of "
                         "their own. Tell it once on a crop (trackpose.segment(crop, do_3d=True, anisotropy=\"auto\")"
                         ".anisotropy) and give that value")
    if source.ndim == 3 and settings.get("anisotropy") is None:
        calibrated = meta is not None and bool(meta.anisotropy)
        settings["anisotropy"] = float(meta.anisotropy) if calibrated else 1.0
        if settings.get("do_3d") and not calibrated:
            log.warning("blockwise 3D mode without an anisotropy and no Z spacing in the source: running at 1. If "
                        "the planes are further apart than the pixels, tell the Z step once on a crop "
                        "(trackpose.segment(crop, do_3d=True).anisotropy) and give that value")
    settings["lowhigh"] = _intensity_range(source, settings)
    model = settings.pop("model")

    if not settings.get("diameter"):
        settings["diameter"] = _estimate_diameter(source, block_size, settings, model, client)
    anisotropy = settings.get("anisotropy") or 1.0
    overlap = overlap if overlap is not None else default_overlap(settings["diameter"], source.ndim, anisotropy)
    min_box = network_box(source.ndim, settings, _model_diam_mean(model, settings, client))
    blocks = block_grid(source.shape, block_size, overlap, min_box)
    _check_overlap(blocks, overlap, settings["diameter"], anisotropy)

    _claim_scratch(scratch, dict(settings, model=model, shape=tuple(source.shape), block_size=block_size,
                                 overlap=overlap, merge_fraction=merge_fraction,
                                 boxes=[b.padded for b in blocks]))
    todo = [k for k, b in enumerate(blocks) if not (scratch / f"{b.name}.npz").exists()]
    log.info("%d blocks (%d already done), overlap %s, diameter %.1f", len(blocks), len(blocks) - len(todo),
             tuple(overlap), settings["diameter"])
    calls = [(blocks[k], source if isinstance(source, zarr_io.LazySource) else source[blocks[k].padded_slices],
              settings, model, str(scratch)) for k in todo]
    fresh = dict(zip(todo, run_tasks(client, progress, "blocks", segment_block, calls)))

    n_labels, cores = [], []
    for k, block in enumerate(blocks):
        if k in fresh:
            n, core = fresh[k][:2]
        else:
            with np.load(scratch / f"{block.name}.npz") as saved:
                n, core = int(saved["labels"].max(initial=0)), saved["core"]
        n_labels.append(n)
        cores.append(core)

    by_block: dict = {}
    for i, j, box in neighbour_pairs(blocks):
        by_block.setdefault(i, []).append((j, blocks[j], box))
    pair_lists = run_tasks(client, progress, "seams", block_pairs, [(i, blocks[i], nb, str(scratch)) for i, nb in by_block.items()])
    ids = global_ids(n_labels, cores, [p for pairs in pair_lists for p in pairs], merge_fraction)

    axes = "ZYX" if source.ndim == 3 else "YX"
    chunks = tuple(b1 - b0 for b0, b1 in blocks[0].core)
    zarr_io.create_labels(out, source.shape, chunks, axes, meta=meta, name=label_name)
    run_tasks(client, progress, "write", write_core, [(b, ids.luts[k], str(scratch), str(out)) for k, b in enumerate(blocks)])
    zarr_io.write_pyramid(out, image=image_path)
    zarr_io.mark_complete(out, objects=ids.n_objects, blocks=len(blocks))
    if not keep_blocks:
        shutil.rmtree(scratch, ignore_errors=True)
    return VolumeResult(path=out, n_objects=ids.n_objects, n_blocks=len(blocks), skipped_blocks=len(blocks) - len(todo),
                        diameter=float(settings["diameter"]), overlap=tuple(int(v) for v in np.broadcast_to(overlap, source.ndim)),
                        block_seconds=[fresh[k][2] for k in todo], uniform_blocks=sum(fresh[k][3] for k in todo),
                        seconds=time.perf_counter() - t0)


def network_box(ndim: int, settings: dict, diam_mean: float) -> tuple:
    """The smallest padded box per axis: one network tile (``bsize`` pixels at the network's scale, i.e.
    ``bsize * diameter / diam_mean`` voxels of the volume) in Y and X, and in Z for 3D mode (whose ZY and ZX slices
    are tiled too; Z is scaled by the anisotropy as well). The network's output at a pixel depends on its whole tile
    (the style vector is an average over the tile), so a block smaller than a tile, run on its own, sees another
    input than the whole volume gives the same pixels; with at least a tile of image around each core, blocks
    agree with the whole volume. 2D + Z stitching needs no Z context (planes are segmented one by one)."""
    bsize = int(settings.get("bsize") or DEFAULTS["bsize"])
    tile = int(math.ceil(bsize * float(settings["diameter"]) / float(diam_mean)))
    if ndim == 2:
        return tile, tile
    z = int(math.ceil(tile / max(float(settings.get("anisotropy") or 1.0), 1e-6))) if settings.get("do_3d") else 0
    return z, tile, tile


def model_diam_mean(model, device=None, gpu: bool = False) -> float:
    """The diameter the model works at (loads it once on this worker, as its blocks will)."""
    loaded = worker_model(model, device, gpu)
    return float((loaded[0] if isinstance(loaded, list) else loaded).diam_mean)


def _model_diam_mean(model, settings: dict, client) -> float:
    (diam_mean,) = run_tasks(client, None, "model", model_diam_mean,
                             [(model, settings.get("device"), settings.get("gpu", False))])
    return diam_mean


def _claim_scratch(scratch: Path, run: dict) -> None:
    """Create the block folder; one left by a run with other settings or another volume is emptied first."""
    from .frames import settings_fingerprint
    stamp = scratch / "run.json"
    fingerprint = settings_fingerprint(run)
    if scratch.exists() and (not stamp.exists() or json.loads(stamp.read_text()).get("fingerprint") != fingerprint):
        log.info("%s was left by a run with other settings: starting afresh", scratch)
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"fingerprint": fingerprint}) + "\n")


def _check_overlap(blocks: Sequence[Block], overlap, diameter: float, anisotropy: float) -> None:
    ndim = len(blocks[0].core)
    need = default_overlap(diameter, ndim, anisotropy)
    given = tuple(int(v) for v in np.broadcast_to(overlap, ndim))
    if any(o < 1 for o in given):
        raise InputError(f"block overlap {given}: at least 1 voxel per axis is needed to join objects across seams")
    if any(o < n for o, n in zip(given, need)):
        log.warning("block overlap %s is less than one object diameter %s: objects cut by a seam may be split",
                    given, need)


def estimate_block_diameter(data, settings: dict, model) -> float:
    """The diameter ``trackpose.segment`` estimates on one block (its size model)."""
    from ..segmentation import segment
    kwargs = _block_kwargs(settings, np.ndim(data))
    kwargs["diameter"] = 0
    return float(segment(np.asarray(data), model=worker_model(model, settings.get("device")), **kwargs).diameter)


def _estimate_diameter(source, block_size, settings: dict, model, client) -> float:
    size = tuple(np.broadcast_to(block_size, source.ndim))
    centre = tuple(slice(max(0, s // 2 - b // 2), min(s, s // 2 - b // 2 + b)) for s, b in zip(source.shape, size))
    (diameter,) = run_tasks(client, None, "diameter", estimate_block_diameter, [(source[centre], settings, model)])
    log.info("diameter %.1f px estimated on the central block, used for every block", diameter)
    return diameter
