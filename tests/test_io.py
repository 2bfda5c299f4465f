"""Reading images with calibration and writing label images ImageJ opens (trackpose.io)."""

import hashlib
import struct
import zlib

import numpy as np
import pytest
import tifffile

from trackpose.errors import InputError
from trackpose.io import (ImageMeta, decode_png, encode_png, find_images, read_image, write_labels,
                          write_png, write_png_labels, write_tiff)


def ramp(shape, dtype=np.uint16):
    """A deterministic test image whose every pixel differs from its neighbours."""
    return (np.arange(np.prod(shape)) * 7919 % np.iinfo(dtype).max).astype(dtype).reshape(shape)


# ---------------------------------------------------------------------------------------------------------- TIFF

def test_imagej_hyperstack_keeps_axes_and_calibration(tmp_path):
    movie = ramp((3, 4, 2, 16, 20))
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, movie, imagej=True, resolution=(1 / 0.65, 1 / 0.65),
                     metadata={"axes": "TZCYX", "spacing": 2.0, "unit": "micron", "finterval": 30.0})

    image, meta = read_image(path)

    assert meta.axes == "TZCYX"
    assert np.array_equal(image, movie)
    assert meta.pixel_size_x == pytest.approx(0.65) and meta.pixel_size_y == pytest.approx(0.65)
    assert meta.z_spacing == 2.0 and meta.unit == "micron" and meta.time_interval == 30.0
    assert meta.anisotropy == pytest.approx(2.0 / 0.65)
    assert meta.calibration_dict() == {"x": pytest.approx(0.65), "y": pytest.approx(0.65), "z": 2.0,
                                       "unit": "micron"}
    assert meta.source == str(path)


def test_imagej_singleton_axes_are_dropped_and_escaped_micro_sign_is_micron(tmp_path):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, ramp((1, 5, 1, 8, 9)), imagej=True, resolution=(2.0, 2.0),
                     metadata={"axes": "TZCYX", "unit": "\\u00B5m", "spacing": 1.5})
    image, meta = read_image(path)
    assert meta.axes == "ZYX" and image.shape == (5, 8, 9)
    assert meta.unit == "micron" and meta.pixel_size_x == 0.5 and meta.anisotropy == 3.0


def test_ome_tiff_axes_are_canonical_and_sizes_converted_to_one_unit(tmp_path):
    data = ramp((2, 3, 4, 8, 9), np.uint8)  # stored T, C, Z, Y, X
    path = tmp_path / "cells.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={
        "axes": "TCZYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.4, "PhysicalSizeZ": 1500.0,
        "PhysicalSizeXUnit": "µm", "PhysicalSizeYUnit": "µm", "PhysicalSizeZUnit": "nm",
        "TimeIncrement": 500.0, "TimeIncrementUnit": "ms"})

    image, meta = read_image(path)

    assert meta.axes == "TZCYX"
    assert np.array_equal(image, data.transpose(0, 2, 1, 3, 4))
    assert (meta.pixel_size_x, meta.pixel_size_y) == (0.3, 0.4)
    assert meta.z_spacing == pytest.approx(1.5) and meta.unit == "micron"
    assert meta.time_interval == pytest.approx(0.5)


def test_plain_tiff_has_no_calibration(tmp_path):
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, ramp((30, 40)))
    image, meta = read_image(path)
    assert meta.axes == "YX" and image.shape == (30, 40)
    assert meta.pixel_size_x is None and meta.unit is None and meta.anisotropy is None


def test_plain_tiff_in_centimetres_reads_as_micron(tmp_path):
    path = tmp_path / "cm.tif"
    tifffile.imwrite(path, ramp((10, 12)), resolution=(10000.0, 5000.0), resolutionunit="CENTIMETER")
    _, meta = read_image(path)
    assert meta.unit == "micron"
    assert meta.pixel_size_x == pytest.approx(1.0) and meta.pixel_size_y == pytest.approx(2.0)


def test_big_endian_tiff_gives_native_numbers(tmp_path):
    path = tmp_path / "motorola.tif"
    tifffile.imwrite(path, ramp((6, 7)), byteorder=">")
    image, _ = read_image(path)
    assert image.dtype == np.uint16 and image.dtype.isnative and np.array_equal(image, ramp((6, 7)))


def test_rgb_tiff_has_samples_last(tmp_path):
    path = tmp_path / "rgb.tif"
    rgb = ramp((12, 14, 3), np.uint8)
    tifffile.imwrite(path, rgb, photometric="rgb")
    image, meta = read_image(path)
    assert meta.axes == "YXS" and np.array_equal(image, rgb)


def test_reading_never_changes_the_input(tmp_path):
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, ramp((2, 8, 9)), imagej=True, metadata={"axes": "ZYX"})
    before = hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns
    read_image(path)
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before


# ---------------------------------------------------------------------------------------------------------- labels

def test_labels_are_uint16_below_65536_and_keep_calibration(tmp_path):
    labels = np.zeros((4, 20, 30), np.int32)
    labels[1, 2:6, 3:9] = 65535
    labels[3, 10:12, 10:12] = 7
    meta = ImageMeta(axes="ZYX", pixel_size_x=0.5, pixel_size_y=0.25, z_spacing=2.0, unit="µm",
                     source=str(tmp_path / "raw.tif"))
    path = write_labels(tmp_path / "raw_cp_masks.tif", labels, meta)

    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej and tif.series[0].dtype == np.uint16 and tif.series[0].axes == "ZYX"
        assert tif.imagej_metadata["unit"] == "micron" and tif.imagej_metadata["spacing"] == 2.0
    back, back_meta = read_image(path)
    assert np.array_equal(back, labels)
    assert back_meta.calibration_dict() == {"x": 0.5, "y": 0.25, "z": 2.0, "unit": "micron"}
    assert [p.name for p in tmp_path.iterdir()] == ["raw_cp_masks.tif"]  # no temporary file left behind


def test_labels_switch_to_float32_at_65536_and_refuse_beyond_2_pow_24(tmp_path):
    labels = np.zeros((8, 8), np.int64)
    labels[0, 0] = 65536
    labels[5, 5] = 2 ** 24
    path = write_labels(tmp_path / "many.tif", labels)
    back, _ = read_image(path)
    assert back.dtype == np.float32 and np.array_equal(back.astype(np.int64), labels)

    labels[1, 1] = 2 ** 24 + 1
    with pytest.raises(InputError, match="2\\*\\*24|16777216"):
        write_labels(tmp_path / "too_many.tif", labels)


def test_label_axes_follow_the_input_time_lapse(tmp_path):
    meta = ImageMeta(axes="TCYX")
    path = write_labels(tmp_path / "labels.tif", np.ones((3, 8, 9), np.uint16), meta)
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == "TYX"
        assert tif.imagej_metadata["frames"] == 3


def test_writers_refuse_to_overwrite_the_input(tmp_path):
    path = tmp_path / "input.tif"
    tifffile.imwrite(path, ramp((8, 9)))
    before = path.read_bytes()
    image, meta = read_image(path)
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_labels(path, np.zeros((8, 9), np.uint16), meta)
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_tiff(tmp_path / "." / "input.tif", image, meta)
    assert path.read_bytes() == before


def test_float_outputs_are_float32_imagej_tiffs(tmp_path):
    flows = np.random.default_rng(0).normal(size=(2, 10, 12))
    path = write_tiff(tmp_path / "img_flows.tif", flows, axes="CYX")
    back, meta = read_image(path)
    assert meta.axes == "CYX" and back.dtype == np.float32
    assert np.allclose(back, flows.astype(np.float32))


def test_png_labels_are_16_bit_and_refuse_more_than_65535(tmp_path):
    labels = ramp((33, 47), np.uint16)
    path = write_png_labels(tmp_path / "a_cp_masks.png", labels)
    back, meta = read_image(path)
    assert back.dtype == np.uint16 and meta.axes == "YX" and np.array_equal(back, labels)
    with pytest.raises(InputError, match="TIFF"):
        write_png_labels(tmp_path / "b.png", np.full((4, 4), 70000))


# ---------------------------------------------------------------------------------------------------------- PNG

@pytest.mark.parametrize("image", [
    ramp((17, 23), np.uint8),
    ramp((17, 23), np.uint16),
    ramp((9, 11, 3), np.uint8),
    ramp((9, 11, 3), np.uint16),
    ramp((9, 11, 2), np.uint8),
    ramp((9, 11, 4), np.uint16),
], ids=["gray8", "gray16", "rgb8", "rgb16", "gray_alpha8", "rgba16"])
def test_png_round_trip(tmp_path, image):
    path = write_png(tmp_path / "img.png", image)
    back, meta = read_image(path)
    assert back.dtype == image.dtype and np.array_equal(back, image)
    assert meta.axes == ("YX" if image.ndim == 2 else "YXS")


def _png_bytes(raw_scanlines: bytes, width, height, depth, colour, interlace=0, extra_chunks=()):
    """A PNG assembled by hand from already-filtered scanlines (an encoder independent of trackpose's)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + b"".join(chunk(k, b) for k, b in extra_chunks)
            + chunk(b"IDAT", zlib.compress(raw_scanlines, 9)) + chunk(b"IEND", b""))


def _filter_scanlines(rows: np.ndarray, unit: int, kinds) -> bytes:
    """Apply PNG filters, written byte by byte straight from the specification."""
    out = bytearray()
    previous = [0] * rows.shape[1]
    for r, row in enumerate(rows.tolist()):
        kind = kinds[r % len(kinds)]
        out.append(kind)
        for i, value in enumerate(row):
            left = row[i - unit] if i >= unit else 0
            up = previous[i]
            corner = previous[i - unit] if i >= unit else 0
            if kind == 0:
                predicted = 0
            elif kind == 1:
                predicted = left
            elif kind == 2:
                predicted = up
            elif kind == 3:
                predicted = (left + up) // 2
            else:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predicted = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
            out.append((value - predicted) % 256)
        previous = row
    return bytes(out)


@pytest.mark.parametrize("depth", [8, 16])
def test_png_from_another_encoder_with_all_five_filters(depth):
    image = ramp((13, 10, 3), np.uint8 if depth == 8 else np.uint16)
    rows = (image.astype(">u2") if depth == 16 else image).view(np.uint8).reshape(13, -1)
    unit = 3 * depth // 8
    png = _png_bytes(_filter_scanlines(rows, unit, kinds=[0, 1, 2, 3, 4]), 10, 13, depth, colour=2)
    assert np.array_equal(decode_png(png), image)


def test_png_interlaced_palette_and_low_bit_depths():
    # 2-bit gray, Adam7 interlaced (filter 0 in each pass)
    gray = (np.arange(11 * 9).reshape(11, 9) % 4).astype(np.uint8)
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = gray[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        bits = np.unpackbits(sub[..., None], axis=2)[..., 6:].reshape(sub.shape[0], -1)
        raw += b"".join(b"\x00" + np.packbits(line).tobytes() for line in bits)
    assert np.array_equal(decode_png(_png_bytes(raw, 9, 11, 2, colour=0, interlace=1)), gray)

    # 4-bit palette, Paeth filtered
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [10, 20, 30]], np.uint8)
    indices = (np.arange(6 * 7).reshape(6, 7) % 4).astype(np.uint8)
    packed = np.packbits(np.unpackbits(indices[..., None], axis=2)[..., 4:].reshape(6, -1), axis=1)
    png = _png_bytes(_filter_scanlines(packed, 1, kinds=[4]), 7, 6, 4, colour=3,
                     extra_chunks=[(b"PLTE", palette.tobytes())])
    assert np.array_equal(decode_png(png), palette[indices])


def test_png_written_by_imagecodecs():
    imagecodecs = pytest.importorskip("imagecodecs")
    for image in (ramp((40, 50), np.uint16), ramp((40, 50, 3), np.uint8)):
        assert np.array_equal(decode_png(imagecodecs.png_encode(image)), image)


def test_own_png_encoder_is_read_by_imagecodecs():
    imagecodecs = pytest.importorskip("imagecodecs")
    image = ramp((40, 50), np.uint16)
    assert np.array_equal(imagecodecs.png_decode(encode_png(image)), image)


# ---------------------------------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("suffix", [".tif", ".png", ".npy"])
def test_truncated_files_are_input_errors_naming_the_file(tmp_path, suffix):
    path = tmp_path / f"img{suffix}"
    image = ramp((64, 64))
    if suffix == ".tif":
        tifffile.imwrite(path, image)
    elif suffix == ".png":
        write_png(path, image)
    else:
        np.save(path, image)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(InputError, match=str(path.name)):
        read_image(path)


def test_missing_empty_and_unknown_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "nothing.tif")
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_image(tmp_path / "empty.tif")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(100))
    with pytest.raises(InputError, match="photo.jpg"):
        read_image(tmp_path / "photo.jpg")
    np.save(tmp_path / "x_seg.npy", {"masks": 1}, allow_pickle=True)
    with pytest.raises(InputError, match="pickled"):
        read_image(tmp_path / "x_seg.npy")


def test_corrupt_png_checksum_is_reported(tmp_path):
    content = bytearray(encode_png(ramp((8, 8), np.uint8)))
    content[40] ^= 0xFF  # inside the IDAT chunk
    (tmp_path / "bad.png").write_bytes(bytes(content))
    with pytest.raises(InputError, match="bad.png"):
        read_image(tmp_path / "bad.png")


def test_npy_arrays_get_default_axes(tmp_path):
    np.save(tmp_path / "vol.npy", ramp((3, 8, 9)))
    np.save(tmp_path / "rgb.npy", ramp((8, 9, 3), np.uint8))
    assert read_image(tmp_path / "vol.npy")[1].axes == "ZYX"
    assert read_image(tmp_path / "rgb.npy")[1].axes == "YXS"


# ---------------------------------------------------------------------------------------------------------- folders

def test_find_images_skips_outputs_and_sorts_naturally(tmp_path):
    names = ["img10.tif", "img2.TIF", "img1.png", "img1_masks.png", "img1_cp_masks.tif", "img2_flows.tif",
             "img2_seg.npy", "img3.npy", "img4.ome.tif", "img4_cp_masks.ome.tif", "notes.txt", "photo.jpg",
             ".hidden.tif", "img5_cp_output.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.tif").mkdir()
    found = [path.name for path in find_images(tmp_path)]
    assert found == ["img1.png", "img2.TIF", "img3.npy", "img4.ome.tif", "img10.tif"]
    assert [p.name for p in find_images(tmp_path, skip_suffixes=())][:3] == ["img1.png", "img1_cp_masks.tif",
                                                                              "img1_masks.png"]
    with pytest.raises(InputError):
        find_images(tmp_path / "img1.png")


def test_meta_from_bridge_calibration():
    meta = ImageMeta.from_calibration_dict({"x": 0.65, "y": 0.65, "z": 2.6, "unit": "µm"}, axes="TZYX")
    assert meta.unit == "micron" and meta.anisotropy == pytest.approx(4.0)
    assert ImageMeta.from_calibration_dict(None, axes="YX").calibration_dict() == {
        "x": None, "y": None, "z": None, "unit": None}


def test_png_labels_read_by_pillow_as_cellpose_tools_read_them(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    labels = np.arange(40 * 30, dtype=np.int32).reshape(40, 30) * 50  # ids up to 59950: needs 16 bits
    path = write_png_labels(tmp_path / "cells_cp_masks.png", labels)
    with Image.open(path) as image:
        assert image.mode.startswith("I") and np.array_equal(np.asarray(image), labels)


def test_truncated_png_is_a_clear_error(tmp_path):
    content = encode_png(np.zeros((16, 16), np.uint8))
    (tmp_path / "cut.png").write_bytes(content[:-20])
    with pytest.raises(InputError, match="cut.png.*Export the image again"):
        read_image(tmp_path / "cut.png")


# ---- movies read one time point at a time --------------------------------------------------------------------

def _movie_files(tmp_path):
    rng = np.random.default_rng(0)
    tzcyx = rng.integers(0, 4000, (5, 3, 2, 24, 20)).astype(np.uint16)
    tyx = rng.integers(0, 255, (6, 30, 28)).astype(np.uint8)
    files = {}
    files["imagej TZCYX"] = (tmp_path / "ij.tif", tzcyx)
    tifffile.imwrite(files["imagej TZCYX"][0], tzcyx, imagej=True, metadata={"axes": "TZCYX"})
    files["imagej TYX zlib"] = (tmp_path / "ijz.tif", tyx)
    tifffile.imwrite(files["imagej TYX zlib"][0], tyx, imagej=True, metadata={"axes": "TYX"}, compression="zlib")
    files["ome TCYX big-endian"] = (tmp_path / "ome.ome.tif", tzcyx[:, 0])
    tifffile.imwrite(files["ome TCYX big-endian"][0], tzcyx[:, 0].astype(">u2"), ome=True,
                     metadata={"axes": "TCYX"})
    files["ome CTYX (T not outermost)"] = (tmp_path / "ome2.ome.tif", tzcyx[:, 0])
    tifffile.imwrite(files["ome CTYX (T not outermost)"][0], np.moveaxis(tzcyx[:, 0], 1, 0), ome=True,
                     metadata={"axes": "CTYX"})
    return files


def test_movie_frames_read_one_at_a_time_equal_the_whole_read(tmp_path):
    from trackpose.io.images import TiffFrames, read_tiff_frames
    for name, (path, data) in _movie_files(tmp_path).items():
        whole, meta = read_image(path)
        frames, fmeta = read_tiff_frames(path)
        assert fmeta.axes == "T" + meta.axes.replace("T", ""), name
        expected = np.moveaxis(whole, meta.axes.index("T"), 0)
        assert len(frames) == len(data) and frames.shape == expected.shape, name
        assert isinstance(frames, TiffFrames) == ("outermost" not in name), name
        for t in range(len(frames)):
            frame = frames[t]
            assert frame.dtype.isnative and frame.dtype == expected.dtype
            np.testing.assert_array_equal(frame, expected[t], err_msg=name)


def test_a_movie_frame_is_decoded_without_the_rest_of_the_movie(tmp_path):
    import tracemalloc
    from trackpose.io.images import read_tiff_frames
    movie = np.random.default_rng(1).integers(0, 60000, (40, 256, 256)).astype(np.uint16)  # 5 MiB
    for kind in ("raw", "zlib"):
        path = tmp_path / f"{kind}.tif"
        tifffile.imwrite(path, movie, imagej=True, metadata={"axes": "TYX"},
                         compression=None if kind == "raw" else "zlib")
        frames, _ = read_tiff_frames(path)
        tracemalloc.start()
        frame = frames[17]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        np.testing.assert_array_equal(frame, movie[17])
        assert peak < 4 * movie[0].nbytes, (kind, peak)  # one frame (and a copy), not 40
