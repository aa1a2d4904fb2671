"""The integrand of the τ quadrature: the likelihood with μ integrated out, and the τ prior.

For a batch of meta-analyses (rows, NaN-padded studies) :func:`_loglik` gives log m(y | τ), the
closed-form marginal likelihood with μ integrated out (flat or normal μ prior), together with
E[μ | τ, y] and Var[μ | τ, y]; the prior helpers evaluate log p(τ) (Jeffreys' prior depends on
the sampling variances) and its mass below a point; the tail exponents decide which posterior
moments exist and whether the posterior is proper.  :mod:`fibrosim.meta._tau_quadrature`
integrates these; :mod:`fibrosim.meta._tau_single` and :mod:`fibrosim.meta._tau_kernels` hold
the compiled versions for one analysis and for the quantile solves.

References
----------
Röver C. J Stat Softw 2020;93(6):1-51, Sec. 2 (m(y | τ), conditional moments of μ).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fibrosim.meta._tau_kernels import data_rows
from fibrosim.meta.priors import Jeffreys, MuPrior, Normal, TauPrior, Uniform

FloatArray = NDArray[np.float64]

_CHUNK = 2_000_000  # elements of (rows, nodes, studies) temporaries


@dataclass(slots=True)
class _Data:
    y0: FloatArray  # (B, K) NaN -> 0
    v1: FloatArray  # (B, K) NaN -> 1
    mask: FloatArray  # (B, K) 1 valid, 0 padding
    vi: FloatArray  # (B, K) with NaN
    k: FloatArray  # (B,)
    m0: float
    prec0: float  # 1 / sd0² (0 for a flat μ prior)
    log_var0: float
    centre: FloatArray  # (B,) mean of the valid y
    moments: FloatArray  # (B, K, 3): mask, mask·(y - centre), mask·(y - centre)²
    const: FloatArray  # (B,) (k_eff - 1)·log 2π (+ log sd0²), k_eff counting the μ prior
    m0c: FloatArray  # (B,) m0 - centre


def _loglik(d: _Data, tau2: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Log m(y | τ), E[μ | τ, y], Var[μ | τ, y] for τ² of shape (B, n), chunked over rows.

    Uses the weighted sums S0 = Σw, S1 = Σw·y, S2 = Σw·y² of y centred at its mean (so that
    Q = S2 - S1²/S0 loses no digits to a common offset), plus the prior as a pseudo-study.
    """
    b, n = tau2.shape
    kk = d.y0.shape[1]
    step = max(1, _CHUNK // max(1, n * kk))
    if b <= step:
        return _loglik_rows(d, tau2)
    return _loglik_chunked(d, tau2, step)


def _loglik_chunked(
    d: _Data, tau2: FloatArray, step: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """:func:`_loglik` over chunks of ``step`` rows (bounded temporaries for large batches)."""
    b, n = tau2.shape
    ll = np.empty((b, n))
    mean = np.empty((b, n))
    var = np.empty((b, n))
    const, m0c = d.const, d.m0c
    for lo in range(0, b, step):
        sl = slice(lo, lo + step)
        big_v = d.v1[sl, None, :] + tau2[sl, :, None]
        w = 1.0 / big_v
        sums = np.matmul(w, d.moments[sl])  # (rows, n, 3): S0, S1, S2 over valid studies
        s0 = sums[..., 0] + d.prec0
        mc = m0c[sl, None]
        s1 = sums[..., 1] + d.prec0 * mc
        s2 = sums[..., 2] + d.prec0 * mc * mc
        mhat = s1 / s0
        q = np.maximum(s2 - s1 * mhat, 0.0)
        np.log(big_v, out=big_v)
        logdet = np.matmul(big_v, d.mask[sl, :, None])[..., 0]
        ll[sl] = -0.5 * (const[sl, None] + logdet + q + np.log(s0))
        mean[sl] = mhat + d.centre[sl, None]
        var[sl] = 1.0 / s0
    return ll, mean, var


def _loglik_rows(d: _Data, tau2: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """:func:`_loglik` in one pass (no chunking): the same operations, without the slicing.

    Bitwise equal to the chunked loop: with a flat μ prior (prec0 = 0) the pseudo-study's
    terms are exact zeros, and adding them changes nothing, so they are skipped.
    """
    big_v = d.v1[:, None, :] + tau2[:, :, None]
    w = 1.0 / big_v
    sums = np.matmul(w, d.moments)  # (B, n, 3): S0, S1, S2 over valid studies
    if d.prec0 > 0:
        s0 = sums[..., 0] + d.prec0
        mc = d.m0c[:, None]
        s1 = sums[..., 1] + d.prec0 * mc
        s2 = sums[..., 2] + d.prec0 * mc * mc
    else:
        s0, s1, s2 = sums[..., 0], sums[..., 1], sums[..., 2]
    mhat = s1 / s0
    q = np.maximum(s2 - s1 * mhat, 0.0)
    np.log(big_v, out=big_v)
    logdet = np.matmul(big_v, d.mask[:, :, None])[..., 0]
    ll = -0.5 * (d.const[:, None] + logdet + q + np.log(s0))
    return ll, mhat + d.centre[:, None], 1.0 / s0


def _log_prior(prior: TauPrior, tau: FloatArray, d: _Data, *, inside: bool = False) -> FloatArray:
    """Log prior density; ``inside=True`` promises 0 < τ inside the support (quadrature)."""
    if isinstance(prior, Jeffreys):
        with np.errstate(divide="ignore"):
            return Jeffreys.logpdf_given(tau, d.vi)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if inside:
            return prior._logpdf_pos(tau)
        return prior.logpdf(tau)


def _log_prior_inside(prior: TauPrior, tau: FloatArray, vi: FloatArray | None) -> FloatArray:
    """Log prior density at τ > 0 inside the support; Jeffreys' uses ``vi`` (rows of τ).

    Callers hold ``np.errstate(over=, invalid=, divide="ignore")`` (one context per solve:
    entering one costs as much as the prior's arithmetic on a few dozen nodes).
    """
    if vi is not None:
        return Jeffreys.logpdf_given(tau, vi)
    return prior._logpdf_pos(tau)


def _mass_below(prior: TauPrior, tau: FloatArray, d: _Data) -> FloatArray:
    """∫_0^τ p(t) dt per row (τ of shape (B, n)); exact or O(τ²) for the improper priors."""
    if isinstance(prior, Jeffreys):
        s = np.sqrt(np.nansum(d.vi**-2.0, axis=-1))
        return 0.5 * tau**2 * s[:, None]
    return prior._mass_below(tau)


def _inverse_mass_below(
    prior: TauPrior, mass: FloatArray, d: _Data, rows: NDArray[np.intp]
) -> FloatArray:
    if isinstance(prior, Jeffreys):
        s = np.sqrt(np.nansum(d.vi**-2.0, axis=-1))[rows]
        return np.sqrt(2.0 * mass / s)
    if isinstance(prior, Uniform) and not prior.proper:
        return prior.low + mass
    return prior.quantile(np.clip(mass, 0.0, 1.0))


def _make_data(y: FloatArray, v: FloatArray, mu_prior: MuPrior) -> _Data:
    if isinstance(mu_prior, Normal):
        m0, prec0, lv0 = mu_prior.mean, mu_prior.sd**-2.0, 2.0 * math.log(mu_prior.sd)
    else:
        m0, prec0, lv0 = 0.0, 0.0, 0.0
    # the data are finite or NaN padding (checked at the boundary)
    y0, v1, mask, k, centre, moments, const, m0c = data_rows(y, v, m0, prec0, lv0)
    return _Data(y0, v1, mask, v, k, m0, prec0, lv0, centre, moments, const, m0c)


def _subset(d: _Data, rows: NDArray[np.intp]) -> _Data:
    return _Data(
        d.y0[rows],
        d.v1[rows],
        d.mask[rows],
        d.vi[rows],
        d.k[rows],
        d.m0,
        d.prec0,
        d.log_var0,
        d.centre[rows],
        d.moments[rows],
        d.const[rows],
        d.m0c[rows],
    )


def _log_integrand(prior: TauPrior, d: _Data, x: FloatArray) -> FloatArray:
    """g(x) = x + log p(e^x) + log m(y | e^x), x of shape (B, n)."""
    return _log_integrand_moments(prior, d, x)[0]


def _log_integrand_moments(
    prior: TauPrior, d: _Data, x: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """g(x) with E[μ | τ, y] and Var[μ | τ, y] at τ = e^x."""
    out, mean, var, _ = _log_integrand_tau(prior, d, x)
    return out, mean, var


def _log_integrand_tau(
    prior: TauPrior, d: _Data, x: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """:func:`_log_integrand_moments` and τ = e^x itself."""
    # one error-state context for the likelihood and the prior (_log_prior's, inlined): the
    # contexts cost as much as the arithmetic for one meta-analysis
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        tau = np.exp(x)
        ll, mean, var = _loglik(d, tau * tau)
        if isinstance(prior, Jeffreys):
            lp = Jeffreys.logpdf_given(tau, d.vi)
        else:
            lp = prior._logpdf_pos(tau)
    out = x + lp + ll
    return np.where(np.isnan(out), -np.inf, out), mean, var, tau


def _tail_exponent(prior: TauPrior, mu_prior: MuPrior, k: FloatArray) -> FloatArray:
    # m(y | τ) ~ τ^-k with a normal μ prior, τ^-(k-1) with a flat one
    lik = k if isinstance(mu_prior, Normal) else k - 1.0
    return lik + prior.tail_exponent


def _moment_exists(
    prior: TauPrior, mu_prior: MuPrior, k: FloatArray, order: int
) -> NDArray[np.bool_]:
    b = _tail_exponent(prior, mu_prior, k)
    if math.isinf(prior.tail_exponent):
        return np.ones(k.shape, dtype=bool)
    return np.asarray((b - order > 1) | ((b - order == 1) & (prior.tail_log_power > 1)))


def _check_proper(prior: TauPrior, mu_prior: MuPrior, k: FloatArray) -> None:
    flat = not isinstance(mu_prior, Normal)
    mu_text = "mu_prior=None (flat)" if flat else f"mu_prior={mu_prior!r}"
    if (k == 0).any():
        idx = int(np.argmax(k == 0))
        raise ValueError(
            f"the posterior needs at least one study: meta-analysis at index {idx} has k = 0 "
            f"({mu_text}, tau_prior={prior!r})."
        )
    ok = _moment_exists(prior, mu_prior, k, 0)
    if not ok.all():
        idx = int(np.argmax(~ok))
        e = prior.tail_exponent
        k_min = math.floor((2.0 if flat else 1.0) - e) + 1
        raise ValueError(
            f"the posterior is improper: tau_prior={prior!r} with {mu_text} needs k >= {k_min} "
            f"studies; meta-analysis at index {idx} has k = {int(k[idx])}."
        )
