"""Flows -> masks: exact round trips, early stop, niter, thresholds, input checks, cellpose parity."""

import numpy as np
import pytest

from trackpose import dynamics
from trackpose.errors import InputError
from label_images import average_precision, iou_matrix, cell_logits, cellpose_dynamics, cells_2d, cells_3d, matched_fraction, noisy_network_output, touching_ellipses  # noqa: F401  (fixtures)


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



def test_bad_points_raise_input_error():
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


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")
def test_2d_masks_match_cellpose(cellpose_dynamics, cells_2d):
    dP, cellprob = noisy_network_output(cells_2d)
    ours = dynamics.compute_masks(dP, cellprob)
    theirs = cellpose_dynamics.compute_masks(dP, cellprob, min_size=15)
    assert matched_fraction(theirs, ours) >= 0.98 and matched_fraction(ours, theirs) >= 0.98
    # the 2D CPU dynamics are bit-identical, so in practice so are the labels
    assert np.mean(ours == theirs) > 0.999



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

