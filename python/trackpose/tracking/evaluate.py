"""CTC tracking measures through py-ctcmetrics (the ``track`` extra), plus writing ground truth in CTC layout."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from ..errors import InputError

__all__ = ["evaluate_ctc", "format_scores", "write_ctc_ground_truth"]

_SHOWN = ("TRA", "DET", "LNK", "SEG", "BC(0)", "CT", "TF", "CCA", "HOTA", "Valid")


def evaluate_ctc(result, ground_truth) -> dict:
    """py-ctcmetrics' ``evaluate_sequence`` on a CTC result folder and a CTC ground-truth folder."""
    try:
        from ctc_metrics import evaluate_sequence
    except ImportError as e:
        raise InputError("eval-tracks needs py-ctcmetrics: pip install 'trackpose[track]'") from e
    result, gt = Path(result), Path(ground_truth)
    if not (result / "res_track.txt").exists():
        raise InputError(f"{result} has no res_track.txt (give the ctc/ folder of trackpose track)")
    if not (gt / "TRA" / "man_track.txt").exists():
        raise InputError(f"{gt} has no TRA/man_track.txt (a CTC ground-truth folder)")
    metrics = ["Valid", "DET", "TRA", "LNK", "BC", "CT", "TF", "CCA"]
    if (gt / "SEG").is_dir():
        metrics.append("SEG")
    # threads=1: py-ctcmetrics would otherwise fork a multiprocessing pool, and a fork of a process whose torch /
    # OpenMP threads are running can deadlock (it hung the test suite)
    return evaluate_sequence(str(result), str(gt), metrics=metrics, threads=1)


def format_scores(scores: dict) -> str:
    lines = []
    for key in _SHOWN:
        if key in scores and scores[key] is not None:
            lines.append(f"{key:6s} {float(scores[key]):.4f}")
    return "\n".join(lines) + "\n(BC(0): branching correctness = F1 of the divisions, exact frame)"


def write_ctc_ground_truth(folder, labels, tracks_rows) -> Path:
    """Write ``TRA/man_trackTTT.tif`` + ``TRA/man_track.txt`` (and SEG copies) from a label movie whose ids are
    CTC labels and rows ``(label, begin, end, parent)``."""
    folder = Path(folder)
    for sub in ("TRA", "SEG"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    width = 4 if len(labels) > 999 else 3
    for t, lab in enumerate(labels):
        tifffile.imwrite(folder / "TRA" / f"man_track{t:0{width}d}.tif", np.asarray(lab, np.uint16))
        tifffile.imwrite(folder / "SEG" / f"man_seg{t:0{width}d}.tif", np.asarray(lab, np.uint16))
    (folder / "TRA" / "man_track.txt").write_text("".join(f"{a} {b} {c} {d}\n" for a, b, c, d in tracks_rows))
    return folder
