"""Property-based checks (Hypothesis) of what hostile input can reach: any job.json and any file bytes give either a
result or one of the documented errors (InputError and its kinds), never a traceback and never a write outside the
job folder."""
import json
import os

import numpy as np
import pytest
import tifffile

hypothesis = pytest.importorskip("hypothesis", reason="install the test extras (hypothesis) for property tests")
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402

from trackpose import io  # noqa: E402
from trackpose.bridge import read_job  # noqa: E402
from trackpose.errors import TrackposeError  # noqa: E402
from trackpose.settings import JOB_KEYS  # noqa: E402

#: derandomized: CI runs the same examples every time (set TRACKPOSE_HYPOTHESIS_EXAMPLES for a longer random hunt)
_HUNT = int(os.environ.get("TRACKPOSE_HYPOTHESIS_EXAMPLES", "0"))
SETTINGS = dict(max_examples=_HUNT or 150, deadline=None, derandomize=not _HUNT,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                           max_leaves=20)
settings_objects = st.dictionaries(st.sampled_from(JOB_KEYS + ("bogus",)), json_values, max_size=6)
jobs = st.fixed_dictionaries({"version": st.one_of(st.just(1), json_values)},
                             optional={"settings": st.one_of(settings_objects, json_values),
                                       "frames": json_values, "calibration": json_values, "outputs": json_values})


@hsettings(**SETTINGS)
@given(job=jobs)
def test_any_job_json_is_validated_or_refused_as_input(tmp_path, job):
    folder = tmp_path / "job"
    folder.mkdir(exist_ok=True)
    (folder / "job.json").write_text(json.dumps(job))
    before = set(os.listdir(tmp_path))
    try:
        out = read_job(folder)
    except TrackposeError as exc:
        assert str(exc) and exc.kind
    else:
        assert set(out) == {"settings", "frames", "calibration", "outputs"}
        json.dumps(out, allow_nan=False)  # what the engine goes on with is valid JSON again
    assert set(os.listdir(tmp_path)) == before


def _valid_files(tmp_path):
    tifffile.imwrite(tmp_path / "v.tif", np.arange(64, dtype=np.uint16).reshape(8, 8), imagej=True)
    np.save(tmp_path / "v.npy", np.ones((4, 4), np.float32))
    io.write_png(tmp_path / "v.png", np.full((4, 4), 7, np.uint8))
    return [(tmp_path / name).read_bytes() for name in ("v.tif", "v.npy", "v.png")]


@hsettings(**SETTINGS)
@given(data=st.data())
def test_any_file_bytes_are_read_or_refused_as_input(tmp_path, data):
    valid = _valid_files(tmp_path)
    base = data.draw(st.sampled_from(valid + [b""]))
    cut = data.draw(st.integers(0, len(base)))
    noise = data.draw(st.binary(max_size=64))
    at = data.draw(st.integers(0, cut))
    content = base[:at] + noise + base[at + len(noise):cut]
    path = tmp_path / "input.tif"
    path.write_bytes(content)
    try:
        image, meta = io.read_image(path)
    except TrackposeError as exc:
        assert str(exc)
    else:
        assert isinstance(image, np.ndarray) and meta.axes
    assert path.read_bytes() == content  # inputs are never modified
