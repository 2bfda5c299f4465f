"""2D + Z stitching as cellpose does it, with the cut at intensity valleys (``stitch_split``), with the trim of
dim end planes as well (``stitch_trim``), and with faint objects removed too (``stitch_min_mean_cellprob``; all
three are the default): AP@0.5 and AP@0.75 per stack.

    PYTHONPATH=python python examples/evaluate_stitching.py --threads 2
    PYTHONPATH=python python examples/evaluate_stitching.py --stack img3d.tif mask3d.tif   # and a real stack

Generated stacks: crowded nuclei (``synth.nuclei_volume``, 32 x 96 x 96 at a Z step of 1, 24 x 96 x 96 at 2,
16 x 96 x 96 at 3; diameters 12-24; seeds 9100 and 9101) and cells (``synth.cells_volume``, 40 / 20 x 96 x 96 at a
Z step of 1 / 2; diameters 18-30; seeds 9200-9202), each segmented with ``trackpose.segment(stack, z_axis=0,
stitch_threshold=0.25, diameter=d, stitch_split=s, stitch_trim=t, stitch_min_mean_cellprob=f)`` for (s, t, f) =
(0, 0, 0) (cellpose's stitching), (default, 0, 0), (default, default, 0) and (default, default, default), ``d`` the
labels' median volume-equivalent diameter in XY pixels (``synth.volume_diameter``). With ``--stack IMAGE MASKS``
a real stack is segmented at its annotations' diameter and at an estimated one. Not used by the tests.
"""
from __future__ import annotations

import argparse

import numpy as np
import tifffile
import torch

import trackpose
from trackpose import synth
from trackpose.metrics import average_precision
from trackpose.settings import DEFAULTS


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=trackpose.DEFAULT_MODEL)
    parser.add_argument("--stack", nargs=2, default=None, metavar=("IMAGE", "MASKS"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = trackpose.load_model(args.model)
    split, trim, faint = (DEFAULTS[k] for k in ("stitch_split", "stitch_trim", "stitch_min_mean_cellprob"))
    variants = ((0.0, 0.0, 0.0), (split, 0.0, 0.0), (split, trim, 0.0), (split, trim, faint))
    print(f"model {model.name}; AP@0.5 (AP@0.75) with (stitch_split, stitch_trim, stitch_min_mean_cellprob) "
          + " / ".join(f"({a:g}, {b:g}, {c:g})" for a, b, c in variants))

    def run(name, image, truth, diameter):
        aps, cache = [], {}  # the network runs once per stack
        for s, t, f in variants:
            r = trackpose.segment(image, model=model, z_axis=0, stitch_threshold=0.25, diameter=diameter,
                                  stitch_split=s, stitch_trim=t, stitch_min_mean_cellprob=f, network_cache=cache)
            aps.append(average_precision(truth, r.masks)[0][:2])
        print(f"{name}: {len(np.unique(truth)) - 1} objects, diameter {r.diameter:.1f}: "
              + " / ".join(f"{a:.3f} ({b:.3f})" for a, b in aps), flush=True)
        return aps

    if args.stack:
        image, truth = (tifffile.imread(f) for f in args.stack)
        run("stack, annotations' diameter", image, truth, synth.volume_diameter(truth))
        run("stack, estimated diameter", image, truth, 0)
    for kind, steps, seeds in (("nuclei", (1, 2, 3), (9100, 9101)), ("cells", (1, 2), (9200, 9201, 9202))):
        scores = []
        for step in steps:
            for seed in seeds:
                if kind == "nuclei":
                    shape = (32 if step == 1 else int(48 / step), 96, 96)
                    image, truth = synth.nuclei_volume(shape, diameter_range=(12, 24), anisotropy=step, seed=seed)
                else:
                    image, truth = synth.cells_volume((int(40 / step), 96, 96), diameter_range=(18, 30),
                                                      anisotropy=step, seed=seed)
                scores.append(run(f"{kind}, Z step {step}, seed {seed}", image, truth,
                                  synth.volume_diameter(truth, step)))
        mean = np.array(scores).mean(axis=0)
        print(f"{kind}: mean " + " / ".join(f"{a:.3f} ({b:.3f})" for a, b in mean), flush=True)


if __name__ == "__main__":
    main()
