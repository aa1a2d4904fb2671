"""Exact (quadrature) posterior of the binomial-normal random-effects model for control arms.

Model (RBesT's ``gMAP(cbind(r, n - r) ~ 1 | study, family = binomial)``)::

    r_j ~ Bin(n_j, expit θ_j),   θ_j ~ N(μ, τ²),   μ ~ N(m0, s0²),   τ ~ tau_prior.

The posterior of (μ, τ) is computed without MCMC by nested quadrature:

* τ: composite Gauss-Legendre on the prior-probability scale u = F(τ), so that dτ p(τ) = du and
  every proper τ prior (light or heavy tailed) maps to the unit interval; the last panel is
  split geometrically towards u = 1, where τ(u) has a logarithmic (half-normal) or algebraic
  (half-Cauchy) singularity.
* μ given τ: adaptive Gauss-Hermite quadrature centred at the conditional mode with the
  conditional curvature (log p(μ | τ) is concave), so the nodes follow the posterior from the
  narrow τ → 0 end to the wide τ tail.
* θ_j given (μ, τ): adaptive Gauss-Hermite per study (:mod:`fibrosim.meta._binomial_kernels`).

The result is a set of weighted nodes (μ_i, τ_i, W_i).  A new study's logit rate
θ_new ~ N(μ, τ²) then has the CDF Σ_t π_t G_t(c) with G_t(c) = E[Φ((c − μ)/τ_t) | τ_t].  Where
τ_t is not small against the spread of μ given τ_t, Φ((c − μ)/τ_t) is smooth on the scale of the
μ nodes and the node sum is accurate.  Where it is small the node sum would be a staircase, so
G_t(c) = E_Z[F_t(c − τ_t Z)] is used instead, with F_t the CDF of μ given τ_t tabulated on a fine
grid (cumulative Simpson rule on the exact density) and Z integrated by Gauss-Hermite.
p_new = expit(θ_new).

References
----------
Neuenschwander B, Capkun-Niggli G, Branson M, Spiegelhalter DJ. Summarizing historical
information on controls in clinical trials. Clin Trials 2010;7(1):5-18.

Weber S, Li Y, Seaman JW, Kakizume T, Schmidli H. Applying meta-analytic-predictive priors with
the R Bayesian evidence synthesis tools. J Stat Softw 2021;100(19) (``gMAP``).

Liu Q, Pierce DA. A note on Gauss-Hermite quadrature. Biometrika 1994;81(3):624-629.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import special
from scipy.integrate import cumulative_simpson

from fibrosim._checks import as_float_array, check_in_interval, check_integer
from fibrosim.meta._binomial_kernels import (
    conditional_mu_modes,
    log_likelihood_grid,
    node_mixture_cdf,
)
from fibrosim.meta._tau_prior_base import TauPrior
from fibrosim.meta.priors import HalfNormal, Normal

__all__ = ["BinomialMAPPosterior", "binomial_map_posterior"]

FloatArray = NDArray[np.float64]

# nodes whose posterior weight is below this fraction of the total are dropped from the
# predictive: at most ~10^4 of them, so they move any probability by < 1e-12
_DROP = 1e-16
# Gauss-Hermite nodes for E[expit(μ + τZ)] and E[expit²]: the integrand is smooth in Z with a
# transition of width ~1/τ; 80 nodes integrate it to < 1e-12 for τ up to the 10s
_GH_MOMENTS = np.polynomial.hermite.hermgauss(80)


#: RBesT's defaults for a binary endpoint: HalfNormal(0, 1) on τ, N(0, 2²) on the mean logit
DEFAULT_TAU_PRIOR = HalfNormal(1.0)
DEFAULT_MU_PRIOR = Normal(0.0, 2.0)


def _check_counts(events: ArrayLike, n: ArrayLike) -> tuple[FloatArray, FloatArray]:
    r = check_integer("events", events, minimum=0)
    m = check_integer("n", n, minimum=1)
    for name, arr in (("events", r), ("n", m)):
        if arr.ndim > 1:
            raise ValueError(f"`{name}` must be 1-D (one entry per study); got shape {arr.shape}.")
    r, m = np.atleast_1d(r), np.atleast_1d(m)
    if r.size == 0:
        raise ValueError("`events` must hold at least one study; got none.")
    if r.shape != m.shape:
        raise ValueError(f"`events` and `n` must have the same length; got {r.size} and {m.size}.")
    over = r > m
    if np.any(over):
        i = int(np.flatnonzero(over)[0])
        raise ValueError(f"`events` must lie in [0, n]; got {r[i]:g} > n = {m[i]:g} at index {i}.")
    return r, m


def _check_priors(tau_prior: Any, mu_prior: Any) -> None:
    if not isinstance(tau_prior, TauPrior):
        raise TypeError(
            "`tau_prior` must be a tau prior from fibrosim.meta.priors (e.g. HalfNormal(1.0)); "
            f"got {tau_prior!r}."
        )
    if not tau_prior.proper:
        raise ValueError(
            f"`tau_prior` must be proper (the binomial MAP needs its quantile); got {tau_prior!r}."
        )
    if not isinstance(mu_prior, Normal):
        raise TypeError(
            "`mu_prior` must be a Normal prior on the logit-scale mean "
            f"(fibrosim.meta.priors.Normal); got {mu_prior!r}."
        )


def _tau_rule(tau_prior: TauPrior, panels: int, order: int) -> tuple[FloatArray, FloatArray]:
    """Nodes in τ and weights in u = F(τ).

    Uniform panels on [0, 1 − 1/panels], then panels halving in width towards 1 until they are
    below 1e-15.
    """
    last = 1.0 - 1.0 / panels
    edges = [float(v) for v in np.linspace(0.0, last, panels + 1)]
    gap = 1.0 / panels
    while gap > 1e-15:
        gap *= 0.5
        edges.append(1.0 - gap)
    e = np.asarray(edges)
    x, w = np.polynomial.legendre.leggauss(order)
    half = 0.5 * np.diff(e)
    mid = 0.5 * (e[1:] + e[:-1])
    u = (mid[:, None] + half[:, None] * x).ravel()
    wu = (half[:, None] * w).ravel()
    tau = np.asarray(tau_prior.quantile(u), dtype=np.float64)
    keep = tau > 0  # a prior with an atom-free density has τ > 0 inside (0, 1)
    return tau[keep], wu[keep]


# τ nodes with τ < _SMALL · sd(μ | τ) get the tabulated-CDF treatment (see the module notes)
_SMALL = 1.0
# the table of μ | τ spans its mean ± _SPAN sd: μ | τ is log-concave, so
# P(|μ − mean| > t·sd) <= e^(1−t), here < 4e-11
_SPAN = 25.0
_TABLE = 2049  # grid points: spacing 0.025 sd; cumulative Simpson error ~1e-12
_GH_Z = np.polynomial.hermite.hermgauss(20)  # E_Z[F_t(c − τZ)] with τ < sd: F_t smooth in Z


def _cubic_hermite(
    x: FloatArray, x0: FloatArray, h: FloatArray, f: FloatArray, d: FloatArray
) -> FloatArray:
    """Cubic Hermite interpolation of the rows of tables ``f`` (values), ``d`` (derivatives).

    Row t lives on the uniform grid x0[t] + h[t]·i; ``x`` has shape (rows, ...) and is clipped
    to each grid.
    """
    g = f.shape[1]
    shape = x.shape
    xr = x.reshape(shape[0], -1)
    pos = np.clip((xr - x0[:, None]) / h[:, None], 0.0, g - 1.0)
    i = np.minimum(pos.astype(np.intp), g - 2)
    t = pos - i
    rows = np.arange(shape[0])[:, None]
    f0, f1 = f[rows, i], f[rows, i + 1]
    d0, d1 = d[rows, i] * h[:, None], d[rows, i + 1] * h[:, None]
    t2, t3 = t * t, t * t * t
    out = (
        (2 * t3 - 3 * t2 + 1) * f0
        + (t3 - 2 * t2 + t) * d0
        + (-2 * t3 + 3 * t2) * f1
        + (t3 - t2) * d1
    )
    return np.asarray(out.reshape(shape))


@dataclass(frozen=True, slots=True, repr=False)
class BinomialMAPPosterior:
    """Posterior of the binomial-normal model as weighted quadrature nodes.

    Attributes
    ----------
    events, n : ndarray
        Responders and patients per study.
    tau_prior, mu_prior :
        The priors (τ on the logit scale; μ is the mean logit).
    tau : ndarray, shape (T,)
        τ nodes.
    mu : ndarray, shape (T, M)
        μ nodes at each τ node (adaptive Gauss-Hermite around the conditional mode).
    weights : ndarray, shape (T, M)
        Normalised posterior weights: any posterior expectation is
        ``sum(weights * g(mu, tau[:, None]))``.
    small : ndarray of bool, shape (T,)
        τ nodes whose predictive contribution uses the tabulated CDF of μ | τ.
    table_start, table_step : ndarray, shape (S,)
        Grids of those tables (S = small.sum()).
    table_cdf, table_pdf : ndarray, shape (S, G)
        CDF and density of μ | τ on the grids.
    """

    events: FloatArray
    n: FloatArray
    tau_prior: TauPrior
    mu_prior: Normal
    tau: FloatArray
    mu: FloatArray
    weights: FloatArray
    small: NDArray[np.bool_]
    table_start: FloatArray
    table_step: FloatArray
    table_cdf: FloatArray
    table_pdf: FloatArray

    # -- posterior of (μ, τ) ---------------------------------------------------------------
    def _moments(self, values: FloatArray) -> tuple[float, float]:
        mean = float(np.sum(self.weights * values))
        var = float(np.sum(self.weights * (values - mean) ** 2))
        return mean, float(np.sqrt(var))

    @property
    def mu_mean(self) -> float:
        """Posterior mean of μ (logit scale)."""
        return self._moments(self.mu)[0]

    @property
    def mu_sd(self) -> float:
        """Posterior standard deviation of μ."""
        return self._moments(self.mu)[1]

    @property
    def tau_mean(self) -> float:
        """Posterior mean of τ."""
        return self._moments(np.broadcast_to(self.tau[:, None], self.mu.shape))[0]

    @property
    def tau_sd(self) -> float:
        """Posterior standard deviation of τ."""
        return self._moments(np.broadcast_to(self.tau[:, None], self.mu.shape))[1]

    # -- predictive of a new study -------------------------------------------------------------
    def _logit_cdf_pdf(self, c: FloatArray) -> tuple[FloatArray, FloatArray]:
        big = ~self.small
        w = self.weights[big].ravel()
        live = w > _DROP  # nodes below 1e-16 each move no probability we could see
        cdf, pdf = node_mixture_cdf(
            c,
            self.mu[big].ravel()[live],
            np.broadcast_to(self.tau[big][:, None], self.mu[big].shape).ravel()[live],
            w[live],
        )
        if np.any(self.small):
            x, wz = _GH_Z
            pis = self.weights[self.small].sum(axis=1)
            taus = self.tau[self.small]
            # c − τ_t √2 x_k for every small node t, point c and Hermite node k
            pts = c[None, :, None] - taus[:, None, None] * (np.sqrt(2.0) * x)
            f = _cubic_hermite(
                pts, self.table_start, self.table_step, self.table_cdf, self.table_pdf
            )
            pdf_t = self._table_pdf(pts)
            scale = pis[:, None] / np.sqrt(np.pi)
            cdf = cdf + np.sum(scale * (f @ wz), axis=0)
            pdf = pdf + np.sum(scale * (pdf_t @ wz), axis=0)
        return cdf, pdf

    def _table_pdf(self, pts: FloatArray) -> FloatArray:
        shape = pts.shape
        flat = pts.reshape(shape[0], -1)
        g = self.table_pdf.shape[1]
        pos = np.clip((flat - self.table_start[:, None]) / self.table_step[:, None], 0.0, g - 1.0)
        i = np.minimum(pos.astype(np.intp), g - 2)
        t = pos - i
        rows = np.arange(shape[0])[:, None]
        out = (1 - t) * self.table_pdf[rows, i] + t * self.table_pdf[rows, i + 1]
        return np.asarray(out.reshape(shape))

    def predictive_logit_cdf(self, theta: ArrayLike) -> FloatArray:
        """P(θ_new ≤ ``theta``) for a new study's logit rate θ_new ~ N(μ, τ²)."""
        t = as_float_array("theta", theta)
        cdf, _ = self._logit_cdf_pdf(np.ascontiguousarray(t.ravel()))
        return np.asarray(np.clip(cdf, 0.0, 1.0).reshape(t.shape))

    def predictive_cdf(self, p: ArrayLike) -> FloatArray:
        """P(p_new ≤ ``p``) for a new study's response rate p_new = expit(θ_new)."""
        pa = check_in_interval("p", p, 0.0, 1.0)
        inner = (pa > 0) & (pa < 1)
        out = np.where(pa >= 1.0, 1.0, 0.0)
        if np.any(inner):
            out[inner] = self.predictive_logit_cdf(special.logit(pa[inner]))
        return out

    def predictive_quantile(self, q: ArrayLike) -> FloatArray:
        """Quantiles of p_new for probabilities ``q`` in (0, 1).

        The predictive CDF and density are tabulated on the logit scale (2049 points within
        12 SDs of the mean, plus 256 geometrically spaced points per tail that reaches further,
        as heavy-tailed τ priors make it) and the quantiles read off the cubic Hermite
        interpolant of that table (error ~1e-8 in probability), which costs a fraction of a
        root search per probability.
        """
        qa = check_in_interval("q", q, 0.0, 1.0, closed="neither")
        flat = qa.ravel()
        taus = np.broadcast_to(self.tau[:, None], self.mu.shape)
        mean = float(np.sum(self.weights * self.mu))
        sd = float(np.sqrt(np.sum(self.weights * (taus**2 + (self.mu - mean) ** 2))))
        reach = []  # how many SDs each tail needs to hold the extreme q
        for sign, target in ((-1.0, float(flat.min())), (1.0, float(flat.max()))):
            k = 12.0
            for _ in range(40):
                end, _ = self._logit_cdf_pdf(np.array([mean + sign * k * sd]))
                if (end[0] < target) if sign < 0 else (end[0] > target):
                    break
                k *= 2.0
            else:
                raise ValueError(
                    f"`q` = {target:g} lies beyond the tabulated predictive tail "
                    f"({k:g} SDs from the mean)."
                )
            reach.append(k)
        core = np.linspace(mean - 12.0 * sd, mean + 12.0 * sd, 2049)
        tails = [
            mean + sign * sd * 12.0 * (k / 12.0) ** np.linspace(0.0, 1.0, 257)[1:]
            for sign, k in zip((-1.0, 1.0), reach, strict=True)
            if k > 12.0
        ]
        left = [t[::-1] for t in tails if t[0] < mean]
        right = [t for t in tails if t[0] > mean]
        grid = np.concatenate([*left, core, *right])
        cdf, pdf = self._logit_cdf_pdf(grid)
        cdf = np.maximum.accumulate(cdf)
        i = np.clip(np.searchsorted(cdf, flat, side="right") - 1, 0, grid.size - 2)
        h = grid[i + 1] - grid[i]
        # solve the cubic Hermite interpolant = q on [grid_i, grid_i+1] by Newton from the
        # linear interpolant (monotone on the interval: the density is positive)
        f0, f1, d0, d1 = cdf[i], cdf[i + 1], pdf[i] * h, pdf[i + 1] * h
        t = np.clip((flat - f0) / np.maximum(f1 - f0, 1e-300), 0.0, 1.0)
        for _ in range(8):
            t2, t3 = t * t, t * t * t
            val = (
                (2 * t3 - 3 * t2 + 1) * f0
                + (t3 - 2 * t2 + t) * d0
                + (-2 * t3 + 3 * t2) * f1
                + (t3 - t2) * d1
            )
            slope = (6 * t2 - 6 * t) * f0 + (3 * t2 - 4 * t + 1) * d0 + (-6 * t2 + 6 * t) * f1
            slope = slope + (3 * t2 - 2 * t) * d1
            t = np.clip(t - (val - flat) / np.maximum(slope, 1e-300), 0.0, 1.0)
        theta = grid[i] + t * h
        return np.asarray(special.expit(theta).reshape(qa.shape))

    def _expit_moment(self, power: int) -> float:
        x, w = _GH_MOMENTS
        z = np.sqrt(2.0) * x
        vals = special.expit(self.mu[..., None] + self.tau[:, None, None] * z) ** power
        return float(np.sum(self.weights * (vals @ w)) / np.sqrt(np.pi))

    @property
    def predictive_mean(self) -> float:
        """E[p_new]: the MAP prior's mean response rate."""
        return self._expit_moment(1)

    @property
    def predictive_sd(self) -> float:
        """SD of p_new."""
        m = self._expit_moment(1)
        return float(np.sqrt(self._expit_moment(2) - m * m))

    def to_dataframe(self) -> pd.DataFrame:
        """Mean and SD of μ, τ and p_new, with p_new's 2.5 %, 50 % and 97.5 % quantiles."""
        q = self.predictive_quantile([0.025, 0.5, 0.975])
        nan = float("nan")
        rows = {
            "mu": [self.mu_mean, self.mu_sd, nan, nan, nan],
            "tau": [self.tau_mean, self.tau_sd, nan, nan, nan],
            "p_new": [self.predictive_mean, self.predictive_sd, *map(float, q)],
        }
        return pd.DataFrame.from_dict(
            rows, orient="index", columns=["mean", "sd", "q2.5", "q50", "q97.5"]
        )

    def __repr__(self) -> str:
        df = self.to_dataframe()
        body = df.to_string(float_format=lambda v: f"{v:.5g}", na_rep="")
        return (
            f"BinomialMAPPosterior(k = {self.events.size} studies, tau_prior = "
            f"{self.tau_prior!r}, mu_prior = {self.mu_prior!r})\n{body}"
        )


def binomial_map_posterior(
    events: ArrayLike,
    n: ArrayLike,
    *,
    tau_prior: TauPrior = DEFAULT_TAU_PRIOR,
    mu_prior: Normal = DEFAULT_MU_PRIOR,
    tau_panels: int = 24,
    tau_order: int = 8,
    mu_nodes: int = 32,
    theta_nodes: int = 48,
) -> BinomialMAPPosterior:
    """Posterior of (μ, τ) of the binomial-normal random-effects model by quadrature.

    Parameters
    ----------
    events, n : array_like
        Responders and patients in each historical (control) arm; whole numbers with
        0 <= events <= n and n >= 1.
    tau_prior : TauPrior
        Proper prior on the between-study SD of the logit rates; ``HalfNormal(1.0)`` is RBesT's
        recommended default for binary endpoints.
    mu_prior : Normal
        Prior on the mean logit rate.
    tau_panels, tau_order : int
        Uniform panels on the prior-probability scale of τ and Gauss-Legendre nodes per panel.
    mu_nodes, theta_nodes : int
        Adaptive Gauss-Hermite nodes for μ given τ and for each study's θ given (μ, τ).

    Returns
    -------
    BinomialMAPPosterior

    Raises
    ------
    ValueError, TypeError
        For counts that are not whole numbers with 0 <= events <= n, n >= 1, of equal length
        >= 1, and for priors of the wrong type.

    Notes
    -----
    Accuracy, measured against the same computation with twice the τ panels and 1.5 times the
    μ and θ nodes: predictive CDF within 2e-11 and posterior moments within 1e-13 on RBesT's AS
    data; against a brute-force tensor grid on a three-study case, within 1e-8 (CDF) and 2e-7
    (moments).  Arms with 0 or n responders are the hard case: at large τ their θ integrand is
    lopsided (flat over several τ on one side, steep on the other), which a curvature-scaled
    Gauss-Hermite rule resolves slowly; 48 θ nodes (the default) keep two all-zero arms within
    2e-9 in the CDF and 2e-8 in the moments, where 24 nodes gave 4e-7 and 3e-6.
    """
    r, m = _check_counts(events, n)
    _check_priors(tau_prior, mu_prior)
    tp = int(check_integer("tau_panels", tau_panels, minimum=2))
    to = int(check_integer("tau_order", tau_order, minimum=2))
    mn = int(check_integer("mu_nodes", mu_nodes, minimum=2))
    tn = int(check_integer("theta_nodes", theta_nodes, minimum=2))

    xt, wt = np.polynomial.hermite.hermgauss(tn)
    lwt = np.log(wt)
    xm, wm = np.polynomial.hermite.hermgauss(mn)
    taus, w_u = _tau_rule(tau_prior, tp, to)
    m0, s0 = float(mu_prior.mean), float(mu_prior.sd)
    pooled = float(special.logit((r.sum() + 0.5) / (m.sum() + 1.0)))
    modes, scales = conditional_mu_modes(r, m, taus, m0, s0, pooled, xt, lwt)
    mus = modes[:, None] + np.sqrt(2.0) * scales[:, None] * xm
    loglik = log_likelihood_grid(r, m, mus, taus, xt, lwt)
    z = (mus - m0) / s0
    # log p(μ | τ) + log p(data | τ) up to a constant, times the node weights; p(τ) dτ = du
    log_w = (
        np.log(w_u)[:, None]
        + np.log(np.sqrt(2.0) * scales)[:, None]
        + (np.log(wm) + xm**2)
        - 0.5 * z * z
        + loglik
    )
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    keep = w.sum(axis=1) > _DROP  # τ nodes with no posterior mass
    w, mus, taus = w[keep], mus[keep], taus[keep]
    w /= w.sum()

    pis = w.sum(axis=1)
    cond_mean = (w * mus).sum(axis=1) / pis
    cond_sd = np.sqrt((w * (mus - cond_mean[:, None]) ** 2).sum(axis=1) / pis)
    small = taus < _SMALL * cond_sd
    start = cond_mean[small] - _SPAN * cond_sd[small]
    step = 2.0 * _SPAN * cond_sd[small] / (_TABLE - 1)
    grid = start[:, None] + step[:, None] * np.arange(_TABLE)
    zg = (grid - m0) / s0
    log_p = log_likelihood_grid(r, m, grid, taus[small], xt, lwt) - 0.5 * zg * zg
    dens = np.exp(log_p - log_p.max(axis=1, keepdims=True))
    cum = cumulative_simpson(dens, dx=step[:, None], axis=1, initial=0.0)
    total = cum[:, -1:]
    return BinomialMAPPosterior(
        r, m, tau_prior, mu_prior, taus, mus, w, small, start, step, cum / total, dens / total
    )
