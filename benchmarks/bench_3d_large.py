"""3D dynamics and masks at the TrackMate-Cellpose 3D tutorial's scale: 86 x 1024 x 1024, ~600 cells.

Run:  nice -n 10 python benchmarks/bench_3d_large.py [--scale 4] [--cells 600] [--network]

Each stage runs in its own child process so that its peak resident memory (the kernel's VmHWM, reset after the
inputs are loaded) is its own:

1. ``labels``: a label volume of ~600 touching ellipsoidal cells (a Voronoi-like assignment of each voxel to the
   nearest seed in a per-cell ellipsoidal metric, cut off at the ellipsoid; built seed by seed in its box);
2. ``flows``: exact 3D flows, ``trackpose.dynamics.masks_to_flows`` (sum of the 2D flows of the YX, ZX and ZY
   planes, as cellpose);
3. ``masks``: the network output ``segment(do_3d=True)`` would get for these cells (5 x flows, cell probability
   +4 / -4 logits) through ``segmentation._masks_3d``, the very function ``segment`` runs after the network
   (flow following with niter 200, seeds, min_size 15, hole filling);
4. ``ap``: AP@0.5 / 0.75 / 0.9 of the reconstruction against the labels (``trackpose.metrics``);
5. ``network`` (with ``--network``): peak memory of ``segmentation._network_3d`` on the volume with a stand-in
   network of the same inputs and outputs (a 1x1 convolution: memory, not time), at rescale 1, anisotropy 1.

``--scale s`` divides Y and X by s (and the number of cells by s^2): develop with ``--scale 4``.
Prints one line per stage: seconds (and the stage process's CPU seconds, imports and warm-up included),
resident memory after loading the inputs, peak resident memory.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GIB = 2 ** 30


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so that a stage's peak excludes earlier work."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def cell_volume(shape, n_cells, seed=0):
    """(Z, Y, X) int32 labels of about n_cells touching ellipsoidal cells in two layers along Z.

    Seeds sit on a jittered grid; each cell has its own radii (about 0.55 x the grid spacing in Y/X, half the
    layer thickness in Z, +-15 %) and a voxel goes to the seed with the smallest ellipsoidal distance
    ``sum((d / r)^2)`` when that is below 1: neighbouring ellipsoids overlap, so cells touch along flat-ish
    faces, with some background between them.
    """
    nz, ly, lx = shape
    rng = np.random.default_rng(seed)
    layers = 2 if nz >= 40 else 1
    per_layer = max(1, int(round(n_cells / layers)))
    ny = max(1, int(round(np.sqrt(per_layer * ly / lx))))
    nx = max(1, int(round(per_layer / ny)))
    sy, sx, sz = ly / ny, lx / nx, nz / layers
    labels = np.zeros(shape, np.int32)
    best = np.full(shape, 1.0, np.float32)  # ellipsoidal distance of the current owner (1 = not inside any)
    label = 0
    for k in range(layers):
        for i in range(ny):
            for j in range(nx):
                label += 1
                centre = np.array([(k + 0.5) * sz, (i + 0.5) * sy, (j + 0.5) * sx])
                centre += rng.uniform(-0.15, 0.15, 3) * np.array([sz, sy, sx])
                radii = np.array([0.55 * sz, 0.62 * sy, 0.62 * sx]) * rng.uniform(0.85, 1.15, 3)
                lo = np.maximum(0, np.floor(centre - radii)).astype(int)
                hi = np.minimum(shape, np.ceil(centre + radii) + 1).astype(int)
                zz, yy, xx = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
                d = (((zz - centre[0]) / radii[0]) ** 2 + ((yy - centre[1]) / radii[1]) ** 2
                     + ((xx - centre[2]) / radii[2]) ** 2).astype(np.float32)
                box = tuple(slice(a, b) for a, b in zip(lo, hi))
                closer = d < best[box]
                best[box][closer] = d[closer]
                labels[box][closer] = label
    return labels


class _StandIn:
    """A 1x1 convolution with the network's inputs and outputs ((B, 2, H, W) -> (B, 3, H, W), (B, 256))."""

    def __new__(cls):
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(2, 3, 1)

            def forward(self, x):
                return self.conv(x), torch.zeros((x.shape[0], 256), dtype=x.dtype)
        return Net().eval()


def run_stage(stage, workdir, shape, n_cells):
    workdir = Path(workdir)
    from trackpose import dynamics, segmentation
    from trackpose.flows import FLOW_SCALE
    from trackpose.metrics import average_precision
    result = {"stage": stage}
    if stage == "labels":
        _reset_peak()
        t = time.perf_counter()
        labels = cell_volume(shape, n_cells)
        result["seconds"] = time.perf_counter() - t
        result["cells"] = int(len(np.unique(labels)) - 1)
        result["foreground"] = float((labels > 0).mean())
        np.save(workdir / "labels.npy", labels)
    elif stage == "flows":
        dynamics.masks_to_flows(cell_volume((12, 40, 40), 4))  # compile outside the timing
        labels = np.load(workdir / "labels.npy")
        result["rss_inputs"] = _status_bytes("VmRSS")
        _reset_peak()
        t = time.perf_counter()
        flows = dynamics.masks_to_flows(labels)
        result["seconds"] = time.perf_counter() - t
        np.save(workdir / "flows.npy", flows)
    elif stage == "masks":
        kw = dict(niter=200, cellprob_threshold=0.0, min_size=15, max_size=None, max_size_fraction=0.4)
        small = cell_volume((12, 40, 40), 4)
        warm = np.concatenate([5 * dynamics.masks_to_flows(small), np.where(small > 0, 4.0, -4.0)[None]])
        segmentation._masks_3d(warm.astype(np.float32), small.shape, **kw)  # compile outside the timing
        labels = np.load(workdir / "labels.npy")
        # the 3D network output segment() holds: (4, Z, Y, X) float32 = dZ, dY, dX (network scale), cellprob
        y = np.empty((4,) + labels.shape, np.float32)
        y[:3] = np.load(workdir / "flows.npy", mmap_mode="r")
        y[:3] *= np.float32(FLOW_SCALE)
        np.copyto(y[3], np.where(labels > 0, np.float32(4.0), np.float32(-4.0)))
        del labels
        result["rss_inputs"] = _status_bytes("VmRSS")
        _reset_peak()
        t = time.perf_counter()
        masks = segmentation._masks_3d(y, y.shape[1:], **kw)
        result["seconds"] = time.perf_counter() - t
        result["objects"] = int(masks.max())
        np.save(workdir / "masks.npy", masks)
    elif stage == "ap":
        labels, masks = np.load(workdir / "labels.npy"), np.load(workdir / "masks.npy")
        result["rss_inputs"] = _status_bytes("VmRSS")
        _reset_peak()
        t = time.perf_counter()
        ap, tp, fp, fn = average_precision(labels, masks, (0.5, 0.75, 0.9))
        result["seconds"] = time.perf_counter() - t
        result["ap"] = [round(float(a), 4) for a in ap]
        result["tp_fp_fn@0.5"] = [int(tp[0]), int(fp[0]), int(fn[0])]
    elif stage == "network":
        import torch
        from trackpose.models import Model
        net = _StandIn()
        model = Model(net=net, diam_mean=30.0, diam_labels=30.0, name="stand-in", path=None,
                      device=torch.device("cpu"), _inference_net=net)
        # normalised (Z, Y, X, 2) float32 planes, as segment() hands them to _network_3d
        planes = np.random.default_rng(0).random(tuple(shape) + (2,), dtype=np.float32)
        result["rss_inputs"] = _status_bytes("VmRSS")
        _reset_peak()
        t = time.perf_counter()
        y, _ = segmentation._network_3d([model], planes, 1.0, 1.0, True,
                                        dict(bsize=224, tile_overlap=0.1, augment=False, batch_size=8))
        result["seconds"] = time.perf_counter() - t
        result["output_gib"] = y.nbytes / GIB
    else:
        raise SystemExit(f"unknown stage {stage}")
    result["rss_peak"] = _status_bytes("VmHWM")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["cpu_seconds"] = usage.ru_utime + usage.ru_stime  # whole process: a loaded machine shows in wall time
    print(json.dumps(result), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=1, help="divide Y and X by this (4 for a quick run)")
    ap.add_argument("--cells", type=int, default=600, help="cells at full size")
    ap.add_argument("--network", action="store_true", help="also measure _network_3d's memory (stand-in net)")
    ap.add_argument("--stage", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    shape = (86, 1024 // args.scale, 1024 // args.scale)
    n_cells = max(1, args.cells // args.scale ** 2)
    if args.stage:
        run_stage(args.stage, args.workdir, shape, n_cells)
        return
    n_vox = int(np.prod(shape))
    print(f"volume {shape} ({n_vox / 1e6:.1f} M voxels), ~{n_cells} cells; float32 volume = {4 * n_vox / GIB:.2f} GiB;"
          f" {os.cpu_count()} CPUs")
    stages = ["labels", "flows", "masks", "ap"] + (["network"] if args.network else [])
    with tempfile.TemporaryDirectory(prefix="trackpose-bench3d-") as workdir:
        for stage in stages:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--stage", stage, "--workdir", workdir,
                   "--scale", str(args.scale), "--cells", str(args.cells)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stdout + proc.stderr)
                raise SystemExit(f"stage {stage} failed (exit {proc.returncode})")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            shown = ("stage", "seconds", "rss_inputs", "rss_peak", "cpu_seconds")
            extra = {k: v for k, v in r.items() if k not in shown}
            inputs = f"{r['rss_inputs'] / GIB:6.2f}" if "rss_inputs" in r else "     -"
            print(f"{stage:>8}: {r['seconds']:8.1f} s (process CPU {r['cpu_seconds']:7.1f} s)   RSS inputs {inputs} GiB"
                  f"   peak {r['rss_peak'] / GIB:6.2f} GiB"
                  f"   {json.dumps(extra) if extra else ''}", flush=True)


if __name__ == "__main__":
    main()
