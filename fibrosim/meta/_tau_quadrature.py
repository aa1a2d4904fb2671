"""Adaptive quadrature of the marginal posterior of τ, shared by a batch of meta-analyses.

The integrand is g(x) = log[τ · p(τ) · m(y | τ)] on x = log τ (the τ Jacobian included), where
m(y | τ) is the closed-form likelihood with μ integrated out.  Each meta-analysis gets a window
[x_l, x_r] found by a coarse scan (g, and g + 2x when E[τ²] exists, fall 50 log units below
their maxima outside it) and mapped to t in [0, 1]; Gauss-Kronrod (7, 15) panels on t are split
until |K15 - G7| < 1e-8 × total on every panel for every meta-analysis (the 15-point sums are
then accurate to ~1e-15), so one set of nodes serves the batch.  Below τ_lo = exp(x_l) the
mass m(y | 0) · P(τ < τ_lo) is added in closed form.  The integrand's pieces (the likelihood
with μ integrated out, the prior, their tails) are in :mod:`fibrosim.meta._tau_integrand`;
:mod:`fibrosim.meta._tau_single` runs these steps for one meta-analysis as compiled kernels;
the τ quantiles are compiled Halley solves (:mod:`fibrosim.meta._tau_kernels`) for any batch.

References
----------
Röver C. J Stat Softw 2020;93(6):1-51, Sec. 2 (m(y | τ), conditional moments of μ).
Piessens R et al. QUADPACK. Springer 1983 (qk15 nodes and weights).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from fibrosim.meta._tau_integrand import (
    _check_proper,
    _Data,
    _inverse_mass_below,
    _log_integrand,
    _log_integrand_tau,
    _log_prior,
    _log_prior_inside,
    _loglik,
    _make_data,
    _mass_below,
    _moment_exists,
    _subset,
)
from fibrosim.meta._tau_kernels import (
    GL_W,
    GL_X,
    quantile_nodes,
    quantile_start,
    quantile_step,
    quantile_values,
)
from fibrosim.meta.priors import Jeffreys, MuPrior, TauPrior
from fibrosim.warnings import ConvergenceWarning, FragileEstimateWarning

__all__ = ["TauGrid", "build_tau_grid", "conditional_moments"]

FloatArray = NDArray[np.float64]

# QUADPACK qk15: Kronrod abscissae (positive half, last is 0) and weights, Gauss-7 weights
_XGK = np.array([
    0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
    0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
    0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
    0.207784955007898467600689403773245, 0.0,
])  # fmt: skip
_WGK = np.array([
    0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
    0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
    0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
    0.204432940075298892414161999234649, 0.209482141084727828012999174891714,
])  # fmt: skip
_WG = np.array([
    0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
    0.381830050505118944950369775488975, 0.417959183673469387755102040816327,
])  # fmt: skip
_NODES = np.concatenate([-_XGK[:-1], _XGK[::-1]])  # 15 nodes, ascending
_WK = np.concatenate([_WGK[:-1], _WGK[::-1]])
_CUM_WK = np.concatenate([[0.0], np.cumsum(_WK)[:-1]])  # left cell edges (×2) of the nodes
_GAUSS_IDX = np.array([1, 3, 5, 7, 9, 11, 13])  # the Gauss-7 nodes among the 15
_WG7 = np.concatenate([_WG[:-1], _WG[::-1]])

_DROP = 50.0  # log units below the maximum at which the integrand is negligible (e^-50)
# |K15 - G7| per panel, relative to the total.  This estimates the error of the 7-point rule;
# the 15-point sums are far more accurate: against a 1e-14 refinement the summaries of the test
# cases (Crins, eight schools; half-normal, half-Cauchy, log-t, flat priors) agree to < 2e-15
_PANEL_TOL = 1e-8
_MAX_PANELS = 4000
_QUARTER_RATIO = 1e3  # a panel this far above _PANEL_TOL is split into 4 rather than 2
# the integrand is scaled by its maximum on the coarse scan; a node above that by more than
# this (a peak narrower than the scan's spacing: thousands of precise studies) moves the scale
# to the node, so that the scaled values stay far from overflow (e^300 ~ 1e130)
_REF_SLACK = 300.0
_SCAN = 49  # coarse scan points per window
_SCAN_S = np.linspace(0.0, 1.0, _SCAN)  # scan points on [0, 1]
_SCAN_S.setflags(write=False)
_START_EDGES = np.linspace(0.0, 1.0, 9)
_START_PANELS = np.stack([_START_EDGES[:-1], _START_EDGES[1:]], axis=1)  # 8 equal panels
_START_PANELS.setflags(write=False)


@dataclass(slots=True)
class TauGrid:
    """Quadrature representation of p(τ | y) for B meta-analyses (flat batch)."""

    data: _Data
    prior: TauPrior
    mu_prior: MuPrior
    edges: FloatArray  # (P + 1,) panel edges on t in [0, 1]
    x_lo: FloatArray  # (B,)
    length: FloatArray  # (B,) x_r - x_l
    ref: FloatArray  # (B,) log scale of the integrand (its maximum on the scan)
    panel_mass: FloatArray  # (B, P) in units of exp(ref)
    lower_mass: FloatArray  # (B,) mass below tau_lo, same units
    total: FloatArray  # (B,) lower + sum of panels
    tau_nodes: FloatArray  # (B, 1 + 15P): τ = 0 first (the lower piece), then the nodes
    weights: FloatArray  # (B, 1 + 15P), normalised
    cond_mean: FloatArray  # (B, 1 + 15P) E[μ | τ, y]
    cond_sd: FloatArray  # (B, 1 + 15P) sd[μ | τ, y]
    log_lik_at_zero: FloatArray  # (B,) log m(y | τ = 0)
    _exists: dict[int, NDArray[np.bool_]] = field(default_factory=dict)  # moment_exists cache

    @property
    def size(self) -> int:
        """Number of meta-analyses."""
        return int(self.x_lo.shape[0])

    @property
    def yi(self) -> FloatArray:
        """Effects (B, K), NaN-padded."""
        return np.where(self.data.mask > 0, self.data.y0, np.nan)

    @property
    def vi(self) -> FloatArray:
        """Variances (B, K), NaN-padded."""
        return self.data.vi

    @property
    def log_evidence(self) -> FloatArray:
        """Log ∫ p(τ) m(y | τ) dτ."""
        return np.asarray(self.ref + np.log(self.total))

    # -- integrand -------------------------------------------------------------------------
    def _g(self, x: FloatArray, rows: NDArray[np.intp] | None = None) -> FloatArray:
        d = self.data if rows is None else _subset(self.data, rows)
        return _log_integrand(self.prior, d, x)

    def moment_exists(self, order: int) -> NDArray[np.bool_]:
        """Whether E[τ^order | y] is finite (from the tails of prior and likelihood)."""
        if order not in self._exists:
            self._exists[order] = _moment_exists(self.prior, self.mu_prior, self.data.k, order)
        return self._exists[order]

    # -- distribution functions -------------------------------------------------------------
    def logpdf(self, tau: FloatArray) -> FloatArray:
        """Log p(τ | y) for τ of shape (B, Q)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            ll, _, _ = _loglik(self.data, tau**2)
            lp = _log_prior(self.prior, tau, self.data)
        out = lp + ll - self.log_evidence[:, None]
        return np.where(tau < 0, -np.inf, out)

    def _partial(
        self, t: FloatArray, panel: NDArray[np.intp], rows: NDArray[np.intp]
    ) -> FloatArray:
        """∫ from the panel's left edge to t (flat arrays), in units of exp(ref).

        20-point Gauss-Legendre on [a, t]: the integrand is smooth within a panel.
        """
        a = self.edges[panel]
        half = 0.5 * (t - a)
        nodes = a[:, None] + half[:, None] * (1.0 + GL_X[None, :])
        x = self.x_lo[rows, None] + nodes * self.length[rows, None]
        g = _log_integrand(self.prior, self._data_rows(rows), x)
        f = np.exp(g - self.ref[rows, None])
        return np.asarray(half * self.length[rows] * (f @ GL_W))

    def _data_rows(self, rows: NDArray[np.intp]) -> _Data:
        """The data of ``rows``; no copy when they are all rows in order (the common case)."""
        if rows.size == self.size and (
            rows.size == 1 or np.array_equal(rows, np.arange(rows.size))
        ):  # (one meta-analysis: its only row is row 0)
            return self.data
        return _subset(self.data, rows)

    def _locate(self, tau: FloatArray) -> tuple[FloatArray, NDArray[np.intp], NDArray[np.intp]]:
        b, q = tau.shape
        rows = np.repeat(np.arange(b), q)
        with np.errstate(divide="ignore"):
            t = (np.log(tau.ravel()) - self.x_lo[rows]) / self.length[rows]
        panel = np.clip(np.searchsorted(self.edges, t, side="right") - 1, 0, len(self.edges) - 2)
        return t, panel, rows

    def cdf(self, tau: FloatArray, *, upper: bool = False) -> FloatArray:
        """P(τ ≤ value) (or P(τ > value) with ``upper``) for τ of shape (B, Q)."""
        t, panel, rows = self._locate(tau)
        cum = np.concatenate(
            [
                self.lower_mass[:, None],
                self.lower_mass[:, None] + np.cumsum(self.panel_mass, axis=1),
            ],
            axis=1,
        )
        out = np.empty(t.shape)
        inside = (t > 0) & (t < 1)
        below = ~inside & (t <= 0)
        above = ~inside & ~below
        if np.any(inside):
            r, p = rows[inside], panel[inside]
            part = self._partial(t[inside], p, r)
            if upper:
                out[inside] = (self.total[r] - cum[r, p] - part) / self.total[r]
            else:
                out[inside] = (cum[r, p] + part) / self.total[r]
        if np.any(below):
            r = rows[below]
            tb = tau.ravel()[below]
            scale = np.exp(self.log_lik_at_zero[r] - self.ref[r]) / self.total[r]
            lowcdf = np.where(
                tb <= 0,
                0.0,
                _mass_below(self.prior, np.maximum(tb, 0)[:, None], _subset(self.data, r))[:, 0]
                * scale,
            )
            lowcdf = np.minimum(lowcdf, self.lower_mass[r] / self.total[r])
            out[below] = 1.0 - lowcdf if upper else lowcdf
        out[above] = 0.0 if upper else 1.0
        return out.reshape(tau.shape)

    def quantile(self, q: FloatArray) -> FloatArray:
        """τ quantiles for probabilities q of shape (B, Q), each in (0, 1).

        Inside the window: bracketed Halley steps on t within the panel holding the quantile,
        compiled (:mod:`fibrosim.meta._tau_kernels`) except the prior, evaluated per step at
        the nodes of the partial integrals.  Below it: the closed-form lower piece inverted.
        """
        b, nq = q.shape
        rows = np.repeat(np.arange(b), nq)
        d = self.data
        low, panel, need, t, lo, hi, active = quantile_start(
            q.ravel(), rows, self.total, self.lower_mass, self.panel_mass, self.weights,
            _CUM_WK, _WK, self.edges,
        )  # fmt: skip
        vi = d.vi if isinstance(self.prior, Jeffreys) else None
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for _ in range(200):
                if active.size == 0:
                    break
                tau = quantile_nodes(t, active, panel, rows, self.edges, self.x_lo, self.length)
                lp = _log_prior_inside(self.prior, tau, None if vi is None else vi[rows[active]])
                active = quantile_step(
                    t, lo, hi, active, lp, panel, rows, need, self.edges, self.x_lo,
                    self.length, self.ref, d.v1, d.moments, d.prec0, d.m0c, d.const,
                )  # fmt: skip
            else:  # pragma: no cover - the bisection fallback converges in < 200 steps
                raise RuntimeError("tau quantile did not converge in 200 bracketed Newton steps.")
        out = quantile_values(t, low, rows, self.x_lo, self.length)
        if low.any():
            r = rows[low]
            mass = need[low] / np.exp(self.log_lik_at_zero[r] - self.ref[r])
            out[low] = _inverse_mass_below(self.prior, mass, d, r)
        return out.reshape(q.shape)

    def tau_moments(self) -> tuple[FloatArray, FloatArray]:
        """Posterior mean and sd of τ (inf where they do not exist)."""
        mean = np.sum(self.weights * self.tau_nodes, axis=1)
        var = np.sum(self.weights * (self.tau_nodes - mean[:, None]) ** 2, axis=1)
        mean = np.where(self.moment_exists(1), mean, np.inf)
        sd = np.where(self.moment_exists(2), np.sqrt(var), np.inf)
        return mean, sd

    def mode(self) -> FloatArray:
        """Posterior mode of τ: best node refined by golden-section search on log density."""
        # the quadrature weights carry the Kronrod factors and the τ Jacobian, so compare the
        # exact log density at the nodes instead
        tau = self.tau_nodes[:, 1:]
        lp = self.logpdf(tau)
        best = np.argmax(lp, axis=1)
        n = tau.shape[1]
        lo = tau[np.arange(self.size), np.maximum(best - 1, 0)]
        hi = tau[np.arange(self.size), np.minimum(best + 1, n - 1)]
        lo = np.where(best == 0, 0.0, lo)
        ratio = (math.sqrt(5) - 1) / 2
        for _ in range(100):
            c = hi - ratio * (hi - lo)
            e = lo + ratio * (hi - lo)
            fc = self.logpdf(c[:, None])[:, 0]
            fe = self.logpdf(e[:, None])[:, 0]
            left = fc >= fe
            hi = np.where(left, e, hi)
            lo = np.where(left, lo, c)
        mode = 0.5 * (lo + hi)
        at_zero = self.logpdf(np.zeros((self.size, 1)))[:, 0] >= self.logpdf(mode[:, None])[:, 0]
        return np.where(at_zero, 0.0, mode)


def conditional_moments(grid: TauGrid, tau: FloatArray) -> tuple[FloatArray, FloatArray]:
    """E[μ | τ, y] and sd[μ | τ, y] at τ of shape (B, n)."""
    _, mean, var = _loglik(grid.data, tau**2)
    return mean, np.sqrt(var)


def _check_total(total: FloatArray, k: FloatArray) -> None:
    """Raise rather than return NaN summaries when the integral of p(τ) m(y | τ) is not finite.

    The integrand is scaled by the largest value seen (scan, then refinement nodes), so this
    guards against an integrand that is itself infinite or NaN somewhere, not against a scale.
    """
    bad = ~np.isfinite(total)
    if bad.any():
        idx = int(np.argmax(bad))
        raise RuntimeError(
            f"the tau quadrature failed for the meta-analysis at index {idx} "
            f"(k = {int(k[idx])}): the integral of prior times likelihood is not finite."
        )


def build_tau_grid(y: FloatArray, v: FloatArray, prior: TauPrior, mu_prior: MuPrior) -> TauGrid:
    """Build the quadrature of p(τ | y) for B meta-analyses (y, v of shape (B, K))."""
    d = _make_data(y, v, mu_prior)
    k = d.k
    _check_proper(prior, mu_prior, k)
    b = y.shape[0]
    # fmin/fmax skip NaN padding like nanmin/nanmax (every row has a study: checked above),
    # as single ufunc reductions
    vmin = np.fmin.reduce(v, axis=1)
    vmax = np.fmax.reduce(v, axis=1)
    spread = np.fmax.reduce(y, axis=1) - np.fmin.reduce(y, axis=1)
    low, high = prior.support
    scale = prior.typical_scale
    tau_floor = np.minimum(1e-7 * np.sqrt(vmin), 1e-4 * scale)
    xa = np.log(np.maximum(tau_floor, low)) if low > 0 else np.log(tau_floor)
    top = np.log(np.maximum(np.maximum(np.sqrt(vmax), scale), spread + 1e-300)) + 60.0
    xb = np.minimum(top, math.log(high)) if math.isfinite(high) else top
    xb = np.maximum(xb, xa + 1.0)

    # coarse scan: where is the integrand (and τ² times it) non-negligible?
    xs = xa[:, None] + _SCAN_S[None, :] * (xb - xa)[:, None]
    # the likelihood at τ = 0 (for the closed-form mass below the window and the first mixture
    # node) shares the scan's evaluation: column 0 is τ² = 0, then the scan points; g is
    # assembled exactly as in _log_integrand_tau
    with np.errstate(over="ignore", invalid="ignore"):
        tau_s = np.exp(xs)
        tau2_s = np.empty((b, _SCAN + 1))
        tau2_s[:, 0] = 0.0
        np.multiply(tau_s, tau_s, out=tau2_s[:, 1:])
        ll_s, mean_s, var_s = _loglik(d, tau2_s)
    gs = xs + _log_prior(prior, tau_s, d, inside=True) + ll_s[:, 1:]
    gs = np.where(np.isnan(gs), -np.inf, gs)
    log_lik_at_zero = ll_s[:, 0]
    ib = np.arange(b)
    i_max = np.argmax(gs, axis=1)
    gmax = gs[ib, i_max]  # the maximum (g is never NaN: NaN became -inf)
    keep = gs > gmax[:, None] - _DROP
    second = _moment_exists(prior, mu_prior, k, 2)
    h = gs + 2 * xs
    keep_h = (h > h.max(axis=1)[:, None] - _DROP) & second[:, None]
    first = np.argmax(keep, axis=1)
    last_g = _SCAN - 1 - np.argmax(keep[:, ::-1], axis=1)
    last_h = np.where(keep_h.any(axis=1), _SCAN - 1 - np.argmax(keep_h[:, ::-1], axis=1), 0)
    last = np.maximum(last_g, last_h)
    i_lo = np.maximum(first - 1, 0)
    i_hi = np.minimum(last + 1, _SCAN - 1)
    x_lo = xs[ib, i_lo]
    x_hi = xs[ib, i_hi]
    truncated = (i_hi == _SCAN - 1) & (gs[:, -1] > gmax - 35.0) & ~(xb < top)
    if truncated.any():
        warnings.warn(
            f"the posterior of tau keeps non-negligible mass at the upper edge of the grid "
            f"(tau = {float(np.exp(x_hi[truncated][0])):.3g}) for {int(truncated.sum())} "
            f"meta-analysis(es): its tail is too heavy to integrate accurately "
            f"(tau_prior={prior!r}).",
            FragileEstimateWarning,
            stacklevel=3,
        )
    length = x_hi - x_lo
    ref = gmax
    tau_ref = np.exp(xs[ib, i_max])

    # adaptive Gauss-Kronrod panels on t in [0, 1], shared by the batch
    pending = _START_PANELS
    done_edges: list[FloatArray] = []
    done_f: list[FloatArray] = []
    done_k: list[FloatArray] = []
    done_mean: list[FloatArray] = []
    done_var: list[FloatArray] = []
    done_tau: list[FloatArray] = []
    total_est = np.zeros(b)
    total2 = np.zeros(b)
    n_panels = 0
    while pending.shape[0]:
        a, e = pending[:, 0], pending[:, 1]
        half = 0.5 * (e - a)
        t = (0.5 * (a + e))[:, None] + half[:, None] * _NODES[None, :]  # (P, 15)
        x = x_lo[:, None] + t.reshape(1, -1) * length[:, None]  # (B, 15P)
        g_new, mean_new, var_new, tau_new = _log_integrand_tau(prior, d, x)
        g_top = g_new.max(axis=1)
        bump = g_top > ref + _REF_SLACK
        if bump.any():  # a peak the coarse scan stepped over: rescale to its height
            new_ref = np.where(bump, g_top, ref)
            rescale = np.exp(ref - new_ref)
            for part in done_f:
                part *= rescale[:, None, None]
            for part in done_k:
                part *= rescale[:, None]
            total_est *= rescale
            total2 *= rescale
            ref = new_ref
        f = np.exp(g_new - ref[:, None]).reshape(b, -1, 15)
        mean_new = mean_new.reshape(b, -1, 15)
        var_new = var_new.reshape(b, -1, 15)
        tau_new = tau_new.reshape(b, -1, 15)
        scale_p = half[None, :] * length[:, None]
        kron = scale_p * (f @ _WK)
        gauss = scale_p * (f[:, :, _GAUSS_IDX] @ _WG7)
        # the τ²-weighted integrand (for E[τ²]), τ taken relative to the scan's peak
        ft2 = f * (tau_new / tau_ref[:, None, None]) ** 2
        kron2 = scale_p * (ft2 @ _WK)
        gauss2 = scale_p * (ft2[:, :, _GAUSS_IDX] @ _WG7)
        tot = total_est + kron.sum(axis=1)
        tot2 = total2 + kron2.sum(axis=1)
        err = np.abs(kron - gauss) / tot[:, None]
        err2 = np.where(second[:, None], np.abs(kron2 - gauss2) / tot2[:, None], 0.0)
        worst = np.fmax.reduce(np.maximum(err, err2), axis=0)  # nanmax, as one ufunc call
        split = worst > _PANEL_TOL
        if not split.any():
            # the last pass: every panel is final, so keep the arrays whole (no selection
            # copies); n_panels stays within _MAX_PANELS, checked when these were made
            done_edges.append(pending)
            done_f.append(f)
            done_mean.append(mean_new)
            done_var.append(var_new)
            done_tau.append(tau_new)
            done_k.append(kron)
            break
        n_panels += int((~split).sum())
        n_new = int(np.where(worst[split] > _PANEL_TOL * _QUARTER_RATIO, 4, 2).sum())
        if n_panels + n_new > _MAX_PANELS:
            warnings.warn(
                f"tau quadrature stopped at {_MAX_PANELS} panels before reaching its tolerance.",
                ConvergenceWarning,
                stacklevel=3,
            )
            split[:] = False
        keep_p = ~split
        done_edges.append(pending[keep_p])
        done_f.append(f[:, keep_p, :])
        done_mean.append(mean_new[:, keep_p, :])
        done_var.append(var_new[:, keep_p, :])
        done_tau.append(tau_new[:, keep_p, :])
        done_k.append(kron[:, keep_p])
        total_est += kron[:, keep_p].sum(axis=1)
        total2 += kron2[:, keep_p].sum(axis=1)
        # halving a panel cuts the Kronrod-Gauss difference ~1e3-fold or more (G7's error
        # goes like width^15), so a panel that far above the tolerance is cut into 4 at once,
        # saving a refinement pass; the stopping rule is unchanged
        parts = np.where(worst[split] > _PANEL_TOL * _QUARTER_RATIO, 4, 2)
        a_s, w_s = a[split], (e - a)[split] / parts
        j = np.arange(parts.sum()) - np.repeat(np.cumsum(parts) - parts, parts)
        w_rep = np.repeat(w_s, parts)
        left = np.repeat(a_s, parts) + j * w_rep
        last = j == np.repeat(parts, parts) - 1  # the last piece ends exactly on e
        right = np.where(last, np.repeat(e[split], parts), left + w_rep)
        pending = np.empty((left.size, 2))
        pending[:, 0], pending[:, 1] = left, right

    panels = np.concatenate(done_edges, axis=0)
    order = np.argsort(panels[:, 0])
    panels = panels[order]
    n_p = panels.shape[0]
    pos = np.empty(n_p, dtype=np.intp)
    pos[order] = np.arange(n_p)  # sorted place of each finished panel, in finishing order
    k_all = np.concatenate(done_k, axis=1)[:, order]
    edges = np.concatenate([panels[:, 0], panels[-1:, 1]])

    # mass below tau_lo in closed form: m(y | τ) = m(y | 0)(1 + O(τ²/v))
    if low > 0 and (x_lo <= math.log(low) + 1e-12).all():
        lower = np.zeros(b)
    else:
        below = _mass_below(prior, np.exp(x_lo)[:, None], d)[:, 0]
        lower = below * np.exp(log_lik_at_zero - ref)
    total = lower + k_all.sum(axis=1)
    _check_total(total, k)

    # mixture nodes: τ = 0 carries the lower piece, then the Kronrod nodes in panel order;
    # each pass's finished panels are written straight to their sorted place (no concatenate
    # and reorder copies of the (B, 15P) arrays)
    done_w = []
    for edges_p, f_p in zip(done_edges, done_f, strict=True):
        half_p = 0.5 * (edges_p[:, 1] - edges_p[:, 0])
        done_w.append((f_p * (half_p[None, :, None] * _WK[None, None, :])) * length[:, None, None])

    def assemble(first: FloatArray, parts: list[FloatArray]) -> FloatArray:
        out = np.empty((b, 1 + 15 * n_p))
        out[:, 0] = first
        body = out[:, 1:].reshape(b, n_p, 15)  # a view: splits the contiguous last axis
        start = 0
        for piece in parts:
            body[:, pos[start : start + piece.shape[1]], :] = piece
            start += piece.shape[1]
        return out

    # the nodes' τ as evaluated during refinement (same arithmetic as recomputing them)
    tau_nodes = assemble(np.zeros(b), done_tau)
    weights = assemble(lower, done_w) / total[:, None]
    cond_mean = assemble(mean_s[:, 0], done_mean)
    cond_sd = np.sqrt(assemble(var_s[:, 0], done_var))
    return TauGrid(
        data=d,
        prior=prior,
        mu_prior=mu_prior,
        edges=edges,
        x_lo=x_lo,
        length=length,
        ref=ref,
        panel_mass=k_all,
        lower_mass=lower,
        total=total,
        tau_nodes=tau_nodes,
        weights=weights,
        cond_mean=cond_mean,
        cond_sd=cond_sd,
        log_lik_at_zero=log_lik_at_zero,
        _exists={2: second},
    )
