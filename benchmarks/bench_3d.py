"""3D mode and 2D+Z stitching: trackpose vs cellpose 3.1.1.2 on the same weights and volume, in one run.

Run:  python benchmarks/bench_3d.py [--threads 2] [--shape 32 256 256] [--model FILE] [--tiling cellpose]

A synthetic volume of touching balls; both engines after a warm-up on a small volume, same thread count (cellpose
in a fresh child process that does not load trackpose: benchmarks/_cellpose_ref.py); prints
seconds, speed-up, the fraction of objects matched at IoU 0.5 between the two, and each one's AP@0.5 against the
ground truth. trackpose uses its default tile layout (compact) unless --tiling says otherwise; cellpose its own.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shape", type=int, nargs=3, default=[32, 256, 256])
    ap.add_argument("--model", default=None)
    ap.add_argument("--diameter", type=float, default=17.0)
    ap.add_argument("--tiling", choices=("compact", "cellpose"), default="compact", help="trackpose's tile layout")
    ap.add_argument("--modes", nargs="+", choices=("3D", "2D+Z"), default=["3D", "2D+Z"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import trackpose
    from _cellpose_ref import cellpose_eval
    from test_3d import _balls
    from trackpose.metrics import average_precision, matched_fraction
    from trackpose.models import DEFAULT_MODEL, _PACKAGE_DATA
    path = Path(args.model) if args.model else _PACKAGE_DATA / DEFAULT_MODEL
    ours = trackpose.load_model(path)
    n = int(14 * np.prod(args.shape) / (24 * 96 * 96))
    vol, truth = _balls(tuple(args.shape), n=n, seed=3)
    small, _ = _balls((12, 64, 64), n=3, seed=4)
    print(f"model {path}; volume {tuple(args.shape)} with {truth.max()} balls; {args.threads} threads; "
          f"trackpose tiling {args.tiling}")
    print(f"{'mode':>10} {'trackpose s':>12} {'cellpose s':>11} {'speed-up':>9} {'matched@0.5':>12} "
          f"{'AP@0.5 tp/cp':>14}")
    for name, ours_kw, theirs_kw in (("3D", dict(do_3d=True, anisotropy=1.0), dict(do_3D=True, anisotropy=1.0)),
                                     ("2D+Z", dict(stitch_threshold=0.25), dict(stitch_threshold=0.25))):
        if name not in args.modes:
            continue
        ours_kw = dict(ours_kw, tiling=args.tiling)
        common = dict(z_axis=0, diameter=args.diameter)
        trackpose.segment(small, model=ours, **common, **ours_kw)
        t = time.perf_counter()
        r = trackpose.segment(vol, model=ours, **common, **ours_kw)
        t_ours = time.perf_counter() - t
        t_theirs, m_cp = cellpose_eval(vol, small, path, args.threads, channels=[0, 0], **common, **theirs_kw)
        ap_ours = average_precision(truth, r.masks)[0][0]
        ap_theirs = average_precision(truth, m_cp)[0][0]
        print(f"{name:>10} {t_ours:>12.2f} {t_theirs:>11.2f} {t_theirs / t_ours:>8.2f}x "
              f"{matched_fraction(m_cp, r.masks):>12.3f} {ap_ours:>6.3f}/{ap_theirs:.3f}")
        print("            trackpose steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in r.timings.items()))


if __name__ == "__main__":
    main()
