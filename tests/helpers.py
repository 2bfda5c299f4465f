"""Helpers shared by the tests: model networks with random weights in cellpose's format and synthetic label
images with exact ground truth (nothing is downloaded)."""
import numpy as np
import torch

from trackpose.net import CPnet


def random_cpnet(seed: int = 0, diam_mean: float = 30.0) -> CPnet:
    """A CPnet with random weights and non-trivial batch-norm statistics (so folding is really exercised)."""
    torch.manual_seed(seed)
    net = CPnet(diam_mean=diam_mean)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.2)
    return net.eval()


def touching_discs(shape=(256, 256), radii=(6, 25), n=40, seed=0):
    """Label image of non-overlapping but touching discs/ellipses of several sizes (ground truth)."""
    rng = np.random.default_rng(seed)
    masks = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    label = 0
    for _ in range(n * 20):
        if label >= n:
            break
        r = rng.uniform(*radii)
        cy, cx = rng.uniform(r, shape[0] - r), rng.uniform(r, shape[1] - r)
        a, b = r * rng.uniform(0.8, 1.2), r * rng.uniform(0.8, 1.2)
        inside = ((yy - cy) / a) ** 2 + ((xx - cx) / b) ** 2 <= 1
        if (masks[inside] > 0).mean() > 0.15 if inside.any() else True:
            continue
        label += 1
        masks[inside & (masks == 0)] = label
    return masks


def render(masks, seed=0):
    """A fluorescence-like image of the masks: bright blobs, darker borders, blur and noise."""
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    img = np.zeros(masks.shape, np.float32)
    for lab in range(1, masks.max() + 1):
        img[masks == lab] = rng.uniform(0.5, 1.0)
    edt = ndimage.distance_transform_edt(masks > 0)
    img *= np.clip(edt / 3, 0, 1)
    img = ndimage.gaussian_filter(img, 1.0)
    img += rng.normal(0, 0.03, img.shape).astype(np.float32)
    return (img * 1000 + 100).astype(np.float32)
