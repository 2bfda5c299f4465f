"""Synthetic fluorescence images: reproducible, and their masks describe what the image shows."""
import hashlib

import numpy as np
import pytest
import tifffile
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


def test_out_of_focus_nuclei_add_unlabelled_haze_and_keep_the_in_focus_image():
    plain, labels = synth.nuclei_image(shape=(160, 160), seed=11, diameter_range=(14, 20), crowding=0.3)
    default, default_labels = synth.nuclei_image(shape=(160, 160), seed=11, diameter_range=(14, 20), crowding=0.3,
                                                 out_of_focus=0.0)
    hazy, hazy_labels = synth.nuclei_image(shape=(160, 160), seed=11, diameter_range=(14, 20), crowding=0.3,
                                           out_of_focus=1.5)
    np.testing.assert_array_equal(default, plain)  # 0 draws nothing: the seed's image as it always was
    np.testing.assert_array_equal(hazy_labels, labels)  # defocused nuclei are not labelled
    again, _ = synth.nuclei_image(shape=(160, 160), seed=11, diameter_range=(14, 20), crowding=0.3,
                                  out_of_focus=1.5)
    np.testing.assert_array_equal(again, hazy)
    # the haze lifts the background between the in-focus nuclei, relative to the nuclei
    background = ndimage.binary_erosion(labels == 0, iterations=4)

    def contrast(image):
        return np.median(image[labels > 0]) - np.median(image[background]), np.median(image[background])

    (plain_contrast, plain_bg), (hazy_contrast, hazy_bg) = contrast(plain), contrast(hazy)
    assert hazy_bg - plain_bg > 0.1 * plain_contrast


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


def _fingerprint(image):
    """Mean, standard deviation and eight pixels spread over the image: catches any change of the recipe while
    tolerating last-bit differences between numpy/scipy builds or SIMD paths."""
    image = np.asarray(image, dtype=np.float64)
    flat = image.ravel()
    return np.array([image.mean(), image.std(), *flat[np.linspace(0, flat.size - 1, 8).astype(int)]])


@pytest.mark.parametrize("make, kwargs, labels_digest, fingerprint", [
    (synth.nuclei_image, {"seed": 7}, "2b9aa3a0826d7d03",
     [573.426039, 461.316146, 156.794525, 152.886078, 435.927643, 474.762115, 1256.861328, 220.420883, 252.167923,
      122.801025]),
    (synth.cells_image, {"seed": 7}, "1c21cf20aad4674f",
     [433.46886, 333.348149, 580.807312, 857.684082, 557.74823, 606.790161, 113.009941, 101.837372, 116.074677,
      112.103729]),
    (synth.nuclei_image, {"seed": 7, "out_of_focus": 1.5}, "2b9aa3a0826d7d03",  # stage 6's recipe
     [1501.807860, 488.398608, 957.941101, 1203.535156, 1433.927124,
      1417.714966, 2056.102295, 1109.620483, 1107.928345, 726.389282]),
    (synth.cells_image, {"seed": 3, "nuclear_channel": False}, "2dbd2477563bdfec",
     [301.792389, 24.564594, 289.425659, 299.169434, 293.475769, 352.736267, 273.486755, 294.132721, 325.035736,
      288.857056]),
])
def test_existing_2d_generators_are_unchanged(make, kwargs, labels_digest, fingerprint):
    # The built-in model's training recipe (docs/model-card.md) regenerates its data from these functions and
    # seeds: any change to their pixels or labels silently changes that recipe. Labels must be identical; pixel
    # values are compared to 1e-5 relative so that another numpy/scipy build's rounding does not matter.
    image, labels = make((96, 128), **kwargs)
    assert _digest(labels) == labels_digest
    np.testing.assert_allclose(_fingerprint(image), fingerprint, rtol=1e-5, atol=1e-3)


def test_existing_dataset_recipe_is_unchanged():
    pairs = list(synth.dataset(4, "mixed", seed=101, shape=(64, 64)))
    assert _digest(*[labels for _, labels in pairs]) == "7f48f6071bcf6078"
    images = np.concatenate([np.asarray(image).ravel() for image, _ in pairs])
    np.testing.assert_allclose(_fingerprint(images), [330.809722, 228.958086, 751.290222, 542.70459, 155.064163,
                                                      368.024506, 702.438599, 93.966591, 244.412003, 101.103462],
                               rtol=1e-5, atol=1e-3)


# ------------------------------------------------------------------------------------------------ 3D volumes

def _check_exact_labels(image, labels):
    n = labels.max()
    np.testing.assert_array_equal(np.unique(labels), np.arange(n + 1))
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        assert ndimage.label(labels[region] == index)[1] == 1, f"label {index} is in several pieces"
    x = _normalised(image)
    assert x[labels > 0].mean() > x[labels == 0].mean() + 0.1


@pytest.mark.parametrize("make, kwargs", [
    (synth.nuclei_volume, {}),
    (synth.nuclei_volume, {"anisotropy": 2.0, "crowding": 1.0}),
    (synth.cells_volume, {"nuclear_channel": True}),
    (synth.cells_volume, {"stain": "membrane", "anisotropy": 1.5}),
])
def test_volumes_have_exact_labels_that_the_image_shows(make, kwargs):
    image, labels = make(shape=(20, 80, 96), seed=4, **kwargs)
    assert labels.shape == (20, 80, 96) and labels.dtype == np.int32 and image.dtype == np.float32
    assert labels.max() >= 5
    if kwargs.get("nuclear_channel"):
        assert image.shape == (2, 20, 80, 96)
        nuclear = _normalised(image[1])
        assert nuclear[labels > 0].mean() > nuclear[labels == 0].mean() + 0.1
        image = image[0]
    assert image.shape == labels.shape
    _check_exact_labels(image, labels)


def test_crowded_volume_objects_touch():
    _, labels = synth.nuclei_volume(shape=(24, 96, 96), seed=5, crowding=1.0)
    touching = sum(((np.diff(labels, axis=a) != 0) & (np.delete(labels, 0, axis=a) > 0)
                    & (np.delete(labels, -1, axis=a) > 0)).sum() for a in range(3))
    assert touching > 200


def _stacked_neighbours(labels):
    """Per nucleus, whether another one covers its XY footprint (IoU >= 0.3) within one plane above or below it."""
    regions = ndimage.find_objects(labels)
    footprint = {k: (labels == k).any(0) for k in range(1, labels.max() + 1)}
    span = {k: (r[0].start, r[0].stop - 1) for k, r in enumerate(regions, 1)}
    stacked = set()
    for a in footprint:
        for b in footprint:
            if b <= a or (footprint[a] & footprint[b]).sum() < 0.3 * (footprint[a] | footprint[b]).sum():
                continue
            lower, upper = sorted((a, b), key=lambda k: span[k][0])
            if span[upper][0] - span[lower][1] <= 2:  # touching, overlapping or one plane between
                stacked |= {a, b}
    return len(stacked) / labels.max()


def test_nuclei_in_columns_stand_on_each_other_and_the_image_shows_them():
    """columns=True stacks nuclei along Z, each on the next (the real 3D sample's nuclei: 0.9 stacked pairs per
    nucleus, gaps of 0-1 planes); the default placement leaves most nuclei without one directly above or below."""
    image, labels = synth.nuclei_volume(shape=(32, 64, 64), diameter_range=(12, 24), anisotropy=2.0, seed=4,
                                        columns=True, crowding=0.3)
    _check_exact_labels(image, labels)
    _, free = synth.nuclei_volume(shape=(32, 64, 64), diameter_range=(12, 24), anisotropy=2.0, seed=4, crowding=0.3)
    in_columns, placed = _stacked_neighbours(labels), _stacked_neighbours(free)
    assert in_columns >= 0.7 and placed <= 0.5 * in_columns, (in_columns, placed)
    again = synth.nuclei_volume(shape=(32, 64, 64), diameter_range=(12, 24), anisotropy=2.0, seed=4, columns=True,
                                crowding=0.3)
    np.testing.assert_array_equal(again[1], labels)
    assert synth.nuclei_volume(shape=(32, 64, 64), diameter_range=(12, 24), anisotropy=2.0, seed=4, columns=True,
                               crowding=0.3, n=5)[1].max() <= 5


def test_volumes_are_reproducible_and_seeds_differ():
    a = synth.cells_volume(shape=(12, 64, 64), seed=9)
    b = synth.cells_volume(shape=(12, 64, 64), seed=9)
    c = synth.cells_volume(shape=(12, 64, 64), seed=10)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def _axis_spreads(labels):
    """Per label not cut by the volume's border: standard deviation of its voxel coordinates along z, y, x."""
    spreads = []
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        if region is None or any(s.start == 0 or s.stop == n for s, n in zip(region, labels.shape)):
            continue
        coords = np.argwhere(labels[region] == index)
        if len(coords) > 30:
            spreads.append(coords.std(axis=0))
    return np.array(spreads)


@pytest.mark.parametrize("anisotropy", [1.0, 2.5])
def test_anisotropy_squashes_objects_along_z_by_that_factor(anisotropy):
    # spheres (no elongation, no ripples), sparse: in voxels, Z extents are XY extents / anisotropy
    _, labels = synth.nuclei_volume(shape=(40, 128, 128), diameter_range=(14, 20), anisotropy=anisotropy, seed=2,
                                    crowding=0.0, elongation=1.0, irregularity=0.0)
    spreads = _axis_spreads(labels)
    assert len(spreads) >= 5
    ratio = np.median(spreads[:, 0] / spreads[:, 1:].mean(axis=1))
    assert abs(ratio * anisotropy - 1) < 0.12, ratio


def test_volume_sizes_follow_the_requested_range():
    _, labels = synth.nuclei_volume(shape=(32, 96, 96), diameter_range=(10, 16), anisotropy=2.0, seed=1)
    volumes = np.bincount(labels.ravel())[1:] * 2.0  # physical volume of a voxel: 2 x 1 x 1
    diameters = (6 * volumes / np.pi) ** (1 / 3)
    assert 0.7 * 10 < np.median(diameters) < 1.1 * 16


# ---------------------------------------------------------------------------------------------------- movies

def _check_movie(m):
    """Ground-truth invariants a tracking test relies on."""
    tracks, labels = m.tracks, m.labels
    ndim = labels.ndim - 1
    spacing = np.array([m.anisotropy, 1.0, 1.0])
    assert m.images.shape == labels.shape and m.images.dtype == np.float32 and labels.dtype == np.int32
    np.testing.assert_array_equal(tracks["label"], tracks["track_id"])  # label id = track id
    for t in range(len(labels)):
        rows = tracks[tracks["frame"] == t]
        present = np.unique(labels[t])[1:]
        np.testing.assert_array_equal(np.sort(rows["label"]), present)
        centroids = np.array(ndimage.center_of_mass(np.ones(labels[t].shape), labels[t], rows["label"]))
        table = np.stack([rows["z"], rows["y"], rows["x"]], axis=1)[:, 3 - ndim:]
        np.testing.assert_allclose(table, centroids.reshape(len(rows), ndim), atol=1e-9)
        if ndim == 2:
            assert np.all(rows["z"] == 0)
    first, last, parent, position, size, at_border = {}, {}, {}, {}, {}, {}
    for tid in np.unique(tracks["track_id"]):
        rows = tracks[tracks["track_id"] == tid]
        frames = rows["frame"]
        # one track = one unbroken run of frames: an id is never reused by an unrelated cell later
        np.testing.assert_array_equal(frames, np.arange(frames[0], frames[-1] + 1))
        assert len(set(rows["parent"])) == 1
        first[tid], last[tid], parent[tid] = frames[0], frames[-1], rows["parent"][0]
        points = np.stack([rows["z"], rows["y"], rows["x"]], axis=1)[:, 3 - ndim:] * spacing[3 - ndim:]
        position[tid] = points
        cut = []
        for frame in frames:
            mask = labels[frame] == tid
            cut.append(any(mask.take(0, axis=a).any() or mask.take(-1, axis=a).any() for a in range(ndim)))
            size[tid, frame] = mask.sum() * np.prod(spacing[3 - ndim:])
        at_border[tid] = np.array(cut)
        # no teleporting: between consecutive frames a cell (not cut by the border) moves < half a diameter
        for k in range(len(frames) - 1):
            if cut[k] or cut[k + 1]:
                continue
            volume = max(size[tid, frames[k]], size[tid, frames[k + 1]])
            diameter = 2 * np.sqrt(volume / np.pi) if ndim == 2 else (6 * volume / np.pi) ** (1 / 3)
            assert np.linalg.norm(points[k + 1] - points[k]) < 0.5 * diameter, (tid, frames[k])
    complete = 0
    for mother, daughters in m.divisions().items():
        assert len(daughters) <= 2
        for d in daughters:
            assert parent[d] == mother and first[d] == last[mother] + 1
        if len(daughters) < 2 or at_border[mother][-1] or any(at_border[d][0] for d in daughters):
            continue
        complete += 1
        end = position[mother][-1]
        volume = max(size[mother, frame] for frame in range(first[mother], last[mother] + 1))  # least occluded
        diameter = 2 * np.sqrt(volume / np.pi) if ndim == 2 else (6 * volume / np.pi) ** (1 / 3)
        offsets = [position[d][0] - end for d in daughters]
        # daughters appear next to the mother's last position, one on each side of it (their midpoint is near it)
        assert all(np.linalg.norm(o) < 0.5 * diameter for o in offsets)
        assert np.linalg.norm(offsets[0] + offsets[1]) / 2 < 0.3 * diameter
    return complete


def test_movie_2d_tracks_match_labels_and_divisions_are_recorded():
    m = synth.movie(n_frames=12, shape=(128, 160), division_interval=8, seed=3)
    assert m.images.shape == (12, 128, 160)
    assert _check_movie(m) >= 5
    assert len(np.unique(m.tracks["track_id"])) > m.labels[0].max() > 0


def test_movie_3d_cells_tracks_match_labels():
    m = synth.movie(n_frames=6, shape=(16, 64, 64), kind="cells", diameter_range=(10, 16), n_cells=8,
                    anisotropy=2.0, division_interval=4, death_rate=0.05, seed=2)
    assert m.images.shape == (6, 16, 64, 64) and m.anisotropy == 2.0
    assert _check_movie(m) >= 3


def test_movie_is_reproducible_and_cells_move():
    a = synth.movie(n_frames=4, shape=(64, 64), seed=5)
    b = synth.movie(n_frames=4, shape=(64, 64), seed=5)
    c = synth.movie(n_frames=4, shape=(64, 64), seed=6)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.tracks, b.tracks)
    assert not np.array_equal(a.labels, c.labels)
    assert not np.array_equal(a.labels[0], a.labels[-1])
    assert not np.array_equal(a.images[0], a.images[1])  # fresh noise in every frame


def test_tracks_csv(tmp_path):
    m = synth.movie(n_frames=3, shape=(64, 64), seed=2)
    path = m.write_tracks_csv(tmp_path / "tracks.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "track_id,frame,label,z,y,x,parent"
    assert len(lines) == len(m.tracks) + 1
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    np.testing.assert_array_equal(table[:, 0], m.tracks["track_id"])
    np.testing.assert_allclose(table[:, 5], m.tracks["x"], atol=1e-3)


def test_bad_volume_and_movie_arguments_are_named():
    with pytest.raises(InputError, match="anisotropy"):
        synth.nuclei_volume(anisotropy=0)
    with pytest.raises(InputError, match="shape"):
        synth.nuclei_volume(shape=(64, 64))
    with pytest.raises(InputError, match="stain"):
        synth.cells_volume(stain="actin")
    with pytest.raises(InputError, match="kind"):
        synth.movie(kind="bacteria")
    with pytest.raises(InputError, match="drift"):
        synth.movie(shape=(64, 64), drift=(1.0, 0.0, 0.0))


@pytest.mark.parametrize("shape, kwargs", [((128, 128), dict(division_interval=8)),
                                           ((16, 64, 64), dict(n_cells=8, diameter_range=(10, 16), anisotropy=2.0,
                                                               division_interval=5))])
def test_missed_cells_leave_gaps_that_keep_the_track_id(shape, kwargs):
    m = synth.movie(n_frames=14, shape=shape, missed_rate=0.12, max_gap=2, seed=4, **kwargs)
    gaps = m.gaps()
    assert len(gaps) >= 3 and m.divisions()
    assert all(2 <= b - a <= 3 for _, a, b in gaps)  # at most max_gap frames missed
    for tid, a, b in gaps:  # missed in the frames between: absent from the labels and from the images
        assert (m.labels[a] == tid).any() and (m.labels[b] == tid).any()
        for t in range(a + 1, b):
            assert not (m.labels[t] == tid).any()
    for mother, daughters in m.divisions().items():  # never missed just before dividing
        last = m.tracks["frame"][m.tracks["track_id"] == mother].max()
        assert all(m.tracks["frame"][m.tracks["track_id"] == d].min() == last + 1 for d in daughters)
    # no gaps asked for: the movie of the same seed is the one made before gaps existed
    plain = synth.movie(n_frames=5, shape=(64, 64), seed=5)
    np.testing.assert_array_equal(plain.labels, synth.movie(n_frames=5, shape=(64, 64), seed=5,
                                                            missed_rate=0.0).labels)
    assert plain.gaps() == []
    with pytest.raises(InputError, match="missed_rate"):
        synth.movie(n_frames=3, shape=(64, 64), missed_rate=1.0)
    with pytest.raises(InputError, match="max_gap"):
        synth.movie(n_frames=3, shape=(64, 64), missed_rate=0.1, max_gap=0)


def test_ctc_ground_truth_of_a_movie_with_gaps_is_valid_for_py_ctcmetrics(tmp_path):
    pytest.importorskip("ctc_metrics")
    from trackpose.tracking.evaluate import evaluate_ctc, write_ctc_ground_truth
    from trackpose.tracking.export_ctc import mask_name
    m = synth.movie(n_frames=10, shape=(96, 96), division_interval=6, missed_rate=0.15, seed=7)
    labels, rows = m.ctc_ground_truth()
    assert len(rows) == len(np.unique(m.tracks["track_id"])) + len(m.gaps())
    by = {r[0]: r for r in rows}
    for tid, a, b in m.gaps():  # the part after a gap: a new label whose parent is the part before it
        before, after = labels[a][m.labels[a] == tid][0], labels[b][m.labels[b] == tid][0]
        assert after != before and by[after][3] == before and by[before][2] == a and by[after][1] == b
    gt = write_ctc_ground_truth(tmp_path / "gt", labels, rows)
    res = tmp_path / "res"  # the ground truth itself as a result: valid, and every measure perfect
    res.mkdir()
    for t, lab in enumerate(labels):
        tifffile.imwrite(res / mask_name(t, len(labels)), lab)
    (res / "res_track.txt").write_text("".join(f"{a} {b} {c} {d}\n" for a, b, c, d in rows))
    scores = evaluate_ctc(res, gt)
    assert scores["Valid"] == 1 and scores["TRA"] == 1 and scores["LNK"] == 1 and scores["BC(0)"] == 1


def test_sections_of_stacks_are_labelled_by_the_3d_truth_and_reproducible():
    pairs = synth.nuclei_sections(2, seed=7, shape=(12, 48, 48), diameter_range=(8, 14), anisotropy_range=(2, 2),
                                  planes=3, sides=2)
    assert len(pairs) == 2 * (3 + 2)
    again = synth.nuclei_sections(2, seed=7, shape=(12, 48, 48), diameter_range=(8, 14), anisotropy_range=(2, 2),
                                  planes=3, sides=2)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(pairs, again))
    for image, labels in pairs:
        assert image.dtype == np.float32 and labels.dtype == np.int32 and image.shape == labels.shape
        assert image.shape in ((48, 48), (24, 48))  # XY planes; XZ/YZ sections resampled to square pixels (2 x 12)
        ids = np.unique(labels[labels > 0])
        assert np.array_equal(ids, np.arange(1, len(ids) + 1))
        for k in ids:  # each label one connected piece of at least min_area pixels
            own = labels == k
            assert ndimage.label(own)[1] == 1 and own.sum() >= 4
    # the same stack, whole: an XY plane is that plane of the volume and its labels are the volume's, relabelled
    child = np.random.SeedSequence(7).spawn(2)[0]
    rng = np.random.default_rng(child)
    anisotropy = float(np.exp(rng.uniform(np.log(2), np.log(2))))
    volume, truth = synth.nuclei_volume((12, 48, 48), diameter_range=(8, 14), anisotropy=anisotropy,
                                        seed=child.spawn(1)[0])
    z = np.sort(rng.choice(12, 3, replace=False))[0]
    assert np.array_equal(pairs[0][0], volume[z])
    section = pairs[0][1]
    assert ((section > 0) <= (truth[z] > 0)).all()
    for k in np.unique(section[section > 0]):  # a piece of one nucleus
        assert len(np.unique(truth[z][section == k])) == 1
    dropped, count = ndimage.label((truth[z] > 0) & (section == 0))
    assert (np.bincount(dropped.ravel())[1:] < 4).all()  # only pieces under min_area became background
    with pytest.raises(InputError, match="anisotropy_range"):
        synth.nuclei_sections(1, seed=0, anisotropy_range=(0, 2))


def test_sections_resampled_with_a_wrong_z_step_are_squashed_and_carry_the_stacks_diameter():
    kw = dict(shape=(12, 48, 48), diameter_range=(10, 14), anisotropy_range=(2, 2), planes=1, sides=3)
    exact = synth.nuclei_sections(2, seed=7, with_diameter=True, **kw)
    wrong = synth.nuclei_sections(2, seed=7, anisotropy_error=(0.5, 0.5), with_diameter=True, **kw)
    assert len(exact) == len(wrong) == 2 * (1 + 3)
    for (image, labels, d), (image_w, labels_w, d_w) in zip(exact, wrong):
        assert d == d_w and 10 * 0.5 < d < 14  # nuclei cut by the stack's faces make the median a little smaller
        if image.shape == (48, 48):  # XY planes: untouched by the Z step
            assert np.array_equal(image, image_w) and np.array_equal(labels, labels_w)
        else:  # XZ/YZ: 24 rows at the true anisotropy 2, 12 at the given half of it, and the labels squashed along
            assert image.shape == labels.shape == (24, 48) and image_w.shape == labels_w.shape == (12, 48)
            assert abs((labels_w > 0).mean() - (labels > 0).mean()) < 0.05
    # the stack's diameter is its nuclei's median volume-equivalent diameter in XY pixels
    child = np.random.SeedSequence(7).spawn(2)[0]
    _, truth = synth.nuclei_volume((12, 48, 48), diameter_range=(10, 14), anisotropy=2.0, seed=child.spawn(1)[0])
    voxels = np.bincount(truth.ravel())[1:]
    assert exact[0][2] == pytest.approx(np.median(np.cbrt(6 * voxels[voxels > 0] * 2.0 / np.pi)))
    assert exact[0][2] == synth.volume_diameter(truth, 2.0)
    # the default draws nothing more: the pairs are those of the recipe without the new arguments
    plain = synth.nuclei_sections(2, seed=7, **kw)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(plain, exact))
    with pytest.raises(InputError, match="anisotropy_error"):
        synth.nuclei_sections(1, seed=0, anisotropy_error=(1, 0.5))


def test_a_wider_axial_psf_lights_the_planes_above_and_below_nuclei_and_keeps_the_labels():
    kw = dict(shape=(16, 48, 48), diameter_range=(10, 14), anisotropy=2.0, seed=11, crowding=0.0)
    image, labels = synth.nuclei_volume(**kw)
    assert np.array_equal(image, synth.nuclei_volume(**kw, axial_psf=(2, 4))[0])  # the default range
    wide, wide_labels = synth.nuclei_volume(**kw, axial_psf=(7, 8))
    assert np.array_equal(labels, wide_labels)
    # background voxels 1-2 planes above or below a nucleus, against the nuclei and the far background
    inside = labels > 0
    near_z = ndimage.binary_dilation(inside, structure=np.ones((5, 1, 1), bool)) & ~inside
    far = ~ndimage.binary_dilation(inside, iterations=4)

    def contrast(img):
        return (img[near_z].mean() - img[far].mean()) / (img[inside].mean() - img[far].mean())

    assert contrast(wide) > contrast(image) + 0.1
    # sections pass it on: the same cuts and labels, other pixels
    plain = synth.nuclei_sections(1, seed=3, shape=(8, 32, 32), planes=1, sides=1)
    blurred = synth.nuclei_sections(1, seed=3, shape=(8, 32, 32), planes=1, sides=1, axial_psf=(7, 8))
    assert all(np.array_equal(a[1], b[1]) and not np.array_equal(a[0], b[0]) for a, b in zip(plain, blurred))
    with pytest.raises(InputError, match="axial_psf"):
        synth.nuclei_volume(**kw, axial_psf=(4, 2))
    with pytest.raises(InputError, match="axial_psf"):
        synth.nuclei_sections(1, seed=0, axial_psf=(0, 2))
