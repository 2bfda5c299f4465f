"""trackpose track / eval-tracks and the exports, on synthetic movies with ground-truth tracks."""
import csv
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from trackpose import io, synth
from trackpose.cli.main import main
from trackpose.errors import InputError
from trackpose.tracking import make_spots, track, overlap_track_labels, save_tracking
from trackpose.tracking.evaluate import evaluate_ctc, write_ctc_ground_truth
from trackpose.tracking.graph import tracklets
from trackpose.tracking.lap import Edges
from trackpose.masks import renumber  # ids 1..n per frame, in id order


@pytest.fixture(scope="module")
def movie():
    return synth.movie(n_frames=10, shape=(96, 96), seed=5, division_interval=6)


def test_track_api_on_labels_recovers_divisions(movie, tmp_path):
    labels = np.stack([renumber(f) for f in movie.labels])
    result = track(labels=labels, tracker="lap", lap=dict(linking_max_distance=8.0, allow_track_splitting=True,
                                                          splitting_max_distance=10.0, allow_gap_closing=False))
    assert len(result.spots) == len(movie.tracks)
    out = save_tracking(result, tmp_path / "out", "m")
    gt = write_ctc_ground_truth(tmp_path / "gt", *movie.ctc_ground_truth())
    scores = evaluate_ctc(out / "ctc", gt)
    assert scores["Valid"] == 1
    assert scores["TRA"] > 0.97 and scores["DET"] == pytest.approx(1.0)
    assert movie.divisions()  # the movie divides, and some split edges were found
    assert np.bincount(result.edges.source).max() == 2


def test_outputs_and_tracked_movie(movie, tmp_path):
    labels = np.stack([renumber(f) for f in movie.labels])
    src = tmp_path / "labels.tif"
    io.write_labels(src, labels, io.ImageMeta(axes="TYX", pixel_size_x=0.5, pixel_size_y=0.5, unit="micron"))
    assert main(["track", str(src), "--labels", "--out", str(tmp_path / "o"), "--tracker", "lap",
                 "--linking-max-distance", "4", "--allow-track-splitting", "true",
                 "--splitting-max-distance", "5"]) == 0
    out = tmp_path / "o"
    assert sorted(p.name for p in out.iterdir()) == ["ctc", "edges.csv", "labels.xml", "labels_tracked.tif",
                                                     "spots.csv", "tracks.csv"]
    assert len(list((out / "ctc").glob("mask*.tif"))) == 10
    spots = list(csv.DictReader(open(out / "spots.csv")))
    assert {"ID", "TRACK_ID", "POSITION_X", "POSITION_Y", "FRAME", "RADIUS", "QUALITY"} <= set(spots[0])
    assert max(float(s["POSITION_X"]) for s in spots) < 48  # calibrated: 96 px x 0.5 micron
    tracked = tifffile.imread(out / "labels_tracked.tif")
    assert tracked.shape == labels.shape
    for s in spots[:20]:  # each object's pixels carry its track id
        t, lab = int(s["FRAME"]), int(s["OBJECT_LABEL"])
        assert set(np.unique(tracked[t][labels[t] == lab])) == {int(s["TRACK_ID"])}
    # nothing half-written: a second run into the same folder is refused, the folder untouched
    assert main(["track", str(src), "--labels", "--out", str(out)]) != 0
    assert not list(tmp_path.glob(".o.partial-*"))


def test_ctc_tracklets_split_at_gaps_divisions_and_merges():
    spots = make_spots([0, 1, 3, 2, 2, 0, 1], np.zeros((7, 2)))
    # 0 -> 1 -> (gap) 2 ; 1 -> 3 and 1 -> 4 would be a division; here: 0->1, 1->3, 1->4, 3 ... and a merge 5,6
    edges = Edges(np.array([0, 1, 1, 5, 6]), np.array([1, 3, 4, 6, 4]), np.array([1., 1., 2., 1., 1.5]))
    label, rows = tracklets(spots, edges)
    by = {r[0]: r for r in rows}
    assert label[0] == label[1] and by[label[3]][3] == label[1]  # daughter's parent = the mother
    assert label[4] != label[6] and by[label[4]][3] in (label[1], label[6])  # merge: new label, one parent
    assert by[label[2]][1] == 3 and by[label[2]][3] == 0  # spot 2 alone


def test_voxel_overlap_tracks_3d():
    m = synth.movie(n_frames=5, shape=(16, 48, 48), n_cells=4, seed=2, division_interval=0)
    labels = [renumber(f) for f in m.labels]
    result = track(labels=np.stack(labels), tracker="overlap-voxels")
    assert len(result.edges) == len(m.tracks) - len(np.unique(m.tracks["track_id"]))


@pytest.mark.parametrize("args, message", [
    (["--linking-max-distance", "-1"], "linking-max-distance"),
    (["--max-frame-gap", "0"], "max-frame-gap"),
    (["--cutoff-percentile", "2"], "cutoff-percentile"),
])
def test_settings_out_of_range_exit_nonzero(tmp_path, capsys, args, message):
    src = tmp_path / "l.tif"
    io.write_labels(src, np.ones((2, 8, 8), np.int32), io.ImageMeta(axes="TYX"))
    assert main(["track", str(src), "--labels", "--out", str(tmp_path / "o")] + args) != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_input_errors(tmp_path, capsys):
    empty = np.ones((3, 8, 8), np.int32)
    empty[1] = 0
    with pytest.raises(InputError, match="frame 1 has no objects"):
        track(labels=empty)
    gaps = np.ones((2, 8, 8), np.int32)
    gaps[:, :4] = 3
    with pytest.raises(InputError, match="not contiguous"):
        track(labels=gaps)
    zstack = tmp_path / "z.tif"
    io.write_labels(zstack, np.ones((3, 8, 8), np.int32), io.ImageMeta(axes="ZYX"))
    assert main(["track", str(zstack), "--labels", "--out", str(tmp_path / "o")]) != 0
    assert "time or Z" in capsys.readouterr().err
    folder = tmp_path / "frames"
    folder.mkdir()
    io.write_labels(folder / "f1.tif", np.ones((8, 8), np.int32), io.ImageMeta(axes="YX", pixel_size_x=1,
                                                                               pixel_size_y=1))
    io.write_labels(folder / "f2.tif", np.ones((8, 8), np.int32), io.ImageMeta(axes="YX", pixel_size_x=2,
                                                                               pixel_size_y=2))
    assert main(["track", str(folder), "--labels", "--out", str(tmp_path / "o")]) != 0
    assert "calibration" in capsys.readouterr().err


def test_eval_tracks_command(movie, tmp_path, capsys):
    gt = write_ctc_ground_truth(tmp_path / "gt", *movie.ctc_ground_truth())
    # the ground truth scored against itself
    res = tmp_path / "res"
    res.mkdir()
    for t, lab in enumerate(movie.labels):
        tifffile.imwrite(res / f"mask{t:03d}.tif", lab.astype(np.uint16))
    (res / "res_track.txt").write_text((gt / "TRA" / "man_track.txt").read_text())
    assert main(["eval-tracks", str(res), str(gt)]) == 0
    out = capsys.readouterr().out
    assert "TRA    1.0000" in out and "BC(0)  1.0000" in out


@pytest.mark.slow
def test_track_a_raw_movie_end_to_end(tmp_path, monkeypatch, capsys):
    """trackpose track movie.tif --out DIR: the built-in model segments each frame, one frame at a time (no
    earlier frame's network output is still alive when the next is segmented), then the default tracker links them;
    the CTC folder passes py-ctcmetrics' validation and scores well against the synthetic truth."""
    import gc
    import weakref

    import trackpose.segmentation as segmentation
    m = synth.movie(n_frames=4, shape=(128, 128), seed=3, division_interval=0)
    src = tmp_path / "movie.tif"
    tifffile.imwrite(src, m.images, imagej=True, metadata={"axes": "TYX"})
    real, alive = segmentation.segment, []

    def segment(image, **kw):
        gc.collect()
        assert sum(r() is not None for r in alive) == 0, "an earlier frame's network outputs are still held"
        assert np.shape(image) == (128, 128) and not isinstance(kw["model"], str)  # a frame; the model loaded once
        result = real(image, **kw)
        alive.append(weakref.ref(result.flows))
        return result
    monkeypatch.setattr(segmentation, "segment", segment)
    assert main(["track", str(src), "--out", str(tmp_path / "out")]) == 0
    assert len(alive) == 4
    printed = capsys.readouterr().out
    found = [int(line.split(": ")[1].split()[0]) for line in printed.splitlines() if line.startswith("frame ")]
    truth = [len(np.unique(f)) - 1 for f in m.labels]
    assert len(found) == 4 and all(abs(a - b) <= max(1, 0.1 * b) for a, b in zip(found, truth)), (found, truth)
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {"ctc", "movie.xml", "movie_tracked.tif", "spots.csv", "edges.csv",
                                               "tracks.csv"}
    assert 'DETECTOR_NAME="TRACKPOSE_DETECTOR"' in (out / "movie.xml").read_text()
    gt = write_ctc_ground_truth(tmp_path / "gt", *m.ctc_ground_truth())
    scores = evaluate_ctc(out / "ctc", gt)
    assert scores["Valid"] == 1
    assert scores["DET"] > 0.9 and scores["TRA"] > 0.9


@pytest.mark.slow
def test_track_a_movie_with_its_frames_segmented_on_dask(tmp_path):
    """--cluster local: the frames are segmented by Dask workers, tracked here; the same spots as without Dask."""
    pytest.importorskip("dask.distributed", reason="needs the distributed extra")
    movie = synth.movie(n_frames=3, shape=(128, 128), seed=3)
    images = np.asarray(movie.images)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, (images / images.max() * 4000).astype(np.uint16), imagej=True, metadata={"axes": "TYX"})
    runs = {}
    for name, extra in (("plain", []), ("dask", ["--cluster", "local", "--workers", "1", "--threads", "1"])):
        p = subprocess.run([sys.executable, "-m", "trackpose", "track", str(path), "--out", str(tmp_path / name),
                            *extra], capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stderr
        runs[name] = (tmp_path / name / "spots.csv").read_text()
    assert runs["dask"] == runs["plain"]
    assert not list(tmp_path.glob(".trackpose-frames-*"))  # the workers' frames are removed


@pytest.mark.parametrize("tracker", ["lap", "lap-iou"])
def test_movie_with_missed_cells_is_tracked_across_the_gaps(tracker, tmp_path):
    m = synth.movie(n_frames=10, shape=(96, 96), seed=5, division_interval=6, missed_rate=0.1)
    assert len(m.gaps()) >= 3
    labels = np.stack([renumber(f) for f in m.labels])
    lap = dict(linking_max_distance=8.0, allow_track_splitting=True, splitting_max_distance=10.0,
               gap_closing_max_distance=10.0)
    result = track(labels=labels, tracker=tracker, lap=lap)
    out = save_tracking(result, tmp_path / "out", "m")
    gt = write_ctc_ground_truth(tmp_path / "gt", *m.ctc_ground_truth())
    scores = evaluate_ctc(out / "ctc", gt)
    without = track(labels=labels, tracker=tracker, lap={**lap, "allow_gap_closing": False})
    out2 = save_tracking(without, tmp_path / "nogap", "m")
    assert scores["Valid"] == 1 and scores["TRA"] > 0.97
    assert scores["LNK"] > evaluate_ctc(out2 / "ctc", gt)["LNK"]  # the gaps are bridged
    if tracker == "lap-iou":
        assert result.tracker == "TRACKPOSE_IOU_LAP_TRACKER" and result.tracker_settings["LINKING_COST"] == "IOU"
