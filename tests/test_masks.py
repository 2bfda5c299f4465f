"""Mask post-processing: flow quality control, holes, sizes, edges, renumbering; cellpose parity."""

import numpy as np
import pytest

from trackpose import dynamics
from trackpose.masks import (fill_holes_and_remove_small_masks, flow_error, remove_bad_flow_masks, remove_edge_masks,
                             remove_faint_masks, renumber)
from trackpose.flows import masks_to_flows
from trackpose.errors import InputError
from label_images import cell_logits, iou_matrix, cellpose_dynamics, cells_2d, noisy_network_output, touching_ellipses  # noqa: F401  (fixtures)


# ---------------------------------------------------------------------------------------------------------
# flow quality control
# ---------------------------------------------------------------------------------------------------------

def weakened_cell_flows(cells, label, factor=0.3):
    """Exact network flows, except inside ``label`` where they are ``factor`` as long (still convergent, but
    a mean squared error of (1 - factor)^2 = 0.49 > 0.4 against the mask's own flows)."""
    dP = 5 * masks_to_flows(cells)
    dP[:, cells == label] *= factor
    return dP


def test_flow_qc_removes_inconsistent_masks_and_zero_threshold_skips_it(cells_2d):
    big = int(np.bincount(cells_2d.ravel())[1:].argmax()) + 1
    dP = weakened_cell_flows(cells_2d, big)
    errors = flow_error(cells_2d, dP)
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
    cleaned = remove_bad_flow_masks(masks, dP, threshold=0.4)
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
    out = fill_holes_and_remove_small_masks(masks, min_size=15)
    assert out.max() == 2
    assert np.array_equal(out == 1, masks == 2)
    assert np.array_equal(out == 2, masks == 9)
    assert not np.any(out[masks == 5])


def test_min_and_max_size():
    masks = np.zeros((100, 100), np.int32)
    for label, side in enumerate((3, 4, 6, 10, 20), 1):  # 9, 16, 36, 100, 400 pixels
        masks[label * 20 - 20: label * 20 - 20 + side, 5:5 + side] = label
    sizes = lambda m: sorted(np.bincount(m.ravel())[1:].tolist())  # noqa: E731
    assert sizes(fill_holes_and_remove_small_masks(masks, min_size=15)) == [16, 36, 100, 400]
    assert sizes(fill_holes_and_remove_small_masks(masks, min_size=0)) == [9, 16, 36, 100, 400]
    assert sizes(fill_holes_and_remove_small_masks(masks, min_size=15, max_size=100)) == [16, 36, 100]
    assert sizes(fill_holes_and_remove_small_masks(masks, min_size=15, max_size=0)) == [16, 36, 100, 400]
    # compute_masks passes both limits through (sizes of the reconstructed masks)
    dP, cellprob = 5 * masks_to_flows(masks), cell_logits(masks)
    assert sizes(dynamics.compute_masks(dP, cellprob, min_size=30, max_size=150)) == [36, 100]


def test_holes_are_filled_in_2d_and_3d():
    ring = np.zeros((40, 40), np.int32)
    ring[5:30, 5:30] = 3
    ring[12:20, 12:20] = 0        # a hole
    ring[14:17, 14:17] = 8        # with a small mask inside: the enclosing mask absorbs it, like cellpose
    ring[0:5, 30:40] = 5          # a mask touching the border: not a hole
    out = fill_holes_and_remove_small_masks(ring, min_size=0)
    assert out.max() == 2  # numbered in raster order of first appearance: the border mask is 1
    assert np.array_equal(out == 2, np.pad(np.ones((25, 25), bool), ((5, 10), (5, 10))))
    assert np.array_equal(out == 1, ring == 5)
    shell = np.zeros((12, 12, 12), np.int32)
    shell[2:10, 2:10, 2:10] = 1
    shell[4:7, 4:7, 4:7] = 0
    assert fill_holes_and_remove_small_masks(shell).sum() == 8 ** 3


def test_remove_edge_masks_and_renumber():
    masks = np.zeros((30, 30), np.int32)
    masks[0:5, 10:15] = 3     # top edge
    masks[10:15, 10:15] = 7
    masks[20:25, 25:30] = 9   # right edge
    masks[20:25, 5:10] = 12
    out = remove_edge_masks(masks)
    assert out.dtype == np.int32 and out.max() == 2
    assert np.array_equal(out == 1, masks == 7) and np.array_equal(out == 2, masks == 12)
    volume = np.zeros((6, 10, 10), np.int32)
    volume[0, 4:6, 4:6] = 1   # first plane
    volume[2:4, 4:6, 4:6] = 2
    assert np.array_equal(remove_edge_masks(volume), (volume == 2).astype(np.int32))
    assert np.array_equal(renumber(np.array([[0, 40, 5], [5, 0, 12]])), [[0, 3, 1], [1, 0, 2]])



def test_bad_flows_raise_input_error():
    with pytest.raises(InputError):
        flow_error(np.zeros((10, 10), np.int32), np.zeros((2, 10, 11), np.float32))


def test_flow_qc_matches_cellpose(cellpose_dynamics, cells_2d):
    import torch
    from cellpose import metrics
    dP = weakened_cell_flows(cells_2d, 5, factor=0.2)
    dP[:, cells_2d == 9] *= 0.4
    dP += np.random.default_rng(1).normal(0, 0.8, dP.shape).astype(np.float32)
    ours = flow_error(cells_2d, dP)
    theirs = metrics.flow_error(cells_2d, dP, device=torch.device("cpu"))[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    removed = remove_bad_flow_masks(cells_2d, dP, threshold=0.4)
    expected = cellpose_dynamics.remove_bad_flow_masks(cells_2d.copy(), dP, threshold=0.4)
    assert 0 < len(np.unique(cells_2d)) - len(np.unique(removed)) < cells_2d.max() // 2
    assert np.array_equal(removed, expected)


def test_hole_filling_matches_cellpose_without_label_gaps():
    pytest.importorskip("cellpose")
    from cellpose import utils
    rng = np.random.default_rng(5)
    masks = touching_ellipses((128, 128), 30, (5, 15), seed=5)
    masks[rng.uniform(size=masks.shape) < 0.05] = 0  # pepper holes into every mask
    ours = fill_holes_and_remove_small_masks(masks, min_size=15)
    assert np.array_equal(ours, utils.fill_holes_and_remove_small_masks(masks.copy(), min_size=15))


def test_cellpose_small_mask_bug_is_not_copied():
    pytest.importorskip("cellpose")
    from cellpose import utils
    masks = np.zeros((80, 80), np.int32)
    masks[2:12, 2:12] = 2     # 100 px
    masks[20:23, 20:24] = 5   # 12 px
    masks[40:60, 40:70] = 9   # 600 px
    theirs = utils.fill_holes_and_remove_small_masks(masks.copy(), min_size=15)
    ours = fill_holes_and_remove_small_masks(masks, min_size=15)
    # cellpose's counts are [100, 12, 600] for labels [2, 5, 9]; it reads "count 2 is small" as "label 2 is
    # small" and deletes the 100-px mask (the 12-px one goes only in its second pass)
    assert sorted(np.bincount(theirs.ravel())[1:].tolist()) == [600]
    assert sorted(np.bincount(ours.ravel())[1:].tolist()) == [100, 600]



def test_remove_faint_masks_removes_objects_whose_mean_logit_is_below_the_threshold():
    labels = np.zeros((2, 6, 6), np.int32)
    labels[0, :2, :2], labels[0, 3:, 3:], labels[1, :3, 4:], labels[1, 4:, :2] = 1, 2, 5, 7
    cellprob = np.full(labels.shape, -4.0, np.float32)
    cellprob[labels == 1] = 3.0
    cellprob[labels == 2] = 1.0
    cellprob[1, :3, 4:] = [[0.5, 3.6], [3.6, 0.5], [0.5, 3.6]]  # object 5, mean 2.05: kept
    cellprob[labels == 7] = 1.99
    out = remove_faint_masks(labels, cellprob, 2.0)
    assert out.dtype == np.int32 and out.shape == labels.shape
    # 1 and 5 kept (renumbered 1, 2 in order, voxels unchanged), 2 and 7 removed
    np.testing.assert_array_equal(out, np.select([labels == 1, labels == 5], [1, 2], 0))
    np.testing.assert_array_equal(remove_faint_masks(labels, cellprob, 0.0), labels)  # 0 = off, nothing renumbered
    assert remove_faint_masks(labels, cellprob, 10.0).max() == 0
    with pytest.raises(ValueError, match="shape"):
        remove_faint_masks(labels, cellprob[0], 2.0)


def test_remove_faint_masks_sums_in_slabs_and_takes_strided_views(monkeypatch):
    """The logits are summed slab by slab (a float64 copy of one slab at a time, not of the volume); an object that
    spans slabs gets the mean over all its voxels, and a strided view (2D + Z passes one channel of the network
    output) gives what a contiguous copy gives."""
    import trackpose.masks as masks_module
    rng = np.random.default_rng(3)
    labels = np.zeros((9, 20, 20), np.int32)
    labels[:, 2:8, 2:8] = 1  # through every plane
    labels[1:4, 10:18, 10:18] = 2
    labels[5:9, 12:16, 1:6] = 3
    y = rng.normal(1.0, 1.0, (9, 3, 20, 20)).astype(np.float32)
    y[:, 1][labels == 1] += 0.5
    cellprob = y[:, 1]
    means = [cellprob[labels == k].mean() for k in (1, 2, 3)]
    threshold = float(np.sort(means)[1]) + 1e-4  # the middle one goes with the dimmest
    whole = remove_faint_masks(labels, np.ascontiguousarray(cellprob), threshold)
    monkeypatch.setattr(masks_module, "_SLAB_VOXELS", 400 * 2)  # two planes per slab
    slabs = remove_faint_masks(labels, cellprob, threshold)
    np.testing.assert_array_equal(slabs, whole)
    assert slabs.max() == 1 and np.array_equal(slabs > 0, labels == 1 + int(np.argmax(means)))
