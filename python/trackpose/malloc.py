"""Keep the network's large temporary buffers in the heap while it runs (glibc malloc on Linux; elsewhere a no-op).

Every layer of a forward pass allocates output tensors of tens of megabytes (8 tiles x 32 channels x 224 x 224
float32 = 51 MB) and frees them a layer later. glibc serves allocations that large with a fresh ``mmap`` and returns
them with ``munmap`` on free, so each layer's output is new memory that the kernel must fault in and zero, page
by page: on a 2-core CPU that was about a quarter of a forward pass (1.90 s -> 1.43 s per 8-tile batch,
docs/benchmarks.md). While
:func:`reuse_large_buffers` is active, malloc takes large blocks from the heap and does not trim it, so the second
and later batches reuse the first batch's pages. On exit, ``mmap`` is allowed again and the heap is trimmed once
its free top exceeds ``TRIM_AFTER`` bytes, so the process keeps at most that much spare memory for the next run.

The settings are process-wide (glibc has no per-thread ones), nested uses are counted, and nothing else in the
process is changed while no network runs. ``TRACKPOSE_REUSE_HEAP=0`` in the environment turns this off (for
comparisons, or should a platform's malloc misbehave).
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_MMAP_MAX = 65536
#: Spare heap kept after a network pass (bytes): reused by the next pass of a worker or batch run.
TRIM_AFTER = 1024 * 1024 * 1024

_lock = threading.Lock()
_depth = 0
_libc = None
_probed = False


def _glibc():
    """The C library if it is glibc (mallopt with these parameters), else None."""
    global _libc, _probed
    if _probed:
        return _libc
    _probed = True
    if not sys.platform.startswith("linux") or os.environ.get("TRACKPOSE_REUSE_HEAP", "1") == "0":
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # present in glibc only
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):  # musl or another libc: leave malloc alone
        return None
    _libc = libc
    return libc


def active() -> bool:
    """True while a :func:`reuse_large_buffers` block runs with glibc's settings changed."""
    return _depth > 0 and _glibc() is not None


@contextlib.contextmanager
def reuse_large_buffers():
    """Within this block, large allocations come from the heap and freed memory stays there for reuse."""
    global _depth
    libc = _glibc()
    with _lock:
        _depth += 1
        if _depth == 1 and libc is not None:
            ok = libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1)
            if not ok:
                log.debug("mallopt refused the settings; large buffers are not reused")
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and libc is not None:
                libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
                libc.mallopt(_M_TRIM_THRESHOLD, TRIM_AFTER)
