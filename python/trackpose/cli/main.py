"""``trackpose`` command line: segment images, evaluate results, list models.

Every failure prints one line saying what went wrong and what to do, and exits non-zero.
"""
from __future__ import annotations

import argparse
import re
import logging
import signal
import sys
import threading
from pathlib import Path

from .. import __version__
from ..errors import Interrupted, TrackposeError, install_stop_signals, let_cancels_through
from ..settings import SETTINGS
from .options import add_setting_option, settings_from_args

log = logging.getLogger("trackpose")

#: values argparse must read as numbers, not options: -5, -.5, -1e9, -inf (then refused or accepted by the range
#: check, with its message, instead of "expected one argument")
NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)


def _add_segment_parser(sub) -> None:
    p = sub.add_parser(
        "segment", help="find cells or nuclei in images and write label images",
        description="Find cells or nuclei in each image and write <name>_cp_masks.tif next to it (or in "
                    "--savedir): a label image where each object has its own number, with the image's "
                    "calibration, that Fiji opens directly. Every option is listed in docs/settings.md.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (TIFF, PNG, NPY) or folders of them")
    groups = {}
    for s in SETTINGS:
        if not s.cli or not s.segment:
            continue
        if s.group not in groups:
            groups[s.group] = p.add_argument_group(s.group)
        add_setting_option(groups[s.group], s)
        if s.name == "chan2":
            groups[s.group].add_argument("--channel-axis", type=int, default=None,
                                         help="axis holding channels, if the file does not say")
            groups[s.group].add_argument("--z-axis", type=int, default=None,
                                         help="axis holding Z planes, if the file does not say")
    g = groups["speed and hardware"]
    g.add_argument("--device", default=None, help="torch device, e.g. cpu, cuda:1, mps [default: cpu, or the GPU "
                   "with --gpu]")
    g = p.add_argument_group("output")
    g.add_argument("--savedir", type=Path, default=None, help="folder for outputs [default: next to each image]")
    g.add_argument("--save-png", action="store_true", help="write 16-bit PNG labels instead of TIFF (2D only)")
    g.add_argument("--save-flows", action="store_true", help="also write flows and cell probability as TIFF")
    g.add_argument("--skip-existing", action="store_true", help="skip images whose label image is already in the "
                   "output folder (outputs are renamed into place only when whole, so a run that was interrupted "
                   "resumes where it stopped)")
    g.add_argument("--save-overlay", action="store_true", help="also write <name>_cp_overlay.png: the image with "
                   "the outlines found drawn over it (planes or frames as a montage)")
    from ..distributed.command import add_options as add_distributed_options
    add_distributed_options(p)
    p.set_defaults(func=_run_segment)


def _run_segment(args) -> int:
    from ..models import load_model
    from ..batch import collect_images, segment_files
    settings = settings_from_args(args)
    if settings["channel_axis"] is None:
        settings.pop("channel_axis")
    if settings["z_axis"] is None:
        settings.pop("z_axis")
    if args.cluster or args.block_size or args.zarr_out:
        from ..distributed.command import run_segment
        return run_segment(args, settings, args.images)
    names = settings["model"] if isinstance(settings["model"], list) else [settings["model"]]
    models = [load_model(m, device=args.device, gpu=args.gpu) for m in names]  # once for all images
    settings["model"] = models if len(models) > 1 else models[0]
    paths = collect_images(args.images)
    cancel = threading.Event()
    restore = install_stop_signals(cancel, (signal.SIGINT,))  # Ctrl-C is checked for between images too
    try:
        outcomes = segment_files(paths, settings, savedir=args.savedir, png=args.save_png,
                                 save_flows=args.save_flows, report=lambda s: print(s, flush=True),
                                 save_overlay=args.save_overlay, skip_existing=args.skip_existing, cancel=cancel)
    finally:
        restore()
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
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.5, 0.75, 0.9], metavar="IOU",
                   help="IoU thresholds at which to count matches [default: 0.5 0.75 0.9]")
    p.set_defaults(func=_run_eval)


def _run_eval(args) -> int:
    from ..metrics import evaluate_folders, format_report
    print(format_report(evaluate_folders(args.pred, args.truth, thresholds=tuple(args.thresholds))))
    return 0


def _add_models_parser(sub) -> None:
    p = sub.add_parser("models", help="list the built-in and locally available models",
                       description="List the built-in model and the cellpose models found in "
                                   "$CELLPOSE_LOCAL_MODELS_PATH or ~/.cellpose/models, with their training diameter.")
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
    p.add_argument("--pixel-outlines", action="store_true", help="2D: the exact pixel boundary (a staircase on "
                   "pixel corners) instead of the smooth sub-pixel outline that measures like the object")
    p.add_argument("--simplify", type=float, default=0.0, help="with --pixel-outlines: simplification tolerance "
                   "in pixels [default: 0, pixel-exact]")
    p.add_argument("--meshes", action="store_true", help="3D: also write PLY meshes (physical units)")
    p.add_argument("--smooth", type=float, default=0.0, help="3D: mesh smoothing scale in pixels (0 = off)")
    p.set_defaults(func=_run_shapes)


def _run_shapes(args) -> int:
    import json
    import numpy as np
    from .. import contours, io, measure, meshes
    labels, meta = io.read_image(args.labels)
    if "C" in meta.axes or "S" in meta.axes or "T" in meta.axes:
        raise TrackposeError(f"{args.labels} has axes {meta.axes}; give one 2D or 3D label image")
    spacing = [meta.pixel_size_y or 1.0, meta.pixel_size_x or 1.0]
    if labels.ndim == 3:
        spacing = [meta.z_spacing or 1.0] + spacing
    table = measure.object_table(labels, spacing=spacing)
    stem = io.image_stem(args.labels)
    if labels.ndim == 2:
        outlines = contours.contours(labels, simplify=args.simplify or None) if args.pixel_outlines \
            else contours.outlines(labels)
        for row in table:
            if row["label"] in outlines:
                row["polygon"] = np.round(outlines[row["label"]], 4).tolist()
    elif args.meshes:
        folder = args.labels.parent / f"{stem}_meshes"
        folder.mkdir(exist_ok=True)
        for label, (verts, faces) in meshes.meshes(labels, spacing=spacing, smooth_iterations=
                                                    meshes.mesh_smoothing_iterations(args.smooth)).items():
            io.write_ply(folder / f"{label}.ply", verts, faces)
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
    from ..diameter import diameter_from_file
    diameter, count = diameter_from_file(args.shapes)
    print(f"{diameter:.2f} px  (median of {count} shape{'s' if count != 1 else ''} in {args.shapes.name})")
    return 0


def _add_settings_parser(sub) -> None:
    p = sub.add_parser("settings", help="print every engine setting with its default, range and help",
                       description="Print the declaration of every engine setting (python/trackpose/settings.py): "
                                   "as a table (default), as JSON (--json; the TrackMate side's parity test reads "
                                   "it) or as the Markdown of docs/settings.md (--markdown).")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="machine-readable JSON")
    form.add_argument("--markdown", action="store_true", help="the Markdown table of docs/settings.md")
    p.set_defaults(func=_run_settings)


def _run_settings(args) -> int:
    from .. import settings
    if args.json:
        print(settings.as_json())
    elif args.markdown:
        print(settings.as_markdown(), end="")
    else:
        for s in SETTINGS:
            print(f"{s.name:<20} {str(s.default):<18} {s.range_text():<28} {s.help}")
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
    _add_settings_parser(sub)
    from . import bridge, train
    bridge.add_parsers(sub)
    from . import track
    track.add_parsers(sub)
    train.add_parser(sub)
    for command in sub.choices.values():  # -v also after the command: `trackpose segment -v ...`
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="log each step")
        command._negative_number_matcher = NEGATIVE_NUMBER
    return parser


def configure_logging(verbose: bool, stream=None, fmt: str = "%(levelname)s: %(message)s") -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger("trackpose")
    root.handlers[:] = [let_cancels_through(handler)]
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
    except (Interrupted, KeyboardInterrupt):  # Ctrl-C: Interrupted where a command installed its handler
        print("trackpose: interrupted", file=sys.stderr)
        return 130
    except TrackposeError as exc:
        print(f"trackpose: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into a reader that stopped early (`| head`)
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
