"""Compiled kernels: one typed wrapper around :func:`numba.njit` for the hot loops.

Array cores stay numpy where one vectorised expression does the work.  Where a solver needs a
data-dependent number of O(k) passes per analysis (Newton steps, bracketing scans, mixture
root-finding), the per-call overhead of numpy dominates for the small k of meta-analysis, so those
loops are compiled.  The compiled code does the IEEE double operations it spells out: no
``fastmath`` (no reassociation), division by zero gives inf/NaN as in numpy (``error_model``),
and the machine code is cached on disk beside the module, so only the first import on a machine
pays the compilation.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numba
from numpy.typing import NDArray


def jit[F: Callable[..., object]](fn: F) -> F:
    """Compile ``fn`` in nopython mode with IEEE semantics and an on-disk cache."""
    return cast(F, numba.njit(cache=True, error_model="numpy", nogil=True)(fn))


#: Below this many rows a batch runs in the calling thread (starting threads costs more).
_MIN_ROWS_PER_THREAD = 2048
_pool: tuple[int, ThreadPoolExecutor] | None = None  # (pid that created it, the pool)


def _threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_rows(
    kernel: Callable[..., object],
    inputs: Sequence[NDArray[Any]],
    outputs: Sequence[NDArray[Any]],
    *args: object,
) -> None:
    """Run a row kernel ``kernel(*inputs, *args, *outputs)`` over contiguous row ranges in threads.

    The kernel handles the rows of its arguments independently (row ``i`` of every output
    depends only on row ``i`` of the inputs) and releases the GIL (:func:`jit` compiles with
    ``nogil``), so ranges of rows run concurrently, one per core.  Each row's arithmetic is the
    same whatever the split, so results do not depend on the number of threads.  Plain Python
    threads are used rather than numba's parallel backends so that calls from several threads
    at once (Dask workers) are safe.
    """
    n = inputs[0].shape[0]
    n_threads = min(_threads(), n // _MIN_ROWS_PER_THREAD)
    if n_threads <= 1:
        kernel(*inputs, *args, *outputs)
        return
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        # a forked child inherits the pool object but not its threads: make its own
        _pool = (os.getpid(), ThreadPoolExecutor(_threads(), thread_name_prefix="fibrosim"))
    edges = [n * i // n_threads for i in range(n_threads + 1)]
    futures = [
        _pool[1].submit(
            kernel,
            *(a[lo:hi] for a in inputs),
            *args,
            *(o[lo:hi] for o in outputs),
        )
        for lo, hi in itertools.pairwise(edges)
    ]
    for f in futures:
        f.result()
