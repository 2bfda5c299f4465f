"""Dask paths against the plain single process, on the same work.

Prints, for a synthetic 2D movie (built-in model, fixed diameter), the same frames segmented by
``segment_frames`` (a task per frame, each frame written as its own file by whoever segments it):

- in this process, without Dask (torch on all cores), warm: the model loaded and first-call costs paid by a run
  before the timed one;
- in a fresh process without Dask, from its start (interpreter, imports, model load included): what a one-off
  run costs;
- on a ``LocalCluster`` of 1 worker x 2 torch threads and of 2 workers x 1 thread: the cluster's start, the first
  run (each worker imports torch and loads the model), then runs on the warm workers, interleaved with warm runs of
  the plain process so that a change in the machine's load hits all of them alike (the best of ``--repeats``);

with frames per second, the overhead of each Dask run over the plain run of the same kind (warm against warm,
from-start against from-start), and peak resident memory (RSS) per process. Then, for a synthetic volume
segmented blockwise (2D + Z stitching) on one worker: seconds per block and peak RSS.

    python benchmarks/bench_distributed.py [--frames 16] [--size 256] [--volume 10,384,384] [--block 10,192,192]
        [--repeats 2] [--no-volume]

``--repeats 0`` runs only the from-the-start comparison (one fresh plain process, each cluster's start and first
run), which is what a one-off run of a long movie costs; ``--no-volume`` skips the blockwise volume.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from trackpose import synth
from trackpose.distributed.cluster import connect
from trackpose.distributed.frames import segment_frames
from trackpose.distributed.volume import segment_volume

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu, load_average  # noqa: E402


def _peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _movie(folder: Path, n_frames: int, size: int) -> Path:
    movie = synth.movie(n_frames=n_frames, shape=(size, size), seed=7)
    path = folder / "movie.tif"
    tifffile.imwrite(path, movie.images.astype(np.float32), imagej=True, metadata={"axes": "TYX"})
    return path


def _plain_from_start(path: Path, savedir: Path) -> float:
    """Wall seconds of a fresh Python process that segments the movie without Dask (everything included)."""
    code = ("import sys; from pathlib import Path; from trackpose.distributed.frames import segment_frames; "
            "segment_frames([sys.argv[1]], dict(model='trackpose_default', diameter=30), savedir=Path(sys.argv[2]))")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(path), str(savedir)], check=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--volume", default="10,384,384", help="Z,Y,X of the blockwise volume")
    parser.add_argument("--block", default="10,192,192", help="Z,Y,X of a block's core")
    parser.add_argument("--no-volume", action="store_true", help="the frames only")
    parser.add_argument("--repeats", type=int, default=2,
                        help="warm runs of each kind (the best is reported); 0: the from-the-start runs only")
    args = parser.parse_args()
    settings = dict(model="trackpose_default", diameter=30)
    print(f"machine: {cpu()}; load average at start {load_average()}")
    with tempfile.TemporaryDirectory(prefix="trackpose-bench-distributed-") as tmp:
        tmp = Path(tmp)
        path = _movie(tmp, args.frames, args.size)
        cold_plain = _plain_from_start(path, tmp / "plain-from-start")
        import torch
        torch.set_num_threads(len(os.sched_getaffinity(0)))
        plain = None
        if args.repeats:
            segment_frames([path], settings, savedir=tmp / "warm")  # model load and first-call costs
            t0 = time.perf_counter()
            segment_frames([path], settings, savedir=tmp / "plain")
            plain = time.perf_counter() - t0
        layouts = ((1, 2), (2, 1))
        with contextlib.ExitStack() as stack:
            clients, first = {}, {}
            for workers, threads in layouts:
                t0 = time.perf_counter()
                client = clients[workers, threads] = stack.enter_context(
                    connect("local", n_workers=workers, threads=threads))
                client.run(lambda: None)
                start = time.perf_counter() - t0
                t0 = time.perf_counter()
                segment_frames([path], settings, savedir=tmp / f"dask{workers}x{threads}-first", client=client)
                first[workers, threads] = (start, time.perf_counter() - t0)
            # warm runs, interleaved so that a change in the machine's load hits all kinds alike; best of the repeats
            best = {"plain": plain} if plain else {}
            for r in range(args.repeats):
                for kind in ["plain", *layouts]:
                    t0 = time.perf_counter()
                    segment_frames([path], settings, savedir=tmp / f"{kind}-{r}",
                                   client=None if kind == "plain" else clients[kind])
                    best[kind] = min(best.get(kind, np.inf), time.perf_counter() - t0)
            rss = {kind: clients[kind].run(_peak_rss_mb) for kind in layouts}
        plain = best.get("plain")
        warm_text = (f"warm: {args.frames / plain:.2f} frames/s ({plain:.1f} s), peak RSS {_peak_rss_mb():.0f} MB"
                     if plain else "warm: not run (--repeats 0)")
        print(f"plain process ({torch.get_num_threads()} threads), {warm_text}; from a fresh process's start: "
              f"{cold_plain:.1f} s")
        for workers, threads in layouts:
            warm = best.get((workers, threads))
            start, run = first[workers, threads]
            warm_text = (f"warm: {args.frames / warm:.2f} frames/s ({warm:.1f} s, {100 * (warm / plain - 1):+.0f}% "
                         "vs plain warm)" if warm else "warm: not run")
            print(f"dask {workers} worker(s) x {threads} thread(s), {warm_text}; from the start: cluster "
                  f"{start:.1f} s + first run {run:.1f} s = {start + run:.1f} s "
                  f"({100 * ((start + run) / cold_plain - 1):+.0f}% vs a fresh plain process); peak RSS per worker "
                  + ", ".join(f"{v:.0f} MB" for v in rss[workers, threads].values()), flush=True)
        print(f"(warm: best of {args.repeats + 1} plain and {args.repeats} Dask runs, interleaved; load average "
              f"{load_average()})" if args.repeats else f"(load average {load_average()})")

        if args.no_volume:
            return
        shape = tuple(int(v) for v in args.volume.split(","))
        block = tuple(int(v) for v in args.block.split(","))
        image, _ = synth.nuclei_volume(shape, seed=3, diameter_range=(24, 34), anisotropy=3)
        vol_settings = dict(model="trackpose_default", stitch_threshold=0.25, diameter=30, anisotropy=3.0)
        with connect("local", n_workers=1, threads=2) as client:
            t0 = time.perf_counter()
            result = segment_volume(image, tmp / "vol.zarr", block_size=block, settings=vol_settings, client=client)
            seconds = time.perf_counter() - t0
            rss = client.run(_peak_rss_mb)
        per_block = np.array(result.block_seconds)
        voxels = int(np.prod(block))
        print(f"blockwise {shape} in blocks {block} (overlap {result.overlap}): {result.n_blocks} blocks, "
              f"{result.n_objects} objects, {seconds:.1f} s; per block {per_block.mean():.1f} s "
              f"(min {per_block.min():.1f}, max {per_block.max():.1f}) = {per_block.mean() / voxels * 1e6:.1f} s "
              f"per million core voxels; peak RSS per worker " + ", ".join(f"{v:.0f} MB" for v in rss.values())
              + f" (load {load_average()})")


if __name__ == "__main__":
    main()
