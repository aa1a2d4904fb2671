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

from collections.abc import Callable
from typing import cast

import numba


def jit[F: Callable[..., object]](fn: F) -> F:
    """Compile ``fn`` in nopython mode with IEEE semantics and an on-disk cache."""
    return cast(F, numba.njit(cache=True, error_model="numpy", nogil=True)(fn))
