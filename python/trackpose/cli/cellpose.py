"""``trackpose-cellpose``: a drop-in for the cellpose 3.1 command line (``python -m cellpose``).

Tools that already call cellpose (TrackMate-Cellpose, BIOP wrappers, Image Analyst) can point at this command
unchanged: the same flags, the same output names (``<stem>_cp_masks.tif|png``, ``<stem>_seg.npy``), and with
``--verbose`` the same ``%(asctime)s [%(levelname)s] message`` log lines with ``NN%`` progress on stdout and in
``~/.cellpose/run.log`` (which TrackMate-Cellpose tails for progress).

Differences, on purpose: a file that fails is reported and the exit code is 1 (cellpose stops or goes on
silently); TIFF labels switch to 32-bit above 65,535 objects instead of overflowing; training flags are refused
with a pointer to ``trackpose train``.
"""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

import numpy as np

from ..errors import Cancelled, InputError, TrackposeError, install_stop_signals, let_cancels_through
from ..settings import BY_NAME
from .options import add_setting_option

log = logging.getLogger("trackpose")

#: cellpose flags accepted for compatibility that change nothing here (with the reason logged).
IGNORED_FLAGS = {
    "--check_mkl": "MKL-DNN is used automatically", "--mkldnn": "MKL-DNN is used automatically",
    "--fast_mode": "removed in cellpose 2", "--net_avg": "removed in cellpose 2",
    "--no_interp": "dynamics always interpolate", "--save_txt": "outlines as text are not written",
    "--save_outlines": "outlines are not written", "--save_rois": "ImageJ ROI zips are not written",
    "--save_mpl": "figures are not written", "--save_ncolor": "n-colour masks are not written",
    "--in_folders": "masks are written next to images or in --savedir",
    "--all_channels": "use --chan/--chan2",
}
TRAINING_FLAGS = ("--train", "--train_size")

_SAME = object()
#: cellpose's flag -> the declared setting it sets, and cellpose's command-line default where it differs from
#: the declaration (cellpose's CLI starts at diameter 30 and tiles as cellpose does)
CELLPOSE_FLAGS = (
    ("--chan", "chan", _SAME), ("--chan2", "chan2", _SAME), ("--invert", "invert", _SAME),
    ("--diameter", "diameter", 30.0), ("--flow_threshold", "flow_threshold", _SAME),
    ("--cellprob_threshold", "cellprob_threshold", _SAME), ("--niter", "niter", _SAME),
    ("--min_size", "min_size", _SAME), ("--max_size", "max_size", _SAME), ("--no_resample", "resample", _SAME),
    ("--batch_size", "batch_size", _SAME), ("--augment", "augment", _SAME),
    ("--tile_overlap", "tile_overlap", _SAME), ("--bsize", "bsize", _SAME), ("--tiling", "tiling", "cellpose"),
    ("--exclude_on_edges", "exclude_on_edges", _SAME), ("--no_norm", "normalize", _SAME),
    ("--norm_percentile", "percentiles", _SAME), ("--do_3D", "do_3d", _SAME),
    ("--stitch_threshold", "stitch_threshold", _SAME), ("--anisotropy", "anisotropy", _SAME),
    ("--flow3D_smooth", "flow3d_smooth", _SAME),
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trackpose-cellpose",
                                description="cellpose 3.1 command-line flags, run by the trackpose engine")
    p.add_argument("--dir", default=None, help="folder of images to segment")
    p.add_argument("--image_path", default=None, help="a single image to segment")
    p.add_argument("--look_one_level_down", action="store_true", help="also search sub-folders of --dir")
    p.add_argument("--img_filter", default="", help="only images whose name ends with this (before the extension)")
    p.add_argument("--pretrained_model", default="cyto3", help=f"{BY_NAME['model'].help} [default: cyto3]")
    p.add_argument("--add_model", default=None, help="not supported: copy the file to ~/.cellpose/models")
    for flag, name, default in CELLPOSE_FLAGS:
        add_setting_option(p, BY_NAME[name], flag=flag, **({} if default is _SAME else {"default": default}))
    p.add_argument("--use_gpu", action="store_true", help=BY_NAME["gpu"].help)
    p.add_argument("--gpu_device", default="0", help="CUDA device number [default: 0]")
    p.add_argument("--z_axis", type=int, default=None, help="axis holding Z planes, if the file does not say")
    p.add_argument("--channel_axis", type=int, default=None, help="axis holding channels, if the file does not say")
    p.add_argument("--save_png", action="store_true", help="write <stem>_cp_masks.png (16-bit, 2D only)")
    p.add_argument("--save_tif", action="store_true", help="write <stem>_cp_masks.tif (the default; wins over "
                   "--save_png)")
    p.add_argument("--save_flows", action="store_true", help="also write flows and cell probability as TIFF")
    p.add_argument("--no_npy", action="store_true", help="do not write <stem>_seg.npy")
    p.add_argument("--savedir", default=None, help="folder for outputs [default: next to each image]")
    p.add_argument("--verbose", action="store_true", help="log each step with NN%% progress on stdout and in "
                   "~/.cellpose/run.log, as cellpose does")
    for flag in IGNORED_FLAGS:
        p.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    for flag in TRAINING_FLAGS:
        p.add_argument(flag, action="store_true", help=argparse.SUPPRESS)
    return p


def _setup_logging(verbose: bool):
    root = logging.getLogger("trackpose")
    root.handlers[:] = []
    root.propagate = False
    fmt = logging.Formatter("%(asctime)s [%(levelname)s] %(message)s")
    if verbose:
        out = logging.StreamHandler(sys.stdout)
        out.setFormatter(fmt)
        root.addHandler(let_cancels_through(out))
        try:
            logfile = Path.home() / ".cellpose" / "run.log"
            logfile.parent.mkdir(parents=True, exist_ok=True)
            fh = logging.FileHandler(logfile, mode="w")
            fh.setFormatter(fmt)
            root.addHandler(let_cancels_through(fh))
        except OSError as exc:  # read-only home: stdout still has everything
            root.warning("cannot write %s/.cellpose/run.log (%s)", Path.home(), exc)
        root.setLevel(logging.INFO)
    else:
        err = logging.StreamHandler(sys.stderr)
        err.setFormatter(fmt)
        root.addHandler(let_cancels_through(err))
        root.setLevel(logging.WARNING)
    return root


def _images(args) -> list[Path]:
    from .. import io
    if args.image_path:
        p = Path(args.image_path)
        if not p.is_file():
            raise InputError(f"--image_path {p}: no such file")
        return [p]
    if not args.dir:
        raise InputError("give --dir FOLDER or --image_path FILE")
    folder = Path(args.dir)
    if not folder.is_dir():
        raise InputError(f"--dir {folder}: no such folder")
    folders = [folder] + ([d for d in sorted(folder.iterdir()) if d.is_dir()] if args.look_one_level_down else [])
    paths = [p for f in folders for p in io.find_images(f)]
    if args.img_filter:
        paths = [p for p in paths if io.image_stem(p).endswith(args.img_filter)]
    if not paths:
        raise InputError(f"no images found in {folder}")
    return paths


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    log = _setup_logging(args.verbose)
    cancel = threading.Event()
    restore = install_stop_signals(cancel, (signal.SIGINT,))  # Ctrl-C is checked for between images too
    try:
        return _run(args, log, cancel)
    except (Cancelled, KeyboardInterrupt):  # Ctrl-C (KeyboardInterrupt: before the handler is in place)
        print("trackpose-cellpose: interrupted", file=sys.stderr)
        return 130
    except TrackposeError as exc:
        log.error("%s", exc)  # to stderr without --verbose; with it, to stdout and run.log, where callers look
        if args.verbose:
            print(f"trackpose-cellpose: error: {exc}", file=sys.stderr)
        return 1
    finally:
        restore()


def _run(args, log, cancel=None) -> int:
    from ..models import load_model
    from ..batch import segment_files
    for flag in TRAINING_FLAGS:
        if getattr(args, flag.lstrip("-")):
            raise InputError(f"{flag}: training is not part of this command; use `trackpose train`")
    for flag, why in IGNORED_FLAGS.items():
        if getattr(args, flag.lstrip("-")):
            log.warning("%s is ignored: %s", flag, why)
    if args.add_model:
        raise InputError("--add_model is not supported; copy the model file into ~/.cellpose/models")
    device = f"cuda:{args.gpu_device}" if args.use_gpu and args.gpu_device.isdigit() else None
    model = load_model(args.pretrained_model, device=device if device and _cuda() else None, gpu=args.use_gpu)
    diameter = args.diameter if args.diameter > 0 else None
    if diameter is None and model.size_model is not None:
        diameter = 0.0
        log.info("diameter 0: estimating the diameter of each image with the size model %s", model.size_path)
    elif diameter is None:
        log.info("diameter 0: using the model's training diameter %.1f px (no size model)", model.diam_labels)
    settings = {name: getattr(args, name) for _, name, _ in CELLPOSE_FLAGS}
    settings.update(model=model, diameter=diameter, channels=(settings.pop("chan"), settings.pop("chan2")),
                    niter=args.niter or None, max_size=args.max_size or None,
                    percentiles=BY_NAME["percentiles"].check(args.percentiles, "--norm_percentile"))
    if args.channel_axis is not None:
        settings["channel_axis"] = args.channel_axis
    if args.z_axis is not None:
        settings["z_axis"] = args.z_axis
    paths = _images(args)
    log.info(">>>> running trackpose on %d images using chan_to_seg %d and chan (opt) %d", len(paths),
             args.chan, args.chan2)
    savedir = Path(args.savedir) if args.savedir else None
    outcomes = segment_files(paths, settings, savedir=savedir, png=args.save_png and not args.save_tif,
                             save_flows=args.save_flows, report=log.info,
                             progress_emit=log.info if args.verbose else (lambda line: None), cancel=cancel)
    for o in outcomes:
        if o.error is None and not args.no_npy:
            _write_seg_npy(o, args)
    failed = [o for o in outcomes if o.error]
    for o in failed:
        log.error("%s failed: %s", o.path, o.error)
    log.info(">>>> completed in %.3f sec", sum(o.seconds for o in outcomes))
    return 1 if failed else 0


def _write_seg_npy(outcome, args) -> None:
    """``<stem>_seg.npy`` next to the image, as cellpose writes for its GUI (a pickled dict of arrays)."""
    from .. import io
    r = outcome.result
    if isinstance(r, list):
        return  # movies: cellpose writes no _seg.npy for time series either
    target = outcome.path.parent / f"{io.image_stem(outcome.path)}_seg.npy"
    data = {"masks": r.masks, "filename": str(outcome.path), "diameter": r.diameter,
            "chan_choose": [args.chan, args.chan2], "ismanual": np.zeros(r.n_objects, bool),
            "flows": [r.flows, r.cellprob], "flow_threshold": args.flow_threshold,
            "cellprob_threshold": args.cellprob_threshold}
    np.save(target, data, allow_pickle=True)


def _cuda() -> bool:
    import torch
    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
