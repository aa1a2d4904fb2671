"""Compiled integrals of the binomial-normal model: a study's marginal likelihood and μ | τ.

For study j with r_j responders out of n_j, the marginal likelihood given (μ, τ) is

    L_j(μ, τ) = ∫ Bin(r_j | n_j, expit θ) N(θ | μ, τ²) dθ.

The integrand's logarithm h(θ) = r θ − n·softplus(θ) − (θ − μ)²/(2τ²) is strictly concave, so it
has one mode θ*, found by Newton steps kept inside the bracket μ + τ²·[r − n, r] (where h'
changes sign), and the integral is taken by adaptive Gauss-Hermite quadrature: nodes
θ* + √2·σ*·x_i with σ*² = −1/h''(θ*).  Centred and scaled on the integrand itself, the rule is
as accurate for τ → 0 (the normal factor is a spike) as for large τ (the binomial factor is).

The same nodes give the derivatives of log L_j in μ that locate the conditional mode of μ given
τ: with ℓ the binomial log likelihood and E_j the normalised integrand,
d log L_j / dμ = E_j[ℓ'(θ)] and d² log L_j / dμ² = E_j[ℓ''(θ)] + Var_j[ℓ'(θ)] (differentiate
under θ = μ + τz).  Both stay finite as τ → 0, unlike the forms in (θ − μ)/τ².

The binomial coefficient is left out of L_j: it is constant in (μ, τ) and cancels in the
posterior.

References
----------
Liu Q, Pierce DA. A note on Gauss-Hermite quadrature. Biometrika 1994;81(3):624-629
(adaptive Gauss-Hermite quadrature).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from fibrosim._jit import jit

__all__ = ["conditional_mu_modes", "log_likelihood_grid"]

FloatArray = NDArray[np.float64]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_SQRT2 = math.sqrt(2.0)
_MAXITER = 200


@jit
def _softplus(t: float) -> float:
    """log(1 + e^t) without overflow."""
    if t > 0.0:
        return t + math.log1p(math.exp(-t))
    return math.log1p(math.exp(t))


@jit
def _expit(t: float) -> float:
    if t >= 0.0:
        return 1.0 / (1.0 + math.exp(-t))
    e = math.exp(t)
    return e / (1.0 + e)


@jit
def _theta_mode(r: float, n: float, mu: float, tau: float) -> float:
    """Mode of h(θ) = rθ − n softplus(θ) − (θ − μ)²/(2τ²) by bracketed Newton steps."""
    t2 = tau * tau
    lo = mu + t2 * (r - n)  # h'(lo) >= 0
    hi = mu + t2 * r  # h'(hi) <= 0
    # start at the mode of the normal approximation (precision-weighted μ and the
    # empirical logit), which is close for every τ, so few Newton steps follow
    p_hat = (r + 0.5) / (n + 1.0)
    info = n * p_hat * (1.0 - p_hat)
    x = (mu / t2 + info * math.log(p_hat / (1.0 - p_hat))) / (1.0 / t2 + info)
    x = min(max(x, lo), hi)
    for _ in range(_MAXITER):
        p = _expit(x)
        g = r - n * p - (x - mu) / t2
        if g > 0.0:
            lo = x
        else:
            hi = x
        curv = n * p * (1.0 - p) + 1.0 / t2
        step = g / curv
        # quadratic convergence: a step below 1e-11 of the integrand's scale leaves an error
        # of order its square (checked before the bracket test: at rounding level x + step
        # may touch the bracket end that x itself just became)
        if abs(step) * math.sqrt(curv) <= 1e-11 or hi - lo <= 1e-15 * (1.0 + abs(x)):
            return x + step
        new = x + step
        if not (lo < new < hi):
            new = 0.5 * (lo + hi)
        x = new
    return x


@jit
def _study_terms(
    r: float, n: float, mu: float, tau: float, x: FloatArray, logw: FloatArray
) -> tuple[float, float, float]:
    """Study j's log L_j(μ, τ) and its first two μ-derivatives (adaptive Gauss-Hermite)."""
    mode = _theta_mode(r, n, mu, tau)
    p = _expit(mode)
    t2 = tau * tau
    sd = 1.0 / math.sqrt(n * p * (1.0 - p) + 1.0 / t2)
    # one pass with a running maximum (log-sum-exp rescaled when it grows): no scratch array
    top = -np.inf
    total = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    for i in range(x.size):
        th = mode + _SQRT2 * sd * x[i]
        d = th - mu
        a = logw[i] + x[i] * x[i] + r * th - n * _softplus(th) - 0.5 * d * d / t2
        if a > top:
            scale = math.exp(top - a)
            total *= scale
            s1 *= scale
            s2 *= scale
            s3 *= scale
            top = a
        w = math.exp(a - top)
        pi = _expit(th)
        score = r - n * pi
        total += w
        s1 += w * score
        s2 += w * score * score
        s3 += w * n * pi * (1.0 - pi)
    mean_score = s1 / total
    var_score = max(s2 / total - mean_score * mean_score, 0.0)
    log_l = math.log(_SQRT2 * sd) - math.log(tau) - _LOG_SQRT_2PI + top + math.log(total)
    return log_l, mean_score, var_score - s3 / total


@jit
def _log_post_mu(
    r: FloatArray,
    n: FloatArray,
    mu: float,
    tau: float,
    m0: float,
    s0: float,
    x: FloatArray,
    logw: FloatArray,
) -> tuple[float, float, float]:
    """Σ_j log L_j + log N(μ | m0, s0²) (up to a constant) with its first two μ-derivatives."""
    z = (mu - m0) / s0
    f = -0.5 * z * z
    g = -z / s0
    h = -1.0 / (s0 * s0)
    for j in range(r.size):
        lj, gj, hj = _study_terms(r[j], n[j], mu, tau, x, logw)
        f += lj
        g += gj
        h += hj
    return f, g, h


@jit
def conditional_mu_modes(
    r: FloatArray,
    n: FloatArray,
    taus: FloatArray,
    m0: float,
    s0: float,
    start: float,
    x: FloatArray,
    logw: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Mode and curvature scale of p(μ | τ, data) at each τ.

    log p(μ | τ) is concave in μ (each L_j is the convolution of two log-concave functions), so
    Newton steps that are halved until the log density rises reach the one mode.  Returns the
    modes and σ(τ) = (−d² log p / dμ²)^(-1/2) at the mode.
    """
    modes = np.empty(taus.size)
    scales = np.empty(taus.size)
    mu = start
    for t in range(taus.size):
        f, g, h = _log_post_mu(r, n, mu, taus[t], m0, s0, x, logw)
        for _ in range(_MAXITER):
            step = -g / h
            if abs(step) * math.sqrt(-h) <= 1e-8:
                # the mode only centres the nodes: 1e-8 of its scale is far more than enough
                mu += step
                break
            new = mu + step
            fn, gn, hn = _log_post_mu(r, n, new, taus[t], m0, s0, x, logw)
            halvings = 0
            while fn < f - 1e-12 * (1.0 + abs(f)) and halvings < 20:
                step *= 0.5
                new = mu + step
                fn, gn, hn = _log_post_mu(r, n, new, taus[t], m0, s0, x, logw)
                halvings += 1
            if fn < f - 1e-12 * (1.0 + abs(f)):
                break  # no ascent left at rounding level: μ is the mode
            mu, f, g, h = new, fn, gn, hn
        modes[t] = mu
        scales[t] = 1.0 / math.sqrt(-h)
    return modes, scales


@jit
def log_likelihood_grid(
    r: FloatArray,
    n: FloatArray,
    mus: FloatArray,
    taus: FloatArray,
    x: FloatArray,
    logw: FloatArray,
) -> FloatArray:
    """Σ_j log L_j(μ, τ) at the nodes ``mus[t, i]`` (shape (T, M)) with ``taus[t]``."""
    out = np.zeros(mus.shape)
    for t in range(mus.shape[0]):
        for i in range(mus.shape[1]):
            acc = 0.0
            for j in range(r.size):
                lj, _, _ = _study_terms(r[j], n[j], mus[t, i], taus[t], x, logw)
                acc += lj
            out[t, i] = acc
    return out


@jit
def _ndtr(a: float) -> float:
    """Standard normal CDF (erf near 0, erfc in the tails, as cephes' ndtr)."""
    x = a * math.sqrt(0.5)
    if abs(x) < math.sqrt(0.5):
        return 0.5 + 0.5 * math.erf(x)
    y = 0.5 * math.erfc(abs(x))
    return 1.0 - y if x > 0 else y


@jit
def node_mixture_cdf(
    c: FloatArray, mu: FloatArray, tau: FloatArray, w: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """CDF and density of Σ_i w_i N(μ_i, τ_i²) at each ``c``."""
    cdf = np.zeros(c.size)
    pdf = np.zeros(c.size)
    inv = 1.0 / math.sqrt(2.0 * math.pi)
    for k in range(c.size):
        f = 0.0
        d = 0.0
        for i in range(mu.size):
            a = (c[k] - mu[i]) / tau[i]
            f += w[i] * _ndtr(a)
            d += w[i] * inv * math.exp(-0.5 * a * a) / tau[i]
        cdf[k] = f
        pdf[k] = d
    return cdf, pdf
