"""Blockwise against whole-volume segmentation: how many objects survive the seams.

For synthetic nuclei volumes (built-in model, 2D + Z stitching, fixed diameter), segments each volume whole and
blockwise with small blocks (many faces, edges and corners per object), then counts the pairs of objects matched one
for one at IoU >= 0.5, as a share of the whole volume's objects and as ``metrics.matched_fraction`` (matches over the
larger of the two object counts). The issue's target: >= 98%.

    python benchmarks/bench_seams.py [--seeds 3,4,5] [--volume 10,256,256] [--block 5,48,48]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import trackpose
from trackpose import synth
from trackpose.distributed import zarr_io
from trackpose.distributed.volume import segment_volume
from trackpose.metrics import matched_fraction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="3,4,5")
    parser.add_argument("--volume", default="10,256,256", help="Z,Y,X")
    parser.add_argument("--block", default="5,48,48", help="Z,Y,X of a block's core")
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.volume.split(","))
    block = tuple(int(v) for v in args.block.split(","))
    settings = dict(model="trackpose_default", stitch_threshold=0.25, diameter=30, anisotropy=3.0)
    print(f"volume {shape}, blocks {block}, 2D + Z stitching, diameter 30, anisotropy 3")
    print(f"load average at start {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("| seed | objects (whole) | objects (blockwise) | blocks | matched one for one | share of whole | "
          "matched_fraction | s whole | s blockwise |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    total = matched = 0
    for seed in (int(s) for s in args.seeds.split(",")):
        image, _ = synth.nuclei_volume(shape, seed=seed, crowding=0.5, diameter_range=(24, 34), anisotropy=3)
        t0 = time.perf_counter()
        whole = trackpose.segment(image, z_axis=0, **settings).masks
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            result = segment_volume(image, Path(tmp) / "labels.zarr", block_size=block, settings=settings)
            blockwise = zarr_io.read_labels(Path(tmp) / "labels.zarr")
        t2 = time.perf_counter()
        n, n_blockwise = len(np.unique(whole[whole > 0])), len(np.unique(blockwise[blockwise > 0]))
        fraction = matched_fraction(whole, blockwise)
        pairs = round(fraction * max(n, n_blockwise))  # matched_fraction = matches / the larger count
        total += n
        matched += pairs
        print(f"| {seed} | {n} | {n_blockwise} | {result.n_blocks} | {pairs} | {pairs / n:.3f} | {fraction:.3f} | "
              f"{t1 - t0:.1f} | {t2 - t1:.1f} |", flush=True)
    print(f"all seeds: {matched} of {total} whole-volume objects matched one for one ({matched / total:.1%}); "
          f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
