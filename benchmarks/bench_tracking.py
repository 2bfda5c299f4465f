"""Linking speed: trackpose's LAP tracker vs the real TrackMate 8.1.6 SparseLAPTracker (same spots, same edges).

    python benchmarks/bench_tracking.py [--frames 100] [--spots 1000] [--ndim 2]

TrackMate runs in its own process through JPype (tests/trackmate_oracle.py), single-threaded; its time is the
tracker's process() only (no JVM start). Ours is lap_track after a warm-up call.
"""
import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import trackmate_oracle  # noqa: E402

from trackpose.tracking import LAPSettings, lap_track, make_spots  # noqa: E402


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--spots", type=int, default=1000)
    ap.add_argument("--ndim", type=int, default=2)
    a = ap.parse_args()
    spots = spots_movie(a.frames, a.spots, a.ndim)
    settings = LAPSettings(linking_max_distance=10.0, gap_closing_max_distance=10.0, allow_track_splitting=True,
                           splitting_max_distance=10.0)
    lap_track(spots_movie(3, 50, a.ndim), settings)  # compile
    t0 = time.perf_counter()
    ours = lap_track(spots, settings)
    t_ours = time.perf_counter() - t0
    request = {"action": "track", "tracker": "SPARSE_LAP_TRACKER", "settings": settings.to_trackmate(),
               "spots": {"frame": spots.frame.tolist(), "x": spots.position[:, 0].tolist(),
                         "y": spots.position[:, 1].tolist(), "z": spots.position[:, 2].tolist(),
                         "radius": spots.radius.tolist(), "quality": spots.quality.tolist()}}
    t0 = time.perf_counter()
    res = trackmate_oracle.run(request, timeout=3000)
    t_wall = time.perf_counter() - t0
    theirs = {(a_, b) for a_, b, _ in res["edges"]}
    same = theirs == ours.pairs()
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}, python "
          f"{platform.python_version()}")
    print(f"{a.frames} frames x {a.spots} spots ({a.ndim}D), {len(spots)} spots, LAP with gap closing + splitting")
    print(f"trackpose lap_track:            {t_ours:8.2f} s   {len(ours)} edges")
    print(f"TrackMate SparseLAPTracker:     {res['seconds']:8.2f} s   {len(theirs)} edges  (1 thread; process "
          f"wall incl. JVM start {t_wall:.1f} s)")
    print(f"identical edges: {same}")


if __name__ == "__main__":
    main()
