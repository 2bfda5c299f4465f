"""Exceptions that carry a message a user can act on.

Every failure the engine reports names what went wrong and what to do about it. The command line turns
these into a one-line message and a non-zero exit; the bridge turns them into an ``error`` event.
"""
import signal
import sys
import threading


class TrackposeError(Exception):
    """Base class of all errors trackpose raises on purpose. ``kind`` is a short machine-readable tag."""

    kind = "error"


class InputError(TrackposeError, ValueError):
    """An image, mask or argument that cannot be used as given (wrong shape, unreadable file, bad value)."""

    kind = "input"


class ModelError(TrackposeError):
    """A model name or file that cannot be resolved or loaded."""

    kind = "model"


class Cancelled(TrackposeError):
    """The run was stopped on request (TrackMate's cancel: SIGTERM; a cancel event)."""

    kind = "cancelled"


class Interrupted(Cancelled):
    """Ctrl-C (SIGINT): a cancel whose exit code is 130, as shells expect."""


def install_stop_signals(cancel: threading.Event, signals=(signal.SIGTERM, signal.SIGINT)):
    """Make ``signals`` set ``cancel`` (with ``cancel.reason``) and raise Cancelled (Interrupted for SIGINT).
    Returns a function that puts the previous handlers back (nothing is installed outside the main thread).

    Not KeyboardInterrupt: a signal that lands while numba compiles arrives inside an llvmlite ctypes callback,
    where Python prints the exception and drops it, and the run went on as if nothing had happened; callers check
    the set event again at their next safe point (before writing outputs, between files). A KeyboardInterrupt that
    passes through such a callback also made the interpreter end by SIGINT (exit -2) after 130 had been returned."""
    def handler(signum, frame):
        cancel.reason = Interrupted("interrupted") if signum == signal.SIGINT else Cancelled(
            f"stopped by signal {signum}")
        cancel.set()
        raise cancel.reason

    def unraisable(info):  # the dropped exception is not lost (the event holds it): no traceback for it
        if not isinstance(info.exc_value, Cancelled):
            sys.__unraisablehook__(info)
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {signum: signal.signal(signum, handler) for signum in signals}
    previous_hook, sys.unraisablehook = sys.unraisablehook, unraisable

    def restore():
        for signum, old in previous.items():
            signal.signal(signum, old)
        sys.unraisablehook = previous_hook
    return restore


def raise_if_cancelled(cancel, message: str = "cancelled") -> None:
    """Raise the cancel's reason (else Cancelled(message)) if ``cancel`` (a threading.Event or None) is set."""
    if cancel is not None and cancel.is_set():
        raise getattr(cancel, "reason", None) or Cancelled(message)


def let_cancels_through(handler):
    """A logging handler that lets a Cancelled raised while it writes a record (a signal lands there) stop the run.

    logging catches every Exception from writing a record, prints "--- Logging error ---" with a traceback and
    goes on; KeyboardInterrupt passed, Cancelled would not."""
    report = handler.handleError

    def handle_error(record):
        exc = sys.exc_info()[1]
        if isinstance(exc, Cancelled):
            raise exc
        report(record)
    handler.handleError = handle_error
    return handler
