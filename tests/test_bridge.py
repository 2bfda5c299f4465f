"""The bridge job runner and persistent worker, driven as the Java side drives them: real processes, job folders."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from trackpose import io
from helpers import render, touching_discs

pytestmark = pytest.mark.slow  # starts processes / trains

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "python"), TRACKPOSE_OFFLINE="1")


def make_job(folder: Path, frames: np.ndarray, model_file, axes="TYX", **settings) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(folder / "input.tif", frames, imagej=True, resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"axes": axes, "unit": "micron", "spacing": 2.0})
    job = {"version": 1, "frames": list(range(10, 10 + frames.shape[0])),
           "calibration": {"x": 0.5, "y": 0.5, "z": 2.0, "unit": "micron"},
           "settings": {"model": str(model_file), "diameter": 30.0, "flow_threshold": 0.0, **settings},
           "outputs": {"labels": True, "shapes": True, "meshes": axes.count("Z") > 0}}
    (folder / "job.json").write_text(json.dumps(job))
    return folder


def run_job(folder, *extra):
    p = subprocess.run([sys.executable, "-m", "trackpose", "job", str(folder), *extra], capture_output=True,
                       text=True, env=ENV, timeout=600)
    events = [json.loads(line) for line in p.stdout.splitlines()]  # stdout holds nothing but JSON lines
    return p, events


@pytest.fixture(scope="module")
def movie():
    return np.stack([render(touching_discs((96, 120), n=8, seed=s), seed=s) for s in range(3)]).astype(np.uint16)


def test_2d_movie_job(tmp_path, movie, model_file):
    folder = make_job(tmp_path / "job", movie, model_file)
    before = (folder / "input.tif").read_bytes()
    p, events = run_job(folder)
    assert p.returncode == 0, p.stderr
    kinds = [e["event"] for e in events]
    assert kinds[-1] == "done" and "error" not in kinds
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["done"] for e in progress] == [1, 2, 3] and {e["frame"] for e in progress} == {10, 11, 12}
    labels, meta = io.read_image(folder / "labels.tif")
    assert labels.shape == movie.shape and meta.pixel_size_x == pytest.approx(0.5)
    doc = json.loads((folder / "shapes.json").read_text())
    assert doc["version"] == 1 and doc["ndim"] == 2 and [f["frame"] for f in doc["frames"]] == [10, 11, 12]
    total = 0
    for t, frame in enumerate(doc["frames"]):
        ids = set(np.unique(labels[t])) - {0}
        assert {o["label"] for o in frame["objects"]} <= ids
        for o in frame["objects"]:
            area = (labels[t] == o["label"]).sum()
            assert o["area"] == area and 0 <= o["quality"] <= 1
            assert len(o["polygon"]) >= 3
        total += len(frame["objects"])
    assert events[-1]["objects"] == total > 0
    assert (folder / "input.tif").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["input.tif", "job.json", "labels.tif", "shapes.json"]


def test_parallel_workers_give_the_same_result(tmp_path, movie, model_file):
    one = make_job(tmp_path / "one", movie, model_file)
    two = make_job(tmp_path / "two", movie, model_file, workers=2)
    assert run_job(one)[0].returncode == 0
    p, _ = run_job(two)
    assert p.returncode == 0, p.stderr
    assert np.array_equal(io.read_image(one / "labels.tif")[0], io.read_image(two / "labels.tif")[0])


@pytest.mark.parametrize("change,message", [
    (lambda j: j.update(version=2), "newer"),
    (lambda j: j["settings"].update(colour="red"), "unknown setting"),
    (lambda j: j["settings"].update(channels=[3, 0]), "channel 3 does not exist"),
    (lambda j: j["settings"].update(do_3d=True), "no Z axis"),
    (lambda j: j["settings"].update(flow_threshold="high"), "flow_threshold"),
    (lambda j: j["settings"].update(model="/no/such/model"), "does not exist"),
])
def test_bad_jobs_fail_loudly(tmp_path, movie, model_file, change, message):
    folder = make_job(tmp_path / "bad", movie[:1], model_file)
    job = json.loads((folder / "job.json").read_text())
    change(job)
    (folder / "job.json").write_text(json.dumps(job))
    p, events = run_job(folder)
    assert p.returncode != 0
    assert events[-1]["event"] == "error" and message in events[-1]["message"]
    assert not (folder / "labels.tif").exists() and not (folder / "shapes.json").exists()


def test_sigterm_leaves_no_partial_results(tmp_path, model_file):
    big = np.stack([render(touching_discs((256, 256), n=30, seed=s), seed=s) for s in range(12)]).astype(np.uint16)
    folder = make_job(tmp_path / "cancel", big, model_file)
    proc = subprocess.Popen([sys.executable, "-m", "trackpose", "job", str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    for line in proc.stdout:  # wait until the engine is really working
        if json.loads(line)["event"] == "progress":
            break
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    events = [json.loads(line) for line in out.splitlines()]
    assert proc.returncode != 0
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "cancelled"
    assert sorted(p.name for p in folder.iterdir()) == ["input.tif", "job.json"]


def _file_size_limit(limit: int):
    """preexec_fn: the child may write no file beyond ``limit`` bytes. Writes past it fail with EFBIG (SIGXFSZ
    ignored), as writes on a full disk fail with ENOSPC: the same "no room for this file" path in the engine."""
    def apply():
        import resource
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_full_disk_fails_loudly_and_leaves_no_partial_output(tmp_path, movie, model_file):
    folder = make_job(tmp_path / "full", movie[:2], model_file)
    before = (folder / "input.tif").read_bytes()
    p = subprocess.run([sys.executable, "-m", "trackpose", "job", str(folder)], capture_output=True, text=True,
                       env=ENV, timeout=600, preexec_fn=_file_size_limit(4096))  # labels.tif needs ~46 kB
    events = [json.loads(line) for line in p.stdout.splitlines()]
    assert p.returncode != 0
    assert [e["event"] for e in events].count("progress") == 2  # the frames were segmented; writing failed
    assert "done" not in [e["event"] for e in events]
    error = events[-1]
    assert error["event"] == "error" and error["kind"] == "disk", error
    assert error["message"].startswith(f"disk full / file too large at {folder / 'labels.tif'} (")
    assert "free space or choose another temporary folder" in error["message"]
    assert sorted(q.name for q in folder.iterdir()) == ["input.tif", "job.json"]  # no partial output, no .partial-*
    assert (folder / "input.tif").read_bytes() == before


def test_3d_job_writes_meshes(tmp_path, model_file):
    vol = np.random.default_rng(0).random((1, 10, 40, 40)).astype(np.float32)
    folder = make_job(tmp_path / "vol", vol, model_file, axes="TZYX", do_3d=True, smoothing=1.0)
    p, events = run_job(folder)
    assert p.returncode == 0, p.stderr
    assert any("anisotropy 4" in e.get("message", "") for e in events)  # z 2.0 / x 0.5, from the calibration
    labels, _ = io.read_image(folder / "labels.tif")
    assert labels.shape == (10, 40, 40)  # T = 1 is dropped on read
    doc = json.loads((folder / "shapes.json").read_text())
    assert doc["ndim"] == 3
    for o in doc["frames"][0]["objects"]:
        if "mesh" in o:
            v, f = io.read_ply(folder / o["mesh"])
            assert len(f) > 0


def test_persistent_worker_keeps_the_model(tmp_path, movie, model_file):
    a = make_job(tmp_path / "a", movie[:1], model_file)
    b = make_job(tmp_path / "b", movie[1:2], model_file)
    proc = subprocess.Popen([sys.executable, "-m", "trackpose", "serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)

    def request(obj):
        proc.stdin.write(json.dumps(obj) + "\n")
        proc.stdin.flush()
        while True:
            event = json.loads(proc.stdout.readline())
            if event["event"] in ("done", "error", "pong"):
                return event

    assert json.loads(proc.stdout.readline())["event"] == "ready"
    assert request({"cmd": "ping"})["event"] == "pong"
    first = request({"cmd": "run", "job": str(a)})
    second = request({"cmd": "run", "job": str(b)})
    assert first["event"] == second["event"] == "done"
    bad = request({"cmd": "run", "job": str(tmp_path / "missing")})
    assert bad["event"] == "error" and "does not exist" in bad["message"]
    assert request({"cmd": "run", "job": str(a)})["event"] == "done"  # still alive after an error
    proc.stdin.close()  # the parent going away ends the worker
    assert proc.wait(timeout=30) == 0


def test_worker_reuses_the_network_when_only_thresholds_change(tmp_path, movie, model_file):
    a = make_job(tmp_path / "a", movie[:1], model_file)
    tuned = dict(cellprob_threshold=1.0, min_size=40)
    b = make_job(tmp_path / "b", movie[:1], model_file, **tuned)   # same frame, new thresholds
    c = make_job(tmp_path / "c", movie[1:2], model_file, **tuned)  # another frame
    reference = make_job(tmp_path / "reference", movie[:1], model_file, **tuned)
    p, _ = run_job(reference)
    assert p.returncode == 0, p.stderr
    proc = subprocess.Popen([sys.executable, "-m", "trackpose", "serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)

    def request(folder):
        proc.stdin.write(json.dumps({"cmd": "run", "job": str(folder)}) + "\n")
        proc.stdin.flush()
        events = []
        while True:
            events.append(json.loads(proc.stdout.readline()))
            if events[-1]["event"] in ("done", "error"):
                assert events[-1]["event"] == "done", events[-1]
                return [e.get("message", "") for e in events if e["event"] == "log"]

    assert json.loads(proc.stdout.readline())["event"] == "ready"
    try:
        assert not any("network output reused" in m for m in request(a))
        messages = request(b)
        assert any("network output reused" in m for m in messages), messages
        assert not any("network output reused" in m for m in request(c))
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    np.testing.assert_array_equal(tifffile.imread(b / "labels.tif"), tifffile.imread(reference / "labels.tif"))


def test_bfloat16_setting_reaches_the_engine(tmp_path, movie):
    """job.json's bfloat16 runs the network in bfloat16 (said in the log), with the objects of float32."""
    from trackpose.metrics import matched_fraction
    labels = {}
    for flag in (False, True):
        folder = make_job(tmp_path / str(flag), movie[:1], "trackpose_default", bfloat16=flag)
        p, events = run_job(folder)
        assert p.returncode == 0, p.stderr
        said = any("network in bfloat16" in e.get("message", "") for e in events if e["event"] == "log")
        assert said == flag
        labels[flag] = io.read_image(folder / "labels.tif")[0]
    assert labels[False].max() > 3 and matched_fraction(labels[False], labels[True]) >= 0.9
    folder = make_job(tmp_path / "bad", movie[:1], "trackpose_default", bfloat16="yes")
    p, events = run_job(folder)
    assert p.returncode != 0 and "bfloat16" in events[-1]["message"]


def test_stitching_cut_and_trim_settings_reach_the_engine(tmp_path):
    """job.json's stitch_split, stitch_trim and stitch_min_mean_cellprob (TrackMate's STITCH_SPLIT, STITCH_TRIM,
    STITCH_MIN_MEAN_CELLPROB) reach segment(): 0, 0 and 0 give cellpose's stitching, the defaults cut the nuclei it
    chains along Z."""
    import trackpose
    from trackpose import synth
    image, truth = synth.nuclei_volume((24, 96, 96), diameter_range=(12, 24), anisotropy=2.0, seed=9101)
    diameter = synth.volume_diameter(truth, 2.0)
    labels = {}
    for name, extra in (("default", {}),
                        ("cellpose", dict(stitch_split=0.0, stitch_trim=0.0, stitch_min_mean_cellprob=0.0))):
        folder = make_job(tmp_path / name, image[None], "trackpose_default", axes="TZYX", stitch_threshold=0.25,
                          diameter=diameter, **extra)
        p, events = run_job(folder)
        assert p.returncode == 0, p.stderr
        labels[name] = io.read_image(folder / "labels.tif")[0]
        direct = trackpose.segment(io.read_image(folder / "input.tif")[0], z_axis=0, stitch_threshold=0.25,
                                   diameter=diameter, flow_threshold=0.0, **extra).masks
        np.testing.assert_array_equal(labels[name], direct)
    assert labels["default"].max() > labels["cellpose"].max()
    folder = make_job(tmp_path / "bad", image[None], "trackpose_default", axes="TZYX", stitch_threshold=0.25,
                      stitch_trim=1.5)
    p, events = run_job(folder)
    assert p.returncode != 0 and "stitch_trim" in events[-1]["message"] and "0.99" in events[-1]["message"]
    folder = make_job(tmp_path / "bad2", image[None], "trackpose_default", axes="TZYX", stitch_threshold=0.25,
                      stitch_min_mean_cellprob=7.0)
    p, events = run_job(folder)
    assert p.returncode != 0 and "stitch_min_mean_cellprob" in events[-1]["message"] and "6" in events[-1]["message"]


def test_3d_faint_object_setting_reaches_the_engine(tmp_path):
    """job.json's min_mean_cellprob reaches segment() in 3D mode: 0 keeps every object (cellpose's 3D mode), the
    default (key absent, as the TrackMate detector sends it) removes the faint ones; out of range is refused."""
    import trackpose
    from trackpose import synth
    image, truth = synth.nuclei_volume((24, 96, 96), diameter_range=(12, 24), anisotropy=2.0, seed=9100)
    diameter = synth.volume_diameter(truth, 2.0)
    labels, cache = {}, {}  # one network pass for both direct runs
    for name, extra in (("default", {}), ("off", dict(min_mean_cellprob=0.0))):
        folder = make_job(tmp_path / name, image[None], "trackpose_default", axes="TZYX", do_3d=True,
                          anisotropy=2.0, diameter=diameter, **extra)
        p, events = run_job(folder)
        assert p.returncode == 0, p.stderr
        labels[name] = io.read_image(folder / "labels.tif")[0]
        direct = trackpose.segment(io.read_image(folder / "input.tif")[0], z_axis=0, do_3d=True, anisotropy=2.0,
                                   diameter=diameter, flow_threshold=0.0, network_cache=cache, **extra).masks
        np.testing.assert_array_equal(labels[name], direct)
    assert 0 < labels["default"].max() < labels["off"].max()
    folder = make_job(tmp_path / "bad", image[None], "trackpose_default", axes="TZYX", do_3d=True,
                      min_mean_cellprob=20.0)
    p, events = run_job(folder)
    assert p.returncode != 0 and "min_mean_cellprob" in events[-1]["message"] and "18" in events[-1]["message"]
