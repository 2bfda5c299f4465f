"""Outline pictures: colours by match to the truth, montages of stacks."""
import numpy as np
import pytest

from trackpose import overlay
from trackpose.errors import InputError


def disc(shape, cy, cx, r):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_found_false_and_missed_objects_get_their_colours():
    shape = (64, 96)
    truth = np.zeros(shape, np.int32)
    truth[disc(shape, 20, 20, 10)] = 1
    truth[disc(shape, 40, 70, 10)] = 2          # missed
    found = np.zeros(shape, np.int32)
    found[disc(shape, 21, 20, 10)] = 5          # matches truth 1 (IoU > 0.5)
    found[disc(shape, 50, 30, 6)] = 9           # false positive
    image = np.random.default_rng(0).random(shape)
    rgb = overlay.outline_overlay(image, found, truth=truth)
    assert rgb.shape == shape + (3,) and rgb.dtype == np.uint8
    colour = {c: np.all(rgb == c, axis=-1) for c in (overlay.GREEN, overlay.RED, overlay.BLUE)}
    assert colour[overlay.GREEN][disc(shape, 21, 20, 11)].sum() > 40
    assert colour[overlay.RED][disc(shape, 50, 30, 7)].sum() > 20
    assert colour[overlay.BLUE][disc(shape, 40, 70, 11)].sum() > 40
    assert not colour[overlay.RED][disc(shape, 21, 20, 11)].any()
    matched, missed = overlay.match_classes(found, truth)
    assert matched.tolist() == [5] and missed.tolist() == [2]


def test_outlines_are_the_border_pixels_only():
    masks = np.zeros((9, 9), np.int32)
    masks[2:7, 2:7] = 1
    edge = overlay.outline_pixels(masks)
    assert edge.sum() == 16 and not edge[3:6, 3:6].any()


def test_stack_montage_and_errors():
    masks = np.zeros((5, 16, 16), np.int32)
    masks[:, 4:12, 4:12] = 1
    sheet = overlay.stack_overlay(np.ones((5, 16, 16)), masks)
    assert sheet.shape == (2 * 16 + 4, 3 * 16 + 2 * 4, 3)  # 5 planes: 3 columns, 2 rows
    with pytest.raises(InputError):
        overlay.outline_overlay(np.ones((8, 8)), np.zeros((9, 9), np.int32))


def test_tracks_picture_draws_each_track_in_its_colour():
    tracked = np.zeros((3, 40, 60), np.int32)
    for t in range(3):
        tracked[t, 10:16, 5 + 10 * t:11 + 10 * t] = 1  # track 1 moves right
        tracked[t, 28:34, 40:46] = 2  # track 2 stays
    rgb = overlay.tracks_overlay(tracked)
    one, two = overlay.track_colour(1), overlay.track_colour(2)
    assert one != two
    is_one = np.all(rgb == one, axis=-1)
    assert is_one[12:14, 8:28].any(axis=0).all()  # the path from frame 0 to frame 2, centroids on row 12.5
    assert is_one[10:16, 25:31].any() and np.all(rgb == two, axis=-1)[28:34, 40:46].any()
    with pytest.raises(InputError):
        overlay.tracks_overlay(np.zeros((4, 4), np.int32))
