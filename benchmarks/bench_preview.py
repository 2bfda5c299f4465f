"""Preview latency of the bridge: a fresh engine process per preview (cold) vs the persistent worker (warm).

Run:  python benchmarks/bench_preview.py [--size 512] [--repeats 3]

Cold = `python -m trackpose job DIR` from process start to exit (Python and torch start-up, model load, one frame).
Warm = one `{"cmd": "run"}` request to a `trackpose serve` worker that has already served one job (model loaded).
Both on the same frame with the built-in model; prints the medians and the ratio (target: warm <= cold / 3).
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile


def make_job(folder: Path, size: int) -> Path:
    from trackpose import synth
    image, _ = synth.nuclei_image((size, size), diameter_range=(14, 26), seed=11)
    folder.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(folder / "input.tif", (image / image.max() * 4000).astype(np.uint16)[None], imagej=True,
                     metadata={"axes": "TYX"})
    (folder / "job.json").write_text(json.dumps({"version": 1, "frames": [0], "settings": {"diameter": 20.0}}))
    return folder


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="trackpose-preview-"))
    job = make_job(root / "job", args.size)

    cold = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "trackpose", "job", str(job)], capture_output=True, text=True)
        cold.append(time.perf_counter() - t)
        if p.returncode != 0:
            sys.exit(p.stdout + p.stderr)

    worker = subprocess.Popen([sys.executable, "-m", "trackpose", "serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)

    def request() -> float:
        t = time.perf_counter()
        worker.stdin.write(json.dumps({"cmd": "run", "job": str(job)}) + "\n")
        worker.stdin.flush()
        while True:
            event = json.loads(worker.stdout.readline())
            if event["event"] == "error":
                sys.exit(event["message"])
            if event["event"] == "done":
                return time.perf_counter() - t

    json.loads(worker.stdout.readline())  # ready
    first = request()
    warm = [request() for _ in range(args.repeats)]
    worker.stdin.close()
    worker.wait()
    c, w = statistics.median(cold), statistics.median(warm)
    print(f"frame {args.size}x{args.size}, built-in model, {args.repeats} repeats")
    print(f"cold (new process per preview): {c:.2f} s   [{', '.join(f'{x:.2f}' for x in cold)}]")
    print(f"worker, first job (loads model): {first:.2f} s")
    print(f"warm (persistent worker):        {w:.2f} s   [{', '.join(f'{x:.2f}' for x in warm)}]")
    print(f"warm / cold = {w / c:.2f} (target <= 0.33)")


if __name__ == "__main__":
    main()
