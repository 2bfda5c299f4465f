"""The size model: a linear map from the network's style vector to the objects' diameter (cellpose's ``SizeModel``).

Its object (:class:`SizeModel`: predict, save), its file and the ridge regression that fits it on samples. Size
models are stored as cellpose stores them: ``np.save`` of a dict ``{"A", "smean", "ymean", "diam_mean"}`` named
``<model>_size.npy`` next to the model (cellpose's built-ins: ``size_<file>.npy`` in its model folder). Such a file
is a pickle, so :func:`load_size_model` never unpickles it freely: only the numpy names needed to rebuild a dict of
float arrays are allowed, and the content is validated before use.

This module needs numpy only: ``trackpose.models`` reads a model's size file with it. Running the network to
estimate a diameter or to collect training samples is :mod:`trackpose.size_estimation`'s (it sits above
``inference``, which sits above ``models``: keeping both here would make an import cycle).
"""
from __future__ import annotations

import logging
import math
import os
import pickle
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from .errors import InputError, ModelError

__all__ = ["SizeModel", "load_size_model", "size_model_path", "choose_l2", "fit_from_samples", "STYLE_SIZE",
           "MIN_DIAMETER", "RIDGE_LAMBDA", "RIDGE_GRID"]

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
