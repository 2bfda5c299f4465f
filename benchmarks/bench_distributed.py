"""Dask paths against the plain single process, on the same work.

Prints, for a synthetic 2D movie (frames of 256 x 256, built-in model, fixed diameter):
- frames per second in one process (no Dask), then on a LocalCluster of 1 worker x 2 torch threads and of
  2 workers x 1 thread (model loading included once per worker, cluster start-up excluded), and the overhead of
  the Dask path over the plain process on the same machine;
- peak resident memory (RSS) of each worker;
and for a synthetic volume segmented blockwise (2D + Z stitching): seconds per block and peak RSS per worker.

    python benchmarks/bench_distributed.py [--frames 16] [--size 256]
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from trackpose import synth
from trackpose.distributed.cluster import connect
from trackpose.distributed.frames import segment_frames
from trackpose.distributed.volume import segment_volume


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        name = platform.processor()
    return f"{name}, {len(os.sched_getaffinity(0))} cores"


def _peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _movie(folder: Path, n_frames: int, size: int) -> Path:
    movie = synth.movie(n_frames=n_frames, shape=(size, size), seed=7)
    path = folder / "movie.tif"
    tifffile.imwrite(path, movie.images.astype(np.float32), imagej=True, metadata={"axes": "TYX"})
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--volume", default="10,256,256", help="Z,Y,X of the blockwise volume")
    parser.add_argument("--block", default="5,128,128", help="Z,Y,X of a block's core")
    args = parser.parse_args()
    settings = dict(model="trackpose_default", diameter=30)
    print(f"machine: {_cpu()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = _movie(tmp, args.frames, args.size)
        import torch
        torch.set_num_threads(len(os.sched_getaffinity(0)))
        segment_frames([path], settings, savedir=tmp / "warm")  # model load and first-call costs
        t0 = time.perf_counter()
        segment_frames([path], settings, savedir=tmp / "plain")
        plain = time.perf_counter() - t0
        print(f"plain process ({torch.get_num_threads()} threads): {args.frames / plain:.2f} frames/s "
              f"({plain:.1f} s), peak RSS {_peak_rss_mb():.0f} MB")
        for workers, threads in ((1, 2), (2, 1)):
            with connect("local", n_workers=workers, threads=threads) as client:
                client.run(lambda: None)
                t0 = time.perf_counter()
                segment_frames([path], settings, savedir=tmp / f"dask{workers}x{threads}", client=client)
                seconds = time.perf_counter() - t0
                rss = client.run(_peak_rss_mb)
                print(f"dask {workers} worker(s) x {threads} thread(s): {args.frames / seconds:.2f} frames/s "
                      f"({seconds:.1f} s, {100 * (seconds / plain - 1):+.0f}% vs plain), peak RSS per worker "
                      + ", ".join(f"{v:.0f} MB" for v in rss.values()))

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
              f"per million core voxels; peak RSS per worker " + ", ".join(f"{v:.0f} MB" for v in rss.values()))


if __name__ == "__main__":
    main()
