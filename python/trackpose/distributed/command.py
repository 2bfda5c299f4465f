"""``trackpose segment --cluster / --block-size / --zarr-out``: the command-line side of the distributed package.

``add_options`` only touches argparse, so that ``trackpose --help`` imports neither Dask nor torch; ``run_segment``
imports them when it runs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["add_options", "run_segment", "parse_triple"]


def parse_triple(text: str) -> tuple:
    """``"32,256,256"`` -> (32, 256, 256); ``"64"`` -> 64 (every axis); for --block-size / --block-overlap."""
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers Z,Y,X (or Y,X, or one number)") from None
    if not 1 <= len(values) <= 3 or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give one to three non-negative whole numbers, e.g. 32,256,256")
    return values[0] if len(values) == 1 else values


def add_options(parser_or_group, track: bool = False) -> None:
    """Add --cluster, --workers, --threads, --worker-memory and (unless ``track``) --block-size,
    --block-overlap, --zarr-out to a parser (in their own group) or to a given argument group."""
    group = parser_or_group
    if isinstance(parser_or_group, argparse.ArgumentParser):
        group = parser_or_group.add_argument_group(
            "Dask (many cores, many machines, volumes larger than memory; needs pip install trackpose[distributed])")
    group.add_argument("--cluster", default=None, metavar="local|tcp://HOST:PORT",
                       help="run on Dask workers: 'local' starts them on this machine, tcp://HOST:PORT uses a "
                            "running scheduler [default: one process, no Dask]")
    group.add_argument("--workers", type=int, default=None, metavar="N",
                       help="with --cluster local: worker processes [default: cores / threads]")
    group.add_argument("--threads", type=int, default=None, metavar="N",
                       help="with --cluster local: torch threads per worker [default: up to 4]")
    group.add_argument("--worker-memory", default="auto", metavar="SIZE",
                       help="with --cluster local: memory limit per worker, e.g. 4GB [default: memory / workers]")
    if track:
        return
    group.add_argument("--block-size", type=parse_triple, default=None, metavar="Z,Y,X",
                       help="segment each volume block by block (cores of this size, also the output's chunks) "
                            "and merge the labels across the seams; writes OME-Zarr labels")
    group.add_argument("--block-overlap", type=parse_triple, default=None, metavar="Z,Y,X",
                       help="voxels each block reads past its core on each side [default: one object diameter]")
    group.add_argument("--zarr-out", type=Path, default=None, metavar="PATH",
                       help="write the labels as an OME-Zarr label image at PATH (one input)")


def _progress_printer(stream=None):
    from ..batch import Progress
    bars = {}

    def update(done: int, total: int, stage: str) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = Progress(total, label=f"{stage} ", stream=stream)
        bar.update(done, total)
    return update


def _volume_output(path: Path, savedir: Optional[Path], zarr_out: Optional[Path]) -> tuple[Path, Path]:
    from .. import io
    from . import zarr_io
    stem = path.name.split(".")[0] if zarr_io.is_zarr(path) else io.image_stem(path)
    folder = savedir if savedir is not None else path.parent
    return (zarr_out if zarr_out is not None else folder / f"{stem}_cp_masks.zarr"), folder / f"{stem}_cp_masks.tif"


def _inputs(items: Sequence[str]) -> list[Path]:
    from ..batch import collect_images
    from ..errors import InputError
    from . import zarr_io
    paths = []
    for item in items:
        p = Path(item)
        if zarr_io.is_zarr(p) or zarr_io.is_zarr(p.parent):
            paths.append(p)
        else:
            paths.extend(collect_images([item]))
    if not paths:
        raise InputError("no inputs")
    return paths


def run_segment(args, settings: dict, paths: Sequence[str]) -> int:
    """Run ``trackpose segment`` with Dask and/or blockwise; returns the exit code.

    ``settings``: ``trackpose.segment`` keyword arguments with ``model`` as name(s); ``paths``: the inputs as given
    (files, folders of images, Zarr stores).
    """
    try:
        import dask  # noqa: F401
        import zarr  # noqa: F401
    except ImportError as exc:
        print(f"error: --cluster, --block-size and --zarr-out need Dask and Zarr ({exc.name} is missing): "
              "pip install 'trackpose[distributed]'", file=sys.stderr)
        return 2
    from contextlib import nullcontext
    from . import zarr_io
    from .cluster import connect
    from .frames import segment_frames
    from .volume import segment_volume

    inputs = _inputs(paths)
    if args.zarr_out is not None and len(inputs) != 1:
        print(f"error: --zarr-out names one Zarr store; give one input (got {len(inputs)})", file=sys.stderr)
        return 2
    progress = _progress_printer()
    context = connect(args.cluster, n_workers=args.workers, threads=args.threads,
                      memory_limit=args.worker_memory) if args.cluster else nullcontext(None)
    failed = 0
    with context as client:
        if client is not None:
            print(f"Dask dashboard: {client.dashboard_link} ({len(client.scheduler_info()['workers'])} workers)",
                  file=sys.stderr, flush=True)
        if not args.block_size:
            for out in segment_frames(inputs, settings, savedir=args.savedir, client=client,
                                      zarr_out=args.zarr_out, progress=progress):
                print(f"-> {out}", flush=True)
            return 0
        for path in inputs:
            zarr_path, tiff = _volume_output(path, args.savedir, args.zarr_out)
            try:
                if zarr_io.is_complete(zarr_path):
                    print(f"{path}: {zarr_path} is complete already; remove it to segment again", flush=True)
                    continue
                result = segment_volume(path, zarr_path, block_size=args.block_size, overlap=args.block_overlap,
                                        settings=settings, client=client, progress=progress)
            except Exception as exc:  # one volume fails, the others still run
                from ..errors import TrackposeError
                if not isinstance(exc, (TrackposeError, OSError, ValueError)):
                    raise
                print(f"{path}: FAILED: {exc}", file=sys.stderr, flush=True)
                failed += 1
                continue
            uniform = f", {result.uniform_blocks} of one value" if result.uniform_blocks else ""
            print(f"{path}: {result.n_objects} objects in {result.n_blocks} blocks ({result.skipped_blocks} done "
                  f"before{uniform}), diameter {result.diameter:.1f} px, overlap {result.overlap} -> {zarr_path} "
                  f"({result.seconds:.1f} s)", flush=True)
            if not zarr_io.is_zarr(path) and args.zarr_out is None:
                _write_tiff(zarr_path, tiff, path)
    return 1 if failed else 0


def _write_tiff(zarr_path: Path, tiff: Path, source_path: Path, max_bytes: int = 4 << 30) -> None:
    """The usual ``<stem>_cp_masks.tif`` next to the Zarr labels, when it fits in memory and in ImageJ."""
    from .. import io
    from . import zarr_io
    source = zarr_io.open_source(source_path)
    import numpy as np
    if int(np.prod(source.shape)) * 4 > max_bytes:
        print(f"{tiff.name} not written: the labels stay in {zarr_path} (more than {max_bytes >> 30} GB)")
        return
    labels = zarr_io.read_labels(zarr_path)
    meta = source.meta
    if meta is not None:
        meta.axes, meta.source = ("ZYX" if labels.ndim == 3 else "YX"), None
    io.write_labels(tiff, labels, meta, axes="ZYX" if labels.ndim == 3 else "YX")
    print(f"-> {tiff}", flush=True)
