#@ File (label = "Movie (any image Fiji opens: 2D+T, or a Z stack over time)", style = "file") movie
#@ File (label = "TrackMate XML to write", style = "save") output
#@ String (label = "Python environment kind", choices = {"conda", "venv", "python"}, value = "conda") env_kind
#@ String (label = "Conda environment name, venv folder or python executable", value = "trackpose") env
#@ String (label = "Model (trackpose_default, a cellpose name, or a model file)", value = "trackpose_default") model_name
#@ Double (label = "Cell diameter in the image's units (0 = estimate)", value = 30.0) diameter
#@ Boolean (label = "Z stacks: 2D + Z stitching instead of 3D", value = false) stitch
#@ Boolean (label = "Use the GPU", value = true) use_gpu
#@ Double (label = "Overlap tracker: minimum IoU", value = 0.3) min_iou
"""
Detects cells with the trackpose detector (Cellpose-compatible, through the trackpose engine) on every frame of a
movie, links them with TrackMate's overlap tracker, and saves a TrackMate XML file that TrackMate opens
(Plugins > Tracking > Load a TrackMate file).

Runs in Fiji's script editor (language: Python / Jython) or headless:

    ImageJ-linux64 --headless --console --run examples/fiji/track_with_trackpose.py \
        'movie="/data/movie.tif",output="/data/movie.xml",env_kind="conda",env="trackpose",model_name="nuclei",diameter=12.0,stitch=false,use_gpu=true,min_iou=0.3'

Needs TrackMate 8 and the trackpose jar in Fiji.app/jars (see docs/trackmate.md), and a Python environment with
trackpose installed. Exits with an error (and writes nothing) when detection or tracking fails: a failed detection
is never saved as "0 spots".
"""
import os

from ij import IJ
from java.lang import Boolean, Double

from fiji.plugin.trackmate import Logger, Model, Settings, TrackMate
from fiji.plugin.trackmate.io import TmXmlWriter
from fiji.plugin.trackmate.tracking.overlap import OverlapTrackerFactory
from org.trackpose.bridge import DetectorKeys
from org.trackpose.trackmate import TrackposeDetectorFactory


def fail(message):
    IJ.log("trackpose example: " + message)
    raise RuntimeError(message)


imp = IJ.openImage(movie.getAbsolutePath())
if imp is None:
    fail("cannot open " + movie.getAbsolutePath())
IJ.log("Movie: %s, %d x %d pixels, %d Z slices, %d frames, %d channels" % (
    imp.getTitle(), imp.getWidth(), imp.getHeight(), imp.getNSlices(), imp.getNFrames(), imp.getNChannels()))
is_stack = imp.getNSlices() > 1

settings = Settings(imp)

# Detector: start from the defaults, change what this script exposes. Keys are DetectorKeys constants; values
# must have the Java type of the default (Double, Integer, Boolean, String).
detector = TrackposeDetectorFactory()
ds = detector.getDefaultSettings()
ds.put(DetectorKeys.KEY_PYTHON_ENV_KIND, env_kind)
if env_kind == DetectorKeys.ENV_CONDA:
    ds.put(DetectorKeys.KEY_CONDA_ENV, env)
else:
    ds.put(DetectorKeys.KEY_PYTHON_ENV_PATH, env)
if os.path.isfile(model_name):
    ds.put(DetectorKeys.KEY_PRETRAINED_OR_CUSTOM, DetectorKeys.CUSTOM)
    ds.put(DetectorKeys.KEY_CELLPOSE_MODEL_FILEPATH, model_name)
else:
    ds.put(DetectorKeys.KEY_CELLPOSE_MODEL, model_name)
ds.put(DetectorKeys.KEY_CELL_DIAMETER, Double(diameter))
ds.put(DetectorKeys.KEY_USE_GPU, Boolean(use_gpu))
# A Z stack is segmented as a volume: true 3D, or 2D per plane + stitching. Anisotropy 0 = from the calibration.
ds.put(DetectorKeys.KEY_MODE_3D, Boolean(is_stack))
ds.put(DetectorKeys.KEY_DO2DZ, Boolean(is_stack and stitch))
problems = detector.checkSettings(ds)
if problems is not None:
    fail("detector settings:\n" + problems)
settings.detectorFactory = detector
settings.detectorSettings = ds

# Tracker: each spot links to the spot of the previous frame it overlaps most (IoU of the outlines in 2D; in
# TrackMate 8, Z-stack spots are spheres and the overlap is taken in XY).
tracker = OverlapTrackerFactory()
ts = tracker.getDefaultSettings()
ts.put(OverlapTrackerFactory.KEY_MIN_IOU, Double(min_iou))
settings.trackerFactory = tracker
settings.trackerSettings = ts

settings.addAllAnalyzers()

model = Model()
model.setLogger(Logger.IJ_LOGGER)
trackmate = TrackMate(model, settings)
if not trackmate.checkInput():
    fail(str(trackmate.getErrorMessage()))
if not trackmate.process():
    fail(str(trackmate.getErrorMessage()))

spots = model.getSpots()
IJ.log("Found %d spots in %d frames, %d tracks." % (
    spots.getNSpots(False), len(spots.keySet()), model.getTrackModel().nTracks(False)))

writer = TmXmlWriter(output, model.getLogger())
writer.appendModel(model)
writer.appendSettings(settings)
writer.writeToFile()
IJ.log("Saved " + output.getAbsolutePath())
