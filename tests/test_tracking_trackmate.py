"""Our TrackMate XML in the real TrackMate 8.1.6 TmXmlReader, and the overlap tracker against TrackMate's."""
import numpy as np
import pytest

from trackpose import synth
from trackpose.tracking import make_spots, overlap_track, save_tracking, track
from trackpose.masks import renumber  # ids 1..n per frame, in id order

import trackmate_oracle


@pytest.fixture(scope="module")
def oracle():
    why = trackmate_oracle.available()
    if why:
        pytest.skip(why)
    return trackmate_oracle


@pytest.mark.slow
def test_xml_loads_in_trackmate_identically(oracle, tmp_path):
    m = synth.movie(n_frames=8, shape=(96, 96), seed=5, division_interval=5)
    labels = np.stack([renumber(f) for f in m.labels])
    result = track(labels=labels, spacing=(0.5, 0.5), tracker="lap",
                   lap=dict(linking_max_distance=4.0, allow_track_splitting=True, splitting_max_distance=5.0,
                            linking_feature_penalties={"QUALITY": 0.3}))
    out = save_tracking(result, tmp_path / "o", "movie", unit="micron")
    read = oracle.run({"action": "read_xml", "path": str(out / "movie.xml")})
    assert read["ok"], read["error"]
    assert read["spatial_units"] == "micron"
    sp = result.spots
    spots = {int(k): v for k, v in read["spots"].items()}
    assert sorted(spots) == list(range(len(sp)))
    for k in range(len(sp)):
        s = spots[k]
        assert (s["POSITION_X"], s["POSITION_Y"], s["FRAME"]) == (sp.position[k, 0], sp.position[k, 1],
                                                                   sp.frame[k])
        assert s["RADIUS"] == sp.radius[k] and s["QUALITY"] == sp.quality[k]
        assert np.array_equal(np.array(s["roi"]), np.asarray(sp.polygons[k]).ravel())
    ours = sorted([int(a), int(b), float(c)] for a, b, c in zip(result.edges.source, result.edges.target,
                                                                 result.edges.cost))
    assert [e[:2] for e in read["edges"]] == [e[:2] for e in ours]
    assert np.allclose([e[2] for e in read["edges"]], [e[2] for e in ours], rtol=0, atol=0)
    linked = {int(t) for t in result.track_id[result.edges.source]}
    tracks = {int(k): v for k, v in read["tracks"].items()}
    assert set(tracks) == linked and read["filtered"] == sorted(linked)
    for tid, members in tracks.items():
        assert members == np.flatnonzero(result.track_id == tid).tolist()
    assert read["tracker_factory"] == "SPARSE_LAP_TRACKER"
    t = read["tracker"]
    assert t["LINKING_MAX_DISTANCE"] == "4.0" and t["ALLOW_TRACK_SPLITTING"].lower() == "true"
    assert t["MAX_FRAME_GAP"] == "2" and "QUALITY=0.3" in t["LINKING_FEATURE_PENALTIES"]
    assert read["detector"]["TARGET_CHANNEL"] == "1"


def _blobs(seed, n_frames=6, n=15):
    """Random polygons (squares and octagons) drifting, with and without ROIs, no IoU ties."""
    rng = np.random.default_rng(seed)
    centre = rng.uniform(5, 60, (n, 2))
    size = rng.uniform(2, 5, n)
    frames, pos, rois, radius = [], [], [], []
    for t in range(n_frames):
        centre = centre + rng.normal(0, 1.2, centre.shape)
        for k in range(n):
            frames.append(t)
            pos.append(centre[k])
            radius.append(size[k] * rng.uniform(0.9, 1.1))
            if k % 3 == 0:
                rois.append(None)
            else:
                a = np.linspace(0, 2 * np.pi, 4 + 4 * (k % 2), endpoint=False) + rng.uniform(0, 1)
                rois.append(np.column_stack([np.cos(a), np.sin(a)]) * radius[-1] * rng.uniform(0.8, 1.2, (len(a), 1)))
    return make_spots(frames, np.array(pos), radius=radius, polygons=rois)


@pytest.mark.slow
@pytest.mark.parametrize("method, scale, min_iou", [("PRECISE", 1.0, 0.3), ("FAST", 1.0, 0.3),
                                                    ("PRECISE", 1.5, 0.1), ("FAST", 0.8, 0.2)])
def test_overlap_tracker_equals_trackmates(oracle, method, scale, min_iou):
    spots = _blobs(7)
    ours = overlap_track(spots, method, scale, min_iou)
    request = {"action": "track", "tracker": "OVERLAP_TRACKER",
               "settings": {"IOU_CALCULATION": method, "SCALE_FACTOR": scale, "MIN_IOU": min_iou},
               "spots": {"frame": spots.frame.tolist(), "x": spots.position[:, 0].tolist(),
                         "y": spots.position[:, 1].tolist(), "z": [0.0] * len(spots),
                         "radius": spots.radius.tolist(), "quality": [1.0] * len(spots),
                         "rois": [None if r is None else np.asarray(r).ravel().tolist() for r in spots.polygons]}}
    theirs = oracle.run(request)["edges"]
    assert len(theirs) > 10
    assert [e[:2] for e in theirs] == sorted([int(a), int(b)] for a, b in zip(ours.source, ours.target))
    mine = {(int(a), int(b)): c for a, b, c in zip(ours.source, ours.target, ours.cost)}
    for a, b, c in theirs:
        assert mine[(a, b)] == pytest.approx(c, abs=1e-9)
