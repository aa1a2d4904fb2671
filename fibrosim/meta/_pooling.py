"""Compiled per-analysis reductions of :func:`fibrosim.meta.frequentist.random_effects`.

Given tau², a meta-analysis needs a handful of O(k) sums: the random-effects weights' total and
weighted mean, the weighted residual sum of squares (Knapp-Hartung), and Cochran's Q with the
inverse-variance weights' first two moments (I², H²).  For a small analysis numpy's per-call
overhead dwarfs these sums, and for a batch of many small analyses per-row reductions are slow,
so one compiled pass per row computes them all.  One analysis and a batch run the same code per
row, so their results agree bit for bit.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from fibrosim._jit import jit, run_rows

FloatArray = NDArray[np.float64]

#: Columns of :func:`pool_rows`' output.
S1, MU, RSS, Q, S1_0, S2_0, VMAX, VMIN = range(8)
N_STATS = 8


@jit
def _pool_row(
    y: FloatArray, v: FloatArray, tau2: float
) -> tuple[float, float, float, float, float, float, float, float]:
    s1 = 0.0
    swy = 0.0
    s1_0 = 0.0
    s2_0 = 0.0
    swy_0 = 0.0
    vmax = -np.inf
    vmin = np.inf
    for j in range(y.size):
        w = 1.0 / (v[j] + tau2)
        s1 += w
        swy += w * y[j]
        w0 = 1.0 / v[j]
        s1_0 += w0
        s2_0 += w0 * w0
        swy_0 += w0 * y[j]
        vmax = max(vmax, v[j])
        vmin = min(vmin, v[j])
    mu = swy / s1
    mu_0 = swy_0 / s1_0
    rss = 0.0
    q = 0.0
    for j in range(y.size):
        r = y[j] - mu
        rss += r * r / (v[j] + tau2)
        r0 = y[j] - mu_0
        q += r0 * r0 / v[j]
    return s1, mu, rss, q, s1_0, s2_0, vmax, vmin


@jit
def _pool_rows(
    y: FloatArray, v: FloatArray, k: FloatArray, tau2: FloatArray, out: FloatArray
) -> None:
    for i in range(y.shape[0]):
        c = int(k[i])
        stats = _pool_row(y[i][:c], v[i][:c], tau2[i])
        for s in range(N_STATS):
            out[i, s] = stats[s]


def pool_rows(y: FloatArray, v: FloatArray, k: FloatArray, tau2: FloatArray) -> FloatArray:
    """Pooling statistics of every row of a batch, shape ``(n, N_STATS)``.

    Columns (see the module constants): ``Σw``, the weighted mean ``mu``, ``Σw(y - mu)²`` with
    ``w = 1/(v + tau²)``; Cochran's ``Q``, ``Σw₀`` and ``Σw₀²`` with ``w₀ = 1/v``; and the largest
    and smallest ``v``.  Row ``i`` holds its ``k[i]`` studies first (padding at the end).
    """
    out = np.empty((y.shape[0], N_STATS))
    run_rows(_pool_rows, (y, v, k, tau2), (out,))
    return out


@jit
def pool_one(
    y: FloatArray, v: FloatArray, tau2: float
) -> tuple[float, float, float, float, float, float, float, float]:
    """:func:`pool_rows` for one analysis without padding (1-D rows), as a tuple of floats."""
    return _pool_row(y, v, tau2)


@jit
def finite_positive(y: FloatArray, v: FloatArray) -> bool:
    """Whether every ``y`` is finite and every ``v`` is finite and > 0 (1-D, same length)."""
    for j in range(y.size):
        if not (np.isfinite(y[j]) and 0.0 < v[j] < np.inf):
            return False
    return True
