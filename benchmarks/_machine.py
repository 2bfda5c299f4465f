"""The machine a benchmark ran on, for its printed header: CPU model and cores, load average."""
from __future__ import annotations

import os
import platform
import subprocess


def cpu() -> str:
    """'<CPU model name>, <N> cores' (the cores this process may use)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        name = platform.processor()
    return f"{name}, {len(os.sched_getaffinity(0))} cores"


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())
