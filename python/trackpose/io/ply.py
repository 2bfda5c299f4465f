"""PLY files of triangle meshes (binary little-endian), as the bridge writes them and the Java side reads them.

Layout (java/.../bridge/PlyReader.java expects exactly this): ``element vertex`` with float32 properties
``x, y, z``, then ``element face`` with ``list uchar int vertex_indices`` (triangles).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["write_ply", "read_ply"]

_PLY_FACE = np.dtype([("n", "u1"), ("index", "<i4", (3,))])


def write_ply(path, vertices, faces) -> None:
    """Write a triangle mesh as a binary little-endian PLY file.

    Parameters
    ----------
    path : str or Path
    vertices : array_like of float, shape (V, 3)
        ``(x, y, z)``, stored as float32 properties ``x, y, z``.
    faces : array_like of int, shape (F, 3)
        Vertex indices, stored as ``list uchar int vertex_indices``.
    """
    vertices = np.asarray(vertices)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise InputError(f"vertices must have shape (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise InputError(f"faces must have shape (F, 3), got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise InputError(f"faces index vertices 0..{len(vertices) - 1}, found {faces.min()}..{faces.max()}")
    header = ("ply\nformat binary_little_endian 1.0\ncomment written by trackpose\n"
              f"element vertex {len(vertices)}\nproperty float x\nproperty float y\nproperty float z\n"
              f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n")
    records = np.empty(len(faces), _PLY_FACE)
    records["n"] = 3
    records["index"] = faces
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(np.ascontiguousarray(vertices, dtype="<f4").tobytes())
        f.write(records.tobytes())


def read_ply(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh written by :func:`write_ply` (binary little-endian, float x y z, triangle faces).

    Returns (vertices float32 (V, 3), faces int32 (F, 3)).
    """
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise InputError(f"path {path}: not a PLY file")
    header = data[:end].decode("ascii").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise InputError(f"path {path}: only binary little-endian PLY files are read")
    expected = ["property float x", "property float y", "property float z",
                "property list uchar int vertex_indices"]
    if [line for line in header if line.startswith("property ")] != expected:
        raise InputError(f"path {path}: vertex and face properties differ from those write_ply writes")
    counts = {line.split()[1]: int(line.split()[2]) for line in header if line.startswith("element ")}
    body = end + len(b"end_header\n")
    n_vertices, n_faces = counts.get("vertex", 0), counts.get("face", 0)
    vertices = np.frombuffer(data, "<f4", n_vertices * 3, body).reshape(n_vertices, 3)
    records = np.frombuffer(data, _PLY_FACE, n_faces, body + 12 * n_vertices)
    if n_faces and np.any(records["n"] != 3):
        raise InputError(f"path {path}: only triangle faces are read")
    return vertices.copy(), records["index"].astype(np.int32)
