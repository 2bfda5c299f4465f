"""``trackpose`` command line: segment images, evaluate results, list models.

Every failure prints one line saying what went wrong and what to do, and exits non-zero.
"""
from __future__ import annotations

import argparse
import inspect
import logging
import sys
from pathlib import Path

from .. import __version__
from ..errors import TrackposeError

log = logging.getLogger("trackpose")


def _defaults() -> dict:
    from ..segmentation import segment
    return {name: p.default for name, p in inspect.signature(segment).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _add_segment_parser(sub) -> None:
    d = _defaults()
    p = sub.add_parser(
        "segment", help="find cells or nuclei in images and write label images",
        description="Find cells or nuclei in each image and write <name>_cp_masks.tif next to it (or in "
                    "--savedir): a label image where each object has its own number, with the image's "
                    "calibration, that Fiji opens directly.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (TIFF, PNG, NPY) or folders of them")
    g = p.add_argument_group("model and scale")
    g.add_argument("--model", action="append", default=None, metavar="NAME_OR_FILE",
                   help=f"model name (e.g. cyto3, nuclei) or weight file; repeat to average several models "
                        f"[default: {d['model']}]")
    g.add_argument("--diameter", type=float, default=None,
                   help="typical object diameter in pixels; 0 = estimate it per image with the model's size model; "
                        "default: estimate when the model has a size model, else the diameter it was trained at "
                        "(`trackpose estimate-diameter` measures shapes you drew)")
    g.add_argument("--chan", type=int, default=d["channels"][0],
                   help="channel to segment, counted from 1; 0 = grayscale (average of all channels)")
    g.add_argument("--chan2", type=int, default=d["channels"][1],
                   help="optional nuclear channel, counted from 1; 0 = none")
    g.add_argument("--channel-axis", type=int, default=None, help="axis holding channels, if the file does not say")
    g.add_argument("--z-axis", type=int, default=None, help="axis holding Z planes, if the file does not say")
    g = p.add_argument_group("what counts as a cell")
    g.add_argument("--flow-threshold", type=float, default=d["flow_threshold"],
                   help="maximum flow error per object; raise it to keep more (odd-shaped) objects, 0 keeps all")
    g.add_argument("--cellprob-threshold", type=float, default=d["cellprob_threshold"],
                   help="cell probability cut-off (-6..6); lower it to find more and larger objects")
    g.add_argument("--min-size", type=int, default=d["min_size"], help="remove objects smaller than this (pixels)")
    g.add_argument("--max-size", type=int, default=0, help="remove objects larger than this (pixels); 0 = no limit")
    g.add_argument("--exclude-on-edges", action="store_true", help="remove objects touching the image border")
    g.add_argument("--no-resample", action="store_true",
                   help="find objects at the network's scale (faster, coarser outlines)")
    g.add_argument("--niter", type=int, default=0,
                   help="flow steps; 0 = automatic (200 scaled by the resize); raise to ~2000 for long thin cells")
    g = p.add_argument_group("3D stacks")
    g.add_argument("--do-3d", action="store_true",
                   help="true 3D: run the network on XY, XZ and YZ slices and find 3D objects")
    g.add_argument("--stitch-threshold", type=float, default=d["stitch_threshold"],
                   help="2D+Z: segment each plane and link objects across planes whose overlap (IoU) exceeds this "
                        "(e.g. 0.25); 0 = off")
    g.add_argument("--anisotropy", type=float, default=None,
                   help="Z spacing / pixel size for --do-3d; default: from the file's calibration, else 1")
    g.add_argument("--flow3d-smooth", type=float, default=d["flow3d_smooth"],
                   help="Gaussian smoothing (sigma, pixels) of 3D flows for smoother objects; 0 = off")
    g = p.add_argument_group("image adjustments")
    g.add_argument("--no-norm", action="store_true", help="do not rescale intensities (input already in 0..1)")
    g.add_argument("--percentiles", type=float, nargs=2, default=list(d["percentiles"]), metavar=("LOW", "HIGH"),
                   help="intensity percentiles mapped to 0 and 1")
    g.add_argument("--lowhigh", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="fixed intensities mapped to 0 and 1 instead of percentiles")
    g.add_argument("--invert", action="store_true", help="dark cells on a bright background")
    g.add_argument("--gamma", type=float, default=d["gamma"], help="gamma on normalised intensities (1 = off)")
    g.add_argument("--smooth", type=float, default=d["wiener_noise"],
                   help="Wiener smoothing noise level, 0..1 (0 = off; higher = smoother)")
    g = p.add_argument_group("speed and hardware")
    g.add_argument("--batch-size", type=int, default=d["batch_size"],
                   help="tiles per network pass, counted in bsize x bsize tiles (a larger tile counts for more)")
    g.add_argument("--bsize", type=int, default=d["bsize"], help="tile size in pixels (multiple of 16)")
    g.add_argument("--tile-overlap", type=float, default=d["tile_overlap"], help="fraction of tile overlap")
    g.add_argument("--tiling", choices=("compact", "cellpose"), default=d["tiling"],
                   help="tile layout: compact = fewer pixels through the network (default), cellpose = cellpose's "
                        "tiles, for outputs that match cellpose tile for tile")
    g.add_argument("--augment", action="store_true", help="average over flipped tiles (slower, smoother)")
    g.add_argument("--bfloat16", action="store_true",
                   help="run the network in bfloat16: ~1.7x faster on CPUs with AVX512-BF16/AMX and recent GPUs, "
                        "nearly the same masks (default: float32, cellpose's numbers)")
    g.add_argument("--gpu", action="store_true", help="use a CUDA or Apple GPU when available")
    g.add_argument("--device", default=None, help="torch device, e.g. cpu, cuda:1, mps")
    g = p.add_argument_group("output")
    g.add_argument("--savedir", type=Path, default=None, help="folder for outputs (default: next to each image)")
    g.add_argument("--save-png", action="store_true", help="write 16-bit PNG labels instead of TIFF (2D only)")
    g.add_argument("--save-flows", action="store_true", help="also write flows and cell probability as TIFF")
    p.set_defaults(func=_run_segment)


def settings_from_args(args) -> dict:
    return dict(model=args.model if args.model and len(args.model) > 1 else
                (args.model[0] if args.model else _defaults()["model"]),
                diameter=args.diameter, channels=(args.chan, args.chan2),
                channel_axis=args.channel_axis, z_axis=args.z_axis,
                flow_threshold=args.flow_threshold, cellprob_threshold=args.cellprob_threshold,
                resample=not args.no_resample, niter=args.niter or None, min_size=args.min_size,
                max_size=args.max_size or None, batch_size=args.batch_size, bsize=args.bsize,
                tile_overlap=args.tile_overlap, tiling=args.tiling, augment=args.augment, bfloat16=args.bfloat16,
                normalize=not args.no_norm,
                percentiles=tuple(args.percentiles), lowhigh=tuple(args.lowhigh) if args.lowhigh else None,
                invert=args.invert, gamma=args.gamma, wiener_noise=args.smooth,
                exclude_on_edges=args.exclude_on_edges, device=args.device, gpu=args.gpu,
                do_3d=args.do_3d, stitch_threshold=args.stitch_threshold, anisotropy=args.anisotropy,
                flow3d_smooth=args.flow3d_smooth)


def _run_segment(args) -> int:
    from ..models import load_model
    from ..batch import collect_images, segment_files
    settings = settings_from_args(args)
    if settings["channel_axis"] is None:
        settings.pop("channel_axis")
    if settings["z_axis"] is None:
        settings.pop("z_axis")
    names = settings["model"] if isinstance(settings["model"], list) else [settings["model"]]
    models = [load_model(m, device=args.device, gpu=args.gpu) for m in names]  # once for all images
    settings["model"] = models if len(models) > 1 else models[0]
    paths = collect_images(args.images)
    outcomes = segment_files(paths, settings, savedir=args.savedir, png=args.save_png, save_flows=args.save_flows,
                             report=lambda s: print(s, flush=True))
    failed = [o for o in outcomes if o.error]
    if failed:
        print(f"{len(failed)} of {len(outcomes)} image(s) failed: " + ", ".join(str(o.path) for o in failed),
              file=sys.stderr)
        return 1
    return 0


def _add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="average precision of predicted masks against ground truth",
                       description="Pair <name>_cp_masks.* in PRED with <name>_masks.* in TRUTH and print the "
                                   "average precision at IoU 0.5, 0.75 and 0.9.")
    p.add_argument("pred", type=Path, help="folder of predicted label images")
    p.add_argument("truth", type=Path, help="folder of ground-truth label images")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.75, 0.9])
    p.set_defaults(func=_run_eval)


def _run_eval(args) -> int:
    from ..metrics import evaluate_folders, format_report
    print(format_report(evaluate_folders(args.pred, args.truth, thresholds=tuple(args.thresholds))))
    return 0


def _add_models_parser(sub) -> None:
    p = sub.add_parser("models", help="list the built-in and locally available models")
    p.set_defaults(func=_run_models)


def _run_models(args) -> int:
    from ..models import cellpose_models_dir, list_models
    print(f"cellpose model folder: {cellpose_models_dir()}")
    for row in list_models():
        where = row["path"] or "not installed"
        diam = f"diam_mean {row['diam_mean']:.1f}" if row.get("diam_mean") else ""
        print(f"  {row['name']:<16} {diam:<16} {where}{'  (' + row['error'] + ')' if row.get('error') else ''}")
    return 0


def _add_shapes_parser(sub) -> None:
    p = sub.add_parser("shapes", help="outlines (2D) or meshes (3D) and measurements of a label image",
                       description="Write <name>_shapes.json (per object: centroid, area or volume, bounding box, "
                                   "radius, 2D outline) next to LABELS, and with --meshes one PLY mesh per 3D "
                                   "object in <name>_meshes/. Sizes in pixels and in the file's units.")
    p.add_argument("labels", type=Path, help="a label image (e.g. <name>_cp_masks.tif)")
    p.add_argument("--simplify", type=float, default=0.0, help="outline simplification tolerance in pixels (0 = "
                   "pixel-exact)")
    p.add_argument("--meshes", action="store_true", help="3D: also write PLY meshes (physical units)")
    p.add_argument("--smooth", type=float, default=0.0, help="3D: mesh smoothing scale in pixels (0 = off)")
    p.set_defaults(func=_run_shapes)


def _run_shapes(args) -> int:
    import json
    import numpy as np
    from .. import io, shapes
    from ..bridge import mesh_smoothing_iterations
    labels, meta = io.read_image(args.labels)
    if "C" in meta.axes or "S" in meta.axes or "T" in meta.axes:
        raise TrackposeError(f"{args.labels} has axes {meta.axes}; give one 2D or 3D label image")
    spacing = [meta.pixel_size_y or 1.0, meta.pixel_size_x or 1.0]
    if labels.ndim == 3:
        spacing = [meta.z_spacing or 1.0] + spacing
    table = shapes.object_table(labels, spacing=spacing)
    stem = io.image_stem(args.labels)
    if labels.ndim == 2:
        outlines = shapes.contours(labels, simplify=args.simplify or None)
        for row in table:
            if row["label"] in outlines:
                row["polygon"] = np.round(outlines[row["label"]], 4).tolist()
    elif args.meshes:
        folder = args.labels.parent / f"{stem}_meshes"
        folder.mkdir(exist_ok=True)
        for label, (verts, faces) in shapes.meshes(labels, spacing=spacing, smooth_iterations=
                                                    mesh_smoothing_iterations(args.smooth)).items():
            shapes.write_ply(folder / f"{label}.ply", verts, faces)
    out = args.labels.parent / f"{stem}_shapes.json"
    out.write_text(json.dumps({"unit": meta.unit, "spacing": spacing, "objects": table},
                              default=lambda v: v.item() if hasattr(v, "item") else str(v)))
    print(f"{len(table)} objects -> {out}")
    return 0


def _add_estimate_parser(sub) -> None:
    p = sub.add_parser("estimate-diameter", help="typical object diameter of drawn shapes (ROI set or labels)",
                       description="Print the median equivalent diameter (2 sqrt(area / pi), in pixels) of the "
                                   "shapes in an ImageJ ROI set (RoiSet.zip from the ROI Manager, or one .roi "
                                   "file) or of the objects of a label image, to pass as --diameter.")
    p.add_argument("shapes", type=Path, metavar="LABELS_OR_ROIS", help="label image (TIFF, PNG, NPY) or RoiSet.zip")
    p.set_defaults(func=_run_estimate)


def _run_estimate(args) -> int:
    from ..size import diameter_from_file
    diameter, count = diameter_from_file(args.shapes)
    print(f"{diameter:.2f} px  (median of {count} shape{'s' if count != 1 else ''} in {args.shapes.name})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trackpose", description="Cell and nuclei segmentation compatible with "
                                     "Cellpose models, for Python and Fiji/TrackMate.")
    parser.add_argument("--version", action="version", version=f"trackpose {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_segment_parser(sub)
    _add_eval_parser(sub)
    _add_models_parser(sub)
    _add_shapes_parser(sub)
    _add_estimate_parser(sub)
    from . import bridge, train
    bridge.add_parsers(sub)
    train.add_parser(sub)
    return parser


def configure_logging(verbose: bool, stream=None, fmt: str = "%(levelname)s: %(message)s") -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger("trackpose")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    root.propagate = False


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except TrackposeError as exc:
        print(f"trackpose: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("trackpose: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
