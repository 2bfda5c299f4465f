"""Tiled network inference: identical to cellpose's run_net on the same weights."""
import numpy as np
import pytest

import trackpose
from trackpose import transforms as T
from trackpose.inference import run_network


@pytest.mark.parametrize("rescale,augment", [(1.0, False), (0.7, False), (1.3, True)])
def test_tiled_output_matches_cellpose(model_file, rescale, augment):
    core = pytest.importorskip("cellpose.core")
    ct = pytest.importorskip("cellpose.transforms")
    cm = pytest.importorskip("cellpose.models")
    rng = np.random.default_rng(0)
    img = rng.random((260, 330)).astype(np.float32)
    cp = cm.CellposeModel(pretrained_model=str(model_file))
    x = ct.normalize_img(ct.convert_image(img, [0, 0], nchan=2)[None])
    y_cp, s_cp = core.run_net(cp.net, x, augment=augment, rsz=rescale if rescale != 1 else None)
    planes = T.normalize(T.to_planes(img, (0, 0)))
    y, s = run_network([trackpose.load_model(model_file)], planes, rescale=rescale, augment=augment)
    assert y.shape == (1, 3) + y_cp.shape[1:3]
    # bilinear resizing differs from OpenCV's by float rounding (~1e-6 of the values' scale)
    np.testing.assert_allclose(y.transpose(0, 2, 3, 1), y_cp, atol=2e-5 * max(1.0, np.abs(y_cp).max()))
    np.testing.assert_allclose(s, s_cp.reshape(s.shape), atol=1e-5)


def test_batching_and_ensembles(model_file):
    m = trackpose.load_model(model_file)
    planes = T.normalize(T.to_planes(np.random.default_rng(1).random((3, 300, 250)), (0, 0), z_axis=0))
    y1, _ = run_network([m], planes, batch_size=1)
    y8, _ = run_network([m], planes, batch_size=8)
    np.testing.assert_allclose(y1, y8, atol=1e-5)
    calls = []
    y2, _ = run_network([m, m], planes, progress=lambda d, t: calls.append((d, t)))
    np.testing.assert_allclose(y2, y8, atol=1e-5)  # the average of two identical models is the model
    assert calls[-1][0] == calls[-1][1] > 0
