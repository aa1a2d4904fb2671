"""Compiled pieces of the τ quadrature (:mod:`fibrosim.meta._tau_quadrature`).

The integrand g(x) = x + log p(e^x) + log m(y | e^x) is evaluated at tens to hundreds of nodes
per meta-analysis, in a data-dependent number of passes (panel refinement, Halley steps of the
τ quantiles).  For one meta-analysis the per-call overhead of numpy on such small arrays is
most of the time, so the likelihood, the data preparation and the τ quantile solve are
compiled (:mod:`fibrosim._jit`); the one-analysis refinement's own kernels are in
:mod:`fibrosim.meta._tau_single`.  The prior stays a numpy call on the nodes of a pass (one
definition of every prior density): a kernel places the nodes, Python evaluates the prior
there, and the next kernel finishes the pass.

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
    "data_rows",
    "loglik_nodes",
    "quantile_nodes",
    "quantile_start",
    "quantile_step",
    "quantile_values",
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
def loglik_nodes(
    v1: FloatArray,
    moments: FloatArray,
    prec0: float,
    m0c: float,
    const: float,
    tau2: FloatArray,
    ll: FloatArray,
    mhat: FloatArray,
    var: FloatArray,
) -> None:
    """Log m(y | τ), E[μ | τ, y] - centre and Var[μ | τ, y] of one analysis at each τ².

    The weighted sums S0 = Σw, S1 = Σw·y, S2 = Σw·y² of the centred y over the valid studies
    (each node's sums in study order, as the numpy rows form them), with the μ prior as a
    pseudo-study.  Studies are the outer loop so that the nodes run in SIMD lanes, and log det
    = log Π(vᵢ + τ²) takes one log per block of studies (the logs were most of the cost): a
    block holds as many factors as keep the product inside [e^-690, e^690] at every node.
    Results go to ``ll``, ``mhat`` and ``var``.
    """
    n = tau2.size
    kk = v1.size
    if n == 0:
        return
    v_lo = math.inf
    v_hi = 0.0
    for j in range(kk):
        if moments[j, 0] > 0:
            v_lo = min(v_lo, v1[j])
            v_hi = max(v_hi, v1[j])
    t_lo = math.inf
    t_hi = 0.0
    for i in range(n):
        t_lo = min(t_lo, tau2[i])
        t_hi = max(t_hi, tau2[i])
    span = max(abs(math.log(v_hi + t_hi)), abs(math.log(v_lo + t_lo)), 1.0)
    block = max(1, min(int(690.0 / span), kk)) if math.isfinite(span) else 1
    s0 = np.zeros(n)
    s1 = np.zeros(n)
    s2 = np.zeros(n)
    logdet = np.zeros(n)
    prod = np.empty(n)
    for j0 in range(0, kk, block):
        prod[:] = 1.0
        for j in range(j0, min(j0 + block, kk)):
            vj = v1[j]
            mj = moments[j, 0]
            yj = moments[j, 1]
            y2j = moments[j, 2]
            for i in range(n):
                big_v = vj + tau2[i]
                w = mj / big_v  # 1 / (v + τ²) for a study, 0 for padding
                s0[i] += w
                s1[i] += w * yj
                s2[i] += w * y2j
                prod[i] *= big_v if mj > 0 else 1.0
        for i in range(n):
            logdet[i] += math.log(prod[i])
    for i in range(n):
        a0, a1, a2 = s0[i], s1[i], s2[i]
        if prec0 > 0:
            a0 += prec0
            a1 += prec0 * m0c
            a2 += prec0 * m0c * m0c
        mh = a1 / a0
        q = a2 - a1 * mh
        if q < 0:  # (rounding; NaN stays NaN as in np.maximum)
            q = 0.0
        ll[i] = -0.5 * (const + logdet[i] + q + math.log(a0))
        mhat[i] = mh
        var[i] = 1.0 / a0


@jit
def data_rows(
    y: FloatArray, v: FloatArray, m0: float, prec0: float, log_var0: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray,
           FloatArray]:  # fmt: skip
    """The arrays of :class:`~fibrosim.meta._tau_quadrature._Data` from NaN-padded y, v (B, K).

    Returns y0 (NaN -> 0), v1 (NaN -> 1), mask, k, the centre (mean of the valid y), moments
    (mask, mask·(y - centre), mask·(y - centre)²), the likelihood's constant (k_eff - 1)·log 2π
    (+ log sd0²; k_eff counts the μ prior as a study) and m0 - centre.
    """
    b, kk = y.shape
    y0 = np.empty((b, kk))
    v1 = np.empty((b, kk))
    mask = np.empty((b, kk))
    k = np.empty(b)
    centre = np.empty(b)
    moments = np.empty((b, kk, 3))
    const = np.empty(b)
    m0c = np.empty(b)
    log_2pi = math.log(2 * math.pi)
    for i in range(b):
        n = 0.0
        total = 0.0
        for j in range(kk):
            valid = not math.isnan(y[i, j])
            mask[i, j] = 1.0 if valid else 0.0
            y0[i, j] = y[i, j] if valid else 0.0
            v1[i, j] = v[i, j] if valid else 1.0
            n += mask[i, j]
            total += y0[i, j]
        k[i] = n
        c = total / max(n, 1.0)
        centre[i] = c
        for j in range(kk):
            yc = (y0[i, j] - c) * mask[i, j]
            moments[i, j, 0] = mask[i, j]
            moments[i, j, 1] = yc
            moments[i, j, 2] = yc * yc
        if prec0 > 0:
            const[i] = n * log_2pi + log_var0
        else:
            const[i] = (n - 1.0) * log_2pi
        m0c[i] = m0 - c
    return y0, v1, mask, k, centre, moments, const, m0c


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
) -> tuple[BoolArray, IntArray, FloatArray, FloatArray, FloatArray, FloatArray, IntArray]:
    """Panel, mass still needed inside it, start and bracket on t of each quantile.

    ``low`` marks quantiles inside the closed-form piece below the window (their ``need`` is
    the whole target mass).  The start spreads the panel's Kronrod node masses evenly over
    cells whose widths are the Kronrod weights (a step-function density) and inverts that
    exactly; the bracket is the panel.  Returns low, panel, need, t0, lo, hi and the indices
    of the quantiles to solve.
    """
    n = q.size
    n_p = panel_mass.shape[1]
    low = np.zeros(n, dtype=np.bool_)
    panel = np.zeros(n, dtype=np.intp)
    need = np.empty(n)
    t0 = np.full(n, np.nan)
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    active = np.empty(n, dtype=np.intp)
    n_active = 0
    for i in range(n):
        r = rows[i]
        target = q[i] * total[r]  # in units of exp(ref)
        need[i] = target
        if target <= lower_mass[r]:
            low[i] = True
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
        t0[i] = min(max(start, a), e)
        lo[i], hi[i] = a, e
        active[n_active] = i
        n_active += 1
    return low, panel, need, t0, lo, hi, active[:n_active]


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
) -> IntArray:
    """One bracketed Halley step on t for the ``active`` quantiles; returns those left active.

    ``lp`` holds log p(τ) at the nodes of :func:`quantile_nodes`.  The partial integral is the
    root's function, the integrand its derivative and the integrand's central difference its
    curvature, all from the one pass over the 23 nodes.
    """
    left = np.empty(active.size, dtype=np.intp)
    n_left = 0
    m = _N_GL + 3
    x = np.empty(m)
    tau2 = np.empty(m)
    ll = np.empty(m)
    mh = np.empty(m)
    vv = np.empty(m)
    for i in range(active.size):
        k = active[i]
        r = rows[k]
        a = edges[panel[k]]
        half = 0.5 * (t[k] - a)
        ln = length[r]
        # the nodes as quantile_nodes placed them: Gauss-Legendre on [a, t], t - h, t + h, t
        for j in range(_N_GL):
            x[j] = x_lo[r] + (a + half * (1.0 + GL_X[j])) * ln
        x[_N_GL] = x_lo[r] + (t[k] - DIFF_STEP) * ln
        x[_N_GL + 1] = x_lo[r] + (t[k] + DIFF_STEP) * ln
        x[_N_GL + 2] = x_lo[r] + t[k] * ln
        for j in range(m):
            tau = math.exp(x[j])
            tau2[j] = tau * tau
        loglik_nodes(v1[r], moments[r], prec0, m0c[r], const[r], tau2, ll, mh, vv)
        for j in range(m):  # f = exp(g - ref), 0 where g is NaN
            g = x[j] + lp[i, j] + ll[j]
            x[j] = 0.0 if math.isnan(g) else math.exp(g - ref[r])
        acc = 0.0
        for j in range(_N_GL):
            acc += x[j] * GL_W[j]
        part = half * ln * acc
        dens = x[_N_GL + 2] * ln
        curv = (x[_N_GL + 1] - x[_N_GL]) * (ln / (2 * DIFF_STEP))
        t[k], lo[k], hi[k], stop = newton_update(
            t[k], lo[k], hi[k], part - need[k], dens, curv, True, _T_XTOL, _T_ACCEPT
        )
        if not stop:
            left[n_left] = k
            n_left += 1
    return left[:n_left]


@jit
def quantile_values(
    t: FloatArray, low: BoolArray, rows: IntArray, x_lo: FloatArray, length: FloatArray
) -> FloatArray:
    """τ = exp(x_lo + t·length) of the solved quantiles (NaN for the ``low`` ones)."""
    out = np.empty(t.size)
    for i in range(t.size):
        r = rows[i]
        out[i] = np.nan if low[i] else math.exp(x_lo[r] + t[i] * length[r])
    return out
