"""Time shape extraction: 2D contours and the object table, 3D meshes.

2D: ~1000 objects (overlapping random ellipses, so some shapes are odd) in a 2048 x 2048 label image; contours
pixel-exact and simplified (0.5 px), the object table, and cellpose 3.1.1.2's ``utils.outlines_list`` (one
OpenCV contour per mask, pixel-centre outlines) as a reference when cellpose is installed.
3D: ~200 ellipsoids in a 64 x 512 x 512 volume; meshes plain, smoothed (10 Taubin rounds) and decimated (to 25 %
of the triangles), the object table, and how far mesh volumes are from voxel counts.
Every step runs once untimed first (numba compilation or cache loading), then the best of --repeats is shown.

    PYTHONPATH=python python benchmarks/bench_shapes.py [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="numba / BLAS threads (default 2)")
    parser.add_argument("--size", type=int, default=2048, help="2D image side in pixels (default 2048)")
    parser.add_argument("--objects", type=int, default=1000, help="2D objects (default 1000)")
    parser.add_argument("--volume", type=int, nargs=3, default=(64, 512, 512), metavar=("Z", "Y", "X"),
                        help="3D volume shape (default 64 512 512)")
    parser.add_argument("--objects3d", type=int, default=200, help="3D objects (default 200)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats, best is reported (default 3)")
    parser.add_argument("--no-cellpose", action="store_true", help="skip the cellpose reference timing")
    return parser.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

from trackpose import contours, measure, meshes  # noqa: E402


def ellipses_2d(size, n, seed=0):
    """int32 (size, size) labels 1..n: random ellipses painted in order (later ones cover earlier ones)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.int32)
    for label in range(1, n + 1):
        ry, rx = rng.uniform(8, 30, 2)
        cy, cx = rng.uniform(0, size, 2)
        y0, y1 = max(0, int(cy - ry)), min(size, int(cy + ry) + 2)
        x0, x1 = max(0, int(cx - rx)), min(size, int(cx + rx) + 2)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        labels[y0:y1, x0:x1][inside] = label
    return labels


def ellipsoids_3d(shape, n, seed=0):
    """int32 labels 1..n of random ellipsoids (radii 5..14 voxels) painted in order."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.int32)
    for label in range(1, n + 1):
        radii = rng.uniform(5, 14, 3)
        centre = rng.uniform(0, 1, 3) * np.array(shape)
        lo = np.maximum(0, (centre - radii).astype(int))
        hi = np.minimum(shape, (centre + radii).astype(int) + 2)
        zz, yy, xx = np.mgrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        inside = (((zz - centre[0]) / radii[0]) ** 2 + ((yy - centre[1]) / radii[1]) ** 2
                  + ((xx - centre[2]) / radii[2]) ** 2) <= 1
        labels[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]][inside] = label
    return labels


def timed(fn):
    """(first call seconds, best of ARGS.repeats seconds, result)."""
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    best = np.inf
    for _ in range(ARGS.repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return first, best, result


def report(name, first, best, note=""):
    print(f"{name:<38} {best:9.3f} s   (first call {first:6.2f} s){'   ' + note if note else ''}")


def main():
    print(f"threads: {ARGS.threads}, repeats: {ARGS.repeats}")
    labels = ellipses_2d(ARGS.size, ARGS.objects)
    n2 = len(np.unique(labels)) - 1
    print(f"\n2D: {ARGS.size} x {ARGS.size}, {n2} objects")
    first, best, polygons = timed(lambda: contours.contours(labels))
    report("contours (pixel-exact)", first, best, f"{sum(len(p) for p in polygons.values())} vertices")
    first, best, simple = timed(lambda: contours.contours(labels, simplify=0.5))
    report("contours (simplified 0.5 px)", first, best, f"{sum(len(p) for p in simple.values())} vertices")
    first, best, _ = timed(lambda: measure.object_table(labels))
    report("object table", first, best)
    cellprob = np.random.default_rng(1).normal(0, 2, labels.shape).astype(np.float32)
    first, best, _ = timed(lambda: measure.object_table(labels, cellprob=cellprob))
    report("object table with cellprob quality", first, best)
    first, both, _ = timed(lambda: (contours.contours(labels, simplify=0.5), measure.object_table(labels)))
    report("contours (simplified) + object table", first, both)
    if not ARGS.no_cellpose:
        try:
            from cellpose.utils import outlines_list_single
        except ImportError:
            print("cellpose not installed: no reference timing")
        else:
            t0 = time.perf_counter()
            outlines_list_single(labels)
            seconds = time.perf_counter() - t0
            report("cellpose utils.outlines_list (1 run)", seconds, seconds,
                   f"trackpose simplified contours + table: {seconds / both:.0f}x faster")

    volume = ellipsoids_3d(tuple(ARGS.volume), ARGS.objects3d)
    n3 = len(np.unique(volume)) - 1
    print(f"\n3D: {' x '.join(map(str, ARGS.volume))}, {n3} objects")
    first, best, plain = timed(lambda: meshes.meshes(volume))
    report("meshes", first, best, f"{sum(len(f) for _, f in plain.values())} triangles")
    first, best, smooth = timed(lambda: meshes.meshes(volume, smooth_iterations=10))
    report("meshes, 10 Taubin rounds", first, best)
    first, best, small = timed(lambda: meshes.meshes(volume, decimate=0.25))
    report("meshes, decimated to 25%", first, best, f"{sum(len(f) for _, f in small.values())} triangles")
    first, best, _ = timed(lambda: measure.object_table(volume, spacing=(2.0, 0.5, 0.5)))
    report("object table", first, best)
    counts = np.bincount(volume.ravel())
    for name, result in (("plain", plain), ("smoothed", smooth), ("decimated", small)):
        errors = [abs(meshes.mesh_volume(*result[k]) / counts[k] - 1) for k in result]
        print(f"mesh volume vs voxel count, {name:<9}: median error {np.median(errors):.2%}, "
              f"max {np.max(errors):.2%} (objects cut by the volume's border included)")


if __name__ == "__main__":
    main()
