"""Matching predicted masks to ground truth (trackpose.metrics)."""

import tracemalloc

import numpy as np
import pytest

from trackpose.errors import InputError
from trackpose.io import write_labels, write_png_labels
from trackpose.metrics import (average_precision, evaluate_folders, format_report, intersection_over_union,
                               label_overlap, match_objects, matched_fraction)


def squares(centres, size=10, shape=(64, 64)):
    """Label image with one size x size square per (row, col) top-left corner, labels 1, 2, ..."""
    labels = np.zeros(shape, np.int32)
    for label, (row, col) in enumerate(centres, start=1):
        labels[row:row + size, col:col + size] = label
    return labels


def touching_discs(rng, n=40, shape=(160, 160), radius=14):
    """Random discs; where two overlap, each pixel goes to the nearer centre, so objects touch."""
    rows, cols = np.indices(shape)
    centres = rng.uniform(0, shape[0], (n, 2))
    distance = np.hypot(rows[None] - centres[:, 0, None, None], cols[None] - centres[:, 1, None, None])
    labels = distance.argmin(axis=0) + 1
    labels[distance.min(axis=0) > radius] = 0
    return np.unique(labels, return_inverse=True)[1].reshape(shape)  # consecutive ids, as cellpose assumes


def test_identical_masks_have_ap_one_in_2d_and_3d():
    labels_2d = squares([(2, 2), (20, 30), (40, 5)])
    ap, tp, fp, fn = average_precision(labels_2d, labels_2d)
    assert ap.tolist() == [1.0, 1.0, 1.0] and tp.tolist() == [3, 3, 3]
    assert fp.tolist() == fn.tolist() == [0, 0, 0]

    labels_3d = np.stack([labels_2d] * 4)
    assert average_precision(labels_3d, labels_3d)[0].tolist() == [1.0, 1.0, 1.0]


def test_shifted_square_has_known_iou():
    truth = squares([(10, 10)])
    prediction = squares([(10, 12)])  # 10x10 squares shifted by 2: 80 shared pixels, 120 in the union
    assert intersection_over_union(truth, prediction)[1, 1] == pytest.approx(80 / 120)
    assert intersection_over_union(truth, prediction, sparse_output=True)[1, 1] == pytest.approx(80 / 120)
    ap, tp, fp, fn = average_precision(truth, prediction, thresholds=(0.5, 2 / 3, 0.75))
    assert tp.tolist() == [1, 1, 0] and fp.tolist() == [0, 0, 1] and fn.tolist() == [0, 0, 1]
    assert ap.tolist() == [1.0, 1.0, 0.0]
    assert match_objects(truth, prediction) == [(1, 1, pytest.approx(2 / 3))]


def test_missing_and_extra_objects_are_counted():
    truth = squares([(2, 2), (2, 30), (30, 2)])
    prediction = squares([(2, 2), (2, 30), (45, 45)])  # finds two, misses one, invents one
    ap, tp, fp, fn = average_precision(truth, prediction, thresholds=0.5)
    assert (tp.tolist(), fp.tolist(), fn.tolist()) == ([2], [1], [1])
    assert ap.tolist() == [0.5]
    assert matched_fraction(truth, prediction) == pytest.approx(2 / 3)


def test_labels_need_not_be_consecutive():
    truth = squares([(2, 2), (2, 30), (30, 2)])
    prediction = squares([(2, 2), (2, 30)])
    relabelled = np.choose(truth, [0, 7, 500, 10 ** 9]).astype(np.int64)
    # cellpose would count max(label) objects here; trackpose counts the objects present
    ap, tp, fp, fn = average_precision(relabelled, prediction * 3)
    assert ap.tolist() == [2 / 3] * 3 and tp.tolist() == [2] * 3 and fn.tolist() == [1] * 3


def test_empty_images():
    empty = np.zeros((20, 20), np.uint16)
    one = squares([(2, 2)], shape=(20, 20))
    assert average_precision(empty, empty)[0].tolist() == [1.0, 1.0, 1.0]  # cellpose: NaN
    ap, tp, fp, fn = average_precision(empty, one)
    assert ap.tolist() == [0.0] * 3 and fp.tolist() == [1] * 3 and fn.tolist() == [0] * 3
    ap, tp, fp, fn = average_precision(one, empty)
    assert ap.tolist() == [0.0] * 3 and fn.tolist() == [1] * 3
    assert matched_fraction(empty, empty) == 1.0


def test_hungarian_matching_beats_greedy():
    # true A = columns 0..9, true B = 10..19; prediction P1 = 2..11 overlaps both, P2 = 0..1 only A.
    # Greedy (best IoU first) pairs A-P1 and leaves B and P2 alone; the optimum pairs A-P2 and B-P1.
    truth = np.zeros((1, 20), np.int32)
    truth[0, :10], truth[0, 10:] = 1, 2
    prediction = np.zeros((1, 20), np.int32)
    prediction[0, 2:12], prediction[0, :2] = 1, 2
    ap, tp, fp, fn = average_precision(truth, prediction, thresholds=[0.1, 0.5])
    assert tp.tolist() == [2, 1]


def test_lists_of_images_give_one_row_per_image():
    a, b = squares([(2, 2)]), squares([(2, 2), (30, 30)])
    ap, tp, fp, fn = average_precision([a, b], [a, a])
    assert ap.shape == tp.shape == (2, 3)
    assert ap[:, 0].tolist() == [1.0, 0.5]
    with pytest.raises(InputError):
        average_precision([a], [a, b])
    with pytest.raises(InputError, match="shape"):
        average_precision(a, a[:10])


def test_parity_with_cellpose_on_touching_discs():
    cellpose_metrics = pytest.importorskip("cellpose.metrics")
    rng = np.random.default_rng(1)
    thresholds = [0.1, 0.3, 0.5, 0.75, 0.9]
    for trial in range(6):
        truth = touching_discs(rng)
        prediction = touching_discs(rng) if trial % 2 else np.roll(truth, (1, trial), axis=(0, 1))
        ours = average_precision(truth, prediction, thresholds)
        theirs = cellpose_metrics.average_precision(truth, prediction, thresholds)
        for mine, reference in zip(ours, theirs):
            np.testing.assert_allclose(mine, reference, rtol=1e-6)
        np.testing.assert_array_equal(label_overlap(truth, prediction),
                                      cellpose_metrics._label_overlap(truth, prediction))
        np.testing.assert_allclose(intersection_over_union(truth, prediction),
                                   cellpose_metrics._intersection_over_union(truth, prediction))


def test_ten_thousand_labels_stay_small():
    """Memory, not time (benchmarks/bench_metrics.py times it)."""
    rows, cols = np.indices((1000, 1000))
    truth = (rows // 10) * 100 + cols // 10 + 1  # 10,000 squares of 10 x 10
    prediction = np.roll(truth, 1, axis=1)  # IoU 9/11 for every square
    tracemalloc.start()
    ap, tp, fp, fn = average_precision(truth, prediction)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert tp.tolist() == [10000, 10000, 0]
    assert peak < 200e6  # a dense 10,001 x 10,001 IoU matrix alone would take 800 MB
    overlap = label_overlap(truth, prediction, sparse_output=True)
    assert overlap.shape == (10001, 10001) and overlap.nnz == 20000


def test_evaluate_folders_pairs_cellpose_names(tmp_path):
    predictions, truths = tmp_path / "pred", tmp_path / "gt"
    predictions.mkdir()
    truths.mkdir()
    a = squares([(2, 2), (30, 30)])
    write_labels(predictions / "img1_cp_masks.tif", a)
    write_labels(predictions / "img2_cp_masks.tif", a)
    (predictions / "img1.tif").write_bytes(b"raw image next to its masks: ignored")
    write_png_labels(truths / "img1_masks.png", a)
    write_labels(truths / "img2_masks.tif", squares([(2, 2)]))

    result = evaluate_folders(predictions, truths)

    assert [image["name"] for image in result["images"]] == ["img1", "img2"]
    assert result["images"][1]["ap"] == [0.5, 0.5, 0.5]
    assert result["mean_ap"] == [0.75, 0.75, 0.75]
    assert result["pooled_ap"] == pytest.approx([3 / 4] * 3)
    report = format_report(result)
    assert "img2" in report and "0.750" in report

    (predictions / "img3_cp_masks.tif").write_bytes(b"")
    with pytest.raises(InputError, match="img3_cp_masks.tif"):
        evaluate_folders(predictions, truths)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no label images"):
        evaluate_folders(empty, truths)
