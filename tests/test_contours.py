"""2D outlines: pixel-exact contours, simplification, polygon area, conventions."""
import numpy as np
import pytest
from scipy import ndimage

from trackpose import contours, measure
from trackpose.errors import InputError
from shape_helpers import disc, shoelace


def test_single_pixel_polygon_and_conventions():
    labels = np.zeros((5, 6), np.int32)
    labels[2, 3] = 7
    polygon = contours.contours(labels)[7]
    # pixel (row 2, column 3) spans x 3..4, y 2..3; counter-clockwise on screen from its top-left corner
    np.testing.assert_array_equal(polygon, [[3, 2], [3, 3], [4, 3], [4, 2]])
    assert shoelace(polygon) == -1 and contours.polygon_area(polygon) == 1
    table = measure.object_table(labels)[0]
    assert table["centroid"] == [3.5, 2.5] and table["bbox"] == [3, 2, 4, 3] and table["area"] == 1


@pytest.mark.parametrize("radius", [1.5, 3, 5.5, 10, 24.3])
def test_disc_polygon_area_equals_pixel_count(radius):
    mask = disc((60, 70), 29.4, 33.7, radius)
    polygon = contours.contours(mask.astype(np.uint16))[1]
    assert contours.polygon_area(polygon) == mask.sum()
    # axis-aligned edges between integer corners, no repeated first vertex, no collinear vertices
    assert np.all(polygon == np.round(polygon))
    step = np.roll(polygon, -1, axis=0) - polygon
    assert np.all((step[:, 0] == 0) != (step[:, 1] == 0))
    turn = step[:, 0] * np.roll(step[:, 1], -1) - step[:, 1] * np.roll(step[:, 0], -1)
    assert np.all(turn != 0)


def test_odd_shapes_area_is_the_filled_largest_piece():
    rng = np.random.default_rng(0)
    noise = ndimage.gaussian_filter(rng.normal(size=(160, 160)), 3)
    labels = np.zeros((160, 160), np.int32)
    labels[noise > 0.02] = 1  # blobs with holes, thin necks, diagonal contacts and several pieces
    labels[noise < -0.03] = 2
    labels[(noise > -0.01) & (noise < 0.0)] = 3  # thin rings
    labels[40:44, 10:90] = 4  # a bar cutting across others
    labels[::7, 100] = 5  # isolated single pixels: the first one is taken
    polygons = contours.contours(labels)
    assert sorted(polygons) == [1, 2, 3, 4, 5]
    eight = np.ones((3, 3), bool)
    for label, polygon in polygons.items():
        pieces, n = ndimage.label(labels == label, structure=eight)
        largest = np.argmax(np.bincount(pieces.ravel())[1:]) + 1
        filled = ndimage.binary_fill_holes(pieces == largest)
        assert contours.polygon_area(polygon) == filled.sum(), label
        # the polygon starts at the top-left corner of the piece's first pixel
        first = np.argwhere(pieces == largest)[0]
        assert polygon[0].tolist() == [first[1], first[0]]


def test_diagonal_contact_keeps_both_pixels():
    labels = np.zeros((6, 6), np.int32)
    labels[1:3, 1:3] = 1
    labels[3, 3] = 1  # touches the square at one corner only
    polygon = contours.contours(labels)[1]
    assert contours.polygon_area(polygon) == 5
    assert sum((polygon == [3, 3]).all(axis=1)) == 2  # the polygon passes twice through the shared corner


def test_polygon_centroid_matches_object_table():
    labels = np.zeros((40, 40), np.int32)
    labels[disc((40, 40), 12.2, 15.1, 8)] = 3
    labels[25:37, 5:9] = 9
    table = {row["label"]: row for row in measure.object_table(labels)}
    for label, polygon in contours.contours(labels).items():
        x, y = polygon[:, 0], polygon[:, 1]
        cross = x * np.roll(y, -1) - np.roll(x, -1) * y
        centroid = [np.sum((x + np.roll(x, -1)) * cross), np.sum((y + np.roll(y, -1)) * cross)]
        np.testing.assert_allclose(np.array(centroid) / (6 * shoelace(polygon)), table[label]["centroid"])
        xmin, ymin = polygon.min(axis=0)
        xmax, ymax = polygon.max(axis=0)
        assert table[label]["bbox"] == [xmin, ymin, xmax, ymax]


@pytest.mark.parametrize("radius", [10, 17.5, 30])
def test_simplified_disc_area_within_two_percent(radius):
    mask = disc((80, 80), 40.3, 39.6, radius)
    exact = contours.contours(mask)[1]
    simple = contours.contours(mask, simplify=0.5)[1]
    assert len(simple) < len(exact)
    assert abs(contours.polygon_area(simple) / mask.sum() - 1) < 0.02
    assert contours.polygon_area(simple) > 0  # orientation kept
    # the simplified polygon keeps a subset of the vertices, in order, each dropped one within tolerance
    index = [np.flatnonzero((exact == v).all(axis=1))[0] for v in simple]
    assert index == sorted(index)
    for v in exact:
        a, b = simple, np.roll(simple, -1, axis=0)
        t = np.clip(np.einsum("ij,ij->i", v - a, b - a) / np.einsum("ij,ij->i", b - a, b - a), 0, 1)
        assert np.min(np.linalg.norm(a + t[:, None] * (b - a) - v, axis=1)) <= 0.5 + 1e-12


def test_simplify_keeps_tiny_objects_and_true_means_half_a_pixel():
    labels = np.zeros((8, 8), np.int32)
    labels[1, 1] = 1
    labels[4, 4:6] = 2
    polygons = contours.contours(labels, simplify=True)
    assert len(polygons[1]) == 4 and len(polygons[2]) == 4
    polygon = contours.contours(disc((40, 40), 20, 20, 12), simplify=100)[1]
    assert len(polygon) == 3 and contours.polygon_area(polygon) > 0
    round_labels = disc((40, 40), 19.6, 20.3, 11).astype(np.int32)
    np.testing.assert_array_equal(contours.simplify_polygon(contours.contours(round_labels)[1], 0.5),
                                  contours.contours(round_labels, simplify=True)[1])


def test_empty_and_huge_ids():
    assert contours.contours(np.zeros((5, 5), np.int32)) == {}
    labels = np.zeros((5, 5), np.int64)
    labels[1:3, 1:4] = 2**40
    polygons = contours.contours(labels)
    assert list(polygons) == [2**40] and contours.polygon_area(polygons[2**40]) == 6
    assert measure.object_table(labels.astype(np.float64))[0]["label"] == 2**40


def test_thousand_objects_one_polygon_each():
    labels = np.zeros((512, 512), np.int32)
    rng = np.random.default_rng(2)
    for label in range(1, 1001):
        y, x = rng.integers(0, 500, 2)
        labels[y:y + rng.integers(2, 12), x:x + rng.integers(2, 12)] = label
    polygons = contours.contours(labels)
    present = np.unique(labels)[1:]
    assert sorted(polygons) == present.tolist()
    for label in present[::25]:
        pieces, _ = ndimage.label(labels == label, structure=np.ones((3, 3)))
        largest = ndimage.binary_fill_holes(pieces == np.argmax(np.bincount(pieces.ravel())[1:]) + 1)
        assert contours.polygon_area(polygons[label]) == largest.sum()



def test_bad_input_names_the_argument():
    with pytest.raises(InputError, match="labels"):
        contours.contours(np.zeros((2, 3, 3), np.int32))
    with pytest.raises(InputError, match="labels"):
        contours.contours(np.full((3, 3), 1.5))
    with pytest.raises(InputError, match="simplify"):
        contours.contours(np.zeros((3, 3), np.int32), simplify=-1)


def _ellipse(a, b, shape=(96, 96), centre=(47.3, 48.6)):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return ((((yy - centre[0]) / a) ** 2 + ((xx - centre[1]) / b) ** 2) <= 1).astype(np.int32)


def _perimeter(polygon):
    return float(np.linalg.norm(np.roll(polygon, -1, axis=0) - polygon, axis=1).sum())


@pytest.mark.parametrize("a, b", [(4, 4), (6, 6), (8, 8), (12, 12), (20, 20), (12, 6), (16, 8), (10, 5), (20, 7)])
def test_smooth_outlines_measure_like_the_shape(a, b):
    """What TrackMate computes from a spot's ROI (AREA, PERIMETER, CIRCULARITY = 4 pi A / P^2) agrees with the
    drawn disc or ellipse: area within 2 %, perimeter within 3 %, circularity within 0.03 (the pixel staircase:
    perimeter +24-27 %, circularity off by 0.3)."""
    import math
    from trackpose.contours import outlines, polygon_area
    masks = _ellipse(a, b)
    outline = outlines(masks)[1]
    area, perimeter = polygon_area(outline), _perimeter(outline)
    h = ((a - b) / (a + b)) ** 2
    true_area = math.pi * a * b
    true_perimeter = math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))  # Ramanujan
    assert abs(area / true_area - 1) < 0.02
    assert abs(perimeter / true_perimeter - 1) < 0.03
    assert abs(4 * math.pi * area / perimeter ** 2 - 4 * math.pi * true_area / true_perimeter ** 2) < 0.03
    staircase = contours.contours(masks)[1]
    assert _perimeter(staircase) / true_perimeter - 1 > 0.2  # what TrackMate measured before
    assert len(outline) < len(staircase) + 20 and area == pytest.approx(polygon_area(staircase), rel=0.02)


def test_smooth_outline_of_a_tiny_or_odd_polygon_is_returned_as_is():
    from trackpose.contours import smooth_polygon
    square = np.array([[0, 0], [0, 1], [1, 1], [1, 0]], float)
    assert np.array_equal(smooth_polygon(square), square)
    diagonal = np.array([[0, 0], [3, 1], [1, 4]], float)
    assert np.array_equal(smooth_polygon(diagonal), diagonal)
