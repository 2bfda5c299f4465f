"""How fast the command line answers when it has no network to run: help, the settings table, argument errors.

Each command runs in a fresh process (as a user types it), best of ``--repeats``; the time of `python -c pass`
and of `python -c "import torch"` are printed beside it for scale. The goal: `trackpose --help` under 0.5 s.

    python benchmarks/bench_cli.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass (floor)": [sys.executable, "-c", "pass"],
    "python -c 'import torch' (what help used to cost)": [sys.executable, "-c", "import torch"],
    "trackpose --help": [sys.executable, "-m", "trackpose", "--help"],
    "trackpose segment --help": [sys.executable, "-m", "trackpose", "segment", "--help"],
    "trackpose settings --json": [sys.executable, "-m", "trackpose", "settings", "--json"],
    "trackpose segment x.tif --min-size -5 (argument error)": [sys.executable, "-m", "trackpose", "segment",
                                                               "x.tif", "--min-size", "-5"],
    "trackpose-cellpose --help": [sys.executable, "-m", "trackpose.cli.cellpose", "--help"],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{'command':<58} best of {args.repeats}")
    for name, argv in COMMANDS.items():
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            best = min(best, time.perf_counter() - t0)
        print(f"{name:<58} {best:6.3f} s")


if __name__ == "__main__":
    main()
