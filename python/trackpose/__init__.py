"""trackpose: a Cellpose-compatible cell segmentation engine for Python and Fiji/TrackMate."""
__version__ = "0.1.0"

from .errors import InputError, ModelError, TrackposeError  # noqa: E402
from .models import DEFAULT_MODEL, Model, load_model  # noqa: E402
from .segmentation import Result, segment  # noqa: E402
from .size import estimate_diameter  # noqa: E402

__all__ = ["segment", "estimate_diameter", "load_model", "Model", "Result", "DEFAULT_MODEL", "TrackposeError", "InputError",
           "ModelError", "__version__"]
