"""PyMC models: checked against closed forms and the exact posterior within Monte Carlo error."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import fibrosim as fs
from fibrosim.meta import mcmc
from fibrosim.warnings import ConvergenceWarning

pytestmark = pytest.mark.filterwarnings(
    # PyMC itself may advise on chain counts through the warnings module; our own checks are the
    # ones under test, and they raise ConvergenceWarning, which stays an error.
    "ignore::UserWarning:pymc",
    "ignore::RuntimeWarning:pymc",
)

# Eight schools (Rubin 1981), bayesmeta vignette values (anchors.md §6.5): mu ~ N(0, 50²),
# tau ~ half-Cauchy(25): mu mean 7.985729, sd 4.995762; tau mean 5.884511, sd 4.869904.
SCHOOLS_Y = np.array([28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16])
SCHOOLS_SE = np.array([14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6])


def _mean_and_mcse(tree: object, var: str) -> tuple[float, float]:
    import arviz as az

    draws = tree["posterior"][var]  # type: ignore[index]
    mcse = az.mcse(tree, var_names=[var], method="mean")
    mcse_ds = mcse.to_dataset() if hasattr(mcse, "to_dataset") else mcse
    return float(draws.mean()), float(np.asarray(mcse_ds[var].values).squeeze())


def test_normal_model_matches_bayesmeta_eight_schools_within_mcse() -> None:
    model = mcmc.normal_model(
        SCHOOLS_Y,
        SCHOOLS_SE**2,
        tau_prior=fs.priors.HalfCauchy(25.0),
        mu_prior=fs.priors.Normal(0.0, 50.0),
        studies=list("ABCDEFGH"),
    )
    tree = mcmc.sample(model, draws=1500, tune=1500, chains=2, rng=20261127, target_accept=0.99)
    assert list(tree["posterior"]["theta"].coords["study"].values) == list("ABCDEFGH")
    for var, exact in (("mu", 7.985729), ("tau", 5.884511)):
        mean, mcse = _mean_and_mcse(tree, var)
        # the sampler is unbiased: its mean lies within 4 Monte Carlo SEs of the exact value
        assert abs(mean - exact) < 4 * mcse, (var, mean, exact, mcse)


def test_regression_with_tau_near_zero_matches_weighted_least_squares() -> None:
    # With τ pinned near 0 (half-normal scale 1e-4) and vague coefficient priors the posterior
    # is the normal linear model: mean (X'WX)^-1 X'Wy, covariance (X'WX)^-1.
    rng = np.random.default_rng(7)
    x = np.linspace(-1, 1, 10)
    vi = rng.uniform(0.02, 0.1, 10)
    yi = 0.3 - 0.5 * x + rng.normal(0, np.sqrt(vi))
    model = mcmc.regression_model(
        yi,
        vi,
        x,
        tau_prior=fs.priors.HalfNormal(1e-4),
        intercept_prior=fs.priors.Normal(0.0, 100.0),
        coef_sd=100.0,
        moderator_names=["dose"],
    )
    tree = mcmc.sample(model, draws=1500, tune=1000, chains=2, rng=3)
    design = np.column_stack([np.ones_like(x), x])
    w = 1 / vi
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    beta = cov @ design.T @ (w * yi)
    mean, mcse = _mean_and_mcse(tree, "beta")
    assert abs(mean - beta[1]) < 4 * mcse
    sd = float(tree["posterior"]["beta"].std())
    # the posterior SD from ~3000 draws has relative MC error about 1/sqrt(2·ESS) < 3 %: 10 %
    assert sd == pytest.approx(np.sqrt(cov[1, 1]), rel=0.10)


def test_bivariate_with_tau_near_zero_matches_gls_including_a_missing_outcome() -> None:
    # τ ≈ 0: θ_i = μ for all i, so μ's posterior is the generalised least squares estimate
    # (Σ S_i^-1)^-1 Σ S_i^-1 y_i (vague N(0, 100²) prior), with one study missing outcome 2.
    y = np.array([[-0.5, -0.2], [-0.8, -0.4], [-0.3, np.nan], [-0.6, -0.5], [-0.4, -0.1]])
    v = np.array([[0.04, 0.05], [0.06, 0.05], [0.05, np.nan], [0.03, 0.04], [0.05, 0.06]])
    rho = 0.6
    model = mcmc.bivariate_model(
        y,
        v,
        within_corr=rho,
        tau_priors=(fs.priors.HalfNormal(1e-4), fs.priors.HalfNormal(1e-4)),
        mu_sd=100.0,
        outcomes=("pain", "depression"),
    )
    tree = mcmc.sample(model, draws=1500, tune=1000, chains=2, rng=11, check=False)
    prec, score = np.zeros((2, 2)), np.zeros(2)
    for yi, vi in zip(y, v, strict=True):
        obs = ~np.isnan(yi)
        sd = np.sqrt(vi[obs])
        cov = np.outer(sd, sd) * np.where(np.eye(obs.sum()) == 1, 1.0, rho)
        inv = np.zeros((2, 2))
        inv[np.ix_(obs, obs)] = np.linalg.inv(cov)
        prec += inv
        score += inv @ np.nan_to_num(yi)
    gls = np.linalg.solve(prec, score)
    mu = tree["posterior"]["mu"]
    assert list(mu.coords["outcome"].values) == ["pain", "depression"]
    mcse = 4 * mu.std(dim=("chain", "draw")).values / np.sqrt(1000)  # ESS >= 1000 of 3000 draws
    np.testing.assert_array_less(np.abs(mu.mean(dim=("chain", "draw")).values - gls), mcse)


def test_robust_model_samples_heavy_tailed_effects() -> None:
    y = np.array([-0.4, -0.5, -0.3, -0.45, -0.35, 1.5])  # one outlying trial
    v = np.full(6, 0.02)
    model = mcmc.robust_model(
        y, v, tau_prior=fs.priors.HalfNormal(0.5), mu_prior=fs.priors.Normal(0, 2), nu=3.0
    )
    tree = mcmc.sample(model, draws=1000, tune=1000, chains=2, rng=5, check=False)
    normal = mcmc.sample(
        mcmc.normal_model(
            y, v, tau_prior=fs.priors.HalfNormal(0.5), mu_prior=fs.priors.Normal(0, 2)
        ),
        draws=1000,
        tune=1000,
        chains=2,
        rng=5,
        check=False,
    )
    robust_mu = float(tree["posterior"]["mu"].median())
    normal_mu = float(normal["posterior"]["mu"].median())
    # heavy tails let the outlier pull μ much less: the robust median stays near the bulk
    # (−0.4), the normal model's moves toward the outlier by several posterior SDs
    assert abs(robust_mu - (-0.4)) < abs(normal_mu - (-0.4))
    assert abs(robust_mu - (-0.4)) < 0.15


def test_short_chains_raise_a_convergence_warning_with_advice() -> None:
    model = mcmc.normal_model(
        SCHOOLS_Y, SCHOOLS_SE**2, tau_prior=fs.priors.HalfCauchy(25.0), mu_prior=None
    )
    with pytest.warns(ConvergenceWarning, match="draw more samples"):
        mcmc.sample(model, draws=30, tune=30, chains=2, rng=1)


def test_improper_tau_prior_is_refused_for_mcmc() -> None:
    with pytest.raises(ValueError, match="cannot be used for MCMC"):
        mcmc.normal_model([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], tau_prior=fs.priors.Uniform())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: mcmc.normal_model([0.1, 0.2], [0.1], tau_prior=fs.priors.HalfNormal(1)),
            "same length",
        ),
        (
            lambda: mcmc.normal_model([0.1, np.inf], [0.1, 0.1], tau_prior=fs.priors.HalfNormal(1)),
            r"`yi` must be finite; got inf at index 1",
        ),
        (
            lambda: mcmc.normal_model([0.1, 0.2], [0.1, 0.0], tau_prior=fs.priors.HalfNormal(1)),
            r"`vi` must be > 0; got 0.0 at index 1",
        ),
        (
            lambda: mcmc.regression_model(
                [0.1, 0.2, 0.3],
                [0.1] * 3,
                [[1, 2], [3, 4], [5, 6]],
                tau_prior=fs.priors.HalfNormal(1),
            ),
            "need more than 3 studies",
        ),
        (
            lambda: mcmc.bivariate_model(
                [[0.1, np.nan]],
                [[0.1, 0.1]],
                within_corr=0.2,
                tau_priors=(fs.priors.HalfNormal(1),) * 2,
            ),
            "missing in the same cells",
        ),
        (
            lambda: mcmc.bivariate_model(
                [[0.1, 0.2]],
                [[0.1, 0.1]],
                within_corr=1.0,
                tau_priors=(fs.priors.HalfNormal(1),) * 2,
            ),
            r"`within_corr` must lie in \(-1.0, 1.0\)",
        ),
    ],
)
def test_bad_input_is_rejected(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


@pytest.mark.slow
def test_simulation_based_calibration_of_the_normal_model() -> None:
    # Talts et al. (2018): draw (mu, tau) from the prior, data from the model, and the rank of
    # the truth among posterior draws is uniform if sampler and model agree.  60 replicates,
    # 99 thinned draws each: ranks in 0..99 grouped into 5 bins; chi-square test at p > 0.001.
    gen = np.random.default_rng(2026)
    vi = np.array([0.04, 0.09, 0.06, 0.05, 0.08])
    ranks = {"mu": [], "tau": []}
    for _ in range(60):
        mu, tau = gen.normal(0, 1), abs(gen.normal(0, 0.5))
        yi = gen.normal(gen.normal(mu, tau, 5), np.sqrt(vi))
        model = mcmc.normal_model(
            yi, vi, tau_prior=fs.priors.HalfNormal(0.5), mu_prior=fs.priors.Normal(0, 1)
        )
        tree = mcmc.sample(model, draws=495, tune=500, chains=1, rng=gen, check=False)
        for var, truth in (("mu", mu), ("tau", tau)):
            draws = tree["posterior"][var].values.ravel()[::5]
            ranks[var].append(int(np.sum(draws < truth)))
    for var, r in ranks.items():
        counts = np.bincount(np.asarray(r) * 5 // 100, minlength=5)
        assert stats.chisquare(counts).pvalue > 1e-3, (var, counts)
