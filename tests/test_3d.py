"""3D mode: the three orthogonal network passes and their combination match cellpose's do_3D on identical weights."""
import numpy as np
from scipy import ndimage
import pytest

import trackpose
from trackpose import transforms as T
from trackpose.errors import InputError
from trackpose.segmentation import _network_3d


@pytest.mark.parametrize("rescale,anisotropy,resample", [(1.0, 1.0, True), (0.8, 2.0, True), (1.2, 1.5, False)])
def test_3d_flows_match_cellpose(model_file, rescale, anisotropy, resample):
    cm = pytest.importorskip("cellpose.models")
    ct = pytest.importorskip("cellpose.transforms")
    rng = np.random.default_rng(0)
    vol = rng.random((10, 40, 52)).astype(np.float32)
    cp = cm.CellposeModel(pretrained_model=str(model_file))
    x = ct.normalize_img(ct.convert_image(vol, [0, 0], z_axis=0, do_3D=True, nchan=2), norm3D=True)
    dP, cellprob, _ = cp._run_net(x, rescale=rescale, resample=resample, do_3D=True, anisotropy=anisotropy)
    planes = T.normalize(T.to_planes(vol, (0, 0), z_axis=0, volume=True), per_plane=False)
    m = trackpose.load_model(model_file)
    # cellpose's tiles and padding: the compact tiling drops the slices' 8-pixel margins (same masks, other flows)
    y, _ = _network_3d([m], planes, rescale, anisotropy, resample, dict(bsize=224, tile_overlap=0.1, augment=False,
                                                                        batch_size=8, tiling="cellpose"))
    assert y.shape[1:] == cellprob.shape
    np.testing.assert_allclose(y[3], cellprob, atol=1e-4)
    np.testing.assert_allclose(y[:3], dP, atol=1e-4)


def test_3d_segment_returns_a_labelled_volume(model_file):
    vol = np.random.default_rng(1).random((12, 48, 48)).astype(np.float32)
    r = trackpose.segment(vol, model=model_file, do_3d=True, z_axis=0, diameter=30, anisotropy=1.0)
    assert r.masks.shape == vol.shape and r.flows.shape == (3,) + vol.shape and r.cellprob.shape == vol.shape


def test_3d_mode_without_an_anisotropy_tells_it_from_the_stack_and_says_so(model_file, caplog):
    # noise holds no objects to tell a Z step from, so the estimate falls back to 1, and says that too
    vol = np.random.default_rng(1).random((12, 48, 48)).astype(np.float32)
    with caplog.at_level("WARNING", logger="trackpose"):
        default = trackpose.segment(vol, model=model_file, do_3d=True, z_axis=0, diameter=30)
    messages = [r.getMessage() for r in caplog.records]
    assert any("without an anisotropy" in m and "from the stack's objects" in m and "anisotropy=" in m
               for m in messages)
    assert any("cannot be told" in m for m in messages) and default.anisotropy == 1.0
    caplog.clear()
    with caplog.at_level("WARNING", logger="trackpose"):
        given = trackpose.segment(vol, model=model_file, do_3d=True, z_axis=0, diameter=30, anisotropy=1.0)
    assert not caplog.records and "anisotropy" not in given.timings
    np.testing.assert_array_equal(default.cellprob, given.cellprob)


def test_3d_bad_input_is_explained(model_file):
    with pytest.raises(InputError, match="single plane"):
        trackpose.segment(np.zeros((40, 40)), model=model_file, do_3d=True)
    with pytest.raises(InputError, match="anisotropy"):
        trackpose.segment(np.zeros((8, 40, 40)), model=model_file, do_3d=True, z_axis=0, anisotropy=0)
    with pytest.raises(InputError, match="anisotropy"):
        trackpose.segment(np.zeros((8, 40, 40)), model=model_file, do_3d=True, z_axis=0, anisotropy=1e6)
    with pytest.raises(InputError, match="stitch_threshold"):
        trackpose.segment(np.zeros((8, 40, 40)), model=model_file, stitch_threshold=2)


def _balls(shape=(24, 96, 96), n=14, radius=(7, 10), seed=0):
    """Touching balls in a volume (ground truth) and a blurred, noisy fluorescence rendering of them."""
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[:shape[0], :shape[1], :shape[2]]
    truth = np.zeros(shape, np.int32)
    label = 0
    for _ in range(n * 30):
        if label == n:
            break
        r = rng.uniform(*radius)
        c = [rng.uniform(r * 0.6, s - r * 0.6) for s in shape]
        ball = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= r ** 2
        if (truth[ball] > 0).mean() > 0.1:
            continue
        label += 1
        truth[ball & (truth == 0)] = label
    img = (truth > 0) * rng.uniform(0.6, 1.0, label + 1)[truth]
    img = img * np.clip(ndimage.distance_transform_edt(truth > 0) / 2, 0, 1)
    img = ndimage.gaussian_filter(img.astype(np.float32), 1.0) + rng.normal(0, 0.02, shape)
    return (img * 1000 + 100).astype(np.float32), truth


@pytest.fixture(scope="module")
def builtin_and_cellpose():
    cm = pytest.importorskip("cellpose.models")
    from trackpose.models import DEFAULT_MODEL, _PACKAGE_DATA
    path = _PACKAGE_DATA / DEFAULT_MODEL
    return path, cm.CellposeModel(pretrained_model=str(path))


# stitch_split, stitch_trim and stitch_min_mean_cellprob 0 are cellpose's stitching (the defaults cut chained
# objects: next test)
@pytest.mark.parametrize("mode", [dict(do_3d=True),  # no anisotropy: told from the balls, 1.03 is taken as 1
                                  dict(stitch_threshold=0.25, stitch_split=0.0, stitch_trim=0.0,
                                       stitch_min_mean_cellprob=0.0)])
def test_3d_and_stitched_masks_match_cellpose(builtin_and_cellpose, mode, caplog):
    from trackpose.metrics import average_precision, matched_fraction
    path, cp = builtin_and_cellpose
    vol, truth = _balls()
    cp_kw = {"do_3D": True, "anisotropy": 1.0} if mode.get("do_3d") else {"stitch_threshold": 0.25}
    masks_cp = cp.eval(vol, channels=[0, 0], z_axis=0, diameter=17.0, **cp_kw)[0]
    with caplog.at_level("INFO", logger="trackpose"):
        r = trackpose.segment(vol, model=path, z_axis=0, diameter=17.0, **mode)
    assert r.masks.shape == vol.shape
    assert len(np.unique(masks_cp)) - 1 >= 8
    assert matched_fraction(masks_cp, r.masks, iou=0.5) >= 0.95
    assert average_precision(truth, r.masks)[0][0] >= 0.5  # and they are the balls, not noise
    if mode.get("do_3d"):
        assert r.anisotropy == 1.0 and any("taken as 1" in m.getMessage() for m in caplog.records)


def test_stitching_cuts_the_touching_balls_that_cellpose_stitches_into_one(builtin_and_cellpose):
    from trackpose.metrics import average_precision, matched_fraction
    path, cp = builtin_and_cellpose
    vol, truth = _balls()
    masks_cp = cp.eval(vol, channels=[0, 0], z_axis=0, diameter=17.0, stitch_threshold=0.25)[0]
    masks = trackpose.segment(vol, model=path, z_axis=0, diameter=17.0, stitch_threshold=0.25).masks
    # one pair of balls touching along Z, dimmer where they meet, is one object for cellpose and two here
    assert masks.max() == masks_cp.max() + 1 and matched_fraction(masks_cp, masks, iou=0.5) >= 0.9
    assert average_precision(truth, masks)[0][0] > average_precision(truth, masks_cp)[0][0]


def test_memory_check_allows_the_tutorial_volume_and_refuses_what_cannot_fit(monkeypatch):
    from trackpose import memory
    gib = 2 ** 30
    monkeypatch.setattr(memory, "available_memory", lambda: 22 * gib)  # a 24 GB machine, little else running
    memory.check_memory(86, 1024, 1024, 1.0, 1.0)  # the TrackMate-Cellpose tutorial's 3D volume fits
    memory.check_memory(86, 1024, 1024, 0.5, 2.0)
    with pytest.raises(InputError, match=r"needs about 23\.\d GiB .* smaller anisotropy"):
        memory.check_memory(86, 1024, 1024, 1.0, 4.0)  # Z upsampled 4x for the network
    monkeypatch.setattr(memory, "available_memory", lambda: gib // 5)
    with pytest.raises(InputError, match=r"volume \(20 x 512 x 512\) needs about 0\.3 GiB of memory but 0\.2 GiB"):
        trackpose.segment(np.zeros((20, 512, 512), np.float32), do_3d=True, z_axis=0, diameter=30)


_PEAK_SCRIPT = """
import sys
import numpy as np
from scipy.spatial import cKDTree
from trackpose import dynamics, segmentation

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))

def network_output(shape, n, seed):
    # Voronoi cells filling the whole volume (every voxel in a cell: the dynamics' worst case)
    rng = np.random.default_rng(seed)
    seeds = rng.uniform(0, 1, (n, 3)) * shape
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, 3)
    labels = (cKDTree(seeds).query(grid)[1] + 1).astype(np.int32).reshape(shape)
    y = np.empty((4,) + shape, np.float32)
    y[:3] = 5 * dynamics.masks_to_flows(labels)
    y[3] = 4.0
    return y

kw = dict(niter=200, cellprob_threshold=0.0, min_size=15, max_size=None, max_size_fraction=0.4)
segmentation._masks_3d(network_output((10, 32, 32), 4, 0), (10, 32, 32), **kw)  # compile / load the kernels
shape = tuple(int(a) for a in sys.argv[1:4])
y = network_output(shape, int(sys.argv[4]), 1)
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # VmHWM := VmRSS
masks = segmentation._masks_3d(y, shape, **kw)
print(status("VmHWM") - before + y.nbytes, int(masks.max()))
"""


@pytest.mark.slow
def test_memory_model_covers_the_measured_3d_dynamics_peak():
    # the model check_memory uses must not undercount what the 3D mask reconstruction really holds at its peak
    # (measured as resident memory in a fresh process) nor overcount it grossly
    import os
    import subprocess
    import sys
    from trackpose import memory
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux /proc to measure peak resident memory")
    shape = (40, 192, 192)
    proc = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, *map(str, shape), "60"], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    peak, n_masks = map(int, proc.stdout.split())
    assert n_masks >= 40  # the dynamics really ran and found the cells
    modelled = memory.memory_needed(*shape, 1.0, 1.0)
    assert 0.6 * modelled <= peak <= modelled, (peak / np.prod(shape), modelled / np.prod(shape))


def _radial_flows(grid, centres, radius, width):
    """Network-like 3D output on the network's grid: each voxel flows towards its nearest centre with the summed
    strength of two 2D passes (up to 2 x 5), easing off within ``width`` voxels of the centre as the network's do;
    cell probability +6 within ``radius``, -6 elsewhere."""
    zz, yy, xx = np.mgrid[:grid[0], :grid[1], :grid[2]].astype(np.float32)
    y = np.zeros((4,) + tuple(grid), np.float32)
    y[3] = -6
    nearest = np.full(grid, np.inf, np.float32)
    for c in centres:
        d = np.stack([zz - c[0], yy - c[1], xx - c[2]])
        r = np.sqrt((d ** 2).sum(0))
        mine = r < nearest
        nearest[mine] = r[mine]
        for k in range(3):
            y[k][mine] = (-10 * d[k] / np.sqrt(r ** 2 + width ** 2))[mine]
        y[3][mine & (r <= radius)] = 6
    return y


@pytest.mark.parametrize("anisotropy", [2.0, 4.0])
def test_3d_flows_resampled_to_the_image_are_followed_as_steps_of_the_network_grid(anisotropy):
    # issue 17: balls of 16 px diameter with a Z step 2-4x the pixel size run through the network on a grid 3.75-7.5x
    # finer in Z than the image. The flows are steps of that grid; followed unconverted on the image grid (cellpose's
    # resample), a ball whose centre lies on a plane oscillates about it and is cut in two halves.
    from trackpose.segmentation import _masks_3d, _network_grid_3d, _resize_volume
    r, rescale = 8.0, 30 / 16
    nz = int(2 * r / anisotropy) + 6
    shape = (nz, 24, 96)
    grid = _network_grid_3d(shape, rescale, anisotropy)
    # one ball per 24-px cell, centres from on a plane to three quarters between planes
    centres = [(nz / 2 - 0.5 + dz, 11.5, 11.5 + 24 * k) for k, dz in enumerate((0.0, 0.25, 0.5, 0.75))]
    on_grid = [tuple((p + 0.5) * g / s - 0.5 for p, g, s in zip(c, grid, shape)) for c in centres]
    y = _radial_flows(grid, on_grid, radius=15, width=2)
    y = np.moveaxis(_resize_volume(np.moveaxis(y, 0, -1), shape), -1, 0)  # as _network_3d resamples
    kw = dict(niter=int(200 / rescale), cellprob_threshold=0.0, min_size=15, max_size=None, max_size_fraction=0.4)
    masks = _masks_3d(y.copy(), shape, network_grid=grid, **kw)
    assert masks.max() == len(centres)
    cells = y[3] > 0
    for c in centres:
        ball = (np.abs(np.arange(96) - c[2]) < 12)[None, None, :] & cells
        labels = np.unique(masks[ball])
        assert len(labels) == 1 and labels[0] > 0, (c, np.unique(masks[ball], return_counts=True))
        assert (masks == labels[0]).sum() == ball.sum()  # the whole ball, every voxel of it and nothing else
    # the same flows followed as cellpose does (steps of the network grid taken on the image grid) cut a ball
    assert _masks_3d(y.copy(), shape, **kw).max() > len(centres)


def _anisotropic_balls(shape, centres, r, z_step, seed=0, sub=4):
    """Balls of radius ``r`` px imaged with a Z step of ``z_step`` px: each voxel is 100 + 900 x the fraction of
    it inside a ball (``sub``^3 samples) + noise 15, as a box-integrating camera would see them; the ground truth
    is the voxels at least half inside."""
    offsets = (np.arange(sub) + 0.5) / sub - 0.5
    zz, yy, xx = np.mgrid[:shape[0], :shape[1], :shape[2]].astype(np.float64)
    cover = np.zeros(shape)
    truth = np.zeros(shape, np.int32)
    for label, (cz, cy, cx) in enumerate(centres, 1):
        inside = np.zeros(shape)
        for oz in offsets:
            for oy in offsets:
                for ox in offsets:
                    inside += ((zz + oz - cz) * z_step) ** 2 + (yy + oy - cy) ** 2 + (xx + ox - cx) ** 2 <= r * r
        inside /= sub ** 3
        cover += inside
        truth[inside >= 0.5] = label
    image = 100 + 900 * np.minimum(cover, 1) + np.random.default_rng(seed).normal(0, 15, shape)
    return image.astype(np.float32), truth


@pytest.mark.slow
def test_3d_balls_come_out_whole_at_anisotropy_from_the_calibration():
    # issue 17, as a TrackMate user met it: balls of 8 um diameter, 0.5 um pixels, 1 um Z step (anisotropy 2 from
    # the calibration), 3D mode, the built-in model, default settings. The ball centred on a plane came out as its
    # upper half (0.53 of its volume, centre 1.3 px off): the dynamics followed the flows of a grid 3.75x finer in Z
    # as steps of the image's own planes.
    r, z_step, nz = 8.0, 2.0, 14
    centres = [(nz / 2 - 0.5 + dz, 11.7, 11.6 + 24 * k) for k, dz in enumerate((0.0, 0.5))]  # on / between planes
    image, truth = _anisotropic_balls((nz, 24, 48), centres, r, z_step, seed=3)
    result = trackpose.segment(image, z_axis=0, do_3d=True, anisotropy=z_step, diameter=2 * r)
    masks = result.masks
    assert masks.max() == len(centres)
    ball_volume = 4 / 3 * np.pi * r ** 3 / z_step  # voxels
    for label, c in enumerate(centres, 1):
        under = masks[truth == label]
        found = np.unique(under[under > 0])
        # one mask, not halves: the ball's voxels lie in a single mask, bar a few of its outermost (the stage-9
        # model's tighter masks leave 2 of 1,071 at the cap of the ball between planes to the background)
        assert len(found) == 1 and (under == found[0]).mean() > 0.98, (c, np.unique(under, return_counts=True))
        voxels = np.argwhere(masks == found[0])
        # issue 17: within 5 % (measured with the built-in model of stage 9: +2.0 to +2.8 % on such balls; the
        # planes of a ball's caps, a quarter to a half inside it, are counted in)
        assert 0.95 * ball_volume <= len(voxels) <= 1.05 * ball_volume, (c, len(voxels) / ball_volume)
        offset = voxels.mean(0) - np.array(c)
        assert np.abs(offset).max() < 0.25, (c, offset)  # a quarter of a voxel along each axis


def test_stitching_cuts_nuclei_chained_through_the_light_between_layers():
    from trackpose import synth
    from trackpose.metrics import average_precision
    image, truth = synth.nuclei_volume((24, 96, 96), diameter_range=(12, 24), anisotropy=2.0, seed=9101)
    kw = dict(z_axis=0, diameter=synth.volume_diameter(truth, 2.0), stitch_threshold=0.25,
              stitch_min_mean_cellprob=0.0)
    cache = {}
    plain = trackpose.segment(image, stitch_split=0.0, stitch_trim=0.0, network_cache=cache, **kw)
    split = trackpose.segment(image, stitch_trim=0.0, network_cache=cache, **kw)
    default = trackpose.segment(image, network_cache=cache, **kw)  # cut at valleys, dim ends trimmed
    ap_plain, ap_split, ap_default = (average_precision(truth, r.masks)[0] for r in (plain, split, default))
    assert split.masks.max() > plain.masks.max() and ap_split[0] >= ap_plain[0] + 0.2, (ap_plain, ap_split)
    assert np.array_equal(split.masks > 0, plain.masks > 0)  # cut, not trimmed
    # trimming removes planes only, at objects' ends, and outlines the nuclei better along Z
    assert not np.any((default.masks > 0) & ~(split.masks > 0)) and (default.masks > 0).sum() < (split.masks > 0).sum()
    assert ap_default[0] >= ap_split[0] and ap_default[1] >= ap_split[1] + 0.1, (ap_split, ap_default)


def test_3d_mode_removes_faint_objects_and_leaves_the_others_as_they_were():
    """min_mean_cellprob (default 2): objects whose mean summed logit is below it go, the others keep every voxel;
    on a crowded generated stack the faint ones were mostly false (AP@0.5 0.60 -> 0.68 when measured)."""
    from trackpose import synth
    from trackpose.metrics import average_precision
    image, truth = synth.nuclei_volume((24, 96, 96), diameter_range=(12, 24), anisotropy=2.0, seed=9100)
    kw = dict(z_axis=0, do_3d=True, anisotropy=2.0, diameter=synth.volume_diameter(truth, 2.0))
    cache = {}
    off = trackpose.segment(image, min_mean_cellprob=0.0, network_cache=cache, **kw)  # cellpose's 3D mode
    default = trackpose.segment(image, network_cache=cache, **kw)
    # resample on: the logits are on the masks' grid
    _assert_faint_ones_removed(off.masks, default.masks, off.cellprob, 2.0, max_fraction=1 / 3)
    ap_off, ap_default = average_precision(truth, off.masks)[0], average_precision(truth, default.masks)[0]
    assert ap_default[0] >= ap_off[0] + 0.04, (ap_off, ap_default)


def _assert_faint_ones_removed(off: np.ndarray, on: np.ndarray, cellprob: np.ndarray, threshold: float,
                               max_fraction: float) -> np.ndarray:
    """``on`` holds ``off``'s objects whose mean ``cellprob`` is at least ``threshold``, voxel for voxel, renumbered;
    at least one and at most ``max_fraction`` of them were removed. Returns the removed labels of ``off``."""
    ids = np.arange(1, off.max() + 1)
    means = ndimage.mean(cellprob, off, ids)
    faint = ids[means < threshold]
    assert 0 < len(faint) <= len(ids) * max_fraction, means
    kept = np.where(np.isin(off, faint), 0, off)
    assert on.max() == len(ids) - len(faint)
    np.testing.assert_array_equal(on > 0, kept > 0)
    assert len(np.unique(np.stack([on[kept > 0], kept[kept > 0]]), axis=1).T) == on.max()
    return faint


def test_stitching_removes_faint_objects_which_were_false_and_leaves_the_others_as_they_were():
    """stitch_min_mean_cellprob (default 1): stitched objects whose mean logit is below it go, the others keep
    every voxel; on this crowded generated stack every one removed was a false positive (3 of 88, AP@0.5 0.682 ->
    0.702 when measured; on others it also takes real nuclei: the means are in docs/engine.md). With resample off
    the logits are at the network's scale, resized to the masks' for the check."""
    from trackpose import synth
    from trackpose.metrics import average_precision, matched_fraction
    image, truth = synth.nuclei_volume((24, 96, 96), diameter_range=(12, 24), anisotropy=2.0, seed=9102)
    kw = dict(z_axis=0, stitch_threshold=0.25, diameter=synth.volume_diameter(truth, 2.0))
    cache = {}
    off = trackpose.segment(image, stitch_min_mean_cellprob=0.0, network_cache=cache, **kw)
    default = trackpose.segment(image, network_cache=cache, **kw)
    faint = _assert_faint_ones_removed(off.masks, default.masks, off.cellprob, 1.0, max_fraction=0.2)
    for label in faint:  # none of them is a nucleus
        assert matched_fraction(np.where(off.masks == label, 1, 0), truth, iou=0.5) == 0.0, label
    ap_off, ap_default = average_precision(truth, off.masks)[0], average_precision(truth, default.masks)[0]
    assert ap_default[0] > ap_off[0], (ap_off, ap_default)

    # resample off, on a stack without faint objects at 1 (a higher value shows the grids agree)
    image, truth = synth.nuclei_volume((24, 96, 96), diameter_range=(12, 24), anisotropy=2.0, seed=9101)
    kw = dict(kw, diameter=synth.volume_diameter(truth, 2.0))
    cache = {}
    off = trackpose.segment(image, stitch_min_mean_cellprob=0.0, network_cache=cache, resample=False, **kw)
    on = trackpose.segment(image, stitch_min_mean_cellprob=2.5, network_cache=cache, resample=False, **kw)
    assert off.cellprob.shape[1:] != image.shape[1:]  # the network's scale
    _assert_faint_ones_removed(off.masks, on.masks, T.resize_planes(off.cellprob, *image.shape[1:]), 2.5,
                               max_fraction=0.5)


def test_3d_compact_tiling_pads_thin_slices_less_and_keeps_the_masks(monkeypatch):
    """3D mode with the compact tiling pads the ZX and ZY slices to a multiple of 16 only (cellpose adds 8 pixels of
    zeros on each side): those of an 8-plane stack (14 rows at the network's scale) go through as 16 rows, not 32,
    and the masks are those of cellpose's padding."""
    from trackpose import inference
    from trackpose.metrics import average_precision, matched_fraction
    vol, truth = _balls((24, 128, 128), n=20, seed=5)
    vol, truth = vol[8:16], truth[8:16]
    original = inference._forward
    for tiling in ("cellpose", "compact"):
        seen = []
        monkeypatch.setattr(inference, "_forward", lambda m, b, bf=False: seen.append(b.shape) or original(m, b, bf))
        r = trackpose.segment(vol, z_axis=0, diameter=17.0, do_3d=True, anisotropy=1.0, tiling=tiling)
        rows = {s[2] for s in seen}
        pixels = sum(int(np.prod(s)) for s in seen)
        if tiling == "cellpose":
            masks_cp, pixels_cp = r.masks, pixels
            assert 32 in rows
        else:
            assert 16 in rows and 32 not in rows, rows
    assert pixels < 0.7 * pixels_cp
    assert masks_cp.max() >= 8
    assert matched_fraction(masks_cp, r.masks) >= 0.95 and matched_fraction(r.masks, masks_cp) >= 0.95
    assert average_precision(truth, r.masks)[0][0] >= average_precision(truth, masks_cp)[0][0] - 0.02


def test_3d_mode_tells_the_z_step_from_the_stack_when_it_is_not_given(caplog):
    """No anisotropy, as anisotropy="auto": a 2D + Z pass, then XY diameter / planes spanned per object (median).
    On a generated stack with a Z step of 2 the estimate is within 25 % (measured 2.24), 3D mode runs with it (the
    same masks as when it is given), and it finds the nuclei better than cellpose's 1 (AP@0.5 0.85 against 0.69
    measured)."""
    from trackpose import synth
    from trackpose.metrics import average_precision
    image, truth = synth.nuclei_volume((24, 96, 96), diameter_range=(12, 24), anisotropy=2.0, seed=9102)
    kw = dict(z_axis=0, do_3d=True, diameter=synth.volume_diameter(truth, 2.0))
    with caplog.at_level("INFO", logger="trackpose"):
        auto = trackpose.segment(image, **kw)  # left out: told from the stack, as anisotropy="auto"
    assert auto.anisotropy == pytest.approx(2.0, rel=0.25) and "anisotropy" in auto.timings
    assert any("estimated anisotropy" in r.getMessage() for r in caplog.records)
    assert any("without an anisotropy" in r.getMessage() for r in caplog.records)
    given = trackpose.segment(image, anisotropy=auto.anisotropy, **kw)
    assert given.anisotropy == auto.anisotropy and np.array_equal(given.masks, auto.masks)
    as_one = trackpose.segment(image, anisotropy=1.0, **kw)
    assert as_one.anisotropy == 1.0
    assert average_precision(truth, auto.masks)[0][0] > average_precision(truth, as_one.masks)[0][0] + 0.1
    with pytest.raises(InputError, match="auto"):
        trackpose.segment(image, anisotropy="calibration", **kw)


def test_auto_anisotropy_takes_1_and_says_so_when_no_object_spans_two_planes(caplog):
    blank = np.zeros((4, 48, 48), np.float32)
    blank[1, 10:20, 10:20] = 1.0  # one square on one plane: nothing to tell a Z step from
    with caplog.at_level("WARNING", logger="trackpose"):
        r = trackpose.segment(blank, z_axis=0, do_3d=True, diameter=10, anisotropy="auto")
    assert r.anisotropy == 1.0
    assert any("cannot be told" in r.getMessage() and "anisotropy=" in r.getMessage() for r in caplog.records)
