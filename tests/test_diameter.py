"""Diameters: measuring label images (2D, 3D) and shapes drawn in ImageJ (ROI sets, .roi files), and the
`trackpose estimate-diameter` command."""
import math
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

import trackpose
from trackpose import train
from trackpose.diameter import anisotropy_from_masks, diameter_from_file
from trackpose.io import read_roi
from trackpose.errors import InputError


ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "python"), TRACKPOSE_OFFLINE="1")


def discs(radii, shape=(200, 200)):
    """Separate discs of the given radii on a grid (ground truth of known size)."""
    masks = np.zeros(shape, np.int32)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    for i, r in enumerate(radii):
        cy, cx = 30 + 60 * (i // 3), 30 + 60 * (i % 3)
        masks[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = i + 1
    return masks


# ------------------------------------------------------------------------------------ measuring labels

def test_estimate_diameter_of_discs_is_their_diameter():
    assert trackpose.estimate_diameter(discs([10, 10, 10])) == pytest.approx(20, rel=0.02)
    # the median object decides, not the mean: two small discs and one large
    assert trackpose.estimate_diameter(discs([6, 8, 25])) == pytest.approx(16, rel=0.03)
    assert math.isnan(trackpose.estimate_diameter(np.zeros((20, 20), np.int32)))
    assert train.mask_diameter(np.zeros((20, 20), np.int32)) == 0.0
    assert train.mask_diameter(discs([10])) == trackpose.estimate_diameter(discs([10]))


def test_3d_diameter_is_the_xy_diameter_of_the_largest_section_whatever_the_z_spacing():
    zz, yy, xx = np.mgrid[:41, :60, :60]
    ball = ((zz - 20) ** 2 + (yy - 30) ** 2 + (xx - 30) ** 2 <= 12 ** 2).astype(np.int32)
    assert trackpose.estimate_diameter(ball) == pytest.approx(24, rel=0.02)
    # the same ball sampled every 4th plane (coarser Z): same XY diameter
    assert trackpose.estimate_diameter(ball[::4]) == pytest.approx(24, rel=0.02)
    with pytest.raises(InputError):
        trackpose.estimate_diameter(np.full((4, 4), 0.5))


def balls_sampled_on_planes(z_step, diameters, offsets, shape_xy=(40, 240), height=1.0):
    """Balls of the given diameters (XY pixels; ``height`` times that along Z) in a stack whose planes lie
    ``z_step`` pixels apart, centred at the given fractions of a step between planes: labels as a stack of that Z
    step shows them."""
    nz = int(max(diameters) / z_step) + 4
    z = np.arange(nz)[:, None, None] * z_step
    yy, xx = np.mgrid[:shape_xy[0], :shape_xy[1]]
    masks = np.zeros((nz,) + shape_xy, np.int32)
    for i, (d, f) in enumerate(zip(diameters, offsets)):
        cz, cy, cx = (nz // 2 + f) * z_step, shape_xy[0] / 2, 20 + 40 * i
        inside = ((z - cz) / height) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= (d / 2) ** 2
        masks[inside & (masks == 0)] = i + 1
    return masks


@pytest.mark.parametrize("z_step", [1.0, 2.0, 3.0])
def test_the_z_step_is_told_from_round_objects(z_step):
    # six balls 18-24 px across, their centres on a plane, a quarter, a half... of a step between planes: each
    # spans diameter / step planes give or take one, and the median over them is the Z step within 10 %
    masks = balls_sampled_on_planes(z_step, [24, 18, 22, 20, 23, 19], [0, 0.25, 0.5, 0.75, 0.1, 0.6])
    value, count = anisotropy_from_masks(masks)
    assert count == 6 and value == pytest.approx(z_step, rel=0.1), value
    # objects half as tall as wide read as a Z step twice as large: the estimate assumes round ones
    flat, _ = anisotropy_from_masks(balls_sampled_on_planes(z_step / 2, [24, 18, 22, 20, 23, 19],
                                                            [0, 0.25, 0.5, 0.75, 0.1, 0.6], height=0.5))
    assert flat == pytest.approx(z_step, rel=0.1), flat


def test_the_z_step_is_not_told_from_too_few_objects_or_a_single_plane():
    masks = balls_sampled_on_planes(2.0, [20, 20, 20, 20], [0, 0, 0, 0])  # 4 objects: fewer than 5
    value, count = anisotropy_from_masks(masks)
    assert math.isnan(value) and count == 4
    one_plane = np.zeros((3, 20, 20), np.int32)
    one_plane[1, 5:10, 5:10] = 1  # spans one plane: tells nothing about Z
    assert anisotropy_from_masks(one_plane)[1] == 0
    with pytest.raises(InputError, match="stack"):
        anisotropy_from_masks(np.ones((20, 20), np.int32))


# ---------------------------------------------------------------------------- ImageJ ROIs, byte by byte

def roi_bytes(kind, x=None, y=None, bounds=None, sub_pixel=False, version=228):
    """An ImageJ .roi file as ImageJ writes it (big-endian header of 64 bytes, then coordinates)."""
    codes = {"polygon": 0, "rectangle": 1, "oval": 2, "line": 3, "freehand": 7, "traced": 8, "point": 10}
    header = bytearray(64)
    header[0:4] = b"Iout"
    struct.pack_into(">h", header, 4, version)
    header[6] = codes[kind]
    if x is not None:
        x, y = np.asarray(x, float), np.asarray(y, float)
        left, top = int(np.floor(x.min())), int(np.floor(y.min()))
        right, bottom = int(np.ceil(x.max())), int(np.ceil(y.max()))
        n = len(x)
    else:
        top, left, bottom, right = bounds
        n = 0
    struct.pack_into(">hhhhH", header, 8, top, left, bottom, right, n)
    if sub_pixel:
        struct.pack_into(">h", header, 50, 128)
    body = b""
    if n:
        body = struct.pack(f">{n}h", *np.round(x - left).astype(int)) + struct.pack(f">{n}h",
                                                                                    *np.round(y - top).astype(int))
        if sub_pixel:
            body += struct.pack(f">{n}f", *x) + struct.pack(f">{n}f", *y)
    return bytes(header) + body


def circle(radius, n=200, cx=50.0, cy=60.0):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return cx + radius * np.cos(t), cy + radius * np.sin(t)


def roi_zip(path, rois):
    with zipfile.ZipFile(path, "w") as z:
        for i, data in enumerate(rois):
            z.writestr(f"{i:04d}-0000.roi", data)
    return path


def test_roi_shapes_have_their_geometric_areas():
    x, y = circle(10)
    assert read_roi(roi_bytes("polygon", x, y, sub_pixel=True)).area == pytest.approx(np.pi * 100, rel=0.01)
    # integer coordinates only (no sub-pixel option): rounded vertices, still close
    assert read_roi(roi_bytes("freehand", x, y)).area == pytest.approx(np.pi * 100, rel=0.03)
    square_x, square_y = [10, 30, 30, 10], [5, 5, 25, 25]
    assert read_roi(roi_bytes("traced", square_x, square_y)).area == 400
    assert read_roi(roi_bytes("rectangle", bounds=(5, 10, 15, 50))).area == 400  # 40 x 10
    assert read_roi(roi_bytes("oval", bounds=(0, 0, 20, 20))).area == pytest.approx(np.pi * 100)
    with pytest.raises(InputError, match="no area"):
        read_roi(roi_bytes("line", [0, 10], [0, 10]))
    with pytest.raises(InputError, match="Iout"):
        read_roi(b"PK" + bytes(100))


def test_roi_set_diameter_is_the_median_equivalent_diameter(tmp_path):
    rois = [roi_bytes("polygon", *circle(r), sub_pixel=True) for r in (8, 10, 12)]
    rois.append(roi_bytes("oval", bounds=(0, 0, 20, 20)))          # diameter 20
    rois.append(roi_bytes("point", [5], [5]))                     # no area: skipped
    path = roi_zip(tmp_path / "RoiSet.zip", rois)
    diameter, count = diameter_from_file(path)
    assert count == 4 and diameter == pytest.approx(20, rel=0.01)   # median of 16, 20, 20, 24
    single = tmp_path / "one.roi"
    single.write_bytes(rois[0])
    assert diameter_from_file(single)[0] == pytest.approx(16, rel=0.01)
    with pytest.raises(InputError, match="encloses an area"):
        diameter_from_file(roi_zip(tmp_path / "lines.zip", [roi_bytes("line", [0, 9], [0, 9])]))


def test_estimate_diameter_command_reads_roi_sets_and_label_images(tmp_path):
    path = roi_zip(tmp_path / "RoiSet.zip", [roi_bytes("polygon", *circle(10), sub_pixel=True)] * 3)
    labels = tmp_path / "labels.tif"
    tifffile.imwrite(labels, discs([7, 7, 7]).astype(np.uint16))
    for target, expected in ((path, 20.0), (labels, 14.0)):
        p = subprocess.run([sys.executable, "-m", "trackpose", "estimate-diameter", str(target)],
                           capture_output=True, text=True, env=ENV, timeout=300)
        assert p.returncode == 0, p.stderr
        assert float(p.stdout.split()[0]) == pytest.approx(expected, rel=0.03)
    empty = tmp_path / "empty.tif"
    tifffile.imwrite(empty, np.zeros((20, 20), np.uint16))
    p = subprocess.run([sys.executable, "-m", "trackpose", "estimate-diameter", str(empty)],
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert p.returncode == 1 and "no objects" in p.stderr


# ------------------------------------------------------------------------------------------ size files


def test_roi_files_made_by_roifile_itself(tmp_path):
    import roifile
    from trackpose.io import read_roi_file
    angle = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    polygon = roifile.ImagejRoi.frompoints(np.stack([50 + 10 * np.cos(angle), 60 + 10 * np.sin(angle)], 1))
    oval = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.OVAL, left=5, top=7, right=25, bottom=37, name="oval")
    rectangle = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.RECT, left=0, top=0, right=40, bottom=10, name="rect")
    line = roifile.ImagejRoi(roitype=roifile.ROI_TYPE.LINE, x1=0, y1=0, x2=9, y2=9, name="line")
    path = tmp_path / "RoiSet.zip"
    roifile.roiwrite(path, [polygon, oval, rectangle, line])
    areas = sorted(shape.area for shape in read_roi_file(path))  # the line is skipped with a warning
    assert areas == pytest.approx(sorted([np.pi * 100, np.pi * 20 * 30 / 4, 400]), rel=0.01)
