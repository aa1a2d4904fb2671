"""The τ quadrature of one meta-analysis: :func:`build_tau_grid` step for step, compiled.

For a batch the numpy version shares one node set across the meta-analyses and its arrays are
large; for one analysis the same steps on arrays of tens to hundreds of nodes are dominated by
numpy's per-call overhead.  Here each step between two evaluations of the prior (a numpy call,
the one definition of every prior density) is one kernel of :mod:`fibrosim.meta._tau_kernels`:
the scan and its window, the Kronrod sums and error estimates of a refinement pass, the
splitting of panels and the assembly of the mixture nodes.  Scan, window, tolerances, panel
splitting and the closed-form lower piece are those of :func:`build_tau_grid`: on the same
analysis both refine the same panels and agree to rounding (≤ 1e-13 of a posterior sd in the
tests); in a batch the panels are those its most demanding analysis needs, finer, and the two
agree to the quadrature's accuracy.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from fibrosim.meta._tau_kernels import assemble, panel_nodes, panel_pass, scan_window
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
    _check_proper,
    _check_total,
    _Data,
    _log_prior_inside,
    _make_data,
    _mass_below,
    _moment_exists,
)
from fibrosim.meta.priors import Jeffreys, MuPrior, TauPrior
from fibrosim.warnings import ConvergenceWarning, FragileEstimateWarning

__all__ = ["build_single_tau_grid"]

_Buffers = tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]


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
    cap = 64
    done = _buffers(cap)
    n_done = 0
    sums = np.zeros(2)  # running totals of the finished panels' Kronrod sums (f, τ²·f)
    while pending.shape[0]:
        if n_done + pending.shape[0] > cap:
            cap = 2 * (n_done + pending.shape[0])
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
