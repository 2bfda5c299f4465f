"""Diameter estimation and size-model fitting with the network: both run the model on images.

- :func:`estimate_from_planes` estimates the object diameter of one image: the style vector through the size
  model, then a refinement that segments once at the guessed scale and measures the masks (cellpose's
  ``SizeModel.eval`` semantics, ``reference/cellpose-facts.md`` section 6);
- :func:`size_samples` / :func:`fit_size_model` collect (style, log diameter) samples from images with masks and
  fit a :class:`trackpose.size_model.SizeModel` (cellpose's ``train_size`` recipe).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from . import transforms
from .diameter import estimate_diameter
from .dynamics import compute_masks
from .errors import InputError
from .inference import run_network
from .labels import as_label_image
from .models import load_model
from .size_model import SizeModel, fit_from_samples

__all__ = ["DiameterEstimate", "estimate_from_planes", "size_samples", "fit_size_model"]

log = logging.getLogger("trackpose")


@dataclass
class DiameterEstimate:
    """An automatic diameter estimate (pixels): from the style alone, and after the refinement step."""

    style: float
    refined: float
    n_objects: int


def estimate_from_planes(models, size_model: SizeModel, plane: np.ndarray, net_kw: dict,
                         mask_kw: dict) -> DiameterEstimate:
    """Estimate the object diameter of one normalised plane (cellpose's ``SizeModel.eval``).

    1. style of the plane at its own scale -> ``size_model.predict`` (the guess ``d0``);
    2. segment the plane at rescale ``diam_mean / d0`` without resampling and take :func:`estimate_diameter` of
       the masks (returned at image size). When that finds no object, the style guess stands (cellpose falls
       back to ``diam_mean``, which ignores the guess).

    Parameters
    ----------
    models : list of Model
        As given to ``segment`` (the style comes from the first).
    plane : (Y, X, C) float32
        Normalised plane.
    net_kw : dict
        ``run_network`` keywords (bsize, tile_overlap, augment, batch_size, tiling).
    mask_kw : dict
        ``dynamics.compute_masks`` keywords (cellprob_threshold, flow_threshold, min_size).
    """
    net_kw = {k: v for k, v in net_kw.items() if k != "progress"}
    # the style with the tile layout the size model was fitted with (fit_size_model: cellpose's); the refinement
    # below segments with the caller's layout
    _, styles = run_network(models[:1], plane[None], rescale=1.0, **{**net_kw, "tiling": "cellpose"})
    guess = size_model.predict(styles[0])
    rescale = models[0].diam_mean / guess
    ly, lx = plane.shape[:2]
    if int(ly * rescale) < 16 or int(lx * rescale) < 16:
        log.info("diameter from style %.1f px; the image is too small to refine it", guess)
        return DiameterEstimate(guess, guess, 0)
    y, _ = run_network(models, plane[None], rescale=rescale, **net_kw)
    masks = compute_masks(y[0, :2], y[0, 2], niter=200, **mask_kw)
    if masks.shape != (ly, lx):
        masks = transforms.resize_planes(masks[None], ly, lx, nearest=True)[0]
    refined = estimate_diameter(masks)
    n_objects = int(masks.max()) if masks.size else 0  # compute_masks numbers its masks 1..N
    if not np.isfinite(refined) or refined <= 0:
        log.warning("diameter refinement found no object at the style estimate %.1f px; using that estimate",
                    guess)
        refined = guess
    return DiameterEstimate(float(guess), float(refined), n_objects)



def size_samples(model, images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                 channels: Optional[Sequence[int]] = None, channel_axis: Optional[int] = None,
                 normalize: bool = True, n_epochs: int = 4, scale_range: float = 1.0, min_crop: float = 0.7,
                 seed: int = 0, bsize: int = 224,
                 progress: Optional[Callable[[int, int], None]] = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training samples of a size model: styles (N, 256) float64, targets (N,) = log(d k) - log(diam_mean), and
    groups (N,) int64, the index in ``images`` of each sample's image (for :func:`choose_l2`).

    See :func:`fit_size_model` for the parameters and the recipe.
    """
    model = load_model(model)
    if n_epochs < 1:
        raise InputError(f"n_epochs must be at least 1, got {n_epochs}")
    images, masks = list(images), list(masks)
    if len(images) != len(masks) or not images:
        raise InputError(f"give one label image per image (got {len(images)} images and {len(masks)} masks)")
    pairs = []
    for index, (image, labels) in enumerate(zip(images, masks)):
        labels = as_label_image(labels, f"masks {index}", ndims=(2,))
        planes = transforms.to_planes(np.asarray(image), channels, channel_axis=channel_axis, nchan=model.nchan)
        if planes.shape[0] != 1 or planes.shape[1:3] != labels.shape:
            raise InputError(f"image {index} (shape {np.shape(image)}) is not one 2D image of its masks' shape "
                             f"{labels.shape}")
        transforms.check_finite(planes)
        if normalize:
            transforms.normalize(planes, per_plane=True)
        diameter = estimate_diameter(labels)
        if not np.isfinite(diameter):
            log.warning("size-model training: skipping image %d: its masks contain no objects", index)
            continue
        pairs.append((planes[0], diameter, index))
    if not pairs:
        raise InputError("no image with objects to fit a size model on")
    rng = np.random.default_rng(seed)
    styles, targets, groups = [], [], []
    total = n_epochs * len(pairs)
    for epoch in range(n_epochs):
        for i in rng.permutation(len(pairs)):
            plane, diameter, index = pairs[i]
            ly, lx = plane.shape[:2]
            scale = (1 - scale_range / 2) + scale_range * rng.random()
            # crop sides: a random fraction (min_crop..1) of what fits in one network tile after resizing
            h = max(16, int(min(ly, bsize / scale) * rng.uniform(min_crop, 1.0)))
            w = max(16, int(min(lx, bsize / scale) * rng.uniform(min_crop, 1.0)))
            y0, x0 = rng.integers(0, max(1, ly - h + 1)), rng.integers(0, max(1, lx - w + 1))
            plane = plane[y0:y0 + h, x0:x0 + w]
            plane = np.rot90(plane, rng.integers(4))
            if rng.random() < 0.5:
                plane = plane[:, ::-1]
            _, style = run_network([model], np.ascontiguousarray(plane)[None], rescale=scale, bsize=bsize,
                                   tiling="cellpose")
            styles.append(style[0])
            targets.append(math.log(diameter * scale) - math.log(model.diam_mean))
            groups.append(index)
            if progress is not None:
                progress(len(styles), total)
    return np.asarray(styles, np.float64), np.asarray(targets, np.float64), np.asarray(groups, np.int64)


def fit_size_model(model, images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                   channels: Optional[Sequence[int]] = None, channel_axis: Optional[int] = None,
                   normalize: bool = True, n_epochs: int = 4, scale_range: float = 1.0, min_crop: float = 0.7,
                   l2: Optional[float] = None, seed: int = 0, bsize: int = 224,
                   progress: Optional[Callable[[int, int], None]] = None) -> SizeModel:
    """Fit a size model for ``model`` on images with label masks (cellpose's ``train_size`` recipe).

    Each epoch visits every image once: a random resize by ``k = (1 - s/2) + s U`` (``s = scale_range``) of a
    random crop (each side ``min_crop``..1 of what fits in one ``bsize`` tile after the resize), flipped and
    turned by a random quarter turn; the style vector is computed as at inference (``run_network``: tiles,
    styles summed and normalised; here one tile, to keep the CPU cost low), and the target is
    ``log(d k) - log(diam_mean)`` with ``d`` the image's mask diameter (:func:`estimate_diameter`). A ridge
    regression of the targets on the centred styles gives ``A``. Its penalty ``l2`` is chosen by 5-fold
    cross-validation when not given: cellpose's 1 suits its tens of thousands of samples but underfits the few
    hundred a CPU run collects (the penalty competes with a sum over samples). Cellpose crops
    512-pixel squares with zero padding instead; computing the style as inference does avoids training on
    padding that inference never shows.

    Parameters
    ----------
    model : name, path or Model
    images, masks : sequences of arrays
        As for ``trackpose.train.train`` (2D images with optional channel axis, integer labels).
    channels, channel_axis, normalize :
        Channel selection and percentile normalisation, as for training.
    n_epochs : int
        Passes over the images (samples = n_epochs x images).
    seed : int
        Same inputs and seed -> the same size model.
    progress : callable(done, total), optional

    Returns
    -------
    SizeModel
    """
    model = load_model(model)
    styles_arr, targets_arr, groups = size_samples(model, images, masks, channels=channels,
                                                   channel_axis=channel_axis, normalize=normalize,
                                                   n_epochs=n_epochs, scale_range=scale_range, min_crop=min_crop,
                                                   seed=seed, bsize=bsize, progress=progress)
    return fit_from_samples(styles_arr, targets_arr, model.diam_mean, l2=l2, groups=groups)
