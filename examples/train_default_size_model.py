"""Fit the size model of trackpose's built-in model (``trackpose_default_size.npy``) on synthetic images, on a CPU.

This script is the exact recipe of the shipped size model (see docs/model-card.md). From the repository root:

    PYTHONPATH=python python examples/train_default_size_model.py              # fit, write, check
    PYTHONPATH=python python examples/train_default_size_model.py --check-only # check the shipped file

The size model maps the network's style vector to the objects' diameter (cellpose's ``SizeModel``,
``trackpose.size_estimation.fit_size_model``): ridge regression of ``log(d) - log(diam_mean)`` on the styles of randomly
cropped and turned training images, its penalty chosen by 5-fold cross-validation. ``--samples`` keeps the
(style, target) samples in an .npz file. The images come from ``trackpose.synth.nuclei_image`` and
``cells_image`` with seeds spawned from 301, disjoint from the model's training (101-107), validation (201-202)
and held-out evaluation (9001-9002) seeds and from the check below (9101-9112) and the tests (9201-9206, 9301,
9501).

The check segments held-out synthetic images whose objects measure about 12, 20 and 35 pixels with
``diameter=0`` and prints the style-only and the refined estimate against the true mask diameter.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

import trackpose
from trackpose import synth
from trackpose.diameter import estimate_diameter
from trackpose.size_estimation import size_samples
from trackpose.size_model import fit_from_samples, load_size_model

#: Training images: N_IMAGES of 256 x 256 pixels from seed SEED, half nuclei, half cells (half of those with a
#: nuclear channel); each image's objects are drawn in a range (c / sqrt(w), c sqrt(w)) around a centre diameter c
#: (log-uniform in DIAMETERS) with a width w (uniform in WIDTHS). Narrow ranges matter: with wide ones only, the
#: fit learned the area-weighted size (large objects fill more of the image) and underestimated uniform images.
N_IMAGES, SEED = 220, 301
DIAMETERS = (7.0, 60.0)
WIDTHS = (1.1, 1.8)
#: The generator makes every size natively, so only a mild resize jitter (0.9-1.1); resizing by 0.5-1.5 as cellpose
#: does also changes the blur and noise texture that the style sees. Each sample is a whole 224-pixel tile
#: (min_crop=1), as the style at inference averages whole tiles: smaller crops (0.7-1, the stage-1 recipe) gave
#: slightly worse estimates on the development images (docs/development-notes.md, "Size model").
SETTINGS = dict(n_epochs=2, scale_range=0.2, min_crop=1.0, seed=0, bsize=224)
#: Held-out check: (kind, seed, target diameter); objects drawn within +-10% of the target.
CHECK = [(kind, 9101 + i, diameter) for i, (kind, diameter) in
         enumerate([(k, d) for k in ("nuclei", "cells") for d in (12, 20, 35)] * 2)]
SHIPPED = Path(__file__).resolve().parents[1] / "python" / "trackpose" / "data" / "trackpose_default_size.npy"


def make_pairs(n_images: int = N_IMAGES):
    """The training images and masks (deterministic in SEED; the first n of a larger set are the smaller set)."""
    images, masks = [], []
    children = np.random.SeedSequence(SEED).spawn(n_images)
    for i, child in enumerate(children):
        draw_seed, image_seed = child.spawn(2)
        rng = np.random.default_rng(draw_seed)
        centre = float(np.exp(rng.uniform(*np.log(DIAMETERS))))
        half_width = float(np.sqrt(rng.uniform(*WIDTHS)))
        kw = {"diameter_range": (max(3.0, centre / half_width), centre * half_width)}
        if i % 2 == 0:
            image, labels = synth.nuclei_image((256, 256), seed=image_seed, **kw)
        else:
            image, labels = synth.cells_image((256, 256), seed=image_seed, nuclear_channel=bool(i % 4 == 1), **kw)
        images.append(image)
        masks.append(labels)
    return images, masks


def check(model):
    print(f"{'image':>14} {'true':>6} {'style':>6} {'refined':>8}  errors")
    errors = []
    for kind, seed, diameter in CHECK:
        image, masks, kw = synth.sized_image(kind, diameter, seed)
        truth = estimate_diameter(masks)
        r = trackpose.segment(image, model=model, diameter=0, **kw)
        e_style, e_refined = r.diameter_style / truth - 1, r.diameter / truth - 1
        errors.append((e_style, e_refined))
        print(f"{kind + ' ' + str(diameter):>14} {truth:6.1f} {r.diameter_style:6.1f} {r.diameter:8.1f}  "
              f"{100 * e_style:+5.1f}% {100 * e_refined:+5.1f}%", flush=True)
    errors = np.abs(np.array(errors))
    print(f"largest error: style {100 * errors[:, 0].max():.1f}%, refined {100 * errors[:, 1].max():.1f}%")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--model", default=trackpose.DEFAULT_MODEL,
                        help="the network whose styles are fitted (default: the built-in model)")
    parser.add_argument("--output", type=Path, default=SHIPPED)
    parser.add_argument("--check-only", action="store_true")
    parser.add_argument("--no-check", action="store_true")
    parser.add_argument("--samples", type=Path, default=None, help="also save the samples (.npz)")
    parser.add_argument("--images", type=int, default=N_IMAGES,
                        help="training images (the recipe's value: %(default)s)")
    parser.add_argument("--epochs", type=int, default=SETTINGS["n_epochs"],
                        help="passes over the images (the recipe's value: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    torch.set_num_threads(args.threads)
    if not args.check_only:
        model = trackpose.load_model(args.model)
        images, masks = make_pairs(args.images)
        t0 = time.perf_counter()
        def report(k, n):
            if k % 50 == 0:
                print(f"{k}/{n} samples", flush=True)
        styles, targets, groups = size_samples(model, images, masks, **{**SETTINGS, "n_epochs": args.epochs},
                                       progress=report)
        if args.samples:
            np.savez(args.samples, styles=styles, targets=targets, groups=groups)
        fitted = fit_from_samples(styles, targets, model.diam_mean, groups=groups)
        fitted.save(args.output)
        print(f"fitted on {len(images)} images in {time.perf_counter() - t0:.0f} s -> {args.output} "
              f"({args.output.stat().st_size} bytes)", flush=True)
    if not args.no_check:
        model = trackpose.load_model(args.model)
        model._size_model = load_size_model(args.output)  # check the file just written, not the shipped one
        check(model)


if __name__ == "__main__":
    main()
