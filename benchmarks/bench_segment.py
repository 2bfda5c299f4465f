"""End-to-end speed: trackpose.segment vs cellpose 3.1.1.2 CellposeModel.eval on the same weights and image.

Run:  python benchmarks/bench_segment.py [--threads 2] [--sizes 512 2048] [--model FILE]

Both run with the same torch thread count, on the same synthetic image of touching cells, after one warm-up call
each (numba compilation and first-call allocations excluded); trackpose in this process, cellpose in a fresh
child process per repeat (benchmarks/_cellpose_ref.py: trackpose's malloc settings must not speed up the
reference), interleaved. trackpose runs twice: with its default tile layout (compact) and with cellpose's
(`tiling="cellpose"`, the same tiles as cellpose). Prints seconds per call, the
speed-up, and the fraction of objects matched at IoU 0.5 between the two mask images. With no --model, the
built-in model is used when installed, else a CPnet with random weights saved in cellpose's format (speed is
the same; masks are then of a random field, still expected to agree).
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
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
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    ap.add_argument("--model", default=None)
    ap.add_argument("--diameter", type=float, default=30.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--one-tile", action="store_true", help="also time trackpose with the image as one tile")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import numba
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    import trackpose
    from trackpose.metrics import matched_fraction
    from _cellpose_ref import cellpose_eval
    path = model_path(args.model)
    ours = trackpose.load_model(path)
    print(f"model {path}; torch {torch.__version__}, {args.threads} threads; diameter {args.diameter}")
    print(f"{'image':>11} {'tiling':>9} {'objects':>8} {'trackpose s':>12} {'cellpose s':>11} {'speed-up':>9} "
          f"{'matched@0.5':>12}")
    for size in args.sizes:
        img, truth = make_image(size)
        kw = dict(diameter=args.diameter, channels=[0, 0])
        trackpose.segment(img[:256, :256], model=ours, **kw)  # warm-up (numba compile, allocations)
        # interleave the two so that load from other processes hits both alike; keep the best of each
        tilings = ("compact", "cellpose")
        t_ours, results, t_theirs = {k: [] for k in tilings}, {}, []
        for _ in range(args.repeats):
            for tiling in tilings:
                t, results[tiling] = best_of(lambda: trackpose.segment(img, model=ours, tiling=tiling, **kw), 1)
                t_ours[tiling].append(t)
            t, cp_masks = cellpose_eval(img, img[:256, :256], path, args.threads, **kw)
            t_theirs.append(t)
        t_theirs = min(t_theirs)
        for tiling in tilings:
            r, t = results[tiling], min(t_ours[tiling])
            agree = matched_fraction(cp_masks, r.masks, iou=0.5)
            print(f"{size:>5}x{size:<5} {tiling:>9} {r.n_objects:>8} {t:>12.2f} {t_theirs:>11.2f} "
                  f"{t_theirs / t:>8.2f}x {agree:>12.3f}")
            print("             trackpose steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in r.timings.items()))
        if args.one_tile:
            # opt-in: the whole (padded) image as one tile; fewer redundant pixels, slightly different flows
            big = 16 * ((int(size * ours.diam_mean / args.diameter) + 16 + 15) // 16) + 16
            t_one, r_one = best_of(lambda: trackpose.segment(img, model=ours, bsize=big, tiling="cellpose", **kw),
                                   args.repeats)
            print(f"             one tile (bsize {big}): {t_one:.2f}s, {t_theirs / t_one:.2f}x vs cellpose, "
                  f"matched@0.5 with cellpose {matched_fraction(cp_masks, r_one.masks):.3f}")

if __name__ == "__main__":
    main()
