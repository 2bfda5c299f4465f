"""Per-object measurements: centroids, sizes, bounding boxes, radii, quality."""
import numpy as np
import pytest

from trackpose import measure
from trackpose.errors import InputError



def test_object_table_2d_with_spacing_and_cellprob():
    labels = np.zeros((10, 20), np.int32)
    labels[2:4, 5:10] = 4  # 10 pixels
    cellprob = np.zeros(labels.shape, np.float32)
    cellprob[2:4, 5:10] = np.log(3.0)  # sigmoid = 0.75
    rows = measure.object_table(labels, spacing=(0.5, 2.0), cellprob=cellprob)
    assert len(rows) == 1
    row = rows[0]
    assert row["label"] == 4 and row["area"] == 10 and row["area_physical"] == pytest.approx(10.0)
    assert row["centroid"] == [7.5, 3.0] and row["bbox"] == [5, 2, 10, 4]
    assert row["radius"] == pytest.approx(np.sqrt(10 / np.pi))
    assert row["radius_physical"] == pytest.approx(np.sqrt(10 / np.pi))
    assert row["quality"] == pytest.approx(0.75)
    assert measure.object_table(labels)[0]["quality"] == 10  # no cellprob: the area


def test_object_table_3d():
    labels = np.zeros((6, 8, 10), np.uint8)
    labels[1:3, 2:6, 3:4] = 1  # 8 voxels
    labels[5, 7, 9] = 2
    one, two = measure.object_table(labels, spacing=(3.0, 1.0, 0.5))
    assert one["volume"] == 8 and one["volume_physical"] == pytest.approx(12.0)
    assert one["centroid"] == [3.5, 4.0, 2.0] and one["bbox"] == [3, 2, 1, 4, 6, 3]
    assert one["radius"] == pytest.approx((3 * 8 / (4 * np.pi)) ** (1 / 3))
    assert one["radius_physical"] == pytest.approx((3 * 12 / (4 * np.pi)) ** (1 / 3))
    assert two["centroid"] == [9.5, 7.5, 5.5] and two["quality"] == 1



def test_bad_input_names_the_argument():
    with pytest.raises(InputError, match="labels"):
        measure.object_table(np.full((3, 3), -1))
    with pytest.raises(InputError, match="spacing"):
        measure.object_table(np.zeros((3, 3), np.int32), spacing=0)
    with pytest.raises(InputError, match="cellprob"):
        measure.object_table(np.zeros((3, 3), np.int32), cellprob=np.zeros((3, 4)))
