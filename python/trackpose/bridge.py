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
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np

from . import __version__, io
from .errors import (Cancelled, InputError, Interrupted, TrackposeError, install_stop_signals,
                     raise_if_cancelled)
from .settings import check_job_settings

log = logging.getLogger("trackpose")

PROTOCOL_VERSION = 1

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
    job = _load_json_object(path)
    version = job.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputError(f"{path}: 'version' must be a positive integer, got {version!r}")
    if version > PROTOCOL_VERSION:
        raise InputError(f"{path}: job version {version} is newer than this engine understands "
                         f"({PROTOCOL_VERSION}); update trackpose in the Python environment (trackpose "
                         f"{__version__})")
    settings = check_job_settings(job.get("settings", {}), str(path))
    return {"settings": settings, "frames": _check_frames(job.get("frames"), path),
            "calibration": _check_calibration(job.get("calibration"), path),
            "outputs": _check_outputs(job.get("outputs"), path)}


#: job.json is a few hundred bytes; anything this large is not a job (e.g. a link to /dev/zero)
MAX_JOB_BYTES = 1 << 20
#: frame numbers as TrackMate has them: int32
MAX_FRAME = 2 ** 31 - 1
OUTPUTS = {"labels": True, "shapes": True, "meshes": False}


def _load_json_object(path: Path) -> dict:
    """job.json as a dict; only a regular file of bounded size is read (no FIFO, device or huge file)."""
    try:
        if not path.is_file():
            if path.exists():
                raise InputError(f"{path} is not a regular file; the caller must write job.json as a file")
            raise FileNotFoundError(path)
        with open(path, "rb") as f:
            data = f.read(MAX_JOB_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path} is missing; the caller must write job.json before starting the engine") from None
    if len(data) > MAX_JOB_BYTES:
        raise InputError(f"{path} is larger than {MAX_JOB_BYTES // 1024} KiB; that is not a job description")
    try:
        job = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path} is not valid JSON ({exc})") from None
    except RecursionError:
        raise InputError(f"{path} is nested too deeply to be a job description") from None
    if not isinstance(job, dict):
        raise InputError(f"{path}: expected a JSON object")
    return job


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _check_frames(frames, path: Path):
    if frames is None:
        return None
    if not isinstance(frames, list) or not all(isinstance(f, int) and not isinstance(f, bool) for f in frames):
        raise InputError(f"{path}: 'frames' must be a list of integers (the frame numbers of input.tif's time "
                         f"points), got {str(frames)[:80]}")
    if any(not 0 <= f <= MAX_FRAME for f in frames):
        raise InputError(f"{path}: 'frames' must be frame numbers between 0 and {MAX_FRAME}")
    if len(set(frames)) != len(frames):
        raise InputError(f"{path}: 'frames' lists a frame twice")
    return frames


def _check_calibration(calibration, path: Path) -> dict:
    """``{"x", "y", "z": positive finite numbers or null, "unit": text or null}``."""
    if calibration is None:
        return {}
    if not isinstance(calibration, dict):
        raise InputError(f"{path}: 'calibration' must be an object like {{\"x\": 0.2, \"y\": 0.2, \"z\": 1.0, "
                         f"\"unit\": \"micron\"}}, got {str(calibration)[:80]}")
    unknown = sorted(set(calibration) - {"x", "y", "z", "unit"})
    if unknown:
        raise InputError(f"{path}: unknown calibration key(s) {', '.join(map(str, unknown))}; known: x, y, z, unit")
    for key in ("x", "y", "z"):
        value = calibration.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 1e-12 <= value <= 1e12:
            raise InputError(f"{path}: calibration {key!r} must be a positive pixel size (finite, 1e-12..1e12) or "
                             f"null, got {value!r}")
    unit = calibration.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise InputError(f"{path}: calibration 'unit' must be a text such as \"micron\", got {unit!r}")
    return calibration


def _check_outputs(outputs, path: Path) -> dict:
    if outputs is None:
        return dict(OUTPUTS)
    if not isinstance(outputs, dict):
        raise InputError(f"{path}: 'outputs' must be an object like {{\"labels\": true, \"shapes\": true, "
                         f"\"meshes\": false}}, got {str(outputs)[:80]}")
    for key, value in outputs.items():
        if key not in OUTPUTS:
            raise InputError(f"{path}: unknown output {key!r}; known: {', '.join(OUTPUTS)}")
        if not isinstance(value, bool):
            raise InputError(f"{path}: output {key!r} must be true or false, got {value!r}")
    return {**OUTPUTS, **outputs}


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
                  stitch_threshold=settings["stitch_threshold"], stitch_split=settings["stitch_split"],
                  stitch_trim=settings["stitch_trim"], min_mean_cellprob=settings["min_mean_cellprob"],
                  stitch_min_mean_cellprob=settings["stitch_min_mean_cellprob"],
                  flow3d_smooth=settings["flow3d_smooth"],
                  batch_size=settings["batch_size"], gpu=settings["use_gpu"], bfloat16=settings["bfloat16"])
    if settings["do_3d"]:
        if settings["anisotropy"] == "auto" or settings["anisotropy"] > 0:
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
    die_with_parent()
    import torch
    torch.set_num_threads(max(1, threads))
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def die_with_parent() -> None:
    """Ends this process when its parent ends, even by SIGKILL: Linux's parent-death signal where there is one,
    and everywhere a thread that watches the parent's pid (a worker reparented to init would otherwise keep its
    memory and the parent's stdout pipe)."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)
    threading.Thread(target=watch, daemon=True, name="watch-parent").start()


def run_job(folder, emit: Optional[Emitter] = None, workers: Optional[int] = None,
            cancel: Optional[threading.Event] = None) -> dict:
    """Run the job in ``folder``; returns {"objects": N, "frames": n}. Raises TrackposeError on failure, after
    removing every partial output."""
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
    if settings["do_3d"] and not settings["anisotropy"] and meta.anisotropy:  # what the calibration gave
        emit("log", level="info", message=f"3D mode: anisotropy {kwargs['anisotropy']:g} from the image's "
             f"calibration (Z spacing {meta.z_spacing or 1:g} / pixel size {meta.pixel_size_x or 1:g})")
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
                _check_cancel(cancel)
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
        _check_cancel(cancel)  # again: a signal's exception may have been dropped where it was raised
        total = _write_outputs(tmp, folder, labels, probs, frame_ids, meta, settings, job["outputs"], is_volume)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return {"objects": total, "frames": n}


def _check_cancel(cancel: Optional[threading.Event]) -> None:
    raise_if_cancelled(cancel, "the job was cancelled")


def _as_completed(futures, cancel):
    from concurrent.futures import FIRST_COMPLETED, wait
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
        _check_cancel(cancel)
        yield from done


def _write_outputs(tmp: Path, folder: Path, labels, probs, frame_ids, meta, settings, outputs, is_volume) -> int:
    from . import contours, measure, meshes
    stack = np.stack(labels)
    axes = "T" + ("Z" if is_volume else "") + "YX"
    frames_out = []
    total = 0
    spacing = (meta.pixel_size_x or 1.0, meta.pixel_size_y or 1.0, meta.z_spacing or 1.0)
    for i, t in enumerate(frame_ids):
        lab = labels[i]
        table = measure.object_table(lab, cellprob=probs[i])
        objects = []
        if lab.ndim == 2:
            # simplify_contours (TrackMate's "simplify contours"): smooth sub-pixel outlines that measure like the
            # object; off: the exact pixel boundary
            polys = contours.outlines(lab) if settings["simplify_contours"] else contours.contours(lab)
            for row in table:
                poly = polys.get(row["label"])
                if poly is None or len(poly) < 3:
                    continue
                objects.append({**_public(row), "polygon": np.round(poly, 4).tolist()})
        else:
            # simplify_contours (TrackMate's "simplify contours", as its label detector does in 3D): surfaces without
            # the voxel staircase, decimated, that measure like the object; off: the exact voxel surface.
            # smoothing (pixels): more smoothing at about that scale
            surfaces = meshes.surfaces(lab, spacing=(1.0, 1.0, 1.0), simplify=settings["simplify_contours"],
                                       smoothing=settings["smoothing"]) if outputs.get("meshes") else {}
            for row in table:
                obj = _public(row)
                if row["label"] in surfaces:
                    rel = f"meshes/{t}_{row['label']}.ply"
                    with _writing(folder / rel):
                        (tmp / "meshes").mkdir(exist_ok=True)
                        io.write_ply(tmp / rel, *surfaces[row["label"]])
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


def _public(row: dict) -> dict:
    keys = ("label", "centroid", "area", "volume", "bbox", "radius", "quality")
    return {k: row[k] for k in keys if k in row}


# ------------------------------------------------------------------------------------------------ commands

def job_main(folder, workers: Optional[int] = None) -> int:
    """``trackpose job DIR``: run one job folder, events on stdout; returns the exit code."""
    emit = Emitter()
    handler = _EventLogHandler(emit)
    logging.getLogger("trackpose").addHandler(handler)
    cancel = threading.Event()
    install_stop_signals(cancel)
    t0 = time.perf_counter()
    try:
        summary = run_job(Path(folder), emit=emit, workers=workers, cancel=cancel)
    except TrackposeError as exc:
        emit("error", message=str(exc), kind=exc.kind)
        print(f"trackpose job: error: {exc}", file=sys.stderr)
        return _exit_code(exc)
    except KeyboardInterrupt:
        emit("error", message="interrupted", kind="cancelled")
        return 130
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
    from . import contours, dynamics, measure
    t0 = time.perf_counter()
    yy, xx = np.mgrid[:48, :48]
    masks = (((yy - 20) ** 2 + (xx - 18) ** 2) < 100).astype(np.int32)
    masks[((yy - 28) ** 2 + (xx - 34) ** 2 < 64) & (masks == 0)] = 2
    dP = dynamics.masks_to_flows(masks)
    cellprob = np.where(masks > 0, 4.0, -4.0).astype(np.float32)
    labels = dynamics.compute_masks(dP, cellprob)
    measure.object_table(labels, cellprob=1 / (1 + np.exp(-cellprob)))
    contours.outlines(labels)
    return time.perf_counter() - t0


def serve_main() -> int:
    """Persistent worker: one JSON request per stdin line, events on stdout; exits with stdin or its parent."""
    global _NETWORK_CACHE
    _NETWORK_CACHE = {}
    emit = Emitter()
    handler = _EventLogHandler(emit)
    logging.getLogger("trackpose").addHandler(handler)
    die_with_parent()
    busy = threading.Lock()  # a request that arrives during the warm-up waits for it

    def warm():
        with busy:
            try:
                log.debug("warm-up took %.2f s", warm_up())
            except Exception:  # only an optimisation: a real request will report any real problem
                log.debug("warm-up failed", exc_info=True)
    threading.Thread(target=warm, daemon=True).start()
    emit("ready", version=__version__, protocol=PROTOCOL_VERSION)
    stop = threading.Event()
    install_stop_signals(stop)
    try:
        while True:
            line = _read_request(sys.stdin)
            if line is None:
                break
            if not _serve_one(line, emit, busy, stop):
                break
    except (Cancelled, KeyboardInterrupt) as exc:  # SIGTERM (the Java side's cancel) or Ctrl-C
        emit("error", message=str(exc) if isinstance(exc, Cancelled) else "interrupted", kind="cancelled")
        return _exit_code(exc)
    return 0


def _exit_code(exc: BaseException) -> int:
    if isinstance(exc, (Interrupted, KeyboardInterrupt)):
        return 130
    return 3 if isinstance(exc, Cancelled) else 1


#: the longest request line served; a request is a small JSON object
MAX_REQUEST_BYTES = 64 * 1024


class _TooLong(str):
    """A request line that was longer than MAX_REQUEST_BYTES (its head)."""


def _read_request(stream) -> Optional[str]:
    """The next request line (without its newline), a _TooLong, or None at the end of input."""
    line = stream.readline(MAX_REQUEST_BYTES + 1)
    if not line:
        return None
    if len(line) > MAX_REQUEST_BYTES and not line.endswith("\n"):
        head = line[:200]
        while True:  # skip the rest of the line, a bounded chunk at a time
            rest = stream.readline(MAX_REQUEST_BYTES)
            if not rest or rest.endswith("\n"):
                break
        return _TooLong(head)
    return line.strip()


def _serve_one(line: str, emit: Emitter, busy: threading.Lock, stop: Optional[threading.Event] = None) -> bool:
    """Answers one request line with events; False when the worker should stop."""
    if isinstance(line, _TooLong):
        emit("error", message=f"request longer than {MAX_REQUEST_BYTES // 1024} KiB: {line[:80]}...",
             kind="protocol")
        return True
    if not line:
        return True
    try:
        request = json.loads(line)
        cmd = request.get("cmd")
    except (json.JSONDecodeError, AttributeError, RecursionError, ValueError):
        emit("error", message=f"not a JSON request: {line[:200]}", kind="protocol")
        return True
    if cmd == "quit":
        return False
    if cmd == "ping":
        emit("pong", version=__version__)
        return True
    if cmd != "run" or not isinstance(request.get("job"), str):
        emit("error", message=f"unknown request {line[:200]}; expected {{\"cmd\": \"run\", \"job\": DIR}}",
             kind="protocol")
        return True
    t0 = time.perf_counter()
    try:
        with busy:
            summary = run_job(Path(request["job"]), emit=emit, workers=1, cancel=stop)
        emit("done", **summary, seconds=round(time.perf_counter() - t0, 3))
    except TrackposeError as exc:
        if isinstance(exc, Cancelled):
            raise
        emit("error", message=str(exc), kind=exc.kind)
    except MemoryError:
        emit("error", message="out of memory; lower the batch size, or crop the image", kind="memory")
    except Exception as exc:
        emit("error", message=f"internal error: {exc.__class__.__name__}: {exc}", kind="engine")
    return True
