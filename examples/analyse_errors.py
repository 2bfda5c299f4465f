"""Where a model's masks go wrong on an image with ground truth (not used by the tests).

For one 2D image or 3D stack and its true labels, prints (Markdown):

- the error classes of the true objects: matched one for one at IoU >= 0.5, merged (two or more true objects each
  at least half inside one mask), split (two or more masks each at least half inside one true object), missed (no
  mask covers a tenth of it), poorly outlined (the rest); and of the masks: false positives (at least 90 % on
  background) and the rest;
- the size bias of matched masks: area (volume) ratio and equivalent-diameter difference;
- the same classes by object size, brightness (mean intensity of the object over the median of the background) and
  crowding (true neighbours that touch it);
- the network's outputs against the truth: how far out the cell probability stays above the threshold (pixels
  inside / outside the true outlines), and the angle between the predicted flows and the truth's own flows;
- for a stack: per-plane foreground of the masks against the truth (over-calling of thin or outer planes).

Get the two real StarDist samples without installing StarDist (the 2D one is from the 2018 Data Science Bowl):

    pip download stardist --no-deps -d /tmp/sd && cd /tmp/sd && unzip -o -q stardist-*.whl 'stardist/data/images/*'
    python examples/analyse_errors.py /tmp/sd/stardist/data/images/img2d.tif /tmp/sd/stardist/data/images/mask2d.tif
    python examples/analyse_errors.py /tmp/sd/stardist/data/images/img3d.tif /tmp/sd/stardist/data/images/mask3d.tif \\
        --do-3d

``--diameter 0`` lets the model estimate the diameter; the default takes it from the truth.
"""
import argparse

import numpy as np
import tifffile
from scipy import ndimage

import trackpose
from trackpose.flows import masks_to_flows
from trackpose.metrics import label_overlap, match_objects
from trackpose.models import DEFAULT_MODEL


def equivalent_diameter(size: np.ndarray, ndim: int) -> np.ndarray:
    return 2 * np.sqrt(size / np.pi) if ndim == 2 else np.cbrt(6 * size / np.pi)


def classify(truth: np.ndarray, masks: np.ndarray) -> dict:
    """Error class of every true object and every mask (see the module docstring)."""
    overlap = label_overlap(truth, masks).astype(np.float64)
    true_size, mask_size = overlap.sum(1), overlap.sum(0)
    n_true, n_mask = overlap.shape[0] - 1, overlap.shape[1] - 1
    in_mask = overlap[1:, 1:] / np.maximum(true_size[1:, None], 1)  # share of each true object inside each mask
    in_true = overlap[1:, 1:] / np.maximum(mask_size[None, 1:], 1)  # share of each mask inside each true object
    true_class = np.full(n_true, "poorly outlined", dtype=object)
    mask_class = np.full(n_mask, "other", dtype=object)
    matched = match_objects(truth, masks, 0.5)
    for t, m, _ in matched:
        true_class[t - 1] = "matched"
        mask_class[m - 1] = "matched"
    for m in range(n_mask):  # merges: several true objects each at least half inside mask m
        inside = np.flatnonzero(in_mask[:, m] >= 0.5)
        if len(inside) >= 2:
            true_class[inside[true_class[inside] != "matched"]] = "merged"
            mask_class[m] = "merge" if mask_class[m] != "matched" else "matched"
    for t in range(n_true):  # splits: several masks each at least half inside true object t
        pieces = np.flatnonzero(in_true[t] >= 0.5)
        if len(pieces) >= 2 and true_class[t] not in ("matched", "merged"):
            true_class[t] = "split"
            mask_class[pieces[mask_class[pieces] == "other"]] = "split piece"
    best_cover = in_mask.max(1) if n_mask else np.zeros(n_true)
    true_class[(true_class == "poorly outlined") & (best_cover < 0.1)] = "missed"
    background_share = overlap[0, 1:] / np.maximum(mask_size[1:], 1)
    mask_class[(mask_class == "other") & (background_share >= 0.9)] = "false positive"
    pairs = np.array([(t, m) for t, m, _ in matched], dtype=np.int64).reshape(-1, 2)
    return dict(true_class=true_class, mask_class=mask_class, true_size=true_size[1:], mask_size=mask_size[1:],
                pairs=pairs)


def touching_neighbours(truth: np.ndarray) -> np.ndarray:
    """For each true object, the number of other true objects within one pixel of it."""
    n = int(truth.max())
    counts = np.zeros(n, np.int64)
    grown = ndimage.grey_dilation(truth, size=(3,) * truth.ndim)
    for t, slc in enumerate(ndimage.find_objects(truth), 1):
        if slc is None:
            continue
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in slc)
        near = np.unique(grown[box][ndimage.binary_dilation(truth[box] == t)])
        counts[t - 1] = np.count_nonzero((near != t) & (near != 0))
    return counts


def by_bins(title: str, values: np.ndarray, edges, labels, classes: np.ndarray) -> None:
    kinds = ["matched", "merged", "split", "missed", "poorly outlined"]
    print(f"\n| {title} | objects | " + " | ".join(kinds) + " |")
    print("| --- | --- |" + " --- |" * len(kinds))
    which = np.digitize(values, edges)
    for b, label in enumerate(labels):
        sel = which == b
        if not sel.any():
            continue
        shares = [f"{np.mean(classes[sel] == k):.2f}" for k in kinds]
        print(f"| {label} | {sel.sum()} | " + " | ".join(shares) + " |")


def outline_profile(truth: np.ndarray, cellprob: np.ndarray, threshold: float) -> None:
    """Share of pixels above the threshold, by distance to the true outlines (inside > 0), away from places
    where two true objects touch."""
    foreground = truth > 0
    inside = ndimage.distance_transform_edt(foreground)
    outside = ndimage.distance_transform_edt(~foreground)
    footprint = (3,) * truth.ndim
    lone = ndimage.grey_erosion(truth, size=footprint) == ndimage.grey_dilation(truth, size=footprint)
    lone = ndimage.binary_dilation(lone, iterations=4) | ~foreground  # not within 4 px of a contact
    cells, steps = [], [-4, -3, -2, -1, 1, 2, 3, 4]
    for d in steps:  # ring d: the d-th pixel inside (d > 0) or outside (d < 0) the true outline
        distance, side = (inside, foreground) if d > 0 else (outside, ~foreground)
        ring = side & (distance > abs(d) - 1) & (distance <= abs(d)) & lone
        cells.append(f"{np.mean(cellprob[ring] > threshold):.2f}" if ring.any() else "-")
    print("\n| pixel from the true outline (inside > 0) | " + " | ".join(f"{d:+d}" for d in steps) + " |")
    print("| --- |" + " --- |" * len(steps))
    print("| share with cell probability above the threshold | " + " | ".join(cells) + " |")


def flow_angles(truth: np.ndarray, flows: np.ndarray) -> None:
    if flows.shape[0] == truth.ndim:
        true_flows = masks_to_flows(truth)
    else:  # 2D + Z stitching: the planes' own 2D flows
        true_flows = np.stack([masks_to_flows(plane) for plane in truth], axis=1)
    inside = truth > 0
    a = true_flows[:, inside]
    b = flows[:, inside]
    norm = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    ok = norm > 1e-6
    cosine = np.clip((a * b).sum(0)[ok] / norm[ok], -1, 1)
    angle = np.degrees(np.arccos(cosine))
    print(f"\nflows inside the true objects: median angle to the truth's flows {np.median(angle):.0f} deg, "
          f"{np.mean(angle > 45):.0%} over 45 deg, {np.mean(angle > 90):.0%} over 90 deg "
          f"({ok.sum()} pixels)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image")
    ap.add_argument("masks")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--diameter", type=float, default=None, help="default: from the truth; 0: estimated")
    ap.add_argument("--cellprob", type=float, default=0.0)
    ap.add_argument("--do-3d", action="store_true", help="3D mode for a stack (default: 2D + Z stitching)")
    ap.add_argument("--stitch-threshold", type=float, default=0.25)
    ap.add_argument("--anisotropy", type=float, default=1.0)
    args = ap.parse_args()

    image = tifffile.imread(args.image).astype(np.float32)
    truth = tifffile.imread(args.masks)
    ids, inverse = np.unique(truth, return_inverse=True)  # consecutive ids 1..n (0 stays background)
    truth = (inverse.reshape(truth.shape) + (ids[0] != 0)).astype(np.int32)
    ndim = truth.ndim
    _, sizes = np.unique(truth[truth > 0], return_counts=True)
    true_diameter = float(np.median(equivalent_diameter(sizes, ndim)))
    diameter = true_diameter if args.diameter is None else args.diameter
    kwargs = dict(model=trackpose.load_model(args.model), diameter=diameter, cellprob_threshold=args.cellprob)
    if ndim == 3:
        kwargs.update(z_axis=0, anisotropy=args.anisotropy)
        kwargs.update(do_3d=True) if args.do_3d else kwargs.update(stitch_threshold=args.stitch_threshold)
    result = trackpose.segment(image, **kwargs)
    masks = result.masks
    mode = "2D" if ndim == 2 else ("3D mode" if args.do_3d else f"2D + Z stitching {args.stitch_threshold}")
    print(f"## {args.image}\n\n{image.shape}, {mode}, {len(sizes)} true objects (median diameter "
          f"{true_diameter:.1f} px), diameter used {result.diameter:.1f} px, cellprob threshold {args.cellprob:+.1f}: "
          f"{masks.max()} masks")

    c = classify(truth, masks)
    tc, mc = c["true_class"], c["mask_class"]
    print("\n| true objects | " + " | ".join(["matched", "merged", "split", "missed", "poorly outlined"]) +
          " | masks | false positive | merge | split piece | other |")
    print("| --- " * 11 + "|")
    print(f"| {len(tc)} | " + " | ".join(str(np.sum(tc == k)) for k in
                                          ["matched", "merged", "split", "missed", "poorly outlined"]) +
          f" | {len(mc)} | " + " | ".join(str(np.sum(mc == k)) for k in
                                          ["false positive", "merge", "split piece", "other"]) + " |")

    if len(c["pairs"]):
        t, m = c["pairs"][:, 0] - 1, c["pairs"][:, 1] - 1
        ratio = c["mask_size"][m] / c["true_size"][t]
        d_true = equivalent_diameter(c["true_size"][t], ndim)
        d_mask = equivalent_diameter(c["mask_size"][m], ndim)
        q = np.percentile(ratio, [25, 50, 75])
        print(f"\nmatched masks: {'area' if ndim == 2 else 'volume'} / truth median {q[1]:.2f} (quartiles "
              f"{q[0]:.2f}-{q[2]:.2f}); equivalent diameter {np.median(d_mask - d_true):+.2f} px median "
              f"({np.median(d_mask / d_true - 1):+.1%})")

    diam = equivalent_diameter(c["true_size"].astype(float), ndim)
    edges = np.percentile(diam, [100 / 3, 200 / 3])
    by_bins("size (equivalent diameter, px)", diam, edges,
            [f"< {edges[0]:.1f}", f"{edges[0]:.1f}-{edges[1]:.1f}", f">= {edges[1]:.1f}"], tc)
    background = float(np.median(image[truth == 0])) if (truth == 0).any() else 0.0
    mean = ndimage.mean(image, truth, np.arange(1, truth.max() + 1))
    contrast = np.asarray(mean) / max(background, 1e-6)
    edges = np.percentile(contrast, [100 / 3, 200 / 3])
    by_bins("brightness (object mean / background median)", contrast, edges,
            [f"< {edges[0]:.2f}", f"{edges[0]:.2f}-{edges[1]:.2f}", f">= {edges[1]:.2f}"], tc)
    by_bins("touching true neighbours", touching_neighbours(truth), [1, 3], ["0", "1-2", ">= 3"], tc)

    if result.cellprob.shape == truth.shape:
        outline_profile(truth, result.cellprob, args.cellprob)
        flow_angles(truth, result.flows)
    if ndim == 3:
        print("\n| plane | truth foreground | masks foreground |\n| --- | --- | --- |")
        for z in range(truth.shape[0]):
            print(f"| {z} | {np.mean(truth[z] > 0):.3f} | {np.mean(masks[z] > 0):.3f} |")


if __name__ == "__main__":
    main()
