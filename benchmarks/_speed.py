"""Where a segmentation's time goes, against what the machine can do: shared by bench_segment.py and bench_3d.py.

    limit = conv_limit(torch.float32)           # plain 3x3 convolutions, GFLOP/s, measured now
    with ForwardMeter(model) as meter:           # records every forward pass of trackpose's network
        trackpose.segment(...)
    meter.seconds, meter.gflop, meter.pixels     # time inside the passes, their convolution work, tile pixels

``conv_limit`` times single 3x3 convolutions at the network's own layer shapes (channels 32 to 256, halving the
side as the channels double, channels-last, batch 8) and returns the fastest rate: the machine's plain-convolution
throughput, the ceiling for a network made of such convolutions. The meter wraps ``trackpose.inference._forward``
(the one call that runs the network on a batch of tiles) to time it and counts the convolutions' multiply-adds of
each batch shape once, with forward hooks on the same network.
"""
from __future__ import annotations

import time

import torch

#: (channels, side) of the network's 3x3 convolutions, level by level
LAYER_SHAPES = ((32, 224), (64, 112), (128, 56), (256, 28))


def best_time(fn, repeats: int, warm_up: bool = True) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``fn`` (after one untimed call unless ``warm_up`` is off)."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def conv_limit(dtype=torch.float32, repeats: int = 5, batch: int = 8) -> float:
    """GFLOP/s of the fastest plain 3x3 convolution (same padding) among the network's layer shapes."""
    from trackpose import malloc
    best = 0.0
    with torch.inference_mode(), malloc.reuse_large_buffers():
        for channels, side in LAYER_SHAPES:
            conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(memory_format=torch.channels_last)
            x = torch.randn(batch, channels, side, side).contiguous(memory_format=torch.channels_last)
            if dtype != torch.float32:
                conv, x = conv.to(dtype), x.to(dtype)
            seconds = best_time(lambda: conv(x), repeats)
            best = max(best, 2.0 * batch * side * side * channels * channels * 9 / seconds / 1e9)
    return best


def conv_gflop(net, shape) -> float:
    """GFLOP of the convolutions of one forward pass of ``net`` on a float32 batch of ``shape`` (N, C, Y, X)."""
    total = [0]

    def hook(module, inputs, output):
        w = module.weight
        total[0] += output.numel() * w.shape[1] * w.shape[2] * w.shape[3]

    from trackpose.net import _FusedConv
    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    fused = [m for m in net.modules() if isinstance(m, _FusedConv) and m.onednn]
    for m in fused:  # the fused oneDNN ops bypass the Conv2d modules (and their hooks): count on the plain path
        m.onednn = False
    try:
        with torch.inference_mode():
            net(torch.zeros(shape).contiguous(memory_format=torch.channels_last))
    finally:
        for h in handles:
            h.remove()
        for m in fused:
            m.onednn = True
    return 2.0 * total[0] / 1e9


class ForwardMeter:
    """Context manager timing trackpose's network passes; ``seconds``, ``gflop``, ``pixels`` and ``calls`` add up
    over every segmentation run inside it."""

    def __init__(self, model):
        self.net = model.inference_net
        self._per_tile = {}
        self._shapes = {}
        self.seconds = 0.0

    def __enter__(self):
        from trackpose import inference
        self._inference, self._original = inference, inference._forward

        def timed(model, batch, bfloat16=False):
            t = time.perf_counter()
            out = self._original(model, batch, bfloat16)
            self.seconds += time.perf_counter() - t
            self._shapes[batch.shape] = self._shapes.get(batch.shape, 0) + 1
            return out

        inference._forward = timed
        return self

    def __exit__(self, *exc):
        self._inference._forward = self._original
        return False

    @property
    def calls(self) -> int:
        return sum(self._shapes.values())

    @property
    def pixels(self) -> int:
        return sum(k * n * y * x for (n, c, y, x), k in self._shapes.items())

    @property
    def gflop(self) -> float:
        """Convolution work of the recorded passes (counted after the runs, so that counting costs them nothing)."""
        total = 0.0
        for (n, c, y, x), k in self._shapes.items():
            if (c, y, x) not in self._per_tile:
                self._per_tile[(c, y, x)] = conv_gflop(self.net, (1, c, y, x))
            total += k * n * self._per_tile[(c, y, x)]
        return total

    def reset(self):
        self._shapes = {}
        self.seconds = 0.0


def precision_limits(model, skip_bfloat16: bool = False):
    """(bfloat16 runs here, float32 plain-conv GFLOP/s, bfloat16 GFLOP/s or nan, a line for a benchmark's header)."""
    from trackpose.inference import bfloat16_support
    bf16 = not skip_bfloat16 and bfloat16_support(model.device) is None
    limit32 = conv_limit(torch.float32)
    limit16 = conv_limit(torch.bfloat16) if bf16 else float("nan")
    line = f"plain 3x3 convolutions: {limit32:.0f} GFLOP/s float32" + (
        f", {limit16:.0f} bfloat16" if bf16 else " (no native bfloat16 here)")
    return bf16, limit32, limit16, line
