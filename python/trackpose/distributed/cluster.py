"""Where the work runs: a Dask client for ``--cluster local``, ``--cluster tcp://HOST:PORT`` or a given
``dask.distributed.Client``, and the per-worker model cache.

Each worker runs one task at a time (Dask ``nthreads=1``) and gives torch ``threads`` intra-op threads: the network
is the cost, and two tasks sharing a worker's cores would only compete for them.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Callable, Optional, Sequence, Union

log = logging.getLogger("trackpose")

__all__ = ["default_layout", "connect", "run_tasks", "worker_model", "set_torch_threads"]

#: environment variable a worker reads for its torch thread count (set by ``connect`` for local workers)
THREADS_ENV = "TRACKPOSE_TORCH_THREADS"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_layout(cores: Optional[int] = None) -> tuple[int, int]:
    """(workers, torch threads per worker) for a local cluster on this machine.

    Measured on 2 cores (benchmarks/bench_distributed.py): one worker of 2 threads and two workers of 1 thread
    give about the same frames per second, and one worker holds one copy of the model and of torch (about 0.5 GB
    less memory). On larger machines, workers of 4 threads: torch's CPU kernels scale well to about 4 threads and
    less well beyond, and more workers keep more blocks in flight.
    """
    cores = cores or _cores()
    threads = min(cores, 4)
    return max(1, cores // threads), threads


#: Dask's setting for environment variables set before a worker process starts (read by the C library there)
PRE_SPAWN = "distributed.nanny.pre-spawn-environ"


def _pre_spawn_environ() -> dict:
    """Dask's pre-spawn environment plus ``MALLOC_ARENA_MAX=1`` (unless set already, in the config or here).

    A Dask worker runs its tasks in a thread pool, not in its main thread, and glibc gives other threads their own
    malloc arenas, made of heaps of at most 64 MB: the network's large buffers (tens of MB each) are then mapped and
    unmapped afresh at every layer whatever :mod:`trackpose.malloc` asks, and a forward pass was 9% slower in a
    thread than in the main thread (benchmarks/bench_distributed.py). With one arena, every thread allocates from the
    main heap, where the large buffers are reused. glibc reads the variable when the process starts, so it must be
    in the environment before the worker is spawned.
    """
    import dask
    environ = dict(dask.config.get(PRE_SPAWN, default={}) or {})
    environ.setdefault("MALLOC_ARENA_MAX", os.environ.get("MALLOC_ARENA_MAX", "1"))
    return environ


@contextlib.contextmanager
def connect(cluster: Union[str, object, None] = "local", n_workers: Optional[int] = None,
            threads: Optional[int] = None, memory_limit: Union[str, float, None] = "auto"):
    """A ``dask.distributed.Client`` for the duration of a ``with`` block.

    Parameters
    ----------
    cluster : "local", "tcp://HOST:PORT" (any scheduler address), or a ``dask.distributed.Client``
        ``"local"`` starts a ``LocalCluster`` of ``n_workers`` processes with ``threads`` torch threads each
        (defaults from :func:`default_layout`) and closes it afterwards; an address or a client is used as it is
        (its workers' layout is theirs).
    memory_limit : per local worker ("4GB", bytes, "auto" = the machine's memory shared between the workers)
    """
    import dask
    from dask.distributed import Client, LocalCluster

    if isinstance(cluster, Client):
        yield cluster
        return
    if cluster is None or cluster == "local":
        default_workers, default_threads = default_layout()
        threads = threads or (default_threads if n_workers is None else max(1, _cores() // n_workers))
        n_workers = n_workers or max(1, _cores() // threads)
        env = {THREADS_ENV: str(threads), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        with dask.config.set({PRE_SPAWN: _pre_spawn_environ()}), \
                LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, memory_limit=memory_limit,
                             env=env, dashboard_address=":0") as local, Client(local) as client:
            log.info("local Dask cluster: %d worker(s) x %d thread(s)", n_workers, threads)
            yield client
        return
    if not isinstance(cluster, str) or "://" not in cluster:
        raise ValueError(f"cluster must be 'local', a scheduler address such as tcp://host:8786, or a "
                         f"dask.distributed.Client; got {cluster!r}")
    with Client(cluster) as client:
        yield client


def task_threads() -> Optional[int]:
    """Compute threads each task of this Dask worker may use, or None outside a Dask worker (plain process).

    ``TRACKPOSE_TORCH_THREADS`` when set (``connect`` sets it for local workers; set it in a job script), else the
    worker's cores shared between the tasks it runs at once (its Dask threads): a worker of 8 cores running 8 tasks
    gives each 1, so that 8 tasks of 8 torch threads do not fight over 8 cores.
    """
    value = os.environ.get(THREADS_ENV)
    if value:
        return max(1, int(value))
    try:
        from dask.distributed import get_worker
        worker = get_worker()
    except (ImportError, ValueError):
        return None
    return max(1, _cores() // max(1, int(worker.state.nthreads)))


def set_torch_threads() -> None:
    """Give this task torch's and numba's thread counts for this worker (:func:`task_threads`).

    torch's count is process-wide (set once); numba's is per calling thread, so it is set in every task: numba's
    parallel loops (the flow dynamics of the mask step) otherwise use every core of the machine in each task, and
    two workers of one thread would run four threads on two cores.
    """
    threads = task_threads()
    if threads is None:
        return
    import torch
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    try:
        import numba
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover - numba is a dependency
        pass


_MODELS: dict = {}
_MODELS_LOCK = threading.Lock()


def worker_model(model, device=None, gpu: bool = False):
    """The loaded model(s) for ``model`` (a name, a path, or a list of them), loaded once per worker process and
    kept: every later task on that worker gets the same object."""
    if not isinstance(model, (str, os.PathLike, list, tuple)):
        return model  # already a Model (in-process use)
    set_torch_threads()  # every task: numba's thread count belongs to the calling thread
    key = (tuple(str(m) for m in model) if isinstance(model, (list, tuple)) else str(model), str(device), gpu)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from ..models import load_model
            names = list(model) if isinstance(model, (list, tuple)) else [model]
            loaded = [load_model(m, device=device, gpu=gpu) for m in names]
            _MODELS[key] = loaded if len(loaded) > 1 else loaded[0]
            log.info("worker %d loaded model %s", os.getpid(), key[0])
        return _MODELS[key]


def models_loaded() -> int:
    """How many models this process has loaded (tests check that a worker loads its model once)."""
    return len(_MODELS)


def run_tasks(client, progress: Optional[Callable[[int, int, str], None]], stage: str, fn,
              calls: Sequence[tuple]) -> list:
    """``fn(*args)`` for each args in ``calls``, on the client's workers (any order; Dask reruns the tasks of a
    worker that dies) or inline without a client; results come back in the order of ``calls``.
    ``progress(done, total, stage)`` is called as tasks finish."""
    total = len(calls)
    if progress and total:
        progress(0, total, stage)
    if client is None:
        results = []
        for k, args in enumerate(calls):
            results.append(fn(*args))
            if progress:
                progress(k + 1, total, stage)
        return results
    from dask.distributed import as_completed
    position, futures = {}, []
    for k, args in enumerate(calls):
        futures.append(client.submit(fn, *args, pure=False))
        position[futures[-1].key] = k
    completed = as_completed(futures)
    # no list keeps the futures: each is dropped once its result is here, and the worker then frees that result
    # (kept until the end, a run of many blocks would grow every worker's memory with the number of blocks)
    del futures
    results = [None] * total
    for done, future in enumerate(completed, 1):
        results[position.pop(future.key)] = future.result()  # a task's error is raised here
        del future
        if progress:
            progress(done, total, stage)
    return results
