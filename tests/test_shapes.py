"""Shapes of labelled objects: pixel-exact contours, meshes, the object table and PLY files."""
import numpy as np
import pytest
from scipy import ndimage

from trackpose import shapes
from trackpose.errors import InputError


def disc(shape, cy, cx, r):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def ball(shape, centre, r):
    zz, yy, xx = np.mgrid[:shape[0], :shape[1], :shape[2]]
    return (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2 <= r * r


def shoelace(polygon):
    """The usual shoelace sum (negative for this module's counter-clockwise-on-screen polygons)."""
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)


def edges_of(faces):
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def assert_closed_oriented(vertices, faces, shells=1):
    """Watertight (every edge in exactly two triangles), consistently oriented, outward, merged vertices."""
    directed = edges_of(faces)
    undirected, count = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    assert np.all(count == 2), "an edge is not shared by exactly two triangles"
    assert len(np.unique(directed, axis=0)) == len(directed), "neighbouring triangles disagree on orientation"
    assert len(np.unique(vertices, axis=0)) == len(vertices), "duplicate vertices"
    assert np.array_equal(np.unique(faces), np.arange(len(vertices))), "unused vertices"
    assert shapes.mesh_volume(vertices, faces) > 0, "normals point inwards"
    assert len(vertices) - len(undirected) + len(faces) == 2 * shells  # Euler characteristic of spheres


# ---------------------------------------------------------------------------------------------- contours

def test_single_pixel_polygon_and_conventions():
    labels = np.zeros((5, 6), np.int32)
    labels[2, 3] = 7
    polygon = shapes.contours(labels)[7]
    # pixel (row 2, column 3) spans x 3..4, y 2..3; counter-clockwise on screen from its top-left corner
    np.testing.assert_array_equal(polygon, [[3, 2], [3, 3], [4, 3], [4, 2]])
    assert shoelace(polygon) == -1 and shapes.polygon_area(polygon) == 1
    table = shapes.object_table(labels)[0]
    assert table["centroid"] == [3.5, 2.5] and table["bbox"] == [3, 2, 4, 3] and table["area"] == 1


@pytest.mark.parametrize("radius", [1.5, 3, 5.5, 10, 24.3])
def test_disc_polygon_area_equals_pixel_count(radius):
    mask = disc((60, 70), 29.4, 33.7, radius)
    polygon = shapes.contours(mask.astype(np.uint16))[1]
    assert shapes.polygon_area(polygon) == mask.sum()
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
    polygons = shapes.contours(labels)
    assert sorted(polygons) == [1, 2, 3, 4, 5]
    eight = np.ones((3, 3), bool)
    for label, polygon in polygons.items():
        pieces, n = ndimage.label(labels == label, structure=eight)
        largest = np.argmax(np.bincount(pieces.ravel())[1:]) + 1
        filled = ndimage.binary_fill_holes(pieces == largest)
        assert shapes.polygon_area(polygon) == filled.sum(), label
        # the polygon starts at the top-left corner of the piece's first pixel
        first = np.argwhere(pieces == largest)[0]
        assert polygon[0].tolist() == [first[1], first[0]]


def test_diagonal_contact_keeps_both_pixels():
    labels = np.zeros((6, 6), np.int32)
    labels[1:3, 1:3] = 1
    labels[3, 3] = 1  # touches the square at one corner only
    polygon = shapes.contours(labels)[1]
    assert shapes.polygon_area(polygon) == 5
    assert sum((polygon == [3, 3]).all(axis=1)) == 2  # the polygon passes twice through the shared corner


def test_polygon_centroid_matches_object_table():
    labels = np.zeros((40, 40), np.int32)
    labels[disc((40, 40), 12.2, 15.1, 8)] = 3
    labels[25:37, 5:9] = 9
    table = {row["label"]: row for row in shapes.object_table(labels)}
    for label, polygon in shapes.contours(labels).items():
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
    exact = shapes.contours(mask)[1]
    simple = shapes.contours(mask, simplify=0.5)[1]
    assert len(simple) < len(exact)
    assert abs(shapes.polygon_area(simple) / mask.sum() - 1) < 0.02
    assert shapes.polygon_area(simple) > 0  # orientation kept
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
    polygons = shapes.contours(labels, simplify=True)
    assert len(polygons[1]) == 4 and len(polygons[2]) == 4
    polygon = shapes.contours(disc((40, 40), 20, 20, 12), simplify=100)[1]
    assert len(polygon) == 3 and shapes.polygon_area(polygon) > 0
    round_labels = disc((40, 40), 19.6, 20.3, 11).astype(np.int32)
    np.testing.assert_array_equal(shapes.simplify_polygon(shapes.contours(round_labels)[1], 0.5),
                                  shapes.contours(round_labels, simplify=True)[1])


def test_empty_and_huge_ids():
    assert shapes.contours(np.zeros((5, 5), np.int32)) == {}
    labels = np.zeros((5, 5), np.int64)
    labels[1:3, 1:4] = 2**40
    polygons = shapes.contours(labels)
    assert list(polygons) == [2**40] and shapes.polygon_area(polygons[2**40]) == 6
    assert shapes.object_table(labels.astype(np.float64))[0]["label"] == 2**40


def test_thousand_objects_one_polygon_each():
    labels = np.zeros((512, 512), np.int32)
    rng = np.random.default_rng(2)
    for label in range(1, 1001):
        y, x = rng.integers(0, 500, 2)
        labels[y:y + rng.integers(2, 12), x:x + rng.integers(2, 12)] = label
    polygons = shapes.contours(labels)
    present = np.unique(labels)[1:]
    assert sorted(polygons) == present.tolist()
    for label in present[::25]:
        pieces, _ = ndimage.label(labels == label, structure=np.ones((3, 3)))
        largest = ndimage.binary_fill_holes(pieces == np.argmax(np.bincount(pieces.ravel())[1:]) + 1)
        assert shapes.polygon_area(polygons[label]) == largest.sum()


# ---------------------------------------------------------------------------------------------- object table

def test_object_table_2d_with_spacing_and_cellprob():
    labels = np.zeros((10, 20), np.int32)
    labels[2:4, 5:10] = 4  # 10 pixels
    cellprob = np.zeros(labels.shape, np.float32)
    cellprob[2:4, 5:10] = np.log(3.0)  # sigmoid = 0.75
    rows = shapes.object_table(labels, spacing=(0.5, 2.0), cellprob=cellprob)
    assert len(rows) == 1
    row = rows[0]
    assert row["label"] == 4 and row["area"] == 10 and row["area_physical"] == pytest.approx(10.0)
    assert row["centroid"] == [7.5, 3.0] and row["bbox"] == [5, 2, 10, 4]
    assert row["radius"] == pytest.approx(np.sqrt(10 / np.pi))
    assert row["radius_physical"] == pytest.approx(np.sqrt(10 / np.pi))
    assert row["quality"] == pytest.approx(0.75)
    assert shapes.object_table(labels)[0]["quality"] == 10  # no cellprob: the area


def test_object_table_3d():
    labels = np.zeros((6, 8, 10), np.uint8)
    labels[1:3, 2:6, 3:4] = 1  # 8 voxels
    labels[5, 7, 9] = 2
    one, two = shapes.object_table(labels, spacing=(3.0, 1.0, 0.5))
    assert one["volume"] == 8 and one["volume_physical"] == pytest.approx(12.0)
    assert one["centroid"] == [3.5, 4.0, 2.0] and one["bbox"] == [3, 2, 1, 4, 6, 3]
    assert one["radius"] == pytest.approx((3 * 8 / (4 * np.pi)) ** (1 / 3))
    assert one["radius_physical"] == pytest.approx((3 * 12 / (4 * np.pi)) ** (1 / 3))
    assert two["centroid"] == [9.5, 7.5, 5.5] and two["quality"] == 1


# ---------------------------------------------------------------------------------------------- meshes

def test_single_voxel_is_an_octahedron():
    labels = np.zeros((3, 3, 3), np.int32)
    labels[1, 1, 1] = 5
    vertices, faces = shapes.meshes(labels)[5]
    assert len(vertices) == 6 and len(faces) == 8
    assert_closed_oriented(vertices, faces)
    assert shapes.mesh_volume(vertices, faces) == pytest.approx(1 / 6)
    np.testing.assert_allclose(vertices.mean(axis=0), [1.5, 1.5, 1.5])  # the voxel centre


@pytest.mark.parametrize("radius", [5, 7.5, 11])
def test_sphere_mesh_volume_watertight_outward(radius):
    mask = ball((30, 30, 30), (14.6, 15.2, 14.9), radius)
    vertices, faces = shapes.meshes(mask.astype(np.int32))[1]
    assert_closed_oriented(vertices, faces)
    assert abs(shapes.mesh_volume(vertices, faces) / mask.sum() - 1) < 0.05
    centre = np.argwhere(mask).mean(axis=0)[::-1] + 0.5
    np.testing.assert_allclose(vertices.mean(axis=0), centre, atol=0.3)


def test_anisotropic_spacing_scales_the_mesh():
    mask = ball((20, 24, 24), (9.5, 11.2, 12.3), 6).astype(np.int32)
    vertices, faces = shapes.meshes(mask)[1]
    scaled, scaled_faces = shapes.meshes(mask, spacing=(2.5, 1.0, 0.4))[1]  # (dz, dy, dx)
    np.testing.assert_array_equal(faces, scaled_faces)
    np.testing.assert_allclose(scaled, vertices * [0.4, 1.0, 2.5])  # vertices are (x, y, z)
    assert shapes.mesh_volume(scaled, scaled_faces) == pytest.approx(shapes.mesh_volume(vertices, faces) * 1.0)
    assert_closed_oriented(scaled, scaled_faces)


def test_touching_objects_and_split_labels():
    labels = np.zeros((12, 12, 20), np.int32)
    labels[2:8, 2:8, 2:8] = 1
    labels[2:8, 2:8, 8:14] = 2  # face to face with 1
    labels[9:11, 9:11, 16:18] = 1  # a second piece of label 1
    meshes = shapes.meshes(labels)
    assert sorted(meshes) == [1, 2]
    assert_closed_oriented(*meshes[1], shells=2)
    assert_closed_oriented(*meshes[2])
    # flat faces lie on the voxel faces; each of the 12 edges of the n^3 block is chamfered (a prism of
    # cross-section 1/8 along the n - 1 voxels between corner voxel centres) and each corner loses 1/8 - 1/48
    n = 6
    assert shapes.mesh_volume(*meshes[2]) == pytest.approx(n ** 3 - 12 * (n - 1) / 8 - 8 * (1 / 8 - 1 / 48))


def test_smoothing_keeps_volume_and_rounds_the_sphere():
    mask = ball((28, 28, 28), (13.5, 13.8, 14.1), 9).astype(np.int32)
    vertices, faces = shapes.meshes(mask)[1]
    smooth, smooth_faces = shapes.meshes(mask, smooth_iterations=10)[1]
    np.testing.assert_array_equal(faces, smooth_faces)
    assert abs(shapes.mesh_volume(smooth, faces) / mask.sum() - 1) < 0.03
    centre = np.argwhere(mask).mean(axis=0)[::-1] + 0.5
    spread = [np.std(np.linalg.norm(v - centre, axis=1)) for v in (vertices, smooth)]
    assert spread[1] < 0.6 * spread[0]
    assert_closed_oriented(smooth, faces)


def test_decimation_keeps_a_closed_mesh():
    mask = ball((30, 30, 30), (14.5, 15.0, 14.2), 10).astype(np.int32)
    labels = mask.copy()
    labels[25:28, 2:5, 2:5] = 2  # a small cube too
    full = shapes.meshes(labels)
    reduced = shapes.meshes(labels, smooth_iterations=5, decimate=0.2)
    vertices, faces = reduced[1]
    assert len(faces) <= 0.21 * len(full[1][1])
    assert_closed_oriented(vertices, faces)
    assert abs(shapes.mesh_volume(vertices, faces) / mask.sum() - 1) < 0.05
    assert_closed_oriented(*reduced[2])


def test_ply_round_trip(tmp_path):
    mask = ball((16, 16, 16), (7.5, 7.5, 7.5), 5).astype(np.int32)
    vertices, faces = shapes.meshes(mask, spacing=(2.0, 0.5, 0.5))[1]
    path = tmp_path / "cell.ply"
    shapes.write_ply(path, vertices, faces)
    data = path.read_bytes()
    assert data.startswith(b"ply\nformat binary_little_endian 1.0\n")
    assert f"element vertex {len(vertices)}\n".encode() in data
    read_vertices, read_faces = shapes.read_ply(path)
    np.testing.assert_array_equal(read_vertices, vertices.astype(np.float32))
    np.testing.assert_array_equal(read_faces, faces)
    header = data[:data.index(b"end_header\n") + len(b"end_header\n")]
    assert len(data) == len(header) + 12 * len(vertices) + 13 * len(faces)


# ---------------------------------------------------------------------------------------------- errors

def test_bad_input_names_the_argument():
    with pytest.raises(InputError, match="labels"):
        shapes.contours(np.zeros((2, 3, 3), np.int32))
    with pytest.raises(InputError, match="labels"):
        shapes.meshes(np.zeros((3, 3), np.int32))
    with pytest.raises(InputError, match="labels"):
        shapes.contours(np.full((3, 3), 1.5))
    with pytest.raises(InputError, match="labels"):
        shapes.object_table(np.full((3, 3), -1))
    with pytest.raises(InputError, match="simplify"):
        shapes.contours(np.zeros((3, 3), np.int32), simplify=-1)
    with pytest.raises(InputError, match="spacing"):
        shapes.meshes(np.zeros((3, 3, 3), np.int32), spacing=(1, 1))
    with pytest.raises(InputError, match="spacing"):
        shapes.object_table(np.zeros((3, 3), np.int32), spacing=0)
    with pytest.raises(InputError, match="decimate"):
        shapes.meshes(np.zeros((3, 3, 3), np.int32), decimate=2)
    with pytest.raises(InputError, match="smooth_iterations"):
        shapes.meshes(np.zeros((3, 3, 3), np.int32), smooth_iterations=1.5)
    with pytest.raises(InputError, match="cellprob"):
        shapes.object_table(np.zeros((3, 3), np.int32), cellprob=np.zeros((3, 4)))
    with pytest.raises(InputError, match="faces"):
        shapes.write_ply("unused.ply", np.zeros((3, 3)), np.array([[0, 1, 3]]))
