"""Tracking: link objects across frames (TrackMate's LAP and overlap trackers) and export the tracks."""
from .lap import Edges, LAPSettings, lap_track
from .spots import Spots, make_spots

__all__ = ["Edges", "LAPSettings", "Spots", "lap_track", "make_spots"]
