"""Size models: safe loading, cellpose's file layout and results, fitting, the built-in size model on images of
known object size, and diameter=0 end to end."""
import functools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

import trackpose
from trackpose import synth, train
from trackpose.size_estimation import fit_size_model, size_samples
from trackpose.size_model import RIDGE_GRID, STYLE_SIZE, SizeModel, choose_l2, load_size_model, size_model_path
from trackpose.errors import InputError, ModelError
from helpers import render, touching_discs


ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "python"), TRACKPOSE_OFFLINE="1")


def test_size_file_round_trip_and_formula(tmp_path):
    rng = np.random.default_rng(0)
    model = SizeModel(A=rng.normal(0, 1, 256), smean=rng.normal(0, 0.05, 256), ymean=-0.2, diam_mean=30.0)
    path = model.save(tmp_path / "m_size.npy")
    loaded = load_size_model(path)
    style = rng.normal(0, 0.06, 256)
    expected = math.exp(model.A @ (style - model.smean) + math.log(30) - 0.2)
    assert loaded.predict(style) == pytest.approx(max(5.0, expected), rel=1e-9)
    assert loaded.predict(np.stack([style, style])).shape == (2,)
    # cellpose's reader (np.load(..., allow_pickle=True).item()) gets the same dict
    params = np.load(path, allow_pickle=True).item()
    assert set(params) == {"A", "smean", "ymean", "diam_mean"} and np.array_equal(params["A"], model.A)
    # very small predictions are clamped to 5 px; non-finite ones fall back to diam_mean
    tiny = SizeModel(A=np.zeros(256), smean=np.zeros(256), ymean=-10.0, diam_mean=30.0)
    assert tiny.predict(style) == 5.0
    huge = SizeModel(A=np.zeros(256), smean=np.zeros(256), ymean=1e4, diam_mean=30.0)
    assert huge.predict(style) == 30.0


class _Payload:
    """Pickles as a call to os.system: loading it with plain pickle would run the command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_or_wrong_size_files_are_refused_without_running_anything(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil_size.npy"
    np.save(evil, {"A": np.zeros(256), "smean": np.zeros(256), "ymean": _Payload(marker), "diam_mean": 30.0},
            allow_pickle=True)
    with pytest.raises(ModelError, match="os.system|posix.system|refusing"):
        load_size_model(evil)
    assert not marker.exists()
    wrong = tmp_path / "wrong_size.npy"
    np.save(wrong, {"A": np.zeros(128), "smean": np.zeros(256), "ymean": 0.0, "diam_mean": 30.0})
    with pytest.raises(ModelError, match="A must be 256"):
        load_size_model(wrong)
    nan = tmp_path / "nan_size.npy"
    np.save(nan, {"A": np.zeros(256), "smean": np.full(256, np.nan), "ymean": 0.0, "diam_mean": 30.0})
    with pytest.raises(ModelError, match="NaN"):
        load_size_model(nan)
    missing = tmp_path / "missing_size.npy"
    np.save(missing, {"A": np.zeros(256), "smean": np.zeros(256)})
    with pytest.raises(ModelError, match="lacks ymean, diam_mean"):
        load_size_model(missing)
    plain = tmp_path / "plain_size.npy"
    np.save(plain, np.zeros(256))
    with pytest.raises(ModelError, match="not a dict"):
        load_size_model(plain)
    garbage = tmp_path / "garbage_size.npy"
    garbage.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ModelError, match="garbage_size.npy"):
        load_size_model(garbage)


def test_invalid_size_file_next_to_a_model_fails_on_use(tmp_path, model_file):
    target = tmp_path / "m"
    target.write_bytes(Path(model_file).read_bytes())
    (tmp_path / "m_size.npy").write_bytes(b"not a size model")
    model = trackpose.load_model(target)  # loading the network still works
    assert model.size_path == tmp_path / "m_size.npy"
    with pytest.raises(ModelError, match="m_size.npy"):
        trackpose.segment(np.zeros((64, 64), np.float32), model=model, diameter=0)


def test_without_a_size_model_none_is_diam_labels_and_zero_is_an_error(model_file):
    image = render(touching_discs((96, 96), n=6, seed=3), seed=3)
    assert trackpose.load_model(model_file).size_model is None
    assert trackpose.segment(image, model=model_file).diameter == 24.0  # the fixture's diam_labels
    with pytest.raises(InputError, match="random_cp_size.npy"):
        trackpose.segment(image, model=model_file, diameter=0)


# -------------------------------------------------------------------------------- cellpose as an oracle

@pytest.fixture(scope="module")
def oracle_model(tmp_path_factory):
    """The built-in model's weights and size model, with diam_labels set to diam_mean: cellpose computes the style
    at rescale diam_mean / diam_labels, trackpose at the image's own scale (the scale the size model was fitted
    at); with equal diameters both see the same image. (Random-weight networks give no masks that pass the flow
    check that cellpose's refinement applies, so trained weights are needed here.)"""
    from trackpose.models import read_state_dict
    builtin = trackpose.load_model(trackpose.DEFAULT_MODEL)
    state = read_state_dict(builtin.path)
    state["diam_labels"] = state["diam_mean"].clone()
    path = tmp_path_factory.mktemp("oracle") / "oracle_cp"
    torch.save(state, path)
    size_model_path(path).write_bytes(builtin.size_path.read_bytes())
    return path


def test_cellpose_reads_our_size_file_and_estimates_the_same_diameter(oracle_model):
    models = pytest.importorskip("cellpose.models")
    image, _ = synth.nuclei_image((224, 224), seed=9501, diameter_range=(14, 20))
    result = trackpose.segment(image, model=oracle_model, diameter=0)
    cp_model = models.CellposeModel(pretrained_model=str(oracle_model))
    sz = models.SizeModel(cp_model, pretrained_size=str(size_model_path(oracle_model)))
    diam, diam_style = sz.eval(image, channels=[0, 0])
    assert float(diam_style) == pytest.approx(result.diameter_style, rel=1e-3)
    assert result.diameter == pytest.approx(float(diam), rel=0.01)


# ------------------------------------------------------------------------------- the built-in size model

SIZED_IMAGES = [("nuclei", 12, 9201), ("nuclei", 20, 9202), ("nuclei", 35, 9203),
                ("cells", 12, 9204), ("cells", 20, 9205), ("cells", 35, 9206)]


@functools.lru_cache(maxsize=None)  # both tests below look at the same estimate
def _estimate_sized_image(kind, diameter, seed):
    image, masks, kw = synth.sized_image(kind, diameter, seed)
    truth = trackpose.estimate_diameter(masks)
    model = trackpose.load_model(trackpose.DEFAULT_MODEL)
    assert model.size_model is not None, "the built-in model ships its size model"
    return truth, trackpose.segment(image, model=model, diameter=0, **kw)


@pytest.mark.parametrize("kind, diameter, seed", SIZED_IMAGES)
def test_builtin_size_model_refined_estimate_is_within_10_percent(kind, diameter, seed):
    """The issue's acceptance test, second half: within 10% after refinement (what diameter=0 segments with)."""
    truth, result = _estimate_sized_image(kind, diameter, seed)
    assert result.diameter == pytest.approx(truth, rel=0.10)
    assert result.n_objects > 0


@pytest.mark.parametrize("kind, diameter, seed", SIZED_IMAGES)
def test_builtin_size_model_style_estimate_is_within_20_percent(kind, diameter, seed):
    """The issue's acceptance test, first half: within 20% from the style alone (docs/development-notes.md, "Stage 5",
    lists the errors of the shipped model and of the candidates it was chosen from)."""
    truth, result = _estimate_sized_image(kind, diameter, seed)
    assert result.diameter_style == pytest.approx(truth, rel=0.20)


# ----------------------------------------------------------------------------------- fitting, training

def test_fit_size_model_is_deterministic_and_learns_scale():
    pairs = list(synth.dataset(3, "nuclei", seed=77, shape=(96, 96), diameter_range=(8, 14)))
    images, masks = [p[0] for p in pairs], [p[1] for p in pairs]
    one = fit_size_model(trackpose.DEFAULT_MODEL, images, masks, n_epochs=2, seed=3, bsize=96)
    two = fit_size_model(trackpose.DEFAULT_MODEL, images, masks, n_epochs=2, seed=3, bsize=96)
    assert np.array_equal(one.A, two.A) and one.ymean == two.ymean and one.diam_mean == 30.0
    assert np.abs(one.A).max() > 0


def test_size_samples_name_their_image():
    pairs = list(synth.dataset(3, "nuclei", seed=78, shape=(64, 64), diameter_range=(8, 12)))
    images, masks = [p[0] for p in pairs], [p[1] for p in pairs]
    styles, targets, groups = size_samples(trackpose.DEFAULT_MODEL, images, masks, n_epochs=2, seed=1,
                                                bsize=64)
    assert styles.shape == (6, STYLE_SIZE) and targets.shape == groups.shape == (6,)
    assert sorted(groups.tolist()) == [0, 0, 1, 1, 2, 2]


def test_cross_validation_keeps_an_image_s_samples_together():
    """Samples of one image are near copies: folds that split them reward memorising (a tiny penalty); folds by
    image see that the targets here are noise that no penalty predicts (the largest)."""
    rng = np.random.default_rng(0)
    n_images, copies = 40, 3
    base = rng.normal(size=(n_images, STYLE_SIZE))
    styles = np.repeat(base, copies, axis=0) + 1e-3 * rng.normal(size=(n_images * copies, STYLE_SIZE))
    targets = np.repeat(rng.normal(size=n_images), copies)
    groups = np.repeat(np.arange(n_images), copies)
    order = rng.permutation(len(targets))  # as size_samples visits them: images shuffled, epoch after epoch
    styles, targets, groups = styles[order], targets[order], groups[order]
    assert choose_l2(styles, targets) <= 1e-3
    assert choose_l2(styles, targets, groups=groups) == max(RIDGE_GRID)
    with pytest.raises(InputError, match="groups"):
        choose_l2(styles, targets, groups=groups[:-1])


def test_train_writes_a_size_model_cellpose_can_read(tmp_path):
    pairs = list(synth.dataset(3, "nuclei", seed=78, shape=(96, 96), diameter_range=(10, 16)))
    result = train.train([p[0] for p in pairs], [p[1] for p in pairs], n_epochs=1, batch_size=2,
                                   bsize=64, save_path=tmp_path / "m", size_model_epochs=1)
    assert result.size_path == tmp_path / "m_size.npy"
    assert trackpose.load_model(tmp_path / "m").size_model is not None
    assert set(np.load(result.size_path, allow_pickle=True).item()) == {"A", "smean", "ymean", "diam_mean"}
    skipped = train.train([p[0] for p in pairs], [p[1] for p in pairs], n_epochs=1, batch_size=2,
                                    bsize=64, save_path=tmp_path / "n", size_model_epochs=0)
    assert skipped.size_path is None and not (tmp_path / "n_size.npy").exists()


# ----------------------------------------------------------------------------------- command lines, job

@pytest.fixture(scope="module")
def nuclei_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    image, masks = synth.nuclei_image((160, 160), seed=9301, diameter_range=(18, 22))
    tifffile.imwrite(folder / "nuc.tif", image.astype(np.float32))
    return folder / "nuc.tif", trackpose.estimate_diameter(masks)


def test_segment_command_estimates_the_diameter(nuclei_file, tmp_path):
    path, truth = nuclei_file
    p = subprocess.run([sys.executable, "-m", "trackpose", "-v", "segment", str(path), "--diameter", "0",
                        "--savedir", str(tmp_path)], capture_output=True, text=True, env=ENV, timeout=600)
    assert p.returncode == 0, p.stderr
    estimate = float(p.stderr.split("estimated diameter ")[1].split()[0])
    assert estimate == pytest.approx(truth, rel=0.10)
    assert (tmp_path / "nuc_cp_masks.tif").exists()
    p = subprocess.run([sys.executable, "-m", "trackpose.cli.cellpose", "--image_path", str(path),
                        "--pretrained_model", trackpose.DEFAULT_MODEL, "--diameter", "0", "--savedir",
                        str(tmp_path / "cp"), "--no_npy", "--verbose"],
                       capture_output=True, text=True, env=ENV, timeout=600)
    assert p.returncode == 0, p.stderr
    assert "estimated diameter" in p.stdout + p.stderr


def test_job_with_diameter_zero_estimates_each_frame(nuclei_file, tmp_path):
    path, truth = nuclei_file
    frame = tifffile.imread(path)
    folder = tmp_path / "job"
    folder.mkdir()
    tifffile.imwrite(folder / "input.tif", np.stack([frame, frame[::-1]]), imagej=True, metadata={"axes": "TYX"})
    (folder / "job.json").write_text(json.dumps({"version": 1, "frames": [0, 1], "settings": {
        "model": trackpose.DEFAULT_MODEL, "diameter": 0.0}}))
    p = subprocess.run([sys.executable, "-m", "trackpose", "job", str(folder)], capture_output=True, text=True,
                       env=ENV, timeout=600)
    assert p.returncode == 0, p.stderr
    logs = [json.loads(line)["message"] for line in p.stdout.splitlines() if '"log"' in line]
    estimates = [float(m.split("estimated diameter ")[1].split()[0]) for m in logs if "estimated diameter" in m]
    assert len(estimates) == 2 and all(e == pytest.approx(truth, rel=0.10) for e in estimates)
