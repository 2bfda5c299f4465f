"""Write a synthetic time-lapse of moving, dividing cells with its ground truth, for demos and tracking tests.

    PYTHONPATH=python python examples/make_movie.py OUT                        # 2D: 30 frames of 256 x 256
    PYTHONPATH=python python examples/make_movie.py OUT --depth 24 --anisotropy 2 --frames 15 --size 128

Writes into OUT (created if needed):

- ``movie.tif``: the images as an ImageJ hyperstack (TYX, or TZYX with ``--depth``), float32, with the pixel size,
  Z step (``anisotropy`` x pixel size) and frame interval as calibration, so Fiji and TrackMate read them.
- ``movie_masks.tif``: the ground-truth labels (uint16, same axes). **A label id is the track id** in every frame.
- ``movie_tracks.csv``: ``track_id,frame,label,z,y,x,parent``, one row per track and frame; centroids in pixels
  (z in planes); ``parent`` is the mother's track id for a daughter cell, 0 otherwise.

Everything is a function of ``--seed`` (same seed, same files). See docs/synthetic-data.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from trackpose import io, synth


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=256, help="Y and X size in pixels")
    parser.add_argument("--depth", type=int, default=0, help="Z planes (0: a 2D movie)")
    parser.add_argument("--anisotropy", type=float, default=2.0, help="Z step / pixel size (3D only)")
    parser.add_argument("--kind", choices=("nuclei", "cells"), default="nuclei")
    parser.add_argument("--stain", choices=("cytoplasm", "membrane"), default="cytoplasm", help="for --kind cells")
    parser.add_argument("--cells", type=int, default=None, help="cells in the first frame (default: from the size)")
    parser.add_argument("--division-interval", type=float, default=20.0, help="mean frames between divisions")
    parser.add_argument("--death-rate", type=float, default=0.005, help="probability per cell and frame")
    parser.add_argument("--pixel-size", type=float, default=0.65, help="micron")
    parser.add_argument("--interval", type=float, default=300.0, help="seconds between frames")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    shape = (args.depth, args.size, args.size) if args.depth else (args.size, args.size)
    movie = synth.movie(n_frames=args.frames, shape=shape, n_cells=args.cells, kind=args.kind, stain=args.stain,
                        anisotropy=args.anisotropy if args.depth else 1.0,
                        division_interval=args.division_interval, death_rate=args.death_rate, seed=args.seed)
    axes = "TZYX" if args.depth else "TYX"
    meta = io.ImageMeta(axes=axes, pixel_size_x=args.pixel_size, pixel_size_y=args.pixel_size, unit="micron",
                        z_spacing=args.pixel_size * movie.anisotropy if args.depth else None,
                        time_interval=args.interval)
    args.out.mkdir(parents=True, exist_ok=True)
    image_path = io.write_tiff(args.out / "movie.tif", movie.images, meta, axes=axes)
    masks_path = io.write_labels(args.out / "movie_masks.tif", movie.labels, meta, axes=axes)
    tracks_path = movie.write_tracks_csv(args.out / "movie_tracks.csv")

    tracks = movie.tracks
    n_tracks = len(np.unique(tracks["track_id"]))
    print(f"{image_path}: {axes} {movie.images.shape}, pixel {args.pixel_size} micron"
          + (f", Z step {meta.z_spacing:g} micron" if args.depth else "") + f", {args.interval:g} s per frame")
    print(f"{masks_path}: labels = track ids, up to {int(movie.labels.max())}")
    print(f"{tracks_path}: {len(tracks)} rows, {n_tracks} tracks, {len(movie.divisions())} divisions, "
          f"{len(np.unique(movie.labels[0])) - 1} cells in the first frame, {len(np.unique(movie.labels[-1])) - 1} "
          "in the last")


if __name__ == "__main__":
    main()
