"""Segmenting image files: what both command lines (``trackpose segment`` and ``trackpose-cellpose``) share.

Reads each file with its calibration, picks the channel and Z axes from the file's own axes, segments each time
point, and writes ``<stem>_cp_masks.tif`` (or ``.png``) with the input's calibration. A file that fails is
reported and the others still run.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from . import io
from .errors import Cancelled, InputError, TrackposeError, raise_if_cancelled
from .segmentation import segment

log = logging.getLogger("trackpose")


class _Lines:
    """A file for tqdm that hands each refreshed bar, as one line, to a function (a logger: one log line per
    update, as cellpose's tqdm lines appear in its log)."""

    def __init__(self, emit: Callable[[str], None]):
        self.emit = emit

    def write(self, text: str) -> None:
        text = text.strip("\r\n")
        if text:
            self.emit(text)

    def flush(self) -> None:
        pass


class Progress:
    """A tqdm progress bar (``NN%|####      | done/total [elapsed<remaining]``, the lines TrackMate-Cellpose
    parses for cellpose's progress) on a stream (stderr by default), or one line per update to ``emit``.

    Updates at most every ``interval`` seconds plus the final one, so logs stay short.
    """

    def __init__(self, total: int, label: str = "", stream=None, interval: float = 0.5, emit: Callable = None):
        from tqdm import tqdm
        stream = stream if stream is not None else sys.stderr
        tty = emit is None and hasattr(stream, "isatty") and stream.isatty()
        if emit is not None:
            out = _Lines(emit)
        elif tty:
            out = stream
        else:  # a log file or pipe: one line per update instead of carriage returns
            out = _Lines(lambda line: (stream.write(line + "\n"), stream.flush()))
        self.bar = tqdm(total=max(1, total), desc=label.strip() or None, file=out, mininterval=interval,
                        ascii=" #", leave=True,
                        bar_format="{desc} {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")

    def update(self, done: int, total: Optional[int] = None) -> None:
        if total and total != self.bar.total:
            self.bar.total = max(1, total)
        if self.bar.disable:
            return
        self.bar.n = min(done, self.bar.total)
        if self.bar.n >= self.bar.total:
            self.bar.close()  # draws the final state once
        else:
            self.bar.update(0)  # tqdm redraws when mininterval has passed


def axes_arguments(meta: io.ImageMeta) -> tuple[Optional[int], Optional[int], bool]:
    """(channel_axis, z_axis, has_time) for an array in ``meta.axes`` order with the T axis removed."""
    axes = meta.axes.replace("T", "")
    channel_axis = axes.index("C") if "C" in axes else (axes.index("S") if "S" in axes else None)
    z_axis = axes.index("Z") if "Z" in axes else None
    return channel_axis, z_axis, "T" in meta.axes


def anisotropy_from_meta(meta: io.ImageMeta) -> Union[float, str]:
    """Z spacing / XY pixel size from the file's calibration; ``"auto"`` (told from the stack's objects) when it
    has none. The choice is logged."""
    value = meta.anisotropy
    if value is None or not np.isfinite(value) or value <= 0:
        log.warning("%s: no Z spacing / pixel size in the file; 3D mode tells the Z step from the stack's objects "
                    "(--anisotropy auto; it reads flat cells as a larger step). Pass --anisotropy Z step / pixel "
                    "size when it is known, 1 for a stack sampled as finely in Z as in XY", meta.source or "image")
        return "auto"
    log.info("%s: anisotropy %.3f from the file's calibration (Z spacing %g / pixel size %g %s); pass "
                "--anisotropy to override", meta.source or "image", value, meta.z_spacing, meta.pixel_size_x,
                meta.unit or "")
    return float(value)


@dataclass
class FileOutcome:
    path: Path
    output: Optional[Path] = None
    n_objects: int = 0
    seconds: float = 0.0
    error: Optional[str] = None
    result: object = field(default=None, repr=False)


def output_path(image_path: Path, savedir: Optional[Path], suffix: str = "_cp_masks", ext: str = ".tif") -> Path:
    folder = savedir if savedir is not None else image_path.parent
    return folder / f"{io.image_stem(image_path)}{suffix}{ext}"


def check_destination(folder: Path) -> None:
    """Creates ``folder`` if needed and checks that files can be written in it; an InputError that says what to
    do otherwise (raised before any work, so a bad --savedir costs nothing)."""
    if folder.exists() and not folder.is_dir():
        raise InputError(f"output folder {folder} is a file; choose a folder with --savedir")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {folder} ({exc.strerror or exc}); choose another "
                         "with --savedir") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write in the output folder {folder} (no permission or a read-only file system); "
                         "choose another with --savedir")


def segment_file(path: Path, settings: dict, savedir: Optional[Path] = None, png: bool = False,
                 save_flows: bool = False, progress: Optional[Callable[[int, int], None]] = None,
                 save_overlay: bool = False) -> FileOutcome:
    """Segment one image file and write its label image; raises TrackposeError on failure."""
    t0 = time.perf_counter()
    image, meta = io.read_image(path)
    channel_axis, z_axis, has_time = axes_arguments(meta)
    kwargs = dict(settings)
    kwargs.setdefault("channel_axis", channel_axis)
    kwargs.setdefault("z_axis", z_axis)
    if kwargs.get("channel_axis") is None:
        kwargs.pop("channel_axis")
    if kwargs.get("z_axis") is None:
        kwargs.pop("z_axis")
    if kwargs.get("do_3d") and kwargs.get("anisotropy") is None:
        kwargs["anisotropy"] = anisotropy_from_meta(meta)
    out = output_path(path, savedir, ext=".png" if png else ".tif")
    if out.resolve() == path.resolve():
        raise InputError(f"output {out} would overwrite the input image; choose another --savedir")
    check_destination(out.parent)  # before the network runs, not after
    frames = image if has_time else image[None]
    if png and (has_time or image.ndim > 2 and kwargs.get("z_axis") is not None):
        raise InputError(f"{path}: PNG holds a single 2D label image; use TIFF output for stacks and movies")
    results = [segment(frame, progress=progress, **kwargs) for frame in frames]
    masks = np.stack([r.masks for r in results]) if has_time else results[0].masks
    if png:
        if masks.ndim != 2:
            raise InputError(f"{path}: PNG holds a single 2D label image; use TIFF output for stacks and movies")
        io.write_png_labels(out, masks, meta)
    else:
        axes = ("T" if has_time else "") + ("Z" if masks.ndim - has_time == 3 else "") + "YX"
        io.write_labels(out, masks, meta, axes=axes)
    if save_flows:
        for r_i, r in enumerate(results):
            tag = f"_t{r_i}" if has_time else ""
            io.write_tiff(output_path(path, savedir, f"{tag}_flows"), r.flows, meta,
                          axes="C" + ("Z" if r.flows.ndim == 4 else "") + "YX")
            io.write_tiff(output_path(path, savedir, f"{tag}_cellprob"), r.cellprob, meta,
                          axes=("Z" if r.cellprob.ndim == 3 else "") + "YX")
    if save_overlay:
        _write_overlay(output_path(path, savedir, "_cp_overlay", ".png"), image, masks, meta, has_time)
    n = int(max(r.n_objects for r in results))
    return FileOutcome(path=path, output=out, n_objects=n, seconds=time.perf_counter() - t0,
                       result=results[0] if not has_time else results)


def segment_files(paths: Sequence[Path], settings: dict, savedir: Optional[Path] = None, png: bool = False,
                  save_flows: bool = False, report: Callable[[str], None] = print,
                  progress_stream=None, progress_emit: Callable = None,
                  save_overlay: bool = False, skip_existing: bool = False, cancel=None) -> list[FileOutcome]:
    """Segment many files; each failure is reported and the rest still run. With ``skip_existing``, images whose
    label image is already there are skipped: outputs are written to a temporary name and renamed when whole, so
    an existing one is complete (a run that was interrupted resumes where it stopped). ``cancel`` (a
    threading.Event) is checked before each file and at the end: once set, its reason (Cancelled) is raised."""
    outcomes = []
    bar = Progress(len(paths), label="images ", stream=progress_stream, emit=progress_emit) if len(paths) > 1 \
        else None
    for k, path in enumerate(paths):
        raise_if_cancelled(cancel)
        existing = output_path(Path(path), savedir, ext=".png" if png else ".tif")
        if skip_existing and existing.is_file():
            report(f"{path}: skipped, {existing} exists")
            outcomes.append(FileOutcome(path=Path(path), output=existing))
            if bar:
                bar.update(k + 1)
            continue
        tile_bar = None if bar else Progress(1, label="tiles ", stream=progress_stream, emit=progress_emit)
        try:
            outcome = segment_file(Path(path), settings, savedir=savedir, png=png, save_flows=save_flows,
                                   progress=tile_bar.update if tile_bar else None, save_overlay=save_overlay)
            report(f"{path}: {outcome.n_objects} objects{_diameter_text(outcome)} -> {outcome.output} "
                   f"({outcome.seconds:.1f} s)")
        except Cancelled:
            raise
        except TrackposeError as exc:
            outcome = FileOutcome(path=Path(path), error=str(exc))
            report(f"{path}: FAILED: {exc}")
        except MemoryError:
            outcome = FileOutcome(path=Path(path), error="out of memory; try a smaller --batch-size, or crop the "
                                  "image")
            report(f"{path}: FAILED: {outcome.error}")
        except OSError as exc:  # writing the outputs failed (disk full, permissions): this file only
            outcome = FileOutcome(path=Path(path), error=f"cannot write the outputs: {exc}")
            report(f"{path}: FAILED: {outcome.error}")
        outcomes.append(outcome)
        if bar:
            bar.update(k + 1)
    raise_if_cancelled(cancel)  # a signal's exception may have been dropped where it was raised
    return outcomes


def _write_overlay(out: Path, image: np.ndarray, masks: np.ndarray, meta: io.ImageMeta, has_time: bool) -> None:
    """``<stem>_cp_overlay.png``: the image in gray with the outlines found (planes or frames as a montage)."""
    from . import overlay
    channel_axis, z_axis, _ = axes_arguments(meta)
    gray = np.asarray(image, np.float32)
    if channel_axis is not None:  # channels are averaged for the picture
        gray = gray.mean(axis=channel_axis + (1 if has_time else 0))
    if has_time and masks.ndim == 4:  # a movie of stacks: the middle plane of each frame
        middle = masks.shape[1] // 2
        gray, masks = gray[:, middle], masks[:, middle]
    io.write_png(out, overlay.stack_overlay(gray, masks))


def _diameter_text(outcome: FileOutcome) -> str:
    """" at diameter 23.4 px (estimated)": the diameter used, so that a user can pass it again with --diameter."""
    results = outcome.result if isinstance(outcome.result, list) else [outcome.result]
    diameters = sorted({round(float(r.diameter), 1) for r in results if r is not None})
    if not diameters:
        return ""
    estimated = any(r.diameter_style is not None for r in results if r is not None)
    text = "/".join(f"{d:.1f}" for d in diameters[:3]) + ("/..." if len(diameters) > 3 else "")
    return f" at diameter {text} px" + (" (estimated)" if estimated else "")


def collect_images(inputs: Sequence[str]) -> list[Path]:
    """Files as given, and the images inside folders given (outputs such as ``*_cp_masks`` skipped)."""
    paths = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = io.find_images(p)
            if not found:
                raise InputError(f"folder {p} holds no images ({', '.join(io.IMAGE_SUFFIXES)})")
            paths.extend(found)
        elif p.exists():
            paths.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    return paths
