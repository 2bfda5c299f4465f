"""trackpose.segment end to end: parity with cellpose 3.1.1.2's eval on identical weights, and its contract."""
import numpy as np
import pytest

import trackpose
from trackpose.errors import InputError, TrackposeError
from trackpose.metrics import average_precision, matched_fraction
from helpers import render, touching_discs


@pytest.fixture(scope="module")
def image_and_truth():
    truth = touching_discs((256, 288), radii=(7, 22), n=45, seed=1)
    return render(truth, seed=1), truth


@pytest.fixture(scope="module")
def image(image_and_truth):
    return image_and_truth[0]


@pytest.fixture(scope="module")
def builtin_file():
    """The project's shipped default model: trained weights, so that masks are real cells, not noise basins."""
    from trackpose.models import DEFAULT_MODEL, _PACKAGE_DATA
    path = _PACKAGE_DATA / DEFAULT_MODEL
    assert path.is_file(), "the built-in model is part of the package"
    return path


@pytest.fixture(scope="module")
def cellpose_model(builtin_file):
    models = pytest.importorskip("cellpose.models")
    return models.CellposeModel(pretrained_model=str(builtin_file))


@pytest.mark.parametrize("settings", [
    dict(diameter=30.0),
    dict(diameter=21.0, flow_threshold=0.4, cellprob_threshold=-0.5),
    dict(diameter=None, resample=False),
    dict(diameter=25.0, augment=True, min_size=60),
    dict(diameter=None, flow_threshold=0.0, cellprob_threshold=1.0),
])
def test_masks_match_cellpose_on_identical_weights(image, builtin_file, cellpose_model, settings):
    masks_cp = cellpose_model.eval(image, channels=[0, 0], **settings)[0]
    # cellpose's CellposeModel takes diameter None as diam_labels; trackpose estimates it with the built-in model's
    # size model (cellpose's Cellpose class), so it is given explicitly here
    ours = {**settings, "diameter": settings["diameter"] or float(cellpose_model.diam_labels)}
    result = trackpose.segment(image, model=builtin_file, **ours)
    assert result.masks.shape == image.shape
    n_cp = len(np.unique(masks_cp)) - 1
    assert n_cp > 20, "the comparison needs objects to compare"
    assert matched_fraction(masks_cp, result.masks, iou=0.5) >= 0.98


def test_builtin_model_finds_the_generated_cells(image_and_truth, builtin_file):
    image, truth = image_and_truth
    r = trackpose.segment(image, model=builtin_file, diameter=30)
    ap = average_precision(truth, r.masks)[0]
    assert ap[0] >= 0.85


def test_result_contract(image, model_file):
    before = image.copy()
    r = trackpose.segment(image, model=model_file, diameter=30)
    assert np.array_equal(image, before)  # input never modified
    assert r.masks.dtype == np.int32 and r.masks.min() == 0
    assert set(np.unique(r.masks)) == set(range(r.n_objects + 1))  # consecutive labels
    assert r.flows.shape == (2,) + image.shape and r.cellprob.shape == image.shape
    assert r.styles.shape == (256,) and r.diameter == 30 and r.niter == 200
    r2 = trackpose.segment(image, model=model_file, diameter=15)
    assert r2.niter == int(200 / (30 / 15))  # niter scales with the resize when resampling


def test_filters(image, model_file):
    kw = dict(model=model_file, diameter=30, flow_threshold=0)
    base = trackpose.segment(image, **kw).masks
    edge = trackpose.segment(image, exclude_on_edges=True, **kw).masks
    border = np.concatenate([edge[0], edge[-1], edge[:, 0], edge[:, -1]])
    assert not border.any() and edge.max() < base.max()
    sizes = np.bincount(base.ravel())[1:]
    limit = int(np.median(sizes))
    capped = trackpose.segment(image, max_size=limit, **kw).masks
    assert np.bincount(capped.ravel())[1:].max() <= limit
    big = trackpose.segment(image, min_size=limit, **kw).masks
    assert np.bincount(big.ravel())[1:].min() >= limit


def test_stack_is_segmented_per_plane(image, model_file):
    stack = np.stack([image[:, :200], image[:, 40:240], image[:, 88:]])
    r = trackpose.segment(stack, model=model_file, diameter=30, z_axis=0)
    assert r.masks.shape == stack.shape and r.styles.shape == (3, 256)
    single = trackpose.segment(stack[1], model=model_file, diameter=30)
    assert np.array_equal(r.masks[1], single.masks)


def test_ensemble_of_identical_models_is_the_model(image, model_file):
    one = trackpose.segment(image, model=model_file, diameter=30)
    two = trackpose.segment(image, model=[model_file, model_file], diameter=30)
    assert matched_fraction(one.masks, two.masks) == 1.0


def test_bad_arguments_are_named(image, model_file):
    with pytest.raises(InputError, match="diameter"):
        trackpose.segment(image, model=model_file, diameter=-3)
    with pytest.raises(InputError, match="size model"):
        trackpose.segment(image, model=model_file, diameter=0)
    with pytest.raises(InputError, match="flow_threshold"):
        trackpose.segment(image, model=model_file, flow_threshold=-1)
    bad = image.copy()
    bad[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        trackpose.segment(bad, model=model_file)
    with pytest.raises(InputError, match="bsize"):
        trackpose.segment(image, model=model_file, bsize=100)


def test_constant_image_gives_no_objects_not_an_error(model_file):
    r = trackpose.segment(np.full((64, 64), 5.0), model=model_file)
    assert r.masks.shape == (64, 64)


def test_image_too_large_for_memory_is_refused_before_work(model_file, monkeypatch):
    from trackpose import memory
    monkeypatch.setattr(memory, "available_memory", lambda: 10 * 2 ** 20)  # 10 MiB free
    with pytest.raises(InputError, match="GiB of memory"):
        trackpose.segment(np.zeros((512, 512), np.float32), model=model_file)


def _cache_case_image():
    from helpers import render, touching_discs
    return render(touching_discs((128, 128), radii=(8, 12), n=10, seed=5), seed=5)


def test_network_cache_redoes_only_what_follows_the_network():
    image = _cache_case_image()
    model = trackpose.load_model()
    cache = {}
    first = trackpose.segment(image, model=model, diameter=20, network_cache=cache)
    assert "network_cached" not in first.timings and cache
    # the TrackMate preview loop: same frame, new thresholds -> the network output is reused ...
    tuned = trackpose.segment(image, model=model, diameter=20, cellprob_threshold=1.5, flow_threshold=0.8,
                              min_size=60, network_cache=cache)
    assert tuned.timings.get("network_cached")
    # ... and the masks are those of a run without the cache
    plain = trackpose.segment(image, model=model, diameter=20, cellprob_threshold=1.5, flow_threshold=0.8,
                              min_size=60)
    np.testing.assert_array_equal(tuned.masks, plain.masks)
    np.testing.assert_array_equal(tuned.flows, plain.flows)
    # what changes the network's input or tiling is a miss
    changed = image.copy()
    changed[0, 0] += 500
    for kwargs in ({"image": changed}, {"diameter": 24}, {"bsize": 160}, {"augment": True}, {"invert": True},
                   {"model": trackpose.load_model(model.path)}):
        call = dict(image=image, model=model, diameter=20, network_cache=cache)
        call.update(kwargs)
        r = trackpose.segment(call.pop("image"), **call)
        assert "network_cached" not in r.timings, kwargs


def test_network_cache_in_3d_mode_gives_the_uncached_masks(model_file):
    vol = np.stack([_cache_case_image()[:64, :64]] * 8)
    cache = {}
    # the same model object each time: the cache recognises networks by identity
    kwargs = dict(model=trackpose.load_model(model_file), do_3d=True, z_axis=0, diameter=30, anisotropy=1.0)
    trackpose.segment(vol, network_cache=cache, **kwargs)
    # flow3d_smooth works on the flows in place: the cached copy must not be changed by it
    smoothed = trackpose.segment(vol, network_cache=cache, flow3d_smooth=1.0, **kwargs)
    again = trackpose.segment(vol, network_cache=cache, **kwargs)
    assert smoothed.timings.get("network_cached") and again.timings.get("network_cached")
    np.testing.assert_array_equal(smoothed.masks, trackpose.segment(vol, flow3d_smooth=1.0, **kwargs).masks)
    np.testing.assert_array_equal(again.masks, trackpose.segment(vol, **kwargs).masks)


def test_bfloat16_runs_the_network_in_bfloat16_with_the_same_masks(image_and_truth, builtin_file):
    image, truth = image_and_truth
    full = trackpose.segment(image, model=builtin_file, diameter=30)
    half = trackpose.segment(image, model=builtin_file, diameter=30, bfloat16=True)
    # the network really ran in bfloat16: outputs differ, by about bfloat16's precision (8 bits of mantissa),
    # relative to the size of the logits (mean |cellprob| ~10 for the built-in model)
    difference = np.abs(full.cellprob - half.cellprob)
    assert 0 < difference.max() < 0.5 and difference.mean() < 0.005 * np.abs(full.cellprob).mean()
    assert np.abs(full.flows - half.flows).max() < 0.5
    # ... and the masks are (nearly) those of float32, as accurate against the ground truth
    assert matched_fraction(full.masks, half.masks, iou=0.5) >= 0.98
    assert average_precision(truth, half.masks)[0][0] >= average_precision(truth, full.masks)[0][0] - 0.02
    # the network cache tells the two apart (a float32 output is not reused for a bfloat16 request)
    cache = {}
    trackpose.segment(image, model=builtin_file, diameter=30, network_cache=cache)
    again = trackpose.segment(image, model=builtin_file, diameter=30, bfloat16=True, network_cache=cache)
    assert "network_cached" not in again.timings
    np.testing.assert_array_equal(again.cellprob, half.cellprob)


def test_bfloat16_support_is_reported_per_device():
    import torch
    from trackpose.inference import bfloat16_support
    answer = bfloat16_support(torch.device("cpu"))
    assert answer is None or "emulated" in answer
    assert "not supported on meta" in bfloat16_support(torch.device("meta"))
