"""Pictures a person looks at: an image with the found outlines drawn over it, coloured by match to a ground truth
when there is one, and a montage of several such pictures (frames of a movie, planes of a stack).

Colours: found objects that match a true object (IoU >= 0.5) green, found objects that match none (false
positives) red, true objects that nothing found (missed) blue; without a ground truth every outline is yellow.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .errors import InputError
from .labels import as_label_image
from .metrics import intersection_over_union

GREEN = (40, 220, 60)
RED = (235, 40, 40)
BLUE = (60, 130, 255)
YELLOW = (250, 220, 0)
#: IoU at which a found object counts as matching a true one
MATCH_IOU = 0.5


def outline_pixels(masks: np.ndarray) -> np.ndarray:
    """Boolean (Y, X): the pixels of each object that touch another label or the background (4-connected)."""
    masks = np.asarray(masks)
    edge = np.zeros(masks.shape, bool)
    diff_y = masks[1:, :] != masks[:-1, :]
    diff_x = masks[:, 1:] != masks[:, :-1]
    edge[1:, :] |= diff_y
    edge[:-1, :] |= diff_y
    edge[:, 1:] |= diff_x
    edge[:, :-1] |= diff_x
    return edge & (masks > 0)


def grayscale(image: np.ndarray, percentiles=(1.0, 99.8)) -> np.ndarray:
    """(Y, X) or (Y, X, C) image -> (Y, X, 3) uint8 gray, intensities stretched between two percentiles."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        image = image.mean(axis=-1)
    if image.ndim != 2:
        raise InputError(f"an overlay needs a 2D image, got shape {image.shape}")
    lo, hi = np.percentile(image, percentiles) if image.size else (0.0, 1.0)
    scaled = np.clip((image - lo) / (hi - lo if hi > lo else 1.0), 0, 1)
    return np.repeat((scaled * 255).astype(np.uint8)[..., None], 3, axis=-1)


def match_classes(masks: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(matched found labels, missed true labels) at IoU >= 0.5 (where a match is necessarily one to one)."""
    iou = intersection_over_union(truth, masks)
    best_for_found = iou[1:, 1:].max(axis=0) if iou.shape[0] > 1 else np.zeros(iou.shape[1] - 1)
    best_for_true = iou[1:, 1:].max(axis=1) if iou.shape[1] > 1 else np.zeros(iou.shape[0] - 1)
    found = np.flatnonzero(best_for_found >= MATCH_IOU) + 1
    missed = np.flatnonzero(best_for_true < MATCH_IOU) + 1
    return found, missed


def outline_overlay(image: np.ndarray, masks: np.ndarray, truth: Optional[np.ndarray] = None) -> np.ndarray:
    """(Y, X, 3) uint8: ``image`` in gray with the outlines of ``masks`` drawn over it.

    With ``truth`` (a label image of the same shape), found objects are green when they match a true object,
    red when they match none, and the true objects that were missed are outlined in blue.
    """
    masks = as_label_image(masks, "masks", ndims=(2,))
    rgb = grayscale(image)
    if rgb.shape[:2] != masks.shape:
        raise InputError(f"image {rgb.shape[:2]} and masks {masks.shape} differ in size")
    edges = outline_pixels(masks)
    if truth is None:
        rgb[edges] = YELLOW
        return rgb
    truth = as_label_image(truth, "truth", ndims=(2,))
    if truth.shape != masks.shape:
        raise InputError(f"truth {truth.shape} and masks {masks.shape} differ in size")
    found, missed = match_classes(masks, truth)
    missed_edges = outline_pixels(np.where(np.isin(truth, missed), truth, 0))
    rgb[missed_edges] = BLUE
    matched = np.isin(masks, found)
    rgb[edges & matched] = GREEN
    rgb[edges & ~matched] = RED
    return rgb


def montage(pictures: Sequence[np.ndarray], columns: Optional[int] = None, gap: int = 4) -> np.ndarray:
    """Pictures of one size (Y, X, 3) side by side in a grid, ``gap`` white pixels apart."""
    if not pictures:
        raise InputError("a montage needs at least one picture")
    shape = pictures[0].shape
    if any(p.shape != shape for p in pictures):
        raise InputError("montage pictures must all have the same size")
    columns = columns or int(np.ceil(np.sqrt(len(pictures))))
    rows = int(np.ceil(len(pictures) / columns))
    height, width = shape[0], shape[1]
    sheet = np.full((rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, 3), 255, np.uint8)
    for k, picture in enumerate(pictures):
        r, c = divmod(k, columns)
        sheet[r * (height + gap):r * (height + gap) + height, c * (width + gap):c * (width + gap) + width] = picture
    return sheet


def stack_overlay(image: np.ndarray, masks: np.ndarray, most: int = 16) -> np.ndarray:
    """Outline overlays of up to ``most`` planes (or frames) of a stack, evenly spaced, as one montage."""
    masks = np.asarray(masks)
    image = np.asarray(image)
    if masks.ndim == 2:
        return outline_overlay(image, masks)
    picks = np.unique(np.linspace(0, masks.shape[0] - 1, min(most, masks.shape[0])).round().astype(int))
    return montage([outline_overlay(image[k], masks[k]) for k in picks])


def track_colour(track_id: int) -> tuple:
    """A bright colour per track id, far from its neighbours' (golden-ratio hues)."""
    import colorsys
    hue = (track_id * 0.618033988749895) % 1.0
    return tuple(int(255 * c) for c in colorsys.hsv_to_rgb(hue, 0.85, 1.0))


def _centroids(labels: np.ndarray) -> dict:
    """label -> (y, x) centroid of a 2D label image."""
    ids = labels.ravel()
    if not ids.any():
        return {}
    yy, xx = np.indices(labels.shape)
    n = np.bincount(ids)
    cy, cx = np.bincount(ids, yy.ravel()), np.bincount(ids, xx.ravel())
    return {int(k): (cy[k] / n[k], cx[k] / n[k]) for k in np.flatnonzero(n) if k > 0}


def _draw_line(rgb: np.ndarray, a, b, colour) -> None:
    steps = int(2 * max(abs(b[0] - a[0]), abs(b[1] - a[1]))) + 2  # dense enough to leave no gap
    yy = np.clip(np.floor(np.linspace(a[0], b[0], steps) + 0.5).astype(int), 0, rgb.shape[0] - 1)
    xx = np.clip(np.floor(np.linspace(a[1], b[1], steps) + 0.5).astype(int), 0, rgb.shape[1] - 1)
    rgb[yy, xx] = colour


def tracks_overlay(tracked: np.ndarray, image: Optional[np.ndarray] = None) -> np.ndarray:
    """(Y, X, 3) uint8: the tracks of a tracked label movie (label = track id, (T, Y, X) or (T, Z, Y, X)).

    The last frame's objects are outlined in their track's colour, over ``image`` (the last frame, in gray) when
    given; each track's path (its centroids from frame to frame) is drawn in the same colour. Z stacks are
    shown as their maximum projection.
    """
    tracked = np.asarray(tracked)
    if tracked.ndim == 4:
        tracked = tracked.max(axis=1)
    if tracked.ndim != 3:
        raise InputError(f"a tracks picture needs a (T, Y, X) or (T, Z, Y, X) label movie, got {tracked.shape}")
    if image is not None:
        image = np.asarray(image)
        rgb = grayscale(image.max(axis=0) if image.ndim == 3 and image.shape[1:] == tracked.shape[1:] else image)
    else:
        rgb = np.zeros(tracked.shape[1:] + (3,), np.uint8)
    last = tracked[-1]
    edges = outline_pixels(last)
    for track_id in np.unique(last[edges]):
        rgb[edges & (last == track_id)] = track_colour(int(track_id))
    previous = {}
    for frame in tracked:
        now = _centroids(frame)
        for track_id, point in now.items():
            if track_id in previous:
                _draw_line(rgb, previous[track_id], point, track_colour(track_id))
        previous = now
    return rgb
