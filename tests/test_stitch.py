"""2D + Z stitching: objects followed through the planes, new labels below the IoU threshold, cellpose parity."""
import numpy as np
import pytest

from trackpose.errors import InputError
from trackpose.stitch import split_at_z_valleys, stitch_masks, trim_dim_ends


def sliced_ellipsoids(planes=12, size=96, n=30, seed=0, gaps=False):
    """Per-plane label images of random ellipsoids, each plane numbered 1..n in random order (as per-plane
    segmentation returns them); with ``gaps`` every plane's ids are spread out (1, 4, 7, ...)."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform([0, 0, 0], [planes, size, size], (n, 3))
    radius = rng.uniform(4, 12, n)
    zz, yy, xx = np.mgrid[:planes, :size, :size]
    volume = np.zeros((planes, size, size), np.int32)
    for k in range(n):
        distance2 = ((zz - centre[k, 0]) * 2.5) ** 2 + (yy - centre[k, 1]) ** 2 + (xx - centre[k, 2]) ** 2
        volume[distance2 <= radius[k] ** 2] = k + 1
    masks = np.zeros_like(volume)
    for z in range(planes):
        ids = np.unique(volume[z])[1:]
        lookup = np.zeros(n + 1, np.int32)
        lookup[ids] = rng.permutation(len(ids)) + 1
        masks[z] = lookup[volume[z]] * (3 if gaps else 1) - (2 if gaps else 0) * (volume[z] > 0)
    return masks


def same_partition(a, b):
    """True when a and b are the same labelling up to renumbering (and share the background)."""
    if not np.array_equal(a > 0, b > 0):
        return False
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


def test_objects_followed_through_z_keep_one_label():
    zz, yy, xx = np.mgrid[:9, :64, :64]
    truth = np.zeros((9, 64, 64), np.int32)
    for label, (cz, cy, cx) in enumerate([(4, 16, 16), (4, 40, 44), (3, 20, 46)], start=1):
        truth[((zz - cz) * 3) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= 100] = label
    # per-plane labels: object k is called (plane + k) % 3 + 1 on each plane
    masks = np.where(truth > 0, (truth + np.arange(9)[:, None, None]) % 3 + 1, 0)
    stitched = stitch_masks(masks)
    assert stitched.dtype == np.int32
    assert sorted(np.unique(stitched).tolist()) == [0, 1, 2, 3]
    assert same_partition(stitched, truth)


def test_new_label_where_overlap_is_below_threshold():
    masks = np.zeros((2, 20, 20), np.int32)
    masks[0, 2:12, 2:12] = 1  # 100 pixels
    masks[1, 2:12, 8:18] = 1  # shifted: 40 shared pixels, IoU 40 / 160 = 0.25
    assert stitch_masks(masks, 0.25)[1].max() == 1  # the threshold itself links (cellpose: iou < t is dropped)
    assert stitch_masks(masks, 0.26)[1].max() == 2
    masks[1] = 0
    masks[1, 2:12, 11:19] = 1  # 10 shared pixels of 170: IoU ~0.06
    linked = stitch_masks(masks, 0.25)
    assert np.unique(linked[0]).tolist() == [0, 1] and np.unique(linked[1]).tolist() == [0, 2]
    assert stitch_masks(masks, 0.0)[1].max() == 1  # threshold 0 links any overlap


def test_each_previous_mask_continues_only_into_its_best_match():
    masks = np.zeros((2, 20, 30), np.int32)
    masks[0, 2:12, 2:22] = 1  # a wide mask splits into a big and a small part
    masks[1, 2:12, 2:16] = 2
    masks[1, 2:12, 16:22] = 1
    stitched = stitch_masks(masks, 0.1)
    assert stitched[1, 5, 5] == 1  # the big part (IoU 0.7) continues the object
    assert stitched[1, 5, 20] == 2  # the small part (IoU 0.3, not the column's best) starts a new one


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_with_cellpose_stitch3d(seed):
    cellpose_utils = pytest.importorskip("cellpose.utils")
    masks = sliced_ellipsoids(seed=seed)
    for threshold in (0.0, 0.25, 0.5):
        theirs = cellpose_utils.stitch3D(masks.copy(), stitch_threshold=threshold)
        ours = stitch_masks(masks, threshold)
        # consecutive per-plane labels, no empty plane: cellpose's numbering exactly
        np.testing.assert_array_equal(ours, theirs)


def test_parity_with_cellpose_on_ties():
    cellpose_utils = pytest.importorskip("cellpose.utils")
    masks = np.zeros((3, 12, 24), np.int32)
    masks[0, 2:10, 2:10] = 1  # 64 pixels
    masks[1, 2:6, 2:10] = 1  # two halves, both IoU 0.5 with the square: both keep its label
    masks[1, 6:10, 2:10] = 2
    masks[0, 2:6, 12:20] = 2  # two masks of plane 0 ...
    masks[0, 6:10, 12:20] = 3
    masks[1, 2:10, 12:20] = 3  # ... tie for one mask of plane 1: it takes the lower label
    masks[2] = masks[1]
    ours = stitch_masks(masks, 0.25)
    np.testing.assert_array_equal(ours, cellpose_utils.stitch3D(masks.copy(), 0.25))
    assert np.unique(ours[1, 2:10, 2:10]).tolist() == [1]
    assert np.unique(ours[1, 2:10, 12:20]).tolist() == [2]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # cellpose divides 0 / 0 for the absent labels
def test_label_gaps_give_the_same_objects_as_cellpose_up_to_numbering():
    cellpose_utils = pytest.importorskip("cellpose.utils")
    masks = sliced_ellipsoids(seed=3, gaps=True)
    theirs = cellpose_utils.stitch3D(masks.copy(), 0.25)
    ours = stitch_masks(masks, 0.25)
    assert same_partition(ours, theirs)
    assert np.unique(ours).tolist() == list(range(ours.max() + 1))  # ours has no gaps


def test_masks_after_an_empty_plane_get_new_labels():
    masks = np.zeros((3, 10, 10), np.int32)
    masks[0, 1:4, 1:4] = 1
    masks[2, 6:9, 6:9] = 1  # unrelated object after an empty plane (cellpose 3.1.1.2 would reuse label 1)
    stitched = stitch_masks(masks)
    assert stitched[0, 2, 2] == 1 and stitched[2, 7, 7] == 2
    masks[2] = 0
    masks[2, 1:4, 1:4] = 1  # even at the same place: Z continuity is broken by the empty plane
    assert stitch_masks(masks)[2, 2, 2] == 2


def test_accepts_huge_and_float_ids():
    masks = np.zeros((2, 8, 8), np.int64)
    masks[0, 1:5, 1:5] = 10**12
    masks[1, 1:5, 2:6] = 7
    stitched = stitch_masks(masks)
    assert np.unique(stitched).tolist() == [0, 1] and (stitched > 0).sum() == 32
    np.testing.assert_array_equal(stitch_masks(masks.astype(np.float32) * 0 + (masks > 0)), stitched)


def test_bad_input_names_the_argument():
    with pytest.raises(InputError, match="masks"):
        stitch_masks(np.zeros((8, 8), np.int32))
    with pytest.raises(InputError, match="masks"):
        stitch_masks(np.full((2, 4, 4), 0.5))
    with pytest.raises(InputError, match="masks"):
        stitch_masks(-np.ones((2, 4, 4), np.int32))
    with pytest.raises(InputError, match="stitch_threshold"):
        stitch_masks(np.zeros((2, 4, 4), np.int32), -0.1)
    with pytest.raises(InputError, match="stitch_threshold"):
        stitch_masks(np.zeros((2, 4, 4), np.int32), float("nan"))


def _two_nuclei_chained(bridge):
    """Two balls stacked along Z, labelled as one object through a dimmer column between them (as stitching does
    when the light between two nuclei is segmented in the planes in between)."""
    z, y, x = np.mgrid[:26, :20, :20]
    lower = (z - 6) ** 2 + (y - 10) ** 2 + (x - 10) ** 2 <= 25   # planes 1-11
    upper = (z - 19) ** 2 + (y - 10) ** 2 + (x - 10) ** 2 <= 25  # planes 14-24
    column = (z > 6) & (z < 19) & ((y - 10) ** 2 + (x - 10) ** 2 <= 9)
    labels = (lower | upper | column).astype(np.int32)
    intensity = np.where(lower | upper, 1.0, np.where(column, bridge, 0.0))
    return labels, intensity, lower, upper


def test_split_at_z_valleys_cuts_chained_nuclei_at_the_dim_gap_only():
    labels, intensity, lower, upper = _two_nuclei_chained(bridge=0.5)
    out = split_at_z_valleys(labels, intensity, 0.1)
    assert sorted(np.unique(out)) == [0, 1, 2]
    assert len(np.unique(out[lower])) == 1 and len(np.unique(out[upper])) == 1 and out[lower][0] != out[upper][0]
    assert np.array_equal(out > 0, labels > 0)  # no pixel lost or added
    # a valley shallower than asked stays whole; so does a bright column; depth 0 changes nothing
    assert out.max() == 2 and split_at_z_valleys(labels, intensity, 0.6).max() == 1
    bright = _two_nuclei_chained(bridge=0.95)
    assert split_at_z_valleys(bright[0], bright[1], 0.1).max() == 1
    assert np.array_equal(split_at_z_valleys(labels, intensity, 0.0), labels)
    # other objects keep their labels; the new piece takes a label after the largest one
    two = np.where(labels > 0, 3, 0).astype(np.int32)
    two[:, :2, :2] = 5
    out = split_at_z_valleys(two, intensity + (two == 5), 0.1)
    assert set(np.unique(out)) == {0, 3, 5, 6} and np.array_equal(out == 5, two == 5)
    assert labels.sum() == _two_nuclei_chained(bridge=0.5)[0].sum()  # input not modified


def test_split_at_z_valleys_bad_input_is_explained():
    labels, intensity, _, _ = _two_nuclei_chained(bridge=0.5)
    with pytest.raises(InputError, match="intensity image of the labels' shape"):
        split_at_z_valleys(labels, intensity[1:], 0.1)
    with pytest.raises(InputError, match="stitch_split"):
        split_at_z_valleys(labels, intensity, 1.0)


def test_trim_dim_ends_drops_the_out_of_focus_planes_above_and_below_an_object():
    labels, intensity, lower, _ = _two_nuclei_chained(bridge=0.5)
    one = np.where(lower, 1, 0).astype(np.int32)
    halo = np.zeros_like(one, bool)  # the light above and below the nucleus, segmented as part of it
    halo[12:15] = one[6] > 0
    halo[0] = one[6] > 0
    labels = np.where(lower | halo, 1, 0).astype(np.int32)
    light = np.where(lower, 1.0, np.where(halo, 0.3, 0.0))
    out = trim_dim_ends(labels, light, 0.6)
    assert np.array_equal(out > 0, lower)  # the dim end planes go, the nucleus stays
    assert np.array_equal(trim_dim_ends(labels, light, 0.2), labels) and np.array_equal(
        trim_dim_ends(labels, light, 0.0), labels)
    # a dim plane between two bright ones is not an end: kept
    gap = labels.copy()
    gap[6] = np.where(one[6] > 0, 1, 0)
    inner = light.copy()
    inner[6][one[6] > 0] = 0.1
    assert np.array_equal(trim_dim_ends(gap, inner, 0.6)[6] > 0, one[6] > 0)
    with pytest.raises(InputError, match="stitch_trim"):
        trim_dim_ends(labels, light, 1.5)
