"""Run the Java bridge client (the code the TrackMate detector uses) from Python, on a numpy image.

This is the Python <-> Java interop of the bridge: a JVM is started in this process (JPype, configured through
scyjava when it is installed) with the jars ``mvn -B package -DskipTests`` builds, the numpy image becomes an
ImageJ hyperstack with its calibration, and ``org.trackpose.bridge.BridgeClient`` runs the engine exactly as
Fiji would (job folder, ``python -m trackpose job DIR`` child process or persistent worker, results reader). The
objects it returns come back as plain Python dicts in physical units.

    from trackpose import java_client
    objs = fiji.detect(movie, axes="TYX", calibration=(0.65, 0.65, 1.0, "micron"),
                       settings={"CELLPOSE_MODEL": "cyto3", "CELL_DIAMETER": 15.0})

Needs the optional "fiji" extra (``pip install -e .[fiji]``: jpype1, scyjava), a Java 11+ runtime and the built
jars. See docs/python-java.md.
"""
from __future__ import annotations

import glob
import logging
import math
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import TrackposeError

__all__ = ["FijiError", "BridgeError", "start_jvm", "find_jars", "find_java_home", "detect", "Detector",
           "to_imageplus"]

log = logging.getLogger("trackpose.java_client")

REPO_ROOT = Path(__file__).resolve().parents[2]
JARS_ENV = "TRACKPOSE_JARS"
_BRIDGE_JAR = "trackpose-bridge-*.jar"
_AXES = "TZCYX"  # ImageJ hyperstack order (slices are stored C fastest, then Z, then T)
_LOCK = threading.Lock()


class FijiError(TrackposeError):
    """The Java side cannot be set up: jpype/scyjava missing, jars not built, no Java, a JVM without our classes."""

    kind = "environment"


class BridgeError(TrackposeError):
    """A detection failed on the Java side (``org.trackpose.bridge.BridgeException`` or another Java exception).

    ``str(err)`` is the Java message. ``java_kind`` is the bridge's failure kind (ENVIRONMENT, INPUT, ENGINE,
    OUTPUT, IO, CANCELLED, TIMEOUT, or the Java exception's class name for other exceptions), ``engine_kind`` the
    engine's own error tag when it sent one, ``exit_code`` the engine's exit code (or None) and ``stderr`` the tail
    of its stderr. ``kind`` is the engine's tag when there is one, else ``java_kind`` in lower case.
    """

    def __init__(self, message: str, java_kind: str = "error", engine_kind: Optional[str] = None,
                 exit_code: Optional[int] = None, stderr: str = "", java_exception=None):
        super().__init__(message)
        self.java_kind = java_kind
        self.engine_kind = engine_kind
        self.exit_code = exit_code
        self.stderr = stderr
        self.java_exception = java_exception
        self.kind = engine_kind or java_kind.lower()


# ------------------------------------------------------------------------------------------------ JVM


def _split_paths(value: Union[str, os.PathLike, Iterable]) -> List[str]:
    if isinstance(value, (str, os.PathLike)):
        return [p for p in str(value).split(os.pathsep) if p.strip()]
    return [str(p) for p in value]


def find_jars(jars: Union[None, str, os.PathLike, Iterable] = None) -> List[Path]:
    """The jars the bridge needs: the trackpose-bridge jar and its dependencies (ImageJ 1.x).

    ``jars`` (or, when None, the ``TRACKPOSE_JARS`` environment variable) is a path list (``os.pathsep``
    separated, or a sequence) of jar files, folders (every ``*.jar`` inside, and in their ``lib/``) or glob
    patterns. Without either: ``<repo>/target/trackpose-bridge-*.jar`` and ``<repo>/target/lib/*.jar``, as
    ``mvn -B package -DskipTests`` makes them. Raises FijiError when the bridge jar is not among them.
    """
    given = jars if jars is not None else os.environ.get(JARS_ENV) or None
    source = "jars argument" if jars is not None else f"${JARS_ENV}" if given is not None else None
    found: List[Path] = []
    if given is None:
        target = REPO_ROOT / "target"
        found = sorted(p for p in target.glob(_BRIDGE_JAR) if not _side_artifact(p))
        found += sorted((target / "lib").glob("*.jar"))
    else:
        for entry in _split_paths(given):
            p = Path(entry).expanduser()
            if p.is_dir():
                found += sorted(p.glob("*.jar")) + sorted((p / "lib").glob("*.jar"))
            elif p.is_file():
                found.append(p)
            else:
                matches = sorted(Path(m) for m in glob.glob(str(p)))
                if not matches:
                    raise FijiError(f"{source}: {entry} does not exist")
                found += [m for m in matches if m.is_file()]
    found = list(dict.fromkeys(p.resolve() for p in found))
    if not any(p.match(_BRIDGE_JAR) and not _side_artifact(p) for p in found):
        where = f"in {source} ({given})" if source else f"under {REPO_ROOT / 'target'}"
        raise FijiError(f"the trackpose bridge jar ({_BRIDGE_JAR}) was not found {where}: build it with "
                        f"`mvn -B package -DskipTests` in {REPO_ROOT} (it also puts ImageJ in target/lib), or "
                        f"point {JARS_ENV} at the built jars")
    return found


def _side_artifact(p: Path) -> bool:
    return p.name.endswith(("-sources.jar", "-javadoc.jar", "-tests.jar"))


def find_java_home(java_home: Union[None, str, os.PathLike] = None) -> Path:
    """The Java installation to start: ``java_home``, else ``$JAVA_HOME``, else the one whose ``java`` is on PATH
    (symbolic links followed, e.g. /usr/bin/java -> /usr/lib/jvm/java-17-openjdk-amd64/bin/java)."""
    if java_home is not None:
        candidates = [(Path(java_home).expanduser(), "java_home argument")]
    else:
        candidates = []
        if os.environ.get("JAVA_HOME"):
            candidates.append((Path(os.environ["JAVA_HOME"]), "$JAVA_HOME"))
        exe = shutil.which("java")
        if exe:
            candidates.append((Path(os.path.realpath(exe)).parent.parent, f"java on PATH ({exe})"))
    for home, _ in candidates:
        if _libjvm(home) is not None:
            return home
    if candidates:
        tried = "; ".join(f"{h} ({why})" for h, why in candidates)
        raise FijiError(f"no Java virtual machine library (lib/server/libjvm.so, jvm.dll, libjvm.dylib) found in "
                        f"{tried}: give the folder of a Java 11+ JDK or JRE as java_home= or $JAVA_HOME")
    raise FijiError("Java was not found (no $JAVA_HOME and no `java` on PATH): install a Java 11+ runtime (e.g. "
                    "`apt-get install openjdk-17-jdk-headless`, or a JDK from adoptium.net) or pass java_home=")


def _libjvm(home: Path) -> Optional[Path]:
    for rel in ("lib/server/libjvm.so", "jre/lib/server/libjvm.so", "lib/amd64/server/libjvm.so",
                "jre/lib/amd64/server/libjvm.so", "lib/server/libjvm.dylib", "jre/lib/server/libjvm.dylib",
                "bin/server/jvm.dll", "jre/bin/server/jvm.dll", "lib/libjli.dylib"):
        p = home / rel
        if p.is_file():
            return p
    return None


def _import_jpype():
    try:
        import jpype
        import jpype.imports  # noqa: F401
    except ImportError as exc:
        raise FijiError(f"the Python <-> Java interop needs JPype ({exc}): install the fiji extra, "
                        f"`pip install -e {REPO_ROOT}[fiji]` (or `pip install jpype1 scyjava`)") from None
    return jpype


def _bridge_loadable(jpype) -> bool:
    try:
        jpype.JClass("org.trackpose.bridge.BridgeClient")
        return True
    except Exception:  # noqa: BLE001 - java.lang.ClassNotFoundException or NoClassDefFoundError
        return False


def _ij_loadable(jpype) -> bool:
    try:
        jpype.JClass("ij.ImagePlus")
        return True
    except Exception:  # noqa: BLE001
        return False


def start_jvm(jars: Union[None, str, os.PathLike, Iterable] = None, java_home: Union[None, str, os.PathLike] = None,
              headless: bool = True, options: Sequence[str] = (), max_heap: Optional[str] = None,
              snapshot: bool = True) -> None:
    """Start the JVM in this process with the bridge's jars on the class path (nothing happens when it runs).

    ``jars``: see :func:`find_jars`. ``java_home``: see :func:`find_java_home`; nothing is downloaded (scyjava
    is told to use the system Java). ``headless`` starts AWT headless (no windows; ImageJ's image classes work).
    ``options`` are extra JVM options; ``max_heap`` e.g. "4g". When a JVM already runs (e.g. pyimagej started
    it) the bridge jar is added to JPype's class loader if its classes are not there yet.

    ``snapshot``: the JVM loads copies of the jars (in a private temporary folder removed at exit), so that
    rebuilding them (``mvn package``) while this process runs cannot pull classes out from under it.
    """
    jpype = _import_jpype()
    with _LOCK:
        if jpype.isJVMStarted():
            if not _bridge_loadable(jpype):
                paths = find_jars(jars)
                if _ij_loadable(jpype):  # keep the running ImageJ (e.g. Fiji's) instead of loading a second copy
                    paths = [p for p in paths if not p.name.startswith("ij-")]
                for p in _snapshot(paths) if snapshot else paths:
                    jpype.addClassPath(str(p))
                if not _bridge_loadable(jpype):
                    raise FijiError(f"a JVM is already running and the trackpose bridge classes cannot be loaded "
                                    f"into it from {[str(p) for p in paths]}; start trackpose.java_client.start_jvm() "
                                    f"before anything else starts Java (pyimagej: call it before imagej.init())")
            _check_java_version(jpype)
            return
        paths = find_jars(jars)
        home = find_java_home(java_home)
        if snapshot:
            paths = _snapshot(paths)
        jvm_lib = _libjvm(home)
        os.environ["JAVA_HOME"] = str(home)
        opts = list(options)
        if headless:
            opts.append("-Djava.awt.headless=true")
        if max_heap:
            opts.append(f"-Xmx{max_heap}")
        try:
            import scyjava
        except ImportError:
            scyjava = None
        try:
            if scyjava is not None:
                # the system Java found above; scyjava would otherwise download a JDK (its default is "always")
                scyjava.config.set_java_constraints(fetch="never")
                scyjava.config.add_classpath(*[str(p) for p in paths])
                scyjava.config.add_options(opts)
                # interrupt=False: Ctrl-C raises KeyboardInterrupt in Python (and Detector cancels the engine)
                # instead of JPype's non-interactive default, which lets Java end the process
                scyjava.config.add_kwargs(jvmpath=str(jvm_lib), interrupt=False)
                scyjava.start_jvm()
            else:
                jpype.startJVM(*opts, jvmpath=str(jvm_lib), classpath=[str(p) for p in paths], interrupt=False)
        except FijiError:
            raise
        except Exception as exc:  # noqa: BLE001 - JVMNotFoundException, OSError, RuntimeError...
            raise FijiError(f"the Java virtual machine {jvm_lib} could not be started: {exc}") from exc
        log.debug("JVM started from %s with %s", home, [str(p) for p in paths])
        _check_java_version(jpype)
        if not _bridge_loadable(jpype) or not _ij_loadable(jpype):
            raise FijiError(f"the JVM started but the trackpose bridge or ImageJ classes are missing from "
                            f"{[str(p) for p in paths]}: rebuild with `mvn -B package -DskipTests` in {REPO_ROOT}")


def _snapshot(paths: List[Path]) -> List[Path]:
    import atexit
    import tempfile
    folder = Path(tempfile.mkdtemp(prefix="trackpose-jars-"))
    atexit.register(shutil.rmtree, folder, True)
    copies = []
    for i, p in enumerate(paths):
        copy = folder / f"{i:02d}-{p.name}"  # keeps class path order and tells same-named jars apart
        shutil.copy2(p, copy)
        copies.append(copy)
    return copies


def _check_java_version(jpype) -> None:
    spec = str(jpype.JClass("java.lang.System").getProperty("java.specification.version"))
    try:
        major = int(spec.split(".")[1] if spec.startswith("1.") else spec.split(".")[0])
    except ValueError:
        return
    if major < 11:
        raise FijiError(f"the running Java is {spec}; the bridge needs Java 11 or newer (give java_home=)")


def _java():
    """The Java classes used here (JVM started on demand)."""
    start_jvm()
    import jpype
    return jpype


# ------------------------------------------------------------------------------------------------ images

_ELEMENT = {np.dtype(np.uint8): "byte", np.dtype(np.uint16): "short", np.dtype(np.float32): "float"}


def _normalise_axes(image: np.ndarray, axes: Optional[str]) -> str:
    if axes is None:
        axes = {2: "YX", 3: "TYX", 4: "TZYX", 5: "TZCYX"}.get(image.ndim)
        if axes is None:
            raise TrackposeError(f"cannot guess the axes of a {image.ndim}-D image: give axes= (letters of TZCYX)")
    axes = axes.upper()
    if len(axes) != image.ndim:
        raise TrackposeError(f"axes {axes!r} has {len(axes)} letters but the image has {image.ndim} dimensions "
                             f"{image.shape}")
    bad = sorted(set(axes) - set(_AXES))
    if bad or len(set(axes)) != len(axes):
        raise TrackposeError(f"axes {axes!r}: use each of the letters T, Z, C, Y, X at most once")
    if "Y" not in axes or "X" not in axes:
        raise TrackposeError(f"axes {axes!r} must include Y and X")
    return axes


def _as_tzcyx(image: np.ndarray, axes: str) -> np.ndarray:
    present = [a for a in _AXES if a in axes]
    arr = np.transpose(image, [axes.index(a) for a in present])
    shape = [arr.shape[present.index(a)] if a in present else 1 for a in _AXES]
    return arr.reshape(shape)


def _imagej_dtype(arr: np.ndarray) -> np.ndarray:
    """8-bit, 16-bit and 32-bit float pass as they are; bool -> 8-bit; everything else -> 32-bit float."""
    if arr.dtype in _ELEMENT:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TrackposeError(f"cannot send a {arr.dtype} image to ImageJ (8/16-bit, 32-bit float, or any real "
                             "type converted to 32-bit float)")
    if np.issubdtype(arr.dtype, np.integer) and arr.size and (arr.min() < -(2 ** 24) or arr.max() > 2 ** 24):
        log.warning("the %s image has values beyond +-2^24, which 32-bit float (ImageJ) rounds", arr.dtype)
    return arr.astype(np.float32)


def calibration_values(calibration) -> Tuple[float, float, float, str]:
    """Pixel sizes ``(x, y, z, unit)`` of a calibration (None: 1 pixel; a dict with x, y, z, unit; or an ImageJ
    ``Calibration``)."""
    if calibration is None:
        return 1.0, 1.0, 1.0, "pixel"
    if isinstance(calibration, dict):
        x = calibration.get("x", 1.0)
        cal = (x, calibration.get("y", x), calibration.get("z", 1.0), calibration.get("unit", "pixel"))
    else:
        cal = tuple(calibration)
        if not 2 <= len(cal) <= 4:
            raise TrackposeError(f"calibration {calibration!r}: expected (x, y[, z[, unit]])")
        if len(cal) < 4 and isinstance(cal[-1], str):
            raise TrackposeError(f"calibration {calibration!r}: expected (x, y, z, unit) when a unit is given")
        cal = cal + (1.0, "pixel")[len(cal) - 2:]
    x, y, z, unit = cal
    out = []
    for name, v in (("x", x), ("y", y), ("z", z)):
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise TrackposeError(f"calibration {name} = {v!r} is not a number") from None
        if not (v > 0 and math.isfinite(v)):
            raise TrackposeError(f"calibration {name} = {v!r} must be a positive pixel size")
        out.append(v)
    return out[0], out[1], out[2], str(unit)


def to_imageplus(image: np.ndarray, axes: Optional[str] = None, calibration=None, title: str = "trackpose"):
    """A numpy image as an ImageJ ``ij.ImagePlus`` hyperstack (a copy, with its calibration).

    ``axes``: letters of T, Z, C, Y, X in the array's order (default by dimension: YX, TYX, TZYX, TZCYX).
    uint8, uint16 and float32 keep their type; bool becomes 8-bit; other real types become 32-bit float.
    ``calibration``: (x, y, z, unit) or {"x", "y", "z", "unit"}; None = 1 pixel. Planes are copied whole
    (numpy -> Java array through the buffer protocol), never pixel by pixel.
    """
    jpype = _java()
    image = np.asarray(image)
    axes = _normalise_axes(image, axes)
    data = _imagej_dtype(_as_tzcyx(image, axes))
    nt, nz, nc, ny, nx = data.shape
    if data.size == 0:
        raise TrackposeError(f"the image is empty: shape {image.shape} ({axes})")
    element = _ELEMENT[data.dtype]
    jtype = {"byte": jpype.JByte, "short": jpype.JShort, "float": jpype.JFloat}[element]
    view = {"byte": np.int8, "short": np.int16, "float": np.float32}[element]  # Java has no unsigned types
    ImageStack = jpype.JClass("ij.ImageStack")
    ImagePlus = jpype.JClass("ij.ImagePlus")
    stack = ImageStack(nx, ny)
    for t in range(nt):
        for z in range(nz):
            for c in range(nc):
                plane = np.ascontiguousarray(data[t, z, c]).view(view).reshape(-1)
                stack.addSlice("", jpype.JArray(jtype)(plane))
    imp = ImagePlus(title, stack)
    imp.setDimensions(nc, nz, nt)
    if nt * nz * nc > 1:
        imp.setOpenAsHyperStack(True)
    x, y, z, unit = calibration_values(calibration)
    cal = imp.getCalibration()
    cal.pixelWidth = x
    cal.pixelHeight = y
    cal.pixelDepth = z
    cal.setUnit(unit)
    return imp


def _labels_to_numpy(imp, nz: int) -> np.ndarray:
    """Detections.labels() -> int32 array (T, Y, X), or (T, Z, Y, X) for Z stacks (``nz`` > 1). Planes are read in
    stack order, T outer and Z inner, as the Java results reader does."""
    ny, nx = int(imp.getHeight()), int(imp.getWidth())
    stack = imp.getStack()
    n = int(stack.getSize())
    if n % nz:
        raise TrackposeError(f"the label image has {n} planes, not a multiple of {nz} Z slices")
    out = np.empty((n // nz, nz, ny, nx), np.int32)
    for i in range(n):
        pixels = np.asarray(stack.getPixels(i + 1))
        if pixels.dtype == np.int16:
            pixels = pixels.view(np.uint16)
        elif pixels.dtype == np.int8:
            pixels = pixels.view(np.uint8)
        out[i // nz, i % nz] = pixels.reshape(ny, nx)
    return out if nz > 1 else out[:, 0]


# ------------------------------------------------------------------------------------------------ settings


def _settings_map(settings: Optional[Dict], python: Optional[str]):
    """A Java settings map: DetectorKeys defaults, then the caller's values with the Java type of each key."""
    jpype = _java()
    JString = jpype.JClass("java.lang.String")
    JInteger, JDouble = jpype.JClass("java.lang.Integer"), jpype.JClass("java.lang.Double")
    JBoolean, JLong = jpype.JClass("java.lang.Boolean"), jpype.JClass("java.lang.Long")
    keys = jpype.JClass("org.trackpose.bridge.DetectorKeys")
    settings = dict(settings or {})
    if "CELLPOSE_MODEL_FILEPATH" in settings and "PRETRAINED_OR_CUSTOM" not in settings:
        settings["PRETRAINED_OR_CUSTOM"] = "custom"
    if python is not None:
        settings["PYTHON_ENV_KIND"] = "python"
        settings["PYTHON_ENV_PATH"] = str(python)
    m = keys.defaults()
    for key, value in settings.items():
        setting = keys.setting(str(key))
        jt = str(setting.type.getName()) if setting is not None else None
        if isinstance(value, np.generic):
            value = value.item()
        if value is None:
            j = None
        elif isinstance(value, bool):
            j = JBoolean(value)
        elif isinstance(value, int):
            j = JDouble(float(value)) if jt == "java.lang.Double" else \
                JInteger(value) if -2 ** 31 <= value < 2 ** 31 else JLong(value)
        elif isinstance(value, float):
            j = JDouble(value)
        elif isinstance(value, (str, os.PathLike)):
            j = JString(os.fspath(value))
        else:
            j = JString(str(value))  # the Java validation names the key and what it expects
        m.put(JString(str(key)), j)
    return jpype.JClass("org.trackpose.bridge.DetectorSettings")(m)


# ------------------------------------------------------------------------------------------------ objects


def _objects(detections) -> List[dict]:
    out = []
    for o in detections.all():
        three_d = bool(o.is3D())
        px, py = o.polygonX(), o.polygonY()
        mesh = o.mesh()
        out.append({
            "frame": int(o.frame()),
            "label": int(o.label()),
            "x": float(o.x()),
            "y": float(o.y()),
            "z": float(o.z()),
            "radius": float(o.radius()),
            "quality": float(o.quality()),
            "size": float(o.size()),  # area (2D, unit^2) or volume (3D, unit^3)
            "pixel_count": int(o.pixelCount()),
            "is_3d": three_d,
            "polygon_x": None if px is None else np.array(px, dtype=np.float64),
            "polygon_y": None if py is None else np.array(py, dtype=np.float64),
            "vertices": None if mesh is None else np.array(mesh.vertices(), dtype=np.float64).reshape(-1, 3),
            "faces": None if mesh is None else np.array(mesh.triangles(), dtype=np.int64).reshape(-1, 3),
        })
    return out


def _python_logger(jpype, progress: Optional[Callable[[int, int, int], None]]):
    from jpype import JImplements, JOverride

    levels = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}

    @JImplements("org.trackpose.bridge.BridgeLogger")
    class _Logger:
        # Called from the bridge's reader threads: never let a Python error escape into them.
        @JOverride
        def log(self, level, message):
            try:
                log.log(levels.get(str(level.name()), logging.INFO), "%s", str(message))
            except Exception:  # noqa: BLE001
                pass

        @JOverride
        def progress(self, done, total, frame):
            try:
                log.info("frame %d done (%d/%d)", int(frame), int(done), int(total))
                if progress is not None:
                    progress(int(done), int(total), int(frame))
            except Exception:  # noqa: BLE001
                log.exception("progress callback failed")

    return _Logger()


def _bridge_error(exc, jpype) -> BridgeError:
    BridgeException = jpype.JClass("org.trackpose.bridge.BridgeException")
    message = str(exc.getMessage() or exc.getClass().getName())
    if isinstance(exc, BridgeException):
        code = exc.exitCode()
        return BridgeError(message, java_kind=str(exc.kind().name()),
                           engine_kind=None if exc.engineKind() is None else str(exc.engineKind()),
                           exit_code=None if code is None else int(code), stderr=str(exc.stderr()),
                           java_exception=exc)
    return BridgeError(f"{exc.getClass().getName()}: {message}", java_kind=str(exc.getClass().getSimpleName()),
                       java_exception=exc)


# ------------------------------------------------------------------------------------------------ detection


class Detector:
    """A reusable bridge client. ``worker=True`` keeps one engine process (``trackpose serve``) with its models
    loaded between calls, as the TrackMate preview does; close it (or use ``with``) to stop that process.

    ``settings``: DetectorKeys -> value (e.g. {"CELLPOSE_MODEL": "cyto3", "CELL_DIAMETER": 15.0}); unset keys take
    the Java defaults. ``python``: the python executable running the engine (default: this one, ``sys.executable``);
    pass None to use the environment the settings name (PYTHON_ENV_KIND, CONDA_ENV, PYTHON_ENV_PATH). ``timeout``
    (seconds) bounds each job; ``temp_root`` is where job folders are made.
    """

    def __init__(self, settings: Optional[Dict] = None, python: Optional[str] = sys.executable,
                 worker: bool = False, timeout: Optional[float] = None,
                 temp_root: Union[None, str, os.PathLike] = None,
                 progress: Optional[Callable[[int, int, int], None]] = None):
        jpype = _java()
        self._jpype = jpype
        self.settings = _settings_map(settings, python)
        problems = list(self.settings.validate())
        if problems:
            raise BridgeError("\n".join(str(p) for p in problems), java_kind="INPUT")
        env = jpype.JClass("org.trackpose.bridge.PythonEnvironment").fromSettings(self.settings)
        self._worker = jpype.JClass("org.trackpose.bridge.WorkerClient")(env) if worker else None
        BridgeClient = jpype.JClass("org.trackpose.bridge.BridgeClient")
        self._client = BridgeClient(self._worker if worker else env)
        self._client.logger(_python_logger(jpype, progress))
        if timeout is not None:
            self._client.timeout(jpype.JClass("java.time.Duration").ofMillis(int(round(timeout * 1000))))
        if temp_root is not None:
            self._client.tempRoot(jpype.JClass("java.io.File")(os.fspath(temp_root)).toPath())

    def detect(self, image: np.ndarray, axes: Optional[str] = None, calibration=None,
               roi: Optional[Sequence[int]] = None, frames: Optional[Sequence[int]] = None,
               return_labels: bool = False):
        """Detect objects in ``image``; see :func:`detect`."""
        jpype = self._jpype
        imp = to_imageplus(image, axes, calibration)
        jroi = None
        if roi is not None:
            if len(roi) != 4:
                raise TrackposeError(f"roi {roi!r}: expected (x, y, width, height) in pixels")
            jroi = jpype.JClass("java.awt.Rectangle")(*[int(v) for v in roi])
        jframes = None if frames is None else jpype.JArray(jpype.JInt)([int(f) for f in frames])
        detections = self._run(lambda: self._client.detect(imp, jroi, jframes, self.settings))
        objects = _objects(detections)
        if detections.dropped():
            log.info("%d object(s) left out: outline with fewer than 3 vertices or no area",
                     int(detections.dropped()))
        if return_labels:
            return objects, _labels_to_numpy(detections.labels(), int(imp.getNSlices()))
        return objects

    def _run(self, call):
        """Runs the Java call in a thread so that Ctrl-C here cancels the engine (its whole process tree)."""
        jpype = self._jpype
        box = {}

        def target():
            try:
                box["value"] = call()
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                box["error"] = exc

        thread = threading.Thread(target=target, name="trackpose-bridge", daemon=True)
        thread.start()
        try:
            while thread.is_alive():
                thread.join(0.1)
        except KeyboardInterrupt:
            self._client.cancel()
            thread.join()
            raise
        error = box.get("error")
        if error is not None:
            if isinstance(error, jpype.JException):
                raise _bridge_error(error, jpype) from None
            raise error
        return box["value"]

    def cancel(self) -> None:
        """Stops a running detection from another thread; it then raises BridgeError (kind "cancelled")."""
        self._client.cancel()

    def close(self) -> None:
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def detect(image: np.ndarray, axes: Optional[str] = None, calibration=None, settings: Optional[Dict] = None,
           python: Optional[str] = sys.executable, roi: Optional[Sequence[int]] = None,
           frames: Optional[Sequence[int]] = None, timeout: Optional[float] = None,
           progress: Optional[Callable[[int, int, int], None]] = None, return_labels: bool = False):
    """Run the Java bridge client on a numpy image and return its objects.

    Parameters
    ----------
    image : array
        2D/3D image or movie; uint8, uint16 and float32 are sent as they are, other real types as float32.
    axes : str
        Letters of T, Z, C, Y, X in ``image``'s order; default by dimension: YX, TYX, TZYX, TZCYX.
    calibration : (x, y, z, unit) or dict
        Pixel size; None = 1 "pixel". Physical settings (CELL_DIAMETER, SMOOTHING) are in these units.
    settings : dict
        DetectorKeys -> value, e.g. {"CELLPOSE_MODEL": "cyto3", "CELL_DIAMETER": 15.0, "FLOW_THRESHOLD": 0.4};
        unset keys take the Java defaults (docs/java-bridge.md). Giving CELLPOSE_MODEL_FILEPATH alone implies
        PRETRAINED_OR_CUSTOM = "custom". Z stacks need MODE_3D = True.
    python : str or None
        Python executable running ``python -m trackpose job``; default this interpreter. None: the environment
        the settings name (PYTHON_ENV_KIND = conda / venv / python).
    roi : (x, y, width, height)
        Pixels to process; None = all. Coordinates returned are still the whole image's.
    frames : list of int
        0-based frames (T indices) to process; None = all.
    timeout : float
        Seconds before the job is stopped (BridgeError, kind "timeout").
    progress : callable(done, total, frame)
        Called after each frame (from a Java thread).
    return_labels : bool
        Also return the label image (int32, (T, Y, X) or (T, Z, Y, X), frames sent, ROI crop).

    Returns
    -------
    list of dict
        One per object: frame, label, x, y, z (physical units; the centre of pixel (i, j) is (i * x_size,
        j * y_size), TrackMate's convention), radius, quality (mean cell probability), size (area or volume),
        pixel_count, is_3d, polygon_x / polygon_y (2D, physical, counter-clockwise, on pixel corners) and
        vertices (n, 3) / faces (m, 3) (3D meshes, physical) or None.

    Raises
    ------
    BridgeError
        Any failure on the Java side (bad settings, Python not found, engine errors), with the Java message.
    FijiError
        JPype missing, jars not built, no Java.
    """
    detector = Detector(settings, python=python, worker=False, timeout=timeout, progress=progress)
    return detector.detect(image, axes=axes, calibration=calibration, roi=roi, frames=frames,
                           return_labels=return_labels)
