"""Tiled network inference: identical to cellpose's run_net on the same weights with cellpose's tile layout; the
compact layout keeps the masks with fewer pixels through the network."""
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
    y, s = run_network([trackpose.load_model(model_file)], planes, rescale=rescale, augment=augment,
                       tiling="cellpose")
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


def test_compact_tiling_runs_an_image_up_to_twice_bsize_as_one_tile(model_file):
    """A 300 x 330 image pads to 320 x 352: one tile, so the output is one forward pass over the padded image."""
    import torch
    m = trackpose.load_model(model_file)
    planes = T.normalize(T.to_planes(np.random.default_rng(2).random((300, 330)).astype(np.float32), (0, 0)))
    tiles = []
    y, s = run_network([m], planes, progress=lambda done, total: tiles.append(total))
    assert tiles == [1]
    pt, pb, pl, pr = T.pad_to_16(300, 330)
    x = np.pad(planes[0].transpose(2, 0, 1), ((0, 0), (pt, pb), (pl, pr)))[None]
    with torch.inference_mode():
        y_ref, s_ref = m.inference_net(torch.from_numpy(x))
    np.testing.assert_allclose(y[0], y_ref[0, :, pt:pt + 300, pl:pl + 330].numpy(), atol=1e-4)
    np.testing.assert_allclose(s[0], s_ref[0].numpy() / np.linalg.norm(s_ref[0].numpy()), atol=1e-5)


def test_compact_tiling_keeps_the_masks_of_cellpose_tiling():
    """The built-in model on 512 x 512 touching nuclei: 4 tiles of 288^2 instead of 9 of 224^2 (1.6x fewer pixels);
    the masks match cellpose's layout one for one and score as well against the truth."""
    from trackpose import synth
    from trackpose.metrics import average_precision, matched_fraction
    image, truth = synth.nuclei_image((512, 512), seed=9401, diameter_range=(24, 34))
    counts, results = {}, {}
    for tiling in ("cellpose", "compact"):
        calls = []
        results[tiling] = trackpose.segment(image, diameter=30, tiling=tiling,
                                            progress=lambda done, total: calls.append(total))
        counts[tiling] = calls[-1]
    assert counts == {"cellpose": 9, "compact": 4}
    a, b = results["cellpose"].masks, results["compact"].masks
    assert a.max() > 100
    assert matched_fraction(a, b) >= 0.98 and matched_fraction(b, a) >= 0.98
    ap_a, ap_b = (average_precision(truth, m, thresholds=(0.5, 0.75))[0] for m in (a, b))
    assert np.all(ap_b >= ap_a - 0.02), (ap_a, ap_b)
