"""Accuracy of a model on a held-out synthetic set (seeds the training never used): prints AP@0.5 and AP@0.75.

    PYTHONPATH=python python examples/evaluate_default_model.py                 # the built-in model
    PYTHONPATH=python python examples/evaluate_default_model.py --model PATH --n 10

Each image is segmented with ``trackpose.segment`` at the true diameter of its masks (as cellpose's published
benchmarks do; the diameter is not estimated here), with default settings otherwise. Nuclei images use
``channels=(0, 0)``; cell images with a nuclear channel use ``channels=(1, 2)`` (cytoplasm, nuclei). AP is
``TP / (TP + FP + FN)`` per image (``trackpose.metrics.average_precision``), averaged over images.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import trackpose
from trackpose import synth
from trackpose.metrics import average_precision
from trackpose.train import mask_diameter

#: Held-out recipe: (name, kind, seed, generator keyword arguments). Training used seeds 101-107 and 201-202.
HELD_OUT = [
    ("nuclei", "nuclei", 9001, {"diameter_range": (12, 30)}),
    ("cells", "cells", 9002, {"diameter_range": (20, 50), "nuclear_channel_fraction": 0.5}),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=trackpose.DEFAULT_MODEL)
    parser.add_argument("--n", type=int, default=20, help="images per kind")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tiling", default="compact", choices=("compact", "cellpose"),
                        help="tile layout (default: compact, the engine's default)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = trackpose.load_model(args.model)
    print(f"model {model.name} ({model.path}), diam_mean {model.diam_mean:.1f}, diam_labels {model.diam_labels:.1f}, "
          f"{args.tiling} tiling")
    overall = []
    for name, kind, seed, kwargs in HELD_OUT:
        scores = []
        t0 = time.perf_counter()
        for image, masks in synth.dataset(args.n, kind, seed=seed, **kwargs):
            if image.ndim == 3:
                result = trackpose.segment(image, model=model, channels=(1, 2), channel_axis=0,
                                           diameter=mask_diameter(masks), tiling=args.tiling)
            else:
                result = trackpose.segment(image, model=model, diameter=mask_diameter(masks), tiling=args.tiling)
            scores.append(average_precision(masks, result.masks, thresholds=(0.5, 0.75))[0])
        scores = np.array(scores)
        overall.append(scores)
        print(f"{name:7s} n={len(scores):3d}  AP@0.5 {scores[:, 0].mean():.3f}  AP@0.75 {scores[:, 1].mean():.3f}"
              f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    both = np.concatenate(overall)
    print(f"all     n={len(both):3d}  AP@0.5 {both[:, 0].mean():.3f}  AP@0.75 {both[:, 1].mean():.3f}")


if __name__ == "__main__":
    main()
