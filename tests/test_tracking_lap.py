"""LAP tracker: TrackMate's semantics, checked edge for edge against the real TrackMate 8.1.6."""
import numpy as np
import pytest

from trackpose.errors import InputError
from trackpose.tracking import LAPSettings, lap_track, make_spots
from trackpose.tracking.lapjv import augmented_matrix, solve_jv, solve_scipy

import trackmate_oracle


def _movie(seed, n_frames=8, n=12, ndim=2, extent=24, grid=True, drop=0.15, with_features=False):
    """Spots on an integer grid (many exact ties) or crowded random positions, some missed (gaps)."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, extent, (n, ndim))
    frames, pos, quality = [], [], []
    for t in range(n_frames):
        p = start + t * rng.normal(0, 1.5, (n, ndim))
        if grid:
            p = np.round(p)
        keep = rng.random(n) > drop
        frames += [t] * int(keep.sum())
        pos.append(p[keep])
        quality.append(rng.uniform(1, 10, n)[keep])
    pos = np.concatenate(pos)
    feats = {"MEAN_INTENSITY": np.round(rng.uniform(10, 20, len(frames)))} if with_features else None
    xyz = pos if ndim == 3 else np.column_stack([pos, np.zeros(len(pos))])
    return make_spots(frames, xyz, quality=np.concatenate(quality), features=feats)


def _request(spots, settings):
    return {"action": "track", "tracker": "SPARSE_LAP_TRACKER", "settings": settings.to_trackmate(),
            "spots": {"frame": spots.frame.tolist(), "x": spots.position[:, 0].tolist(),
                      "y": spots.position[:, 1].tolist(), "z": spots.position[:, 2].tolist(),
                      "radius": spots.radius.tolist(), "quality": spots.quality.tolist(),
                      "features": {k: v.tolist() for k, v in spots.features.items()}}}


CASES = {
    "linking only": dict(allow_gap_closing=False, linking_max_distance=5.0),
    "gap closing": dict(linking_max_distance=4.0, gap_closing_max_distance=7.0, max_frame_gap=3),
    "splitting": dict(allow_gap_closing=False, allow_track_splitting=True, linking_max_distance=5.0,
                      splitting_max_distance=6.0),
    "merging": dict(allow_gap_closing=False, allow_track_merging=True, linking_max_distance=5.0,
                    merging_max_distance=6.0),
    "splitting + merging + gaps": dict(allow_track_splitting=True, allow_track_merging=True,
                                       linking_max_distance=5.0, splitting_max_distance=6.0,
                                       merging_max_distance=6.0, gap_closing_max_distance=8.0),
    "feature penalties": dict(linking_feature_penalties={"QUALITY": 0.5, "MEAN_INTENSITY": 1.0},
                              gap_closing_feature_penalties={"QUALITY": 1.0}, allow_track_splitting=True,
                              splitting_feature_penalties={"MEAN_INTENSITY": 2.0}, linking_max_distance=6.0),
    "percentile and factor": dict(allow_track_splitting=True, cutoff_percentile=0.5,
                                  alternative_linking_cost_factor=1.5, linking_max_distance=5.0),
}
SPOT_SETS = {
    "2D grid ties": dict(ndim=2, grid=True),
    "2D crowded": dict(ndim=2, grid=False, n=30, extent=20),
    "3D grid ties": dict(ndim=3, grid=True, extent=12),
    "3D crowded": dict(ndim=3, grid=False, n=30, extent=12),
}


@pytest.fixture(scope="module")
def parity():
    """Every case x spot set through the real TrackMate in one JVM; returns {(case, set, seed): (ours, theirs)}."""
    why = trackmate_oracle.available()
    if why:
        pytest.skip(why)
    keys, requests, ours = [], [], []
    for case, overrides in CASES.items():
        for name, kw in SPOT_SETS.items():
            for seed in (0, 1):
                spots = _movie(seed, with_features=True, **kw)
                settings = LAPSettings(**overrides)
                keys.append((case, name, seed))
                requests.append(_request(spots, settings))
                ours.append(lap_track(spots, settings))
    results = trackmate_oracle.run({"action": "batch", "requests": requests})["results"]
    return {k: (o, r["edges"]) for k, o, r in zip(keys, ours, results)}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_edges_equal_trackmate(parity, case):
    checked = 0
    for (c, name, seed), (ours, theirs) in parity.items():
        if c != case:
            continue
        mine = {(a, b): w for a, b, w in zip(ours.source.tolist(), ours.target.tolist(), ours.cost.tolist())}
        ref = {(a, b): w for a, b, w in theirs}
        assert set(mine) == set(ref), f"{case} / {name} / seed {seed}: only ours {set(mine) - set(ref)}, " \
                                      f"only TrackMate {set(ref) - set(mine)}"
        for k in ref:
            assert mine[k] == pytest.approx(ref[k], rel=1e-12), (case, name, seed, k)
        checked += len(ref)
    assert checked > 50  # the cases link something


@pytest.mark.slow
def test_parity_cases_exercise_splits_merges_and_gaps(parity):
    """The parity spot sets really contain gap closings, splits and merges (else the test proves little)."""
    kinds = set()
    for (case, _, _), (ours, _) in parity.items():
        if case != "splitting + merging + gaps":
            continue
        spots_out = np.bincount(ours.source)
        spots_in = np.bincount(ours.target)
        kinds |= {"split"} if (spots_out > 1).any() else set()
        kinds |= {"merge"} if (spots_in > 1).any() else set()
    assert kinds == {"split", "merge"}


def test_defaults_are_trackmates():
    s = LAPSettings().to_trackmate()
    assert s["LINKING_MAX_DISTANCE"] == 15.0 and s["ALLOW_GAP_CLOSING"] is True and s["MAX_FRAME_GAP"] == 2
    assert s["ALLOW_TRACK_SPLITTING"] is False and s["ALLOW_TRACK_MERGING"] is False
    assert s["ALTERNATIVE_LINKING_COST_FACTOR"] == 1.05 and s["CUTOFF_PERCENTILE"] == 0.9


@pytest.mark.parametrize("bad, word", [(dict(linking_max_distance=-1.0), "linking-max-distance"),
                                       (dict(max_frame_gap=0), "max-frame-gap"),
                                       (dict(cutoff_percentile=1.5), "cutoff-percentile"),
                                       (dict(alternative_linking_cost_factor=0.0), "alternative"),
                                       (dict(linking_feature_penalties={"QUALITY": -1}), "QUALITY")])
def test_settings_out_of_range_are_refused(bad, word):
    with pytest.raises(InputError, match=word):
        LAPSettings(**bad)


def test_unknown_penalty_feature_is_named():
    spots = _movie(0)
    with pytest.raises(InputError, match="AREA"):
        lap_track(spots, linking_feature_penalties={"AREA": 1.0})


def test_a_spot_left_alone_in_step_one_is_never_gap_closed():
    # frame 0: one spot, frame 1: nothing near, frame 2: a spot nearby -> TrackMate leaves both alone
    spots = make_spots([0, 1, 2], [[0, 0], [100, 100], [1, 0]])
    assert len(lap_track(spots)) == 0
    # a 2-spot segment ending in frame 1 is gap-closed to a segment starting in frame 3
    spots = make_spots([0, 1, 3, 4, 2], [[0, 0], [1, 0], [2, 0], [3, 0], [200, 200]])
    assert lap_track(spots).pairs() == {(0, 1), (1, 2), (2, 3)}


def test_jv_and_scipy_agree_on_the_optimum():
    rng = np.random.default_rng(3)
    rows, cols = np.nonzero(rng.random((40, 35)) < 0.2)
    costs = rng.integers(1, 5, len(rows)).astype(float)  # many ties
    cc, kk, start, n = augmented_matrix(rows, cols, costs, 40, 35, 3.0)
    a, b = solve_jv(cc, kk, start, n), solve_scipy(cc, kk, start, n)

    def total(assign):
        return sum(cc[start[i] + np.searchsorted(kk[start[i]:start[i + 1]], j)] for i, j in enumerate(assign))
    assert sorted(a) == list(range(n)) and total(a) == pytest.approx(total(b))
