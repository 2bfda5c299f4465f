"""3D mode and 2D+Z stitching: trackpose vs cellpose 3.1.1.2 on the same weights and volumes, in one run.

Run:  python benchmarks/bench_3d.py [--threads 2] [--cases small large thin] [--modes 3D 2D+Z] [--stack FILE]

Three volumes of touching balls (diameter 17 px, as the small real stack this was first measured on):

    small  31 x 61 x 57     the size of the StarDist 3D sample stack (a crop a TrackMate user makes); --stack FILE
                            runs a real stack of any size in its place (Z, Y, X TIFF)
    large  32 x 256 x 256
    thin   8 x 512 x 512    a thin light-sheet tile

Each runs in 3D mode (anisotropy 1, ``min_mean_cellprob=0``) and with 2D+Z stitching (IoU 0.25, cellpose's
stitching: ``stitch_split=0``, ``stitch_trim=0``, ``stitch_min_mean_cellprob=0``): trackpose in float32 (the
default), then in bfloat16 where the CPU runs it natively, and cellpose in a fresh child process that never loads trackpose
(benchmarks/_cellpose_ref.py), all after a warm-up on a small volume, at the same thread count. Printed per case:

    tp s, cp s, x        trackpose and cellpose seconds, and the speed-up
    bf16 s, x            trackpose with --bfloat16 and its speed-up against cellpose (float32)
    match                objects of trackpose matched one for one by cellpose's at IoU 0.5 (float32 / bfloat16)
    fwd                  share of trackpose's run spent inside the network's forward passes
    conv%                the network's convolution throughput inside those passes as a share of the machine's plain
                         3x3-convolution throughput in the same precision (measured first, benchmarks/_speed.py)
    x@limit              the speed-up a float32 run would reach if it did nothing but the same convolutions at the
                         plain-convolution rate: the ceiling for this computation on this machine
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

CASES = {"small": (31, 61, 57), "large": (32, 256, 256), "thin": (8, 512, 512)}
# 3D without the removal of faint objects (min_mean_cellprob) and 2D+Z without the cut at intensity valleys, trim
# of dim ends and removal of faint objects (stitch_split, stitch_trim, stitch_min_mean_cellprob), so that the
# objects compare with cellpose's one for one; each is one pass over the voxels (docs/engine.md, "Dynamics", "2D + Z stitching")
MODES = {"3D": (dict(do_3d=True, anisotropy=1.0, min_mean_cellprob=0.0), dict(do_3D=True, anisotropy=1.0)),
         "2D+Z": (dict(stitch_threshold=0.25, stitch_split=0.0, stitch_trim=0.0, stitch_min_mean_cellprob=0.0),
                  dict(stitch_threshold=0.25))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", nargs="+", choices=tuple(CASES), default=list(CASES))
    ap.add_argument("--modes", nargs="+", choices=tuple(MODES), default=list(MODES))
    ap.add_argument("--stack", default=None, help="a real (Z, Y, X) stack to run as the 'small' case")
    ap.add_argument("--model", default=None)
    ap.add_argument("--diameter", type=float, default=17.0)
    ap.add_argument("--tiling", choices=("compact", "cellpose"), default="compact", help="trackpose's tile layout")
    ap.add_argument("--no-bfloat16", action="store_true", help="skip the bfloat16 runs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import numba
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    import trackpose
    from _cellpose_ref import cellpose_eval
    from _speed import ForwardMeter, precision_limits
    from test_3d import _balls
    from trackpose.metrics import average_precision, matched_fraction
    from trackpose.models import DEFAULT_MODEL, _PACKAGE_DATA
    path = Path(args.model) if args.model else _PACKAGE_DATA / DEFAULT_MODEL
    ours = trackpose.load_model(path)
    bf16, limit32, limit16, limits = precision_limits(ours, args.no_bfloat16)
    print(f"model {path.name}; {args.threads} threads; diameter {args.diameter}; trackpose tiling {args.tiling}; "
          f"{limits}")
    head = (f"{'case':>16} {'mode':>5} {'tp s':>7} {'cp s':>7} {'x':>6} {'bf16 s':>7} {'x':>6} {'match':>11} "
            f"{'fwd':>5} {'conv%':>10} {'x@limit':>8} {'AP tp/cp':>11}")
    print(head)
    small, _ = _balls((12, 64, 64), n=3, seed=4)
    for case in args.cases:
        if case == "small" and args.stack:
            import tifffile
            vol, truth = tifffile.imread(args.stack).astype(np.float32), None
            label = f"{Path(args.stack).stem[:8]} {'x'.join(map(str, vol.shape))}"
        else:
            shape = CASES[case]
            # balls of radius 7-10 px need 20 planes around their centres: thin stacks are the middle planes of a
            # taller volume (the balls cut by the stack's faces, as in a real thin tile)
            full = (max(shape[0], 24),) + shape[1:]
            vol, truth = _balls(full, n=max(3, int(14 * np.prod(full) / (24 * 96 * 96))), seed=3)
            z0 = (full[0] - shape[0]) // 2
            vol, truth = vol[z0:z0 + shape[0]], truth[z0:z0 + shape[0]]
            label = "x".join(map(str, shape))
        for mode in args.modes:
            ours_kw, theirs_kw = MODES[mode]
            common = dict(z_axis=0, diameter=args.diameter)
            runs = {}
            with ForwardMeter(ours) as meter:
                for precision in ("float32", "bfloat16") if bf16 else ("float32",):
                    kw = dict(ours_kw, tiling=args.tiling, bfloat16=precision == "bfloat16", **common)
                    trackpose.segment(small, model=ours, **kw)  # warm-up: numba, oneDNN primitives, allocations
                    meter.reset()
                    t = time.perf_counter()
                    r = trackpose.segment(vol, model=ours, **kw)
                    runs[precision] = (time.perf_counter() - t, r.masks, meter.seconds, meter.gflop)
            t_cp, m_cp = cellpose_eval(vol, small, path, args.threads, channels=[0, 0], **common, **theirs_kw)
            t32, m32, fwd32, gflop = runs["float32"]
            t16, m16, fwd16, _ = runs.get("bfloat16", (float("nan"), None, float("nan"), gflop))
            match = f"{matched_fraction(m_cp, m32):.3f}/" + (f"{matched_fraction(m_cp, m16):.3f}" if bf16 else "-")
            conv = f"{gflop / fwd32 / limit32:.0%}/" + (f"{gflop / fwd16 / limit16:.0%}" if bf16 else "-")
            ap = (f"{average_precision(truth, m32)[0][0]:.3f}/{average_precision(truth, m_cp)[0][0]:.3f}"
                  if truth is not None else "-")
            print(f"{label:>16} {mode:>5} {t32:>7.2f} {t_cp:>7.2f} {t_cp / t32:>5.2f}x {t16:>7.2f} "
                  f"{t_cp / t16:>5.2f}x {match:>11} {fwd32 / t32:>5.0%} {conv:>10} "
                  f"{t_cp / (gflop / limit32):>7.2f}x {ap:>11}", flush=True)


if __name__ == "__main__":
    main()
