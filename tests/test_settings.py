"""One declaration of every engine setting drives segment's defaults, job.json, both command lines and the docs."""
import inspect
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from trackpose import settings
from trackpose.bridge import read_job
from trackpose.cli.cellpose import build_parser as cellpose_parser
from trackpose.cli.main import build_parser
from trackpose.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


def test_segment_takes_its_defaults_from_the_declaration():
    from trackpose.segmentation import segment
    params = inspect.signature(segment).parameters
    for s in settings.SETTINGS:
        if not s.segment:
            continue
        if s.name in ("chan", "chan2"):
            assert params["channels"].default[("chan", "chan2").index(s.name)] == s.default
        else:
            assert params[s.name].default == s.default, s.name
    assert settings.DEFAULTS["flow_threshold"] == 0.4 and settings.DEFAULTS["niter"] is None  # cellpose 3.1's


def test_the_settings_page_is_generated_from_the_declaration():
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert page == settings.as_markdown(), "docs/settings.md is stale: run `trackpose settings --markdown`"


def test_json_declaration_lists_every_setting_with_trackmate_keys():
    out = subprocess.run([sys.executable, "-m", "trackpose", "settings", "--json"], capture_output=True, text=True,
                         check=True).stdout
    entries = {e["name"]: e for e in json.loads(out)["settings"]}
    assert set(entries) == set(settings.BY_NAME)
    assert entries["flow_threshold"]["trackmate_key"] == "FLOW_THRESHOLD"
    assert entries["flow_threshold"]["min"] == 0 and entries["flow_threshold"]["max"] == 3
    assert entries["diameter"]["trackmate_default"] == 30.0 and entries["diameter"]["default"] is None
    assert entries["smoothing"]["max"] is None  # unbounded is null, not Infinity (valid JSON)


def _numeric_job_settings():
    for s in settings.SETTINGS:
        if s.job_key and not s.job_key.startswith("channels") and s.kind in ("int", "float"):
            yield s


@pytest.mark.parametrize("s", list(_numeric_job_settings()), ids=lambda s: s.name)
def test_job_settings_at_and_beyond_their_bounds(tmp_path, s):
    """Generated from the declaration: a new setting is covered without a new test."""
    def job(value):
        (tmp_path / "job.json").write_text(json.dumps({"version": 1, "settings": {s.job_key: value}}))
        return read_job(tmp_path)["settings"][s.job_key]

    if s.minimum is not None and not math.isinf(s.minimum) and not s.exclusive_min:
        assert job(s.minimum) == s.minimum
        with pytest.raises(InputError, match=s.job_key):
            job(s.minimum - 1)
    if s.maximum is not None and not math.isinf(s.maximum):
        assert job(s.maximum) == s.maximum
        with pytest.raises(InputError, match=s.job_key):
            job(s.maximum * 2 + 1)
    with pytest.raises(InputError, match=s.job_key):
        job("12")
    with pytest.raises(InputError, match=s.job_key):
        job(True)
    if s.kind == "int":
        with pytest.raises(InputError, match=s.job_key):
            job(2.5)


def test_job_channels_and_unknown_keys(tmp_path):
    def job(raw):
        (tmp_path / "job.json").write_text(json.dumps({"version": 1, "settings": raw}))
        return read_job(tmp_path)["settings"]
    assert job({})["channels"] == [0, 0] and job({})["flow_threshold"] == 0.4
    assert job({"channels": [2, 1]})["channels"] == [2, 1]
    for bad in ([1], [-1, 0], [1.5, 0], "1,2"):
        with pytest.raises(InputError, match="channels"):
            job({"channels": bad})
    with pytest.raises(InputError, match="unknown setting.*flow_treshold"):
        job({"flow_treshold": 0.3})


@pytest.mark.parametrize("argv", [["--min-size", "-5"], ["--max-size", "-5"], ["--flow3d-smooth", "nan"],
                                  ["--flow3d-smooth", "1e9"], ["--flow-threshold", "-1"], ["--niter", "2.5"],
                                  ["--batch-size", "0"], ["--stitch-threshold", "1.5"], ["--gamma", "0"],
                                  ["--cellprob-threshold", "-inf"], ["--cellprob-threshold", "-7"]])
def test_segment_command_line_refuses_values_out_of_range(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["segment", "x.tif", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert argv[0] in err and "must be" in err or "not" in err


def test_command_lines_start_from_the_declared_defaults():
    args = build_parser().parse_args(["segment", "x.tif"])
    for s in settings.SETTINGS:
        if s.cli and s.segment and s.name != "model":
            assert getattr(args, s.name) == s.default, s.name
    cp = cellpose_parser().parse_args([])
    assert cp.flow_threshold == settings.default("flow_threshold") and cp.min_size == settings.default("min_size")
    assert cp.diameter == 30.0 and cp.tiling == "cellpose"  # cellpose's own command-line defaults


def test_help_and_settings_answer_without_torch():
    code = ("import sys\nfrom trackpose.cli.main import main\n"
            "for argv in (['--help'], ['segment', '--help'], ['settings', '--json'], ['track', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('torch', 'scipy', 'numba', 'dask') if m in sys.modules]\n"
            "assert not heavy, f'{heavy} imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_segment_checks_its_arguments_against_the_declaration():
    import numpy as np
    from trackpose import segment
    image = np.zeros((32, 32), np.float32)
    for kwargs, name in (({"min_size": -5}, "min_size"), ({"flow3d_smooth": float("nan")}, "flow3d_smooth"),
                         ({"max_size": -5}, "max_size"), ({"cellprob_threshold": -np.inf}, "cellprob_threshold"),
                         ({"channels": (-1, 0)}, "chan")):
        with pytest.raises(InputError, match=name):
            segment(image, diameter=30, **kwargs)


def test_anisotropy_takes_auto_besides_numbers_everywhere_it_is_given(tmp_path):
    """The one keyword a number setting takes: in segment's check, on the command line, in job.json."""
    assert settings.check("anisotropy", "auto") == "auto" and settings.check("anisotropy", 2) == 2.0
    with pytest.raises(InputError, match="0 to 100 or 'auto'"):
        settings.check("anisotropy", "calibration")
    with pytest.raises(InputError, match="must be"):
        settings.check("flow_threshold", "auto")  # a setting without keywords takes none
    assert build_parser().parse_args(["segment", "x.tif", "--anisotropy", "auto"]).anisotropy == "auto"
    assert cellpose_parser().parse_args(["--anisotropy", "auto"]).anisotropy == "auto"
    (tmp_path / "job.json").write_text(json.dumps({"version": 1, "settings": {"anisotropy": "auto"}}))
    assert read_job(tmp_path)["settings"]["anisotropy"] == "auto"


def _all_parsers():
    import argparse
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    yield "trackpose", parser
    for name, command in sub.choices.items():
        yield f"trackpose {name}", command
    yield "trackpose-cellpose", cellpose_parser()


def test_every_command_and_option_has_help_with_one_default():
    import argparse
    for name, parser in _all_parsers():
        assert parser.description or name == "trackpose-cellpose" or parser.format_usage(), name
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            if action.help == argparse.SUPPRESS:
                continue
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
            assert action.help.count("default:") <= 1, f"{name} {action.option_strings}: {action.help}"
        text = parser.format_help()
        assert "(default: None)" not in text and "] (default:" not in text, name
