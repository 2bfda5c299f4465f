"""Flows <-> masks: exact round trips, cellpose parity, QC, size filters and input checks."""

import numpy as np
import pytest
from scipy import ndimage

from trackpose import dynamics
from trackpose.errors import InputError


# ---------------------------------------------------------------------------------------------------------
# helpers: synthetic label images and object matching
# ---------------------------------------------------------------------------------------------------------

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
    return dynamics.renumber(out)


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


# ---------------------------------------------------------------------------------------------------------
# flows
# ---------------------------------------------------------------------------------------------------------

def test_flows_are_unit_vectors_pointing_inwards(cells_2d):
    flows = dynamics.masks_to_flows(cells_2d)
    assert flows.shape == (2, 256, 256) and flows.dtype == np.float32
    length = np.sqrt((flows ** 2).sum(0))
    assert np.all(length[cells_2d == 0] == 0)
    # unit length except where the heat gradient vanishes (the centre of a symmetric shape)
    assert np.all(length <= 1 + 1e-6)
    assert np.mean(np.abs(length[cells_2d > 0] - 1) < 1e-6) > 0.999
    # a lone disc: every flow points towards its centre
    yy, xx = np.mgrid[:64, :64]
    disc = ((yy - 32) ** 2 + (xx - 30) ** 2 <= 15 ** 2).astype(np.int32)
    dy, dx = dynamics.masks_to_flows(disc)
    inside = (disc > 0) & ((yy - 32) ** 2 + (xx - 30) ** 2 > 4)
    towards = dy * (32 - yy) + dx * (30 - xx)
    assert np.all(towards[inside] > 0)


def test_flows_ignore_label_values_and_gaps(cells_2d):
    spread = np.where(cells_2d > 0, cells_2d * 1000 + 7, 0).astype(np.int64)
    assert np.array_equal(dynamics.masks_to_flows(spread), dynamics.masks_to_flows(cells_2d))
    assert np.array_equal(dynamics.masks_to_flows(np.zeros((20, 30), np.uint16)), np.zeros((2, 20, 30), np.float32))


# ---------------------------------------------------------------------------------------------------------
# flows -> masks
# ---------------------------------------------------------------------------------------------------------

def test_exact_flows_reconstruct_2d_masks(cells_2d):
    assert cells_2d.max() >= 40
    masks = dynamics.compute_masks(5 * dynamics.masks_to_flows(cells_2d), cell_logits(cells_2d))
    assert masks.dtype == np.int32 and masks.shape == cells_2d.shape
    assert average_precision(cells_2d, masks, 0.9) >= 0.98


def test_exact_flows_reconstruct_3d_masks(cells_3d):
    assert cells_3d.max() >= 40
    flows = dynamics.masks_to_flows(cells_3d)
    assert flows.shape == (3,) + cells_3d.shape and flows.dtype == np.float32
    masks = dynamics.compute_masks(5 * flows, cell_logits(cells_3d))
    assert masks.dtype == np.int32 and masks.shape == cells_3d.shape
    assert average_precision(cells_3d, masks, 0.5) >= 0.95


@pytest.mark.parametrize("ndim", [2, 3])
def test_early_stop_gives_the_same_end_points_as_every_step(ndim):
    # follow_flows skips the periodic tail of trajectories; stepping one iteration at a time cannot skip
    shape = (64, 64) if ndim == 2 else (16, 32, 32)
    cells = touching_ellipses(shape, 12 if ndim == 2 else 8, (5, 12), seed=7)
    rng = np.random.default_rng(0)
    field = dynamics.masks_to_flows(cells) + rng.normal(0, 0.3, (ndim,) + shape).astype(np.float32)
    field *= cells > 0
    inds = np.nonzero(cells > 0)
    ends = dynamics.follow_flows(field, inds, niter=60)
    stepwise = np.array(inds, np.float32)
    for _ in range(60):
        stepwise = dynamics.follow_flows(field, stepwise, niter=1)
    assert np.array_equal(ends, stepwise)


def test_long_protrusion_needs_and_survives_large_niter():
    masks = np.zeros((256, 256), np.int32)
    masks[10:250, 10:20] = 1  # an L with 240-pixel arms: its tips are more than 200 steps from the sink
    masks[240:250, 10:250] = 1
    dP, cellprob = 5 * dynamics.masks_to_flows(masks), cell_logits(masks)
    short = dynamics.compute_masks(dP, cellprob, niter=200)
    long = dynamics.compute_masks(dP, cellprob, niter=2000)
    assert iou_matrix(masks, short).max() < 0.9
    assert long.max() == 1 and iou_matrix(masks, long)[0, 0] > 0.99


def test_nothing_above_threshold_gives_empty_masks():
    dP = np.zeros((2, 32, 48), np.float32)
    masks = dynamics.compute_masks(dP, np.full((32, 48), -1.0))
    assert masks.shape == (32, 48) and masks.dtype == np.int32 and masks.max() == 0
    assert dynamics.compute_masks(dP, np.full((32, 48), 1.0), cellprob_threshold=2.0).max() == 0


def test_max_size_fraction_removes_huge_masks():
    masks = np.zeros((100, 100), np.int32)
    masks[5:95, 5:75] = 1  # 63 % of the image
    masks[20:40, 80:98] = 2
    dP, cellprob = 5 * dynamics.masks_to_flows(masks), cell_logits(masks)
    assert dynamics.compute_masks(dP, cellprob, max_size_fraction=0.9, niter=400).max() == 2
    kept = dynamics.compute_masks(dP, cellprob, niter=400)
    assert kept.max() == 1 and iou_matrix(np.where(masks == 2, 1, 0), kept)[0, 0] > 0.95


# ---------------------------------------------------------------------------------------------------------
# flow quality control
# ---------------------------------------------------------------------------------------------------------

def weakened_cell_flows(cells, label, factor=0.3):
    """Exact network flows, except inside ``label`` where they are ``factor`` as long (still convergent, but
    a mean squared error of (1 - factor)^2 = 0.49 > 0.4 against the mask's own flows)."""
    dP = 5 * dynamics.masks_to_flows(cells)
    dP[:, cells == label] *= factor
    return dP


def test_flow_qc_removes_inconsistent_masks_and_zero_threshold_skips_it(cells_2d):
    big = int(np.bincount(cells_2d.ravel())[1:].argmax()) + 1
    dP = weakened_cell_flows(cells_2d, big)
    errors = dynamics.flow_error(cells_2d, dP)
    assert errors.shape == (cells_2d.max(),)
    assert errors[big - 1] == pytest.approx(0.49, abs=1e-4)
    assert np.all(np.delete(errors, big - 1) < 1e-8)

    checked = dynamics.compute_masks(dP, cell_logits(cells_2d), niter=400)
    unchecked = dynamics.compute_masks(dP, cell_logits(cells_2d), niter=400, flow_threshold=0)
    unchecked_none = dynamics.compute_masks(dP, cell_logits(cells_2d), niter=400, flow_threshold=None)
    assert np.array_equal(unchecked, unchecked_none)
    target = (cells_2d == big).astype(np.int32)
    assert iou_matrix(target, unchecked).max() > 0.95
    assert iou_matrix(target, checked).max() < 0.1
    assert checked.max() == unchecked.max() - 1


def test_remove_bad_flow_masks_keeps_labels():
    masks = np.zeros((60, 60), np.int32)
    masks[5:25, 5:25] = 4
    masks[30:55, 30:50] = 9
    dP = weakened_cell_flows(masks, 9)
    cleaned = dynamics.remove_bad_flow_masks(masks, dP, threshold=0.4)
    assert set(np.unique(cleaned)) == {0, 4}
    assert np.array_equal(cleaned == 4, masks == 4)
    assert set(np.unique(masks)) == {0, 4, 9}  # input untouched


# ---------------------------------------------------------------------------------------------------------
# holes, sizes, edges, renumbering
# ---------------------------------------------------------------------------------------------------------

def test_small_masks_are_removed_by_their_own_size_when_labels_have_gaps():
    # cellpose 3.1.1.2 reads the i-th count of the present labels as label i + 1: with labels {2, 5, 9} it
    # deletes label 2 (100 px) for the small count of label 5. Here exactly the mask under min_size goes.
    masks = np.zeros((80, 80), np.int32)
    masks[2:12, 2:12] = 2     # 100 px
    masks[20:23, 20:24] = 5   # 12 px: too small
    masks[40:60, 40:70] = 9   # 600 px
    out = dynamics.fill_holes_and_remove_small_masks(masks, min_size=15)
    assert out.max() == 2
    assert np.array_equal(out == 1, masks == 2)
    assert np.array_equal(out == 2, masks == 9)
    assert not np.any(out[masks == 5])


def test_min_and_max_size():
    masks = np.zeros((100, 100), np.int32)
    for label, side in enumerate((3, 4, 6, 10, 20), 1):  # 9, 16, 36, 100, 400 pixels
        masks[label * 20 - 20: label * 20 - 20 + side, 5:5 + side] = label
    sizes = lambda m: sorted(np.bincount(m.ravel())[1:].tolist())  # noqa: E731
    assert sizes(dynamics.fill_holes_and_remove_small_masks(masks, min_size=15)) == [16, 36, 100, 400]
    assert sizes(dynamics.fill_holes_and_remove_small_masks(masks, min_size=0)) == [9, 16, 36, 100, 400]
    assert sizes(dynamics.fill_holes_and_remove_small_masks(masks, min_size=15, max_size=100)) == [16, 36, 100]
    assert sizes(dynamics.fill_holes_and_remove_small_masks(masks, min_size=15, max_size=0)) == [16, 36, 100, 400]
    # compute_masks passes both limits through (sizes of the reconstructed masks)
    dP, cellprob = 5 * dynamics.masks_to_flows(masks), cell_logits(masks)
    assert sizes(dynamics.compute_masks(dP, cellprob, min_size=30, max_size=150)) == [36, 100]


def test_holes_are_filled_in_2d_and_3d():
    ring = np.zeros((40, 40), np.int32)
    ring[5:30, 5:30] = 3
    ring[12:20, 12:20] = 0        # a hole
    ring[14:17, 14:17] = 8        # with a small mask inside: the enclosing mask absorbs it, like cellpose
    ring[0:5, 30:40] = 5          # a mask touching the border: not a hole
    out = dynamics.fill_holes_and_remove_small_masks(ring, min_size=0)
    assert out.max() == 2  # numbered in raster order of first appearance: the border mask is 1
    assert np.array_equal(out == 2, np.pad(np.ones((25, 25), bool), ((5, 10), (5, 10))))
    assert np.array_equal(out == 1, ring == 5)
    shell = np.zeros((12, 12, 12), np.int32)
    shell[2:10, 2:10, 2:10] = 1
    shell[4:7, 4:7, 4:7] = 0
    assert dynamics.fill_holes_and_remove_small_masks(shell).sum() == 8 ** 3


def test_remove_edge_masks_and_renumber():
    masks = np.zeros((30, 30), np.int32)
    masks[0:5, 10:15] = 3     # top edge
    masks[10:15, 10:15] = 7
    masks[20:25, 25:30] = 9   # right edge
    masks[20:25, 5:10] = 12
    out = dynamics.remove_edge_masks(masks)
    assert out.dtype == np.int32 and out.max() == 2
    assert np.array_equal(out == 1, masks == 7) and np.array_equal(out == 2, masks == 12)
    volume = np.zeros((6, 10, 10), np.int32)
    volume[0, 4:6, 4:6] = 1   # first plane
    volume[2:4, 4:6, 4:6] = 2
    assert np.array_equal(dynamics.remove_edge_masks(volume), (volume == 2).astype(np.int32))
    assert np.array_equal(dynamics.renumber(np.array([[0, 40, 5], [5, 0, 12]])), [[0, 3, 1], [1, 0, 2]])


# ---------------------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dP_shape, cellprob_shape", [
    ((3, 32, 32), (32, 32)),        # 3 flow channels for a 2D image
    ((2, 32, 32), (32, 31)),        # cellprob does not match
    ((2, 8, 32, 32), (8, 32, 32)),  # 2 channels for a 3D image
    ((32, 32), (32, 32)),           # no channel axis
    ((3, 8, 32, 32), (32, 32)),     # 2D cellprob for 3D flows
])
def test_bad_shapes_raise_input_error(dP_shape, cellprob_shape):
    with pytest.raises(InputError):
        dynamics.compute_masks(np.zeros(dP_shape, np.float32), np.zeros(cellprob_shape, np.float32))


def test_bad_masks_raise_input_error():
    with pytest.raises(InputError):
        dynamics.masks_to_flows(np.zeros(10, np.int32))
    with pytest.raises(InputError):
        dynamics.masks_to_flows(np.zeros((10, 10), np.float32))
    with pytest.raises(InputError):
        dynamics.masks_to_flows(-np.ones((10, 10), np.int32))
    with pytest.raises(InputError):
        dynamics.flow_error(np.zeros((10, 10), np.int32), np.zeros((2, 10, 11), np.float32))
    with pytest.raises(InputError):
        dynamics.follow_flows(np.zeros((2, 10, 10), np.float32), (np.array([0, 12]), np.array([0, 1])), 10)


def test_nan_network_output_is_an_error_not_empty_masks():
    dP = np.zeros((2, 16, 16), np.float32)
    dP[0, 3, 4] = np.nan
    with pytest.raises(InputError, match="NaN"):
        dynamics.compute_masks(dP, np.ones((16, 16), np.float32))
    with pytest.raises(InputError, match="NaN"):
        dynamics.compute_masks(np.zeros((2, 16, 16)), np.full((16, 16), np.nan))


# ---------------------------------------------------------------------------------------------------------
# parity with cellpose 3.1.1.2 (the oracle; skipped when it is not installed)
# ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cellpose_dynamics():
    pytest.importorskip("cellpose")
    import torch
    from cellpose import dynamics as cp_dynamics
    torch.set_num_threads(2)
    return cp_dynamics


def noisy_network_output(cells, seed=0):
    rng = np.random.default_rng(seed)
    dP = (5 * dynamics.masks_to_flows(cells) + rng.normal(0, 1.0, (cells.ndim,) + cells.shape)).astype(np.float32)
    cellprob = (cell_logits(cells) + rng.normal(0, 2.0, cells.shape)).astype(np.float32)
    return dP, cellprob


def test_flows_match_cellpose(cellpose_dynamics, cells_2d):
    ours = dynamics.masks_to_flows(cells_2d)
    theirs = cellpose_dynamics.masks_to_flows(cells_2d)
    assert np.array_equal(ours, theirs.astype(np.float32))  # same float64 numbers, rounded once
    volume = touching_ellipses((12, 40, 40), 10, (4, 10), seed=3)
    assert np.array_equal(dynamics.masks_to_flows(volume), cellpose_dynamics.masks_to_flows(volume))


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")
def test_2d_masks_match_cellpose(cellpose_dynamics, cells_2d):
    dP, cellprob = noisy_network_output(cells_2d)
    ours = dynamics.compute_masks(dP, cellprob)
    theirs = cellpose_dynamics.compute_masks(dP, cellprob, min_size=15)
    assert matched_fraction(theirs, ours) >= 0.98 and matched_fraction(ours, theirs) >= 0.98
    # the 2D CPU dynamics are bit-identical, so in practice so are the labels
    assert np.mean(ours == theirs) > 0.999


def test_flow_qc_matches_cellpose(cellpose_dynamics, cells_2d):
    import torch
    from cellpose import metrics
    dP = weakened_cell_flows(cells_2d, 5, factor=0.2)
    dP[:, cells_2d == 9] *= 0.4
    dP += np.random.default_rng(1).normal(0, 0.8, dP.shape).astype(np.float32)
    ours = dynamics.flow_error(cells_2d, dP)
    theirs = metrics.flow_error(cells_2d, dP, device=torch.device("cpu"))[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    removed = dynamics.remove_bad_flow_masks(cells_2d, dP, threshold=0.4)
    expected = cellpose_dynamics.remove_bad_flow_masks(cells_2d.copy(), dP, threshold=0.4)
    assert 0 < len(np.unique(cells_2d)) - len(np.unique(removed)) < cells_2d.max() // 2
    assert np.array_equal(removed, expected)


def test_hole_filling_matches_cellpose_without_label_gaps():
    pytest.importorskip("cellpose")
    from cellpose import utils
    rng = np.random.default_rng(5)
    masks = touching_ellipses((128, 128), 30, (5, 15), seed=5)
    masks[rng.uniform(size=masks.shape) < 0.05] = 0  # pepper holes into every mask
    ours = dynamics.fill_holes_and_remove_small_masks(masks, min_size=15)
    assert np.array_equal(ours, utils.fill_holes_and_remove_small_masks(masks.copy(), min_size=15))


def test_cellpose_small_mask_bug_is_not_copied():
    pytest.importorskip("cellpose")
    from cellpose import utils
    masks = np.zeros((80, 80), np.int32)
    masks[2:12, 2:12] = 2     # 100 px
    masks[20:23, 20:24] = 5   # 12 px
    masks[40:60, 40:70] = 9   # 600 px
    theirs = utils.fill_holes_and_remove_small_masks(masks.copy(), min_size=15)
    ours = dynamics.fill_holes_and_remove_small_masks(masks, min_size=15)
    # cellpose's counts are [100, 12, 600] for labels [2, 5, 9]; it reads "count 2 is small" as "label 2 is
    # small" and deletes the 100-px mask (the 12-px one goes only in its second pass)
    assert sorted(np.bincount(theirs.ravel())[1:].tolist()) == [600]
    assert sorted(np.bincount(ours.ravel())[1:].tolist()) == [100, 600]


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")
def test_3d_masks_close_to_cellpose(cellpose_dynamics):
    # cellpose runs 3D dynamics through grid_sample (samples half a pixel off near the borders); trackpose
    # samples at the point as in 2D, so the masks agree closely but not exactly
    cells = touching_ellipses((20, 48, 48), 14, (5, 11), seed=2)
    dP, cellprob = noisy_network_output(cells, seed=3)
    ours = dynamics.compute_masks(dP, cellprob)
    theirs = cellpose_dynamics.compute_masks(dP, cellprob, do_3D=True, min_size=15)
    assert matched_fraction(theirs, ours) >= 0.9
    assert average_precision(cells, ours, 0.5) >= average_precision(cells, theirs, 0.5) - 0.05
