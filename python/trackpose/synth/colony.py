"""Synthetic growing colonies of rod-shaped cells (2D or 3D) with exact labels and CTC ground truth.

What defeats classical trackers on bacterial colonies, reproduced with a seeded simulation:

- **Rods** (spherocylinders: a segment of length ``l`` between two caps of radius ``r``) that grow along their long
  axis at a per-cell exponential rate and **divide at mid-length** into two daughters that continue along the same
  axis (a mother's last frame is the frame before her daughters' first).
- **Colony expansion.** Growth pushes the cells outward: each frame the positions are scaled about the colony's
  centre so that the colony's area (volume in 3D) follows the cells' total area, then overlaps are relaxed by
  pairwise repulsion between points along the rods (translation and rotation). Cells at the rim therefore move
  further per frame than a cell radius, while cells at the centre barely move. A slow random drift of the whole
  colony (the stage) is added.
- **Crowding.** The cells touch: a pixel belongs to the rod whose axis is nearest in units of its radius, out to
  ``fill`` radii, so neighbouring rods share borders without gaps inside the colony.
- **No gaps in time** by default: every cell is visible in every frame of its life (frames are large enough for
  the colony). ``drop`` > 0 removes cells from single frames of the labels (missed detections; the images still
  show them); the cell keeps its id after the gap.

``colony`` returns a :class:`Colony`: ``labels`` whose id is the cell's track id (a new id per daughter; a gap keeps
the id), the lineage rows ``(label, begin, end, parent)``, a simple fluorescence-like image per frame,
``ctc_ground_truth()``: the Cell Tracking Challenge ground truth (``man_track.txt`` rows and masks), and
``frame_labels(t)``: frame ``t`` relabelled 1..n (ids independent from frame to frame: a tracker's input).
Pure numpy/scipy and a function of its arguments and ``seed``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from ..errors import InputError

__all__ = ["Colony", "colony"]


@dataclass
class Colony:
    """A synthetic colony time-lapse with ground truth.

    Attributes
    ----------
    images : (T, [Z,] Y, X) float32
        Fluorescence-like frames (bright cells, darker borders, blur and noise).
    labels : same shape, int32
        0 = background; the id is the cell's track id in every frame it is seen in (a daughter gets a new id; a
        cell missed in a frame, see ``drop``, keeps its id after the gap).
    tracks : (n, 4) int64
        Lineage rows ``label, begin, end, parent`` (parent 0 for the founders): a cell's first and last frame
        (it may be missing in frames in between, ``gaps``).
    gaps : (m, 2) int64
        ``label, frame`` of each missed detection.
    """

    images: np.ndarray
    labels: np.ndarray
    tracks: np.ndarray
    gaps: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))

    def frame_labels(self, t: int) -> np.ndarray:
        """Frame ``t`` with its objects relabelled 1..n in the order of their ids (a tracker's input)."""
        from ..masks import renumber
        return renumber(self.labels[t])

    def relabelled(self) -> np.ndarray:
        """(T, ...) label movie with ids 1..n per frame, unrelated between frames."""
        return np.stack([self.frame_labels(t) for t in range(len(self.labels))])

    def divisions(self) -> dict:
        """Mother label -> [daughter labels]."""
        out: dict = {}
        for lab, _, _, parent in self.tracks.tolist():
            if parent:
                out.setdefault(parent, []).append(lab)
        return out

    def ctc_ground_truth(self):
        """``(labels, rows)`` for ``write_ctc_ground_truth``: CTC masks and ``man_track.txt`` rows.

        The CTC format (and py-ctcmetrics' validation) needs a label in every frame from its begin to its end, so
        the part of a track after a gap gets a new label whose parent is the part before (the CTC way of writing
        a gap: a link across the missing frames, not a division). Without gaps this is ``labels`` and
        ``tracks``.
        """
        labels = self.labels.copy()
        rows = [[int(v) for v in r] for r in self.tracks]
        if len(self.gaps) == 0:
            return labels, [tuple(r) for r in rows]
        missing: dict = {}
        for lab, t in self.gaps.tolist():
            missing.setdefault(lab, set()).add(t)
        current = {r[0]: r[0] for r in rows}  # the CTC label that a cell's pixels carry from here on
        next_label = int(self.tracks[:, 0].max()) + 1
        out = []
        for lab, begin, end, parent in [list(r) for r in rows]:
            piece = [lab, begin, None, current.get(parent, parent) if parent else 0]
            for t in range(begin, end + 1):
                if t in missing.get(lab, ()):
                    if piece[2] is None:
                        piece[2] = t - 1
                        out.append(piece)
                    continue
                if piece[2] is not None:  # first frame after a gap: a new label, parent = the piece before
                    piece = [next_label, t, None, piece[0]]
                    next_label += 1
                labels[t][self.labels[t] == lab] = piece[0]
            piece[2] = end
            out.append(piece)
            current[lab] = piece[0]  # daughters' parent: the mother's last piece
        return labels, [tuple(r) for r in out]


class _Cells:
    """State of the simulation: one row per living cell (positions in array axis order, pixels)."""

    def __init__(self, ndim):
        self.ndim = ndim
        self.id = np.zeros(0, np.int64)
        self.pos = np.zeros((0, ndim))
        self.axis = np.zeros((0, ndim))
        self.length = np.zeros(0)   # total tip-to-tip length
        self.radius = np.zeros(0)
        self.rate = np.zeros(0)     # per-frame length factor
        self.div_length = np.zeros(0)

    def area(self) -> np.ndarray:
        seg = np.maximum(self.length - 2 * self.radius, 0)
        if self.ndim == 2:
            return 2 * self.radius * seg + np.pi * self.radius ** 2
        return np.pi * self.radius ** 2 * seg + 4 / 3 * np.pi * self.radius ** 3

    def take(self, keep):
        for name in ("id", "pos", "axis", "length", "radius", "rate", "div_length"):
            setattr(self, name, getattr(self, name)[keep])

    def extend(self, **cols):
        for name, value in cols.items():
            setattr(self, name, np.concatenate([getattr(self, name), value]))


def _unit(v):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _relax(cells: _Cells, iterations: int, rng, pull: float = 0.08) -> None:
    """Push overlapping rods apart: repulsion between points spaced along each axis (translation + rotation),
    while every cell is pulled by ``pull`` pixels per round towards the colony's centre (the colony stays compact,
    and growth in its interior pushes its rim outward)."""
    if len(cells.id) < 2:
        return
    for _ in range(iterations):
        inward = cells.pos.mean(axis=0) - cells.pos
        cells.pos += pull * _unit(inward) * np.minimum(np.linalg.norm(inward, axis=1), 1)[:, None]
        seg = np.maximum(cells.length - 2 * cells.radius, 0)
        k = np.maximum(2, np.ceil(seg / cells.radius).astype(int) + 1)
        owner = np.repeat(np.arange(len(k)), k)
        frac = np.concatenate([np.linspace(-0.5, 0.5, n) for n in k])
        s = frac * seg[owner]
        pts = cells.pos[owner] + s[:, None] * cells.axis[owner]
        rad = cells.radius[owner]
        pairs = cKDTree(pts).query_pairs(2 * cells.radius.max(), output_type="ndarray")
        if len(pairs):
            pairs = pairs[owner[pairs[:, 0]] != owner[pairs[:, 1]]]
        if len(pairs) == 0:
            continue
        i, j = pairs[:, 0], pairs[:, 1]
        d = pts[i] - pts[j]
        dist = np.linalg.norm(d, axis=1)
        overlap = rad[i] + rad[j] - dist
        hit = overlap > 0
        if not hit.any():
            continue
        i, j, d, dist, overlap = i[hit], j[hit], d[hit], dist[hit], overlap[hit]
        # coincident points: a random direction (seeded)
        zero = dist < 1e-9
        d[zero] = rng.normal(size=(int(zero.sum()), cells.ndim))
        f = 0.25 * overlap[:, None] * _unit(d)
        force = np.zeros_like(pts)
        np.add.at(force, i, f)
        np.add.at(force, j, -f)
        move = np.zeros_like(cells.pos)
        np.add.at(move, owner, force)
        hits = np.bincount(np.concatenate([owner[i], owner[j]]), minlength=len(k))
        cells.pos += move / np.maximum(np.sqrt(hits), 1)[:, None]
        along = np.sum(force * cells.axis[owner], axis=1, keepdims=True)
        perp = force - along * cells.axis[owner]
        turn = np.zeros_like(cells.pos)
        np.add.at(turn, owner, s[:, None] * perp)
        inertia = seg ** 2 / 4 + cells.radius ** 2
        cells.axis = _unit(cells.axis + turn / inertia[:, None])


def _render(cells: _Cells, shape, fill: float):
    """Label image: each pixel goes to the rod whose axis is nearest in radii (< fill)."""
    best = np.full(shape, fill, np.float64)
    out = np.zeros(shape, np.int32)
    shape_arr = np.array(shape)
    for n in range(len(cells.id)):
        half = 0.5 * max(cells.length[n] - 2 * cells.radius[n], 0) * cells.axis[n]
        a, b = cells.pos[n] - half, cells.pos[n] + half
        reach = fill * cells.radius[n] + 1
        lo = np.maximum(np.floor(np.minimum(a, b) - reach).astype(int), 0)
        hi = np.minimum(np.ceil(np.maximum(a, b) + reach).astype(int) + 1, shape_arr)
        if np.any(hi <= lo):
            continue
        grid = np.stack(np.meshgrid(*[np.arange(l, h) for l, h in zip(lo, hi)], indexing="ij"), axis=-1)
        ab = b - a
        denom = float(ab @ ab)
        t = np.clip(((grid - a) @ ab) / denom, 0, 1) if denom > 0 else np.zeros(grid.shape[:-1])
        dist = np.linalg.norm(grid - (a + t[..., None] * ab), axis=-1) / cells.radius[n]
        box = tuple(slice(l, h) for l, h in zip(lo, hi))
        win = dist < best[box]
        best[box][win] = dist[win]
        out[box][win] = cells.id[n]
    # each label one connected piece (the largest); stray pixels go to the background
    objects = ndimage.find_objects(out)
    for lab, sl in enumerate(objects, start=1):
        if sl is None:
            continue
        piece, count = ndimage.label(out[sl] == lab)
        if count > 1:
            sizes = np.bincount(piece.ravel())
            sizes[0] = 0
            out[sl][(piece > 0) & (piece != sizes.argmax())] = 0
    return out


def _image(labels: np.ndarray, rng) -> np.ndarray:
    inner = ndimage.grey_erosion(labels, size=3) == ndimage.grey_dilation(labels, size=3)
    img = np.where(labels > 0, np.where(inner, 1.0, 0.45), 0.08)
    img = ndimage.gaussian_filter(img, 1.0)
    return (1000 * img + rng.normal(0, 30, labels.shape)).astype(np.float32)


def colony(n_frames: int = 16, shape: Sequence[int] = (256, 256), n_cells: int = 4, *, width: float = 10.0,
           division_length: float = 40.0, doubling_frames: float = 3.0, drift: float = 3.0, fill: float = 1.25,
           relax_iterations: int = 40, drop: float = 0.0, seed: Optional[int] = 0) -> Colony:
    """Simulate a growing, dividing colony of rods and render every frame.

    Parameters
    ----------
    n_frames : int
    shape : (Y, X) or (Z, Y, X)
        Frame shape in pixels (isotropic voxels in 3D); the colony starts at the centre.
    n_cells : int
        Founder cells.
    width : float
        Rod diameter in pixels (each cell's varies by ~5%).
    division_length : float
        Mean tip-to-tip length at division (each cell's varies by ~8%); daughters start at half of it.
    doubling_frames : float
        Mean frames per doubling of a cell's length (sets growth, division rate and the colony's expansion).
    drift : float
        Standard deviation, in pixels per frame and axis, of the colony's random drift.
    fill : float
        Pixels out to this many radii from a rod's axis belong to the nearest rod (> 1 fills the seams).
    relax_iterations : int
        Overlap-relaxation rounds per frame.
    drop : float in 0..0.5
        Probability, per cell and frame, that the cell is missing from that frame's labels (a missed detection;
        never in a cell's first or last frame, nor in two frames in a row). The images still show it.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 16:
        raise InputError(f"shape must be (Y, X) or (Z, Y, X) of at least 16 pixels each, got {shape}")
    if n_frames < 1 or n_cells < 1:
        raise InputError("n_frames and n_cells must be >= 1")
    if not 0 <= drop <= 0.5:
        raise InputError(f"drop is a probability per cell and frame (0..0.5), got {drop}")
    if not (width > 1 and division_length > 2 * width and doubling_frames > 0 and fill >= 1):
        raise InputError("need width > 1, division_length > 2 * width, doubling_frames > 0, fill >= 1")
    rng = np.random.default_rng(seed)
    ndim = len(shape)
    cells = _Cells(ndim)
    centre = np.array(shape, float) / 2
    next_id = [1]

    def new(n, pos, axis, length):
        ids = np.arange(next_id[0], next_id[0] + n)
        next_id[0] += n
        cells.extend(id=ids, pos=pos, axis=_unit(axis), length=length,
                     radius=width / 2 * rng.uniform(0.95, 1.05, n),
                     rate=2 ** (1 / (doubling_frames * rng.uniform(0.85, 1.15, n))),
                     div_length=division_length * rng.uniform(0.92, 1.08, n))
        return ids

    spread = division_length * (0.4 + 0.3 * np.sqrt(n_cells))
    new(n_cells, centre + rng.uniform(-spread, spread, (n_cells, ndim)) * (1 if ndim == 2 else 0.6),
        rng.normal(size=(n_cells, ndim)), division_length * rng.uniform(0.5, 0.95, n_cells))
    _relax(cells, 3 * relax_iterations, rng)
    parent: dict = {}
    labels, images = [], []
    offset = np.zeros(ndim)
    for t in range(n_frames):
        if t:
            before = cells.area().sum()
            cells.length = cells.length * cells.rate
            split = np.flatnonzero(cells.length >= cells.div_length)
            if len(split):
                m = split
                half = cells.length[m] / 2
                ax = cells.axis[m]
                for sign in (-1, 1):
                    jitter = rng.normal(0, 0.08, (len(m), ndim))
                    ids = new(len(m), cells.pos[m] + sign * (half / 2)[:, None] * ax, ax + jitter, half)
                    parent.update(zip(ids.tolist(), cells.id[m].tolist()))
                cells.take(np.setdiff1d(np.arange(len(cells.id)), m))
            grown = cells.area().sum()
            mid = cells.pos.mean(axis=0)
            cells.pos = mid + (cells.pos - mid) * (grown / before) ** (1 / ndim)
            _relax(cells, relax_iterations, rng)
            step = rng.normal(0, drift, ndim)
            offset += step
            cells.pos += step
            cells.axis = _unit(cells.axis + rng.normal(0, 0.03, cells.axis.shape))
        lab = _render(cells, shape, fill)
        labels.append(lab)
        images.append(_image(lab, rng))
    labels = np.stack(labels)
    present = [np.unique(f) for f in labels]
    rows = []
    for cid in range(1, next_id[0]):
        frames = [t for t, ids in enumerate(present) if np.any(ids == cid)]
        if not frames:
            continue
        if frames[-1] - frames[0] + 1 != len(frames):
            raise InputError(f"cell {cid} vanished and came back (frames {frames}); use a larger shape")
        rows.append((cid, frames[0], frames[-1], parent.get(cid, 0)))
    alive = {r[0] for r in rows}
    rows = [(a, b, c, p if p in alive else 0) for a, b, c, p in rows]
    gaps = []
    if drop > 0:  # missed detections: after the simulation, so the same seed gives the same colony
        miss = np.random.default_rng(rng.integers(2 ** 63))
        for cid, begin, end, _ in rows:
            t = begin + 1
            while t < end:
                if miss.random() < drop:
                    labels[t][labels[t] == cid] = 0
                    gaps.append((cid, t))
                    t += 1  # never two frames in a row
                t += 1
    return Colony(np.stack(images), labels, np.array(rows, np.int64).reshape(-1, 4),
                  np.array(gaps, np.int64).reshape(-1, 2))
