"""Python -> JVM (JPype/scyjava) -> Java bridge client -> `python -m trackpose job` -> Java objects -> Python.

Skipped when the optional "fiji" extra (jpype1, scyjava) is not installed or the jars are not built
(`mvn -B package -DskipTests`). Kept small: a 2-frame 96x96 movie, segmented through the bridge and with
trackpose.segment in this process for the reference, and a 2-plane stack of one of its frames.
"""
import math

import numpy as np
import pytest
from scipy import ndimage

pytest.importorskip("jpype")
pytest.importorskip("scyjava")

from trackpose import java_client  # noqa: E402
from trackpose.errors import TrackposeError  # noqa: E402

from helpers import render, touching_discs  # noqa: E402

pytestmark = pytest.mark.slow  # starts processes / trains

try:
    java_client.find_jars()
except java_client.FijiError as exc:  # the jars are built by `mvn -B package -DskipTests`
    pytest.skip(str(exc), allow_module_level=True)

CX, CY = 0.5, 0.4  # anisotropic pixels: x and y must each get their own calibration
DIAMETER_PX = 10.0


def _movie():
    return np.stack([render(touching_discs((96, 96), radii=(7, 12), n=10, seed=s), seed=s) for s in (0, 1)])


def _settings(model_file, **extra):
    s = {"CELLPOSE_MODEL": str(model_file), "CELL_DIAMETER": DIAMETER_PX * CX, "FLOW_THRESHOLD": 0.0,
         "USE_GPU": False}
    s.update(extra)
    return s


def _reference_masks(image, model_file):
    """What the engine computes for the same frame and settings (job.json: diameter = CELL_DIAMETER / x size)."""
    import trackpose
    return trackpose.segment(image, model=str(model_file), diameter=DIAMETER_PX, flow_threshold=0.0).masks


def _shoelace(x, y):
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _check_objects(objects, masks, frame, offset=(0, 0)):
    """Objects of one frame against the label image the engine's own segment() makes."""
    mine = sorted((o for o in objects if o["frame"] == frame), key=lambda o: o["label"])
    labels = [lab for lab in np.unique(masks) if lab]
    assert [o["label"] for o in mine] == labels
    for o in mine:
        rows, cols = np.nonzero(masks == o["label"])
        # TrackMate convention: the centre of pixel (column i, row j) is at (i * x size, j * y size)
        assert o["x"] == pytest.approx((cols.mean() + offset[0]) * CX, abs=1e-9)
        assert o["y"] == pytest.approx((rows.mean() + offset[1]) * CY, abs=1e-9)
        assert o["z"] == 0 and not o["is_3d"] and o["vertices"] is None
        assert o["pixel_count"] == rows.size
        assert o["size"] == pytest.approx(rows.size * CX * CY)
        assert o["radius"] == pytest.approx(math.sqrt(rows.size * CX * CY / math.pi))
        assert 0 <= o["quality"] <= 1
        px, py = o["polygon_x"], o["polygon_y"]
        assert px.shape == py.shape and px.size >= 4
        # unsimplified outline: vertices on pixel corners, enclosing exactly the pixels of the object's largest
        # 8-connected piece (the whole object when it is in one piece; the test model's masks need not be)
        np.testing.assert_allclose(px / CX + 0.5, np.round(px / CX + 0.5), atol=1e-9)
        np.testing.assert_allclose(py / CY + 0.5, np.round(py / CY + 0.5), atol=1e-9)
        pieces, n = ndimage.label(masks == o["label"], structure=np.ones((3, 3)))
        sizes = np.bincount(pieces.ravel())[1:]
        rows, cols = np.nonzero(pieces == 1 + int(np.argmax(sizes)))  # labels follow raster order: first on a tie
        assert _shoelace(px, py) == pytest.approx(rows.size * CX * CY, rel=1e-9)
        assert px.min() == pytest.approx((cols.min() + offset[0] - 0.5) * CX)
        assert py.max() == pytest.approx((rows.max() + offset[1] + 0.5) * CY)


@pytest.fixture(scope="module")
def movie_run(model_file):
    movie = _movie()
    seen = []
    objects, labels = java_client.detect(movie, axes="TYX", calibration=(CX, CY, 1.0, "micron"),
                                  settings=_settings(model_file, SIMPLIFY_CONTOURS=False),
                                  progress=lambda done, total, frame: seen.append((done, total, frame)),
                                  return_labels=True)
    return movie, objects, labels, seen


def test_movie_objects_match_the_engine_masks(movie_run, model_file):
    movie, objects, labels, seen = movie_run
    assert {o["frame"] for o in objects} == {0, 1}
    assert sorted(seen) == [(1, 2, 0), (2, 2, 1)]
    assert labels.shape == movie.shape and labels.dtype == np.int32
    for t in range(2):
        masks = _reference_masks(movie[t], model_file)
        assert masks.max() >= 3, "the test model should find objects"
        np.testing.assert_array_equal(labels[t], masks)
        _check_objects(objects, masks, t)


def test_roi_and_frames_through_a_persistent_worker(model_file, tmp_path):
    movie = _movie()
    x0, y0 = 10, 10  # the region (10, 10, 90, 90) is clipped to the image: 86 x 86 pixels
    with java_client.Detector(_settings(model_file), worker=True, temp_root=tmp_path) as detector:
        objects = detector.detect(movie.astype(np.uint16), axes="TYX", calibration=(CX, CY, 1.0, "micron"),
                                  roi=(x0, y0, 90, 90), frames=[1])
    assert objects and {o["frame"] for o in objects} == {1}
    masks = _reference_masks(movie[1, y0:, x0:].astype(np.uint16), model_file)
    for o in objects:
        rows, cols = np.nonzero(masks == o["label"])
        assert o["x"] == pytest.approx((cols.mean() + x0) * CX, abs=1e-9)
        assert o["y"] == pytest.approx((rows.mean() + y0) * CY, abs=1e-9)
        # simplified outline (the default): close to the object, area near the pixel count
        assert _shoelace(o["polygon_x"], o["polygon_y"]) == pytest.approx(rows.size * CX * CY, rel=0.35)
    assert sorted(o["label"] for o in objects) == [lab for lab in np.unique(masks) if lab]
    assert list(tmp_path.iterdir()) == []  # the job folder was removed


@pytest.mark.parametrize("simplify", [False, True])
def test_z_stack_gives_3d_objects_with_meshes(model_file, simplify):
    """2D + Z stitching (the cheapest 3D mode) on a 2-plane stack: 3D objects, physical z, closed meshes; the exact
    voxel surface within the object's voxels, the simplified one (smoothed, decimated) within half a voxel more."""
    cz = 2.0
    frame = _movie()[0]
    objects, labels = java_client.detect(np.stack([frame, frame]), axes="ZYX", calibration=(CX, CY, cz, "micron"),
                                  # the test model's logits stay near 0: keep its faint objects (docs/failure-modes.md)
                                  settings=_settings(model_file, MODE_3D=True, DO2DZ=True, IOU_THRESHOLD=0.5,
                                                     SIMPLIFY_CONTOURS=simplify, STITCH_MIN_MEAN_CELLPROB=0.0),
                                  return_labels=True)
    assert labels.shape == (1, 2, 96, 96)
    masks = labels[0]  # the engine's own label volume (2D objects were checked against trackpose.segment above)
    assert sorted(o["label"] for o in objects) == [lab for lab in np.unique(masks) if lab] and objects
    for o in objects:
        zs, rows, cols = np.nonzero(masks == o["label"])
        assert o["is_3d"] and o["frame"] == 0 and o["polygon_x"] is None
        assert (o["x"], o["y"], o["z"]) == pytest.approx((cols.mean() * CX, rows.mean() * CY, zs.mean() * cz))
        assert o["size"] == pytest.approx(zs.size * CX * CY * cz)
        v, f = o["vertices"], o["faces"]
        assert v.shape[1] == 3 and f.shape[1] == 3 and f.min() >= 0 and f.max() < len(v)
        margin = np.array([CX, CY, cz]) * (1.0 if simplify else 0.5)
        lo = np.array([cols.min() * CX, rows.min() * CY, zs.min() * cz]) - margin
        hi = np.array([cols.max() * CX, rows.max() * CY, zs.max() * cz]) + margin
        assert (v >= lo - 1e-9).all() and (v <= hi + 1e-9).all()
        edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        _, counts = np.unique(edges, axis=0, return_counts=True)
        assert (counts == 2).all(), "the mesh is closed: every edge belongs to two triangles"


def test_bad_setting_gives_the_java_validation_message(model_file):
    with pytest.raises(TrackposeError) as err:
        java_client.detect(_movie()[:1], axes="TYX", settings=_settings(model_file, FLOW_THRESHOLD=9))
    assert "FLOW_THRESHOLD = 9.0 is out of range: allowed 0 to 3" in str(err.value)
    assert err.value.kind == "input"


def test_settings_that_do_not_fit_the_image_are_refused(model_file):
    image = _movie()[0]
    with pytest.raises(TrackposeError, match=r"MODE_3D = true but the image is 2D"):
        java_client.detect(image, axes="YX", settings=_settings(model_file, MODE_3D=True))
    with pytest.raises(TrackposeError, match=r"TARGET_CHANNEL = 2 but the image has 1 channel"):
        java_client.detect(image, axes="YX", settings=_settings(model_file, TARGET_CHANNEL=2))
    with pytest.raises(TrackposeError, match=r"frame 5 does not exist"):
        java_client.detect(image, axes="YX", settings=_settings(model_file), frames=[5])
    with pytest.raises(TrackposeError, match=r"unknown setting FLOW_TRESHOLD"):
        java_client.detect(image, axes="YX", settings=_settings(model_file, FLOW_TRESHOLD=0.4))


def test_missing_python_executable(model_file, tmp_path):
    missing = str(tmp_path / "no-such-env" / "bin" / "python")
    detector = java_client.Detector(_settings(model_file), python=missing, temp_root=tmp_path / "jobs")
    with pytest.raises(TrackposeError) as err:
        detector.detect(_movie()[0], axes="YX")
    message = str(err.value)
    assert "cannot start the engine" in message and missing in message
    assert err.value.kind == "environment"
    assert list((tmp_path / "jobs").iterdir()) == []


def test_engine_error_carries_the_engine_message(tmp_path):
    image = _movie()[0][:48, :48]
    with pytest.raises(TrackposeError) as err:
        java_client.detect(image, axes="YX", settings={"CELLPOSE_MODEL": str(tmp_path / "no_such_model"),
                                                 "USE_GPU": False})
    assert "no_such_model" in str(err.value)
    assert err.value.kind == "model" and err.value.java_kind == "ENGINE" and err.value.exit_code != 0


def test_numpy_to_imageplus_keeps_values_axes_and_calibration():
    rng = np.random.default_rng(0)
    data = rng.integers(0, 65535, size=(5, 4, 2, 3, 6), dtype=np.uint16)  # X, Y, C, T, Z order
    imp = java_client.to_imageplus(data, axes="XYCTZ", calibration=(0.25, 0.5, 2.0, "micron"))
    assert (imp.getWidth(), imp.getHeight(), imp.getNChannels(), imp.getNSlices(), imp.getNFrames()) == \
        (5, 4, 2, 6, 3)
    assert imp.getBitDepth() == 16
    cal = imp.getCalibration()
    assert (cal.pixelWidth, cal.pixelHeight, cal.pixelDepth, str(cal.getUnit())) == (0.25, 0.5, 2.0, "micron")
    stack = imp.getStack()
    for c, z, t in [(0, 0, 0), (1, 5, 2), (0, 3, 1)]:
        plane = np.asarray(stack.getPixels(imp.getStackIndex(c + 1, z + 1, t + 1))).view(np.uint16).reshape(4, 5)
        np.testing.assert_array_equal(plane, data[:, :, c, t, z].T)
    as_float = java_client.to_imageplus(np.arange(12, dtype=np.float64).reshape(3, 4))
    assert as_float.getBitDepth() == 32 and as_float.getProcessor().getPixelValue(3, 2) == 11.0
    as_byte = java_client.to_imageplus(np.full((3, 4), 200, np.uint8), axes="YX")
    assert as_byte.getBitDepth() == 8 and as_byte.getProcessor().getPixelValue(0, 0) == 200.0
    with pytest.raises(TrackposeError, match="axes"):
        java_client.to_imageplus(data, axes="XYCT")


def test_missing_jars_are_explained(tmp_path, monkeypatch):
    monkeypatch.setenv(java_client.JARS_ENV, str(tmp_path))
    with pytest.raises(java_client.FijiError, match=r"mvn -B package -DskipTests"):
        java_client.find_jars()
    with pytest.raises(java_client.FijiError, match="does not exist"):
        java_client.find_jars([tmp_path / "nothing.jar"])
    with pytest.raises(java_client.FijiError, match="java_home"):
        java_client.find_java_home(tmp_path)
