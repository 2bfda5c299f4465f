"""Tracking: link objects across frames (TrackMate's LAP and overlap trackers) and export the tracks
(TrackMate XML, Cell Tracking Challenge folder, CSV tables, tracked label movie).

Names are imported on first use (the command line reads the settings without loading numpy and scipy)."""
from __future__ import annotations

from ..lazy import lazy_names

#: public name -> module of this package that defines it
_LAZY = {"TRACKERS": "api", "Tracking": "api", "save_tracking": "api", "track": "api", "track_label_frames": "api",
         "Edges": "lap", "lap_track": "lap", "LAPSettings": "lap_settings", "overlap_track": "overlap",
         "overlap_track_labels": "overlap", "Spots": "spots", "make_spots": "spots"}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
