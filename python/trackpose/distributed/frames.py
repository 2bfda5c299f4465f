"""Image files and movie frames over Dask workers, written as they finish, resumable.

Work units are (file, frame): a movie (a T axis) gives one unit per frame, any other image one unit. A worker
reads only its frame (TIFF through tifffile's Zarr store, or Zarr), segments it with the model it loaded once,
and writes the frame's labels itself:

- a movie's frames go to ``<savedir>/<stem>_cp_masks.frames/t00012.tif`` (written to a temporary name, then
  renamed: a frame file that exists is whole, and a resumed run skips it); when all are there, they are gathered
  into the usual ``<stem>_cp_masks.tif`` (T[Z]YX) if it stays under ``max_tiff_bytes``;
- with ``zarr_out``, frames go into an OME-Zarr label image (one chunk per frame), each followed by a marker file;
- other images go to ``<savedir>/<stem>_cp_masks.tif`` as ``trackpose segment`` writes them.

A frame's labels are the ones ``trackpose.segment`` gives for it alone: ids and order never depend on which worker
ran it or when. The folder of frames records the settings it was made with; other settings start it afresh.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .. import io
from ..errors import TrackposeError
from . import zarr_io
from .cluster import run_tasks, worker_model

log = logging.getLogger("trackpose")

__all__ = ["segment_frames", "Unit", "settings_fingerprint"]

CANONICAL = "TZCYXS"
#: movies gathered into one TIFF only below this size (ImageJ opens them whole)
MAX_TIFF_BYTES = 4 << 30


@dataclass
class Unit:
    """One piece of work: a file, and a frame of it (None: the whole file)."""
    source: zarr_io.LazySource
    frame: Optional[int]
    output: str  # the frame's TIFF, the whole file's TIFF, or the Zarr group
    marker: Optional[str] = None  # Zarr frames: a file written after the frame


def settings_fingerprint(settings: dict) -> str:
    """A short hash of the settings that change the labels (model names included)."""
    text = json.dumps({k: str(v) for k, v in sorted(settings.items()) if k not in ("device", "gpu", "batch_size")},
                      sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _canonical(pixels: np.ndarray, axes: str) -> tuple[np.ndarray, str]:
    order = sorted(range(len(axes)), key=lambda k: CANONICAL.index(axes[k]))
    return np.transpose(pixels, order), "".join(axes[k] for k in order)


def segment_unit(unit: Unit, settings: dict, model) -> int:
    """Segment one unit on a worker and write its labels; returns the number of objects."""
    from ..segmentation import segment

    source = unit.source
    if unit.frame is None:
        pixels, axes = source[...], source.axes
    else:
        t = source.axes.index("T")
        pixels = source[tuple(unit.frame if k == t else slice(None) for k in range(source.ndim))]
        axes = source.axes.replace("T", "")
    pixels, axes = _canonical(pixels, axes)
    kwargs = dict(settings)
    kwargs.pop("model", None)
    for key, letters in (("channel_axis", "CS"), ("z_axis", "Z")):
        found = [axes.index(a) for a in letters if a in axes]
        if found:
            kwargs.setdefault(key, found[0])
        if kwargs.get(key) is None:
            kwargs.pop(key, None)
    if kwargs.get("do_3d") and kwargs.get("anisotropy") is None and source.meta and source.meta.anisotropy:
        kwargs["anisotropy"] = float(source.meta.anisotropy)  # else segment tells it from each frame's stack
    masks = segment(pixels, model=worker_model(model, settings.get("device"), settings.get("gpu", False)),
                    **kwargs).masks
    if unit.marker is not None:  # a frame of a Zarr label image, then its marker
        import zarr
        zarr.open_array(str(Path(unit.output) / "0"), mode="r+")[unit.frame] = masks
        Path(unit.marker).write_text("done\n")
    else:
        label_axes = axes.replace("C", "").replace("S", "")
        meta = io.ImageMeta(axes=label_axes, pixel_size_x=source.meta.pixel_size_x,
                            pixel_size_y=source.meta.pixel_size_y, z_spacing=source.meta.z_spacing,
                            unit=source.meta.unit) if source.meta else None
        io.write_labels(unit.output, masks, meta, axes=label_axes)
    return int(masks.max(initial=0))


def _frames_folder(folder: Path, fingerprint: str) -> None:
    """Create the folder of a movie's frames; one made with other settings is emptied first."""
    stamp = folder / "settings.json"
    if folder.exists() and (not stamp.exists() or json.loads(stamp.read_text()).get("fingerprint") != fingerprint):
        log.info("%s was made with other settings: starting it afresh", folder)
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps({"fingerprint": fingerprint}) + "\n")


def plan_units(paths: Sequence, savedir: Optional[Path], settings: dict,
               zarr_out: Optional[Path] = None) -> tuple[list[Unit], list]:
    """The units still to do (finished frames skipped) and what to gather afterwards: (movie source, frames
    folder or Zarr group, TIFF path or None) per movie."""
    fingerprint = settings_fingerprint(settings)
    units, movies = [], []
    if zarr_out is not None and len(paths) != 1:
        raise TrackposeError(f"--zarr-out names one Zarr store; give one input (got {len(paths)})")
    for path in paths:
        source = zarr_io.open_source(path)
        folder = Path(savedir) if savedir is not None else Path(path).parent
        folder.mkdir(parents=True, exist_ok=True)
        stem = io.image_stem(Path(path)) if not zarr_io.is_zarr(path) else Path(path).name.split(".")[0]
        tiff = folder / f"{stem}_cp_masks.tif"
        if "T" not in source.axes and zarr_out is None:
            units.append(Unit(source, None, str(tiff)))
            continue
        n_frames = source.shape[source.axes.index("T")] if "T" in source.axes else 1
        if zarr_out is not None:
            group = Path(zarr_out)
            markers = Path(f"{group}.trackpose-frames")
            if not zarr_io.is_complete(group):
                _frames_folder(markers, fingerprint)
                shape = tuple(s for a, s in zip(source.axes, source.shape) if a in "TZYX")
                axes = "".join(a for a in source.axes if a in "TZYX")
                if "T" not in axes:
                    shape, axes = (1,) + shape, "T" + axes
                zarr_io.create_labels(group, shape, (1,) + shape[1:], axes, meta=source.meta, name=stem)
                for t in range(n_frames):
                    marker = markers / f"t{t:05d}.done"
                    if not marker.exists():
                        units.append(Unit(source, t if "T" in source.axes else None, str(group), str(marker)))
            movies.append((source, group, None))
        else:
            frames = folder / f"{stem}_cp_masks.frames"
            _frames_folder(frames, fingerprint)
            for t in range(n_frames):
                out = frames / f"t{t:05d}.tif"
                if not out.exists():
                    units.append(Unit(source, t, str(out)))
            movies.append((source, frames, tiff))
    return units, movies


def gather(movies: list, max_tiff_bytes: int = MAX_TIFF_BYTES) -> list[Path]:
    """After all units: finish each movie's Zarr (pyramid, complete mark) or gather its frames into one TIFF."""
    written = []
    for source, folder, tiff in movies:
        if tiff is None:
            if not zarr_io.is_complete(folder):
                zarr_io.write_pyramid(folder)
                zarr_io.mark_complete(folder)
                shutil.rmtree(f"{folder}.trackpose-frames", ignore_errors=True)
            written.append(Path(folder))
            continue
        files = sorted(Path(folder).glob("t*.tif"))
        frame, meta = io.read_image(files[0])
        if frame.nbytes * len(files) > max_tiff_bytes:
            log.info("%s: %d frames stay in %s (more than %d GB as one TIFF)", source.path, len(files), folder,
                     max_tiff_bytes >> 30)
            written.append(Path(folder))
            continue
        movie = np.stack([frame] + [io.read_image(f)[0] for f in files[1:]])
        meta.axes = "T" + meta.axes
        meta.source = None
        if source.meta is not None:
            meta.time_interval = source.meta.time_interval
        io.write_labels(tiff, movie, meta, axes=meta.axes)
        written.append(tiff)
    return written


def segment_frames(paths: Sequence, settings: dict, savedir: Optional[Path] = None, client=None,
                   zarr_out: Optional[Path] = None, progress=None) -> list[Path]:
    """Segment image files and movie frames, over ``client``'s workers (inline without one).

    Parameters
    ----------
    paths : TIFF files or (OME-)Zarr stores; a T axis makes a movie
    settings : ``trackpose.segment`` keyword arguments, ``model`` as a name or path (each worker loads it once)
    savedir : folder for outputs (default: next to each input)
    zarr_out : write one input's labels as an OME-Zarr label image here instead of TIFF
    progress : callable(done, total, stage), optional

    Returns
    -------
    The outputs written (TIFF files, frame folders or Zarr groups).
    """
    settings = dict(settings)
    model = settings.pop("model")
    units, movies = plan_units(paths, savedir, dict(settings, model=model), zarr_out)
    run_tasks(client, progress, "frames", segment_unit, [(u, settings, model) for u in units])
    return [Path(u.output) for u in units if u.frame is None and u.marker is None] + gather(movies)
