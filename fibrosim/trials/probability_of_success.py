"""Assurance: the probability of a successful trial averaged over a design prior.

Power answers "if the effect were theta"; assurance averages it over a prior for theta (a
meta-analytic predictive, a random-effects predictive or elicited belief), so it is capped by
the prior probability that the treatment works at all: ``A -> P(theta > 0)`` as n grows.

Success is one-sided: the estimate divided by its standard error exceeds ``z_{1-alpha}``.  The
prior is for the effect in the direction of benefit, so for a lower-is-better outcome (pain,
FIQ) pass the prior of ``-(treatment - control)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from fibrosim._checks import (
    FloatArray,
    as_float_array,
    broadcast,
    check_in_interval,
    check_positive,
)
from fibrosim.trials._gs_integration import _GH_NODES, _GH_WEIGHTS, _crossing
from fibrosim.trials.sequential import GSDesign

__all__ = ["assurance", "assurance_gs", "assurance_mixture"]

# The probability of crossing an efficacy bound is < 1e-15 below this drift for any design.
_ETA_LOW = -8.5
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(96)


def _standard_error(sd: ArrayLike, n_per_arm: ArrayLike, ratio: ArrayLike) -> FloatArray:
    s = check_positive("sd", sd)
    n = check_positive("n_per_arm", n_per_arm)
    r = check_positive("ratio", ratio)
    return np.asarray(s * np.sqrt(1.0 / n + 1.0 / (r * n)), dtype=np.float64)


def assurance(
    prior_mean: ArrayLike,
    prior_sd: ArrayLike,
    sd: ArrayLike,
    n_per_arm: ArrayLike,
    alpha: ArrayLike = 0.025,
    *,
    ratio: ArrayLike = 1.0,
) -> FloatArray:
    """Assurance of a two-arm trial of means under a normal prior (closed form).

    With ``theta ~ N(m, v)`` and the estimate ``d ~ N(theta, s^2)``,
    ``s^2 = sd^2 (1/n + 1/(ratio n))``, success ``d / s > z_{1-alpha}`` has probability
    ``A = Phi((m - z_{1-alpha} s) / sqrt(s^2 + v))``.

    Parameters
    ----------
    prior_mean : array_like
        Prior mean of the effect (positive favours treatment).
    prior_sd : array_like
        Prior SD (>= 0; 0 gives the one-sided z-test power at ``prior_mean``).
    sd : array_like
        Outcome SD (> 0).
    n_per_arm : array_like
        Control-arm size (> 0); the treatment arm is ``ratio * n_per_arm``.
    alpha : array_like, default 0.025
        One-sided level, in (0, 1).
    ratio : array_like, default 1.0
        Treatment-arm size over control-arm size.

    Returns
    -------
    ndarray
        Assurance, with the broadcast shape of the arguments.

    References
    ----------
    O'Hagan A, Stevens JW, Campbell MJ (2005). Assurance in clinical trial design.
    Pharmaceutical Statistics 4:187-201, eq. (4).

    Examples
    --------
    >>> float(assurance(0.5, 0.0, 1.0, 64).round(4))  # = one-sided z-test power
    0.8074
    >>> float(assurance(0.5, 0.25, 1.0, 1e9).round(4))  # -> P(theta > 0) = Phi(2)
    0.9772
    """
    m = as_float_array("prior_mean", prior_mean)
    v = check_positive("prior_sd", prior_sd, strict=False) ** 2
    se = _standard_error(sd, n_per_arm, ratio)
    z = stats.norm.isf(check_in_interval("alpha", alpha, 0.0, 1.0, closed="neither"))
    return np.asarray(stats.norm.cdf((m - z * se) / np.sqrt(se**2 + v)), dtype=np.float64)


def _check_mixture(
    weights: ArrayLike, means: ArrayLike, sds: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    w = check_positive("weights", weights, strict=False)
    mu = as_float_array("means", means)
    sd = check_positive("sds", sds, strict=False)
    b = broadcast(w=np.atleast_1d(w), mu=np.atleast_1d(mu), sd=np.atleast_1d(sd))
    total = np.sum(b["w"], axis=-1)
    if np.any(np.abs(total - 1.0) > 1e-10):
        raise ValueError(
            "`weights` of a mixture prior must sum to 1 over the last axis; got sums "
            f"{np.atleast_1d(total).tolist()}."
        )
    return b["w"], b["mu"], b["sd"]


def assurance_mixture(
    weights: ArrayLike,
    means: ArrayLike,
    sds: ArrayLike,
    sd: ArrayLike,
    n_per_arm: ArrayLike,
    alpha: ArrayLike = 0.025,
    *,
    ratio: ArrayLike = 1.0,
) -> FloatArray:
    """Assurance under a mixture-of-normals prior (a MAP prior, a robustified prior, ...).

    Assurance is linear in the prior, so it is the weighted sum of the normal-prior closed
    form over the components: exact, no quadrature needed.

    Parameters
    ----------
    weights, means, sds : array_like
        Mixture components along the last axis (weights >= 0 summing to 1, sds >= 0).
    sd, n_per_arm, alpha, ratio
        As in :func:`assurance`; they broadcast against the leading axes of the mixture.

    Returns
    -------
    ndarray
        Assurance with the broadcast leading shape.

    References
    ----------
    O'Hagan A, Stevens JW, Campbell MJ (2005). Pharm Stat 4:187-201.
    Schmidli H et al. (2014). Robust meta-analytic-predictive priors in clinical trials with
    historical control information. Biometrics 70:1023-1032.

    Examples
    --------
    >>> a = assurance_mixture([0.8, 0.2], [0.5, 0.0], [0.2, 1.0], 1.0, 64)
    >>> bool(abs(a - (0.8 * assurance(0.5, 0.2, 1.0, 64) + 0.2 * assurance(0.0, 1.0, 1.0, 64)))
    ...      < 1e-15)
    True
    """
    w, mu, s = _check_mixture(weights, means, sds)
    se = _standard_error(sd, n_per_arm, ratio)[..., None]
    z = stats.norm.isf(check_in_interval("alpha", alpha, 0.0, 1.0, closed="neither"))
    z = np.asarray(z)[..., None]
    comp = stats.norm.cdf((mu - z * se) / np.sqrt(se**2 + s**2))
    return np.asarray(np.sum(w * comp, axis=-1), dtype=np.float64)


def assurance_gs(
    design: GSDesign,
    prior_mean: ArrayLike,
    prior_sd: ArrayLike,
    sd: float,
    n_per_arm: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    ratio: float = 1.0,
) -> FloatArray:
    """Assurance of a group-sequential trial: P(crossing an efficacy bound) over the prior.

    The crossing probability at drift ``theta / s`` (``s`` the final-analysis standard
    error) is integrated over each normal prior component: by 48-point Gauss-Hermite
    quadrature when the prior is narrower than the rise of the power curve, otherwise by
    96-point Gauss-Legendre over that rise plus the prior mass beyond it.  Futility bounds are
    applied only if the design's are binding.

    Parameters
    ----------
    design : GSDesign
        Boundaries from :func:`fibrosim.trials.gs_bounds`.
    prior_mean, prior_sd : array_like
        Prior of the effect (a normal, or mixture components along the last axis with
        ``weights``).
    sd : float
        Outcome SD (> 0).
    n_per_arm : array_like
        Control-arm size at the final analysis (> 0); an array gives one assurance each.
    weights : array_like, optional
        Mixture weights (default: a single normal component).
    ratio : float, default 1.0
        Treatment-arm size over control-arm size.

    Returns
    -------
    ndarray
        Assurance with the shape of ``n_per_arm``.

    References
    ----------
    O'Hagan A, Stevens JW, Campbell MJ (2005). Pharm Stat 4:187-201.
    Anderson K. gsDesign ``gsPOS`` (keaven/gsDesign: R/gsMethods.R).

    Examples
    --------
    >>> from fibrosim.trials.sequential import gs_bounds
    >>> one_look = gs_bounds(1, alpha=0.025)
    >>> bool(abs(assurance_gs(one_look, 0.5, 0.25, 1.0, 64) - assurance(0.5, 0.25, 1.0, 64))
    ...      < 1e-12)
    True
    """
    if not isinstance(design, GSDesign):
        raise TypeError(f"`design` must be a GSDesign from gs_bounds; got {type(design)!r}.")
    w_in = np.ones(np.shape(np.atleast_1d(prior_mean))) if weights is None else weights
    w, mu, s = _check_mixture(w_in, np.atleast_1d(prior_mean), np.atleast_1d(prior_sd))
    if w.ndim != 1:
        raise ValueError("`prior_mean`, `prior_sd` and `weights` must be scalars or 1-D here.")
    n = check_positive("n_per_arm", n_per_arm)
    se = np.reshape(_standard_error(sd, n, ratio), (-1, 1))
    lower = design.stopping_lower
    # prior of the drift E[Z_K] = theta / se, per (n, component)
    eta_mean, eta_sd = mu / se, s / se

    def power_at(drift: FloatArray) -> FloatArray:
        up, _ = _crossing(design.upper, lower, design.timing, drift.ravel())
        return np.asarray(np.sum(up, axis=1).reshape(drift.shape), dtype=np.float64)

    # A prior narrow on the drift scale (sd <= 1): Gauss-Hermite over the prior, the crossing
    # probability being smooth across it.  A wide one: the crossing probability rises from 0
    # to 1 within [_ETA_LOW, final bound + 8.5], so Gauss-Legendre there plus the prior mass
    # above; Gauss-Hermite alone would straddle that step with too few nodes.
    narrow = eta_sd <= 1.0
    gh = (
        np.einsum(
            "ncj,j->nc", power_at(eta_mean[..., None] + eta_sd[..., None] * _GH_NODES), _GH_WEIGHTS
        )
        if np.any(narrow)
        else 0.0
    )
    upper_end = float(design.upper[-1]) + 8.5
    nodes = 0.5 * (upper_end - _ETA_LOW) * (_GL_NODES + 1.0) + _ETA_LOW
    gl_w = 0.5 * (upper_end - _ETA_LOW) * _GL_WEIGHTS
    wide_sd = np.where(narrow, 1.0, eta_sd)  # narrow rows take the Gauss-Hermite value
    dens = stats.norm.pdf(nodes, eta_mean[..., None], wide_sd[..., None])
    above = stats.norm.sf(upper_end, eta_mean, wide_sd)
    wide = dens @ (gl_w * power_at(nodes)) + above
    per_component = np.where(narrow, gh, wide)
    return np.asarray((per_component @ w).reshape(np.shape(n)), dtype=np.float64)
