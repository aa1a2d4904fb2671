"""Group-sequential boundary solvers: spending functions and one-dimensional roots.

Spending fractions (Lan-DeMets, Hwang-Shih-DeCani, Kim-DeMets), the constant of a
constant-shape family (O'Brien-Fleming, Pocock, Wang-Tsiatis) by Newton steps with the exact
derivative carried through the recursion, the drift that gives a power, and beta-spending
futility bounds.  The recursion itself is :mod:`fibrosim.trials._gs_integration`; the public
design layer is :mod:`fibrosim.trials.sequential`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import optimize, special

from fibrosim._checks import FloatArray
from fibrosim.trials._gs_integration import (
    _COARSE,
    Grid,
    _advance,
    _crossing,
    _fine,
    _shape_crossing,
    _solve_stage_bound,
    _start,
    _step_tails,
)

_ZERO_DRIFT = np.zeros(1)


# --------------------------------------------------------------------------------------------
# spending functions (cumulative fraction of the error spent at information fraction t)
# --------------------------------------------------------------------------------------------
def _spending_fraction(kind: str, t: FloatArray, level: float, param: float) -> FloatArray:
    """Cumulative fraction of ``level`` spent by information fraction ``t`` (1 at t = 1)."""
    t = np.asarray(t, dtype=np.float64)
    if kind == "ld-obf":
        z = -special.ndtri(level / 2.0)  # = stats.norm.isf, without its overhead
        frac = 2.0 * special.ndtr(-z / np.sqrt(t)) / level
    elif kind == "ld-pocock":
        frac = np.log1p((math.e - 1.0) * t)
    elif kind == "hsd":
        frac = t if param == 0 else -np.expm1(-param * t) / -np.expm1(-param)
    elif kind == "power":
        frac = t**param
    else:  # pragma: no cover - kinds are checked at the boundary
        raise AssertionError(kind)
    return np.asarray(frac, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# boundary solvers (one-dimensional roots over whole recursions)
# --------------------------------------------------------------------------------------------
def _shape_bounds(
    timing: FloatArray, alpha: float, exponent: float
) -> tuple[FloatArray, FloatArray]:
    """Constant-shape bounds ``c * t^exponent`` with total one-sided crossing ``alpha``.

    Newton steps on ``log P(c) - log alpha``, with the exact derivative of the crossing
    probabilities carried through the recursion, from the Bonferroni constant (an upper bound
    on ``c``).  ``log P`` is close to linear in ``c`` and the steps shrink quadratically
    (``step_{n+1} < 0.3 step_n^2`` for K <= 10): once a step is below 1e-5 the next would be
    below 1e-10, so that step is taken without a further recursion and the crossing
    probabilities are moved along their derivative (second-order error < 1e-10).
    """
    shape = timing**exponent
    lo_c = _isf(alpha) / float(np.max(shape))  # one look at the largest bound: P(c) < alpha
    c = hi_c = _bonferroni(alpha, shape)  # P(c) <= alpha
    log_alpha = math.log(alpha)
    for _ in range(100):
        up, dup = _shape_crossing(c, shape, timing, _fine())
        total, slope = float(np.sum(up)), float(np.sum(dup))
        gap = math.log(total) - log_alpha if total > 0.0 else -math.inf
        if gap > 0.0:
            lo_c = c
        else:
            hi_c = c
        step = -gap * total / slope if slope < 0.0 else math.nan
        if abs(step) <= 1e-5 * c:
            c += step
            return np.asarray(c * shape, dtype=np.float64), up + dup * step
        c = c + step if lo_c < c + step < hi_c else 0.5 * (lo_c + hi_c)
    raise ArithmeticError("a constant-shape boundary did not converge.")  # pragma: no cover


def _symmetric_shape_bounds(
    timing: FloatArray, alpha: float, exponent: float
) -> tuple[FloatArray, FloatArray]:
    """Two-sided symmetric bounds ``±c * t^exponent`` with total crossing ``alpha`` under H0.

    The paths that cross either bound stop, so the recursion runs on the general grid with the
    continuation region ``(-c t^e, c t^e)``; ``c`` is bracketed between one look at the largest
    bound and the Bonferroni constant for ``alpha / 2`` per side, found on the coarse grid and
    polished on the fine one.  Returns the upper bounds and the two-sided crossing probability
    of each analysis.
    """
    shape = timing**exponent
    log_alpha = math.log(alpha)

    def gap(c: float, grid: Grid | None = None) -> float:
        up, lo = _crossing(c * shape, -c * shape, timing, _ZERO_DRIFT, grid=grid)
        return math.log(float(np.sum(up) + np.sum(lo))) - log_alpha

    lo_c = _isf(alpha / 2.0) / float(np.max(shape))
    hi_c = _bonferroni(alpha / 2.0, shape)
    c0 = optimize.brentq(gap, lo_c - 1e-9, hi_c + 1e-9, args=(_COARSE,), xtol=1e-10)
    c = _polish(gap, c0)
    up, lo = _crossing(c * shape, -c * shape, timing, _ZERO_DRIFT)
    return np.asarray(c * shape, dtype=np.float64), up[0] + lo[0]


def _symmetric_spending_bounds(
    timing: FloatArray, cum_alpha: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Two-sided symmetric bounds spending ``diff(cum_alpha)`` (two-sided) under H0.

    Under H0 the continuing sub-density is symmetric, so each stage's upper bound spends half
    the increment and its mirror image the other half.  Returns the upper bounds and the
    two-sided crossing probability achieved at each analysis.
    """
    k = timing.size
    upper, achieved = np.full(k, np.inf), np.zeros(k)
    spent = np.diff(np.concatenate([[0.0], cum_alpha]))
    path = _start(np.zeros(1), 0.0)
    for j in range(k):
        t = float(timing[j])
        upper[j] = _solve_stage_bound(path, t, _ZERO_DRIFT, 0.5 * float(spent[j]), True)
        up, lo = _step_tails(path, t, _ZERO_DRIFT, upper[j], -upper[j])
        achieved[j] = float(up[0] + lo[0])
        if j + 1 < k:
            path = _advance(path, t, _ZERO_DRIFT, upper[j], -upper[j], float(timing[j + 1]))
    return upper, achieved


def _bonferroni(alpha: float, shape: FloatArray) -> float:
    """``c`` with ``sum_k P(Z > c * shape_k) = alpha`` (Newton on the log, from above)."""
    c = _isf(alpha / shape.size) / float(np.min(shape))
    for _ in range(100):
        x = c * shape
        total = float(np.sum(special.ndtr(-x)))
        step = (math.log(total) - math.log(alpha)) * total
        step /= float(np.dot(shape, np.exp(-0.5 * x * x))) / math.sqrt(2.0 * math.pi)
        c += step
        if abs(step) < 1e-12 * c:
            return c
    raise ArithmeticError("the Bonferroni constant did not converge.")  # pragma: no cover


def _isf(p: float) -> float:
    """Upper normal quantile without scipy.stats' per-call overhead."""
    return -float(special.ndtri(p))


def _polish(gap: Callable[[float, Grid | None], float], x0: float, step: float = 1e-4) -> float:
    """Root of ``gap(., None)`` (fine grid) from the coarse-grid root ``x0``: Newton, secant."""
    slope = (gap(x0 + step, _COARSE) - gap(x0 - step, _COARSE)) / (2.0 * step)
    f0 = gap(x0, None)
    x1 = x0 - f0 / slope
    f1 = gap(x1, None)
    for _ in range(50):
        if abs(x1 - x0) < 1e-9 or f1 == 0.0 or f1 == f0:
            return x1
        x0, x1 = x1, x1 - f1 * (x1 - x0) / (f1 - f0)
        f0, f1 = f1, gap(x1, None)
    raise ArithmeticError("polishing a boundary constant did not converge.")


def _drift_for_power(
    upper: FloatArray, lower: FloatArray, timing: FloatArray, power: float, start: float
) -> float:
    """Drift (E[Z_K] under H1) at which the upper crossing probability equals ``power``."""

    def gap(eta: float, grid: Grid | None = None) -> float:
        up, _ = _crossing(upper, lower, timing, np.array([eta]), grid=grid)
        return float(np.sum(up)) - power

    eta0 = optimize.brentq(gap, 0.0, 4.0 * start + 10.0, args=(_COARSE,), xtol=1e-10)
    return _polish(gap, eta0)


def _futility_design(
    eta: float,
    timing: FloatArray,
    cum_alpha: FloatArray | None,
    upper_fixed: FloatArray | None,
    cum_beta: FloatArray,
    binding: bool,
) -> tuple[FloatArray, FloatArray, float]:
    """Bounds for drift ``eta`` with beta-spending futility; also the total beta at ``eta``.

    Efficacy bounds come from alpha spending under H0 (with the futility bounds in place when
    ``binding``), or are fixed (``upper_fixed``, non-binding); each futility bound spends the
    beta increment under H1, is capped at the efficacy bound, and the last equals it.
    """
    k = timing.size
    upper = np.full(k, np.inf) if upper_fixed is None else upper_fixed.copy()
    lower = np.full(k, -np.inf)
    zero, alt = np.zeros(1), np.array([eta])
    path0, path1 = _start(zero, 0.0), _start(zero, 0.0)
    alpha_inc = None if cum_alpha is None else np.diff(np.concatenate([[0.0], cum_alpha]))
    beta_inc = np.diff(np.concatenate([[0.0], cum_beta]))
    total_beta = 0.0
    for j in range(k):
        if alpha_inc is not None:
            upper[j] = _solve_stage_bound(path0, timing[j], zero, float(alpha_inc[j]), True)
        if j + 1 < k:
            lower[j] = min(
                _solve_stage_bound(path1, timing[j], alt, float(beta_inc[j]), False), upper[j]
            )
        else:
            lower[j] = upper[j]
        total_beta += float(_step_tails(path1, timing[j], alt, np.inf, lower[j])[1][0])
        if j + 1 < k:
            path1 = _advance(path1, timing[j], alt, upper[j], lower[j], timing[j + 1])
            if alpha_inc is not None:
                low0 = lower[j] if binding else -np.inf
                path0 = _advance(path0, timing[j], zero, upper[j], low0, timing[j + 1])
    return upper, lower, total_beta
