"""``track``: objects of a movie (segmented, or given as label images) -> linked tracks; ``save_tracking``."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from ..errors import InputError
from .colony import check_colony_settings, colony_track
from .graph import track_ids, tracklets
from .lap import Edges, LAPSettings, lap_track
from .objects import concat_spots, frame_spots
from .overlap import (OVERLAP_DEFAULTS, LabelOverlaps, check_overlap_settings, overlap_track,
                      overlap_track_labels)
from .spots import Spots

__all__ = ["Tracking", "track", "track_label_frames", "save_tracking", "TRACKERS", "DEFAULT_TRACKER"]

TRACKERS = ("lap", "overlap", "overlap-voxels", "colony", "lap-iou")
#: The tracker of ``track``/``track_label_frames`` and of ``trackpose track`` when none is named: the colony tracker,
#: by far the best on dividing colonies and at least as good as the LAP and overlap trackers on the general
#: synthetic movies (docs/benchmarks.md, Colony tracking)
DEFAULT_TRACKER = "colony"
#: What the TrackMate XML names as the tracker of the colony tracker's links: TrackMate's manual tracker (links made
#: outside TrackMate's own trackers, which TrackMate reads back), with LINKED_BY saying what made them
COLONY_XML_TRACKER = "MANUAL_TRACKER"


@dataclass
class Tracking:
    """Result of :func:`track`.

    spots : Spots (row = spot ID); edges : Edges (source = earlier frame, cost = TrackMate's link cost);
    track_id : (n,) int, 1, 2, ... per spot (a spot with no link is a track of its own); labels : list of the
    per-frame label images (the object ids of ``spots.label``); spacing : (dz,) dy, dx; tracker and its
    settings in TrackMate's keys.
    """

    spots: Spots
    edges: Edges
    track_id: np.ndarray
    labels: list
    spacing: tuple
    tracker: str
    tracker_settings: dict
    time_interval: float = 1.0
    detector: str = "LABEL_IMAGE_DETECTOR"
    detector_settings: dict = field(default_factory=lambda: {"TARGET_CHANNEL": 1, "SIMPLIFY_CONTOURS": False})

    def tracked_labels(self) -> np.ndarray:
        """(T, [Z,] Y, X) movie whose label = track id (uint16 below 65536 tracks, as it is saved: no copy)."""
        dtype = np.uint16 if self.track_id.max(initial=0) < 65536 else np.int32
        out = np.zeros((len(self.labels),) + self.labels[0].shape, dtype)
        for t, lab in enumerate(self.labels):
            rows = np.flatnonzero(self.spots.frame == t)
            lut = np.zeros(int(lab.max()) + 1, dtype)
            lut[self.spots.label[rows]] = self.track_id[rows]
            out[t] = lut[lab]
        return out


def _check_label_frame(labels: np.ndarray, t: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" and not (labels.dtype.kind == "f" and np.all(labels == np.round(labels))):
        raise InputError(f"frame {t}: label images must hold integer ids, got dtype {labels.dtype}")
    labels = labels.astype(np.int64 if labels.max(initial=0) >= 2 ** 31 else np.int32)
    if labels.min(initial=0) < 0:
        raise InputError(f"frame {t}: label ids must be >= 0")
    ids = np.unique(labels)
    ids = ids[ids > 0]
    if len(ids) == 0:
        raise InputError(f"frame {t} has no objects (an empty label image); remove the frame or check the "
                         "segmentation settings")
    if ids[-1] != len(ids):
        raise InputError(f"frame {t}: label ids are not contiguous (found {len(ids)} objects with ids up to "
                         f"{ids[-1]}); relabel them 1..n (e.g. skimage.segmentation.relabel_sequential)")
    return labels


def _lap_settings(lap) -> LAPSettings:
    if lap is None:
        return LAPSettings()
    if isinstance(lap, LAPSettings):
        return lap
    lap = dict(lap)
    if lap and all(k.isupper() for k in lap):
        return LAPSettings.from_trackmate(lap)
    return LAPSettings(**lap)


def track_label_frames(label_frames: Iterable, *, spacing=None, tracker: str = DEFAULT_TRACKER, lap=None,
                       overlap=None, time_interval: float = 1.0, progress: Optional[Callable] = None,
                       colony: Optional[dict] = None) -> Tracking:
    """Track objects given as label images, one per frame (ids independent from frame to frame).

    Parameters
    ----------
    label_frames : iterable of (Y, X) or (Z, Y, X) integer arrays
        Frame t's objects are labelled 1..n_t.
    spacing : (dy, dx) or (dz, dy, dx), optional
        Pixel/voxel size in physical units; distances (``lap``) are in these units.
    tracker : "colony" (default), "lap", "overlap", "overlap-voxels" or "lap-iou"
        Motion-compensated overlap with divisions and gap closing (2D/3D, ``tracking.colony``); TrackMate's LAP
        tracker; TrackMate's overlap tracker on outlines (2D); overlap on the voxels (2D/3D); the LAP tracker with
        the mask overlap as the link cost and the distances as gates (2D/3D, ``lap`` settings).
    lap : LAPSettings or dict, optional
        For ``tracker="lap"`` (an error with another tracker): snake-case fields or TrackMate keys; TrackMate's
        defaults otherwise.
    overlap : dict, optional
        IOU_CALCULATION ("PRECISE"/"FAST"), SCALE_FACTOR, MIN_IOU (TrackMate's keys; defaults 0.3 IoU).
    progress : callable(stage, done, total), optional
    colony : dict, optional
        The colony tracker's settings (``tracking.colony.COLONY_DEFAULTS`` keys).
    """
    if tracker not in TRACKERS:
        raise InputError(f"tracker must be one of {', '.join(TRACKERS)}, got {tracker!r}")
    if lap is not None and tracker not in ("lap", "lap-iou"):
        raise InputError(f"LAP settings were given but the tracker is {tracker!r} (the default is "
                         f"{DEFAULT_TRACKER!r}); pass tracker='lap' (or 'lap-iou') to use them")
    if colony and tracker != "colony":
        raise InputError(f"colony tracker settings were given but the tracker is {tracker!r}; pass "
                         "tracker='colony' to use them")
    settings_lap = _lap_settings(lap) if tracker in ("lap", "lap-iou") else None
    ov = {**OVERLAP_DEFAULTS, **(overlap or {})}
    settings_colony = check_colony_settings(colony or {}) if tracker == "colony" else None
    if tracker in ("overlap", "overlap-voxels"):
        check_overlap_settings(ov["IOU_CALCULATION"], float(ov["SCALE_FACTOR"]), float(ov["MIN_IOU"]))
    frames, parts = [], []
    for t, labels in enumerate(label_frames):
        labels = _check_label_frame(labels, t)
        if frames and labels.shape != frames[0].shape:
            raise InputError(f"frame {t} has shape {labels.shape}, frame 0 {frames[0].shape}")
        if spacing is None:
            spacing = (1.0,) * labels.ndim
        if len(spacing) != labels.ndim:
            raise InputError(f"spacing {tuple(spacing)} does not match {labels.ndim}D frames")
        parts.append(frame_spots(labels, t, spacing=spacing))
        frames.append(labels)
        if progress:
            progress("objects", t + 1, None)
    if not frames:
        raise InputError("the movie has no frames")
    spots = concat_spots(parts)
    if tracker == "lap":
        edges = lap_track(spots, settings_lap, progress=(lambda d, n: progress("linking", d, n)) if progress else None)
        tsettings, tname = settings_lap.to_trackmate(), "SPARSE_LAP_TRACKER"
    elif tracker == "lap-iou":
        gap = settings_lap.max_frame_gap if settings_lap.allow_gap_closing else 1
        overlaps = LabelOverlaps.from_labels(spots, enumerate(frames), gap)
        edges = lap_track(spots, settings_lap, overlaps=overlaps,
                          progress=(lambda d, n: progress("linking", d, n)) if progress else None)
        tsettings, tname = {**settings_lap.to_trackmate(), "LINKING_COST": "IOU"}, "TRACKPOSE_IOU_LAP_TRACKER"
    elif tracker == "overlap":
        if frames[0].ndim == 3:
            raise InputError("the outline overlap tracker is 2D (as TrackMate's); use --tracker overlap-voxels")
        edges = overlap_track(spots, ov["IOU_CALCULATION"], float(ov["SCALE_FACTOR"]), float(ov["MIN_IOU"]))
        tsettings, tname = ov, "OVERLAP_TRACKER"
    elif tracker == "colony":
        edges = colony_track(spots, frames, spacing, settings_colony)
        tsettings = {"LINKED_BY": "trackpose colony tracker", **settings_colony}
        tname = COLONY_XML_TRACKER
    else:
        edges = overlap_track_labels(spots, enumerate(frames), float(ov["MIN_IOU"]))
        tsettings, tname = {**ov, "IOU_CALCULATION": "PRECISE"}, "OVERLAP_TRACKER"
    return Tracking(spots, edges, track_ids(len(spots), edges), frames, tuple(float(s) for s in spacing), tname,
                    tsettings, float(time_interval))


def track(movie=None, *, labels=None, spacing=None, tracker: str = DEFAULT_TRACKER, lap=None, overlap=None,
          time_interval: float = 1.0, segment_settings: Optional[dict] = None,
          progress: Optional[Callable] = None, colony: Optional[dict] = None) -> Tracking:
    """Segment each frame of a movie with ``trackpose.segment`` (or take label images) and track the objects.

    Parameters
    ----------
    movie : array (T, [Z,] Y, X[, C]), optional
        Frames are segmented one at a time with ``segment_settings`` (``trackpose.segment``'s keywords); only
        the integer labels are kept.
    labels : array (T, [Z,] Y, X) of int, optional
        Label images instead of ``movie``.
    Other parameters: see :func:`track_label_frames`.
    """
    if (movie is None) == (labels is None):
        raise InputError("give either movie or labels")
    if labels is not None:
        return track_label_frames(iter(labels), spacing=spacing, tracker=tracker, lap=lap, overlap=overlap,
                                  time_interval=time_interval, progress=progress, colony=colony)
    from ..models import DEFAULT_MODEL, load_model
    from ..segmentation import segment
    settings = dict(segment_settings or {})
    settings.setdefault("model", DEFAULT_MODEL)
    recorded = dict(settings)
    model = settings["model"]
    names = model if isinstance(model, (list, tuple)) else [model]
    loaded = [load_model(m, device=settings.get("device"), gpu=settings.get("gpu", False)) for m in names]
    settings["model"] = loaded if len(loaded) > 1 else loaded[0]  # loaded once for all frames

    def frames():  # one frame at a time: only its integer labels are kept
        for t in range(len(movie)):
            masks = segment(np.asarray(movie[t]), **settings).masks
            if progress:
                progress("segmentation", t + 1, len(movie))
            yield masks
    result = track_label_frames(frames(), spacing=spacing, tracker=tracker, lap=lap, overlap=overlap,
                                time_interval=time_interval, progress=progress, colony=colony)
    result.detector = "TRACKPOSE_DETECTOR"
    result.detector_settings = {k: v for k, v in recorded.items() if isinstance(v, (int, float, str, bool))}
    return result


def save_tracking(result: Tracking, out, name: str = "tracks", *, source: Optional[Path] = None,
                  unit: str = "pixel", overwrite: bool = False, meshes=True) -> Path:
    """Write ``out/``: ``ctc/`` (maskTTT.tif, res_track.txt), ``<name>.xml`` (TrackMate), ``spots.csv``,
    ``edges.csv``, ``tracks.csv`` and ``<name>_tracked.tif`` (label = track id); for 3D movies also
    ``<name>.xml.meshes`` (TrackMate 9's mesh side file: ``export_trackmate``) unless ``meshes`` is False.
    ``meshes`` may be a dict of :func:`trackpose.meshes.surfaces`'s ``simplify`` and ``smoothing``.

    Everything is written into a temporary folder next to ``out`` and renamed at the end, so ``out`` is either
    complete or absent. An existing non-empty ``out`` is an error unless ``overwrite``.
    """
    from .. import io
    from .export_ctc import write_ctc
    from .export_trackmate import label_meshes, write_trackmate_xml
    from .tables import write_tables
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise InputError(f"{out} exists and is not empty; choose a new --out folder (or --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        sp, ed = result.spots, result.edges
        n_frames = len(result.labels)
        label, rows = tracklets(sp, ed)
        write_ctc(tmp / "ctc", sp, label, rows, enumerate(result.labels), n_frames)
        write_tables(tmp, sp, ed, result.track_id, result.time_interval)
        shape = result.labels[0].shape
        dz = result.spacing[0] if len(shape) == 3 else 1.0
        image = {"filename": source.name if source else "", "folder": str(source.parent) + os.sep if source else "",
                 "width": shape[-1], "height": shape[-2], "nslices": shape[0] if len(shape) == 3 else 1,
                 "nframes": n_frames, "pixelwidth": result.spacing[-1], "pixelheight": result.spacing[-2],
                 "voxeldepth": dz, "timeinterval": result.time_interval}
        surfaces = None  # 3D: TrackMate 9's <name>.xml.meshes, computed frame by frame while it is written
        if meshes and len(shape) == 3:
            surfaces = label_meshes(result.labels, result.spacing, **(meshes if isinstance(meshes, dict) else {}))
        write_trackmate_xml(tmp / f"{name}.xml", sp, ed, result.track_id, image=image, tracker=result.tracker,
                            tracker_settings=result.tracker_settings, detector=result.detector,
                            detector_settings=result.detector_settings, spatial_units=unit,
                            time_interval=result.time_interval, meshes=surfaces)
        meta = io.ImageMeta(axes="TZYX" if len(shape) == 3 else "TYX", pixel_size_x=result.spacing[-1],
                            pixel_size_y=result.spacing[-2], z_spacing=dz if len(shape) == 3 else None,
                            unit=None if unit == "pixel" else unit, time_interval=result.time_interval)
        io.write_labels(tmp / f"{name}_tracked.tif", result.tracked_labels(), meta)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
