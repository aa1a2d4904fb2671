"""fibrosim.trials.bayesian_decisions: RBesT-style two-sample decisions and their OC."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fibrosim.meta.mixtures import NormalMixture
from fibrosim.trials.bayesian_decisions import (
    TwoSampleDecision,
    oc_two_sample,
    oc_two_sample_binary,
)

SIGMA = 2.0


def _map_prior() -> NormalMixture:
    # a two-component MAP-like control prior, robustified with a unit-information component
    return NormalMixture([0.7, 0.3], [-1.0, -0.6], [0.25, 0.5], sigma=SIGMA).robustify(0.2, -1.0)


def _conjugate_oc(a_t, s_t, a_c, s_c, n_t, n_c, theta_t, theta_c, rule):  # type: ignore[no-untyped-def]
    """Closed form for single normal priors: the posterior difference is linear in the means."""
    se_t, se_c = SIGMA / math.sqrt(n_t), SIGMA / math.sqrt(n_c)
    prec_t, prec_c = 1 / s_t**2 + 1 / se_t**2, 1 / s_c**2 + 1 / se_c**2
    b_t, b_c = (1 / se_t**2) / prec_t, (1 / se_c**2) / prec_c
    a = (a_t / s_t**2) / prec_t - (a_c / s_c**2) / prec_c
    sd_post = math.sqrt(1 / prec_t + 1 / prec_c)
    # success (lower tail): a + b_t m_t - b_c m_c < q - z_p sd_post
    cut = rule.threshold - stats.norm.ppf(rule.prob) * sd_post - a
    mean_d = b_t * np.asarray(theta_t) - b_c * np.asarray(theta_c)
    sd_d = math.hypot(b_t * se_t, b_c * se_c)
    p = stats.norm.cdf((cut - mean_d) / sd_d)
    if not rule.lower_tail:
        cut = rule.threshold + stats.norm.ppf(rule.prob) * sd_post - a
        p = stats.norm.sf((cut - mean_d) / sd_d)
    return p


@pytest.mark.parametrize("lower_tail", [True, False])
def test_conjugate_priors_match_closed_form(lower_tail: bool) -> None:
    rule = TwoSampleDecision(prob=0.9, threshold=-0.5 if lower_tail else 0.5, lower_tail=lower_tail)
    prior_t = NormalMixture([1.0], [0.2], [3.0])
    prior_c = NormalMixture([1.0], [-1.0], [0.4])
    theta_c = np.linspace(-2.0, 0.5, 6)
    for effect in (-1.5, 0.0, 1.5):
        got = oc_two_sample(prior_t, prior_c, 30, 15, SIGMA, theta_c + effect, theta_c, rule)
        ref = _conjugate_oc(0.2, 3.0, -1.0, 0.4, 30, 15, theta_c + effect, theta_c, rule)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-11)


def test_mixture_posterior_probability_uses_the_conjugate_mixture_update() -> None:
    # the vectorised update equals NormalMixture.update, component pair by component pair
    rule = TwoSampleDecision(prob=0.95, threshold=-0.3)
    prior_t = NormalMixture([0.5, 0.5], [0.0, -0.5], [1.0, 2.0])
    prior_c = _map_prior()
    se_t, se_c = SIGMA / math.sqrt(40), SIGMA / math.sqrt(20)
    for m_t, m_c in ((-1.8, -1.0), (0.3, 0.4), (-3.0, 1.5)):
        post_t, post_c = prior_t.update(m_t, se_t), prior_c.update(m_c, se_c)
        ref = sum(
            wt * wc * stats.norm.cdf(-0.3, mt - mc, math.hypot(st, sc))
            for wt, mt, st in zip(post_t.weights, post_t.means, post_t.sds, strict=True)
            for wc, mc, sc in zip(post_c.weights, post_c.means, post_c.sds, strict=True)
        )
        got = rule.posterior_probability(prior_t, prior_c, m_t, m_c, se_t, se_c)
        assert abs(float(got) - ref) < 1e-13


def test_mixture_oc_matches_simulated_trials() -> None:
    # 2e5 simulated trials per scenario, each decided by its exact posterior probability;
    # 4 MCSE.  Scenarios: null at the prior's centre, null in conflict, and an alternative.
    rule = TwoSampleDecision(prob=0.975, threshold=0.0)
    prior_t = NormalMixture([1.0], [-1.0], [10.0])
    prior_c = _map_prior()
    n_t, n_c = 40, 20
    se_t, se_c = SIGMA / math.sqrt(n_t), SIGMA / math.sqrt(n_c)
    rng = np.random.default_rng(41)
    reps = 200_000
    for theta_t, theta_c in ((-1.0, -1.0), (0.2, 0.2), (-2.2, -1.0)):
        exact = float(oc_two_sample(prior_t, prior_c, n_t, n_c, SIGMA, theta_t, theta_c, rule))
        m_t = rng.normal(theta_t, se_t, reps)
        m_c = rng.normal(theta_c, se_c, reps)
        post = rule.posterior_probability(prior_t, prior_c, m_t, m_c, se_t, se_c)
        hits = float(np.mean(post > rule.prob))
        assert abs(hits - exact) < 4 * math.sqrt(max(exact * (1 - exact), 1e-6) / reps)


def test_borrowing_shows_in_the_type_one_error_curve() -> None:
    # with a MAP control prior the type-I error depends on the true control mean: below the
    # prior's centre it rises (the prior pulls the control mean up), near it it is ~alpha or
    # less; with a vague control prior it is flat at alpha
    rule = TwoSampleDecision(prob=0.975)
    vague = NormalMixture([1.0], [0.0], [100.0])
    theta = np.linspace(-2.0, 0.0, 5)
    flat = oc_two_sample(vague, vague, 40, 40, SIGMA, theta, theta, rule)
    # a N(0, 100²) prior shrinks the arm means by se²/100² ~ 1e-5: alpha moves by 5.7e-7
    np.testing.assert_allclose(flat, 0.025, atol=1e-6)
    assert np.ptp(flat) < 1e-12
    borrowed = oc_two_sample(vague, _map_prior(), 40, 20, SIGMA, theta, theta, rule)
    assert borrowed[0] > 0.025 and borrowed.max() == borrowed[0]


def test_bad_input() -> None:
    prior = NormalMixture([1.0], [0.0], [1.0])
    with pytest.raises(TypeError, match="`prior_c` must be a NormalMixture; got float"):
        oc_two_sample(prior, 1.0, 10, 10, 1.0, 0.0, 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`prob` must lie in \(0.0, 1.0\); got 1.5"):
        TwoSampleDecision(prob=1.5)
    with pytest.raises(ValueError, match=r"`sigma` must be > 0; got -1.0"):
        oc_two_sample(prior, prior, 10, 10, -1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"`n_c` must be > 0; got 0.0"):
        oc_two_sample(prior, prior, 10, 0, 1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"`se_c` must be > 0; got 0.0"):
        TwoSampleDecision().posterior_probability(prior, prior, 0.1, 0.0, 0.2, 0.0)
    with pytest.raises(TypeError, match="`lower_tail` must be True or False; got 'yes'"):
        TwoSampleDecision(lower_tail="yes")  # type: ignore[arg-type]


# -- binary endpoints ---------------------------------------------------------------------------
def test_beta_posterior_probability_matches_closed_form() -> None:
    from scipy import special

    from fibrosim.meta.mixtures import BetaMixture
    from fibrosim.trials import bayesian_decisions as bd

    # P(p_B > p_A) for integer alpha_B (sum formula): with flat priors the posteriors are
    # Beta(x + 1, n - x + 1)
    flat = BetaMixture([1.0], [1.0], [1.0])
    for (x_t, n_t), (x_c, n_c) in (((12, 30), (7, 30)), ((3, 10), (9, 12)), ((40, 40), (0, 5))):
        a_b, b_b, a_a, b_a = x_t + 1, n_t - x_t + 1, x_c + 1, n_c - x_c + 1
        i = np.arange(a_b)
        terms = np.exp(
            special.betaln(a_a + i, b_a + b_b)
            - np.log(b_b + i)
            - special.betaln(1 + i, b_b)
            - special.betaln(a_a, b_a)
        )
        p_greater = terms.sum()
        below = bd._beta_prob_below(flat, flat, np.array([x_t]), np.array([x_c]), n_t, n_c, 0.0)[0]
        assert abs((1.0 - below) - p_greater) < 1e-13  # measured 2.2e-16


def _quad_prob_below(prior_t, prior_c, x_t, n_t, x_c, n_c, q):  # type: ignore[no-untyped-def]
    """Independent reference: adaptive quadrature of f_c(p) F_t(p + q) over p in [0, 1]."""
    from scipy import integrate

    post_t, post_c = prior_t.update(x_t, n_t), prior_c.update(x_c, n_c)

    def integrand(p: float) -> float:
        return float(post_c.pdf(p)) * float(post_t.cdf(min(max(p + q, 0.0), 1.0)))

    value, _ = integrate.quad(integrand, 0.0, 1.0, epsabs=1e-13, epsrel=1e-12, limit=200)
    return value


@pytest.mark.parametrize("lower_tail", [False, True])
def test_binary_oc_equals_enumeration_of_all_trials(lower_tail: bool) -> None:
    from fibrosim.meta.mixtures import BetaMixture

    # every (x_t, x_c) decided by an independent quadrature, weighted by its binomial probability
    prior_c = BetaMixture([0.6, 0.4], [6.0, 2.0], [14.0, 3.0]).robustify(0.2)
    prior_t = BetaMixture([1.0], [0.5], [0.5])
    n_t, n_c = 12, 9
    q = 0.1 if lower_tail else -0.05
    rule = TwoSampleDecision(prob=0.9, threshold=q, lower_tail=lower_tail)
    theta_t, theta_c = np.array([0.25, 0.45, 0.6]), np.array([0.3, 0.3, 0.2])
    wins = np.zeros((n_t + 1, n_c + 1), dtype=bool)
    for x_t in range(n_t + 1):
        for x_c in range(n_c + 1):
            below = _quad_prob_below(prior_t, prior_c, x_t, n_t, x_c, n_c, q)
            post = below if lower_tail else 1.0 - below
            assert abs(post - rule.prob) > 1e-6  # no decision rests on the last digits
            wins[x_t, x_c] = post > rule.prob
    ref = [
        float(stats.binom.pmf(np.arange(n_t + 1), n_t, tt) @ wins @
              stats.binom.pmf(np.arange(n_c + 1), n_c, tc))
        for tt, tc in zip(theta_t, theta_c, strict=True)
    ]  # fmt: skip
    got = oc_two_sample_binary(prior_t, prior_c, n_t, n_c, theta_t, theta_c, rule)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-14)


def test_binary_oc_type_one_error_and_bad_input() -> None:
    from fibrosim.meta.mixtures import BetaMixture

    flat = BetaMixture([1.0], [1.0], [1.0])
    more = TwoSampleDecision(prob=0.975, lower_tail=False)
    theta = np.linspace(0.1, 0.6, 6)
    null = oc_two_sample_binary(flat, flat, 30, 30, theta, theta, more)
    assert np.all(null < 0.04)  # discrete: close to, not exactly, 2.5 %
    # borrowing from an informative control prior centred at 0.3 lowers the type-I error at
    # the prior's centre and raises it where the true control rate is higher (conflict)
    informative = BetaMixture([1.0], [15.0], [35.0])
    borrowed = oc_two_sample_binary(flat, informative, 30, 15, theta, theta, more)
    assert borrowed[-1] > null[-1]
    with pytest.raises(TypeError, match="`prior_t` must be a BetaMixture; got NormalMixture"):
        oc_two_sample_binary(NormalMixture([1.0], [0.0], [1.0]), flat, 10, 10, 0.3, 0.3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`n_c` must be a whole number; got 10.5"):
        oc_two_sample_binary(flat, flat, 10, 10.5, 0.3, 0.3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`theta_c` must lie in \(0.0, 1.0\); got 1.2"):
        oc_two_sample_binary(flat, flat, 10, 10, 0.3, 1.2)
