"""Every engine setting, declared once: name, type, default, allowed range and one line of help.

The rest of trackpose derives from this table: :func:`trackpose.segment`'s keyword defaults, the validation of
``job.json`` (the bridge), the options and help of both command lines, the options table in ``docs/settings.md``
(``trackpose settings --markdown``) and the TrackMate side's parity test (``trackpose settings --json``, compared
with Java's ``DetectorKeys`` by a JUnit test). Defaults equal cellpose 3.1's where cellpose has the option.

This module imports nothing heavy (no numpy, no torch): the command line reads it to answer ``--help``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .errors import InputError

INF = math.inf


@dataclass(frozen=True)
class Setting:
    """One engine setting.

    ``kind`` is ``"float"``, ``"int"``, ``"bool"``, ``"str"`` or ``"pair"`` (two numbers). ``minimum``/``maximum``
    are inclusive bounds (``None``: unbounded; ``exclusive_min``: the minimum itself is refused). ``optional``:
    ``None`` is allowed and means "automatic"; on the command line and in ``job.json`` that is written ``0``
    (``zero_means``). ``cli``: the command-line flag (for a flag that sets a bool to False, ``"--no-..."``).
    ``job_key``: the name in ``job.json``'s settings (``None``: not a job setting). ``trackmate_key`` and
    ``trackmate_default``: TrackMate's key and the value its panel starts with, when that differs (the reason is
    in ``trackmate_note``). ``keywords``: words a number setting also takes (anisotropy's ``"auto"``).
    """

    name: str
    kind: str
    default: Any
    help: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    exclusive_min: bool = False
    choices: Optional[Sequence[str]] = None
    optional: bool = False
    zero_means: Optional[str] = None
    cli: Optional[str] = None
    group: str = "segmentation"
    segment: bool = True
    job_key: Optional[str] = None
    trackmate_key: Optional[str] = None
    trackmate_default: Any = None
    trackmate_note: Optional[str] = None
    keywords: Sequence[str] = ()

    @property
    def tm_default(self):
        """The default TrackMate's panel starts with."""
        if self.trackmate_default is not None:
            return self.trackmate_default
        if self.optional and self.default is None:
            return 0 if self.kind == "int" else 0.0
        return self.default

    def range_text(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        words = "".join(f" or {w!r}" for w in self.keywords)
        return self._number_range_text() + words

    def _number_range_text(self) -> str:
        lo = None if self.minimum is None or self.minimum == -INF else _num(self.minimum)
        hi = None if self.maximum is None or self.maximum == INF else _num(self.maximum)
        if lo is not None and hi is not None:
            return f"{lo} to {hi}" if not self.exclusive_min else f"above {lo}, at most {hi}"
        if lo is not None:
            return f"above {lo}" if self.exclusive_min else f"at least {lo}"
        if hi is not None:
            return f"at most {hi}"
        return "any finite value" if self.kind in ("float", "pair") else "any"

    def check(self, value, source: str = "") -> Any:
        """``value`` if it is allowed (ints accepted for floats, as float), else an InputError naming the setting,
        the value and the range. ``None`` passes for optional settings."""
        where = f"{source}: " if source else ""
        if value is None:
            if self.optional:
                return None
            raise InputError(f"{where}{self.name} must be given ({self.range_text()}), got None")
        if isinstance(value, str) and value in self.keywords:
            return value
        if self.kind == "bool":
            if not isinstance(value, bool) and type(value).__name__ != "bool_":
                raise InputError(f"{where}{self.name} must be true or false, got {value!r}")
            return bool(value)
        if self.kind == "str":
            if not isinstance(value, str):
                raise InputError(f"{where}{self.name} must be a text, got {value!r}")
            if self.choices and value not in self.choices:
                raise InputError(f"{where}{self.name} must be {self.range_text()}, got {value!r}")
            return value
        if self.kind == "pair":
            try:
                pair = tuple(value)
            except TypeError:
                pair = ()
            if len(pair) != 2:
                raise InputError(f"{where}{self.name} must be two numbers, got {value!r}")
            return tuple(self._number(v, where, "float") for v in pair)
        return self._number(value, where, self.kind)

    def _number(self, value, where: str, kind: str):
        if isinstance(value, bool) or not isinstance(value, (int, float)) and not _is_numpy_number(value):
            raise InputError(f"{where}{self.name} must be {'an integer' if kind == 'int' else 'a number'} "
                             f"({self.range_text()}), got {value!r}")
        if kind == "int":
            if isinstance(value, float) or type(value).__name__.startswith("float"):
                if not math.isfinite(value) or value != int(value):
                    raise InputError(f"{where}{self.name} must be an integer ({self.range_text()}), got {value!r}")
            value = int(value)
        else:
            value = float(value)
            if math.isnan(value) or math.isinf(value) and value not in (self.minimum, self.maximum):
                raise InputError(f"{where}{self.name} must be a finite number ({self.range_text()}), got {value}")
        below = self.minimum is not None and (value < self.minimum or self.exclusive_min and value == self.minimum)
        above = self.maximum is not None and value > self.maximum
        if below or above:
            raise InputError(f"{where}{self.name} must be {self.range_text()}, got {_num(value)}")
        return value

    def to_json(self) -> dict:
        def bound(b):
            return None if b is None or math.isinf(b) else b
        return {"name": self.name, "type": self.kind, "default": _jsonable(self.default),
                "min": bound(self.minimum), "max": bound(self.maximum), "exclusive_min": self.exclusive_min,
                "choices": list(self.choices) if self.choices else None, "optional": self.optional,
                "zero_means": self.zero_means, "help": self.help, "cli": self.cli, "group": self.group,
                "job_key": self.job_key, "trackmate_key": self.trackmate_key,
                "trackmate_default": _jsonable(self.tm_default) if self.trackmate_key else None,
                "trackmate_note": self.trackmate_note, "keywords": list(self.keywords)}


def _is_numpy_number(value) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "dtype") and value.dtype.kind in "iuf"


def _num(x) -> str:
    return str(int(x)) if isinstance(x, float) and x.is_integer() else str(x)


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def _s(name, kind, default, help, **kw) -> Setting:
    kw.setdefault("cli", "--" + name.replace("_", "-"))
    return Setting(name, kind, default, help, **kw)


#: Every engine setting, in the order of the docs' table and the command line's help groups.
SETTINGS: tuple[Setting, ...] = (
    # ---- model and scale
    _s("model", "str", "trackpose_default", "model name (trackpose_default, cyto3, nuclei, ...) or weight file", group="model and scale", job_key="model",
       trackmate_key="CELLPOSE_MODEL"),
    _s("diameter", "float", None, "typical object diameter in pixels; 0 = estimate it per image with the model's "
       "size model; not given: estimate when the model has a size model, else its training diameter",
       minimum=0.0, maximum=INF, optional=True, zero_means="estimate with the size model",
       group="model and scale", job_key="diameter", trackmate_key="CELL_DIAMETER", trackmate_default=30.0,
       trackmate_note="TrackMate's diameter is in the image's physical units (converted to pixels with the "
                      "calibration); its panel starts at 30"),
    _s("chan", "int", 0, "channel to segment, counted from 1; 0 = grayscale (average of all channels)",
       minimum=0, group="model and scale", job_key="channels[0]", trackmate_key="TARGET_CHANNEL"),
    _s("chan2", "int", 0, "optional nuclear channel, counted from 1; 0 = none", minimum=0, group="model and scale",
       job_key="channels[1]", trackmate_key="OPTIONAL_CHANNEL_2"),
    # ---- what counts as a cell
    _s("flow_threshold", "float", 0.4, "maximum flow error per object (2D); raise it to keep more, odd-shaped "
       "objects; 0 keeps all", minimum=0.0, maximum=3.0, group="what counts as a cell", job_key="flow_threshold",
       trackmate_key="FLOW_THRESHOLD"),
    _s("cellprob_threshold", "float", 0.0, "cell-probability logit cut-off; lower it to find more and larger "
       "objects", minimum=-6.0, maximum=6.0, group="what counts as a cell", job_key="cellprob_threshold",
       trackmate_key="CELL_PROB_THRESHOLD"),
    _s("min_size", "int", 15, "remove objects smaller than this many pixels (voxels in 3D); -1 keeps all",
       minimum=-1, group="what counts as a cell", job_key="min_size", trackmate_key="MIN_SIZE"),
    _s("max_size", "int", None, "remove objects larger than this many pixels (voxels); 0 = no limit",
       minimum=0, optional=True, zero_means="no limit", group="what counts as a cell", job_key="max_size",
       trackmate_key="MAX_SIZE"),
    _s("max_size_fraction", "float", 0.4, "remove objects larger than this fraction of the image",
       minimum=0.0, cli=None, group="what counts as a cell"),
    _s("exclude_on_edges", "bool", False, "remove objects touching the image border",
       group="what counts as a cell"),
    _s("resample", "bool", True, "follow the flows at the image's own size (smoother outlines); off: at the "
       "network's scale (faster, coarser)", cli="--no-resample", group="what counts as a cell",
       job_key="resample", trackmate_key="RESAMPLE"),
    _s("niter", "int", None, "flow-following steps; 0 = automatic (200, scaled by the resize); raise to ~2000 "
       "for long thin cells", minimum=0, maximum=100000, optional=True, zero_means="automatic",
       group="what counts as a cell", job_key="niter", trackmate_key="NITER"),
    # ---- 3D stacks
    _s("do_3d", "bool", False, "true 3D: run the network on XY, XZ and YZ slices and find 3D objects",
       group="3D stacks", job_key="do_3d", trackmate_key="MODE_3D"),
    _s("stitch_threshold", "float", 0.0, "2D+Z: segment each plane and link objects across planes whose overlap "
       "(IoU) exceeds this (e.g. 0.25); 0 = off", minimum=0.0, maximum=1.0, group="3D stacks",
       job_key="stitch_threshold", trackmate_key="IOU_THRESHOLD", trackmate_default=0.25,
       trackmate_note="TrackMate switches stitching on with DO2DZ; IOU_THRESHOLD is the IoU it then uses"),
    _s("stitch_split", "float", 0.1, "2D+Z: cut a stitched object where its mean intensity along Z dips this "
       "fraction below the brighter planes on both sides (nuclei chained to the ones above them); 0 = off "
       "(cellpose's stitching)", minimum=0.0, maximum=0.99, group="3D stacks", job_key="stitch_split",
       trackmate_key="STITCH_SPLIT"),
    _s("stitch_trim", "float", 0.6, "2D+Z: drop the planes at the top and bottom of a stitched object that are "
       "dimmer than this fraction of its brightest plane (out-of-focus light); 0 = off (cellpose's stitching)",
       minimum=0.0, maximum=0.99, group="3D stacks", job_key="stitch_trim", trackmate_key="STITCH_TRIM"),
    _s("min_mean_cellprob", "float", 2.0, "3D mode: drop objects whose mean cell-probability logit (summed over the "
       "three views, the scale cellprob_threshold has in 3D) is below this: faint blobs in haze and out-of-focus "
       "light; 0 = off (cellpose's 3D mode)", minimum=0.0, maximum=18.0, group="3D stacks",
       job_key="min_mean_cellprob", trackmate_key="MIN_MEAN_CELLPROB"),
    _s("stitch_min_mean_cellprob", "float", 1.0, "2D+Z: drop stitched objects whose mean cell-probability logit "
       "(one view's, the scale cellprob_threshold has in 2D) is below this: faint blobs in haze and out-of-focus "
       "light; 0 = off (cellpose's stitching, with stitch_split and stitch_trim 0)", minimum=0.0, maximum=6.0,
       group="3D stacks", job_key="stitch_min_mean_cellprob", trackmate_key="STITCH_MIN_MEAN_CELLPROB"),
    _s("anisotropy", "float", None, "Z spacing / pixel size for 3D mode; 0 = from the image's calibration, else "
       "auto; auto = told from the stack's objects (round ones, e.g. nuclei; 0.77-1.3 taken as 1)", minimum=0.0,
       maximum=100.0, optional=True,
       zero_means="from the calibration", group="3D stacks", job_key="anisotropy", trackmate_key="ANISOTROPY",
       keywords=("auto",)),
    _s("flow3d_smooth", "float", 0.0, "Gaussian smoothing (sigma, pixels) of 3D flows for smoother objects; 0 = off",
       minimum=0.0, maximum=100.0, group="3D stacks", job_key="flow3d_smooth", trackmate_key="FLOW_3D_SMOOTH"),
    # ---- image adjustments
    _s("normalize", "bool", True, "rescale intensities between percentiles; off: the input is already in 0..1",
       cli="--no-norm", group="image adjustments"),
    _s("percentiles", "pair", (1.0, 99.0), "intensity percentiles mapped to 0 and 1", minimum=0.0, maximum=100.0,
       group="image adjustments"),
    _s("lowhigh", "pair", None, "fixed intensities mapped to 0 and 1 instead of percentiles", optional=True,
       group="image adjustments"),
    _s("invert", "bool", False, "dark cells on a bright background", group="image adjustments"),
    _s("gamma", "float", 1.0, "gamma on normalised intensities (1 = off)", minimum=0.0, maximum=100.0,
       exclusive_min=True, group="image adjustments"),
    _s("wiener_noise", "float", 0.0, "Wiener smoothing noise level (0 = off; higher = smoother)", minimum=0.0,
       maximum=1.0, cli="--smooth", group="image adjustments"),
    # ---- speed and hardware
    _s("batch_size", "int", 8, "tiles per network pass, counted in bsize x bsize tiles", minimum=1, maximum=1024,
       group="speed and hardware", job_key="batch_size", trackmate_key="BATCH_SIZE"),
    _s("bsize", "int", 224, "tile size in pixels (multiple of 16)", minimum=16, maximum=4096,
       group="speed and hardware"),
    _s("tile_overlap", "float", 0.1, "fraction of tile overlap", minimum=0.0, maximum=1.0,
       group="speed and hardware"),
    _s("tiling", "str", "compact", "tile layout: compact = fewer pixels through the network (in 3D mode also ZX/ZY "
       "slices without cellpose's 8-pixel margins); cellpose = cellpose's tiles and padding, for outputs that match "
       "cellpose tile for tile", choices=("compact", "cellpose"),
       group="speed and hardware"),
    _s("augment", "bool", False, "average over flipped tiles (slower, smoother)", group="speed and hardware"),
    _s("bfloat16", "bool", False, "run the network in bfloat16: ~1.7x faster on CPUs with AVX512-BF16/AMX and "
       "recent GPUs, nearly the same masks (off: float32, cellpose's numbers)", group="speed and hardware",
       job_key="bfloat16", trackmate_key="BFLOAT16"),
    _s("gpu", "bool", False, "use a CUDA or Apple GPU when available", group="speed and hardware",
       job_key="use_gpu", trackmate_key="USE_GPU", trackmate_default=True,
       trackmate_note="TrackMate's panel asks for the GPU by default; the engine falls back to the CPU without one"),
    # ---- outputs of the bridge (not segment's)
    _s("smoothing", "float", 0.0, "extra smoothing of 3D surfaces (meshes), on top of simplify_contours, at about "
       "this scale (TrackMate's SMOOTHING: physical units; job.json: pixels); 0 = none", minimum=0.0, maximum=INF, cli=None,
       segment=False, group="shapes", job_key="smoothing", trackmate_key="SMOOTHING"),
    _s("simplify_contours", "bool", True, "shapes that measure like the object: 2D outlines smoothed to sub-pixel "
       "precision and simplified (TrackMate's area, perimeter and circularity); 3D surfaces without the voxel "
       "staircase, decimated to half (TrackMate 9's volume, surface area and sphericity); off: the exact pixel / "
       "voxel boundary", cli=None, segment=False, group="shapes", job_key="simplify_contours",
       trackmate_key="SIMPLIFY_CONTOURS"),
    _s("workers", "int", 1, "parallel engine processes over frames", minimum=1, maximum=256, cli=None,
       segment=False, group="shapes", job_key="workers", trackmate_key="WORKERS"),
)

BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
assert len(BY_NAME) == len(SETTINGS), "a setting is declared twice"

#: name -> default, for every setting (``segment``'s keyword defaults read this)
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}


def default(name: str):
    return BY_NAME[name].default


def check(name: str, value, source: str = ""):
    """Checks one setting against its declaration; returns the (normalised) value or raises InputError."""
    return BY_NAME[name].check(value, source)


# ------------------------------------------------------------------------------------------------ job.json

#: job.json's settings keys in the order the protocol documents them
JOB_KEYS: tuple[str, ...] = ("model", "channels") + tuple(
    s.job_key for s in SETTINGS if s.job_key and not s.job_key.startswith("channels") and s.job_key != "model")


def job_defaults() -> dict:
    """job.json settings and their defaults (optional settings write "automatic" as 0)."""
    out = {}
    for key in JOB_KEYS:
        if key == "channels":
            out[key] = [BY_NAME["chan"].default, BY_NAME["chan2"].default]
            continue
        s = next(s for s in SETTINGS if s.job_key == key)
        out[key] = s.tm_default if s.optional and s.default is None else s.default
    return out


def check_job_settings(raw: dict, source: str) -> dict:
    """Validates job.json's ``settings`` object (unknown keys, types, ranges) and fills in defaults; returns the
    settings with job.json's keys. Every message names the key."""
    if not isinstance(raw, dict):
        raise InputError(f"{source}: 'settings' must be an object")
    unknown = sorted(set(raw) - set(JOB_KEYS))
    if unknown:
        raise InputError(f"{source}: unknown setting(s) {', '.join(map(str, unknown))}; known: {', '.join(JOB_KEYS)}")
    out = job_defaults()
    for key, value in raw.items():
        if key == "channels":
            if not isinstance(value, list) or len(value) != 2:
                raise InputError(f"{source}: setting 'channels' must be two integers, got {value!r}")
            out[key] = [BY_NAME["chan"].check(value[0], f"{source}: channels[0]"),
                        BY_NAME["chan2"].check(value[1], f"{source}: channels[1]")]
            continue
        s = next(s for s in SETTINGS if s.job_key == key)
        if s.optional and value is None:
            value = 0
        out[key] = s.check(value, f"{source}: setting {key!r}")
    return out


# ------------------------------------------------------------------------------------------------ documents

def as_json() -> str:
    return json.dumps({"settings": [s.to_json() for s in SETTINGS]}, indent=1)


def _cell(value) -> str:
    if value is None:
        return "automatic"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, tuple):
        return " ".join(_num(v) for v in value)
    return _num(value) if isinstance(value, float) else str(value)


def as_markdown() -> str:
    """The options table of docs/settings.md."""
    lines = ["# Settings reference", "",
             "Generated from `python/trackpose/settings.py` by `trackpose settings --markdown` (a test checks that "
             "this page is current). The same declaration sets `trackpose.segment`'s keyword defaults, validates "
             "`job.json` and builds both command lines; TrackMate's `DetectorKeys` is checked against it.", "",
             "| setting (Python) | command line | job.json | TrackMate key | default | allowed | what it does |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for s in SETTINGS:
        default = _cell(s.default)
        if s.optional and s.zero_means:
            default += f" (0 = {s.zero_means})"
        tm = f"`{s.trackmate_key}`" if s.trackmate_key else ""
        if s.trackmate_key and s.trackmate_default is not None:
            tm += f" (starts at {_cell(s.trackmate_default)}: {s.trackmate_note})"
        lines.append(f"| `{s.name}` | {f'`{s.cli}`' if s.cli else ''} | {f'`{s.job_key}`' if s.job_key else ''} "
                     f"| {tm} | {default} | {s.range_text()} | {s.help} |")
    return "\n".join(lines) + "\n"
