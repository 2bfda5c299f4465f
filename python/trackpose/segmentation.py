"""``segment``: image in, labelled masks out. The data flow of the whole engine in one function:

read axes/channels -> normalise -> adjust -> (resize, tile) network -> flows -> dynamics -> masks.

The keyword defaults of :func:`segment` are the single place where cellpose-3.1-compatible defaults live; the
command line reads them from its signature.
"""
from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, Union

import numpy as np

from . import dynamics, settings, transforms
from .errors import InputError
from .memory import check_memory
from .inference import run_network
from .masks import fill_holes_and_remove_small_masks, remove_edge_masks, remove_faint_masks
from .models import Model, load_model
from .settings import DEFAULTS as D

log = logging.getLogger("trackpose")


@dataclass
class Result:
    """Output of :func:`segment`.

    Attributes
    ----------
    masks : (Y, X) or (Z, Y, X) int32
        Labels, 0 = background, 1..n objects (consecutive).
    flows : (2, [Z,] Y, X) float32
        Network flows dY, dX in network scale (5 x unit vectors), at image size when ``resample`` is on,
        else at the network's (resized) size.
    cellprob : ([Z,] Y, X) float32
        Cell-probability logit, same grid as ``flows``.
    styles : (256,) or (Z, 256) float32
        Style vector(s).
    diameter : float
        Diameter in pixels the image was segmented at (the estimate when it was estimated).
    timings : dict
        Seconds spent in each step.
    diameter_style : float or None
        When the diameter was estimated: the size model's guess from the style vector, before refinement.
    anisotropy : float or None
        3D mode: the Z step / XY pixel size it ran with (the estimate with ``anisotropy="auto"``); else None.
    """

    masks: np.ndarray
    flows: np.ndarray
    cellprob: np.ndarray
    styles: np.ndarray
    diameter: float
    rescale: float
    niter: int
    timings: dict = field(default_factory=dict)
    diameter_style: Optional[float] = None
    anisotropy: Optional[float] = None

    @property
    def n_objects(self) -> int:
        return int(self.masks.max()) if self.masks.size else 0


def _as_models(model, device, gpu) -> list[Model]:
    items = model if isinstance(model, (list, tuple)) else [model]
    if not items:
        raise InputError("model: give at least one model name or file")
    models = [load_model(m, device=device, gpu=gpu) for m in items]
    first = models[0]
    for m in models[1:]:
        if m.diam_mean != first.diam_mean or m.net.nbase != first.net.nbase:
            raise InputError(f"ensembled models must share architecture and diam_mean: {first.name} has "
                             f"{first.diam_mean}, {m.name} has {m.diam_mean}")
    return models


def segment(image: np.ndarray,
            model: Union[str, Model, Sequence[Union[str, Model]]] = D["model"],
            diameter: Optional[float] = D["diameter"],
            channels: Optional[Sequence[int]] = (D["chan"], D["chan2"]),
            channel_axis: Optional[int] = None,
            z_axis: Optional[int] = None,
            flow_threshold: float = D["flow_threshold"],
            cellprob_threshold: float = D["cellprob_threshold"],
            resample: bool = D["resample"],
            niter: Optional[int] = D["niter"],
            min_size: int = D["min_size"],
            max_size: Optional[int] = D["max_size"],
            max_size_fraction: float = D["max_size_fraction"],
            do_3d: bool = D["do_3d"],
            stitch_threshold: float = D["stitch_threshold"],
            stitch_split: float = D["stitch_split"],
            stitch_trim: float = D["stitch_trim"],
            min_mean_cellprob: float = D["min_mean_cellprob"],
            stitch_min_mean_cellprob: float = D["stitch_min_mean_cellprob"],
            anisotropy: Optional[float] = D["anisotropy"],
            flow3d_smooth: float = D["flow3d_smooth"],
            batch_size: int = D["batch_size"],
            bsize: int = D["bsize"],
            tile_overlap: float = D["tile_overlap"],
            augment: bool = D["augment"],
            tiling: str = D["tiling"],
            bfloat16: bool = D["bfloat16"],
            normalize: bool = D["normalize"],
            percentiles: Sequence[float] = D["percentiles"],
            lowhigh: Optional[Sequence[float]] = D["lowhigh"],
            invert: bool = D["invert"],
            gamma: float = D["gamma"],
            wiener_noise: float = D["wiener_noise"],
            exclude_on_edges: bool = D["exclude_on_edges"],
            device=None,
            gpu: bool = D["gpu"],
            progress: Optional[Callable[[int, int], None]] = None,
            network_cache: Optional[dict] = None) -> Result:
    """Segment cells or nuclei in a 2D image (or each plane of a Z stack) with a cellpose-style model.

    Parameters
    ----------
    image : array
        (Y, X), (Y, X, C), (C, Y, X), or a Z stack of those; any real dtype. Never modified.
    model : str, path, Model, or a list of them
        Model name (``"trackpose_default"``, ``"cyto3"``, ``"nuclei"``...), weight file, or loaded Model. Several
        models are ensembled (their flows averaged).
    diameter : float, optional
        Typical object diameter in pixels; the image is resized by ``diam_mean / diameter`` before the network.
        ``0`` or ``None``: estimated by the model's size model when it has one (cellpose's ``Cellpose.eval``:
        diameter from the style vector, then refined by segmenting once at that scale and measuring the masks;
        a Z stack or volume gets one estimate, from its middle plane). Without a size model, ``None`` is the
        model's training diameter (``diam_labels``, as cellpose's ``CellposeModel``) and ``0`` is an error.
    channels : (chan, chan2)
        1-based channel to segment and optional nuclear channel; 0 = grayscale / none.
    channel_axis, z_axis : int, optional
        Axis positions; guessed (and logged) when absent.
    flow_threshold : float
        Maximum flow error of a mask (2D); 0 keeps every mask (and skips the check).
    cellprob_threshold : float
        Cell-probability logit above which a pixel can belong to a cell (-6..6; lower -> more and larger masks).
    resample : bool
        Run the dynamics at the image's own size (smoother boundaries) instead of the network's scale.
    niter : int, optional
        Flow-following steps; default 200, scaled by 1/rescale when resampling (as cellpose). Raise it (e.g. 2000)
        for long thin protrusions.
    min_size, max_size : int
        Remove masks with fewer / more pixels (voxels) than these; ``max_size`` None or 0 = no upper limit.
    max_size_fraction : float
        Remove masks larger than this fraction of the image.
    do_3d, stitch_threshold, anisotropy, flow3d_smooth :
        3D options (see the 3D documentation). ``stitch_threshold`` > 0 links per-plane masks across Z by IoU.
        ``anisotropy`` is the Z step / XY pixel size. ``"auto"``, and None in 3D mode (with a warning), estimate
        it from the stack: a 2D + Z stitching pass first, then the median over its objects of XY diameter / planes
        spanned (``trackpose.diameter.anisotropy_from_masks``; for round objects such as nuclei; estimates from
        0.77 to 1.3 are taken as 1, and 1 with a warning when fewer than 5 objects span two planes). Give the Z
        step when it is known (1 for a stack sampled as finely in Z as in XY): cellpose takes a missing one as 1.
    stitch_split : float
        With stitching: cut a stitched object where its mean intensity along Z falls this fraction below the
        brightest planes on both sides (``trackpose.stitch.split_at_z_valleys``): a nucleus linked to the one above
        it through the light between them. 0 = cellpose's stitching (docs/engine.md, "2D + Z stitching").
    stitch_trim : float
        With stitching: drop the planes at the top and bottom of each (cut) object whose mean intensity is below
        this fraction of its brightest plane's (``trackpose.stitch.trim_dim_ends``): out-of-focus light segmented
        as part of the nucleus. 0 = off; ``stitch_split=0, stitch_trim=0`` is cellpose's stitching.
    min_mean_cellprob : float
        3D mode: remove objects whose mean cell-probability logit (the sum of the three views', the scale of
        ``cellprob_threshold`` in 3D) is below this (``trackpose.masks.remove_faint_masks``): faint blobs that haze
        and out-of-focus light leave. 0 = off, cellpose's 3D mode (docs/engine.md, "Dynamics").
    stitch_min_mean_cellprob : float
        With stitching: remove stitched objects whose mean cell-probability logit (one view's, the scale of
        ``cellprob_threshold`` in 2D) is below this, the same check as ``min_mean_cellprob`` on the objects
        stitching leaves. 0 = off; with ``stitch_split=0, stitch_trim=0`` it gives cellpose's stitching.
    batch_size, bsize, tile_overlap, augment :
        Tiles per forward pass (counted in ``bsize`` x ``bsize`` tiles: a pass holds about ``batch_size * bsize**2``
        pixels), tile size, fractional tile overlap, test-time flip augmentation.
    tiling : {"compact", "cellpose"}
        How tiles cover the (resized) image. ``"compact"`` (default): tiles of ``bsize`` to ``2 * bsize`` pixels
        with at least ``2 * tile_overlap * bsize`` pixels of overlap, chosen for the fewest pixels in total (an
        image up to 448 pixels is one tile); 1.3-2x fewer pixels through the network than cellpose's layout, with
        the same detection accuracy (docs/engine.md, "Network and tiles"). ``"cellpose"``: cellpose's tiles of
        ``bsize``, for outputs that match cellpose's tile for tile.
    bfloat16 : bool
        Run the network in bfloat16: about 1.7x faster where the CPU has AVX512-BF16 or AMX instructions (or on a
        GPU with bfloat16), with flows and probabilities within about 1% of float32 and nearly the same masks
        (docs/engine.md, "bfloat16"). Off by default: float32 gives cellpose's outputs on the same weights.
    normalize, percentiles, lowhigh, invert :
        Percentile normalisation (low, high percentiles, default 1 and 99), or fixed low/high intensities;
        invert for dark cells.
    gamma, wiener_noise :
        Gamma on the normalised intensity; adaptive Wiener smoothing with noise level in 0..1 (0 = off).
    exclude_on_edges : bool
        Drop masks touching the image border.
    device, gpu :
        Torch device (``"cpu"``, ``"cuda"``, ``"mps"``) or ``gpu=True`` to use one when available.
    progress : callable(done, total), optional
        Called as network tiles are processed.
    network_cache : dict, optional
        A dict (empty at first) kept by the caller between calls: it holds the last network output. A later call on
        the same pixels with the same model(s), diameter and network settings (bsize, tile_overlap, tiling, augment,
        resample, do_3d, anisotropy, normalisation) reuses it and only redoes what comes after the network, which is
        what changes when a user tunes ``cellprob_threshold``, ``flow_threshold``, ``min_size``, ``niter``,
        ``stitch_threshold``, ``stitch_split``, ``stitch_trim``, ``min_mean_cellprob``, ``stitch_min_mean_cellprob``,
        ``flow3d_smooth`` or ``exclude_on_edges`` (the TrackMate preview loop). The masks are the same as without the
        cache. One entry; it costs a copy of the network output (4 floats per pixel).

    Returns
    -------
    Result
    """
    timings = {}
    t0 = time.perf_counter()
    if np.asarray(image).size == 0:
        raise InputError(f"the image is empty (shape {np.shape(image)}): there is nothing to segment")
    options = dict(diameter=diameter, flow_threshold=flow_threshold, cellprob_threshold=cellprob_threshold,
                   resample=resample, niter=niter, min_size=min_size, max_size=max_size,
                   max_size_fraction=max_size_fraction, do_3d=do_3d, stitch_threshold=stitch_threshold,
                   stitch_split=stitch_split, stitch_trim=stitch_trim, min_mean_cellprob=min_mean_cellprob,
                   stitch_min_mean_cellprob=stitch_min_mean_cellprob, anisotropy=anisotropy,
                   flow3d_smooth=flow3d_smooth, batch_size=batch_size, bsize=bsize,
                   tile_overlap=tile_overlap, augment=augment, tiling=tiling, bfloat16=bfloat16, normalize=normalize,
                   percentiles=percentiles, lowhigh=lowhigh, invert=invert, gamma=gamma, wiener_noise=wiener_noise,
                   exclude_on_edges=exclude_on_edges, gpu=gpu)
    if flow_threshold is None:  # None skips the flow check, as 0 does
        options.pop("flow_threshold")
    if min_size is None:
        options.pop("min_size")
    for name, value in options.items():
        settings.check(name, value)
    # the declaration's one keyword, and what 3D mode does when the Z step is not given: estimated once the
    # diameter is known
    left_out = do_3d and anisotropy is None
    auto_anisotropy = anisotropy == "auto" or left_out
    if auto_anisotropy:
        anisotropy = None
    elif anisotropy is not None and anisotropy <= 0:
        raise InputError(f"anisotropy must be a Z-spacing / XY-pixel-size ratio in (0, 100], got {anisotropy}")
    if channels is not None:
        settings.check("chan", channels[0])
        settings.check("chan2", channels[1] if len(channels) > 1 else 0)
    transforms.check_tiling(tiling)
    if min_size is None:
        min_size = 0

    models = _as_models(model, device, gpu)
    first = models[0]
    if bfloat16:
        from .inference import bfloat16_support
        problem = bfloat16_support(first.device)
        if problem and first.device.type not in ("cpu", "cuda"):
            raise InputError(f"bfloat16=True: {problem}; run in float32 (bfloat16=False)")
        if problem:
            log.warning("bfloat16: %s; float32 (bfloat16 off) is faster here", problem)
    size_model = first.size_model if diameter in (None, 0) else None
    if diameter == 0 and size_model is None:
        from .size_model import size_model_path
        looked = size_model_path(first.path, first.builtin) if first.path is not None else None
        raise InputError(f"diameter=0 asks for automatic estimation, which needs a size model; model {first.name} "
                         f"has none{f' (no file {looked})' if looked else ''}. Give the typical cell diameter in "
                         "pixels, or fit a size model (`trackpose train` writes <model>_size.npy)")
    timings["load"] = time.perf_counter() - t0

    volume = bool(do_3d or stitch_threshold > 0)
    if left_out:
        log.warning("3D mode without an anisotropy: telling the Z step from the stack's objects (as "
                    "anisotropy=\"auto\"; flat cells read as a larger step). Pass anisotropy=Z step / pixel size "
                    "when it is known, 1 for a stack sampled as finely in Z as in XY (docs/engine.md, \"The Z step "
                    "when the stack does not say\")")
    # before the first copy of the image: its pixels at the scale the network first sees them (the diameter's,
    # or 1 while the diameter is estimated); checked again below once the diameter is known
    check_memory(*_shape_guess(np.shape(image), channel_axis, z_axis, volume),
                 first.diam_mean / diameter if diameter else 1.0, (anisotropy or 1.0) if do_3d else None)
    t = time.perf_counter()
    planes = transforms.to_planes(image, channels, channel_axis=channel_axis, z_axis=z_axis, nchan=first.nchan,
                                  volume=volume)
    if volume and planes.shape[0] < 2:
        raise InputError(f"{'do_3d' if do_3d else 'stitch_threshold'} needs a Z stack, but the image (shape "
                         f"{np.shape(image)}) has a single plane; segment it in 2D or pass z_axis")
    transforms.check_finite(planes)
    if normalize:
        # a volume is normalised as one, so that planes keep their relative brightness (as cellpose does)
        transforms.normalize(planes, percentiles=percentiles, lowhigh=lowhigh, per_plane=not volume, invert=invert)
    elif invert:
        raise InputError("invert needs normalisation: set normalize=True")
    if gamma != 1.0 or wiener_noise:
        transforms.adjust_intensity(planes, gamma=gamma, wiener_noise=wiener_noise)
    timings["preprocess"] = time.perf_counter() - t

    estimate = None
    if size_model is not None:
        from .size_estimation import estimate_from_planes
        t = time.perf_counter()
        estimate = estimate_from_planes(
            models, size_model, planes[planes.shape[0] // 2],
            dict(bsize=bsize, tile_overlap=tile_overlap, augment=augment, batch_size=batch_size, tiling=tiling,
                 bfloat16=bool(bfloat16)),
            dict(cellprob_threshold=cellprob_threshold, flow_threshold=flow_threshold or 0.0, min_size=min_size))
        timings["diameter"] = time.perf_counter() - t
        log.info("estimated diameter %.1f px (style %.1f px, refined on %d objects%s)", estimate.refined,
                 estimate.style, estimate.n_objects, f", middle plane of {planes.shape[0]}"
                 if planes.shape[0] > 1 else "")
        diameter_used = estimate.refined
    else:
        diameter_used = float(diameter) if diameter is not None else float(first.diam_labels)
    rescale = first.diam_mean / diameter_used
    nz, ly, lx, _ = planes.shape
    if do_3d and auto_anisotropy:
        t = time.perf_counter()
        anisotropy = _estimate_anisotropy(image, models, diameter_used, dict(
            channels=channels, channel_axis=channel_axis, z_axis=z_axis, flow_threshold=flow_threshold,
            cellprob_threshold=cellprob_threshold, batch_size=batch_size, bsize=bsize, tile_overlap=tile_overlap,
            augment=augment, tiling=tiling, bfloat16=bfloat16, normalize=normalize, percentiles=percentiles,
            lowhigh=lowhigh, invert=invert, gamma=gamma, wiener_noise=wiener_noise))
        timings["anisotropy"] = time.perf_counter() - t
    if int(ly * rescale) < 1 or int(lx * rescale) < 1:
        raise InputError(f"diameter {diameter_used} px shrinks a {ly} x {lx} image to nothing; give the object "
                         "diameter in pixels")
    check_memory(nz, ly, lx, rescale, (anisotropy or 1.0) if do_3d else None)
    n_iter = int(niter) if niter else int(200 if not resample else 200 / rescale)
    net_kw = dict(bsize=bsize, tile_overlap=tile_overlap, augment=augment, batch_size=batch_size, tiling=tiling,
                  bfloat16=bool(bfloat16), progress=progress)
    t = time.perf_counter()
    key = None
    if network_cache is not None:
        key = _network_key(models, planes, rescale, do_3d, anisotropy, resample, net_kw)
    if do_3d:
        y, styles = _cached(network_cache, key, timings, lambda: _network_3d(
            models, planes, rescale, 1.0 if anisotropy is None else float(anisotropy), resample, net_kw))
        del planes
        timings["network"] = time.perf_counter() - t
        t = time.perf_counter()
        grid = _network_grid_3d((nz, ly, lx), rescale, 1.0 if anisotropy is None else float(anisotropy))
        masks = _masks_3d(y, (nz, ly, lx), niter=n_iter, cellprob_threshold=cellprob_threshold,
                          min_size=min_size, max_size=max_size, max_size_fraction=max_size_fraction,
                          flow3d_smooth=flow3d_smooth, exclude_on_edges=exclude_on_edges,
                          network_grid=grid if resample else None, min_mean_cellprob=min_mean_cellprob)
        flows, cellprob = y[:3], y[3]
    else:
        def network_2d():
            y, styles = run_network(models, planes, rescale=rescale, **net_kw)
            if resample and rescale != 1.0:
                y = np.stack([transforms.resize_planes(y[:, c], ly, lx) for c in range(y.shape[1])], axis=1)
            return y, styles

        y, styles = _cached(network_cache, key, timings, network_2d)
        after_stitching = stitch_threshold > 0 and (stitch_split > 0 or stitch_trim > 0)
        intensity = planes[..., 0].copy() if after_stitching else None  # the stain, normalised
        del planes
        timings["network"] = time.perf_counter() - t
        t = time.perf_counter()
        stitching = stitch_threshold > 0
        masks = np.zeros((nz, ly, lx), np.int32)
        for z in range(nz):
            # when stitching, size limits apply to the stitched objects, not to their slices
            plane_min, plane_max = (0, None) if stitching else (min_size, max_size)
            m = dynamics.compute_masks(y[z, :2], y[z, 2], niter=n_iter, cellprob_threshold=cellprob_threshold,
                                       flow_threshold=flow_threshold if flow_threshold else 0.0,
                                       min_size=plane_min, max_size=plane_max, max_size_fraction=max_size_fraction)
            if m.shape != (ly, lx):  # resample off: masks were found at network scale
                m = transforms.resize_planes(m[None], ly, lx, nearest=True)[0]
                m = fill_holes_and_remove_small_masks(m, min_size=plane_min, max_size=plane_max)
            if exclude_on_edges and not stitching:
                m = remove_edge_masks(m)
            masks[z] = m
        if stitching:
            masks = _stitched(masks, y[:, 2], intensity, stitch_threshold=stitch_threshold, stitch_split=stitch_split,
                              stitch_trim=stitch_trim, stitch_min_mean_cellprob=stitch_min_mean_cellprob,
                              min_size=min_size, max_size=max_size, exclude_on_edges=exclude_on_edges)
        flows, cellprob = np.moveaxis(y[:, :2], 1, 0), y[:, 2]
        if nz == 1:
            masks, flows, cellprob, styles = masks[0], flows[:, 0], cellprob[0], styles[0]
    timings["dynamics"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    masks = masks.astype(np.int32, copy=False)
    log.info("segmented %s: %d objects at diameter %.1f px (%.2f s)", "image" if nz == 1 else f"{nz} planes",
             int(masks.max()), diameter_used, timings["total"])
    return Result(masks=masks, flows=np.ascontiguousarray(flows), cellprob=np.ascontiguousarray(cellprob),
                  styles=styles, diameter=diameter_used, rescale=rescale, niter=n_iter, timings=timings,
                  diameter_style=estimate.style if estimate is not None else None,
                  anisotropy=(1.0 if anisotropy is None else float(anisotropy)) if do_3d else None)


def _estimate_anisotropy(image, models, diameter: float, kwargs: dict) -> float:
    """The stack's Z step told from its objects: 2D + Z stitching at ``diameter`` without the trim of dim ends
    (which would shorten objects along Z), then :func:`~trackpose.diameter.anisotropy_from_masks`. Estimates
    between ``1 / AUTO_ANISOTROPY_ONE`` and ``AUTO_ANISOTROPY_ONE`` are taken as 1, and 1 with a warning when too
    few objects span two planes."""
    from .diameter import MIN_OBJECTS_FOR_ANISOTROPY, anisotropy_from_masks
    stitched = segment(image, model=models, diameter=diameter, stitch_threshold=AUTO_ANISOTROPY_STITCHING,
                       stitch_trim=0.0, **kwargs)
    value, count = anisotropy_from_masks(stitched.masks)
    if not np.isfinite(value):
        log.warning("anisotropy=\"auto\": only %d objects span two planes or more (%d needed), so the Z step cannot "
                    "be told from this stack; taking anisotropy 1. Give anisotropy=Z step / pixel size", count,
                    MIN_OBJECTS_FOR_ANISOTROPY)
        return 1.0
    value = float(np.clip(value, 0.1, settings.BY_NAME["anisotropy"].maximum))
    if 1 / AUTO_ANISOTROPY_ONE < value < AUTO_ANISOTROPY_ONE:
        log.info("estimated anisotropy %.2f from %d objects of a 2D + Z pass: taken as 1", value, count)
        return 1.0
    log.info("estimated anisotropy %.2f (Z step / XY pixel size) from %d objects of a 2D + Z pass", value, count)
    return value


#: the IoU with which ``anisotropy="auto"`` stitches the stack's planes (the documented 2D + Z value)
AUTO_ANISOTROPY_STITCHING = 0.25
#: estimates between its inverse and it are taken as 1: exact labels of isotropic generated stacks read 1.01-1.27,
#: and a cell stack told 1.25 instead of 1 lost 0.15 AP@0.5 (docs/development-notes.md)
AUTO_ANISOTROPY_ONE = 1.3


def _network_key(models, planes: np.ndarray, rescale: float, do_3d: bool, anisotropy, resample: bool,
                 net_kw: dict) -> tuple:
    """What a network output depends on: the models, the preprocessed pixels and the network settings."""
    digest = hashlib.blake2b(np.ascontiguousarray(planes).view(np.uint8), digest_size=16)
    digest.update(repr(planes.shape).encode())
    settings = tuple(sorted((k, v) for k, v in net_kw.items() if k != "progress"))
    # the networks themselves, not their id(): modules compare by identity, and the cache keeps them alive
    return (tuple(m.net for m in models), digest.hexdigest(), float(rescale), bool(do_3d),
            None if anisotropy is None else float(anisotropy), bool(resample), settings)


def _cached(cache: Optional[dict], key, timings: dict, compute):
    """``compute()`` -> (y, styles), or a copy of the cached result for the same key (see ``network_cache``)."""
    if cache is not None and key is not None and cache.get("key") == key:
        y, styles = cache["value"]
        timings["network_cached"] = True
        log.info("network output reused (same image and network settings)")
        return y.copy(), styles.copy()
    y, styles = compute()
    if cache is not None:
        cache.clear()
        cache["key"], cache["value"] = key, (y.copy(), styles.copy())
    return y, styles


def _stitched(planes: np.ndarray, cellprob: np.ndarray, intensity: Optional[np.ndarray], stitch_threshold: float,
              stitch_split: float, stitch_trim: float, stitch_min_mean_cellprob: float, min_size: int,
              max_size: Optional[int], exclude_on_edges: bool) -> np.ndarray:
    """3D objects from per-plane masks (everything :func:`segment` does after the planes' dynamics in 2D + Z).

    planes : (Z, Y, X) int32 per-plane labels on the image's grid. cellprob : (Z, Y', X') the network's logits, at
    the network's scale when ``resample`` is off (resized here for the faint-object check). intensity : (Z, Y, X)
    the normalised stain, needed when ``stitch_split`` or ``stitch_trim`` > 0. Returns (Z, Y, X) int32 labels.
    """
    from .stitch import split_at_z_valleys, stitch_masks, trim_dim_ends
    masks = stitch_masks(planes, stitch_threshold=stitch_threshold)
    if intensity is not None:
        masks = trim_dim_ends(split_at_z_valleys(masks, intensity, stitch_split), intensity, stitch_trim)
    masks = fill_holes_and_remove_small_masks(masks, min_size=min_size, max_size=max_size)
    if stitch_min_mean_cellprob > 0:
        masks = remove_faint_masks(masks, transforms.resize_planes(cellprob, *masks.shape[1:]),
                                   stitch_min_mean_cellprob)
    if exclude_on_edges:
        masks = remove_edge_masks(masks)
    return masks


def _masks_3d(y: np.ndarray, shape: tuple, niter: int, cellprob_threshold: float, min_size: int,
              max_size: Optional[int], max_size_fraction: float, flow3d_smooth: float = 0.0,
              exclude_on_edges: bool = False, network_grid: Optional[tuple] = None,
              min_mean_cellprob: float = 0.0) -> np.ndarray:
    """3D masks from the network output of the 3D mode (everything :func:`segment` does after the network).

    y : (4, Z', Y', X') float32, dZ, dY, dX, cellprob (``_network_3d``'s output); the flows are smoothed in place
    when ``flow3d_smooth`` > 0. shape : (Z, Y, X) of the image; masks found at another size are resized to it.
    network_grid : (Z, Y, X) the network ran at, when ``y`` was resampled from it to another grid: the flows are
    displacements on the network's grid, so the dynamics follows them converted to ``y``'s voxels (each component
    times ``y``'s size / the network's along its axis; see the note in the function). ``min_mean_cellprob``:
    objects whose mean summed logit is below it are removed (0 = none). Returns (Z, Y, X) int32 labels.
    """
    if flow3d_smooth > 0:
        from scipy.ndimage import gaussian_filter
        for c in range(3):
            gaussian_filter(y[c], flow3d_smooth, output=y[c])
    step_scale = None
    if network_grid is not None and tuple(network_grid) != y.shape[1:]:
        # Cellpose 3.1.1.2 resamples the 3D flows to the image grid without converting their lengths. A flow
        # is a step on the network's grid, which in 3D is the image upsampled by rescale x anisotropy along Z
        # (3.75x for 16-px objects with a Z step twice the pixel size). Unconverted, a step near an object's centre
        # overshoots it: the point alternates between the planes either side of the centre, pixels end in two end
        # bins two planes apart, only one of them seeds a mask and the object comes out as half a ball (issue 17;
        # tests/test_3d.py, test_3d_balls_come_out_whole_*).
        step_scale = tuple(s / g for s, g in zip(y.shape[1:], network_grid))
    masks = dynamics.compute_masks(y[:3], y[3], niter=niter, cellprob_threshold=cellprob_threshold,
                                   flow_threshold=0.0, min_size=min_size, max_size=max_size,
                                   max_size_fraction=max_size_fraction, step_scale=step_scale)
    # on the grid the masks were found on, before any resize: y[3] is the summed logit there
    masks = remove_faint_masks(masks, y[3], min_mean_cellprob)
    if masks.shape != tuple(shape):
        masks = _resize_labels_3d(masks, tuple(shape))
        masks = fill_holes_and_remove_small_masks(masks, min_size=min_size, max_size=max_size)
    if exclude_on_edges:
        masks = remove_edge_masks(masks)
    return masks


def _shape_guess(shape: tuple, channel_axis: Optional[int], z_axis: Optional[int], volume: bool) -> tuple:
    """(planes, rows, columns) of an image before its axes are sorted out, for the memory check made before the
    first copy: the channel axis dropped (given, or a last/first axis of at most 4), the Z axis (given, else the
    first) counted as planes."""
    dims = list(shape)
    if channel_axis is not None:
        dims.pop(channel_axis % len(dims))
        if z_axis is not None and z_axis % len(shape) > channel_axis % len(shape):
            z_axis = z_axis % len(shape) - 1
    elif len(dims) == 3 + volume and min(dims[-1], dims[0]) <= 4:
        dims.pop(-1 if dims[-1] <= 4 else 0)
    if len(dims) < 2:
        return 1, 1, int(np.prod(dims)) if dims else 1
    if z_axis is not None and len(dims) >= 3:
        nz = dims.pop(z_axis % len(dims))
        return int(nz * np.prod(dims[:-2])), int(dims[-2]), int(dims[-1])
    return int(np.prod(dims[:-2])) if len(dims) > 2 else 1, int(dims[-2]), int(dims[-1])


#: Orientations of the 3D mode: (name, axes of the (Z, Y, X) volume that index planes / rows / columns,
#: which 3D flow component (0 = Z, 1 = Y, 2 = X) each of the network's two flow outputs adds to).
_ORIENTATIONS = (("YX", (0, 1, 2), (1, 2)), ("ZX", (1, 0, 2), (0, 2)), ("ZY", (2, 0, 1), (0, 1)))


def _resize_volume(vol: np.ndarray, shape: tuple, nearest: bool = False) -> np.ndarray:
    """Resize (Z, Y, X[, C]) to shape (Z', Y', X'): Y/X per plane, then Z per (Z, X) slice, as cellpose does."""
    nz, ly, lx = shape
    if vol.shape[1:3] != (ly, lx):
        vol = transforms.resize_planes(vol, ly, lx, nearest=nearest)
    if vol.shape[0] != nz:
        swapped = np.ascontiguousarray(np.swapaxes(vol, 0, 1))  # (Y, Z, X[, C])
        vol = np.ascontiguousarray(np.swapaxes(transforms.resize_planes(swapped, nz, lx, nearest=nearest), 0, 1))
    return vol


def _resize_labels_3d(masks: np.ndarray, shape: tuple) -> np.ndarray:
    return _resize_volume(masks, shape, nearest=True)


def _network_grid_3d(shape: tuple, rescale: float, anisotropy: float) -> tuple:
    """(Z, Y, X) the 3D mode runs the network at: the image resized by rescale, and Z also by anisotropy."""
    nz, ly, lx = shape
    return int(nz * anisotropy * rescale), int(ly * rescale), int(lx * rescale)


def _network_3d(models, planes: np.ndarray, rescale: float, anisotropy: float, resample: bool, net_kw: dict):
    """Run the 2D network on YX, ZX and ZY slices and sum the flows (cellpose's 3D mode).

    Returns y (4, Z, Y, X): dZ, dY, dX (each the sum of two 2D estimates) and the summed cell-probability logit,
    at image size when ``resample`` is on, else at the rescaled size; and the style of the YX pass.
    """
    nz, ly, lx, _ = planes.shape
    target = _network_grid_3d((nz, ly, lx), rescale, anisotropy)
    if min(target) < 1:
        raise InputError(f"with anisotropy {anisotropy} and diameter rescale {rescale:.2f} the {nz}-plane volume "
                         f"becomes {target}: check anisotropy (Z spacing / pixel size) and diameter")
    if target[0] < 8:
        log.warning("3D mode on only %d planes (after scaling Z by anisotropy x rescale): the network's ZX/ZY "
                    "views will be poor; consider stitch_threshold instead", target[0])
    if target != (nz, ly, lx):
        log.info("resizing the volume from %s to %s (rescale %.3f, anisotropy %.3f)", (nz, ly, lx), target,
                 rescale, anisotropy)
        planes = _resize_volume(planes, target)
    y = np.zeros((4,) + target, np.float32)
    styles = None
    progress = net_kw.get("progress")
    # The compact tiling drops cellpose's 8 pixels of zeros around the ZX and ZY slices: a thin stack's would
    # otherwise be mostly padding (14 rows padded to 32). The YX planes keep them: without them crowded stacks lost
    # accuracy (development notes, "Small and thin volumes"), for little speed.
    compact = net_kw.get("tiling", "compact") == "compact" and not net_kw.get("augment")
    for k, (name, perm, components) in enumerate(_ORIENTATIONS):
        sliced = np.ascontiguousarray(planes.transpose(perm + (3,)))
        log.info("3D pass %d of %d: %s slices (%d of %d x %d)", k + 1, len(_ORIENTATIONS), name, sliced.shape[0],
                 sliced.shape[1], sliced.shape[2])
        if progress is not None:  # one bar over the three passes: percent of the whole 3D network stage
            def one_pass(done, total, k=k):
                progress(int(100 * k + 100 * done / max(total, 1)), 100 * len(_ORIENTATIONS))
            net_kw = {**net_kw, "progress": one_pass}
        margin = 0 if compact and name != "YX" else transforms.CELLPOSE_MARGIN
        out, st = run_network(models, sliced, rescale=1.0, pad_margin=margin, **net_kw)  # (n, 3, a, b), permuted
        inverse = np.argsort(perm)
        y[3] += out[:, 2].transpose(inverse)
        for k, comp in enumerate(components):
            y[comp] += out[:, k].transpose(inverse)
        if styles is None:
            styles = st
        del out, sliced
    if resample and target != (nz, ly, lx):
        y = np.moveaxis(_resize_volume(np.moveaxis(y, 0, -1), (nz, ly, lx)), -1, 0)
    return np.ascontiguousarray(y), styles
