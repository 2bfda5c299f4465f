"""trackpose.distributed: blockwise volumes with seams merged, OME-Zarr outputs, frames over Dask workers, resume,
and a worker killed mid-run."""
import os
import signal

import numpy as np
import pytest

pytest.importorskip("dask.distributed")
pytest.importorskip("zarr")

import tifffile  # noqa: E402

from trackpose import synth  # noqa: E402
from trackpose.distributed import zarr_io  # noqa: E402
from trackpose.distributed.blocks import block_grid, merge_label_blocks  # noqa: E402
from trackpose.distributed.frames import segment_frames  # noqa: E402
from trackpose.distributed.volume import segment_volume  # noqa: E402
from trackpose.errors import InputError  # noqa: E402


def _relabelled_blocks(truth, blocks, seed=0):
    """Each block's padded box cut from ``truth`` with its own random local ids, as a block segmentation gives."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, block in enumerate(blocks):
        ids, inverse = np.unique(truth[block.padded_slices], return_inverse=True)
        local = np.concatenate([[0], rng.permutation(len(ids) - 1) + 1]) if ids[0] == 0 else \
            rng.permutation(len(ids)) + 1
        out[k] = local[inverse].reshape(truth[block.padded_slices].shape)
    return out


def _same_up_to_relabelling(a, b):
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist()))
    return len(pairs) == len(np.unique(a)) == len(np.unique(b))


@pytest.mark.parametrize("block_size,overlap", [((7, 19, 23), (6, 20, 20)), ((11, 32, 32), 1), (64, (3, 5, 7))])
def test_merging_cut_blocks_gives_back_the_volume(block_size, overlap):
    _, truth = synth.nuclei_volume((30, 90, 90), seed=3, crowding=1.0)
    blocks = block_grid(truth.shape, block_size, overlap)
    merged = merge_label_blocks(truth.shape, blocks, _relabelled_blocks(truth, blocks))
    assert _same_up_to_relabelling(truth, merged)
    assert merged.max() == len(np.unique(truth)) - 1  # ids 1..N, no gaps


def test_merging_2d_blocks_with_objects_on_the_corners():
    yy, xx = np.mgrid[:100, :100]
    truth = np.zeros((100, 100), np.int32)
    for k, (cy, cx) in enumerate([(25, 25), (25, 50), (50, 25), (50, 50), (75, 75), (10, 90)], 1):
        truth[(yy - cy) ** 2 + (xx - cx) ** 2 <= 64] = k  # centred on block corners and faces
    blocks = block_grid(truth.shape, 25, 17)
    merged = merge_label_blocks(truth.shape, blocks, _relabelled_blocks(truth, blocks, seed=1))
    assert _same_up_to_relabelling(truth, merged)
    # ids follow the data (first block, then local label), not a scheduling order: the same for any relabelling
    again = merge_label_blocks(truth.shape, blocks, _relabelled_blocks(truth, blocks, seed=1))
    np.testing.assert_array_equal(merged, again)


def test_two_labels_that_barely_meet_in_a_diagonal_corner_box_stay_two_objects():
    """Diagonal neighbours share only a small box around the block corner. Blocks disagree a little at their edges:
    here block (0, 0) leaves out the truncated piece of Q that enters that box, and block (1, 1) leaves out P's piece
    but grows Q by one voxel into P. In the corner box P (2 voxels) and Q (5) then overlap in one voxel and are each
    other's only overlap; half of the smaller of the two inside the box, yet a hundredth of either object. Found on a
    real blockwise run (two touching nuclei joined into one); such a touch must not join them."""
    truth = np.zeros((80, 80), np.int32)
    truth[26:37, 26:38] = 1  # P: in block (1, 1)'s core; enters the corner box (36..44)^2 with 2 voxels
    truth[42:55, 42:55] = 2  # Q: in block (2, 2)'s core; enters it with 4 voxels
    blocks = block_grid(truth.shape, 20, 4)  # inner blocks (1, 1) and (2, 2): padded boxes 16..44 and 36..64
    labels = _relabelled_blocks(truth, blocks, seed=2)
    p_local = labels[5][36 - 16, 36 - 16]
    labels[5][labels[5] != p_local] = 0                      # block (1, 1): Q's piece missed
    q_local = labels[10][42 - 36, 42 - 36]
    labels[10][labels[10] != q_local] = 0                    # block (2, 2): P's piece missed ...
    labels[10][36 - 36, 37 - 36] = q_local                   # ... and Q grown by one voxel into P
    merged = merge_label_blocks(truth.shape, blocks, labels)
    assert merged[30, 30] != merged[48, 48] and merged.max() == 2
    assert _same_up_to_relabelling(truth, np.where(truth > 0, merged, 0))


def test_block_grid_tiles_the_volume_once():
    blocks = block_grid((10, 33, 47), (4, 16, 16), (2, 5, 5))
    seen = np.zeros((10, 33, 47), int)
    for b in blocks:
        seen[b.core_slices] += 1
        assert all(p0 <= c0 and c1 <= p1 for (c0, c1), (p0, p1) in zip(b.core, b.padded))
    assert (seen == 1).all() and len(blocks) == 3 * 3 * 3
    with pytest.raises(ValueError, match="block_size"):
        block_grid((10, 10, 10), (4, 4), 1)


def test_blocks_at_the_volume_edges_see_as_much_image_as_the_others():
    """A block at the volume's edge, and the ragged last block along an axis (here cores of 16 and 8 voxels), reads
    a box as large as an inner block's, reaching further inwards: cut to a thin strip, the network sees little
    image around the objects at the volume's edge and labels them differently from the whole volume."""
    shape, size, overlap = (10, 112, 200), (4, 48, 48), (3, 30, 30)
    blocks = block_grid(shape, size, overlap)
    for b in blocks:
        for (c0, c1), (p0, p1), s, n, o in zip(b.core, b.padded, size, shape, overlap):
            assert 0 <= p0 <= c0 - min(o, c0) and c1 + min(o, n - c1) <= p1 <= n
            assert p1 - p0 == min(n, s + 2 * o)
    last = blocks[-1]
    assert last.core == ((8, 10), (96, 112), (192, 200)) and last.padded == ((0, 10), (4, 112), (92, 200))
    # boxes of at least min_box (a network tile), centred on their cores, shifted inwards at the edges
    blocks = block_grid(shape, size, overlap, min_box=(0, 100, 150))
    assert [b.padded[2] for b in blocks[:5]] == [(0, 150), (0, 150), (45, 195), (50, 200), (50, 200)]
    assert all(b.padded[1] == (0, 108) or b.padded[1] == (4, 112) for b in blocks)


def _small_volume(tmp_path):
    image, _ = synth.nuclei_volume((6, 64, 64), seed=5, diameter_range=(16, 22), anisotropy=2)
    path = tmp_path / "vol.tif"
    tifffile.imwrite(path, image, imagej=True, resolution=(2.0, 2.0), metadata={"axes": "ZYX", "spacing": 1.0,
                                                                                  "unit": "um"})
    return image, path


def test_blockwise_refuses_auto_anisotropy_before_any_block(tmp_path, model_file):
    _, path = _small_volume(tmp_path)
    settings = dict(model=str(model_file), do_3d=True, diameter=24, anisotropy="auto")
    out = tmp_path / "vol_cp_masks.zarr"
    with pytest.raises(InputError, match="auto.*blocks would each"):
        segment_volume(path, out, block_size=(3, 32, 32), overlap=(2, 12, 12), settings=settings)
    assert not out.exists()


def test_blockwise_writes_ome_zarr_and_resumes(tmp_path, model_file):
    _, path = _small_volume(tmp_path)
    settings = dict(model=str(model_file), stitch_threshold=0.25, diameter=24)
    out = tmp_path / "vol_cp_masks.zarr"
    first = segment_volume(path, out, block_size=(3, 32, 32), overlap=(2, 12, 12), settings=settings,
                           keep_blocks=True)
    labels = zarr_io.read_labels(out)
    assert labels.shape == (6, 64, 64) and labels.dtype == np.uint32
    assert first.n_blocks == 8 and first.skipped_blocks == 0
    assert sorted(np.unique(labels))[1:] == list(range(1, first.n_objects + 1))
    assert zarr_io.is_complete(out)

    # the readers users have: ome-zarr (napari's plugin uses it), dask.array.from_zarr, and the OME metadata
    import dask.array as da
    import zarr
    group = zarr.open_group(str(out), mode="r")
    multiscales = group.attrs["multiscales"][0]
    assert [a["name"] for a in multiscales["axes"]] == ["z", "y", "x"]
    assert multiscales["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 0.5, 0.5]
    assert "image-label" in group.attrs
    np.testing.assert_array_equal(da.from_zarr(str(out / "0")).compute(), labels)
    ome_reader = pytest.importorskip("ome_zarr.reader")
    ome_io = pytest.importorskip("ome_zarr.io")
    nodes = list(ome_reader.Reader(ome_io.parse_url(str(out)))())
    assert nodes and np.asarray(nodes[0].data[0]).shape == labels.shape

    # an interrupted run resumes from the saved blocks: none is segmented again, the labels are the same
    import shutil
    shutil.rmtree(out)
    again = segment_volume(path, out, block_size=(3, 32, 32), overlap=(2, 12, 12), settings=settings)
    assert again.skipped_blocks == again.n_blocks
    np.testing.assert_array_equal(zarr_io.read_labels(out), labels)
    assert not (tmp_path / "vol_cp_masks.zarr.trackpose-blocks").exists()


def test_cli_block_size_writes_zarr_and_tiff(tmp_path, model_file):
    from trackpose.cli.main import main
    _, path = _small_volume(tmp_path)
    code = main(["segment", str(path), "--model", str(model_file), "--diameter", "24", "--stitch-threshold", "0.25",
                 "--block-size", "3,32,32", "--block-overlap", "2,12,12", "--savedir", str(tmp_path / "out")])
    assert code == 0
    tiff = tifffile.imread(tmp_path / "out" / "vol_cp_masks.tif")
    np.testing.assert_array_equal(tiff, zarr_io.read_labels(tmp_path / "out" / "vol_cp_masks.zarr"))


def test_uniform_boxes_are_segmented_once_with_the_same_labels(tmp_path, monkeypatch):
    """Boxes of one value (zero padding around a sample) give the same labels each time: a worker segments such a
    box once and reuses its labels; the volume's labels are those of segmenting every box."""
    import trackpose.segmentation
    from trackpose.distributed import volume as volume_module
    image, truth = synth.nuclei_volume((2, 48, 128), seed=5, diameter_range=(24, 34), anisotropy=3)
    padded = np.zeros((2, 48, 640), np.float32)
    padded[:, :, :128] = image
    settings = dict(model="trackpose_default", stitch_threshold=0.25, diameter=30, anisotropy=3.0,
                    lowhigh=(0.0, float(image.max())))
    calls = []
    real_segment = trackpose.segmentation.segment

    def counting_segment(pixels, **kwargs):
        calls.append(float(np.ptp(pixels)))
        return real_segment(pixels, **kwargs)

    monkeypatch.setattr(trackpose.segmentation, "segment", counting_segment)
    monkeypatch.setattr(volume_module, "_UNIFORM_BOXES", type(volume_module._UNIFORM_BOXES)())
    reused = segment_volume(padded, tmp_path / "reused.zarr", block_size=(2, 48, 64), overlap=(1, 30, 30),
                            settings=settings)
    uniform_calls = sum(ptp == 0 for ptp in calls)
    monkeypatch.setattr(volume_module, "_UNIFORM_BOXES", type(volume_module._UNIFORM_BOXES)())
    monkeypatch.setattr(volume_module, "_UNIFORM_KEEP", 0)
    calls.clear()
    every = segment_volume(padded, tmp_path / "every.zarr", block_size=(2, 48, 64), overlap=(1, 30, 30),
                           settings=settings)
    assert reused.n_blocks == every.n_blocks == 10
    assert reused.uniform_blocks == every.uniform_blocks >= 5
    assert uniform_calls == 1 and sum(ptp == 0 for ptp in calls) == every.uniform_blocks
    labels = zarr_io.read_labels(tmp_path / "reused.zarr")
    np.testing.assert_array_equal(labels, zarr_io.read_labels(tmp_path / "every.zarr"))
    assert reused.n_objects >= len(np.unique(truth)) - 1 >= 2 and labels[:, :, 200:].max() == 0  # the sample's nuclei are found


@pytest.mark.slow
def test_blockwise_matches_whole_volume_with_the_builtin_model(tmp_path):
    """Small blocks (9, cores of 48 x 48: objects across faces, edges and corners) against the whole volume with
    the built-in model (2D + Z stitching). Each block reads at least one network tile of image (224 pixels at
    diameter 30) around its core, so on a volume narrower than a tile every block sees all of it, and the blocks'
    labels, merged across the seams, are the whole volume's. Blocks cut to core + overlap (108 pixels, 46 for the
    ragged last one) gave other masks near the seams and the volume's edges."""
    import trackpose
    image, _ = synth.nuclei_volume((4, 144, 144), seed=3, crowding=0.5, diameter_range=(24, 34), anisotropy=3)
    settings = dict(model="trackpose_default", stitch_threshold=0.25, diameter=30, anisotropy=3.0)
    whole = trackpose.segment(image, z_axis=0, **settings).masks
    result = segment_volume(image, tmp_path / "labels.zarr", block_size=(4, 48, 48), settings=settings)
    blockwise = zarr_io.read_labels(tmp_path / "labels.zarr")
    assert result.n_blocks == 9 and whole.max() >= 6
    assert _same_up_to_relabelling(whole, blockwise)


def _sleep_and_return_a_megabyte(k):
    import time
    time.sleep(0.01)
    return np.full(1 << 18, k, np.float32)


def test_a_result_leaves_its_worker_once_it_is_gathered():
    """A worker keeps a task's result while the client holds its future: run_tasks drops each future once its
    result is in, so workers' memory does not grow with the number of blocks or frames."""
    from dask.distributed import Client, LocalCluster
    from trackpose.distributed.cluster import run_tasks
    held = []
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        worker = next(iter(cluster.workers.values()))
        results = run_tasks(client, lambda done, total, stage: held.append(len(worker.data)), "test",
                            _sleep_and_return_a_megabyte, [(k,) for k in range(60)])
    assert [float(r[0]) for r in results] == list(range(60))
    assert max(held) <= 12, held  # all 60 (60 MB) stay on the worker when the futures are kept to the end


def _movie_tiff(tmp_path, n_frames=4):
    movie = synth.movie(n_frames=n_frames, shape=(64, 64), seed=2)
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, movie.images.astype(np.float32), imagej=True, metadata={"axes": "TYX"})
    return path


def _task_thread_counts():
    import numba
    import torch
    from trackpose.distributed.cluster import set_torch_threads
    set_torch_threads()
    return torch.get_num_threads(), numba.get_num_threads()


def test_a_worker_of_several_threads_shares_its_cores_between_its_tasks(monkeypatch):
    """On a worker that runs N tasks at once (a Dask worker of N threads, as dask-jobqueue starts them), each task
    gets cores / N compute threads when TRACKPOSE_TORCH_THREADS is not set; outside a worker, nothing is changed."""
    from dask.distributed import Client, LocalCluster
    from trackpose.distributed.cluster import _cores, task_threads
    monkeypatch.delenv("TRACKPOSE_TORCH_THREADS", raising=False)
    assert task_threads() is None
    with LocalCluster(n_workers=1, threads_per_worker=4, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        assert client.submit(task_threads, pure=False).result() == max(1, _cores() // 4)


@pytest.mark.slow
def test_frames_over_local_workers_load_the_model_once_and_resume(tmp_path, model_file):
    from trackpose.distributed.cluster import connect, models_loaded
    path = _movie_tiff(tmp_path)
    settings = dict(model=str(model_file), diameter=24)
    inline = segment_frames([path], settings, savedir=tmp_path / "inline")
    with connect("local", n_workers=2, threads=1) as client:
        outputs = segment_frames([path], settings, savedir=tmp_path / "dask", client=client)
        assert sum(client.run(models_loaded).values()) <= 2  # one model per worker, not per frame
        # one malloc arena (tasks run in threads; thread arenas would map the network's buffers afresh), and each
        # task's torch and numba threads are the worker's share of the cores, not every core of the machine
        assert set(client.run(os.environ.get, "MALLOC_ARENA_MAX").values()) == {"1"}
        assert client.submit(_task_thread_counts, pure=False).result() == (1, 1)
        frames = sorted((tmp_path / "dask" / "movie_cp_masks.frames").glob("t*.tif"))
        os.remove(frames[2])
        done = []
        segment_frames([path], settings, savedir=tmp_path / "dask", client=client,
                       progress=lambda d, n, s: done.append(n))
        assert set(done) == {1}  # only the missing frame ran again
    np.testing.assert_array_equal(tifffile.imread(outputs[-1]), tifffile.imread(inline[-1]))
    assert tifffile.imread(outputs[-1]).shape == (4, 64, 64)


@pytest.mark.slow
def test_a_worker_killed_mid_run_costs_only_its_tasks(tmp_path, model_file):
    from trackpose.distributed.cluster import connect
    _, path = _small_volume(tmp_path)
    settings = dict(model=str(model_file), stitch_threshold=0.25, diameter=24)
    kwargs = dict(block_size=(3, 16, 16), overlap=(2, 12, 12), settings=settings)
    segment_volume(path, tmp_path / "inline.zarr", **kwargs)
    with connect("local", n_workers=2, threads=1) as client:
        killed = []

        def kill_one(done, total, stage):
            if stage == "blocks" and done == 2 and not killed:
                worker = sorted(client.scheduler_info()["workers"])[0]
                pid = client.run(os.getpid, workers=[worker])[worker]
                killed.append(worker)
                os.kill(pid, signal.SIGKILL)  # mid-run, as a crash would; the nanny starts a new worker
        result = segment_volume(path, tmp_path / "dask.zarr", client=client, progress=kill_one, **kwargs)
    assert killed and result.n_blocks == 32
    np.testing.assert_array_equal(zarr_io.read_labels(tmp_path / "dask.zarr"),
                                  zarr_io.read_labels(tmp_path / "inline.zarr"))
