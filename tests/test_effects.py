"""fibrosim.effects against metafor::escalc, closed forms, and its own contracts."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fibrosim.effects as fe
from fibrosim.effects import EffectSizes, _hedges_j
from fibrosim.warnings import DataWarning

REFERENCE = json.loads(
    (Path(__file__).parent / "data" / "escalc_reference.json").read_text(encoding="utf-8")
)
CASES: list[dict[str, Any]] = REFERENCE["cases"]

# escalc and fibrosim evaluate the same closed-form double-precision formulas; only the order
# of a few operations differs (e.g. arctanh vs log((1+r)/(1-r))/2, SIMD vs scalar log/exp),
# which moves results by a few ulp, amplified at most ~1e4-fold by cancellation in the
# reference rows (r = 1e-6; the UB variance at n = 390, where 1 - (m-2)/(m J²) ~ 1e-3).
# Measured worst case: 5.6e-12 (ZCOR, r = 1e-6).  1e-10 leaves room and still catches any
# formula error, which moves results by >= 1e-6.
RTOL_ESCALC = 1e-10


def _as_array(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _run(case: dict[str, Any]) -> EffectSizes:
    func = getattr(fe, case["function"])
    return func(**case["args"], **case["kwargs"])  # type: ignore[no-any-return]


# ----------------------------------------------------------------- reference completeness


def test_reference_grid_is_complete() -> None:
    # a guard so that the comparison below cannot quietly shrink
    names = {c["name"] for c in CASES}
    required = {
        "normand1999_smd_ls",
        "normand1999_smd_ub",
        "normand1999_smd_ls2",
        "normand1999_md_ls",
        "normand1999_md_ho",
        "normand1999_rom",
        "morris2008_t_smcr_ls",
        "morris2008_c_smcr_ls",
        "morris2008_t_smcc_ls",
        "morris2008_c_smcc_ls",
        "molloy2014_zcor",
        "bcg_or_default",
        "bcg_rr_default",
        "bcg_rd_default",
        "bcg_or_to_all",
        "bcg_rr_to_all",
        "bcg_rd_to_all",
        "bcg_or_drop00",
        "edge_binary_or_default",
        "edge_binary_or_drop00",
        "edge_binary_rr_drop00",
        "edge_binary_rd_drop00",
        "edge_binary_or_if0all",
        "edge_means_smd_ls",
        "edge_means_smd_ub",
        "edge_prepost_smcr",
        "edge_prepost_smcc",
        "edge_zcor",
        "t_to_smd",
        "f_to_smd",
        "p_to_smd",
    }
    assert required <= names
    assert len(CASES) == 60
    measures = {c["function"] for c in CASES}
    assert measures == {
        "md",
        "smd",
        "rom",
        "smcr",
        "smcc",
        "zcor",
        "odds_ratio",
        "risk_ratio",
        "risk_difference",
        "d_from_t",
        "d_from_f",
        "d_from_p",
    }
    for case in CASES:
        assert case["r_call"].startswith("escalc(")
        assert case["metafor_version"] == "3.8.1"
        assert case["r_version"].startswith("R version 4.2")
        assert case["date"]
        assert len(case["yi"]) == len(case["vi"]) == len(next(iter(case["args"].values())))


@pytest.mark.validation
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_escalc(case: dict[str, Any]) -> None:
    es = _run(case)
    yi, vi = _as_array(case["yi"]), _as_array(case["vi"])
    na = np.isnan(yi)
    if case["kwargs"].get("drop00"):
        # escalc marks dropped tables NA; fibrosim removes them and records the mask
        assert es.dropped is not None
        np.testing.assert_array_equal(es.dropped, na)
    else:
        assert not na.any()
        assert es.dropped is None
    np.testing.assert_allclose(es.yi, yi[~na], rtol=RTOL_ESCALC, atol=0)
    np.testing.assert_allclose(es.vi, vi[~na], rtol=RTOL_ESCALC, atol=0)


def test_crins_log_odds_ratios_from_bayesmeta_paper() -> None:
    # Crins et al. (2014), log OR of acute rejection as tabulated in Röver (2020, JSS, the
    # bayesmeta paper, pp. 21-28); study 6 (0/50 vs 3/34) takes the +1/2 correction.
    # Published to 10 significant digits, hence rtol 1e-9.
    cells = fe.table_from_events(
        [14, 16, 3, 9, 4, 0],
        [61, 28, 18, 54, 36, 50],
        [15, 19, 8, 29, 11, 3],
        [20, 28, 12, 54, 36, 34],
    )
    es = fe.odds_ratio(*cells)
    yi = [-2.309702561, -0.4595323294, -2.302585093, -1.757857918, -1.25846099, -2.41789594]
    vi = [0.3593718338, 0.3095760234, 0.775, 0.207816092, 0.4121590909, 2.337262298]
    np.testing.assert_allclose(es.yi, yi, rtol=1e-9)
    np.testing.assert_allclose(es.vi, vi, rtol=1e-9)
    np.testing.assert_array_equal(es.corrected, [False] * 5 + [True])


# ------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("m", [2, 3, 8, 9, 20, 101])
def test_hedges_j_matches_gamma_closed_form(m: int) -> None:
    # J(m) = Γ(m/2) / (sqrt(m/2) Γ((m-1)/2)) with math.gamma directly (no overflow for m <= 101);
    # the log-gamma route agrees to a few ulp
    exact = math.gamma(m / 2) / (math.sqrt(m / 2) * math.gamma((m - 1) / 2))
    assert _hedges_j(np.array(m, dtype=np.float64)) == pytest.approx(exact, rel=1e-13)


def test_hedges_j_is_exact_not_the_approximation() -> None:
    # pitfall in the anchors: exact J(8) = 0.902703, the approximation 1 - 3/(4m - 1) = 0.903226
    assert float(_hedges_j(np.array(8.0))) == pytest.approx(0.9027033336764101, rel=1e-14)
    assert abs(float(_hedges_j(np.array(8.0))) - (1 - 3 / 31)) > 5e-4


def test_smd_from_t_equals_smd_from_means() -> None:
    m1, sd1, n1, m2, sd2, n2 = 12.0, 3.0, 14, 10.5, 2.5, 17
    sp = math.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / (n1 + n2 - 2))
    t = (m1 - m2) / (sp * math.sqrt(1 / n1 + 1 / n2))
    a = fe.smd(m1, sd1, n1, m2, sd2, n2)
    b = fe.d_from_t(t, n1, n2)
    # two routes through sqrt and division: a few ulp apart
    np.testing.assert_allclose(b.yi, a.yi, rtol=1e-13)
    np.testing.assert_allclose(b.vi, a.vi, rtol=1e-13)


def test_smd_variance_formulas() -> None:
    n1, n2 = 6, 9
    es_ls = fe.smd(3.0, 1.0, n1, 2.0, 1.2, n2)
    es_ub = fe.smd(3.0, 1.0, n1, 2.0, 1.2, n2, vtype="UB")
    es_ls2 = fe.smd(3.0, 1.0, n1, 2.0, 1.2, n2, vtype="LS2")
    m = n1 + n2 - 2
    j = math.gamma(m / 2) / (math.sqrt(m / 2) * math.gamma((m - 1) / 2))
    sp = math.sqrt(((n1 - 1) * 1.0 + (n2 - 1) * 1.44) / m)
    d = 1.0 / sp
    g = j * d
    assert float(es_ls.yi) == pytest.approx(g, rel=1e-13)
    assert float(es_ls.vi) == pytest.approx(1 / n1 + 1 / n2 + g**2 / (2 * (n1 + n2)), rel=1e-13)
    assert float(es_ub.vi) == pytest.approx(
        1 / n1 + 1 / n2 + (1 - (m - 2) / (m * j**2)) * g**2, rel=1e-13
    )
    assert float(es_ls2.vi) == pytest.approx(
        j**2 * (1 / n1 + 1 / n2 + d**2 / (2 * (n1 + n2))), rel=1e-13
    )


def test_d_from_f_and_p_route_through_t() -> None:
    from scipy import stats

    n1, n2 = np.array([10, 25, 40]), np.array([12, 25, 38])
    t = np.array([2.2, -0.7, 3.1])
    ref = fe.d_from_t(t, n1, n2)
    via_f = fe.d_from_f(t**2, n1, n2, sign=np.sign(t))
    np.testing.assert_allclose(via_f.yi, ref.yi, rtol=1e-14)
    p = 2 * stats.t.sf(np.abs(t), n1 + n2 - 2)
    via_p = fe.d_from_p(p, n1, n2, sign=np.sign(t))
    # p -> t inverts the t tail numerically (isf of sf): ~1e-14 relative for these p
    np.testing.assert_allclose(via_p.yi, ref.yi, rtol=1e-11)
    np.testing.assert_allclose(via_p.vi, ref.vi, rtol=1e-11)


def test_p_equal_one_gives_zero_effect() -> None:
    es = fe.d_from_p(1.0, 20, 20, sign=1)
    assert float(es.yi) == 0.0
    assert float(es.vi) == pytest.approx(0.1, rel=1e-15)


# -------------------------------------------------------------- 2x2: corrections and drops


def test_only0_corrects_only_tables_with_a_zero() -> None:
    es = fe.odds_ratio([0, 5, 3], [10, 5, 7], [2, 5, 0], [8, 5, 9])
    np.testing.assert_array_equal(es.corrected, [True, False, True])
    # the middle table is untouched: log OR of 5/5 vs 5/5 is 0 and vi is 4/5
    assert es.yi[1] == 0.0
    assert es.vi[1] == pytest.approx(0.8, rel=1e-15)


def test_add_zero_means_no_correction_recorded() -> None:
    es = fe.risk_difference([0, 5], [10, 5], [2, 5], [8, 5], add=0.0)
    np.testing.assert_array_equal(es.corrected, [False, False])
    np.testing.assert_allclose(es.yi, [-0.2, 0.0], atol=1e-16)


def test_double_zero_kept_by_default_gives_zero_only_for_equal_arms() -> None:
    es = fe.odds_ratio([0, 0], [20, 15], [0, 0], [20, 25])
    assert es.yi[0] == 0.0
    # corrected cells 0.5/15.5 vs 0.5/25.5: log OR = log(25.5/15.5)
    assert es.yi[1] == pytest.approx(math.log(25.5 / 15.5), rel=1e-14)
    assert es.dropped is None


def test_drop00_removes_rows_and_records_them() -> None:
    es = fe.risk_ratio([0, 4, 0, 10], [20, 6, 15, 0], [0, 2, 0, 8], [20, 8, 25, 0], drop00=True)
    np.testing.assert_array_equal(es.dropped, [True, False, True, True])
    assert es.yi.shape == (1,)
    df = es.to_dataframe()
    assert list(df.index) == [1]
    assert "3 double-zero table(s) dropped" in repr(es)


def test_drop00_all_rows_dropped_gives_empty_result() -> None:
    es = fe.odds_ratio([0], [10], [0], [12], drop00=True)
    assert es.yi.shape == (0,)
    assert es.to_dataframe().empty


def test_if0all_acts_per_meta_analysis_along_last_axis() -> None:
    a = np.array([[0, 4, 6], [3, 4, 6]])
    b = np.array([[10, 6, 4], [7, 6, 4]])
    c = np.array([[2, 3, 5], [2, 3, 5]])
    d = np.array([[8, 7, 5], [8, 7, 5]])
    es = fe.odds_ratio(a, b, c, d, to="if0all")
    np.testing.assert_array_equal(es.corrected, [[True, True, True], [False, False, False]])
    for row in range(2):
        one = fe.odds_ratio(a[row], b[row], c[row], d[row], to="if0all")
        np.testing.assert_array_equal(es.yi[row], one.yi)


def test_to_none_risk_difference_with_zero_variance_warns() -> None:
    with pytest.warns(DataWarning, match=r"sampling variance is 0 for the table at index 0 "):
        es = fe.risk_difference([0], [10], [0], [12], to="none")
    assert es.vi[0] == 0.0


def test_risk_ratio_to_none_defined_with_zero_non_events() -> None:
    es = fe.risk_ratio([4, 3], [0, 7], [5, 2], [5, 0], to="none")
    assert es.corrected is not None
    assert not es.corrected.any()
    np.testing.assert_allclose(es.yi, [math.log(1 / 0.5), math.log(0.3 / 1.0)], rtol=1e-14)


def test_table_from_events() -> None:
    a, b, c, d = fe.table_from_events([3, 0], [10, 5], [5, 5], [12, 5])
    np.testing.assert_array_equal(a, [3, 0])
    np.testing.assert_array_equal(b, [7, 5])
    np.testing.assert_array_equal(c, [5, 5])
    np.testing.assert_array_equal(d, [7, 0])


# --------------------------------------------------------------- vectorised, shapes, result


def _random_inputs(rng: np.random.Generator, k: int) -> dict[str, dict[str, np.ndarray]]:
    n1 = rng.integers(3, 200, k).astype(float)
    n2 = rng.integers(3, 200, k).astype(float)
    means = {
        "m1": rng.normal(10, 3, k) + 20,
        "sd1": rng.uniform(0.5, 5, k),
        "n1": n1,
        "m2": rng.normal(10, 3, k) + 20,
        "sd2": rng.uniform(0.5, 5, k),
        "n2": n2,
    }
    a = rng.integers(0, 30, k).astype(float)
    c = rng.integers(0, 30, k).astype(float)
    cells = {"a": a, "b": n1 - np.minimum(a, n1 - 1), "c": c, "d": n2 - np.minimum(c, n2 - 1)}
    return {
        "md": means,
        "smd": means,
        "rom": means,
        "smcr": {
            "m1": means["m1"],
            "m2": means["m2"],
            "sd1": means["sd1"],
            "n": n1,
            "r": rng.uniform(-0.9, 0.9, k),
        },
        "smcc": {
            "m1": means["m1"],
            "m2": means["m2"],
            "sd1": means["sd1"],
            "sd2": means["sd2"],
            "n": n1,
            "r": rng.uniform(-0.9, 0.9, k),
        },
        "zcor": {"r": rng.uniform(-0.95, 0.95, k), "n": n1 + 1},
        "odds_ratio": cells,
        "risk_ratio": cells,
        "risk_difference": cells,
        "d_from_t": {"t": rng.normal(0, 2, k), "n1": n1, "n2": n2},
    }


@pytest.mark.parametrize(
    "name",
    [
        "md",
        "smd",
        "rom",
        "smcr",
        "smcc",
        "zcor",
        "odds_ratio",
        "risk_ratio",
        "risk_difference",
        "d_from_t",
    ],
)
def test_vectorised_equals_looped(name: str) -> None:
    args = _random_inputs(np.random.default_rng(20261127), 40)[name]
    func = getattr(fe, name)
    whole = func(**args)
    for i in range(40):
        one = func(**{k: v[i] for k, v in args.items()})
        # numpy may take SIMD paths for arrays and scalar paths for 0-d input (log, exp,
        # gammaln): results agree to a couple of ulp, not always bit for bit
        np.testing.assert_allclose(one.yi, whole.yi[i], rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(one.vi, whole.vi[i], rtol=1e-14)


def test_broadcasting_batch_axes() -> None:
    # three scenarios (rows) x five studies (columns)
    m1 = np.array([[1.0], [2.0], [3.0]])
    es = fe.smd(m1, 2.0, np.arange(10, 15), 0.0, 2.0, 12)
    assert es.yi.shape == es.vi.shape == (3, 5)
    ref = fe.smd(2.0, 2.0, 13, 0.0, 2.0, 12)
    np.testing.assert_allclose(es.yi[1, 3], ref.yi, rtol=1e-14)
    df = es.to_dataframe()
    assert df.index.names == ["axis0", "axis1"]
    assert len(df) == 15


def test_to_dataframe_columns_and_values() -> None:
    es = fe.md([5.0, 6.0], [2.0, 2.5], [10, 20], [3.0, 3.0], [2.0, 2.0], [10, 18])
    df = es.to_dataframe()
    assert list(df.columns) == ["yi", "vi", "se", "ci_low", "ci_high"]
    assert isinstance(df.index, pd.RangeIndex)
    np.testing.assert_allclose(df["se"], np.sqrt(es.vi), rtol=1e-15)
    z = 1.959963984540054
    np.testing.assert_allclose(df["ci_low"], es.yi - z * np.sqrt(es.vi), rtol=1e-14)
    np.testing.assert_allclose(df["ci_high"], es.yi + z * np.sqrt(es.vi), rtol=1e-14)
    assert df.attrs["measure"] == "MD"
    assert df.attrs["vtype"] == "LS"
    low90, _ = es.ci(0.90)
    np.testing.assert_allclose(low90, es.yi - 1.6448536269514722 * es.se, rtol=1e-14)


def test_repr_is_a_small_table() -> None:
    es = fe.odds_ratio([0, 5], [10, 5], [2, 5], [8, 5])
    text = repr(es)
    assert text.startswith("EffectSizes(measure='OR', shape=(2,))")
    assert "continuity correction in 1 table(s)" in text
    assert "ci_low" in text
    many = fe.zcor(np.linspace(-0.5, 0.5, 25), 30)
    assert "... 15 more rows" in repr(many)


def test_result_is_frozen_and_read_only() -> None:
    es = fe.zcor([0.1, 0.2], [30, 40])
    with pytest.raises(dataclasses.FrozenInstanceError):
        es.measure = "COR"  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        es.yi[0] = 1.0


# ---------------------------------------------------------------------------- properties

_means = st.floats(-1e3, 1e3, allow_nan=False)
_sds = st.floats(1e-3, 1e3, allow_nan=False)
_ns = st.integers(2, 10_000)


@settings(max_examples=200, deadline=None)
@given(_means, _sds, _ns, _means, _sds, _ns)
def test_smd_antisymmetric_when_groups_swap(
    m1: float, sd1: float, n1: int, m2: float, sd2: float, n2: int
) -> None:
    ab = fe.smd(m1, sd1, n1, m2, sd2, n2)
    ba = fe.smd(m2, sd2, n2, m1, sd1, n1)
    assert float(ab.yi) == -float(ba.yi)
    assert float(ab.vi) == float(ba.vi)


@settings(max_examples=200, deadline=None)
@given(_means, _sds, _ns, _means, _sds, _ns, st.sampled_from(["LS", "HO"]))
def test_md_variance_positive_and_symmetric(
    m1: float, sd1: float, n1: int, m2: float, sd2: float, n2: int, vtype: str
) -> None:
    ab = fe.md(m1, sd1, n1, m2, sd2, n2, vtype=vtype)
    ba = fe.md(m2, sd2, n2, m1, sd1, n1, vtype=vtype)
    assert float(ab.vi) > 0
    assert float(ab.vi) == pytest.approx(float(ba.vi), rel=1e-15)
    assert float(ab.yi) == -float(ba.yi)


_counts = st.integers(0, 500)


@settings(max_examples=200, deadline=None)
@given(_counts, _counts, _counts, _counts)
def test_log_odds_ratio_antisymmetric_when_groups_swap(a: int, b: int, c: int, d: int) -> None:
    if a + b == 0 or c + d == 0:
        return
    ab = fe.odds_ratio(a, b, c, d)
    ba = fe.odds_ratio(c, d, a, b)
    assert float(ab.yi) == -float(ba.yi)
    assert float(ab.vi) == pytest.approx(float(ba.vi), rel=1e-15)
    assert float(ab.vi) > 0


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sd1": [2.0, 0.0]}, r"`sd1` must be > 0; got 0\.0 at index 1\."),
        ({"sd2": -1.0}, r"`sd2` must be > 0; got -1\.0\."),
        ({"n1": [10, 1]}, r"`n1` must be >= 2; got 1 at index 1\."),
        ({"n2": 12.5}, r"`n2` must be a whole number; got 12\.5\."),
        ({"m1": [1.0, np.nan]}, r"`m1` must be finite; got nan at index 1\."),
        ({"m2": np.inf}, r"`m2` must be finite; got inf\."),
        (
            {"m1": [1.0, 2.0, 3.0], "n1": [10, 12]},
            r"arguments do not broadcast together: `m1` \(3,\)",
        ),
    ],
)
def test_smd_bad_input(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"m1": 1.0, "sd1": 2.0, "n1": 10, "m2": 0.0, "sd2": 2.0, "n2": 10}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fe.smd(**args)


def test_vtype_must_be_known() -> None:
    with pytest.raises(ValueError, match=r"`vtype` must be one of 'LS', 'HO'; got 'UB'\."):
        fe.md(1.0, 1.0, 10, 0.0, 1.0, 10, vtype="UB")
    with pytest.raises(ValueError, match=r"`vtype` must be one of 'LS', 'UB', 'LS2'; got 'AV'"):
        fe.smd(1.0, 1.0, 10, 0.0, 1.0, 10, vtype="AV")


def test_rom_needs_positive_means() -> None:
    with pytest.raises(ValueError, match=r"`m2` must be > 0; got -3\.0 at index 0\."):
        fe.rom(5.0, 1.0, 10, [-3.0], 1.0, 10)


@pytest.mark.parametrize(
    ("func", "kwargs", "match"),
    [
        ("smcr", {"r": [0.5, 1.2]}, r"`r` must lie in \[-1\.0, 1\.0\]; got 1\.2 at index 1\."),
        ("smcr", {"n": 2}, r"`n` must be >= 3; got 2\."),
        ("smcr", {"sd1": 0.0}, r"`sd1` must be > 0; got 0\.0\."),
        ("smcc", {"r": -1.5}, r"`r` must lie in \[-1\.0, 1\.0\]; got -1\.5\."),
        ("smcc", {"n": [30, 7.5]}, r"`n` must be a whole number; got 7\.5 at index 1\."),
    ],
)
def test_prepost_bad_input(func: str, kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"m1": 12.0, "m2": 10.0, "sd1": 3.0, "n": 30, "r": 0.5}
    if func == "smcc":
        args["sd2"] = 4.0
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        getattr(fe, func)(**args)


def test_smcc_zero_change_sd() -> None:
    with pytest.raises(
        ValueError,
        match=r"SD of change scores is 0 .*got sd1=3, sd2=3, r=1 at index 1\.",
    ):
        fe.smcc(12.0, 10.0, 3.0, 3.0, 30, [0.5, 1.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"r": [0.2, 1.0]}, r"`r` must lie in \(-1\.0, 1\.0\); got 1\.0 at index 1\."),
        ({"r": -1.0}, r"`r` must lie in \(-1\.0, 1\.0\); got -1\.0\."),
        ({"n": 3}, r"`n` must be >= 4; got 3\."),
        ({"r": np.nan}, r"`r` must be finite; got nan\."),
    ],
)
def test_zcor_bad_input(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"r": 0.3, "n": 20}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fe.zcor(**args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"a": [3, -1]}, r"`a` must be >= 0; got -1 at index 1\."),
        ({"d": 2.5}, r"`d` must be a whole number; got 2\.5\."),
        (
            {"a": 0, "b": 0},
            r"the treated arm \(a \+ b\) has no participants at index 0; each arm needs >= 1",
        ),
        ({"c": [0, 1], "d": [0, 1]}, r"control arm \(c \+ d\) has no participants at index 0"),
        ({"b": [1, 2, 3], "c": [1, 2]}, r"arguments do not broadcast together"),
        ({"to": "some"}, r"`to` must be one of 'only0', 'all', 'if0all', 'none'; got 'some'\."),
        ({"add": -0.5}, r"`add` must be a finite number >= 0; got -0\.5\."),
        ({"add": np.nan}, r"`add` must be a finite number >= 0; got nan\."),
    ],
)
def test_binary_bad_input(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"a": 3, "b": 7, "c": 2, "d": 8}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fe.odds_ratio(**args)


def test_drop00_must_be_bool() -> None:
    with pytest.raises(TypeError, match=r"`drop00` must be True or False; got 1\."):
        fe.odds_ratio(3, 7, 2, 8, drop00=1)  # type: ignore[arg-type]


def test_drop00_needs_1d() -> None:
    with pytest.raises(ValueError, match=r"`drop00=True` removes tables and needs 1-D inputs"):
        fe.risk_ratio([[3, 0]], [[7, 5]], [[2, 0]], [[8, 5]], drop00=True)


def test_uncorrected_zero_cell_raises_with_row_and_cells() -> None:
    with pytest.raises(
        ValueError,
        match=r"log odds ratio is undefined for the table at index 1 \(a=0, b=10, c=2, d=8\) "
        r"with add=0\.5, to='none'",
    ):
        fe.odds_ratio([3, 0], [7, 10], [2, 2], [8, 8], to="none")
    with pytest.raises(ValueError, match=r"log risk ratio is undefined .* index 0 \(a=3, b=7, c=0"):
        fe.risk_ratio(3, 7, 0, 10, add=0.0)


def test_uncorrected_zero_cell_in_a_batch_names_the_nd_index() -> None:
    a = np.array([[3, 4], [0, 5]])
    with pytest.raises(ValueError, match=r"undefined for the table at index \(1, 0\) \(a=0, "):
        fe.odds_ratio(a, 7, 2, 8, to="none")


def test_add_must_not_be_bool() -> None:
    with pytest.raises(ValueError, match=r"`add` must be a finite number >= 0; got True\."):
        fe.odds_ratio(3, 7, 2, 8, add=True)


def test_uncorrected_row_index_counts_dropped_rows() -> None:
    # row numbers refer to the input, also after drop00 removed tables
    with pytest.raises(ValueError, match=r"undefined for the table at index 2 "):
        fe.odds_ratio([0, 3, 0], [10, 7, 10], [0, 2, 2], [12, 8, 8], to="none", drop00=True)


@pytest.mark.parametrize(
    ("events1", "n1", "match"),
    [
        ([3, 12], [10, 10], r"`events1` must be <= `n1` .*got events1=12, n1=10 at index 1\."),
        (-1, 10, r"`events1` must be >= 0; got -1\."),
        (3, 0, r"`n1` must be >= 1; got 0\."),
        (3.5, 10, r"`events1` must be a whole number; got 3\.5\."),
    ],
)
def test_table_from_events_bad_input(events1: Any, n1: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fe.table_from_events(events1, n1, 2, 10)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: fe.d_from_p([0.05, 0.0], 20, 20, sign=1),
            r"`p` must lie in \(0\.0, 1\.0\]; got 0\.0 at index 1\.",
        ),
        (
            lambda: fe.d_from_p(0.05, 20, 20, sign=[1, 0]),
            r"`sign` must be \+1 or -1 .*got 0 at index 1\.",
        ),
        (lambda: fe.d_from_f(-2.0, 20, 20, sign=1), r"`f` must be >= 0; got -2\.0\."),
        (lambda: fe.d_from_t(2.0, 1, 20), r"`n1` must be >= 2; got 1\."),
        (lambda: fe.d_from_t(np.inf, 10, 20), r"`t` must be finite; got inf\."),
    ],
)
def test_test_statistic_bad_input(call: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_level_is_checked() -> None:
    es = fe.zcor(0.3, 20)
    with pytest.raises(
        ValueError, match=r"`level` must be a number in \(0, 1\), e\.g\. 0\.95; got 95"
    ):
        es.to_dataframe(level=95)
