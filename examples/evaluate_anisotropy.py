"""3D mode at anisotropy 1 (cellpose's meaning of a missing one), at ``anisotropy="auto"`` (the Z step told from the
stack; what a missing one means here) and at the true Z step: the estimate, AP@0.5 and AP@0.75 per stack, and
seconds per run.

    PYTHONPATH=python python examples/evaluate_anisotropy.py --threads 2
    PYTHONPATH=python python examples/evaluate_anisotropy.py --stack img3d.tif mask3d.tif 2   # and a real stack

Generated stacks: crowded nuclei (``synth.nuclei_volume``, 32 x 96 x 96 at a Z step of 1, 24 x 96 x 96 at 2,
16 x 96 x 96 at 3; diameters 12-24; seeds 9100-9102) and cells (``synth.cells_volume``, cytoplasm stain,
32 / 24 x 96 x 96 at a Z step of 1 / 2; diameters 18-30; seeds 9100-9103), each segmented with
``trackpose.segment(stack, z_axis=0, do_3d=True, anisotropy=a, diameter=d)``, ``d`` the labels' median
volume-equivalent diameter in XY pixels (``synth.volume_diameter``). With ``--stack IMAGE MASKS Z_STEP`` a real
stack is segmented with the diameter estimated and at its annotations' diameter. Not used by the tests.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import tifffile
import torch

import trackpose
from trackpose import synth
from trackpose.metrics import average_precision


def generated():
    """(name, image, labels, Z step) of the generated stacks."""
    for step in (1, 2, 3):
        for seed in (9100, 9101, 9102):
            image, labels = synth.nuclei_volume((32 if step == 1 else 48 // step, 96, 96), diameter_range=(12, 24),
                                                anisotropy=step, seed=seed)
            yield f"nuclei, Z step {step}, seed {seed}", image, labels, float(step)
    for step in (1, 2):
        for seed in (9100, 9101, 9102, 9103):
            image, labels = synth.cells_volume((32 if step == 1 else 24, 96, 96), diameter_range=(18, 30),
                                               anisotropy=step, seed=seed)
            yield f"cells, Z step {step}, seed {seed}", image, labels, float(step)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=trackpose.DEFAULT_MODEL)
    parser.add_argument("--stack", nargs=3, default=None, metavar=("IMAGE", "MASKS", "Z_STEP"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = trackpose.load_model(args.model)
    print(f"model {model.name}; AP@0.5 (AP@0.75) [seconds] at anisotropy 1 / auto (its estimate) / the true Z step")
    cases = [(name, image, labels, step, synth.volume_diameter(labels, step))
             for name, image, labels, step in generated()]
    if args.stack:
        image, labels = tifffile.imread(args.stack[0]), tifffile.imread(args.stack[1])
        step = float(args.stack[2])
        cases += [("stack, diameter estimated", image, labels, step, 0),
                  ("stack, annotations' diameter", image, labels, step, synth.volume_diameter(labels))]
    means = {}
    for name, image, labels, step, diameter in cases:
        cells = []
        for anisotropy in (1.0, "auto", step):
            t = time.perf_counter()
            result = trackpose.segment(image, model=model, z_axis=0, do_3d=True, anisotropy=anisotropy,
                                       diameter=diameter)
            seconds = time.perf_counter() - t
            ap = average_precision(labels, result.masks)[0]
            cells.append((result.anisotropy, ap[0], ap[1], seconds))
        print(f"{name}: " + " / ".join(f"{a:.2f}: {p:.3f} ({q:.3f}) [{s:.1f} s]" for a, p, q, s in cells), flush=True)
        family = name.split(",")[0] + name.split(",")[1] if not name.startswith("stack") else None
        if family:
            means.setdefault(family, []).append([c[1] for c in cells])
    for family, values in means.items():
        v = np.array(values)
        print(f"mean AP@0.5, {family} ({len(v)}): at 1 {v[:, 0].mean():.3f}, auto {v[:, 1].mean():.3f}, "
              f"true {v[:, 2].mean():.3f}")


if __name__ == "__main__":
    main()
