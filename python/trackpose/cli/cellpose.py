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
import sys
from pathlib import Path

import numpy as np

from ..errors import InputError, TrackposeError

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trackpose-cellpose",
                                description="cellpose 3.1 command-line flags, run by the trackpose engine")
    p.add_argument("--dir", default=None, help="folder of images to segment")
    p.add_argument("--image_path", default=None, help="a single image to segment")
    p.add_argument("--look_one_level_down", action="store_true", help="also search sub-folders of --dir")
    p.add_argument("--img_filter", default="", help="only images whose name ends with this (before the extension)")
    p.add_argument("--pretrained_model", default="cyto3", help="model name or file")
    p.add_argument("--add_model", default=None, help="not supported: copy the file to ~/.cellpose/models")
    p.add_argument("--chan", type=int, default=0, help="channel to segment (0 = gray, 1 = red, 2 = green, 3 = blue)")
    p.add_argument("--chan2", type=int, default=0, help="nuclear channel (0 = none)")
    p.add_argument("--invert", action="store_true")
    p.add_argument("--diameter", type=float, default=30.0,
                   help="cell diameter in pixels; 0 = estimate it per image with the model's size model "
                        "(the model's training diameter when it has none)")
    p.add_argument("--flow_threshold", type=float, default=0.4)
    p.add_argument("--cellprob_threshold", type=float, default=0.0)
    p.add_argument("--niter", type=int, default=0)
    p.add_argument("--min_size", type=int, default=15)
    p.add_argument("--max_size", type=int, default=0, help="(trackpose extension) remove larger masks; 0 = off")
    p.add_argument("--no_resample", action="store_true")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--augment", action="store_true")
    p.add_argument("--tile_overlap", type=float, default=0.1)
    p.add_argument("--bsize", type=int, default=224)
    p.add_argument("--tiling", choices=("cellpose", "compact"), default="cellpose",
                   help="(trackpose extension) tile layout: cellpose's (default here, as cellpose) or compact "
                        "(fewer pixels through the network, the default of `trackpose segment`)")
    p.add_argument("--exclude_on_edges", action="store_true")
    p.add_argument("--no_norm", action="store_true")
    p.add_argument("--norm_percentile", type=float, nargs=2, default=[1.0, 99.0])
    p.add_argument("--use_gpu", action="store_true")
    p.add_argument("--gpu_device", default="0")
    p.add_argument("--do_3D", action="store_true")
    p.add_argument("--stitch_threshold", type=float, default=0.0)
    p.add_argument("--anisotropy", type=float, default=None,
                   help="Z spacing / pixel size; when absent, from the file's calibration (else 1.0)")
    p.add_argument("--flow3D_smooth", type=float, default=0.0)
    p.add_argument("--z_axis", type=int, default=None)
    p.add_argument("--channel_axis", type=int, default=None)
    p.add_argument("--save_png", action="store_true")
    p.add_argument("--save_tif", action="store_true")
    p.add_argument("--save_flows", action="store_true")
    p.add_argument("--no_npy", action="store_true")
    p.add_argument("--savedir", default=None)
    p.add_argument("--verbose", action="store_true")
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
        root.addHandler(out)
        try:
            logfile = Path.home() / ".cellpose" / "run.log"
            logfile.parent.mkdir(parents=True, exist_ok=True)
            fh = logging.FileHandler(logfile, mode="w")
            fh.setFormatter(fmt)
            root.addHandler(fh)
        except OSError as exc:  # read-only home: stdout still has everything
            root.warning("cannot write %s/.cellpose/run.log (%s)", Path.home(), exc)
        root.setLevel(logging.INFO)
    else:
        err = logging.StreamHandler(sys.stderr)
        err.setFormatter(fmt)
        root.addHandler(err)
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
    try:
        return _run(args, log)
    except TrackposeError as exc:
        log.error("%s", exc)
        print(f"trackpose-cellpose: error: {exc}", file=sys.stderr)
        return 1


def _run(args, log) -> int:
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
    settings = dict(model=model, diameter=diameter, channels=(args.chan, args.chan2),
                    flow_threshold=args.flow_threshold, cellprob_threshold=args.cellprob_threshold,
                    resample=not args.no_resample, niter=args.niter or None, min_size=args.min_size,
                    max_size=args.max_size or None, batch_size=args.batch_size, bsize=args.bsize,
                    tile_overlap=args.tile_overlap, tiling=args.tiling, augment=args.augment,
                    normalize=not args.no_norm,
                    percentiles=tuple(args.norm_percentile), invert=args.invert,
                    exclude_on_edges=args.exclude_on_edges, do_3d=args.do_3D,
                    stitch_threshold=args.stitch_threshold, flow3d_smooth=args.flow3D_smooth,
                    anisotropy=args.anisotropy)
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
                             progress_emit=log.info if args.verbose else (lambda line: None))
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
