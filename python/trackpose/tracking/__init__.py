"""Tracking: link objects across frames (TrackMate's LAP and overlap trackers) and export the tracks
(TrackMate XML, Cell Tracking Challenge folder, CSV tables, tracked label movie).

Names are imported on first use (the command line reads the settings without loading numpy and scipy)."""
from __future__ import annotations

import importlib

#: public name -> module of this package that defines it
_LAZY = {"TRACKERS": "api", "Tracking": "api", "save_tracking": "api", "track": "api", "track_label_frames": "api",
         "Edges": "lap", "lap_track": "lap", "LAPSettings": "lap_settings", "overlap_track": "overlap",
         "overlap_track_labels": "overlap", "Spots": "spots", "make_spots": "spots"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'trackpose.tracking' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
