"""Priors on τ and μ: densities, CDFs, quantiles, Jacobians, and the Turner/Rhodes tables."""

from __future__ import annotations

import itertools
import math
import shutil
import tomllib

import numpy as np
import pytest
from scipy import integrate, stats

import fibrosim as fs
from fibrosim.meta import priors as P
from fibrosim.studies import StudyDataError, studies_dir

PROPER = [
    P.HalfNormal(0.5),
    P.HalfCauchy(25.0),
    P.HalfT(3.0, 1.0),
    P.Exponential(2.0),
    P.Uniform(0.1, 3.0),
    P.LogNormalTau2(-2.56, 1.74),
    P.LogTTau2(-3.44, 2.59),
]


@pytest.mark.parametrize("prior", PROPER, ids=repr)
def test_density_integrates_to_one_and_matches_cdf(prior):
    lo, hi = prior.support
    # split at the quartiles so quad sees the bulk; the log-t density is integrable but
    # unbounded at 0, so its lowest piece is integrated on log τ
    cuts = [float(c) for c in prior.quantile([0.25, 0.5, 0.75])]
    edges = [lo, *cuts, hi]
    total = 0.0
    for a, b in itertools.pairwise(edges):
        if isinstance(prior, P.LogTTau2):
            # polynomial tails on log τ in both directions: quad reaches ~1e-11 there; the
            # mass outside e^-700 < τ < e^350 (t5 tails beyond 270 scales) is below 1e-13
            xa = -700.0 if a == 0 else math.log(a)
            xb = 350.0 if b == np.inf else math.log(b)
            piece = integrate.quad(lambda x: float(prior.pdf(math.exp(x))) * math.exp(x),
                                   xa, xb, epsabs=1e-13, epsrel=1e-10)[0]  # fmt: skip
        else:
            piece = integrate.quad(lambda t: float(prior.pdf(t)), a, b, epsabs=0, epsrel=1e-12)[0]
        total += piece
        # each piece is a quarter of the mass (cdf differences at the quartiles)
        assert piece == pytest.approx(float(prior.cdf(b) - prior.cdf(a)), abs=1e-10)
    assert total == pytest.approx(1.0, abs=1e-10)  # quad to 1e-12 on four pieces


@pytest.mark.parametrize("prior", PROPER, ids=repr)
def test_quantile_inverts_cdf_and_support(prior):
    q = np.array([1e-6, 0.01, 0.3, 0.5, 0.9, 0.999])
    np.testing.assert_allclose(prior.cdf(prior.quantile(q)), q, rtol=1e-12)
    assert prior.pdf(-1.0) == 0.0
    assert prior.cdf(-1.0) == 0.0 and prior.cdf(np.inf) == 1.0
    assert np.isneginf(prior.logpdf(-0.5))
    assert prior.reference
    assert repr(prior).startswith(type(prior).__name__ + "(")


@pytest.mark.parametrize("prior", PROPER, ids=repr)
def test_pdf_is_derivative_of_cdf(prior):
    t = float(prior.quantile(0.4))
    h = 1e-6 * t
    slope = float(prior.cdf(t + h) - prior.cdf(t - h)) / (2 * h)
    assert float(prior.pdf(t)) == pytest.approx(slope, rel=1e-7)  # central difference O(h²)


def test_log_tau2_priors_transform_with_the_jacobian():
    ln = P.LogNormalTau2(-2.05, 1.71)
    lt = P.LogTTau2(-3.02, 2.27)
    tau = np.array([0.01, 0.2, 1.5])
    # P(τ <= t) = P(log τ² <= 2 log t)
    np.testing.assert_allclose(
        ln.cdf(tau), stats.norm.cdf(2 * np.log(tau), -2.05, 1.71), rtol=1e-14
    )
    np.testing.assert_allclose(
        lt.cdf(tau), stats.t.cdf(2 * np.log(tau), 5, -3.02, 2.27), rtol=1e-14
    )
    # density on τ = density of log τ² at 2 log τ times |d log τ² / dτ| = 2/τ
    np.testing.assert_allclose(ln.pdf(tau), stats.norm.pdf(2 * np.log(tau), -2.05, 1.71) * 2 / tau,
                               rtol=1e-13)  # fmt: skip
    # τ itself is log-normal with meanlog mu/2 and sdlog sigma/2 (bayesmeta's TurnerEtAlPrior)
    lognormal = stats.lognorm.pdf(tau, 1.71 / 2, scale=math.exp(-2.05 / 2))
    np.testing.assert_allclose(ln.pdf(tau), lognormal,
                               rtol=1e-13)  # fmt: skip


def test_closed_forms():
    np.testing.assert_allclose(P.HalfNormal(2).pdf(1.0), 2 * stats.norm.pdf(1.0, 0, 2), rtol=1e-14)
    np.testing.assert_allclose(P.HalfCauchy(25).cdf(25.0), 0.5, rtol=1e-15)
    np.testing.assert_allclose(P.HalfT(1, 25).pdf(3.0), P.HalfCauchy(25).pdf(3.0), rtol=1e-13)
    np.testing.assert_allclose(P.Exponential(2).quantile(0.5), math.log(2) / 2, rtol=1e-15)
    np.testing.assert_allclose(P.Uniform(1, 3).pdf([0.5, 2, 3.5]), [0, 0.5, 0], rtol=1e-15)


# -- empirical priors: quantiles of τ against the computed values in the evidence notes ----------
@pytest.mark.parametrize(
    ("prior", "median", "low", "high", "digits"),
    [
        # fibromyalgia_sources.md section 4 ("C" = computed), to the digits printed there
        (P.turner2015(), 0.28, 0.05, 1.53, 2),
        (P.turner2015("pain", "nonpharma_vs_placebo"), 0.36, 0.07, 1.92, 2),
        (P.turner2015("pain", "pharma_vs_placebo"), 0.40, 0.09, 1.78, 2),
        (P.rhodes2015(), 0.18, 0.006, 5.0, 3),
        (P.rhodes2015("physical_health_pain_qol", "nonpharma"), 0.22, 0.012, 4.09, 3),
        (P.rhodes2015("mental_health", "nonpharma"), 0.15, 0.012, 1.74, 3),
        (P.rhodes2015("physical_health_pain_qol", "pharma_vs_placebo"), 0.21, 0.008, 5.12, 3),
    ],
    ids=repr,
)
def test_empirical_prior_tau_quantiles(prior, median, low, high, digits):
    q = prior.quantile([0.5, 0.025, 0.975])
    # the notes round to `digits` decimals (2 significant for the Rhodes upper ends)
    assert q[0] == pytest.approx(median, abs=0.5 * 10**-2)
    assert q[1] == pytest.approx(low, abs=0.5 * 10**-digits)
    assert q[2] == pytest.approx(high, rel=0.01)


def test_rhodes_median_column_of_the_notes():
    # "median τ (non-pharm)" column of section 4b, to the 3 printed decimals
    rows = {"obstetric": 0.136, "resource_use": 0.300, "internal_structure": 0.318,
            "physical_health_pain_qol": 0.221, "signs_symptoms_infection": 0.239,
            "mental_health": 0.146, "biological_marker": 0.195,
            "subjective_outcomes": 0.270}  # fmt: skip
    for outcome, median in rows.items():
        assert float(P.rhodes2015(outcome, "nonpharma").quantile(0.5)) == pytest.approx(
            median, abs=5e-4
        )


def test_tables_are_complete_and_labels_work():
    assert P.turner2015("withdrawals / drop-outs", "Pharmacological vs. Placebo / Control") == \
        P.LogNormalTau2(-2.99, 1.74)  # fmt: skip
    assert P.rhodes2015("mental health outcome", "non-pharmacological (any)").location == -3.85
    assert P.rhodes2015("obstetric", "pharma_vs_pharma", area="cancer") == P.LogTTau2(-1.85, 2.41)
    assert P.rhodes2015("obstetric", "pharma_vs_pharma", area="respiratory") == P.LogTTau2(
        -6.31, 2.31
    )
    # 16 outcomes x 5 comparisons (Turner) and 8 x 3 x 3 areas (Rhodes), plus general rows
    base = studies_dir() / "priors"
    turner = (base / "turner2015.csv").read_text(encoding="utf-8").splitlines()
    rhodes = (base / "rhodes2015.csv").read_text(encoding="utf-8").splitlines()
    assert len(turner) == 1 + 1 + 80
    assert len(rhodes) == 1 + 1 + 72


def test_table_metadata_carries_citation_and_quirk():
    base = studies_dir() / "priors"
    turner = tomllib.loads((base / "turner2015.toml").read_text(encoding="utf-8"))
    rhodes = tomllib.loads((base / "rhodes2015.toml").read_text(encoding="utf-8"))
    assert turner["doi"] == "10.1002/sim.6381"
    assert rhodes["doi"] == "10.1016/j.jclinepi.2014.08.012"
    assert turner["distribution"]["family"] == "lognormal"
    assert rhodes["distribution"]["df"] == 5
    assert "-3.85" in rhodes["quirks"][0]["value"]
    assert "sim.6381" in P.LogNormalTau2.reference and "jclinepi" in P.LogTTau2.reference


def test_unknown_setting_lists_valid_ones():
    with pytest.raises(
        ValueError,
        match=r"`outcome` must be one of \['adverse_events', .*'withdrawals'\] "
        r"\(or their labels\); got 'fatigue'",
    ):
        P.turner2015("fatigue")
    with pytest.raises(
        ValueError, match=r"`comparison` must be one of \['any', 'nonpharma_vs_nonpharma'"
    ):
        P.turner2015("pain", "drug")
    with pytest.raises(
        ValueError, match=r"`area` must be one of \['cancer', 'other', 'respiratory'\]; got 'skin'"
    ):
        P.rhodes2015("mental_health", "nonpharma", area="skin")
    with pytest.raises(ValueError, match=r"`comparison` for outcome 'pain' must be one of"):
        P.turner2015("pain", "any")


def test_studies_dir_env_override_and_bad_table(tmp_path, monkeypatch):
    src = studies_dir() / "priors"
    dst = tmp_path / "priors"
    shutil.copytree(src, dst)
    text = (dst / "turner2015.csv").read_text(encoding="utf-8").replace("-1.83,1.52", "-1.00,1.00")
    (dst / "turner2015.csv").write_text(text, encoding="utf-8")
    monkeypatch.setenv("FIBROSIM_STUDIES", str(tmp_path))
    assert P.turner2015("pain", "pharma_vs_placebo") == P.LogNormalTau2(-1.0, 1.0)
    (dst / "turner2015.csv").write_text(text.replace("-1.00,1.00", "-1.00,abc"), encoding="utf-8")
    with pytest.raises(
        StudyDataError,
        match=r"turner2015.csv(.|\n)*row \d+, column 'sigma': must be a number; got 'abc'",
    ):
        P.turner2015("pain", "pharma_vs_placebo")
    monkeypatch.setenv("FIBROSIM_STUDIES", str(tmp_path / "missing"))
    with pytest.raises(
        StudyDataError, match=r"FIBROSIM_STUDIES names a folder that does not exist"
    ):
        P.turner2015()


# -- validation and improper priors ------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: P.HalfNormal(0), r"`scale` must be > 0; got 0.0"),
        (lambda: P.HalfCauchy(-1), r"`scale` must be > 0; got -1.0"),
        (lambda: P.HalfT(0, 1), r"`df` must be > 0; got 0.0"),
        (lambda: P.Exponential(np.nan), r"`rate` must be finite; got nan"),
        (lambda: P.Uniform(-1, 2), r"`low` must be >= 0; got -1.0"),
        (lambda: P.Uniform(2, 1), r"`high` must be a number > low = 2 \(or inf\); got 1"),
        (lambda: P.LogNormalTau2(-2, 0), r"`sigma` must be > 0; got 0.0"),
        (lambda: P.LogTTau2(-2, 1, df=-5), r"`df` must be > 0; got -5.0"),
        (lambda: P.Normal(0, 0), r"`sd` must be > 0; got 0.0"),
        (lambda: P.Normal(np.inf, 1), r"`mean` must be finite; got inf"),
        (lambda: P.Jeffreys(vi=[0.1, 0.0]), r"`vi` must be > 0; got 0.0 at index 1"),
        (lambda: P.HalfNormal([1, 2]), r"`scale` must be a scalar"),
    ],
)
def test_bad_parameters_raise_naming_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_improper_priors():
    flat = P.Uniform(0, np.inf)
    assert not flat.proper and flat.pdf(1e6) == 1.0
    with pytest.raises(ValueError, match=r"Uniform\(low=0, high=inf\) is improper: it has no cdf"):
        flat.cdf(1.0)
    jeff = P.Jeffreys()
    assert not jeff.proper
    with pytest.raises(ValueError, match=r"bind them with Jeffreys\(vi=...\)"):
        jeff.pdf(1.0)
    bound = P.Jeffreys(vi=[0.1, 0.4])
    t = 0.7
    expected = math.sqrt((t / (0.1 + t * t)) ** 2 + (t / (0.4 + t * t)) ** 2)
    assert float(bound.pdf(t)) == pytest.approx(expected, rel=1e-14)
    with pytest.raises(ValueError, match=r"improper: it has no quantile"):
        bound.quantile(0.5)
    with pytest.raises(ValueError, match=r"`tau` must not be NaN"):
        P.HalfNormal(1).pdf(np.nan)


def test_mu_priors_and_alias():
    assert fs.priors is P
    assert float(P.Normal(1, 2).pdf(1.0)) == pytest.approx(1 / (2 * math.sqrt(2 * math.pi)))
    assert repr(P.Flat()) == "Flat()" and not P.Flat().proper
