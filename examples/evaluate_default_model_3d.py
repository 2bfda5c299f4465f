"""Accuracy of a model in 3D mode on generated nuclei volumes: prints AP@0.5 and AP@0.75 per volume and on average.

    PYTHONPATH=python python examples/evaluate_default_model_3d.py                    # built-in model, 2 volumes
    PYTHONPATH=python python examples/evaluate_default_model_3d.py --n 5 --anisotropy 1 2 --threads 2
    PYTHONPATH=python python examples/evaluate_default_model_3d.py --anisotropy 2 3 --given-anisotropy 1
    PYTHONPATH=python python examples/evaluate_default_model_3d.py --anisotropy 1 2 3 --axial-psf 4 8

Each volume comes from ``trackpose.synth.nuclei_volume(shape, diameter_range=(24, 36), anisotropy=a, seed=9100+i)``
(seeds that no training run used) and is segmented with ``trackpose.segment(volume, do_3d=True, anisotropy=a,
z_axis=0, diameter=d)`` (``anisotropy=g`` with ``--given-anisotropy g``: the stack segmented as if its Z step were
``g``, as by a user who does not know it; ``--axial-psf lo hi`` generates stacks blurred more along Z, passed to
``nuclei_volume(axial_psf=(lo, hi))``), where ``d`` is the true median volume-equivalent diameter of its labels
in XY pixels (``synth.volume_diameter``; as the 2D evaluation gives the true diameter, the diameter is not
estimated here), other settings default. AP is
``TP / (TP + FP + FN)`` at IoU 0.5 / 0.75 over the volume's objects (``trackpose.metrics.average_precision``).
Defaults (24 x 96 x 96 voxels, nuclei near the model's 30-pixel ``diam_mean`` so that little resizing happens)
keep a CPU run to minutes: 3D mode runs the network on every plane in three orientations. A script, not a test.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import trackpose
from trackpose import synth
from trackpose.metrics import average_precision


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=trackpose.DEFAULT_MODEL)
    parser.add_argument("--n", type=int, default=2, help="volumes per anisotropy")
    parser.add_argument("--shape", type=int, nargs=3, default=(24, 96, 96), metavar=("Z", "Y", "X"))
    parser.add_argument("--diameter-range", type=float, nargs=2, default=(24, 36), metavar=("LOW", "HIGH"))
    parser.add_argument("--anisotropy", type=float, nargs="+", default=(2.0,))
    parser.add_argument("--given-anisotropy", type=float, default=None, metavar="G",
                        help="segment every volume at anisotropy G instead of its true one (a user who does not "
                             "know the Z step gives the default, 1)")
    parser.add_argument("--axial-psf", type=float, nargs=2, default=(2.0, 4.0), metavar=("LOW", "HIGH"),
                        help="the PSF's Z / XY width ratio range of the generated stacks (default 2 4)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = trackpose.load_model(args.model)
    print(f"model {model.name} ({model.path}), diam_mean {model.diam_mean:.1f}; volumes {tuple(args.shape)}")
    overall = []
    for anisotropy in args.anisotropy:
        scores = []
        for i in range(args.n):
            seed = 9100 + i
            image, labels = synth.nuclei_volume(tuple(args.shape), diameter_range=args.diameter_range,
                                                anisotropy=anisotropy, seed=seed,
                                                axial_psf=args.axial_psf)
            diameter = synth.volume_diameter(labels, anisotropy)
            t0 = time.perf_counter()
            given = anisotropy if args.given_anisotropy is None else args.given_anisotropy
            result = trackpose.segment(image, model=model, do_3d=True, anisotropy=given, z_axis=0,
                                       diameter=diameter)
            ap = average_precision(labels, result.masks, thresholds=(0.5, 0.75))[0]
            scores.append(ap)
            print(f"anisotropy {anisotropy:g} (given {given:g}) seed {seed}: {labels.max()} nuclei "
                  f"(diameter {diameter:.1f}), {result.masks.max()} found, AP@0.5 {ap[0]:.3f} AP@0.75 {ap[1]:.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        scores = np.array(scores)
        overall.append(scores)
        print(f"anisotropy {anisotropy:g}: n={len(scores)} AP@0.5 {scores[:, 0].mean():.3f} "
              f"AP@0.75 {scores[:, 1].mean():.3f}", flush=True)
    both = np.concatenate(overall)
    print(f"all: n={len(both)} AP@0.5 {both[:, 0].mean():.3f} AP@0.75 {both[:, 1].mean():.3f}")


if __name__ == "__main__":
    main()
