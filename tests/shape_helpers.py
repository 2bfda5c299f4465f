"""Small label images and mesh checks shared by the contours, measure and meshes tests."""
import numpy as np

from trackpose.meshes import mesh_volume


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
    assert mesh_volume(vertices, faces) > 0, "normals point inwards"
    assert len(vertices) - len(undirected) + len(faces) == 2 * shells  # Euler characteristic of spheres
