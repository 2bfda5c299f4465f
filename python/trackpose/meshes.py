"""3D surfaces of labelled objects: closed triangle meshes by marching cubes, Taubin smoothing, decimation.

What TrackMate 9 shows as a 3D spot (masks -> shapes). Coordinates follow ``trackpose.measure``'s conventions:
voxel ``(k, i, j)`` is the cube ``[j, j + 1] x [i, i + 1] x [k, k + 1]``, points are ``(x, y, z)`` times the
spacing. Mesh triangles ``(a, b, c)`` are ordered so that ``cross(b - a, c - a)``, computed on the ``(x, y, z)``
vertices, points out of the object: the signed volume ``sum(dot(a, cross(b, c))) / 6`` is positive. Meshes are
written as PLY files by ``trackpose.io.write_ply``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from trackpose.errors import InputError
from trackpose.labels import as_label_image, compact_labels
from trackpose.measure import as_spacing, object_stats

__all__ = ["meshes", "surfaces", "mesh_volume", "mesh_smoothing_iterations", "SIMPLIFY_SMOOTHING_ROUNDS",
           "SIMPLIFY_KEEP", "SIMPLIFY_MIN_TRIANGLES"]

# Taubin smoothing: a shrinking step (lambda) then an inflating one (mu), |mu| slightly above lambda so that the
# pass-band (k_pb = 1 / lambda + 1 / mu ~ 0.1) keeps the shape's low frequencies and its volume.
_TAUBIN_LAMBDA = 0.5
_TAUBIN_MU = -0.53

#: ``surfaces(simplify=True)``: Taubin rounds that remove the voxel staircase of a marching-cubes surface. Taubin
#: smoothing is a low-pass filter that keeps the volume, so more rounds round off the one-voxel steps without
#: shrinking the object. With these and the decimation below, TrackMate 9's volume and sphericity of rasterised
#: balls and ellipsoids with semi-axes of at least 4 pixels in XY and 2.5 planes in Z (voxels up to 2x deeper than
#: wide) are within 2.5 % and 0.02 of the analytic shape's; the raw surface's sphericity is 0.07-0.12 too low
#: (tests/test_meshes.py; in TrackMate 9: java/tm9).
SIMPLIFY_SMOOTHING_ROUNDS = 20
#: ``surfaces(simplify=True)``: fraction of the triangles decimation keeps. TrackMate 9's label detector keeps
#: 20 % of meshes of this size, which costs small objects 5-9 % of their volume; half keeps it within 2.5 %.
SIMPLIFY_KEEP = 0.5
#: ``surfaces(simplify=True)``: meshes with fewer triangles than this are not decimated
SIMPLIFY_MIN_TRIANGLES = 200


# ----------------------------------------------------------------------------------------------------------
# 3D meshes
# ----------------------------------------------------------------------------------------------------------

def _marching_cubes_table():
    """Triangles of each of the 256 inside/outside patterns of a cube's corners, as triples of cube edges.

    Derived rather than tabulated: on each cube face the iso-line cuts off every run of consecutive inside
    corners (two inside corners on a diagonal are cut off separately, so the object is 6-connected across a
    face). Adjacent cubes therefore cut their shared face identically, which makes the surface watertight. The
    cut segments of the six faces chain into closed loops, each triangulated as a fan. Segments are oriented
    so that triangle normals (right-hand rule) point from inside to outside.

    Corner ``c`` of a cube sits at offset ``(c & 1, c >> 1 & 1, c >> 2 & 1)`` in (x, y, z). Returns
    ``(edge_corner, edge_axis, triangles, counts)``: the lower corner and the axis (0 x, 1 y, 2 z) of each
    of the 12 edges, int8 (256, 5, 3) edge triples and the number of triangles per pattern.
    """
    edge_of = {}
    edge_corner, edge_axis = [], []
    for axis in range(3):
        for corner in range(8):
            if not corner >> axis & 1:
                other = corner | (1 << axis)
                edge_of[corner, other] = edge_of[other, corner] = len(edge_corner)
                edge_corner.append(corner)
                edge_axis.append(axis)
    faces = []  # four corners of each face, counter-clockwise seen from outside the cube
    for axis in range(3):
        for side in (0, 1):
            u, v = ((axis + 1) % 3, (axis + 2) % 3) if side else ((axis + 2) % 3, (axis + 1) % 3)
            faces.append([(side << axis) | (bu << u) | (bv << v) for bu, bv in ((0, 0), (1, 0), (1, 1), (0, 1))])
    triangles = np.zeros((256, 5, 3), np.int8)
    counts = np.zeros(256, np.int8)
    for pattern in range(256):
        inside = [pattern >> c & 1 for c in range(8)]
        following = {}  # cut edge -> next cut edge along the surface boundary loop
        for corners in faces:
            flags = [inside[c] for c in corners]
            for k in range(4):
                if flags[k] and not flags[k - 1]:  # a run of inside corners starts at k
                    m = k
                    while flags[(m + 1) % 4]:
                        m = (m + 1) % 4
                    following[edge_of[corners[k - 1], corners[k]]] = edge_of[corners[m], corners[(m + 1) % 4]]
        assert sorted(following) == sorted(following.values())
        remaining = set(following)
        loops = []
        while remaining:
            loop = [min(remaining)]
            while following[loop[-1]] != loop[0]:
                loop.append(following[loop[-1]])
            remaining -= set(loop)
            loops.append(loop)
        fan = [(loop[0], loop[i], loop[i + 1]) for loop in loops for i in range(1, len(loop) - 1)]
        counts[pattern] = len(fan)
        if fan:
            triangles[pattern, :len(fan)] = fan
    return np.array(edge_corner, np.int64), np.array(edge_axis, np.int64), triangles, counts


_EDGE_CORNER, _EDGE_AXIS, _TRIANGLES, _TRIANGLE_COUNTS = _marching_cubes_table()


@njit(cache=True, nogil=True)
def _march_object(labels, label, z0, y0, x0, z1, y1, x1, edge_corner, edge_axis, triangles, counts,
                  vertices, faces):
    """Marching cubes at iso 0.5 on ``labels == label`` inside the box [z0, z1) x [y0, y1) x [x0, x1) grown by
    one voxel of background on every side, so the surface is closed. Vertices are shared through the cube edge
    they lie on. Writes (x, y, z) vertices in voxel-corner coordinates and faces when the arrays have room;
    returns the numbers of vertices and faces."""
    depth, height, width = labels.shape
    nz, ny, nx = z1 - z0 + 2, y1 - y0 + 2, x1 - x0 + 2  # sample grid: the box plus one voxel each side
    inside = np.zeros((nz, ny, nx), np.uint8)  # grid point (gz, gy, gx) is voxel (z0 - 1 + gz, ...)
    for gz in range(1, nz - 1):
        for gy in range(1, ny - 1):
            for gx in range(1, nx - 1):
                if labels[z0 - 1 + gz, y0 - 1 + gy, x0 - 1 + gx] == label:
                    inside[gz, gy, gx] = 1
    write = vertices.shape[0] > 0
    vertex_of_edge = np.full(nz * ny * nx * 3, -1, np.int32)
    n_vertices = 0
    n_faces = 0
    for gz in range(nz - 1):
        for gy in range(ny - 1):
            for gx in range(nx - 1):
                pattern = (inside[gz, gy, gx] | inside[gz, gy, gx + 1] << 1 | inside[gz, gy + 1, gx] << 2
                           | inside[gz, gy + 1, gx + 1] << 3 | inside[gz + 1, gy, gx] << 4
                           | inside[gz + 1, gy, gx + 1] << 5 | inside[gz + 1, gy + 1, gx] << 6
                           | inside[gz + 1, gy + 1, gx + 1] << 7)
                if pattern == 0 or pattern == 255:
                    continue
                for t in range(counts[pattern]):
                    for s in range(3):
                        e = triangles[pattern, t, s]
                        c = edge_corner[e]
                        ez, ey, ex = gz + (c >> 2 & 1), gy + (c >> 1 & 1), gx + (c & 1)
                        key = ((ez * ny + ey) * nx + ex) * 3 + edge_axis[e]
                        v = vertex_of_edge[key]
                        if v < 0:
                            v = n_vertices
                            vertex_of_edge[key] = v
                            n_vertices += 1
                            if write:  # voxel index + 0.5 is the voxel centre; + 0.5 more along the edge
                                vertices[v, 0] = x0 - 0.5 + ex + (0.5 if edge_axis[e] == 0 else 0.0)
                                vertices[v, 1] = y0 - 0.5 + ey + (0.5 if edge_axis[e] == 1 else 0.0)
                                vertices[v, 2] = z0 - 0.5 + ez + (0.5 if edge_axis[e] == 2 else 0.0)
                        if write:
                            faces[n_faces, s] = v
                    n_faces += 1
    return n_vertices, n_faces


@njit(cache=True, nogil=True)
def _march_all(labels, boxes, edge_corner, edge_axis, triangles, counts):
    """Meshes of labels 1..n (boxes (n + 1, 6): z0, y0, x0, z1, y1, x1), concatenated with offsets."""
    n = boxes.shape[0] - 1
    sizes = np.zeros((n + 1, 2), np.int64)
    no_vertices = np.zeros((0, 3), np.float64)
    no_faces = np.zeros((0, 3), np.int64)
    for k in range(1, n + 1):
        b = boxes[k]
        if b[3] > b[0]:
            sizes[k, 0], sizes[k, 1] = _march_object(labels, k, b[0], b[1], b[2], b[3], b[4], b[5], edge_corner,
                                                     edge_axis, triangles, counts, no_vertices, no_faces)
    vertex_start = np.zeros(n + 2, np.int64)
    face_start = np.zeros(n + 2, np.int64)
    for k in range(n + 1):
        vertex_start[k + 1] = vertex_start[k] + sizes[k, 0]
        face_start[k + 1] = face_start[k] + sizes[k, 1]
    vertices = np.empty((vertex_start[n + 1], 3), np.float64)
    faces = np.empty((face_start[n + 1], 3), np.int64)
    for k in range(1, n + 1):
        b = boxes[k]
        if b[3] > b[0]:
            _march_object(labels, k, b[0], b[1], b[2], b[3], b[4], b[5], edge_corner, edge_axis, triangles,
                          counts, vertices[vertex_start[k]:vertex_start[k + 1]],
                          faces[face_start[k]:face_start[k + 1]])
    return vertices, faces, vertex_start, face_start


@njit(cache=True, nogil=True)
def _taubin(vertices, faces, iterations, factors):
    """Taubin smoothing in place: per round, each factor f moves every vertex by f * (mean of its neighbours -
    itself), uniform weights."""
    n = vertices.shape[0]
    # In a closed, consistently oriented mesh every edge a-b occurs once as a -> b and once as b -> a, so the
    # directed edges of the faces list each neighbour of a vertex exactly once.
    degree = np.zeros(n + 1, np.int64)
    for f in range(faces.shape[0]):
        for s in range(3):
            degree[faces[f, s] + 1] += 1
    start = np.cumsum(degree)
    neighbours = np.empty(start[n], np.int64)
    fill = start[:n].copy()
    for f in range(faces.shape[0]):
        for s in range(3):
            a = faces[f, s]
            neighbours[fill[a]] = faces[f, (s + 1) % 3]
            fill[a] += 1
    moved = np.empty_like(vertices)
    for _ in range(iterations):
        for factor in factors:
            for v in range(n):
                count = start[v + 1] - start[v]
                sx, sy, sz = 0.0, 0.0, 0.0
                for k in range(start[v], start[v + 1]):
                    w = neighbours[k]
                    sx += vertices[w, 0]
                    sy += vertices[w, 1]
                    sz += vertices[w, 2]
                if count == 0:
                    moved[v] = vertices[v]
                else:
                    moved[v, 0] = vertices[v, 0] + factor * (sx / count - vertices[v, 0])
                    moved[v, 1] = vertices[v, 1] + factor * (sy / count - vertices[v, 1])
                    moved[v, 2] = vertices[v, 2] + factor * (sz / count - vertices[v, 2])
            vertices[:] = moved


@njit(cache=True, nogil=True)
def _quadric_cost(q, x, y, z):
    """Sum of squared distances to the planes of quadric ``q`` (a^2 ab ac ad b^2 bc bd c^2 cd d^2) at (x, y, z)."""
    return (q[0] * x * x + 2 * q[1] * x * y + 2 * q[2] * x * z + 2 * q[3] * x + q[4] * y * y + 2 * q[5] * y * z
            + 2 * q[6] * y + q[7] * z * z + 2 * q[8] * z + q[9])


@njit(cache=True, nogil=True)
def _heap_push(cost, edge, stamp, size, value, edge_value, stamp_value):
    """Push onto a binary min-heap kept in three parallel arrays; returns the new size."""
    k = size
    while k > 0:
        parent = (k - 1) // 2
        if cost[parent] <= value:
            break
        cost[k], edge[k], stamp[k] = cost[parent], edge[parent], stamp[parent]
        k = parent
    cost[k], edge[k], stamp[k] = value, edge_value, stamp_value
    return size + 1


@njit(cache=True, nogil=True)
def _heap_pop(cost, edge, stamp, size):
    """Move the smallest entry of the heap to index size - 1 and return the new size (size - 1)."""
    last = size - 1
    value, edge_value, stamp_value = cost[last], edge[last], stamp[last]
    cost[last], edge[last], stamp[last] = cost[0], edge[0], stamp[0]
    if last == 0:
        return 0
    k = 0
    while True:
        child = 2 * k + 1
        if child >= last:
            break
        if child + 1 < last and cost[child + 1] < cost[child]:
            child += 1
        if cost[child] >= value:
            break
        cost[k], edge[k], stamp[k] = cost[child], edge[child], stamp[child]
        k = child
    cost[k], edge[k], stamp[k] = value, edge_value, stamp_value
    return last


@njit(cache=True, nogil=True)
def _face_normal(pos, a, b, c):
    ux, uy, uz = pos[b, 0] - pos[a, 0], pos[b, 1] - pos[a, 1], pos[b, 2] - pos[a, 2]
    vx, vy, vz = pos[c, 0] - pos[a, 0], pos[c, 1] - pos[a, 1], pos[c, 2] - pos[a, 2]
    return uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx


@njit(cache=True, nogil=True)
def _prune(head, tail, following, face_alive, v):
    """Unlink the removed triangles from vertex v's list of incident triangles."""
    previous = -1
    entry = head[v]
    while entry >= 0:
        after = following[entry]
        if face_alive[entry // 3]:
            previous = entry
        elif previous < 0:
            head[v] = after
        else:
            following[previous] = after
        entry = after
    tail[v] = previous


@njit(cache=True, nogil=True)
def _collapse_edges(vertices, faces, target_faces):
    """Quadric-error edge collapse of one closed mesh down to about ``target_faces`` triangles.

    A collapse merges the end points of an edge at whichever of the two end points or the midpoint has the
    least quadric error (Garland & Heckbert). It is only done when the mesh stays a closed 2-manifold (the
    two end points share exactly the two neighbours of the edge's triangles: the link condition) and no
    remaining triangle turns over. Returns (vertices, faces) with unused vertices dropped."""
    n_vertices, n_faces = vertices.shape[0], faces.shape[0]
    pos = vertices.copy()
    tri = faces.copy()
    face_alive = np.ones(n_faces, np.bool_)
    vertex_alive = np.ones(n_vertices, np.bool_)
    version = np.zeros(n_vertices, np.int64)
    quadric = np.zeros((n_vertices, 10))
    for f in range(n_faces):
        a, b, c = tri[f, 0], tri[f, 1], tri[f, 2]
        nx, ny, nz = _face_normal(pos, a, b, c)
        norm = np.sqrt(nx * nx + ny * ny + nz * nz)
        if norm == 0:
            continue
        nx, ny, nz = nx / norm, ny / norm, nz / norm
        d = -(nx * pos[a, 0] + ny * pos[a, 1] + nz * pos[a, 2])
        weight = norm / 2  # area-weighted planes
        plane = (nx * nx, nx * ny, nx * nz, nx * d, ny * ny, ny * nz, ny * d, nz * nz, nz * d, d * d)
        for s in range(3):
            for i in range(10):
                quadric[tri[f, s], i] += weight * plane[i]
    # incident faces of each vertex as linked lists (entry 3 f + s is face f); collapses splice lists
    head = np.full(n_vertices, -1, np.int64)
    tail = np.full(n_vertices, -1, np.int64)
    following = np.full(3 * n_faces, -1, np.int64)
    for f in range(n_faces):
        for s in range(3):
            v, entry = tri[f, s], 3 * f + s
            if head[v] < 0:
                head[v] = entry
            else:
                following[tail[v]] = entry
            tail[v] = entry
    # heap of candidate collapses: cost, edge (u << 32 | v), versions of u and v at push time (packed alike)
    capacity = 3 * n_faces + 64
    cost = np.empty(capacity)
    edge = np.empty(capacity, np.int64)
    pushed = np.empty(capacity, np.int64)
    size = 0
    for f in range(n_faces):
        for s in range(3):
            u, v = tri[f, s], tri[f, (s + 1) % 3]
            if u < v:  # each edge of a closed oriented mesh appears once with u < v
                q = quadric[u] + quadric[v]
                best = min(_quadric_cost(q, pos[u, 0], pos[u, 1], pos[u, 2]),
                           _quadric_cost(q, pos[v, 0], pos[v, 1], pos[v, 2]),
                           _quadric_cost(q, (pos[u, 0] + pos[v, 0]) / 2, (pos[u, 1] + pos[v, 1]) / 2,
                                         (pos[u, 2] + pos[v, 2]) / 2))
                size = _heap_push(cost, edge, pushed, size, best, (u << 32) | v, 0)
    mark = np.zeros(n_vertices, np.int64)  # mark[w] == stamp: w is a neighbour of the current u
    seen = np.zeros(n_vertices, np.int64)
    stamp = 0
    alive_faces, alive_vertices = n_faces, n_vertices
    while alive_faces > target_faces and size > 0 and alive_vertices > 4:
        size = _heap_pop(cost, edge, pushed, size)
        u, v = edge[size] >> 32, edge[size] & 0xFFFFFFFF
        version_u, version_v = pushed[size] >> 32, pushed[size] & 0xFFFFFFFF
        if not (vertex_alive[u] and vertex_alive[v]) or version[u] != version_u or version[v] != version_v:
            continue  # stale: an end point moved or vanished since this entry was pushed
        _prune(head, tail, following, face_alive, u)
        _prune(head, tail, following, face_alive, v)
        # link condition: u and v must have exactly two common neighbours
        stamp += 1
        entry = head[u]
        while entry >= 0:
            f = entry // 3
            if face_alive[f]:
                for s in range(3):
                    mark[tri[f, s]] = stamp
            entry = following[entry]
        if mark[v] != stamp:
            continue
        common = 0
        entry = head[v]
        while entry >= 0:
            f = entry // 3
            if face_alive[f]:
                for s in range(3):
                    w = tri[f, s]
                    if w != u and w != v and mark[w] == stamp and seen[w] != stamp:
                        seen[w] = stamp
                        common += 1
            entry = following[entry]
        if common != 2:
            continue
        # where the merged vertex goes
        q = quadric[u] + quadric[v]
        px, py, pz = pos[u, 0], pos[u, 1], pos[u, 2]
        best = _quadric_cost(q, px, py, pz)
        c = _quadric_cost(q, pos[v, 0], pos[v, 1], pos[v, 2])
        if c < best:
            px, py, pz, best = pos[v, 0], pos[v, 1], pos[v, 2], c
        mx, my, mz = (pos[u, 0] + pos[v, 0]) / 2, (pos[u, 1] + pos[v, 1]) / 2, (pos[u, 2] + pos[v, 2]) / 2
        c = _quadric_cost(q, mx, my, mz)
        if c < best:
            px, py, pz = mx, my, mz
        # no remaining triangle around u or v may turn over
        flips = False
        for end in (u, v):
            entry = head[end]
            while entry >= 0 and not flips:
                f = entry // 3
                entry = following[entry]
                if not face_alive[f]:
                    continue
                a, b, c3 = tri[f, 0], tri[f, 1], tri[f, 2]
                if (a == u or b == u or c3 == u) and (a == v or b == v or c3 == v):
                    continue  # one of the two triangles the collapse removes
                ox, oy, oz = _face_normal(pos, a, b, c3)
                sx, sy, sz = pos[end, 0], pos[end, 1], pos[end, 2]
                pos[end, 0], pos[end, 1], pos[end, 2] = px, py, pz
                nx, ny, nz = _face_normal(pos, a, b, c3)
                pos[end, 0], pos[end, 1], pos[end, 2] = sx, sy, sz
                if ox * nx + oy * ny + oz * nz <= 0:
                    flips = True
        if flips:
            continue
        # collapse v into u
        entry = head[v]
        while entry >= 0:
            f = entry // 3
            if face_alive[f]:
                a, b, c3 = tri[f, 0], tri[f, 1], tri[f, 2]
                if a == u or b == u or c3 == u:
                    face_alive[f] = False
                    alive_faces -= 1
                else:
                    for s in range(3):
                        if tri[f, s] == v:
                            tri[f, s] = u
            entry = following[entry]
        following[tail[u]] = head[v]
        tail[u] = tail[v]
        vertex_alive[v] = False
        alive_vertices -= 1
        pos[u, 0], pos[u, 1], pos[u, 2] = px, py, pz
        quadric[u] = q
        version[u] += 1
        # new costs of the edges around u
        stamp += 1
        mark[u] = stamp
        entry = head[u]
        while entry >= 0:
            f = entry // 3
            entry = following[entry]
            if not face_alive[f]:
                continue
            for s in range(3):
                w = tri[f, s]
                if mark[w] == stamp:
                    continue
                mark[w] = stamp
                if size == capacity:
                    capacity *= 2
                    grown_cost = np.empty(capacity)
                    grown_edge = np.empty(capacity, np.int64)
                    grown_pushed = np.empty(capacity, np.int64)
                    grown_cost[:size] = cost[:size]
                    grown_edge[:size] = edge[:size]
                    grown_pushed[:size] = pushed[:size]
                    cost, edge, pushed = grown_cost, grown_edge, grown_pushed
                qw = quadric[u] + quadric[w]
                best = min(_quadric_cost(qw, pos[u, 0], pos[u, 1], pos[u, 2]),
                           _quadric_cost(qw, pos[w, 0], pos[w, 1], pos[w, 2]),
                           _quadric_cost(qw, (pos[u, 0] + pos[w, 0]) / 2, (pos[u, 1] + pos[w, 1]) / 2,
                                         (pos[u, 2] + pos[w, 2]) / 2))
                size = _heap_push(cost, edge, pushed, size, best, (u << 32) | w,
                                  (version[u] << 32) | version[w])
    new_index = np.full(n_vertices, -1, np.int64)
    n_kept = 0
    for v in range(n_vertices):
        if vertex_alive[v]:
            new_index[v] = n_kept
            n_kept += 1
    out_vertices = np.empty((n_kept, 3))
    for v in range(n_vertices):
        if vertex_alive[v]:
            out_vertices[new_index[v]] = pos[v]
    out_faces = np.empty((alive_faces, 3), np.int64)
    k = 0
    for f in range(n_faces):
        if face_alive[f]:
            for s in range(3):
                out_faces[k, s] = new_index[tri[f, s]]
            k += 1
    return out_vertices, out_faces


def meshes(labels, spacing=(1.0, 1.0, 1.0), smooth_iterations=0, decimate=None) -> dict:
    """Closed triangle mesh of every object of a 3D label image, by marching cubes.

    Parameters
    ----------
    labels : array_like of int, shape (Lz, Ly, Lx)
        Label image, 0 = background. A label made of several pieces gets one mesh with several closed shells.
    spacing : float or sequence of 3 floats
        Physical voxel size in array axis order ``(dz, dy, dx)``.
    smooth_iterations : int
        Rounds of Taubin smoothing (a lambda = 0.5 step then a mu = -0.53 step, uniform neighbour weights),
        which removes the voxel staircase while keeping the volume (a few percent) instead of shrinking the
        object like plain Laplacian smoothing; 0 = none. 5 to 20 is typical.
    decimate : float, optional
        Fraction (0 < decimate <= 1) of each mesh's triangles to keep, by quadric-error edge collapse
        (Garland & Heckbert; merged vertices go to an end point or the midpoint of the edge). Collapses that
        would break the closed 2-manifold or turn a triangle over are skipped, so decimated meshes stay
        watertight and outward-facing; a mesh may keep more triangles than asked when no allowed collapse
        is left. Applied after smoothing.

    Returns
    -------
    dict int -> (vertices, faces)
        vertices: float64 (V, 3) ``(x, y, z)`` in physical units, voxel ``(k, i, j)`` spanning
        ``[j, j + 1] x [i, i + 1] x [k, k + 1]`` times the spacing (so with spacing 1 they are pixel
        coordinates of the same convention as :func:`contours`); faces: int64 (F, 3) vertex indices.

    Notes
    -----
    The surface is the iso-0.5 surface of the object's binary mask with one voxel of background around it,
    so every mesh is closed: watertight (every edge is shared by exactly two triangles), with shared (merged)
    vertices and outward normals (positive :func:`mesh_volume`); smoothing and decimation keep this. Voxels
    touching only along an edge or a corner are not joined (6-connectivity, where :func:`contours` joins
    diagonal pixels). The enclosed volume is a little below the voxel count (the surface cuts the corners
    of the voxel staircase): within a few percent for objects of radius >= 5 voxels.
    """
    labels = as_label_image(labels, ndims=(3,))
    sizes = as_spacing(spacing, 3)
    if int(smooth_iterations) != smooth_iterations or smooth_iterations < 0:
        raise InputError(f"smooth_iterations must be a whole number >= 0, got {smooth_iterations!r}")
    if decimate is not None and not (np.isfinite(decimate) and 0 < decimate <= 1):
        raise InputError(f"decimate must be None or the fraction of triangles to keep (0 < decimate <= 1), "
                         f"got {decimate!r}")
    kernel_labels, ids = compact_labels(labels)
    n = int(kernel_labels.max()) if kernel_labels.size else 0
    count, _, low, high, _ = object_stats(kernel_labels, n, np.zeros((1, 1, 1), np.float32), False)
    present = np.flatnonzero(count[1:]) + 1
    if len(present) == 0:
        return {}
    boxes = np.concatenate([low, high + 1], axis=1)
    boxes[count == 0] = 0
    vertices, faces, vertex_start, face_start = _march_all(kernel_labels, boxes, _EDGE_CORNER, _EDGE_AXIS,
                                                           _TRIANGLES, _TRIANGLE_COUNTS)
    vertex_start, face_start = vertex_start[1:], face_start[1:]  # label 0 has no mesh
    vertices *= sizes[::-1]
    # faces hold per-object vertex indices; make them global for smoothing / decimation
    faces += np.repeat(vertex_start[:-1], np.diff(face_start))[:, None]
    if smooth_iterations:
        _taubin(vertices, faces, int(smooth_iterations), np.array([_TAUBIN_LAMBDA, _TAUBIN_MU]))
    result = {}
    for k in present - 1:
        v0, v1, f0, f1 = vertex_start[k], vertex_start[k + 1], face_start[k], face_start[k + 1]
        mesh = vertices[v0:v1], faces[f0:f1] - v0
        if decimate is not None and decimate < 1:
            mesh = _collapse_edges(mesh[0], mesh[1], int(np.ceil(decimate * (f1 - f0))))
        result[int(k + 1 if ids is None else ids[k + 1])] = mesh
    return result


def surfaces(labels, spacing=(1.0, 1.0, 1.0), simplify=True, smoothing=0.0) -> dict:
    """The surface meshes trackpose gives TrackMate (the bridge's ``meshes/`` for mesh spots), per label.

    What TrackMate 9's label-image detector does with its two options, trackpose's way: ``simplify`` (TrackMate's
    "simplify contours", the same setting as for 2D outlines) makes the surfaces measure like the object:
    :data:`SIMPLIFY_SMOOTHING_ROUNDS` rounds of Taubin smoothing remove the voxel staircase (the raw marching-cubes
    surface has up to 12 % more area than the object, so TrackMate 9's sphericity comes out 0.07-0.12 too low),
    then quadric decimation keeps :data:`SIMPLIFY_KEEP` of the triangles of meshes with at least
    :data:`SIMPLIFY_MIN_TRIANGLES`; off, the exact voxel surface (marching cubes, nothing else). ``smoothing``
    (TrackMate's smoothing scale, here in pixels) smooths further at about that scale
    (:func:`mesh_smoothing_iterations` more Taubin rounds), with or without ``simplify``.

    Parameters and result as :func:`meshes` (``labels`` 3D, ``spacing`` ``(dz, dy, dx)``; meshes stay closed,
    watertight and outward-facing).
    """
    if not np.isfinite(smoothing) or smoothing < 0:
        raise InputError(f"smoothing must be a length in pixels >= 0, got {smoothing!r}")
    rounds = (SIMPLIFY_SMOOTHING_ROUNDS if simplify else 0) + mesh_smoothing_iterations(smoothing)
    result = meshes(labels, spacing=spacing, smooth_iterations=rounds)
    if simplify:
        for label, (vertices, faces) in result.items():
            if len(faces) >= SIMPLIFY_MIN_TRIANGLES:
                result[label] = _collapse_edges(vertices, faces, int(np.ceil(SIMPLIFY_KEEP * len(faces))))
    return result


def mesh_volume(vertices, faces) -> float:
    """Signed volume enclosed by a closed triangle mesh (positive when the normals point outwards)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    a, b, c = (vertices[np.asarray(faces)[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->", a, np.cross(b, c)) / 6.0)



def mesh_smoothing_iterations(sigma_px: float) -> int:
    """Taubin iterations that smooth a marching-cubes mesh (edges ~1 px) at about ``sigma_px`` pixels.

    A Laplacian step with weight 1/2 spreads a vertex like a random walk of variance ~1/2 px^2, so n steps act
    like a Gaussian of variance n/2: n = 2 sigma^2 (0 = no smoothing).
    """
    return int(round(2.0 * sigma_px ** 2)) if sigma_px > 0 else 0
