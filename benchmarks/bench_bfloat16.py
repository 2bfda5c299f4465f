"""bfloat16 vs float32 network: speed and what it does to the masks, on held-out synthetic images.

Run:  python benchmarks/bench_bfloat16.py [--n 6] [--threads 2] [--model FILE]

For each held-out image (nuclei seed 9001 and cells seed 9002, the recipe of examples/evaluate_default_model.py)
``trackpose.segment`` runs twice in this process, float32 then ``bfloat16=True``, at the true diameter, after a
warm-up call of each. Prints the seconds of each (median over images), the speed-up, AP@0.5 / AP@0.75 of each
against the ground truth, the fraction of objects the two mask images share at IoU 0.5, and the largest difference
of the flows and cell probability logits. bfloat16 pays off only where the hardware runs it natively (CPUs with
AVX512-BF16 or AMX, GPUs with bfloat16); elsewhere it is emulated and slower, which this prints too.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=6, help="images per kind")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import trackpose
    from trackpose import synth
    from trackpose.inference import bfloat16_support
    from trackpose.metrics import average_precision, matched_fraction
    from trackpose.train import mask_diameter
    from evaluate_default_model import HELD_OUT

    model = trackpose.load_model(args.model or trackpose.DEFAULT_MODEL)
    problem = bfloat16_support(model.device)
    print(f"model {model.name}; {model.device}: bfloat16 " + ("native" if problem is None else f"NOT native ({problem})"))

    def run(image, masks, bf16):
        kw = dict(model=model, diameter=mask_diameter(masks), bfloat16=bf16)
        if image.ndim == 3:
            kw.update(channels=(1, 2), channel_axis=0)
        t = time.perf_counter()
        result = trackpose.segment(image, **kw)
        return result, time.perf_counter() - t

    warm = next(iter(synth.dataset(1, "nuclei", seed=1, diameter_range=(12, 30))))
    run(*warm, False)
    run(*warm, True)
    for name, kind, seed, kwargs in HELD_OUT:
        rows = []
        for image, masks in synth.dataset(args.n, kind, seed=seed, **kwargs):
            a, ta = run(image, masks, False)
            b, tb = run(image, masks, True)
            rows.append((ta, tb, average_precision(masks, a.masks, thresholds=(0.5, 0.75))[0],
                         average_precision(masks, b.masks, thresholds=(0.5, 0.75))[0],
                         matched_fraction(a.masks, b.masks), np.abs(a.flows[:2] - b.flows[:2]).max(),
                         np.abs(a.cellprob - b.cellprob).max()))
        ta, tb = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
        ap32, ap16 = np.mean([r[2] for r in rows], axis=0), np.mean([r[3] for r in rows], axis=0)
        print(f"{name:7s} n={len(rows)}: float32 {ta:.2f} s, bfloat16 {tb:.2f} s ({ta / tb:.2f}x); "
              f"AP@0.5/0.75 float32 {ap32[0]:.3f}/{ap32[1]:.3f}, bfloat16 {ap16[0]:.3f}/{ap16[1]:.3f}; "
              f"objects shared at IoU 0.5 {min(r[4] for r in rows):.3f} (worst image); largest |difference| "
              f"flows {max(r[5] for r in rows):.3f}, cellprob {max(r[6] for r in rows):.3f}", flush=True)


if __name__ == "__main__":
    main()
