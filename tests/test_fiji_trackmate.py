"""trackpose.fiji_trackmate: TrackMate in a local Fiji from Python.

Everything that needs no Fiji always runs: the Fiji-folder checks and their messages (on fake Fiji folders), the
settings conversion (plain defaults, and the real Java defaults of DetectorKeys when the bridge jars are built), and
the conversion of TrackMate's model into numpy tables (on stand-in spot and track-model objects). The end-to-end run
needs a real Fiji.app with TrackMate 8 and the trackpose jar: it runs only when TRACKPOSE_FIJI points at one, in a
child process (pyimagej must start the JVM itself), on a drawn movie whose discs are the ground truth.
"""
import json
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from trackpose import fiji_trackmate
from trackpose.java_client import FijiError


def fake_fiji(root: Path, trackmate="jars/TrackMate-8.1.6.jar", bridge="jars/trackpose-bridge-0.1.0-SNAPSHOT.jar",
              jars=True) -> Path:
    """A folder laid out like Fiji.app, with empty files standing for the jars."""
    root.mkdir(parents=True, exist_ok=True)
    if jars:
        (root / "jars").mkdir()
        (root / "plugins").mkdir()
        (root / "jars" / "ij-1.54p.jar").write_bytes(b"")
        (root / "jars" / "TrackMate-Cellpose-1.0.0.jar").write_bytes(b"")  # not TrackMate itself
    for rel in (trackmate, bridge):
        if rel:
            (root / rel).write_bytes(b"")
    return root


# ------------------------------------------------------------------------------------------------ Fiji folder


def test_a_complete_fiji_is_accepted(tmp_path):
    root = fake_fiji(tmp_path / "Fiji.app")
    found = fiji_trackmate.check_fiji(root)
    assert found.root == root.resolve()
    assert found.trackmate_version == (8, 1, 6)
    assert found.bridge_jar.name == "trackpose-bridge-0.1.0-SNAPSHOT.jar" and found.bridge_in_fiji


def test_trackmate_and_the_plugin_may_sit_in_plugins(tmp_path):
    root = fake_fiji(tmp_path / "Fiji.app", trackmate="plugins/TrackMate-9.0.0-SNAPSHOT.jar",
                     bridge="plugins/trackpose-bridge-0.2.0.jar")
    found = fiji_trackmate.check_fiji(root)
    assert found.trackmate_version == (9, 0, 0)
    assert found.bridge_jar.parent.name == "plugins"


@pytest.mark.parametrize("given", [None, "", "  "])
def test_no_folder_given(given):
    with pytest.raises(FijiError, match="no Fiji folder given"):
        fiji_trackmate.check_fiji(given)


def test_missing_folder(tmp_path):
    with pytest.raises(FijiError, match=r"Fiji folder .*nowhere does not exist.*Fiji\.app folder"):
        fiji_trackmate.check_fiji(tmp_path / "nowhere")


def test_a_file_is_not_a_fiji(tmp_path):
    launcher = tmp_path / "ImageJ-linux64"
    launcher.write_bytes(b"")
    with pytest.raises(FijiError, match="is a file, not a folder"):
        fiji_trackmate.check_fiji(launcher)


def test_no_jars_folder(tmp_path):
    with pytest.raises(FijiError, match=r"not a Fiji installation: it has no jars/ folder\. Give"):
        fiji_trackmate.check_fiji(fake_fiji(tmp_path / "empty", trackmate=None, bridge=None, jars=False))


def test_the_parent_of_fiji_app_gets_a_hint(tmp_path):
    fake_fiji(tmp_path / "Fiji.app")
    with pytest.raises(FijiError, match=r"did you mean .*Fiji\.app\?"):
        fiji_trackmate.check_fiji(tmp_path)


def test_no_trackmate_jar(tmp_path):
    with pytest.raises(FijiError, match=r"TrackMate is not installed .*Help > Update"):
        fiji_trackmate.check_fiji(fake_fiji(tmp_path / "Fiji.app", trackmate=None))


def test_trackmate_7_is_too_old(tmp_path):
    with pytest.raises(FijiError, match=r"TrackMate-7\.14\.0\.jar .*needs TrackMate 8 or newer"):
        fiji_trackmate.check_fiji(fake_fiji(tmp_path / "Fiji.app", trackmate="jars/TrackMate-7.14.0.jar"))


def test_no_trackpose_jar_says_what_to_copy_where(tmp_path):
    root = fake_fiji(tmp_path / "Fiji.app", bridge=None)
    with pytest.raises(FijiError) as err:
        fiji_trackmate.check_fiji(root)
    msg = str(err.value)
    assert "trackpose plugin is not installed" in msg
    assert "mvn -B -Pfiji package" in msg
    assert f"copy target/trackpose-bridge-<version>.jar into {root.resolve() / 'jars'}/" in msg
    assert "bridge_jar=" in msg


def test_two_trackpose_jars_clash(tmp_path):
    root = fake_fiji(tmp_path / "Fiji.app")
    (root / "plugins" / "trackpose-bridge-0.0.9.jar").write_bytes(b"")
    with pytest.raises(FijiError, match=r"2 trackpose jars are installed .*keep one"):
        fiji_trackmate.check_fiji(root)


def test_a_bridge_jar_outside_fiji(tmp_path):
    root = fake_fiji(tmp_path / "Fiji.app", bridge=None)
    jar = tmp_path / "trackpose-bridge-0.1.0.jar"
    with pytest.raises(FijiError, match=r"bridge_jar .* does not exist"):
        fiji_trackmate.check_fiji(root, bridge_jar=jar)
    jar.write_bytes(b"")
    found = fiji_trackmate.check_fiji(root, bridge_jar=jar)
    assert found.bridge_jar == jar.resolve() and not found.bridge_in_fiji
    (root / "jars" / "trackpose-bridge-0.1.0.jar").write_bytes(b"")
    with pytest.raises(FijiError, match="would clash"):
        fiji_trackmate.check_fiji(root, bridge_jar=jar)


def test_an_unknown_tracker_is_refused_before_anything_starts(tmp_path):
    with pytest.raises(FijiError, match="unknown tracker 'lap': choose one of overlap, sparse_lap"):
        fiji_trackmate.run_trackmate(tmp_path / "nowhere", np.zeros((8, 8)), tracker="lap")


def test_without_pyimagej_the_message_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "imagej", None)  # import imagej -> ImportError
    with pytest.raises(FijiError, match=r"needs pyimagej .*pip install -e .*\[fiji\]"):
        fiji_trackmate.run_trackmate(fake_fiji(tmp_path / "Fiji.app"), np.zeros((8, 8)))


def test_fiji_is_started_headless_through_pyimagej(tmp_path, monkeypatch):
    """run_trackmate hands the checked Fiji folder to imagej.init(..., mode="headless") and puts a bridge_jar=
    on scyjava's class path first; a pyimagej failure becomes a FijiError naming the folder and Java 21. When this
    process already runs a JVM (e.g. test_fiji.py started one), it must refuse instead of calling pyimagej."""
    jpype = pytest.importorskip("jpype")
    scyjava = pytest.importorskip("scyjava")
    calls, classpath = [], []
    fake = types.ModuleType("imagej")

    def init(path, mode=None):
        calls.append((path, mode))
        raise RuntimeError("no Java 21 here")

    fake.init = init
    monkeypatch.setitem(sys.modules, "imagej", fake)
    monkeypatch.setattr(scyjava.config, "add_classpath", lambda *p: classpath.extend(p))
    monkeypatch.setattr(fiji_trackmate, "_STARTED", {})
    root = fake_fiji(tmp_path / "Fiji.app", bridge=None)
    jar = tmp_path / "trackpose-bridge-0.1.0.jar"
    jar.write_bytes(b"")
    if jpype.isJVMStarted():
        with pytest.raises(FijiError, match="a Java virtual machine already runs in this process"):
            fiji_trackmate.run_trackmate(root, np.zeros((8, 8)), bridge_jar=jar)
        assert calls == [] and classpath == []
    else:
        with pytest.raises(FijiError, match=r"pyimagej could not start the Fiji in .*Fiji\.app: no Java 21 here\. "
                                             r"TrackMate 8\.1\.6 needs Java 21"):
            fiji_trackmate.run_trackmate(root, np.zeros((8, 8)), bridge_jar=jar)
        assert calls == [(str(root.resolve()), "headless")]
        assert classpath == [str(jar.resolve())]


# ------------------------------------------------------------------------------------------------ settings

DEFAULTS = {"CELL_DIAMETER": 30.0, "TARGET_CHANNEL": 0, "USE_GPU": True, "CELLPOSE_MODEL": "trackpose_default",
            "CONDA_ENV": None, "FEATURE_PENALTIES": object()}


def test_values_take_the_type_of_their_default():
    out = fiji_trackmate.convert_settings({"CELL_DIAMETER": 12, "TARGET_CHANNEL": 2.0, "USE_GPU": np.bool_(False),
                                     "CELLPOSE_MODEL": Path("/models/m"), "CONDA_ENV": "tp"}, DEFAULTS, "detector")
    assert out == {"CELL_DIAMETER": 12.0, "TARGET_CHANNEL": 2, "USE_GPU": False, "CELLPOSE_MODEL": "/models/m",
                   "CONDA_ENV": "tp"}
    assert type(out["CELL_DIAMETER"]) is float and type(out["TARGET_CHANNEL"]) is int
    assert fiji_trackmate.convert_settings({"CELL_DIAMETER": np.float32(7.5)}, DEFAULTS, "d") == {"CELL_DIAMETER": 7.5}
    assert fiji_trackmate.convert_settings(None, DEFAULTS, "d") == {}


@pytest.mark.parametrize("key, value, message", [
    ("CELL_DIAMETR", 12.0, r"detector: unknown key 'CELL_DIAMETR'; the keys are CELLPOSE_MODEL, CELL_DIAMETER"),
    ("CELL_DIAMETER", "12", r"CELL_DIAMETER = '12' must be a finite number \(default 30.0\)"),
    ("CELL_DIAMETER", True, r"CELL_DIAMETER = True must be a finite number"),
    ("CELL_DIAMETER", math.nan, r"CELL_DIAMETER = nan must be a finite number"),
    ("TARGET_CHANNEL", 1.5, r"TARGET_CHANNEL = 1.5 must be a whole number"),
    ("TARGET_CHANNEL", 2 ** 40, r"must be a whole number"),
    ("USE_GPU", 1, r"USE_GPU = 1 must be True or False"),
    ("CELLPOSE_MODEL", 3, r"CELLPOSE_MODEL = 3 must be a string"),
    ("FEATURE_PENALTIES", {}, r"FEATURE_PENALTIES holds a object, which cannot be set from Python"),
])
def test_bad_values_are_named(key, value, message):
    with pytest.raises(FijiError, match=message):
        fiji_trackmate.convert_settings({key: value}, DEFAULTS, "detector")


def test_detector_values_fill_in_the_engine_python_the_custom_model_and_3d():
    v = fiji_trackmate.detector_values({"CELL_DIAMETER": 9.0}, "/env/bin/python", is_stack=False)
    assert v == {"CELL_DIAMETER": 9.0, "PYTHON_ENV_KIND": "python", "PYTHON_ENV_PATH": "/env/bin/python"}
    v = fiji_trackmate.detector_values({"PYTHON_ENV_KIND": "conda", "CONDA_ENV": "tp", "CELLPOSE_MODEL_FILEPATH": "/m"},
                                 "/env/bin/python", is_stack=True)
    assert v == {"PYTHON_ENV_KIND": "conda", "CONDA_ENV": "tp", "CELLPOSE_MODEL_FILEPATH": "/m",
                 "PRETRAINED_OR_CUSTOM": "custom", "MODE_3D": True}
    assert fiji_trackmate.detector_values({"MODE_3D": False}, None, is_stack=True) == {"MODE_3D": False}


def test_java_defaults_round_trip_into_valid_detector_settings():
    """With the bridge jars: DetectorKeys.defaults() read into Python, values put back, and the Java validation
    accepts the result (types right) or names the key (value out of range)."""
    pytest.importorskip("jpype")
    from trackpose import java_client
    try:
        java_client.start_jvm()
    except FijiError as exc:
        pytest.skip(f"the bridge jars are not built or Java is missing: {exc}")
    import jpype
    keys = jpype.JClass("org.trackpose.bridge.DetectorKeys")
    jmap = keys.defaults()
    defaults = fiji_trackmate._java_map_defaults(jmap)
    assert defaults["CELL_DIAMETER"] == float(keys.DEFAULT_CELL_DIAMETER)
    assert type(defaults["USE_GPU"]) is bool and type(defaults["CELL_DIAMETER"]) is float
    assert type(defaults["TARGET_CHANNEL"]) is int and defaults["CELLPOSE_MODEL"] == "trackpose_default"
    values = fiji_trackmate.detector_values({"CELL_DIAMETER": 12, "TARGET_CHANNEL": 1.0, "USE_GPU": False,
                                       "FLOW_THRESHOLD": 0.6}, "/env/bin/python", is_stack=False)
    fiji_trackmate._put_all(jmap, fiji_trackmate.convert_settings(values, defaults, "detector settings"))
    settings = jpype.JClass("org.trackpose.bridge.DetectorSettings")(jmap)
    assert list(settings.validate()) == []
    back = fiji_trackmate._java_map_defaults(jmap)
    assert back["CELL_DIAMETER"] == 12.0 and back["TARGET_CHANNEL"] == 1 and back["USE_GPU"] is False
    assert back["PYTHON_ENV_PATH"] == "/env/bin/python"
    fiji_trackmate._put_all(jmap, fiji_trackmate.convert_settings({"FLOW_THRESHOLD": 7.0}, defaults, "detector settings"))
    problems = list(jpype.JClass("org.trackpose.bridge.DetectorSettings")(jmap).validate())
    assert len(problems) == 1 and "FLOW_THRESHOLD" in str(problems[0])


# ------------------------------------------------------------------------------------------------ results


class FakeSpot:
    """Stands in for fiji.plugin.trackmate.Spot: ID() and getFeature(name)."""

    def __init__(self, sid, frame, x, y, z=0.0, radius=1.0, quality=0.5):
        self.sid = sid
        self.features = {"FRAME": float(frame), "POSITION_X": x, "POSITION_Y": y, "POSITION_Z": z,
                         "RADIUS": radius, "QUALITY": quality}

    def ID(self):  # noqa: N802 - TrackMate's name
        return self.sid

    def getFeature(self, name):  # noqa: N802
        return self.features.get(name)


class FakeTrackModel:
    """Stands in for fiji.plugin.trackmate.TrackModel: tracks of edges (source, target, weight)."""

    def __init__(self, tracks, visible=None):
        self.tracks = tracks
        self.visible = set(tracks) if visible is None else set(visible)

    def trackIDs(self, visible_only):  # noqa: N802
        return [t for t in self.tracks if t in self.visible or not visible_only]

    def trackEdges(self, tid):  # noqa: N802
        return self.tracks[tid]

    def getEdgeSource(self, e):  # noqa: N802
        return e[0]

    def getEdgeTarget(self, e):  # noqa: N802
        return e[1]

    def getEdgeWeight(self, e):  # noqa: N802
        return e[2]

    def trackIDOf(self, spot):  # noqa: N802
        for t, edges in self.tracks.items():
            if any(spot is e[0] or spot is e[1] for e in edges):
                return t
        return None


def test_spots_and_tracks_become_numpy_tables():
    a0, a1, a2 = FakeSpot(10, 0, 1.0, 2.0), FakeSpot(11, 1, 1.5, 2.5), FakeSpot(14, 2, 2.0, 3.0, quality=0.9)
    b0, b1 = FakeSpot(12, 0, 8.0, 8.0, z=3.0, radius=2.0), FakeSpot(13, 1, 8.5, 8.0, z=3.0)
    lone = FakeSpot(15, 1, 20.0, 1.0)
    tm = FakeTrackModel({0: [(a0, a1, 0.2), (a2, a1, 0.4)],  # second edge stored target-first
                         1: [(b0, b1, 0.1)],
                         2: [(lone, lone, 0.0)]}, visible=[0, 1])
    spots = fiji_trackmate.spots_table([a2, lone, b1, a0, b0, a1], lambda s: tm.trackIDOf(s) if s is not lone else None)
    assert spots.dtype == fiji_trackmate.SPOT_DTYPE
    assert spots["id"].tolist() == [10, 12, 11, 13, 15, 14]  # by frame, then id
    assert spots["frame"].tolist() == [0, 0, 1, 1, 1, 2]
    assert spots["track_id"].tolist() == [0, 1, 0, 1, -1, 0]
    row = spots[spots["id"] == 12][0]
    assert (row["x"], row["y"], row["z"], row["radius"], row["quality"]) == (8.0, 8.0, 3.0, 2.0, 0.5)
    edges = fiji_trackmate.edges_table(tm)
    assert edges.dtype == fiji_trackmate.EDGE_DTYPE
    assert [tuple(e) for e in edges.tolist()] == [(0, 10, 11, 0.2), (0, 11, 14, 0.4), (1, 12, 13, 0.1)]


def test_empty_results_and_incomplete_spots():
    assert len(fiji_trackmate.spots_table([])) == 0 and fiji_trackmate.spots_table([]).dtype == fiji_trackmate.SPOT_DTYPE
    assert len(fiji_trackmate.edges_table(FakeTrackModel({}))) == 0
    s = FakeSpot(3, 0, 1.0, 1.0)
    del s.features["QUALITY"]
    with pytest.raises(FijiError, match="spot 3 has no QUALITY feature"):
        fiji_trackmate.spots_table([s])


# ------------------------------------------------------------------------------------------------ a real Fiji

E2E = r"""
import json, sys
import numpy as np
from trackpose.fiji_trackmate import run_trackmate

fiji_dir, out = sys.argv[1], sys.argv[2]
h, w, r = 96, 112, 8.0
centres = [(24.3, 22.6), (70.5, 26.2), (30.8, 66.4), (78.1, 70.7)]
rng = np.random.default_rng(7)
yy, xx = np.mgrid[0:h, 0:w]
movie = []
for t in range(3):
    img = np.full((h, w), 100.0)
    for cx, cy in centres:
        img[(xx - cx - 4 * t) ** 2 + (yy - cy - 2 * t) ** 2 <= r * r] = 1000.0
    movie.append(img + rng.normal(0, 15, img.shape))
movie = np.asarray(movie, np.float32)
spots, tracks = run_trackmate(fiji_dir, movie, axes="TYX", calibration=(0.5, 0.5, 1.0, "micron"),
                              settings={"CELL_DIAMETER": 8.0, "USE_GPU": False}, tracker="overlap",
                              tracker_settings={"MIN_IOU": 0.3})
json.dump({"spots": spots.tolist(), "tracks": tracks.tolist(), "centres": centres}, open(out, "w"))
"""


@pytest.mark.skipif(not os.environ.get("TRACKPOSE_FIJI"),
                    reason="TRACKPOSE_FIJI not set: the end-to-end run needs a local Fiji.app with TrackMate 8, "
                           "pyimagej and the trackpose jar (set TRACKPOSE_FIJI to that Fiji.app folder)")
@pytest.mark.slow
def test_run_trackmate_in_a_real_fiji_tracks_the_drawn_discs(tmp_path):
    pytest.importorskip("imagej", reason="TRACKPOSE_FIJI is set but pyimagej is not installed: pip install -e .[fiji]")
    out = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, "-c", E2E, os.environ["TRACKPOSE_FIJI"], str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    spots = np.array([tuple(s) for s in result["spots"]], dtype=fiji_trackmate.SPOT_DTYPE)
    tracks = np.array([tuple(e) for e in result["tracks"]], dtype=fiji_trackmate.EDGE_DTYPE)
    by_id = {int(s["id"]): s for s in spots}
    for t in range(3):
        here = spots[spots["frame"] == t]
        assert len(here) == 4, f"frame {t}: {len(here)} spots"
        for cx, cy in result["centres"]:
            x, y = (cx + 4 * t) * 0.5, (cy + 2 * t) * 0.5
            d = np.hypot(here["x"] - x, here["y"] - y).min()
            assert d < 0.5, f"frame {t}: no spot within a pixel of the disc at ({x}, {y}): {d}"
        assert np.allclose(here["radius"], 4.0, rtol=0.1)
    # the overlap tracker links each disc through the three frames: 4 tracks of 2 links
    assert len(tracks) == 8 and len(set(tracks["track_id"].tolist())) == 4
    for e in tracks:
        a, b = by_id[int(e["source"])], by_id[int(e["target"])]
        assert b["frame"] == a["frame"] + 1 and a["track_id"] == b["track_id"] == e["track_id"]
        assert np.hypot(b["x"] - a["x"] - 2.0, b["y"] - a["y"] - 1.0) < 0.5
