"""Large temporaries come from (and return to) the heap inside trackpose.malloc.reuse_large_buffers, and only there.

glibc's ``mallinfo2`` tells where a block lives: ``hblkhd`` counts bytes in separately mmapped blocks (what glibc
does with large allocations by default: fresh pages each time), ``arena`` the bytes the heap holds from the system.
"""
import ctypes

import numpy as np
import pytest

from trackpose import malloc

pytestmark = pytest.mark.skipif(malloc._glibc() is None, reason="glibc malloc settings (Linux) only")

MB = 1024 * 1024
SIZE = 64 * MB  # larger than glibc's largest automatic mmap threshold (32 MB)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _mallinfo():
    libc = malloc._glibc() or ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("glibc older than 2.33 (no mallinfo2)")
    libc.mallinfo2.restype = _Mallinfo2
    return libc.mallinfo2()


def _where_a_large_buffer_goes():
    """(mmapped bytes, heap growth) while a 64 MB buffer is alive, for the second of two in a row."""
    a = np.ones(SIZE // 4, np.float32)
    del a
    before = _mallinfo()
    b = np.ones(SIZE // 4, np.float32)
    during = _mallinfo()
    del b
    return during.hblkhd - before.hblkhd, during.arena - before.arena


def _fresh_process_report():
    """What a new process does (no earlier network pass has left spare heap): run in a child."""
    import json
    outside = _where_a_large_buffer_goes()
    with malloc.reuse_large_buffers():
        inside = _where_a_large_buffer_goes()
        with malloc.reuse_large_buffers():  # nested: still on
            nested = malloc.active()
        still = malloc.active()
        inside_again = _where_a_large_buffer_goes()
    print(json.dumps(dict(outside=outside, inside=inside, nested=nested, still=still, inside_again=inside_again,
                          after=malloc.active())))


@pytest.mark.slow
def test_large_buffers_are_reused_inside_and_mapped_outside():
    import json
    import subprocess
    import sys
    from pathlib import Path
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            "import test_malloc; test_malloc._fresh_process_report()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    assert r["outside"][0] >= SIZE, "by default glibc maps a fresh block for each large allocation"
    assert r["inside"] == [0, 0], "inside the block the second buffer reuses the first one's heap pages"
    assert r["inside_again"] == [0, 0]
    assert r["nested"] and r["still"] and not r["after"]


def test_heap_kept_after_the_block_is_bounded():
    assert malloc.TRIM_AFTER + 2 * SIZE < 24 * SIZE
    free_before = _mallinfo().fordblks
    with malloc.reuse_large_buffers():
        big = [np.ones(SIZE // 4, np.float32) for _ in range(24)]  # 1.5 GB of heap
        del big
    np.ones(1024).sum()  # any free of a heap block lets glibc trim the top
    small = np.ones(MB // 4, np.float32)
    del small
    kept = _mallinfo().fordblks - free_before
    assert kept <= malloc.TRIM_AFTER + 2 * SIZE, f"free heap above TRIM_AFTER goes back ({kept / MB:.0f} MB kept)"


def test_environment_switch_turns_it_off(monkeypatch):
    monkeypatch.setenv("TRACKPOSE_REUSE_HEAP", "0")
    monkeypatch.setattr(malloc, "_probed", False)
    monkeypatch.setattr(malloc, "_libc", None)
    with malloc.reuse_large_buffers():
        assert not malloc.active(), "malloc settings left alone"
