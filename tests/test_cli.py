"""Both command lines, run as a user would: files in, label images out, clear errors and exit codes."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from trackpose import io
from helpers import render, touching_discs

pytestmark = pytest.mark.slow  # starts processes / trains

ROOT = Path(__file__).resolve().parents[1]


def run(*args, cwd=None, env_home=None):
    import os
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), TRACKPOSE_OFFLINE="1")
    if env_home:
        env["HOME"] = str(env_home)
        env["CELLPOSE_LOCAL_MODELS_PATH"] = str(Path(env_home) / "models")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


@pytest.fixture()
def images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    img = render(touching_discs((160, 180), n=20, seed=2), seed=2).astype(np.uint16)
    tifffile.imwrite(folder / "a.tif", img, imagej=True, resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"unit": "micron"})
    tifffile.imwrite(folder / "b.tif", img[::-1])
    (folder / "broken.tif").write_bytes(b"II*\x00garbage")
    return folder


def test_segment_writes_calibrated_labels_and_reports_failures(images, model_file, tmp_path):
    before = (images / "a.tif").read_bytes()
    out = tmp_path / "out"
    p = run("-m", "trackpose", "segment", str(images), "--model", str(model_file), "--diameter", "30",
            "--savedir", str(out))
    assert p.returncode == 1, p.stderr  # one file is broken ...
    assert "broken.tif" in p.stdout + p.stderr and "1 of 3" in p.stderr
    labels, meta = io.read_image(out / "a_cp_masks.tif")  # ... the others were still segmented
    assert labels.shape == (160, 180) and labels.dtype == np.uint16
    assert meta.pixel_size_x == pytest.approx(0.5) and meta.unit == "micron"
    assert (out / "b_cp_masks.tif").exists()
    assert (images / "a.tif").read_bytes() == before


def test_segment_help_and_errors(model_file, tmp_path):
    p = run("-m", "trackpose", "segment", "--help")
    assert p.returncode == 0 and "diameter in pixels" in p.stdout
    p = run("-m", "trackpose", "segment", str(tmp_path / "missing.tif"), "--model", str(model_file))
    assert p.returncode == 1 and "no such file" in p.stderr
    p = run("-m", "trackpose", "segment", str(tmp_path), "--model", str(tmp_path / "nomodel"))
    assert p.returncode == 1 and "does not exist" in p.stderr


def test_cellpose_compatible_cli(images, model_file, tmp_path):
    (images / "broken.tif").unlink()
    home = tmp_path / "home"
    home.mkdir()
    p = run("-m", "trackpose.cli.cellpose", "--dir", str(images), "--pretrained_model", str(model_file),
            "--chan", "0", "--diameter", "30", "--save_png", "--no_npy", "--verbose", env_home=home)
    assert p.returncode == 0, p.stderr
    assert (images / "a_cp_masks.png").exists() and (images / "b_cp_masks.png").exists()
    assert not list(images.glob("*_seg.npy"))
    assert "%|" in p.stdout and "[INFO]" in p.stdout  # progress lines as TrackMate-Cellpose parses them
    assert "%|" in (home / ".cellpose" / "run.log").read_text()
    p = run("-m", "trackpose.cli.cellpose", "--image_path", str(images / "a.tif"), "--pretrained_model",
            str(model_file), "--save_tif", env_home=home)
    assert p.returncode == 0, p.stderr
    assert (images / "a_seg.npy").exists() and io.read_image(images / "a_cp_masks.tif")[0].shape == (160, 180)
    p = run("-m", "trackpose.cli.cellpose", "--dir", str(images), "--pretrained_model", "cyto2", env_home=home)
    assert p.returncode == 1 and "cyto2torch_0" in p.stderr  # says which file to put where


def test_train_command_writes_a_loadable_model(tmp_path):
    from trackpose import synth
    import trackpose
    data = tmp_path / "train"
    data.mkdir()
    for i in range(3):
        img, masks = synth.nuclei_image((96, 96), diameter_range=(10, 16), seed=i)
        tifffile.imwrite(data / f"img{i}.tif", img.astype(np.float32))
        tifffile.imwrite(data / f"img{i}_masks.tif", masks.astype(np.uint16))
    out = tmp_path / "mymodel"
    p = run("-m", "trackpose", "train", str(data), "--save", str(out), "--epochs", "2", "--bsize", "64",
            "--batch-size", "2")
    assert p.returncode == 0, p.stderr
    assert "epoch 2/2" in p.stdout
    m = trackpose.load_model(out)
    assert m.diam_mean == 30.0 and 10 <= m.diam_labels <= 16
    p = run("-m", "trackpose", "train", str(tmp_path / "empty"), "--save", str(out))
    assert p.returncode == 1 and "empty" in p.stderr


def test_shapes_command(tmp_path):
    labels = touching_discs((120, 140), n=10, seed=5)
    meta = io.ImageMeta(axes="YX", pixel_size_x=0.5, pixel_size_y=0.5, unit="micron")
    io.write_labels(tmp_path / "cells_cp_masks.tif", labels, meta)
    p = run("-m", "trackpose", "shapes", str(tmp_path / "cells_cp_masks.tif"))
    assert p.returncode == 0, p.stderr
    import json
    doc = json.loads((tmp_path / "cells_cp_masks_shapes.json").read_text())
    assert len(doc["objects"]) == labels.max() and doc["unit"] == "micron"
    first = doc["objects"][0]
    assert first["area"] == (labels == first["label"]).sum() and len(first["polygon"]) >= 4
    vol = np.zeros((20, 30, 30), np.uint16)
    vol[5:15, 8:20, 8:20] = 1
    io.write_labels(tmp_path / "vol.tif", vol, io.ImageMeta(axes="ZYX", z_spacing=2.0, pixel_size_x=1.0,
                                                            pixel_size_y=1.0, unit="micron"))
    p = run("-m", "trackpose", "shapes", str(tmp_path / "vol.tif"), "--meshes")
    assert p.returncode == 0, p.stderr
    from trackpose import meshes
    v, f = io.read_ply(tmp_path / "vol_meshes" / "1.ply")
    assert abs(meshes.mesh_volume(v, f) - 10 * 12 * 12 * 2.0) / (10 * 12 * 12 * 2.0) < 0.05


def test_tiling_flag_reaches_the_engine(images, tmp_path):
    """--tiling picks the tile layout: compact by default in `trackpose segment`, cellpose's by default in the
    cellpose-compatible command (at diameter 15 the 160 x 180 image is resized to 320 x 360: one compact tile,
    four of cellpose's). The built-in model: a random network's masks here are the same under both layouts."""
    import trackpose
    img = tifffile.imread(images / "a.tif")
    expected = {t: trackpose.segment(img, model=trackpose.DEFAULT_MODEL, diameter=15, tiling=t).masks
                for t in ("compact", "cellpose")}
    assert not np.array_equal(expected["compact"], expected["cellpose"])  # the layouts differ on this image
    for flags, tiling in (([], "compact"), (["--tiling", "cellpose"], "cellpose")):
        out = tmp_path / tiling
        p = run("-m", "trackpose", "segment", str(images / "a.tif"), "--diameter", "15",
                "--savedir", str(out), *flags)
        assert p.returncode == 0, p.stderr
        np.testing.assert_array_equal(io.read_image(out / "a_cp_masks.tif")[0], expected[tiling])
    out = tmp_path / "cp"
    p = run("-m", "trackpose.cli.cellpose", "--image_path", str(images / "a.tif"), "--pretrained_model",
            trackpose.DEFAULT_MODEL, "--diameter", "15", "--savedir", str(out), "--save_tif", "--no_npy",
            env_home=tmp_path)
    assert p.returncode == 0, p.stderr
    np.testing.assert_array_equal(io.read_image(out / "a_cp_masks.tif")[0], expected["cellpose"])
    p = run("-m", "trackpose", "segment", str(images / "a.tif"), "--tiling", "fastest")
    assert p.returncode == 2 and "--tiling" in p.stderr


def test_bfloat16_flag_reaches_the_engine(images, tmp_path):
    """--bfloat16 gives what segment(bfloat16=True) gives (the flows differ from float32's, see test_segment)."""
    import trackpose
    img = tifffile.imread(images / "a.tif")
    expected = trackpose.segment(img, model=trackpose.DEFAULT_MODEL, diameter=15, bfloat16=True)
    out = tmp_path / "bf16"
    p = run("-m", "trackpose", "segment", str(images / "a.tif"), "--diameter", "15", "--savedir", str(out),
            "--bfloat16", "--save-flows")
    assert p.returncode == 0, p.stderr
    np.testing.assert_array_equal(io.read_image(out / "a_cp_masks.tif")[0], expected.masks)
    cellprob = tifffile.imread(next(out.glob("a*_cellprob.tif")))
    np.testing.assert_allclose(cellprob, expected.cellprob, atol=1e-6)
    plain = trackpose.segment(img, model=trackpose.DEFAULT_MODEL, diameter=15)
    assert np.abs(plain.cellprob - cellprob).max() > 0


def test_a_file_without_a_z_spacing_has_its_z_step_told_from_the_stack(caplog):
    """`trackpose segment --do-3d` (and a job.json without a Z spacing): the file's calibration when it has one,
    else "auto", with a warning that names the flag to set it."""
    from trackpose.batch import anisotropy_from_meta
    calibrated = io.ImageMeta(axes="ZYX", z_spacing=2.0, pixel_size_x=0.5, pixel_size_y=0.5, unit="micron")
    assert anisotropy_from_meta(calibrated) == 4.0
    with caplog.at_level("WARNING", logger="trackpose"):
        assert anisotropy_from_meta(io.ImageMeta(axes="ZYX", source="stack.tif")) == "auto"
    assert any("stack.tif" in r.getMessage() and "--anisotropy" in r.getMessage() for r in caplog.records)
