"""Training: augmentation keeps flows consistent, a few steps lower the loss, files load in trackpose and
cellpose, bad input is skipped or refused clearly, a diverging run keeps its last good checkpoint."""
import warnings

import numpy as np
import pytest
import tifffile
import torch
from scipy import ndimage

import trackpose
from trackpose import dynamics, synth, train
from trackpose.errors import InputError

pytestmark = pytest.mark.slow  # starts processes / trains


@pytest.fixture(scope="module")
def small_data():
    pairs = list(synth.dataset(4, "nuclei", seed=21, shape=(96, 96), diameter_range=(10, 18)))
    return [p[0] for p in pairs], [p[1] for p in pairs]


FAST = dict(n_epochs=5, nimg_per_epoch=8, batch_size=4, bsize=64, warmup_epochs=0, seed=0)


def test_given_diameters_replace_the_measured_ones_and_set_the_training_scale():
    image, masks = synth.nuclei_image(shape=(96, 96), seed=4, diameter_range=(14, 22))
    measured, given, nan = train.prepare_pairs([image] * 3, [masks] * 3, diameters=[None, 40.0, float("nan")])
    assert measured.diameter == nan.diameter == pytest.approx(train.mask_diameter(masks))
    assert given.diameter == 40.0
    # the augmentation scales each sample by diam_mean / its diameter: at 40 instead of ~18, objects come out smaller
    _, _, fg_measured = train.augment([measured], np.random.default_rng(1), 64, 30.0)
    _, _, fg_given = train.augment([given], np.random.default_rng(1), 64, 30.0)
    def mean_area(fg):
        pieces, count = ndimage.label(fg[0].numpy() > 0)
        return (pieces > 0).sum() / count
    assert mean_area(fg_given) < 0.5 * mean_area(fg_measured)  # (18 / 40)^2 ~ 0.2 of the area
    with pytest.raises(InputError, match="diameters"):
        train.prepare_pairs([image], [masks], diameters=[1.0, 2.0])
    with pytest.raises(InputError, match=r"diameters\[0\] must be a number"):
        train.prepare_pairs([image], [masks], diameters=["20"])


def test_augmented_flows_point_where_the_augmented_masks_say():
    image, masks = synth.nuclei_image(shape=(128, 128), seed=4, diameter_range=(14, 22))
    pair = train.prepare_pairs([image], [masks])[0]
    # the labels warped as an image (same random draws) tell which object each output pixel belongs to
    as_image = train.TrainingPair(np.stack([masks.astype(np.float32)] * 2), masks, pair.flows, pair.diameter, "l")
    for seed in range(4):
        _, flows, foreground = train.augment([pair], np.random.default_rng(seed), 64, 30.0)
        warped, _, _ = train.augment([as_image], np.random.default_rng(seed), 64, 30.0)
        labels = warped[0, 0].numpy()
        whole = np.round(labels).astype(np.int32)
        whole[np.abs(labels - whole) > 1e-3] = 0
        assert (foreground[0].numpy()[whole > 0] > 0).mean() > 0.99
        interior = ndimage.binary_erosion(whole > 0, iterations=2)
        expected = dynamics.masks_to_flows(whole)[:, interior]
        got = flows[0].numpy()[:, interior]
        cosine = (expected * got).sum(0) / (np.linalg.norm(got, axis=0) + 1e-6)
        assert np.median(cosine) > 0.97, f"seed {seed}: flows not rotated/flipped with the image"


def test_learning_rate_schedule_warms_up_and_halves_at_the_end():
    rates = train.learning_rate_schedule(400, 0.005)
    assert rates[0] == 0 and rates[9] == pytest.approx(0.005) and rates[299] == pytest.approx(0.005)
    assert rates[300] == pytest.approx(0.0025) and rates[310] == pytest.approx(0.00125)
    assert len(train.learning_rate_schedule(50, 0.1)) == 50


def test_a_few_steps_lower_the_loss_and_the_file_loads_in_trackpose_and_cellpose(small_data, tmp_path):
    images, masks = small_data
    path = tmp_path / "tiny_model"
    seen = []
    result = train.train(images, masks, save_path=path, progress=seen.append, **FAST)
    losses = [e["loss"] for e in result.history]
    assert len(seen) == 5 and all(np.isfinite(losses))
    assert np.mean(losses[-2:]) < losses[0]
    model = trackpose.load_model(path)
    assert model.diam_mean == 30.0
    assert model.diam_labels == pytest.approx(np.mean([train.mask_diameter(m) for m in masks]), rel=1e-5)
    y, style = model.net(torch.zeros(1, 2, 64, 64))
    assert y.shape == (1, 3, 64, 64) and style.shape == (1, 256)

    cellpose_models = pytest.importorskip("cellpose.models")
    cp = cellpose_models.CellposeModel(pretrained_model=str(path), gpu=False)
    assert float(cp.diam_mean) == 30.0
    assert float(cp.diam_labels) == pytest.approx(model.diam_labels, rel=1e-5)


def test_half_precision_export_is_smaller_and_loads(small_data, tmp_path):
    images, masks = small_data
    path = tmp_path / "m"
    train.train(images, masks, save_path=path, **{**FAST, "n_epochs": 1})
    half = train.export_half(path, tmp_path / "m_half")
    assert half.stat().st_size < 0.6 * path.stat().st_size
    full, small = trackpose.load_model(path), trackpose.load_model(half)
    assert small.diam_labels == full.diam_labels
    x = torch.rand(1, 2, 64, 64)
    with torch.no_grad():
        a, b = small.net(x)[0].numpy(), full.net(x)[0].numpy()
    assert np.abs(a - b).max() < 0.01 * np.abs(b).max()


def test_interpolated_model_lies_between_its_two_parents_and_refuses_other_networks(tmp_path):
    from helpers import random_cpnet
    from trackpose.models import read_state_dict, save_model
    base = save_model(random_cpnet(seed=1), tmp_path / "base", 30.0, 14.0)
    tuned = save_model(random_cpnet(seed=2), tmp_path / "tuned", 30.0, 18.0)
    a, b = read_state_dict(base), read_state_dict(tuned)
    for weight in (0.0, 0.3, 1.0):
        out = train.interpolate_models(base, tuned, weight, tmp_path / f"mix{weight}")
        mixed = read_state_dict(out)
        assert mixed.keys() == a.keys()
        for key, value in mixed.items():
            if not value.is_floating_point():  # num_batches_tracked: the tuned model's
                assert torch.equal(value, b[key]), key
                continue
            expected = (1 - weight) * a[key].float() + weight * b[key].float()
            if key.startswith("diam_"):  # kept in float32
                assert torch.equal(value, expected.to(value.dtype)), key
            else:
                assert value.dtype == torch.float16
                assert torch.allclose(value.float(), expected, rtol=1e-3, atol=1e-3), key
        assert trackpose.load_model(out).diam_labels == pytest.approx(14.0 + 4.0 * weight)
    # weight 0 is the base network itself, up to float16
    x = torch.rand(1, 2, 64, 64)
    with torch.no_grad():
        got = trackpose.load_model(tmp_path / "mix0.0").net(x)[0]
        ref = trackpose.load_model(base).net(x)[0]
    assert (got - ref).abs().max() < 0.01 * ref.abs().max()
    with pytest.raises(InputError, match="outside"):
        train.interpolate_models(base, tuned, 1.5, tmp_path / "bad")
    small = tmp_path / "small"
    torch.save({k: v[..., :1] if v.ndim == 4 else v for k, v in a.items()}, small)
    with pytest.raises(InputError, match="not the same network"):
        train.interpolate_models(base, small, 0.5, tmp_path / "bad")


def test_resume_continues_where_the_run_stopped(small_data, tmp_path):
    images, masks = small_data
    straight = train.train(images, masks, save_path=tmp_path / "a", **{**FAST, "n_epochs": 3})
    train.train(images, masks, save_path=tmp_path / "b", **{**FAST, "n_epochs": 2})
    resumed = train.train(images, masks, save_path=tmp_path / "b", resume=True, **{**FAST, "n_epochs": 3})
    assert [e["epoch"] for e in resumed.history] == [1, 2, 3]
    assert resumed.history[-1]["loss"] == pytest.approx(straight.history[-1]["loss"], rel=1e-3)


def test_validation_ap_is_reported_and_the_best_model_kept(small_data, tmp_path):
    images, masks = small_data
    result = train.train(images[:3], masks[:3], val_images=images[3:], val_masks=masks[3:],
                         save_path=tmp_path / "v", **{**FAST, "n_epochs": 2})
    assert all(len(e["val_ap"]) == 3 and 0 <= e["val_ap"][0] <= 1 for e in result.history)
    assert result.best_path.is_file()
    trackpose.load_model(result.best_path)


def test_bad_pairs_are_skipped_with_a_warning(small_data, tmp_path):
    images, masks = small_data
    bad_images = [images[0], np.zeros((50, 50), np.float32), images[1], images[2]]
    bad_masks = [masks[0], np.zeros((60, 60), np.int32), np.zeros_like(masks[1]), masks[2] + 0.5]
    with pytest.warns(UserWarning) as caught:
        result = train.train(bad_images, bad_masks, save_path=tmp_path / "m", **{**FAST, "n_epochs": 1})
    text = " ".join(str(w.message) for w in caught)
    assert "50 x 50" in text and "no objects" in text and "integer" in text
    assert result.n_train == 1


def test_nothing_usable_is_a_clear_error(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match="no usable training pair"):
            train.train([np.ones((64, 64))], [np.zeros((64, 64), np.int32)], save_path=tmp_path / "m", **FAST)
    with pytest.raises(InputError, match="masks"):
        train.train([np.ones((64, 64))], None, save_path=tmp_path / "m")
    with pytest.raises(InputError, match="bsize"):
        train.train([np.ones((64, 64))], [np.ones((64, 64), int)], bsize=100, save_path=tmp_path / "m")


def test_diverging_loss_stops_and_keeps_the_last_good_checkpoint(small_data, tmp_path):
    images, masks = small_data
    path = tmp_path / "m"
    train.train(images, masks, save_path=path, **{**FAST, "n_epochs": 1})
    good = path.read_bytes()
    with pytest.raises(train.TrainingError, match="last good checkpoint"):
        train.train(images, masks, save_path=path, resume=True, learning_rate=1e30, **{**FAST, "n_epochs": 4})
    assert path.read_bytes() == good
    trackpose.load_model(path)


def test_folder_in_cellpose_naming(small_data, tmp_path):
    images, masks = small_data
    for i, (image, labels) in enumerate(zip(images, masks)):
        tifffile.imwrite(tmp_path / f"img{i}.tif", image)
        tifffile.imwrite(tmp_path / f"img{i}_masks.tif", labels.astype(np.uint16))
    tifffile.imwrite(tmp_path / "lonely.tif", images[0])
    with pytest.warns(UserWarning, match="lonely.tif"):
        loaded, labels, names = train.load_folder(tmp_path)
    assert names == ["img0.tif", "img1.tif", "img2.tif", "img3.tif"]
    np.testing.assert_array_equal(labels[2], masks[2])
    with pytest.warns(UserWarning, match="lonely.tif"):
        result = train.train(str(tmp_path), save_path=tmp_path / "out" / "m", **{**FAST, "n_epochs": 1})
    assert result.n_train == 4 and (tmp_path / "out" / "m").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no image"):
        train.load_folder(empty)


def test_batchnorm_recalibration_uses_the_final_weights(small_data, tmp_path):
    images, masks = small_data
    path = tmp_path / "m"
    train.train(images, masks, save_path=path, recalibrate_batches=3, **{**FAST, "n_epochs": 1})
    state = torch.load(path, weights_only=True)
    assert int(state["output.0.num_batches_tracked"]) == 3  # statistics re-estimated from scratch over 3 batches
    assert trackpose.load_model(path).net.output[0].momentum == 0.05


def test_thin_strips_have_padding_rows_that_cut_objects_like_an_image_border():
    image, masks = synth.nuclei_image(shape=(192, 192), seed=4, diameter_range=(14, 22))
    pair = train.prepare_pairs([image], [masks])[0]
    shapes, first_row, last_row = set(), [], []
    for seed in range(12):
        x, flows, foreground = train.thin_strips([pair, pair], np.random.default_rng(seed), 128, 30.0)
        n, c, ly, lx = x.shape
        assert (n, c) == (2, 2) and flows.shape == x.shape and foreground.shape == (2, ly, lx)
        h = min(ly, lx)
        assert max(ly, lx) == 128 and h % 16 == 0 and 32 <= h <= 64
        shapes.add((ly, lx))
        # as a slice through few planes: its ends padded with 8 to 16 empty rows (image, flows and foreground)
        along = (lambda t: t) if ly == h else (lambda t: t.transpose(-1, -2))
        for b in range(2):
            fg, fl = along(foreground[b]), along(flows[b])
            if ly != h:  # transposed back to a horizontal strip, (dY, dX) swap back too
                fl = fl.flip(0)
            empty = (along(x[b]).abs().sum(0) == 0).all(dim=1)
            rows = torch.nonzero(~empty)[:, 0]
            top, bottom = int(rows.min()), h - 1 - int(rows.max())
            assert 8 <= top <= 16 and 8 <= bottom <= 16
            assert (fg[empty] == 0).all() and (fl[:, empty] == 0).all()
            # objects cut by the padding flow to the centre of what is left, away from the padding
            # (cellpose's crops keep the flows of the whole object, pointing out of the crop)
            inside = fg[top] > 0
            first_row.extend(fl[0, top][inside].tolist())
            inside = fg[h - 1 - bottom] > 0
            last_row.extend(fl[0, h - 1 - bottom][inside].tolist())
    assert any(ly < lx for ly, lx in shapes) and any(ly > lx for ly, lx in shapes)
    assert len(first_row) > 50 and np.mean(first_row) > 0.5 and min(first_row) > -0.1
    assert len(last_row) > 50 and np.mean(last_row) < -0.5 and max(last_row) < 0.1


def test_training_with_thin_strips_runs_and_checks_its_argument(small_data, tmp_path, monkeypatch):
    images, masks = small_data
    calls = []
    strips = train.thin_strips
    monkeypatch.setattr(train, "thin_strips", lambda *a, **k: calls.append(1) or strips(*a, **k))
    result = train.train(images, masks, save_path=tmp_path / "m", thin_fraction=1.0, size_model_epochs=0,
                         **{**FAST, "n_epochs": 2})
    assert trackpose.load_model(result.model_path) is not None and np.isfinite(result.history[-1]["loss"])
    assert len(calls) == 2 * FAST["nimg_per_epoch"] // FAST["batch_size"]  # every batch a strip batch
    train.train(images, masks, save_path=tmp_path / "o", size_model_epochs=0, **{**FAST, "n_epochs": 1})
    assert len(calls) == 4  # the default: none
    with pytest.raises(InputError, match="thin_fraction"):
        train.train(images, masks, save_path=tmp_path / "n", thin_fraction=1.5, **FAST)


def test_style_size_loss_fits_a_head_on_native_scale_styles_without_touching_the_running_statistics():
    pairs = [train.prepare_pairs([image], [labels])[0] for d in (8, 16, 32) for image, labels in
             [synth.nuclei_image(shape=(160, 160), seed=int(d), diameter_range=(0.9 * d, 1.1 * d))]]
    net = trackpose.load_model(trackpose.DEFAULT_MODEL).net
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    head = torch.nn.Linear(256, 1)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    targets = np.log([p.diameter / 30.0 for p in pairs])
    first = train.style_size_loss(net, head, pairs, np.random.default_rng(0), 30.0, "cpu").item()
    assert first == pytest.approx(np.mean(targets ** 2), rel=1e-5)  # zero head: the targets' mean square
    assert net.training and net.downsample.training  # the encoder ran in eval mode and was switched back
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items())
    net.requires_grad_(False)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    for step in range(60):  # the head alone can learn the sizes from the styles (net frozen)
        loss = train.style_size_loss(net, head, pairs, np.random.default_rng(step), 30.0, "cpu")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * first


def test_training_with_the_style_size_loss_reports_it_and_resumes_exactly(small_data, tmp_path):
    images, masks = small_data
    kw = {**FAST, "size_model_epochs": 0, "style_size_weight": 1.0}
    straight = train.train(images, masks, save_path=tmp_path / "a", **{**kw, "n_epochs": 3})
    rmse = [e["style_size_rmse"] for e in straight.history]
    assert all(np.isfinite(rmse)) and "style_size_rmse" not in train.train(
        images, masks, save_path=tmp_path / "c", size_model_epochs=0, **{**FAST, "n_epochs": 1}).history[0]
    train.train(images, masks, save_path=tmp_path / "b", **{**kw, "n_epochs": 2})
    resumed = train.train(images, masks, save_path=tmp_path / "b", resume=True, **{**kw, "n_epochs": 3})
    assert resumed.history[-1]["style_size_rmse"] == pytest.approx(rmse[-1], rel=1e-4)  # the head was restored
    with pytest.raises(InputError, match="style_size_weight"):
        train.train(images, masks, save_path=tmp_path / "c", resume=True, size_model_epochs=0,
                    **{**FAST, "n_epochs": 2, "style_size_weight": 1.0})
    with pytest.raises(InputError, match="style_size_weight"):
        train.train(images, masks, save_path=tmp_path / "d", style_size_weight=-1, **FAST)
