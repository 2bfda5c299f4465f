"""trackpose: a Cellpose-compatible cell segmentation engine for Python and Fiji/TrackMate.

The public names below are imported on first use, so that ``import trackpose`` (and the command line's help,
argument errors and torch-free commands) do not pay for importing torch.
"""
from __future__ import annotations

from .lazy import lazy_names

__version__ = "0.1.0"

from .errors import InputError, ModelError, TrackposeError  # noqa: E402  (no heavy imports)

#: public name -> the module that defines it
_LAZY = {
    "segment": "segmentation",
    "Result": "segmentation",
    "load_model": "models",
    "Model": "models",
    "DEFAULT_MODEL": "models",
    "estimate_diameter": "diameter",
    "track": "tracking",
}

__all__ = ["segment", "track", "estimate_diameter", "load_model", "Model", "Result", "DEFAULT_MODEL", "TrackposeError",
           "InputError", "ModelError", "__version__"]


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
