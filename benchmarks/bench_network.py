"""Throughput of the network forward pass (GFLOP/s, share of time in convolutions, share of the machine's plain
3x3-convolution rate measured in the same run), and what torch.compile adds.

Run:  python benchmarks/bench_network.py [--threads 2] [--batch 8] [--tile 224] [--compile]

Counts the multiply-adds of every convolution of the built-in model's inference network (batch-norms folded,
channels-last: what `segment` runs) for one batch of tiles, times the forward pass (best of --repeats) with glibc's
default malloc settings and then inside trackpose's heap-reuse block (as ``run_network`` runs it), and prints
the achieved GFLOP/s and the share of time spent in convolutions (torch profiler). With --compile it also times the
same network under torch.compile (inductor, frozen weights) in the same process, interleaved with eager runs, and
prints the compile time and the largest output difference.
"""
import argparse
import time

import torch


def conv_share(net, x) -> float:
    from torch.profiler import ProfilerActivity, profile
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        net(x)
    rows = prof.key_averages()
    total = sum(r.self_cpu_time_total for r in rows)
    conv = sum(r.self_cpu_time_total for r in rows if "convolution" in r.key)
    return conv / total if total else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tile", type=int, default=224)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (needs a C++ compiler)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from trackpose.models import load_model
    net = load_model().inference_net
    x = torch.randn(args.batch, 2, args.tile, args.tile).contiguous(memory_format=torch.channels_last)
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _speed import best_time, conv_gflop, conv_limit
    flops = conv_gflop(net, tuple(x.shape)) * 1e9
    limit = conv_limit(torch.float32)
    from trackpose import malloc
    with torch.inference_mode():
        net(x)  # first call creates the oneDNN primitives
        plain = best_time(lambda: net(x), args.repeats, warm_up=False)  # glibc defaults: before any heap-reuse block
        with malloc.reuse_large_buffers():  # as run_network does
            eager = best_time(lambda: net(x), args.repeats, warm_up=False)
    with malloc.reuse_large_buffers():
        share = conv_share(net, x)
    print(f"{args.batch} tiles of {args.tile}^2, {args.threads} threads: {flops / 1e9:.0f} GFLOP of convolutions")
    print(f"forward without heap reuse (glibc defaults) {plain:.3f} s; with it (what segment runs) {eager:.3f} s: "
          f"{plain / eager:.2f}x" + ("" if malloc._glibc() else " (no glibc: reuse is a no-op here)"))
    print(f"eager forward {eager:.3f} s = {flops / eager / 1e9:.0f} GFLOP/s overall; convolutions {share:.0%} of the "
          f"time, i.e. {flops / (eager * share) / 1e9:.0f} GFLOP/s inside them")
    print(f"plain 3x3 convolutions on this machine: {limit:.0f} GFLOP/s; the network runs at "
          f"{flops / eager / 1e9 / limit:.0%} of that")
    if args.compile:
        import torch._inductor.config as inductor_config
        inductor_config.freezing = True
        with torch.inference_mode():
            ref = net(x)[0]
            t = time.perf_counter()
            compiled = torch.compile(net)
            out = compiled(x)[0]
            compile_s = time.perf_counter() - t
            ratios = []
            for _ in range(args.repeats):
                a = best_time(lambda: net(x), 1, warm_up=False)
                b = best_time(lambda: compiled(x), 1, warm_up=False)
                ratios.append(a / b)
        print(f"torch.compile: {compile_s:.1f} s to compile (first call), max |difference| "
              f"{(out - ref).abs().max().item():.1e}, eager/compiled per run: "
              + ", ".join(f"{r:.2f}" for r in ratios))


if __name__ == "__main__":
    main()
