"""Compiled quantiles of normal mixtures Σ_n W_n N(m_n, s_n²), row by row.

A mixture quantile is the root of the mixture CDF minus q.  Each evaluation is one O(N) pass
over the components (N = hundreds of τ nodes), and a root takes a few bracketed Halley steps,
so for one meta-analysis the per-call overhead of numpy dwarfs the arithmetic; compiled, one
analysis and a batch run the same machine code on each row (:mod:`fibrosim._jit`).

The solve (:func:`newton_update`, shared with the τ quantiles): Halley steps (Newton when the
correction factor leaves [0.5, 2]) kept inside a shrinking bracket, bisection when a step
leaves it, stopped when the step is below ``xtol`` (a Halley step below ``accept`` is the last
one).  It starts from the Cornish-Fisher expansion with the mixture's skewness and excess
kurtosis and is bracketed by the smallest and largest component quantiles.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from fibrosim._jit import jit, run_rows

__all__ = ["mixture_quantiles", "ndtr", "newton_update"]

_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = math.exp(-0.5 * math.log(2 * math.pi))  # as _mixture computes it
_EPS8 = 8 * float(np.finfo(np.float64).eps)  # rounding floor of the root tolerance
# components of weight <= 1e-25 (far τ tail nodes) are left out of the bracket and the CDF
# sums: together (N < 1e5 of them) they move the probability by < 1e-20, far below any q in use
_LIVE = 1e-25
_MAXITER = 200

FloatArray = NDArray[np.float64]


@jit
def ndtr(a: float) -> float:
    """Standard normal CDF by erf/erfc (cephes' ndtr: erf near 0, erfc of |x| in the tails)."""
    x = a * _SQRT1_2
    z = abs(x)
    if z < _SQRT1_2:
        return 0.5 + 0.5 * math.erf(x)
    y = 0.5 * math.erfc(z)
    return 1.0 - y if x > 0 else y


@jit
def newton_update(
    x: float,
    lo: float,
    hi: float,
    f: float,
    slope: float,
    curv: float,
    halley: bool,
    xtol: float,
    accept: float,
) -> tuple[float, float, float, bool]:
    """One bracketed Newton/Halley step on an increasing function: new point, bracket, done.

    ``f``, ``slope`` and ``curv`` are the function and its first two derivatives at ``x``;
    ``[lo, hi]`` brackets the root and shrinks to the side of ``x`` that keeps it.  With
    ``halley`` the Newton step f/f' is divided by 1 - (f/f')·f''/(2f') when that factor lies
    in [0.5, 2] (cubic convergence); otherwise it stays Newton's.  A step leaving the bracket
    (or NaN) is replaced by bisection, so the iteration always converges.  Converged: the step
    is below ``xtol`` (+ rounding of x), or below ``accept`` for a Halley step (the caller
    chooses ``accept`` so that the cube of the step, the error left, is far below ``xtol``,
    which saves the evaluation that would only confirm convergence), or f = 0, or the bracket
    is narrower than the tolerance.
    """
    lo_a = x if f < 0 else lo
    hi_a = x if f > 0 else hi
    step = f / slope
    good = False
    if halley:
        # Halley: divide the Newton step by 1 - step·f''/(2f'); a factor far from 1 means
        # the quadratic model is poor there, and the Newton step is kept
        factor = 1.0 - 0.5 * step * curv / slope
        good = factor >= 0.5 and factor <= 2.0  # False for NaN
        if good:
            step = step / factor
    xn = x - step
    tol = xtol + _EPS8 * abs(x)  # never below rounding
    stop = max(tol, accept) if good else tol
    small = abs(step) <= stop  # False for a NaN step
    if not small and not (xn > lo_a and xn < hi_a):  # leaves the bracket, or NaN
        xn = 0.5 * (lo_a + hi_a) if math.isfinite(lo_a) and math.isfinite(hi_a) else x
    zero = f == 0
    done = zero or small or (hi_a - lo_a <= tol)
    if small:
        xn = min(max(xn, lo_a), hi_a)
    return (x if zero else xn), lo_a, hi_a, done


@jit
def _row_quantiles(
    w: FloatArray,
    m: FloatArray,
    s: FloatArray,
    q: FloatArray,
    zq: FloatArray,
    mean: float,
    var: float,
    out: FloatArray,
    mw: FloatArray,
    mm: FloatArray,
    minv: FloatArray,
    mdens: FloatArray,
) -> None:
    """Quantiles ``q`` (standard normal quantiles ``zq``) of one mixture, written to ``out``."""
    n = w.size
    sd = math.sqrt(var)
    # moments about the mean for the Cornish-Fisher start; the live components gathered once
    c3 = 0.0
    c4 = 0.0
    n_live = 0
    for j in range(n):
        dev = m[j] - mean
        dev2 = dev * dev
        s2 = s[j] * s[j]
        c3 += w[j] * dev * (dev2 + 3 * s2)
        c4 += w[j] * (dev2 * (dev2 + 6 * s2) + 3 * s2 * s2)
        if w[j] > _LIVE:
            inv_s = 1.0 / s[j]
            mw[n_live] = w[j]
            mm[n_live] = m[j]
            minv[n_live] = inv_s
            mdens[n_live] = w[j] * inv_s * _INV_SQRT_2PI  # w / (s·sqrt(2π))
            n_live += 1
    g1 = c3 / (var * sd)
    g2 = c4 / (var * var) - 3
    for i in range(q.size):
        target, z0 = q[i], zq[i]
        lo = math.inf
        hi = -math.inf
        for j in range(n):
            if w[j] > _LIVE:
                c = m[j] + s[j] * z0
                lo = min(lo, c)
                hi = max(hi, c)
        z2 = z0 * z0
        cf = z0 + g1 * (z2 - 1) / 6 + g2 * z0 * (z2 - 3) / 24 - g1 * g1 * z0 * (2 * z2 - 5) / 36
        x = mean + sd * (cf if math.isfinite(cf) else z0)
        if math.isnan(x):  # no finite start (degenerate weights): NaN, as the numpy solve
            out[i] = x
            continue
        x = min(max(x, lo), hi)
        # work with the smaller tail so that extreme quantiles keep their relative accuracy
        sign = -1.0 if target > 0.5 else 1.0
        goal = 1 - target if sign < 0 else target
        xtol = 1e-14 * (1 + sd)
        # a Halley step of 1e-5 sd leaves an error ~ (1e-5)³ sd times a few
        accept = 1e-5 * sd
        for _ in range(_MAXITER):
            tail = 0.0
            d1 = 0.0
            d2 = 0.0
            for j in range(n_live):
                z = (x - mm[j]) * minv[j]
                tail += mw[j] * ndtr(z * sign)
                wd = mdens[j] * math.exp(-0.5 * z * z)
                d1 += wd
                d2 -= wd * z * minv[j]
            f = goal - tail if sign < 0 else tail - goal
            x, lo, hi, done = newton_update(x, lo, hi, f, d1, d2, True, xtol, accept)
            if done:
                break
        else:  # pragma: no cover - the bisection fallback converges in < 200 steps
            raise RuntimeError("mixture quantile did not converge in 200 bracketed Newton steps.")
        out[i] = x


@jit
def _quantiles(
    w: FloatArray,
    m: FloatArray,
    s: FloatArray,
    q: FloatArray,
    zq: FloatArray,
    mean: FloatArray,
    var: FloatArray,
    out: FloatArray,
) -> None:
    n = w.shape[1]
    mw = np.empty(n)
    mm = np.empty(n)
    minv = np.empty(n)
    mdens = np.empty(n)
    for r in range(w.shape[0]):
        _row_quantiles(w[r], m[r], s[r], q[r], zq[r], mean[r], var[r], out[r], mw, mm, minv, mdens)


def mixture_quantiles(
    w: FloatArray,
    m: FloatArray,
    s: FloatArray,
    q: FloatArray,
    zq: FloatArray,
    mean: FloatArray,
    var: FloatArray,
) -> FloatArray:
    """Quantiles of the mixtures in the rows of ``w``, ``m``, ``s`` (shape (B, N)).

    ``q`` and ``zq`` = Φ⁻¹(q) have shape (B, Q); ``mean`` and ``var`` (B,) are the mixtures'
    moments.  Returns (B, Q).  Large batches run their rows in threads (:func:`run_rows`);
    each row's arithmetic is the same either way.
    """
    out = np.empty(q.shape)
    run_rows(_quantiles, (w, m, s, q, zq, mean, var), (out,))
    return out
