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
    "assemble",
    "data_rows",
    "loglik_nodes",
    "panel_nodes",
    "panel_pass",
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


# -- one analysis: the grid ---------------------------------------------------------------------
# The steps of build_tau_grid for B = 1, each a kernel between the prior's numpy evaluations.
@jit
def scan_window(
    xs: FloatArray,
    lp: FloatArray,
    v1: FloatArray,
    moments: FloatArray,
    prec0: float,
    m0c: float,
    const: float,
    second: bool,
    drop: float,
) -> tuple[float, float, float, int, int, int, float, float]:
    """The coarse scan: log m(y | 0) with its μ moments, and the window's scan indices.

    Returns ll0, mean0 - centre, var0, i_lo, i_hi, i_max, gmax and g at the last scan point.
    The window holds the points where g (and g + 2x when E[τ²] exists) is within ``drop`` of
    its maximum, widened by one scan step on each side.
    """
    n = xs.size
    tau2 = np.empty(n + 1)  # τ = 0, then the scan points
    tau2[0] = 0.0
    for i in range(n):
        tau = math.exp(xs[i])
        tau2[i + 1] = tau * tau
    ll = np.empty(n + 1)
    mh = np.empty(n + 1)
    vv = np.empty(n + 1)
    loglik_nodes(v1, moments, prec0, m0c, const, tau2, ll, mh, vv)
    ll0, mean0, var0 = ll[0], mh[0], vv[0]
    gs = np.empty(n)
    i_max = 0
    for i in range(n):
        g = xs[i] + lp[i] + ll[i + 1]
        gs[i] = -math.inf if math.isnan(g) else g
        if gs[i] > gs[i_max]:  # the first maximum, as argmax
            i_max = i
    gmax = gs[i_max]
    hmax = -math.inf
    for i in range(n):
        hmax = max(hmax, gs[i] + 2 * xs[i])
    first = -1
    last_g = -1
    last_h = -1
    for i in range(n):
        if gs[i] > gmax - drop:
            if first < 0:
                first = i
            last_g = i
        if second and gs[i] + 2 * xs[i] > hmax - drop:
            last_h = i
    # (no point kept: argmax of an all-False row is 0, so first = 0 and last = n - 1)
    first = max(first, 0)
    last_g = n - 1 if last_g < 0 else last_g
    last = max(last_g, max(last_h, 0))
    i_lo = max(first - 1, 0)
    i_hi = min(last + 1, n - 1)
    return ll0, mean0, var0, i_lo, i_hi, i_max, gmax, gs[n - 1]


@jit
def panel_nodes(
    pending: FloatArray, nodes: FloatArray, x_lo: float, length: float
) -> tuple[FloatArray, FloatArray]:
    """Log τ and τ at the 15 Kronrod nodes of each pending panel (each of shape (P, 15))."""
    p = pending.shape[0]
    x = np.empty((p, 15))
    tau = np.empty((p, 15))
    for i in range(p):
        a, e = pending[i, 0], pending[i, 1]
        half = 0.5 * (e - a)
        mid = 0.5 * (a + e)
        for j in range(15):
            x[i, j] = x_lo + (mid + half * nodes[j]) * length
            tau[i, j] = math.exp(x[i, j])
    return x, tau


@jit
def panel_pass(
    pending: FloatArray,
    x: FloatArray,
    tau: FloatArray,
    lp: FloatArray,
    wk: FloatArray,
    wg7: FloatArray,
    v1: FloatArray,
    moments: FloatArray,
    prec0: float,
    m0c: float,
    const: float,
    centre: float,
    length: float,
    ref: float,
    tau_ref: float,
    second: bool,
    sums: FloatArray,
    tol: float,
    quarter: float,
    max_panels: int,
    done: tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray],
    n_done: int,
    slack: float,
) -> tuple[FloatArray, int, bool, float]:
    """One refinement pass over the pending panels; returns the next ones.

    Evaluates f = exp(g - ref) (``lp`` = log p(τ) at the nodes), E[μ | τ, y] and Var[μ | τ, y]
    at the nodes, the Kronrod and Gauss sums of f and of the τ²-weighted f (τ relative to the
    scan's peak) and each panel's error: |K15 - G7| relative to the running totals ``sums``
    (updated in place), the larger of the two integrands'.  Panels within ``tol`` are final
    and written to the ``done`` buffers (panels, f, mean, var, τ, Kronrod sum) from row
    ``n_done`` on; the others are cut into 2 (4 when ``quarter`` times above ``tol``).  If the
    cuts would exceed ``max_panels`` finished panels, every panel is kept as it is and the
    flag returned is True.  If g exceeds ``ref`` by more than ``slack`` at a node (a peak the
    coarse scan stepped over), ``ref`` becomes that maximum and the finished panels and sums
    are rescaled to it.  Returns the next pending panels, the new ``n_done``, the flag and
    ``ref``.
    """
    p = pending.shape[0]
    f = np.empty((p, 15))
    mean = np.empty((p, 15))
    var = np.empty((p, 15))
    kron = np.empty(p)
    kron2 = np.empty(p)
    gauss = np.empty(p)
    gauss2 = np.empty(p)
    tau2 = np.empty((p, 15))
    for i in range(p):
        for j in range(15):
            tau2[i, j] = tau[i, j] * tau[i, j]
    ll = np.empty((p, 15))
    loglik_nodes(
        v1, moments, prec0, m0c, const, tau2.ravel(), ll.ravel(), mean.ravel(), var.ravel()
    )
    g_top = -math.inf
    for i in range(p):
        for j in range(15):
            g = x[i, j] + lp[i, j] + ll[i, j]
            ll[i, j] = -math.inf if math.isnan(g) else g  # (ll now holds g)
            g_top = max(g_top, ll[i, j])
    if g_top > ref + slack:
        scale = math.exp(ref - g_top)
        for i in range(n_done):
            done[1][i] *= scale
            done[5][i] *= scale
        sums *= scale
        ref = g_top
    tot = sums[0]
    tot2 = sums[1]
    for i in range(p):
        scale_p = 0.5 * (pending[i, 1] - pending[i, 0]) * length
        k1 = 0.0
        k2 = 0.0
        g1 = 0.0
        g2 = 0.0
        for j in range(15):
            t = tau[i, j]
            fj = math.exp(ll[i, j] - ref)
            f[i, j] = fj
            mean[i, j] += centre
            r = t / tau_ref
            ft2 = fj * (r * r)
            k1 += fj * wk[j]
            k2 += ft2 * wk[j]
            if j % 2 == 1:  # the Gauss-7 nodes are the odd ones among the 15
                g1 += fj * wg7[j // 2]
                g2 += ft2 * wg7[j // 2]
        kron[i] = scale_p * k1
        kron2[i] = scale_p * k2
        gauss[i] = scale_p * g1
        gauss2[i] = scale_p * g2
        tot += kron[i]
        tot2 += kron2[i]
    parts = np.zeros(p, dtype=np.intp)
    n_keep = 0
    n_new = 0
    for i in range(p):
        err = abs(kron[i] - gauss[i]) / tot
        err2 = abs(kron2[i] - gauss2[i]) / tot2 if second else 0.0
        worst = err2 if (err2 > err or math.isnan(err2)) else err  # NaN wins, as np.maximum
        if worst > tol:  # False for NaN
            parts[i] = 4 if worst > tol * quarter else 2
            n_new += parts[i]
        else:
            n_keep += 1
    capped = n_new > 0 and (n_done + n_keep) + n_new > max_panels
    if capped:
        parts[:] = 0
        n_new = 0
    d_panels, d_f, d_mean, d_var, d_tau, d_kron = done
    nxt = np.empty((n_new, 2))
    k = 0
    for i in range(p):
        if parts[i] == 0:
            d_panels[n_done] = pending[i]
            d_f[n_done] = f[i]
            d_mean[n_done] = mean[i]
            d_var[n_done] = var[i]
            d_tau[n_done] = tau[i]
            d_kron[n_done] = kron[i]
            sums[0] += kron[i]
            sums[1] += kron2[i]
            n_done += 1
        else:  # equal parts; the last one ends exactly on the panel's right edge
            a, e = pending[i, 0], pending[i, 1]
            width = (e - a) / parts[i]
            for j in range(parts[i]):
                left = a + j * width
                nxt[k, 0] = left
                nxt[k, 1] = e if j == parts[i] - 1 else left + width
                k += 1
    return nxt, n_done, capped, ref


@jit
def assemble(
    panels: FloatArray,
    f: FloatArray,
    mean: FloatArray,
    var: FloatArray,
    tau: FloatArray,
    kron: FloatArray,
    wk: FloatArray,
    length: float,
    lower: float,
    mean0: float,
    var0: float,
) -> tuple[FloatArray, FloatArray, float, FloatArray, FloatArray, FloatArray, FloatArray]:
    """The finished panels in order: edges, panel masses, total and the mixture's nodes.

    Node 0 is τ = 0 carrying the mass below the window; then the Kronrod nodes panel by panel.
    Returns edges (P + 1,), panel masses (P,), the total mass, τ, the normalised weights,
    E[μ | τ, y] and sd[μ | τ, y] at the nodes (each (1 + 15P,)).
    """
    p = panels.shape[0]
    order = np.argsort(panels[:, 0])
    edges = np.empty(p + 1)
    panel_mass = np.empty(p)
    total = lower
    for i in range(p):
        edges[i] = panels[order[i], 0]
        panel_mass[i] = kron[order[i]]
        total += panel_mass[i]
    edges[p] = panels[order[p - 1], 1]
    n = 1 + 15 * p
    tau_n = np.empty(n)
    w = np.empty(n)
    m = np.empty(n)
    sd = np.empty(n)
    tau_n[0] = 0.0
    w[0] = lower / total
    m[0] = mean0
    sd[0] = math.sqrt(var0)
    for i in range(p):
        o = order[i]
        half = 0.5 * (panels[o, 1] - panels[o, 0])
        for j in range(15):
            c = 1 + 15 * i + j
            tau_n[c] = tau[o, j]
            w[c] = (f[o, j] * (half * wk[j])) * length / total
            m[c] = mean[o, j]
            sd[c] = math.sqrt(var[o, j])
    return edges, panel_mass, total, tau_n, w, m, sd
