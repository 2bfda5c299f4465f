"""How well predicted masks match ground truth: overlaps, IoU, matching and average precision.

Semantics follow cellpose 3.1's ``cellpose.metrics`` (itself after StarDist's matching): objects are matched
one-to-one by the Hungarian algorithm on their intersection over union (IoU), a match counts when its IoU is at
least the threshold, and ``AP = TP / (TP + FP + FN)``.

Differences from cellpose, on purpose:

- object counts are the number of distinct labels, not ``masks.max()``, so labels need not be consecutive
  (cellpose counts missing ids as objects and gives a wrong AP for e.g. labels {1, 5});
- two empty images give AP = 1.0 (nothing to find, nothing found) where cellpose gives NaN (0 / 0);
- the overlaps are computed sparsely: memory grows with the number of overlapping pairs, not with
  (number of true labels x number of predicted labels), so images with tens of thousands of objects are fine;
- AP is returned as float64 and TP / FP / FN as int64 arrays (cellpose: all float32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components

from .errors import InputError
from .labels import as_label_image

#: IoU thresholds of cellpose's benchmark tables.
DEFAULT_THRESHOLDS = (0.5, 0.75, 0.9)

# above this many (true x predicted) label pairs, count pair overlaps by sorting instead of a dense bincount
_DENSE_PAIR_LIMIT = 1 << 22


def _check_pair(masks_true, masks_pred) -> tuple[np.ndarray, np.ndarray]:
    masks_true = as_label_image(masks_true, "masks_true", ndims=None, dtype=np.int64)
    masks_pred = as_label_image(masks_pred, "masks_pred", ndims=None, dtype=np.int64)
    if masks_true.shape != masks_pred.shape:
        raise InputError(f"masks_true has shape {masks_true.shape} but masks_pred has shape {masks_pred.shape}; "
                         "they must cover the same pixels.")
    return masks_true, masks_pred


def _compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map label ids to 0..n (0 stays background).

    Returns (compact labels, ids (n,) of the objects in order, areas (n + 1,) with the background first).
    """
    peak = int(labels.max()) if labels.size else 0
    if peak <= 4 * labels.size + 1024:  # a lookup table is cheaper than sorting every pixel
        areas = np.bincount(labels.ravel(), minlength=peak + 1)
        ids = np.flatnonzero(areas[1:]) + 1
        lookup = np.zeros(peak + 1, np.int64)
        lookup[ids] = np.arange(1, len(ids) + 1)
        return lookup[labels], ids, np.concatenate([areas[:1], areas[ids]])
    values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if values[0] != 0:  # no background pixel at all
        values, counts, inverse = np.concatenate([[0], values]), np.concatenate([[0], counts]), inverse + 1
    return inverse.reshape(labels.shape), values[1:], counts


def _overlap_pairs(true_compact, pred_compact, n_true, n_pred):
    """Pixels shared by each overlapping (true, predicted) object pair, both 1-based compact ids."""
    if n_true == 0 or n_pred == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    both = (true_compact > 0) & (pred_compact > 0)
    rows, cols = true_compact[both], pred_compact[both]
    if n_true * n_pred <= _DENSE_PAIR_LIMIT:
        counts = np.bincount((rows - 1) * n_pred + (cols - 1), minlength=n_true * n_pred)
        keys = np.flatnonzero(counts)
        counts = counts[keys]
    else:
        keys, counts = np.unique((rows - 1) * n_pred + (cols - 1), return_counts=True)
    return keys // n_pred + 1, keys % n_pred + 1, counts


def label_overlap(x, y, sparse_output: bool = False):
    """Pixels shared by every pair of labels of ``x`` and ``y``.

    Parameters
    ----------
    x, y : ndarray of non-negative integers, same shape (any dimension)
    sparse_output : bool
        False: a dense ndarray (as cellpose's ``_label_overlap``). True: a ``scipy.sparse.csr_array`` holding only
        the non-zero entries, for images with many labels.

    Returns
    -------
    overlap : int64 matrix (x.max() + 1, y.max() + 1)
        ``overlap[i, j]`` = number of pixels with ``x == i`` and ``y == j``; row and column 0 are background.
    """
    x, y = _check_pair(x, y)
    x, y = x.ravel(), y.ravel()
    shape = (int(x.max()) + 1 if x.size else 1, int(y.max()) + 1 if y.size else 1)
    if not sparse_output and shape[0] * shape[1] <= _DENSE_PAIR_LIMIT:
        return np.bincount(x * shape[1] + y, minlength=shape[0] * shape[1]).reshape(shape).astype(np.int64)
    keys, counts = np.unique(x * shape[1] + y, return_counts=True)
    overlap = sparse.csr_array((counts.astype(np.int64), (keys // shape[1], keys % shape[1])), shape=shape)
    return overlap if sparse_output else overlap.toarray()


def intersection_over_union(masks_true, masks_pred, sparse_output: bool = False):
    """IoU of every pair of labels.

    Returns a float64 matrix (masks_true.max() + 1, masks_pred.max() + 1); row and column 0 are background, as in
    cellpose's ``_intersection_over_union``. With ``sparse_output=True`` a ``scipy.sparse.csr_array`` that holds
    only the pairs of overlapping objects (background row and column left empty).
    """
    masks_true, masks_pred = _check_pair(masks_true, masks_pred)
    if not sparse_output:
        overlap = label_overlap(masks_true, masks_pred).astype(np.float64)
        union = overlap.sum(axis=0, keepdims=True) + overlap.sum(axis=1, keepdims=True) - overlap
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, overlap / np.where(union > 0, union, 1), 0.0)
        return iou
    pairs = _object_ious(masks_true, masks_pred)
    shape = (int(masks_true.max()) + 1 if masks_true.size else 1,
             int(masks_pred.max()) + 1 if masks_pred.size else 1)
    return sparse.csr_array((pairs.iou, (pairs.true_ids[pairs.rows - 1], pairs.pred_ids[pairs.cols - 1])),
                            shape=shape)


class _ObjectIoUs:
    """The overlapping object pairs of two label images: compact 1-based indices, original ids and IoUs."""

    def __init__(self, true_ids, pred_ids, rows, cols, iou):
        self.true_ids, self.pred_ids = true_ids, pred_ids
        self.rows, self.cols, self.iou = rows, cols, iou

    @property
    def n_true(self) -> int:
        return len(self.true_ids)

    @property
    def n_pred(self) -> int:
        return len(self.pred_ids)


def _object_ious(masks_true: np.ndarray, masks_pred: np.ndarray) -> _ObjectIoUs:
    true_compact, true_ids, true_areas = _compact(masks_true)
    pred_compact, pred_ids, pred_areas = _compact(masks_pred)
    rows, cols, shared = _overlap_pairs(true_compact, pred_compact, len(true_ids), len(pred_ids))
    # same expression as cellpose (float64), so an IoU that sits exactly on a threshold compares the same way
    iou = shared / (true_areas[rows] + pred_areas[cols] - shared).astype(np.float64)
    return _ObjectIoUs(true_ids, pred_ids, rows, cols, iou)


def _match(pairs: _ObjectIoUs, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of objects with IoU >= threshold, as many matches as possible (Hungarian).

    Returns the compact (1-based) true and predicted indices of the matched pairs. Among matchings of maximum
    size the one with the largest summed IoU is chosen. Only groups of objects that compete for each other
    (connected components of the candidate graph) go through ``linear_sum_assignment``; with thresholds >= 0.5
    candidates rarely compete, so large images cost little.
    """
    keep = pairs.iou >= threshold
    rows, cols, iou = pairs.rows[keep], pairs.cols[keep], pairs.iou[keep]
    if len(rows) == 0:
        return rows, cols
    if len(np.unique(rows)) == len(rows) and len(np.unique(cols)) == len(cols):
        return rows, cols  # already one-to-one
    n_true = pairs.n_true
    graph = sparse.coo_array((np.ones(len(rows)), (rows - 1, n_true + cols - 1)),
                             shape=(n_true + pairs.n_pred,) * 2)
    _, component = connected_components(graph, directed=False)
    edge_component = component[rows - 1]
    order = np.argsort(edge_component, kind="stable")
    boundaries = np.flatnonzero(np.diff(edge_component[order])) + 1
    matched_rows, matched_cols = [], []
    for edges in np.split(order, boundaries):
        if len(edges) == 1:
            matched_rows.append(rows[edges])
            matched_cols.append(cols[edges])
            continue
        group_rows, row_index = np.unique(rows[edges], return_inverse=True)
        group_cols, col_index = np.unique(cols[edges], return_inverse=True)
        group_iou = np.zeros((len(group_rows), len(group_cols)))
        group_iou[row_index, col_index] = iou[edges]
        # cellpose's cost: every qualifying match is worth 1, IoU only breaks ties (its total stays below 1)
        candidate = group_iou >= threshold
        cost = -candidate.astype(np.float64) - group_iou / (2 * min(group_iou.shape))
        true_index, pred_index = linear_sum_assignment(cost)
        good = candidate[true_index, pred_index]
        matched_rows.append(group_rows[true_index[good]])
        matched_cols.append(group_cols[pred_index[good]])
    return np.concatenate(matched_rows), np.concatenate(matched_cols)


def match_objects(masks_true, masks_pred, threshold: float = 0.5) -> list[tuple[int, int, float]]:
    """The one-to-one matches at ``threshold``: a list of (true label id, predicted label id, IoU)."""
    pairs = _object_ious(*_check_pair(masks_true, masks_pred))
    rows, cols = _match(pairs, float(threshold))
    lookup = {(r, c): v for r, c, v in zip(pairs.rows.tolist(), pairs.cols.tolist(), pairs.iou.tolist())}
    return [(int(pairs.true_ids[r - 1]), int(pairs.pred_ids[c - 1]), lookup[(r, c)])
            for r, c in zip(rows.tolist(), cols.tolist())]


def average_precision(masks_true, masks_pred, thresholds=DEFAULT_THRESHOLDS):
    """Average precision ``TP / (TP + FP + FN)`` at each IoU threshold, as cellpose computes it.

    Parameters
    ----------
    masks_true, masks_pred : ndarray of non-negative integers (2-D or 3-D, same shape), or lists of them
        Ground truth and predicted labels; 0 is background; ids need not be consecutive.
    thresholds : float or sequence of floats
        IoU a match needs (inclusive).

    Returns
    -------
    ap : float64 array (n_thresholds,), or (n_images, n_thresholds) when lists were given
        1.0 when both images are empty.
    tp, fp, fn : int64 arrays of the same shape
        Matched objects, predicted objects left unmatched, true objects left unmatched.
    """
    single = not isinstance(masks_true, (list, tuple))
    if single != (not isinstance(masks_pred, (list, tuple))):
        raise InputError("give masks_true and masks_pred both as arrays or both as lists of arrays.")
    if single:
        masks_true, masks_pred = [masks_true], [masks_pred]
    if len(masks_true) != len(masks_pred):
        raise InputError(f"masks_true has {len(masks_true)} images but masks_pred has {len(masks_pred)}.")
    thresholds = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    shape = (len(masks_true), len(thresholds))
    tp, fp, fn = (np.zeros(shape, np.int64) for _ in range(3))
    for n, (truth, prediction) in enumerate(zip(masks_true, masks_pred)):
        pairs = _object_ious(*_check_pair(truth, prediction))
        for k, threshold in enumerate(thresholds):
            tp[n, k] = len(_match(pairs, threshold)[0])
        fp[n] = pairs.n_pred - tp[n]
        fn[n] = pairs.n_true - tp[n]
    total = tp + fp + fn
    ap = np.where(total > 0, tp / np.maximum(total, 1), 1.0)
    if single:
        return ap[0], tp[0], fp[0], fn[0]
    return ap, tp, fp, fn


def matched_fraction(masks_a, masks_b, iou: float = 0.5) -> float:
    """Share of objects matched one-to-one at IoU >= ``iou``: ``matches / max(n_a, n_b)`` (symmetric).

    1.0 when both images are empty. Parity tests use it to compare two segmentations of the same image.
    """
    pairs = _object_ious(*_check_pair(masks_a, masks_b))
    larger = max(pairs.n_true, pairs.n_pred)
    if larger == 0:
        return 1.0
    return len(_match(pairs, float(iou))[0]) / larger


# ----------------------------------------------------------------------------------------------------------------
# Folders
# ----------------------------------------------------------------------------------------------------------------

# naming tiers, most specific first: the first tier a folder has files for is the one used for the whole folder
_PRED_TIERS = ("_cp_masks", "_masks", "")
_GT_TIERS = ("_masks", "")


def _label_files(folder: Path, tiers, exclude_tier_suffixes=()) -> tuple[str, dict]:
    from . import io

    files = [entry for entry in folder.iterdir()
             if entry.is_file() and not entry.name.startswith(".") and entry.name.lower().endswith(io.IMAGE_SUFFIXES)]
    for tier in tiers:
        found = {}
        for entry in files:
            stem = io.image_stem(entry)
            if tier:
                if not stem.endswith(tier) or len(stem) == len(tier) \
                        or any(stem.endswith(other) for other in exclude_tier_suffixes if other != tier
                               and other.endswith(tier)):
                    continue
                key = stem[:-len(tier)]
            else:
                if any(stem.endswith(suffix) for suffix in io.OUTPUT_SUFFIXES):
                    continue
                key = stem
            if key in found:
                raise InputError(f"{folder}: two label files for {key!r}: {found[key].name} and {entry.name}. "
                                 "Keep one.")
            found[key] = entry
        if found:
            return tier, found
    return "", {}


def _read_label_file(path: Path) -> np.ndarray:
    from . import io

    image, meta = io.read_image(path)
    if "S" in meta.axes or "C" in meta.axes:
        raise InputError(f"{path}: has colour or channel axes ({meta.axes}); a label image has one value per "
                         "pixel. Point to the label images, not the raw images.")
    return as_label_image(image, str(path), ndims=None, dtype=np.int64)


def evaluate_folders(pred_dir, gt_dir, thresholds=DEFAULT_THRESHOLDS) -> dict:
    """Average precision of every predicted label image in ``pred_dir`` against its ground truth in ``gt_dir``.

    Pairing: in ``pred_dir`` the files ``<stem>_cp_masks.*`` are used when there are any, else ``<stem>_masks.*``,
    else every image file named ``<stem>.*``; in ``gt_dir`` ``<stem>_masks.*`` (not ``_cp_masks``) when there are
    any, else ``<stem>.*``. Extensions: TIFF, PNG, .npy. Every stem must appear on both sides.

    Returns
    -------
    dict with
        ``thresholds`` (list), ``images`` (one dict per pair, naturally sorted by stem: ``name``, ``pred``,
        ``gt`` (paths as str), ``n_true``, ``n_pred``, ``ap``, ``tp``, ``fp``, ``fn`` (lists per threshold)),
        ``mean_ap`` (mean over images, per threshold), ``pooled_ap`` (sum TP / sum (TP+FP+FN) over all objects),
        ``pred_naming`` and ``gt_naming`` (the patterns used, e.g. ``"<stem>_cp_masks"``).

    Raises InputError for a missing or empty folder, unpaired files, or image pairs of different shapes.
    """
    from . import io

    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    for folder, role in ((pred_dir, "prediction"), (gt_dir, "ground-truth")):
        if not folder.is_dir():
            raise InputError(f"{folder}: the {role} folder does not exist.")
    pred_tier, predictions = _label_files(pred_dir, _PRED_TIERS)
    gt_tier, truths = _label_files(gt_dir, _GT_TIERS, exclude_tier_suffixes=("_cp_masks",))
    if not predictions:
        raise InputError(f"{pred_dir}: no label images (TIFF, PNG or .npy) found to evaluate.")
    if not truths:
        raise InputError(f"{gt_dir}: no ground-truth label images (TIFF, PNG or .npy) found.")
    missing_truth = sorted(set(predictions) - set(truths), key=io.natural_key)
    missing_prediction = sorted(set(truths) - set(predictions), key=io.natural_key)
    if missing_truth or missing_prediction:
        problems = []
        if missing_truth:
            problems.append(f"no ground truth <stem>{gt_tier}.* in {gt_dir} for: "
                            + ", ".join(predictions[k].name for k in missing_truth[:5])
                            + (" ..." if len(missing_truth) > 5 else ""))
        if missing_prediction:
            problems.append(f"no prediction <stem>{pred_tier}.* in {pred_dir} for: "
                            + ", ".join(truths[k].name for k in missing_prediction[:5])
                            + (" ..." if len(missing_prediction) > 5 else ""))
        raise InputError("unpaired files: " + "; ".join(problems) + ". Every image needs both a prediction and a "
                         "ground truth with the same stem.")

    thresholds = [float(t) for t in np.atleast_1d(thresholds)]
    images = []
    for key in sorted(predictions, key=io.natural_key):
        pred_path, gt_path = predictions[key], truths[key]
        if pred_path.resolve() == gt_path.resolve():
            raise InputError(f"{pred_path}: serves as both prediction and ground truth. Give separate folders or "
                             "name predictions <stem>_cp_masks.")
        prediction, truth = _read_label_file(pred_path), _read_label_file(gt_path)
        if prediction.shape != truth.shape:
            prediction, truth = np.squeeze(prediction), np.squeeze(truth)
        if prediction.shape != truth.shape:
            raise InputError(f"{pred_path} has shape {prediction.shape} but {gt_path} has shape {truth.shape}; "
                             "they must cover the same pixels.")
        ap, tp, fp, fn = average_precision(truth, prediction, thresholds)
        images.append({"name": key, "pred": str(pred_path), "gt": str(gt_path),
                       "n_true": int(tp[0] + fn[0]), "n_pred": int(tp[0] + fp[0]),
                       "ap": ap.tolist(), "tp": tp.tolist(), "fp": fp.tolist(), "fn": fn.tolist()})
    tp = np.array([image["tp"] for image in images])
    total = tp + np.array([image["fp"] for image in images]) + np.array([image["fn"] for image in images])
    pooled = np.where(total.sum(0) > 0, tp.sum(0) / np.maximum(total.sum(0), 1), 1.0)
    return {"thresholds": thresholds, "images": images,
            "mean_ap": np.mean([image["ap"] for image in images], axis=0).tolist(),
            "pooled_ap": pooled.tolist(),
            "pred_naming": f"<stem>{pred_tier}", "gt_naming": f"<stem>{gt_tier}"}


def format_report(result: dict) -> str:
    """A plain-text table of ``evaluate_folders``'s result: one line per image, then the means."""
    thresholds = result["thresholds"]
    names = [image["name"] for image in result["images"]]
    width = max([len("pooled")] + [len(name) for name in names])
    header = f"{'image':<{width}}  {'true':>6}  {'pred':>6}  " + "  ".join(f"AP@{t:<5.2f}" for t in thresholds)
    lines = [f"predictions {result['pred_naming']}.*  vs  ground truth {result['gt_naming']}.*", header,
             "-" * len(header)]
    for image in result["images"]:
        lines.append(f"{image['name']:<{width}}  {image['n_true']:>6}  {image['n_pred']:>6}  "
                     + "  ".join(f"{value:>8.3f}" for value in image["ap"]))
    lines.append("-" * len(header))
    lines.append(f"{'mean':<{width}}  {'':>6}  {'':>6}  " + "  ".join(f"{v:>8.3f}" for v in result["mean_ap"]))
    lines.append(f"{'pooled':<{width}}  {'':>6}  {'':>6}  " + "  ".join(f"{v:>8.3f}" for v in result["pooled_ap"]))
    return "\n".join(lines)
