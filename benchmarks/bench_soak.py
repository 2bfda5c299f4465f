"""Soak test of the persistent worker: many preview requests of mixed sizes, thresholds changing, some malformed.

Run:  python benchmarks/bench_soak.py [--requests 500] [--every-bad 25]

Starts one `trackpose serve` worker (the built-in model) and sends it `--requests` run requests on frames of
64-384 px (random sizes and contents from a fixed seed), with cellprob/flow thresholds changing between requests
(so that the worker's reuse of the last network output is exercised too), and every `--every-bad`-th line a
malformed request (bad JSON, unknown command, a job folder with a broken job.json, a 3,000-deep nesting). Prints
the worker's resident memory (VmRSS) at the start, middle and end, and checks that every request got exactly one
final answer (done or error). Linux only (/proc).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--every-bad", type=int, default=25)
    args = parser.parse_args()
    from trackpose import synth
    rng = np.random.default_rng(0)
    root = Path(tempfile.mkdtemp(prefix="trackpose-soak-"))
    env = dict(os.environ, TRACKPOSE_OFFLINE="1")
    worker = subprocess.Popen([sys.executable, "-m", "trackpose", "serve"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert json.loads(worker.stdout.readline())["event"] == "ready"
    frames = {}
    rss, answers, errors, t0 = [], 0, 0, time.perf_counter()
    for k in range(args.requests):
        if args.every_bad and k % args.every_bad == args.every_bad - 1:
            bad = [("not json {", None), ('{"cmd": "fly"}', None), ("[" * 3000, None),
                   (None, "broken")][(k // args.every_bad) % 4]
            line, kind = bad
            if kind == "broken":
                folder = root / f"bad{k}"
                folder.mkdir()
                (folder / "job.json").write_text('{"version": 1, "settings": {"flow_threshold": "high"}}')
                line = json.dumps({"cmd": "run", "job": str(folder)})
        else:
            size = int(rng.choice([64, 128, 256, 384]))
            seed = int(rng.integers(0, 5))  # a few distinct frames per size: some network outputs are reused
            if (size, seed) not in frames:
                image, _ = synth.nuclei_image((size, size), diameter_range=(14, 26), seed=seed)
                frames[(size, seed)] = (image / image.max() * 4000).astype(np.uint16)
            folder = root / f"job{k}"
            folder.mkdir()
            tifffile.imwrite(folder / "input.tif", frames[(size, seed)][None], imagej=True, metadata={"axes": "TYX"})
            (folder / "job.json").write_text(json.dumps({"version": 1, "frames": [0], "settings": {
                "diameter": 20.0, "cellprob_threshold": float(rng.uniform(-2, 2)),
                "flow_threshold": float(rng.uniform(0.2, 0.8))}}))
            line = json.dumps({"cmd": "run", "job": str(folder)})
        worker.stdin.write(line + "\n")
        worker.stdin.flush()
        while True:
            event = json.loads(worker.stdout.readline())
            if event["event"] in ("done", "error"):
                answers += 1
                errors += event["event"] == "error"
                break
        if k in (0, args.requests // 2, args.requests - 1):
            rss.append(rss_mib(worker.pid))
            print(f"request {k + 1}: worker resident memory {rss[-1]:.0f} MiB "
                  f"({time.perf_counter() - t0:.0f} s so far)", flush=True)
    worker.stdin.write('{"cmd": "quit"}\n')
    worker.stdin.close()
    worker.wait(timeout=60)
    seconds = time.perf_counter() - t0
    print(f"{args.requests} requests in {seconds:.0f} s ({seconds / args.requests * 1000:.0f} ms each); "
          f"{answers} answered ({errors} errors, {args.requests // args.every_bad if args.every_bad else 0} "
          f"malformed sent); worker alive to the end: {worker.returncode == 0}")
    print("resident memory (MiB) at start / middle / end: " + " / ".join(f"{r:.0f}" for r in rss))
    assert answers == args.requests


if __name__ == "__main__":
    main()
