"""CPnet: cellpose's file layout, outputs, and the inference-time batch-norm folding."""
import numpy as np
import pytest
import torch

from trackpose.net import CPnet, fuse_for_inference
from helpers import random_cpnet


def test_state_dict_layout_matches_cellpose_files():
    sd = CPnet().state_dict()
    assert len(sd) == 313
    assert sum(v.numel() for k, v in sd.items() if "num_batches" not in k and "running" not in k
               and not k.startswith("diam")) == pytest.approx(6.6e6, rel=0.01)
    assert sd["upsample.up.res_up_0.proj.1.weight"].shape == (32, 64, 1, 1)
    assert sd["upsample.up.res_up_3.conv.conv_2.full.weight"].shape == (256, 256)
    assert sd["output.2.weight"].shape == (3, 32, 1, 1)
    assert sd["downsample.down.res_down_0.conv.conv_0.0.running_mean"].shape == (2,)
    assert sd["diam_mean"].shape == (1,) and sd["diam_labels"].shape == (1,)


def test_outputs_and_style_are_normalised():
    net = random_cpnet()
    with torch.no_grad():
        y, style = net(torch.randn(2, 2, 64, 96))
    assert y.shape == (2, 3, 64, 96) and style.shape == (2, 256)
    assert torch.allclose((style ** 2).sum(1), torch.ones(2), atol=1e-5)


def test_folded_network_matches_original():
    net = random_cpnet(seed=3)
    fused = fuse_for_inference(net)
    x = torch.randn(3, 2, 112, 144)
    with torch.no_grad():
        y0, s0 = net(x)
        y1, s1 = fused(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(y0, y1, atol=1e-5, rtol=1e-4)
    assert torch.allclose(s0, s1, atol=1e-6)
    # the original is untouched (folding works on a copy)
    assert any(isinstance(m, torch.nn.BatchNorm2d) and m.running_var.max() > 1.01 for m in net.modules())


def test_cellpose_network_gives_identical_outputs(model_file):
    resnet = pytest.importorskip("cellpose.resnet_torch")
    theirs = resnet.CPnet([2, 32, 64, 128, 256], 3, sz=3, mkldnn=False, max_pool=True)
    theirs.load_state_dict(torch.load(model_file, weights_only=True))
    theirs.eval()
    import trackpose
    ours = trackpose.load_model(model_file).net
    x = torch.randn(2, 2, 224, 224)
    with torch.no_grad():
        y_theirs, s_theirs = theirs(x)[:2]
        y_ours, s_ours = ours(x)
    np.testing.assert_allclose(y_ours.numpy(), y_theirs.numpy(), atol=1e-5)
    np.testing.assert_allclose(s_ours.numpy(), s_theirs.numpy(), atol=1e-6)


def test_fused_convolutions_give_the_plain_ops_result():
    # the inference network runs each convolution with the ReLU or residual addition after it as one oneDNN op
    # (float32, CPU); switched off, the same modules run the plain ops: both must give the same outputs
    import platform
    from trackpose import net as N
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert N._onednn_pointwise_works()  # every x86 torch wheel has oneDNN: the fast path must be on there
    fused = fuse_for_inference(random_cpnet(seed=4))
    convs = [m for m in fused.modules() if isinstance(m, N._FusedConv)]
    assert len(convs) == 8 * 4 - 4  # four per down block, four per up block but conv_2 (its add is per image)
    x = torch.randn(2, 2, 80, 128).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        y1, s1 = fused(x)
        for m in convs:
            m.onednn = False
        y0, s0 = fused(x)
    assert torch.allclose(y0, y1, atol=1e-5, rtol=1e-5)
    assert torch.allclose(s0, s1, atol=1e-6)
