"""Memory checks made before the work: an image, a decoded file or a volume that cannot fit is refused with the
numbers ("needs about X GiB, Y GiB available") and what to do, instead of driving the machine into swap or the
out-of-memory killer."""
from __future__ import annotations

import os
from typing import Optional

from .errors import InputError


def available_memory() -> Optional[int]:
    """Bytes the system can give without swapping: MemAvailable (free + reclaimable cache), else free pages."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: no check
        return None


def memory_needed(nz: int, ly: int, lx: int, rescale: float, anisotropy: Optional[float]) -> int:
    """Peak working memory (bytes, beyond the loaded model and libraries) of segmenting a (nz, ly, lx) image.

    ``anisotropy`` None: 2D planes; else the 3D mode, whose network runs on a volume of S voxels (Z scaled by
    anisotropy x rescale, Y and X by rescale) and whose dynamics run on N = nz * ly * lx voxels (S when not
    resampled, the larger is taken). Bytes per voxel, measured with benchmarks/bench_3d_large.py (86 x 1024 x
    1024, docs/benchmarks.md) and rounded up:

    * 3D network stage: planes at image size (8 N) + per S voxel 44 bytes (resized input 8, the summed output 16,
      one orientation's output and sliced input 20) + the output resampled to image size (16 N) when S != N;
    * 3D dynamics stage: the network output (16) + ~54 bytes per voxel at most (cell mask, int32 pixel indices,
      step field, start and end positions, histogram, bin labels, masks; all voxels in cells as the worst case).

    The two stages do not overlap (the planes are freed before the dynamics), so the peak is the larger.
    """
    n_image = float(nz) * ly * lx
    if anisotropy:
        n_scaled = float(int(nz * anisotropy * rescale)) * int(ly * rescale) * int(lx * rescale)
        network = 8 * n_image + 44 * n_scaled + (16 * n_image if n_scaled != n_image else 0)
        dynamics_ = 70 * max(n_image, n_scaled)
        return int(max(network, dynamics_))
    scaled = n_image * rescale * rescale
    # float32 values per pixel at network scale: input (2) + network output (3); at image size: flows and cell
    # probability (3) + dynamics and labels (~6)
    return int(4 * (scaled * 5 + n_image * 9))


def check_memory(nz: int, ly: int, lx: int, rescale: float, anisotropy: Optional[float]) -> None:
    """Refuse, before any work, an image whose working arrays (``memory_needed``) cannot fit in free memory."""
    needed = memory_needed(nz, ly, lx, rescale, anisotropy)
    free = available_memory()
    if free is not None and needed > free:
        raise InputError(f"segmenting this {'volume' if anisotropy else 'image'} ({nz} x {ly} x {lx}) needs about "
                         f"{needed / 2**30:.1f} GiB of memory but {free / 2**30:.1f} GiB is available; crop or "
                         "split the image (e.g. per Z range or tile), or give a larger diameter (less upscaling)"
                         + (" or a smaller anisotropy" if anisotropy else ""))


def check_decoded_size(nbytes: int, what: str) -> None:
    """Refuse to decode ``nbytes`` (e.g. a file's declared pixels) when they cannot fit in half the free memory."""
    free = available_memory()
    if free is not None and nbytes > free // 2:
        raise InputError(f"{what} holds {nbytes / 2**30:.1f} GiB of pixels but {free / 2**30:.1f} GiB of memory is "
                         "available; crop or split it (e.g. per time point or Z range) before processing")
