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
