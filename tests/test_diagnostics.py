"""Leave-one-out, influence, BLUPs, Egger / rank tests and trim-and-fill against metafor 3.8-1.

Reference values: tests/data/diagnostics_reference.json (validation/metafor/diagnostics_reference.R,
exact R calls and versions inside).  metafor ran with threshold = tol = 1e-12, so its tau² stops
within ~1e-12 of the optimum; the measured worst relative deviation over every quantity here is
below 1e-9.  RTOL = 1e-6 keeps three orders of
margin and still catches any formula slip.  ATOL is for values at or crossing 0 (tau² = 0,
intervals that straddle 0, rstudent = 0 for the toy data) where relative error is undefined.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import load_reference

from fibrosim.meta.diagnostics import blup, influence, leave_one_out
from fibrosim.meta.publication_bias import egger_test, rank_test, trim_and_fill
from fibrosim.warnings import FragileEstimateWarning

RTOL = 1e-6
ATOL = 1e-10
REF = load_reference("diagnostics_reference.json")
DATA = REF["datasets"]


def _yv(name: str) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(DATA[name]["yi"]), np.asarray(DATA[name]["vi"])


def _moderator(ref: dict[str, Any]) -> np.ndarray | None:
    mod = ref.get("moderator")
    return None if mod is None else np.asarray(DATA[ref["dataset"]][mod])


def _close(actual: Any, desired: Any) -> None:
    desired = np.asarray([np.nan if x is None else x for x in np.atleast_1d(desired)], float)
    np.testing.assert_allclose(
        np.atleast_1d(np.asarray(actual, dtype=float)), desired, rtol=RTOL, atol=ATOL
    )


def test_reference_grid_is_complete() -> None:
    l1o = {"bcg/REML/z", "bcg/REML/knha", "bcg/DL/z", "bcg/ML/z", "bcg/EE/z"}
    l1o |= {"raudenbush1985/REML/z", "toy/REML/z"}
    assert {r["id"] for r in REF["leave1out"]} == l1o
    infl = (l1o - {"bcg/EE/z"}) | {
        "bcg_ablat/REML/z",
        "bcg_ablat/REML/knha",
        "raudenbush1985_weeks/DL/z",
    }
    assert {r["id"] for r in REF["influence"]} == infl
    assert {r["id"] for r in REF["blup"]} == infl
    reg = {
        f"{d}/{m}/{p}/{meth}"
        for d in ("bcg", "egger2001", "raudenbush1985")
        for m in ("rma", "lm")
        for p in ("sei", "vi")
        for meth in ("REML", "DL")
        if not (m == "lm" and meth == "DL")
    }
    assert {r["id"] for r in REF["regtest"]} == reg
    assert len(REF["trimfill"]) == 13
    assert {r["estimator"] for r in REF["trimfill"]} == {"L0", "R0", "Q0"}
    assert {r["id"] for r in REF["ranktest"]} == {"bcg", "egger2001", "raudenbush1985"}


# ---------------------------------------------------------------------------------------------
@pytest.mark.validation
@pytest.mark.parametrize("ref", REF["leave1out"], ids=lambda r: r["id"])
def test_leave_one_out_matches_metafor(ref: dict[str, Any]) -> None:
    y, v = _yv(ref["dataset"])
    res = leave_one_out(y, v, method=ref["method"], test=ref["test"])
    for ours, theirs in [
        ("estimate", "estimate"),
        ("se", "se"),
        ("stat", "stat"),
        ("pval", "pval"),
        ("ci_low", "ci_lb"),
        ("ci_high", "ci_ub"),
        ("q", "q"),
        ("q_pvalue", "q_pval"),
        ("i2", "i2"),
        ("h2", "h2"),
    ]:
        _close(getattr(res, ours), ref[theirs])
    if ref["tau2"] is not None:  # metafor reports no tau² column for EE
        _close(res.tau2, ref["tau2"])
    assert res.to_dataframe().shape == (len(y), 11)


def test_published_leave_one_out_and_toy() -> None:
    """anchors §6.1 (metafor docs, BCG REML) and §6.6 (exact toy values)."""
    y, v = _yv("bcg")
    res = leave_one_out(y, v)
    published = [-0.707083788, -0.6540312004, -0.685554418, -0.6284094079, -0.764170095,
                 -0.7108765649, -0.6552475998, -0.7947676109, -0.7411972993, -0.6530329258,
                 -0.7578586252, -0.7598120973, -0.7775361808]  # fmt: skip
    # published from metafor's default control (tau² threshold 1e-5): 1e-5 relative covers it
    np.testing.assert_allclose(res.estimate, published, rtol=1e-5)
    np.testing.assert_allclose(res.tau2[0], 0.3361567453, rtol=1e-4)
    toy = leave_one_out([3.0, 2.0, 5.0, 4.0, 6.0], np.ones(5))
    np.testing.assert_allclose(toy.estimate, [4.25, 4.5, 3.75, 4.0, 3.5], rtol=1e-10)


# ---------------------------------------------------------------------------------------------
@pytest.mark.validation
@pytest.mark.parametrize("ref", REF["influence"], ids=lambda r: r["id"])
def test_influence_matches_metafor(ref: dict[str, Any]) -> None:
    y, v = _yv(ref["dataset"])
    res = influence(y, v, X=_moderator(ref), method=ref["method"], test=ref["test"])
    for name in ("rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "qe_del", "hat", "weight"):
        _close(getattr(res, name), ref[name])
    dfbetas = np.asarray(ref["dfbetas"], dtype=float).T  # stored one array per coefficient
    np.testing.assert_allclose(res.dfbetas, dfbetas, rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(res.is_influential, ref["is_infl"])
    assert "cook_d" in res.to_dataframe().columns


def test_published_influence_values() -> None:
    y, v = _yv("bcg")
    res = influence(y, v)
    # anchors §6.1, published with metafor's default tau² threshold 1e-5 (hence rtol 1e-4)
    np.testing.assert_allclose(
        res.cook_d[:4], [0.001716542367, 0.1132497045, 0.02598032484, 0.2294814294], rtol=1e-4
    )
    np.testing.assert_allclose(res.rstudent[0], -0.2181424743, rtol=1e-4)
    np.testing.assert_allclose(res.hat[0], 0.0505948, rtol=1e-5)
    toy = influence([3.0, 2.0, 5.0, 4.0, 6.0], np.ones(5))  # anchors §6.6, exact
    np.testing.assert_allclose(toy.cook_d, [0.125, 0.5, 0.125, 0.0, 0.5], atol=1e-10)
    # anchors §6.6 lists metafor's rstudent "resid" column, y_i - mu_(-i) = -1.25, -2.5, ...;
    # the studentised value (metafor's "z") divides by sqrt(v_i + tau2_(-i) + se_(-i)^2)
    toy_l1o = leave_one_out([3.0, 2.0, 5.0, 4.0, 6.0], np.ones(5))
    resid = np.array([3.0, 2.0, 5.0, 4.0, 6.0]) - toy_l1o.estimate
    np.testing.assert_allclose(resid, [-1.25, -2.5, 1.25, 0.0, 2.5], atol=1e-10)
    se_resid = np.sqrt(1.0 + toy.tau2_del + toy_l1o.se**2)
    np.testing.assert_allclose(toy.rstudent, resid / se_resid, atol=1e-10)
    np.testing.assert_allclose(toy.weight, 20.0, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
@pytest.mark.validation
@pytest.mark.parametrize("ref", REF["blup"], ids=lambda r: r["id"])
def test_blup_matches_metafor(ref: dict[str, Any]) -> None:
    y, v = _yv(ref["dataset"])
    res = blup(y, v, X=_moderator(ref), method=ref["method"], test=ref["test"])
    _close(res.pred, ref["pred"])
    _close(res.se, ref["se"])
    _close(res.pi_low, ref["pi_lb"])
    _close(res.pi_high, ref["pi_ub"])


def test_published_blups() -> None:
    y, v = _yv("bcg")
    np.testing.assert_allclose(
        blup(y, v).pred[:3], [-0.8002335746, -1.251706027, -0.9869031305], rtol=1e-5
    )
    toy = blup([3.0, 2.0, 5.0, 4.0, 6.0], np.ones(5))
    np.testing.assert_allclose(toy.pred, [3.4, 2.8, 4.6, 4.0, 5.2], rtol=1e-10)


# ---------------------------------------------------------------------------------------------
@pytest.mark.validation
@pytest.mark.parametrize("ref", REF["regtest"], ids=lambda r: r["id"])
def test_egger_matches_metafor(ref: dict[str, Any]) -> None:
    y, v = _yv(ref["dataset"])
    res = egger_test(y, v, model=ref["model"], predictor=ref["predictor"], method=ref["method"])
    _close(res.stat, ref["stat"])
    _close(res.pval, ref["pval"])
    _close(res.slope, ref["slope"])
    if ref["model"] == "lm":
        assert res.df == ref["df"]
    else:
        assert res.df == np.inf
    if ref["limit"] is not None:
        _close([res.limit_estimate, res.limit_ci_low, res.limit_ci_high],
               [ref["limit"], ref["limit_ci_lb"], ref["limit_ci_ub"]])  # fmt: skip


def test_published_egger_values() -> None:
    y, v = _yv("bcg")
    # anchors §6.1 (10 significant digits; the slope test barely depends on tau²'s last digits)
    np.testing.assert_allclose(egger_test(y, v).stat, -0.8033291121, rtol=1e-5)
    np.testing.assert_allclose(egger_test(y, v).pval, 0.4217845357, rtol=1e-5)
    lm = egger_test(y, v, model="lm")
    np.testing.assert_allclose([lm.stat, lm.pval], [-1.401282002, 0.1887069951], rtol=1e-9)
    y2, v2 = _yv("egger2001")  # anchors §6.6
    lm2 = egger_test(y2, v2, model="lm")
    np.testing.assert_allclose([lm2.stat, lm2.pval], [-3.178328816, 0.007264435198], rtol=1e-9)
    assert lm2.df == 13
    np.testing.assert_allclose(egger_test(y2, v2).stat, -2.806240226, rtol=1e-5)
    assert "funnel plot asymmetry" in repr(lm2)


# ---------------------------------------------------------------------------------------------
@pytest.mark.validation
@pytest.mark.parametrize("ref", REF["ranktest"], ids=lambda r: r["id"])
def test_rank_test_matches_metafor(ref: dict[str, Any]) -> None:
    y, v = _yv(ref["dataset"])
    res = rank_test(y, v)
    assert res.exact == ref["exact"]
    _close(res.tau, ref["tau"])
    _close(res.pval, ref["pval"])


def test_published_rank_test() -> None:
    y, v = _yv("bcg")
    res = rank_test(y, v)
    np.testing.assert_allclose([res.tau, res.pval], [0.02564102564, 0.952361908], rtol=1e-9)


# ---------------------------------------------------------------------------------------------
@pytest.mark.validation
@pytest.mark.parametrize("ref", REF["trimfill"], ids=lambda r: r["id"])
def test_trim_and_fill_matches_metafor(ref: dict[str, Any]) -> None:
    y, v = _yv(ref["dataset"])
    res = trim_and_fill(
        y, v, estimator=ref["estimator"], method=ref["method"], side=ref["side_given"]
    )
    assert res.k0 == ref["k0"]
    assert res.side == ref["side"]
    _close(res.se_k0, ref["se_k0"])
    if ref["p_k0"] is not None:
        _close(res.p_k0, ref["p_k0"])
    else:
        assert np.isnan(res.p_k0)
    _close(res.yi, ref["yi_filled"])
    _close(res.vi, ref["vi_filled"])
    np.testing.assert_array_equal(res.filled, ref["fill"])
    _close(res.fit.estimate, ref["estimate"])
    _close(res.fit.se, ref["se"])
    _close(res.fit.ci_low, ref["ci_lb"])
    _close(res.fit.ci_high, ref["ci_ub"])
    _close(res.fit.tau2, ref["tau2"])


def test_published_trim_and_fill() -> None:
    y, v = _yv("bcg")
    fe = trim_and_fill(y, v, method="EE")
    assert (fe.k0, fe.side) == (4, "right")
    # EE involves no iteration: the published 10 digits hold
    np.testing.assert_allclose([fe.fit.estimate, fe.fit.se], [-0.2910259921, 0.0382641366],
                               rtol=1e-9)  # fmt: skip
    re = trim_and_fill(y, v)
    assert re.k0 == 1
    np.testing.assert_allclose(re.fit.estimate, -0.6570828008, rtol=1e-5)
    np.testing.assert_allclose(re.fit.tau2, 0.3312880373, rtol=1e-4)
    assert "k0 = 1" in repr(re)


# ---------------------------------------------------------------------------------------------
def test_batched_deletion_equals_separate_fits() -> None:
    """The one-call (k, k) batches equal k separate fits, and the two engines agree."""
    from fibrosim.meta.frequentist import random_effects

    y, v = _yv("bcg")
    l1o = leave_one_out(y, v)
    infl = influence(y, v)
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        one = random_effects(y[keep], v[keep])
        np.testing.assert_allclose(l1o.estimate[i], one.estimate, rtol=1e-12)
        np.testing.assert_allclose(l1o.tau2[i], one.tau2, rtol=1e-12)
    # influence's deletion fits run on the meta-regression core: both engines converge to the
    # same REML optimum (each to ~1e-12 relative in tau²)
    np.testing.assert_allclose(infl.tau2_del, l1o.tau2, rtol=1e-9)


def test_leave_one_out_with_k2_warns_through_random_effects() -> None:
    # k = 3 leaves k = 2 per fit: Knapp-Hartung with t(1) is flagged as fragile
    with pytest.warns(FragileEstimateWarning, match="k = 2"):
        leave_one_out([0.1, 0.5, 0.3], [0.1, 0.1, 0.2], test="knha")


def test_bad_input_messages() -> None:
    with pytest.raises(ValueError, match="`yi` and `vi` must be 1-D arrays of the same length"):
        leave_one_out([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="needs k >= 2 studies; got k = 1"):
        influence([0.1], [0.1])
    with pytest.raises(ValueError, match=r"`vi` must be > 0; got 0\.0 at index 1"):
        blup([0.1, 0.2, 0.3], [0.1, 0.0, 0.1])
    with pytest.raises(ValueError, match=r"`X` must have one row per study: got shape \(2, 1\)"):
        influence([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], X=[1.0, 2.0])
    with pytest.raises(ValueError, match="`vi` must not be constant for Egger's test"):
        egger_test([0.1, 0.2, 0.3, 0.4], [0.1] * 4)
    with pytest.raises(ValueError, match="`model` must be one of 'rma', 'lm'"):
        egger_test([0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4], model="glm")
    with pytest.raises(ValueError, match="`estimator` must be one of 'L0', 'R0', 'Q0'"):
        trim_and_fill([0.1, 0.2, 0.3], [0.1, 0.2, 0.3], estimator="Q1")
    with pytest.raises(ValueError, match="`side` must be one of 'left', 'right'"):
        trim_and_fill([0.1, 0.2, 0.3], [0.1, 0.2, 0.3], side="up")
    with pytest.raises(ValueError, match="needs k >= 3 studies"):
        rank_test([0.1, 0.2], [0.1, 0.2])


@pytest.mark.parametrize("method", ["EE", "REML", "DL"])
def test_q0_undefined_raises_where_metafor_gets_nan(method: str) -> None:
    # on Egger et al.'s magnesium data metafor's Q0 iteration reaches sqrt(negative) ("NaNs
    # produced", metafor 3.8-1, all three methods): fibrosim names the cause and the way out
    y, v = _yv("egger2001")
    with pytest.raises(RuntimeError, match=r"the Q0 estimator does not exist .* use estimator="):
        trim_and_fill(y, v, estimator="Q0", method=method)
    assert trim_and_fill(y, v, estimator="L0", method=method).k0 >= 0
