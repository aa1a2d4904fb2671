"""Compiled pieces of the τ quadrature (:mod:`fibrosim.meta._tau_quadrature`).

The integrand g(x) = x + log p(e^x) + log m(y | e^x) is evaluated at tens to hundreds of nodes
per meta-analysis, in a data-dependent number of passes (panel refinement, Halley steps of the
τ quantiles).  For one meta-analysis the per-call overhead of numpy on such small arrays is
most of the time, so the likelihood and the bookkeeping around it are compiled
(:mod:`fibrosim._jit`) and run node by node.  The prior stays a numpy call on the nodes of a
pass (one definition of every prior density): a pass computes the nodes' τ, Python evaluates
the prior there, and the next kernel finishes the pass.

Data layout (as :class:`fibrosim.meta._tau_quadrature._Data`): ``v1`` (B, K) variances with
padding set to 1, ``moments`` (B, K, 3) holding mask, mask·(y - centre), mask·(y - centre)²,
``prec0`` the μ prior's precision (0 when flat), ``m0c`` (B,) its mean minus the centre and
``const`` (B,) the constant of the log-likelihood.

References
----------
Röver C. J Stat Softw 2020;93(6):1-51, Sec. 2 (m(y | τ), conditional moments of μ).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from fibrosim._jit import jit
from fibrosim.meta._mixture_kernels import newton_update

__all__ = [
    "GL_W",
    "GL_X",
    "loglik_at",
    "quantile_nodes",
    "quantile_start",
    "quantile_step",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

GL_X, GL_W = np.polynomial.legendre.leggauss(20)  # partial panels (CDF at a point)
_N_GL = 20
# step on t in [0, 1] of the central difference for the integrand's slope (Halley steps of the
# τ quantiles): truncation ~h² and rounding ~1e-16/h both far below 1e-8 relative; the slope
# only scales the Halley correction, so its error slows convergence but never moves the root
DIFF_STEP = 1e-5
# quantile solve on t: xtol far below any τ resolution that matters; the integrand varies on
# t-scales > 1e-3 (panels), so a Halley step of 1e-8 leaves an error ~ (1e-8)³ / (1e-3)² =
# 1e-18, far below xtol, and is taken as the last one
_T_XTOL = 1e-15
_T_ACCEPT = 1e-8


@jit
def loglik_at(
    v1: FloatArray, moments: FloatArray, prec0: float, m0c: float, const: float, tau2: float
) -> tuple[float, float, float]:
    """Log m(y | τ), E[μ | τ, y] - centre and Var[μ | τ, y] of one analysis at τ².

    The weighted sums S0 = Σw, S1 = Σw·y, S2 = Σw·y² of the centred y over the valid studies,
    with the μ prior as a pseudo-study, exactly as the numpy likelihood forms them.
    """
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    logdet = 0.0
    for j in range(v1.size):
        if moments[j, 0] > 0:
            big_v = v1[j] + tau2
            w = 1.0 / big_v
            s0 += w
            s1 += w * moments[j, 1]
            s2 += w * moments[j, 2]
            logdet += math.log(big_v)
    if prec0 > 0:
        s0 += prec0
        s1 += prec0 * m0c
        s2 += prec0 * m0c * m0c
    mhat = s1 / s0
    q = s2 - s1 * mhat
    if q < 0:  # (rounding; NaN stays NaN as in np.maximum)
        q = 0.0
    ll = -0.5 * (const + logdet + q + math.log(s0))
    return ll, mhat, 1.0 / s0


@jit
def _integrand(
    x: float, lp: float, v1: FloatArray, moments: FloatArray, prec0: float, m0c: float, const: float
) -> float:
    """g(x) = x + log p(τ) + log m(y | τ) at τ = e^x (-inf where NaN), given log p(τ) = lp."""
    tau = math.exp(x)
    ll = loglik_at(v1, moments, prec0, m0c, const, tau * tau)[0]
    g = x + lp + ll
    return -math.inf if math.isnan(g) else g


# -- τ quantiles ---------------------------------------------------------------------------------
@jit
def quantile_start(
    q: FloatArray,
    rows: IntArray,
    total: FloatArray,
    lower_mass: FloatArray,
    panel_mass: FloatArray,
    weights: FloatArray,
    cum_wk: FloatArray,
    wk: FloatArray,
    edges: FloatArray,
) -> tuple[BoolArray, IntArray, FloatArray, FloatArray]:
    """Panel, mass still needed inside it, and start on t of each quantile.

    ``low`` marks quantiles inside the closed-form piece below the window.  The start spreads
    the panel's Kronrod node masses evenly over cells whose widths are the Kronrod weights (a
    step-function density) and inverts that exactly.
    """
    n = q.size
    n_p = panel_mass.shape[1]
    low = np.zeros(n, dtype=np.bool_)
    panel = np.zeros(n, dtype=np.intp)
    need = np.empty(n)
    t0 = np.empty(n)
    for i in range(n):
        r = rows[i]
        target = q[i] * total[r]  # in units of exp(ref)
        need[i] = target
        if target <= lower_mass[r]:
            low[i] = True
            t0[i] = np.nan
            continue
        # the first panel whose cumulative mass reaches the target (the last one at most)
        base = lower_mass[r]
        p = 0
        while p < n_p - 1 and base + panel_mass[r, p] < target:
            base += panel_mass[r, p]
            p += 1
        panel[i] = p
        rest = target - base
        need[i] = rest
        a, e = edges[p], edges[p + 1]
        j = 0
        prev = 0.0
        cm = weights[r, 1 + 15 * p] * total[r]
        while j < 14 and cm < rest:
            prev = cm
            j += 1
            cm += weights[r, 1 + 15 * p + j] * total[r]
        mj = cm - prev
        frac = min(max((rest - prev) / (mj if mj > 0 else 1.0), 0.0), 1.0)
        start = a + (e - a) * 0.5 * (cum_wk[j] + wk[j] * frac)
        if not math.isfinite(start):  # pragma: no cover - node masses are finite
            pm = panel_mass[r, p]
            start = a + (e - a) * min(max(rest / (pm if pm > 0 else 1.0), 0.0), 1.0)
        t0[i] = start
    return low, panel, need, t0


@jit
def quantile_nodes(
    t: FloatArray,
    active: IntArray,
    panel: IntArray,
    rows: IntArray,
    edges: FloatArray,
    x_lo: FloatArray,
    length: FloatArray,
) -> FloatArray:
    """τ at the nodes of the partial integral from the panel's left edge to t, then t ∓ h, t.

    Shape (n_active, 23): 20 Gauss-Legendre nodes on [a, t], then t - h, t + h and t.
    """
    out = np.empty((active.size, _N_GL + 3))
    for i in range(active.size):
        k = active[i]
        r = rows[k]
        a = edges[panel[k]]
        half = 0.5 * (t[k] - a)
        for j in range(_N_GL):
            out[i, j] = math.exp(x_lo[r] + (a + half * (1.0 + GL_X[j])) * length[r])
        out[i, _N_GL] = math.exp(x_lo[r] + (t[k] - DIFF_STEP) * length[r])
        out[i, _N_GL + 1] = math.exp(x_lo[r] + (t[k] + DIFF_STEP) * length[r])
        out[i, _N_GL + 2] = math.exp(x_lo[r] + t[k] * length[r])
    return out


@jit
def quantile_step(
    t: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    done: BoolArray,
    active: IntArray,
    lp: FloatArray,
    panel: IntArray,
    rows: IntArray,
    need: FloatArray,
    edges: FloatArray,
    x_lo: FloatArray,
    length: FloatArray,
    ref: FloatArray,
    v1: FloatArray,
    moments: FloatArray,
    prec0: float,
    m0c: FloatArray,
    const: FloatArray,
) -> int:
    """One bracketed Halley step on t for the ``active`` quantiles; returns how many remain.

    ``lp`` holds log p(τ) at the nodes of :func:`quantile_nodes`.  The partial integral is the
    root's function, the integrand its derivative and the integrand's central difference its
    curvature, all from the one pass over the 23 nodes.
    """
    left = 0
    for i in range(active.size):
        k = active[i]
        r = rows[k]
        a = edges[panel[k]]
        half = 0.5 * (t[k] - a)
        ln = length[r]
        vr, mr = v1[r], moments[r]
        acc = 0.0
        for j in range(_N_GL):
            x = x_lo[r] + (a + half * (1.0 + GL_X[j])) * ln
            g = _integrand(x, lp[i, j], vr, mr, prec0, m0c[r], const[r])
            acc += math.exp(g - ref[r]) * GL_W[j]
        f_m = _integrand(
            x_lo[r] + (t[k] - DIFF_STEP) * ln, lp[i, _N_GL], vr, mr, prec0, m0c[r], const[r]
        )
        f_p = _integrand(
            x_lo[r] + (t[k] + DIFF_STEP) * ln, lp[i, _N_GL + 1], vr, mr, prec0, m0c[r], const[r]
        )
        f_t = _integrand(x_lo[r] + t[k] * ln, lp[i, _N_GL + 2], vr, mr, prec0, m0c[r], const[r])
        part = half * ln * acc
        dens = math.exp(f_t - ref[r]) * ln
        curv = (math.exp(f_p - ref[r]) - math.exp(f_m - ref[r])) * (ln / (2 * DIFF_STEP))
        t[k], lo[k], hi[k], stop = newton_update(
            t[k], lo[k], hi[k], part - need[k], dens, curv, True, _T_XTOL, _T_ACCEPT
        )
        done[k] = stop
        left += not stop
    return left
