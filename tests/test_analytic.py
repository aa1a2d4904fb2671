"""fibrosim.trials.analytic and .endpoints against R (pwr, stats), SAS and closed forms."""

from __future__ import annotations

import functools
import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from fibrosim.trials import analytic as an
from fibrosim.trials import endpoints as ep
from fibrosim.trials import responders as rs

REFERENCE = json.loads(
    (Path(__file__).parent / "data" / "power_reference.json").read_text(encoding="utf-8")
)
RECORDS: list[dict[str, Any]] = REFERENCE["records"]

# Power from R's pt/pnorm (noncentral t accurate to ~1e-12) and ours agree far below this; the
# stored values have 15 significant digits.
RTOL_POWER = 1e-8
# n from power.t.test(tol = 1e-12) vs our root (xrtol 1e-13): both far below 1e-8 relative.
RTOL_N = 1e-8
# pwr 1.3.0 finds n by uniroot at its default tol = .Machine$double.eps^0.25 (absolute on n).
ATOL_PWR_UNIROOT = np.finfo(float).eps ** 0.25


def _group(name: str) -> list[dict[str, Any]]:
    return [r for r in RECORDS if r["group"] == name]


def test_reference_grid_is_complete() -> None:
    # a guard so the comparison cannot quietly shrink when the R script changes
    counts = Counter(r["group"] for r in RECORDS)
    assert counts == {
        "pwr.t.test power": 648,
        "pwr.t.test n": 32,
        "power.t.test n": 96,
        "power.t.test power": 48,
        "pwr.t2n.test power": 24,
        "pwr.2p.test power": 32,
        "pwr.2p.test n": 3,
        "power.prop.test power": 18,
    }
    assert REFERENCE["provenance"]["pwr_version"] == "1.3.0"


def _sided(alternative: object) -> int:
    return 2 if alternative == "two.sided" else 1


def test_pwr_t_test_power() -> None:
    recs = _group("pwr.t.test power")
    for type_ in ("two.sample", "one.sample", "paired"):
        for alt in ("two.sided", "greater"):
            sub = [r for r in recs if r["type"] == type_ and r["alternative"] == alt]
            d = np.array([r["d"] for r in sub])
            n = np.array([r["n"] for r in sub])
            alpha = np.array([r["sig_level"] for r in sub])
            ref = np.array([r["value"] for r in sub])
            if type_ == "two.sample":
                got = an.power_ttest(d, 1.0, n, alpha, _sided(alt))
            else:
                got = an.power_paired(d, 1.0, n, alpha, _sided(alt))
            np.testing.assert_allclose(got, ref, rtol=RTOL_POWER, atol=0)


def test_pwr_t_test_n_within_uniroot_tolerance() -> None:
    recs = _group("pwr.t.test n")
    d = np.array([r["d"] for r in recs])
    power = np.array([r["power"] for r in recs])
    alpha = np.array([r["sig_level"] for r in recs])
    sided = np.array([_sided(r["alternative"]) for r in recs])
    ref = np.array([r["value"] for r in recs])
    got = np.where(
        sided == 2,
        an.sample_size_ttest(d, 1.0, power, alpha, 2).n_per_arm,
        an.sample_size_ttest(d, 1.0, power, alpha, 1).n_per_arm,
    )
    np.testing.assert_allclose(got, ref, rtol=0, atol=ATOL_PWR_UNIROOT)


def test_power_t_test_n_high_precision() -> None:
    for r in _group("power.t.test n"):
        sided = 2 if r["alternative"] == "two.sided" else 1
        if r["type"] == "two.sample":
            got = an.sample_size_ttest(r["delta"], 1.0, r["power"], r["sig_level"], sided)
        else:
            got = an.sample_size_paired(r["delta"], 1.0, r["power"], r["sig_level"], sided)
        np.testing.assert_allclose(got.n_per_arm, r["value"], rtol=RTOL_N, err_msg=r["call"])


def test_power_t_test_paired_power_with_sd() -> None:
    for r in _group("power.t.test power"):
        sided = 2 if r["alternative"] == "two.sided" else 1
        got = an.power_paired(r["delta"], r["sd"], r["n"], r["sig_level"], sided)
        np.testing.assert_allclose(got, r["value"], rtol=RTOL_POWER, err_msg=r["call"])


def test_pwr_t2n_unequal_groups() -> None:
    for r in _group("pwr.t2n.test power"):
        got = an.power_ttest(
            r["d"],
            1.0,
            r["n1"],
            r["sig_level"],
            _sided(r["alternative"]),
            ratio=r["n2"] / r["n1"],
        )
        np.testing.assert_allclose(got, r["value"], rtol=RTOL_POWER, err_msg=r["call"])


def test_pwr_2p_arcsine() -> None:
    for r in _group("pwr.2p.test power"):
        got = rs.power_two_proportions(
            r["p1"], r["p2"], r["n"], r["sig_level"], _sided(r["alternative"]), method="arcsine"
        )
        np.testing.assert_allclose(got, r["value"], rtol=RTOL_POWER, err_msg=r["call"])
    for r in _group("pwr.2p.test n"):
        ss = rs.sample_size_two_proportions(r["p1"], r["p2"], r["power"], method="arcsine")
        np.testing.assert_allclose(ss.n_per_arm, r["value"], atol=ATOL_PWR_UNIROOT)


def test_power_prop_test_normal() -> None:
    for r in _group("power.prop.test power"):
        sided = 2 if r["alternative"] == "two.sided" else 1
        got = rs.power_two_proportions(r["p1"], r["p2"], r["n"], r["sig_level"], sided)
        np.testing.assert_allclose(got, r["value"], rtol=RTOL_POWER, err_msg=r["call"])


# ------------------------------------------------------------------------------------------
# published anchors
# ------------------------------------------------------------------------------------------
def test_anchor_d05_exact_and_z() -> None:
    # anchors.md: pwr.t.test(d = 0.5, power = 0.8) -> 63.7656 (exact); z approximation 62.7910
    exact = an.sample_size_ttest(0.5, 1.0, 0.8, 0.05, 2)
    assert abs(exact.n_per_arm - 63.7656) < 5e-5  # published to 4 decimals
    assert exact.n_per_arm_rounded == 64
    np.testing.assert_allclose(exact.power_attained, an.power_ttest(0.5, 1.0, 64), rtol=1e-15)
    z = an.sample_size_ztest(0.5, 1.0, 0.8, 0.05, 2)
    assert abs(z.n_per_arm - 62.7910) < 5e-5
    assert z.n_per_arm_rounded == 63


def test_anchor_sas_paired_means() -> None:
    # SAS PROC POWER PAIREDMEANS example: means 330/310, sds 40/55, corr 0.3, alpha 0.01,
    # 100 pairs: power 0.86538 one-sided, 0.80084 two-sided (published to 5 decimals)
    sd = an.paired_sd_diff(40.0, 55.0, 0.3)
    assert abs(an.power_paired(330 - 310, sd, 100, 0.01, 1) - 0.86538) < 5e-6
    assert abs(an.power_paired(330 - 310, sd, 100, 0.01, 2) - 0.80084) < 5e-6


# ------------------------------------------------------------------------------------------
# numerical robustness (the SciPy nct trap) and vectorisation
# ------------------------------------------------------------------------------------------
def test_power_is_finite_and_monotone_over_wide_n() -> None:
    n = np.geomspace(2, 1e5, 400)[:, None]
    d = np.array([1e-3, 0.05, 0.2, 0.5, 1.0, 3.0])
    for sided in (1, 2):
        p = an.power_ttest(d, 1.0, n, 0.05, sided)
        assert np.all(np.isfinite(p))
        assert np.all(np.diff(p, axis=0) >= -1e-15)
        assert np.all((p >= 0.05 / sided * (1 - 1e-12)) & (p <= 1.0))
    # n = 1000 per arm, d = 0.5: nct.cdf(-c, 1998, 11.18) is NaN in SciPy; the tail is 0
    assert an.power_ttest(0.5, 1.0, 1000) == 1.0


def test_sample_size_for_tiny_effect_brackets_far() -> None:
    res = an.sample_size_ttest(0.005, 1.0, 0.9)
    z = an.sample_size_ztest(0.005, 1.0, 0.9)
    assert 0 < res.n_per_arm - z.n_per_arm < 3  # exact t needs about one more subject
    np.testing.assert_allclose(an.power_ttest(0.005, 1.0, res.n_per_arm), 0.9, rtol=1e-10)


def test_vectorised_equals_looped() -> None:
    d = np.array([0.2, 0.5, 0.9])[:, None]
    n = np.array([5.0, 40.0, 300.0])
    grid = an.power_ttest(d, 1.3, n, 0.05, 2, ratio=1.5)
    for i in range(3):
        for j in range(3):
            assert abs(grid[i, j] - an.power_ttest(d[i, 0], 1.3, n[j], ratio=1.5)) < 1e-14
    ss = an.sample_size_ttest(d, 1.0, [[0.8, 0.9]])
    assert ss.n_per_arm.shape == (3, 2)
    assert abs(ss.n_per_arm[1, 1] - an.sample_size_ttest(0.5, 1.0, 0.9).n_per_arm) < 1e-9


def test_negative_delta_is_same_power() -> None:
    # the test is taken in the direction of delta (FM benefit is a negative change)
    np.testing.assert_array_equal(
        an.power_ttest(-0.4, 1.0, 30, sided=1), an.power_ttest(0.4, 1.0, 30, sided=1)
    )


def test_welch_reduces_to_pooled_with_equal_sds_and_arms() -> None:
    # with equal SDs and n, the Satterthwaite df equals 2n - 2
    np.testing.assert_allclose(
        an.power_ttest(0.5, 1.0, [5, 20, 80], sd_c=1.0),
        an.power_ttest(0.5, 1.0, [5, 20, 80]),
        rtol=1e-13,
    )
    # swapping which arm is larger and which SD goes with it leaves the power unchanged
    a = an.power_ttest(0.5, 1.0, 20, ratio=2.0, sd_c=2.0)
    b = an.power_ttest(0.5, 2.0, 40, ratio=0.5, sd_c=1.0)
    np.testing.assert_allclose(a, b, rtol=1e-13)


def test_z_power_closed_form() -> None:
    n, d = 50.0, 0.4
    ncp = d / np.sqrt(2 / n)
    c = stats.norm.isf(0.025)
    expected = stats.norm.cdf(ncp - c) + stats.norm.cdf(-ncp - c)
    assert abs(an.power_ztest(d, 1.0, n) - expected) < 1e-15


# ------------------------------------------------------------------------------------------
# solve_ttest
# ------------------------------------------------------------------------------------------
def test_solve_round_trips() -> None:
    s_n = an.solve_ttest(delta=0.4, sd=1.2, n_per_arm=None, power=0.85, ratio=2.0)
    np.testing.assert_allclose(an.power_ttest(0.4, 1.2, s_n.n_per_arm, ratio=2.0), 0.85, rtol=1e-11)
    s_d = an.solve_ttest(delta=None, sd=1.2, n_per_arm=40, power=0.9, sided=1)
    np.testing.assert_allclose(an.power_ttest(s_d.delta, 1.2, 40, sided=1), 0.9, rtol=1e-11)
    s_r = an.solve_ttest(delta=0.5, n_per_arm=45, power=0.8, ratio=None)
    np.testing.assert_allclose(an.power_ttest(0.5, 1.0, 45, ratio=s_r.ratio), 0.8, rtol=1e-11)
    s_p = an.solve_ttest(delta=0.5, n_per_arm=64, power=None)
    assert s_p.power == an.power_ttest(0.5, 1.0, 64)
    assert s_p.solved_for == "power"
    assert s_p.to_dataframe().attrs["solved_for"] == "power"


def test_solve_vectorised_over_power() -> None:
    sol = an.solve_ttest(delta=[0.3, 0.6], n_per_arm=None, power=0.8)
    np.testing.assert_allclose(
        sol.n_per_arm, an.sample_size_ttest([0.3, 0.6], 1.0).n_per_arm, rtol=1e-14
    )


def test_solve_impossible_requests_raise_with_reason() -> None:
    with pytest.raises(ValueError, match=r"exactly one of `delta`, `n_per_arm`, `power`, `ratio`"):
        an.solve_ttest(delta=None, n_per_arm=None, power=0.8)
    with pytest.raises(ValueError, match=r"`power` must exceed the rejection rate at delta = 0"):
        an.solve_ttest(delta=0.5, n_per_arm=None, power=0.04)
    with pytest.raises(ValueError, match=r"`delta` must be non-zero"):
        an.solve_ttest(delta=0.0, n_per_arm=None, power=0.8)
    with pytest.raises(ValueError, match=r"cannot be reached by enlarging the treatment arm"):
        an.solve_ttest(delta=0.2, n_per_arm=10, power=0.9, ratio=None)
    with pytest.raises(ValueError, match=r"already exceeded with 2 subjects per arm"):
        an.sample_size_ttest(10.0, 1.0, 0.8)


# ------------------------------------------------------------------------------------------
# crossover and ANCOVA
# ------------------------------------------------------------------------------------------
def test_crossover_is_two_sample_t_on_period_differences() -> None:
    # sequences of N/2 subjects; period differences have SD sqrt(2) sd_w and the sequences'
    # mean differences differ by 2 delta
    n_total, sd_w, delta = np.array([8.0, 24.0, 90.0]), 1.7, 0.6
    expected = an.power_ttest(2 * delta, np.sqrt(2) * sd_w, n_total / 2)
    np.testing.assert_allclose(ep.power_crossover(delta, sd_w, n_total), expected, rtol=1e-13)
    ss = ep.sample_size_crossover(delta, sd_w, 0.8)
    np.testing.assert_allclose(ep.power_crossover(delta, sd_w, ss.n_per_arm), 0.8, rtol=1e-11)


def test_crossover_sd_from_icc() -> None:
    # SMD 0.5 between subjects with ICC 0.6 -> 0.5 / sqrt(0.4) on the within-subject scale
    sd_w = ep.crossover_sd_within(1.0, 0.6)
    assert abs(sd_w - np.sqrt(0.4)) < 1e-15


def test_ancova_exact_against_simulation() -> None:
    # independent check: simulate the ANCOVA t test (normal covariate, random allocation)
    rng = np.random.default_rng(20261127)
    reps, n, rho, delta = 40_000, 10, 0.6, 0.6
    x = rng.standard_normal((reps, 2 * n))
    treat = np.repeat([0.0, 1.0], n)
    y = delta * treat + rho * x + np.sqrt(1 - rho**2) * rng.standard_normal((reps, 2 * n))
    design = np.stack([np.ones_like(x), np.broadcast_to(treat, x.shape), x], axis=-1)
    xtx_inv = np.linalg.inv(np.einsum("rni,rnj->rij", design, design))
    beta = np.einsum("rij,rnj,rn->ri", xtx_inv, design, y)
    resid = y - np.einsum("rni,ri->rn", design, beta)
    s2 = np.sum(resid**2, axis=1) / (2 * n - 3)
    t = beta[:, 1] / np.sqrt(s2 * xtx_inv[:, 1, 1])
    rejected = np.mean(np.abs(t) > stats.t.isf(0.025, 2 * n - 3))
    exact = ep.power_ancova(delta, 1.0, n, rho)
    mcse = np.sqrt(exact * (1 - exact) / reps)
    assert abs(rejected - exact) < 4 * mcse


def test_ancova_quadrature_converged() -> None:
    n = np.geomspace(2, 1e5, 60)[:, None]
    ncp = np.array([0.0, 0.5, 2.0, 5.0]) * np.sqrt(n / 50)
    fine = an_nodes = ep._tanh_sinh_nodes(1 / 32, 4.0)
    del an_nodes
    for sided in (1, 2):
        a = ep._ancova_exact_power(ncp, 2 * n, np.array(0.05), sided)
        b = ep._ancova_exact_power(ncp, 2 * n, np.array(0.05), sided, fine)
        assert np.max(np.abs(a - b)) < 1e-12


def test_ancova_shortcut_and_exact() -> None:
    n = np.array([4.0, 10.0, 30.0, 300.0])
    exact = ep.power_ancova(0.5, 1.0, n, 0.5)
    short = ep.power_ancova(0.5, 1.0, n, 0.5, method="shortcut")
    assert np.all(exact < short)  # the shortcut ignores the lost df and covariate imbalance
    assert abs(exact[-1] - short[-1]) < 1e-3
    # Borm et al.: n_ANCOVA ~ (1 - rho^2) n_t
    ss = ep.sample_size_ancova(0.3, 1.0, 0.5, method="shortcut")
    ratio = ss.n_per_arm / an.sample_size_ttest(0.3, 1.0).n_per_arm
    assert abs(ratio - 0.75) < 0.002
    ex = ep.sample_size_ancova(0.3, 1.0, 0.5)
    np.testing.assert_allclose(ep.power_ancova(0.3, 1.0, ex.n_per_arm, 0.5), 0.8, rtol=1e-10)
    assert ex.n_per_arm > ss.n_per_arm


# ------------------------------------------------------------------------------------------
# responders, dichotomising, dropout
# ------------------------------------------------------------------------------------------
def test_continuity_correction_matches_fleiss_formula() -> None:
    # Fleiss, Tytun & Ury (1980), equal arms: n_cc = n/4 (1 + sqrt(1 + 4 / (n |p1 - p2|)))^2
    for p1, p2 in [(0.5, 0.3), (0.4, 0.25), (0.2, 0.1)]:
        n = rs.sample_size_two_proportions(p1, p2, method="normal").n_per_arm
        n_cc = rs.sample_size_two_proportions(p1, p2, method="normal-cc").n_per_arm
        fleiss = n / 4 * (1 + np.sqrt(1 + 4 / (n * abs(p1 - p2)))) ** 2
        # the formula drops the far tail (< 1e-5 of power here), the solver keeps it
        np.testing.assert_allclose(n_cc, fleiss, rtol=1e-4)


def test_normal_sample_size_matches_closed_form() -> None:
    p1, p2 = 0.45, 0.25
    za, zb = stats.norm.isf(0.05), stats.norm.isf(0.2)
    pbar = (p1 + p2) / 2
    closed = (
        (za * np.sqrt(2 * pbar * (1 - pbar)) + zb * np.sqrt(p1 * (1 - p1) + p2 * (1 - p2)))
        / (p1 - p2)
    ) ** 2
    got = rs.sample_size_two_proportions(p1, p2, 0.8, 0.05, sided=1).n_per_arm
    np.testing.assert_allclose(got, closed, rtol=1e-11)


def test_responder_probability_and_loss() -> None:
    p30 = rs.responder_probability(-1.5, 2.0, 6.5, 0.3)
    p50 = rs.responder_probability(-1.5, 2.0, 6.5, 0.5)
    assert abs(p30 - stats.norm.cdf((-1.95 + 1.5) / 2.0)) < 1e-15
    assert p50 < p30
    loss = rs.dichotomisation_loss(-1.0, -1.0, 2.0, 6.5, [0.3, 0.5])
    assert np.all(loss.efficiency < 1)  # dichotomising never gains information
    # cutting at the median of a normal keeps 2/pi of the information (small effect limit)
    small = rs.dichotomisation_loss(-0.01, -2.0, 2.0, 4.0, 0.5)
    assert abs(small.efficiency - 2 / np.pi) < 1e-3
    assert loss.to_dataframe().shape == (2, 5)


def test_dropout_inflation() -> None:
    np.testing.assert_allclose(ep.inflate_for_dropout([64, 100], [0.2, 0.0]), [80.0, 100.0])


# ------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------
def test_sample_size_result_shows_itself() -> None:
    res = an.sample_size_ttest([0.3, 0.5], 1.0)
    frame = res.to_dataframe()
    assert list(frame.columns) == ["n_per_arm", "n_per_arm_rounded", "power_attained", "n_total"]
    assert "SampleSize" in repr(res) and "n_per_arm_rounded" in repr(res)
    with pytest.raises(AttributeError):
        res.n_per_arm = np.ones(2)  # type: ignore[misc]


# ------------------------------------------------------------------------------------------
# bad input: messages pinned
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: an.power_ttest(0.5, 1.0, 20, alpha=1.2),
            r"`alpha` must lie in \(0.0, 1.0\); got 1.2",
        ),
        (lambda: an.power_ttest(0.5, 1.0, 20, alpha=0.0), r"`alpha` must lie in \(0.0, 1.0\)"),
        (lambda: an.power_ttest(0.5, 1.0, 20, sided=3), r"`sided` must be 1 or 2; got 3"),
        (
            lambda: an.power_ttest(0.5, 1.0, [20, 1.5]),
            r"`n_per_arm` must be >= 2; got 1.5 \(first at index 1\)",
        ),
        (lambda: an.power_ttest(0.5, -1.0, 20), r"`sd` must be > 0; got -1.0"),
        (
            lambda: an.power_ttest(0.5, 1.0, 20, ratio=0.05),
            r"`n_per_arm \* ratio` must be >= 2; got 1",
        ),
        (lambda: an.power_ttest(np.inf, 1.0, 20), r"`delta` must be finite; got inf"),
        (
            lambda: an.sample_size_ttest(0.5, 1.0, power=0.05),
            r"`power` must exceed the rejection rate at delta = 0, alpha = 0.05; got 0.05",
        ),
        (lambda: an.sample_size_ttest(0.5, 1.0, power=1.0), r"`power` must lie in \(0.0, 1.0\)"),
        (lambda: an.sample_size_ttest(0.0, 1.0), r"`delta` must be non-zero"),
        (lambda: an.sample_size_ztest([0.5, 0.0], 1.0), r"got 0 \(first at index 1\)"),
        (lambda: an.power_paired(0.5, 1.0, 1), r"`n_pairs` must be >= 2"),
        (lambda: an.paired_sd_diff(1.0, 1.0, 1.5), r"`rho` must lie in \[-1.0, 1.0\]; got 1.5"),
        (lambda: ep.power_crossover(0.5, 1.0, 3), r"`n_total` must be >= 4; got 3"),
        (lambda: ep.crossover_sd_within(1.0, 1.0), r"`icc` must lie in \[0.0, 1.0\); got 1.0"),
        (lambda: ep.power_ancova(0.5, 1.0, 20, 1.0), r"`rho` must lie in \(-1.0, 1.0\); got 1.0"),
        (
            lambda: ep.power_ancova(0.5, 1.0, 20, 0.5, method="borm"),
            r"`method` must be one of 'exact', 'shortcut'; got 'borm'",
        ),
        (
            lambda: rs.power_two_proportions(1.0, 0.3, 50),
            r"`p_t` must lie in \(0.0, 1.0\); got 1.0",
        ),
        (lambda: rs.sample_size_two_proportions(0.3, 0.3), r"`p_t` must differ from `p_c`"),
        (
            lambda: rs.power_two_proportions(0.4, 0.3, 50, method="exact"),
            r"`method` must be one of 'normal', 'normal-cc', 'arcsine'",
        ),
        (
            lambda: rs.responder_probability(-1, 2, 6, 0.0),
            r"`reduction` must lie in \(0.0, 1.0\]; got 0.0",
        ),
        (lambda: ep.inflate_for_dropout(50, 1.0), r"`dropout` must lie in \[0.0, 1.0\); got 1.0"),
        (
            lambda: an.power_ttest([0.5, 0.2, 0.1], 1.0, [10, 20]),
            r"arguments do not broadcast together: `delta` \(3,\), `sd` \(\), `n_per_arm` \(2,\)",
        ),
    ],
)
def test_bad_input_messages(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def test_non_numeric_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"`delta` must be numeric; got 'a'"):
        an.power_ttest("a", 1.0, 20)


# ------------------------------------------------------------------------------------------
# power over a labelled grid
# ------------------------------------------------------------------------------------------
def test_power_grid_against_statsmodels() -> None:
    import warnings

    from statsmodels.stats.power import TTestIndPower

    from fibrosim.trials.grid_power import power_grid

    d = np.linspace(0.05, 1.5, 40)
    n = np.linspace(2, 1500, 50)
    ds = power_grid(an.power_ttest, delta=d, n_per_arm=n, sd=1.0, alpha=0.05)
    assert ds.power.dims == ("delta", "n_per_arm") and ds.power.shape == (40, 50)
    np.testing.assert_array_equal(ds.delta.values, d)
    assert ds.attrs["function"] == "fibrosim.trials.analytic.power_ttest"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' nct.cdf far tail warns and gives NaN
        ref = TTestIndPower().power(
            effect_size=d[:, None],
            nobs1=n[None, :],
            alpha=0.05,
            ratio=1.0,
            alternative="two-sided",
        )
    finite = np.isfinite(ref)
    # statsmodels uses the same noncentral t; agreement to rounding where it is finite
    np.testing.assert_allclose(ds.power.values[finite], ref[finite], rtol=1e-12)
    assert np.all(np.isfinite(ds.power.values))


def test_power_grid_of_a_result_and_bad_axes() -> None:
    from fibrosim.trials.grid_power import power_grid

    ds = power_grid(an.sample_size_ttest, delta=[0.3, 0.5], power=[0.8, 0.9], sd=1.0)
    assert set(ds.data_vars) == {"n_per_arm", "n_per_arm_rounded", "power_attained", "n_total"}
    assert abs(ds.n_per_arm.sel(delta=0.5, power=0.8) - 63.7656) < 5e-5
    with pytest.raises(ValueError, match=r"axis `delta` must be a non-empty 1-D sequence"):
        power_grid(an.power_ttest, delta=[[0.3]], sd=1.0, n_per_arm=20)
    with pytest.raises(ValueError, match=r"power_grid needs at least one 1-D axis"):
        power_grid(an.power_ttest, delta=0.3, sd=1.0, n_per_arm=20)


# ------------------------------------------------------------------------------------------
# several endpoints / arms (fibrosim.trials.multiplicity)
# ------------------------------------------------------------------------------------------
def _mc_procedures(ncp: np.ndarray, rho: float, alpha: float, reps: int, seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, rho], [rho, 1.0]])
    z = rng.multivariate_normal(ncp, cov, size=reps)
    p = stats.norm.sf(z)
    out: dict[str, Any] = {}
    rej = p <= alpha / 2
    out["bonferroni"] = rej
    lo, hi = np.minimum(p[:, 0], p[:, 1]), np.maximum(p[:, 0], p[:, 1])
    first = p[:, 0] <= p[:, 1]
    holm_min = lo <= alpha / 2
    holm_both = holm_min & (hi <= alpha)
    holm = np.where(first[:, None], np.c_[holm_min, holm_both], np.c_[holm_both, holm_min])
    out["holm"] = holm
    hoch_both = hi <= alpha
    hoch_min = hoch_both | (lo <= alpha / 2)
    out["hochberg"] = np.where(
        first[:, None], np.c_[hoch_min, hoch_both], np.c_[hoch_both, hoch_min]
    )
    s1 = p[:, 0] <= alpha
    out["fixed-sequence"] = np.c_[s1, s1 & (p[:, 1] <= alpha)]
    return out


def test_multiple_primary_against_monte_carlo() -> None:
    from fibrosim.trials import multiplicity as mp

    delta, n, rho, alpha, reps = np.array([0.4, 0.3]), 100, 0.5, 0.025, 400_000
    ncp = delta / np.sqrt(2 / n)
    sims = _mc_procedures(ncp, rho, alpha, reps, seed=99)
    for method, rej in sims.items():
        res = mp.power_multiple_primary(delta, 1.0, n, rho, alpha, method=method)
        for exact, mc in (
            (res.each[0], rej[:, 0].mean()),
            (res.each[1], rej[:, 1].mean()),
            (res.any, rej.any(axis=1).mean()),
            (res.all, rej.all(axis=1).mean()),
        ):
            assert abs(exact - mc) < 4 * np.sqrt(exact * (1 - exact) / reps), method


def test_coprimary_against_independent_integrators() -> None:
    from fibrosim.trials import multiplicity as mp

    # independent endpoints: the product of the marginal powers
    marg = an.power_ztest([0.4, 0.3], 1.0, 120, 0.025, sided=1)
    assert abs(mp.power_coprimary([0.4, 0.3], 1.0, 120, 0.0) - np.prod(marg)) < 1e-14
    # two endpoints (Owen's T) against SciPy's QMC integrator; three endpoints by QMC
    ncp = np.array([0.4, 0.3]) / np.sqrt(2 / 120)
    c = stats.norm.isf(0.025)
    ref = stats.multivariate_normal.cdf(
        ncp - c, cov=[[1, 0.6], [0.6, 1]], abseps=1e-10, releps=0, maxpts=10**6, rng=1
    )
    assert abs(mp.power_coprimary([0.4, 0.3], 1.0, 120, 0.6) - ref) < 1e-8
    corr3 = np.array([[1, 0.5, 0.3], [0.5, 1, 0.4], [0.3, 0.4, 1]])
    rng = np.random.default_rng(4)
    ncp3 = np.array([0.4, 0.4, 0.35]) / np.sqrt(2 / 130)
    z = rng.multivariate_normal(ncp3, corr3, size=400_000)
    mc = np.all(z > c, axis=1).mean()
    exact = mp.power_coprimary([0.4, 0.4, 0.35], 1.0, 130, corr3)
    assert abs(exact - mc) < 4 * np.sqrt(exact * (1 - exact) / 400_000)
    # batch of sample sizes along a leading axis
    batch = mp.power_coprimary([0.4, 0.3], 1.0, np.array([[50.0], [120.0]]), 0.6)
    assert batch.shape == (2,) and abs(batch[1] - ref) < 1e-8


def test_dunnett_against_multivariate_normal() -> None:
    from fibrosim.trials import multiarm as mp

    for k in (2, 3, 4):
        c = mp.dunnett_critical(k, 0.025, 0.5)
        cov = np.full((k, k), 0.5) + 0.5 * np.eye(k)
        p = stats.multivariate_normal.cdf(
            np.full(k, c), cov=cov, abseps=1e-9, releps=0, maxpts=10**6, rng=2
        )
        assert abs(p - 0.975) < 1e-7
    assert abs(mp.dunnett_critical(1) - stats.norm.isf(0.025)) < 1e-10
    res = mp.power_multiarm([0.5, 0.3, 0.4], 1.0, 80, 3)
    c = mp.dunnett_critical(3)
    ncp = np.array([0.5, 0.3, 0.4]) / np.sqrt(2 / 80)
    none = stats.multivariate_normal.cdf(
        c - ncp,
        cov=np.full((3, 3), 0.5) + 0.5 * np.eye(3),
        abseps=1e-9,
        releps=0,
        maxpts=10**6,
        rng=2,
    )
    assert abs(res.any - (1 - none)) < 1e-7
    bonf = mp.power_multiarm(0.5, 1.0, 80, 3, method="bonferroni")
    assert np.all(bonf.each < mp.power_multiarm(0.5, 1.0, 80, 3).each)
    assert "each_3" in bonf.to_dataframe().columns and "MultiplePower" in repr(bonf)


def test_dunnett_multivariate_t_critical_values() -> None:
    from fibrosim.trials import multiarm as mp

    # one arm: Dunnett's value is the t quantile
    for df in (3.0, 17.0, 240.0):
        assert abs(mp.dunnett_critical(1, 0.025, df=df) - stats.t.isf(0.025, df)) < 1e-10
    # df -> infinity: the z value (S concentrates at 1; the difference is O(1/df))
    assert abs(mp.dunnett_critical(3, df=1e9) - mp.dunnett_critical(3)) < 1e-7
    # SciPy's multivariate t (Genz-Bretz quasi-Monte Carlo, 2e6 points) at the critical value;
    # unequal allocation (rho = 2/3) included.  Over 5 seeds SciPy's values scatter by up to
    # 1.1e-7 around 0.95, so 5e-7 bounds its error, not ours.
    rng = np.random.default_rng(5)
    for k, df, rho in ((2, 12.0, 0.5), (3, 30.0, 0.5), (4, 8.0, 2.0 / 3.0)):
        c = mp.dunnett_critical(k, 0.05, rho, df=df)
        shape = np.full((k, k), rho) + (1.0 - rho) * np.eye(k)
        p = stats.multivariate_t(shape=shape, df=df, seed=rng).cdf(np.full(k, c), maxpts=2_000_000)
        assert abs(p - 0.95) < 5e-7
    # the S rule integrates the moments of chi²/df (mean 1, variance 2/df) to near machine
    # precision (the weights are normalised to sum 1, so the moments check the density's shape)
    for df in (1.0, 2.5, 3.7, 40.0, 1e5, 1e9):
        s, w = mp._s_rule(df)
        assert abs(w @ s**2 - 1.0) < 1e-12 and abs(w @ s**4 - (1.0 + 2.0 / df)) < 1e-11


def test_multiarm_t_power_against_noncentral_t_and_simulation() -> None:
    from fibrosim.trials import multiarm as mp

    n, k, delta = 20.0, 3, np.array([0.9, 0.6, 0.0])
    res = mp.power_multiarm(delta, 1.0, n, k, test="t")
    df = 4 * n - 4
    c = mp.dunnett_critical(k, df=df)
    # each arm's power is a univariate noncentral t tail
    np.testing.assert_allclose(res.each, stats.nct.sf(c, df, delta / np.sqrt(2 / n)), atol=1e-11)
    # any / all against trials simulated from patient data with the pooled-variance t test
    # (2e5 trials; 4 MCSE bounds)
    rng = np.random.default_rng(6)
    reps = 200_000
    x = rng.standard_normal((reps, k + 1, int(n)))
    x[:, 1:, :] += delta[:, None]
    means = x.mean(axis=2)
    s2 = ((x - means[:, :, None]) ** 2).sum(axis=(1, 2)) / df
    t = (means[:, 1:] - means[:, :1]) / np.sqrt(s2[:, None] * 2.0 / n)
    rej = t > c
    for got, hits in ((res.any, rej.any(axis=1)), (res.all, rej.all(axis=1))):
        p = hits.mean()
        assert abs(got - p) < 4 * np.sqrt(max(p * (1 - p), 1e-12) / reps) + 1e-12
    # Bonferroni with t: each arm at t_{df}(alpha / k)
    bonf = mp.power_multiarm(delta, 1.0, n, k, method="bonferroni", test="t")
    cb = stats.t.isf(0.025 / k, df)
    np.testing.assert_allclose(bonf.each, stats.nct.sf(cb, df, delta / np.sqrt(2 / n)), atol=1e-11)
    # the t test costs power against known variance, little at this df
    z = mp.power_multiarm(delta, 1.0, n, k)
    assert np.all(res.each[:2] < z.each[:2]) and res.any < z.any


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda mp: mp.power_coprimary(0.4, 1.0, 50, 0.5),
            r"`delta` must hold one effect per endpoint",
        ),
        (
            lambda mp: mp.power_coprimary([0.4, 0.3], 1.0, 50, [[1, 2], [2, 1]]),
            r"`corr` must be positive definite",
        ),
        (
            lambda mp: mp.power_coprimary([0.4, 0.3], 1.0, 50, np.eye(3)),
            r"`corr` must be a scalar or a symmetric 2 x 2",
        ),
        (
            lambda mp: mp.power_multiple_primary(
                [0.4, 0.3, 0.2, 0.2, 0.1], 1.0, 50, 0.5, method="holm"
            ),
            r"method='holm' is computed for up to 4 endpoints; got 5\. .* simulate a "
            r"MultiEndpointDesign",
        ),
        (
            lambda mp: mp.power_multiple_primary([0.4, 0.3], 1.0, 50, 0.5, method="sidak"),
            r"`method` must be one of 'bonferroni', 'holm'",
        ),
        (lambda mp: mp.power_multiarm(0.4, 1.0, 50, 0), r"`n_arms` must be >= 1; got 0"),
        (
            lambda mp: mp.dunnett_critical(2, alpha=0.7),
            r"`alpha` must lie in \(0.0, 0.5\); got 0.7",
        ),
        (lambda mp: mp.dunnett_critical(2, df=0), r"`df` must be > 0; got 0"),
        (
            lambda mp: mp.power_multiarm(0.4, 1.0, 1, 3, test="t"),
            r"test='t' needs more patients than arms: n_per_arm = 1 with ratio 1 and 3 arms "
            r"leaves df = 0",
        ),
        (lambda mp: mp.power_multiarm(0.4, 1.0, 50, 2, test="welch"), r"`test` must be one of"),
    ],
)
def test_multiplicity_bad_input(call, message) -> None:  # type: ignore[no-untyped-def]
    import fibrosim.trials as trials

    with pytest.raises(ValueError, match=message):
        call(trials)


# ---------------------------------------------------------------------------------------------
# Fisher's exact test (fibrosim.trials._fisher, method="fisher")


def test_fisher_pvalue_tables_match_scipy_fisher_exact() -> None:
    from fibrosim.trials import _fisher

    # SciPy's fisher_exact follows R's fisher.test (two-sided: tables no more likely than the
    # observed one, relative tolerance 1e-7); every table of 60 random arm-size pairs
    rng = np.random.default_rng(31)
    worst = 0.0
    for _ in range(60):
        n_t, n_c = (int(v) for v in rng.integers(1, 30, 2))
        for sided, alternative in ((1, "greater"), (2, "two-sided")):
            table = _fisher.pvalue_table(n_t, n_c, sided)
            for x_t in range(n_t + 1):
                for x_c in range(0, n_c + 1, 3):
                    ref = stats.fisher_exact(
                        [[x_t, n_t - x_t], [x_c, n_c - x_c]], alternative=alternative
                    ).pvalue
                    worst = max(worst, abs(table[x_t, x_c] - ref) / ref)
    assert worst < 1e-12


def test_fisher_exact_power_equals_enumeration_and_simulation() -> None:
    from fibrosim.trials import _fisher

    # brute force: every table's SciPy p-value weighted by its binomial probability
    n_t, n_c, p_t, p_c = 7, 9, 0.7, 0.2
    for sided, alternative in ((1, "greater"), (2, "two-sided")):
        brute = sum(
            stats.binom.pmf(x_t, n_t, p_t) * stats.binom.pmf(x_c, n_c, p_c)
            for x_t in range(n_t + 1)
            for x_c in range(n_c + 1)
            if stats.fisher_exact(
                [[x_t, n_t - x_t], [x_c, n_c - x_c]], alternative=alternative
            ).pvalue
            <= 0.05
        )
        assert abs(_fisher.exact_power(p_t, p_c, n_t, n_c, 0.05, sided) - brute) < 1e-13
    # simulated trials of 30 + 30 patients (4e5; 4 MCSE)
    rng = np.random.default_rng(32)
    reps = 400_000
    x_t = rng.binomial(30, 0.55, reps)
    x_c = rng.binomial(30, 0.25, reps)
    n = np.full(reps, 30)
    p = _fisher.fisher_pvalues(x_t, n, x_c, n, 2)
    hits = float(np.mean(p <= 0.05))
    exact = float(rs.power_two_proportions(0.55, 0.25, 30, method="fisher"))
    assert abs(hits - exact) < 4 * np.sqrt(exact * (1 - exact) / reps)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_fisher_is_exact_level_and_conservative(p: float) -> None:
    # under H0 the rejection probability never exceeds alpha, whatever the common rate
    for n in (10, 25, 40):
        for sided in (1, 2):
            size = float(rs.power_two_proportions(p, p, n, 0.05, sided, method="fisher"))
            assert 0.0 <= size <= 0.05


def test_fisher_sample_size_and_bad_input() -> None:
    res = rs.sample_size_two_proportions(0.6, 0.3, 0.8, method="fisher")
    n = int(res.n_per_arm)
    assert float(res.power_attained) >= 0.8
    below = [float(rs.power_two_proportions(0.6, 0.3, m, method="fisher")) for m in (n - 1, n - 2)]
    assert max(below) < 0.8  # the smallest size (power is not monotone in n)
    assert n >= rs.sample_size_two_proportions(0.6, 0.3, 0.8, method="normal").n_per_arm_rounded
    # one-sided power in the direction of the true difference: arms swap symmetrically
    a = rs.power_two_proportions(0.6, 0.3, 40, sided=1, method="fisher")
    b = rs.power_two_proportions(0.3, 0.6, 40, sided=1, method="fisher")
    assert float(a) == float(b)
    # a 2:1 allocation needs an even control arm for whole arm sizes
    two_to_one = rs.sample_size_two_proportions(0.6, 0.3, 0.8, ratio=0.5, method="fisher")
    assert int(two_to_one.n_per_arm) % 2 == 0
    with pytest.raises(
        ValueError, match=r"method='fisher' needs whole arm sizes: .* got n_per_arm = 40\.5"
    ):
        rs.power_two_proportions(0.6, 0.3, 40.5, method="fisher")


# ---------------------------------------------------------------------------------------------
# Holm and Hochberg with three or four endpoints


_BOX_CASE = {
    "corr": np.array([[1.0, 0.5, 0.3], [0.5, 1.0, 0.4], [0.3, 0.4, 1.0]]),
    "delta": np.array([0.45, 0.35, 0.2]),
    "n": 70,
}


@functools.cache
def _box_probabilities() -> tuple[np.ndarray, np.ndarray]:
    """Reference: every decision box's probability by SciPy's Genz integration (abseps 1e-9)."""
    m, alpha = 3, 0.025
    ncp = _BOX_CASE["delta"] / np.sqrt(2 / _BOX_CASE["n"])
    cuts = np.concatenate([[-40.0], stats.norm.isf(alpha / np.arange(1, m + 1)), [40.0]])
    bins = np.array(list(itertools.product(range(m + 1), repeat=m)))
    prob = np.array([
        stats.multivariate_normal.cdf(
            cuts[b + 1], mean=ncp, cov=_BOX_CASE["corr"], lower_limit=cuts[b], abseps=1e-9,
            releps=0, maxpts=2_000_000, rng=1,
        )
        for b in bins
    ])  # fmt: skip
    return bins, prob


@pytest.mark.parametrize("method", ["holm", "hochberg"])
def test_stepwise_power_three_endpoints_against_box_integration(method: str) -> None:
    from fibrosim.trials import multiplicity as mp
    from fibrosim.trials._analysis import step_procedure

    res = mp.power_multiple_primary(
        _BOX_CASE["delta"], 1.0, _BOX_CASE["n"], _BOX_CASE["corr"], method=method
    )
    bins, prob = _box_probabilities()
    reject = step_procedure(np.where(bins == 0, 1.0, 0.025 / (bins + 0.5)), 0.025, method)
    # Genz's error at abseps 1e-9 over 64 boxes (measured 2.5e-8 at 1e-10); the Gauss-Legendre
    # integral itself changes by < 1e-14 from 48 to 96 nodes
    np.testing.assert_allclose(res.each, prob @ reject, atol=2e-7)
    assert res.all <= res.each.min() and res.any >= res.each.max()


def test_stepwise_power_four_endpoints_against_simulation_and_exact_null() -> None:
    from fibrosim.trials import multiplicity as mp
    from fibrosim.trials._analysis import step_procedure

    corr = np.full((4, 4), 0.3) + 0.7 * np.eye(4)
    delta = np.array([0.5, 0.4, 0.25, 0.1])
    rng = np.random.default_rng(51)
    reps = 400_000
    ncp = delta / np.sqrt(2 / 60)
    z = rng.multivariate_normal(ncp, corr, size=reps)
    for method in ("holm", "hochberg"):
        res = mp.power_multiple_primary(delta, 1.0, 60, corr, method=method)
        rej = step_procedure(stats.norm.sf(z), 0.025, method)
        # 4 MCSE of a proportion (at most sqrt(0.25 / reps))
        tol = 4 * np.sqrt(0.25 / reps)
        assert np.max(np.abs(res.each - rej.mean(axis=0))) < tol
        assert abs(res.any - rej.any(axis=1).mean()) < tol
        assert abs(res.all - rej.all(axis=1).mean()) < tol
    # under H0 with independent endpoints Holm rejects at least one exactly when the smallest
    # p-value is <= alpha / m: 1 - (1 - alpha/m)^m; Hochberg rejects more often (step-up)
    for m in (3, 4):
        null = mp.power_multiple_primary(np.zeros(m), 1.0, 60, 0.0, method="holm")
        assert abs(null.any - (1 - (1 - 0.025 / m) ** m)) < 1e-13
        up = mp.power_multiple_primary(np.zeros(m), 1.0, 60, 0.0, method="hochberg")
        assert null.any < up.any <= 0.025


def test_stepwise_power_batches_and_matches_two_endpoint_closed_form() -> None:
    from fibrosim.trials import multiplicity as mp

    # the integral with no conditioning statistic is the two-endpoint Owen's T formula
    ncp = np.array([2.5, 1.8])
    corr = np.array([[1.0, 0.5], [0.5, 1.0]])
    for method in ("holm", "hochberg"):
        each, any_, all_ = mp._stepwise_power(ncp, corr, 0.025, method)
        ref = mp.power_multiple_primary(ncp, 1.0, 2.0, 0.5, method=method)  # se = 1
        np.testing.assert_allclose(each, ref.each, atol=1e-15)
        assert abs(any_ - float(ref.any)) < 1e-15 and abs(all_ - float(ref.all)) < 1e-15
    # a batch of sample sizes along a leading axis equals the one-at-a-time results
    n = np.array([[40.0], [80.0]])
    batch = mp.power_multiple_primary([0.4, 0.3, 0.2], 1.0, n, 0.5, method="hochberg")
    for i in range(2):
        one = mp.power_multiple_primary([0.4, 0.3, 0.2], 1.0, float(n[i, 0]), 0.5,
                                        method="hochberg")  # fmt: skip
        np.testing.assert_allclose(batch.each[i], one.each, rtol=0, atol=0)
        assert batch.any[i] == one.any and batch.all[i] == one.all


def test_sample_size_coprimary() -> None:
    from fibrosim.trials import multiplicity as mp

    # independent endpoints with equal effects: Phi(a)^2 = power, a = delta sqrt(n/2) - z_alpha
    for delta, power in ((0.2, 0.8), (0.5, 0.9)):
        res = mp.sample_size_coprimary([delta, delta], 1.0, 0.0, power)
        z = stats.norm.isf(0.025) + stats.norm.ppf(np.sqrt(power))
        assert float(res.n_per_arm) == pytest.approx(2 * z**2 / delta**2, rel=1e-9)
    # correlated endpoints of either sign, unequal SDs, 2:1 allocation: the power reaches the
    # target at n (Genz's error 1e-6 for three endpoints) and the ceiling is the smallest size
    corr = np.array([[1.0, -0.4, 0.2], [-0.4, 1.0, -0.3], [0.2, -0.3, 1.0]])
    delta, sd = np.array([-0.3, 0.25, 0.2]), np.array([1.0, 1.0, 2.0])
    res = mp.sample_size_coprimary(delta, sd, corr, 0.8, ratio=2.0)
    signs = np.sign(delta)
    signed = corr * np.outer(signs, signs)
    at_n = mp.power_coprimary(np.abs(delta), sd, float(res.n_per_arm), signed, ratio=2.0)
    assert abs(float(at_n) - 0.8) < 2e-6
    n_up = int(res.n_per_arm_rounded)
    below = mp.power_coprimary(np.abs(delta), sd, n_up - 1, signed, ratio=2.0)
    assert float(res.power_attained) >= 0.8 > float(below)
    assert float(res.n_total) == pytest.approx(3.0 * float(res.n_per_arm))
    # higher positive correlation needs fewer patients (the wins go together)
    sizes = [float(mp.sample_size_coprimary([0.2, 0.2], 1.0, r).n_per_arm) for r in (0, 0.5, 0.8)]
    assert sizes[0] > sizes[1] > sizes[2]
    with pytest.raises(ValueError, match=r"`delta` must be nonzero on every endpoint"):
        mp.sample_size_coprimary([0.3, 0.0], 1.0, 0.5)
    with pytest.raises(ValueError, match=r"`power` must lie in \(0.025, 1.0\); got 0.01"):
        mp.sample_size_coprimary([0.3, 0.2], 1.0, 0.5, power=0.01)
