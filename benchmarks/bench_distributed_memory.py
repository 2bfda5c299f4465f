"""Peak memory of a Dask worker segmenting volumes blockwise: set by the block size, not by the volume.

For volumes of 1x, 2x, 4x, ... the area of a base volume (the same synthetic nuclei tile repeated in Y and X,
written to a Zarr array on disk and read lazily by the workers, chunk = block core), segments each blockwise with
a fixed block size on a fresh ``LocalCluster`` whose workers have ``--memory-limit`` (Dask pauses a worker at
80% of it and its nanny kills it at 95%), and prints per volume: its size in bytes (as stored, float32), the
worker's resident memory once the model is loaded (its idle baseline), its peak resident memory over the run
(``getrusage`` ``ru_maxrss``, the kernel's own high-water mark of the process), and the limit.

    python benchmarks/bench_distributed_memory.py [--scales 1,2,4,8,16] [--tile 8,256,256] [--block 8,128,128]
        [--memory-limit 3GB]

With ``--times-limit K`` it instead segments one volume K times larger than the worker's memory limit (float32
voxels), the way a fused light-sheet volume is: the sample (here 16 copies of the base tile, spread over the volume
on the block grid) inside zeros that were never written to the Zarr store. Every block is read, segmented (a box
of one value only once per worker: its labels are reused, see ``trackpose.distributed.volume``), joined across its
seams and written; the table adds the driver's peak memory, the boxes of one value, and the objects found in each
copy of the tile (all copies sit alike on the block grid, so each must give the same count as the first).

    python benchmarks/bench_distributed_memory.py --times-limit 4
"""
from __future__ import annotations

import argparse
import os
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


def _measured_run(args, path: Path, out: Path, block: tuple, settings: dict, limit: int):
    """Segment the Zarr volume at ``path`` blockwise on a fresh cluster; returns (result, seconds, worker memory once
    the model is loaded, worker memory after the run, load average). ``args.stage_peaks`` (a dict) gets the
    workers' largest peak so far as each stage starts."""
    source = zarr_io.open_source(path, axes="ZYX")
    with connect("local", n_workers=args.workers, threads=args.threads, memory_limit=limit) as client:
        idle = client.run(_warm_worker, SETTINGS["model"])

        def stage_start(done, total, stage):
            if done == 0:
                args.stage_peaks[stage] = max(v[1] for v in client.run(_worker_memory).values())

        args.stage_peaks = {}
        t0 = time.perf_counter()
        result = segment_volume(source, out, block_size=block, settings=settings, client=client,
                                progress=stage_start)
        seconds = time.perf_counter() - t0
        after = client.run(_worker_memory)
        load = load_average()
    if sorted(v[2] for v in after.values()) != sorted(v[2] for v in idle.values()):
        raise SystemExit(f"{source.shape}: a worker was restarted during the run (over its memory limit?): its peak "
                         "memory is lost")
    return result, seconds, idle, after, load


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
    parser.add_argument("--tmp", default=None, help="folder for the volume and the labels (default: the system's)")
    parser.add_argument("--times-limit", type=float, default=None,
                        help="segment one mostly empty volume this many times the memory limit instead")
    args = parser.parse_args()
    tile_shape = tuple(int(v) for v in args.tile.split(","))
    block = tuple(int(v) for v in args.block.split(","))
    limit = _parse_bytes(args.memory_limit)
    tile, _ = synth.nuclei_volume(tile_shape, seed=3, crowding=0.5, diameter_range=(24, 34), anisotropy=3)
    tile = tile.astype(np.float32)
    print(f"machine: {cpu()}; load average at start {load_average()}")
    if args.times_limit:
        _larger_than_limit(args, tile, block, limit)
        return
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
            result, seconds, idle, after, load = _measured_run(args, path, Path(tmp) / "labels.zarr", block,
                                                               SETTINGS, limit)
            volume_mb = int(np.prod(shape)) * 4 / 2 ** 20
            idle_mb = ", ".join(f"{v[0]:.0f}" for v in idle.values())
            peak_mb = ", ".join(f"{v[1]:.0f}" for v in after.values())
            print(f"| {shape} | {scale} | {result.n_blocks} | {volume_mb:.1f} | {idle_mb} | {peak_mb} | "
                  f"{limit / 2 ** 20:.0f} | {seconds:.0f} | {load} |", flush=True)


def _larger_than_limit(args, tile: np.ndarray, block: tuple, limit: int) -> None:
    """One volume ``args.times_limit`` times the limit: zeros never written, 16 copies of the tile on the block
    grid."""
    import resource

    import zarr
    z = tile.shape[0]
    side = int(np.ceil(np.sqrt(args.times_limit * limit / 4 / z) / block[2]) * block[2])
    shape = (z, side, side)
    step = side // 4 // block[1] * block[1]
    origins = [(y, x) for y in range(block[1], side, step) for x in range(block[2], side, step)][:16]
    # one intensity range for the whole volume, from the sample (the percentiles of a volume that is mostly zeros
    # are zero): what a user passes as --lowhigh for such a volume
    lowhigh = (float(np.percentile(tile, 1)), float(np.percentile(tile, 99.8)))
    settings = dict(SETTINGS, lowhigh=lowhigh)
    print(f"blocks {block} (2D + Z stitching, diameter 30, anisotropy 3), {args.workers} worker(s) x "
          f"{args.threads} thread(s), memory limit {limit / 2 ** 20:.0f} MB per worker")
    with tempfile.TemporaryDirectory(prefix="trackpose-bench-memory-", dir=args.tmp) as tmp:
        path = Path(tmp) / "volume.zarr"
        array = zarr.open_array(str(path), mode="w", shape=shape, chunks=block, dtype=np.float32)
        for y, x in origins:
            array[:, y:y + tile.shape[1], x:x + tile.shape[2]] = tile
        result, seconds, idle, after, load = _measured_run(args, path, Path(tmp) / "labels.zarr", block, settings,
                                                           limit)
        labels = zarr.open_array(str(Path(tmp) / "labels.zarr" / "0"), mode="r")
        per_tile = [len(np.unique(labels[:, y:y + tile.shape[1], x:x + tile.shape[2]])) - 1 for y, x in origins]
        stored = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    driver = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gib = int(np.prod(shape)) * 4 / 2 ** 30
    print("| volume (Z, Y, X) | float32 | x limit | stored | blocks | one value | objects | per tile copy | "
          "worker idle MB | worker peak MB | driver peak MB | limit MB | seconds | load |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {shape} | {gib:.1f} GiB | {gib * 2 ** 30 / limit:.1f} | {stored / 2 ** 20:.0f} MB | {result.n_blocks} | "
          f"{result.uniform_blocks} | {result.n_objects} | {min(per_tile)}-{max(per_tile)} "
          f"({len(origins)} copies) | {', '.join(f'{v[0]:.0f}' for v in idle.values())} | "
          f"{', '.join(f'{v[1]:.0f}' for v in after.values())} | {driver:.0f} | {limit / 2 ** 20:.0f} | "
          f"{seconds:.0f} | {load} |", flush=True)
    peaks = list(args.stage_peaks.items()) + [("the end (pyramid written)", max(v[1] for v in after.values()))]
    print("worker peak so far, MB, as each stage started: " + ", ".join(f"{k} {v:.0f}" for k, v in peaks))


if __name__ == "__main__":
    main()
