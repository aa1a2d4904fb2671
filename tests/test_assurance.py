"""Assurance: closed form, limits, mixtures, group-sequential designs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from fibrosim.trials import analytic as an
from fibrosim.trials import probability_of_success as asr
from fibrosim.trials import sequential as sq


def test_closed_form_against_direct_integration() -> None:
    # O'Hagan, Stevens & Campbell (2005): A = Phi((m - z s) / sqrt(s^2 + v)); checked here by
    # integrating the one-sided z-test power over the normal prior with adaptive quadrature
    m, v_sd, sd, n = 0.35, 0.3, 1.4, 60
    se = sd * np.sqrt(2 / n)
    z = stats.norm.isf(0.025)

    def integrand(theta: float) -> float:
        return float(stats.norm.sf(z - theta / se) * stats.norm.pdf(theta, m, v_sd))

    direct, _ = integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12)
    assert abs(asr.assurance(m, v_sd, sd, n) - direct) < 1e-10  # quad's requested accuracy


def test_zero_prior_sd_is_power() -> None:
    n = np.array([10.0, 64.0, 300.0])
    np.testing.assert_allclose(
        asr.assurance(0.5, 0.0, 1.0, n), an.power_ztest(0.5, 1.0, n, 0.025, sided=1), rtol=1e-14
    )


def test_limit_is_prior_probability_of_benefit() -> None:
    # A -> Phi(m / sqrt(v)) as n -> infinity, and A never exceeds it by much for finite n
    m, s = 0.3, 0.4
    a = asr.assurance(m, s, 1.0, np.geomspace(10, 1e18, 40))
    # at n = 1e18 the remaining gap is phi * z * se / v ~ 2e-9
    assert abs(a[-1] - stats.norm.cdf(m / s)) < 1e-8
    assert np.all(np.diff(a) > 0)
    assert np.all(a <= stats.norm.cdf(m / s))


def test_mixture_is_weighted_sum_and_vectorises() -> None:
    w, mu, sds = [0.6, 0.3, 0.1], [0.4, 0.1, 0.0], [0.15, 0.3, 2.0]
    n = np.array([20.0, 80.0])
    expected = np.sum(
        [wi * asr.assurance(mi, si, 1.0, n) for wi, mi, si in zip(w, mu, sds, strict=True)],
        axis=0,
    )
    # n of shape (2,) broadcasts against the mixture's leading shape (); components are last
    got = asr.assurance_mixture(w, mu, sds, 1.0, n)
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    # a batch of priors: leading axis of the component arrays
    batch = asr.assurance_mixture([w, w], [mu, mu], [sds, sds], 1.0, 20.0)
    np.testing.assert_allclose(batch, expected[0], rtol=1e-14)


def test_gs_single_look_equals_closed_form() -> None:
    design = sq.gs_bounds(1, 0.025)
    n = np.array([2.0, 20.0, 200.0, 1e4, 1e9])
    for prior_sd in (0.0, 0.01, 0.2, 1.0):
        np.testing.assert_allclose(
            asr.assurance_gs(design, 0.3, prior_sd, 1.0, n),
            asr.assurance(0.3, prior_sd, 1.0, n),
            rtol=1e-12,
            atol=1e-14,
        )


def test_gs_against_monte_carlo() -> None:
    # draw theta from the prior, then the group-sequential z path; 4 Monte Carlo SEs
    design = sq.gs_bounds(3, kind="obf")
    rng = np.random.default_rng(11)
    reps, sd, n, m, s = 400_000, 1.0, 80.0, 0.25, 0.2
    theta = rng.normal(m, s, reps)
    drift = theta / (sd * np.sqrt(2 / n))
    t = design.timing
    incr = rng.standard_normal((reps, 3)) * np.sqrt(np.diff(np.r_[0, t])) + np.outer(
        drift, np.diff(np.r_[0, t])
    )
    z = np.cumsum(incr, axis=1) / np.sqrt(t)
    success = np.any(z >= design.upper, axis=1).mean()
    exact = asr.assurance_gs(design, m, s, sd, n)
    assert abs(success - exact) < 4 * np.sqrt(exact * (1 - exact) / reps)


def test_gs_mixture_and_limit() -> None:
    design = sq.gs_bounds(4, kind="hsd", beta=0.1, futility="hsd", binding=True)
    w, mu, sds = np.array([0.7, 0.3]), np.array([0.3, 0.0]), np.array([0.1, 0.5])
    parts = [asr.assurance_gs(design, mi, si, 1.0, 100.0) for mi, si in zip(mu, sds, strict=True)]
    mix = asr.assurance_gs(design, mu, sds, 1.0, 100.0, weights=w)
    assert abs(mix - np.dot(w, parts)) < 1e-14
    huge = asr.assurance_gs(design, mu, sds, 1.0, 1e12, weights=w)
    assert abs(huge - np.dot(w, stats.norm.cdf(mu / sds))) < 1e-6


@pytest.mark.parametrize(
    ("call", "message", "error"),
    [
        (
            lambda: asr.assurance(0.3, -0.1, 1.0, 50),
            r"`prior_sd` must be >= 0; got -0.1",
            ValueError,
        ),
        (lambda: asr.assurance(0.3, 0.1, 0.0, 50), r"`sd` must be > 0; got 0.0", ValueError),
        (
            lambda: asr.assurance(0.3, 0.1, 1.0, 50, alpha=1.0),
            r"`alpha` must lie in \(0.0, 1.0\)",
            ValueError,
        ),
        (
            lambda: asr.assurance_mixture([0.5, 0.6], [0, 1], [1, 1], 1.0, 50),
            r"`weights` of a mixture prior must sum to 1",
            ValueError,
        ),
        (
            lambda: asr.assurance_gs("design", 0.3, 0.1, 1.0, 50),  # type: ignore[arg-type]
            r"`design` must be a GSDesign",
            TypeError,
        ),
        (
            lambda: asr.assurance_gs(sq.gs_bounds(2), 0.3, 0.1, 1.0, -5),
            r"`n_per_arm` must be > 0; got -5",
            ValueError,
        ),
    ],
)
def test_bad_input_messages(call, message, error) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message):
        call()
