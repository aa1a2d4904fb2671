"""PyMC models beyond the normal-normal one: robust, meta-regression and bivariate random effects.

The normal-normal model needs no MCMC (:mod:`fibrosim.meta.bayes` integrates it exactly); the
models here do.  All are non-centred (θ_i = μ + τ·z_i), which removes the funnel that makes
centred samplers diverge as τ → 0 with few small trials.  :func:`sample` runs NUTS and checks
R-hat, bulk/tail ESS and divergences, warning :class:`~fibrosim.warnings.ConvergenceWarning` with
advice when a check fails.  Results are ``xarray.DataTree`` objects in ArviZ's layout with named
study, moderator and outcome coordinates.

The τ and μ priors are the objects of :mod:`fibrosim.meta.priors`, translated to PyMC, so the
same prior drives the exact engine and the sampler.

References
----------
Betancourt M, Girolami M. Hamiltonian Monte Carlo for hierarchical models. In: Current Trends in
Bayesian Methodology with Applications. CRC Press; 2015 (non-centred parametrisation).

Juárez MA, Steel MFJ. Model-based clustering of non-Gaussian panel data based on skew-t
distributions. J Bus Econ Stat 2010;28(1):52-66 (the Gamma(2, 0.1) prior on t degrees of
freedom).

Riley RD, Abrams KR, Sutton AJ, Lambert PC, Thompson JR. Bivariate random-effects meta-analysis
and the estimation of between-study correlation. BMC Med Res Methodol 2007;7:3.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from fibrosim._checks import as_float_array, check_in_interval, check_positive, check_rng
from fibrosim.meta import priors as _priors
from fibrosim.warnings import ConvergenceWarning

__all__ = [
    "ConvergenceReport",
    "bivariate_model",
    "check_convergence",
    "normal_model",
    "regression_model",
    "robust_model",
    "sample",
]

FloatArray = NDArray[np.float64]


# -- inputs ------------------------------------------------------------------------------------
def _study_data(
    yi: ArrayLike, vi: ArrayLike, studies: Sequence[str] | None
) -> tuple[FloatArray, FloatArray, list[str]]:
    y = as_float_array("yi", yi)
    v = check_positive("vi", vi)
    if y.ndim != 1 or v.shape != y.shape:
        raise ValueError(
            f"`yi` and `vi` must be 1-D arrays of the same length; got shapes {y.shape} "
            f"and {v.shape}."
        )
    if y.size < 1:
        raise ValueError("`yi` must hold at least one study; got none.")
    names = _names("studies", studies, y.size, "study")
    return y, v, names


def _names(arg: str, names: Sequence[str] | None, n: int, stem: str) -> list[str]:
    if names is None:
        return [f"{stem}_{i + 1}" for i in range(n)]
    out = [str(s) for s in names]
    if len(out) != n:
        raise ValueError(f"`{arg}` must name {n} entries; got {len(out)}.")
    if len(set(out)) != n:
        raise ValueError(f"`{arg}` must be unique; got {out}.")
    return out


# -- priors -> PyMC ------------------------------------------------------------------------------
def _tau_rv(prior: Any, name: str, pm: Any, dims: str | None = None) -> Any:
    """A PyMC random variable for τ with the fibrosim prior ``prior``."""
    if isinstance(prior, _priors.HalfNormal):
        return pm.HalfNormal(name, sigma=prior.scale, dims=dims)
    if isinstance(prior, _priors.HalfCauchy):
        return pm.HalfCauchy(name, beta=prior.scale, dims=dims)
    if isinstance(prior, _priors.HalfT):
        return pm.HalfStudentT(name, nu=prior.df, sigma=prior.scale, dims=dims)
    if isinstance(prior, _priors.Exponential):
        return pm.Exponential(name, lam=prior.rate, dims=dims)
    if isinstance(prior, _priors.Uniform) and np.isfinite(prior.high):
        return pm.Uniform(name, lower=prior.low, upper=prior.high, dims=dims)
    if isinstance(prior, _priors.LogNormalTau2):
        log_tau2 = pm.Normal(f"log_{name}2", mu=prior.mu, sigma=prior.sigma, dims=dims)
        return pm.Deterministic(name, pm.math.exp(0.5 * log_tau2), dims=dims)
    if isinstance(prior, _priors.LogTTau2):
        log_tau2 = pm.StudentT(
            f"log_{name}2", nu=prior.df, mu=prior.location, sigma=prior.scale, dims=dims
        )
        return pm.Deterministic(name, pm.math.exp(0.5 * log_tau2), dims=dims)
    raise ValueError(
        f"`tau_prior` {prior!r} cannot be used for MCMC: use a proper prior (HalfNormal, "
        "HalfCauchy, HalfT, Exponential, a bounded Uniform, turner2015 or rhodes2015); improper "
        "and data-dependent priors (flat, Jeffreys) are for the exact engine only."
    )


def _mu_rv(prior: Any, name: str, pm: Any, dims: str | None = None) -> Any:
    if prior is None or isinstance(prior, _priors.Flat):
        return pm.Flat(name, dims=dims)
    if isinstance(prior, _priors.Normal):
        return pm.Normal(name, mu=prior.mean, sigma=prior.sd, dims=dims)
    raise ValueError(f"`mu_prior` must be None, Flat or Normal; got {prior!r}.")


def _pymc() -> Any:
    import pymc

    return pymc


# -- models ------------------------------------------------------------------------------------
def normal_model(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    tau_prior: Any,
    mu_prior: Any = None,
    studies: Sequence[str] | None = None,
) -> Any:
    """The normal-normal random-effects model in PyMC (non-centred).

    Mostly a check on the sampler: :func:`fibrosim.meta.bayes_random_effects` gives the same
    posterior exactly.  Variables: ``mu``, ``tau``, ``z`` (standardised study effects),
    ``theta`` (study effects) and ``theta_new`` (a new study's true effect).
    """
    return _hierarchical_model(yi, vi, tau_prior, mu_prior, studies, nu=np.inf)


def robust_model(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    tau_prior: Any,
    mu_prior: Any = None,
    nu: float | None = None,
    studies: Sequence[str] | None = None,
) -> Any:
    """Random effects with Student-t study effects: outlying trials pull μ less.

    Parameters
    ----------
    yi, vi : array_like
        Study estimates and sampling variances.
    tau_prior, mu_prior :
        Priors from :mod:`fibrosim.meta.priors` (``mu_prior=None`` is flat).
    nu : float, optional
        Degrees of freedom of the random-effects distribution.  ``None`` gives it the
        Gamma(2, 0.1) prior of Juárez & Steel (2010), mean 20, which lets the data choose between
        heavy tails and the normal model.
    studies : sequence of str, optional
        Study labels (the ``study`` coordinate).
    """
    if nu is not None:
        check_positive("nu", nu)
    return _hierarchical_model(yi, vi, tau_prior, mu_prior, studies, nu=nu)


def _hierarchical_model(
    yi: ArrayLike,
    vi: ArrayLike,
    tau_prior: Any,
    mu_prior: Any,
    studies: Sequence[str] | None,
    *,
    nu: float | None,
) -> Any:
    """θ_i = μ + τ·z_i; z normal (``nu=inf``), t(``nu``), or t with ν ~ Gamma(2, 0.1) (None)."""
    pm = _pymc()
    y, v, names = _study_data(yi, vi, studies)
    with pm.Model(coords={"study": names}) as model:
        mu = _mu_rv(mu_prior, "mu", pm)
        tau = _tau_rv(tau_prior, "tau", pm)
        if nu is not None and np.isinf(nu):
            z = pm.Normal("z", 0.0, 1.0, dims="study")
            z_new = pm.Normal("z_new", 0.0, 1.0)
        else:
            # one ν shared by the study effects and the new study
            df = pm.Gamma("nu", alpha=2.0, beta=0.1) if nu is None else float(nu)
            z = pm.StudentT("z", nu=df, mu=0.0, sigma=1.0, dims="study")
            z_new = pm.StudentT("z_new", nu=df, mu=0.0, sigma=1.0)
        theta = pm.Deterministic("theta", mu + tau * z, dims="study")
        # a new study's true effect, non-centred like the others (a centred N(μ, τ) node
        # would reintroduce the funnel)
        pm.Deterministic("theta_new", mu + tau * z_new)
        pm.Normal("y", mu=theta, sigma=np.sqrt(v), observed=y, dims="study")
    return model


def regression_model(
    yi: ArrayLike,
    vi: ArrayLike,
    moderators: pd.DataFrame | ArrayLike,
    *,
    tau_prior: Any,
    intercept_prior: Any = None,
    coef_sd: float = 1.0,
    studies: Sequence[str] | None = None,
    moderator_names: Sequence[str] | None = None,
) -> Any:
    """Bayesian meta-regression: θ_i = β₀ + x_i·β + τ·z_i.

    Parameters
    ----------
    moderators : DataFrame or array_like, shape (k, p)
        Study-level covariates (e.g. modality indicators, number of sessions, a drug-resistant
        population flag).  DataFrame column names become the ``moderator`` coordinate.
        Centre continuous moderators so the intercept is the effect at a typical study.
    intercept_prior : Normal or None
        Prior on the intercept β₀ (None: flat).
    coef_sd : float
        SD of the N(0, coef_sd²) priors on the slopes (on the effect scale per unit).
    """
    pm = _pymc()
    y, v, names = _study_data(yi, vi, studies)
    if isinstance(moderators, pd.DataFrame):
        cols = [str(c) for c in moderators.columns]
        x = as_float_array("moderators", moderators.to_numpy(dtype=np.float64))
    else:
        x = as_float_array("moderators", moderators)
        if x.ndim == 1:
            x = x[:, None]
        cols = _names("moderator_names", moderator_names, x.shape[1], "x")
    if x.ndim != 2 or x.shape[0] != y.size:
        raise ValueError(
            f"`moderators` must have one row per study ({y.size}); got shape {x.shape}."
        )
    if x.shape[1] + 1 >= y.size:
        raise ValueError(
            f"{x.shape[1]} moderators plus an intercept need more than {x.shape[1] + 1} studies; "
            f"got k = {y.size}."
        )
    check_positive("coef_sd", coef_sd)
    with pm.Model(coords={"study": names, "moderator": cols}) as model:
        b0 = _mu_rv(intercept_prior, "intercept", pm)
        beta = pm.Normal("beta", 0.0, coef_sd, dims="moderator")
        tau = _tau_rv(tau_prior, "tau", pm)
        z = pm.Normal("z", 0.0, 1.0, dims="study")
        theta = pm.Deterministic("theta", b0 + pm.math.dot(x, beta) + tau * z, dims="study")
        pm.Normal("y", mu=theta, sigma=np.sqrt(v), observed=y, dims="study")
    return model


def bivariate_model(
    y: ArrayLike,
    v: ArrayLike,
    *,
    within_corr: float | ArrayLike,
    tau_priors: tuple[Any, Any],
    mu_sd: float = 10.0,
    outcomes: tuple[str, str] = ("outcome_1", "outcome_2"),
    studies: Sequence[str] | None = None,
) -> Any:
    """Bivariate random effects for two correlated outcomes (e.g. pain and depression).

    Each study i reports estimates y_i (2,) with within-study covariance S_i built from the
    variances v_i and the within-study correlation; a study may miss one outcome (NaN in y and
    v).  True effects θ_i ~ N₂(μ, Σ) with Σ from τ₁, τ₂ and a between-study correlation
    ρ_b ~ Uniform(−1, 1).  The likelihood is written on whitened data: with L_i the Cholesky
    factor of the observed part of S_i, L_i⁻¹ y_i ~ N(L_i⁻¹ θ_i, I), which keeps every study's
    likelihood one vectorised normal.

    Parameters
    ----------
    y, v : array_like, shape (k, 2)
        Estimates and sampling variances; NaN marks an outcome a study did not report (in the
        same cell of both).
    within_corr : float or array_like of shape (k,)
        Within-study correlation of the two estimates, in (−1, 1).
    tau_priors : (prior, prior)
        τ priors of the two outcomes.
    mu_sd : float
        SD of independent N(0, mu_sd²) priors on the two pooled effects.
    """
    pm = _pymc()
    ya = as_float_array("y", y, allow_nan=True)
    va = as_float_array("v", v, allow_nan=True)
    if ya.ndim != 2 or ya.shape[1] != 2 or va.shape != ya.shape:
        raise ValueError(f"`y` and `v` must have shape (k, 2); got {ya.shape} and {va.shape}.")
    miss = np.isnan(ya)
    if np.any(miss != np.isnan(va)):
        i, j = np.argwhere(miss != np.isnan(va))[0]
        raise ValueError(
            f"`y` and `v` must be missing in the same cells; they differ at index ({i}, {j})."
        )
    if np.any(miss.all(axis=1)):
        i = int(np.argwhere(miss.all(axis=1))[0, 0])
        raise ValueError(f"study at index {i} reports neither outcome.")
    check_positive("v", va, allow_nan=True)
    k = ya.shape[0]
    rho_w = np.broadcast_to(
        check_in_interval("within_corr", within_corr, -1.0, 1.0, closed="neither"), (k,)
    )
    names = _names("studies", studies, k, "study")
    check_positive("mu_sd", mu_sd)

    # whitening rows: row r belongs to study idx[r] with coefficients coef[r] on θ_idx[r]
    idx, coef, white = [], [], []
    for i in range(k):
        obs = np.flatnonzero(~miss[i])
        sd = np.sqrt(va[i, obs])
        cov = np.outer(sd, sd) * (np.eye(obs.size) + (1 - np.eye(obs.size)) * rho_w[i])
        w = np.linalg.inv(np.linalg.cholesky(cov))
        full = np.zeros((obs.size, 2))
        full[:, obs] = w
        idx += [i] * obs.size
        coef.append(full)
        white.append(w @ ya[i, obs])
    idx_a, coef_a, white_a = np.asarray(idx), np.vstack(coef), np.concatenate(white)

    with pm.Model(coords={"study": names, "outcome": list(outcomes)}) as model:
        mu = pm.Normal("mu", 0.0, mu_sd, dims="outcome")
        tau_1 = _tau_rv(tau_priors[0], f"tau_{outcomes[0]}", pm)
        tau_2 = _tau_rv(tau_priors[1], f"tau_{outcomes[1]}", pm)
        rho_b = pm.Uniform("rho_between", -1.0, 1.0)
        z = pm.Normal("z", 0.0, 1.0, dims=("study", "outcome"))
        # θ = μ + L z with L the Cholesky factor of Σ = [[τ1², ρτ1τ2], [ρτ1τ2, τ2²]]
        theta_1 = mu[0] + tau_1 * z[:, 0]
        theta_2 = mu[1] + tau_2 * (rho_b * z[:, 0] + pm.math.sqrt(1 - rho_b**2) * z[:, 1])
        theta = pm.Deterministic(
            "theta", pm.math.stack([theta_1, theta_2], axis=1), dims=("study", "outcome")
        )
        mean_white = (coef_a * theta[idx_a]).sum(axis=1)
        pm.Normal("y_whitened", mu=mean_white, sigma=1.0, observed=white_a)
    return model


# -- sampling and checks ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConvergenceReport:
    """Sampler diagnostics.

    Attributes
    ----------
    max_rhat : float
        Largest rank-normalised split R-hat over all free variables.
    min_ess_bulk, min_ess_tail : float
        Smallest bulk and tail effective sample sizes.
    divergences : int
        Divergent transitions after tuning.
    ok : bool
        All checks passed.
    advice : str
        What to change when a check failed (empty when ok).
    """

    max_rhat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    ok: bool
    advice: str

    def __repr__(self) -> str:
        status = "ok" if self.ok else "FAILED"
        return (
            f"ConvergenceReport({status}: max R-hat {self.max_rhat:.4f}, min ESS bulk "
            f"{self.min_ess_bulk:.0f}, min ESS tail {self.min_ess_tail:.0f}, divergences "
            f"{self.divergences})"
        )


def check_convergence(
    tree: Any,
    *,
    var_names: Sequence[str] | None = None,
    rhat_max: float = 1.01,
    ess_min: float = 400.0,
    warn: bool = True,
) -> ConvergenceReport:
    """Check R-hat, ESS and divergences of a posterior DataTree (Vehtari et al. 2021 limits).

    Warns :class:`ConvergenceWarning` naming each failed check and what to do about it.
    """
    import arviz as az

    kwargs: dict[str, Any] = {} if var_names is None else {"var_names": list(var_names)}
    rhat = az.rhat(tree, **kwargs)
    ess_bulk = az.ess(tree, method="bulk", **kwargs)
    ess_tail = az.ess(tree, method="tail", **kwargs)

    def extreme(ds: Any, fn: Any) -> float:
        ds = ds.to_dataset() if hasattr(ds, "to_dataset") else ds
        return float(fn([float(fn(ds[v].values)) for v in ds.data_vars]))

    max_rhat = extreme(rhat, np.nanmax)
    min_bulk = extreme(ess_bulk, np.nanmin)
    min_tail = extreme(ess_tail, np.nanmin)
    divergences = int(tree["sample_stats"]["diverging"].values.sum())
    advice = []
    if divergences:
        advice.append(
            f"{divergences} divergent transitions: raise target_accept (e.g. 0.99) or use "
            "a more informative tau prior"
        )
    if max_rhat > rhat_max:
        advice.append(f"R-hat {max_rhat:.3f} > {rhat_max}: run longer chains (more tune/draws)")
    if min(min_bulk, min_tail) < ess_min:
        advice.append(
            f"ESS {min(min_bulk, min_tail):.0f} < {ess_min:.0f}: draw more samples or chains"
        )
    report = ConvergenceReport(
        max_rhat, min_bulk, min_tail, divergences, not advice, "; ".join(advice)
    )
    if advice and warn:
        warnings.warn(
            "MCMC convergence checks failed: " + report.advice + ".",
            ConvergenceWarning,
            stacklevel=2,
        )
    return report


def sample(
    model: Any,
    *,
    draws: int = 2000,
    tune: int = 2000,
    chains: int = 4,
    target_accept: float = 0.95,
    rng: Any = None,
    cores: int = 1,
    check: bool = True,
) -> Any:
    """Sample a model with NUTS and check convergence.

    Parameters
    ----------
    model : pymc.Model
        A model from this module (or any PyMC model).
    draws, tune, chains : int
        Posterior draws and tuning steps per chain; number of chains (>= 2 for R-hat).
    target_accept : float
        NUTS target acceptance; high by default because random-effects posteriors have
        curvature that changes with τ.
    rng : int, SeedSequence or Generator, optional
        Randomness (SPEC 7); the seeds of the chains are drawn from it.
    cores : int
        Processes for the chains.
    check : bool
        Run :func:`check_convergence` (warns on failure).

    Returns
    -------
    xarray.DataTree
        Groups ``posterior``, ``sample_stats``, ``observed_data`` with named coordinates.
    """
    pm = _pymc()
    for name, value, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"`{name}` must be an integer >= {low}; got {value!r}.")
    check_in_interval("target_accept", target_accept, 0.0, 1.0, closed="neither")
    gen = check_rng(rng)
    seeds = [int(s) for s in gen.integers(0, 2**31 - 1, size=chains)]
    with model:
        tree = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            target_accept=target_accept,
            random_seed=seeds,
            progressbar=False,
            compute_convergence_checks=False,
        )
    if check:
        free = [rv.name for rv in model.free_RVs]
        check_convergence(tree, var_names=free)
    return tree
