"""``trackpose track`` (segment and track a movie, or track label images) and ``trackpose eval-tracks``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parsers"]

_OUTPUTS = """outputs in --out DIR (written to a temporary folder, renamed when complete):
  ctc/maskTTT.tif, ctc/res_track.txt  Cell Tracking Challenge result: one label per tracklet; a division, a gap
                                      or a merge starts new labels whose parent (4th column) is the one before
  NAME.xml                            TrackMate file (File > Load a TrackMate file): spots with outlines (2D),
                                      tracks, the detector and tracker settings, the image it came from
  NAME.xml.meshes                     3D movies: each object's surface mesh (PLY files in a zip) for TrackMate
                                      9, which then shows mesh spots; TrackMate 8 ignores it and shows spheres.
                                      A mesh spot's position in NAME.xml is the mean of its mesh's vertices
                                      (TrackMate 9's rule); spots.csv holds the voxel centroid (see --meshes)
  spots.csv, edges.csv, tracks.csv    TrackMate's column names (POSITION_X ..., SPOT_SOURCE_ID ..., TRACK_ID ...)
  NAME_tracked.tif                    label movie whose label is the track id (opens in Fiji and napari)
NAME is the input's name. Distances are in the file's calibrated units."""


def _bool(text: str) -> bool:
    if text.lower() in ("true", "yes", "1", "on"):
        return True
    if text.lower() in ("false", "no", "0", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _penalties(text: str) -> dict:
    """FEATURE=WEIGHT[,FEATURE=WEIGHT...]"""
    out = {}
    for part in filter(None, text.split(",")):
        if "=" not in part:
            raise argparse.ArgumentTypeError(f"expected FEATURE=WEIGHT, got {part!r}")
        k, v = part.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"weight of {k!r} must be a number, got {v!r}") from None
    return out


def _add_track_parser(sub) -> None:
    from ..settings import SETTINGS
    from ..tracking.lap_settings import LAPSettings
    from .options import add_setting_option
    p = sub.add_parser(
        "track", help="segment and track a movie (or track label images); TrackMate XML, CTC and CSV outputs",
        description="Find the objects of every frame of a movie (trackpose segment's options) or take them from "
                    "label images (--labels), link them (by default with the colony tracker: motion-compensated "
                    "overlap with divisions and gap closing; TrackMate's LAP or overlap tracker with --tracker), "
                    "and write the tracks. INPUT is a TIFF with a T axis, or a folder of per-frame images sorted "
                    "by name.",
        epilog=_OUTPUTS, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", type=Path, metavar="INPUT", help="movie TIFF (T[Z]YX[C]) or folder of frames")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (must be new or empty)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--save-overlay", action="store_true", help="also write NAME_tracks.png in --out: each track's "
                   "path and its last objects' outlines in its own colour, over the last frame")
    p.add_argument("--labels", action="store_true", help="INPUT holds label images (ids independent from frame "
                   "to frame, 1..n in each); segmentation is skipped")
    p.add_argument("--tracker", choices=["colony", "lap", "overlap", "overlap-voxels", "lap-iou"], default="colony",
                   help="colony: motion-compensated IoU with divisions and gap closing (2D and 3D; measured best on "
                        "growing colonies and on moving, dividing cells); lap: TrackMate's LAP tracker (exactly "
                        "TrackMate 8.1.6's links); overlap: TrackMate's overlap (IoU) tracker on outlines (2D); "
                        "overlap-voxels: IoU of the label voxels (2D and 3D); lap-iou: the LAP tracker with the "
                        "mask overlap as the cost (1 - IoU + (d/D)^2) and the LAP distances as gates (2D and 3D; "
                        "the LAP options apply) [default: colony, for label images and segmented movies alike]")
    d = LAPSettings()
    g = p.add_argument_group("LAP tracker (--tracker lap; TrackMate's keys; distances in calibrated units)")
    g.add_argument("--linking-max-distance", type=float, default=d.linking_max_distance,
                   help=f"max distance of a frame-to-frame link [default: {d.linking_max_distance}]")
    g.add_argument("--allow-gap-closing", type=_bool, default=d.allow_gap_closing, metavar="true|false",
                   help=f"link segments across missed frames [default: {str(d.allow_gap_closing).lower()}]")
    g.add_argument("--gap-closing-max-distance", type=float, default=d.gap_closing_max_distance,
                   help=f"[default: {d.gap_closing_max_distance}]")
    g.add_argument("--max-frame-gap", type=int, default=d.max_frame_gap,
                   help=f"largest frame difference a gap closing may bridge [default: {d.max_frame_gap}]")
    g.add_argument("--allow-track-splitting", type=_bool, default=d.allow_track_splitting, metavar="true|false",
                   help="divisions: a track may split in two [default: false]")
    g.add_argument("--splitting-max-distance", type=float, default=d.splitting_max_distance,
                   help=f"[default: {d.splitting_max_distance}]")
    g.add_argument("--allow-track-merging", type=_bool, default=d.allow_track_merging, metavar="true|false",
                   help="two tracks may merge into one [default: false]")
    g.add_argument("--merging-max-distance", type=float, default=d.merging_max_distance,
                   help=f"[default: {d.merging_max_distance}]")
    for step in ("linking", "gap-closing", "splitting", "merging"):
        g.add_argument(f"--{step}-feature-penalties", type=_penalties, default={}, metavar="FEATURE=W,...",
                       help=f"feature penalties of {step.replace('-', ' ')} (QUALITY, RADIUS, AREA, ...)")
    g.add_argument("--alternative-linking-cost-factor", type=float, default=d.alternative_linking_cost_factor,
                   help=f"[default: {d.alternative_linking_cost_factor}]")
    g.add_argument("--cutoff-percentile", type=float, default=d.cutoff_percentile,
                   help=f"[default: {d.cutoff_percentile}]")
    g = p.add_argument_group("overlap trackers (--tracker overlap / overlap-voxels; TrackMate's keys)")
    g.add_argument("--iou-calculation", choices=["PRECISE", "FAST"], default="PRECISE",
                   help="outline polygons or their bounding boxes [default: PRECISE]")
    g.add_argument("--scale-factor", type=float, default=1.0, help="outlines scaled before the IoU [default: 1]")
    g.add_argument("--min-iou", type=float, default=0.3, help="a link needs a larger IoU [default: 0.3]")
    g = p.add_argument_group("3D meshes (NAME.xml.meshes, for TrackMate 9)")
    g.add_argument("--meshes", type=_bool, default=True, metavar="true|false",
                   help="3D movies: write NAME.xml.meshes beside NAME.xml [default: true]")
    g.add_argument("--simplify-meshes", type=_bool, default=True, metavar="true|false",
                   help="the surfaces TrackMate's detector gets: the voxel staircase smoothed away and meshes of 200 "
                        "or more triangles decimated to half, so that TrackMate 9's volume and sphericity match "
                        "the object; false: the exact voxel surface (marching cubes) [default: true]")
    g.add_argument("--mesh-smoothing", type=float, default=0.0, metavar="PX",
                   help="smooth the meshes further at about this scale in pixels (Taubin smoothing, keeps the "
                        "volume) [default: 0]")
    g = p.add_argument_group("colony tracker (the default; --tracker colony)")
    g.add_argument("--colony-max-distance", type=float, default=0.0,
                   help="largest move of a link between objects that do not overlap once motion is compensated, "
                        "calibrated units; 0 = four times the median object radius [default: 0]")
    g.add_argument("--division-cost", type=float, default=0.15,
                   help="added to the cost of a division (higher: fewer divisions) [default: 0.15]")
    g.add_argument("--colony-max-frame-gap", type=int, default=2,
                   help="largest frame difference a link may span: a track that ends may continue in one that "
                        "starts up to this many frames later (2: objects missed in one frame); 1: no gap "
                        "closing [default: 2]")
    groups = {}
    for s in SETTINGS:
        if not s.cli or not s.segment:
            continue
        if s.group not in groups:
            groups[s.group] = p.add_argument_group("segmentation: " + s.group)
        add_setting_option(groups[s.group], s)
    groups[next(iter(groups))].add_argument("--channel-axis", type=int, default=None, help=argparse.SUPPRESS)
    groups[next(iter(groups))].add_argument("--z-axis", type=int, default=None, help=argparse.SUPPRESS)
    groups[next(iter(groups))].add_argument("--device", default=None, help="torch device, e.g. cpu, cuda:1")
    from ..distributed.command import add_options as add_distributed_options
    add_distributed_options(p, track=True)  # --cluster: frames segmented on Dask workers, then tracked here
    p.set_defaults(func=_run_track)


def _lap_from_args(args) -> dict:
    keys = ("linking_max_distance", "allow_gap_closing", "gap_closing_max_distance", "max_frame_gap",
            "allow_track_splitting", "splitting_max_distance", "allow_track_merging", "merging_max_distance",
            "linking_feature_penalties", "gap_closing_feature_penalties", "splitting_feature_penalties",
            "merging_feature_penalties", "alternative_linking_cost_factor", "cutoff_percentile")
    return {k: getattr(args, k) for k in keys}


def _meshes_from_args(args):
    """save_tracking's ``meshes``: False, or trackpose.meshes.surfaces's keywords."""
    from ..errors import InputError
    if not args.meshes:
        return False
    if not (args.mesh_smoothing >= 0):
        raise InputError(f"--mesh-smoothing must be >= 0 pixels, got {args.mesh_smoothing}")
    return {"simplify": args.simplify_meshes, "smoothing": args.mesh_smoothing}


def _check_tracker_options(args) -> None:
    """Options of another tracker than the chosen one are an error (they would be ignored silently)."""
    from ..errors import InputError
    from ..tracking.lap_settings import LAPSettings
    given = {"lap": [k for k, v in _lap_from_args(args).items() if v != getattr(LAPSettings(), k)],
             "overlap": [k for k, v, d in (("iou_calculation", args.iou_calculation, "PRECISE"),
                                           ("scale_factor", args.scale_factor, 1.0), ("min_iou", args.min_iou, 0.3))
                         if v != d],
             "colony": [k for k, v, d in (("colony_max_distance", args.colony_max_distance, 0.0),
                                          ("division_cost", args.division_cost, 0.15),
                                          ("colony_max_frame_gap", args.colony_max_frame_gap, 2)) if v != d]}
    mine = {"overlap-voxels": "overlap", "lap-iou": "lap"}.get(args.tracker, args.tracker)
    for tracker, keys in given.items():
        if keys and tracker != mine:
            options = ", ".join("--" + k.replace("_", "-") for k in keys)
            raise InputError(f"{options} {'is an option' if len(keys) == 1 else 'are options'} of --tracker "
                             f"{tracker}, but the tracker is {args.tracker} (the default is colony); add "
                             f"--tracker {tracker} or leave {'it' if len(keys) == 1 else 'them'} out")


def _report(stage, done, total):
    print(f"{stage}: {done}" + (f"/{total}" if total else ""), file=sys.stderr, flush=True)


def _run_track(args) -> int:
    from ..tracking import LAPSettings, save_tracking, track_label_frames
    from ..tracking.movie import open_movie
    lap = LAPSettings(**_lap_from_args(args))  # range errors before any work
    meshes = _meshes_from_args(args)
    _check_tracker_options(args)
    colony = {"MAX_DISTANCE": args.colony_max_distance, "DIVISION_COST": args.division_cost,
              "MAX_FRAME_GAP": args.colony_max_frame_gap}
    if args.tracker == "colony":
        from ..tracking.colony import check_colony_settings
        check_colony_settings(colony)
    movie = open_movie(args.input, labels=args.labels)
    overlap = {"IOU_CALCULATION": args.iou_calculation, "SCALE_FACTOR": args.scale_factor, "MIN_IOU": args.min_iou}
    if args.labels:
        frames = movie.frames()
    else:
        from .options import settings_from_args
        from ..models import load_model
        from ..segmentation import segment
        settings = settings_from_args(args)
        settings.update(movie.segment_axes(settings))
        recorded = dict(settings)  # the model's name, not the loaded network, goes into the XML
        if args.cluster:  # the workers load the model
            frames = _frames_from_dask(args, recorded)
        else:
            names = settings["model"] if isinstance(settings["model"], list) else [settings["model"]]
            models = [load_model(m, device=args.device, gpu=args.gpu) for m in names]  # once for all frames
            settings["model"] = models if len(models) > 1 else models[0]

            def segmented():  # one frame at a time: only its integer labels are kept
                for t, image in enumerate(movie.frames()):
                    masks = segment(image, **settings).masks
                    print(f"frame {t + 1}/{movie.n_frames}: {int(masks.max())} objects", flush=True)
                    yield masks
            frames = segmented()
    result = track_label_frames(frames, spacing=movie.spacing, tracker=args.tracker,
                                lap=lap if args.tracker in ("lap", "lap-iou") else None, overlap=overlap,
                                time_interval=movie.time_interval, progress=_report if args.labels else None,
                                colony=colony if args.tracker == "colony" else None)
    if not args.labels:
        result.detector = "TRACKPOSE_DETECTOR"
        result.detector_settings = {k: v for k, v in recorded.items() if isinstance(v, (int, float, str, bool))}
    out = save_tracking(result, args.out, movie.name, source=movie.source, unit=movie.unit,
                        overwrite=args.overwrite, meshes=meshes)
    n_tracks = len(set(result.track_id[result.edges.source].tolist())) if len(result.edges) else 0
    print(f"{len(result.spots)} spots, {len(result.edges)} links, {n_tracks} tracks -> {out}")
    if args.save_overlay:
        print(f"picture: {_write_tracks_picture(result, movie, args, out)}")
    return 0


def _write_tracks_picture(result, movie, args, out: Path) -> Path:
    """NAME_tracks.png: the tracks over the last frame (the label movie's outlines alone with --labels)."""
    from .. import io, overlay
    last = None
    if not args.labels:
        for last in movie.frames():  # streamed: only the last frame is kept
            pass
    return io.write_png(Path(out) / f"{movie.name}_tracks.png",
                        overlay.tracks_overlay(result.tracked_labels(), image=last))


def _frames_from_dask(args, settings: dict):
    """--cluster: the frames are segmented on Dask workers (each loads the model once) and written as they finish
    into a temporary folder next to --out; this yields the label frames read back one at a time, then removes the
    folder."""
    import shutil
    import tempfile
    from ..errors import InputError
    try:
        import dask  # noqa: F401
    except ImportError as exc:
        raise InputError(f"--cluster needs Dask ({exc.name} is missing): pip install 'trackpose[distributed]'") \
            from None
    if args.input.is_dir():
        raise InputError("--cluster tracks a movie file (TIFF or Zarr with a T axis); for a folder of frames, "
                         "segment it with `trackpose segment FOLDER --cluster ...` and track the labels with --labels")
    from .. import io
    from ..distributed import connect, segment_frames
    args.out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".trackpose-frames-", dir=args.out.parent))
    try:
        with connect(args.cluster, n_workers=args.workers, threads=args.threads,
                     memory_limit=args.worker_memory) as client:
            print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr, flush=True)
            segment_frames([args.input], {k: v for k, v in settings.items() if v is not None or k == "diameter"},
                           savedir=work, client=client,
                           progress=lambda done, total, stage: _report(stage, done, total))
        for path in sorted(next(work.glob("*_cp_masks.frames")).glob("t*.tif")):
            yield io.read_image(path)[0]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _add_eval_parser(sub) -> None:
    p = sub.add_parser("eval-tracks", help="CTC tracking measures (TRA, DET, LNK, SEG, division F1) of a result",
                       description="Compare a CTC result folder (RESULT, e.g. DIR/ctc from trackpose track) with a "
                                   "CTC ground-truth folder (TRA/man_track.txt, TRA/man_trackTTT.tif, optional "
                                   "SEG/) through py-ctcmetrics (pip install 'trackpose[track]').")
    p.add_argument("result", type=Path, metavar="RESULT",
                   help="CTC result folder holding res_track.txt and maskTTT.tif (DIR/ctc of trackpose track)")
    p.add_argument("ground_truth", type=Path, metavar="GROUND_TRUTH",
                   help="CTC ground-truth folder holding TRA/man_track.txt and TRA/man_trackTTT.tif (SEG/ "
                        "optional: SEG is then measured too)")
    p.set_defaults(func=_run_eval)


def _run_eval(args) -> int:
    from ..tracking.evaluate import evaluate_ctc, format_scores
    print(format_scores(evaluate_ctc(args.result, args.ground_truth)))
    return 0


def add_parsers(sub) -> None:
    _add_track_parser(sub)
    _add_eval_parser(sub)
