"""Track cells with TrackMate and the trackpose detector in a local Fiji, from plain Python (no Fiji GUI).

    python examples/fiji/run_trackmate_from_python.py /opt/Fiji.app movie.tif --diameter 12 [--tracker sparse_lap]

Prints one line per track and writes <movie>-spots.csv and <movie>-links.csv next to the movie. Needs `pip install -e .[fiji]`
(pyimagej), a Fiji with TrackMate 8 and target/trackpose-bridge-*.jar (from `mvn -B package`, built against TrackMate 8.1.6) in
Fiji.app/jars/, and a Java 21 (JAVA_HOME) for that Fiji. See docs/python-java.md#trackmate-in-a-local-fiji.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from trackpose.java_client import FijiError
from trackpose.fiji_trackmate import run_trackmate


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("fiji", help="the Fiji.app folder")
    p.add_argument("movie", help="an image file Fiji opens (its calibration is used)")
    p.add_argument("--diameter", type=float, required=True, help="cell diameter in the image's units")
    p.add_argument("--tracker", choices=["overlap", "sparse_lap"], default="overlap")
    p.add_argument("--max-distance", type=float, help="sparse_lap: linking and gap-closing distance (image units)")
    args = p.parse_args(argv)
    tracker_settings = {}
    if args.tracker == "sparse_lap" and args.max_distance is not None:
        tracker_settings = {"LINKING_MAX_DISTANCE": args.max_distance, "GAP_CLOSING_MAX_DISTANCE": args.max_distance}
    try:
        spots, links = run_trackmate(args.fiji, args.movie, settings={"CELL_DIAMETER": args.diameter},
                                     tracker=args.tracker, tracker_settings=tracker_settings)
    except FijiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for tid in np.unique(spots["track_id"][spots["track_id"] >= 0]):
        mine = spots[spots["track_id"] == tid]
        print(f"track {tid}: {len(mine)} spots, frames {mine['frame'].min()}-{mine['frame'].max()}")
    out = Path(args.movie).with_suffix("")
    np.savetxt(f"{out}-spots.csv", spots, delimiter=",", header=",".join(spots.dtype.names), comments="",
               fmt=["%d", "%d", "%.6g", "%.6g", "%.6g", "%.6g", "%.6g", "%d"])
    np.savetxt(f"{out}-links.csv", links, delimiter=",", header=",".join(links.dtype.names), comments="",
               fmt=["%d", "%d", "%d", "%.6g"])
    print(f"{len(spots)} spots, {len(links)} links; wrote {out}-spots.csv and {out}-links.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
