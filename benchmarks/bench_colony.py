"""Growing, dividing colonies from ground-truth masks: TRA, LNK and division scores of each tracker (issue 26).

    python benchmarks/bench_colony.py [--frames 18] [--shape 384 384] [--cells 4] [--seed 1] [--doubling 3]
                                      [--drift 3] [--no-laptrack]

A synthetic colony (``trackpose.synth.colony``: rods that grow and divide, the colony expands, cells touch) is
tracked from its exact label frames (ids relabelled 1..n per frame, so only linking is measured) by: our colony
tracker, our TrackMate-exact LAP (15 and 45 px, splitting on, gap closing on), our voxel-overlap tracker (min IoU
0.3) and, when installed, laptrack 0.17's LAP (15 px, splitting) and overlap tracker (cutoffs 0.9). Each result is
written as a CTC folder by the same exporter and scored by py-ctcmetrics. Time per frame is the linking only
(laptrack: its predict call), after the objects are measured.
"""
import argparse
import contextlib
import io
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from trackpose import synth
from trackpose.tracking import LAPSettings, lap_track, overlap_track_labels
from trackpose.tracking.api import Tracking, save_tracking
from trackpose.tracking.colony import colony_track
from trackpose.tracking.evaluate import evaluate_ctc, write_ctc_ground_truth
from trackpose.tracking.graph import track_ids
from trackpose.tracking.lap import Edges
from trackpose.tracking.objects import concat_spots, frame_spots


def motion_stats(col):
    """Median / 90th-percentile frame-to-frame centroid move, median radius, share of moves > radius, share of
    true links with IoU >= 0.3, median mother-to-daughter jump (pixels)."""
    moves, ious, radii, jumps = [], [], [], []
    parent = {int(r[0]): int(r[3]) for r in col.tracks}
    for t in range(1, len(col.labels)):
        a, b = col.labels[t - 1], col.labels[t]
        ia, ib = np.unique(a)[1:], np.unique(b)[1:]
        ca = dict(zip(ia.tolist(), ndimage.center_of_mass(a > 0, a, ia)))
        cb = dict(zip(ib.tolist(), ndimage.center_of_mass(b > 0, b, ib)))
        radii += [np.sqrt(np.sum(a == i) / np.pi) for i in ia]
        for i in ib.tolist():
            if i in ca:
                moves.append(np.hypot(*np.subtract(ca[i], cb[i])))
                inter = np.sum((a == i) & (b == i))
                ious.append(inter / np.sum((a == i) | (b == i)))
            elif parent.get(i) in ca:
                jumps.append(np.hypot(*np.subtract(ca[parent[i]], cb[i])))
    moves, r = np.array(moves), float(np.median(radii))
    return dict(median_move=np.median(moves), p90_move=np.percentile(moves, 90), radius=r,
                above_radius=np.mean(moves > r), iou_ge_03=np.mean(np.array(ious) >= 0.3),
                mother_daughter=np.median(jumps) if jumps else float("nan"))


def laptrack_edges(name, frames, spots):
    """laptrack 0.17's LAP (15 px, splitting, gap closing 15 px / 2 frames) or overlap tracker, as our Edges."""
    import laptrack
    row = {(int(f), int(l)): k for k, (f, l) in enumerate(zip(spots.frame, spots.label))}
    if name == "overlap":
        lt = laptrack.OverLapTrack(cutoff=0.9, splitting_cutoff=0.9, gap_closing_cutoff=0.9,
                                   gap_closing_max_frame_count=1, merging_cutoff=False)
        t0 = time.perf_counter()
        track_df, split_df, _ = lt.predict_overlap_dataframe(np.stack(frames))
        elapsed = time.perf_counter() - t0
        track_df = track_df.reset_index()
        src, tgt = [], []
        last, first = {}, {}
        for tid, g in track_df.sort_values("frame").groupby("track_id"):
            keys = [row[(int(f), int(l))] for f, l in zip(g["frame"], g["label"])]
            src += keys[:-1]
            tgt += keys[1:]
            first[tid], last[tid] = keys[0], keys[-1]
        for p, c in zip(split_df["parent_track_id"], split_df["child_track_id"]):
            src.append(last[p])
            tgt.append(first[c])
    else:
        lt = laptrack.LapTrack(cutoff=15.0 ** 2, splitting_cutoff=15.0 ** 2, gap_closing_cutoff=15.0 ** 2,
                               gap_closing_max_frame_count=2, merging_cutoff=False)
        coords = [spots.position[spots.frame == t][:, :2] for t in range(len(frames))]
        t0 = time.perf_counter()
        tree = lt.predict(coords)
        elapsed = time.perf_counter() - t0
        index = {t: np.flatnonzero(spots.frame == t) for t in range(len(frames))}
        src, tgt = [], []
        for (f1, i1), (f2, i2) in tree.edges():
            a, b = index[f1][i1], index[f2][i2]
            if f1 > f2:
                a, b = b, a
            src.append(a)
            tgt.append(b)
    src, tgt = np.array(src, np.int64), np.array(tgt, np.int64)
    return Edges(src, tgt, np.zeros(len(src))), elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=18)
    ap.add_argument("--shape", type=int, nargs="+", default=[384, 384])
    ap.add_argument("--cells", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--doubling", type=float, default=3.0, help="frames per doubling of a cell's length")
    ap.add_argument("--drift", type=float, default=3.0, help="colony drift, px per frame and axis (std)")
    ap.add_argument("--no-laptrack", action="store_true")
    ap.add_argument("--only", nargs="*", help="run only these trackers (names as in the table)")
    args = ap.parse_args()
    col = synth.colony(args.frames, tuple(args.shape), args.cells, doubling_frames=args.doubling,
                       drift=args.drift, seed=args.seed)
    frames = [col.frame_labels(t) for t in range(len(col.labels))]
    n_cells = [int(f.max()) for f in frames]
    stats = motion_stats(col) if len(args.shape) == 2 else {}
    spots = concat_spots([frame_spots(f, t) for t, f in enumerate(frames)])
    spacing = (1.0,) * len(args.shape)
    print(f"colony: {args.frames} frames {tuple(args.shape)}, {n_cells[0]} -> {n_cells[-1]} cells, "
          f"{len(spots)} objects, {len(col.divisions())} divisions, seed {args.seed}")
    if stats:
        print("motion: " + ", ".join(f"{k} {v:.2f}" for k, v in stats.items()))
    lap = dict(allow_track_splitting=True, allow_gap_closing=True)
    runs = {
        "trackpose colony": lambda: colony_track(spots, frames, spacing),
        "trackpose LAP 15 px (TrackMate-exact)": lambda: lap_track(spots, LAPSettings(
            linking_max_distance=15, gap_closing_max_distance=15, splitting_max_distance=15, **lap)),
        "trackpose LAP 45 px (TrackMate-exact)": lambda: lap_track(spots, LAPSettings(
            linking_max_distance=45, gap_closing_max_distance=45, splitting_max_distance=45, **lap)),
        "trackpose overlap-voxels, min IoU 0.3": lambda: overlap_track_labels(spots, enumerate(frames), 0.3),
    }
    if not args.no_laptrack and len(args.shape) == 2:
        try:
            from importlib.metadata import version as installed
            import laptrack  # noqa: F401
            version = installed("laptrack")
            runs[f"laptrack {version} LAP 15 px"] = lambda: laptrack_edges("lap", frames, spots)
            runs[f"laptrack {version} overlap"] = lambda: laptrack_edges("overlap", frames, spots)
        except ImportError:
            print("laptrack not installed: skipped")
    with tempfile.TemporaryDirectory() as tmp:
        gt = write_ctc_ground_truth(Path(tmp) / "gt", *col.ctc_ground_truth())
        rows = []
        for k, (name, run) in enumerate(runs.items()):
            if args.only and not any(o in name for o in args.only):
                continue
            t0 = time.perf_counter()
            edges = run()
            elapsed = time.perf_counter() - t0
            if isinstance(edges, tuple):
                edges, elapsed = edges
            result = Tracking(spots, edges, track_ids(len(spots), edges), frames, spacing, "x", {})
            out = save_tracking(result, Path(tmp) / f"r{k}", "colony")
            with contextlib.redirect_stdout(io.StringIO()):  # py-ctcmetrics prints every score
                s = evaluate_ctc(out / "ctc", gt)
            rows.append((name, s["TRA"], s["LNK"], s["BC(0)"], elapsed / max(len(frames) - 1, 1) * 1e3))
            print(f"  {name}: TRA {s['TRA']:.3f} LNK {s['LNK']:.3f} BC(0) {s['BC(0)']:.3f}", flush=True)
    cpu = subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True).stdout.strip()
    print(f"\n{cpu or platform.processor()}; python {platform.python_version()}\n")
    print("| tracker on ground-truth masks | TRA | LNK | division BC(0) | ms / frame |")
    print("| --- | --- | --- | --- | --- |")
    for name, tra, lnk, bc, ms in rows:
        print(f"| {name} | {tra:.3f} | {lnk:.3f} | {bc:.3f} | {ms:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
