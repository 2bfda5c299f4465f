"""Object size: the diameter of labelled objects or drawn shapes, and automatic diameter estimation.

Three ways to a diameter in pixels:

- :func:`estimate_diameter` measures a label image (cellpose's definition: the median over objects of
  ``sqrt(area) / (sqrt(pi) / 2)``, the diameter of a disc of the object's area);
- :func:`diameter_from_file` measures shapes a user drew: a label image file, or an ImageJ ROI set
  (``RoiSet.zip`` / ``.roi``, parsed here from ImageJ's binary ROI format);
- a :class:`SizeModel` predicts it from the network's style vector, then :func:`estimate_image_diameter`
  refines that guess by segmenting once at the guessed scale and measuring the masks (cellpose's ``SizeModel``
  semantics, ``reference/cellpose-facts.md`` section 6).

Size models are stored as cellpose stores them: ``np.save`` of a dict ``{"A", "smean", "ymean", "diam_mean"}``
named ``<model>_size.npy`` next to the model (cellpose's built-ins: ``size_<file>.npy`` in its model folder).
Such a file is a pickle, so :func:`load_size_model` never unpickles it freely: only the numpy names needed to
rebuild a dict of float arrays are allowed, and the content is validated before use.
"""
from __future__ import annotations

import io as _io
import logging
import math
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np

from .errors import InputError, ModelError
from .labels import as_label_image

log = logging.getLogger("trackpose")

#: Length of the style vector of a cellpose v2/v3 CPnet.
STYLE_SIZE = 256
#: Cellpose's lower bound on a style-predicted diameter (pixels).
MIN_DIAMETER = 5.0
#: Ridge-regression penalty of cellpose's size-model training (fitted there on tens of thousands of samples).
RIDGE_LAMBDA = 1.0
#: Penalties tried by cross-validation when none is given (fewer samples call for a weaker penalty).
RIDGE_GRID = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
#: A size file is four small arrays; anything much larger is not one.
_MAX_SIZE_FILE_BYTES = 1 << 20
_DISC = math.sqrt(math.pi) / 2  # sqrt(area) of a disc of diameter 1


# -------------------------------------------------------------------------------------- measuring shapes

def estimate_diameter(masks: np.ndarray) -> float:
    """Typical object diameter of a label image, in pixels.

    Parameters
    ----------
    masks : (Y, X) or (Z, Y, X) integer array
        Labels, 0 = background.

    Returns
    -------
    float
        2D: the median over objects of ``sqrt(area) / (sqrt(pi) / 2)`` (cellpose's ``utils.diameters``), i.e. the
        median diameter of discs with the objects' areas. 3D: the same over each object's largest cross-section in
        a Z plane (its "equator"), so that the result is an XY diameter in pixels, the quantity ``segment``'s
        ``diameter`` means, whatever the Z spacing (cellpose applies its 2D formula to voxel counts, which gives
        neither a diameter nor the same number for two Z spacings). NaN when there is no object.
    """
    labels = as_label_image(masks, "masks")
    if labels.ndim == 2:
        areas = np.bincount(labels.ravel().astype(np.int64))[1:]
    else:
        n = int(labels.max()) if labels.size else 0
        areas = np.zeros(n, np.int64)
        for plane in labels:
            counts = np.bincount(plane.ravel().astype(np.int64), minlength=n + 1)[1:]
            np.maximum(areas, counts, out=areas)
    areas = areas[areas > 0]
    if areas.size == 0:
        return float("nan")
    return float(np.median(np.sqrt(areas)) / _DISC)


def equivalent_diameter(area: float) -> float:
    """Diameter (pixels) of the disc whose area is ``area`` square pixels: ``2 * sqrt(area / pi)``."""
    return 2.0 * math.sqrt(area / math.pi)


@dataclass
class RoiShape:
    """One ImageJ ROI read from a ``.roi`` file: its name, ImageJ type name and area in square pixels."""

    name: str
    kind: str
    area: float


_ROI_TYPES = {0: "polygon", 1: "rectangle", 2: "oval", 3: "line", 4: "freeline", 5: "polyline", 6: "noroi",
              7: "freehand", 8: "traced", 9: "angle", 10: "point"}
_AREA_POLYGONS = ("polygon", "freehand", "traced")
_SUB_PIXEL_RESOLUTION = 128
_HEADER_SIZE = 64


def _polygon_area(x: np.ndarray, y: np.ndarray) -> float:
    """Area of a closed polygon (shoelace formula), square pixels."""
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def read_roi(data: bytes, name: str = "roi") -> RoiShape:
    """Parse one ROI in ImageJ's binary ``.roi`` format and return its area.

    The format (big-endian): ``"Iout"``, version (int16), type (byte at offset 6), top, left, bottom, right
    (int16 at 8..15), number of coordinates (uint16 at 16), float bounds for sub-pixel rectangles and ovals (at
    18..33), options (int16 at 50); from offset 64 the x then the y coordinates as int16 relative to left / top,
    followed, when the option SUB_PIXEL_RESOLUTION (128) is set, by absolute float32 x then y coordinates.

    Areas: polygon, freehand and traced by the shoelace formula on their vertices; rectangle ``w * h``; oval
    ``pi w h / 4``. Lines, points and angles have no area and raise :class:`InputError`, as do composite
    (shape) ROIs.
    """
    if len(data) < _HEADER_SIZE or data[:4] != b"Iout":
        raise InputError(f"{name}: not an ImageJ ROI (no 'Iout' header)")
    version, type_code = struct.unpack(">hB", data[4:7])
    top, left, bottom, right = struct.unpack(">hhhh", data[8:16])
    (n,) = struct.unpack(">H", data[16:18])
    shape_roi_size = struct.unpack(">i", data[36:40])[0]
    (options,) = struct.unpack(">h", data[50:52])
    kind = _ROI_TYPES.get(type_code, f"type {type_code}")
    if shape_roi_size > 0:
        raise InputError(f"{name}: composite (shape) ROIs are not supported; convert it to a polygon in ImageJ "
                         "(Edit > Selection > Convert to polygon... or draw it with a polygon/freehand tool)")
    width, height = right - left, bottom - top
    sub_pixel = bool(options & _SUB_PIXEL_RESOLUTION) and version >= 222
    if kind in ("rectangle", "oval"):
        if sub_pixel:  # float bounds x, y, w, h at 18..33
            _, _, width, height = struct.unpack(">ffff", data[18:34])
        if width <= 0 or height <= 0:
            raise InputError(f"{name}: empty {kind} ({width} x {height} pixels)")
        area = width * height if kind == "rectangle" else math.pi * width * height / 4
        return RoiShape(name, kind, float(area))
    if kind not in _AREA_POLYGONS:
        raise InputError(f"{name}: a {kind} ROI has no area; draw cells with the oval, polygon, freehand or wand "
                         "tool")
    end = _HEADER_SIZE + 4 * n
    if n < 3 or len(data) < end:
        raise InputError(f"{name}: {kind} ROI with {n} coordinates is incomplete or too short to enclose an area")
    if sub_pixel and len(data) >= end + 8 * n:
        coords = np.frombuffer(data, ">f4", 2 * n, end).astype(np.float64)
        x, y = coords[:n], coords[n:]
    else:
        coords = np.frombuffer(data, ">i2", 2 * n, _HEADER_SIZE).astype(np.float64)
        x, y = coords[:n] + left, coords[n:] + top
    return RoiShape(name, kind, _polygon_area(x, y))


def read_roi_file(path: Union[str, os.PathLike]) -> list[RoiShape]:
    """Shapes of an ImageJ ROI set (``RoiSet.zip`` from the ROI Manager) or of a single ``.roi`` file.

    Entries without an area (lines, points) are skipped with a warning; a set with no area at all is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    if zipfile.is_zipfile(path):
        shapes, skipped = [], []
        with zipfile.ZipFile(path) as archive:
            entries = [e for e in archive.infolist() if e.filename.lower().endswith(".roi")]
            if not entries:
                raise InputError(f"{path}: the zip holds no .roi entries; save the ROI Manager's ROIs with "
                                 "More > Save...")
            for entry in entries:
                if entry.file_size > 64 << 20:
                    raise InputError(f"{path}: entry {entry.filename} is implausibly large for a ROI")
                try:
                    shapes.append(read_roi(archive.read(entry), entry.filename))
                except InputError as exc:
                    skipped.append(str(exc))
        for reason in skipped:
            log.warning("skipped %s", reason)
        if not shapes:
            raise InputError(f"{path}: none of its {len(entries)} ROI(s) encloses an area ({skipped[0]})")
        return shapes
    data = path.read_bytes()
    return [read_roi(data, path.name)]


def diameter_from_file(path: Union[str, os.PathLike]) -> tuple[float, int]:
    """Typical diameter (pixels) of shapes a user drew: an ImageJ ROI set / ``.roi`` file, or a label image.

    Returns
    -------
    diameter : float
        Median over shapes of the equivalent diameter ``2 sqrt(area / pi)``; for label images
        :func:`estimate_diameter`.
    count : int
        Number of shapes measured.
    """
    path = Path(path)
    if path.suffix.lower() in (".zip", ".roi"):
        shapes = read_roi_file(path)
        return float(np.median([equivalent_diameter(s.area) for s in shapes])), len(shapes)
    from . import io
    labels, meta = io.read_image(path)
    if any(a in meta.axes for a in "CST"):
        raise InputError(f"{path} has axes {meta.axes}; give one 2D or 3D label image (or an ImageJ RoiSet.zip)")
    labels = as_label_image(labels, str(path))
    count = len(np.unique(labels[labels > 0]))
    if count == 0:
        raise InputError(f"{path} holds no objects (all pixels are 0); draw or label at least one cell")
    return estimate_diameter(labels), count


# ------------------------------------------------------------------------------------------- size model

@dataclass
class SizeModel:
    """Style -> diameter linear model (cellpose's size model).

    Attributes
    ----------
    A : (256,) float64
        Regression weights on the centred style vector.
    smean : (256,) float64
        Mean training style.
    ymean : float
        Mean training target ``log(d) - log(diam_mean)``.
    diam_mean : float
        The network's training-scale diameter (pixels).
    path : Path, optional
        File it was read from.
    """

    A: np.ndarray = field(repr=False)
    smean: np.ndarray = field(repr=False)
    ymean: float
    diam_mean: float
    path: Optional[Path] = None

    def predict(self, styles: np.ndarray) -> np.ndarray:
        """Diameter(s) in pixels of the objects in the image(s) whose style vector(s) are given.

        ``d = max(5, exp(A . (style - smean) + log(diam_mean) + ymean))``; ``diam_mean`` where that is not finite.

        Parameters
        ----------
        styles : (256,) or (N, 256)

        Returns
        -------
        float for one style, else (N,) float64
        """
        s = np.asarray(styles, np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            d = np.exp((s - self.smean) @ self.A + math.log(self.diam_mean) + self.ymean)
        d = np.where(np.isfinite(d), np.maximum(MIN_DIAMETER, d), self.diam_mean)
        return float(d) if s.ndim == 1 else d

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write the cellpose size-file layout (``np.save`` of the dict); cellpose 3 reads it."""
        path = Path(path)
        params = {"A": np.asarray(self.A, np.float64), "smean": np.asarray(self.smean, np.float64),
                  "ymean": float(self.ymean), "diam_mean": float(self.diam_mean)}
        tmp = path.with_name(path.name + ".part.npy")
        np.save(tmp, params, allow_pickle=True)
        os.replace(tmp, path)
        return path


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, dtypes and scalars and plain Python containers; refuses every other global."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a size file only holds numbers")


def _read_npy_object(path: Path):
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        if dtype != np.dtype(object) or shape != ():
            raise ValueError(f"it holds a {dtype} array of shape {shape}, not a dict")
        array = _NumpyOnlyUnpickler(fh).load()
    if not isinstance(array, np.ndarray) or array.shape != ():
        raise ValueError("it does not hold a single pickled object")
    return array.item()


def _finite_vector(value, key: str, size: int) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiu" or array.shape != (size,):
        raise ValueError(f"{key} must be {size} numbers, got {array.dtype} of shape {array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{key} holds NaN or Inf")
    return array


def _finite_scalar(value, key: str) -> float:
    array = np.asarray(value)
    if array.dtype.kind not in "fiu" or array.size != 1:
        raise ValueError(f"{key} must be one number, got {array.dtype} of shape {array.shape}")
    number = float(array.reshape(-1)[0])
    if not math.isfinite(number):
        raise ValueError(f"{key} is {number}")
    return number


def load_size_model(path: Union[str, os.PathLike], style_size: int = STYLE_SIZE) -> SizeModel:
    """Read a size file (cellpose's layout) safely and check its content.

    Only numpy arrays, dtypes and scalars can be rebuilt from the file (any other pickled object, e.g. a
    ``__reduce__`` payload, is refused before it runs); then the dict must hold ``A`` and ``smean`` with
    ``style_size`` finite numbers each, and finite ``ymean`` and positive ``diam_mean``.

    Raises
    ------
    ModelError
        The file is missing, is not a size file, or holds something else; the message names the file.
    """
    path = Path(path)
    remedy = ("delete or replace it (a size file is written by `trackpose train`, or by cellpose's "
              "train_size)")
    try:
        if path.stat().st_size > _MAX_SIZE_FILE_BYTES:
            raise ValueError(f"it is {path.stat().st_size} bytes, far more than a size model's few kB")
        params = _read_npy_object(path)
        if not isinstance(params, dict):
            raise ValueError(f"it holds a {type(params).__name__}, not a dict")
        missing = [k for k in ("A", "smean", "ymean", "diam_mean") if k not in params]
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
        model = SizeModel(A=_finite_vector(params["A"], "A", style_size),
                          smean=_finite_vector(params["smean"], "smean", style_size),
                          ymean=_finite_scalar(params["ymean"], "ymean"),
                          diam_mean=_finite_scalar(params["diam_mean"], "diam_mean"), path=path)
        if model.diam_mean <= 0:
            raise ValueError(f"diam_mean is {model.diam_mean}")
    except FileNotFoundError:
        raise ModelError(f"size model file {path} does not exist") from None
    except (ValueError, pickle.UnpicklingError, EOFError, OSError, TypeError, AttributeError, KeyError,
            IndexError, struct.error) as exc:
        raise ModelError(f"size model file {path} is not a valid size model: {exc}; {remedy}") from None
    return model


def size_model_path(model_path: Path, cellpose_builtin: bool = False) -> Path:
    """Where the size model of a model file lives: ``<model>_size.npy`` next to it, or for cellpose's built-in
    files ``size_<file>.npy`` in the same folder (``size_cyto3.npy``, ``size_nucleitorch_0.npy``...)."""
    model_path = Path(model_path)
    if cellpose_builtin:
        return model_path.with_name(f"size_{model_path.name}.npy")
    return model_path.with_name(model_path.name + "_size.npy")


# ------------------------------------------------------------------------------------------ estimation

@dataclass
class DiameterEstimate:
    """An automatic diameter estimate (pixels): from the style alone, and after the refinement step."""

    style: float
    refined: float
    n_objects: int


def estimate_from_planes(models, size_model: SizeModel, plane: np.ndarray, net_kw: dict,
                         mask_kw: dict) -> DiameterEstimate:
    """Estimate the object diameter of one normalised plane (cellpose's ``SizeModel.eval``).

    1. style of the plane at its own scale -> ``size_model.predict`` (the guess ``d0``);
    2. segment the plane at rescale ``diam_mean / d0`` without resampling and take :func:`estimate_diameter` of
       the masks (returned at image size). When that finds no object, the style guess stands (cellpose falls
       back to ``diam_mean``, which ignores the guess).

    Parameters
    ----------
    models : list of Model
        As given to ``segment`` (the style comes from the first).
    plane : (Y, X, C) float32
        Normalised plane.
    net_kw : dict
        ``run_network`` keywords (bsize, tile_overlap, augment, batch_size, tiling).
    mask_kw : dict
        ``dynamics.compute_masks`` keywords (cellprob_threshold, flow_threshold, min_size).
    """
    from . import dynamics, transforms
    from .inference import run_network
    net_kw = {k: v for k, v in net_kw.items() if k != "progress"}
    # the style with the tile layout the size model was fitted with (fit_size_model: cellpose's); the refinement
    # below segments with the caller's layout
    _, styles = run_network(models[:1], plane[None], rescale=1.0, **{**net_kw, "tiling": "cellpose"})
    guess = size_model.predict(styles[0])
    rescale = models[0].diam_mean / guess
    ly, lx = plane.shape[:2]
    if int(ly * rescale) < 16 or int(lx * rescale) < 16:
        log.info("diameter from style %.1f px; the image is too small to refine it", guess)
        return DiameterEstimate(guess, guess, 0)
    y, _ = run_network(models, plane[None], rescale=rescale, **net_kw)
    masks = dynamics.compute_masks(y[0, :2], y[0, 2], niter=200, **mask_kw)
    if masks.shape != (ly, lx):
        masks = transforms.resize_planes(masks[None], ly, lx, nearest=True)[0]
    refined = estimate_diameter(masks)
    n_objects = int(masks.max()) if masks.size else 0  # compute_masks numbers its masks 1..N
    if not np.isfinite(refined) or refined <= 0:
        log.warning("diameter refinement found no object at the style estimate %.1f px; using that estimate",
                    guess)
        refined = guess
    return DiameterEstimate(float(guess), float(refined), n_objects)


# --------------------------------------------------------------------------------------------- training

def choose_l2(styles: np.ndarray, targets: np.ndarray, grid: Sequence[float] = RIDGE_GRID, folds: int = 5,
              groups: Optional[np.ndarray] = None) -> float:
    """The ridge penalty of ``grid`` with the smallest mean squared error in ``folds``-fold cross-validation
    (deterministic). ``groups`` (one integer per sample, e.g. its image's index) keeps the samples of a group in
    one fold: samples of the same image are not independent, and a fold that sees one image's other samples
    favours a fit that memorises images. Without groups, sample ``i`` is in fold ``i % folds``."""
    fold_of = np.arange(len(targets)) if groups is None else np.asarray(groups)
    if len(fold_of) != len(targets):
        raise InputError(f"groups has {len(fold_of)} entries for {len(targets)} samples")
    fold_of = fold_of % folds
    best, best_error = grid[0], np.inf
    for l2 in grid:
        errors = []
        for k in range(folds):
            test = fold_of == k
            if not test.any() or test.all():
                continue
            a, smean, ymean = _ridge(styles[~test], targets[~test], l2)
            errors.append(((styles[test] - smean) @ a + ymean - targets[test]) ** 2)
        error = float(np.mean(np.concatenate(errors)))
        if error < best_error:
            best, best_error = l2, error
    return best


def _ridge(styles: np.ndarray, targets: np.ndarray, l2: float) -> tuple[np.ndarray, np.ndarray, float]:
    smean = styles.mean(axis=0)
    x = styles - smean
    ymean = float(targets.mean())
    a = np.linalg.solve(x.T @ x + l2 * np.eye(x.shape[1]), x.T @ (targets - ymean))
    return a, smean, ymean


def size_samples(model, images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                 channels: Optional[Sequence[int]] = None, channel_axis: Optional[int] = None,
                 normalize: bool = True, n_epochs: int = 4, scale_range: float = 1.0, min_crop: float = 0.7,
                 seed: int = 0, bsize: int = 224,
                 progress: Optional[Callable[[int, int], None]] = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training samples of a size model: styles (N, 256) float64, targets (N,) = log(d k) - log(diam_mean), and
    groups (N,) int64, the index in ``images`` of each sample's image (for :func:`choose_l2`).

    See :func:`fit_size_model` for the parameters and the recipe.
    """
    from . import transforms
    from .inference import run_network
    from .models import load_model
    model = load_model(model)
    if n_epochs < 1:
        raise InputError(f"n_epochs must be at least 1, got {n_epochs}")
    images, masks = list(images), list(masks)
    if len(images) != len(masks) or not images:
        raise InputError(f"give one label image per image (got {len(images)} images and {len(masks)} masks)")
    pairs = []
    for index, (image, labels) in enumerate(zip(images, masks)):
        labels = as_label_image(labels, f"masks {index}", ndims=(2,))
        planes = transforms.to_planes(np.asarray(image), channels, channel_axis=channel_axis, nchan=model.nchan)
        if planes.shape[0] != 1 or planes.shape[1:3] != labels.shape:
            raise InputError(f"image {index} (shape {np.shape(image)}) is not one 2D image of its masks' shape "
                             f"{labels.shape}")
        transforms.check_finite(planes)
        if normalize:
            transforms.normalize(planes, per_plane=True)
        diameter = estimate_diameter(labels)
        if not np.isfinite(diameter):
            log.warning("size-model training: skipping image %d: its masks contain no objects", index)
            continue
        pairs.append((planes[0], diameter, index))
    if not pairs:
        raise InputError("no image with objects to fit a size model on")
    rng = np.random.default_rng(seed)
    styles, targets, groups = [], [], []
    total = n_epochs * len(pairs)
    for epoch in range(n_epochs):
        for i in rng.permutation(len(pairs)):
            plane, diameter, index = pairs[i]
            ly, lx = plane.shape[:2]
            scale = (1 - scale_range / 2) + scale_range * rng.random()
            # crop sides: a random fraction (min_crop..1) of what fits in one network tile after resizing
            h = max(16, int(min(ly, bsize / scale) * rng.uniform(min_crop, 1.0)))
            w = max(16, int(min(lx, bsize / scale) * rng.uniform(min_crop, 1.0)))
            y0, x0 = rng.integers(0, max(1, ly - h + 1)), rng.integers(0, max(1, lx - w + 1))
            plane = plane[y0:y0 + h, x0:x0 + w]
            plane = np.rot90(plane, rng.integers(4))
            if rng.random() < 0.5:
                plane = plane[:, ::-1]
            _, style = run_network([model], np.ascontiguousarray(plane)[None], rescale=scale, bsize=bsize,
                                   tiling="cellpose")
            styles.append(style[0])
            targets.append(math.log(diameter * scale) - math.log(model.diam_mean))
            groups.append(index)
            if progress is not None:
                progress(len(styles), total)
    return np.asarray(styles, np.float64), np.asarray(targets, np.float64), np.asarray(groups, np.int64)


def fit_size_model(model, images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                   channels: Optional[Sequence[int]] = None, channel_axis: Optional[int] = None,
                   normalize: bool = True, n_epochs: int = 4, scale_range: float = 1.0, min_crop: float = 0.7,
                   l2: Optional[float] = None, seed: int = 0, bsize: int = 224,
                   progress: Optional[Callable[[int, int], None]] = None) -> SizeModel:
    """Fit a size model for ``model`` on images with label masks (cellpose's ``train_size`` recipe).

    Each epoch visits every image once: a random resize by ``k = (1 - s/2) + s U`` (``s = scale_range``) of a
    random crop (each side ``min_crop``..1 of what fits in one ``bsize`` tile after the resize), flipped and
    turned by a random quarter turn; the style vector is computed as at inference (``run_network``: tiles,
    styles summed and normalised; here one tile, to keep the CPU cost low), and the target is
    ``log(d k) - log(diam_mean)`` with ``d`` the image's mask diameter (:func:`estimate_diameter`). A ridge
    regression of the targets on the centred styles gives ``A``. Its penalty ``l2`` is chosen by 5-fold
    cross-validation when not given: cellpose's 1 suits its tens of thousands of samples but underfits the few
    hundred a CPU run collects (the penalty competes with a sum over samples). Cellpose crops
    512-pixel squares with zero padding instead; computing the style as inference does avoids training on
    padding that inference never shows.

    Parameters
    ----------
    model : name, path or Model
    images, masks : sequences of arrays
        As for ``trackpose.train.train`` (2D images with optional channel axis, integer labels).
    channels, channel_axis, normalize :
        Channel selection and percentile normalisation, as for training.
    n_epochs : int
        Passes over the images (samples = n_epochs x images).
    seed : int
        Same inputs and seed -> the same size model.
    progress : callable(done, total), optional

    Returns
    -------
    SizeModel
    """
    from .models import load_model
    model = load_model(model)
    styles_arr, targets_arr, groups = size_samples(model, images, masks, channels=channels,
                                                   channel_axis=channel_axis, normalize=normalize,
                                                   n_epochs=n_epochs, scale_range=scale_range, min_crop=min_crop,
                                                   seed=seed, bsize=bsize, progress=progress)
    return fit_from_samples(styles_arr, targets_arr, model.diam_mean, l2=l2, groups=groups)


def fit_from_samples(styles: np.ndarray, targets: np.ndarray, diam_mean: float, l2: Optional[float] = None,
                     groups: Optional[np.ndarray] = None) -> SizeModel:
    """Ridge regression of ``targets`` (log(d) - log(diam_mean)) on ``styles`` (N, 256) -> SizeModel; ``l2`` None:
    chosen by cross-validation (:func:`choose_l2`, folds by ``groups`` when given)."""
    styles_arr, targets_arr = np.asarray(styles, np.float64), np.asarray(targets, np.float64)
    if l2 is None:
        l2 = (choose_l2(styles_arr, targets_arr, groups=groups) if len(targets_arr) >= 10 else RIDGE_LAMBDA)
    a, smean, ymean = _ridge(styles_arr, targets_arr, l2)
    fitted = SizeModel(A=a, smean=smean, ymean=ymean, diam_mean=float(diam_mean))
    predicted = np.log(fitted.predict(styles_arr)) - math.log(diam_mean)
    error = np.exp(np.abs(predicted - targets_arr)) - 1
    log.info("size model fitted on %d samples (ridge penalty %g): correlation %.3f, median error %.1f%%",
             len(targets_arr), l2, np.corrcoef(predicted, targets_arr)[0, 1], 100 * np.median(error))
    return fitted
