"""PLY files of triangle meshes (binary little-endian), as the bridge writes them and the Java side reads them.

Read and written with ``plyfile``. Layout (java/.../bridge/PlyReader.java expects exactly this, byte for byte what
trackpose wrote before plyfile): ``comment written by trackpose``, ``element vertex`` with float32 properties
``x, y, z``, then ``element face`` with ``list uchar int vertex_indices`` (triangles).
"""

from __future__ import annotations

import numpy as np
import plyfile

from ..errors import InputError

__all__ = ["write_ply", "read_ply"]

_VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4")])
_FACE = np.dtype([("vertex_indices", "<i4", (3,))])


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
    vertex = np.empty(len(vertices), _VERTEX)
    vertex["x"], vertex["y"], vertex["z"] = np.asarray(vertices, np.float32).T
    face = np.empty(len(faces), _FACE)
    face["vertex_indices"] = faces
    elements = [plyfile.PlyElement.describe(vertex, "vertex"),
                plyfile.PlyElement.describe(face, "face", len_types={"vertex_indices": "u1"},
                                            val_types={"vertex_indices": "i4"})]
    plyfile.PlyData(elements, text=False, byte_order="<", comments=["written by trackpose"]).write(str(path))


def read_ply(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a triangle mesh written by :func:`write_ply` (binary little-endian, float x y z, triangle faces).

    Returns (vertices float32 (V, 3), faces int32 (F, 3)).
    """
    try:
        data = plyfile.PlyData.read(str(path))
    except Exception as error:  # plyfile raises PlyHeaderParseError, ValueError, ... on other files
        raise InputError(f"path {path}: not a PLY file ({type(error).__name__}: {error})") from None
    if data.text or data.byte_order != "<":
        raise InputError(f"path {path}: only binary little-endian PLY files are read")
    names = [element.name for element in data.elements]
    vertex = data["vertex"] if "vertex" in names else None
    face = data["face"] if "face" in names else None
    properties = [] if vertex is None else [(p.name, p.val_dtype) for p in vertex.properties]
    face_properties = [] if face is None else [(p.name, getattr(p, "len_dtype", None), p.val_dtype)
                                               for p in face.properties]
    if properties != [("x", "f4"), ("y", "f4"), ("z", "f4")] or face_properties != [("vertex_indices", "u1", "i4")]:
        raise InputError(f"path {path}: vertex and face properties differ from those write_ply writes")
    vertices = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float32)
    lists = face["vertex_indices"]
    if len(lists) and any(len(indices) != 3 for indices in lists):
        raise InputError(f"path {path}: only triangle faces are read")
    faces = np.asarray(np.stack(lists), np.int32).reshape(-1, 3) if len(lists) else np.zeros((0, 3), np.int32)
    return vertices, faces
