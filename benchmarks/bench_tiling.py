"""Tile layouts compared: trackpose's compact tiling (the default) vs cellpose's layout, same engine and model.

Run:  python benchmarks/bench_tiling.py [--n 10] [--size 256 512] [--threads 2]

For each held-out synthetic set (the built-in model's held-out recipe: nuclei seed 9001, cells seed 9002, which its
training never saw) and image size, segments every image at the true diameter of its masks with
``tiling="compact"`` and ``tiling="cellpose"`` and prints, per layout: AP@0.5 and AP@0.75 against the truth
(mean over images), seconds, and the fraction of each image's objects matched one for one at IoU 0.5 between
the two layouts (mean and worst image).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10, help="images per set and size")
    ap.add_argument("--size", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import trackpose
    from evaluate_default_model import HELD_OUT
    from trackpose import synth
    from trackpose.metrics import average_precision, matched_fraction
    from trackpose.train import mask_diameter
    model = trackpose.load_model(trackpose.DEFAULT_MODEL)
    trackpose.segment(np.random.default_rng(0).random((64, 64)), model=model, diameter=30)  # warm-up (numba)
    print(f"built-in model, {args.n} images per row, {args.threads} threads")
    print(f"{'set':>7} {'size':>5} {'tiling':>9} {'AP@0.5':>7} {'AP@0.75':>8} {'seconds':>8} {'matched (min)':>14}")
    for size in args.size:
        for name, kind, seed, kwargs in HELD_OUT:
            scores = {"compact": [], "cellpose": []}
            seconds = {"compact": 0.0, "cellpose": 0.0}
            matched = []
            for image, masks in synth.dataset(args.n, kind, seed=seed, shape=(size, size), **kwargs):
                kw = dict(model=model, diameter=mask_diameter(masks))
                if image.ndim == 3:
                    kw.update(channels=(1, 2), channel_axis=0)
                out = {}
                for tiling in scores:
                    t = time.perf_counter()
                    out[tiling] = trackpose.segment(image, tiling=tiling, **kw).masks
                    seconds[tiling] += time.perf_counter() - t
                    scores[tiling].append(average_precision(masks, out[tiling], thresholds=(0.5, 0.75))[0])
                matched.append(matched_fraction(out["cellpose"], out["compact"]))
            for tiling, s in scores.items():
                s = np.array(s)
                m = f"{np.mean(matched):.3f} ({np.min(matched):.3f})" if tiling == "compact" else ""
                print(f"{name:>7} {size:>5} {tiling:>9} {s[:, 0].mean():>7.3f} {s[:, 1].mean():>8.3f} "
                      f"{seconds[tiling]:>8.1f} {m:>14}", flush=True)


if __name__ == "__main__":
    main()
