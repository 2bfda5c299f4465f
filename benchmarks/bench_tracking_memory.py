"""Peak memory of ``trackpose track`` end to end (segmentation with the built-in model, LAP tracking, all
outputs) on a synthetic 2D movie of nuclei 24-36 px across (about the model's own scale, so frames are not
upscaled), measured on the command's own process (issue 18: 200 frames of 1024 x 1024
within 4 GB resident).

    python benchmarks/bench_tracking_memory.py [--frames 200] [--size 1024] [--threads 2] [--keep DIR]

The movie (``trackpose.synth.movie``, nuclei, 16-bit) is written as an ImageJ TIFF (T, Y, X) first; then
``python -m trackpose track MOVIE --out DIR --diameter D`` runs as a child process. Reported: the child's peak
resident set (``ru_maxrss`` from ``os.wait4``, exact), its resident set sampled after each segmented frame
(``/proc/PID/status`` VmRSS, Linux), the growth per frame over the second half of the frames, and the wall time.
The run is long on a small machine (segmentation of every frame): choose --frames to fit.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def rss_mib(pid: int):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None


def write_movie(path: Path, frames: int, size: int, seed: int) -> tuple[float, int]:
    """Synthetic nuclei movie as a 16-bit ImageJ TIFF, written frame block by frame block; returns the median
    nucleus diameter (px) and the number of cells in frame 0."""
    import tifffile
    from trackpose import synth
    block = 20  # frames generated at a time (the generator keeps its cells between blocks through the seed only,
    # so each block is its own movie: cells jump between blocks, every 20 frames, which tracking handles as new
    # tracks; memory and run time are what this benchmark measures)
    with tifffile.TiffWriter(path, imagej=True) as tif:
        pages = []
        for start in range(0, frames, block):
            m = synth.movie(n_frames=min(block, frames - start), shape=(size, size), seed=seed + start,
                            diameter_range=(24, 36), division_interval=15, missed_rate=0.02)
            if start == 0:
                ids = np.unique(m.labels[0])[1:]
                diameter = float(np.median([2 * np.sqrt(np.sum(m.labels[0] == i) / np.pi) for i in ids]))
                cells = len(ids)
            scaled = np.clip(m.images, 0, 65535).astype(np.uint16)
            pages.append(scaled)
            del m
        data = np.concatenate(pages)
        tif.write(data, metadata={"axes": "TYX"})
    return diameter, cells


def write_label_movie(path: Path, frames: int, size: int, seed: int) -> tuple[float, int]:
    """--labels: a label movie (uint16 ImageJ TIFF) of discs on a random walk, written frame by frame; returns
    the disc diameter and the number of discs."""
    import tifffile
    from trackpose.masks import renumber
    rng = np.random.default_rng(seed)
    radius, n = 10, int(0.3 * size * size / (np.pi * 10 ** 2))
    pos = rng.uniform(radius, size - radius, (n, 2))
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disc = yy ** 2 + xx ** 2 <= radius ** 2
    with tifffile.TiffWriter(path, imagej=True) as tif:
        def pages():
            nonlocal pos
            for _ in range(frames):
                pos = np.clip(pos + rng.normal(0, 2.0, pos.shape), radius, size - radius - 1)
                frame = np.zeros((size, size), np.uint16)
                for k, (y, x) in enumerate(np.round(pos).astype(int)):
                    box = frame[y - radius:y + radius + 1, x - radius:x + radius + 1]
                    box[disc] = k + 1
                yield renumber(frame).astype(np.uint16)
        tif.write(pages(), shape=(frames, size, size), dtype=np.uint16, metadata={"axes": "TYX"})
    return 2.0 * radius, n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the tracked run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="keep the movie and the outputs in this folder")
    ap.add_argument("--labels", action="store_true", help="track a label movie (discs on a random walk) with "
                    "--labels: no segmentation, so the full-length tracking and output stages alone, quickly")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-track-mem-")) if a.keep is None else a.keep
    work.mkdir(parents=True, exist_ok=True)
    movie = work / "movie.tif"
    t0 = time.perf_counter()
    diameter, cells = (write_label_movie if a.labels else write_movie)(movie, a.frames, a.size, a.seed)
    print(f"{'label movie' if a.labels else 'movie'}: {a.frames} frames x {a.size} x {a.size} uint16 "
          f"({movie.stat().st_size / 2**20:.0f} MiB on disk), {cells} objects in frame 0, diameter "
          f"{diameter:.1f} px (written in {time.perf_counter() - t0:.0f} s)")
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "TRACKPOSE_THREADS": str(a.threads)}
    cmd = [sys.executable, "-m", "trackpose", "track", str(movie), "--out", str(work / "out"), "--overwrite",
           "--tracker", "lap", "--linking-max-distance", f"{diameter:.1f}",
           "--gap-closing-max-distance", f"{diameter:.1f}"]
    cmd += ["--labels"] if a.labels else ["--diameter", f"{diameter:.1f}"]
    print("command: " + " ".join(cmd[1:]))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    samples, tail = [], []

    def read():
        for line in proc.stdout:
            tail.append(line.rstrip())
            if line.startswith("frame ") or "objects" in line:
                samples.append((time.perf_counter() - t0, rss_mib(proc.pid)))
    reader = threading.Thread(target=read)
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    reader.join()
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        print("\n".join(tail[-20:]))
        sys.exit(f"trackpose track failed ({os.waitstatus_to_exitcode(status)})")
    peak = usage.ru_maxrss / 1024  # KiB on Linux
    print(tail[-1])
    rss = [r for _, r in samples if r is not None]
    half = len(rss) // 2
    slope = (rss[-1] - rss[half]) / max(len(rss) - 1 - half, 1) if len(rss) > 2 else float("nan")
    print(f"peak resident set of trackpose track: {peak:.0f} MiB ({peak / 1024:.2f} GiB); wall {wall:.0f} s "
          f"({wall / a.frames:.1f} s/frame)")
    if rss:
        print(f"resident set after frame 1: {rss[0]:.0f} MiB, after frame {len(rss)}: {rss[-1]:.0f} MiB, "
              f"growth over the second half: {slope:.1f} MiB/frame")
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if a.keep is None:
        import shutil
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
