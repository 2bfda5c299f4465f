"""Preview latency of the bridge: a fresh engine process per preview (cold) vs the persistent worker (warm).

Run:  python benchmarks/bench_preview.py [--size 512] [--repeats 3]

Cold = `python -m trackpose job DIR` from process start to exit (Python and torch start-up, model load, one frame).
Warm = one `{"cmd": "run"}` request to a `trackpose serve` worker that has already served one job (model loaded).
Both on the same frame with the built-in model (one pixel changed per warm request, so that the worker's reuse of
the last network output does not apply); prints the medians and the ratio (target: warm <= cold / 3). Then the
preview loop of tuning thresholds: the same frame with only cellprob/flow thresholds changed, where the worker
reuses the network output and redoes only the steps after it.
--stages: also where a warm request's time goes (ms per stage, in this process, model already loaded).
--bfloat16: the job's bfloat16 setting on, for cold and warm alike.
"""
import argparse
import functools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile


def make_job(folder: Path, size: int, bfloat16: bool = False) -> Path:
    from trackpose import synth
    image, _ = synth.nuclei_image((size, size), diameter_range=(14, 26), seed=11)
    folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(folder / "input.tif", (image / image.max() * 4000).astype(np.uint16)[None], imagej=True,
                     metadata={"axes": "TYX"})
    (folder / "job.json").write_text(json.dumps({"version": 1, "frames": [0], "settings": {
        "diameter": 20.0, "bfloat16": bfloat16}}))
    return folder


def stage_breakdown(job: Path, repeats: int) -> None:
    """Times each stage of warm requests (run_job in this process, model cached) by wrapping the stage functions."""
    t0 = time.perf_counter()
    import torch  # noqa: F401
    from trackpose import bridge as J, contours, dynamics, inference, io, measure, segmentation
    start = time.perf_counter() - t0
    times = {}

    def timed(module, name, key):
        f = getattr(module, name)

        @functools.wraps(f)
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                times[key] = times.get(key, 0.0) + time.perf_counter() - t
        setattr(module, name, wrapper)

    stages = [(J, "read_job", "job.json: read + validate"), (io, "read_image", "input.tif: read"),
              (inference, "_forward", "network forward (all tiles)"),
              (segmentation, "run_network", "network stage total (normalise, resize, tiles, forward)"),
              (dynamics, "compute_masks", "flows -> masks (dynamics, flow check)"),
              (J, "_write_outputs", "outputs total"), (measure, "object_table", "  object table"),
              (contours, "contours", "  contours"), (io, "write_labels", "  labels.tif (write + fsync)")]
    for module, name, key in stages:
        timed(module, name, key)
    t = time.perf_counter()
    J.cached_model("trackpose_default", False)
    load = time.perf_counter() - t
    J.warm_up()
    J.run_job(job, emit=lambda *a, **k: None, workers=1)  # the first request, as the worker's
    rows = []
    for _ in range(repeats):
        times.clear()
        t = time.perf_counter()
        J.run_job(job, emit=lambda *a, **k: None, workers=1)
        rows.append((time.perf_counter() - t, dict(times)))
    print(f"in-process: import torch {start:.2f} s, built-in model load {load:.2f} s; warm request stages "
          f"(median of {repeats}, ms):")
    total = statistics.median(r[0] for r in rows)
    for _, _, key in stages:
        print(f"  {key:58s} {statistics.median(r[1].get(key, 0.0) for r in rows) * 1000:9.0f}")
    print(f"  {'request total':58s} {total * 1000:9.0f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--stages", action="store_true", help="also time the stages of a warm request")
    ap.add_argument("--bfloat16", action="store_true",
                    help="both cold and warm with the bfloat16 setting (network in bfloat16, ~1.7x faster where the "
                         "CPU has AVX512-BF16/AMX)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="trackpose-preview-"))
    try:
        run(make_job(root / "job", args.size, args.bfloat16), args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(job: Path, args) -> None:
    cold = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "trackpose", "job", str(job)], capture_output=True, text=True)
        cold.append(time.perf_counter() - t)
        if p.returncode != 0:
            sys.exit(p.stdout + p.stderr)

    worker = subprocess.Popen([sys.executable, "-m", "trackpose", "serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)

    image = tifffile.imread(job / "input.tif").reshape(1, args.size, args.size)  # T, Y, X

    def touch_frame(k: int) -> None:
        # The worker reuses the network output when the same pixels come back with the same network settings
        # (a threshold-only change). A warm preview of a new frame must not profit from that: change one pixel.
        changed = image.copy()
        changed.flat[0] += k
        tifffile.imwrite(job / "input.tif", changed, imagej=True, metadata={"axes": "TYX"})

    def request(folder: Path = job) -> float:
        t = time.perf_counter()
        worker.stdin.write(json.dumps({"cmd": "run", "job": str(folder)}) + "\n")
        worker.stdin.flush()
        while True:
            event = json.loads(worker.stdout.readline())
            if event["event"] == "error":
                sys.exit(event["message"])
            if event["event"] == "done":
                return time.perf_counter() - t

    json.loads(worker.stdout.readline())  # ready
    first = request()
    warm = []
    for k in range(args.repeats):
        touch_frame(k + 1)
        warm.append(request())
    # the preview loop of tuning thresholds: same frame, only post-network settings changed
    tuned_job = job.parent / "tuned"
    tuned_job.mkdir(exist_ok=True)
    (tuned_job / "input.tif").write_bytes((job / "input.tif").read_bytes())
    settings = json.loads((job / "job.json").read_text())
    request()  # the frame as it is now, so the next requests find its network output
    tuned = []
    for k in range(args.repeats):
        settings["settings"].update(cellprob_threshold=0.5 * (k + 1), flow_threshold=0.4 + 0.1 * (k + 1))
        (tuned_job / "job.json").write_text(json.dumps(settings))
        tuned.append(request(tuned_job))
    worker.stdin.close()
    worker.wait()
    c, w = statistics.median(cold), statistics.median(warm)
    print(f"frame {args.size}x{args.size}, built-in model, {'bfloat16' if args.bfloat16 else 'float32'} network, "
          f"{args.repeats} repeats")
    print(f"cold (new process per preview): {c:.2f} s   [{', '.join(f'{x:.2f}' for x in cold)}]")
    print(f"worker, first job (loads model): {first:.2f} s")
    print(f"warm (persistent worker):        {w:.2f} s   [{', '.join(f'{x:.2f}' for x in warm)}]")
    print(f"warm / cold = {w / c:.2f} (target <= 0.33)")
    tu = statistics.median(tuned)
    print(f"warm, thresholds changed on the same frame (network output reused): {tu:.2f} s   "
          f"[{', '.join(f'{x:.2f}' for x in tuned)}]; / cold = {tu / c:.2f}")
    if args.stages:
        stage_breakdown(job, args.repeats)


if __name__ == "__main__":
    main()
