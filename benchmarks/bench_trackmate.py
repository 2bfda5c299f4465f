"""The detector inside the real TrackMate 8.1.6: preview times and a whole movie through TrackMate.process().

Run (from the repository root; builds the test classes and the class path with Maven first):

    python benchmarks/bench_trackmate.py [--frames 50] [--size 512] [--java JAVA] [--only preview|process]

One synthetic nuclei movie (``synth.movie``, 0.5 micron pixels, diameter setting 9 micron = 18 px) is written as an
ImageJ TIFF and opened in TrackMate by ``TrackMateBench`` (java/src/test/java/org/trackpose/trackmate/), with the
built-in model and default settings on the CPU:

* **preview**: TrackMate's own preview path (``DetectionPreview.runPreviewDetection``, what the Preview button of a
  detector panel runs) with our factory's preview copy (the persistent worker). Cold = the first preview (worker
  start: Python, torch, model), warm = a preview of another frame (new pixels), threshold-only = the same frame
  again with only the cell-probability / flow thresholds changed (the worker reuses the network output).
* **process**: ``TrackMate.process()`` on every frame: detection with a fresh engine process (as a run does), all of
  TrackMate's spot, edge and track analyzers, the LAP tracker.

The engine alone is timed in this process on the same frames (``trackpose.segment``, model loaded, after one
warm-up frame): the ratios say what TrackMate and the bridge add to it.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

ROOT = Path(__file__).resolve().parents[1]
PIXEL_UM = 0.5
DIAMETER_PX = 18.0


def make_movie(path: Path, frames: int, size: int) -> None:
    from trackpose import synth
    m = synth.movie(n_frames=frames, shape=(size, size), kind="nuclei", seed=7)
    data = (m.images / m.images.max() * 4000).astype(np.uint16)
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / PIXEL_UM, 1 / PIXEL_UM),
                     metadata={"axes": "TYX", "unit": "micron", "finterval": 1.0})


def class_path() -> str:
    out = ROOT / "target" / "bench-classpath.txt"
    mvn = shutil.which("mvn")
    if mvn is None:
        sys.exit("bench_trackmate: needs Maven (mvn) to build the Java side")
    subprocess.run([mvn, "-B", "-ntp", "-q", "test-compile", "dependency:build-classpath",
                    "-Dmdep.includeScope=test", f"-Dmdep.outputFile={out}"], cwd=ROOT, check=True)
    deps = out.read_text().strip()
    return os.pathsep.join([str(ROOT / "target" / "test-classes"), str(ROOT / "target" / "classes"), deps])


def java_bench(java: str, cp: str, args: list) -> list:
    proc = subprocess.run([java, "-Djava.awt.headless=true", "-cp", cp, "org.trackpose.trackmate.TrackMateBench",
                           *map(str, args)], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"TrackMateBench {args[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return [json.loads(line[6:]) for line in proc.stdout.splitlines() if line.startswith("BENCH ")]


def engine_alone(movie: Path, frames: list) -> list:
    """Seconds per frame of trackpose.segment with the model loaded (after a warm-up frame), default settings."""
    import trackpose
    from trackpose.models import load_model
    images = tifffile.imread(movie)
    model = load_model("trackpose_default", gpu=False)
    trackpose.segment(images[frames[0]], model=model, diameter=DIAMETER_PX)  # warm-up: kernels, caches
    times = []
    for f in frames:
        t = time.perf_counter()
        trackpose.segment(images[f], model=model, diameter=DIAMETER_PX)
        times.append(time.perf_counter() - t)
    return times


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--java", default=shutil.which("java") or "java", help="the JVM that runs TrackMate")
    ap.add_argument("--only", choices=["preview", "process"], help="run one of the two parts")
    args = ap.parse_args()
    if args.frames < 4:
        sys.exit("--frames: at least 4 (the preview uses frames 0..3)")
    cp = class_path()
    java_version = subprocess.run([args.java, "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at the start; "
          f"{java_version}")
    python = sys.executable
    root = Path(tempfile.mkdtemp(prefix="trackpose-bench-tm-"))
    try:
        movie = root / "movie.tif"
        make_movie(movie, args.frames, args.size)
        diameter_um = DIAMETER_PX * PIXEL_UM
        print(f"movie: {args.frames} frames of {args.size} x {args.size}, synth.movie nuclei, "
              f"{PIXEL_UM} micron/px; diameter {diameter_um} micron ({DIAMETER_PX:.0f} px)")
        if args.only in (None, "preview"):
            rows = java_bench(args.java, cp, ["preview", movie, python, diameter_um])
            alone = statistics.median(engine_alone(movie, [1, 2, 3]))
            cold = [r for r in rows if r["what"] == "preview cold"][0]
            warm = statistics.median(r["seconds"] for r in rows if r["what"] == "preview warm")
            thr = statistics.median(r["seconds"] for r in rows if r["what"] == "preview threshold-only")
            print("\nTrackMate preview (DetectionPreview.runPreviewDetection, one frame):")
            print(f"  {'cold (first preview: worker start)':44s} {cold['seconds']:7.2f} s   {cold['spots']} spots")
            print(f"  {'warm (another frame, median of 3)':44s} {warm:7.2f} s")
            print(f"  {'threshold-only (median of 3)':44s} {thr:7.2f} s")
            print(f"  {'engine alone, trackpose.segment (median of 3)':44s} {alone:7.2f} s")
            print(f"  warm preview / engine alone: {warm / alone:.2f}x; cold / warm: {cold['seconds'] / warm:.1f}x; "
                  f"threshold-only / warm: {thr / warm:.2f}")
            for r in rows:
                print("   ", json.dumps(r))
        if args.only in (None, "process"):
            rows = java_bench(args.java, cp, ["process", movie, python, diameter_um, 10 * PIXEL_UM])
            alone = engine_alone(movie, list(range(args.frames)))
            r = rows[0]
            print(f"\nTrackMate.process() (detection with a fresh engine process, all analyzers, LAP tracking), "
                  f"{r['frames']} frames of {r['width']} x {r['height']}:")
            print(f"  {'TrackMate.process()':44s} {r['seconds']:7.1f} s   {r['spots']} spots, {r['tracks']} tracks "
                  f"({r['seconds'] / r['frames']:.2f} s per frame)")
            print(f"  {'  of which detection (engine job + spots)':44s} {r['detection_seconds']:7.1f} s")
            print(f"  {'engine alone, trackpose.segment per frame':44s} {sum(alone):7.1f} s   "
                  f"({statistics.mean(alone):.2f} s per frame, model loaded)")
            print(f"  TrackMate.process() / engine alone: {r['seconds'] / sum(alone):.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
