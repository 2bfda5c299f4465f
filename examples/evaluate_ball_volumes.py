"""Volume of balls in 3D mode against the analytic ball, at several Z steps (not used by the tests).

    PYTHONPATH=python python examples/evaluate_ball_volumes.py                 # built-in model, Z steps 1-4
    PYTHONPATH=python python examples/evaluate_ball_volumes.py --model M --z-steps 2
    PYTHONPATH=python python examples/evaluate_ball_volumes.py --z-steps 2 3 --cellprob-threshold 2

Balls of radius 8 px imaged with a Z step of 1-4 px, each voxel as bright as the fraction of it inside a ball
(``tests/test_3d.py``'s ``_anisotropic_balls``: a box-integrating camera, noise 15 on 100 + 900), four balls per
volume with their centres on a plane and a quarter, a half and three quarters between planes, two noise seeds.
Each is segmented with ``trackpose.segment(volume, do_3d=True, anisotropy=z_step, z_axis=0, diameter=16)``, other
settings default (``--cellprob-threshold`` sets that one), and the voxels of its mask are divided by the ball's
volume (4/3 pi r^3 / z_step). Prints the excess per ball ("split" where a ball was not one mask).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import trackpose

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_3d import _anisotropic_balls  # noqa: E402  (the test's renderer, so that both measure the same balls)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=trackpose.DEFAULT_MODEL)
    ap.add_argument("--z-steps", type=float, nargs="+", default=(1, 2, 3, 4))
    ap.add_argument("--cellprob-threshold", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = trackpose.load_model(args.model)
    r = 8.0
    for z_step in args.z_steps:
        nz = int(2 * r / z_step) + 6
        excess = []
        for seed in (3, 4):
            centres = [(nz / 2 - 0.5 + dz, 11.7, 11.6 + 24 * k) for k, dz in enumerate((0.0, 0.25, 0.5, 0.75))]
            image, truth = _anisotropic_balls((nz, 24, 96), centres, r, z_step, seed=seed)
            masks = trackpose.segment(image, model=model, z_axis=0, do_3d=True, anisotropy=z_step,
                                      diameter=2 * r, cellprob_threshold=args.cellprob_threshold).masks
            volume = 4 / 3 * np.pi * r ** 3 / z_step
            for label in range(1, len(centres) + 1):
                found = np.unique(masks[truth == label])
                found = found[found > 0]
                excess.append(f"{(masks == found[0]).sum() / volume - 1:+.1%}" if len(found) == 1 else "split")
        print(f"Z step {z_step:g} px: " + ", ".join(excess), flush=True)


if __name__ == "__main__":
    main()
