"""Tracking: link objects across frames (TrackMate's LAP and overlap trackers) and export the tracks
(TrackMate XML, Cell Tracking Challenge folder, CSV tables, tracked label movie)."""
from .api import TRACKERS, Tracking, save_tracking, track, track_label_frames
from .lap import Edges, LAPSettings, lap_track
from .overlap import overlap_track, overlap_track_labels
from .spots import Spots, make_spots

__all__ = ["Edges", "LAPSettings", "Spots", "Tracking", "TRACKERS", "lap_track", "make_spots", "overlap_track",
           "overlap_track_labels", "save_tracking", "track", "track_label_frames"]
