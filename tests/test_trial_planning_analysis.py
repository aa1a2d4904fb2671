"""analyses/a5_trial_planning.py: the trial-planning section and its key numbers.

The script runs once (module fixture) into a temporary folder.  The tests read its tables back
and check them against closed forms computed here from first principles (scipy's noncentral t
and normal distributions, the cohort defaults read straight from the CSV), against rpact's
O'Brien-Fleming bounds, and check the simulations against their closed forms within Monte Carlo
error.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

import fibrosim as fs
from fibrosim.report import Figure, Paragraph, Section, Table, analyses_dir, render_markdown
from fibrosim.trials import endpoints
from fibrosim.trials.cohorts import load_cohort_defaults

Z_ONE = float(stats.norm.isf(0.025))
#: Root-finding and noncentral-t tolerance: both sides solve to ~1e-10 relative; scipy's nct
#: cdf is accurate to ~1e-9 relative here, so 1e-6 leaves a wide margin and still catches any
#: formula error (a wrong df or ncp moves n by > 1e-2).
SOLVE_RTOL = 1e-6
#: Simulated vs closed-form probabilities: 4 MCSE (P(|Z| > 4) = 6e-5 per comparison).
K_MCSE = 4.0


def _load() -> ModuleType:
    path = analyses_dir() / "a5_trial_planning.py"
    spec = importlib.util.spec_from_file_location("test_analysis_a5_trial_planning", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, Section, Path]:
    module = _load()
    out = tmp_path_factory.mktemp("a5")
    return module, module.run(out), out


def _table(section: Section, prefix: str) -> pd.DataFrame:
    hits = [b for b in section.blocks if isinstance(b, Table) and b.caption.startswith(prefix)]
    assert len(hits) == 1, f"expected one table whose caption starts with {prefix!r}"
    return hits[0].data


def _cohort() -> tuple[float, float]:
    """Follow-up SD (variance sum law) and baseline correlation, from the CSV values."""
    rows = load_cohort_defaults()
    s0 = rows["baseline_pain_sd"]["value"]
    rho = rows["baseline_followup_corr"]["value"]
    sc = rows["sd_change"]["value"]
    return rho * s0 + math.sqrt(s0 * s0 * (rho * rho - 1.0) + sc * sc), rho


def _nct_power(ncp: float, df: float, alpha: float = 0.05) -> float:
    crit = stats.t.isf(alpha / 2, df)
    return float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))


def _solve(power_of_n: Callable[[float], float], target: float, n_z: float) -> float:
    """Root of power(n) = target, bracketed around the normal-theory size ``n_z``.

    The t answer lies within a few subjects above ``n_z``; a tight bracket keeps scipy's
    noncentral t away from the huge noncentrality parameters where it returns NaN.
    """
    low, high = max(4.5, 0.8 * n_z), 1.2 * n_z + 10.0
    return float(optimize.brentq(lambda n: power_of_n(n) - target, low, high, xtol=1e-12))


def _n_z(delta: float, sd: float, power: float) -> float:
    """2 ((z_{1-alpha/2} + z_{power}) sd / delta)^2: per-arm size, or subjects of a crossover."""
    return 2.0 * ((stats.norm.isf(0.025) + stats.norm.ppf(power)) * sd / delta) ** 2


def _two_sample_n(delta: float, sd: float, power: float) -> float:
    def power_of_n(n: float) -> float:
        return _nct_power(delta / (sd * math.sqrt(2.0 / n)), 2.0 * n - 2.0)

    return _solve(power_of_n, power, _n_z(delta, sd, power))


def _crossover_n(delta: float, sd_within: float, power: float) -> float:
    # period differences have SD sqrt(2) sd_within; the effect is half the sequence contrast,
    # so its SE is sd_within sqrt(2 / n) on n - 2 degrees of freedom
    def power_of_n(n: float) -> float:
        return _nct_power(delta * math.sqrt(n / 2.0) / sd_within, n - 2.0)

    return _solve(power_of_n, power, _n_z(delta, sd_within, power))


# -- structure -----------------------------------------------------------------------------------
def test_section_has_the_planning_tables_and_figures(
    result: tuple[ModuleType, Section, Path],
) -> None:
    module, section, out = result
    assert isinstance(section, Section)
    assert section.title == module.TITLE and section.question == module.QUESTION
    assert section.verdicts == ()  # a planning section tests no claim
    tables = [b for b in section.blocks if isinstance(b, Table)]
    figures = [b for b in section.blocks if isinstance(b, Figure)]
    assert len(tables) == 13
    assert len(figures) == 2
    for fig in figures:
        assert (out / fig.path).is_file() and (out / fig.path).stat().st_size > 10_000
    for table in tables:
        assert len(table.data) > 0
    last = section.blocks[-1]
    assert isinstance(last, Paragraph) and last.text.startswith("Recommendation.")
    assert len(section.sources) >= 10
    assert "Recommendation." in render_markdown([section], title="t", preamble="p")


# -- design prior --------------------------------------------------------------------------------
def test_design_prior_pools_the_two_sham_controlled_nrs_pain_trials(
    result: tuple[ModuleType, Section, Path],
) -> None:
    _, section, _ = result
    data = _table(section, "Per-trial pain differences")
    assert data["study"].tolist() == ["Dailey 2020", "Jamison 2021"]
    # SE from the printed 95% CI, (upper - lower) / (2 z_0.975)
    np.testing.assert_allclose(
        data["SE"], [1.6 / (2 * 1.959963984540054), 1.11 / (2 * 1.959963984540054)], rtol=1e-12
    )
    comps = _table(section, "MAP prior: normal mixture")
    assert math.isclose(comps["weight"].sum(), 1.0, abs_tol=1e-12)
    priors = _table(section, "Design priors for the true effect").set_index("design prior")
    mixture_mean = float(np.sum(comps["weight"] * comps["mean"]))
    assert math.isclose(priors["mean"].iloc[0], mixture_mean, rel_tol=1e-12)
    # robustification with weight 0.2 on a component centred on 0 shrinks the mean by 0.8
    assert math.isclose(priors["mean"].iloc[1], 0.8 * mixture_mean, rel_tol=1e-12)
    # an attenuated prior is the prior of m * theta: P(theta < 0) does not move
    np.testing.assert_allclose(priors["P(theta < 0)"].iloc[2:], priors["P(theta < 0)"].iloc[1])
    assert np.all(np.diff(priors["mean"].iloc[1:].to_numpy()) > 0)  # less benefit as m falls


# -- sample sizes --------------------------------------------------------------------------------
def test_t_test_sample_size_is_the_noncentral_t_answer(
    result: tuple[ModuleType, Section, Path],
) -> None:
    _, section, _ = result
    sd, _ = _cohort()
    ss = _table(section, "tDCS vs sham, pain")
    rows = ss[ss["design"] == "parallel, t test on follow-up"]
    assert len(rows) == 6
    cols = (rows["delta"], rows["power"], rows["n per arm (unrounded)"])
    for delta, power, n in zip(*cols, strict=True):
        assert n == pytest.approx(_two_sample_n(delta, sd, power), rel=SOLVE_RTOL)
    mcid80 = rows[(rows["delta"] == 2.0) & (rows["power"] == 0.8)].iloc[0]
    assert mcid80["evaluable total"] == 2 * math.ceil(mcid80["n per arm (unrounded)"])


def test_ancova_needs_about_one_minus_rho_squared_of_the_t_test(
    result: tuple[ModuleType, Section, Path],
) -> None:
    _, section, _ = result
    sd, rho = _cohort()
    ss = _table(section, "tDCS vs sham, pain")
    key = ["delta", "power"]
    t = ss[ss["design"] == "parallel, t test on follow-up"].set_index(key)
    short = ss[ss["design"] == "parallel, ANCOVA 1 - rho² (Borm)"].set_index(key)
    exact = ss[ss["design"] == "parallel, ANCOVA exact (Shieh)"].set_index(key)
    col = "n per arm (unrounded)"
    # Borm's shortcut is the t test with the residual SD sd * sqrt(1 - rho^2): exact identity
    cols = (short.index.get_level_values(0), short.index.get_level_values(1), short[col])
    for delta, power, n in zip(*cols, strict=True):
        assert n == pytest.approx(
            _two_sample_n(delta, sd * math.sqrt(1 - rho * rho), power), rel=SOLVE_RTOL
        )
    # ... so n_ancova / n_t = 1 - rho^2 up to the t quantiles at the two sizes, an O(1/n)
    # difference: 0.0067 at the smallest n here (28 vs 35 per arm), hence 0.01
    ratio = short[col] / t[col]
    np.testing.assert_allclose(ratio, 1 - rho * rho, atol=0.01)
    # Shieh's exact power costs the lost degree of freedom and the covariate imbalance: a
    # little more than the shortcut, under one patient per arm at these sizes (measured 0.5)
    extra = exact[col] - short[col]
    assert np.all(extra > 0) and np.all(extra < 1.0)


def test_crossover_is_the_paired_t_on_period_differences(
    result: tuple[ModuleType, Section, Path],
) -> None:
    _, section, _ = result
    sd, rho = _cohort()
    sd_within = sd * math.sqrt(1 - rho)
    ss = _table(section, "tDCS vs sham, pain")
    rows = ss[ss["design"] == "AB/BA crossover"]
    cols = (rows["delta"], rows["power"], rows["n per arm (unrounded)"])
    for delta, power, half in zip(*cols, strict=True):
        assert 2 * half == pytest.approx(_crossover_n(delta, sd_within, power), rel=SOLVE_RTOL)


def test_dropout_inflation_rounds_up_per_arm(result: tuple[ModuleType, Section, Path]) -> None:
    _, section, _ = result
    rows = load_cohort_defaults()
    ss = _table(section, "tDCS vs sham, pain")
    parallel = ss[ss["design"].str.startswith("parallel")]
    for q in (rows["dropout"]["value"], rows["dropout_high"]["value"]):
        col = f"randomised total, {q:.0%} dropout"
        expected = [2 * math.ceil(t / 2 / (1 - q) - 1e-9) for t in parallel["evaluable total"]]
        assert parallel[col].tolist() == expected


# -- assurance ------------------------------------------------------------------------------------
def test_assurance_curves_match_the_ohagan_closed_form(
    result: tuple[ModuleType, Section, Path],
) -> None:
    _, section, _ = result
    sd, rho = _cohort()
    sd_resid = sd * math.sqrt(1 - rho * rho)
    curves = _table(section, "Power and assurance against")
    comps = _table(section, "MAP prior: normal mixture")
    prior = _table(section, "Design priors for the true effect").iloc[0]
    n = curves["n per arm"].to_numpy(float)
    s = sd_resid * np.sqrt(2.0 / n)  # standard error of the difference, s^2 = 2 sigma^2 / n
    # power = assurance with v = 0
    np.testing.assert_allclose(curves["power at 2"], stats.norm.cdf(2.0 / s - Z_ONE), rtol=1e-12)
    # A = Phi((m - z s) / sqrt(s^2 + v)) with the MAP's mean and SD (benefit = -theta)
    m, v = -prior["mean"], prior["sd"] ** 2
    np.testing.assert_allclose(
        curves["assurance, normal approx. of MAP"],
        stats.norm.cdf((m - Z_ONE * s) / np.sqrt(s**2 + v)),
        rtol=1e-12,
    )
    # the mixture: sum_k w_k Phi((m_k - z s) / sqrt(s^2 + v_k))
    w, mk, sk = (comps[c].to_numpy()[None, :] for c in ("weight", "mean", "sd"))
    mix = np.sum(
        w * stats.norm.cdf((-mk - Z_ONE * s[:, None]) / np.sqrt(s[:, None] ** 2 + sk**2)), axis=1
    )
    np.testing.assert_allclose(curves["assurance, MAP"], mix, rtol=1e-12)


def test_assurance_rises_with_n_and_is_capped_by_the_prior_probability_of_benefit(
    result: tuple[ModuleType, Section, Path],
) -> None:
    _, section, _ = result
    curves = _table(section, "Power and assurance against")
    priors = _table(section, "Design priors for the true effect")
    caps = {"assurance, MAP": priors["P(theta < 0)"].iloc[0]}
    caps["assurance, robust MAP"] = priors["P(theta < 0)"].iloc[1]
    for col, cap in caps.items():
        a = curves[col].to_numpy()
        assert np.all(np.diff(a) > 0)
        assert np.all(a < cap)
    # assurance differs from power at the prior mean: below it once the trial is large
    big = curves["n per arm"] >= 100
    power_col = next(c for c in curves.columns if c.startswith("power at prior mean"))
    assert np.all(curves.loc[big, "assurance, MAP"] < curves.loc[big, power_col])


def test_simulated_assurance_agrees_with_the_mixture_closed_form(
    result: tuple[ModuleType, Section, Path],
) -> None:
    _, section, _ = result
    check = _table(section, "Simulation check of the robust-MAP assurance")
    assert len(check) == 4
    np.testing.assert_allclose(
        check["MCSE"], np.sqrt(check["simulated"] * (1 - check["simulated"]) / 20_000)
    )
    assert np.all(np.abs(check["simulated"] - check["closed form"]) < K_MCSE * check["MCSE"])


def test_exercise_assurance_is_below_power(result: tuple[ModuleType, Section, Path]) -> None:
    _, section, _ = result
    ex = _table(section, "Aerobic exercise vs control, fatigue")
    pooled = fs.studies.load("exercise_pooled")
    hauser = pooled[(pooled["review"] == "hauser2010") & (pooled["outcome"] == "fatigue")].iloc[0]
    m = -float(hauser["estimate"])
    se = float(hauser["ci_high"] - hauser["ci_low"]) / (2 * stats.norm.isf(0.025))
    rows = ex[ex["review"] == "hauser2010"]
    for _, row in rows.iterrows():
        s = math.sqrt(2.0 / row["n per arm"])  # SMD units, sigma = 1
        assert row["assurance, mu only"] == pytest.approx(
            stats.norm.cdf((m - Z_ONE * s) / math.sqrt(s * s + se * se)), rel=1e-12
        )
        assert row["power, z one-sided"] == pytest.approx(stats.norm.cdf(m / s - Z_ONE), rel=1e-12)
        assert row["n per arm"] == math.ceil(_two_sample_n(m, 1.0, row["target power"]))
    assert np.all(ex["assurance, new trial"] < ex["assurance, mu only"])
    assert np.all(ex["assurance, mu only"] < ex["power, z one-sided"])
    assert np.all(ex["assurance, new trial"] < ex["P(theta_new > 0)"])


# -- group-sequential -----------------------------------------------------------------------------
def test_obrien_fleming_bounds_and_sample_sizes(result: tuple[ModuleType, Section, Path]) -> None:
    _, section, _ = result
    bounds = _table(section, "Group-sequential tDCS trial")
    obf = bounds[bounds["design"] == "OBF"]
    # rpact's own unit test, getDesignInverseNormal() defaults (K = 3, one-sided 0.025); rpact
    # prints 8 significant digits, so agreement is checked to 1e-6
    np.testing.assert_allclose(obf["z bound"], [3.4710914, 2.4544323, 2.0040356], atol=1e-6)
    # Jennison & Turnbull (2000), Table 2.3: OBF constant for K = 2 is 1.977 (printed to 3
    # decimals, so half a unit of the last digit)
    two = bounds[bounds["design"] == "OBF, 2 looks"]
    assert two["z bound"].iloc[-1] == pytest.approx(1.977, abs=5e-4)
    summary = _table(section, "Maximum and expected evaluable").set_index("design")
    assert len(summary) == 3
    for _, row in summary.iterrows():
        assert row["max n per arm"] == math.ceil(row["inflation"] * row["fixed n per arm"])
        h1 = next(c for c in summary.columns if c.startswith("expected n per arm, H1"))
        assert row[h1] < row["fixed n per arm"] < row["expected n per arm, H0"]
        assert row["expected n per arm, H0"] < row["max n per arm"]
    check = _table(section, "Simulation check of the O'Brien-Fleming design")
    assert np.all(np.abs(check["simulated"] - check["closed form"]) < K_MCSE * check["MCSE"])
    assert check["closed form"].iloc[0] == pytest.approx(0.025, abs=1e-9)


# -- patient-level simulation ---------------------------------------------------------------------
def test_dichotomising_costs_power_beyond_monte_carlo_error(
    result: tuple[ModuleType, Section, Path],
) -> None:
    _, section, _ = result
    sim = _table(section, "Patient-level simulation of the fixed design")
    h1 = sim[sim["true latent difference"] < 0].set_index("analysis")
    rate, mcse = h1["rejection rate"], h1["MCSE"]
    primary = "ANCOVA on follow-up (complete cases)"
    assert len(h1) == 5
    for label in h1.index.drop(primary):
        # independent streams: the SE of the difference is sqrt(mcse1^2 + mcse2^2)
        se = math.hypot(mcse[primary], mcse[label])
        assert rate[primary] - rate[label] > K_MCSE * se
    # Fisher's exact test is conservative against the two-proportion z test at this size
    z_test = "responders >= 30 % (complete cases)"
    fisher = "responders >= 30 %, Fisher's exact test (complete cases)"
    assert rate[z_test] - rate[fisher] > K_MCSE * math.hypot(mcse[z_test], mcse[fisher])
    # bounded, rounded scores and MAR dropout do not inflate the ANCOVA type-I error
    h0 = sim[sim["true latent difference"] == 0].iloc[0]
    assert abs(h0["rejection rate"] - 0.05) < K_MCSE * h0["MCSE"]


def test_recommendation_quotes_the_ancova_sample_size(
    result: tuple[ModuleType, Section, Path],
) -> None:
    module, section, _ = result
    sd, rho = _cohort()
    n = endpoints.sample_size_ancova(module.MCID_LOW, sd, rho, 0.9).n_per_arm
    n_rec = math.ceil(float(n))
    text = section.blocks[-1].text  # type: ignore[union-attr]
    assert f"{n_rec} evaluable patients per arm" in text
    q = load_cohort_defaults()["dropout"]["value"]
    assert f"{math.ceil(n_rec / (1 - q))} randomised per arm" in text
