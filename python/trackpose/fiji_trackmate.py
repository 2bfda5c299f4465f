"""Run TrackMate with the trackpose detector in a local Fiji, from Python, and get the spots and tracks back.

    from trackpose.fiji_trackmate import run_trackmate
    spots, tracks = run_trackmate("/opt/Fiji.app", "movie.tif", settings={"CELL_DIAMETER": 12.0},
                                  tracker="overlap", tracker_settings={"MIN_IOU": 0.3})
    spots["x"], spots["track_id"]          # numpy structured arrays
    tracks["source"], tracks["target"]

The Fiji is started in this process with pyimagej (``imagej.init(fiji_dir, mode="headless")``), TrackMate's
``Model`` and ``Settings`` are built with ``TrackposeDetectorFactory`` and the chosen tracker, ``TrackMate.process()``
runs detection, spot features, tracking and track features as in the GUI, and the model is read back into plain
numpy arrays. Before anything starts, the Fiji folder is checked (jars/, TrackMate 8 or newer, exactly one trackpose
jar) and every problem is reported with what to install where.

Needs the "fiji" extra (``pip install -e .[fiji]``: pyimagej, scyjava, jpype1), a Java that can run the Fiji's
TrackMate (Java 21 for TrackMate 8), and the trackpose jar in ``Fiji.app/jars/`` (or ``bridge_jar=``). A JVM runs
once per process: start Fiji here before anything else starts Java, and use one Fiji per process. See
docs/python-java.md.
"""
from __future__ import annotations

import math
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import numpy as np

from .java_client import FijiError, calibration_values

__all__ = ["run_trackmate", "check_fiji", "FijiInstall", "FijiError", "TRACKERS", "SPOT_DTYPE", "EDGE_DTYPE"]

REPO_ROOT = Path(__file__).resolve().parents[2]

#: tracker name -> TrackMate factory class (TrackMate 8 package names)
TRACKERS = {
    "overlap": "fiji.plugin.trackmate.tracking.overlap.OverlapTrackerFactory",
    "sparse_lap": "fiji.plugin.trackmate.tracking.jaqaman.SparseLAPTrackerFactory",
}

DETECTOR_FACTORY = "org.trackpose.trackmate.TrackposeDetectorFactory"

#: one row per spot; ``track_id`` is -1 for a spot in no track
SPOT_DTYPE = np.dtype([("id", np.int64), ("frame", np.int32), ("x", np.float64), ("y", np.float64),
                       ("z", np.float64), ("radius", np.float64), ("quality", np.float64), ("track_id", np.int64)])

#: one row per link: source spot (earlier frame) -> target spot, TrackMate's link cost
EDGE_DTYPE = np.dtype([("track_id", np.int64), ("source", np.int64), ("target", np.int64), ("cost", np.float64)])

_BRIDGE_JAR = re.compile(r"^trackpose-bridge-.+\.jar$")
_TRACKMATE_JAR = re.compile(r"^TrackMate_?-(\d+)\.(\d+)(?:\.(\d+))?.*\.jar$")  # TrackMate-8.1.6.jar, TrackMate_-6.0.jar
_SIDE = ("-sources.jar", "-javadoc.jar", "-tests.jar")
_MIN_TRACKMATE = (8, 0)
_LOCK = threading.Lock()
_STARTED: Dict[str, Any] = {}  # {"root": Path, "ij": gateway}


@dataclass(frozen=True)
class FijiInstall:
    """What :func:`check_fiji` found in a Fiji folder."""

    root: Path
    trackmate_jar: Path
    trackmate_version: Tuple[int, ...]
    bridge_jar: Path
    bridge_in_fiji: bool  # False: bridge_jar= was given and is added to the class path for this process


# ------------------------------------------------------------------------------------------------ Fiji folder


def _jars(folder: Path) -> List[Path]:
    return sorted(p for p in folder.glob("*.jar") if p.is_file()) if folder.is_dir() else []


def check_fiji(fiji_dir: Union[str, os.PathLike, None], bridge_jar: Union[str, os.PathLike, None] = None
               ) -> FijiInstall:
    """Checks that ``fiji_dir`` is a Fiji with TrackMate 8+ and the trackpose jar; raises FijiError saying what is
    missing and what to do. Looks only at files: nothing is started."""
    if fiji_dir is None or str(fiji_dir).strip() == "":
        raise FijiError("no Fiji folder given: pass the path of Fiji.app (the folder that holds jars/ and plugins/)")
    root = Path(fiji_dir).expanduser()
    if not root.exists():
        raise FijiError(f"the Fiji folder {root} does not exist: give the path of a Fiji installation (the "
                        f"Fiji.app folder; get Fiji from https://fiji.sc)")
    if not root.is_dir():
        raise FijiError(f"{root} is a file, not a folder: give the Fiji.app folder, not the launcher inside it")
    root = root.resolve()
    jars_dir = root / "jars"
    if not jars_dir.is_dir():
        hint = ""
        if (root / "Fiji.app" / "jars").is_dir():
            hint = f" (it holds a Fiji: did you mean {root / 'Fiji.app'}?)"
        raise FijiError(f"{root} is not a Fiji installation: it has no jars/ folder{hint}. Give the Fiji.app "
                        f"folder itself")
    plugins_dir = root / "plugins"
    candidates = _jars(jars_dir) + _jars(plugins_dir)
    trackmate = []
    for p in candidates:
        m = _TRACKMATE_JAR.match(p.name)
        if m and not p.name.endswith(_SIDE):
            trackmate.append((tuple(int(g) for g in m.groups() if g is not None), p))
    if not trackmate:
        raise FijiError(f"TrackMate is not installed in {root}: no TrackMate-<version>.jar in jars/ or plugins/. "
                        f"TrackMate ships with Fiji: update it (Help > Update..., then restart Fiji), or use a "
                        f"fresh Fiji from https://fiji.sc")
    version, trackmate_jar = max(trackmate)
    if version[:2] < _MIN_TRACKMATE:
        raise FijiError(f"{trackmate_jar.name} in {trackmate_jar.parent}: the trackpose detector needs TrackMate "
                        f"{_MIN_TRACKMATE[0]} or newer (Java 21 Fiji); update Fiji (Help > Update...)")
    installed = [p for p in candidates if _BRIDGE_JAR.match(p.name) and not p.name.endswith(_SIDE)]
    if len(installed) > 1:
        raise FijiError(f"{len(installed)} trackpose jars are installed in {root}: "
                        f"{', '.join(str(p.relative_to(root)) for p in installed)}; keep one (the newest) in "
                        f"jars/ and delete the others")
    if bridge_jar is not None:
        jar = Path(bridge_jar).expanduser()
        if not jar.is_file():
            raise FijiError(f"bridge_jar {jar} does not exist: build it with `mvn -B -Pfiji package` in "
                            f"{REPO_ROOT} (target/trackpose-bridge-<version>.jar)")
        if installed:
            raise FijiError(f"bridge_jar {jar} was given but {root} already has {installed[0].relative_to(root)}: "
                            f"two copies of the plugin would clash; leave out bridge_jar= or delete that file")
        return FijiInstall(root, trackmate_jar, version, jar.resolve(), False)
    if not installed:
        raise FijiError(f"the trackpose plugin is not installed in {root}: build it with `mvn -B -Pfiji package` "
                        f"in {REPO_ROOT} and copy target/trackpose-bridge-<version>.jar into {jars_dir}/ (or pass "
                        f"bridge_jar= to add it to the class path for this run only)")
    return FijiInstall(root, trackmate_jar, version, installed[0], True)


# ------------------------------------------------------------------------------------------------ settings


def convert_settings(values: Optional[Mapping[str, Any]], defaults: Mapping[str, Any], what: str
                     ) -> Dict[str, Any]:
    """The caller's ``values`` with the Python type of each key's default (bool, int, float or str), ready to be
    put into the Java map; raises FijiError for an unknown key or a value of the wrong kind. ``defaults`` is the
    factory's default map as Python values (see :func:`_python_value`); ``what`` names the map in messages."""
    out: Dict[str, Any] = {}
    for key, value in (values or {}).items():
        key = str(key)
        if key not in defaults:
            raise FijiError(f"{what}: unknown key {key!r}; the keys are {', '.join(sorted(defaults))}")
        default = defaults[key]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        bad = FijiError(f"{what}: {key} = {value!r} must be {_kind(default)} (default {default!r})")
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise bad
        elif isinstance(default, int):
            if isinstance(value, bool):
                raise bad
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int) or not -2 ** 31 <= value < 2 ** 31:
                raise bad
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise bad
            value = float(value)
        elif isinstance(default, str) or default is None:
            if not isinstance(value, str):
                raise bad
        else:
            raise FijiError(f"{what}: {key} holds a {type(default).__name__}, which cannot be set from Python here; "
                            f"leave it at its default")
        out[key] = value
    return out


def _kind(default: Any) -> str:
    if isinstance(default, bool):
        return "True or False"
    if isinstance(default, int):
        return "a whole number"
    if isinstance(default, float):
        return "a finite number"
    return "a string"


def _python_value(j: Any) -> Any:
    """A Java map value as the Python value its type stands for (Boolean, Integer/Long, Double, String); other
    objects (maps, lists) are returned as they are."""
    if j is None or not hasattr(j, "getClass"):  # a Python value (JPype boxes subclass int, float and str)
        return j
    name = str(j.getClass().getName())
    if name == "java.lang.Boolean":
        return bool(j.booleanValue())
    if name in ("java.lang.Integer", "java.lang.Long", "java.lang.Short", "java.lang.Byte"):
        return int(j.longValue())
    if name in ("java.lang.Double", "java.lang.Float"):
        return float(j.doubleValue())
    if name == "java.lang.String":
        return str(j)
    return j


def _java_map_defaults(jmap) -> Dict[str, Any]:
    return {str(k): _python_value(jmap.get(k)) for k in jmap.keySet()}


def _put_all(jmap, values: Mapping[str, Any]) -> None:
    import jpype
    for key, value in values.items():
        if isinstance(value, bool):
            j = jpype.JClass("java.lang.Boolean")(value)
        elif isinstance(value, int):
            j = jpype.JClass("java.lang.Integer")(value)
        elif isinstance(value, float):
            j = jpype.JClass("java.lang.Double")(value)
        else:
            j = jpype.JClass("java.lang.String")(value)
        jmap.put(jpype.JClass("java.lang.String")(key), j)


def detector_values(settings: Optional[Mapping[str, Any]], python: Optional[str], is_stack: bool
                    ) -> Dict[str, Any]:
    """The detector keys set on top of the factory's defaults: the caller's settings; the engine's python (unless
    the settings name an environment); a model file implies a custom model; Z stacks default to MODE_3D."""
    values = dict(settings or {})
    if python is not None and "PYTHON_ENV_KIND" not in values:
        values["PYTHON_ENV_KIND"] = "python"
        values["PYTHON_ENV_PATH"] = str(python)
    if "CELLPOSE_MODEL_FILEPATH" in values and "PRETRAINED_OR_CUSTOM" not in values:
        values["PRETRAINED_OR_CUSTOM"] = "custom"
    if is_stack and "MODE_3D" not in values:
        values["MODE_3D"] = True
    return values


# ------------------------------------------------------------------------------------------------ results


def spots_table(spots: Iterable[Any], track_of=None) -> np.ndarray:
    """TrackMate spots (objects with ``ID()`` and ``getFeature(name)``, as fiji.plugin.trackmate.Spot) as a
    SPOT_DTYPE array sorted by frame then id. ``track_of(spot)`` gives the spot's track id or None."""
    rows = []
    for s in spots:
        def feature(name, s=s):
            v = s.getFeature(name)
            if v is None:
                raise FijiError(f"spot {int(s.ID())} has no {name} feature: TrackMate did not finish its spots")
            return float(v)
        tid = track_of(s) if track_of is not None else None
        rows.append((int(s.ID()), int(round(feature("FRAME"))), feature("POSITION_X"), feature("POSITION_Y"),
                     feature("POSITION_Z"), feature("RADIUS"), feature("QUALITY"), -1 if tid is None else int(tid)))
    table = np.array(rows, dtype=SPOT_DTYPE)
    return table[np.lexsort((table["id"], table["frame"]))] if len(table) else table


def edges_table(track_model) -> np.ndarray:
    """The links of TrackMate's track model (``trackIDs(visibleOnly)``, ``trackEdges(id)``, ``getEdgeSource/
    Target(edge)``, ``getEdgeWeight(edge)``) as an EDGE_DTYPE array, the source always the earlier spot, sorted by
    track then source then target. Visible tracks only, as TrackMate exports them."""
    rows = []
    for tid in track_model.trackIDs(True):
        for e in track_model.trackEdges(tid):
            a, b = track_model.getEdgeSource(e), track_model.getEdgeTarget(e)
            fa, fb = float(a.getFeature("FRAME")), float(b.getFeature("FRAME"))
            if fb < fa:
                a, b = b, a
            rows.append((int(tid), int(a.ID()), int(b.ID()), float(track_model.getEdgeWeight(e))))
    table = np.array(rows, dtype=EDGE_DTYPE)
    return table[np.lexsort((table["target"], table["source"], table["track_id"]))] if len(table) else table


# ------------------------------------------------------------------------------------------------ Fiji


def _start(install: FijiInstall):
    """The ImageJ gateway of ``install`` (started once per process)."""
    with _LOCK:
        if _STARTED:
            if _STARTED["root"] != install.root:
                raise FijiError(f"this process already runs the Fiji in {_STARTED['root']}; one Fiji per process: "
                                f"run {install.root} in a new Python process")
            return _STARTED["ij"]
        try:
            import imagej
            import scyjava
        except ImportError as exc:
            raise FijiError(f"running TrackMate in a local Fiji needs pyimagej ({exc}): install the fiji extra, "
                            f"`pip install -e {REPO_ROOT}[fiji]` (or `pip install pyimagej`)") from None
        import jpype
        if jpype.isJVMStarted():
            raise FijiError("a Java virtual machine already runs in this process (trackpose.java_client or another "
                            "library started it) and pyimagej cannot start Fiji in it: call run_trackmate before "
                            "anything else starts Java, or in a new Python process")
        if not install.bridge_in_fiji:
            scyjava.config.add_classpath(str(install.bridge_jar))
        try:
            ij = imagej.init(str(install.root), mode="headless")
        except Exception as exc:  # noqa: BLE001 - pyimagej raises various errors (Java missing, bad folder...)
            raise FijiError(f"pyimagej could not start the Fiji in {install.root}: {exc}. TrackMate "
                            f"{'.'.join(map(str, install.trackmate_version))} needs Java 21: set JAVA_HOME to "
                            f"a Java 21 (or newer) installation") from exc
        for cls, what in (("fiji.plugin.trackmate.TrackMate", f"TrackMate ({install.trackmate_jar.name})"),
                          (DETECTOR_FACTORY, f"the trackpose plugin ({install.bridge_jar})")):
            try:
                jpype.JClass(cls)
            except Exception as exc:  # noqa: BLE001 - ClassNotFoundException, NoClassDefFoundError
                raise FijiError(f"Fiji started but {what} cannot be loaded: {exc}. Reinstall it (for trackpose: "
                                f"the jar from `mvn -B -Pfiji package`, in {install.root / 'jars'})") from exc
        _STARTED.update(root=install.root, ij=ij)
        return ij


def _open_image(image_or_path, axes: Optional[str], calibration):
    import jpype
    if isinstance(image_or_path, (str, os.PathLike)):
        path = Path(image_or_path).expanduser()
        if not path.is_file():
            raise FijiError(f"the image {path} does not exist")
        imp = jpype.JClass("ij.IJ").openImage(str(path.resolve()))
        if imp is None:
            raise FijiError(f"Fiji cannot open {path} as an image (use a TIFF, or any format Fiji opens)")
        if calibration is not None:
            x, y, z, unit = calibration_values(calibration)
            cal = imp.getCalibration()
            cal.pixelWidth, cal.pixelHeight, cal.pixelDepth = x, y, z
            cal.setUnit(unit)
        return imp
    from .java_client import to_imageplus
    return to_imageplus(np.asarray(image_or_path), axes=axes, calibration=calibration)


def run_trackmate(fiji_dir: Union[str, os.PathLike], image_or_path, settings: Optional[Mapping[str, Any]] = None,
                  tracker: str = "overlap", tracker_settings: Optional[Mapping[str, Any]] = None,
                  calibration=None, axes: Optional[str] = None, python: Optional[str] = sys.executable,
                  bridge_jar: Union[str, os.PathLike, None] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Detects with trackpose and tracks with TrackMate in the Fiji at ``fiji_dir``; returns ``(spots, tracks)``.

    ``image_or_path``: an image file Fiji opens, or a numpy array (``axes``: letters of T, Z, C, Y, X; default by
    dimension YX, TYX, TZYX, TZCYX). ``calibration``: (x, y[, z[, unit]]) or a dict; for a file it replaces the
    file's. ``settings``: detector keys (docs/java-bridge.md#settings) over the factory's defaults; Z stacks get
    MODE_3D unless set. ``python``: the engine's interpreter (default: this one); None uses the environment the
    settings name. ``tracker``: "overlap" (outlines, 2D) or "sparse_lap" (distances), with ``tracker_settings``
    over its defaults (e.g. MIN_IOU; LINKING_MAX_DISTANCE, GAP_CLOSING_MAX_DISTANCE, MAX_FRAME_GAP).
    ``bridge_jar``: a trackpose jar to put on the class path when Fiji has none in jars/.

    Returns ``spots``, a SPOT_DTYPE array (id, frame, x, y, z, radius, quality in the image's physical units,
    track_id or -1), and ``tracks``, an EDGE_DTYPE array of links (track_id, source id, target id, cost).
    Raises FijiError for an unusable Fiji, settings or image, and when TrackMate fails (its message).
    """
    if tracker not in TRACKERS:
        raise FijiError(f"unknown tracker {tracker!r}: choose one of {', '.join(TRACKERS)}")
    install = check_fiji(fiji_dir, bridge_jar)
    _start(install)
    import jpype
    imp = _open_image(image_or_path, axes, calibration)
    Settings = jpype.JClass("fiji.plugin.trackmate.Settings")
    tm_settings = Settings(imp)

    detector = jpype.JClass(DETECTOR_FACTORY)()
    ds = detector.getDefaultSettings()
    defaults = _java_map_defaults(ds)
    values = detector_values(settings, python, int(imp.getNSlices()) > 1)
    _put_all(ds, convert_settings(values, defaults, "detector settings"))
    problem = detector.checkSettings(ds)
    if problem is not None:
        raise FijiError(f"detector settings: {problem}")
    tm_settings.detectorFactory = detector
    tm_settings.detectorSettings = ds

    tracker_factory = jpype.JClass(TRACKERS[tracker])()
    ts = tracker_factory.getDefaultSettings()
    tdefaults = _java_map_defaults(ts)
    _put_all(ts, convert_settings(tracker_settings, tdefaults, f"{tracker} tracker settings"))
    problem = tracker_factory.checkSettings(ts)  # TrackMate 8: a message, or null when the settings are fine
    if problem is not None:
        raise FijiError(f"{tracker} tracker settings: {problem}")
    tm_settings.trackerFactory = tracker_factory
    tm_settings.trackerSettings = ts
    tm_settings.addAllAnalyzers()

    model = jpype.JClass("fiji.plugin.trackmate.Model")()
    trackmate = jpype.JClass("fiji.plugin.trackmate.TrackMate")(model, tm_settings)
    if not trackmate.checkInput() or not trackmate.process():
        raise FijiError(f"TrackMate failed: {trackmate.getErrorMessage()}")
    track_model = model.getTrackModel()

    def track_of(spot):
        tid = track_model.trackIDOf(spot)
        return None if tid is None else int(tid)

    spots = spots_table(model.getSpots().iterable(True), track_of)
    return spots, edges_table(track_model)
