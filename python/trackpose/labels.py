"""Label images: the one check every module applies to masks it is given (0 = background, ids >= 1)."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .errors import InputError


def as_label_image(labels, name: str = "labels", ndims: Optional[Sequence[int]] = (2, 3)) -> np.ndarray:
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

    Returns
    -------
    np.ndarray of int32 (int64 when a label exceeds the int32 range; integer inputs keep their dtype), same shape.

    Raises
    ------
    InputError
        Wrong number of dimensions, a non-numeric type, fractions / NaN / Inf, or negative values.
    """
    array = np.asarray(labels)
    if ndims is not None and array.ndim not in ndims:
        wanted = " or ".join(f"{n}D" for n in ndims)
        raise InputError(f"{name} must be a {wanted} label image, got an array of shape {array.shape}")
    if array.dtype == bool:
        return array.astype(np.int32)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise InputError(f"{name} must hold whole-number labels; this array has fractions, NaN or Inf")
    elif array.dtype.kind not in "ui":
        raise InputError(f"{name} must be an integer label image, got dtype {array.dtype}")
    if array.size == 0:
        return array.astype(np.int32)
    low, high = array.min(), array.max()
    if low < 0:
        raise InputError(f"{name} must not hold negative labels (found {low}); 0 is background")
    if array.dtype.kind in "ui":
        return array
    return array.astype(np.int32 if high <= np.iinfo(np.int32).max else np.int64)
