"""Hostile inputs and killed processes: each finding of the reliability review has a test here.

The fast tests call the validators directly; the ones marked slow start real engine processes.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from trackpose.batch import segment_files
from trackpose.bridge import read_job
from trackpose.errors import InputError

from test_bridge import ENV, make_job

ROOT = Path(__file__).resolve().parents[1]


def write_job(folder: Path, **fields) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.json").write_text(json.dumps({"version": 1, **fields}))
    return folder


@pytest.mark.parametrize("calibration", [{"x": "abc"}, [1, 2], {"x": -0.5}, {"x": 1e-300}, {"z": True},
                                         {"unit": 3}, {"pixel": 1.0}, "0.5"])
def test_wrong_calibration_is_an_input_error_naming_the_key(tmp_path, calibration):
    with pytest.raises(InputError, match="calibration"):
        read_job(write_job(tmp_path, calibration=calibration))


def test_non_finite_calibration_is_refused(tmp_path):
    (tmp_path / "job.json").write_text('{"version": 1, "calibration": {"x": Infinity}}')
    with pytest.raises(InputError, match="Infinity"):
        read_job(tmp_path)
    (tmp_path / "job.json").write_text('{"version": 1, "calibration": {"x": NaN}}')
    with pytest.raises(InputError, match="NaN"):
        read_job(tmp_path)


@pytest.mark.parametrize("outputs", [["labels"], {"labels": "yes"}, {"masks": True}])
def test_wrong_outputs_are_refused(tmp_path, outputs):
    with pytest.raises(InputError, match="output"):
        read_job(write_job(tmp_path, outputs=outputs))


@pytest.mark.parametrize("frames", [[5, 5], [True], [10 ** 30], [-1], "0,1", [0.5]])
def test_bad_frame_lists_are_refused(tmp_path, frames):
    with pytest.raises(InputError, match="frames"):
        read_job(write_job(tmp_path, frames=frames))


def test_a_job_json_that_links_to_an_endless_device_is_not_read(tmp_path):
    (tmp_path / "job.json").symlink_to("/dev/zero")
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="not a regular file"):
        read_job(tmp_path)
    assert time.perf_counter() - t0 < 5


def test_a_huge_or_deeply_nested_job_json_is_refused(tmp_path):
    (tmp_path / "job.json").write_text('{"version": 1, "pad": "' + "x" * (2 << 20) + '"}')
    with pytest.raises(InputError, match="larger than"):
        read_job(tmp_path)
    (tmp_path / "job.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(InputError, match="nested|JSON"):
        read_job(tmp_path)


def test_a_bad_output_folder_fails_each_image_before_any_work(tmp_path):
    images = []
    for name in ("a", "b"):
        tifffile.imwrite(tmp_path / f"{name}.tif", np.zeros((32, 32), np.uint16))
        images.append(tmp_path / f"{name}.tif")
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    lines = []
    t0 = time.perf_counter()
    outcomes = segment_files(images, {"model": "no-such-model-needed"}, savedir=not_a_folder, report=lines.append)
    assert [o.error is not None for o in outcomes] == [True, True]
    assert all("is a file" in o.error for o in outcomes), lines
    assert time.perf_counter() - t0 < 5  # refused before the network ran


def test_an_empty_image_says_it_is_empty():
    from trackpose import segment
    with pytest.raises(InputError, match="empty"):
        segment(np.zeros((0, 64), np.float32), diameter=30)


# ------------------------------------------------------------------------------------------------ processes

def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux) to find the worker processes")
def test_workers_die_with_a_killed_job_process(tmp_path, model_file):
    frames = np.random.default_rng(0).integers(0, 1000, (8, 384, 384)).astype(np.uint16)
    folder = make_job(tmp_path / "job", frames, model_file, workers=2)
    p = subprocess.Popen([sys.executable, "-m", "trackpose", "job", str(folder)], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=ENV)
    for line in p.stdout:  # the workers are running (each has done its set-up) once the first frame is done
        if json.loads(line)["event"] == "progress":
            break
    workers = [c for c in _children(p.pid) if "spawn_main" in _cmdline(c)]
    assert len(workers) == 2, [_cmdline(c) for c in _children(p.pid)]
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    survivors = [w for w in workers if _alive(w)]
    for w in survivors:
        os.kill(w, signal.SIGKILL)
    assert not survivors, "worker processes outlived their killed parent"
    assert not list(folder.glob("shapes.json")) and not list(folder.glob("labels.tif"))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text(errors="replace").replace("\0", " ")
    except OSError:
        return ""


@pytest.mark.slow
def test_serve_survives_a_hostile_request_line():
    p = subprocess.Popen([sys.executable, "-m", "trackpose", "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, env=ENV)
    try:
        assert json.loads(p.stdout.readline())["event"] == "ready"
        p.stdin.write("[" * 3000 + "\n")
        p.stdin.write("x" * (200 * 1024) + "\n")
        p.stdin.write('{"cmd": "ping"}\n')
        p.stdin.flush()
        events = [json.loads(p.stdout.readline()) for _ in range(3)]
        assert [e["event"] for e in events] == ["error", "error", "pong"], events
        assert events[0]["kind"] == "protocol" and "longer than" in events[1]["message"]
    finally:
        p.stdin.close()
        p.wait(timeout=60)


@pytest.mark.slow
def test_sigterm_during_a_served_job_reports_and_cleans_up(tmp_path, model_file):
    frames = np.random.default_rng(1).integers(0, 1000, (6, 256, 256)).astype(np.uint16)
    folder = make_job(tmp_path / "job", frames, model_file)
    p = subprocess.Popen([sys.executable, "-m", "trackpose", "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, env=ENV)
    assert json.loads(p.stdout.readline())["event"] == "ready"
    p.stdin.write(json.dumps({"cmd": "run", "job": str(folder)}) + "\n")
    p.stdin.flush()
    while True:  # wait until the job has started
        event = json.loads(p.stdout.readline())
        if event["event"] in ("progress", "log") and list(folder.glob(".partial-*")):
            break
        assert event["event"] not in ("done", "error"), event
    p.send_signal(signal.SIGTERM)
    rest = [json.loads(line) for line in p.stdout.read().splitlines()]
    p.wait(timeout=60)
    assert rest and rest[-1]["event"] == "error" and rest[-1]["kind"] == "cancelled", rest
    assert not list(folder.glob(".partial-*")) and not (folder / "shapes.json").exists()


def test_a_decompression_bomb_is_refused_from_the_header(tmp_path, monkeypatch):
    from trackpose import io
    from trackpose.io import images
    path = tmp_path / "bomb.tif"
    tifffile.imwrite(path, np.zeros((2048, 2048), np.uint8), compression="zlib")  # ~1000:1
    assert path.stat().st_size * 200 < 2048 * 2048
    monkeypatch.setattr(images, "MAX_COMPRESSION_RATIO", 200)  # a small bomb, for a quick test
    monkeypatch.setattr(images, "BOMB_MIN_BYTES", 2 ** 20)
    with pytest.raises(InputError, match="decompression bomb"):
        io.read_image(path)


def test_pixels_that_cannot_fit_are_refused_before_decoding(tmp_path, monkeypatch):
    from trackpose import io, memory
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, np.zeros((1024, 512), np.uint16))  # 1 MiB
    monkeypatch.setattr(memory, "available_memory", lambda: 2 ** 20)  # 1 MiB free: 0.5 MiB may be decoded
    with pytest.raises(InputError, match=r"GiB of pixels but 0\.0 GiB of memory"):
        io.read_image(path)


def test_segment_checks_memory_before_copying_the_image(monkeypatch):
    """A 20000 x 20000 image without a diameter was copied to float32 and run through the estimation network
    before any check; now the check comes first (the model is never needed)."""
    from trackpose import memory, segment
    monkeypatch.setattr(memory, "available_memory", lambda: 8 * 2 ** 30)
    big = np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), shape=(20000, 20000), strides=(0, 0))
    t0 = time.perf_counter()
    with pytest.raises(InputError, match="needs about .* GiB of memory but 8.0 GiB"):
        segment(big)
    assert time.perf_counter() - t0 < 30


def test_a_rerun_skips_images_whose_outputs_are_complete(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((32, 32), np.uint16))
    out = tmp_path / "out"
    out.mkdir()
    tifffile.imwrite(out / "a_cp_masks.tif", np.zeros((32, 32), np.uint16))
    lines = []
    outcomes = segment_files([tmp_path / "a.tif"], {"model": "never-loaded"}, savedir=out, report=lines.append,
                             skip_existing=True)
    assert outcomes[0].error is None and "skipped" in lines[0]
    assert not list(out.glob(".*.tmp"))  # no half-written file left by earlier runs either


def _wait_for_partial(folder: Path, proc, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and not list(folder.glob(".partial-*")):
        assert proc.poll() is None, "the engine ended before the job started"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("command", ["job", "serve"])
def test_ctrl_c_during_a_job_is_reported_as_a_cancel(tmp_path, model_file, command):
    frames = np.random.default_rng(2).integers(0, 1000, (6, 256, 256)).astype(np.uint16)
    folder = make_job(tmp_path / "job", frames, model_file)
    argv = [sys.executable, "-m", "trackpose", command] + ([str(folder)] if command == "job" else [])
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=ENV)
    if command == "serve":
        assert json.loads(p.stdout.readline())["event"] == "ready"
        p.stdin.write(json.dumps({"cmd": "run", "job": str(folder)}) + "\n")
        p.stdin.flush()
    _wait_for_partial(folder, p)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["event"] == "error" and events[-1]["kind"] == "cancelled", events[-3:]
    assert p.returncode in (3, 130) and "Traceback" not in err
    assert not list(folder.glob(".partial-*")) and not (folder / "shapes.json").exists()


@pytest.mark.slow
def test_ctrl_c_in_the_cellpose_command_line_says_interrupted(tmp_path, model_file):
    for k in range(3):
        tifffile.imwrite(tmp_path / f"im{k}.tif", np.random.default_rng(k).integers(0, 1000, (384, 384)).astype(
            np.uint16))
    p = subprocess.Popen([sys.executable, "-m", "trackpose.cli.cellpose", "--dir", str(tmp_path),
                          "--pretrained_model", str(model_file), "--diameter", "24", "--verbose"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    for line in p.stdout:  # started: it is logging
        if "running trackpose" in line:
            break
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "interrupted" in err and "Traceback" not in err, err[-500:]


@pytest.fixture
def small_mount(tmp_path):
    """A tmpfs of 64 KiB (and a read-only one) for disk-full tests; skipped where this process cannot mount."""
    import shutil as sh
    mounts = {"small": tmp_path / "small", "ro": tmp_path / "ro"}
    for path in mounts.values():
        path.mkdir()
    if not sh.which("mount") or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the CI machine runs as root)")
    done = []
    try:
        for name, options in (("small", "size=64k"), ("ro", "ro,size=64k")):
            p = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mounts[name])],
                               capture_output=True, text=True)
            if p.returncode != 0:
                pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
            done.append(mounts[name])
        yield mounts
    finally:
        for path in done:
            subprocess.run(["umount", str(path)], capture_output=True)


def test_a_read_only_output_folder_fails_before_the_work(tmp_path, small_mount):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((32, 32), np.uint16))
    lines = []
    outcomes = segment_files([tmp_path / "a.tif"], {"model": "never-loaded"}, savedir=small_mount["ro"],
                             report=lines.append)
    assert "read-only" in outcomes[0].error, lines


def test_a_full_disk_fails_that_image_and_leaves_nothing(tmp_path, small_mount, model_file):
    for name in ("a", "b"):
        tifffile.imwrite(tmp_path / f"{name}.tif",
                         np.random.default_rng(0).integers(0, 1000, (256, 256)).astype(np.uint16))
    lines = []
    outcomes = segment_files([tmp_path / "a.tif", tmp_path / "b.tif"], {"model": str(model_file), "diameter": 24},
                             savedir=small_mount["small"], report=lines.append)
    assert all(o.error and "cannot be written" in o.error and "disk" in o.error for o in outcomes), lines  # both
    assert list(small_mount["small"].iterdir()) == []  # no partial file left behind


def test_ctrl_c_dropped_inside_a_ctypes_callback_still_cancels_the_job(capsys, tmp_path):
    """numba compiles through llvmlite ctypes callbacks; a signal handled inside one raises where Python can only
    drop the exception. A job must still end as a cancel (before writing outputs), quietly, with exit 130, and a
    batch of files (``trackpose segment``, ``trackpose-cellpose``) must stop before its next file."""
    import ctypes

    from trackpose import bridge
    from trackpose.batch import segment_files
    from trackpose.errors import Interrupted, install_stop_signals
    cancel = threading.Event()
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), sys.unraisablehook
    restore = install_stop_signals(cancel)
    try:
        @ctypes.CFUNCTYPE(None)
        def callback():
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs at one of these bytecodes, inside the callback
                time.sleep(0.001)

        callback()  # returns normally: the exception was dropped
        assert cancel.is_set()
        with pytest.raises(Interrupted) as info:
            bridge._check_cancel(cancel)
        assert bridge._exit_code(info.value) == 130
        with pytest.raises(Interrupted):  # before the first file is even looked at
            segment_files([tmp_path / "not-read.tif"], {}, cancel=cancel)
    finally:
        restore()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), sys.unraisablehook) == saved
    assert "Traceback" not in capsys.readouterr().err


def test_a_cancel_raised_while_a_log_record_is_written_stops_the_run(capsys):
    """logging swallows (and prints a traceback for) any Exception raised while it writes; Ctrl-C's Interrupted
    raised there must reach the command line's handler instead."""
    import logging

    from trackpose.errors import Interrupted, let_cancels_through

    class Stream:
        def write(self, text):
            raise Interrupted("interrupted")  # as the SIGINT handler raises it at this point

        def flush(self):
            pass
    log = logging.getLogger("trackpose.test-cancel-in-logging")
    log.propagate = False
    log.addHandler(let_cancels_through(logging.StreamHandler(Stream())))
    try:
        with pytest.raises(Interrupted):
            log.warning("a record")
    finally:
        log.handlers.clear()
    assert "Logging error" not in capsys.readouterr().err
