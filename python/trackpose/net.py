"""CPnet: the residual U-Net with a style vector that cellpose v2/v3 weight files describe.

Module and parameter names follow the cellpose file layout exactly (``downsample.down.res_down_0.conv.conv_0.0.weight``
and so on), so ``load_state_dict`` takes cellpose files as they are. Every convolution block is *pre-activation*:
BatchNorm -> ReLU -> Conv.

For inference, :func:`fuse_for_inference` returns a copy in which every batch-norm whose input is the output of a
single convolution is folded into that convolution (exact in floating point up to rounding), each convolution
followed only by a ReLU or by a residual addition runs fused with it (one oneDNN operation on the CPU), the network
is put in ``channels_last`` memory format, and gradients are off.
"""
from __future__ import annotations

import copy

import torch
from torch import nn
import torch.nn.functional as F

NBASE = (2, 32, 64, 128, 256)
STYLE_CHANNELS = 256


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.05)


def batchconv(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    """BatchNorm -> ReLU -> Conv (indices 0, 1, 2 as in cellpose files)."""
    return nn.Sequential(_bn(in_channels), nn.ReLU(inplace=True),
                         nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2))


def batchconv0(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    """BatchNorm -> Conv without activation (indices 0, 1)."""
    return nn.Sequential(_bn(in_channels), nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2))


class ResDown(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Sequential()
        self.proj = batchconv0(in_channels, out_channels, 1)
        for t in range(4):
            self.conv.add_module(f"conv_{t}", batchconv(in_channels if t == 0 else out_channels, out_channels, kernel))

    def forward(self, x):
        x = self.proj(x) + self.conv[1](self.conv[0](x))
        return x + self.conv[3](self.conv[2](x))


class Encoder(nn.Module):
    def __init__(self, nbase, kernel: int = 3):
        super().__init__()
        self.down = nn.Sequential()
        for n in range(len(nbase) - 1):
            self.down.add_module(f"res_down_{n}", ResDown(nbase[n], nbase[n + 1], kernel))

    def forward(self, x):
        features = []
        for n, block in enumerate(self.down):
            if n > 0:
                x = F.max_pool2d(features[-1], 2, 2)
            features.append(block(x))
        return features


class BatchConvStyle(nn.Module):
    """Add an optional skip input and a per-channel projection of the style, then BatchNorm -> ReLU -> Conv."""

    def __init__(self, in_channels: int, out_channels: int, style_channels: int, kernel: int = 3):
        super().__init__()
        self.conv = batchconv(in_channels, out_channels, kernel)
        self.full = nn.Linear(style_channels, out_channels)

    def forward(self, style, x, y=None):
        if y is not None:
            x = x + y
        x = x + self.full(style)[:, :, None, None]
        return self.conv(x)


class ResUp(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, style_channels: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Sequential()
        self.conv.add_module("conv_0", batchconv(in_channels, out_channels, kernel))
        for t in (1, 2, 3):
            self.conv.add_module(f"conv_{t}", BatchConvStyle(out_channels, out_channels, style_channels, kernel))
        self.proj = batchconv0(in_channels, out_channels, 1)

    def forward(self, x, y, style):
        x = self.proj(x) + self.conv[1](style, self.conv[0](x), y=y)
        return x + self.conv[3](style, self.conv[2](style, x))


class Decoder(nn.Module):
    def __init__(self, nbaseup, style_channels: int, kernel: int = 3):
        super().__init__()
        self.up = nn.Sequential()
        for n in range(1, len(nbaseup)):
            self.up.add_module(f"res_up_{n - 1}", ResUp(nbaseup[n], nbaseup[n - 1], style_channels, kernel))

    def forward(self, style, features):
        x = self.up[-1](features[-1], features[-1], style)
        for n in range(len(self.up) - 2, -1, -1):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = self.up[n](x, features[n], style)
        return x


def make_style(features: torch.Tensor) -> torch.Tensor:
    """Global average pool of the deepest feature map, L2-normalised: (B, 256, h, w) -> (B, 256)."""
    style = features.mean(dim=(2, 3))
    return style / torch.sqrt((style ** 2).sum(dim=1, keepdim=True))


class CPnet(nn.Module):
    """Cellpose v2/v3 network.

    Parameters
    ----------
    nbase : sequence of int
        Channel widths, input first; cellpose files use ``(2, 32, 64, 128, 256)``.
    nout : int
        Output channels (3: dY, dX, cell-probability logit).
    kernel : int
        Convolution kernel size (3).
    diam_mean : float
        Mean object diameter (pixels) the network was trained at; stored in the file as a buffer.

    ``forward(x)`` takes (B, nbase[0], H, W) with H and W multiples of 16 and returns ``(y, style)``:
    y is (B, nout, H, W), style is (B, 256).
    """

    def __init__(self, nbase=NBASE, nout: int = 3, kernel: int = 3, diam_mean: float = 30.0):
        super().__init__()
        self.nbase = tuple(nbase)
        self.nout = nout
        nbaseup = list(nbase[1:]) + [nbase[-1]]
        self.downsample = Encoder(self.nbase, kernel)
        self.upsample = Decoder(nbaseup, nbase[-1], kernel)
        self.output = batchconv(nbaseup[0], nout, 1)
        # Parameters (not buffers) in cellpose; requires_grad off. Either way they are state-dict entries.
        self.diam_mean = nn.Parameter(torch.full((1,), float(diam_mean)), requires_grad=False)
        self.diam_labels = nn.Parameter(torch.full((1,), float(diam_mean)), requires_grad=False)

    def forward(self, x):
        features = self.downsample(x)
        style = make_style(features[-1])
        y = self.output(self.upsample(style, features))
        return y, style


# ----------------------------------------------------------------------------------------------------------------
# Inference-time folding of batch-norm into the convolution that feeds it.

def _bn_affine(bn: nn.BatchNorm2d):
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    return scale, shift


def _fold_into_previous(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> torch.Tensor:
    """conv -> bn becomes conv' with bn's affine applied to conv's output channels; returns bn's scale."""
    scale, shift = _bn_affine(bn)
    conv.weight.data.mul_(scale[:, None, None, None])
    bias = conv.bias.data if conv.bias is not None else torch.zeros_like(scale)
    conv.bias = nn.Parameter(bias * scale + shift, requires_grad=False)
    return scale


def _fold_into_next(bn: nn.BatchNorm2d, conv: nn.Conv2d) -> None:
    """bn -> 1x1 conv becomes conv' (exact: a 1x1 convolution has no zero padding for the shift to miss)."""
    scale, shift = _bn_affine(bn)
    w = conv.weight.data
    bias = conv.bias.data if conv.bias is not None else torch.zeros(w.shape[0])
    conv.bias = nn.Parameter(bias + (w[:, :, 0, 0] * shift[None, :]).sum(1), requires_grad=False)
    w.mul_(scale[None, :, None, None])


class _Identity(nn.Module):
    def forward(self, x):
        return x


class _FusedStyleConv(nn.Module):
    """Inference form of :class:`BatchConvStyle` whose batch-norm is not folded: ``relu(s x + (s p + t))`` with
    ``p`` the style projection, in two passes over the feature map instead of three."""

    def __init__(self, block: BatchConvStyle):
        super().__init__()
        scale, shift = _bn_affine(block.conv[0])
        self.register_buffer("scale", scale[None, :, None, None].contiguous())
        self.full = nn.Linear(block.full.in_features, block.full.out_features)
        self.full.weight.data.copy_(block.full.weight.data * scale[:, None])
        self.full.bias.data.copy_(block.full.bias.data * scale + shift)
        self.conv = block.conv[2]

    def activate(self, style, x):
        """relu(s x + (s p + t)): the batch-norm, the style term and the ReLU in front of the convolution
        (:class:`_FusedResUp` runs the convolution, fused with the addition after it)."""
        return torch.addcmul(self.full(style)[:, :, None, None], x, self.scale).relu_()


# ----------------------------------------------------------------------------------------------------------------
# Inference-time fusion of a convolution with the ReLU or the residual addition that follows it (oneDNN post-ops).

def _onednn_pointwise_works() -> bool:
    """Whether this torch has oneDNN's fused convolution ops (``mkldnn._convolution_pointwise``) and they agree
    with the plain ops on a small case: the fused forms below are used only then."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        op = torch.ops.mkldnn._convolution_pointwise
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2, 4, 8, 8, generator=g).contiguous(memory_format=torch.channels_last)
        other = torch.randn(2, 4, 8, 8, generator=g).contiguous(memory_format=torch.channels_last)
        w = torch.randn(4, 4, 3, 3, generator=g).contiguous(memory_format=torch.channels_last)
        b = torch.randn(4, generator=g)
        with torch.inference_mode():
            plain = F.conv2d(x, w, b, padding=1)
            relu = op(x, w, b, [1, 1], [1, 1], [1, 1], 1, "relu", [], "")
            added = op.binary(x, other, w, b, [1, 1], [1, 1], [1, 1], 1, "add", None, None, [], None)
        return bool(torch.allclose(relu, plain.relu(), atol=1e-5) and torch.allclose(added, plain + other, atol=1e-5))
    except (AttributeError, RuntimeError):
        return False


class _FusedConv(nn.Module):
    """A convolution whose output goes through a ReLU (``unary="relu"``) or gets a tensor added (``add=...``) in
    the same pass over memory, where oneDNN can (float32 on the CPU, no autocast); elsewhere the plain ops, with
    the same result."""

    def __init__(self, conv: nn.Conv2d, relu: bool = False, onednn: bool = True):
        super().__init__()
        self.conv = conv
        self.relu = relu
        self.onednn = onednn
        self.args = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)

    def _fusable(self, x: torch.Tensor) -> bool:
        return (self.onednn and x.device.type == "cpu" and x.dtype == torch.float32
                and self.conv.weight.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
                and not torch.is_grad_enabled())

    def forward(self, x, add=None):
        if self._fusable(x):
            op = torch.ops.mkldnn._convolution_pointwise
            if add is not None:
                return op.binary(x.contiguous(memory_format=torch.channels_last),
                                 add.contiguous(memory_format=torch.channels_last), self.conv.weight,
                                 self.conv.bias, *self.args, "add", None, None, [], None)
            if self.relu:
                return op(x.contiguous(memory_format=torch.channels_last), self.conv.weight, self.conv.bias,
                          *self.args, "relu", [], "")
        y = self.conv(x)
        if add is not None:
            return y + add
        return y.relu_() if self.relu else y


class _FusedResDown(nn.Module):
    """Inference form of a folded :class:`ResDown`: ``h = relu(conv_0(...))`` and ``conv_1(h) + proj(x)`` (and the
    same for conv_2, conv_3) each in one pass."""

    def __init__(self, block: ResDown, onednn: bool):
        super().__init__()
        self.pre0 = nn.Sequential(block.conv[0][0], block.conv[0][1])  # batch-norm of the block input, ReLU
        self.pre2 = nn.Sequential(block.conv[2][0], block.conv[2][1])
        self.conv0 = _FusedConv(block.conv[0][2], relu=True, onednn=onednn)
        self.conv1 = _FusedConv(block.conv[1][2], onednn=onednn)
        self.conv2 = _FusedConv(block.conv[2][2], relu=True, onednn=onednn)
        self.conv3 = _FusedConv(block.conv[3][2], onednn=onednn)
        self.proj = block.proj[1]

    def forward(self, x):
        x = self.conv1(self.conv0(self.pre0(x)), add=self.proj(x))
        return self.conv3(self.conv2(self.pre2(x)), add=x)


class _FusedResUp(nn.Module):
    """Inference form of a folded :class:`ResUp`: the skip addition after conv_0 and the residual additions after
    conv_1 and conv_3 happen inside those convolutions."""

    def __init__(self, block: ResUp, onednn: bool):
        super().__init__()
        self.pre0 = nn.Sequential(block.conv[0][0], block.conv[0][1])
        self.conv0 = _FusedConv(block.conv[0][2], onednn=onednn)
        self.style1, self.style2 = block.conv[1], block.conv[2]  # _FusedStyleConv: style term, ReLU; their convs:
        self.conv1 = _FusedConv(self.style1.conv, onednn=onednn)
        self.conv2 = self.style2.conv
        self.full3 = block.conv[3].full
        self.conv3 = _FusedConv(block.conv[3].conv[2], onednn=onednn)
        self.proj = block.proj[1]

    def forward(self, x, y, style):
        h = self.conv1(self.style1.activate(style, self.conv0(self.pre0(x), add=y)), add=self.proj(x))
        g = self.conv2(self.style2.activate(style, h))
        return self.conv3((g + self.full3(style)[:, :, None, None]).relu_(), add=h)


def fuse_for_inference(net: CPnet) -> CPnet:
    """Return an inference copy of ``net`` with batch-norms folded where exact, channels-last, eval mode.

    Folding is exact only where a batch-norm's sole input is one convolution's output: inside each residual
    block, conv_0 feeds only conv_1's batch-norm (down blocks) and conv_2 feeds only conv_3's batch-norm
    (down and up blocks; in up blocks the style projection added before that batch-norm is scaled
    too). Those batch-norms become identities. The batch-norm in front of each 1x1 projection folds into that
    convolution (no padding, so exact too). The remaining batch-norms of the up blocks (input: a sum with the skip
    features and the style projection) are applied with the style term in one pass (:class:`_FusedStyleConv`).
    The outputs match the unfolded network to float32 rounding (tested).
    """
    fused = copy.deepcopy(net).eval()
    for block in fused.downsample.down:
        for src, dst in ((0, 1), (2, 3)):
            _fold_into_previous(block.conv[src][2], block.conv[dst][0])
            block.conv[dst][0] = _Identity()
    for block in fused.upsample.up:
        # conv_3 adds the style projection before its batch-norm: scale that projection too.
        scale = _fold_into_previous(block.conv[2].conv[2], block.conv[3].conv[0])
        block.conv[3].full.weight.data.mul_(scale[:, None])
        block.conv[3].full.bias.data.mul_(scale)
        block.conv[3].conv[0] = _Identity()
        for t in (1, 2):
            block.conv[t] = _FusedStyleConv(block.conv[t])
    for block in list(fused.downsample.down) + list(fused.upsample.up):
        _fold_into_next(block.proj[0], block.proj[1])
        block.proj[0] = _Identity()
    onednn = _onednn_pointwise_works()
    for n, block in enumerate(fused.downsample.down):
        fused.downsample.down[n] = _FusedResDown(block, onednn)
    for n, block in enumerate(fused.upsample.up):
        fused.upsample.up[n] = _FusedResUp(block, onednn)
    for p in fused.parameters():  # after the rebuild: _FusedStyleConv makes new Linear layers
        p.requires_grad_(False)
    return fused.to(memory_format=torch.channels_last)
