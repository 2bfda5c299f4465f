"""3D meshes: marching cubes, watertight outward shells, smoothing, decimation, PLY files."""
import numpy as np
import pytest

from trackpose import io, meshes
from trackpose.errors import InputError
from shape_helpers import assert_closed_oriented, ball


def test_single_voxel_is_an_octahedron():
    labels = np.zeros((3, 3, 3), np.int32)
    labels[1, 1, 1] = 5
    vertices, faces = meshes.meshes(labels)[5]
    assert len(vertices) == 6 and len(faces) == 8
    assert_closed_oriented(vertices, faces)
    assert meshes.mesh_volume(vertices, faces) == pytest.approx(1 / 6)
    np.testing.assert_allclose(vertices.mean(axis=0), [1.5, 1.5, 1.5])  # the voxel centre


@pytest.mark.parametrize("radius", [5, 7.5, 11])
def test_sphere_mesh_volume_watertight_outward(radius):
    mask = ball((30, 30, 30), (14.6, 15.2, 14.9), radius)
    vertices, faces = meshes.meshes(mask.astype(np.int32))[1]
    assert_closed_oriented(vertices, faces)
    assert abs(meshes.mesh_volume(vertices, faces) / mask.sum() - 1) < 0.05
    centre = np.argwhere(mask).mean(axis=0)[::-1] + 0.5
    np.testing.assert_allclose(vertices.mean(axis=0), centre, atol=0.3)


def test_anisotropic_spacing_scales_the_mesh():
    mask = ball((20, 24, 24), (9.5, 11.2, 12.3), 6).astype(np.int32)
    vertices, faces = meshes.meshes(mask)[1]
    scaled, scaled_faces = meshes.meshes(mask, spacing=(2.5, 1.0, 0.4))[1]  # (dz, dy, dx)
    np.testing.assert_array_equal(faces, scaled_faces)
    np.testing.assert_allclose(scaled, vertices * [0.4, 1.0, 2.5])  # vertices are (x, y, z)
    assert meshes.mesh_volume(scaled, scaled_faces) == pytest.approx(meshes.mesh_volume(vertices, faces) * 1.0)
    assert_closed_oriented(scaled, scaled_faces)


def test_touching_objects_and_split_labels():
    labels = np.zeros((12, 12, 20), np.int32)
    labels[2:8, 2:8, 2:8] = 1
    labels[2:8, 2:8, 8:14] = 2  # face to face with 1
    labels[9:11, 9:11, 16:18] = 1  # a second piece of label 1
    surfaces = meshes.meshes(labels)
    assert sorted(surfaces) == [1, 2]
    assert_closed_oriented(*surfaces[1], shells=2)
    assert_closed_oriented(*surfaces[2])
    # flat faces lie on the voxel faces; each of the 12 edges of the n^3 block is chamfered (a prism of
    # cross-section 1/8 along the n - 1 voxels between corner voxel centres) and each corner loses 1/8 - 1/48
    n = 6
    assert meshes.mesh_volume(*surfaces[2]) == pytest.approx(n ** 3 - 12 * (n - 1) / 8 - 8 * (1 / 8 - 1 / 48))


def test_smoothing_keeps_volume_and_rounds_the_sphere():
    mask = ball((28, 28, 28), (13.5, 13.8, 14.1), 9).astype(np.int32)
    vertices, faces = meshes.meshes(mask)[1]
    smooth, smooth_faces = meshes.meshes(mask, smooth_iterations=10)[1]
    np.testing.assert_array_equal(faces, smooth_faces)
    assert abs(meshes.mesh_volume(smooth, faces) / mask.sum() - 1) < 0.03
    centre = np.argwhere(mask).mean(axis=0)[::-1] + 0.5
    spread = [np.std(np.linalg.norm(v - centre, axis=1)) for v in (vertices, smooth)]
    assert spread[1] < 0.6 * spread[0]
    assert_closed_oriented(smooth, faces)


def test_decimation_keeps_a_closed_mesh():
    mask = ball((30, 30, 30), (14.5, 15.0, 14.2), 10).astype(np.int32)
    labels = mask.copy()
    labels[25:28, 2:5, 2:5] = 2  # a small cube too
    full = meshes.meshes(labels)
    reduced = meshes.meshes(labels, smooth_iterations=5, decimate=0.2)
    vertices, faces = reduced[1]
    assert len(faces) <= 0.21 * len(full[1][1])
    assert_closed_oriented(vertices, faces)
    assert abs(meshes.mesh_volume(vertices, faces) / mask.sum() - 1) < 0.05
    assert_closed_oriented(*reduced[2])


def _ellipsoid(shape, centre, semi, spacing):
    """Voxels whose centres lie inside the ellipsoid (centre, semi-axes (a, b, c) along x, y, z, physical units);
    ``spacing`` is (dz, dy, dx), voxel (k, i, j)'s centre at ((j + 0.5) dx, (i + 0.5) dy, (k + 0.5) dz)."""
    z, y, x = np.indices(shape, dtype=float)
    dz, dy, dx = spacing
    r = sum((((q + 0.5) * d - c) / s) ** 2 for q, d, c, s in ((x, dx, centre[0], semi[0]), (y, dy, centre[1], semi[1]),
                                                                (z, dz, centre[2], semi[2])))
    return (r <= 1).astype(np.int32)


def _ellipsoid_area(a, b, c, n=600):
    t = (np.arange(n) + 0.5) * np.pi / n
    p = (np.arange(2 * n) + 0.5) * np.pi / n
    t, p = np.meshgrid(t, p, indexing="ij")
    st, ct = np.sin(t), np.cos(t)
    integrand = np.sqrt((b * c * st ** 2 * np.cos(p)) ** 2 + (a * c * st ** 2 * np.sin(p)) ** 2 + (a * b * st * ct) ** 2)
    return integrand.sum() * (np.pi / n) ** 2


def _area(vertices, faces):
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum()


@pytest.mark.parametrize("semi, spacing", [
    ((4.0, 4.0, 4.0), (1.0, 1.0, 1.0)),  # ball, radius 4 voxels
    ((8.0, 8.0, 8.0), (1.0, 1.0, 1.0)),
    ((3.0, 3.0, 3.0), (1.0, 0.5, 0.5)),  # 6 pixels in XY, 3 planes in Z
    ((6.0, 4.0, 3.0), (1.0, 0.5, 0.5)),  # ellipsoid, anisotropic voxels
    ((12.0, 8.0, 5.0), (1.0, 1.0, 1.0)),
])
def test_simplified_surfaces_measure_like_the_object(semi, spacing):
    """What TrackMate 9's 3D analyzers compute (volume, and sphericity = pi^(1/3) (6 V)^(2/3) / area) on the default
    surfaces (simplify: staircase smoothed away, half the triangles) agrees with the analytic shape; the raw
    marching-cubes surface does not (its sphericity is 0.07-0.12 too low)."""
    shape = tuple(int(2 * s / d) + 6 for s, d in zip(semi[::-1], spacing))
    centre = [(n * d) / 2 + 0.13 * d for n, d in zip(shape[::-1], spacing[::-1])]
    labels = _ellipsoid(shape, centre, semi, spacing)
    volume = 4 / 3 * np.pi * np.prod(semi)
    sphericity = np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / _ellipsoid_area(*semi)

    def measured(surface):
        vertices, faces = surface[1]
        vertices = vertices * np.array(spacing[::-1])  # pixel units -> physical
        v = meshes.mesh_volume(vertices, faces)
        return v, np.pi ** (1 / 3) * (6 * v) ** (2 / 3) / _area(vertices, faces), len(faces)

    simple = meshes.surfaces(labels)
    assert_closed_oriented(*simple[1])
    v, s, n = measured(simple)
    assert abs(v / volume - 1) < 0.025
    assert abs(s - sphericity) < 0.021
    raw_v, raw_s, raw_n = measured(meshes.surfaces(labels, simplify=False))
    assert raw_s < sphericity - 0.06
    assert n == pytest.approx(meshes.SIMPLIFY_KEEP * raw_n, abs=2)  # decimated to half


def test_surfaces_options():
    labels = ball((24, 24, 24), (11.5, 12.2, 11.8), 7).astype(np.int32)
    labels[1:3, 1:3, 1:3] = 2  # 8 voxels: 24 triangles, fewer than SIMPLIFY_MIN_TRIANGLES: not decimated
    raw = meshes.surfaces(labels, simplify=False)
    for k in (1, 2):  # off: the exact marching-cubes surface
        np.testing.assert_array_equal(raw[k][0], meshes.meshes(labels)[k][0])
    simple = meshes.surfaces(labels)
    assert len(simple[2][1]) == len(raw[2][1]) < meshes.SIMPLIFY_MIN_TRIANGLES
    # smoothing (pixels) adds Taubin rounds: 2 sigma^2 more
    smoother = meshes.surfaces(labels, simplify=False, smoothing=2.0)
    np.testing.assert_allclose(smoother[1][0], meshes.meshes(labels, smooth_iterations=8)[1][0])
    with pytest.raises(InputError, match="smoothing"):
        meshes.surfaces(labels, smoothing=-1.0)


def test_ply_round_trip(tmp_path):
    mask = ball((16, 16, 16), (7.5, 7.5, 7.5), 5).astype(np.int32)
    vertices, faces = meshes.meshes(mask, spacing=(2.0, 0.5, 0.5))[1]
    path = tmp_path / "cell.ply"
    io.write_ply(path, vertices, faces)
    data = path.read_bytes()
    assert data.startswith(b"ply\nformat binary_little_endian 1.0\n")
    assert f"element vertex {len(vertices)}\n".encode() in data
    read_vertices, read_faces = io.read_ply(path)
    np.testing.assert_array_equal(read_vertices, vertices.astype(np.float32))
    np.testing.assert_array_equal(read_faces, faces)
    header = data[:data.index(b"end_header\n") + len(b"end_header\n")]
    assert len(data) == len(header) + 12 * len(vertices) + 13 * len(faces)



def test_bad_input_names_the_argument():
    with pytest.raises(InputError, match="labels"):
        meshes.meshes(np.zeros((3, 3), np.int32))
    with pytest.raises(InputError, match="spacing"):
        meshes.meshes(np.zeros((3, 3, 3), np.int32), spacing=(1, 1))
    with pytest.raises(InputError, match="decimate"):
        meshes.meshes(np.zeros((3, 3, 3), np.int32), decimate=2)
    with pytest.raises(InputError, match="smooth_iterations"):
        meshes.meshes(np.zeros((3, 3, 3), np.int32), smooth_iterations=1.5)
    with pytest.raises(InputError, match="faces"):
        io.write_ply("unused.ply", np.zeros((3, 3)), np.array([[0, 1, 3]]))


def test_ply_files_are_byte_for_byte_the_layout_the_java_reader_expects(tmp_path):
    # java/.../bridge/PlyReader.java reads this header and these record sizes (12 bytes a vertex, 13 a face)
    vertices, faces = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], float), np.array([[0, 1, 2]])
    io.write_ply(tmp_path / "t.ply", vertices, faces)
    data = (tmp_path / "t.ply").read_bytes()
    header = (b"ply\nformat binary_little_endian 1.0\ncomment written by trackpose\nelement vertex 3\n"
              b"property float x\nproperty float y\nproperty float z\nelement face 1\n"
              b"property list uchar int vertex_indices\nend_header\n")
    assert data == header + np.asarray(vertices, "<f4").tobytes() + b"\x03" + np.asarray(faces, "<i4").tobytes()


def test_other_ply_files_give_clear_errors(tmp_path):
    (tmp_path / "text.ply").write_text("not a mesh")
    with pytest.raises(InputError, match="text.ply"):
        io.read_ply(tmp_path / "text.ply")
    ascii_ply = ("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
                 "element face 1\nproperty list uchar int vertex_indices\nend_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    (tmp_path / "ascii.ply").write_text(ascii_ply)
    with pytest.raises(InputError, match="binary little-endian"):
        io.read_ply(tmp_path / "ascii.ply")
