"""TrackMate's overlap (IoU) tracker, on outlines in 2D (as TrackMate) and on the voxels of label images (2D/3D).

Rules of ``tracking/overlap/OverlapTracker.java`` (TrackMate 8): for each pair of consecutive frames that hold
spots, each target spot takes the single source spot with the largest IoU above MIN_IOU (strictly); the edge
weight is 1 - IoU. No LAP, no gap closing: a source may be taken by several targets (splits), a target never has
two sources (no merges).

- ``overlap_track`` is TrackMate's geometry: PRECISE uses each spot's ROI polygon, FAST its bounding box, both
  scaled by SCALE_FACTOR about the spot's position; a spot without a polygon is a 32-gon circle of its radius.
  XY only, as in TrackMate (needs shapely, the ``track`` extra).
- ``overlap_track_labels`` counts shared pixels / voxels of the label images themselves: real 3D IoU, which
  TrackMate 8 lacks, and exact in 2D.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .lap import Edges
from .spots import Spots

__all__ = ["overlap_track", "overlap_track_labels", "OVERLAP_DEFAULTS", "check_overlap_settings", "LabelOverlaps"]

OVERLAP_DEFAULTS = {"IOU_CALCULATION": "PRECISE", "SCALE_FACTOR": 1.0, "MIN_IOU": 0.3}


def check_overlap_settings(method: str, scale_factor: float, min_iou: float) -> None:
    if method not in ("PRECISE", "FAST"):
        raise InputError(f"--iou-calculation must be PRECISE or FAST, got {method!r}")
    if not (np.isfinite(scale_factor) and scale_factor > 0):
        raise InputError(f"--scale-factor must be > 0, got {scale_factor!r}")
    if not (0 <= min_iou <= 1):
        raise InputError(f"--min-iou must be in 0..1, got {min_iou!r}")


def _geometry(spots: Spots, k: int, method: str, scale: float):
    from shapely.affinity import scale as scaled
    from shapely.geometry import Polygon, box
    xc, yc = spots.position[k, 0], spots.position[k, 1]
    roi = None if spots.polygons is None else spots.polygons[k]
    if method == "FAST":
        if roi is None:
            r = spots.radius[k] * scale
            return box(xc - r, yc - r, xc + r, yc + r)
        lo, hi = roi.min(axis=0) * scale, roi.max(axis=0) * scale
        return box(xc + lo[0], yc + lo[1], xc + hi[0], yc + hi[1])
    if roi is None:
        t = 2 * np.pi * np.arange(32) / 32
        poly = Polygon(np.column_stack([xc + spots.radius[k] * np.cos(t), yc + spots.radius[k] * np.sin(t)]))
    else:
        poly = Polygon(roi + [xc, yc])
    if not poly.is_valid:
        poly = poly.buffer(0)
    return scaled(poly, scale, scale, origin=(xc, yc))


def overlap_track(spots: Spots, method: str = "PRECISE", scale_factor: float = 1.0, min_iou: float = 0.3) -> Edges:
    """TrackMate's OverlapTracker on spot outlines (XY).

    Parameters
    ----------
    spots : Spots
        With ``polygons`` (x, y relative to the spot, physical units) where known.
    method : "PRECISE" or "FAST"
    scale_factor : float
        Outlines are scaled by this about the spot's position before the IoU.
    min_iou : float
        A link needs IoU > min_iou.
    """
    try:
        from shapely.strtree import STRtree
    except ImportError as e:  # pragma: no cover - the track extra
        raise InputError("the overlap tracker on outlines needs shapely: pip install 'trackpose[track]'") from e
    check_overlap_settings(method, scale_factor, min_iou)
    frames = np.unique(spots.frame)
    src_out, tgt_out, cost_out = [], [], []
    prev = None
    for f in frames:
        rows = np.flatnonzero(spots.frame == f)
        geoms = [_geometry(spots, k, method, scale_factor) for k in rows]
        if prev is not None:
            prev_rows, prev_geoms, tree = prev
            for k, g in zip(rows, geoms):
                best, best_iou = -1, min_iou
                for s in sorted(tree.query(g)):
                    inter = g.intersection(prev_geoms[s]).area
                    if inter == 0:
                        continue
                    iou = inter / (prev_geoms[s].area + g.area - inter)
                    if iou > best_iou:
                        best, best_iou = s, iou
                if best >= 0:
                    src_out.append(prev_rows[best])
                    tgt_out.append(k)
                    cost_out.append(1.0 - best_iou)
        prev = (rows, geoms, STRtree(geoms))
    return _edges(src_out, tgt_out, cost_out)


def _edges(src, tgt, cost) -> Edges:
    src, tgt, cost = np.asarray(src, np.int64), np.asarray(tgt, np.int64), np.asarray(cost, np.float64)
    order = np.lexsort((tgt, src))
    return Edges(src[order], tgt[order], cost[order])


def label_iou(previous: np.ndarray, current: np.ndarray):
    """Pixel/voxel IoU of every overlapping (previous label, current label) pair: arrays (a, b, iou)."""
    if previous.shape != current.shape:
        raise InputError(f"label frames differ in shape: {previous.shape} vs {current.shape}")
    both = (previous > 0) & (current > 0)
    a, b = previous[both].astype(np.int64), current[both].astype(np.int64)
    if len(a) == 0:
        return a, b, np.zeros(0)
    width = int(b.max()) + 1
    keys, inter = np.unique(a * width + b, return_counts=True)  # one integer per pair: a fast 1-D unique
    pa, pb = keys // width, keys % width
    size_a = np.bincount(previous.ravel())
    size_b = np.bincount(current.ravel())
    iou = inter / (size_a[pa] + size_b[pb] - inter)
    return pa, pb, iou


def overlap_track_labels(spots: Spots, label_frames, min_iou: float = 0.3) -> Edges:
    """Overlap tracking on the label images: IoU = shared voxels / union, 2D or 3D.

    ``label_frames``: an iterable of (frame, label image) in frame order (a generator is fine: two frames are held
    at a time); ``spots.frame`` and ``spots.label`` say which row is which object.
    """
    check_overlap_settings("PRECISE", 1.0, min_iou)
    row = {(int(f), int(l)): k for k, (f, l) in enumerate(zip(spots.frame, spots.label))}
    src_out, tgt_out, cost_out = [], [], []
    prev = None
    for frame, labels in label_frames:
        labels = np.asarray(labels)
        if prev is not None:
            pf, pl = prev
            a, b, iou = label_iou(pl, labels)
            # each target keeps its best source (lowest label on a tie), if IoU > min_iou
            order = np.lexsort((a, -iou, b))
            a, b, iou = a[order], b[order], iou[order]
            first = np.ones(len(b), bool)
            first[1:] = b[1:] != b[:-1]
            for s, t, v in zip(a[first], b[first], iou[first]):
                if v > min_iou:
                    src_out.append(row[(pf, int(s))])
                    tgt_out.append(row[(int(frame), int(t))])
                    cost_out.append(1.0 - float(v))
        prev = (int(frame), labels)
    return _edges(src_out, tgt_out, cost_out)


class LabelOverlaps:
    """Pixel/voxel IoU of the objects of frames up to ``max_frame_gap`` apart, looked up by spot rows: the cost
    of the LAP tracker's overlap mode (``lap_track(spots, settings, overlaps=...)``).

    Only overlapping pairs are stored (a few per object), so the memory is that of the spots table, not of the
    frames.
    """

    def __init__(self, n_spots: int, keys: np.ndarray, values: np.ndarray, max_frame_gap: int):
        order = np.argsort(keys)
        self.n_spots, self.max_frame_gap = int(n_spots), int(max_frame_gap)
        self._keys, self._values = keys[order], values[order]

    @classmethod
    def from_labels(cls, spots: Spots, label_frames, max_frame_gap: int = 1) -> "LabelOverlaps":
        """IoUs from label images: ``label_frames`` an iterable of (frame, label image) in frame order (a generator
        is fine: ``max_frame_gap + 1`` frames are held at a time); ``spots.frame``/``spots.label`` name the rows."""
        n = len(spots)
        rows = {}
        for k, (f, lab) in enumerate(zip(spots.frame.tolist(), spots.label.tolist())):
            rows.setdefault(f, {})[lab] = k
        luts = {}
        for f, d in rows.items():
            lut = np.full(max(d) + 1, -1, np.int64)
            lut[list(d)] = list(d.values())
            luts[f] = lut
        keys, values, held = [], [], []
        for frame, labels in label_frames:
            frame, labels = int(frame), np.asarray(labels)
            for pf, pl in held:
                if frame - pf > max_frame_gap or pf not in luts or frame not in luts:
                    continue
                a, b, iou = label_iou(pl, labels)
                ra, rb = luts[pf][a], luts[frame][b]
                ok = (ra >= 0) & (rb >= 0)
                keys.append(ra[ok] * n + rb[ok])
                values.append(iou[ok])
            held = [(pf, pl) for pf, pl in held if frame - pf < max_frame_gap] + [(frame, labels)]
        keys = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        values = np.concatenate(values) if values else np.zeros(0)
        return cls(n, keys, values, max_frame_gap)

    def iou(self, src, tgt) -> np.ndarray:
        """IoU of each (src[k], tgt[k]) pair of spot rows; 0 where the objects do not overlap."""
        key = np.asarray(src, np.int64) * self.n_spots + np.asarray(tgt, np.int64)
        pos = np.minimum(np.searchsorted(self._keys, key), max(len(self._keys) - 1, 0))
        if len(self._keys) == 0:
            return np.zeros(len(key))
        return np.where(self._keys[pos] == key, self._values[pos], 0.0)
