"""Spots, edges and tracks as CSV with TrackMate's column names (as its "Export to CSV" writes them)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

__all__ = ["write_tables", "track_statistics"]


def track_statistics(spots, edges, track_id) -> list[dict]:
    """One dict per track: TRACK_ID, NUMBER_SPOTS, NUMBER_GAPS, NUMBER_SPLITS, NUMBER_MERGES, start/stop frames."""
    n = len(spots)
    out_deg = np.bincount(edges.source, minlength=n)
    in_deg = np.bincount(edges.target, minlength=n)
    gaps = np.zeros(n, np.int64)
    if len(edges):
        np.add.at(gaps, edges.source, (spots.frame[edges.target] - spots.frame[edges.source]) > 1)
    rows = []
    for tid in np.unique(track_id):
        members = track_id == tid
        frames = spots.frame[members]
        rows.append({"TRACK_ID": int(tid), "NUMBER_SPOTS": int(members.sum()),
                     "NUMBER_GAPS": int(gaps[members].sum()), "NUMBER_SPLITS": int((out_deg[members] > 1).sum()),
                     "NUMBER_MERGES": int((in_deg[members] > 1).sum()), "TRACK_START": int(frames.min()),
                     "TRACK_STOP": int(frames.max()), "TRACK_DURATION": int(frames.max() - frames.min())})
    return rows


def write_tables(folder, spots, edges, track_id, time_interval: float = 1.0) -> list[Path]:
    folder = Path(folder)
    paths = [folder / "spots.csv", folder / "edges.csv", folder / "tracks.csv"]
    extra = sorted(spots.features)
    with open(paths[0], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["LABEL", "ID", "TRACK_ID", "QUALITY", "POSITION_X", "POSITION_Y", "POSITION_Z", "POSITION_T",
                    "FRAME", "RADIUS", "VISIBILITY", "OBJECT_LABEL"] + extra)
        for k in range(len(spots)):
            x, y, z = spots.position[k]
            w.writerow([f"ID{k}", k, int(track_id[k]), repr(float(spots.quality[k])), repr(float(x)), repr(float(y)),
                        repr(float(z)), repr(float(spots.frame[k] * time_interval)), int(spots.frame[k]),
                        repr(float(spots.radius[k])), 1, int(spots.label[k])]
                       + [repr(float(spots.features[f][k])) for f in extra])
    with open(paths[1], "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["LABEL", "TRACK_ID", "SPOT_SOURCE_ID", "SPOT_TARGET_ID", "LINK_COST", "EDGE_TIME"])
        for s, t, c in zip(edges.source.tolist(), edges.target.tolist(), edges.cost.tolist()):
            w.writerow([f"ID{s} \u2192 ID{t}", int(track_id[s]), s, t, repr(c),
                        repr(float((spots.frame[s] + spots.frame[t]) / 2 * time_interval))])
    stats = track_statistics(spots, edges, track_id)
    with open(paths[2], "w", newline="") as fh:
        w = csv.writer(fh)
        keys = ["TRACK_ID", "NUMBER_SPOTS", "NUMBER_GAPS", "NUMBER_SPLITS", "NUMBER_MERGES", "TRACK_START",
                "TRACK_STOP", "TRACK_DURATION"]
        w.writerow(["LABEL", "TRACK_INDEX"] + keys)
        for index, row in enumerate(stats):
            w.writerow([f"Track_{row['TRACK_ID']}", index] + [row[k] for k in keys])
    return paths
