"""Exceptions that carry a message a user can act on.

Every failure the engine reports names what went wrong and what to do about it. The command line turns
these into a one-line message and a non-zero exit; the bridge turns them into an ``error`` event.
"""


class TrackposeError(Exception):
    """Base class of all errors trackpose raises on purpose. ``kind`` is a short machine-readable tag."""

    kind = "error"


class InputError(TrackposeError, ValueError):
    """An image, mask or argument that cannot be used as given (wrong shape, unreadable file, bad value)."""

    kind = "input"


class ModelError(TrackposeError):
    """A model name or file that cannot be resolved or loaded."""

    kind = "model"
