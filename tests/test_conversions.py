"""fibrosim.conversions: SE from CI, SD from SE, change-score SD, Wan et al. (2014)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fibrosim.effects as fe
from fibrosim.conversions import _wan_eta, _wan_xi

# Reference numbers below come from R 4.2.2 (qnorm), an implementation of Φ⁻¹ independent of
# scipy's; the R expression is in the comment.  Both are accurate to ~1 ulp, and the formulas
# add a few roundings: 1e-13 relative is a wide margin that still catches any formula slip.
RTOL_R = 1e-13


def test_se_from_ci_matches_r() -> None:
    # (1.2 - -0.4) / (2 * qnorm(0.95))
    assert float(fe.se_from_ci(-0.4, 1.2, level=0.90)) == pytest.approx(
        0.48636546552941551, rel=RTOL_R
    )
    # (log(2.5) - log(0.8)) / (2 * qnorm(0.975))
    assert float(fe.se_from_ci(0.8, 2.5, log=True)) == pytest.approx(
        0.29067735228200042, rel=RTOL_R
    )


def test_se_from_ci_broadcasts() -> None:
    se = fe.se_from_ci([[-1.0], [0.0]], [1.0, 2.0, 3.0])
    assert se.shape == (2, 3)
    np.testing.assert_allclose(se[1, 1], 2.0 / (2 * 1.959963984540054), rtol=1e-15)


def test_sd_from_se() -> None:
    np.testing.assert_allclose(fe.sd_from_se([0.5, 1.0], [16, 25]), [2.0, 5.0], rtol=1e-15)


def test_change_sd() -> None:
    # 3-4-5 triangle at r = 0; r = 1 leaves |sd_b - sd_f|; r = -1 gives sd_b + sd_f
    np.testing.assert_allclose(
        fe.change_sd([3.0, 3.0, 3.0], [4.0, 4.0, 4.0], [0.0, 1.0, -1.0]), [5.0, 1.0, 7.0]
    )
    assert float(fe.change_sd(3.0, 4.0, 0.5)) == pytest.approx(math.sqrt(13.0), rel=1e-15)


def test_smcc_uses_change_sd() -> None:
    es = fe.smcc(12.0, 10.0, 3.0, 4.0, 30, 0.5)
    via_smcr_form = fe.smcr(12.0, 10.0, fe.change_sd(3.0, 4.0, 0.5), 30, 0.5)
    np.testing.assert_allclose(es.yi, via_smcr_form.yi, rtol=1e-15)


# ------------------------------------------------------------------------ Wan et al. 2014


def test_wan_scenarios_match_r() -> None:
    # C1: (20-2) / (2*qnorm((30-0.375)/(30+0.25)))
    c1 = fe.mean_sd_from_median(9.0, 30, minimum=2.0, maximum=20.0)
    assert c1.scenario == "min-median-max"
    assert float(c1.mean) == pytest.approx((2 + 18 + 20) / 4, rel=1e-15)
    assert float(c1.sd) == pytest.approx(4.4111563944190619, rel=RTOL_R)
    # C2: (20-2)/(2*xi(41)) + (12-6)/(2*eta(41))
    c2 = fe.mean_sd_from_median(9.0, 41, minimum=2.0, q1=6.0, q3=12.0, maximum=20.0)
    assert c2.scenario == "five-number"
    assert float(c2.mean) == pytest.approx((2 + 12 + 18 + 24 + 20) / 8, rel=1e-15)
    assert float(c2.sd) == pytest.approx(4.3821833842091777, rel=RTOL_R)
    # C3: (12-6) / (2*qnorm((0.75*41-0.125)/(41+0.25)))
    c3 = fe.mean_sd_from_median(9.0, 41, q1=6.0, q3=12.0)
    assert c3.scenario == "q1-median-q3"
    assert float(c3.mean) == pytest.approx(9.0, rel=1e-15)
    assert float(c3.sd) == pytest.approx(4.6094468929401016, rel=RTOL_R)
    # vectorised over n: the n = 7 values
    v = fe.mean_sd_from_median([9.0, 9.0], [41, 7], q1=6.0, q3=12.0)
    assert float(v.sd[1]) == pytest.approx(5.5112520806099372, rel=RTOL_R)
    w = fe.mean_sd_from_median(9.0, [30, 7], minimum=2.0, maximum=20.0)
    assert float(w.sd[1]) == pytest.approx(6.5958770360461294, rel=RTOL_R)


# Wan et al. (2014), Table 1: exact ξ(n) (expected range of n standard normals), 3 decimals.
WAN_TABLE1 = {5: 2.326, 10: 3.078, 15: 3.472, 20: 3.735, 25: 3.931, 30: 4.086, 40: 4.322, 50: 4.498}


@pytest.mark.parametrize(("n", "exact"), WAN_TABLE1.items())
def test_wan_xi_approximates_table1(n: int, exact: float) -> None:
    # ξ(n) here is Wan's closed-form approximation 2Φ⁻¹((n - 0.375)/(n + 0.25)); against the
    # exact values of Table 1 it is off by 1.4 % at n = 5, falling below 0.5 % from n = 10
    # (measured: -1.42 %, -0.49 %, -0.20 %, -0.04 %, +0.07 %, +0.13 %, +0.22 %, +0.25 %)
    tol = 0.015 if n < 10 else 0.005
    assert float(_wan_xi(np.array(float(n)))) == pytest.approx(exact, rel=tol)


def test_wan_eta_tends_to_the_normal_iqr() -> None:
    # η(n) -> 2Φ⁻¹(3/4) = 1.3489795003921634, the IQR of N(0, 1), as n grows
    assert float(_wan_eta(np.array(1e9))) == pytest.approx(1.3489795003921634, rel=1e-8)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(-1e3, 1e3),
    st.floats(1e-2, 1e2),
    st.integers(2, 5000),
)
def test_wan_is_location_scale_equivariant(shift: float, scale: float, n: int) -> None:
    base = fe.mean_sd_from_median(0.0, n, minimum=-2.0, q1=-0.5, q3=0.8, maximum=2.5)
    moved = fe.mean_sd_from_median(
        shift,
        n,
        minimum=shift - 2.0 * scale,
        q1=shift - 0.5 * scale,
        q3=shift + 0.8 * scale,
        maximum=shift + 2.5 * scale,
    )
    assert float(moved.sd) == pytest.approx(scale * float(base.sd), rel=1e-9)
    assert float(moved.mean) == pytest.approx(
        shift + scale * float(base.mean), abs=1e-9 * (1 + abs(shift))
    )


def test_mean_sd_unpacks() -> None:
    mean, sd = fe.mean_sd_from_median(9.0, 41, q1=6.0, q3=12.0)
    assert float(mean) == 9.0
    assert float(sd) > 0
    assert "q1-median-q3" in repr(fe.mean_sd_from_median(9.0, 41, q1=6.0, q3=12.0))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"minimum": 1.0}, r"give `minimum` and `maximum`, or `q1` and `q3`.*got \['minimum'\]"),
        ({}, r"got none of them"),
        ({"q1": 6.0, "q3": 12.0, "maximum": 20.0}, r"got \['q1', 'q3', 'maximum'\]"),
        (
            {"q1": [6.0, 10.0], "q3": 12.0},
            r"`q1` must be <= `median`; got q1=10, median=9 at index 1\.",
        ),
        (
            {"minimum": 2.0, "maximum": 8.0},
            r"`median` must be <= `maximum`; got median=9, maximum=8",
        ),
        ({"q1": 9.0, "q3": 9.0}, r"`q3` must be > `q1` \(zero spread gives SD 0\)"),
        ({"q1": 6.0, "q3": 12.0, "n": 1}, r"`n` must be >= 2; got 1\."),
        ({"q1": 6.0, "q3": 12.0, "n": 40.5}, r"`n` must be a whole number; got 40\.5"),
        ({"q1": np.nan, "q3": 12.0}, r"`q1` must be finite; got nan"),
    ],
)
def test_mean_sd_from_median_bad_input(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"median": 9.0, "n": 41}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fe.mean_sd_from_median(**args)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: fe.se_from_ci([0.1, 0.5], [0.3, 0.5]),
            r"`low` must be < `high`; got low=0\.5, high=0\.5 at index 1\.",
        ),
        (lambda: fe.se_from_ci(0.0, 2.0, log=True), r"`low` must be > 0; got 0\.0\."),
        (lambda: fe.se_from_ci(0.1, 0.3, level=95), r"`level` must be a number in \(0, 1\)"),
        (
            lambda: fe.se_from_ci([0.1, 0.2], [0.3, 0.4, 0.5]),
            r"arguments do not broadcast together",
        ),
        (lambda: fe.sd_from_se(0.0, 10), r"`se` must be > 0; got 0\.0\."),
        (lambda: fe.sd_from_se(1.0, 0), r"`n` must be >= 1; got 0\."),
        (lambda: fe.change_sd(3.0, 4.0, 1.5), r"`r` must lie in \[-1\.0, 1\.0\]; got 1\.5"),
        (lambda: fe.change_sd(3.0, 3.0, 1.0), r"the SD of change scores is 0 .*got sd_baseline=3"),
        (lambda: fe.change_sd(-3.0, 3.0, 0.0), r"`sd_baseline` must be > 0; got -3\.0"),
    ],
)
def test_conversion_bad_input(call: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
