"""Command-line options made from the settings declaration (:mod:`trackpose.settings`): one function adds a
declared setting to an argparse parser, with its type, range check, default and help."""
from __future__ import annotations

import argparse
from typing import Optional

from ..errors import TrackposeError
from ..settings import DEFAULTS, SETTINGS, Setting

_DECLARED = object()


def _default_text(s: Setting, default) -> str:
    if s.kind == "bool":
        return ""
    if default is None:
        return " [default: automatic]" if not s.zero_means else ""
    value = " ".join(str(v) for v in default) if isinstance(default, (tuple, list)) else default
    return f" [default: {value}]"


def _option_type(s: Setting, kind: str):
    """An argparse type that parses a number (or one of the setting's keywords) and checks it against the
    declaration (argparse then prints the usage line and the declaration's message)."""
    def parse(text: str):
        if text in s.keywords:
            return text
        try:
            value = int(text) if kind == "int" else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind == 'int' else 'a number'}")
        if s.kind == "pair":
            return value
        try:
            return s.check(value)
        except TrackposeError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = kind
    return parse


def add_setting_option(group, s: Setting, flag: Optional[str] = None, default=_DECLARED) -> None:
    """Adds one declared setting as a command-line option (dest = the setting's name). ``flag`` and ``default``
    override the declaration's, for the cellpose-compatible command line (cellpose's flag names and its own
    command-line defaults)."""
    flag = flag or s.cli
    default = s.default if default is _DECLARED else default
    help_text = s.help + _default_text(s, default)
    if s.kind == "bool":
        negative = flag.lstrip("-").startswith("no")
        if negative:
            help_text = f"switch off: {s.help}"
        group.add_argument(flag, dest=s.name, action="store_false" if negative else "store_true",
                           default=default, help=help_text)
    elif s.name == "model":
        group.add_argument(flag, dest=s.name, action="append", default=None, metavar="NAME_OR_FILE",
                           help=f"{s.help}; repeat to average several models{_default_text(s, default)}")
    elif s.kind == "str":
        group.add_argument(flag, dest=s.name, choices=s.choices, default=default, help=help_text)
    elif s.kind == "pair":
        group.add_argument(flag, dest=s.name, type=_option_type(s, "float"), nargs=2, default=default,
                           metavar=("LOW", "HIGH"), help=help_text)
    else:
        group.add_argument(flag, dest=s.name, type=_option_type(s, s.kind), default=default, help=help_text)


def settings_from_args(args) -> dict:
    """``trackpose segment``'s options -> ``segment`` keyword arguments."""
    out = {}
    for s in SETTINGS:
        if not s.cli or not s.segment:
            continue
        value = getattr(args, s.name)
        if s.optional and value == 0 and s.name != "diameter":  # 0 = automatic
            value = None
        if s.kind == "pair" and value is not None:
            value = s.check(value, s.cli)
        out[s.name] = value
    models = out.pop("model") or [DEFAULTS["model"]]
    out["model"] = models if len(models) > 1 else models[0]
    out["channels"] = (out.pop("chan"), out.pop("chan2"))
    out.update(channel_axis=args.channel_axis, z_axis=args.z_axis, device=args.device)
    return out
