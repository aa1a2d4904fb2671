"""The τ quadrature of one meta-analysis: :func:`build_tau_grid` step for step, compiled.

For a batch the numpy version shares one node set across the meta-analyses and its arrays are
large; for one analysis the same steps on arrays of tens to hundreds of nodes are dominated by
numpy's per-call overhead.  Here each step between two evaluations of the prior (a numpy call,
the one definition of every prior density) is one compiled kernel (:mod:`fibrosim._jit`, the
likelihood from :mod:`fibrosim.meta._tau_kernels`): the scan and its window, a refinement pass
with its Kronrod sums, error estimates and panel splits, and the assembly of the mixture
nodes.  Scan, window, tolerances, panel
splitting and the closed-form lower piece are those of :func:`build_tau_grid`: on the same
analysis both refine the same panels and agree to rounding (≤ 1e-13 of a posterior sd in the
tests); in a batch the panels are those its most demanding analysis needs, finer, and the two
agree to the quadrature's accuracy.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from fibrosim._jit import jit
from fibrosim.meta._tau_integrand import (
    _check_proper,
    _Data,
    _log_prior_inside,
    _make_data,
    _mass_below,
    _moment_exists,
)
from fibrosim.meta._tau_kernels import loglik_nodes
from fibrosim.meta._tau_quadrature import (
    _DROP,
    _MAX_PANELS,
    _NODES,
    _PANEL_TOL,
    _QUARTER_RATIO,
    _REF_SLACK,
    _SCAN,
    _SCAN_S,
    _START_PANELS,
    _WG7,
    _WK,
    FloatArray,
    TauGrid,
    _check_total,
)
from fibrosim.meta.priors import Jeffreys, MuPrior, TauPrior
from fibrosim.warnings import ConvergenceWarning, FragileEstimateWarning

__all__ = ["build_single_tau_grid"]

_Buffers = tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]
_CAPACITY = 64  # finished panels the buffers hold at first (typical analyses need 10-30)


def _buffers(cap: int) -> _Buffers:
    """Finished panels: edges (cap, 2), f, mean, var, τ (cap, 15) and Kronrod sums (cap,)."""
    return (
        np.empty((cap, 2)),
        np.empty((cap, 15)),
        np.empty((cap, 15)),
        np.empty((cap, 15)),
        np.empty((cap, 15)),
        np.empty(cap),
    )


def _grow(old: _Buffers, n: int, cap: int) -> _Buffers:
    """Buffers of ``cap`` panels holding the first ``n`` of ``old``."""
    new = _buffers(cap)
    for a, b in zip(new, old, strict=True):
        a[:n] = b[:n]
    return new


def _mass_below_window(prior: TauPrior, tau: float, d: _Data) -> float:
    """∫_0^τ p(t) dt at the window's lower end τ (> the support's lower end).

    For a proper prior this is its CDF, evaluated directly when τ is inside the support (the
    public ``cdf`` validates and masks its input, which costs more than the value here).
    """
    low, high = prior.support
    if prior.proper and low < tau < high:
        return float(prior._cdf_pos(np.array([tau]))[0])
    return float(_mass_below(prior, np.array([[tau]]), d)[0, 0])


# -- kernels: the steps of build_tau_grid for B = 1, each between two evaluations of the prior --
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


def build_single_tau_grid(
    y: FloatArray, v: FloatArray, prior: TauPrior, mu_prior: MuPrior
) -> TauGrid:
    """Build the quadrature of p(τ | y) for one meta-analysis (y, v of shape (1, K))."""
    # one error-state context for every evaluation of the prior (overflow to ±inf and log 0
    # far in the tails are meant: the integrand is 0 there)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _build(y, v, prior, mu_prior)


def _build(y: FloatArray, v: FloatArray, prior: TauPrior, mu_prior: MuPrior) -> TauGrid:
    d = _make_data(y, v, mu_prior)
    k = d.k
    _check_proper(prior, mu_prior, k)
    vi = d.vi if isinstance(prior, Jeffreys) else None  # Jeffreys' density needs the vi
    v1, moments = d.v1[0], d.moments[0]
    prec0, m0c, const, centre = d.prec0, float(d.m0c[0]), float(d.const[0]), float(d.centre[0])
    second_arr = _moment_exists(prior, mu_prior, k, 2)
    second = bool(second_arr[0])

    # the window, as build_tau_grid places it (fmin/fmax skip the NaN padding)
    row_v, row_y = v[0], y[0]
    vmin, vmax = float(np.fmin.reduce(row_v)), float(np.fmax.reduce(row_v))
    spread = float(np.fmax.reduce(row_y) - np.fmin.reduce(row_y))
    low, high = prior.support
    scale = prior.typical_scale
    tau_floor = min(1e-7 * math.sqrt(vmin), 1e-4 * scale)
    xa = math.log(max(tau_floor, low)) if low > 0 else math.log(tau_floor)
    top = math.log(max(max(math.sqrt(vmax), scale), spread + 1e-300)) + 60.0
    xb = min(top, math.log(high)) if math.isfinite(high) else top
    xb = max(xb, xa + 1.0)
    xs = xa + _SCAN_S * (xb - xa)
    lp = _log_prior_inside(prior, np.exp(xs)[None, :], vi)[0]
    ll0, mean0, var0, i_lo, i_hi, i_max, gmax, g_last = scan_window(
        xs, lp, v1, moments, prec0, m0c, const, second, _DROP
    )
    x_lo, x_hi = float(xs[i_lo]), float(xs[i_hi])
    if i_hi == _SCAN - 1 and g_last > gmax - 35.0 and not xb < top:
        warnings.warn(
            f"the posterior of tau keeps non-negligible mass at the upper edge of the grid "
            f"(tau = {math.exp(x_hi):.3g}) for 1 meta-analysis(es): its tail is too heavy to "
            f"integrate accurately (tau_prior={prior!r}).",
            FragileEstimateWarning,
            stacklevel=4,
        )
    length = x_hi - x_lo
    ref = gmax
    tau_ref = math.exp(float(xs[i_max]))

    # adaptive Gauss-Kronrod panels on t in [0, 1]; finished panels go to growing buffers
    pending: FloatArray = _START_PANELS
    cap = _CAPACITY
    done = _buffers(cap)
    n_done = 0
    sums = np.zeros(2)  # running totals of the finished panels' Kronrod sums (f, τ²·f)
    while pending.shape[0]:
        if n_done + pending.shape[0] > cap:
            cap = max(2 * cap, n_done + pending.shape[0])
            done = _grow(done, n_done, cap)
        x, tau = panel_nodes(pending, _NODES, x_lo, length)
        lp = _log_prior_inside(prior, tau, vi)
        pending, n_done, capped, ref = panel_pass(
            pending, x, tau, lp, _WK, _WG7, v1, moments, prec0, m0c, const, centre, length,
            ref, tau_ref, second, sums, _PANEL_TOL, _QUARTER_RATIO, _MAX_PANELS, done, n_done,
            _REF_SLACK,
        )  # fmt: skip
        if capped:
            warnings.warn(
                f"tau quadrature stopped at {_MAX_PANELS} panels before reaching its tolerance.",
                ConvergenceWarning,
                stacklevel=4,
            )

    # mass below tau_lo in closed form: m(y | τ) = m(y | 0)(1 + O(τ²/v))
    if low > 0 and x_lo <= math.log(low) + 1e-12:
        lower = 0.0
    else:
        lower = _mass_below_window(prior, math.exp(x_lo), d) * math.exp(ll0 - ref)
    panels, f, mean, var, tau, kron = (a[:n_done] for a in done)
    edges, panel_mass, total, tau_n, weights, cond_mean, cond_sd = assemble(
        panels, f, mean, var, tau, kron, _WK, length, lower, mean0 + centre, var0
    )
    if not math.isfinite(total):
        _check_total(np.array([total]), k)
    return TauGrid(
        data=d,
        prior=prior,
        mu_prior=mu_prior,
        edges=edges,
        x_lo=np.array([x_lo]),
        length=np.array([length]),
        ref=np.array([ref]),
        panel_mass=panel_mass[None, :],
        lower_mass=np.array([lower]),
        total=np.array([total]),
        tau_nodes=tau_n[None, :],
        weights=weights[None, :],
        cond_mean=cond_mean[None, :],
        cond_sd=cond_sd[None, :],
        log_lik_at_zero=np.array([ll0]),
        _exists={2: second_arr},
    )
