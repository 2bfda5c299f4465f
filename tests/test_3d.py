"""3D mode: the three orthogonal network passes and their combination match cellpose's do_3D on identical weights."""
import numpy as np
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
    y, _ = _network_3d([m], planes, rescale, anisotropy, resample, dict(bsize=224, tile_overlap=0.1,
                                                                          augment=False, batch_size=8))
    assert y.shape[1:] == cellprob.shape
    np.testing.assert_allclose(y[3], cellprob, atol=1e-4)
    np.testing.assert_allclose(y[:3], dP, atol=1e-4)


def test_3d_segment_returns_a_labelled_volume(model_file):
    vol = np.random.default_rng(1).random((12, 48, 48)).astype(np.float32)
    r = trackpose.segment(vol, model=model_file, do_3d=True, z_axis=0, diameter=30, anisotropy=1.0)
    assert r.masks.shape == vol.shape and r.flows.shape == (3,) + vol.shape and r.cellprob.shape == vol.shape


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


@pytest.mark.parametrize("mode", [dict(do_3d=True, anisotropy=1.0), dict(stitch_threshold=0.25)])
def test_3d_and_stitched_masks_match_cellpose(builtin_and_cellpose, mode):
    from trackpose.metrics import average_precision, matched_fraction
    path, cp = builtin_and_cellpose
    vol, truth = _balls()
    cp_kw = {"do_3D": True, "anisotropy": 1.0} if mode.get("do_3d") else {"stitch_threshold": 0.25}
    masks_cp = cp.eval(vol, channels=[0, 0], z_axis=0, diameter=17.0, **cp_kw)[0]
    r = trackpose.segment(vol, model=path, z_axis=0, diameter=17.0, **mode)
    assert r.masks.shape == vol.shape
    assert len(np.unique(masks_cp)) - 1 >= 8
    assert matched_fraction(masks_cp, r.masks, iou=0.5) >= 0.95
    assert average_precision(truth, r.masks)[0][0] >= 0.5  # and they are the balls, not noise


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
