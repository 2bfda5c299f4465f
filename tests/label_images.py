"""Label images and matching helpers shared by the flows, dynamics and masks tests."""

import numpy as np
import pytest
from scipy import ndimage

from trackpose.flows import masks_to_flows
from trackpose.masks import renumber


def touching_ellipses(shape, n, radii, seed):
    """Label image of up to n touching ellipses (2D) or ellipsoids (3D): a new shape is kept only when at
    most 15 % of it lies on earlier ones and it covers at most 15 % of any of them, and takes the free
    pixels; each keeps its largest connected piece; objects under 30 pixels are dropped; labels 1..N."""
    rng = np.random.default_rng(seed)
    shape = np.array(shape)
    labels = np.zeros(tuple(shape), np.int32)
    sizes = np.zeros(1, np.int64)
    label = 0
    for _ in range(20 * n):
        if label == n:
            break
        semi_axes = rng.uniform(radii[0], radii[1]) * rng.uniform(0.7, 1.3, len(shape))
        centre = rng.uniform(0, 1, len(shape)) * shape
        lo = np.maximum(0, np.floor(centre - semi_axes)).astype(int)
        hi = np.minimum(shape, np.ceil(centre + semi_axes) + 1).astype(int)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        grid = np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij")
        inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, semi_axes)) < 1
        covered = np.bincount(labels[box][inside], minlength=label + 1)
        # little overlap with the others, and none of them mostly covered (so none is enclosed)
        if not inside.any() or covered[1:].sum() > 0.15 * inside.sum() or np.any(covered[1:] > 0.15 * sizes[1:]):
            continue
        label += 1
        labels[box][inside & (labels[box] == 0)] = label
        sizes = np.bincount(labels.ravel(), minlength=label + 1)
    out = np.zeros_like(labels)
    for label, box in enumerate(ndimage.find_objects(labels), 1):
        if box is None:
            continue
        pieces, count = ndimage.label(labels[box] == label)
        largest = pieces == 1 + np.bincount(pieces.ravel())[1:].argmax()
        if largest.sum() >= 30:
            out[box][largest] = label
    return renumber(out)


def iou_matrix(a, b):
    """IoU of every (label of a, label of b) pair, shape (a.max(), b.max())."""
    a = a.astype(np.int64).ravel()
    b = b.astype(np.int64).ravel()
    na, nb = a.max(), b.max()
    pairs = np.bincount(a * (nb + 1) + b, minlength=(na + 1) * (nb + 1)).reshape(na + 1, nb + 1)
    inter = pairs[1:, 1:]
    union = pairs.sum(1)[1:, None] + pairs.sum(0)[None, 1:] - inter
    return inter / np.maximum(union, 1)


def average_precision(truth, pred, threshold):
    """TP / (TP + FP + FN) with matches at IoU >= threshold (>= 0.5, so matches are one-to-one)."""
    n_true, n_pred = len(np.unique(truth[truth > 0])), len(np.unique(pred[pred > 0]))
    if n_true == 0 or n_pred == 0:
        return float(n_true == n_pred)
    tp = int((iou_matrix(truth, pred) >= threshold).sum())
    return tp / (n_true + n_pred - tp)


def matched_fraction(reference, other, threshold=0.5):
    """Fraction of the reference's objects that have a partner in ``other`` at IoU >= threshold."""
    iou = iou_matrix(reference, other)
    present = np.bincount(reference.ravel())[1:] > 0
    return float((iou >= threshold).any(1)[present].mean())


def cell_logits(masks):
    return np.where(masks > 0, 5.0, -5.0).astype(np.float32)


@pytest.fixture(scope="module")
def cells_2d():
    return touching_ellipses((256, 256), 70, (6, 25), seed=1)


@pytest.fixture(scope="module")
def cells_3d():
    return touching_ellipses((40, 96, 96), 60, (6, 16), seed=4)



@pytest.fixture(scope="module")
def cellpose_dynamics():
    pytest.importorskip("cellpose")
    import torch
    from cellpose import dynamics as cp_dynamics
    torch.set_num_threads(2)
    return cp_dynamics


def noisy_network_output(cells, seed=0):
    rng = np.random.default_rng(seed)
    dP = (5 * masks_to_flows(cells) + rng.normal(0, 1.0, (cells.ndim,) + cells.shape)).astype(np.float32)
    cellprob = (cell_logits(cells) + rng.normal(0, 2.0, cells.shape)).astype(np.float32)
    return dP, cellprob

