"""Tests of fibrosim.meta.frequentist against metafor and published values.

Reference values: tests/data/rma_reference.json, written by validation/metafor/rma_reference.R
(metafor 3.8-1, R 4.2.2; the R calls are stored beside every value).
"""

from __future__ import annotations

import functools
import itertools
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fibrosim import _jit
from fibrosim.meta import _tau2, _tau2_ml
from fibrosim.meta._re_result import _flatten
from fibrosim.meta.frequentist import METHODS, RandomEffectsResult, random_effects
from fibrosim.warnings import ConvergenceWarning, FragileEstimateWarning

REF = json.loads((Path(__file__).parent / "data" / "rma_reference.json").read_text())
FITS = REF["fits"]
DATASETS = REF["datasets"]

# metafor was run with control=list(tol=1e-12, threshold=1e-12, maxiter=10000): its Fisher
# scoring stops when the tau² step is below 1e-12 (absolute) and its uniroot calls at tol 1e-12.
# The linear convergence of metafor's SJIT/EB iterations leaves its tau² up to ~1e-11 relative
# from the exact root, which propagates to ~5e-10 relative in p-values (measured worst: pval
# 4.5e-10, SJIT on dat.molloy2014).  rtol 1e-8 keeps a 20x margin over that and is far tighter
# than the 1e-6 that metafor's own convergence would need with its default settings.
RTOL = 1e-8
# When tau² sits on the boundary, metafor's EB/SJIT/ML iterations approach 0 geometrically and
# stop at its threshold: e.g. eight schools SJIT tau² = 1.4e-12 (I² 1e-12 %) where the exact
# value is 0.  An absolute tolerance of 1e-9 on the scale of the data covers this.
ATOL_BOUNDARY = 1e-9

QUANTITIES = (
    "estimate",
    "se",
    "zval",
    "pval",
    "ci_low",
    "ci_high",
    "tau2",
    "se_tau2",
    "i2",
    "h2",
    "q",
    "q_pvalue",
)


def _fit(f: dict[str, Any]) -> RandomEffectsResult:
    d = DATASETS[f["dataset"]]
    yi, vi = np.atleast_1d(d["yi"]), np.atleast_1d(d["vi"])
    if yi.size == 1:
        # k = 1 warns (tested separately); here only the numbers are compared
        with pytest.warns(FragileEstimateWarning):
            return random_effects(yi, vi, method=f["method"], test=f["test"])
    if yi.size == 2 and f["test"] == "knha":
        with pytest.warns(FragileEstimateWarning, match="k = 2"):
            return random_effects(yi, vi, method=f["method"], test=f["test"])
    return random_effects(yi, vi, method=f["method"], test=f["test"])


def _scale(f: dict[str, Any]) -> float:
    return float(np.mean(DATASETS[f["dataset"]]["vi"]))


# ---------------------------------------------------------------------------------------------
# metafor parity


def test_reference_grid_is_complete() -> None:
    # guard: the comparison below must not silently shrink if the R script changes
    assert len(DATASETS) >= 6
    assert set(REF["methods"]) == {"EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM", "SJIT"}
    assert set(REF["tests"]) == {"z", "knha"}
    expected = set(itertools.product(DATASETS, REF["methods"], REF["tests"]))
    got = {(f["dataset"], f["method"], f["test"]) for f in FITS}
    assert got == expected
    assert len(FITS) == len(DATASETS) * len(REF["methods"]) * len(REF["tests"]) == 240
    # every estimator fibrosim offers is covered ("FE" is metafor's "EE")
    assert set(METHODS) - {"FE"} == set(REF["methods"])
    # Q-profile intervals exist for every k >= 2 random-effects fit
    for f in FITS:
        has_ci = f["k"] > 1 and f["method"] != "EE"
        assert ("tau2_ci" in f) == has_ci
    assert REF["metafor_version"] == "3.8.1"
    assert {f["level"] for f in REF["level_fits"]} == {0.9, 0.8, 0.99}


@pytest.mark.validation
@pytest.mark.parametrize("f", FITS, ids=[f"{f['dataset']}-{f['method']}-{f['test']}" for f in FITS])
def test_matches_metafor(f: dict[str, Any]) -> None:
    r = _fit(f)
    scale = _scale(f)
    assert int(r.k) == f["k"]
    for name in QUANTITIES:
        got = float(getattr(r, name))
        ref = f[name]
        if ref is None:
            # metafor's NA: se_tau2 for EE and for k = 1
            assert name == "se_tau2", name
            assert np.isnan(got)
            continue
        atol = {"tau2": ATOL_BOUNDARY * scale, "i2": ATOL_BOUNDARY * 100}.get(name, 0.0)
        np.testing.assert_allclose(got, ref, rtol=RTOL, atol=atol, err_msg=name)
    if f["method"] == "EE":
        # metafor's predict() gives no PI for EE; under tau² = 0 fibrosim's PI is the CI
        assert float(r.pi_low) == float(r.ci_low) and float(r.pi_high) == float(r.ci_high)
    else:
        np.testing.assert_allclose(float(r.pi_low), f["pi_low"], rtol=RTOL)
        np.testing.assert_allclose(float(r.pi_high), f["pi_high"], rtol=RTOL)
    if f["test"] == "knha" and f["k"] > 1:
        assert float(r.df) == f["df"] == f["k"] - 1
    else:
        assert f["df"] is None and np.isinf(float(r.df))
    if "tau2_ci" in f:
        # metafor confint() with tau2.max = 1e4 and uniroot tol 1e-12
        h = r.heterogeneity_ci()
        for key in ("tau2", "tau", "i2", "h2"):
            np.testing.assert_allclose(
                np.array(h[key], dtype=float), f[f"{key}_ci"], rtol=RTOL, err_msg=key
            )
        low, high = r.tau2_ci()
        assert (float(low), float(high)) == (float(h["tau2"][0]), float(h["tau2"][1]))


@pytest.mark.validation
@pytest.mark.parametrize("f", REF["level_fits"], ids=lambda f: f"{f['method']}-{f['level']}")
def test_other_levels_match_metafor(f: dict[str, Any]) -> None:
    r = random_effects(BCG["yi"], BCG["vi"], method=f["method"], test=f["test"], level=f["level"])
    for name in ("ci_low", "ci_high", "pi_low", "pi_high"):
        np.testing.assert_allclose(float(getattr(r, name)), f[name], rtol=RTOL, err_msg=name)
    np.testing.assert_allclose(
        np.array(r.tau2_ci(level=f["level"]), dtype=float), f["tau2_ci"], rtol=RTOL
    )


# ---------------------------------------------------------------------------------------------
# published values (anchors §6.1, §6.6), at their printed precision

BCG = DATASETS["bcg_logrr"]
# metafor's docs and tests print 10 significant digits, so closed-form estimators agree to that
# precision.  Iterative ones were printed with metafor's default stopping rules: Fisher scoring
# threshold 1e-5 on tau² (REML/ML/EB) and uniroot tol .Machine$double.eps^0.25 = 1.2e-4 (PM),
# so those are compared at the accuracy those rules leave.
PRINTED = 1e-9


@pytest.mark.validation
@pytest.mark.parametrize(
    ("method", "tau2", "mu", "se", "tau2_abs"),
    [
        # source: wviechtb/metafor tests/testthat/test_misc_metan_vs_rma.uni_with_dat.bcg.r and
        # docs/reference/rma.uni.html (anchors §6.1).  Closed forms: printed precision.
        ("DL", 0.3087602629, -0.7141172221, 0.1787420895, None),
        ("HE", 0.328563858, -0.7158785888, 0.183279986, None),
        ("HS", 0.2283628637, -0.7045353739, 0.1586520931, None),
        ("SJ", 0.3455157016, -0.7172485926, 0.1870594584, None),
        # iterative: metafor's default Fisher-scoring threshold 1e-5 on tau² (REML, ML, EB) and
        # uniroot tol .Machine$double.eps^0.25 = 1.2e-4 (PM) bound the printed values' error
        ("REML", 0.313243326, -0.7145323484, 0.1797815318, 1e-5),
        ("ML", 0.280028171, -0.7111991392, 0.171896817, 1e-5),
        ("EB", 0.3180685158, -0.7149681592, 0.1808922061, 1e-5),
        ("PM", 0.3180937119, -0.7149704056, 0.1808979841, 1.2e-4),
    ],
)
def test_bcg_published(
    method: str, tau2: float, mu: float, se: float, tau2_abs: float | None
) -> None:
    r = random_effects(BCG["yi"], BCG["vi"], method=method)
    if tau2_abs is None:
        assert float(r.tau2) == pytest.approx(tau2, rel=PRINTED)
        assert float(r.estimate) == pytest.approx(mu, rel=PRINTED)
        assert float(r.se) == pytest.approx(se, rel=PRINTED)
    else:
        assert float(r.tau2) == pytest.approx(tau2, abs=tau2_abs)
        # near the BCG estimates |dmu/dtau²| ~ 0.09 and dse/dtau² ~ 0.23 (from the REML and PM
        # fits), so a tau² error d moves mu by < 0.1 d and se by < 0.25 d
        assert float(r.estimate) == pytest.approx(mu, abs=0.1 * tau2_abs)
        assert float(r.se) == pytest.approx(se, abs=0.25 * tau2_abs)


@pytest.mark.validation
def test_sjit_published() -> None:
    # anchors §6.1: DLIT / SJIT tau² printed as 0.3181 (test_misc_rma_uni.r); fibrosim's SJIT is
    # the converged iteration, i.e. the Paule-Mandel root
    r = random_effects(BCG["yi"], BCG["vi"], method="SJIT")
    assert float(r.tau2) == pytest.approx(0.3181, abs=0.5e-4)
    pm = random_effects(BCG["yi"], BCG["vi"], method="PM")
    assert float(r.tau2) == float(pm.tau2)


@pytest.mark.validation
def test_bcg_published_intervals_and_heterogeneity() -> None:
    y, v = BCG["yi"], BCG["vi"]
    ee = random_effects(y, v, method="EE")
    assert ee.method == "FE"
    assert float(ee.estimate) == pytest.approx(-0.4302851637, rel=PRINTED)
    assert float(ee.se) == pytest.approx(0.04049875171, rel=PRINTED)
    assert (float(ee.ci_low), float(ee.ci_high)) == pytest.approx(
        (-0.5096612584, -0.3509090689), rel=PRINTED
    )
    assert float(ee.q) == pytest.approx(152.2330081, rel=PRINTED)
    assert float(ee.i2) == pytest.approx(92.11734685, rel=PRINTED)
    assert float(ee.h2) == pytest.approx(12.68608401, rel=PRINTED)
    dl = random_effects(y, v, method="DL")
    assert float(dl.se_tau2) == pytest.approx(0.2298699925, rel=PRINTED)
    assert (float(dl.pi_low), float(dl.pi_high)) == pytest.approx(
        (-1.858153753, 0.4299193086), rel=PRINTED
    )
    assert float(dl.i2) == pytest.approx(92.11734685, rel=PRINTED)
    dlk = random_effects(y, v, method="DL", test="knha")
    assert float(dlk.se) == pytest.approx(0.1806966283, rel=PRINTED)
    assert (float(dlk.ci_low), float(dlk.ci_high)) == pytest.approx(
        (-1.107821354, -0.32041309), rel=PRINTED
    )
    assert (float(dlk.pi_low), float(dlk.pi_high)) == pytest.approx(
        (-1.987206963, 0.5589725193), rel=PRINTED
    )
    # REML printed with threshold 1e-5: tau² is off by ~7e-8, CI/PI ends by < 1e-7
    reml = random_effects(y, v, method="REML", test="knha")
    assert float(reml.zval) == pytest.approx(-3.95223989, rel=1e-6)
    assert float(reml.pval) == pytest.approx(0.001920015, rel=1e-6)
    assert float(reml.se_tau2) == pytest.approx(0.1664257831, rel=1e-6)
    assert float(reml.i2) == pytest.approx(92.22138607, rel=1e-6)
    assert float(reml.h2) == pytest.approx(12.8557608, rel=1e-6)
    assert (float(reml.ci_low), float(reml.ci_high)) == pytest.approx(
        (-1.108443723, -0.3206209737), rel=1e-6
    )
    assert (float(reml.pi_low), float(reml.pi_high)) == pytest.approx(
        (-1.996016967, 0.5669522703), rel=1e-6
    )
    # Q-profile (pub. test_misc_confint.r, default uniroot tol 1.2e-4 on tau²)
    h = reml.heterogeneity_ci()
    assert np.array(h["tau2"], dtype=float) == pytest.approx(
        (0.1196953128, 1.111486262), abs=1.2e-4
    )
    assert np.array(h["i2"], dtype=float) == pytest.approx((81.91772272, 97.67808961), abs=2e-2)


@pytest.mark.validation
def test_small_exact_cases() -> None:
    # anchors §6.6: equal variances, REML tau² = s² - v = 1.5 exactly
    r = random_effects([3.0, 2.0, 5.0, 4.0, 6.0], np.ones(5), method="REML")
    assert float(r.tau2) == pytest.approx(1.5, rel=1e-14)
    assert float(r.estimate) == pytest.approx(4.0, rel=1e-15)
    assert float(r.se) == pytest.approx(0.7071067812, rel=PRINTED)
    assert (float(r.i2), float(r.h2), float(r.q)) == pytest.approx((60.0, 2.5, 10.0), rel=1e-13)
    # PyMARE#75 toy data
    y = [-1, 0.5, 0.5, 0.5, 1, 1, 2, 10]
    v = [1, 1, 2.4, 0.5, 1, 1, 1.2, 1.5]
    dl = random_effects(y, v, method="DL")
    assert float(dl.tau2) == pytest.approx(7.633719417, rel=PRINTED)
    assert float(dl.se_tau2) == pytest.approx(4.887374689, rel=PRINTED)
    assert float(dl.estimate) == pytest.approx(1.767883463, rel=PRINTED)
    assert float(dl.se) == pytest.approx(1.04909463, rel=PRINTED)
    assert float(dl.q) == pytest.approx(58.45394737, rel=PRINTED)
    assert float(dl.i2) == pytest.approx(88.02476083, rel=PRINTED)
    reml = random_effects(y, v, method="REML")
    assert float(reml.tau2) == pytest.approx(9.965611153, rel=1e-6)  # printed, threshold 1e-5


@pytest.mark.validation
def test_k2_subset_published() -> None:
    # anchors §6.1: BCG alloc == "alternate" (k = 2); REML = DL
    d = DATASETS["bcg_alternate_k2"]
    for method in ("REML", "DL"):
        r = random_effects(d["yi"], d["vi"], method=method)
        assert float(r.tau2) == pytest.approx(0.1325770399, rel=PRINTED)
        assert float(r.estimate) == pytest.approx(-0.5407929618, rel=PRINTED)
        assert float(r.se) == pytest.approx(0.2816016131, rel=PRINTED)
        assert (float(r.ci_low), float(r.ci_high)) == pytest.approx(
            (-1.092721982, 0.01113605782), rel=PRINTED
        )
    with pytest.warns(FragileEstimateWarning, match="k = 2 with test='knha'"):
        r = random_effects(d["yi"], d["vi"], method="DL", test="knha")
    assert (float(r.ci_low), float(r.ci_high)) == pytest.approx(
        (-4.118880712, 3.037294788), rel=PRINTED
    )
    # the Q-profile upper bound is not capped at 100 (metafor prints ">100" unless tau2.max is
    # raised; with tau2.max = 1e5 it gives 164.5570)
    # (printed to 4 decimals after uniroot at its default tol 1.2e-4)
    low, high = r.tau2_ci()
    assert float(low) == pytest.approx(0.0031, abs=0.5e-4)
    assert float(high) == pytest.approx(164.5570, abs=1.2e-4)


# ---------------------------------------------------------------------------------------------
# pitfalls


def test_k1() -> None:
    d = DATASETS["bcg_k1"]
    with pytest.warns(FragileEstimateWarning, match="k = 1.*'z' is used"):
        r = random_effects([d["yi"]], [d["vi"]], method="REML", test="knha")
    assert float(r.tau2) == 0.0 and np.isnan(float(r.se_tau2))
    assert float(r.estimate) == pytest.approx(-0.8893113339, rel=PRINTED)
    assert float(r.se) == pytest.approx(0.5706003549, rel=PRINTED)
    assert np.isinf(float(r.df))  # knha replaced by z, as metafor
    assert (float(r.pi_low), float(r.pi_high)) == (float(r.ci_low), float(r.ci_high))
    assert (float(r.q), float(r.q_pvalue), float(r.i2), float(r.h2)) == (0.0, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="needs k >= 2 studies; the analysis at batch index 0"):
        r.tau2_ci()


def test_k1_inside_batch_is_flagged_by_index() -> None:
    y = np.array([[0.1, 0.3, -0.2], [0.5, np.nan, np.nan]])
    v = np.array([[0.1, 0.2, 0.1], [0.3, np.nan, np.nan]])
    with pytest.warns(FragileEstimateWarning, match=r"1 of 2 analyses; first at batch index 1"):
        r = random_effects(y, v)
    assert r.tau2[1] == 0.0 and r.estimate[1] == 0.5
    with pytest.raises(ValueError, match="batch index 1 has k = 1"):
        r.tau2_ci()


@pytest.mark.parametrize("bad", [0.0, -0.1])
def test_nonpositive_variance_is_an_error(bad: float) -> None:
    v = [0.1, 0.2, bad, 0.3]
    with pytest.raises(ValueError, match=rf"`vi` must be > 0 .*got {bad} at index 2\."):
        random_effects([0.1, 0.2, 0.3, 0.4], v)


def test_ndarray_inputs_take_the_same_checks() -> None:
    y = np.array([0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"`vi` must be > 0 .*got 0.0 at index 1"):
        random_effects(y, np.array([0.1, 0.0, 0.2]))
    with pytest.raises(ValueError, match=r"`vi` must be finite or NaN \(padding\); got inf"):
        random_effects(y, np.array([0.1, np.inf, 0.2]))
    with pytest.raises(ValueError, match=r"NaN in the same cells"):
        random_effects(np.array([0.1, np.nan, 0.3]), np.array([0.1, 0.2, 0.2]))
    # the result keeps its own read-only copy of the data
    v = np.array([0.1, 0.2, 0.2])
    r = random_effects(y, v)
    before = r.tau2_ci()
    v[:] = 5.0
    assert r.tau2_ci() == before and not r.vi.flags.writeable


def test_nonfinite_input_is_an_error() -> None:
    with pytest.raises(
        ValueError, match=r"`yi` must be finite or NaN \(padding\); got inf at index 1"
    ):
        random_effects([0.1, np.inf, 0.3], [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match=r"`vi` must be finite or NaN \(padding\); got -inf"):
        random_effects([0.1, 0.2, 0.3], [0.1, 0.1, -np.inf])
    with pytest.raises(
        ValueError, match=r"NaN in the same cells .*yi = nan and vi = 0.2 at index 1"
    ):
        random_effects([0.1, np.nan, 0.3], [0.1, 0.2, 0.1])
    with pytest.raises(ValueError, match=r"got yi = 0.3 and vi = nan at index \(1, 2\)"):
        random_effects(np.ones((2, 3)) * 0.3, [[0.1] * 3, [0.1, 0.1, np.nan]])
    with pytest.raises(ValueError, match=r"batch index 1 is all NaN"):
        random_effects([[0.1, 0.2], [np.nan, np.nan]], [[0.1, 0.2], [np.nan, np.nan]])


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match=r"`method` must be one of .*'REML'.*; got 'reml'"):
        random_effects([0.1, 0.2], [0.1, 0.1], method="reml")
    with pytest.raises(ValueError, match=r"`test` must be one of 'z', 'knha'; got 't'"):
        random_effects([0.1, 0.2], [0.1, 0.1], test="t")
    with pytest.raises(ValueError, match=r"`level` must be a number in \(0, 1\).*got 95"):
        random_effects([0.1, 0.2], [0.1, 0.1], level=95)
    with pytest.raises(ValueError, match=r"same shape; got \(3,\) and \(2,\)"):
        random_effects([0.1, 0.2, 0.3], [0.1, 0.1])
    with pytest.raises(ValueError, match=r"studies on the last axis; got shapes \(\) and \(\)"):
        random_effects(0.1, 0.1)
    with pytest.raises(TypeError, match="`yi` must be numeric"):
        random_effects(["a", "b"], [0.1, 0.1])
    r = random_effects([0.1, 0.2, 0.4], [0.1, 0.1, 0.2])
    with pytest.raises(ValueError, match="`level` must be a number in"):
        r.tau2_ci(level=1.5)


def test_all_effects_equal() -> None:
    y, v = np.full(5, 0.3), np.array([0.1, 0.2, 0.3, 0.1, 0.5])
    for method in ("REML", "DL", "PM", "SJ", "HE", "ML"):
        r = random_effects(y, v, method=method)  # z test: nothing fragile
        assert float(r.tau2) == 0.0 and float(r.estimate) == pytest.approx(0.3, rel=1e-15)
        with pytest.warns(FragileEstimateWarning, match="Knapp-Hartung scale is 0"):
            rk = random_effects(y, v, method=method, test="knha")
        assert float(rk.se) == 0.0 and float(rk.ci_low) == float(rk.ci_high)


def test_huge_variance_ratio_warns() -> None:
    with pytest.warns(FragileEstimateWarning, match="1e7 or more"):
        r = random_effects([0.1, 0.5, -0.2, 0.3], [1e-8, 0.1, 0.2, 0.05])
    assert np.isfinite(float(r.estimate)) and float(r.tau2) >= 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        random_effects([0.1, 0.5, -0.2, 0.3], [1.01e-8, 0.1, 0.02, 0.05])  # ratio < 1e7


def test_tau2_at_boundary() -> None:
    # eight schools: DL = REML = PM tau² = 0 exactly; Q-profile [0, 272.3137] needs a bracket
    # beyond metafor's default cap of 100 (anchors §6.5)
    d = DATASETS["eight_schools"]
    for method in ("REML", "ML", "DL", "PM", "EB", "SJIT", "HE", "HS"):
        r = random_effects(d["yi"], d["vi"], method=method)
        assert float(r.tau2) == 0.0
        assert float(r.i2) == 0.0 and float(r.h2) == 1.0
        assert float(r.estimate) == pytest.approx(7.870545565, rel=PRINTED)
        assert float(r.se) == pytest.approx(4.16557774, rel=PRINTED)
        assert (float(r.pi_low), float(r.pi_high)) == pytest.approx(
            (float(r.ci_low), float(r.ci_high)), rel=1e-15
        )
    low, high = r.tau2_ci()
    assert float(low) == 0.0
    assert float(high) == pytest.approx(272.3137, abs=1.2e-4)  # uniroot default tol, 4 decimals


def test_q_profile_bracket_is_adaptive() -> None:
    # huge heterogeneity relative to vi: the upper bound is far above metafor's cap of 100
    y = np.array([-300.0, 0.0, 250.0, 80.0])
    v = np.array([1.0, 2.0, 1.5, 1.0])
    r = random_effects(y, v)
    low, high = r.tau2_ci()
    assert 100 < float(low) < float(r.tau2) < float(high)
    from scipy.stats import chi2

    for bound, p in ((low, 0.975), (high, 0.025)):
        q = _tau2.generalised_q(y[None], v[None], np.ones((1, 4)), np.atleast_1d(bound))[0]
        assert q == pytest.approx(chi2.ppf(p, 3), rel=1e-12)


def test_reml_fallback_warns_and_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    # force the Newton iteration to stop after one step: the bounded 1-D maximisation must
    # take over, warn, and land on the same maximum as metafor
    f = next(f for f in FITS if (f["dataset"], f["method"]) == ("bcg_logrr", "REML"))
    monkeypatch.setattr(_tau2_ml, "tau2_ml", functools.partial(_tau2_ml.tau2_ml, max_iter=1))
    monkeypatch.setattr(
        _tau2_ml, "tau2_ml_one", functools.partial(_tau2_ml.tau2_ml_one, max_iter=1)
    )
    with pytest.warns(ConvergenceWarning, match="bounded 1-D maximisation"):
        r = random_effects(BCG["yi"], BCG["vi"], method="REML")
    # bounded Brent stops at xatol = 1e-14 (tau² + mean vi) but the likelihood is flat to
    # O(step²) there, so tau² agrees to ~1e-8 relative
    np.testing.assert_allclose(float(r.tau2), f["tau2"], rtol=1e-7)


@pytest.mark.parametrize(("dataset", "method"), [("bimodal_a", "REML"), ("bimodal_b", "ML")])
def test_interior_maximum_beats_boundary_maximum(dataset: str, method: str) -> None:
    # the score at tau² = 0 is negative (zero is a local maximum) but a higher interior maximum
    # exists; metafor's Fisher scoring from the Hedges start finds it, and so must fibrosim
    d = DATASETS[dataset]
    y, v = np.array([d["yi"]]), np.array([d["vi"]])
    m = np.ones_like(y)
    reml = method == "REML"
    assert _tau2_ml._score_row(y[0], v[0], 0.0, reml) < 0.0
    r = random_effects(d["yi"], d["vi"], method=method)
    ref = next(f for f in FITS if (f["dataset"], f["method"], f["test"]) == (dataset, method, "z"))
    np.testing.assert_allclose(float(r.tau2), ref["tau2"], rtol=RTOL)
    grid = np.concatenate([[0.0], np.logspace(-6, 3, 2000)])
    ll_grid = _tau2_ml._loglik(
        np.repeat(y, grid.size, 0),
        np.repeat(v, grid.size, 0),
        np.repeat(m, grid.size, 0),
        grid,
        reml,
    )
    ll_hat = _tau2_ml._loglik(y, v, m, np.atleast_1d(r.tau2), reml)[0]
    assert ll_hat >= ll_grid.max() - 1e-12
    assert ll_hat > ll_grid[0]


@pytest.mark.parametrize("n_rows", [1, 3])
def test_fallback_in_core(n_rows: int) -> None:
    # one analysis (scalar path) and a batch (vectorised path): with max_iter = 2 Newton cannot
    # finish, so every row goes to the bounded 1-D maximisation and is flagged
    fit = _tau2_ml.tau2_ml(
        np.array([BCG["yi"]] * n_rows),
        np.array([BCG["vi"]] * n_rows),
        np.ones((n_rows, 13)),
        np.full(n_rows, 13.0),
        reml=False,
        max_iter=2,
    )
    assert fit.fallback.all()
    ref = next(f for f in FITS if (f["dataset"], f["method"]) == ("bcg_logrr", "ML"))
    # bounded Brent is accurate to ~1e-8 relative on this flat-topped likelihood
    np.testing.assert_allclose(fit.tau2, ref["tau2"], rtol=1e-7)


# ---------------------------------------------------------------------------------------------
# batching and properties


def test_batch_shape_and_padding() -> None:
    names = ["bcg_logrr", "raudenbush1985_smd", "collins1985b_logor", "eight_schools"]
    kmax = max(len(DATASETS[n]["yi"]) for n in names)
    y = np.full((2, 2, kmax), np.nan)
    v = np.full((2, 2, kmax), np.nan)
    for i, n in enumerate(names):
        d = DATASETS[n]
        y[i // 2, i % 2, : len(d["yi"])] = d["yi"]
        v[i // 2, i % 2, : len(d["vi"])] = d["vi"]
    r = random_effects(y, v, method="PM", test="knha")
    for name in (*QUANTITIES, "pi_low", "pi_high", "k", "df"):
        assert np.shape(getattr(r, name)) == (2, 2)
    for i, n in enumerate(names):
        one = random_effects(DATASETS[n]["yi"], DATASETS[n]["vi"], method="PM", test="knha")
        for name in QUANTITIES:
            np.testing.assert_allclose(
                getattr(r, name)[i // 2, i % 2], float(getattr(one, name)), rtol=1e-12
            )
    low, high = r.tau2_ci()
    assert low.shape == high.shape == (2, 2)
    df = r.to_dataframe()
    assert df.shape[0] == 4 and list(df.index.names) == ["axis_0", "axis_1"]
    assert "batch shape (2, 2)" in repr(r)


@pytest.mark.parametrize("method", ["REML", "ML", "PM"])
def test_blocked_evaluation_equals_one_pass(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # large batches are solved in cache-sized blocks of rows (and, for huge k, of scan points);
    # a tiny block size must give the same numbers (rows are independent)
    rng = np.random.default_rng(7)
    v = np.exp(rng.uniform(-4, 1, (30, 12)))
    y = rng.normal(0, 1, (30, 12)) * np.sqrt(v + 0.3)
    y[::3, 9:] = np.nan
    v[::3, 9:] = np.nan
    whole = random_effects(y, v, method=method)
    monkeypatch.setattr(_tau2, "_BLOCK", 64)
    blocked = random_effects(y, v, method=method)
    for name in QUANTITIES:
        np.testing.assert_allclose(getattr(blocked, name), getattr(whole, name), rtol=1e-13)


@st.composite
def ragged_batches(draw: Any) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 6))
    kmax = draw(st.integers(3, 12))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    tau = rng.uniform(0, 1.0, size=(n, 1)) * rng.integers(0, 2, size=(n, 1))
    # log-uniform variances (ratio up to e^7 ~ 1100): unequal weights and, now and then, a
    # likelihood with maxima both at tau² = 0 and inside
    v = np.exp(rng.uniform(-5.0, 2.0, size=(n, kmax)))
    y = rng.normal(0.3, 1.0, size=(n, 1)) + rng.normal(0, 1, (n, kmax)) * np.sqrt(v + tau**2)
    ks = rng.integers(3, kmax + 1, size=n)
    pad = np.arange(kmax)[None, :] >= ks[:, None]
    y[pad] = np.nan
    v[pad] = np.nan
    return y, v


# batch vs loop: the same O(k) arithmetic on padded rows; summation order can differ by the
# zero padding, and iterative solvers stop at 1e-14 relative, so agreement to 1e-12 is expected
BATCH_RTOL = 1e-12


@settings(max_examples=40, deadline=None)
@given(ragged_batches(), st.sampled_from(["REML", "ML", "PM", "DL", "SJ", "HE", "HS", "EB"]))
def test_batch_equals_loop(data: tuple[np.ndarray, np.ndarray], method: str) -> None:
    y, v = data
    for test in ("z", "knha"):
        r = random_effects(y, v, method=method, test=test)
        low, high = r.tau2_ci()
        for i in range(y.shape[0]):
            keep = ~np.isnan(y[i])
            one = random_effects(y[i, keep], v[i, keep], method=method, test=test)
            for name in (*QUANTITIES, "pi_low", "pi_high"):
                a, b = getattr(r, name)[i], float(getattr(one, name))
                atol = BATCH_RTOL * float(np.mean(v[i, keep])) if name == "tau2" else 0.0
                np.testing.assert_allclose(a, b, rtol=BATCH_RTOL, atol=atol, err_msg=name)
            lo1, hi1 = one.tau2_ci()
            np.testing.assert_allclose([low[i], high[i]], [lo1, hi1], rtol=BATCH_RTOL)


@settings(max_examples=20, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from(["REML", "ML", "PM", "DL", "SJ", "HE", "HS", "FE"]),
    st.floats(1e-3, 1e3),
)
def test_permutation_invariance_and_scale_equivariance(seed: int, method: str, c: float) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(3, 15))
    v = rng.uniform(0.05, 1.0, k)
    y = rng.normal(0, 1, k) * np.sqrt(v + rng.uniform(0, 1))
    base = random_effects(y, v, method=method, test="knha")
    perm = rng.permutation(k)
    p = random_effects(y[perm], v[perm], method=method, test="knha")
    s = random_effects(c * y, c**2 * v, method=method, test="knha")
    # floating-point sums in a different order: agreement to ~1e-12 relative
    for name in QUANTITIES:
        atol = 1e-12 * float(np.mean(v)) if name == "tau2" else 1e-12
        np.testing.assert_allclose(getattr(p, name), getattr(base, name), rtol=1e-11, atol=atol)
    units = {"estimate": c, "se": c, "ci_low": c, "ci_high": c, "tau2": c**2, "se_tau2": c**2}
    for name in QUANTITIES:
        factor = units.get(name, 1.0)
        atol = 1e-12 * float(np.mean(v)) * factor if name == "tau2" else 1e-12
        np.testing.assert_allclose(
            getattr(s, name), factor * getattr(base, name), rtol=1e-10, atol=atol, err_msg=name
        )


# ---------------------------------------------------------------------------------------------
# result object


def test_result_object() -> None:
    r = random_effects(BCG["yi"], BCG["vi"], method="REML")
    assert r.estimate.shape == r.batch_shape == ()
    assert r.tval == r.zval
    with pytest.raises(AttributeError):
        r.tau2 = np.zeros(())  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        r.tau2[...] = 0.0  # the quantities are views of one read-only array
    assert r.values.shape == (15,) and float(r.values[8]) == float(r.tau2)
    text = repr(r)
    assert "method='REML'" in text and "-0.7145" in text and "Q(12) = 152.2" in text
    df = r.to_dataframe()
    assert df.shape == (1, 18)
    assert df.loc[0, "tau2"] == pytest.approx(float(r.tau2), rel=0)
    assert df.loc[0, "k"] == 13 and df.attrs["level"] == 0.95
    r90 = random_effects(BCG["yi"], BCG["vi"], method="REML", level=0.9)
    assert float(r90.ci_high) - float(r90.ci_low) < float(r.ci_high) - float(r.ci_low)
    lo90, hi90 = r.tau2_ci(level=0.9)
    lo95, hi95 = r.tau2_ci()
    assert lo95 < lo90 < hi90 < hi95


# ---------------------------------------------------------------------------------------------
# one analysis: float fast path against the array path

# A clean 1-D input runs the pooling, tests and Q on Python floats after the tau² fit (and the
# ML/REML Newton iteration on floats); a (1, k) batch, a NaN-padded row and a batch of two rows
# take the array path.  Both paths do the same IEEE operations in the same order, so 1e-14 is a
# margin over exact equality, not a tolerance for a different computation; tau² is compared on
# the scale tau² + mean(vi) of the solvers' stopping rule.
FAST_RTOL = 1e-14
FAST_FIELDS = (*QUANTITIES, "pi_low", "pi_high", "df")


def _one_analysis_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(20261127)
    cases = []
    for k in (1, 2, 3, 5, 20):
        for tau2 in (0.0, 0.05, 1.0):
            v = rng.uniform(0.01, 0.5, k)
            cases.append((rng.normal(0.3, np.sqrt(v + tau2)), v))
    # all effects equal (tau² = 0 for every estimator, Knapp-Hartung SE = 0) and a dataset with
    # a wide range of variances
    cases.append((np.full(6, 0.4), rng.uniform(0.01, 0.5, 6)))
    cases.append((np.asarray(BCG["yi"], dtype=float), np.asarray(BCG["vi"], dtype=float)))
    return cases


def _recorded(
    y: np.ndarray, v: np.ndarray, method: str, test: str
) -> tuple[RandomEffectsResult, list[tuple[str, type, str]]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = random_effects(y, v, method=method, test=test)
    return r, [(str(w.message), w.category, w.filename) for w in caught]


@pytest.mark.parametrize("test", ["z", "knha"])
@pytest.mark.parametrize("method", METHODS)
def test_one_analysis_fast_path_equals_array_path(
    method: str, test: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the array path flattens the batch; the float path never does (a spy on _flatten adds no
    # stack frame between random_effects and warnings.warn, so warning locations stay exact)
    used: list[int] = []

    def spy(yi: np.ndarray, vi: np.ndarray) -> Any:
        used.append(1)
        return _flatten(yi, vi)

    monkeypatch.setattr("fibrosim.meta.frequentist._flatten", spy)
    for y, v in _one_analysis_cases():
        k = y.size
        used.clear()
        fast, w_fast = _recorded(y, v, method, test)
        assert not used, "a clean 1-D input must take the float path"
        others = [
            _recorded(y[None], v[None], method, test),
            _recorded(np.append(y, np.nan), np.append(v, np.nan), method, test),
        ]
        assert len(used) == 2, "batched or padded input must take the array path"
        # the same warnings (message, class, and the caller's file as location)
        for _, w_arr in others:
            assert w_fast == w_arr
        if k == 1 or (k == 2 and test == "knha"):
            assert w_fast and all(c is FragileEstimateWarning for _, c, _ in w_fast)
        pair, _ = _recorded(np.stack([y, y]), np.stack([v, v]), method, test)
        rows = [(others[0][0], (0,)), (others[1][0], ()), (pair, (0,))]
        for r, idx in rows:
            assert int(r.k[idx]) == int(fast.k) == k
            for name in FAST_FIELDS:
                a, b = float(getattr(r, name)[idx]), float(getattr(fast, name))
                atol = FAST_RTOL * float(np.mean(v)) if name == "tau2" else 0.0
                np.testing.assert_allclose(b, a, rtol=FAST_RTOL, atol=atol, err_msg=name)
        assert fast.estimate.shape == () and fast.k.dtype == np.int64
        assert not fast.yi.flags.writeable and np.array_equal(fast.yi, y)


@pytest.mark.parametrize("k", range(1, _tau2._COLSUM_MAX_K + 2))
def test_column_row_sums_equal_numpy_reduce_bit_for_bit(k: int) -> None:
    # _wsum replays NumPy's pairwise summation column by column for many short rows; the
    # batched estimators rely on it giving exactly np.add.reduce's bits (values spanning 16
    # decades make any change of summation order visible)
    rng = np.random.default_rng(k)
    for shape in [(200, k), (70, 3, k), (5, 21, k), (3, k)]:
        a = rng.normal(size=shape) * 10.0 ** rng.uniform(-8, 8, size=shape)
        assert np.array_equal(_tau2._wsum(a), np.add.reduce(a, axis=-1))
        f = np.asfortranarray(a)  # not C-contiguous: NumPy's own reduction is used
        assert np.array_equal(_tau2._wsum(f), np.add.reduce(f, axis=-1))


@pytest.mark.parametrize("method", ["REML", "ML", "DL", "PM"])
def test_threaded_batch_equals_one_thread_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    # a large batch runs the compiled row kernels on row ranges in threads; each row's
    # arithmetic is the same whatever the split, so 1, 2 and 3 threads must agree bit for bit
    rng = np.random.default_rng(21)
    n, kk = 600, 12
    v = np.exp(rng.uniform(-4.0, 1.0, size=(n, kk)))
    y = rng.normal(0.0, 1.0, size=(n, kk)) * np.sqrt(v + rng.uniform(0.0, 0.5, size=(n, 1)))
    pad = rng.uniform(size=(n, kk)) < 0.3
    pad[:, 0] = False  # every analysis keeps a study
    y[pad], v[pad] = np.nan, np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FragileEstimateWarning)  # some rows have k = 1
        one = random_effects(y, v, method=method)
        monkeypatch.setattr(_jit, "_MIN_ROWS_PER_THREAD", 1)
        for threads in (2, 3):
            monkeypatch.setattr(_jit, "_threads", lambda t=threads: t)
            many = random_effects(y, v, method=method)
            assert np.array_equal(one.values, many.values, equal_nan=True)


@pytest.mark.parametrize("reml", [True, False])
def test_one_analysis_ml_path_equals_padded_batch_rows_bit_for_bit(reml: bool) -> None:
    # tau2_ml_one runs the compiled row solver on the caller's arrays, tau2_ml on the rows of a
    # NaN-padded batch (padding at random places, moved to the row ends by _flatten); nothing
    # may change a bit.
    # Log-uniform variances give likelihoods with maxima at zero and inside now and then.
    rng = np.random.default_rng(11)
    n, kk = 300, 40
    y, v = np.full((n, kk), np.nan), np.full((n, kk), np.nan)
    rows = []
    for i in range(n):
        k = int(rng.integers(2, kk + 1))
        vr = np.exp(rng.uniform(-5.0, 2.0, size=k))
        yr = rng.normal(0.0, 1.0, size=k) * np.sqrt(vr + rng.uniform(0.0, 1.0))
        cells = np.sort(rng.choice(kk, size=k, replace=False))
        y[i, cells], v[i, cells] = yr, vr
        rows.append((yr, vr))
    fit = _tau2_ml.tau2_ml(*_flatten(y, v), reml=reml)
    for i, (yr, vr) in enumerate(rows):
        t, se, fallback = _tau2_ml.tau2_ml_one(yr, vr, reml=reml)
        assert (t, se, fallback) == (fit.tau2[i], fit.se_tau2[i], fit.fallback[i])


def test_q_step_1d_equals_array_step_bit_for_bit() -> None:
    # the one-analysis Paule-Mandel step on floats must give the array step's bits, so a
    # single analysis and a batch follow identical iterates
    rng = np.random.default_rng(12)
    for _ in range(300):
        k = int(rng.integers(2, 40))
        v = np.exp(rng.uniform(-5.0, 2.0, size=(1, k)))
        y = rng.normal(0.0, 1.0, size=(1, k)) * np.sqrt(v + rng.uniform(0.0, 1.0))
        m, target = np.ones((1, k)), np.array([k - 1.0])
        t = np.array([rng.uniform(0.0, 2.0)])
        right, cand, exact = _tau2._q_step(y, v, m, target, t)
        r1, c1, e1 = _tau2._q_step_1d(y[0], v[0], m[0], float(target[0]), float(t[0]))
        assert (bool(right[0]), float(cand[0]), bool(exact[0])) == (r1, c1, e1)
        # and the solved root is the batched solver's (a second, identical row forces it)
        pair = _tau2.q_profile_root(
            np.vstack([y, y]),
            np.vstack([v, v]),
            np.vstack([m, m]),
            np.full(2, k),
            np.full(2, k - 1.0),
        )
        one = _tau2.q_profile_root(y, v, m, np.array([float(k)]), target)
        assert one[0] == pair[0] == pair[1]


def test_check_data_fast_path_sum_overflow_and_nonfinite() -> None:
    # finite values whose sum overflows are valid input and must not warn; an Inf or NaN must
    # never slip through the fast path
    from fibrosim.meta.frequentist import _check_data

    big = np.array([1e308, 1e308, -1.0])
    y, _v, clean = _check_data(big, np.ones(3))
    assert clean and np.array_equal(y, big)
    for bad in (np.inf, -np.inf):
        with pytest.raises(ValueError, match="yi"):
            _check_data(np.array([0.1, bad, 0.3]), np.ones(3))
    with pytest.raises(ValueError, match="NaN in the same cells"):
        _check_data(np.array([0.1, np.nan, 0.3]), np.ones(3))
