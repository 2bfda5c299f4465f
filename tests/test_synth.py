"""Synthetic fluorescence images: reproducible, and their masks describe what the image shows."""
import hashlib

import numpy as np
import pytest
from scipy import ndimage

from trackpose import synth
from trackpose.errors import InputError
from trackpose.train import mask_diameter


def _normalised(image):
    lo, hi = np.percentile(image, [1, 99])
    return (image - lo) / (hi - lo)


def test_same_seed_same_image_and_masks():
    a_img, a_masks = synth.nuclei_image(seed=7)
    b_img, b_masks = synth.nuclei_image(seed=7)
    c_img, c_masks = synth.nuclei_image(seed=8)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_masks, b_masks)
    assert not np.array_equal(a_masks, c_masks)
    d_img, d_masks = synth.cells_image(seed=7)
    e_img, e_masks = synth.cells_image(seed=7)
    np.testing.assert_array_equal(d_img, e_img)
    np.testing.assert_array_equal(d_masks, e_masks)


@pytest.mark.parametrize("make", [synth.nuclei_image, synth.cells_image])
def test_masks_are_consecutive_single_objects_that_the_image_shows(make):
    image, masks = make(shape=(200, 240), seed=3, crowding=0.8)
    assert masks.shape == (200, 240) and masks.dtype == np.int32 and image.dtype == np.float32
    n = masks.max()
    assert n >= 10
    np.testing.assert_array_equal(np.unique(masks), np.arange(n + 1))
    for index, region in enumerate(ndimage.find_objects(masks), start=1):
        assert ndimage.label(masks[region] == index)[1] == 1, f"label {index} is in several pieces"
    first = image if image.ndim == 2 else image[0]
    x = _normalised(first)
    assert x[masks > 0].mean() > x[masks == 0].mean() + 0.2


def test_crowded_objects_touch():
    _, masks = synth.nuclei_image(seed=5, crowding=1.0)
    # a label next to a different label (4-connected): objects share borders
    right = (masks[:, 1:] != masks[:, :-1]) & (masks[:, 1:] > 0) & (masks[:, :-1] > 0)
    assert right.sum() > 50


def test_nuclei_sizes_follow_the_requested_range():
    for low, high in ((8, 14), (25, 40)):
        _, masks = synth.nuclei_image(shape=(256, 256), seed=1, diameter_range=(low, high))
        assert 0.7 * low < mask_diameter(masks) < 1.1 * high


def test_cells_have_a_nuclear_channel_inside_the_cells():
    image, masks = synth.cells_image(seed=2, nuclear_channel=True)
    assert image.shape == (2,) + masks.shape
    nuclear = _normalised(image[1])
    assert nuclear[masks > 0].mean() > nuclear[masks == 0].mean() + 0.1
    single, masks2 = synth.cells_image(seed=2, nuclear_channel=False)
    assert single.shape == masks2.shape


def test_dataset_items_depend_only_on_seed_and_index():
    five = list(synth.dataset(5, "mixed", seed=11, shape=(96, 96)))
    three = list(synth.dataset(3, "mixed", seed=11, shape=(96, 96)))
    assert len(five) == 5
    for (a, am), (b, bm) in zip(three, five):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(am, bm)
    kinds = {img.ndim for img, _ in synth.dataset(12, "mixed", seed=0, shape=(64, 64), nuclear_channel_fraction=1.0)}
    assert kinds == {2, 3}  # nuclei (Y, X) and cells with a nuclear channel (2, Y, X)


def test_bad_arguments_are_named():
    with pytest.raises(InputError, match="diameter_range"):
        synth.nuclei_image(diameter_range=(30, 10))
    with pytest.raises(InputError, match="shape"):
        synth.cells_image(shape=(4, 100))
    with pytest.raises(InputError, match="kind"):
        list(synth.dataset(1, kind="bacteria"))


def _digest(*arrays):
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def test_existing_2d_generators_are_unchanged():
    # The built-in model's training recipe (docs/default-model.md) regenerates its data from these functions and
    # seeds: any change to their pixels or labels silently changes that recipe. Digests taken on numpy/scipy as
    # installed in the project venv (x86-64); a different numpy build may round differently.
    assert _digest(*synth.nuclei_image((96, 128), seed=7)) == "9874aa13a8f7bfc1"
    assert _digest(*synth.cells_image((96, 128), seed=7)) == "12f503547e02fa4a"
    assert _digest(*synth.cells_image((96, 128), seed=3, nuclear_channel=False)) == "5b82dc7e07c08ad2"
    pairs = synth.dataset(4, "mixed", seed=101, shape=(64, 64))
    assert _digest(*[array for pair in pairs for array in pair]) == "960ca7fc3845335b"
