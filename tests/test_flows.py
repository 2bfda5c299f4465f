"""Masks -> flows: unit flows pointing inwards, label-value independence, input checks, cellpose parity."""

import numpy as np
import pytest

from trackpose.flows import masks_to_flows
from trackpose.errors import InputError
from label_images import cellpose_dynamics, cells_2d, cells_3d, touching_ellipses  # noqa: F401  (fixtures)


def test_flows_are_unit_vectors_pointing_inwards(cells_2d):
    flows = masks_to_flows(cells_2d)
    assert flows.shape == (2, 256, 256) and flows.dtype == np.float32
    length = np.sqrt((flows ** 2).sum(0))
    assert np.all(length[cells_2d == 0] == 0)
    # unit length except where the heat gradient vanishes (the centre of a symmetric shape)
    assert np.all(length <= 1 + 1e-6)
    assert np.mean(np.abs(length[cells_2d > 0] - 1) < 1e-6) > 0.999
    # a lone disc: every flow points towards its centre
    yy, xx = np.mgrid[:64, :64]
    disc = ((yy - 32) ** 2 + (xx - 30) ** 2 <= 15 ** 2).astype(np.int32)
    dy, dx = masks_to_flows(disc)
    inside = (disc > 0) & ((yy - 32) ** 2 + (xx - 30) ** 2 > 4)
    towards = dy * (32 - yy) + dx * (30 - xx)
    assert np.all(towards[inside] > 0)


def test_flows_ignore_label_values_and_gaps(cells_2d):
    spread = np.where(cells_2d > 0, cells_2d * 1000 + 7, 0).astype(np.int64)
    assert np.array_equal(masks_to_flows(spread), masks_to_flows(cells_2d))
    assert np.array_equal(masks_to_flows(np.zeros((20, 30), np.uint16)), np.zeros((2, 20, 30), np.float32))



def test_bad_masks_raise_input_error():
    with pytest.raises(InputError):
        masks_to_flows(np.zeros(10, np.int32))
    with pytest.raises(InputError):
        masks_to_flows(np.zeros((10, 10), np.float32))
    with pytest.raises(InputError):
        masks_to_flows(-np.ones((10, 10), np.int32))


def test_the_public_contract_keeps_masks_to_flows_in_dynamics():
    from trackpose import dynamics
    assert dynamics.masks_to_flows is masks_to_flows


def test_flows_match_cellpose(cellpose_dynamics, cells_2d):
    ours = masks_to_flows(cells_2d)
    theirs = cellpose_dynamics.masks_to_flows(cells_2d)
    assert np.array_equal(ours, theirs.astype(np.float32))  # same float64 numbers, rounded once
    volume = touching_ellipses((12, 40, 40), 10, (4, 10), seed=3)
    assert np.array_equal(masks_to_flows(volume), cellpose_dynamics.masks_to_flows(volume))

