"""Axes, channels, normalisation, resizing: cellpose's semantics, with clear errors."""
import numpy as np
import pytest

from trackpose import transforms as T
from trackpose.errors import InputError


def test_gray_image_gets_zero_second_channel():
    img = np.arange(64 * 80, dtype=np.uint16).reshape(64, 80)
    x = T.to_planes(img, (0, 0))
    assert x.shape == (1, 64, 80, 2) and x.dtype == np.float32
    assert np.array_equal(x[0, ..., 0], img) and not x[..., 1].any()
    assert img[0, 1] == 1  # input untouched


def test_channel_selection_and_mean():
    rgb = np.random.default_rng(0).random((3, 40, 50)).astype(np.float32)  # channels first, as C < 10
    x = T.to_planes(rgb, (2, 3))
    assert np.array_equal(x[0, ..., 0], rgb[1]) and np.array_equal(x[0, ..., 1], rgb[2])
    x = T.to_planes(rgb, (0, 0))
    np.testing.assert_allclose(x[0, ..., 0], rgb.mean(0), rtol=1e-6)
    x = T.to_planes(np.moveaxis(rgb, 0, -1), (1, 0))
    assert np.array_equal(x[0, ..., 0], rgb[0]) and not x[..., 1].any()


def test_channel_that_does_not_exist_is_an_error():
    with pytest.raises(InputError, match="chan=4 does not exist"):
        T.to_planes(np.zeros((3, 40, 50)), (4, 0))
    with pytest.raises(InputError, match="chan2=2"):
        T.to_planes(np.zeros((40, 50)), (1, 2))


def test_z_axis_detection_and_explicit_axes():
    stack = np.zeros((12, 64, 64, 2), np.float32)
    assert T.to_planes(stack, (1, 2)).shape == (12, 64, 64, 2)
    moved = np.moveaxis(stack, 0, 2)  # (64, 64, 12, 2): Z is the shortest axis longer than 5
    assert T.to_planes(moved, (1, 2)).shape == (12, 64, 64, 2)
    assert T.to_planes(np.zeros((8, 30, 40)), (0, 0), z_axis=0).shape == (8, 30, 40, 2)
    with pytest.raises(InputError, match="cannot tell"):
        T.to_planes(np.zeros((20, 30, 12, 16)), (0, 0))  # no axis short enough to be channels
    with pytest.raises(InputError, match="out of range"):
        T.to_planes(np.zeros((20, 30)), (0, 0), z_axis=3)


def test_bad_images():
    with pytest.raises(InputError):
        T.to_planes(np.zeros(10), (0, 0))
    with pytest.raises(InputError):
        T.to_planes(np.array([["a"]]), (0, 0))
    x = T.to_planes(np.full((20, 20), np.nan), (0, 0))
    with pytest.raises(InputError, match="NaN"):
        T.check_finite(x)


def test_normalisation_percentiles_constant_and_invert():
    rng = np.random.default_rng(1)
    x = T.to_planes(rng.normal(100, 10, (100, 100)), (0, 0))
    T.normalize(x)
    assert np.percentile(x[..., 0], 1) == pytest.approx(0, abs=1e-5)
    assert np.percentile(x[..., 0], 99) == pytest.approx(1, abs=1e-5)
    assert not x[..., 1].any()  # the empty channel stays zero
    const = T.to_planes(np.full((30, 30), 7.0), (0, 0))
    T.normalize(const, invert=True)
    assert (const[..., 0] == 7).all()  # constant: untouched, and not inverted
    y = T.to_planes(np.linspace(0, 10, 400).reshape(20, 20), (0, 0))
    T.normalize(y, lowhigh=(0, 10), invert=True)
    assert y[0, 0, 0, 0] == pytest.approx(1) and y[0, -1, -1, 0] == pytest.approx(0)
    with pytest.raises(InputError):
        T.normalize(y, percentiles=(99, 1))


def test_normalisation_matches_cellpose():
    ct = pytest.importorskip("cellpose.transforms")
    rng = np.random.default_rng(2)
    img = rng.gamma(2, 50, (3, 120, 90)).astype(np.float32)
    ours = T.normalize(T.to_planes(img, (2, 3)), percentiles=(2, 99.5))
    theirs = ct.normalize_img(ct.convert_image(img, [2, 3], nchan=2), percentile=(2, 99.5))
    np.testing.assert_allclose(ours[0], theirs, atol=1e-5)


def test_resize_matches_cellpose_bilinear_and_nearest():
    ct = pytest.importorskip("cellpose.transforms")
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(3)
    img = rng.random((1, 50, 70, 2)).astype(np.float32)
    for ly, lx in ((75, 105), (33, 41)):
        ours = T.resize_planes(img, ly, lx)[0]
        theirs = ct.resize_image(img[0], ly, lx)
        np.testing.assert_allclose(ours, theirs, atol=2e-5)
    labels = rng.integers(0, 9, (1, 50, 70)).astype(np.int32)
    ours = T.resize_planes(labels, 120, 90, nearest=True)[0]
    theirs = cv2.resize(labels[0].astype(np.float32), (90, 120), interpolation=cv2.INTER_NEAREST)
    assert np.array_equal(ours, theirs.astype(np.int32))


def test_gamma_and_wiener():
    x = T.to_planes(np.random.default_rng(4).random((40, 40)), (0, 0))
    T.normalize(x)
    before = x.copy()
    T.adjust_intensity(x, gamma=2.0)
    np.testing.assert_allclose(x, np.maximum(before, 0) ** 2, rtol=1e-5)
    y = before.copy()
    T.adjust_intensity(y, wiener_noise=0.5)
    assert y[..., 0].std() < before[..., 0].std()  # smoother
    with pytest.raises(InputError):
        T.adjust_intensity(y, wiener_noise=2)
    with pytest.raises(InputError):
        T.adjust_intensity(y, gamma=0)


def test_tiles_cover_image_like_cellpose():
    starts, size = T.tile_starts(480, 224, 0.1, augment=False, tiling="cellpose")
    assert size == 224 and list(starts) == list(np.linspace(0, 256, 3).astype(int))
    assert T.tile_starts(200, 224, 0.1, False, "cellpose") == (np.array([0]), 200)
    assert T.pad_to_16(100, 96) == (8 + 6, 8 + 6, 8, 8)
    assert T.pad_to_16(100, 96, margin=0) == (6, 6, 0, 0)  # the compact tiling's
    assert T.pad_to_16(14, 903, margin=0) == (1, 1, 4, 5)  # a thin stack's ZX slice: 16 rows, not 32


@pytest.mark.parametrize("length", [16, 200, 224, 240, 448, 464, 512, 528, 784, 1024, 1500, 2064, 4112])
def test_compact_tiles_cover_the_axis_with_fewer_pixels(length):
    starts, size = T.tile_starts(length, 224, 0.1, augment=False, tiling="compact")
    cp_starts, cp_size = T.tile_starts(length, 224, 0.1, augment=False, tiling="cellpose")
    assert starts[0] == 0 and starts[-1] + size == length  # covers the axis, tiles inside it
    assert size <= max(448, 224) and (size == length or (size % 16 == 0 and size >= 224))
    if len(starts) > 1:
        assert np.diff(starts).max() <= size - 45  # neighbours overlap by >= 2 * 0.1 * 224 pixels
    assert len(starts) * size <= len(cp_starts) * cp_size
    if length <= 448:
        assert len(starts) == 1


def test_unknown_tiling_is_an_error():
    with pytest.raises(InputError, match="tiling"):
        T.tile_starts(500, 224, 0.1, False, tiling="fast")


def test_fixed_range_leaves_an_empty_channel_empty():
    x = np.zeros((1, 8, 8, 2), np.float32)
    x[0, ..., 0] = np.linspace(100, 200, 64).reshape(8, 8)
    T.normalize(x, lowhigh=(100, 200))
    assert x[..., 0].min() == 0 and x[..., 0].max() == 1
    assert not x[..., 1].any()  # cellpose would make it -1.0 here
