"""Label images: the one check every module applies to masks it is given (0 = background, ids >= 1).

Two functions, used by every module that takes masks:

- :func:`as_label_image` checks that an array is a label image (number of dimensions, dtype, whole numbers, no
  negative ids) and returns it as an integer array;
- :func:`compact_labels` gives the numba kernels labels they can index per-label tables with: int32,
  C-contiguous, with huge sparse ids (say 10**9 in a small image) renumbered 1..n in order.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .errors import InputError

__all__ = ["as_label_image", "compact_labels"]


def as_label_image(labels, name: str = "labels", ndims: Optional[Sequence[int]] = (2, 3), *,
                   floats: bool = True, dtype=None) -> np.ndarray:
    """Check that ``labels`` is a label image and return it as an integer array (no copy when already one).

    Parameters
    ----------
    labels : array_like
        Non-negative whole numbers, 0 = background. Integer and boolean arrays are taken as they are; float
        arrays are accepted when every value is a whole number (ImageJ stores large label images as 32-bit float).
    name : str
        Argument (or file) name used in error messages.
    ndims : sequence of int, optional
        Allowed numbers of dimensions; None accepts any.
    floats : bool
        Accept float arrays of whole numbers; False refuses every float dtype (functions whose callers pass
        integer masks, where a float array means a mix-up such as flows or probabilities).
    dtype : numpy integer dtype, optional
        Return this dtype (an error when a label does not fit in it). None: integer inputs keep their dtype,
        booleans become int32 and floats int32 (int64 when a label exceeds the int32 range).

    Returns
    -------
    np.ndarray of integers, same shape.

    Raises
    ------
    InputError
        Wrong number of dimensions, a non-numeric type, fractions / NaN / Inf, negative values, or labels too
        large for ``dtype``.
    """
    array = np.asarray(labels)
    if ndims is not None and array.ndim not in ndims:
        wanted = " or ".join(f"{n}D" for n in ndims)
        raise InputError(f"{name} must be a {wanted} label image, got an array of shape {array.shape}")
    if array.dtype == bool:
        array = array.astype(np.int32)
    elif array.dtype.kind == "f" and floats:
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise InputError(f"{name} must hold whole-number (integer) labels; this array has fractions, NaN or Inf")
    elif array.dtype.kind not in "ui":
        raise InputError(f"{name} must be an integer label image, got dtype {array.dtype}")
    if array.size == 0:
        return array.astype(np.int32 if dtype is None else dtype)
    low, high = array.min(), array.max()
    if low < 0:
        raise InputError(f"{name} must not hold negative labels (found {low}); 0 is background")
    if dtype is not None:
        if high > np.iinfo(dtype).max:
            raise InputError(f"{name} holds label ids up to {high}, too large for {np.dtype(dtype).name}")
        return array.astype(dtype, copy=False)
    if array.dtype.kind in "ui":
        return array
    return array.astype(np.int32 if high <= np.iinfo(np.int32).max else np.int64)


def compact_labels(labels: np.ndarray) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Labels the numba kernels can index tables with: (int32 C-contiguous labels, ids).

    Parameters
    ----------
    labels : np.ndarray of int
        A label image checked by :func:`as_label_image`.

    Returns
    -------
    labels : np.ndarray of int32, same shape
        The labels as they are when their largest id is small compared with the image; otherwise renumbered
        1..n in the order of their ids (0 stays 0), so that per-label tables stay small.
    ids : np.ndarray of int64 or None
        None when the labels are used as they are (kernel label k is label k); else ``ids[k]`` is the original
        id of kernel label k (``ids[0] = 0``).
    """
    if labels.size == 0:
        return np.zeros(labels.shape, np.int32), None
    high = int(labels.max())
    if high <= np.iinfo(np.int32).max and high <= 4 * labels.size + 1024:
        return np.ascontiguousarray(labels, dtype=np.int32), None
    ids, inverse = np.unique(labels, return_inverse=True)
    if ids[0] != 0:
        ids, inverse = np.concatenate([[0], ids]), inverse + 1
    return np.ascontiguousarray(inverse.reshape(labels.shape), dtype=np.int32), ids.astype(np.int64)
