"""A stand-in for ``trackpose job DIR`` (the TrackMate 9 tests' engine): the real engine's job, but the input's
segmentation channel (the first channel when none is chosen) IS the label image, instead of the network's
segmentation of it.

Everything else is the engine's own code (``trackpose.bridge.job_main``): job.json validation, the events, and
the outputs (labels.tif, shapes.json, and the 3D surface meshes of ``trackpose.meshes.surfaces`` with the job's
``simplify_contours`` and ``smoothing``). Quality is the object's size in pixels / voxels (no network).

    python label_engine.py DIR
"""
import sys

import numpy as np

from trackpose import bridge


class _NoNetwork:
    size_model = None
    diam_labels = 30.0


def _labels(frame, model_name, kwargs, axes):
    labels = np.asarray(frame)
    if "channel_axis" in axes:
        channel = max(kwargs["channels"][0], 1) - 1
        labels = np.take(labels, channel, axis=axes["channel_axis"])
    return np.rint(labels).astype(np.int32), None, 0.0, False


bridge.cached_model = lambda name, gpu: _NoNetwork()
bridge._segment_frame = _labels
sys.exit(bridge.job_main(sys.argv[1]))
