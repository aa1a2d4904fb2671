"""The evidence analyses in analyses/: sections, verdicts, figures, key numbers and the report.

Each script runs once per module (fixture ``sections``) into a temporary folder; the tests then
read the numbers back from the sections' tables and check them against the published values
(at the printed precision), closed forms, or metafor, and check the rendered report.
"""

from __future__ import annotations

import html
import importlib.util
import math
import runpy
import sys
import warnings
from pathlib import Path
from types import ModuleType

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from scipy import stats

import fibrosim as fs
from fibrosim.report import Figure, Paragraph, Section, Table, analyses_dir, run_report
from fibrosim.warnings import FragileEstimateWarning

SCRIPTS = ("a1_neuromodulation", "a2_exercise", "a3_associations", "a4_haeuser2009")
VERDICT_WORDS = {"supported", "partly supported", "not supported", "not testable here"}
#: The verdicts the encoded evidence supports today (a change in the data or the logic that
#: flips one of them must be deliberate).
EXPECTED_VERDICTS = {
    "a1_neuromodulation": {
        "Electrical neuromodulation reduces pain (vs sham)": "supported",
        "Electrical neuromodulation reduces depressive symptoms (vs sham)": "not supported",
    },
    "a2_exercise": {
        "Aerobic exercise improves fatigue": "supported",
        "Aerobic exercise improves sleep, to a lesser degree than fatigue": "partly supported",
    },
    "a3_associations": {
        "A history of physical abuse is associated with FM": "supported",
        "Cytokine (immune-inflammatory) dysregulation is associated with FM": "partly supported",
    },
    "a4_haeuser2009": {},
}
#: Half a unit of the last printed digit (2 decimals): a faithful recomputation of a published
#: number rounds to it.
PRINTED = 0.005
Z95 = float(stats.norm.ppf(0.975))


def _load(stem: str) -> ModuleType:
    path = analyses_dir() / f"{stem}.py"
    spec = importlib.util.spec_from_file_location(f"test_analysis_{stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("analyses")


@pytest.fixture(scope="module")
def sections(out_dir: Path) -> dict[str, Section]:
    plt.close("all")
    return {stem: _load(stem).run(out_dir) for stem in SCRIPTS}


@pytest.fixture(scope="module")
def common() -> ModuleType:
    return _load("_common")


def _table(section: Section, caption_start: str) -> pd.DataFrame:
    hits = [
        b.data
        for b in section.blocks
        if isinstance(b, Table) and b.caption.startswith(caption_start)
    ]
    assert len(hits) == 1, f"expected one table captioned {caption_start!r}, found {len(hits)}"
    return hits[0]


def _row(table: pd.DataFrame, **match: str) -> pd.Series:
    """The one row whose columns equal ``match``."""
    mask = np.logical_and.reduce([table[col] == value for col, value in match.items()])
    hits = table[mask]
    assert len(hits) == 1, f"expected one row matching {match}, found {len(hits)}"
    return hits.iloc[0]


def _text(section: Section) -> str:
    return " ".join(b.text for b in section.blocks if isinstance(b, Paragraph))


# --- structure ------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", SCRIPTS)
def test_script_conventions(stem: str) -> None:
    source = (analyses_dir() / f"{stem}.py").read_text("utf-8")
    module = _load(stem)
    assert module.__doc__ and len(module.__doc__.split()) > 30  # states its question
    assert callable(module.run)
    assert 'if __name__ == "__main__":' in source
    assert "import fibrosim as fs" in source


@pytest.mark.parametrize("stem", SCRIPTS)
def test_section_is_well_formed(stem: str, sections: dict[str, Section], out_dir: Path) -> None:
    section = sections[stem]
    assert isinstance(section, Section)
    assert section.title and section.question.endswith("?")
    assert section.sources and all(isinstance(s, str) and s for s in section.sources)
    assert {v.claim: v.verdict for v in section.verdicts} == EXPECTED_VERDICTS[stem]
    assert all(v.verdict in VERDICT_WORDS and len(v.reason) > 80 for v in section.verdicts)
    figures = [b for b in section.blocks if isinstance(b, Figure)]
    assert figures, "every analysis draws at least one figure"
    for fig in figures:
        path = out_dir / fig.path
        assert fig.path.startswith("figures/") and path.suffix == ".png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert all(len(b.data) > 0 for b in section.blocks if isinstance(b, Table))


def test_scripts_close_their_figures(sections: dict[str, Section]) -> None:
    assert plt.get_fignums() == []


def test_standalone_run_writes_markdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script puts its folder on sys.path
    runpy.run_path(str(analyses_dir() / "a3_associations.py"), run_name="__main__")
    text = (tmp_path / "out" / "a3_associations.md").read_text("utf-8")
    assert text.startswith("# Associations: abuse history and cytokines")
    assert "| A history of physical abuse is associated with FM | **supported** |" in text
    assert (tmp_path / "out" / "figures" / "a3_associations.png").is_file()


# --- a1: neuromodulation --------------------------------------------------------------------


def test_a1_published_pooled_results_are_harmonised(sections: dict[str, Section]) -> None:
    table = _table(sections["a1_neuromodulation"], "Published pooled results")
    assert len(table) == len(fs.studies.load("neuromodulation_pooled"))
    # Teixeira 2023 prints positive = benefit: 0.81 (0.43, 1.19) becomes -0.81 (-1.19, -0.43)
    tex = _row(table, review="teixeira2023", timepoint="short term (<4 wk)")
    assert tex["as printed (95% CI)"] == "0.81 (0.43, 1.19)"
    assert (tex["estimate"], tex["ci_low"], tex["ci_high"]) == (-0.81, -1.19, -0.43)
    # Saltychev 2017 prints negative = benefit: unchanged
    sal = _row(table, review="saltychev2017", timepoint="after the last session")
    assert (sal["estimate"], sal["ci_low"], sal["ci_high"]) == (-1.2, -1.7, -0.8)
    assert (table["ci_low"] <= table["estimate"]).all()
    assert (table["estimate"] <= table["ci_high"]).all()
    assert (table["outcome"] == "pain (subgroup)").sum() == 1  # Psychosom Med 2022 M1 only


def _tens_pain() -> tuple[np.ndarray, np.ndarray]:
    """The two TENS vs sham pain MDs on 0-10 and their variances, from the printed CIs."""
    trials = fs.studies.load("neuromodulation_trials")
    rows = trials[
        (trials.outcome == "pain") & trials.control.str.contains("sham|placebo", regex=True)
    ]
    assert list(rows.study) == ["Dailey 2020", "Jamison 2021"]
    se = (rows.ci_high.to_numpy() - rows.ci_low.to_numpy()) / (2 * Z95)
    return rows.estimate.to_numpy(), se**2


def test_a1_tens_pain_pool_matches_the_closed_form(sections: dict[str, Section]) -> None:
    table = _table(sections["a1_neuromodulation"], "TENS vs sham, pain MD on 0-10 (Dailey")
    y, v = _tens_pain()
    w = 1 / v
    mu = float(np.sum(w * y) / np.sum(w))
    q = float(np.sum(w * (y - mu) ** 2))
    assert q < 1  # Q below its df: tau² = 0 for DL and REML (k = 2), so the pool is w-weighted
    se_z = 1 / math.sqrt(float(np.sum(w)))
    se_knha = math.sqrt(q / 1) * se_z  # Knapp-Hartung scale s² = Q / (k - 1), not truncated
    t1 = float(stats.t.ppf(0.975, 1))
    z_row, knha_row = table.iloc[0], table.iloc[1]
    # closed forms: only floating-point rounding separates them from the REML fit
    assert z_row["tau²"] == pytest.approx(0.0, abs=1e-10)
    assert z_row["MD"] == pytest.approx(mu, rel=1e-10)
    assert z_row["ci_low"] == pytest.approx(mu - Z95 * se_z, rel=1e-9)
    assert z_row["ci_high"] == pytest.approx(mu + Z95 * se_z, rel=1e-9)
    assert knha_row["ci_low"] == pytest.approx(mu - t1 * se_knha, rel=1e-9)
    assert knha_row["ci_high"] == pytest.approx(mu + t1 * se_knha, rel=1e-9)
    assert "k = 2 with test='knha'" in _text(sections["a1_neuromodulation"])


def test_a1_priors_are_moved_to_the_0_10_scale(sections: dict[str, Section]) -> None:
    from fibrosim.trials.cohorts import load_cohort_defaults

    sd = float(load_cohort_defaults()["sd_change"]["value"])
    sens = _table(sections["a1_neuromodulation"], "TENS vs sham, pain MD on 0-10: exact Bayesian")
    median = dict(zip(sens["tau prior"], sens["prior tau median"], strict=True))
    # prior medians in closed form: tau = sd * exp(location / 2) for the log-t / log-normal
    # priors on log tau² (Rhodes -3.02; Turner -2.05 on log-OR, times sqrt(3)/pi for the SMD),
    # sd * scale * Phi^-1(0.75) for the half-normal and sd * scale for the half-Cauchy
    assert median["Rhodes 2015, pain/QoL, non-pharmacological"] == pytest.approx(
        sd * math.exp(-3.02 / 2), rel=1e-12
    )
    assert median[
        "Turner-like: Turner 2015 pain, non-pharma vs placebo, x sqrt(3)/pi"
    ] == pytest.approx(sd * math.sqrt(3) / math.pi * math.exp(-2.05 / 2), rel=1e-12)
    assert median["half-normal(0.5 SD)"] == pytest.approx(
        sd * 0.5 * stats.norm.ppf(0.75), rel=1e-12
    )
    assert median["half-Cauchy(0.5 SD)"] == pytest.approx(sd * 0.5, rel=1e-12)


def test_a1_bayesian_probability_of_benefit_by_brute_force(sections: dict[str, Section]) -> None:
    # P(mu < 0) under the half-normal prior, by the midpoint rule on a 2-D grid over (mu, tau)
    # with a flat mu prior: independent of fibrosim's quadrature. Tolerance 1e-5: halving the
    # step 0.01 changes the grid value by 1.3e-6 (midpoint error O(h²)), and widening the grid
    # from tau < 10, -10 < mu < 8 to tau < 30, |mu| < 25 changes it by 1.6e-6.
    from fibrosim.trials.cohorts import load_cohort_defaults

    sd = float(load_cohort_defaults()["sd_change"]["value"])
    sens = _table(sections["a1_neuromodulation"], "TENS vs sham, pain MD on 0-10: exact Bayesian")
    row = sens[sens["tau prior"] == "half-normal(0.5 SD)"].iloc[0]
    y, v = _tens_pain()
    step = 0.01
    tau = (np.arange(0.0, 10.0, step) + step / 2)[:, None, None]
    mu = (np.arange(-10.0, 8.0, step) + step / 2)[None, :, None]
    loglik = np.asarray(stats.norm.logpdf(y, mu, np.sqrt(v + tau**2))).sum(axis=-1)
    logpost = loglik + stats.halfnorm.logpdf(tau[:, :, 0], scale=0.5 * sd)
    post = np.asarray(np.exp(logpost - logpost.max()))
    p_benefit = post[:, mu[0, :, 0] < 0].sum() / post.sum()
    assert row["P(mu < 0)"] == pytest.approx(p_benefit, abs=1e-5)
    assert 0.5 < row["P(mu < 0)"] < 1.0


def test_a1_depression_evidence_is_listed_without_numbers(sections: dict[str, Section]) -> None:
    section = sections["a1_neuromodulation"]
    table = _table(section, "Depressive symptoms")
    assert set(table["source"]) == {"sun2021", "psychosommed2022", "su2021", "Boyer 2014"}
    assert (table["numbers"] == "none printed").all()
    pooled = fs.studies.load("neuromodulation_pooled")
    assert not (pooled["outcome"] == "depression").any()  # the premise of the verdict
    reason = next(v.reason for v in section.verdicts if "depressive" in v.claim)
    assert "not evidence of no effect" in reason and "n.s." in reason


# --- a2: exercise ---------------------------------------------------------------------------


def test_a2_fatigue_and_sleep_estimates(sections: dict[str, Section]) -> None:
    table = _table(sections["a2_exercise"], "Pooled fatigue and sleep estimates")
    # Häuser 2010 aerobic fatigue -0.22 (-0.38, -0.05); Cuenca-Martínez 2023 aerobic-alone
    # sleep -0.04 (-0.15, 0.07); Estévez-López 2021 sleep -0.17 (-0.32, -0.01) (abstracts)
    for (review, outcome, modality), printed in (
        (("hauser2010", "fatigue", "aerobic exercise"), (-0.22, -0.38, -0.05)),
        (("cuencamartinez2023", "sleep", "aerobic exercise"), (-0.04, -0.15, 0.07)),
        (("estevezlopez2021", "sleep", "exercise"), (-0.17, -0.32, -0.01)),
    ):
        row = _row(table, review=review, outcome=outcome, modality=modality)
        assert (row["estimate"], row["ci_low"], row["ci_high"]) == printed
        se = (printed[2] - printed[1]) / (2 * Z95)
        assert row["SE"] == pytest.approx(se, rel=1e-12)
        assert row["z"] == pytest.approx(printed[0] / se, rel=1e-12)
    assert set(table["outcome"]) == {"fatigue", "sleep"}


def test_a2_fatigue_minus_sleep(sections: dict[str, Section]) -> None:
    diffs = _table(sections["a2_exercise"], "Fatigue minus sleep")
    aerobic = diffs.iloc[0]
    se = math.hypot((-0.05 + 0.38) / (2 * Z95), (0.07 + 0.15) / (2 * Z95))
    assert aerobic["fatigue - sleep"] == pytest.approx(-0.22 + 0.04, rel=1e-12)
    assert aerobic["SE"] == pytest.approx(se, rel=1e-12)
    assert aerobic["p"] == f"{2 * stats.norm.sf(0.18 / se):.3f}"


# --- a3: associations -----------------------------------------------------------------------


def test_a3_uceyler_sign_is_flipped_and_others_kept(sections: dict[str, Section]) -> None:
    table = _table(sections["a3_associations"], "Circulating cytokines")
    uce = table[table["review"] == "uceyler2011"].iloc[0]
    # printed -0.34 (-0.64, -0.03) as controls minus patients -> +0.34 (0.03, 0.64)
    assert uce["as printed (95% CI)"] == "-0.34 (-0.64, -0.03)"
    assert (uce["SMD, FM minus controls"], uce["ci_low"], uce["ci_high"]) == (0.34, 0.03, 0.64)
    others = table[table["review"] != "uceyler2011"]
    raw = fs.studies.load("cytokines")
    raw = raw[raw["review"] != "uceyler2011"]
    np.testing.assert_array_equal(others["SMD, FM minus controls"], raw["estimate"])
    assert (table["SMD, FM minus controls"] > 0).all()


def test_a3_abuse_odds_ratios(sections: dict[str, Section]) -> None:
    table = _table(sections["a3_associations"], "Abuse history")
    child = table[(table.exposure == "physical abuse") & (table.period == "childhood")].iloc[0]
    assert (child["OR"], child["ci_low"], child["ci_high"], child["k"]) == (2.49, 1.81, 3.42, 9)
    assert table["ci_low"].isna().sum() == 3  # CIs not read are left empty, never guessed
    assert "3.07 (CI not read)" in set(table["OR (95% CI)"])


# --- a4: Häuser 2009 ------------------------------------------------------------------------


def test_a4_reproduces_the_published_pooled_smds(sections: dict[str, Section]) -> None:
    # Häuser et al. JAMA 2009;301(2):198-209, abstract p. 198: pain -0.43 [-0.55, -0.30],
    # fatigue -0.13 [-0.26, -0.01], sleep -0.32 [-0.46, -0.18], mood -0.26 [-0.39, -0.12],
    # HRQOL -0.31 [-0.42, -0.20] (the last with the article's 49.78, see the dataset notes)
    table = _table(sections["a4_haeuser2009"], "Computed vs published").set_index("outcome")
    printed = {
        "pain": (-0.43, -0.55, -0.30, 22),
        "fatigue": (-0.13, -0.26, -0.01, 14),
        "sleep": (-0.32, -0.46, -0.18, 13),
        "mood": (-0.26, -0.39, -0.12, 10),
        "qol, article's Heymann mean 49.78": (-0.31, -0.42, -0.20, 12),
    }
    for outcome, (est, low, high, k) in printed.items():
        row = table.loc[outcome]
        assert row["k"] == k
        assert row["DL estimate"] == pytest.approx(est, abs=PRINTED)
        assert row["ci_low"] == pytest.approx(low, abs=PRINTED)
        assert row["ci_high"] == pytest.approx(high, abs=PRINTED)
        assert row["matches at printed precision"] == "yes"
    # with metadat's corrected mean (48.78) the HRQOL result no longer rounds to the print
    assert table.loc["qol", "matches at printed precision"] == "no"


def test_a4_pain_fits_match_metafor(sections: dict[str, Section]) -> None:
    # metafor 3.8-1, R 4.2.2, on the dataset's pain rows:
    #   es <- escalc("SMD", m1i=mean_t, sd1i=sd_t, n1i=n_t, m2i=mean_c, sd2i=sd_c, n2i=n_c)
    #   r <- rma(yi, vi, data=es, method="REML", control=list(threshold=1e-12)); predict(r)
    #   dl <- rma(yi, vi, data=es, method="DL")
    # Tolerance 1e-8 relative: metafor prints 10 decimals and stops REML at threshold 1e-12
    # (its default 1e-5 would leave tau² off by 6e-6); fibrosim solves to ~1e-14.
    table = _table(sections["a4_haeuser2009"], "DL and REML fits")
    reml = table[(table.outcome == "pain") & (table.method == "REML")].iloc[0]
    dl = table[(table.outcome == "pain") & (table.method == "DL")].iloc[0]
    expected_reml = {
        "estimate": -0.4215928558,
        "ci_low": -0.5382186943,
        "ci_high": -0.3049670173,
        "tau²": 0.0249515383,
        "I² %": 37.1966354424,
        "PI low (z)": -0.7524280008,
        "PI high (z)": -0.0907577109,
    }
    for name, value in expected_reml.items():
        assert reml[name] == pytest.approx(value, rel=1e-8), name
    expected_dl = {"estimate": -0.4273213044, "ci_low": -0.5526990781, "tau²": 0.0344326612}
    for name, value in expected_dl.items():
        assert dl[name] == pytest.approx(value, rel=1e-8), name
    # Higgins et al. (2009) prediction interval: mu +/- t(k-2) sqrt(tau² + se²)
    se = (dl["ci_high"] - dl["ci_low"]) / (2 * Z95)
    half = stats.t.ppf(0.975, 20) * math.sqrt(dl["tau²"] + se**2)
    assert dl["PI high (t, k-2)"] == pytest.approx(dl["estimate"] + half, rel=1e-10)


def test_a4_diagnostics_match_metafor(sections: dict[str, Section]) -> None:
    # metafor 3.8-1: regtest(r) with r as in test_a4_pain_fits_match_metafor (REML, threshold
    # 1e-12): z = -1.6310674841, p = 0.1028760808; leave1out(rma(yi, vi, method="DL"))
    # estimates range from -0.4476737656 to -0.3884065147. Tolerance 1e-8 relative: 10 printed
    # decimals; the fits are converged to 1e-12 or closed-form (DL).
    section = sections["a4_haeuser2009"]
    egger = _table(section, "Pain: Egger")
    assert egger["statistic"].iloc[0] == pytest.approx(-1.6310674841, rel=1e-8)
    assert egger["p"].iloc[0] == pytest.approx(0.1028760808, rel=1e-8)
    loo = _table(section, "Pain, leave-one-out")
    assert len(loo) == 22 and loo["omitted"].is_unique
    assert loo["estimate"].min() == pytest.approx(-0.4476737656, rel=1e-8)
    assert loo["estimate"].max() == pytest.approx(-0.3884065147, rel=1e-8)


def test_a4_bayesian_pain_uses_the_rhodes_drug_prior(sections: dict[str, Section]) -> None:
    bayes = _table(sections["a4_haeuser2009"], "Exact Bayesian random-effects posterior")
    pain = bayes[bayes["outcome"] == "pain"].iloc[0]
    assert pain["tau prior (Rhodes 2015, pharma vs placebo)"] == "physical_health_pain_qol"
    assert bayes.set_index("outcome").loc["mood", "tau prior (Rhodes 2015, pharma vs placebo)"] == (
        "mental_health"
    )
    df = fs.studies.load("haeuser2009")
    p = df[df["outcome"] == "pain"]
    es = fs.effects.smd(p.mean_t, p.sd_t, p.n_t, p.mean_c, p.sd_c, p.n_c)
    post = fs.meta.bayes_random_effects(
        es.yi, es.vi, fs.priors.rhodes2015("physical_health_pain_qol", "pharma_vs_placebo")
    )
    assert pain["mu median"] == pytest.approx(float(post.mu.median), rel=1e-12)
    # the data dominate: the posterior median lies within 0.02 of the REML estimate
    assert abs(pain["mu median"] - pain["REML estimate"]) < 0.02
    assert pain["mu_high"] < 0 and pain["theta_new high"] < 0


# --- shared helpers -------------------------------------------------------------------------


def test_common_printed_numbers(common: ModuleType) -> None:
    assert common.printed(-0.7) == "-0.70"
    assert common.printed(1.689) == "1.689"
    assert common.printed(0.003) == "0.003"
    assert common.printed(float("nan")) == "n/a"
    assert common.ci_text(3.07, float("nan"), float("nan")) == "3.07 (CI not read)"
    assert common.prob_text(0.999999) == "> 0.9999"


def test_common_harmonise_swaps_limits(common: ModuleType) -> None:
    rows = pd.DataFrame(
        {
            "estimate": [0.81, -0.5, 0.3],
            "ci_low": [0.43, -0.8, 0.1],
            "ci_high": [1.19, -0.2, 0.5],
            "positive_means": ["benefit", "harm", "not stated"],
        }
    )
    h = common.harmonise(rows)
    np.testing.assert_array_equal(h["estimate_h"][:2], [-0.81, -0.5])
    np.testing.assert_array_equal(h["ci_low_h"][:2], [-1.19, -0.8])
    np.testing.assert_array_equal(h["ci_high_h"][:2], [-0.43, -0.2])
    assert h.iloc[2][["estimate_h", "ci_low_h", "ci_high_h"]].isna().all()


def test_common_quiet_keeps_fibrosim_warnings_and_reissues_others(common: ModuleType) -> None:
    def noisy() -> int:
        warnings.warn("fragile", FragileEstimateWarning, stacklevel=1)
        warnings.warn("fragile", FragileEstimateWarning, stacklevel=1)
        return 3

    assert common.quiet(noisy) == (3, ["fragile"])

    def other() -> None:
        warnings.warn("something else", UserWarning, stacklevel=1)

    with pytest.warns(UserWarning, match="something else"):
        common.quiet(other)


def test_common_rescale_tau_prior(common: ModuleType) -> None:
    base = fs.priors.rhodes2015("physical_health_pain_qol", "nonpharma")
    moved = common.rescale_tau_prior(base, 2.0)
    assert float(moved.quantile(0.3)) == pytest.approx(2.0 * float(base.quantile(0.3)), rel=1e-12)
    with pytest.raises(TypeError, match="cannot rescale a Uniform prior"):
        common.rescale_tau_prior(fs.priors.Uniform(0, 2), 2.0)


def test_common_interval_plot_draws_printed_limits(common: ModuleType) -> None:
    fig, ax = plt.subplots()
    try:
        common.interval_plot(ax, ["a", "b"], [2.49, 3.07], [1.81, np.nan], [3.42, np.nan], log=True)
        assert ax.get_xscale() == "log"
        segments = [c for c in ax.collections if isinstance(c, LineCollection) and c.get_segments()]
        (ci,) = segments
        np.testing.assert_array_equal(ci.get_segments()[0][:, 0], [1.81, 3.42])
        assert [t.get_text() for t in ax.texts] == ["2.49 (1.81, 3.42)", "3.07 (CI not read)"]
    finally:
        plt.close(fig)


# --- the report -----------------------------------------------------------------------------


def test_report_renders_the_verdict_table(tmp_path: Path) -> None:
    md_path, html_path = run_report(tmp_path, only=list(SCRIPTS))
    md = md_path.read_text("utf-8")
    page = html_path.read_text("utf-8")
    assert "## Verdicts on the review's claims" in md
    assert "<h2>Verdicts on the review's claims</h2>" in page
    for expected in EXPECTED_VERDICTS.values():
        for claim, verdict in expected.items():
            assert f"| {claim} | **{verdict}** |" in md
            assert f"<td>{html.escape(claim)}</td>" in page
            assert f"<b>{html.escape(verdict)}</b>" in page
    for stem in SCRIPTS:
        assert f"## {_load(stem).TITLE}" in md
    for figure in (tmp_path / "figures").glob("a[1-4]_*.png"):
        assert f"({figure.relative_to(tmp_path).as_posix()})" in md
    assert len(list((tmp_path / "figures").glob("a[1-4]_*.png"))) == 6
    assert plt.get_fignums() == []
