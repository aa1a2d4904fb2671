"""Meta-analytic-predictive (MAP) priors: from pooled evidence to a design prior for a new trial.

The exact posterior of the normal-normal model (:func:`fibrosim.meta.bayes.bayes_random_effects`)
gives the predictive distribution of a new study's true effect as a mixture over many τ nodes.
A MAP prior is that predictive distribution, approximated by a mixture of a few normal
components fitted by EM and chosen by a penalised likelihood (as RBesT's ``automixfit``), so that
it can be robustified, updated conjugately with new data and summarised by an effective sample
size (:mod:`fibrosim.meta.mixtures`).

For a control-arm response rate, :func:`map_prior_binomial` does the same from raw responder
counts: the binomial-normal model's posterior by quadrature
(:mod:`fibrosim.meta._binomial_map`), the predictive rate as a stratified quantile sample, and a
beta mixture fitted by EM (:func:`fit_beta_mixture`, :func:`auto_fit_beta_mixture`).

References
----------
Neuenschwander B, Capkun-Niggli G, Branson M, Spiegelhalter DJ. Summarizing historical
information on controls in clinical trials. Clin Trials 2010;7(1):5-18.

Schmidli H, et al. Robust meta-analytic-predictive priors in clinical trials with historical
control information. Biometrics 2014;70(4):1023-1032.

Weber S, Li Y, Seaman JW, Kakizume T, Schmidli H. Applying meta-analytic-predictive priors with
the R Bayesian evidence synthesis tools. J Stat Softw 2021;100(19) (RBesT, ``automixfit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fibrosim._checks import as_float_array, check_integer, check_positive
from fibrosim.meta._beta_em import beta_em
from fibrosim.meta._binomial_map import (
    DEFAULT_MU_PRIOR,
    DEFAULT_TAU_PRIOR,
    BinomialMAPPosterior,
    binomial_map_posterior,
)
from fibrosim.meta._tau_prior_base import TauPrior
from fibrosim.meta.mixtures import BetaMixture, NormalMixture
from fibrosim.meta.priors import Normal
from fibrosim.warnings import ConvergenceWarning

__all__ = [
    "BinomialMAPPosterior",
    "MixtureFit",
    "auto_fit_beta_mixture",
    "auto_fit_normal_mixture",
    "binomial_map_posterior",
    "fit_beta_mixture",
    "fit_normal_mixture",
    "map_prior",
    "map_prior_binomial",
]

FloatArray = NDArray[np.float64]

_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)


@dataclass(frozen=True, slots=True)
class MixtureFit:
    """An EM fit of a normal or beta mixture.

    Attributes
    ----------
    mixture : NormalMixture or BetaMixture
        The fitted mixture.
    loglik : float
        Log likelihood of the (weighted) sample at the fit.
    criterion : float
        Penalised criterion ``-2 loglik + penalty * n_parameters`` used to choose components.
    iterations : int
        EM iterations used.
    """

    mixture: NormalMixture | BetaMixture
    loglik: float
    criterion: float
    iterations: int


def fit_normal_mixture(
    x: ArrayLike,
    n_components: int,
    *,
    sigma: float | None = None,
    penalty: float = 6.0,
    tol: float = 1e-9,
    max_iter: int = 20000,
) -> MixtureFit:
    """Fit a normal mixture with ``n_components`` components to a sample by EM.

    The start is deterministic (components centred on equal-probability slices of the sorted
    sample), so the same sample always gives the same fit.

    Parameters
    ----------
    x : array_like
        1-D sample (for a MAP prior: a stratified quantile sample of the predictive).
    n_components : int
        Number of components (>= 1).
    sigma : float, optional
        Reference scale carried by the returned mixture (for ESS and robustification).
    penalty : float
        Per-parameter penalty in the selection criterion; 6 as RBesT's ``automixfit`` default
        (2 would be AIC).
    tol : float
        Stop when the mean log likelihood per observation improves by less than ``tol``.  A
        redundant component (data that one fewer component fits as well) makes EM converge
        slowly, so the criterion is per observation rather than on the total.
    max_iter : int
        Iteration cap; reaching it warns ``ConvergenceWarning``.
    """
    xs = np.sort(as_float_array("x", x).ravel())
    k = int(check_integer("n_components", n_components, minimum=1))
    if xs.size < 3 * k:
        raise ValueError(f"`x` needs at least {3 * k} values to fit {k} components; got {xs.size}.")
    slices = np.array_split(xs, k)
    w = np.full(k, 1.0 / k)
    mu = np.array([s.mean() for s in slices])
    floor = 1e-6 * float(np.std(xs)) + 1e-300  # keeps a component from collapsing on one point
    sd = np.array([max(float(s.std()), floor) for s in slices])
    loglik = -np.inf
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - the count is reported
        # E step with the normal log density written out and a max-shifted log-sum-exp:
        # scipy.stats' per-call overhead and logaddexp.reduce dominated the iteration
        z = (xs[:, None] - mu) / sd
        log_r = (np.log(w) - np.log(sd) - _HALF_LOG_2PI) - 0.5 * z * z
        top = log_r.max(axis=1)
        r = np.exp(log_r - top[:, None])
        total = r.sum(axis=1)
        new_loglik = float(np.sum(top + np.log(total)))
        r /= total[:, None]
        # M step
        nk = r.sum(axis=0)
        w = nk / xs.size
        mu = (r.T @ xs) / nk
        dev = xs[:, None] - mu
        sd = np.sqrt(np.maximum(np.einsum("ij,ij->j", r, dev * dev) / nk, floor**2))
        if new_loglik - loglik < tol * xs.size:
            loglik = new_loglik
            break
        loglik = new_loglik
    else:
        import warnings

        warnings.warn(
            f"EM for {k} components stopped at max_iter={max_iter} before the log likelihood "
            f"settled to {tol:g}; raise max_iter.",
            ConvergenceWarning,
            stacklevel=2,
        )
    order = np.argsort(-w)
    mixture = NormalMixture(w[order] / w.sum(), mu[order], sd[order], sigma)
    n_par = 3 * k - 1
    return MixtureFit(mixture, loglik, -2.0 * loglik + penalty * n_par, iterations)


def auto_fit_normal_mixture(
    x: ArrayLike,
    *,
    max_components: int = 4,
    sigma: float | None = None,
    penalty: float = 6.0,
) -> MixtureFit:
    """Fit 1..``max_components`` components and keep the one with the lowest criterion.

    This is RBesT's ``automixfit`` rule (``Nc = 1:4``, penalty ``k = 6``).
    """
    m = int(check_integer("max_components", max_components, minimum=1))
    fits = [fit_normal_mixture(x, k, sigma=sigma, penalty=penalty) for k in range(1, m + 1)]
    return min(fits, key=lambda f: f.criterion)


def fit_beta_mixture(
    x: ArrayLike,
    n_components: int,
    *,
    penalty: float = 6.0,
    tol: float = 1e-9,
    max_iter: int = 20000,
) -> MixtureFit:
    """Fit a beta mixture with ``n_components`` components to a sample in (0, 1) by EM.

    The E step is the usual one; the M step is the weighted maximum-likelihood beta fit of each
    component (Newton on the digamma equations), so each iteration raises the likelihood.  The
    loop is compiled (:mod:`fibrosim.meta._beta_em`).  The start is deterministic: components
    moment-matched to equal-probability slices of the sorted sample.

    Parameters
    ----------
    x : array_like
        1-D sample strictly inside (0, 1) (for a MAP prior: a stratified quantile sample of the
        predictive response rate).
    n_components : int
        Number of components (>= 1).
    penalty : float
        Per-parameter penalty of the selection criterion (RBesT's ``automixfit``: 6).
    tol : float
        Stop when the mean log likelihood per observation improves by less than ``tol``.
    max_iter : int
        Iteration cap; reaching it warns ``ConvergenceWarning``.

    Returns
    -------
    MixtureFit
        With a :class:`~fibrosim.meta.mixtures.BetaMixture`, components ordered by weight.

    References
    ----------
    RBesT ``mixfit`` for beta mixtures (Novartis/RBesT, R/EM_bmm_ab.R) fits the same model by
    EM; its M step works on a logit/ab parametrisation instead.
    """
    xs = np.sort(as_float_array("x", x).ravel())
    if np.any((xs <= 0) | (xs >= 1)):
        bad = float(xs[0] if xs[0] <= 0 else xs[-1])
        raise ValueError(f"`x` must lie strictly inside (0, 1); got {bad}.")
    k = int(check_integer("n_components", n_components, minimum=1))
    if xs.size < 3 * k:
        raise ValueError(f"`x` needs at least {3 * k} values to fit {k} components; got {xs.size}.")
    lx, l1x = np.log(xs), np.log1p(-xs)
    a = np.empty(k)
    b = np.empty(k)
    for i, piece in enumerate(np.array_split(xs, k)):
        m, v = float(piece.mean()), float(piece.var())
        size = m * (1 - m) / v - 1.0 if v > 0 else 1e6
        size = max(size, 1e-3)  # a slice wider than any beta (cannot happen inside (0, 1))
        a[i], b[i] = m * size, (1 - m) * size
    w = np.full(k, 1.0 / k)
    loglik, iterations, converged = beta_em(lx, l1x, w, a, b, float(tol), int(max_iter))
    if not converged:
        import warnings

        warnings.warn(
            f"EM for {k} beta components stopped at max_iter={max_iter} before the log "
            f"likelihood settled to {tol:g}; raise max_iter.",
            ConvergenceWarning,
            stacklevel=2,
        )
    order = np.argsort(-w)
    mixture = BetaMixture(w[order] / w.sum(), a[order], b[order])
    n_par = 3 * k - 1
    return MixtureFit(mixture, loglik, -2.0 * loglik + penalty * n_par, iterations)


def auto_fit_beta_mixture(
    x: ArrayLike, *, max_components: int = 4, penalty: float = 6.0
) -> MixtureFit:
    """Fit 1..``max_components`` beta components and keep the lowest criterion (``automixfit``)."""
    m = int(check_integer("max_components", max_components, minimum=1))
    fits = [fit_beta_mixture(x, k, penalty=penalty) for k in range(1, m + 1)]
    return min(fits, key=lambda f: f.criterion)


def map_prior(
    posterior: Any,
    *,
    sigma: float | None = None,
    max_components: int = 4,
    n_points: int = 4000,
    penalty: float = 6.0,
) -> NormalMixture:
    """MAP prior: the predictive of a new study's true effect as a few-component normal mixture.

    Parameters
    ----------
    posterior : BayesRandomEffects
        Result of :func:`fibrosim.meta.bayes.bayes_random_effects` for one meta-analysis; its
        ``predictive`` marginal must offer ``quantile``.
    sigma : float, optional
        Reference scale of one observation in the new trial (for ESS and robustification).
    max_components : int
        Largest number of components tried.
    n_points : int
        Size of the stratified sample ``Q((i + 1/2) / n_points)`` that EM fits.  A quantile grid
        instead of random draws makes the MAP prior deterministic.
    penalty : float
        Per-parameter penalty of the selection criterion (RBesT: 6).

    Returns
    -------
    NormalMixture
    """
    n = int(check_integer("n_points", n_points, minimum=100))
    if sigma is not None:
        check_positive("sigma", sigma)
    predictive = getattr(posterior, "predictive", None)
    if predictive is None or not hasattr(predictive, "quantile"):
        raise TypeError(
            "`posterior` must be a Bayesian random-effects result with a `predictive` "
            f"marginal (fibrosim.meta.bayes_random_effects); got {type(posterior)!r}."
        )
    u = (np.arange(n) + 0.5) / n
    sample = np.asarray(predictive.quantile(u), dtype=np.float64)
    if sample.shape != u.shape:
        raise ValueError(
            "`posterior` must describe one meta-analysis (no batch axes) to build a MAP prior; "
            f"its predictive quantiles have shape {sample.shape}."
        )
    fit = auto_fit_normal_mixture(
        sample, max_components=max_components, sigma=sigma, penalty=penalty
    )
    mixture = fit.mixture
    assert isinstance(mixture, NormalMixture)  # narrowing for the type checker
    return mixture


def map_prior_binomial(
    events: ArrayLike,
    n: ArrayLike,
    *,
    tau_prior: TauPrior = DEFAULT_TAU_PRIOR,
    mu_prior: Normal = DEFAULT_MU_PRIOR,
    max_components: int = 4,
    n_points: int = 4000,
    penalty: float = 6.0,
) -> BetaMixture:
    """MAP prior for a control-arm response rate from historical responder counts.

    The model is RBesT's ``gMAP(cbind(r, n - r) ~ 1 | study, family = binomial)``:
    r_j ~ Bin(n_j, expit θ_j), θ_j ~ N(μ, τ²), with priors on μ (logit scale) and τ.  The
    posterior of (μ, τ) is computed by quadrature, not MCMC
    (:func:`fibrosim.meta._binomial_map.binomial_map_posterior`), so the MAP prior is the same
    on every run.  The predictive rate of a new study, p_new = expit(θ_new), is represented by
    the stratified quantile sample Q((i + 1/2)/n_points) and fitted by EM as a beta mixture with
    the number of components chosen as RBesT's ``automixfit`` does.

    Parameters
    ----------
    events, n : array_like
        Responders and patients in each historical arm (whole numbers, 0 <= events <= n,
        n >= 1, same length >= 1).
    tau_prior : TauPrior
        Proper prior on the between-study SD of the logit rates (RBesT's default for binary
        endpoints: HalfNormal(1)).
    mu_prior : Normal
        Prior on the mean logit rate (RBesT vignette: ``beta.prior = 2``, i.e. N(0, 2²)).
    max_components : int
        Largest number of beta components tried.
    n_points : int
        Size of the quantile sample that EM fits.
    penalty : float
        Per-parameter penalty of the selection criterion (RBesT: 6).

    Returns
    -------
    BetaMixture

    References
    ----------
    Neuenschwander B, Capkun-Niggli G, Branson M, Spiegelhalter DJ. Summarizing historical
    information on controls in clinical trials. Clin Trials 2010;7(1):5-18.

    Weber S, Li Y, Seaman JW, Kakizume T, Schmidli H. Applying meta-analytic-predictive priors
    with the R Bayesian evidence synthesis tools. J Stat Softw 2021;100(19).

    Examples
    --------
    Placebo ASAS20 responders in eight ankylosing spondylitis trials (RBesT's ``AS`` data):

    >>> from fibrosim.meta.map import map_prior_binomial
    >>> r = [23, 12, 19, 9, 39, 6, 9, 10]
    >>> n = [107, 44, 51, 39, 139, 20, 78, 35]
    >>> prior = map_prior_binomial(r, n)
    >>> round(prior.mean, 3), round(prior.sd, 3)
    (0.258, 0.087)
    """
    size = int(check_integer("n_points", n_points, minimum=100))
    check_positive("penalty", penalty)
    posterior = binomial_map_posterior(events, n, tau_prior=tau_prior, mu_prior=mu_prior)
    sample = posterior.predictive_quantile((np.arange(size) + 0.5) / size)
    fit = auto_fit_beta_mixture(sample, max_components=max_components, penalty=penalty)
    mixture = fit.mixture
    assert isinstance(mixture, BetaMixture)  # narrowing for the type checker
    return mixture
