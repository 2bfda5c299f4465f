"""The LAP tracker's settings: TrackMate's keys in snake case, TrackMate's defaults and checks. Imports nothing
heavy, so that the command line's help and argument errors need neither numpy nor scipy."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from ..errors import InputError

__all__ = ["LAPSettings", "TRACKER_KEYS"]

# snake_case field -> TrackMate key (tracking/TrackerKeys.java)
TRACKER_KEYS = {
    "linking_max_distance": "LINKING_MAX_DISTANCE",
    "linking_feature_penalties": "LINKING_FEATURE_PENALTIES",
    "allow_gap_closing": "ALLOW_GAP_CLOSING",
    "gap_closing_max_distance": "GAP_CLOSING_MAX_DISTANCE",
    "max_frame_gap": "MAX_FRAME_GAP",
    "gap_closing_feature_penalties": "GAP_CLOSING_FEATURE_PENALTIES",
    "allow_track_splitting": "ALLOW_TRACK_SPLITTING",
    "splitting_max_distance": "SPLITTING_MAX_DISTANCE",
    "splitting_feature_penalties": "SPLITTING_FEATURE_PENALTIES",
    "allow_track_merging": "ALLOW_TRACK_MERGING",
    "merging_max_distance": "MERGING_MAX_DISTANCE",
    "merging_feature_penalties": "MERGING_FEATURE_PENALTIES",
    "alternative_linking_cost_factor": "ALTERNATIVE_LINKING_COST_FACTOR",
    "cutoff_percentile": "CUTOFF_PERCENTILE",
}


@dataclass
class LAPSettings:
    """LAP tracker settings: TrackMate's keys in snake case, TrackMate's defaults; distances in physical units."""

    linking_max_distance: float = 15.0
    linking_feature_penalties: dict = field(default_factory=dict)
    allow_gap_closing: bool = True
    gap_closing_max_distance: float = 15.0
    max_frame_gap: int = 2
    gap_closing_feature_penalties: dict = field(default_factory=dict)
    allow_track_splitting: bool = False
    splitting_max_distance: float = 15.0
    splitting_feature_penalties: dict = field(default_factory=dict)
    allow_track_merging: bool = False
    merging_max_distance: float = 15.0
    merging_feature_penalties: dict = field(default_factory=dict)
    alternative_linking_cost_factor: float = 1.05
    cutoff_percentile: float = 0.9

    def __post_init__(self):
        self.validate()

    def validate(self) -> "LAPSettings":
        for f in fields(self):
            value = getattr(self, f.name)
            option = "--" + f.name.replace("_", "-")
            if f.name.endswith("_penalties"):
                if not isinstance(value, dict):
                    raise InputError(f"{option} must map feature names to weights, got {value!r}")
                for k, w in value.items():
                    if not isinstance(k, str) or not math.isfinite(float(w)) or float(w) < 0:
                        raise InputError(f"{option}: weight of {k!r} must be a finite number >= 0, got {w!r}")
            elif f.name.startswith("allow_"):
                if not isinstance(value, bool) and type(value).__name__ != "bool_":  # numpy's too
                    raise InputError(f"{option} must be true or false, got {value!r}")
            elif f.name == "max_frame_gap":
                if isinstance(value, bool) or int(value) != value or value < 1:
                    raise InputError(f"{option} must be an integer >= 1 (frames), got {value!r}")
                self.max_frame_gap = int(value)
            elif f.name.endswith("max_distance"):
                if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                    raise InputError(f"{option} must be a finite distance > 0 (calibrated units), got {value!r}")
            elif f.name == "alternative_linking_cost_factor":
                if not (math.isfinite(value) and value > 0):
                    raise InputError(f"{option} must be > 0 (TrackMate uses 1.05), got {value!r}")
            elif f.name == "cutoff_percentile":
                if not (0 <= value <= 1):
                    raise InputError(f"{option} must be in 0..1 (TrackMate uses 0.9), got {value!r}")
        return self

    def to_trackmate(self) -> dict:
        """``{TRACKMATE_KEY: value}`` (with BLOCKING_VALUE, which TrackMate requires and ignores)."""
        out = {TRACKER_KEYS[k]: v for k, v in asdict(self).items()}
        out["BLOCKING_VALUE"] = float("inf")
        return out

    @classmethod
    def from_trackmate(cls, settings: dict) -> "LAPSettings":
        inverse = {v: k for k, v in TRACKER_KEYS.items()}
        unknown = set(settings) - set(inverse) - {"BLOCKING_VALUE"}
        if unknown:
            raise InputError(f"unknown LAP tracker keys: {', '.join(sorted(unknown))}")
        return cls(**{inverse[k]: v for k, v in settings.items() if k in inverse})
