"""Peak memory of a Dask worker segmenting volumes blockwise: set by the block size, not by the volume.

For volumes of 1x, 2x, 4x, ... the area of a base volume (the same synthetic nuclei tile repeated in Y and X,
written to a Zarr array on disk and read lazily by the workers, chunk = block core), segments each blockwise with
a fixed block size on a fresh ``LocalCluster`` whose workers have ``--memory-limit`` (Dask pauses a worker at
80% of it and its nanny kills it at 95%), and prints per volume: its size in bytes (as stored, float32), the
worker's resident memory once the model is loaded (its idle baseline), its peak resident memory over the run
(``getrusage`` ``ru_maxrss``, the kernel's own high-water mark of the process), and the limit.

    python benchmarks/bench_distributed_memory.py [--scales 1,2,4,8,16] [--tile 8,256,256] [--block 8,128,128]
        [--memory-limit 3GB]
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from trackpose import synth
from trackpose.distributed import zarr_io
from trackpose.distributed.cluster import connect, worker_model
from trackpose.distributed.volume import segment_volume

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import cpu, load_average  # noqa: E402

SETTINGS = dict(model="trackpose_default", stitch_threshold=0.25, diameter=30, anisotropy=3.0)


def _worker_memory() -> tuple[float, float, int]:
    """(resident now, peak resident so far) of this process, in MB, and its process id."""
    import resource
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return (resident_pages * os.sysconf("SC_PAGE_SIZE") / 2 ** 20,
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, os.getpid())


def _warm_worker(model: str) -> tuple[float, float, int]:
    """Load the model on the worker (as its first task would) and report its memory then."""
    worker_model(model)
    return _worker_memory()


def _write_volume(path: Path, tile: np.ndarray, reps: tuple, chunks: tuple) -> tuple:
    """Write ``tile`` repeated ``reps`` times in (Y, X) as a Zarr array, one tile at a time (never whole in
    memory here)."""
    import zarr
    shape = (tile.shape[0], tile.shape[1] * reps[0], tile.shape[2] * reps[1])
    array = zarr.open_array(str(path), mode="w", shape=shape, chunks=chunks, dtype=tile.dtype)
    for i in range(reps[0]):
        for j in range(reps[1]):
            array[:, i * tile.shape[1]:(i + 1) * tile.shape[1], j * tile.shape[2]:(j + 1) * tile.shape[2]] = tile
    return shape


def _parse_bytes(text: str) -> int:
    from dask.utils import parse_bytes
    return int(parse_bytes(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,2,4,8,16", help="volume areas as multiples of the base tile")
    parser.add_argument("--tile", default="8,256,256", help="Z,Y,X of the base volume (repeated in Y and X)")
    parser.add_argument("--block", default="8,128,128", help="Z,Y,X of a block's core")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads per worker")
    parser.add_argument("--memory-limit", default="3GB", help="Dask memory limit per worker")
    args = parser.parse_args()
    tile_shape = tuple(int(v) for v in args.tile.split(","))
    block = tuple(int(v) for v in args.block.split(","))
    limit = _parse_bytes(args.memory_limit)
    tile, _ = synth.nuclei_volume(tile_shape, seed=3, crowding=0.5, diameter_range=(24, 34), anisotropy=3)
    tile = tile.astype(np.float32)
    print(f"machine: {cpu()}; load average at start {load_average()}")
    print(f"blocks {block} (2D + Z stitching, diameter 30, anisotropy 3), {args.workers} worker(s) x "
          f"{args.threads} thread(s), memory limit {limit / 2 ** 20:.0f} MB per worker")
    print("| volume (Z, Y, X) | x base | blocks | volume MB (float32) | worker idle MB | worker peak MB | "
          "limit MB | seconds | load |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for scale in (int(s) for s in args.scales.split(",")):
        ry = 2 ** (int(np.log2(scale)) // 2)
        reps = (ry, scale // ry)
        with tempfile.TemporaryDirectory(prefix="trackpose-bench-memory-") as tmp:
            path = Path(tmp) / "volume.zarr"
            shape = _write_volume(path, tile, reps, block)
            source = zarr_io.open_source(path, axes="ZYX")
            with connect("local", n_workers=args.workers, threads=args.threads, memory_limit=limit) as client:
                idle = client.run(_warm_worker, SETTINGS["model"])
                t0 = time.perf_counter()
                result = segment_volume(source, Path(tmp) / "labels.zarr", block_size=block, settings=SETTINGS,
                                        client=client)
                seconds = time.perf_counter() - t0
                after = client.run(_worker_memory)
                load = load_average()
            if sorted(v[2] for v in after.values()) != sorted(v[2] for v in idle.values()):
                raise SystemExit(f"{shape}: a worker was restarted during the run (over its memory limit?): "
                                 "its peak memory is lost")
            volume_mb = int(np.prod(shape)) * 4 / 2 ** 20
            idle_mb = ", ".join(f"{v[0]:.0f}" for v in idle.values())
            peak_mb = ", ".join(f"{v[1]:.0f}" for v in after.values())
            print(f"| {shape} | {scale} | {result.n_blocks} | {volume_mb:.1f} | {idle_mb} | {peak_mb} | "
                  f"{limit / 2 ** 20:.0f} | {seconds:.0f} | {load} |", flush=True)


if __name__ == "__main__":
    main()
