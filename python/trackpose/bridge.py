"""The bridge: run one job folder (``trackpose job DIR``) or serve jobs from a persistent worker (``trackpose serve``).

The protocol is in docs/bridge-protocol.md. In short: ``input.tif`` + ``job.json`` in; JSON-line events on stdout;
``labels.tif`` + ``shapes.json`` (+ ``meshes/``) out, renamed into place only when every frame succeeded; exit 0
only then. Human-readable logs go to stderr. Nothing outside the job folder is written.
"""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from . import __version__, io
from .errors import InputError, TrackposeError
from .settings import check_job_settings

log = logging.getLogger("trackpose")

PROTOCOL_VERSION = 1

class Cancelled(TrackposeError):
    kind = "cancelled"


class DiskFullError(TrackposeError):
    """Writing an output failed for lack of space: a full disk (ENOSPC), a quota (EDQUOT) or a file size limit
    (EFBIG). Never reported as an empty result: the partial outputs are removed and the job fails."""

    kind = "disk"


#: errno values that mean "no room for this file"
DISK_FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", None)) if e)


@contextlib.contextmanager
def _writing(path: Path):
    """Turns a disk-full / quota / file-size error while writing ``path`` (the name the caller will see) into a
    DiskFullError that says where and what to do."""
    try:
        yield
    except (OSError, TrackposeError) as exc:  # io wraps OSError in InputError("... cannot be written ...")
        cause = _no_room(exc)
        if cause is None:
            raise
        raise DiskFullError(disk_full_message(path, cause)) from exc


_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")  # numpy's tofile when the OS took only part


def _no_room(exc: BaseException) -> Optional[OSError]:
    """The OSError in ``exc``'s chain that means "no room for this file", or None. A short write (the OS accepted
    fewer bytes than given, numpy's "N requested and M written") counts: on a regular file it happens only when
    the disk, the quota or the file size limit is reached; the next write would fail with that errno."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and (exc.errno in DISK_FULL_ERRNOS or
                                         (exc.errno is None and _SHORT_WRITE.search(str(exc)))):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def disk_full_message(path: Path, exc: OSError) -> str:
    reason = os.strerror(exc.errno) if exc.errno else f"short write: {exc}"
    try:
        free = f"; {shutil.disk_usage(path.parent).free / 2 ** 20:.0f} MB free there"
    except OSError:
        free = ""
    return (f"disk full / file too large at {path} ({reason}{free}): free space or choose another temporary "
            f"folder; no results were kept")


class Emitter:
    """Writes protocol events, one JSON object per line, to a stream (stdout); thread-safe."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stdout
        self.lock = threading.Lock()

    def __call__(self, event: str, **fields) -> None:
        line = json.dumps({"event": event, **fields}, allow_nan=False, default=_json_default)
        with self.lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot encode {type(value).__name__}")


class _EventLogHandler(logging.Handler):
    """Forwards the engine's info/warning log records as ``log`` events (the caller shows them to the user)."""

    def __init__(self, emit: Emitter):
        super().__init__(logging.INFO)
        self.emit_event = emit

    def emit(self, record):
        level = "warning" if record.levelno >= logging.WARNING else "info"
        try:
            self.emit_event("log", level=level, message=record.getMessage())
        except Exception:  # never let logging break a job
            pass


# ------------------------------------------------------------------------------------------------ job.json

def read_job(folder: Path) -> dict:
    """Read and validate ``job.json``; returns {"settings", "frames", "calibration", "outputs"}."""
    path = folder / "job.json"
    if not folder.is_dir():
        raise InputError(f"job folder {folder} does not exist")
    try:
        job = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path} is missing; the caller must write job.json before starting the engine") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(job, dict):
        raise InputError(f"{path}: expected a JSON object")
    version = job.get("version")
    if not isinstance(version, int) or version < 1:
        raise InputError(f"{path}: 'version' must be a positive integer, got {version!r}")
    if version > PROTOCOL_VERSION:
        raise InputError(f"{path}: job version {version} is newer than this engine understands "
                         f"({PROTOCOL_VERSION}); update trackpose in the Python environment (trackpose "
                         f"{__version__})")
    settings = check_job_settings(job.get("settings", {}), str(path))
    frames = job.get("frames")
    if frames is not None and (not isinstance(frames, list) or not all(isinstance(f, int) for f in frames)):
        raise InputError(f"{path}: 'frames' must be a list of integers")
    outputs = {"labels": True, "shapes": True, "meshes": False, **(job.get("outputs") or {})}
    return {"settings": settings, "frames": frames, "calibration": job.get("calibration") or {},
            "outputs": outputs}


def segment_kwargs(settings: dict, meta: io.ImageMeta, is_volume: bool) -> dict:
    """job.json settings -> ``trackpose.segment`` keyword arguments (engine defaults for the 0 = auto values)."""
    if settings["do_3d"] and not is_volume:
        raise InputError("3D mode (do_3d) was asked for but the image has no Z axis; use 2D detection")
    if settings["stitch_threshold"] > 0 and not is_volume:
        raise InputError("2D+Z stitching was asked for but the image has no Z axis; use 2D detection")
    kwargs = dict(channels=tuple(settings["channels"]), diameter=settings["diameter"] or None,
                  flow_threshold=settings["flow_threshold"], cellprob_threshold=settings["cellprob_threshold"],
                  resample=settings["resample"], niter=settings["niter"] or None, min_size=settings["min_size"],
                  max_size=settings["max_size"] or None, do_3d=settings["do_3d"],
                  stitch_threshold=settings["stitch_threshold"], flow3d_smooth=settings["flow3d_smooth"],
                  batch_size=settings["batch_size"], gpu=settings["use_gpu"], bfloat16=settings["bfloat16"])
    if settings["do_3d"]:
        if settings["anisotropy"] > 0:
            kwargs["anisotropy"] = settings["anisotropy"]
        else:
            from .batch import anisotropy_from_meta
            kwargs["anisotropy"] = anisotropy_from_meta(meta)
    return kwargs


# ------------------------------------------------------------------------------------------------ running

_MODEL_CACHE: dict = {}


def cached_model(name: str, gpu: bool):
    """Models stay loaded for the life of the process (the persistent worker's whole point)."""
    from .models import load_model
    key = (name, gpu)
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = load_model(name, gpu=gpu)
    return _MODEL_CACHE[key]


# The persistent worker keeps the last network output, so that a preview that only changes what comes after the
# network (thresholds, minimum size, smoothing, stitching) on the same frame redoes only that part (segment's
# ``network_cache``). None in one-shot job processes.
_NETWORK_CACHE: Optional[dict] = None


def _segment_frame(frame: np.ndarray, model_name: str, kwargs: dict, axes: dict):
    from .segmentation import segment
    model = cached_model(model_name, kwargs.get("gpu", False))
    r = segment(frame, model=model, **axes, **kwargs, network_cache=_NETWORK_CACHE)
    cellprob = r.cellprob if r.cellprob.shape == r.masks.shape else None
    return r.masks, cellprob, r.diameter, bool(r.timings.get("network_cached"))


def _worker_init(threads: int) -> None:
    import torch
    torch.set_num_threads(max(1, threads))
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_job(folder, emit: Optional[Emitter] = None, workers: Optional[int] = None,
            cancel: Optional[threading.Event] = None) -> dict:
    """Run the job in ``folder``; returns {"objects": N, "frames": n}. Raises TrackposeError on failure, after
    removing every partial output."""
    from . import shapes
    emit = emit or Emitter()
    folder = Path(folder)
    job = read_job(folder)
    settings = job["settings"]
    input_path = folder / "input.tif"
    if not input_path.is_file():
        raise InputError(f"{input_path} is missing; the caller must write the frames there")
    image, meta = io.read_image(input_path)
    calibration = job["calibration"]
    if calibration:
        cal = io.ImageMeta.from_calibration_dict(calibration, meta.axes, source=str(input_path))
        meta.pixel_size_x = cal.pixel_size_x or meta.pixel_size_x
        meta.pixel_size_y = cal.pixel_size_y or meta.pixel_size_y
        meta.z_spacing = cal.z_spacing or meta.z_spacing
        meta.unit = cal.unit or meta.unit
    has_time = "T" in meta.axes
    frames_data = image if has_time else image[None]
    frame_ids = job["frames"] if job["frames"] is not None else list(range(len(frames_data)))
    if len(frame_ids) != len(frames_data):
        raise InputError(f"job.json lists {len(frame_ids)} frames but input.tif holds {len(frames_data)}")
    axes_no_t = meta.axes.replace("T", "")
    is_volume = "Z" in axes_no_t
    nchan = 1
    if "C" in axes_no_t:
        nchan = image.shape[meta.axes.index("C")]
    for c in settings["channels"]:
        if c < 0 or c > nchan:
            raise InputError(f"channel {c} does not exist: the image has {nchan} channel(s) (channels count from "
                             "1; 0 = grayscale/none)")
    axes = {}
    if "C" in axes_no_t:
        axes["channel_axis"] = axes_no_t.index("C")
    if is_volume:
        axes["z_axis"] = axes_no_t.index("Z")
    kwargs = segment_kwargs(settings, meta, is_volume)
    model_name = settings["model"]
    model = cached_model(model_name, settings["use_gpu"])  # fail early, before any frame, on a bad model
    estimating = not settings["diameter"] and model.size_model is not None
    if estimating:  # diameter 0 = estimate each frame's diameter with the size model
        kwargs["diameter"] = 0.0
    elif not settings["diameter"]:
        emit("log", level="info", message=f"diameter 0: model {model_name} has no size model to estimate it; "
             f"using its training diameter {model.diam_labels:.1f} px")
    n = len(frame_ids)
    workers = max(1, min(workers or settings["workers"], n))
    emit("log", level="info", message=f"trackpose {__version__}: {n} frame(s), model {model_name}, "
         f"{'3D' if settings['do_3d'] else '2D+Z' if settings['stitch_threshold'] > 0 else '2D'}, "
         f"{workers} worker(s){', network in bfloat16' if settings['bfloat16'] else ''}")

    tmp = folder / f".partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    with _writing(folder):
        tmp.mkdir()
    try:
        labels = [None] * n
        probs = [None] * n
        done = 0

        def finished(i, result):
            nonlocal done
            labels[i], probs[i], diameter, reused = result
            if reused:
                emit("log", level="info", message=f"frame {frame_ids[i]}: network output reused (same frame and "
                     "network settings as the previous request; only the steps after the network were redone)")
            if estimating:
                emit("log", level="info", message=f"frame {frame_ids[i]}: estimated diameter {diameter:.1f} px")
            done += 1
            emit("progress", done=done, total=n, frame=frame_ids[i])

        if workers == 1:
            for i in range(n):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("the job was cancelled")
                finished(i, _segment_frame(frames_data[i], model_name, kwargs, axes))
        else:
            import torch
            threads = max(1, torch.get_num_threads() // workers)
            import multiprocessing
            # spawn, not fork: forking a process whose torch/OpenMP thread pools are running can deadlock
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_worker_init, initargs=(threads,)) as pool:
                futures = {pool.submit(_segment_frame, frames_data[i], model_name, kwargs, axes): i
                           for i in range(n)}
                try:
                    for fut in _as_completed(futures, cancel):
                        finished(futures[fut], fut.result())
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
        total = _write_outputs(tmp, folder, labels, probs, frame_ids, meta, settings, job["outputs"], is_volume,
                               shapes)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return {"objects": total, "frames": n}


def _as_completed(futures, cancel):
    from concurrent.futures import FIRST_COMPLETED, wait
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        if cancel is not None and cancel.is_set():
            raise Cancelled("the job was cancelled")
        yield from done


def _write_outputs(tmp: Path, folder: Path, labels, probs, frame_ids, meta, settings, outputs, is_volume,
                   shapes) -> int:
    stack = np.stack(labels)
    axes = "T" + ("Z" if is_volume else "") + "YX"
    frames_out = []
    total = 0
    spacing = (meta.pixel_size_x or 1.0, meta.pixel_size_y or 1.0, meta.z_spacing or 1.0)
    for i, t in enumerate(frame_ids):
        lab = labels[i]
        table = shapes.object_table(lab, cellprob=probs[i])
        objects = []
        if lab.ndim == 2:
            polys = shapes.contours(lab, simplify=0.5 if settings["simplify_contours"] else None)
            for row in table:
                poly = polys.get(row["label"])
                if poly is None or len(poly) < 3:
                    continue
                objects.append({**_public(row), "polygon": np.round(poly, 4).tolist()})
        else:
            meshes = shapes.meshes(lab, spacing=(1.0, 1.0, 1.0), smooth_iterations=mesh_smoothing_iterations(
                settings["smoothing"])) if outputs.get("meshes") else {}
            for row in table:
                obj = _public(row)
                if row["label"] in meshes:
                    rel = f"meshes/{t}_{row['label']}.ply"
                    with _writing(folder / rel):
                        (tmp / "meshes").mkdir(exist_ok=True)
                        shapes.write_ply(tmp / rel, *meshes[row["label"]])
                    obj["mesh"] = rel
                objects.append(obj)
        total += len(objects)
        frames_out.append({"frame": t, "objects": objects})
    if outputs.get("labels", True):
        with _writing(folder / "labels.tif"):
            io.write_labels(tmp / "labels.tif", stack, meta, axes=axes)
    doc = {"version": PROTOCOL_VERSION, "ndim": 3 if is_volume else 2, "calibration": meta.calibration_dict(),
           "frames": frames_out}
    with _writing(folder / "shapes.json"):
        (tmp / "shapes.json").write_text(json.dumps(doc, default=_json_default), encoding="utf-8")
    # all frames succeeded: move the results into place (meshes first, shapes.json last: its presence means done)
    if (tmp / "meshes").exists():
        shutil.rmtree(folder / "meshes", ignore_errors=True)
        os.replace(tmp / "meshes", folder / "meshes")
    if (tmp / "labels.tif").exists():
        os.replace(tmp / "labels.tif", folder / "labels.tif")
    os.replace(tmp / "shapes.json", folder / "shapes.json")
    return total


def mesh_smoothing_iterations(sigma_px: float) -> int:
    """Taubin iterations that smooth a marching-cubes mesh (edges ~1 px) at about ``sigma_px`` pixels.

    A Laplacian step with weight 1/2 spreads a vertex like a random walk of variance ~1/2 px^2, so n steps act
    like a Gaussian of variance n/2: n = 2 sigma^2 (0 = no smoothing).
    """
    return int(round(2.0 * sigma_px ** 2)) if sigma_px > 0 else 0


def _public(row: dict) -> dict:
    keys = ("label", "centroid", "area", "volume", "bbox", "radius", "quality")
    return {k: row[k] for k in keys if k in row}


# ------------------------------------------------------------------------------------------------ commands

def _install_sigterm(cancel: threading.Event):
    def handler(signum, frame):
        cancel.set()
        raise Cancelled(f"stopped by signal {signum}")
    signal.signal(signal.SIGTERM, handler)


def job_main(folder, workers: Optional[int] = None) -> int:
    """``trackpose job DIR``: run one job folder, events on stdout; returns the exit code."""
    emit = Emitter()
    handler = _EventLogHandler(emit)
    logging.getLogger("trackpose").addHandler(handler)
    cancel = threading.Event()
    _install_sigterm(cancel)
    t0 = time.perf_counter()
    try:
        summary = run_job(Path(folder), emit=emit, workers=workers, cancel=cancel)
    except TrackposeError as exc:
        emit("error", message=str(exc), kind=exc.kind)
        print(f"trackpose job: error: {exc}", file=sys.stderr)
        return 3 if isinstance(exc, Cancelled) else 1
    except MemoryError:
        emit("error", message="out of memory; lower the batch size or the number of workers", kind="memory")
        return 1
    except OSError as exc:
        emit("error", message=f"cannot read or write in the job folder: {exc}", kind="io")
        return 1
    except Exception as exc:  # an engine bug: still loud, with the type, never a silent empty result
        emit("error", message=f"internal error: {exc.__class__.__name__}: {exc}", kind="engine")
        log.exception("internal error")
        return 1
    finally:
        logging.getLogger("trackpose").removeHandler(handler)
    emit("done", **summary, seconds=round(time.perf_counter() - t0, 3))
    return 0


def warm_up() -> float:
    """Runs the per-request code that follows the network once, on a small synthetic frame, in memory: the numba
    kernels of flows -> masks (loaded from numba's cache on first call, ~0.7 s), the flow check, the object table
    and the contours. The persistent worker does this while it waits for its first request, so that the first
    preview costs only what every later one does. Returns the seconds spent."""
    from . import dynamics, shapes
    t0 = time.perf_counter()
    yy, xx = np.mgrid[:48, :48]
    masks = (((yy - 20) ** 2 + (xx - 18) ** 2) < 100).astype(np.int32)
    masks[((yy - 28) ** 2 + (xx - 34) ** 2 < 64) & (masks == 0)] = 2
    dP = dynamics.masks_to_flows(masks)
    cellprob = np.where(masks > 0, 4.0, -4.0).astype(np.float32)
    labels = dynamics.compute_masks(dP, cellprob)
    shapes.object_table(labels, cellprob=1 / (1 + np.exp(-cellprob)))
    shapes.contours(labels, simplify=0.5)
    return time.perf_counter() - t0


def serve_main() -> int:
    """Persistent worker: one JSON request per stdin line, events on stdout; exits with stdin or its parent."""
    global _NETWORK_CACHE
    _NETWORK_CACHE = {}
    emit = Emitter()
    handler = _EventLogHandler(emit)
    logging.getLogger("trackpose").addHandler(handler)
    parent = os.getppid()

    def watch_parent():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)
    threading.Thread(target=watch_parent, daemon=True).start()
    busy = threading.Lock()  # a request that arrives during the warm-up waits for it

    def warm():
        with busy:
            try:
                log.debug("warm-up took %.2f s", warm_up())
            except Exception:  # only an optimisation: a real request will report any real problem
                log.debug("warm-up failed", exc_info=True)
    threading.Thread(target=warm, daemon=True).start()
    emit("ready", version=__version__, protocol=PROTOCOL_VERSION)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
            cmd = request.get("cmd")
        except (json.JSONDecodeError, AttributeError):
            emit("error", message=f"not a JSON request: {line[:200]}", kind="protocol")
            continue
        if cmd == "quit":
            break
        if cmd == "ping":
            emit("pong", version=__version__)
            continue
        if cmd != "run" or not isinstance(request.get("job"), str):
            emit("error", message=f"unknown request {line[:200]}; expected {{\"cmd\": \"run\", \"job\": DIR}}",
                 kind="protocol")
            continue
        t0 = time.perf_counter()
        try:
            with busy:
                summary = run_job(Path(request["job"]), emit=emit, workers=1)
            emit("done", **summary, seconds=round(time.perf_counter() - t0, 3))
        except TrackposeError as exc:
            emit("error", message=str(exc), kind=exc.kind)
        except Exception as exc:
            emit("error", message=f"internal error: {exc.__class__.__name__}: {exc}", kind="engine")
    return 0
