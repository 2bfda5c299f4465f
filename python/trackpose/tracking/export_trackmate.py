"""TrackMate XML (the file "File > Load a TrackMate file" opens), written to the reader's rules.

Model with declared features, spots with ROI polygons (2D), tracks (connected components with >= 1 edge),
filtered tracks, and Settings with ImageData pointing at the movie, the detector's and the tracker's settings.

3D objects are spheres in the XML (what TrackMate 8 reads) and, optionally, meshes in TrackMate 9's side file
``<xml>.meshes``: a zip (deflated) holding ``<spot ID>.ply`` per mesh spot and ``mesh-info.txt`` (``frame,ID`` then
one ``frame,ID`` line per mesh). Each PLY is binary little-endian, ``element vertex`` with float properties
``x y z nx ny nz u v`` (absolute calibrated coordinates, unit vertex normals, texture 0) and ``element face`` with
``list uchar int vertex_index``, triangles counter-clockwise seen from outside: the layout TrackMate 9's
``TmXmlWriter`` writes. TrackMate 8 ignores the side file. TrackMate 9's reader matches ``<ID>.ply`` to the spot
with that ID, places the mesh so that the mean of its vertices sits at the spot's position, and keeps the XML's
features; so the XML gives a mesh spot the mean of its mesh's vertices as position (TrackMate 9's own definition
of a mesh spot's position), and TrackMate 9 shows each mesh exactly where it was made.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Iterable, Optional
from xml.sax.saxutils import quoteattr

import numpy as np
import plyfile

__all__ = ["write_trackmate_xml", "write_trackmate_meshes", "label_meshes"]

_PLY_VERTEX = np.dtype([(name, "<f4") for name in ("x", "y", "z", "nx", "ny", "nz", "u", "v")])
_PLY_FACE = np.dtype([("vertex_index", "<i4", (3,))])  # plyfile's view of a face (for the header)
_PLY_FACE_RECORD = np.dtype([("n", "u1"), ("vertex_index", "<i4", (3,))])  # a face as written: 13 packed bytes
_ZIP_LEVEL = 5  # TrackMate 9's deflate level

_SPOT_FEATURES = [("QUALITY", "Quality", "Quality", "QUALITY", False),
                  ("POSITION_X", "X", "X", "POSITION", False), ("POSITION_Y", "Y", "Y", "POSITION", False),
                  ("POSITION_Z", "Z", "Z", "POSITION", False), ("POSITION_T", "T", "T", "TIME", False),
                  ("FRAME", "Frame", "Frame", "NONE", True), ("RADIUS", "Radius", "R", "LENGTH", False),
                  ("VISIBILITY", "Visibility", "Visibility", "NONE", True)]
_EXTRA = {"AREA": ("Area", "Area", "AREA", False)}
_EDGE_FEATURES = [("SPOT_SOURCE_ID", "Source spot ID", "Source ID", "NONE", True),
                  ("SPOT_TARGET_ID", "Target spot ID", "Target ID", "NONE", True),
                  ("LINK_COST", "Edge cost", "Cost", "COST", False)]
_TRACK_FEATURES = [("TRACK_INDEX", "Track index", "Index", "NONE", True),
                   ("TRACK_ID", "Track ID", "ID", "NONE", True),
                   ("NUMBER_SPOTS", "Number of spots in track", "N spots", "NONE", True),
                   ("NUMBER_GAPS", "Number of gaps", "N gaps", "NONE", True),
                   ("NUMBER_SPLITS", "Number of split events", "N splits", "NONE", True),
                   ("NUMBER_MERGES", "Number of merge events", "N merges", "NONE", True)]


def _num(v) -> str:
    v = float(v)
    return "Infinity" if v == float("inf") else repr(v)


def _declare(features) -> str:
    return "".join(f'<Feature feature="{f}" name="{n}" shortname="{s}" dimension="{d}" isint="{str(i).lower()}"/>'
                   for f, n, s, d, i in features)


def _settings_xml(name: str, settings: dict) -> str:
    return f"<{name} " + " ".join(f"{k}={quoteattr(str(v))}" for k, v in settings.items()) + "/>"


def _lap_tracker_xml(s: dict) -> str:
    def pen(key):
        values = s.get(key) or {}
        return "<FeaturePenalties " + " ".join(f'{k}="{_num(v)}"' for k, v in values.items()) + "/>"
    b = lambda v: str(bool(v)).lower()  # noqa: E731
    return (f'<TrackerSettings TRACKER_NAME="SPARSE_LAP_TRACKER" CUTOFF_PERCENTILE="{_num(s["CUTOFF_PERCENTILE"])}" '
            f'ALTERNATIVE_LINKING_COST_FACTOR="{_num(s["ALTERNATIVE_LINKING_COST_FACTOR"])}" BLOCKING_VALUE="Infinity">'
            f'<Linking LINKING_MAX_DISTANCE="{_num(s["LINKING_MAX_DISTANCE"])}">{pen("LINKING_FEATURE_PENALTIES")}'
            f'</Linking><GapClosing ALLOW_GAP_CLOSING="{b(s["ALLOW_GAP_CLOSING"])}" GAP_CLOSING_MAX_DISTANCE='
            f'"{_num(s["GAP_CLOSING_MAX_DISTANCE"])}" MAX_FRAME_GAP="{int(s["MAX_FRAME_GAP"])}">'
            f'{pen("GAP_CLOSING_FEATURE_PENALTIES")}</GapClosing><TrackSplitting ALLOW_TRACK_SPLITTING='
            f'"{b(s["ALLOW_TRACK_SPLITTING"])}" SPLITTING_MAX_DISTANCE="{_num(s["SPLITTING_MAX_DISTANCE"])}">'
            f'{pen("SPLITTING_FEATURE_PENALTIES")}</TrackSplitting><TrackMerging ALLOW_TRACK_MERGING='
            f'"{b(s["ALLOW_TRACK_MERGING"])}" MERGING_MAX_DISTANCE="{_num(s["MERGING_MAX_DISTANCE"])}">'
            f'{pen("MERGING_FEATURE_PENALTIES")}</TrackMerging></TrackerSettings>')


def label_meshes(label_frames: Iterable, spacing, simplify: bool = True, smoothing: float = 0.0):
    """Yield ``(frame, {label: (vertices, faces)})`` for 3D label frames: the surfaces TrackMate's detector gets
    (:func:`trackpose.meshes.surfaces`) in TrackMate's coordinates (the centre of voxel (k, i, j) at
    (j dx, i dy, k dz), as spot positions).

    ``spacing``: (dz, dy, dx); ``simplify`` and ``smoothing`` (pixels) as in :func:`trackpose.meshes.surfaces`.
    """
    from .. import meshes
    half = 0.5 * np.asarray(spacing, np.float64)[::-1]
    for t, labels in enumerate(label_frames):
        surfaces = meshes.surfaces(labels, spacing=spacing, simplify=simplify, smoothing=smoothing)
        yield t, {label: (vertices - half, faces) for label, (vertices, faces) in surfaces.items()}


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit normal per vertex: the normalised sum of its triangles' unit normals (outwards for our winding)."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    n = np.cross(b - a, c - a)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
    out = np.stack([np.bincount(faces.ravel(), np.repeat(n[:, d], 3), len(vertices)) for d in range(3)], axis=1)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-30)


def _ply_bytes(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    """One mesh as TrackMate 9's binary PLY. plyfile writes the header; the body is the packed records, which is
    what plyfile's writer produces too, but it writes list properties row by row (most of the time of a movie's
    side file)."""
    vertex = np.zeros(len(vertices), _PLY_VERTEX)
    vertex["x"], vertex["y"], vertex["z"] = vertices.T
    vertex["nx"], vertex["ny"], vertex["nz"] = _vertex_normals(vertices, faces).T
    face = np.empty(len(faces), _PLY_FACE_RECORD)
    face["n"], face["vertex_index"] = 3, faces
    header = plyfile.PlyData([plyfile.PlyElement.describe(vertex, "vertex"),
                              plyfile.PlyElement.describe(np.empty(len(faces), _PLY_FACE), "face",
                                                          len_types={"vertex_index": "u1"},
                                                          val_types={"vertex_index": "i4"})],
                             text=False, byte_order="<", comments=["written by trackpose"]).header
    return (header + "\n").encode("ascii") + vertex.tobytes() + face.tobytes()


def write_trackmate_meshes(path, spots, frame_meshes: Iterable) -> np.ndarray:
    """Write TrackMate 9's mesh side file ``path`` (``<xml>.meshes``; layout in the module's docstring).

    ``frame_meshes``: ``(frame, {label: (vertices (V, 3) x y z, faces (F, 3))})`` per frame, in calibrated
    coordinates (:func:`label_meshes`); the mesh of (frame, label) belongs to the spot with that frame and
    ``spots.label``, whose row is its ID. Written to ``path.part`` and renamed when whole. Returns (n, 3): the
    mean of each spot's (float32) mesh vertices, NaN for a spot without a mesh.
    """
    path = Path(path)
    centre = np.full((len(spots), 3), np.nan)
    info = ["frame,ID"]
    tmp = path.with_name(path.name + ".part")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=_ZIP_LEVEL) as zf:
            for t, surfaces in frame_meshes:
                rows = np.flatnonzero(spots.frame == t)
                row_of = dict(zip(spots.label[rows].tolist(), rows.tolist()))
                for label in sorted(surfaces):
                    if label not in row_of:
                        raise ValueError(f"frame {t}: a mesh for label {label}, which is no spot")
                    vertices, faces = surfaces[label]
                    vertices = np.asarray(vertices, np.float32)  # what the PLY holds, and TrackMate reads
                    faces = np.asarray(faces, np.int32)
                    k = row_of[label]
                    zf.writestr(f"{k}.ply", _ply_bytes(vertices, faces))
                    centre[k] = vertices.astype(np.float64).mean(axis=0)
                    info.append(f"{int(t)},{k}")
            zf.writestr("mesh-info.txt", "\n".join(info) + "\n")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return centre


def write_trackmate_xml(path, spots, edges, track_id, *, image: dict, tracker: str, tracker_settings: dict,
                        detector: str, detector_settings: dict, spatial_units: str = "pixel",
                        time_units: str = "frame", time_interval: float = 1.0, version: str = "8.1.6",
                        meshes: Optional[Iterable] = None) -> Path:
    """Write a TrackMate XML file.

    ``image``: filename, folder, width, height, nslices, nframes, pixelwidth, pixelheight, voxeldepth,
    timeinterval (TrackMate's ImageData). ``tracker``: "SPARSE_LAP_TRACKER" (settings in TrackMate keys) or
    "OVERLAP_TRACKER". Spot IDs are the spot rows; TRACK_ID = ``track_id`` of the spots.

    ``meshes`` (3D; :func:`write_trackmate_meshes`'s ``frame_meshes``): also write TrackMate 9's side file
    ``<path>.meshes``; a spot with a mesh then gets the mean of its mesh's vertices as position in the XML.
    Without ``meshes`` an old side file of the same name is removed (it would not match the new XML).
    """
    from .tables import track_statistics
    path = Path(path)
    side = path.with_name(path.name + ".meshes")
    if meshes is not None:
        centre = write_trackmate_meshes(side, spots, meshes)
        has_mesh = ~np.isnan(centre[:, 0])
        position = np.where(has_mesh[:, None], centre, spots.position)
    else:
        side.unlink(missing_ok=True)
        position = spots.position
    extra = [f for f in sorted(spots.features) if f in _EXTRA]
    spot_feats = _SPOT_FEATURES + [(f, *_EXTRA[f]) for f in extra]
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<TrackMate version="{version}">',
           "<Log>written by trackpose</Log>",
           f"<Model spatialunits={quoteattr(spatial_units)} timeunits={quoteattr(time_units)}>",
           "<FeatureDeclarations><SpotFeatures>" + _declare(spot_feats) + "</SpotFeatures><EdgeFeatures>"
           + _declare(_EDGE_FEATURES) + "</EdgeFeatures><TrackFeatures>" + _declare(_TRACK_FEATURES)
           + "</TrackFeatures></FeatureDeclarations>",
           f'<AllSpots nspots="{len(spots)}">']
    for frame in np.unique(spots.frame):
        out.append(f'<SpotsInFrame frame="{int(frame)}">')
        for k in np.flatnonzero(spots.frame == frame):
            x, y, z = position[k]
            attrs = (f'ID="{k}" name="ID{k}" QUALITY="{_num(spots.quality[k])}" POSITION_X="{_num(x)}" '
                     f'POSITION_Y="{_num(y)}" POSITION_Z="{_num(z)}" POSITION_T="{_num(frame * time_interval)}" '
                     f'FRAME="{int(frame)}" RADIUS="{_num(spots.radius[k])}" VISIBILITY="1"'
                     + "".join(f' {f}="{_num(spots.features[f][k])}"' for f in extra))
            roi = None if spots.polygons is None else spots.polygons[k]
            if roi is not None and len(roi) >= 3:
                out.append(f'<Spot {attrs} ROI_N_POINTS="{len(roi)}">'
                           + " ".join(_num(v) for v in np.asarray(roi).ravel()) + "</Spot>")
            else:
                out.append(f"<Spot {attrs}/>")
        out.append("</SpotsInFrame>")
    out.append("</AllSpots><AllTracks>")
    stats = {r["TRACK_ID"]: r for r in track_statistics(spots, edges, track_id)}
    linked = sorted({int(track_id[s]) for s in edges.source.tolist()})
    edge_track = track_id[edges.source] if len(edges) else np.zeros(0, np.int64)
    for index, tid in enumerate(linked):
        r = stats[tid]
        out.append(f'<Track name="Track_{tid}" TRACK_INDEX="{index}" TRACK_ID="{tid}" '
                   f'NUMBER_SPOTS="{r["NUMBER_SPOTS"]}" NUMBER_GAPS="{r["NUMBER_GAPS"]}" '
                   f'NUMBER_SPLITS="{r["NUMBER_SPLITS"]}" NUMBER_MERGES="{r["NUMBER_MERGES"]}">')
        for e in np.flatnonzero(edge_track == tid):
            out.append(f'<Edge SPOT_SOURCE_ID="{edges.source[e]}" SPOT_TARGET_ID="{edges.target[e]}" '
                       f'LINK_COST="{_num(edges.cost[e])}"/>')
        out.append("</Track>")
    out.append("</AllTracks><FilteredTracks>" + "".join(f'<TrackID TRACK_ID="{t}"/>' for t in linked)
               + "</FilteredTracks></Model>")
    im = image
    out.append("<Settings>" + _settings_xml("ImageData", im)
               + f'<BasicSettings xstart="0" xend="{im["width"] - 1}" ystart="0" yend="{im["height"] - 1}" '
                 f'zstart="0" zend="{im["nslices"] - 1}" tstart="0" tend="{im["nframes"] - 1}"/>'
               + _settings_xml("DetectorSettings", {"DETECTOR_NAME": detector, **detector_settings})
               + '<InitialSpotFilter feature="QUALITY" value="0.0" isabove="true"/><SpotFilterCollection/>'
               + (_lap_tracker_xml(tracker_settings) if tracker == "SPARSE_LAP_TRACKER"
                  else _settings_xml("TrackerSettings", {"TRACKER_NAME": tracker, **tracker_settings}))
               + "<TrackFilterCollection/><AnalyzerCollection><SpotAnalyzers/><EdgeAnalyzers/><TrackAnalyzers/>"
                 "</AnalyzerCollection></Settings>")
    out.append('<GUIState state="ConfigureViews"/><DisplaySettings/></TrackMate>\n')
    tmp = path.with_name(path.name + ".part")
    tmp.write_text("\n".join(out), encoding="utf-8")
    tmp.replace(path)
    return path
