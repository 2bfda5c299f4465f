"""Tracking benchmarks (issue 18): linking speed, and accuracy on synthetic movies with divisions and gaps.

    python benchmarks/bench_tracking.py speed [--frames 100] [--spots 1000 300] [--no-laptrack]
    python benchmarks/bench_tracking.py accuracy [--frames 30] [--segment | --segment-only] [--only WORD ...]
                                                 [--no-trackmate] [--no-laptrack]

speed: random spots that move and are missed 5% of the time (gaps), 2D with the first --spots count and 3D with
the second, linked with LAP + gap closing + splitting (10 units) by trackpose's ``lap_track``, by the real
TrackMate 8.1.6 ``SparseLAPTracker`` (tests/trackmate_oracle.py through JPype, one JVM, single-threaded; its time
is ``process()`` only, no JVM start) and by laptrack (``LapTrack.predict``, same cutoffs, when installed), in one
run. Ours is timed after a warm-up call. Prints the times, the ratios and whether our edges equal TrackMate's.

accuracy: synthetic movies (``trackpose.synth.movie``, 2D and 3D, dividing cells, cells missed for 1-2 frames)
tracked from their ground-truth masks (ids renumbered 1..n per frame, so only the linker is measured) and, with
--segment, from trackpose's own segmentation of the images (2D, the built-in model). Trackers: trackpose LAP
(TrackMate-exact), trackpose LAP with the overlap cost (``lap-iou``), trackpose voxel overlap, the real TrackMate
LAP (same settings, its edges) and laptrack's LAP (same cutoffs). Every result goes through the same CTC exporter
and is scored against the CTC ground truth by py-ctcmetrics: TRA, LNK and BC(0) (division F1, exact frame).
"""
import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import trackmate_oracle  # noqa: E402
from _laptrack import predict_edges  # noqa: E402

from trackpose.tracking import LAPSettings, lap_track, make_spots  # noqa: E402
from trackpose.tracking.lap import Edges  # noqa: E402


def machine() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"machine: {name}, {os.cpu_count()} cores, load average {load:.1f}, python "
            f"{platform.python_version()}")


def trackmate_request(spots, settings, tracker="SPARSE_LAP_TRACKER") -> dict:
    return {"action": "track", "tracker": tracker, "settings": settings.to_trackmate(),
            "spots": {"frame": spots.frame.tolist(), "x": spots.position[:, 0].tolist(),
                      "y": spots.position[:, 1].tolist(), "z": spots.position[:, 2].tolist(),
                      "radius": spots.radius.tolist(), "quality": spots.quality.tolist()}}


def laptrack_link(spots, settings: LAPSettings, ndim: int):
    """laptrack's LAP with TrackMate's settings mapped (cutoffs = max distance², gap closing frames); returns
    (Edges, seconds of predict)."""
    import laptrack
    lt = laptrack.LapTrack(
        cutoff=settings.linking_max_distance ** 2,
        gap_closing_cutoff=settings.gap_closing_max_distance ** 2 if settings.allow_gap_closing else False,
        gap_closing_max_frame_count=settings.max_frame_gap,
        splitting_cutoff=settings.splitting_max_distance ** 2 if settings.allow_track_splitting else False,
        merging_cutoff=settings.merging_max_distance ** 2 if settings.allow_track_merging else False,
        alternative_cost_factor=settings.alternative_linking_cost_factor,
        alternative_cost_percentile=100 * settings.cutoff_percentile)
    return predict_edges(lt, spots, ndim)


def _laptrack_version():
    try:
        from importlib.metadata import version
        import laptrack  # noqa: F401
        return version("laptrack")
    except ImportError:
        return None


# ---------------------------------------------------------------------------------------------------- speed

def spots_movie(frames, n, ndim, seed=0):
    rng = np.random.default_rng(seed)
    extent = (n * 400.0) ** (1 / ndim)  # ~400 unit² (or ³) per spot
    start = rng.uniform(0, extent, (n, ndim))
    fr, pos = [], []
    for t in range(frames):
        start = start + rng.normal(0, 2.0, (n, ndim))
        keep = rng.random(n) > 0.05
        fr += [t] * int(keep.sum())
        pos.append(start[keep])
    pos = np.concatenate(pos)
    if ndim == 2:
        pos = np.column_stack([pos, np.zeros(len(pos))])
    return make_spots(fr, pos)


def speed(a):
    settings = LAPSettings(linking_max_distance=10.0, gap_closing_max_distance=10.0, allow_track_splitting=True,
                           splitting_max_distance=10.0)
    cases = [(2, a.spots[0])] + ([(3, a.spots[1])] if len(a.spots) > 1 else [])
    movies = {ndim: spots_movie(a.frames, n, ndim) for ndim, n in cases}
    lap_track(spots_movie(3, 50, 2), settings)  # warm-up
    ours = {}
    for ndim, spots in movies.items():
        t0 = time.perf_counter()
        edges = lap_track(spots, settings)
        ours[ndim] = (edges, time.perf_counter() - t0)
    laptrack_version = None if a.no_laptrack else _laptrack_version()
    theirs_lt = {ndim: laptrack_link(spots, settings, ndim) for ndim, spots in movies.items()} \
        if laptrack_version else {}
    t0 = time.perf_counter()
    res = trackmate_oracle.run({"action": "batch", "requests": [trackmate_request(s, settings)
                                                                for s in movies.values()]}, timeout=6000)
    wall = time.perf_counter() - t0
    print(machine())
    print(f"LAP with gap closing (2 frames) + splitting, 10 units; {a.frames} frames; TrackMate 8.1.6 "
          f"single-threaded, process() only (batch wall time incl. JVM start {wall:.0f} s)")
    print(f"{'case':28s} {'trackpose':>10s} {'TrackMate':>10s} {'laptrack':>10s}  {'TM/ours':>8s} "
          f"{'lt/ours':>8s}  edges (ours, TrackMate, laptrack), identical to TrackMate")
    for (ndim, spots), tm in zip(movies.items(), res["results"]):
        edges, t_ours = ours[ndim]
        same = {(s, t) for s, t, _ in tm["edges"]} == edges.pairs()
        lt_edges, t_lt = theirs_lt.get(ndim, (None, float("nan")))
        name = f"{ndim}D {a.frames} x {a.spots[0] if ndim == 2 else a.spots[1]} ({len(spots)} spots)"
        print(f"{name:28s} {t_ours:9.2f}s {tm['seconds']:9.2f}s {t_lt:9.2f}s  {tm['seconds'] / t_ours:7.1f}x "
              f"{t_lt / t_ours:7.1f}x  {len(edges)}, {len(tm['edges'])}, "
              f"{len(lt_edges) if lt_edges is not None else '-'}; {same}")
    if laptrack_version:
        print(f"laptrack {laptrack_version}")


# ---------------------------------------------------------------------------------------------------- accuracy

MOVIES = {
    # name: (synth.movie keywords, LAP max distance in pixels)
    "2D nuclei": (dict(shape=(256, 256), division_interval=10, missed_rate=0.05), 10.0),
    "2D crowded fast cells": (dict(shape=(192, 192), kind="cells", n_cells=60, speed=5.0, division_interval=8,
                                   missed_rate=0.05), 18.0),
    "3D nuclei": (dict(shape=(16, 96, 96), n_cells=30, diameter_range=(10, 16), anisotropy=2.0,
                       division_interval=8, missed_rate=0.05), 8.0),
}


def _segment_frames(images, diameter):
    from trackpose.segmentation import segment
    from trackpose.models import DEFAULT_MODEL, load_model
    model = load_model(DEFAULT_MODEL)
    return [segment(np.asarray(img), model=model, diameter=diameter).masks for img in images]


def _score(spots, frames, edges, gt, out):
    from trackpose.tracking.evaluate import evaluate_ctc
    from trackpose.tracking.export_ctc import write_ctc
    from trackpose.tracking.graph import tracklets
    import contextlib
    import io
    label, rows = tracklets(spots, edges)
    write_ctc(out, spots, label, rows, enumerate(frames), len(frames))
    with contextlib.redirect_stdout(io.StringIO()):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return evaluate_ctc(out, gt)


def accuracy(a):
    from trackpose import synth
    from trackpose.masks import renumber
    from trackpose.tracking.evaluate import write_ctc_ground_truth
    from trackpose.tracking.objects import concat_spots, frame_spots
    from trackpose.tracking.overlap import LabelOverlaps, overlap_track_labels
    print(machine())
    laptrack_version = None if a.no_laptrack else _laptrack_version()
    print(f"{'movie / input / tracker':68s} {'TRA':>6s} {'LNK':>6s} {'BC(0)':>6s}  ms/frame")
    for name, (kwargs, distance) in MOVIES.items():
        if a.only and not any(o in name for o in a.only):
            continue
        m = synth.movie(n_frames=a.frames, seed=a.seed, **kwargs)
        labels, rows = m.ctc_ground_truth()
        inputs = {} if a.segment_only else {"ground-truth masks": [renumber(f) for f in m.labels]}
        if (a.segment or a.segment_only) and m.labels.ndim == 3:
            diameter = float(np.median([2 * np.sqrt(np.sum(m.labels[0] == i) / np.pi)
                                        for i in np.unique(m.labels[0])[1:]]))
            t0 = time.perf_counter()
            inputs["trackpose segmentation"] = [renumber(f) for f in _segment_frames(m.images, diameter)]
            seg_seconds = time.perf_counter() - t0
        print(f"{name}: {a.frames} frames {kwargs['shape']}, {len(m.tracks)} cell-frames, "
              f"{len(m.divisions())} divisions, {len(m.gaps())} gaps; LAP max distances {distance} px, "
              f"gap closing 2 frames, splitting on", flush=True)
        if "trackpose segmentation" in inputs:
            print(f"  (segmented with the built-in model, diameter {diameter:.1f} px: {seg_seconds:.0f} s)")
        settings = LAPSettings(linking_max_distance=distance, gap_closing_max_distance=distance,
                               allow_track_splitting=True, splitting_max_distance=distance)
        ndim = m.labels.ndim - 1
        with tempfile.TemporaryDirectory() as tmp:
            gt = write_ctc_ground_truth(Path(tmp) / "gt", labels, rows)
            for input_name, frames in inputs.items():
                spots = concat_spots([frame_spots(f, t, outlines=False) for t, f in enumerate(frames)])
                runs = {
                    "trackpose LAP (TrackMate-exact)": lambda: lap_track(spots, settings),
                    "trackpose LAP, overlap cost (lap-iou)": lambda: lap_track(
                        spots, settings, overlaps=LabelOverlaps.from_labels(spots, enumerate(frames), 2)),
                    "trackpose overlap-voxels (min IoU 0.3)": lambda: overlap_track_labels(
                        spots, enumerate(frames), 0.3),
                }
                if not a.no_trackmate:
                    def trackmate():
                        res = trackmate_oracle.run(trackmate_request(spots, settings), timeout=3000)
                        e = np.array(res["edges"], float).reshape(-1, 3)
                        edges = Edges(e[:, 0].astype(np.int64), e[:, 1].astype(np.int64), e[:, 2])
                        return edges, res["seconds"]
                    runs["TrackMate 8.1.6 LAP (real, same settings)"] = trackmate
                if laptrack_version:
                    runs[f"laptrack {laptrack_version} LAP (same cutoffs)"] = \
                        lambda: laptrack_link(spots, settings, ndim)
                for tracker, run in runs.items():
                    t0 = time.perf_counter()
                    edges = run()
                    elapsed = time.perf_counter() - t0
                    if isinstance(edges, tuple):
                        edges, elapsed = edges
                    s = _score(spots, frames, edges, gt, Path(tmp) / "res")
                    label = f"  {input_name} / {tracker}"
                    print(f"{label:68s} {s['TRA']:6.3f} {s['LNK']:6.3f} {s['BC(0)']:6.3f}  "
                          f"{1000 * elapsed / len(frames):8.1f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    sp = sub.add_parser("speed")
    sp.add_argument("--frames", type=int, default=100)
    sp.add_argument("--spots", type=int, nargs="+", default=[1000, 300], help="spots per frame: 2D [3D]")
    sp.add_argument("--no-laptrack", action="store_true")
    ac = sub.add_parser("accuracy")
    ac.add_argument("--frames", type=int, default=30)
    ac.add_argument("--seed", type=int, default=1)
    ac.add_argument("--segment", action="store_true", help="also track trackpose's segmentation (2D movies)")
    ac.add_argument("--segment-only", action="store_true", help="track trackpose's segmentation only")
    ac.add_argument("--only", nargs="*", help="movies whose name contains one of these words")
    ac.add_argument("--no-trackmate", action="store_true")
    ac.add_argument("--no-laptrack", action="store_true")
    a = ap.parse_args()
    speed(a) if a.what == "speed" else accuracy(a)


if __name__ == "__main__":
    main()
