"""Accuracy of a model on a real fluorescence image with ground-truth labels (not used by the tests).

The built-in model is trained on synthetic images only; this script measures how it does on real data. A small,
freely licensed real example: the 2018 Data Science Bowl nuclei image (Caicedo et al., Nature Methods 2019) that the
StarDist wheel ships as test data. Get it without installing StarDist:

    pip download stardist --no-deps -d /tmp/sd && cd /tmp/sd && unzip -o -q stardist-*.whl 'stardist/data/images/*'
    python examples/evaluate_real_nuclei.py /tmp/sd/stardist/data/images/img2d.tif \\
        /tmp/sd/stardist/data/images/mask2d.tif

Prints AP at IoU 0.5 / 0.75 / 0.9 with the diameter taken from the ground truth and with the diameter the model
estimates itself (when it has a size model), at a few cell-probability thresholds.
"""
import argparse

import numpy as np
import tifffile

import trackpose
from trackpose.metrics import average_precision
from trackpose.models import DEFAULT_MODEL


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image")
    ap.add_argument("masks")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--cellprob", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    args = ap.parse_args()

    image = tifffile.imread(args.image)
    truth = tifffile.imread(args.masks)
    model = trackpose.load_model(args.model)
    _, areas = np.unique(truth[truth > 0], return_counts=True)
    true_diameter = float(np.median(2 * np.sqrt(areas / np.pi)))
    print(f"{args.image}: {image.shape}, {len(areas)} objects, median diameter {true_diameter:.1f} px")
    diameters = [("from ground truth", true_diameter)]
    if getattr(model, "size_model", None) is not None:
        diameters.append(("estimated (diameter=0)", 0))
    for label, diameter in diameters:
        for threshold in args.cellprob:
            result = trackpose.segment(image, model=model, diameter=diameter, cellprob_threshold=threshold)
            ap_values, tp, fp, fn = average_precision(truth, result.masks)
            print(f"diameter {label} = {result.diameter:.1f} px, cellprob_threshold {threshold:+.1f}: "
                  f"{int(result.masks.max())} objects, AP@0.5 {ap_values[0]:.3f}  AP@0.75 {ap_values[1]:.3f}  "
                  f"AP@0.9 {ap_values[2]:.3f}  (TP {tp[0]}, FP {fp[0]}, FN {fn[0]} at 0.5)")


if __name__ == "__main__":
    main()
