"""End-to-end speed: trackpose.segment vs cellpose 3.1.1.2 CellposeModel.eval on the same weights and image.

Run:  python benchmarks/bench_segment.py [--threads 2] [--sizes 512 2048] [--model FILE]

Both run with the same torch thread count, on the same synthetic image of touching cells, after one warm-up call
each (numba compilation and first-call allocations excluded); trackpose in this process, cellpose in a fresh
child process per repeat (benchmarks/_cellpose_ref.py: trackpose's malloc settings must not speed up the
reference), interleaved. trackpose runs in float32 with its default tile layout (compact) and with cellpose's
(`tiling="cellpose"`, the same tiles as cellpose), and in bfloat16 where the CPU runs it natively. Prints seconds
per call, the speed-ups, the fraction of cellpose's objects matched at IoU 0.5 by each run's (match: float32 /
cellpose tiles / bfloat16), the share of the float32 run spent in the network's forward passes (fwd), the
network's convolution throughput as a share of the machine's plain 3x3-convolution rate in the same precision
(conv%: float32/bfloat16; benchmarks/_speed.py), and the speed-up a float32 run doing only those convolutions at
that rate would reach (x@limit). With no --model, the
built-in model is used when installed, else a CPnet with random weights saved in cellpose's format (speed is
the same; masks are then of a random field, still expected to agree).
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def make_image(size: int, seed: int = 0):
    from helpers import render, touching_discs
    n = int(45 * (size / 256) ** 2)
    masks = touching_discs((size, size), radii=(8, 20), n=n, seed=seed)
    return render(masks, seed=seed), masks


def model_path(arg):
    if arg:
        return Path(arg)
    from trackpose.models import DEFAULT_MODEL, _PACKAGE_DATA
    if (_PACKAGE_DATA / DEFAULT_MODEL).is_file():
        return _PACKAGE_DATA / DEFAULT_MODEL
    from helpers import random_cpnet
    path = Path(tempfile.mkdtemp()) / "random_cp"
    torch.save(random_cpnet().state_dict(), path)
    return path


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 2048])
    ap.add_argument("--model", default=None)
    ap.add_argument("--diameter", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--no-bfloat16", action="store_true", help="skip the bfloat16 runs")
    ap.add_argument("--one-tile", action="store_true", help="also time trackpose with the image as one tile")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import numba
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    import trackpose
    from trackpose.metrics import matched_fraction
    from _cellpose_ref import cellpose_eval
    from _speed import ForwardMeter, precision_limits
    path = model_path(args.model)
    ours = trackpose.load_model(path)
    bf16, limit32, limit16, limits = precision_limits(ours, args.no_bfloat16)
    print(f"model {path.name}; torch {torch.__version__}, {args.threads} threads; diameter {args.diameter}; "
          f"{limits}")
    print("runs: trackpose float32 with its default (compact) tiles and with cellpose's tile layout, trackpose "
          "bfloat16, cellpose 3.1.1.2 (float32); x = speed-up against cellpose")
    print(f"{'image':>11} {'objects':>8} {'tp s':>7} {'cp s':>7} {'x':>6} {'cp-tiles s':>10} {'x':>6} {'bf16 s':>7} "
          f"{'x':>6} {'match':>17} {'fwd':>5} {'conv%':>9} {'x@limit':>8}")
    runs = {"float32": dict(tiling="compact"), "cp-tiles": dict(tiling="cellpose")}
    if bf16:
        runs["bfloat16"] = dict(tiling="compact", bfloat16=True)
    for size in args.sizes:
        img, truth = make_image(size)
        kw = dict(diameter=args.diameter, channels=[0, 0])
        for extra in runs.values():  # warm-up (numba compile, oneDNN primitives, allocations)
            trackpose.segment(img[:256, :256], model=ours, **kw, **extra)
        # interleave the runs so that load from other processes hits all alike; keep the best of each
        t_ours, results, forward, t_theirs = {k: [] for k in runs}, {}, {}, []
        with ForwardMeter(ours) as meter:
            for _ in range(args.repeats):
                for name, extra in runs.items():
                    meter.reset()
                    t, result = best_of(lambda: trackpose.segment(img, model=ours, **kw, **extra), 1)
                    if not t_ours[name] or t < min(t_ours[name]):  # the forward share of the run that is kept
                        results[name], forward[name] = result, (meter.seconds, meter.gflop)
                    t_ours[name].append(t)
                t, cp_masks = cellpose_eval(img, img[:256, :256], path, args.threads, **kw)
                t_theirs.append(t)
        t_cp = min(t_theirs)
        t = {name: min(v) for name, v in t_ours.items()}
        t16 = t.get("bfloat16", float("nan"))
        match = "/".join(f"{matched_fraction(cp_masks, results[n].masks, iou=0.5):.3f}" for n in runs)
        (fwd32, gflop), (fwd16, _) = forward["float32"], forward.get("bfloat16", (float("nan"), 0))
        conv = f"{gflop / fwd32 / limit32:.0%}/" + (f"{gflop / fwd16 / limit16:.0%}" if bf16 else "-")
        print(f"{size:>5}x{size:<5} {results['float32'].n_objects:>8} {t['float32']:>7.2f} {t_cp:>7.2f} "
              f"{t_cp / t['float32']:>5.2f}x {t['cp-tiles']:>10.2f} {t_cp / t['cp-tiles']:>5.2f}x {t16:>7.2f} "
              f"{t_cp / t16:>5.2f}x {match:>17} {fwd32 / t['float32']:>5.0%} {conv:>9} "
              f"{t_cp / (gflop / limit32):>7.2f}x", flush=True)
        if args.one_tile:
            # opt-in: the whole (padded) image as one tile; fewer redundant pixels, slightly different flows
            big = 16 * ((int(size * ours.diam_mean / args.diameter) + 16 + 15) // 16) + 16
            t_one, r_one = best_of(lambda: trackpose.segment(img, model=ours, bsize=big, tiling="cellpose", **kw),
                                   args.repeats)
            print(f"             one tile (bsize {big}): {t_one:.2f}s, {t_cp / t_one:.2f}x vs cellpose, "
                  f"matched@0.5 with cellpose {matched_fraction(cp_masks, r_one.masks):.3f}")


if __name__ == "__main__":
    main()
