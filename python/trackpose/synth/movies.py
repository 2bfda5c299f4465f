"""Synthetic time-lapses: moving, dividing cells (2D or 3D) rendered frame by frame with exact labels whose ids are
the track ids, and a track table (``Movie.tracks``, CSV via ``write_tracks_csv``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from scipy import ndimage

from ..errors import InputError
from .images import Shape, check_args, random_shape, slow_field
from .volumes import (Shape3D, check_volume_args, draw_style, object_brightness, optics_and_camera, paint, place_nd,
                      random_shape3d, stain_objects)


# ------------------------------------------------------------------------------------------------------ movies

#: Columns of a movie's track table (one row per track and frame) and of its CSV file.
TRACK_COLUMNS = ("track_id", "frame", "label", "z", "y", "x", "parent")
_TRACK_DTYPE = np.dtype([("track_id", np.int32), ("frame", np.int32), ("label", np.int32), ("z", np.float64),
                         ("y", np.float64), ("x", np.float64), ("parent", np.int32)])


@dataclass
class Movie:
    """A synthetic time-lapse with ground truth.

    Attributes
    ----------
    images : (T, Y, X) or (T, Z, Y, X) float32
        Camera counts, one frame per time point (background, optics and noise level shared by all frames).
    labels : same shape, int32
        0 = background; **a label id is the track id**, in every frame: the same id in two frames is the same
        cell, and a new cell (a daughter) gets a new id that no other track ever used.
    tracks : structured array, fields ``TRACK_COLUMNS``
        One row per (track, frame) in which the cell is visible, sorted by frame then track (a missed cell has
        no row in the frames it is missed, see ``gaps``): ``label`` (= track id), centroid ``z, y, x`` of its label in voxel coordinates (``z = 0`` for 2D movies), ``parent`` = the
        mother's track id for a daughter, 0 otherwise. A mother's last row is the frame before her daughters'
        first. A track ends when its cell divides, dies, or leaves the field (or is hidden below the minimum size).
    anisotropy : float
        Z step / XY pixel size of the volumes (1 for 2D).
    """

    images: np.ndarray
    labels: np.ndarray
    tracks: np.ndarray
    anisotropy: float = 1.0

    def gaps(self) -> list[tuple[int, int, int]]:
        """``(track_id, last frame seen, next frame seen)`` of every gap: the cell was missed in the frames
        between (absent from the images and the labels) and came back with the same track id."""
        out = []
        for tid in np.unique(self.tracks["track_id"]):
            frames = self.tracks["frame"][self.tracks["track_id"] == tid]
            for k in np.flatnonzero(np.diff(frames) > 1):
                out.append((int(tid), int(frames[k]), int(frames[k + 1])))
        return out

    def ctc_ground_truth(self) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
        """The ground truth in Cell Tracking Challenge form: ``(labels, rows)``.

        CTC requires a label in every frame from its first to its last, so a track with gaps is cut at each gap:
        the part after a gap gets a new label whose parent is the part before it (a single-child parent, which CTC
        does not count as a division). Daughters' parent is their mother's last part. ``labels`` is the label
        movie with these labels (uint16 or uint32), ``rows`` the ``(label, begin, end, parent)`` lines of
        ``man_track.txt`` (``tracking.evaluate.write_ctc_ground_truth`` writes both). Without gaps the labels
        are the track ids.
        """
        tracks = self.tracks
        ids = np.unique(tracks["track_id"])
        next_label = int(ids.max(initial=0)) + 1
        part = {}                # (track_id, frame) -> CTC label
        last_part = {}           # track_id -> its last CTC label
        rows = []
        parents = {int(t): int(p) for t, p in zip(tracks["track_id"], tracks["parent"])}
        for tid in ids:          # mothers have smaller ids than their daughters: parents are labelled first
            tid = int(tid)
            frames = tracks["frame"][tracks["track_id"] == tid]
            cuts = np.split(frames, np.flatnonzero(np.diff(frames) > 1) + 1)
            parent = last_part.get(parents[tid], 0) if parents[tid] else 0
            for k, run in enumerate(cuts):
                label = tid if k == 0 else next_label
                if k:
                    next_label += 1
                rows.append((label, int(run[0]), int(run[-1]), parent))
                part.update({(tid, int(f)): label for f in run})
                parent = label
            last_part[tid] = parent
        dtype = np.uint16 if next_label <= 65535 else np.uint32
        labels = np.zeros(self.labels.shape, dtype)
        for t in range(len(self.labels)):
            present = tracks["track_id"][tracks["frame"] == t]
            lut = np.zeros(int(self.labels[t].max()) + 1, dtype)
            lut[present] = [part[(int(i), t)] for i in present]
            labels[t] = lut[self.labels[t]]
        return labels, sorted(rows)

    def divisions(self) -> dict[int, list[int]]:
        """Mother track id -> daughter track ids (as visible in the movie)."""
        children: dict[int, list[int]] = {}
        first = self.tracks[np.unique(self.tracks["track_id"], return_index=True)[1]]
        for row in first:
            if row["parent"]:
                children.setdefault(int(row["parent"]), []).append(int(row["track_id"]))
        return children

    def write_tracks_csv(self, path) -> Path:
        """Write ``tracks`` as CSV with the header ``track_id,frame,label,z,y,x,parent``."""
        return write_tracks_csv(self.tracks, path)


def write_tracks_csv(tracks: np.ndarray, path) -> Path:
    """Write a track table (``Movie.tracks``) as CSV: ``track_id,frame,label,z,y,x,parent``; returns the path."""
    path = Path(path)
    if tracks.dtype.names is None or any(name not in tracks.dtype.names for name in TRACK_COLUMNS):
        raise InputError(f"tracks must be a structured array with fields {TRACK_COLUMNS} (Movie.tracks)")
    lines = [",".join(TRACK_COLUMNS)]
    for row in tracks:
        lines.append(f"{row['track_id']},{row['frame']},{row['label']},{row['z']:.3f},{row['y']:.3f},"
                     f"{row['x']:.3f},{row['parent']}")
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class _Cell:
    track_id: int
    parent: int
    template: object            # Shape centred at 0 (2D) or Shape3D
    centre: np.ndarray          # physical
    step: np.ndarray            # last displacement (persistence)
    scale: float                # size relative to the template (daughters start smaller and grow)
    brightness: float
    next_division: float
    push: np.ndarray            # daughters: extra velocity away from the sister for their first frames
    push_frames: int = 0
    missed: int = 0             # consecutive frames (up to now) in which the cell was missed
    seen: bool = False          # visible in at least one frame

    def shape(self):
        s = self.template
        if isinstance(s, Shape3D):
            return s.moved(self.centre, self.scale)
        return Shape(float(self.centre[0]), float(self.centre[1]), s.a * self.scale, s.b * self.scale, s.angle,
                      s.harmonics, s.bumps)

    @property
    def diameter(self) -> float:
        s = self.template
        size = 2 * float(np.prod(s.axes)) ** (1 / 3) if isinstance(s, Shape3D) else 2 * float(np.sqrt(s.a * s.b))
        return size * self.scale


def movie(n_frames: int = 20, shape: Sequence[int] = (256, 256), n_cells: Optional[int] = None,
          kind: str = "nuclei", diameter_range: Optional[Sequence[float]] = None, anisotropy: float = 1.0,
          speed: Optional[float] = None, drift: Optional[Sequence[float]] = None, division_interval: float = 15.0,
          death_rate: float = 0.0, stain: str = "cytoplasm", missed_rate: float = 0.0, max_gap: int = 2,
          seed=None) -> Movie:
    """A time-lapse of moving, dividing cells (2D or 3D) with ground-truth labels and tracks.

    Cells follow a persistent random walk with drift and push their neighbours away; a displacement per frame
    never exceeds 0.3 of the cell's diameter (no teleporting). A cell divides after about ``division_interval``
    frames: in the frame before, it brightens (mitotic rounding); then its track ends and two daughters (new
    track ids, ``parent`` = the mother) appear on opposite sides of the mother's last position, 0.18 diameters
    away, smaller (half the volume), and move apart while growing back. Cells may die (``death_rate``) or leave
    the field; their tracks end.

    With ``missed_rate`` > 0, cells are sometimes **missed**: absent from a frame's image and labels (out of
    focus, too dim), for at most ``max_gap`` consecutive frames, then back with the same track id. Such a gap is
    what a tracker's gap closing must bridge. A cell is never missed in its first frame, in the frame before it
    divides, or in the last frame of the movie, so every gap has a visible cell on both sides (``Movie.gaps``);
    ``Movie.ctc_ground_truth`` gives the tracks in Cell Tracking Challenge form (a new label after each gap).

    Parameters
    ----------
    n_frames : int
    shape : (Y, X) or (Z, Y, X)
        Frame size in pixels / voxels.
    n_cells : int, optional
        Cells in the first frame. Default: about a quarter of the field covered.
    kind : "nuclei" or "cells"
        Nuclear stain (compact, domed) or cell stain (larger, irregular; ``stain`` cytoplasm or membrane).
    diameter_range : (low, high), optional
        Cell diameters in XY pixels. Default (12, 24) for nuclei, (18, 36) for cells.
    anisotropy : float
        3D only: Z step / XY pixel size (objects squashed along Z in voxel space).
    speed : float, optional
        Standard deviation of the random part of a step, pixels per frame per axis. Default 0.06 x mean diameter.
    drift : sequence of floats, optional
        Common displacement per frame, (dy, dx) or (dz, dy, dx) pixels. Default: random direction in XY,
        0.04 x mean diameter per frame.
    division_interval : float
        Mean frames between divisions of a cell (standard deviation 20%); 0 or inf: no divisions.
    death_rate : float in 0..1
        Probability per frame that a cell disappears (its track ends without daughters).
    missed_rate : float in 0..1
        Probability per frame that a visible cell is missed in that frame (a gap in its track).
    max_gap : int >= 1
        Most consecutive frames a cell may be missed.
    stain : "cytoplasm" or "membrane"
        Cell stain when ``kind="cells"``.
    seed : int or numpy SeedSequence, optional
        Same seed -> identical movie; no global random state.

    Returns
    -------
    Movie
        ``images`` and ``labels`` of shape (T,) + shape, ``tracks`` (see :class:`Movie`); label id = track id.
    """
    if kind not in ("nuclei", "cells"):
        raise InputError(f"kind must be 'nuclei' or 'cells', got {kind!r}")
    if stain not in ("cytoplasm", "membrane"):
        raise InputError(f"stain must be 'cytoplasm' or 'membrane', got {stain!r}")
    if int(n_frames) < 1:
        raise InputError(f"n_frames must be >= 1, got {n_frames}")
    if not 0 <= death_rate <= 1:
        raise InputError(f"death_rate is a probability per frame (0..1), got {death_rate}")
    if not 0 <= missed_rate < 1:
        raise InputError(f"missed_rate is a probability per frame (0 <= p < 1), got {missed_rate}")
    if isinstance(max_gap, bool) or int(max_gap) != max_gap or max_gap < 1:
        raise InputError(f"max_gap is a number of frames >= 1, got {max_gap}")
    if diameter_range is None:
        diameter_range = (12, 24) if kind == "nuclei" else (18, 36)
    if len(shape) == 3:
        grid, diameter_range = check_volume_args(shape, diameter_range, n_cells, anisotropy)
        spacing = np.array([float(anisotropy), 1.0, 1.0])
    else:
        grid, diameter_range = check_args(shape, diameter_range, n_cells)
        spacing = np.array([1.0, 1.0])
        anisotropy = 1.0
    ndim = len(grid)
    rng = np.random.default_rng(seed)
    extent = np.array(grid) * spacing
    mean_diameter = float(np.exp(np.mean(np.log(diameter_range))))
    speed = 0.06 * mean_diameter if speed is None else float(speed)
    if drift is None:
        angle = rng.uniform(0, 2 * np.pi)
        drift = np.zeros(ndim)
        drift[-2:] = 0.04 * mean_diameter * np.array([np.sin(angle), np.cos(angle)])
    drift = np.asarray(drift, float)
    if drift.shape != (ndim,):
        raise InputError(f"drift must have one value per axis of shape {tuple(grid)}, got {tuple(drift)}")
    interval = float(division_interval) if division_interval and np.isfinite(division_interval) else np.inf
    if n_cells is None:
        unit = np.pi / 4 * mean_diameter ** 2 if ndim == 2 else np.pi / 6 * mean_diameter ** 3
        n_cells = max(1, int(round(0.25 * np.prod(extent) / unit)))
    elongation, irregularity, protrusions = (1.6, 0.25, 0.0) if kind == "nuclei" else (2.0, 0.5, 0.3)

    def template(diameter, rounder=False):
        # freshly divided cells are rounder and smoother
        e, i, p = (1.0 + 0.5 * (elongation - 1), 0.5 * irregularity, 0.0) if rounder else (elongation, irregularity,
                                                                                          protrusions)
        if ndim == 3:
            return random_shape3d(rng, np.zeros(3), diameter, e, i, p)
        return random_shape(rng, 0.0, 0.0, diameter, e, i, p)

    def cycle(now):
        return now + max(3, int(round(rng.normal(interval, 0.2 * interval)))) if np.isfinite(interval) else np.inf

    axis_speed = np.array([0.3, 1.0, 1.0])  # 3D: cells wander less along Z
    smallest = 2 ** (-1 / ndim)  # a daughter has half its mother's volume (area in 2D)
    growth = 2 ** (1 / ndim / interval) if np.isfinite(interval) else 1.0
    style = draw_style(rng, kind, stain, mean_diameter, extent[0] if ndim == 3 else 1.0)
    slow = slow_field(rng, grid[-2:])
    slow = slow[None] if ndim == 3 else slow
    next_id = 1
    cells: list[_Cell] = []
    for s in place_nd(rng, extent, n_cells, diameter_range, 1.1, lambda c, d: (c, d), margin=0.0):
        centre, diameter = s
        if ndim == 3:  # cells on a coverslip: a layer in the middle of the stack rather than cut by its ends
            centre = np.array([extent[0] * (0.3 + 0.4 * centre[0] / extent[0]), centre[1], centre[2]])
        first_division = rng.uniform(1, interval) if np.isfinite(interval) else np.inf
        cells.append(_Cell(next_id, 0, template(diameter), np.asarray(centre, float), np.zeros(ndim),
                           rng.uniform(smallest, 1.0), float(object_brightness(rng, style, 1)[0]), first_division,
                           np.zeros(ndim)))
        next_id += 1
    min_size = max(8, int(0.1 * diameter_range[0] ** 2)) if ndim == 2 else max(8, int(0.05 * diameter_range[0] ** 3
                                                                                      / anisotropy))

    images, frames, rows = [], [], []
    for t in range(int(n_frames)):
        if t > 0:
            moved = []
            centres = np.array([c.centre for c in cells]).reshape(-1, ndim)
            radii = np.array([c.diameter / 2 for c in cells])
            for i, cell in enumerate(cells):
                if death_rate > 0 and rng.random() < death_rate:
                    continue
                if t >= cell.next_division:
                    direction = rng.standard_normal(ndim)
                    if ndim == 3:  # divide mostly in XY, as cells on a coverslip do
                        direction[0] *= 0.3
                    direction /= max(float(np.linalg.norm(direction)), 1e-9)
                    offset = 0.18 * cell.diameter * direction
                    for sign in (1, -1):
                        daughter = _Cell(next_id, cell.track_id, template(cell.diameter / cell.scale, rounder=True),
                                         cell.centre + sign * offset, np.zeros(ndim), cell.scale * smallest,
                                         cell.brightness * float(rng.uniform(0.9, 1.1)), cycle(t),
                                         sign * 0.08 * cell.diameter * direction, 3)
                        moved.append(daughter)
                        next_id += 1
                    continue
                # neighbours closer than their radii push each other apart (half the overlap per frame)
                gap = centres - cell.centre
                distance = np.linalg.norm(gap, axis=1)
                overlap = np.clip(0.9 * (radii + radii[i]) - distance, 0, None)
                overlap[i] = 0
                push = -(gap / np.maximum(distance, 1e-6)[:, None] * overlap[:, None]).sum(axis=0) * 0.5
                step = drift + 0.5 * cell.step + speed * rng.standard_normal(ndim) * (axis_speed if ndim == 3 else 1)
                step = step + push
                if ndim == 3:  # stay in the layer: a restoring step towards the middle third of the stack
                    low, high = 0.3 * extent[0], 0.7 * extent[0]
                    step[0] += 0.3 * (np.clip(cell.centre[0], low, high) - cell.centre[0])
                if cell.push_frames > 0:
                    step = step + cell.push
                    cell.push_frames -= 1
                limit = 0.3 * cell.diameter
                length = float(np.linalg.norm(step))
                if length > limit:
                    step *= limit / length
                cell.centre = cell.centre + step
                cell.step = step
                cell.scale = min(1.0, cell.scale * growth)
                moved.append(cell)
            cells = moved
        hidden = set()
        if missed_rate > 0 and 0 < t < int(n_frames) - 1:
            for k, cell in enumerate(cells):
                if (cell.seen and cell.missed < max_gap and cell.next_division > t + 1
                        and rng.random() < missed_rate):
                    hidden.add(k)
        for k, cell in enumerate(cells):
            cell.missed = cell.missed + 1 if k in hidden else 0
        missed = [cell for k, cell in enumerate(cells) if k in hidden]
        cells = [cell for k, cell in enumerate(cells) if k not in hidden]
        shapes = [cell.shape() for cell in cells]
        painted, distance, kept = paint(shapes, grid, spacing, min_size)
        cells = [cells[k] for k in kept]  # a cell no longer visible (left, hidden) ends its track here
        for cell in cells:
            cell.seen = True
        ids = np.array([0] + [cell.track_id for cell in cells], np.int32)
        labels = ids[painted]
        values = np.zeros(next_id, np.float32)
        for cell in cells:
            mitotic = 1.5 if cell.next_division == t + 1 else 1.0
            values[cell.track_id] = cell.brightness * mitotic
        signal = stain_objects(rng, style, labels, distance, values, spacing)
        images.append(optics_and_camera(rng, style, signal, spacing, slow))
        frames.append(labels)
        if cells:
            track_ids = ids[1:]
            centroids = np.array(ndimage.center_of_mass(np.ones(grid), labels, track_ids)).reshape(-1, ndim)
            for cell, centroid in zip(cells, centroids):
                z, y, x = (centroid if ndim == 3 else (0.0, *centroid))
                rows.append((cell.track_id, t, cell.track_id, z, y, x, cell.parent))
        cells = cells + missed  # missed cells live on (and move) unseen
    tracks = np.array(rows, _TRACK_DTYPE)
    tracks = tracks[np.lexsort((tracks["track_id"], tracks["frame"]))]
    return Movie(np.stack(images), np.stack(frames), tracks, float(anisotropy))
