"""Time 2D + Z stitching against cellpose 3.1.1.2's ``utils.stitch3D`` on the same per-plane masks.

Builds a stack of per-plane label images the way per-plane segmentation produces them: ellipsoids cut into
discs, each plane's labels numbered 1..n in random order and the disc centres jittered by up to a pixel from
plane to plane. Both stitchers get the same input (cellpose works on a copy, in place); the first trackpose call
(numba compilation or cache loading) is timed separately.

    PYTHONPATH=python python benchmarks/bench_stitch.py [--planes 30] [--size 1024] [--per-plane 2000]

Prints seconds, speed-up, and agreement: whether the label images are identical, else the fraction of
cellpose's objects matched one-to-one at IoU >= 0.5.
"""

from __future__ import annotations

import argparse
import os
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="numba / BLAS threads (default 2)")
    parser.add_argument("--planes", type=int, default=30, help="number of Z planes (default 30)")
    parser.add_argument("--size", type=int, default=1024, help="plane side in pixels (default 1024)")
    parser.add_argument("--per-plane", type=int, default=2000, help="objects per plane, about (default 2000)")
    parser.add_argument("--threshold", type=float, default=0.25, help="stitch threshold (default 0.25)")
    parser.add_argument("--no-cellpose", action="store_true", help="time trackpose only")
    return parser.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

from trackpose.stitch import stitch_masks  # noqa: E402


def plane_masks(planes, size, per_plane, seed=0):
    """int32 (planes, size, size): per-plane labels of ellipsoids (radius 6..14 px in XY, 2..6 planes in Z)."""
    rng = np.random.default_rng(seed)
    n_objects = int(per_plane * planes / (2 * 4.0))  # each object crosses ~2 * 4 planes
    centre = rng.uniform([0, 0, 0], [planes, size, size], (n_objects, 3))
    radius = rng.uniform(6, 14, n_objects)
    z_radius = rng.uniform(2, 6, n_objects)
    masks = np.zeros((planes, size, size), np.int32)
    for z in range(planes):
        dz = (z - centre[:, 0]) / z_radius
        crossing = np.flatnonzero(np.abs(dz) < 1)
        ids = rng.permutation(len(crossing)) + 1
        for k, label in zip(crossing, ids):
            r = radius[k] * np.sqrt(1 - dz[k] ** 2)
            cy, cx = centre[k, 1:] + rng.uniform(-1, 1, 2)
            y0, y1 = max(0, int(cy - r)), min(size, int(cy + r) + 2)
            x0, x1 = max(0, int(cx - r)), min(size, int(cx + r) + 2)
            if y1 <= y0 or x1 <= x0:
                continue
            yy, xx = np.ogrid[y0:y1, x0:x1]
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            masks[z, y0:y1, x0:x1][inside] = label
        # labels painted over completely leave gaps: renumber 1..n keeping the random order
        present = np.zeros(len(crossing) + 1, bool)
        present[np.unique(masks[z])] = True
        present[0] = False
        lut = np.zeros(len(crossing) + 1, np.int32)
        lut[present] = np.arange(1, present.sum() + 1)
        masks[z] = lut[masks[z]]
    return masks


def matched_fraction(reference, result):
    """Fraction of reference objects with a one-to-one IoU >= 0.5 partner in result."""
    from trackpose.metrics import average_precision
    ap, tp, fp, fn = average_precision(reference, result, thresholds=(0.5,))
    return float(tp[0]) / max(1, float(tp[0] + fn[0]))


def main():
    masks = plane_masks(ARGS.planes, ARGS.size, ARGS.per_plane)
    counts = [int(plane.max()) for plane in masks]
    print(f"threads {ARGS.threads}; stack {masks.shape}, {np.mean(counts):.0f} masks per plane "
          f"({min(counts)}..{max(counts)}), threshold {ARGS.threshold}")
    t0 = time.perf_counter()
    stitch_masks(masks[:2], ARGS.threshold)
    print(f"trackpose first call (compile / cache load): {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    ours = stitch_masks(masks, ARGS.threshold)
    ours_s = time.perf_counter() - t0
    print(f"trackpose stitch_masks:  {ours_s:8.3f} s   {ours.max()} objects")
    if ARGS.no_cellpose:
        return
    from cellpose.utils import stitch3D
    import logging
    logging.disable(logging.WARNING)
    reference_input = masks.copy()
    t0 = time.perf_counter()
    reference = stitch3D(reference_input, ARGS.threshold)
    theirs_s = time.perf_counter() - t0
    print(f"cellpose utils.stitch3D: {theirs_s:8.3f} s   {len(np.unique(reference)) - 1} objects")
    print(f"speed-up: {theirs_s / ours_s:.1f}x")
    if np.array_equal(ours, reference):
        print("agreement: identical label images")
    else:
        print(f"agreement: {matched_fraction(reference, ours):.2%} of cellpose's objects matched at IoU >= 0.5")


if __name__ == "__main__":
    main()
