"""Time cellpose 3.1.1.2's ``CellposeModel.eval`` in a child process that never imports trackpose.

Why a child: trackpose changes glibc's malloc settings while its network runs (``trackpose/malloc.py``) and keeps up
to 1 GiB of spare heap afterwards. A reference run in the same process would inherit both and run faster than
cellpose does on its own (measured: 3.77 s -> 2.72 s for a 512^2 image). The child starts from glibc's defaults,
warms up on a small image (numba compilation, first allocations), then times one ``eval``.

    seconds, masks = cellpose_eval(image, warmup, model_path, threads, **eval_kwargs)

Run as a script, it is that child: ``python _cellpose_ref.py JOB.npz RESULT.npz``.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def cellpose_eval(image: np.ndarray, warmup: np.ndarray, model_path, threads: int, **eval_kwargs):
    """(seconds of one timed eval, masks) from a fresh process."""
    with tempfile.TemporaryDirectory(prefix="trackpose-bench-") as tmp:
        job, result = Path(tmp) / "job.npz", Path(tmp) / "result.npz"
        np.savez(job, image=image, warmup=warmup,
                 settings=json.dumps(dict(model=str(model_path), threads=threads, kwargs=eval_kwargs)))
        subprocess.run([sys.executable, str(Path(__file__).resolve()), str(job), str(result)], check=True)
        with np.load(result) as r:
            return float(r["seconds"]), r["masks"]


def _child(job: Path, result: Path) -> None:
    import torch
    with np.load(job) as j:
        image, warmup, settings = j["image"], j["warmup"], json.loads(str(j["settings"]))
    torch.set_num_threads(settings["threads"])
    import numba
    numba.set_num_threads(min(settings["threads"], numba.config.NUMBA_NUM_THREADS))
    from cellpose import models
    model = models.CellposeModel(pretrained_model=settings["model"])
    kwargs = settings["kwargs"]
    model.eval(warmup, **kwargs)
    t = time.perf_counter()
    masks = model.eval(image, **kwargs)[0]
    seconds = time.perf_counter() - t
    assert "trackpose" not in sys.modules, "the reference process must not load trackpose"
    np.savez(result, seconds=seconds, masks=masks)


if __name__ == "__main__":
    _child(Path(sys.argv[1]), Path(sys.argv[2]))
