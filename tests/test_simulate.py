"""Simulation engines against closed forms, within Monte Carlo error.

Every power check compares a simulated rejection rate with an exact (or exactly integrated)
closed form at a tolerance of 4 Monte Carlo standard errors, sqrt(p (1 - p) / n_sims): a correct
engine fails such a check with probability about 6e-5 per comparison.  Seeds are fixed, so the
tests are deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special, stats
from statsmodels.stats.multitest import multipletests

from fibrosim.trials.cohorts import CohortModel, Endpoints, default_cohort
from fibrosim.trials.designs import (
    CrossoverDesign,
    FactorialDesign,
    GroupSequentialDesign,
    MultiArmDesign,
    MultiEndpointDesign,
    ParallelDesign,
)
from fibrosim.trials.simulation import (
    SimulationResult,
    simulate,
    simulate_assurance,
    step_procedure,
    t_quantile,
)

N_SIMS = 200_000
TOL_MCSE = 4.0  # 4 MCSE: two-sided miss probability 6.3e-5 for a correct engine


def within(res_power: float, ref: float, n_sims: int) -> None:
    mcse = math.sqrt(ref * (1 - ref) / n_sims)
    assert abs(res_power - ref) <= TOL_MCSE * mcse, (res_power, ref, mcse)


# ---------------------------------------------------------------- closed forms (computed here)
def nct_power(delta: float, se: float, df: float, alpha: float, sided: int) -> float:
    """Exact power of a t test with noncentrality delta/se (both tails when two-sided)."""
    ncp = delta / se
    crit = stats.t.ppf(1 - alpha / sided, df)
    upper = stats.nct.sf(crit, df, ncp)
    if sided == 1:
        return float(upper)
    # P(T < -c | ncp) = P(T > c | -ncp): scipy's nct.cdf returns NaN far in this tail
    # (anchors.md), its sf with the mirrored noncentrality does not
    lower = stats.nct.sf(crit, df, -ncp)
    return float(upper + lower)


def welch_power_equal_n(delta: float, sd: float, n: int, alpha: float) -> float:
    """Exact Welch power for equal n and equal variances.

    With equal n the Welch statistic equals Student's, which is independent of the variance
    ratio R = s1^2 / s2^2 ~ F(n-1, n-1); the Welch df depends on R only, so the power is the
    F-average of a noncentral-t tail with df 2n - 2 and a critical value at the Welch df.
    """
    df = 2 * n - 2
    ncp = delta / (sd * math.sqrt(2 / n))

    def integrand(r: float) -> float:
        nu = (n - 1) * (1 + r) ** 2 / (1 + r * r)
        c = stats.t.ppf(1 - alpha / 2, nu)
        p = stats.nct.sf(c, df, ncp) + stats.nct.cdf(-c, df, ncp)
        return float(p * stats.f.pdf(r, n - 1, n - 1))

    return float(integrate.quad(integrand, 0, np.inf, limit=200, epsabs=1e-11)[0])


def ancova_power_exact(
    delta: float, sd: float, rho: float, n: int, alpha: float, sided: int = 2
) -> float:
    """Exact two-sided ANCOVA power (Shieh 2020): average over F = (c'xbar)^2/v / (Sxx/(N-2)).

    Given the baselines the t statistic is noncentral t with df N - 3 and noncentrality
    delta / (sd_e sqrt(v (1 + F / (N - 2)))), F ~ F(1, N - 2).
    """
    big_n = 2 * n
    v = 2 / n
    sd_e = sd * math.sqrt(1 - rho * rho)
    df = big_n - 3
    c = stats.t.ppf(1 - alpha / sided, df)

    def integrand(f: float) -> float:
        ncp = delta / (sd_e * math.sqrt(v * (1 + f / (big_n - 2))))
        p = stats.nct.sf(c, df, ncp) + (stats.nct.sf(c, df, -ncp) if sided == 2 else 0.0)
        return float(p * stats.f.pdf(f, 1, big_n - 2))

    return float(integrate.quad(integrand, 0, np.inf, limit=200, epsabs=1e-11)[0])


def two_proportion_power(p1: float, p2: float, n: int, alpha: float) -> float:
    """Exact power of the pooled two-proportion z test by enumerating both binomials."""
    r = np.arange(n + 1)
    x1, x2 = np.meshgrid(r, r, indexing="ij")
    pooled = (x1 + x2) / (2 * n)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x2 / n - x1 / n) / np.sqrt(pooled * (1 - pooled) * 2 / n)
    reject = np.abs(np.nan_to_num(z)) > stats.norm.ppf(1 - alpha / 2)
    prob = np.outer(stats.binom.pmf(r, n, p1), stats.binom.pmf(r, n, p2))
    return float(np.sum(prob * reject))


# ---------------------------------------------------------------- parallel designs
@pytest.mark.parametrize(("effect", "sided"), [(-0.5, 2), (0.0, 2), (-0.4, 1), (0.0, 1)])
def test_student_power_and_type1_match_noncentral_t(effect: float, sided: int) -> None:
    n = 64
    res = simulate(ParallelDesign(n, effect, 1.0, analysis="student", sided=sided), N_SIMS, rng=11)
    ref = nct_power(-effect, math.sqrt(2 / n), 2 * n - 2, 0.05, sided)
    within(res.power, ref, N_SIMS)
    assert res.mcse == pytest.approx(math.sqrt(res.power * (1 - res.power) / N_SIMS), rel=1e-12)


def test_student_matches_pwr_anchor() -> None:
    # pwr.t.test(d = 0.5, sig.level = 0.05, power = 0.8) gives n = 63.7656 per group, so n = 64
    # lies just above 80 %: noncentral t gives 0.80146 (computed here with scipy).
    ref = nct_power(0.5, math.sqrt(2 / 64), 126, 0.05, 2)
    assert 0.80 < ref < 0.802
    res = simulate(ParallelDesign(64, -0.5, 1.0, analysis="student"), N_SIMS, rng=12)
    within(res.power, ref, N_SIMS)


@pytest.mark.parametrize("effect", [-0.5, 0.0])
def test_welch_matches_exact_integral(effect: float) -> None:
    n = 20
    res = simulate(ParallelDesign(n, effect, 1.0, analysis="ttest"), N_SIMS, rng=13)
    within(res.power, welch_power_equal_n(-effect, 1.0, n, 0.05), N_SIMS)


@pytest.mark.parametrize("effect", [-0.6, 0.0])
def test_z_test_matches_normal_power(effect: float) -> None:
    n, sd = 40, 1.3
    se = sd * math.sqrt(2 / n)
    c = stats.norm.ppf(0.975)
    ref = stats.norm.sf(c + effect / se) + stats.norm.cdf(-c + effect / se)
    res = simulate(ParallelDesign(n, effect, sd, analysis="z"), N_SIMS, rng=14)
    within(res.power, float(ref), N_SIMS)


@pytest.mark.parametrize(("effect", "rho", "n"), [(-0.6, 0.5, 30), (0.0, 0.5, 30), (-0.3, 0.8, 12)])
def test_ancova_matches_exact_power(effect: float, rho: float, n: int) -> None:
    design = ParallelDesign(n, effect, 1.0, baseline_corr=rho, analysis="ancova")
    res = simulate(design, N_SIMS, rng=15)
    within(res.power, ancova_power_exact(-effect, 1.0, rho, n, 0.05), N_SIMS)


def test_ancova_general_path_equals_fast_path_in_distribution() -> None:
    # a two-arm ANCOVA with MCAR dropout runs the general (per-group) path; with dropout 1e-12
    # no patient is lost, so it must reproduce the exact closed form too
    design = ParallelDesign(30, -0.6, 1.0, baseline_corr=0.5, analysis="ancova", dropout=1e-12)
    res = simulate(design, N_SIMS, rng=16)
    within(res.power, ancova_power_exact(0.6, 1.0, 0.5, 30, 0.05), N_SIMS)


def test_ancova_shortcut_is_close_but_not_exact() -> None:
    # Borm et al. (2007): ANCOVA ~ t test with n (1 - rho^2); at n = 12 the shortcut overstates
    # power, which the exact integral (and the simulation above) avoids.
    exact = ancova_power_exact(0.8, 1.0, 0.6, 12, 0.05)
    shortcut = nct_power(0.8, math.sqrt(1 - 0.36) * math.sqrt(2 / 12), 22, 0.05, 2)
    assert shortcut > exact


def test_responder_sufficient_matches_binomial_enumeration() -> None:
    cohort = default_cohort().continuous()
    design = cohort.parallel(40, -1.2, analysis="responder", dropout=0.0)
    p0 = cohort.responder_probability(0.0, 0.3)
    p1 = cohort.responder_probability(-1.2, 0.3)
    res = simulate(design, N_SIMS, rng=17)
    assert res.engine == "sufficient"
    within(res.power, two_proportion_power(p0, p1, 40, 0.05), N_SIMS)
    assert res.mean_estimate[0] == pytest.approx(
        p1 - p0, abs=TOL_MCSE * res.sd_estimate[0] / math.sqrt(N_SIMS)
    )


@pytest.mark.parametrize("sided", [1, 2])
def test_fisher_sufficient_matches_exact_power(sided: int) -> None:
    # responder counts are binomial, so Fisher's exact test has an exact power: the binomial
    # mass of its rejection region (fibrosim.trials._fisher, itself checked against SciPy)
    from fibrosim.trials._fisher import exact_power

    cohort = default_cohort().continuous()
    design = cohort.parallel(25, -1.2, analysis="fisher", dropout=0.0, sided=sided)
    p0 = cohort.responder_probability(0.0, 0.3)
    p1 = cohort.responder_probability(-1.2, 0.3)
    res = simulate(design, N_SIMS, rng=170 + sided)
    assert res.engine == "sufficient"
    within(res.power, exact_power(p1, p0, 25, 25, design.alpha, sided), N_SIMS)
    # Fisher is conservative against the z test at this size
    z_design = cohort.parallel(25, -1.2, analysis="responder", dropout=0.0, sided=sided)
    assert res.power < simulate(z_design, N_SIMS, rng=170 + sided).power


def test_fisher_engines_agree_with_dropout_and_multiple_arms() -> None:
    cohort = default_cohort().continuous()
    n = 40_000
    for design in (
        cohort.parallel(30, -1.0, analysis="fisher", dropout=0.15),
        cohort.multi_arm(25, (-1.2, -0.6), analysis="fisher", multiplicity="holm"),
    ):
        a = simulate(design, n, rng=25, engine="sufficient")
        b = simulate(design, n, rng=26, engine="patient")
        assert abs(a.power - b.power) <= TOL_MCSE * math.hypot(a.mcse, b.mcse), design
    with pytest.raises(ValueError, match="`analysis` 'fisher' compares two arms"):
        FactorialDesign(15, -0.6, -0.3, 2.0, analysis="fisher", cohort=cohort)


def test_mcar_dropout_complete_case_matches_binomial_mixture() -> None:
    # MCAR complete case: power is the binomial average of Student power over completers
    n, d, effect = 20, 0.3, -0.8
    res = simulate(ParallelDesign(n, effect, 1.0, analysis="student", dropout=d), N_SIMS, rng=18)
    k = np.arange(n + 1)
    pk = stats.binom.pmf(k, n, 1 - d)
    ref = 0.0
    for a, pa in zip(k, pk, strict=True):
        for b, pb in zip(k, pk, strict=True):
            if a >= 2 and b >= 2:
                ref += pa * pb * nct_power(-effect, math.sqrt(1 / a + 1 / b), a + b - 2, 0.05, 2)
    within(res.power, ref, N_SIMS)


# ---------------------------------------------------------------- engines agree
@pytest.mark.parametrize("analysis", ["student", "ttest", "ancova", "z"])
def test_engines_agree_for_normal_unbounded_outcomes(analysis: str) -> None:
    design = ParallelDesign(24, -0.6, 1.5, baseline_corr=0.5, analysis=analysis)
    n = 60_000
    a = simulate(design, n, rng=21, engine="sufficient")
    b = simulate(design, n, rng=22, engine="patient")
    assert b.engine == "patient"
    assert abs(a.power - b.power) <= TOL_MCSE * math.hypot(a.mcse, b.mcse)


def test_engines_agree_for_responders_and_mcar_complete_case() -> None:
    cohort = default_cohort().continuous()
    n = 60_000
    for design in (
        cohort.parallel(30, -1.0, analysis="responder", dropout=0.0),
        cohort.parallel(30, -1.0, analysis="ancova", dropout=0.2),
        MultiArmDesign(
            20, (-0.8, -0.4), 1.0, analysis="student", multiplicity="hochberg", dropout=0.1
        ),
        FactorialDesign(
            15,
            -0.6,
            -0.3,
            1.0,
            interaction=0.3,
            baseline_corr=0.5,
            analysis="ancova",
            multiplicity="holm",
        ),
    ):
        a = simulate(design, n, rng=23, engine="sufficient")
        b = simulate(design, n, rng=24, engine="patient")
        assert abs(a.power - b.power) <= TOL_MCSE * math.hypot(a.mcse, b.mcse), design


# ---------------------------------------------------------------- multi-arm and multiplicity
def _bvn_rect(lo: float, hi: float, corr: float) -> float:
    """P(lo < Z1 < hi, lo < Z2 < hi) for a standard bivariate normal."""
    mvn = stats.multivariate_normal(mean=[0, 0], cov=[[1, corr], [corr, 1]])
    return float(mvn.cdf([hi, hi], lower_limit=[lo, lo]))


@pytest.mark.parametrize("multiplicity", ["bonferroni", "holm"])
def test_multi_arm_familywise_error_under_global_null(multiplicity: str) -> None:
    # two arms vs a shared control (equal n, z test): corr(Z1, Z2) = 1/2; Holm's first step
    # is Bonferroni's, so both reject any hypothesis with probability 1 - P(|Z1|, |Z2| < c)
    design = MultiArmDesign(30, (0.0, 0.0), 1.0, analysis="z", multiplicity=multiplicity)
    res = simulate(design, N_SIMS, rng=31)
    c = stats.norm.ppf(1 - 0.05 / 4)
    within(res.power, 1 - _bvn_rect(-c, c, 0.5), N_SIMS)


def test_hochberg_familywise_error_under_global_null() -> None:
    # Hochberg rejects unless (both p > alpha/2) and (some p > alpha):
    # 1 - [P(|Z| < c1 both) - P(c2 < |Zi| < c1 both)], c1 = z(1 - alpha/4), c2 = z(1 - alpha/2)
    design = MultiArmDesign(30, (0.0, 0.0), 1.0, analysis="z", multiplicity="hochberg")
    res = simulate(design, N_SIMS, rng=32)
    c1, c2 = stats.norm.ppf(1 - 0.05 / 4), stats.norm.ppf(1 - 0.05 / 2)
    mvn = stats.multivariate_normal(mean=[0, 0], cov=[[1, 0.5], [0.5, 1]])
    both_between = 0.0
    for s1 in (-1, 1):
        for s2 in (-1, 1):
            lo = [min(s1 * c2, s1 * c1), min(s2 * c2, s2 * c1)]
            hi = [max(s1 * c2, s1 * c1), max(s2 * c2, s2 * c1)]
            both_between += float(mvn.cdf(hi, lower_limit=lo))
    within(res.power, 1 - (_bvn_rect(-c1, c1, 0.5) - both_between), N_SIMS)


def test_multi_arm_per_comparison_power_bonferroni() -> None:
    design = MultiArmDesign(40, (-0.7, -0.3), 1.0, analysis="student", multiplicity="bonferroni")
    res = simulate(design, N_SIMS, rng=33)
    for j, eff in enumerate((-0.7, -0.3)):
        ref = nct_power(-eff, math.sqrt(2 / 40), 117, 0.025, 2)
        within(float(res.comparison_power[j]), ref, N_SIMS)
    assert res.comparisons == ("arm1", "arm2")


def _step_reference(p: np.ndarray, alpha: float, method: str) -> np.ndarray:
    """Textbook Holm / Hochberg on one vector of p-values (a plain loop)."""
    m = len(p)
    order = np.argsort(p, kind="stable")
    reject = np.zeros(m, dtype=bool)
    if method == "holm":
        for i, j in enumerate(order):
            if p[j] > alpha / (m - i):
                break
            reject[j] = True
    else:
        for i in range(m - 1, -1, -1):
            if p[order[i]] <= alpha / (m - i):
                reject[order[: i + 1]] = True
                break
    return reject


@pytest.mark.parametrize("method", ["holm", "hochberg"])
def test_step_procedures_equal_loops_and_statsmodels(method: str) -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 0.08, size=(500, 4))
    got = step_procedure(p, 0.05, method)
    want = np.array([_step_reference(row, 0.05, method) for row in p])
    np.testing.assert_array_equal(got, want)
    # statsmodels as an outside reference on a few rows (it is slow per call)
    sm_method = {"holm": "holm", "hochberg": "simes-hochberg"}[method]
    for row, mine in zip(p[:6], got[:6], strict=True):
        np.testing.assert_array_equal(multipletests(row, alpha=0.05, method=sm_method)[0], mine)


# ---------------------------------------------------------------- factorial
def test_factorial_contrasts_match_noncentral_t() -> None:
    n = 25
    design = FactorialDesign(n, -0.5, -0.3, 1.0, interaction=0.4, analysis="student")
    res = simulate(design, N_SIMS, rng=41)
    df = 4 * n - 4
    # main effects: sum c^2 / n = 1 / n; interaction: 4 / n
    refs = [
        nct_power(0.5 - 0.2, math.sqrt(1 / n), df, 0.05, 2),
        nct_power(0.3 - 0.2, math.sqrt(1 / n), df, 0.05, 2),
        nct_power(0.4, math.sqrt(4 / n), df, 0.05, 2),
    ]
    for got, ref in zip(res.comparison_power, refs, strict=True):
        within(float(got), ref, N_SIMS)
    assert res.comparisons == ("tDCS", "exercise", "tDCS:exercise")


# ---------------------------------------------------------------- crossover
def test_crossover_abba_matches_two_sample_t_on_period_differences() -> None:
    n, sd_w, eff = 12, 1.0, -0.6
    res = simulate(CrossoverDesign(n, eff, sd_w, period_effect=0.7), N_SIMS, rng=51)
    # estimate (dbar_AB - dbar_BA)/2 has SE sqrt(2) sd_w / 2 * sqrt(2 / n); df = 2n - 2
    se = math.sqrt(2) * sd_w / 2 * math.sqrt(2 / n)
    within(res.power, nct_power(-eff, se, 2 * n - 2, 0.05, 2), N_SIMS)


def test_crossover_paired_reproduces_sas_proc_power_example() -> None:
    # SAS PROC POWER PAIREDMEANS example: means 330 / 310, SDs 40 / 55, rho 0.3, alpha 0.01,
    # 100 pairs: power 0.86538 one-sided.  sd of a difference = sqrt(40^2 + 55^2 - 2*.3*40*55).
    sd_diff = math.sqrt(40**2 + 55**2 - 2 * 0.3 * 40 * 55)
    design = CrossoverDesign(
        50,
        20.0,
        sd_diff / math.sqrt(2),
        analysis="paired",
        alpha=0.01,
        sided=1,
        lower_is_better=False,
    )
    res = simulate(design, N_SIMS, rng=52)
    ref = nct_power(20.0, sd_diff / 10, 99, 0.01, 1)
    assert ref == pytest.approx(0.86538, abs=5e-6)
    within(res.power, 0.86538, N_SIMS)


def test_crossover_carryover_biases_the_estimate_by_half() -> None:
    design = CrossoverDesign(20, -0.5, 1.0, carryover=-0.4, washout=1.0, carryover_half_life=1.0)
    assert design.carryover_residual == pytest.approx(-0.2)
    res = simulate(design, N_SIMS, rng=53)
    sd_est = math.sqrt(2) / 2 * math.sqrt(2 / 20)
    assert abs(res.mean_estimate[0] - (-0.5 + 0.1)) <= TOL_MCSE * sd_est / math.sqrt(N_SIMS)


# ---------------------------------------------------------------- group sequential
OBF3 = [3.4710914, 2.4544323, 2.0040356]  # rpact unit test, K = 3, one-sided alpha 0.025


def gs_crossing(bounds: list[float], drift: float, eps: float = 1e-8) -> float:
    """P(Z_k > b_k for some k), canonical joint distribution, equal information."""
    t = np.array([1 / 3, 2 / 3, 1.0])
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    mean = drift * np.sqrt(t)
    mvn = stats.multivariate_normal(mean=mean, cov=cov, abseps=eps, releps=eps)
    return float(1 - mvn.cdf(bounds))


class _Bounds:
    """Stand-in for gs_bounds(): an object exposing the z-bounds as ``.z``."""

    def __init__(self, z: list[float]) -> None:
        self.z = np.asarray(z)


@pytest.mark.parametrize("effect", [0.0, -0.3])
def test_group_sequential_matches_canonical_crossing_probability(effect: float) -> None:
    n = 150
    base = ParallelDesign(n, effect, 1.0, analysis="z")
    res = simulate(GroupSequentialDesign(base, _Bounds(OBF3)), N_SIMS, rng=61)
    drift = -effect / math.sqrt(2 / n)
    within(res.power, gs_crossing(OBF3, drift), N_SIMS)
    assert res.stop_probability.shape == (3,)
    assert res.stop_probability.sum() == pytest.approx(res.power, abs=1e-12)


def test_group_sequential_accepts_gs_bounds_object() -> None:
    from fibrosim.trials.sequential import gs_bounds

    bounds = gs_bounds(3, alpha=0.025, kind="obf")
    design = GroupSequentialDesign(ParallelDesign(150, -0.3, 1.0, analysis="z"), bounds)
    assert design.bounds == pytest.approx(OBF3, abs=1e-6)  # rpact: 3.4710914, 2.4544323, 2.0040356
    assert design.timing == pytest.approx((1 / 3, 2 / 3, 1.0))
    res = simulate(design, N_SIMS, rng=63)
    within(res.power, gs_crossing(list(design.bounds), 0.3 / math.sqrt(2 / 150)), N_SIMS)


def test_group_sequential_ancova_final_look_equals_fixed_ancova() -> None:
    # no stopping at the interim looks: the final look is the fixed one-sided ANCOVA, whose
    # statistic is rebuilt here from three stages of sufficient statistics
    base = ParallelDesign(30, -0.6, 1.0, baseline_corr=0.5, analysis="ancova")
    bounds = [np.inf, np.inf, float(stats.norm.ppf(0.975))]
    res = simulate(GroupSequentialDesign(base, bounds), N_SIMS, rng=64)
    within(res.power, ancova_power_exact(0.6, 1.0, 0.5, 30, 0.025, sided=1), N_SIMS)


def test_group_sequential_t_statistics_keep_type1_error() -> None:
    base = ParallelDesign(150, 0.0, 1.0, analysis="student")
    res = simulate(GroupSequentialDesign(base, OBF3), N_SIMS, rng=62)
    within(res.power, gs_crossing(OBF3, 0.0), N_SIMS)


# ---------------------------------------------------------------- assurance
def closed_form_assurance(m: float, v: float, s: float, alpha: float) -> float:
    # O'Hagan, Stevens & Campbell (2005), with benefit = a negative effect: success when
    # -estimate / s > z_(1-alpha), estimate ~ N(delta, s^2), delta ~ N(m, v)
    z = stats.norm.ppf(1 - alpha)
    return float(stats.norm.cdf((-m - z * s) / math.sqrt(s * s + v)))


def test_assurance_normal_prior_matches_closed_form() -> None:
    n, sd = 50, 2.0
    s = sd * math.sqrt(2 / n)
    design = ParallelDesign(n, 0.0, sd, analysis="z", sided=1, alpha=0.025)
    res = simulate_assurance(design, ([1.0], [-0.8], [0.5]), N_SIMS, rng=71)
    within(res.power, closed_form_assurance(-0.8, 0.25, s, 0.025), N_SIMS)


def test_assurance_mixture_and_callable_priors() -> None:
    n, sd = 50, 2.0
    s = sd * math.sqrt(2 / n)
    design = ParallelDesign(n, 0.0, sd, analysis="z", sided=1, alpha=0.025)
    w, m, v = (0.7, 0.3), (-1.0, 0.0), (0.3**2, 0.2**2)
    ref = sum(
        wi * closed_form_assurance(mi, vi, s, 0.025) for wi, mi, vi in zip(w, m, v, strict=True)
    )
    res = simulate(design, N_SIMS, rng=72, effect_prior=(w, m, np.sqrt(v)))
    within(res.power, ref, N_SIMS)
    res2 = simulate(design, N_SIMS, rng=73, effect_prior=lambda k, g: g.normal(-0.8, 0.5, k))
    within(res2.power, closed_form_assurance(-0.8, 0.25, s, 0.025), N_SIMS)
    res3 = simulate(design, N_SIMS, rng=74, effect_prior=stats.norm(-0.8, 0.5))
    within(res3.power, closed_form_assurance(-0.8, 0.25, s, 0.025), N_SIMS)


# ---------------------------------------------------------------- patient level
def test_patient_level_missing_data_analyses_keep_type1_error_under_mcar() -> None:
    # under the null with MCAR dropout every analysis is valid; LOCF/BOCF are also unbiased here
    # because both arms share the same trajectory.  4 MCSE at n_sims = 20,000.
    cohort = default_cohort(dropout=0.3)
    n = 20_000
    for missing in ("cc", "bocf", "locf"):
        res = simulate(cohort.parallel(32, 0.0, analysis="ancova", missing=missing), n, rng=81)
        assert res.engine == "patient"
        within(res.power, 0.05, n)


def test_multiple_imputation_type1_error_and_unbiased_estimate() -> None:
    cohort = default_cohort(dropout=0.3)
    n = 4_000
    null = simulate(
        cohort.parallel(32, 0.0, analysis="ancova", missing="mi", n_imputations=10), n, rng=82
    )
    within(null.power, 0.05, n)
    cc = simulate(cohort.parallel(32, -1.2, analysis="ancova", missing="cc"), n, rng=83)
    mi = simulate(
        cohort.parallel(32, -1.2, analysis="ancova", missing="mi", n_imputations=10), n, rng=84
    )
    # under MCAR both estimate the same effect; the imputation noise (finite m) and the
    # Barnard-Rubin df cost MI a little power relative to complete-case ANCOVA, never a gain
    se_diff = math.hypot(cc.sd_estimate[0], mi.sd_estimate[0]) / math.sqrt(n)
    assert abs(cc.mean_estimate[0] - mi.mean_estimate[0]) <= TOL_MCSE * se_diff
    assert mi.power <= cc.power + TOL_MCSE * math.hypot(cc.mcse, mi.mcse)


def test_mnar_dropout_biases_complete_case_estimate() -> None:
    # patients with worse follow-up pain leave more often: completers look better in both arms,
    # more so on control (higher pain), so the complete-case effect shrinks towards 0
    cohort = default_cohort().continuous()
    mnar = cohort.parallel(
        40, -1.0, analysis="ttest", dropout=0.3, dropout_mechanism="MNAR", dropout_slope=1.5
    )
    res = simulate(mnar, 20_000, rng=85)
    assert res.mean_estimate[0] > -0.95


def test_rounded_bounded_scores_stay_on_scale() -> None:
    cohort = default_cohort(dropout=0.0)
    res = simulate(cohort.parallel(30, -1.0, analysis="responder"), 5_000, rng=86)
    assert res.engine == "patient"
    assert 0 < res.power < 1
    assert 0 < res.mean_estimate[0] < 1  # a difference of responder proportions


# ---------------------------------------------------------------- reproducibility and results
def test_chunking_does_not_change_results() -> None:
    design = ParallelDesign(30, -0.5, 1.0, analysis="ttest", dropout=0.1)
    a = simulate(design, 150_000, rng=91, chunk_size=1000)
    b = simulate(design, 150_000, rng=91, chunk_size=100_000)
    assert a.power == b.power
    np.testing.assert_array_equal(a.mean_estimate, b.mean_estimate)
    np.testing.assert_array_equal(a.sd_estimate, b.sd_estimate)
    cohort = default_cohort()
    p = cohort.parallel(20, -1.0, analysis="ancova")
    assert simulate(p, 9000, rng=5, chunk_size=10).power == simulate(p, 9000, rng=5).power


def test_patient_engine_results_do_not_depend_on_earlier_blocks_or_threads() -> None:
    # the patient-level engine draws into a buffer each thread reuses from block to block: blocks
    # of other designs before it, or another thread running at the same time, must not leak in
    from concurrent.futures import ThreadPoolExecutor

    big = ParallelDesign(40, -0.5, 1.0, baseline_corr=0.5, analysis="ancova")
    small = default_cohort().parallel(12, -1.0, analysis="ancova")  # truncated baseline
    first = simulate(big, 6000, rng=17, engine="patient")
    simulate(small, 3000, rng=18)
    again = simulate(big, 6000, rng=17, engine="patient")
    with ThreadPoolExecutor(2) as pool:
        threaded = list(
            pool.map(lambda d: simulate(d, 6000, rng=17, engine="patient"), [big, small, big])
        )
    for res in (again, threaded[0], threaded[2]):
        assert res.power == first.power
        np.testing.assert_array_equal(res.mean_estimate, first.mean_estimate)
        np.testing.assert_array_equal(res.sd_estimate, first.sd_estimate)


def test_rng_forms() -> None:
    design = ParallelDesign(20, -0.5, 1.0)
    a = simulate(design, 1000, rng=np.random.SeedSequence(4))
    b = simulate(design, 1000, rng=4)
    assert a.power == b.power
    gen = np.random.default_rng(4)
    c = simulate(design, 1000, rng=gen)
    d = simulate(design, 1000, rng=gen)
    assert c.seed["seed_spawn_key"] != d.seed["seed_spawn_key"]


def test_t_quantile_table_accuracy() -> None:
    df = np.array([1.0, 1.5, 2.0, 7.3, 30.0, 1e3, 1e7, np.inf])
    got = t_quantile(0.975, df)
    want = np.where(
        np.isinf(df), special.ndtri(0.975), special.stdtrit(np.where(np.isinf(df), 1, df), 0.975)
    )
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)  # the table's own guarantee


def test_result_views() -> None:
    res = simulate(
        MultiArmDesign(20, (-0.5, -0.2), 1.0, arm_names=("tDCS", "exercise")), 2000, rng=1
    )
    assert isinstance(res, SimulationResult)
    df = res.to_dataframe()
    assert list(df["comparison"]) == ["success", "tDCS", "exercise"]
    ds = res.to_xarray()
    assert float(ds.power) == res.power
    assert ds.attrs["seed_entropy"] == "1"
    assert "tDCS" in repr(res)
    with pytest.raises(AttributeError):
        res.power = 0.5  # type: ignore[misc]


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_per_arm": 1}, r"`n_per_arm` must be >= 2; got 1"),
        ({"n_per_arm": 2.5}, r"`n_per_arm` must be a whole number; got 2.5"),
        ({"sd": 0.0}, r"`sd` must be > 0; got 0.0"),
        ({"baseline_corr": 1.0}, r"`baseline_corr` must lie in \(-1, 1\); got 1.0"),
        ({"analysis": "anova"}, r"`analysis` must be one of 'ttest', .*; got 'anova'"),
        ({"alpha": 0.0}, r"`alpha` must lie in \(0, 1\); got 0.0"),
        ({"sided": 3}, r"`sided` must be 1 or 2; got 3"),
        ({"dropout": 1.0}, r"`dropout` must lie in \[0, 1\); got 1.0"),
        ({"missing": "lvcf"}, r"`missing` must be one of 'cc', 'locf', 'bocf', 'mi'; got 'lvcf'"),
        ({"analysis": "responder"}, r"`analysis` 'responder' needs a `cohort`"),
        ({"lower_is_better": 1}, r"`lower_is_better` must be True or False; got 1"),
    ],
)
def test_parallel_design_messages(kwargs: dict[str, object], match: str) -> None:
    base: dict[str, object] = {"n_per_arm": 10, "effect": -0.5, "sd": 1.0}
    base.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        ParallelDesign(**base)  # type: ignore[arg-type]


def test_other_design_messages() -> None:
    with pytest.raises(
        ValueError, match=r"`arm_names` must be 2 strings, one per effect; got \('a',\)"
    ):
        MultiArmDesign(10, (-1, -1), 1.0, arm_names=("a",))
    with pytest.raises(
        ValueError, match=r"`multiplicity` must be one of 'none', .*; got 'dunnett'"
    ):
        MultiArmDesign(10, (-1, -1), 1.0, multiplicity="dunnett")
    with pytest.raises(ValueError, match=r"`factor_names` must be two distinct strings"):
        FactorialDesign(10, -1, -1, 1.0, factor_names=("a", "a"))
    with pytest.raises(
        ValueError, match=r"`analysis` must be one of 'abba', 'paired'; got 'ttest'"
    ):
        CrossoverDesign(10, -1, 1.0, analysis="ttest")
    with pytest.raises(ValueError, match=r"`sd_within` must be > 0; got -1.0"):
        CrossoverDesign(10, -1, -1.0)
    with pytest.raises(
        ValueError, match=r"`bounds` must be finite or \+inf .*; got nan at index 1"
    ):
        GroupSequentialDesign(ParallelDesign(90, -1, 1.0), [3.0, float("nan")])
    with pytest.raises(TypeError, match=r"`bounds` must be an array of efficacy z-bounds"):
        GroupSequentialDesign(ParallelDesign(90, -1, 1.0), object())
    with pytest.raises(
        ValueError, match=r"`timing` must increase strictly within \(0, 1\] and end at 1"
    ):
        GroupSequentialDesign(ParallelDesign(90, -1, 1.0), [3.0, 2.0], timing=(0.6, 0.5))
    with pytest.raises(ValueError, match=r"`timing` gives looks with \[1, 90\] patients per arm"):
        GroupSequentialDesign(ParallelDesign(90, -1, 1.0), [3.0, 2.0], timing=(0.01, 1.0))
    with pytest.raises(ValueError, match=r"`design.analysis` must be .* got 'responder'"):
        GroupSequentialDesign(default_cohort().parallel(90, -1, analysis="responder"), [3.0, 2.0])


def test_simulate_messages() -> None:
    design = ParallelDesign(10, -0.5, 1.0)
    with pytest.raises(ValueError, match=r"`n_sims` must be >= 1; got 0"):
        simulate(design, 0)
    with pytest.raises(
        TypeError, match=r"`chunk_size` must be a positive whole number or None; got 'big'"
    ):
        simulate(design, 10, chunk_size="big")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"`engine` must be one of 'auto', 'sufficient', 'patient'; got 'gpu'"
    ):
        simulate(design, 10, engine="gpu")
    with pytest.raises(TypeError, match=r"`design` must be a ParallelDesign, .*; got dict"):
        simulate({}, 10)
    with pytest.raises(
        ValueError, match=r"`engine` 'sufficient' is not exact for this design because the cohort"
    ):
        simulate(default_cohort().parallel(10, -1.0), 10, engine="sufficient")
    with pytest.raises(
        ValueError, match=r"`engine` 'patient' supports parallel-group designs only"
    ):
        simulate(CrossoverDesign(10, -1, 1.0), 10, engine="patient")
    with pytest.raises(ValueError, match=r"`effect_prior` needs a design with a single effect"):
        simulate(MultiArmDesign(10, (-1, -1), 1.0), 10, effect_prior=([1.0], [0.0], [1.0]))
    with pytest.raises(ValueError, match=r"`prior` weights must be >= 0 and sum to 1"):
        simulate(design, 10, effect_prior=([0.5], [0.0], [1.0]))
    with pytest.raises(TypeError, match=r"`effect_prior` must be a callable"):
        simulate(design, 10, effect_prior=3.0)
    with pytest.raises(TypeError, match=r"`rng` must be None, an int"):
        simulate(design, 10, rng="seed")


def test_cohort_model_is_accepted_only_as_cohort() -> None:
    with pytest.raises(TypeError, match=r"`cohort` must be a CohortModel or None; got 'x'"):
        ParallelDesign(10, -1.0, 1.0, cohort="x")  # type: ignore[arg-type]
    assert isinstance(default_cohort(), CohortModel)


@pytest.mark.slow
def test_headline_million_simulations() -> None:
    n = 1_000_000
    res = simulate(ParallelDesign(30, -0.6, 1.0, baseline_corr=0.5, analysis="ancova"), n, rng=2026)
    within(res.power, ancova_power_exact(0.6, 1.0, 0.5, 30, 0.05), n)
    res = simulate(ParallelDesign(64, 0.0, 1.0, analysis="student"), n, rng=2027)
    within(res.power, 0.05, n)


# ---------------------------------------------------------------- correlated endpoints
R3 = np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.4], [0.3, 0.4, 1.0]])  # a user-given assumption


def _endpoints() -> Endpoints:
    return Endpoints(("pain", "fatigue", "FIQR"), (-1.0, -0.8, -6.0), (2.9, 2.5, 16.0), R3)


def test_co_primary_endpoints_match_multivariate_normal() -> None:
    # success needs every one-sided z test to win: P(Z_p > c for all p), Z ~ N(drift, R)
    n = 40
    design = MultiEndpointDesign(n, _endpoints(), analysis="z", sided=1, alpha=0.025)
    res = simulate(design, N_SIMS, rng=101)
    drift = np.array([1.0, 0.8, 6.0]) / (np.array([2.9, 2.5, 16.0]) * math.sqrt(2 / n))
    c = stats.norm.ppf(0.975)
    mvn = stats.multivariate_normal(mean=drift, cov=R3, abseps=1e-8, releps=1e-8)
    within(res.power, float(mvn.cdf(np.full(3, np.inf), lower_limit=np.full(3, c))), N_SIMS)
    assert res.comparisons == ("pain", "fatigue", "FIQR")


def test_endpoint_marginals_match_noncentral_t() -> None:
    # the Bartlett (Wishart) draw must leave each endpoint's variance a scaled chi-square
    n = 25
    res = simulate(MultiEndpointDesign(n, _endpoints(), analysis="student"), N_SIMS, rng=102)
    for j, (eff, sd) in enumerate(zip((1.0, 0.8, 6.0), (2.9, 2.5, 16.0), strict=True)):
        ref = nct_power(eff, sd * math.sqrt(2 / n), 2 * n - 2, 0.05, 2)
        within(float(res.comparison_power[j]), ref, N_SIMS)


def test_endpoint_engines_agree_on_joint_success() -> None:
    # "all" success depends on the joint law of the three variances (Wishart diagonal)
    design = MultiEndpointDesign(12, _endpoints(), analysis="ttest", success="all")
    n = 60_000
    a = simulate(design, n, rng=103, engine="sufficient")
    b = simulate(design, n, rng=104, engine="patient")
    assert abs(a.power - b.power) <= TOL_MCSE * math.hypot(a.mcse, b.mcse)
    drop = simulate(MultiEndpointDesign(30, _endpoints(), dropout=0.2), 2000, rng=105)
    assert drop.engine == "patient"


def test_endpoint_messages() -> None:
    names, eff, sds = ("pain", "fatigue"), (-1.0, -0.5), (2.9, 2.5)
    with pytest.raises(ValueError, match=r"`corr` must be a 2 x 2 matrix; got shape \(3, 3\)"):
        Endpoints(names, eff, sds, R3)
    with pytest.raises(ValueError, match=r"`corr` must be symmetric with a unit diagonal"):
        Endpoints(names, eff, sds, [[1.0, 0.5], [0.4, 1.0]])
    with pytest.raises(ValueError, match=r"`corr` must be positive definite"):
        Endpoints(
            ("a", "b", "c"), (0, 0, 0), (1, 1, 1), [[1, 0.9, -0.9], [0.9, 1, 0.9], [-0.9, 0.9, 1]]
        )
    with pytest.raises(ValueError, match=r"`sds` must have one entry per name \(2\); got 3"):
        Endpoints(names, eff, (1.0, 1.0, 1.0), np.eye(2))
    with pytest.raises(ValueError, match=r"`names` must be distinct strings"):
        Endpoints(("pain", "pain"), eff, sds, np.eye(2))
    with pytest.raises(ValueError, match=r"`n_per_arm` must be >= 4; got 3"):
        MultiEndpointDesign(3, _endpoints())
    with pytest.raises(TypeError, match=r"`endpoints` must be an Endpoints; got 3"):
        MultiEndpointDesign(10, 3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- priors on other designs, memory
def test_group_sequential_assurance_matches_integrated_crossing() -> None:
    # assurance of a GS design = E_delta[P(cross)] under delta ~ N(m, sd^2): Gauss-Hermite over
    # the canonical crossing probability (20 nodes: the integrand is smooth in delta; the
    # 1e-6 integration error of each node is 1000 times below the MCSE)
    n, m, sd = 150, -0.25, 0.1
    design = GroupSequentialDesign(ParallelDesign(n, 0.0, 1.0, analysis="z"), OBF3)
    res = simulate(design, N_SIMS, rng=111, effect_prior=([1.0], [m], [sd]))
    nodes, weights = np.polynomial.hermite_e.hermegauss(20)
    weights = weights / weights.sum()
    ref = sum(
        w * gs_crossing(OBF3, -(m + sd * x) / math.sqrt(2 / n), eps=1e-6)
        for x, w in zip(nodes, weights, strict=True)
    )
    within(res.power, ref, N_SIMS)


def test_crossover_assurance_matches_integrated_power() -> None:
    n, sd_w, m, v = 12, 1.0, -0.6, 0.3**2
    design = CrossoverDesign(n, 0.0, sd_w)
    res = simulate(design, N_SIMS, rng=112, effect_prior=stats.norm(m, math.sqrt(v)))
    se = math.sqrt(2) * sd_w / 2 * math.sqrt(2 / n)
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    weights = weights / weights.sum()
    ref = sum(
        w * nct_power(-(m + math.sqrt(v) * x), se, 2 * n - 2, 0.05, 2)
        for x, w in zip(nodes, weights, strict=True)
    )
    within(res.power, ref, N_SIMS)


def test_designs_and_results_pickle_for_process_workers() -> None:
    import pickle

    cohort = default_cohort()
    designs = [
        cohort.parallel(20, -1.0, analysis="ancova", missing="mi"),
        MultiEndpointDesign(10, _endpoints()),
        GroupSequentialDesign(ParallelDesign(60, -0.5, 1.0), [*OBF3[:2], 2.0]),
    ]
    for design in designs:
        assert pickle.loads(pickle.dumps(design)) == design
    res = simulate(designs[2], 1000, rng=1)
    again = pickle.loads(pickle.dumps(res))
    assert again.power == res.power


def test_peak_memory_is_flat_in_n_sims() -> None:
    import tracemalloc

    design = ParallelDesign(64, -0.5, 1.0, analysis="ttest", dropout=0.1)

    def peak(n: int) -> int:
        tracemalloc.start()
        simulate(design, n, rng=1)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(100_000), peak(1_000_000)
    # one block lives at a time; only the per-block sums (a few floats each) grow with n_sims
    assert large < 1.2 * small, (small, large)


def test_public_contract_names_functions_even_after_their_modules_are_imported() -> None:
    import fibrosim as fs
    import fibrosim.trials.probability_of_success
    import fibrosim.trials.simulation

    design = ParallelDesign(20, -0.5, 1.0)
    assert fs.trials.simulate is simulate
    assert fs.trials.simulate(design, 1000, rng=3).power == simulate(design, 1000, rng=3).power
    assert fs.trials.assurance is fibrosim.trials.probability_of_success.assurance


@pytest.mark.parametrize("slope", [0.0, 1.0, -2.5, 5.0])
def test_dropout_intercept_keeps_the_average_rate(slope: float) -> None:
    from fibrosim.trials.patient_level import dropout_intercept

    a = dropout_intercept(0.25, slope)
    rate = integrate.quad(
        lambda z: stats.norm.pdf(z) * special.expit(a + slope * z), -np.inf, np.inf
    )
    assert rate[0] == pytest.approx(0.25, abs=1e-10)


def test_mar_dropout_with_baseline_adjusted_complete_case_keeps_type1_error() -> None:
    # dropout driven by the (observed, adjusted-for) baseline leaves complete-case ANCOVA valid
    cohort = default_cohort().continuous()
    design = cohort.parallel(
        30, 0.0, analysis="ancova", dropout=0.3, dropout_mechanism="MAR", dropout_slope=1.5
    )
    n = 20_000
    res = simulate(design, n, rng=121)
    assert res.engine == "patient"
    within(res.power, 0.05, n)


def test_assurance_from_a_map_normal_mixture_object() -> None:
    # fibrosim.meta.mixtures.NormalMixture exposes .sample(n, rng=): the MAP-prior route
    from fibrosim.meta.mixtures import NormalMixture

    n, sd = 50, 2.0
    s = sd * math.sqrt(2 / n)
    prior = NormalMixture(weights=[0.6, 0.4], means=[-1.0, -0.2], sds=[0.3, 0.6])
    design = ParallelDesign(n, 0.0, sd, analysis="z", sided=1, alpha=0.025)
    res = simulate(design, N_SIMS, rng=131, effect_prior=prior)
    ref = 0.6 * closed_form_assurance(-1.0, 0.09, s, 0.025) + 0.4 * closed_form_assurance(
        -0.2, 0.36, s, 0.025
    )
    within(res.power, ref, N_SIMS)
