"""Our TrackMate XML in the real TrackMate 8.1.6 and 9 TmXmlReaders, pytrackmate and geff; the overlap tracker
against TrackMate's."""
import warnings

import numpy as np
import pytest

from trackpose import synth
from trackpose.tracking import make_spots, overlap_track, save_tracking, track
from trackpose.masks import renumber  # ids 1..n per frame, in id order

import trackmate_oracle


@pytest.fixture(scope="module")
def oracle():
    why = trackmate_oracle.available()
    if why:
        pytest.skip(why)
    return trackmate_oracle


@pytest.mark.slow
def test_xml_loads_in_trackmate_identically(oracle, tmp_path):
    m = synth.movie(n_frames=8, shape=(96, 96), seed=5, division_interval=5)
    labels = np.stack([renumber(f) for f in m.labels])
    result = track(labels=labels, spacing=(0.5, 0.5), tracker="lap",
                   lap=dict(linking_max_distance=4.0, allow_track_splitting=True, splitting_max_distance=5.0,
                            linking_feature_penalties={"QUALITY": 0.3}))
    out = save_tracking(result, tmp_path / "o", "movie", unit="micron")
    read = oracle.run({"action": "read_xml", "path": str(out / "movie.xml")})
    assert read["ok"], read["error"]
    assert read["spatial_units"] == "micron"
    sp = result.spots
    spots = {int(k): v for k, v in read["spots"].items()}
    assert sorted(spots) == list(range(len(sp)))
    for k in range(len(sp)):
        s = spots[k]
        assert (s["POSITION_X"], s["POSITION_Y"], s["FRAME"]) == (sp.position[k, 0], sp.position[k, 1],
                                                                   sp.frame[k])
        assert s["RADIUS"] == sp.radius[k] and s["QUALITY"] == sp.quality[k]
        assert np.array_equal(np.array(s["roi"]), np.asarray(sp.polygons[k]).ravel())
    ours = sorted([int(a), int(b), float(c)] for a, b, c in zip(result.edges.source, result.edges.target,
                                                                 result.edges.cost))
    assert [e[:2] for e in read["edges"]] == [e[:2] for e in ours]
    assert np.allclose([e[2] for e in read["edges"]], [e[2] for e in ours], rtol=0, atol=0)
    linked = {int(t) for t in result.track_id[result.edges.source]}
    tracks = {int(k): v for k, v in read["tracks"].items()}
    assert set(tracks) == linked and read["filtered"] == sorted(linked)
    for tid, members in tracks.items():
        assert members == np.flatnonzero(result.track_id == tid).tolist()
    assert read["tracker_factory"] == "SPARSE_LAP_TRACKER"
    t = read["tracker"]
    assert t["LINKING_MAX_DISTANCE"] == "4.0" and t["ALLOW_TRACK_SPLITTING"].lower() == "true"
    assert t["MAX_FRAME_GAP"] == "2" and "QUALITY=0.3" in t["LINKING_FEATURE_PENALTIES"]
    assert read["detector"]["TARGET_CHANNEL"] == "1"


def _blobs(seed, n_frames=6, n=15):
    """Random polygons (squares and octagons) drifting, with and without ROIs, no IoU ties."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform(5, 60, (n, 2))
    size = rng.uniform(2, 5, n)
    frames, pos, rois, radius = [], [], [], []
    for t in range(n_frames):
        centre = centre + rng.normal(0, 1.2, centre.shape)
        for k in range(n):
            frames.append(t)
            pos.append(centre[k])
            radius.append(size[k] * rng.uniform(0.9, 1.1))
            if k % 3 == 0:
                rois.append(None)
            else:
                a = np.linspace(0, 2 * np.pi, 4 + 4 * (k % 2), endpoint=False) + rng.uniform(0, 1)
                rois.append(np.column_stack([np.cos(a), np.sin(a)]) * radius[-1] * rng.uniform(0.8, 1.2, (len(a), 1)))
    return make_spots(frames, np.array(pos), radius=radius, polygons=rois)


@pytest.mark.slow
@pytest.mark.parametrize("method, scale, min_iou", [("PRECISE", 1.0, 0.3), ("FAST", 1.0, 0.3),
                                                    ("PRECISE", 1.5, 0.1), ("FAST", 0.8, 0.2)])
def test_overlap_tracker_equals_trackmates(oracle, method, scale, min_iou):
    spots = _blobs(7)
    ours = overlap_track(spots, method, scale, min_iou)
    request = {"action": "track", "tracker": "OVERLAP_TRACKER",
               "settings": {"IOU_CALCULATION": method, "SCALE_FACTOR": scale, "MIN_IOU": min_iou},
               "spots": {"frame": spots.frame.tolist(), "x": spots.position[:, 0].tolist(),
                         "y": spots.position[:, 1].tolist(), "z": [0.0] * len(spots),
                         "radius": spots.radius.tolist(), "quality": [1.0] * len(spots),
                         "rois": [None if r is None else np.asarray(r).ravel().tolist() for r in spots.polygons]}}
    theirs = oracle.run(request)["edges"]
    assert len(theirs) > 10
    assert [e[:2] for e in theirs] == sorted([int(a), int(b)] for a, b in zip(ours.source, ours.target))
    mine = {(int(a), int(b)): c for a, b, c in zip(ours.source, ours.target, ours.cost)}
    for a, b, c in theirs:
        assert mine[(a, b)] == pytest.approx(c, abs=1e-9)


# ---- 3D: spheres for TrackMate 8, meshes for TrackMate 9 (<xml>.meshes) ----------------------------------------

@pytest.fixture(scope="module")
def oracle9():
    """TrackMate 9 (../shared/trackmate9): skipped only where that build is absent; a missing piece fails."""
    if not trackmate_oracle.pom("9").exists():
        pytest.skip(f"no TrackMate 9 build at {trackmate_oracle.TRACKMATE9}")
    why = trackmate_oracle.available("9")
    missing = trackmate_oracle.missing("9")
    if missing:
        pytest.fail(f"TrackMate 9's dependencies are missing from {trackmate_oracle.M2}: {', '.join(missing)}; "
                    + trackmate_oracle.how_to_resolve("9"))
    if why:
        pytest.fail(f"the TrackMate 9 oracle cannot run: {why} (pip install 'trackpose[test]')")
    return trackmate_oracle


def _tracked_3d(folder, meshes):
    m = synth.movie(n_frames=4, shape=(12, 48, 48), seed=4, anisotropy=2.0, n_cells=5)
    labels = np.stack([renumber(f) for f in m.labels])
    result = track(labels=labels, spacing=(1.0, 0.5, 0.5), tracker="lap", lap=dict(linking_max_distance=5.0))
    out = save_tracking(result, folder, "movie", unit="micron", meshes=meshes)
    return result, out / "movie.xml"


@pytest.mark.slow
def test_3d_xml_opens_with_meshes_in_trackmate9_and_spheres_in_trackmate8(oracle9, oracle, tmp_path):
    from trackpose import meshes as engine
    options = {"simplify": False}  # the exact voxel surface; the default (True) is what the detector gives
    raw, raw_xml = _tracked_3d(tmp_path / "raw", options)
    smooth, smooth_xml = _tracked_3d(tmp_path / "smooth", True)
    assert raw_xml.with_name("movie.xml.meshes").exists()
    m = synth.movie(n_frames=3, shape=(48, 48), seed=2, n_cells=4)  # and a 2D file: outlines, no side file
    flat = track(labels=np.stack([renumber(f) for f in m.labels]), spacing=(0.5, 0.5), tracker="lap",
                 lap=dict(linking_max_distance=5.0))
    flat_xml = save_tracking(flat, tmp_path / "2d", "movie", unit="micron") / "movie.xml"
    reads9 = oracle9.run({"action": "batch", "requests": [{"action": "read_xml", "path": str(p)}
                                                          for p in (raw_xml, smooth_xml, flat_xml)]},
                         version="9")["results"]
    assert reads9[2]["ok"], reads9[2]["error"]  # TrackMate 9 reads the 2D file with SpotRoi spots
    assert len(reads9[2]["spots"]) == len(flat.spots) and len(reads9[2]["edges"]) == len(flat.edges) > 0
    for k, s in reads9[2]["spots"].items():
        assert s["class"] == "SpotRoi"
        assert np.array_equal(np.array(s["roi"]), np.asarray(flat.spots.polygons[int(k)]).ravel())
        assert (s["POSITION_X"], s["POSITION_Y"]) == tuple(flat.spots.position[int(k), :2])
    read8 = oracle.run({"action": "read_xml", "path": str(raw_xml)})
    for result, read, opts in ((raw, reads9[0], options), (smooth, reads9[1], {})):
        assert read["ok"], read["error"]
        sp, spacing = result.spots, np.array(result.spacing)
        spots = {int(k): v for k, v in read["spots"].items()}
        assert sorted(spots) == list(range(len(sp))) and len(sp) >= 16
        for t, lab in enumerate(result.labels):
            surfaces = engine.surfaces(lab, spacing=spacing, **opts)  # the engine's meshes, voxel corners at 0
            for k in np.flatnonzero(sp.frame == t):
                s = spots[int(k)]
                assert s["class"] == "SpotMesh"
                assert (s["FRAME"], s["RADIUS"], s["QUALITY"]) == (t, sp.radius[k], sp.quality[k])
                ours_v, ours_f = surfaces[int(sp.label[k])]
                ours_v = ours_v - spacing[::-1] / 2  # TrackMate: voxel centres at (j dx, i dy, k dz)
                centre = np.array([s["POSITION_X"], s["POSITION_Y"], s["POSITION_Z"]])
                vertices = np.array(s["mesh"]["vertices"]).reshape(-1, 3) + centre
                assert np.allclose(vertices, ours_v, rtol=0, atol=1e-5)
                assert np.array_equal(np.array(s["mesh"]["triangles"]).reshape(-1, 3), ours_f)
                assert np.allclose(centre, ours_v.astype(np.float32).astype(np.float64).mean(0), rtol=0, atol=1e-9)
                assert np.all(np.abs(centre - sp.position[k]) < spacing[::-1])  # near the voxel centroid
                normals = np.array(s["mesh"]["normals"]).reshape(-1, 3)  # TrackMate's, from our winding
                assert np.mean(np.sum(normals * (vertices - centre), axis=1) > 0) > 0.95  # point outwards
                if opts:  # marching cubes at iso 0.5: the mesh spans the voxels' extent exactly
                    zz, yy, xx = np.nonzero(lab == sp.label[k])
                    low = np.array([xx.min(), yy.min(), zz.min()]) * spacing[::-1] - spacing[::-1] / 2
                    high = np.array([xx.max(), yy.max(), zz.max()]) * spacing[::-1] + spacing[::-1] / 2
                    assert np.allclose(vertices.min(0), low, atol=1e-5)
                    assert np.allclose(vertices.max(0), high, atol=1e-5)
        ours = sorted([int(a), int(b)] for a, b in zip(result.edges.source, result.edges.target))
        assert [e[:2] for e in read["edges"]] == ours and len(ours) >= 12
        tracks = {int(k): v for k, v in read["tracks"].items()}
        assert tracks == {int(t): np.flatnonzero(result.track_id == t).tolist()
                          for t in set(result.track_id[result.edges.source].tolist())}
        assert read["tracker_factory"] == "SPARSE_LAP_TRACKER"
    # TrackMate 8.1.6: the same file, spots as spheres at the same places, same tracks
    assert read8["ok"], read8["error"]
    for k, s in read8["spots"].items():
        s9 = reads9[0]["spots"][k]
        assert "roi" not in s and "mesh" not in s
        assert [s[f] for f in ("POSITION_X", "POSITION_Y", "POSITION_Z", "RADIUS", "FRAME")] == \
               [s9[f] for f in ("POSITION_X", "POSITION_Y", "POSITION_Z", "RADIUS", "FRAME")]
    assert read8["edges"] == reads9[0]["edges"] and read8["tracks"] == reads9[0]["tracks"]


def test_mesh_side_file_from_the_command_line(tmp_path, capsys):
    """3D: NAME.xml.meshes in calibrated units, its options and their errors; none in 2D or with --meshes false."""
    import zipfile
    from trackpose import io
    from trackpose.cli.main import main
    m = synth.movie(n_frames=3, shape=(10, 40, 40), seed=4, anisotropy=2.0, n_cells=4)
    src = tmp_path / "cells.tif"
    io.write_labels(src, np.stack([renumber(f) for f in m.labels]),
                    io.ImageMeta(axes="TZYX", pixel_size_x=0.5, pixel_size_y=0.5, z_spacing=1.0, unit="micron"))
    args = ["track", str(src), "--labels", "--tracker", "lap", "--linking-max-distance", "5"]
    assert main(args + ["--out", str(tmp_path / "full"), "--simplify-meshes", "false"]) == 0
    assert main(args + ["--out", str(tmp_path / "half"), "--mesh-smoothing", "1"]) == 0
    n_faces = {}
    for name in ("full", "half"):
        with zipfile.ZipFile(tmp_path / name / "cells.xml.meshes") as zf:
            spots = sorted(int(n[:-4]) for n in zf.namelist() if n.endswith(".ply"))
            info = zf.read("mesh-info.txt").decode().split()
            n_spots = (tmp_path / name / "cells.xml").read_text().count("<Spot ")
            assert spots == list(range(n_spots)) and info[0] == "frame,ID" and len(info) == n_spots + 1
            vertices, faces = [], []
            for n in zf.namelist()[:-1]:
                (tmp_path / "m.ply").write_bytes(zf.read(n))
                v, f = _ply(tmp_path / "m.ply")
                vertices.append(v)
                faces.append(len(f))
        v = np.concatenate(vertices)  # calibrated: x, y in 0..40 * 0.5 um, z in 0..10 * 1 um
        assert v[:, :2].max() < 20 and v[:, 2].max() < 10 and v[:, 2].max() > 5 and v.min() > -1
        n_faces[name] = sum(faces)
    assert 0.4 < n_faces["half"] / n_faces["full"] < 0.6
    assert main(args + ["--out", str(tmp_path / "off"), "--meshes", "false"]) == 0
    assert sorted(p.name for p in (tmp_path / "off").glob("cells.xml*")) == ["cells.xml"]
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "bad"), "--mesh-smoothing", "-1"]) != 0
    assert "--mesh-smoothing" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    flat = tmp_path / "flat.tif"
    io.write_labels(flat, np.stack([renumber(f) for f in synth.movie(n_frames=3, shape=(40, 40), seed=2,
                                                                         n_cells=4).labels]), io.ImageMeta(axes="TYX"))
    assert main(["track", str(flat), "--labels", "--out", str(tmp_path / "2d")]) == 0
    assert sorted(p.name for p in (tmp_path / "2d").glob("flat.xml*")) == ["flat.xml"]


def test_mesh_ply_is_what_plyfile_writes():
    """The side file's PLY (header by plyfile, records packed by numpy) byte for byte equals plyfile's own writer,
    with TrackMate 9's properties; its normals are unit and point outwards."""
    import io
    import plyfile
    from trackpose import meshes as engine
    from trackpose.tracking.export_trackmate import _ply_bytes
    lab = np.zeros((8, 9, 10), np.int32)
    lab[2:6, 3:7, 2:8] = 1
    v, f = engine.meshes(lab, spacing=(2.0, 0.5, 0.5), smooth_iterations=2)[1]
    v, f = v.astype(np.float32), f.astype(np.int32)
    data = plyfile.PlyData.read(io.BytesIO(_ply_bytes(v, f)))
    vertex = data["vertex"].data
    assert np.array_equal(np.stack([vertex["x"], vertex["y"], vertex["z"]], 1), v)
    assert np.array_equal(np.stack(data["face"]["vertex_index"]), f)
    normals = np.stack([vertex["nx"], vertex["ny"], vertex["nz"]], 1)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-6)
    assert np.all(np.sum(normals * (v - v.mean(0)), axis=1) > 0)  # a convex box: every normal points out
    assert not np.any(vertex["u"]) and not np.any(vertex["v"])
    out = io.BytesIO()
    face = np.empty(len(f), [("vertex_index", "<i4", (3,))])
    face["vertex_index"] = f
    plyfile.PlyData([plyfile.PlyElement.describe(vertex, "vertex"),
                     plyfile.PlyElement.describe(face, "face", len_types={"vertex_index": "u1"},
                                                 val_types={"vertex_index": "i4"})],
                    text=False, byte_order="<", comments=["written by trackpose"]).write(out)
    assert _ply_bytes(v, f) == out.getvalue()


def _ply(path):
    """Vertices (V, 3) and faces (F, 3) of a PLY of TrackMate 9's layout, read by plyfile."""
    import plyfile
    data = plyfile.PlyData.read(str(path))
    assert [p.name for p in data["vertex"].properties] == ["x", "y", "z", "nx", "ny", "nz", "u", "v"]
    v = data["vertex"]
    return np.stack([v["x"], v["y"], v["z"]], axis=1), np.stack(data["face"]["vertex_index"])


# ---- readers this project did not write: pytrackmate and geff's TrackMate converter ------------------------------

def _movies_for_readers(tmp_path):
    """A 2D movie with divisions and a 3D one (with its mesh side file), tracked and saved as trackpose track does;
    yields (result, xml path, expected XML positions)."""
    import zipfile
    m = synth.movie(n_frames=5, shape=(64, 64), seed=5, division_interval=3)
    r2 = track(labels=np.stack([renumber(f) for f in m.labels]), spacing=(0.5, 0.5), tracker="lap",
               lap=dict(linking_max_distance=4.0, allow_track_splitting=True, splitting_max_distance=5.0))
    xml2 = save_tracking(r2, tmp_path / "2d", "movie", unit="micron") / "movie.xml"
    yield r2, xml2, r2.spots.position
    r3, xml3 = _tracked_3d(tmp_path / "3d", True)
    with zipfile.ZipFile(xml3.with_name("movie.xml.meshes")) as zf:  # a mesh spot sits at its vertices' mean
        position = np.zeros((len(r3.spots), 3))
        for k in range(len(r3.spots)):
            (tmp_path / "m.ply").write_bytes(zf.read(f"{k}.ply"))
            position[k] = _ply(tmp_path / "m.ply")[0].astype(np.float64).mean(0)
    yield r3, xml3, position


def _linked_tracks(result) -> dict:
    """TRACK_ID -> sorted spot IDs, for the tracks with at least one link (those TrackMate's XML lists)."""
    linked = set(result.track_id[result.edges.source].tolist())
    return {t: np.flatnonzero(result.track_id == t).tolist() for t in sorted(linked)}


def test_xml_loads_in_pytrackmate(tmp_path):
    import pytrackmate  # the test extra
    for result, xml, position in _movies_for_readers(tmp_path):
        df = pytrackmate.trackmate_peak_import(str(xml), get_tracks=True)
        assert len(df) == len(result.spots)
        ids = df["spot_id"].to_numpy().astype(int)
        assert sorted(ids) == list(range(len(result.spots)))
        assert np.allclose(df[["x", "y", "z"]].to_numpy(), position[ids], rtol=0, atol=1e-12)
        assert np.array_equal(df["t_stamp"].to_numpy(), result.spots.frame[ids])
        groups = {}  # pytrackmate's "label": one per filtered track, then one per spot on no track
        for label, spot in zip(df["label"].to_numpy().astype(int), ids):
            groups.setdefault(label, []).append(int(spot))
        tracks = _linked_tracks(result)
        assert sorted(sorted(g) for g in groups.values() if len(g) > 1) == sorted(tracks.values())
        assert sum(len(g) == 1 for g in groups.values()) == len(result.spots) - sum(map(len, tracks.values()))


def test_xml_converts_with_geff(tmp_path):
    import geff  # the test extra
    from geff.convert import from_trackmate_xml_to_geff
    for n, (result, xml, position) in enumerate(_movies_for_readers(tmp_path)):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Spatial unit micron")  # ImageJ's name for micrometre
            warnings.filterwarnings("ignore", message="No image path")  # the test's result has no source movie
            from_trackmate_xml_to_geff(xml, tmp_path / f"{n}.geff")
            graph, meta = geff.read(tmp_path / f"{n}.geff")
        assert sorted(graph.nodes) == list(range(len(result.spots)))
        for k, a in graph.nodes(data=True):
            assert np.allclose([a["POSITION_X"], a["POSITION_Y"], a["POSITION_Z"]], position[k], rtol=0, atol=1e-12)
            assert a["FRAME"] == result.spots.frame[k]
            if result.spots.polygons is not None:
                assert np.allclose(a["ROI_coords"], np.asarray(result.spots.polygons[k]), rtol=0, atol=1e-12)
        assert sorted(graph.edges) == sorted(zip(result.edges.source.tolist(), result.edges.target.tolist()))
        assert meta.track_node_props == {"lineage": "TRACK_ID"}
        tracks = {}
        for k, a in graph.nodes(data=True):
            tracks.setdefault(a.get("TRACK_ID"), []).append(k)
        assert {t: sorted(v) for t, v in tracks.items() if t is not None and len(v) > 1} == \
            {t: sorted(v) for t, v in _linked_tracks(result).items()}
