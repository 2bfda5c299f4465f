"""Blockwise against whole-volume segmentation: how many objects survive the seams.

For synthetic nuclei volumes (built-in model, 2D + Z stitching, fixed diameter), segments each volume whole and
blockwise with small blocks (many faces, edges and corners per object), then counts the whole-volume objects that
the blockwise labels match one for one at IoU >= 0.5 (and the other way round). The issue's target: >= 98%.

    python benchmarks/bench_seams.py [--seeds 3,4,5] [--volume 10,256,256] [--block 5,48,48]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

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
    print("| seed | objects (whole) | blocks | matched whole -> blockwise | blockwise -> whole | s whole | s blockwise |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
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
        n = int(len(set(whole[whole > 0].ravel().tolist())))
        forward, backward = matched_fraction(whole, blockwise), matched_fraction(blockwise, whole)
        total += n
        matched += round(forward * n)
        print(f"| {seed} | {n} | {result.n_blocks} | {forward:.3f} | {backward:.3f} | {t1 - t0:.1f} | {t2 - t1:.1f} |",
              flush=True)
    print(f"all seeds: {matched} of {total} whole-volume objects matched ({matched / total:.1%})")


if __name__ == "__main__":
    main()
