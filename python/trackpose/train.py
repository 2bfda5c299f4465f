"""Training a CPnet on images and label masks, as cellpose 3.1's ``train_seg`` does.

The recipe (``reference/cellpose-facts.md`` section 8):

- targets: the unit flows of each mask (``dynamics.masks_to_flows``) and the foreground (label > 0);
- augmentation per sample: random scale ``(1 - s/2 + s*U) * diam_mean / diameter`` (``s = 0.5`` with
  ``rescale``, else 1.0 and no diameter factor), rotation ``U(0, 2 pi)`` with the flow vectors rotated along,
  horizontal flip with dX negated, random crop of ``bsize`` x ``bsize``;
- loss: ``MSE(y[:, :2], 5 * flows) / 2 + BCEWithLogits(y[:, 2], foreground)``;
- AdamW (lr 0.005, weight decay 1e-5) or SGD (lr 0.2, momentum 0.9), learning rate per epoch: linear warm-up over
  10 epochs from 0, constant, then halved every 10 epochs over the last 100 (more than 300 epochs) or every 5
  over the last 50 (more than 100 epochs);
- the saved file is cellpose's (state dict with ``diam_mean`` and ``diam_labels`` = mean training diameter).

What trackpose adds: bad image/mask pairs are skipped with a warning (an error when none remain); a loss that
becomes NaN or infinite stops training with a :class:`TrainingError` and leaves the last good checkpoint in place;
a checkpoint after every epoch and ``resume=True`` to continue an interrupted run exactly (the randomness of epoch
``e`` depends only on ``(seed, e)``); validation AP (``trackpose.segment`` + ``trackpose.metrics``) per epoch with
the best model kept apart; optionally (``style_size_weight``) an auxiliary loss that makes the style vector predict
the objects' size, for a more accurate size model.
"""
from __future__ import annotations

import copy
import logging
import math
import numbers
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

from . import io, transforms
from .flows import FLOW_SCALE, masks_to_flows
from .masks import renumber
from .errors import InputError, TrackposeError
from .labels import as_label_image
from .models import Model, load_model, read_state_dict, save_model, select_device
from .net import CPnet, make_style

log = logging.getLogger("trackpose")

#: cellpose 3.1 ``train_seg`` defaults.
DEFAULT_LEARNING_RATE = 0.005
DEFAULT_SGD_LEARNING_RATE = 0.2
DEFAULT_WEIGHT_DECAY = 1e-5
DEFAULT_MOMENTUM = 0.9
DEFAULT_WARMUP_EPOCHS = 10
DEFAULT_MIN_TRAIN_MASKS = 5
#: Side of the native-scale crops of the style-size loss: one inference tile, as the size model sees images.
STYLE_CROP = 224


class TrainingError(TrackposeError):
    """Training could not go on (diverging loss, nothing to train on); the message says what was kept."""

    kind = "training"


# ------------------------------------------------------------------------------------------------ data

@dataclass
class TrainingPair:
    """One prepared training image.

    Attributes
    ----------
    image : (2, Y, X) float32
        Network input channels, normalised (1st/99th percentile -> 0/1) per channel.
    masks : (Y, X) int32
    flows : (2, Y, X) float32
        Unit flows (dY, dX) of ``masks``.
    diameter : float
        Cellpose's diameter of the masks (pixels): median of sqrt(area) / (sqrt(pi) / 2).
    name : str
    """

    image: np.ndarray
    masks: np.ndarray
    flows: np.ndarray
    diameter: float
    name: str


def mask_diameter(masks: np.ndarray) -> float:
    """Typical object diameter of a label image in pixels (:func:`trackpose.estimate_diameter`), 0 when there
    are no objects."""
    from .diameter import estimate_diameter
    d = estimate_diameter(masks)
    return d if np.isfinite(d) else 0.0


def prepare_pairs(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], channels: Optional[Sequence[int]] = None,
                  channel_axis: Optional[int] = None, normalize: bool = True,
                  min_train_masks: int = DEFAULT_MIN_TRAIN_MASKS, names: Optional[Sequence[str]] = None,
                  what: str = "training", diameters: Optional[Sequence[Optional[float]]] = None
                  ) -> list[TrainingPair]:
    """Check, normalise and compute flow targets for image/mask pairs; skip unusable pairs with a warning.

    Parameters
    ----------
    images : sequence of arrays
        2D images, optionally with a channel axis ((Y, X), (C, Y, X) or (Y, X, C) with C < 10).
    masks : sequence of (Y, X) integer arrays
        Labels, 0 = background.
    channels : (chan, chan2), optional
        Cellpose channel selection (1-based; 0 = gray / none). ``None``: the image's first two channels as they are
        (a single-channel image gets a zero second channel).
    channel_axis : int, optional
        Channel axis of every image (guessed as in :func:`trackpose.segment` when absent).
    normalize : bool
        Percentile normalisation per channel (as cellpose's training).
    min_train_masks : int
        Pairs with fewer objects are skipped (cellpose's ``min_train_masks``).
    names : sequence of str, optional
        Names used in warnings (default ``image 0``, ``image 1``...).
    what : str
        "training" or "validation", for messages.
    diameters : sequence of float or None, optional
        The objects' diameter in each image (pixels), where the masks do not tell it: e.g. a section of a stack
        that 3D mode will be given the nuclei's XY diameter for. ``None`` (or an entry that is None, 0 or NaN):
        measured from the masks (:func:`mask_diameter`).

    Returns
    -------
    list of TrainingPair (possibly empty; ``train`` turns an empty list into an error)
    """
    images, masks = list(images), list(masks)
    if len(images) != len(masks):
        raise InputError(f"{what}: got {len(images)} images but {len(masks)} masks; give one label image per image")
    diameters = [None] * len(images) if diameters is None else list(diameters)
    if len(diameters) != len(images):
        raise InputError(f"{what}: got {len(images)} images but {len(diameters)} diameters; give one per image")
    for i, d in enumerate(diameters):
        if d is not None and (isinstance(d, bool) or not isinstance(d, numbers.Real)):
            raise InputError(f"{what}: diameters[{i}] must be a number of pixels or None (measure it from the "
                             f"masks), got {d!r}")
    names = list(names) if names is not None else [f"{what} image {i}" for i in range(len(images))]
    pairs = []
    for image, mask, name, diameter in zip(images, masks, names, diameters):
        try:
            labels, reason = as_label_image(np.squeeze(np.asarray(mask)), "masks", ndims=(2,), dtype=np.int32), None
        except InputError as exc:
            labels, reason = None, str(exc)
        planes = None
        if reason is None:
            try:
                planes = transforms.to_planes(np.asarray(image), channels, channel_axis=channel_axis, nchan=2)
                transforms.check_finite(planes)
            except InputError as exc:
                reason = f"image cannot be used: {exc}"
        if reason is None and planes.shape[0] != 1:
            reason = f"image has {planes.shape[0]} planes (a Z stack or time series); training takes 2D images"
        if reason is None and planes.shape[1:3] != labels.shape:
            reason = f"image is {planes.shape[1]} x {planes.shape[2]} pixels but its masks are {labels.shape}"
        if reason is None:
            labels = renumber(labels)
            n_objects = int(labels.max())
            if n_objects == 0:
                reason = "masks contain no objects"
            elif n_objects < min_train_masks:
                reason = f"masks contain {n_objects} object(s), fewer than min_train_masks={min_train_masks}"
        if reason is not None:
            _warn(f"{what}: skipping {name}: {reason}")
            continue
        if normalize:
            transforms.normalize(planes, per_plane=True)
        image_chw = np.ascontiguousarray(np.moveaxis(planes[0], -1, 0), dtype=np.float32)
        flows = masks_to_flows(labels)
        if diameter is None or not diameter > 0:  # None, 0 or NaN: measured
            diameter = mask_diameter(labels)
        pairs.append(TrainingPair(image_chw, labels, flows, float(diameter), name))
    return pairs


def _warn(message: str) -> None:
    log.warning(message)
    warnings.warn(message, stacklevel=3)


def load_folder(folder, mask_filter: str = "_masks", image_filter: str = "",
                ) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Images and masks from a folder in cellpose's naming: ``<stem>.tif`` with ``<stem>_masks.tif``.

    Parameters
    ----------
    folder : str or Path
    mask_filter : str
        Suffix of the label files (cellpose: ``_masks``); PNG and .npy labels are read too.
    image_filter : str
        Only images whose stem ends with this (cellpose's ``--img_filter``), e.g. ``_img``; the mask of
        ``a_img.tif`` is then ``a_masks.tif``.

    Returns
    -------
    images, masks, names : lists
        Image arrays (channel axis first when present), label arrays, file names. Images without a mask file are
        skipped with a warning.

    Raises
    ------
    InputError
        The folder does not exist or holds no image with a mask file.
    """
    folder = Path(folder)
    candidates = [p for p in io.find_images(folder, skip_suffixes=io.OUTPUT_SUFFIXES + (mask_filter,))
                  if io.image_stem(p).endswith(image_filter)]
    images, masks, names = [], [], []
    for path in candidates:
        stem = io.image_stem(path)
        base = stem[:len(stem) - len(image_filter)] if image_filter else stem
        found = [folder / f"{base}{mask_filter}{ext}" for ext in (".tif", ".tiff", ".png", ".npy")]
        found = [p for p in found if p.is_file()]
        if not found:
            _warn(f"{path.name}: no mask file {base}{mask_filter}.tif next to it: skipped")
            continue
        image, meta = io.read_image(path)
        if "T" in meta.axes or "Z" in meta.axes:
            _warn(f"{path.name}: has axes {meta.axes}; training takes 2D images (with channels): skipped")
            continue
        labels, _ = io.read_image(found[0])
        images.append(image)
        masks.append(labels)
        names.append(path.name)
    if not images:
        raise InputError(f"{folder}: no image with a matching '<name>{mask_filter}.tif' label file was found "
                         f"({len(candidates)} image file(s) looked at). Cellpose naming: img.tif + "
                         f"img{mask_filter}.tif")
    return images, masks, names


# -------------------------------------------------------------------------------------------- augmentation

def augment(pairs: Sequence[TrainingPair], rng: np.random.Generator, bsize: int, diam_mean: float,
            rescale: bool = True, scale_range: Optional[float] = None,
            shape: Optional[tuple[int, int]] = None, with_labels: bool = False):
    """Random scale, rotation, flip and crop of each pair to ``bsize`` x ``bsize`` (cellpose's augmentation).

    ``shape`` (ly, lx) crops to that rectangle instead (thin strips: see ``thin_fraction`` of :func:`train`);
    ``with_labels=True`` also returns the transformed label images (B, ly, lx) int32 array as a fourth value.

    For a sample with scale ``k``, rotation ``theta`` and flip ``F`` (x -> -x, or identity), the output pixel
    ``p`` shows the input at ``c + R(theta) F (p - c_out) / k``; the flow vectors are transformed by the inverse
    direction map ``F R(theta)^T`` so that they keep pointing at the objects' centres.

    Returns
    -------
    image : (B, 2, bsize, bsize) float32 tensor
    flows : (B, 2, bsize, bsize) float32 tensor, unit flows (dY, dX) in the output frame
    foreground : (B, bsize, bsize) float32 tensor, 1 inside objects
    """
    s = scale_range if scale_range is not None else (0.5 if rescale else 1.0)
    out_img, out_flow, out_fg, out_labels = [], [], [], []
    crop_y, crop_x = shape if shape is not None else (bsize, bsize)
    grid_y, grid_x = torch.meshgrid(torch.arange(crop_y, dtype=torch.float64) - (crop_y - 1) / 2,
                                    torch.arange(crop_x, dtype=torch.float64) - (crop_x - 1) / 2, indexing="ij")
    for pair in pairs:
        _, ly, lx = pair.image.shape
        scale = (1 - s / 2) + s * rng.random()
        if rescale and pair.diameter > 0:
            scale *= diam_mean / pair.diameter
        theta = rng.uniform(0, 2 * np.pi)
        flip = rng.random() > 0.5
        # random centre: keep the crop inside the (scaled) image where it is large enough
        centre = []
        for length, out_length in ((ly, crop_y), (lx, crop_x)):
            slack = max(0.0, length * scale - out_length) / 2
            centre.append((length - 1) / 2 + rng.uniform(-slack, slack) / scale)
        cos, sin = math.cos(theta), math.sin(theta)
        fx = -1.0 if flip else 1.0
        # input coordinates of output pixels: c + R (F d) / scale, with d = (dy, dx) and R acting on (y, x)
        dx = grid_x * fx
        in_y = centre[0] + (cos * grid_y - sin * dx) / scale
        in_x = centre[1] + (sin * grid_y + cos * dx) / scale
        grid = torch.stack([2 * in_x / max(lx - 1, 1) - 1, 2 * in_y / max(ly - 1, 1) - 1], dim=-1)[None].float()
        stack = torch.from_numpy(np.concatenate([pair.image, pair.flows], axis=0))[None]
        warped = F.grid_sample(stack, grid, mode="bilinear", padding_mode="zeros", align_corners=True)[0]
        labels = torch.from_numpy(pair.masks.astype(np.float32))[None, None]
        warped_labels = F.grid_sample(labels, grid, mode="nearest", padding_mode="zeros", align_corners=True)[0, 0]
        v_y, v_x = warped[2], warped[3]
        # inverse direction map F R^T: first R^T, then negate x when flipped
        out_y = cos * v_y + sin * v_x
        out_x = fx * (-sin * v_y + cos * v_x)
        out_img.append(warped[:2])
        out_flow.append(torch.stack([out_y, out_x]))
        out_fg.append((warped_labels > 0.5).float())
        if with_labels:
            out_labels.append(warped_labels.round().int().numpy())
    if with_labels:
        return torch.stack(out_img), torch.stack(out_flow), torch.stack(out_fg), np.stack(out_labels)
    return torch.stack(out_img), torch.stack(out_flow), torch.stack(out_fg)


def thin_strips(pairs: Sequence[TrainingPair], rng: np.random.Generator, bsize: int, diam_mean: float,
                rescale: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`augment` to thin strips as 3D mode feeds the network its XZ and YZ slices through a stack of few planes.

    One height ``h`` for the batch (a multiple of 16, 32 to ``max(32, bsize / 2)``), horizontal or vertical, and
    ``bsize`` long. As the engine pads a slice (at least 8 zero rows at each end), 8 to 16 rows at each end are
    emptied, and the objects they cut are what they are at a stack's top or bottom: cut by the image border. So
    their flows are those of the truncated masks (pointing at the centre of the part that is left), computed on a
    strip twice as long that is then cropped, so that objects cut by the strip's ends keep the flows of a crop.
    """
    h = int(rng.integers(2, max(2, bsize // 32) + 1)) * 16
    margin = bsize // 2
    vertical = bool(rng.random() < 0.5)
    x, _, _, warped = augment(pairs, rng, bsize, diam_mean, rescale=rescale, shape=(h, bsize + 2 * margin),
                              with_labels=True)
    slack = min(8, (h - 16) // 4)
    out_x, out_flows, out_fg = [], [], []
    for b in range(len(pairs)):
        top, bottom = (8 + int(v) for v in rng.integers(0, slack + 1, size=2))
        keep = np.zeros((h, 1), bool)  # the rows between the padding, broadcast along the strip
        keep[top:h - bottom] = True
        cut = warped[b] * keep
        image = x[b] * torch.from_numpy(keep)
        flows = torch.from_numpy(masks_to_flows(cut))
        window = slice(margin, margin + bsize)
        image, flows, fg = image[:, :, window], flows[:, :, window], torch.from_numpy(cut[:, window] > 0).float()
        if vertical:  # a reflection about the diagonal: transpose the planes and swap the flow components
            image, flows, fg = image.transpose(-1, -2), flows.flip(0).transpose(-1, -2), fg.T
        out_x.append(image)
        out_flows.append(flows)
        out_fg.append(fg)
    return torch.stack(out_x).contiguous(), torch.stack(out_flows).contiguous(), torch.stack(out_fg).contiguous()


# ------------------------------------------------------------------------------------------- optimisation

def learning_rate_schedule(n_epochs: int, learning_rate: float,
                           warmup_epochs: int = DEFAULT_WARMUP_EPOCHS) -> np.ndarray:
    """Learning rate of each epoch, (n_epochs,) float64: cellpose 3.1's schedule.

    Linear warm-up from 0 over ``warmup_epochs`` epochs, then constant; with more than 300 epochs the last 100
    halve the rate every 10 epochs, with more than 100 epochs the last 50 halve it every 5.
    """
    warmup = np.linspace(0, learning_rate, warmup_epochs) if warmup_epochs > 0 else np.zeros(0)
    rates = np.concatenate([warmup, np.full(max(0, n_epochs - warmup_epochs), learning_rate)])[:n_epochs]
    if n_epochs > 300:
        tail, step = 100, 10
    elif n_epochs > 100:
        tail, step = 50, 5
    else:
        return rates
    level = rates[n_epochs - tail - 1]
    for i in range(tail):
        if i % step == 0:
            level = level / 2
        rates[n_epochs - tail + i] = level
    return rates


def segmentation_loss(y: torch.Tensor, flows: torch.Tensor, foreground: torch.Tensor) -> torch.Tensor:
    """Cellpose's loss: MSE(y[:, :2], 5 * flows) / 2 + BCEWithLogits(y[:, 2], foreground)."""
    flow_loss = F.mse_loss(y[:, :2], FLOW_SCALE * flows) / 2
    return flow_loss + F.binary_cross_entropy_with_logits(y[:, 2], foreground)


def style_size_loss(net: CPnet, head: torch.nn.Linear, pairs: Sequence[TrainingPair], rng: np.random.Generator,
                    diam_mean: float, device) -> torch.Tensor:
    """Auxiliary loss that teaches the style vector the objects' size (see ``style_size_weight`` of :func:`train`).

    ``pairs`` are cropped to ``STYLE_CROP`` squares at their native scale (turned and flipped, not resized), as the
    size model sees images; the encoder runs with its running batch-norm statistics, as at inference, and the
    linear ``head`` regresses ``log(diameter / diam_mean)`` on the styles. Returns the mean squared error.
    """
    x, _, _ = augment(pairs, rng, STYLE_CROP, diam_mean, rescale=False, scale_range=0.0)
    was_training = net.downsample.training
    net.downsample.eval()
    try:
        style = make_style(net.downsample(x.to(device))[-1])
    finally:
        net.downsample.train(was_training)
    target = torch.tensor([math.log(p.diameter / diam_mean) for p in pairs], dtype=style.dtype, device=device)
    return F.mse_loss(head(style)[:, 0], target)


def _state_path(save_path: Path) -> Path:
    return save_path.with_name(save_path.name + ".train_state")


def _best_path(save_path: Path) -> Path:
    return save_path.with_name(save_path.name + "_best")


@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes
    ----------
    model_path : Path
        The last checkpoint (cellpose format).
    best_path : Path or None
        The checkpoint with the best validation AP@0.5 (``<model_path>_best``), when validation data was given.
    history : list of dict
        One entry per epoch: ``epoch``, ``loss`` (mean training loss), ``learning_rate``, ``seconds`` (since the
        start), and with validation ``val_ap`` (AP at IoU 0.5, 0.75, 0.9 averaged over images).
    diam_mean, diam_labels : float
    n_train : int
        Pairs trained on (after skipping bad ones).
    size_path : Path or None
        The fitted size model (``<model_path>_size.npy``), None when skipped.
    """

    model_path: Path
    best_path: Optional[Path]
    history: list = field(default_factory=list)
    diam_mean: float = 30.0
    diam_labels: float = 30.0
    n_train: int = 0
    size_path: Optional[Path] = None


def evaluate(net: CPnet, pairs: Sequence[TrainingPair], diam_mean: float, diam_labels: float,
             device: torch.device, bsize: int = 224) -> np.ndarray:
    """Mean AP at IoU (0.5, 0.75, 0.9) of ``net`` on prepared pairs, each segmented at its true diameter."""
    from .metrics import average_precision
    from .segmentation import segment
    model = Model(net=net, diam_mean=diam_mean, diam_labels=diam_labels, name="training", path=None, device=device)
    scores = []
    for pair in pairs:
        result = segment(np.moveaxis(pair.image, 0, -1), model=model, channels=None, channel_axis=-1,
                         diameter=pair.diameter, normalize=False, bsize=bsize)
        ap = average_precision(pair.masks, result.masks, thresholds=(0.5, 0.75, 0.9))[0]
        scores.append(ap)
    return np.mean(scores, axis=0)


def train(images, masks=None, model: Union[None, str, os.PathLike, Model] = None, n_epochs: int = 100,
          learning_rate: Optional[float] = None, weight_decay: float = DEFAULT_WEIGHT_DECAY, sgd: bool = False,
          momentum: float = DEFAULT_MOMENTUM, batch_size: int = 8, bsize: int = 224, rescale: bool = True,
          diam_mean: Optional[float] = None, save_path: Union[str, os.PathLike] = "trackpose_model",
          seed: int = 0, val_images=None, val_masks=None, channels: Optional[Sequence[int]] = None,
          channel_axis: Optional[int] = None, normalize: bool = True, nimg_per_epoch: Optional[int] = None,
          min_train_masks: int = DEFAULT_MIN_TRAIN_MASKS, warmup_epochs: int = DEFAULT_WARMUP_EPOCHS,
          val_every: int = 1, save_every: int = 1, resume: bool = False, recalibrate_batches: int = 0,
          size_model_epochs: int = 2, thin_fraction: float = 0.0, style_size_weight: float = 0.0, device=None,
          gpu: bool = False, diameters: Optional[Sequence[Optional[float]]] = None,
          val_diameters: Optional[Sequence[Optional[float]]] = None,
          progress: Optional[Callable[[dict], None]] = None) -> TrainResult:
    """Train a CPnet (from scratch or from a cellpose/trackpose model) and save it in cellpose's format.

    Parameters
    ----------
    images : sequence of arrays, or a folder
        2D images ((Y, X), (C, Y, X) or (Y, X, C)); or a folder of ``<stem>.tif`` + ``<stem>_masks.tif``.
    masks : sequence of (Y, X) integer arrays
        Labels; not given when ``images`` is a folder.
    model : None, name, path or Model
        None: a new network (random weights, torch seeded by ``seed``); otherwise the model to fine-tune.
    n_epochs : int
        Passes over the data (``nimg_per_epoch`` samples each).
    learning_rate : float, optional
        Default 0.005 (AdamW) or 0.2 (SGD).
    weight_decay, sgd, momentum :
        AdamW weight decay; SGD with momentum instead of AdamW.
    batch_size, bsize :
        Samples per step; crop size (pixels, a multiple of 16).
    rescale : bool
        Scale each image so its objects have ``diam_mean`` pixels (scale jitter 0.5); off: jitter 1.0 only
        (cellpose's ``--no_rescale``).
    diam_mean : float, optional
        Object diameter at network scale; default 30, or the fine-tuned model's.
    save_path : path
        Checkpoint file (cellpose format, no extension), rewritten every ``save_every`` epochs. Beside it:
        ``<save_path>.train_state`` (optimizer state for ``resume``) and, with validation, ``<save_path>_best``.
    seed : int
        Seeds the weights, the sampling and the augmentation: same data + seed -> same model (on the same device).
    val_images, val_masks : optional
        Validation pairs; AP@0.5/0.75/0.9 is computed every ``val_every`` epochs with ``trackpose.segment``.
    channels, channel_axis, normalize :
        Channel selection (see :func:`prepare_pairs`), percentile normalisation.
    nimg_per_epoch : int, optional
        Samples per epoch (default: the number of training images).
    min_train_masks : int
        Skip pairs with fewer objects (default 5, as cellpose).
    warmup_epochs : int
        Epochs of linear learning-rate warm-up (10).
    resume : bool
        Continue from ``save_path`` and its ``.train_state`` (same data and settings) after the last saved epoch.
    recalibrate_batches : int
        After the last epoch, re-estimate the batch-norm statistics over this many augmented batches
        (:func:`recalibrate_batchnorm`) before the final save; 0 = off (cellpose). Worth it for short runs.
    size_model_epochs : int
        After training, fit the size model (:func:`trackpose.size_estimation.fit_size_model`, this many passes over the
        training images) and save it as ``<save_path>_size.npy``, so that ``diameter=0`` works with the new
        model; 0 = skip.
    thin_fraction : float
        Share of batches cropped to thin strips (:func:`thin_strips`: ``h`` x ``bsize`` or ``bsize`` x ``h``,
        ``h`` a multiple of 16 from 32 to ``bsize / 2``, with 8 to 16 empty rows at each end as the engine's padding
        makes them, the objects they cut flowing as at an image border), the shape of 3D mode's XZ and YZ slices
        through a stack of few planes; 0 = square crops only (cellpose). Strip batches train like the others
        (batch statistics; they move the running statistics too, which is what taught the network thin slices:
        docs/development-notes.md, "Stage 3" and "Stage 4").
    style_size_weight : float
        Weight of an auxiliary loss that teaches the style vector the objects' size (:func:`style_size_loss`):
        every step also encodes ``max(1, batch_size // 2)`` training images cropped to ``STYLE_CROP`` pixels at
        their own scale, as the size model sees images, and a linear head (discarded after training) regresses
        ``log(diameter / diam_mean)`` on their styles. The size model fitted afterwards is more accurate
        (docs/development-notes.md, "Stage 5"). 0 (default): cellpose's training. The history's ``loss`` stays the
        segmentation loss; ``style_size_rmse`` is added.
    device, gpu :
        Torch device, or use a GPU when available.
    diameters, val_diameters : sequence of float or None, optional
        Object diameter per training / validation image where the masks do not tell it (``prepare_pairs``'s
        ``diameters``); default: measured from each image's masks.
    progress : callable(dict), optional
        Called after every epoch with that epoch's history entry (plus ``n_epochs``).

    Returns
    -------
    TrainResult

    Raises
    ------
    InputError
        No usable training pair, or bad arguments.
    TrainingError
        The loss became NaN or infinite; the last good checkpoint (if any epoch finished) stays at ``save_path``.
    """
    if n_epochs < 1:
        raise InputError(f"n_epochs must be at least 1, got {n_epochs}")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    if not 0.0 <= thin_fraction <= 1.0:
        raise InputError(f"thin_fraction must be in [0, 1], got {thin_fraction}")
    if not (math.isfinite(style_size_weight) and style_size_weight >= 0):
        raise InputError(f"style_size_weight must be a number >= 0, got {style_size_weight}")
    if bsize < 16 or bsize % 16:
        raise InputError(f"bsize must be a multiple of 16 (>= 16), got {bsize}")
    if learning_rate is None:
        learning_rate = DEFAULT_SGD_LEARNING_RATE if sgd else DEFAULT_LEARNING_RATE
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise InputError(f"learning_rate must be a positive number, got {learning_rate}")
    save_path = Path(save_path)
    if save_path.is_dir():
        raise InputError(f"save_path {save_path} is a folder; give a file name for the model")
    if save_path.parent and not save_path.parent.exists():
        save_path.parent.mkdir(parents=True, exist_ok=True)

    names = None
    if isinstance(images, (str, os.PathLike)):
        if masks is not None:
            raise InputError("masks: give them only with image arrays; with a folder they are read from "
                             "<name>_masks.tif files")
        images, masks, names = load_folder(images)
    elif masks is None:
        raise InputError("masks: give one label image per training image (or pass a folder as images)")
    images, masks = list(images), list(masks)
    pairs = prepare_pairs(images, masks, channels=channels, channel_axis=channel_axis, normalize=normalize,
                          min_train_masks=min_train_masks, names=names, diameters=diameters)
    if not pairs:
        raise InputError(f"no usable training pair among {len(images)} image(s): every pair was skipped "
                         "(see the warnings: shape mismatch, no objects, non-integer masks ...)")
    val_pairs = []
    if val_images is not None:
        if val_masks is None:
            raise InputError("val_masks: give one label image per validation image")
        val_pairs = prepare_pairs(val_images, val_masks, channels=channels, channel_axis=channel_axis,
                                  normalize=normalize, min_train_masks=1, what="validation", diameters=val_diameters)
        if not val_pairs:
            _warn("validation: no usable validation pair; training without validation")

    dev = select_device(device, gpu=gpu)
    torch.manual_seed(seed)
    if model is None:
        net = CPnet(diam_mean=30.0 if diam_mean is None else float(diam_mean))
        diam_mean = 30.0 if diam_mean is None else float(diam_mean)
    else:
        base = load_model(model, device="cpu")
        net = copy.deepcopy(base.net)
        if diam_mean is None:
            diam_mean = base.diam_mean
        elif float(diam_mean) != base.diam_mean:
            log.warning("training %s at diam_mean %.1f although it was trained at %.1f", base.name, diam_mean,
                        base.diam_mean)
    diam_mean = float(diam_mean)
    if not diam_mean > 0:
        raise InputError(f"diam_mean must be a positive number of pixels, got {diam_mean}")
    diam_labels = float(np.mean([p.diameter for p in pairs]))
    net = net.to(dev).train()
    head = None
    parameters = list(net.parameters())
    if style_size_weight > 0:
        head = torch.nn.Linear(net.nbase[-1], 1).to(dev)
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
        parameters += list(head.parameters())

    if sgd:
        optimizer = torch.optim.SGD(parameters, lr=learning_rate, momentum=momentum, weight_decay=weight_decay)
    else:
        optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay)
    rates = learning_rate_schedule(n_epochs, learning_rate, warmup_epochs)
    history, first_epoch, best_ap = [], 0, -1.0
    best_path = _best_path(save_path) if val_pairs else None
    if resume:
        first_epoch, history, best_ap = _resume(net, optimizer, save_path, dev, head)
        log.info("resuming %s after epoch %d", save_path, first_epoch)

    n_per_epoch = nimg_per_epoch or len(pairs)
    last_saved = first_epoch - 1 if resume else None
    t0 = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    log.info("training on %d image(s) (%d skipped), %d epoch(s) of %d sample(s), bsize %d, diam_mean %.1f, "
             "mean label diameter %.1f, %s lr %.4g on %s", len(pairs), len(images) - len(pairs), n_epochs,
             n_per_epoch, bsize, diam_mean, diam_labels, "SGD" if sgd else "AdamW", learning_rate, dev)
    for epoch in range(first_epoch, n_epochs):
        rng = np.random.default_rng([seed, epoch])  # an epoch's randomness depends only on (seed, epoch)
        for group in optimizer.param_groups:
            group["lr"] = float(rates[epoch])
        order = rng.choice(len(pairs), n_per_epoch, replace=n_per_epoch > len(pairs))
        losses, size_losses = [], []
        net.train()
        for start in range(0, n_per_epoch, batch_size):
            batch = [pairs[i] for i in order[start:start + batch_size]]
            if thin_fraction > 0 and rng.random() < thin_fraction:
                x, flows, foreground = thin_strips(batch, rng, bsize, diam_mean, rescale)
            else:
                x, flows, foreground = augment(batch, rng, bsize, diam_mean, rescale=rescale)
            y = net(x.to(dev))[0]
            loss = segmentation_loss(y, flows.to(dev), foreground.to(dev))
            value = float(loss.detach())
            if head is not None:
                sized = [pairs[i] for i in rng.choice(len(pairs), min(len(pairs), max(1, batch_size // 2)),
                                                      replace=False)]
                size_loss = style_size_loss(net, head, sized, rng, diam_mean, dev)
                size_losses.append(float(size_loss.detach()))
                loss = loss + style_size_weight * size_loss
            total = float(loss.detach()) if head is not None else value
            if not math.isfinite(total):
                kept = (f"the last good checkpoint (after epoch {last_saved + 1}) is {save_path}"
                        if last_saved is not None else "no checkpoint had been written yet")
                raise TrainingError(f"the training loss became {total} in epoch {epoch + 1} (learning rate "
                                    f"{rates[epoch]:.3g}): training stopped; {kept}. Lower the learning rate "
                                    "(or check the images for extreme values) and train again")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(value)
        entry = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "learning_rate": float(rates[epoch]),
                 "seconds": round(time.perf_counter() - t0, 2)}
        if size_losses:
            entry["style_size_rmse"] = float(np.sqrt(np.mean(size_losses)))
        last_epoch = epoch == n_epochs - 1
        if val_pairs and ((epoch + 1) % val_every == 0 or last_epoch):
            ap = evaluate(net, val_pairs, diam_mean, diam_labels, dev)
            net.train()
            entry["val_ap"] = [float(a) for a in ap]
            if ap[0] > best_ap:
                best_ap = float(ap[0])
                save_model(net, best_path, diam_mean, diam_labels)
        history.append(entry)
        if (epoch + 1) % save_every == 0 or last_epoch:
            _checkpoint(net, optimizer, save_path, diam_mean, diam_labels, epoch, history, best_ap, head)
            last_saved = epoch
        log.info("epoch %d/%d  loss %.4f  lr %.3g%s  (%.0f s)", epoch + 1, n_epochs, entry["loss"],
                 entry["learning_rate"],
                 f"  val AP@0.5 {entry['val_ap'][0]:.3f}" if "val_ap" in entry else "", entry["seconds"])
        if progress is not None:
            progress({**entry, "n_epochs": n_epochs})
    if recalibrate_batches > 0:
        recalibrate_batchnorm(net, pairs, recalibrate_batches, batch_size, bsize, diam_mean, rescale, seed, dev)
        save_model(net, save_path, diam_mean, diam_labels)
        log.info("batch-norm statistics re-estimated over %d batches; saved %s", recalibrate_batches, save_path)
    size_path = None
    if size_model_epochs > 0:
        from .size_estimation import fit_size_model
        from .size_model import size_model_path
        net.eval()
        final = Model(net=net, diam_mean=diam_mean, diam_labels=diam_labels, name=save_path.name, path=save_path,
                      device=dev)
        fitted = fit_size_model(final, [np.moveaxis(p.image, 0, -1) for p in pairs], [p.masks for p in pairs],
                                channels=None, channel_axis=-1, normalize=False, n_epochs=size_model_epochs,
                                seed=seed)
        size_path = fitted.save(size_model_path(save_path))
        log.info("size model saved to %s", size_path)
    return TrainResult(model_path=save_path, best_path=best_path, history=history, diam_mean=diam_mean,
                       diam_labels=diam_labels, n_train=len(pairs), size_path=size_path)


def recalibrate_batchnorm(net: CPnet, pairs: Sequence[TrainingPair], n_batches: int = 50, batch_size: int = 8,
                          bsize: int = 224, diam_mean: float = 30.0, rescale: bool = True, seed: int = 0,
                          device=None) -> CPnet:
    """Re-estimate every batch-norm's running mean and variance from augmented training crops, in place.

    During training the running statistics are an exponential average (momentum 0.05) over batches seen while
    the weights were still changing; after a short training run they lag behind the final weights, and the
    network in eval mode (what inference uses) behaves worse than in training mode. This replaces them by the
    plain average over ``n_batches`` batches through the final network (no weight changes).
    """
    device = next(net.parameters()).device if device is None else torch.device(device)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    rng = np.random.default_rng([seed, 1 << 20])
    net.train()
    with torch.no_grad():
        for _ in range(n_batches):
            batch = [pairs[i] for i in rng.choice(len(pairs), batch_size, replace=len(pairs) < batch_size)]
            x, _, _ = augment(batch, rng, bsize, diam_mean, rescale=rescale)
            net(x.to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return net.eval()


def _checkpoint(net, optimizer, save_path: Path, diam_mean, diam_labels, epoch, history, best_ap,
                head: Optional[torch.nn.Linear] = None) -> None:
    """Write the model (cellpose format) and the state ``resume`` needs, each atomically."""
    for p in net.parameters():
        if not torch.isfinite(p).all():
            raise TrainingError(f"weights became NaN/Inf in epoch {epoch + 1}: training stopped; the last good "
                                f"checkpoint is {save_path}")
    save_model(net, save_path, diam_mean, diam_labels)
    state = {"epoch": epoch + 1, "optimizer": optimizer.state_dict(), "history": history, "best_ap": best_ap}
    if head is not None:
        state["style_head"] = head.state_dict()
    target = _state_path(save_path)
    tmp = target.with_name(target.name + ".part")
    torch.save(state, tmp)
    os.replace(tmp, target)


def _resume(net, optimizer, save_path: Path, device, head: Optional[torch.nn.Linear] = None
            ) -> tuple[int, list, float]:
    state_file = _state_path(save_path)
    if not save_path.is_file() or not state_file.is_file():
        raise InputError(f"resume: {save_path} and {state_file} must both exist (written by an earlier run "
                         "with the same save_path)")
    weights = read_state_dict(save_path)
    net.load_state_dict({k: v for k, v in weights.items() if k in net.state_dict()}, strict=False)
    net.to(device)
    try:
        state = torch.load(state_file, map_location=device, weights_only=True)
    except Exception as exc:
        raise InputError(f"resume: cannot read {state_file}: {exc}") from None
    if head is not None:
        if "style_head" not in state:
            raise InputError(f"resume: {state_file} was written without style_size_weight; resume with the "
                             "settings of the interrupted run")
        head.load_state_dict(state["style_head"])
    try:
        optimizer.load_state_dict(state["optimizer"])
    except ValueError as exc:
        raise InputError(f"resume: {state_file} does not match these settings ({exc}); resume with the settings "
                         "of the interrupted run") from None
    return int(state["epoch"]), list(state["history"]), float(state.get("best_ap", -1.0))


def export_half(source: Union[str, os.PathLike], target: Union[str, os.PathLike]) -> Path:
    """Copy a cellpose-format model with its weights in float16 (about half the size).

    Every floating-point tensor becomes float16 except ``diam_mean`` and ``diam_labels`` (kept exact);
    ``num_batches_tracked`` stays an integer. Cellpose and trackpose convert back to float32 when loading.
    """
    return _write_half(read_state_dict(Path(source)), Path(target))


def interpolate_models(base: Union[str, os.PathLike], tuned: Union[str, os.PathLike], weight: float,
                       target: Union[str, os.PathLike]) -> Path:
    """Write ``(1 - weight) x base + weight x tuned``, tensor by tensor, as a float16 cellpose file.

    For ``tuned`` fine-tuned from ``base``: the average keeps much of what each knows (weight-space ensembling,
    "WiSE-FT", Wortsman et al. 2022). Batch-norm statistics and ``diam_labels`` are averaged too; integer tensors
    (``num_batches_tracked``) come from ``tuned``."""
    if not 0.0 <= (weight := float(weight)) <= 1.0:
        raise InputError(f"interpolation weight {weight} is outside [0, 1]: 0 gives the base model, 1 the tuned one")
    a, b = read_state_dict(Path(base)), read_state_dict(Path(tuned))
    mismatched = sorted(k for k in set(a) | set(b) if k not in a or k not in b or a[k].shape != b[k].shape)
    if mismatched:
        raise InputError(f"{base} and {tuned} are not the same network ({len(mismatched)} tensors differ, e.g. "
                         f"{mismatched[0]}); interpolate a model with one fine-tuned from it")
    mixed = {k: ((1.0 - weight) * a[k].float() + weight * b[k].float()) if a[k].is_floating_point() else b[k]
             for k in a}
    return _write_half(mixed, Path(target))


def _write_half(state: dict, target: Path) -> Path:
    half = {}
    for key, value in state.items():
        if value.is_floating_point() and not key.startswith("diam_"):
            if value.abs().max() > 6.0e4:
                raise TrainingError(f"{key} holds values beyond float16's range; keep the float32 model")
            value = value.half()
        half[key] = value
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    torch.save(half, tmp)
    os.replace(tmp, target)
    return target
