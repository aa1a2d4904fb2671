"""Cohort model: every default traced to the defaults file, derived values recomputed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from fibrosim.trials.cohorts import (
    CohortModel,
    DrugResistance,
    default_cohort,
    load_cohort_defaults,
)

ALLOWED_CODES = {"V1", "V2", "C", "definition", "assumption"}


def test_every_default_is_cited_and_never_unverified() -> None:
    rows = load_cohort_defaults()
    meta = rows.pop("_meta")
    assert rows, "the defaults file is empty"
    cited = {p for c in meta["citations"] for p in c["used_for"]}
    for name, row in rows.items():
        assert row["code"] in ALLOWED_CODES, (name, row["code"])
        assert row["source"] and row["location"], name
        if row["code"] in {"V1", "V2", "C", "assumption"}:
            assert name in cited, f"{name} has no entry in the TOML citation list"


def test_model_reads_its_defaults_from_the_file() -> None:
    rows = load_cohort_defaults()
    c = default_cohort()
    assert c.baseline_mean == rows["baseline_pain_mean"]["value"]
    assert c.baseline_sd == rows["baseline_pain_sd"]["value"]
    assert c.baseline_corr == rows["baseline_followup_corr"]["value"]
    assert c.sd_change == rows["sd_change"]["value"]
    assert c.placebo_change == rows["placebo_change_mean"]["value"]
    assert c.inclusion_threshold == rows["inclusion_threshold"]["value"]
    assert c.dropout == rows["dropout"]["value"]
    assert c.drug_resistance.n_failed_drugs == rows["n_failed_drugs"]["value"]


def test_derived_defaults_recompute_from_their_inputs() -> None:
    rows = load_cohort_defaults()
    der = rows["_meta"]["derivations"]
    n = np.asarray(der["sd_change"]["n"], dtype=float)
    sd = np.asarray(der["sd_change"]["sd"])
    pooled = math.sqrt(np.sum((n - 1) * sd**2) / np.sum(n - 1))
    # the CSV stores 4 decimals: agreement to half a unit of the last digit
    assert rows["sd_change"]["value"] == pytest.approx(pooled, abs=5e-5)
    n = np.asarray(der["placebo_change_mean"]["n"], dtype=float)
    mean = np.sum(n * np.asarray(der["placebo_change_mean"]["mean"])) / n.sum()
    assert rows["placebo_change_mean"]["value"] == pytest.approx(mean, abs=5e-5)
    # evidence file, section 1c: the 0-10 change SDs lie in 2.3-3.0
    assert 2.3 <= rows["sd_change"]["value"] <= 3.0


def test_followup_sd_obeys_variance_sum_law() -> None:
    c = default_cohort()
    s0, s1, rho = c.baseline_sd, c.followup_sd, c.baseline_corr
    assert s0**2 + s1**2 - 2 * rho * s0 * s1 == pytest.approx(c.sd_change**2, rel=1e-13)


def test_latent_baseline_reproduces_published_moments() -> None:
    c = default_cohort()
    mu, sigma = c.latent_baseline
    a = (c.inclusion_threshold - mu) / sigma
    mean, var = stats.truncnorm.stats(a, np.inf, loc=mu, scale=sigma, moments="mv")
    assert float(mean) == pytest.approx(6.83, abs=1e-8)
    assert math.sqrt(float(var)) == pytest.approx(1.19, abs=1e-8)


def test_responder_probability_closed_form_and_quadrature() -> None:
    c = default_cohort().continuous()
    # closed form against a direct bivariate-normal integral
    s0, s1, rho = c.baseline_sd, c.followup_sd, c.baseline_corr
    mu_y = c.baseline_mean + c.control_change - 0.7

    def integrand(x: float) -> float:
        cond_mean = mu_y + rho * s1 / s0 * (x - c.baseline_mean)
        cond_sd = s1 * math.sqrt(1 - rho * rho)
        return float(
            stats.norm.pdf(x, c.baseline_mean, s0) * stats.norm.cdf(0.7 * x, cond_mean, cond_sd)
        )

    ref = integrate.quad(integrand, -np.inf, np.inf, epsabs=1e-13)[0]
    assert c.responder_probability(-0.7, 0.3) == pytest.approx(ref, abs=1e-10)
    # a threshold 8 SDs below the mean truncates nothing: quadrature = closed form
    far = CohortModel(6.83, 1.19, 0.48, 2.5977, -1.29, inclusion_threshold=6.83 - 8 * 1.19)
    near = CohortModel(6.83, 1.19, 0.48, 2.5977, -1.29)
    assert far.responder_probability(-0.5, 0.5) == pytest.approx(
        near.responder_probability(-0.5, 0.5), abs=1e-9
    )


def test_placebo_calibration_hits_the_target() -> None:
    c = default_cohort().calibrate_placebo_change(0.308, 0.3)
    assert c.responder_probability(0.0, 0.3) == pytest.approx(0.308, abs=1e-10)
    rates = default_cohort().placebo_responder_rates()
    assert set(rates) == {0.3, 0.5}
    assert rates[0.3] > rates[0.5]


def test_drug_resistance_rule_scales_effect_and_placebo() -> None:
    dr = DrugResistance(3, effect_retention=0.8, placebo_retention=0.5)
    assert dr.effect_multiplier == pytest.approx(0.512)
    assert dr.placebo_multiplier == pytest.approx(0.125)
    c = default_cohort(drug_resistance=dr)
    assert c.control_change == pytest.approx(c.placebo_change * 0.125)
    design = c.parallel(40, -1.0, analysis="ancova")
    assert design.effect == pytest.approx(-0.512)
    assert design.sd == c.followup_sd and design.baseline_corr == c.baseline_corr
    multi = c.multi_arm(20, [-1.0, -0.5])
    assert multi.effects == pytest.approx((-0.512, -0.256))
    fact = c.factorial(20, -1.0, -0.5, interaction=0.2)
    assert fact.interaction == pytest.approx(0.1024)
    # the default rule changes nothing (retention 1 is the documented assumption)
    assert default_cohort().parallel(40, -1.0).effect == -1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"baseline_sd": 0.0}, r"`baseline_sd` must be > 0; got 0.0"),
        ({"baseline_corr": -1.0}, r"`baseline_corr` must lie in \(-1, 1\); got -1.0"),
        ({"sd_change": 0.1}, r"`sd_change`=0.1 is too small for `baseline_sd`=1.19"),
        ({"inclusion_threshold": 6.0}, r"needs baseline_sd < baseline_mean - inclusion_threshold"),
        ({"dropout": 1.0}, r"`dropout` must lie in \[0, 1\); got 1.0"),
        ({"scale_step": -1.0}, r"`scale_step` must be > 0 or None; got -1.0"),
        ({"scale_min": 10.0}, r"`scale_min` must be below `scale_max`; got 10.0 and 10.0"),
        ({"drug_resistance": 2}, r"`drug_resistance` must be a DrugResistance; got 2"),
    ],
)
def test_cohort_messages(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        default_cohort(**kwargs)


def test_drug_resistance_messages() -> None:
    with pytest.raises(ValueError, match=r"`n_failed_drugs` must be >= 0; got -1"):
        DrugResistance(-1)
    with pytest.raises(ValueError, match=r"`effect_retention` must be > 0; got 0.0"):
        DrugResistance(2, effect_retention=0.0)
    with pytest.raises(ValueError, match=r"`target` must lie in \(0, 1\); got 1.5"):
        default_cohort().calibrate_placebo_change(1.5)
