"""Time trackpose's dynamics against cellpose 3.1.1.2's CPU dynamics on the same input, same process.

Builds an image of ~1000 touching cells (a Voronoi tessellation of random seeds, cut to a radius so there is
background between clusters), computes its exact flows, and times each step after a warm-up call (numba
compilation or cache loading is timed separately). Both libraries get the same thread count.

    PYTHONPATH=python python benchmarks/bench_dynamics.py [--threads 2] [--size 1024] [--large]

Columns: trackpose and cellpose seconds (best of --repeats), speed-up, and agreement = fraction of
cellpose's objects matched one-to-one by a trackpose object at IoU >= 0.5.
"""

from __future__ import annotations

import argparse
import os
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch and numba threads (default 2)")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels (default 1024)")
    parser.add_argument("--cells", type=int, default=None, help="number of cells (default ~1000 per 1024^2)")
    parser.add_argument("--large", action="store_true", help="also run a 2048 x 2048 image")
    parser.add_argument("--repeats", type=int, default=1, help="timed repeats per step, best is reported")
    parser.add_argument("--noise", type=float, default=0.0, help="std of Gaussian noise added to dP (network scale)")
    return parser.parse_args()


ARGS = parse_args()
# thread counts must be fixed before numpy/torch/numba start their pools
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import numba  # noqa: E402
from scipy import ndimage  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from trackpose import dynamics  # noqa: E402
from trackpose.masks import fill_holes_and_remove_small_masks, flow_error, renumber  # noqa: E402


def voronoi_cells(size, n_cells, seed=0):
    """int32 (size, size) labels: Voronoi regions of random seeds, limited to 0.75 x the mean spacing."""
    rng = np.random.default_rng(seed)
    seeds = rng.uniform(0, size, (n_cells, 2))
    spacing = size / np.sqrt(n_cells)
    grid = np.stack(np.mgrid[:size, :size], -1).reshape(-1, 2).astype(np.float64)
    dist, nearest = cKDTree(seeds).query(grid, workers=ARGS.threads)
    labels = np.where(dist < 0.75 * spacing, nearest + 1, 0).reshape(size, size).astype(np.int32)
    # keep each cell's largest piece (clipping can cut a region in two)
    out = np.zeros_like(labels)
    for lab, box in enumerate(ndimage.find_objects(labels), 1):
        if box is None:
            continue
        pieces, n = ndimage.label(labels[box] == lab)
        if n == 0:
            continue
        largest = pieces == 1 + np.bincount(pieces.ravel())[1:].argmax()
        out[box][largest] = lab
    return renumber(out)


def matched_fraction(reference, other, threshold=0.5):
    """Fraction of reference objects with an object of ``other`` at IoU >= threshold (unique at >= 0.5)."""
    ref = reference.astype(np.int64).ravel()
    oth = other.astype(np.int64).ravel()
    n_ref, n_oth = ref.max(), oth.max()
    if n_ref == 0:
        return 1.0
    pairs = np.bincount(ref * (n_oth + 1) + oth, minlength=(n_ref + 1) * (n_oth + 1)).reshape(n_ref + 1, n_oth + 1)
    size_ref = pairs.sum(1)[1:, None]
    size_oth = pairs.sum(0)[None, 1:]
    inter = pairs[1:, 1:]
    iou = inter / np.maximum(size_ref + size_oth - inter, 1)
    present = size_ref[:, 0] > 0
    return float((iou[present] >= threshold).any(1).mean())


def timed(fn, repeats):
    best, result = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def run(size, n_cells):
    from cellpose import dynamics as cp_dynamics
    from cellpose import metrics as cp_metrics

    cpu = torch.device("cpu")
    masks = voronoi_cells(size, n_cells)
    print(f"\nimage {size} x {size}, {masks.max()} cells, threads {ARGS.threads}, "
          f"numba threads {numba.get_num_threads()}, torch threads {torch.get_num_threads()}")

    # warm-up (numba compilation, or loading it from the cache) on a small image
    small = voronoi_cells(128, 16, seed=1)
    start = time.perf_counter()
    small_flows = dynamics.masks_to_flows(small)
    dynamics.compute_masks(5 * small_flows, np.where(small > 0, 5.0, -5.0))
    warm_tp = time.perf_counter() - start
    start = time.perf_counter()
    small_flows = cp_dynamics.masks_to_flows(small, device=cpu)
    cp_dynamics.compute_masks(5 * small_flows.astype(np.float32), np.where(small > 0, 5.0, -5.0).astype(np.float32),
                              min_size=15, device=cpu)
    warm_cp = time.perf_counter() - start

    rows = [("warm-up (compile/cache)", warm_tp, warm_cp, None)]
    t_tp, flows_tp = timed(lambda: dynamics.masks_to_flows(masks), ARGS.repeats)
    t_cp, flows_cp = timed(lambda: cp_dynamics.masks_to_flows(masks, device=cpu), ARGS.repeats)
    max_diff = float(np.abs(flows_tp - flows_cp).max())
    rows.append(("masks_to_flows", t_tp, t_cp, f"max |diff| {max_diff:.1e}"))

    rng = np.random.default_rng(0)
    dP = (5 * flows_tp + ARGS.noise * rng.standard_normal(flows_tp.shape)).astype(np.float32)
    cellprob = np.where(masks > 0, 5.0, -5.0).astype(np.float32)

    t_tp, masks_tp = timed(lambda: dynamics.compute_masks(dP, cellprob), ARGS.repeats)
    t_cp, masks_cp = timed(lambda: cp_dynamics.compute_masks(dP, cellprob, min_size=15, device=cpu), ARGS.repeats)
    rows.append(("compute_masks (flow QC on)", t_tp, t_cp,
                 f"{matched_fraction(masks_cp, masks_tp):.4f} (vs truth {matched_fraction(masks, masks_tp):.4f})"))

    t_tp, masks_tp0 = timed(lambda: dynamics.compute_masks(dP, cellprob, flow_threshold=0), ARGS.repeats)
    t_cp, masks_cp0 = timed(lambda: cp_dynamics.compute_masks(dP, cellprob, flow_threshold=0, min_size=15,
                                                              device=cpu), ARGS.repeats)
    rows.append(("compute_masks (no QC)", t_tp, t_cp, f"{matched_fraction(masks_cp0, masks_tp0):.4f}"))

    iscell = cellprob > 0
    inds = np.nonzero(iscell)
    field = dP * iscell / np.float32(5)
    t_tp, ends_tp = timed(lambda: dynamics.follow_flows(field, inds, 200), ARGS.repeats)
    t_cp, ends_cp = timed(lambda: cp_dynamics.follow_flows(field, inds, 200, device=cpu), ARGS.repeats)
    rows.append(("  follow_flows (200 steps)", t_tp, t_cp, f"identical ends {np.mean(ends_tp == ends_cp):.4f}"))

    t_tp, _ = timed(lambda: flow_error(masks_tp0, dP), ARGS.repeats)
    t_cp, _ = timed(lambda: cp_metrics.flow_error(masks_tp0, dP, device=cpu), ARGS.repeats)
    rows.append(("  flow QC (flow_error)", t_tp, t_cp, None))

    t_tp, _ = timed(lambda: fill_holes_and_remove_small_masks(masks_tp0), ARGS.repeats)
    from cellpose import utils as cp_utils
    t_cp, _ = timed(lambda: cp_utils.fill_holes_and_remove_small_masks(masks_tp0.copy()), ARGS.repeats)
    rows.append(("  fill holes + min_size", t_tp, t_cp, None))

    print(f"{'step':<28}{'trackpose s':>12}{'cellpose s':>12}{'speed-up':>10}  agreement")
    for name, tp, cp, note in rows:
        print(f"{name:<28}{tp:>12.3f}{cp:>12.3f}{cp / tp:>9.1f}x  {note or ''}")


def main():
    torch.set_num_threads(ARGS.threads)
    numba.set_num_threads(min(ARGS.threads, numba.config.NUMBA_NUM_THREADS))
    run(ARGS.size, ARGS.cells or int(1000 * (ARGS.size / 1024) ** 2))
    if ARGS.large:
        run(2048, ARGS.cells * 4 if ARGS.cells else 4000)


if __name__ == "__main__":
    main()
