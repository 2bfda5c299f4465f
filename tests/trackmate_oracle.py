"""Run the real TrackMate 8.1.6 (../shared/trackmate) or TrackMate 9 (../shared/trackmate9) through JPype, in its
own process.

    python tests/trackmate_oracle.py REQUEST.json RESULT.json [8|9]

REQUEST: {"action": "track", "tracker": "SPARSE_LAP_TRACKER" | "OVERLAP_TRACKER" | "FRAME_TO_FRAME" | "SEGMENT",
          "settings": {...}, "graph": [[source_row, target_row, weight], ...] (SEGMENT only),
          "spots": {"frame": [...], "x": [...], "y": [...], "z": [...], "radius": [...], "quality": [...],
                    "features": {NAME: [...]}, "rois": [[x0, y0, x1, y1, ...] relative to the spot, or null]}}
          (TrackMate 8 only)
   or    {"action": "read_xml", "path": "..."}
   or    {"action": "batch", "requests": [...]}  -> {"results": [...]} (one JVM for all)
RESULT (track): {"edges": [[source_row, target_row, weight], ...], "seconds": s}  (rows = request order)
   FRAME_TO_FRAME runs step 1 of the LAP tracker alone (SparseLAPFrameToFrameTracker); SEGMENT runs step 2 alone
   (SegmentTracker) on the step-1 links given in "graph" and returns only the links it adds.
RESULT (read_xml): {"ok": bool, "error": str, "spots": {ID: {feature: value, "roi": [...]}} , "edges": [[s, t,
       cost]], "tracks": {TRACK_ID: [spot IDs]}, "filtered": [...], "tracker": {...}, "detector": {...}}
   On TrackMate 9 each spot also says its "class" (SpotBase, SpotRoi, SpotMesh); a SpotMesh has "mesh":
   {"vertices": [x0, y0, z0, x1, ...] relative to the spot's position (as SpotMesh.getMesh() holds them),
   "normals": [...] (the vertex normals TrackMate computed from the triangles), "triangles": [a0, b0, c0, a1, ...]}.

Tests and benchmarks call ``run(request)`` (``run(request, version="9")`` for TrackMate 9), which starts this
script with the project's Python; JPype then never shares a process (or a JVM) with other tests.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACKMATE = Path(os.environ.get("TRACKPOSE_TRACKMATE_M2", ROOT.parent / "shared" / "trackmate" / "m2"))
TRACKMATE9 = Path(os.environ.get("TRACKPOSE_TRACKMATE9_M2", ROOT.parent / "shared" / "trackmate9" / "m2"))
M2 = Path(os.environ.get("TRACKPOSE_M2", Path.home() / ".m2" / "repository"))
BUILDS = {"8": (TRACKMATE, "8.1.6-tmbuild"), "9": (TRACKMATE9, "9.0.0-tmbuild")}  # local repo, version
POM = TRACKMATE / "sc" / "fiji" / "TrackMate" / "8.1.6-tmbuild" / "TrackMate-8.1.6-tmbuild.pom"
_DEPENDENCY = re.compile(r"<dependency><groupId>([^<]+)</groupId><artifactId>([^<]+)</artifactId>"
                         r"<version>([^<]+)</version>(<optional>true</optional>)?</dependency>")


def pom(version: str = "8") -> Path:
    repo, v = BUILDS[version]
    return repo / "sc" / "fiji" / "TrackMate" / v / f"TrackMate-{v}.pom"


def dependencies(version: str = "8") -> list[tuple[str, Path, bool]]:
    """TrackMate's Maven Central dependencies as its pom lists them: (group:artifact:version, jar in ~/.m2,
    optional). The subset jars (groups tmbuild.* / tm9build.*) live in the build's own folder."""
    out = []
    for g, a, v, optional in _DEPENDENCY.findall(pom(version).read_text()):
        if not g.startswith(("tmbuild", "tm9build")):
            out.append((f"{g}:{a}:{v}", M2 / g.replace(".", "/") / a / v / f"{a}-{v}.jar", bool(optional)))
    return out


def classpath(version: str = "8") -> list[str]:
    """TrackMate's jar, its subset jars, and its Central dependencies from ~/.m2 (as its pom lists them)."""
    repo = BUILDS[version][0]
    if not pom(version).exists():
        raise FileNotFoundError(f"no TrackMate build at {repo}")
    jars = sorted(str(p) for p in repo.rglob("*.jar"))
    return jars + [str(jar) for _, jar, _ in dependencies(version) if jar.exists()]


def missing(version: str = "9") -> list[str]:
    """The required (non-optional) Central dependencies of the TrackMate build that are not in ~/.m2."""
    return [f"{coords} ({jar})" for coords, jar, optional in dependencies(version) if not optional and not jar.exists()]


def how_to_resolve(version: str = "9") -> str:
    """The Maven command that puts the build's dependencies into ~/.m2 (what tests/run does before pytest)."""
    repo, v = BUILDS[version]
    return (f"resolve them with Maven: a pom depending on sc.fiji:TrackMate:{v} with the repository "
            f"{repo.as_uri()}, then `mvn -B -ntp -q dependency:resolve` (tests/run does this)")


def available(version: str = "8") -> str | None:
    """None when the oracle can run here, else why not."""
    try:
        import jpype  # noqa: F401
    except ImportError:
        return "jpype is not installed"
    try:
        cp = classpath(version)
    except FileNotFoundError as e:
        return str(e)
    if not any("jgrapht" in j for j in cp):
        return f"TrackMate's dependencies are not in {M2}"
    return None


def run(request: dict, timeout: float = 300, version: str = "8") -> dict:
    """Run one request in a fresh process; raises RuntimeError with TrackMate's message on failure."""
    with tempfile.TemporaryDirectory() as tmp:
        req, res = Path(tmp) / "request.json", Path(tmp) / "result.json"
        req.write_text(json.dumps(request))
        proc = subprocess.run([sys.executable, __file__, str(req), str(res), version], capture_output=True,
                              text=True, timeout=timeout)
        if proc.returncode != 0 or not res.exists():
            raise RuntimeError(f"TrackMate {version} oracle failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return json.loads(res.read_text())


# ---- inside the oracle process -------------------------------------------------------------------------------

def _java_settings(settings: dict):
    from jpype import JClass
    HashMap, Double, Integer, Boolean = (JClass(n) for n in ("java.util.HashMap", "java.lang.Double",
                                                             "java.lang.Integer", "java.lang.Boolean"))
    out = HashMap()
    for key, value in settings.items():
        if isinstance(value, dict):
            m = HashMap()
            for k, v in value.items():
                m.put(k, Double(float(v)))
            out.put(key, m)
        elif isinstance(value, bool):
            out.put(key, Boolean(value))
        elif key == "MAX_FRAME_GAP":
            out.put(key, Integer(int(value)))
        elif isinstance(value, (int, float)):
            out.put(key, Double(float(value)))
        else:
            out.put(key, value)
    return out


def _track(request: dict) -> dict:
    from jpype import JClass, JArray, JDouble
    Spot = JClass("fiji.plugin.trackmate.Spot")
    SpotRoi = JClass("fiji.plugin.trackmate.SpotRoi")
    SpotCollection = JClass("fiji.plugin.trackmate.SpotCollection")
    Integer = JClass("java.lang.Integer")
    Double = JClass("java.lang.Double")
    s = request["spots"]
    n = len(s["frame"])
    spots = SpotCollection()
    made = []
    rois = s.get("rois") or [None] * n
    for k in range(n):
        spot = Spot(float(s["x"][k]), float(s["y"][k]), float(s["z"][k]), float(s["radius"][k]),
                    float(s["quality"][k]))
        for name, values in (s.get("features") or {}).items():
            spot.putFeature(name, Double(float(values[k])))
        if rois[k] is not None:
            xs, ys = rois[k][0::2], rois[k][1::2]
            spot.setRoi(SpotRoi(JArray(JDouble)(xs), JArray(JDouble)(ys)))
        spots.add(spot, Integer(int(s["frame"][k])))
        made.append(spot)
    row = {int(sp.ID()): k for k, sp in enumerate(made)}
    tracker_name = request["tracker"]
    settings = _java_settings(request["settings"])
    given = set()
    if tracker_name == "FRAME_TO_FRAME":  # the sub-map SparseLAPTracker gives it: the linking keys
        settings = _java_settings({k: v for k, v in request["settings"].items()
                                   if k.startswith("LINKING_") or k == "ALTERNATIVE_LINKING_COST_FACTOR"})
        tracker = JClass("fiji.plugin.trackmate.tracking.jaqaman.SparseLAPFrameToFrameTracker")(spots, settings)
    elif tracker_name == "SEGMENT":
        graph = JClass("org.jgrapht.graph.SimpleWeightedGraph")(JClass("org.jgrapht.graph.DefaultWeightedEdge"))
        for spot in made:
            graph.addVertex(spot)
        for a, b, w in request["graph"]:
            graph.setEdgeWeight(graph.addEdge(made[a], made[b]), float(w))
            given.add((int(a), int(b)))
        settings = _java_settings({k: v for k, v in request["settings"].items()
                                   if not k.startswith("LINKING_") and k != "BLOCKING_VALUE"})
        tracker = JClass("fiji.plugin.trackmate.tracking.jaqaman.SegmentTracker")(graph, settings)
    elif tracker_name == "SPARSE_LAP_TRACKER":
        tracker = JClass("fiji.plugin.trackmate.tracking.jaqaman.SparseLAPTrackerFactory")().create(spots, settings)
    else:
        tracker = JClass("fiji.plugin.trackmate.tracking.overlap.OverlapTrackerFactory")().create(spots, settings)
    tracker.setNumThreads(1)
    t0 = time.perf_counter()
    if not tracker.checkInput() or not tracker.process():
        raise RuntimeError(f"{tracker_name}: {tracker.getErrorMessage()}")
    seconds = time.perf_counter() - t0
    graph = tracker.getResult()
    edges = []
    for e in graph.edgeSet():
        a, b = graph.getEdgeSource(e), graph.getEdgeTarget(e)
        ra, rb = row[int(a.ID())], row[int(b.ID())]
        if s["frame"][ra] > s["frame"][rb]:
            ra, rb = rb, ra
        if (ra, rb) not in given:
            edges.append([ra, rb, float(graph.getEdgeWeight(e))])
    return {"edges": sorted(edges), "seconds": seconds}


def _shape(spot) -> dict:
    """TrackMate 8: the ROI polygon if any. TrackMate 9: the spot's class, and its polygon (SpotRoi) or mesh
    (SpotMesh, vertices relative to the spot as getMesh() holds them, and the vertex normals TrackMate computed)."""
    import numpy as np
    from jpype import JArray, JFloat, JInt
    if hasattr(spot, "getRoi"):  # TrackMate 8: one Spot class with an optional SpotRoi
        roi = spot.getRoi()
        if roi is None:
            return {}
        return {"roi": [v for pair in zip(roi.x, roi.y) for v in (float(pair[0]), float(pair[1]))]}
    kind = str(spot.getClass().getSimpleName())
    if kind == "SpotRoi":
        return {"class": kind, "roi": [v for i in range(spot.nPoints()) for v in (float(spot.xr(i)),
                                                                                   float(spot.yr(i)))]}
    if kind == "SpotMesh":
        mesh = spot.getMesh()
        n_vertices, n_triangles = int(mesh.vertices().sizel()), int(mesh.triangles().sizel())
        vertices, normals = JArray(JFloat)(3 * n_vertices), JArray(JFloat)(3 * n_vertices)
        triangles = JArray(JInt)(3 * n_triangles)
        mesh.vertices().verts().get(0, vertices)  # absolute bulk get (Java 13+): the buffers' first values
        mesh.vertices().normals().get(0, normals)
        mesh.triangles().indices().get(0, triangles)
        return {"class": kind, "mesh": {"vertices": np.asarray(vertices, np.float64).tolist(),
                                        "normals": np.asarray(normals, np.float64).tolist(),
                                        "triangles": np.asarray(triangles, np.int64).tolist()}}
    return {"class": kind}


def _read_xml(request: dict) -> dict:
    from jpype import JClass
    File = JClass("java.io.File")
    reader = JClass("fiji.plugin.trackmate.io.TmXmlReader")(File(request["path"]))
    out = {"ok": bool(reader.isReadingOk()), "error": str(reader.getErrorMessage())}
    model = reader.getModel()
    out["ok"] = out["ok"] and bool(reader.isReadingOk())
    out["error"] = str(reader.getErrorMessage())
    out["spatial_units"] = str(model.getSpaceUnits())
    out["time_units"] = str(model.getTimeUnits())
    spots = {}
    for spot in model.getSpots().iterable(False):
        feats = {str(k): float(v) for k, v in spot.getFeatures().items()}
        feats.update(_shape(spot))
        spots[int(spot.ID())] = feats
    out["spots"] = spots
    tm = model.getTrackModel()
    edges = []
    for e in tm.edgeSet():
        edges.append([int(tm.getEdgeSource(e).ID()), int(tm.getEdgeTarget(e).ID()), float(tm.getEdgeWeight(e))])
    out["edges"] = sorted(edges)
    out["tracks"] = {int(t): sorted(int(s.ID()) for s in tm.trackSpots(t)) for t in tm.trackIDs(False)}
    out["filtered"] = sorted(int(t) for t in tm.trackIDs(True))
    out["track_names"] = {int(t): str(tm.name(t)) for t in tm.trackIDs(False)}
    try:
        settings = reader.readSettings(None)
        out["tracker"] = {str(k): str(v) for k, v in settings.trackerSettings.items()} \
            if settings.trackerSettings is not None else None
        out["tracker_factory"] = str(settings.trackerFactory.getKey()) if settings.trackerFactory else None
        out["detector"] = {str(k): str(v) for k, v in settings.detectorSettings.items()} \
            if settings.detectorSettings is not None else None
        out["image"] = {"width": int(settings.width) if hasattr(settings, "width") else None}
    except Exception as e:  # noqa: BLE001 - reported to the test
        out["settings_error"] = repr(e)
    return out


def _main(req_path: str, res_path: str, version: str = "8") -> int:
    import jpype
    request = json.loads(Path(req_path).read_text())
    jpype.startJVM("-Djava.awt.headless=true", classpath=classpath(version), convertStrings=False)
    one = {"track": _track, "read_xml": _read_xml}
    if request["action"] == "batch":
        result = {"results": [one[r["action"]](r) for r in request["requests"]]}
    else:
        result = one[request["action"]](request)
    Path(res_path).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_main(*sys.argv[1:4]))
