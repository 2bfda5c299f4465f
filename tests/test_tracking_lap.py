"""LAP tracker: TrackMate's semantics, checked against the real TrackMate 8.1.6.

Where the optimum is unique (crowded random positions: distinct distances) our edges equal TrackMate's, edge for
edge. On integer grids many candidates are equidistant, so several assignments are optimal and a different
correct solver may pick another one: there each LAP step must have TrackMate's number of links and total cost,
and every link must be a candidate TrackMate could have chosen, at its cost.
"""
import math

import numpy as np
import pytest

from trackpose.errors import InputError
from trackpose.tracking import LAPSettings, lap_track, make_spots
from trackpose.tracking.assignment import augmented_matrix, solve
from trackpose.tracking.lap import link_frames, link_segments

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


def _request(spots, settings, tracker="SPARSE_LAP_TRACKER", graph=None):
    return {"action": "track", "tracker": tracker, "settings": settings.to_trackmate(), "graph": graph,
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
UNIQUE = {  # random positions: distinct costs, one optimum
    "2D crowded": dict(ndim=2, grid=False, n=30, extent=20),
    "3D crowded": dict(ndim=3, grid=False, n=30, extent=12),
}
TIES = {  # integer grids: equidistant candidates, several optima
    "2D grid ties": dict(ndim=2, grid=True),
    "3D grid ties": dict(ndim=3, grid=True, extent=12),
}
SPOT_SETS = {**UNIQUE, **TIES}


def _edge_list(e):
    return [[int(a), int(b), float(c)] for a, b, c in zip(e.source, e.target, e.cost)]


@pytest.fixture(scope="module")
def parity():
    """Every case x spot set x seed through the real TrackMate in one JVM: the whole tracker, its step 1 alone,
    and its step 2 alone on our step-1 links. Returns {(case, set, seed): dict(spots, settings, ours, step1,
    step2, tm, tm_step1, tm_step2)}."""
    why = trackmate_oracle.available()
    if why:
        pytest.skip(why)
    runs, requests = {}, []
    for case, overrides in CASES.items():
        for name, kw in SPOT_SETS.items():
            for seed in (0, 1):
                spots = _movie(seed, with_features=True, **kw)
                settings = LAPSettings(**overrides)
                step1 = link_frames(spots, settings)
                run = dict(spots=spots, settings=settings, ours=lap_track(spots, settings), step1=step1,
                           step2=link_segments(spots, step1, settings))
                runs[(case, name, seed)] = run
                requests += [_request(spots, settings), _request(spots, settings, "FRAME_TO_FRAME"),
                             _request(spots, settings, "SEGMENT", _edge_list(step1))]
    results = iter(trackmate_oracle.run({"action": "batch", "requests": requests})["results"])
    for run in runs.values():
        run["tm"], run["tm_step1"], run["tm_step2"] = (next(results)["edges"] for _ in range(3))
    return runs


def _cost(spots, a, b, penalties):
    """TrackMate's documented link cost, computed here independently of the tracker."""
    d2 = sum((spots.position[a, i] - spots.position[b, i]) ** 2 for i in range(3)) or np.finfo(float).tiny
    p = 1.0
    for name, w in penalties.items():
        fa, fb = spots.feature(name)[a], spots.feature(name)[b]
        if fa != -fb:
            p += 1.5 * w * abs(fa - fb) / ((fa + fb) / 2)
    return d2 * p * p


def _candidates_step1(run):
    """{frame: {(a, b): cost}}: links between consecutive frames (of those holding spots), cost < max distance²."""
    spots, s = run["spots"], run["settings"]
    frames = np.unique(spots.frame)
    out = {}
    for f0, f1 in zip(frames[:-1], frames[1:]):
        out[int(f0)] = {(a, b): c for a in np.flatnonzero(spots.frame == f0) for b in np.flatnonzero(spots.frame == f1)
                        if (c := _cost(spots, a, b, s.linking_feature_penalties)) < s.linking_max_distance ** 2}
    return out


def _candidates_step2(run):
    """{(a, b): cost}: gap closings (end -> start), merges (end -> middle), splits (middle -> start) of step 1's
    segments, within their frame gaps, cost <= max distance²."""
    spots, s, step1 = run["spots"], run["settings"], run["step1"]
    n = len(spots)
    outdeg, indeg = np.bincount(step1.source, minlength=n), np.bincount(step1.target, minlength=n)
    start, end, middle = (indeg == 0) & (outdeg > 0), (outdeg == 0) & (indeg > 0), (indeg > 0) & (outdeg > 0)
    out = {}
    for a in range(n):
        for b in range(n):
            gap = int(spots.frame[b] - spots.frame[a])
            for ok, limit, penalties in (
                    (s.allow_gap_closing and end[a] and start[b] and 1 <= gap <= s.max_frame_gap,
                     s.gap_closing_max_distance, s.gap_closing_feature_penalties),
                    (s.allow_track_merging and end[a] and middle[b] and gap == 1,
                     s.merging_max_distance, s.merging_feature_penalties),
                    (s.allow_track_splitting and middle[a] and start[b] and gap == 1,
                     s.splitting_max_distance, s.splitting_feature_penalties)):
                if ok and (c := _cost(spots, a, b, penalties)) <= limit ** 2:
                    out[(a, b)] = c
    return out


def _objective(links, candidates, alt):
    """The LAP's total cost: chosen links + alt for every unlinked row and column + alt per link in the lower-right
    block = sum(links) + alt (rows + columns - links)."""
    rows = {a for a, _ in candidates}
    cols = {b for _, b in candidates}
    return math.fsum([c for _, _, c in links] + [alt * (len(rows) + len(cols) - len(links))])


def _check_equally_optimal(ours, theirs, candidates, alt, where):
    """Both are assignments of these candidates (at their costs) with the same LAP total cost."""
    for a, b, c in ours + theirs:
        assert (a, b) in candidates, f"{where}: ({a}, {b}) is not a candidate link"
        assert c == pytest.approx(candidates[(a, b)], rel=1e-12), f"{where}: ({a}, {b}) cost"
    for links in (ours, theirs):
        assert len({a for a, _, _ in links}) == len({b for _, b, _ in links}) == len(links), where
    assert _objective(ours, candidates, alt) == pytest.approx(_objective(theirs, candidates, alt), rel=1e-12), where


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_unique_optimum_edges_equal_trackmate(parity, case):
    """Distinct costs: the edges and their costs are TrackMate's, edge for edge (2D and 3D)."""
    checked = 0
    for (c, name, seed), run in parity.items():
        if c != case or name not in UNIQUE:
            continue
        ours = run["ours"]
        mine = {(a, b): w for a, b, w in zip(ours.source.tolist(), ours.target.tolist(), ours.cost.tolist())}
        ref = {(a, b): w for a, b, w in run["tm"]}
        assert set(mine) == set(ref), f"{case} / {name} / seed {seed}: only ours {set(mine) - set(ref)}, " \
                                      f"only TrackMate {set(ref) - set(mine)}"
        for k in ref:
            assert mine[k] == pytest.approx(ref[k], rel=1e-12), (case, name, seed, k)
        checked += len(ref)
    assert checked > 50  # the cases link something


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_tied_optimum_is_as_cheap_as_trackmates(parity, case):
    """Equidistant candidates: each LAP (one per frame pair in step 1, one for step 2 on the same segments) picks
    valid links of the same total cost as TrackMate's (TrackMate's LAP objective, alternative costs included)."""
    checked, same_count, lap_count = 0, 0, 0
    for (c, name, seed), run in parity.items():
        if c != case or name not in TIES:
            continue
        where = f"{case} / {name} / seed {seed}"
        spots, s = run["spots"], run["settings"]
        for f, cand in _candidates_step1(run).items():
            if not cand:
                continue
            ours = [e for e in _edge_list(run["step1"]) if spots.frame[e[0]] == f]
            theirs = [e for e in run["tm_step1"] if spots.frame[e[0]] == f]
            alt = s.alternative_linking_cost_factor * max(cand.values())
            _check_equally_optimal(ours, theirs, cand, alt, f"{where}: step 1, frame {f}")
            same_count += len(ours) == len(theirs)
            lap_count += 1
        cand = _candidates_step2(run)
        ours, theirs = _edge_list(run["step2"]), run["tm_step2"]
        if cand:
            values = sorted(cand.values())
            p = s.cutoff_percentile
            base = values[-1] if p == 1 else values[min(len(values) - 1, int(math.floor((len(values) - 1) * p + 0.5)))]
            _check_equally_optimal(ours, theirs, cand, s.alternative_linking_cost_factor * base, f"{where}: step 2")
            same_count += len(ours) == len(theirs)
            lap_count += 1
        else:
            assert ours == theirs == [], where
        both = sorted(_edge_list(run["step1"]) + ours)
        assert both == sorted(_edge_list(run["ours"])), where  # lap_track = step 1 + step 2
        checked += len(both)
    assert checked > 50
    # the link count differs only where linking ties with not linking (e.g. costs 29 + 17 = 4 + alt 42)
    assert same_count >= lap_count - 2


@pytest.mark.slow
def test_tie_sets_really_have_ties(parity):
    """The grid sets hold equidistant candidates (else the tie test would prove nothing about ties)."""
    tied = 0
    for (case, name, seed), run in parity.items():
        if name not in TIES or case != "linking only":
            continue
        spots = run["spots"]
        for a, b, c in _edge_list(run["step1"]):
            others = np.flatnonzero(spots.frame == spots.frame[b])
            d2 = ((spots.position[others] - spots.position[a]) ** 2).sum(1)
            tied += int((d2 == c).sum() > 1)
    assert tied > 5


@pytest.mark.slow
def test_unique_optimum_steps_equal_trackmate(parity):
    """On the crowded sets each step alone is also TrackMate's step, edge for edge."""
    for (case, name, seed), run in parity.items():
        if name in UNIQUE:
            assert sorted(e[:2] for e in _edge_list(run["step1"])) == [e[:2] for e in run["tm_step1"]], (case, name)
            assert sorted(e[:2] for e in _edge_list(run["step2"])) == [e[:2] for e in run["tm_step2"]], (case, name)


@pytest.mark.slow
def test_parity_cases_exercise_splits_merges_and_gaps(parity):
    """The parity spot sets really contain gap closings, splits and merges (else the test proves little)."""
    kinds = set()
    for (case, _, _), run in parity.items():
        if case != "splitting + merging + gaps":
            continue
        ours = run["ours"]
        spots_out = np.bincount(ours.source)
        spots_in = np.bincount(ours.target)
        kinds |= {"split"} if (spots_out > 1).any() else set()
        kinds |= {"merge"} if (spots_in > 1).any() else set()
        kinds |= {"gap"} if (run["spots"].frame[ours.target] - run["spots"].frame[ours.source] > 1).any() else set()
    assert kinds == {"split", "merge", "gap"}


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


def test_solver_finds_the_optimum():
    """scipy's sparse solver on TrackMate's augmented matrix = the dense optimum (linear_sum_assignment)."""
    from scipy.optimize import linear_sum_assignment
    rng = np.random.default_rng(3)
    for trial in range(20):
        mask = rng.random((25, 20)) < 0.2
        rows, cols = np.nonzero(mask)
        costs = rng.integers(1, 5, len(rows)).astype(float)  # many ties
        alt = 1.05 * costs.max() if len(costs) else 1.0
        cc, kk, start, n = augmented_matrix(rows, cols, costs, 25, 20, alt)
        assign = solve(cc, kk, start, n)
        assert sorted(assign) == list(range(n))
        dense = np.full((n, n), 1e9)
        for i in range(n):
            dense[i, kk[start[i]:start[i + 1]]] = cc[start[i]:start[i + 1]]
        r, c = linear_sum_assignment(dense)
        assert dense[np.arange(n), assign].sum() == pytest.approx(dense[r, c].sum())


# ---- gap closing on synthetic movies with missed cells, and the overlap (IoU) cost --------------------------------

def _truth_spots(m):
    """Spots of a synthetic movie's label frames: ``spots.label`` = the track id (ground truth at hand)."""
    from trackpose.tracking.objects import concat_spots, frame_spots
    return concat_spots([frame_spots(f, t, outlines=False) for t, f in enumerate(m.labels)])


def _true_links(m, spots, edges):
    """How many edges join the same cell (same track id, across a gap too) or a mother and her daughter."""
    parent = {int(t): int(p) for t, p in zip(m.tracks["track_id"], m.tracks["parent"])}
    a, b = spots.label[edges.source], spots.label[edges.target]
    return sum(int(x == y or parent.get(int(y)) == int(x)) for x, y in zip(a, b))


@pytest.mark.parametrize("shape, kwargs, distance", [
    ((128, 128), dict(division_interval=8), 10.0),
    ((16, 80, 80), dict(n_cells=16, diameter_range=(10, 16), anisotropy=2.0, division_interval=6), 8.0)])
def test_gap_closing_recovers_the_missed_cells(shape, kwargs, distance):
    from trackpose import synth
    m = synth.movie(n_frames=12, shape=shape, missed_rate=0.1, max_gap=2, seed=11, **kwargs)
    gaps = m.gaps()
    assert len(gaps) >= 5
    spots = _truth_spots(m)
    row = {(int(f), int(l)): k for k, (f, l) in enumerate(zip(spots.frame, spots.label))}
    settings = dict(linking_max_distance=distance, gap_closing_max_distance=distance, max_frame_gap=2,
                    allow_track_splitting=True, splitting_max_distance=distance)
    bridges = {(row[(a, tid)], row[(b, tid)]) for tid, a, b in gaps}
    closed = lap_track(spots, **settings).pairs()
    # TrackMate's rule: only a segment of step 1 (>= 2 spots) is gap-closed; a cell seen in a single frame
    # between gaps, or at either end of the movie, stays alone
    step1 = link_frames(spots, LAPSettings(**settings))
    linked = set(step1.source.tolist()) | set(step1.target.tolist())
    closable = {(s, t) for s, t in bridges if s in linked and t in linked}
    assert len(closable) >= max(5, 0.4 * len(bridges))
    assert len(closable & closed) >= 0.9 * len(closable), (sorted(closable - closed), len(closable))
    assert not bridges & lap_track(spots, **{**settings, "allow_gap_closing": False}).pairs()


def test_overlap_cost_is_one_minus_iou_plus_scaled_distance_and_follows_the_masks():
    from trackpose import synth
    from trackpose.tracking.overlap import LabelOverlaps, label_iou
    m = synth.movie(n_frames=10, shape=(160, 160), kind="cells", n_cells=36, speed=5.0, division_interval=6,
                    missed_rate=0.05, seed=3)
    spots = _truth_spots(m)
    overlaps = LabelOverlaps.from_labels(spots, enumerate(m.labels), max_frame_gap=2)
    # the stored IoUs are the masks' (brute force on one pair of frames, 2 apart)
    a, b, iou = label_iou(m.labels[3], m.labels[5])
    rows3 = {int(l): k for k, (f, l) in enumerate(zip(spots.frame, spots.label)) if f == 3}
    rows5 = {int(l): k for k, (f, l) in enumerate(zip(spots.frame, spots.label)) if f == 5}
    np.testing.assert_allclose(overlaps.iou([rows3[x] for x in a], [rows5[y] for y in b]), iou)
    assert overlaps.iou([rows3[a[0]]], [rows3[a[0]]])[0] == 0  # not stored: no overlap
    settings = LAPSettings(linking_max_distance=18.0, gap_closing_max_distance=18.0, allow_track_splitting=True,
                           splitting_max_distance=18.0)
    edges = lap_track(spots, settings, overlaps=overlaps)
    d = np.linalg.norm(spots.position[edges.source] - spots.position[edges.target], axis=1)
    np.testing.assert_allclose(edges.cost, 1 - overlaps.iou(edges.source, edges.target) + (d / 18.0) ** 2)
    assert np.all(d < 18.0)  # the distance stays the gate
    # crowded cells moving fast: the overlap cost links more cells right than the distance cost does
    right_iou, right_distance = _true_links(m, spots, edges), _true_links(m, spots, lap_track(spots, settings))
    assert right_iou > right_distance
    with pytest.raises(InputError, match="gaps of 2"):
        lap_track(spots, settings, overlaps=LabelOverlaps.from_labels(spots, enumerate(m.labels), 1))
