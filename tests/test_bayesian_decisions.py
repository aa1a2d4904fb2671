"""fibrosim.trials.bayesian_decisions: RBesT-style two-sample decisions and their OC."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fibrosim.meta.mixtures import NormalMixture
from fibrosim.trials.bayesian_decisions import TwoSampleDecision, oc_two_sample

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
    with pytest.raises(TypeError, match="`lower_tail` must be True or False; got 'yes'"):
        TwoSampleDecision(lower_tail="yes")  # type: ignore[arg-type]
