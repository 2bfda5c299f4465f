"""Cell Tracking Challenge result folder: ``maskTTT.tif`` per frame and ``res_track.txt`` (L B E P)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

__all__ = ["write_ctc"]


def mask_name(frame: int, n_frames: int) -> str:
    return f"mask{frame:04d}.tif" if n_frames > 999 else f"mask{frame:03d}.tif"


def write_ctc(folder, spots, tracklet_label, tracklet_rows, label_frames, n_frames: int) -> Path:
    """Write the CTC result into ``folder`` (created).

    ``label_frames``: iterable of (frame, label image) for frames 0..n_frames-1 (spots' ``label`` ids); every
    frame gets a mask file (empty frames too), objects relabelled by their tracklet.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for frame, labels in label_frames:
        rows = np.flatnonzero(spots.frame == frame)
        lut = np.zeros(int(labels.max()) + 1 if labels.size else 1, np.uint16 if len(tracklet_rows) < 65535
                       else np.uint32)
        lut[spots.label[rows]] = tracklet_label[rows]
        tifffile.imwrite(folder / mask_name(int(frame), n_frames), lut[labels], compression="zlib")
    (folder / "res_track.txt").write_text("".join(f"{lab} {b} {e} {p}\n" for lab, b, e, p in tracklet_rows))
    return folder
