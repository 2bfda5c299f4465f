"""Reading images with their calibration, and writing label images that ImageJ opens.

The first and last steps of the data flow (read -> ... -> write). Formats:

- TIFF through ``tifffile``: ImageJ hyperstacks (axes, ``spacing``, ``unit``, ``finterval``, X/YResolution),
  OME-TIFF (axes, PhysicalSizeX/Y/Z with their units, TimeIncrement) and plain TIFF;
- PNG through ``trackpose.io.png`` (1-16 bit gray, gray+alpha, RGB, RGBA, palette, interlaced or not);
- ``.npy`` (plain arrays only; pickled objects such as cellpose ``_seg.npy`` are refused).

``read_image`` always returns the axes in the canonical order ``T Z C Y X S`` (a subset of it, singleton axes
dropped), so callers never have to look at the file format. Input files are only ever opened read-only; outputs
are written to a temporary name in the destination folder and renamed into place (``os.replace``).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..labels import as_label_image
from ..memory import check_decoded_size
from .png import PNG_SIGNATURE, decode_png, encode_png

logger = logging.getLogger("trackpose.io")  # the name it had as one module

#: File extensions ``read_image`` reads (lower case). JPEG is not among them: no decoder without extra packages.
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".npy")

#: Canonical axis order of every array ``read_image`` returns (tifffile letters; S = samples such as RGB).
CANONICAL_AXES = "TZCYXS"

#: Name endings of files that are outputs, not images (cellpose semantics; see ``find_images``).
OUTPUT_SUFFIXES = ("_masks", "_cp_masks", "_cp_overlay", "_flows", "_cp_output", "_seg",
                   "_flows_0", "_flows_1", "_flows_2", "_cellprob")

#: Largest label id a float32 label image stores exactly (ImageJ has no 32-bit integer type).
MAX_FLOAT32_LABEL = 2 ** 24

_UNIT_ALIASES = {  # spellings of the micrometre, all mapped to ImageJ's "micron"
    "micron", "microns", "um", "µm", "μm", "micrometer", "micrometre", "micrometers", "micrometres",
}
_LENGTH_IN_MICRON = {"m": 1e6, "cm": 1e4, "mm": 1e3, "micron": 1.0, "nm": 1e-3, "pm": 1e-6,
                     "Å": 1e-4, "angstrom": 1e-4, "inch": 25400.0}
_TIME_IN_SECONDS = {"s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6,
                    "min": 60.0, "h": 3600.0, "hour": 3600.0}


@dataclass
class ImageMeta:
    """What ``read_image`` learned about an image besides its pixels.

    Attributes
    ----------
    axes : str
        One letter per array dimension, in canonical order, a subset of ``"TZCYXS"`` (S: RGB(A) samples).
    pixel_size_x, pixel_size_y : float or None
        Physical pixel size along X and Y in ``unit``; None when the file carries no calibration.
    z_spacing : float or None
        Distance between Z planes in ``unit``.
    unit : str or None
        Length unit; micrometres are always spelled ``"micron"`` (ImageJ's spelling).
    time_interval : float or None
        Time between frames in seconds.
    source : str or None
        Path of the file the image was read from (writers refuse to overwrite it).
    """

    axes: str
    pixel_size_x: float | None = None
    pixel_size_y: float | None = None
    z_spacing: float | None = None
    unit: str | None = None
    time_interval: float | None = None
    source: str | None = None

    @property
    def anisotropy(self) -> float | None:
        """Z spacing over X pixel size (cellpose's ``anisotropy``), or None when either is unknown."""
        if self.z_spacing is None or not self.pixel_size_x:
            return None
        return self.z_spacing / self.pixel_size_x

    def calibration_dict(self) -> dict:
        """The calibration as the bridge's ``job.json`` spells it: ``{"x", "y", "z", "unit"}``."""
        return {"x": self.pixel_size_x, "y": self.pixel_size_y, "z": self.z_spacing, "unit": self.unit}

    @classmethod
    def from_calibration_dict(cls, calibration: dict | None, axes: str, source: str | None = None) -> ImageMeta:
        """Build a meta from a bridge ``calibration`` object (missing or null entries stay None)."""
        calibration = calibration or {}

        def number(key):
            value = calibration.get(key)
            return None if value is None else float(value)

        return cls(axes=axes, pixel_size_x=number("x"), pixel_size_y=number("y"), z_spacing=number("z"),
                   unit=_normalise_unit(calibration.get("unit")), source=source)


# ----------------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------------

def read_image(path) -> tuple[np.ndarray, ImageMeta]:
    """Read an image file and its calibration.

    Parameters
    ----------
    path : str or Path
        A TIFF (ImageJ, OME or plain), PNG or ``.npy`` file. The format is recognised by the file's first bytes,
        not by its name. The file is opened read-only and never changed.

    Returns
    -------
    image : ndarray
        Pixels in the file's own dtype, axes in canonical order (see ``ImageMeta.axes``), singleton axes dropped.
    meta : ImageMeta
        Axes and calibration; ``meta.source`` is ``str(path)``.

    Raises
    ------
    InputError
        The file is missing, unreadable, truncated, corrupt, or in a format or flavour not supported.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file. Check the path (and the working folder for relative paths).")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image file. Give one image file, or use the folder option.")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(8)
    except OSError as error:
        raise InputError(f"{path}: cannot be opened for reading ({error.strerror or error}). "
                         "Check the file's permissions.") from error

    if magic[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        image, meta = _read_tiff(path)
    elif magic == PNG_SIGNATURE:
        image, meta = _read_png(path)
    elif magic[:6] == b"\x93NUMPY":
        image, meta = _read_npy(path)
    elif len(magic) == 0:
        raise InputError(f"{path}: the file is empty (0 bytes). It was probably not written completely; "
                         "export it again.")
    else:
        raise InputError(f"{path}: not a TIFF, PNG or .npy file (unrecognised first bytes {magic!r}). "
                         "Convert it to TIFF, for example with Fiji's File > Save As > Tiff.")
    if not image.dtype.isnative:  # big-endian files: hand out native numbers
        image = image.astype(image.dtype.newbyteorder("="))
    return image, meta


def _read_npy(path: Path) -> tuple[np.ndarray, ImageMeta]:
    try:
        image = np.load(path, allow_pickle=False)
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise InputError(f"{path}: holds pickled Python objects (such as a cellpose _seg.npy), not a plain "
                             "array; trackpose does not unpickle files. Save the array with numpy.save, or "
                             "export the image as TIFF.") from error
        raise InputError(f"{path}: not a readable .npy array ({error}); the file may be truncated. "
                         "Save it again with numpy.save.") from error
    except Exception as error:  # numpy parses the header with ast.literal_eval: a damaged header raises
        # SyntaxError, tokenize.TokenError, ... besides OSError and EOFError
        raise InputError(f"{path}: cannot be read as a .npy array ({type(error).__name__}: {error}); the file "
                         "may be truncated or damaged. Save it again with numpy.save.") from error
    if image.dtype.kind not in "buif" or image.ndim < 2:
        raise InputError(f"{path}: holds a {image.ndim}-D {image.dtype} array; an image needs at least 2 numeric "
                         "dimensions (Y, X).")
    return image, ImageMeta(axes=_npy_axes(image.shape), source=str(path))


def _npy_axes(shape: tuple) -> str:
    """Guess axes for a bare array: trailing 3/4 on a wider image is RGB(A) samples, otherwise (T)(Z)YX."""
    if len(shape) >= 3 and shape[-1] in (3, 4) and min(shape[-3:-1]) > 4:
        return default_axes(len(shape) - 1) + "S"
    return default_axes(len(shape))


class _TiffLogCapture(logging.Handler):
    """Collects the errors tifffile logs (and otherwise survives) while parsing a damaged file."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _read_tiff(path: Path) -> tuple[np.ndarray, ImageMeta]:
    import tifffile

    capture = _TiffLogCapture()
    tiff_logger = logging.getLogger("tifffile")
    tiff_logger.addHandler(capture)
    try:
        with tifffile.TiffFile(path, mode="rb") as tif:
            series = _first_series(tif, path)
            _check_decoded_size(tif, series, path)
            image = series.asarray()
            axes = series.axes
            meta = _tiff_meta(tif, path)
    except InputError:
        raise
    except MemoryError as error:
        raise InputError(f"{path}: too large to load into memory. Split it (for example per time point) "
                         "before processing.") from error
    except Exception as error:  # tifffile raises many types (ValueError, struct.error, TiffFileError, ...)
        raise InputError(f"{path}: cannot be read as TIFF ({type(error).__name__}: {error}). The file is "
                         "probably truncated or corrupt; export it again.") from error
    finally:
        tiff_logger.removeHandler(capture)
    if capture.messages:
        raise InputError(f"{path}: the TIFF structure is damaged ({capture.messages[0]}). The file is probably "
                         "truncated or corrupt; export it again.")
    image, meta.axes = _to_canonical(image, axes, path)
    return image, meta


def _first_series(tif, path: Path):
    """The TIFF's first image series, refused when absent or when its data lies past the file's end."""
    if not tif.series:
        raise InputError(f"{path}: the TIFF holds no image series. Export the image again.")
    series = tif.series[0]
    _check_tiff_extent(tif, series, path)
    return series


def _check_tiff_extent(tif, series, path: Path) -> None:
    """Refuse files whose image data would lie past their end (a truncated copy or download)."""
    size = os.fstat(tif.filehandle.fileno()).st_size if hasattr(tif.filehandle, "fileno") else None
    if size is None:
        return
    end = 0
    dataoffset = getattr(series, "dataoffset", None)
    if dataoffset is not None:  # contiguous data (ImageJ, shaped, ...): one block
        end = dataoffset + series.nbytes
    else:
        for page in series.pages:
            if page is None:
                continue
            offsets = getattr(page, "dataoffsets", ())
            counts = getattr(page, "databytecounts", ())
            if len(offsets) and len(counts):
                end = max(end, max(o + c for o, c in zip(offsets, counts)))
    if end > size:
        raise InputError(f"{path}: truncated: the image data should end at byte {end} but the file has only "
                         f"{size} bytes. Copy or export the file again.")


#: decoded / stored bytes above which a compressed TIFF is a decompression bomb (deflate tops out near 1,000:1;
#: a larger ratio needs tiles that point at the same bytes, or a damaged file)
MAX_COMPRESSION_RATIO = 5000
#: decoded sizes below this are never called a bomb (small all-zero images compress very well)
BOMB_MIN_BYTES = 256 * 2 ** 20


def _check_decoded_size(tif, series, path: Path) -> None:
    """From the header, before decoding: refuse a decompression bomb, and pixels that cannot fit in memory."""
    nbytes = int(series.nbytes)
    try:
        stored = os.fstat(tif.filehandle.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        stored = None
    if stored and nbytes > BOMB_MIN_BYTES and nbytes > MAX_COMPRESSION_RATIO * stored:
        raise InputError(f"{path}: declares {nbytes / 2**30:.1f} GiB of pixels in a {stored / 2**10:.0f} KiB file "
                         f"(more than {MAX_COMPRESSION_RATIO}:1); refusing to decode a probable decompression bomb "
                         "or damaged file. Export the image again.")
    check_decoded_size(nbytes, str(path))


def _to_canonical(image: np.ndarray, axes: str, path) -> tuple[np.ndarray, str]:
    """Transpose an array with tifffile axes into canonical ``TZCYXS`` order.

    Letters tifffile uses for unknown dimensions ('I', 'Q' and any other) become Z when free, then T, then C:
    ImageJ opens a plain multi-page TIFF as a Z stack, and a second unknown outer dimension as time. Samples
    stored planar (an 'S' that is not the last axis) are channels, C.
    """
    order, canonical = _canonical_order(axes, image.ndim, path)
    if order != list(range(len(order))):
        image = np.transpose(image, order)
    return image, canonical


def _canonical_order(axes: str, ndim: int, path) -> tuple[list, str]:
    """The transposition from tifffile axes to canonical order, and the canonical axes (see ``_to_canonical``)."""
    axes = axes.upper()
    if len(axes) != ndim:
        raise InputError(f"{path}: axes {axes!r} do not match the data's {ndim} dimensions.")
    letters = list(axes)
    if "S" in letters[:-1] and "C" not in letters:
        letters[letters.index("S")] = "C"  # planar samples (not interleaved) are channels
    free = [letter for letter in "ZTC" if letter not in letters]
    # innermost unknown first, so that 'QQYX' becomes 'TZYX'
    for index in reversed(range(len(letters))):
        if letters[index] not in CANONICAL_AXES:
            if not free:
                raise InputError(f"{path}: cannot interpret the TIFF axes {axes!r}: too many dimensions of unknown "
                                 "meaning. Save it from Fiji as a hyperstack (axes among T, Z, C, Y, X).")
            letters[index] = free.pop(0)
    if len(set(letters)) != len(letters) or "Y" not in letters or "X" not in letters:
        raise InputError(f"{path}: cannot interpret the TIFF axes {axes!r}. Save it from Fiji as a hyperstack "
                         "(axes among T, Z, C, Y, X).")
    order = sorted(range(len(letters)), key=lambda i: CANONICAL_AXES.index(letters[i]))
    return order, "".join(letters[i] for i in order)


class TiffFrames:
    """The time points of a TIFF movie, read one at a time: ``frames[t]`` decodes frame ``t`` only (axes
    ``axes``, canonical order without T, native byte order), so a movie larger than memory can be streamed.
    Made by :func:`read_tiff_frames`."""

    def __init__(self, path: Path, series_shape, dtype, order, axes: str, dataoffset, pages_per_frame: int):
        self.path, self.axes = Path(path), axes
        self._file_shape, self._dtype = tuple(series_shape[1:]), np.dtype(dtype)
        self._order = [o - 1 for o in order[1:]]
        self._offset, self._pages = dataoffset, pages_per_frame
        self.shape = (int(series_shape[0]),) + tuple(self._file_shape[o] for o in self._order)
        self.dtype = self._dtype.newbyteorder("=")

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, t: int) -> np.ndarray:
        t = int(t)
        if not 0 <= t < len(self):
            raise IndexError(f"frame {t} of a {len(self)}-frame movie")
        count = int(np.prod(self._file_shape))
        if self._offset is not None:  # contiguous, uncompressed: read the frame's bytes, no mapping of the file
            with open(self.path, "rb") as handle:
                frame = np.fromfile(handle, self._dtype, count, offset=self._offset + t * count * self._dtype.itemsize)
            if frame.size != count:
                raise InputError(f"{self.path}: truncated at frame {t}; export the movie again.")
        else:  # one page (or Z/C pages) per frame, compressed or scattered: decode those pages only
            import tifffile
            with tifffile.TiffFile(self.path, mode="rb") as tif:
                first = t * self._pages
                frame = np.stack([tif.pages[k].asarray() for k in range(first, first + self._pages)])
        frame = frame.reshape(self._file_shape)
        if self._order != list(range(len(self._order))):
            frame = np.transpose(frame, self._order)
        return np.ascontiguousarray(frame, self.dtype)


def read_tiff_frames(path) -> tuple[TiffFrames | np.ndarray, ImageMeta]:
    """Open a TIFF movie (axes with T) to be read one time point at a time; returns ``(frames, meta)``.

    ``frames`` is a :class:`TiffFrames` (``len``, ``frames[t]``, ``shape``, ``axes`` without T) when time is the
    file's outermost axis, the usual case (ImageJ hyperstacks, OME ``XYZCT``, ``XYCZT``...). Otherwise (rare
    orders) the movie is read whole and ``frames`` is the array with T moved first. ``meta.axes`` has T first.
    Files without a T axis are read whole too (``read_image``) and returned as they are.
    """
    import tifffile
    path = Path(path)
    whole = None
    try:
        with tifffile.TiffFile(path, mode="rb") as tif:
            series = _first_series(tif, path)
            order, canonical = _canonical_order(series.axes, len(series.shape), path)
            meta = _tiff_meta(tif, path)
            if "T" in canonical and order[0] == 0 and len(series.shape) > 2:
                n_frames = int(series.shape[0])
                frame_bytes = int(series.nbytes) // max(n_frames, 1)
                check_decoded_size(frame_bytes, f"{path} (one frame)")
                offset = getattr(series, "dataoffset", None)
                pages = len(series.pages)
                if offset is None and (pages % n_frames or any(p is None for p in series.pages)):
                    whole = True
                else:
                    stored = np.dtype(series.dtype).newbyteorder(tif.byteorder)  # the file's byte order
                    frames = TiffFrames(path, series.shape, stored, order, canonical[1:], offset,
                                        pages // n_frames)
            else:
                whole = True
    except InputError:
        raise
    except Exception as error:  # tifffile raises many types
        raise InputError(f"{path}: cannot be read as TIFF ({type(error).__name__}: {error}). The file is "
                         "probably truncated or corrupt; export it again.") from error
    if whole:
        image, meta = read_image(path)
        if "T" in meta.axes and meta.axes.index("T") != 0:
            image = np.moveaxis(image, meta.axes.index("T"), 0)
            meta.axes = "T" + meta.axes.replace("T", "")
        return image, meta
    meta.axes = canonical
    return frames, meta


def _tiff_meta(tif, path: Path) -> ImageMeta:
    meta = ImageMeta(axes="", source=str(path))
    if tif.is_ome and tif.ome_metadata:
        _read_ome_calibration(tif.ome_metadata, meta, path)
        if meta.pixel_size_x is not None:
            return meta
    imagej = tif.imagej_metadata if tif.is_imagej else None
    page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
    tags = page.tags
    unit = None
    scale = 1.0  # converts the resolution's unit into ``unit``
    if imagej:
        unit = _normalise_unit(imagej.get("unit"))
        if imagej.get("spacing") is not None:
            meta.z_spacing = float(imagej["spacing"])
        if imagej.get("finterval"):
            seconds = _TIME_IN_SECONDS.get(str(imagej.get("tunit", "sec")).lower(), 1.0)
            meta.time_interval = float(imagej["finterval"]) * seconds
    else:
        resolution_unit = tags.get("ResolutionUnit")
        code = int(resolution_unit.value) if resolution_unit is not None else 2  # TIFF default: inch
        if code == 3:  # centimetre: report micrometres
            unit, scale = "micron", 1e4
        elif code == 2 and "XResolution" in tags and tags["XResolution"].value not in ((1, 1), (72, 1)):
            unit = "inch"  # as ImageJ does; 1 and 72 dpi are writer defaults, not a calibration
        elif code == 2:
            tags = {}
    meta.unit = unit
    for tag_name, attribute in (("XResolution", "pixel_size_x"), ("YResolution", "pixel_size_y")):
        tag = tags.get(tag_name) if hasattr(tags, "get") else None
        if tag is None:
            continue
        numerator, denominator = tag.value
        if numerator == 0:
            continue
        size = denominator / numerator * scale
        if unit is None and size == 1.0:
            continue  # tifffile's default resolution, not a calibration
        setattr(meta, attribute, float(size))
    return meta


def _read_ome_calibration(xml: str, meta: ImageMeta, path: Path) -> None:
    """Fill sizes, unit and frame interval from the first ``Pixels`` element of OME-XML."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as error:
        logger.warning("%s: OME-XML metadata is not valid XML (%s); calibration ignored", path, error)
        return
    pixels = next((element for element in root.iter() if element.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return
    sizes = {}
    for axis in "XYZ":
        value = pixels.get(f"PhysicalSize{axis}")
        if value is not None:
            sizes[axis] = (float(value), _normalise_unit(pixels.get(f"PhysicalSize{axis}Unit", "µm")))
    if sizes:
        # express everything in the unit of X (or of the first size given)
        unit = sizes.get("X", next(iter(sizes.values())))[1]
        meta.unit = unit
        for axis, attribute in (("X", "pixel_size_x"), ("Y", "pixel_size_y"), ("Z", "z_spacing")):
            if axis in sizes:
                value, axis_unit = sizes[axis]
                setattr(meta, attribute, value * _unit_factor(axis_unit, unit, path))
    increment = pixels.get("TimeIncrement")
    if increment is not None:
        time_unit = pixels.get("TimeIncrementUnit", "s")
        meta.time_interval = float(increment) * _TIME_IN_SECONDS.get(time_unit, 1.0)


def _unit_factor(from_unit: str | None, to_unit: str | None, path) -> float:
    if from_unit == to_unit:
        return 1.0
    if from_unit in _LENGTH_IN_MICRON and to_unit in _LENGTH_IN_MICRON:
        return _LENGTH_IN_MICRON[from_unit] / _LENGTH_IN_MICRON[to_unit]
    logger.warning("%s: cannot convert %s to %s; sizes taken as they are", path, from_unit, to_unit)
    return 1.0


def _normalise_unit(unit) -> str | None:
    """ImageJ escapes non-ASCII (``\\u00B5m``); all micrometre spellings become ``"micron"``; pixel = none."""
    if unit is None:
        return None
    unit = re.sub(r"\\u([0-9a-fA-F]{4})", lambda match: chr(int(match.group(1), 16)), str(unit)).strip()
    if not unit or unit.lower() in ("pixel", "pixels", "px"):
        return None
    if unit.lower() in _UNIT_ALIASES or unit in _UNIT_ALIASES:
        return "micron"
    return unit


# ----------------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------------

def default_axes(ndim: int) -> str:
    """Axes assumed for an array without any: the last ``ndim`` letters of ``"TZYX"`` (ndim 5: ``"TZCYX"``)."""
    if ndim == 5:
        return "TZCYX"
    if not 2 <= ndim <= 4:
        raise InputError(f"cannot guess axes for a {ndim}-D array; give axes explicitly (letters among TZCYX).")
    return "TZYX"[-ndim:]


def write_labels(path, labels, meta: ImageMeta | None = None, axes: str | None = None) -> Path:
    """Write a label image as an ImageJ TIFF.

    Parameters
    ----------
    path : str or Path
        Destination; written atomically (temporary file in the same folder, then renamed).
    labels : ndarray of integers (or integer-valued floats), shape matching ``axes``
        0 is background. Stored as uint16 when ``labels.max() < 65536``, else as float32 (ImageJ has no 32-bit
        integer type), which is exact for ids up to ``2**24``.
    meta : ImageMeta, optional
        Calibration to store (pixel size as X/YResolution, ``unit``, Z ``spacing``, ``finterval``). The writer
        refuses to overwrite ``meta.source``.
    axes : str, optional
        Letters among ``TZCYX``; by default ``meta.axes`` without C and S when that fits ``labels.ndim``,
        otherwise ``default_axes(labels.ndim)``.

    Returns
    -------
    Path of the written file.
    """
    labels = as_label_image(labels, name=str(path), ndims=None)
    peak = int(labels.max()) if labels.size else 0
    if peak > MAX_FLOAT32_LABEL:
        raise InputError(f"{path}: label ids go up to {peak}, more than a float32 ImageJ TIFF stores exactly "
                         f"({MAX_FLOAT32_LABEL}). Relabel the objects consecutively (1..N) before writing.")
    data = labels.astype(np.uint16 if peak < 65536 else np.float32, copy=False)
    return _write_imagej(path, data, meta, axes, without_channels=True)


def write_tiff(path, array, meta: ImageMeta | None = None, axes: str | None = None) -> Path:
    """Write a float output (flows, cell probability) as an ImageJ float32 TIFF, atomically.

    ``axes`` as in ``write_labels`` but C is allowed (e.g. ``"CYX"`` for flows of shape (2, Y, X)).
    """
    array = np.asarray(array)
    if array.dtype.kind not in "buif":
        raise InputError(f"{path}: cannot store a {array.dtype} array in a TIFF; give real numbers.")
    return _write_imagej(path, array.astype(np.float32, copy=False), meta, axes, without_channels=False)


def _write_imagej(path, data: np.ndarray, meta: ImageMeta | None, axes: str | None,
                  without_channels: bool) -> Path:
    import tifffile

    path = Path(path)
    _refuse_source(path, meta)
    if axes is None:
        axes = _axes_from_meta(meta, data.ndim, without_channels)
    axes = axes.upper()
    allowed = "TZYX" if without_channels else "TZCYX"
    if len(axes) != data.ndim or len(set(axes)) != len(axes) or not set(axes) <= set(allowed) \
            or "Y" not in axes or "X" not in axes:
        raise InputError(f"{path}: axes {axes!r} do not describe a {data.ndim}-D array of shape {data.shape} "
                         f"(one letter per dimension, among {allowed}, including Y and X).")
    order = sorted(range(len(axes)), key=lambda i: CANONICAL_AXES.index(axes[i]))
    data = np.ascontiguousarray(np.transpose(data, order))
    axes = "".join(axes[i] for i in order)

    metadata = {"axes": axes}
    resolution = None
    if meta is not None:
        if meta.unit:
            metadata["unit"] = _imagej_unit(meta.unit)
        if meta.z_spacing:
            metadata["spacing"] = float(meta.z_spacing)
        if meta.time_interval:
            metadata["finterval"] = float(meta.time_interval)
        if meta.pixel_size_x or meta.pixel_size_y:
            size_x = meta.pixel_size_x or meta.pixel_size_y
            size_y = meta.pixel_size_y or meta.pixel_size_x
            resolution = (1.0 / size_x, 1.0 / size_y)

    def write(handle):
        tifffile.imwrite(handle, data, imagej=True, resolution=resolution, metadata=metadata)

    _write_atomically(path, write)
    return path


def _axes_from_meta(meta: ImageMeta | None, ndim: int, without_channels: bool) -> str:
    if meta is not None and meta.axes:
        candidate = meta.axes.replace("S", "")
        if without_channels:
            candidate = candidate.replace("C", "")
        if len(candidate) == ndim:
            return candidate
    return default_axes(ndim)


def _imagej_unit(unit: str) -> str:
    unit = _normalise_unit(unit) or ""
    # ImageJ's description is ASCII; it writes other characters as \\uXXXX escapes and reads them back
    return "".join(c if ord(c) < 128 else f"\\u{ord(c):04X}" for c in unit)


def _refuse_source(path: Path, meta: ImageMeta | None) -> None:
    if meta is None or not meta.source:
        return
    source = Path(meta.source)
    same = False
    try:
        same = path.exists() and source.exists() and os.path.samefile(path, source)
    except OSError:
        pass
    if same or path.resolve() == source.resolve():
        raise InputError(f"{path}: refusing to overwrite the input image {source}. Choose another output name "
                         "or folder (trackpose never modifies its input).")


def _write_atomically(path: Path, write) -> None:
    """Call ``write(handle)`` on a fresh temporary file next to ``path``, then rename it over ``path``."""
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"{path}: the folder {folder} does not exist. Create it first or choose another output.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give a file name for the output.")
    temporary = folder / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        # exclusive creation with the usual permissions (tempfile.mkstemp would make it private, 0o600)
        with open(temporary, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise InputError(f"{path}: cannot be written ({error.strerror or error}). Check that the folder is "
                         "writable and the disk is not full.") from error
    finally:
        if temporary.exists():
            temporary.unlink()


# ----------------------------------------------------------------------------------------------------------------
# PNG
# ----------------------------------------------------------------------------------------------------------------

def _read_png(path: Path) -> tuple[np.ndarray, ImageMeta]:
    try:
        content = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror or error}).") from error
    image = decode_png(content, path)
    return image, ImageMeta(axes="YX" if image.ndim == 2 else "YXS", source=str(path))

def write_png(path, image, meta: ImageMeta | None = None) -> Path:
    """Write a uint8/uint16 image (H, W) or (H, W, S) as PNG, atomically; refuses to overwrite ``meta.source``."""
    path = Path(path)
    _refuse_source(path, meta)
    content = encode_png(image)
    _write_atomically(path, lambda handle: handle.write(content))
    return path


def write_png_labels(path, labels, meta: ImageMeta | None = None) -> Path:
    """Write a 2-D label image as a 16-bit grayscale PNG (cellpose ``--save_png``), atomically.

    Raises InputError when a label id exceeds 65535 (use ``write_labels``: TIFF) or the labels are not 2-D.
    """
    labels = as_label_image(labels, name=str(path), ndims=None)
    if labels.ndim != 2:
        raise InputError(f"{path}: a PNG holds one 2-D label image, not shape {labels.shape}; "
                         "save 3-D or time-lapse labels as TIFF.")
    peak = int(labels.max()) if labels.size else 0
    if peak > 65535:
        raise InputError(f"{path}: label ids go up to {peak}, more than a 16-bit PNG holds (65535). "
                         "Save the labels as TIFF instead (--save_tif).")
    return write_png(path, labels.astype(np.uint16), meta)


# ----------------------------------------------------------------------------------------------------------------
# Folders
# ----------------------------------------------------------------------------------------------------------------

def image_stem(path) -> str:
    """File name without its image extension (``a.ome.tif`` -> ``a``, ``b_masks.png`` -> ``b_masks``)."""
    name = Path(path).name
    lower = name.lower()
    for suffix in (".ome.tiff", ".ome.tif") + IMAGE_SUFFIXES:
        if lower.endswith(suffix):
            return name[:-len(suffix)]
    return Path(name).stem


def natural_key(path) -> list:
    """Sort key that orders ``img2`` before ``img10`` (case-insensitive)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", Path(path).name)]


def find_images(folder, skip_suffixes=OUTPUT_SUFFIXES) -> list[Path]:
    """Image files in ``folder`` that ``read_image`` reads, naturally sorted, outputs skipped.

    A file is kept when its extension is one of ``IMAGE_SUFFIXES`` (any case) and its stem (see ``image_stem``)
    does not end with any of ``skip_suffixes`` (cellpose semantics: ``x_masks.tif``, ``x_cp_masks.png``,
    ``x_flows.tif``, ``x_seg.npy`` ... are outputs, not images). Hidden files are skipped. Sub-folders are not
    searched. JPEG files are reported in the log and skipped (no decoder).

    Raises InputError when ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder. Give the folder that holds the images.")
    found, skipped_jpeg = [], 0
    for entry in folder.iterdir():
        if entry.name.startswith(".") or not entry.is_file():
            continue
        lower = entry.name.lower()
        if lower.endswith((".jpg", ".jpeg")):
            skipped_jpeg += 1
            continue
        if not lower.endswith(IMAGE_SUFFIXES):
            continue
        stem = image_stem(entry)
        if any(len(stem) > len(suffix) and stem.endswith(suffix) for suffix in skip_suffixes):
            continue
        found.append(entry)
    if skipped_jpeg:
        logger.warning("%s: skipped %d JPEG file(s); trackpose reads TIFF, PNG and .npy. Convert them to TIFF or "
                       "PNG to include them.", folder, skipped_jpeg)
    return sorted(found, key=natural_key)
