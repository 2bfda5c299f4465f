"""Time average precision on 10,000 labels against cellpose 3.1.1.2's ``metrics.average_precision``.

10,000 squares of 10 x 10 pixels in a 1000 x 1000 image, predicted one pixel off (IoU 9/11 each): the case that
a dense IoU matrix (10,001 x 10,001) would make slow and large.

    PYTHONPATH=python python benchmarks/bench_metrics.py [--repeats 5] [--no-cellpose]

Prints the best time of each, the ratio, and whether both give the same numbers. cellpose is timed only when it
is importable in this environment.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def best_of(repeats, fn):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-cellpose", action="store_true", help="time trackpose only")
    args = parser.parse_args()
    from trackpose.metrics import average_precision
    rows, cols = np.indices((1000, 1000))
    truth = ((rows // 10) * 100 + cols // 10 + 1).astype(np.int32)
    prediction = np.roll(truth, 1, axis=1)
    average_precision(truth, prediction)  # compile / warm up
    ours, (ap, tp, _, _) = best_of(args.repeats, lambda: average_precision(truth, prediction))
    print(f"trackpose: {ours:.3f} s for 10,000 labels (AP@0.5 {ap[0]:.3f}, {int(tp[0])} true positives)")
    if args.no_cellpose:
        return
    try:
        from cellpose import metrics as cellpose_metrics
    except ImportError:
        print("cellpose is not importable here: install the test extras to compare")
        return
    theirs, (ap_c, _, _, _) = best_of(max(1, args.repeats // 2),
                                     lambda: cellpose_metrics.average_precision(truth, prediction))
    same = np.allclose(ap, ap_c)
    print(f"cellpose:  {theirs:.3f} s   speed-up {theirs / ours:.1f}x   same AP: {same}")


if __name__ == "__main__":
    main()
