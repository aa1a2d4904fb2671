"""fibrosim.trials.sequential: boundaries against rpact / Jennison & Turnbull, MVN and MC."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import optimize, stats

from fibrosim.trials import _gs_integration as integ
from fibrosim.trials import interim
from fibrosim.trials import sequential as sq

# Grid fine enough that its own error is < 1e-9 on the z scale (Simpson error ~ h^4).
FINE_GRID = (2001, 40.0)


def _on_grid(grid: tuple[int, float], func, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Run ``func`` with every recursion on ``grid`` (test-only monkeypatching of defaults)."""
    defaults = integ._crossing.__kwdefaults__
    assert defaults is not None
    saved_default, saved_fine = defaults["grid"], integ._FINE
    defaults["grid"], integ._FINE = grid, grid
    try:
        return func(*args, **kwargs)
    finally:
        defaults["grid"], integ._FINE = saved_default, saved_fine


def _corr(timing: np.ndarray) -> Any:
    return np.sqrt(np.minimum.outer(timing, timing) / np.maximum.outer(timing, timing))


# ------------------------------------------------------------------------------------------
# published anchors
# ------------------------------------------------------------------------------------------
def test_obf_k3_rpact() -> None:
    # rpact unit test, getDesignInverseNormal() default: OBF, K = 3, one-sided 0.025.
    # Tolerance: the reference is rounded to 7 decimals (5e-8) and our default grid is within
    # 1e-7 of a 2001-point grid (test_default_grid_error_below_1e6); a finer grid hits all
    # 7 decimals.
    ref = np.array([3.4710914, 2.4544323, 2.0040356])
    np.testing.assert_allclose(sq.gs_bounds(3).upper, ref, rtol=0, atol=1.5e-7)
    np.testing.assert_allclose(_on_grid(FINE_GRID, sq.gs_bounds, 3).upper, ref, atol=5.1e-8)


RPACT = json.loads((Path(__file__).parent / "data" / "rpact_gs_reference.json").read_text())


def _rpact_design(case: dict[str, Any]) -> sq.GSDesign:
    """gs_bounds with the arguments of an rpact reference case (user spending as fractions)."""
    args = dict(case["fibrosim"])
    timing = np.asarray(args.get("timing") or np.arange(1, args["k"] + 1) / args["k"])
    if "user_alpha" in args:
        frac = np.asarray(args.pop("user_alpha")) / args["alpha"]
        args["spending"] = lambda t: np.interp(t, timing, frac)
    if "user_beta" in args:
        frac_b = np.asarray(args.pop("user_beta")) / args["beta"]
        args["futility"] = lambda t: np.interp(t, timing, frac_b)
    if isinstance(args.get("futility"), list):
        args["futility"] = tuple(args["futility"])
    return sq.gs_bounds(**args)


def test_rpact_reference_grid_is_complete() -> None:
    # guard: the reference set keeps its one- and two-sided, binding and non-binding cases
    cases = RPACT["cases"]
    assert len(cases) == 12
    assert sum(c["fibrosim"].get("sided", 1) == 2 for c in cases) == 2
    assert sum(bool(c["fibrosim"].get("binding")) for c in cases) == 3


@pytest.mark.validation
@pytest.mark.parametrize("case", RPACT["cases"], ids=[c["name"] for c in RPACT["cases"]])
def test_matches_rpact_unit_tests(case: dict[str, Any]) -> None:
    # rpact prints 8 significant digits and checks itself at 1e-7; fibrosim's default grid is
    # within 2.4e-7 of a 2001-point grid on the z scale (test_default_grid_error_below_1e6), so
    # bounds get 3e-7 and probabilities (smoother in the bounds) 1.5e-7.  The textbook case is
    # printed to 6 decimals (5e-7 more).
    design = _rpact_design(case)
    z_tol = 3e-7 if "source" not in case else 8e-7
    np.testing.assert_allclose(design.upper, case["criticalValues"], rtol=0, atol=z_tol)
    if "alphaSpent" in case:
        np.testing.assert_allclose(design.alpha_spent, case["alphaSpent"], rtol=0, atol=1.5e-7)
        np.testing.assert_allclose(design.nominal_p, case["stageLevels"], rtol=0, atol=1.5e-7)
    if "futilityBounds" in case:
        np.testing.assert_allclose(design.lower[:-1], case["futilityBounds"], rtol=0, atol=3e-7)
        np.testing.assert_allclose(design.beta_spent, case["betaSpent"], rtol=0, atol=1.5e-7)
        assert design.lower[-1] == design.upper[-1]
    if "power" in case:
        # rpact's power counts futility stops as taken, binding or not
        up, _ = sq.gs_crossing(design.upper, design.lower, design.timing, design.drift)
        np.testing.assert_allclose(np.cumsum(up), case["power"], rtol=0, atol=1.5e-7)
    if "inflationFactor" in case:
        assert design.inflation is not None
        assert abs(design.inflation - case["inflationFactor"]) < 5e-7
    if case["fibrosim"].get("sided", 1) == 2:
        np.testing.assert_array_equal(design.lower, -design.upper)


RPACT_DESIGNS = json.loads(
    (Path(__file__).parent / "data" / "rpact_design_reference.json").read_text()
)


def test_rpact_design_grid_is_complete() -> None:
    # guard: 7 boundary families x K = 2, 3, 5 x one- and two-sided, 8 unequal-look designs,
    # 6 beta-spending futility designs (3 functions, binding and not)
    designs = RPACT_DESIGNS["designs"]
    assert len(designs) == 56 and RPACT_DESIGNS["rpact_version"] == "3.3.4"
    assert sum(d["fibrosim"]["sided"] == 2 for d in designs) == 25
    assert sum("futility" in d["fibrosim"] for d in designs) == 6


@pytest.mark.validation
@pytest.mark.parametrize(
    "ref", RPACT_DESIGNS["designs"], ids=[d["call"][26:-1] for d in RPACT_DESIGNS["designs"]]
)
def test_matches_rpact_designs(ref: dict[str, Any]) -> None:
    # Tolerances: fibrosim's default grid is within 2.4e-7 of a 2001-point grid on the z scale
    # and rpact's 91-point Newton-Cotes rule is accurate to ~1e-7 (its unit tests' tolerance),
    # so bounds get 3e-7; probabilities, inflation and expected sizes (smooth in the bounds)
    # 5e-7; the drift² ("shift", ~10) 5e-7 relative.
    args = dict(ref["fibrosim"])
    if "futility" in args:
        args["futility"] = tuple(args["futility"])
    design = sq.gs_bounds(**args)
    np.testing.assert_allclose(design.upper, ref["criticalValues"], rtol=0, atol=3e-7)
    np.testing.assert_allclose(design.alpha_spent, ref["alphaSpent"], rtol=0, atol=5e-7)
    np.testing.assert_allclose(design.nominal_p, ref["stageLevels"], rtol=0, atol=5e-7)
    assert design.inflation is not None and design.drift is not None
    assert abs(design.inflation - ref["inflationFactor"]) < 5e-7
    assert abs(design.drift**2 - ref["shift"]) < 5e-7 * ref["shift"]
    up, _ = sq.gs_crossing(design.upper, design.lower, design.timing, design.drift)
    np.testing.assert_allclose(np.cumsum(up), ref["power"], rtol=0, atol=5e-7)
    assert abs(design.asn_h1 - ref["averageSampleNumber1"]) < 5e-7
    assert abs(design.asn_h0 - ref["averageSampleNumber0"]) < 5e-7
    if "futilityBounds" in ref:
        np.testing.assert_allclose(design.lower[:-1], ref["futilityBounds"], rtol=0, atol=3e-7)
        np.testing.assert_allclose(design.beta_spent, ref["betaSpent"], rtol=0, atol=5e-7)


def test_obrien_fleming_beta_spending_depends_on_beta() -> None:
    # rpact's bsOF spends 2 (1 - Phi(z_{1 - beta/2} / sqrt(t))) of beta: a small fraction
    # early (it once spent all of beta at the first look)
    design = sq.gs_bounds(3, 0.025, "ld-obf", beta=0.2, futility="ld-obf")
    assert design.beta_spent is not None
    z = stats.norm.isf(0.1)
    expected = 2.0 * stats.norm.sf(z / np.sqrt(design.timing))
    np.testing.assert_allclose(design.beta_spent, expected, rtol=1e-6)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_two_sided_lan_demets_obf_spends_one_sided_function_at_half_alpha(k: int) -> None:
    # rpact's two-sided asOF spends 4 (1 - Phi(z_{1 - alpha/4} / sqrt(t))): per side the
    # one-sided function at alpha / 2.  The symmetric bounds then differ from the one-sided
    # alpha / 2 bounds only through paths that reach the lower bound first (probability
    # ~1e-6 here, worst measured difference 4.1e-8 on the z scale), hence 1e-6.
    two = sq.gs_bounds(k, 0.05, "ld-obf", sided=2)
    one = sq.gs_bounds(k, 0.025, "ld-obf")
    np.testing.assert_allclose(two.upper, one.upper, atol=1e-6)
    # the two-sided spending: both tails, equal by symmetry
    up, lo = sq.gs_crossing(two.upper, two.lower, two.timing)
    np.testing.assert_allclose(np.cumsum(up + lo), two.alpha_spent, atol=1e-12)
    np.testing.assert_allclose(up, lo, atol=1e-9)
    assert abs(two.alpha_spent[-1] - 0.05) < 1e-9


def test_two_sided_design_against_multivariate_normal() -> None:
    # P(|Z_k| < c_k for all k) by Genz's integration of the (Z_1..Z_K) normal law must be
    # 1 - alpha (Genz at abseps 1e-9; the bounds are within 2.4e-7 of exact, ~1e-7 in probability)
    timing = np.array([0.25, 0.6, 1.0])
    for kind, kw in (("pocock", {}), ("hsd", {"gamma": -2.0}), ("obf", {})):
        d = sq.gs_bounds(3, 0.05, kind, timing=timing, sided=2, **kw)
        inside = stats.multivariate_normal.cdf(
            d.upper,
            mean=np.zeros(3),
            cov=_corr(timing),
            lower_limit=-d.upper,
            abseps=1e-9,
            releps=0,
            maxpts=10**6,
            rng=3,
        )
        assert abs(inside - 0.95) < 1e-6


def test_two_sided_powered_design_and_bad_input() -> None:
    d = sq.gs_bounds(4, 0.05, "ld-obf", sided=2, beta=0.2)
    assert d.sided == 2 and "two-sided" in repr(d)
    assert d.drift is not None and d.inflation is not None
    # power 0.8 of rejecting in the direction of the effect (rpact's twoSidedPower = FALSE)
    up, lo = sq.gs_crossing(d.upper, d.lower, d.timing, d.drift)
    assert abs(up.sum() - 0.8) < 1e-8 and 0.0 < lo.sum() < 1e-5  # wrong-direction rejections
    # inflation against the fixed two-sided design (z_{0.975} + z_{0.8})²
    fixed = (stats.norm.isf(0.025) + stats.norm.isf(0.2)) ** 2
    assert abs(d.inflation - d.drift**2 / fixed) < 1e-12
    with pytest.raises(ValueError, match="`futility` bounds are one-sided"):
        sq.gs_bounds(3, 0.05, sided=2, beta=0.2, futility="hsd")
    with pytest.raises(ValueError, match="`sided` must be one of 1, 2; got 3"):
        sq.gs_bounds(3, sided=3)
    with pytest.raises(ValueError, match=r"`alpha` must lie in \(0.0, 1.0\); got 1.2"):
        sq.gs_bounds(3, 1.2, sided=2)


@pytest.mark.parametrize(
    ("kind", "constants"),
    [("pocock", [2.178, 2.289, 2.361, 2.413]), ("obf", [1.977, 2.004, 2.024, 2.040])],
)
def test_jennison_turnbull_constants(kind: str, constants: list[float]) -> None:
    # Jennison & Turnbull (2000), ch. 2 tables of C_P(K) and C_B(K), alpha = 0.05 two-sided,
    # equal looks; the one-sided 0.025 upper boundary has the same constants.  Printed to 3
    # decimals, hence the 5e-4 tolerance.
    for k, c in zip(range(2, 6), constants, strict=True):
        assert abs(sq.gs_bounds(k, 0.025, kind).upper[-1] - c) <= 5e-4


@pytest.mark.parametrize(
    ("kind", "beta", "inflation"),
    [
        ("pocock", 0.1, [1.100, 1.151, 1.183, 1.207]),
        ("pocock", 0.2, [1.110, 1.166, 1.202, 1.229]),
        ("obf", 0.1, [1.007, 1.016, 1.022, 1.026]),
        ("obf", 0.2, [1.008, 1.017, 1.024, 1.028]),
    ],
)
def test_jennison_turnbull_inflation_factors(
    kind: str, beta: float, inflation: list[float]
) -> None:
    # Jennison & Turnbull (2000), ch. 2 tables of R_P and R_B (K = 2..5, alpha = 0.05 two-sided,
    # equal looks); printed to 3 decimals.
    for k, r in zip(range(2, 6), inflation, strict=True):
        design = sq.gs_bounds(k, 0.025, kind, beta=beta)
        assert design.inflation is not None
        assert abs(design.inflation - r) <= 5e-4


# ------------------------------------------------------------------------------------------
# accuracy of the integration
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("k", "kind", "timing", "kwargs"),
    [
        (10, "obf", None, {}),
        (10, "pocock", None, {}),
        (6, "ld-obf", [0.05, 0.1, 0.12, 0.5, 0.9, 1.0], {}),
        (4, "hsd", [0.1, 0.15, 0.5, 1.0], {"gamma": -2.0}),
        (5, "wt", None, {"delta": 0.25}),
    ],
)
def test_default_grid_error_below_1e6(k, kind, timing, kwargs) -> None:  # type: ignore[no-untyped-def]
    # the brief's accuracy goal: < 1e-6 on the z scale against a much finer grid
    coarse = sq.gs_bounds(k, kind=kind, timing=timing, **kwargs).upper
    fine = _on_grid(FINE_GRID, sq.gs_bounds, k, kind=kind, timing=timing, **kwargs).upper
    assert np.max(np.abs(coarse - fine)) < 1e-6


_TIMED_KINDS = [
    ("obf", {}),
    ("pocock", {}),
    ("ld-obf", {}),
    ("ld-pocock", {}),
    ("hsd", {"gamma": -4.0}),
]


@pytest.mark.parametrize(("kind", "kwargs"), _TIMED_KINDS)
def test_default_grid_matches_2001_point_reference(kind, kwargs) -> None:  # type: ignore[no-untyped-def]
    # Every boundary of the speed goal (K = 2..10, equal looks) on the default grid against
    # the 2001-point, 40-per-SD grid: the accuracy goal is < 1e-6 on the z scale (worst
    # measured 1.6e-7, ld-pocock K = 3).
    for k in range(2, 11):
        fast = sq.gs_bounds(k, kind=kind, **kwargs).upper
        ref = _on_grid(FINE_GRID, sq.gs_bounds, k, kind=kind, **kwargs).upper
        assert np.max(np.abs(fast - ref)) < 1e-6, (kind, k)


@pytest.mark.parametrize(("kind", "kwargs"), _TIMED_KINDS)
def test_lattice_matches_general_grid(kind, kwargs) -> None:  # type: ignore[no-untyped-def]
    # One trial runs on the score-scale lattice (Toeplitz kernel, convolution), a batch of
    # drifts on per-row z-scale grids (dense kernel): two independent discretisations.  On the
    # 2001-point grid both are converged, so they must agree to integration round-off
    # (measured 1e-11; 1e-9 leaves room for summation order).
    design = sq.gs_bounds(6, kind=kind, timing=[0.1, 0.25, 0.3, 0.6, 0.8, 1.0], **kwargs)
    lower = np.full(6, -np.inf)
    for eta in (0.0, 3.0):
        lattice = integ._crossing(
            design.upper, lower, design.timing, np.array([eta]), grid=FINE_GRID
        )
        general = integ._crossing(
            design.upper, lower, design.timing, np.array([eta, eta]), grid=FINE_GRID
        )
        np.testing.assert_allclose(lattice[0][0], general[0][0], rtol=0, atol=1e-9)
        np.testing.assert_allclose(general[0][0], general[0][1], rtol=0, atol=0)


def test_shape_slope_is_the_derivative() -> None:
    # the derivative carried through the recursion (Newton on the constant of OBF / Pocock /
    # Wang-Tsiatis) against a central difference; step 1e-5 gives truncation ~1e-11 and
    # round-off ~1e-17 / 1e-5 = 1e-12, hence 1e-9 relative
    timing = np.array([0.2, 0.35, 0.7, 1.0])
    for exponent in (-0.5, -0.25, 0.0):
        shape = timing**exponent
        up, slope = integ._shape_crossing(2.1, shape, timing, integ._FINE)
        plus, _ = integ._shape_crossing(2.1 + 1e-5, shape, timing, integ._FINE)
        minus, _ = integ._shape_crossing(2.1 - 1e-5, shape, timing, integ._FINE)
        np.testing.assert_allclose(slope, (plus - minus) / 2e-5, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(
            up,
            integ._lattice_crossing(2.1 * shape, -np.inf * shape, timing, 0.0, integ._FINE)[0],
            rtol=1e-14,
        )


def test_stage_root_against_brentq_and_its_ends() -> None:
    rng = np.random.default_rng(11)
    mass = rng.uniform(0.0, 1.0, 301) / 400.0
    shift = np.linspace(-6.0, 2.5, 301)
    total = mass.sum()

    def prob(b: float) -> float:
        return float(np.dot(mass, stats.norm.cdf(shift - 1.7 * b)))

    for target in (1e-12, 1e-4, 0.3 * total, 0.999 * total):
        root = integ._solve_tail(mass, shift, 1.7, target)
        ref = optimize.brentq(lambda b, t=target: prob(b) - t, -40, 40, xtol=1e-14, rtol=1e-15)
        assert abs(root - ref) < 1e-11  # both solve to ~1e-13; the slope is >= 1e-12 / 1e-1
    assert integ._solve_tail(mass, shift, 1.7, 0.0) == np.inf  # nothing to spend
    assert integ._solve_tail(mass, shift, 1.7, total) == -np.inf  # all that runs crosses


def test_crossing_against_multivariate_normal() -> None:
    # independent integrator: Genz's QMC in scipy.stats.multivariate_normal for K <= 3
    mvn_tol = 5e-7  # 5x the requested absolute error of the QMC integration
    for kind, timing in [("obf", None), ("ld-pocock", [0.3, 0.7, 1.0]), ("hsd", [0.5, 1.0])]:
        design = sq.gs_bounds(len(timing) if timing else 3, kind=kind, timing=timing)
        cov = _corr(design.timing)
        for drift in (0.0, 2.5):
            mean = drift * np.sqrt(design.timing)
            p_none = stats.multivariate_normal.cdf(
                design.upper, mean=mean, cov=cov, abseps=1e-7, releps=0, maxpts=2_000_000, rng=7
            )
            up, _ = sq.gs_crossing(design.upper, timing=design.timing, drift=drift)
            assert abs(up.sum() - (1 - p_none)) < mvn_tol
        # cumulative alpha spent at the first two analyses
        two = stats.multivariate_normal.cdf(
            design.upper[:2], cov=cov[:2, :2], abseps=1e-7, releps=0, maxpts=2_000_000, rng=7
        )
        assert abs(design.alpha_spent[1] - (1 - two)) < mvn_tol


def test_futility_crossing_against_multivariate_normal() -> None:
    design = sq.gs_bounds(2, kind="hsd", beta=0.1, futility="hsd")
    assert design.drift is not None
    u, lo, t = design.upper, design.lower, design.timing
    cov = _corr(t)
    for drift in (0.0, design.drift):
        mean = drift * np.sqrt(t)
        up_ref = stats.norm.sf(u[0] - mean[0]) + stats.multivariate_normal.cdf(
            [u[0], np.inf],
            mean=mean,
            cov=cov,
            lower_limit=[lo[0], u[1]],
            abseps=1e-8,
            releps=0,
            maxpts=2_000_000,
            rng=3,
        )
        up, low = sq.gs_crossing(u, lo, t, drift)
        assert abs(up.sum() - up_ref) < 5e-7
        assert abs(low[0] - stats.norm.cdf(lo[0] - mean[0])) < 1e-12


def test_crossing_against_monte_carlo() -> None:
    # simulated Brownian motion at the looks; tolerance 4 Monte Carlo SEs per stage
    design = sq.gs_bounds(
        4, kind="hsd", gamma=-2, beta=0.15, futility=("hsd", -1.0), timing=[0.2, 0.45, 0.7, 1.0]
    )
    rng = np.random.default_rng(20261127)
    reps = 400_000
    t = design.timing
    incr = rng.standard_normal((reps, t.size)) * np.sqrt(np.diff(np.r_[0, t]))
    incr += design.drift * np.diff(np.r_[0, t])
    z = np.cumsum(incr, axis=1) / np.sqrt(t)
    alive = np.ones(reps, dtype=bool)
    mc_up, mc_lo = np.zeros(t.size), np.zeros(t.size)
    for j in range(t.size):
        up_j = alive & (z[:, j] >= design.upper[j])
        lo_j = alive & (z[:, j] < design.lower[j]) & ~up_j
        mc_up[j], mc_lo[j] = up_j.mean(), lo_j.mean()
        alive &= ~(up_j | lo_j)
    assert design.drift is not None
    up, lo = sq.gs_crossing(design.upper, design.lower, t, design.drift)
    for mc, exact in ((mc_up, up), (mc_lo, lo)):
        mcse = np.sqrt(exact * (1 - exact) / reps)
        assert np.all(np.abs(mc - exact) < 4 * mcse + 1e-12)
    assert abs(up.sum() - 0.85) < 1e-8  # powered for 1 - beta


# ------------------------------------------------------------------------------------------
# families and spending
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "kwargs", "fraction"),
    [
        ("ld-obf", {}, lambda t: 2 * stats.norm.sf(stats.norm.isf(0.0125) / np.sqrt(t)) / 0.025),
        ("ld-pocock", {}, lambda t: np.log(1 + (math.e - 1) * t)),
        ("hsd", {"gamma": -4.0}, lambda t: (1 - np.exp(4 * t)) / (1 - np.exp(4))),
        ("hsd", {"gamma": 0.0}, lambda t: t),
        ("power", {"rho": 3.0}, lambda t: t**3),
    ],
)
def test_spending_is_honoured(kind, kwargs, fraction) -> None:  # type: ignore[no-untyped-def]
    timing = np.array([0.25, 0.4, 0.75, 1.0])
    design = sq.gs_bounds(4, 0.025, kind, timing=timing, **kwargs)
    np.testing.assert_allclose(design.alpha_spent, 0.025 * fraction(timing), rtol=1e-9)
    user = sq.gs_bounds(4, 0.025, "user", timing=timing, spending=fraction)
    np.testing.assert_allclose(user.upper, design.upper, rtol=1e-10)


def test_wang_tsiatis_ends() -> None:
    for delta, kind in ((0.0, "obf"), (0.5, "pocock")):
        np.testing.assert_allclose(
            sq.gs_bounds(4, kind="wt", delta=delta).upper,
            sq.gs_bounds(4, kind=kind).upper,
            rtol=1e-9,
        )


def test_single_look_is_fixed_design() -> None:
    for kind in ("obf", "pocock", "ld-obf", "hsd"):
        design = sq.gs_bounds(1, 0.025, kind, beta=0.1)
        assert design.inflation is not None
        assert abs(design.upper[0] - stats.norm.isf(0.025)) < 1e-9
        assert abs(design.inflation - 1.0) < 1e-8


def test_binding_futility_lowers_efficacy_bounds() -> None:
    nb = sq.gs_bounds(3, kind="hsd", beta=0.1, futility="hsd")
    b = sq.gs_bounds(3, kind="hsd", beta=0.1, futility="hsd", binding=True)
    assert np.all(b.upper[1:] < nb.upper[1:]) and b.upper[0] == nb.upper[0]
    assert abs(b.alpha_spent[-1] - 0.025) < 1e-9  # alpha exact when the futility stops bind
    assert nb.alpha_spent[-1] == pytest.approx(0.025, abs=1e-9)
    assert b.inflation is not None and nb.inflation is not None and nb.beta_spent is not None
    assert b.inflation < nb.inflation
    assert b.lower[-1] == b.upper[-1] and nb.lower[-1] == nb.upper[-1]
    np.testing.assert_allclose(nb.beta_spent[-1], 0.1, rtol=1e-8)


def test_expected_sample_size_against_crossing() -> None:
    design = sq.gs_bounds(3, kind="obf", beta=0.1)
    assert design.drift is not None and design.inflation is not None
    assert design.asn_h1 is not None
    up1, _ = sq.gs_crossing(design.upper, timing=design.timing, drift=design.drift)
    stop = np.r_[up1[:-1], 1 - up1[:-1].sum()]
    assert abs(design.asn_h1 - design.inflation * np.sum(stop * design.timing)) < 1e-12
    assert design.asn_h1 < 1 < design.inflation  # OBF saves on average under H1


# ------------------------------------------------------------------------------------------
# interim quantities
# ------------------------------------------------------------------------------------------
def test_conditional_and_predictive_power_closed_form() -> None:
    # K = 2 with nothing spent at the interim: only the final test remains
    design = sq.gs_bounds(
        2, kind="user", spending=lambda t: (t >= 1).astype(float), timing=[0.4, 1.0], beta=0.2
    )
    assert design.upper[0] == np.inf and design.drift is not None
    t, u2, z = 0.4, design.upper[1], np.array([-0.5, 0.8, 2.0])
    eta = design.drift
    cp = stats.norm.cdf((np.sqrt(t) * z + eta * (1 - t) - u2) / np.sqrt(1 - t))
    np.testing.assert_allclose(interim.conditional_power(design, z, 1), cp, rtol=1e-10)
    trend = stats.norm.cdf((np.sqrt(t) * z + z / np.sqrt(t) * (1 - t) - u2) / np.sqrt(1 - t))
    np.testing.assert_allclose(interim.conditional_power(design, z, 1, "trend"), trend, rtol=1e-10)
    pp = stats.norm.cdf((z / np.sqrt(t) - u2) / np.sqrt((1 - t) / t))
    np.testing.assert_allclose(interim.predictive_power(design, z, 1), pp, rtol=1e-9)


def test_conditional_power_matches_mc_with_later_looks() -> None:
    design = sq.gs_bounds(3, kind="pocock")
    rng = np.random.default_rng(5)
    reps, z1, drift = 200_000, 1.2, 2.0
    t = design.timing
    b1 = (
        np.sqrt(t[0]) * z1
        + drift * (t[1] - t[0])
        + np.sqrt(t[1] - t[0]) * rng.standard_normal(reps)
    )
    b2 = b1 + drift * (t[2] - t[1]) + np.sqrt(t[2] - t[1]) * rng.standard_normal(reps)
    win = (b1 / np.sqrt(t[1]) >= design.upper[1]) | (b2 >= design.upper[2])
    cp = interim.conditional_power(design, z1, 1, drift)
    assert abs(win.mean() - cp) < 4 * np.sqrt(cp * (1 - cp) / reps)


# ------------------------------------------------------------------------------------------
# results
# ------------------------------------------------------------------------------------------
def test_result_frame_repr_and_effect_scale() -> None:
    design = sq.gs_bounds(3, kind="hsd", beta=0.1, futility="hsd")
    frame = design.to_dataframe()
    assert list(frame.columns) == [
        "analysis",
        "timing",
        "upper",
        "nominal_p",
        "alpha_spent",
        "lower",
        "beta_spent",
        "upper_over_theta",
    ]
    assert frame.attrs["inflation"] == design.inflation
    assert "GSDesign(kind='hsd', k=3" in repr(design)
    upper, lower = design.effect_bounds(sd=2.0, n_per_arm=100)
    se = 2.0 * np.sqrt(2 / (100 * design.timing))
    np.testing.assert_allclose(upper, design.upper * se, rtol=1e-15)
    np.testing.assert_allclose(lower, design.lower * se, rtol=1e-15)
    np.testing.assert_allclose(design.nominal_p, stats.norm.sf(design.upper), rtol=1e-15)
    with pytest.raises(AttributeError):
        design.upper = design.lower  # type: ignore[misc]


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, r"`k` must be >= 1; got 0"),
        ({"k": 2.5}, r"`k` must be a whole number; got 2.5"),
        ({"k": 3, "alpha": 0.6}, r"`alpha` must lie in \(0.0, 0.5\); got 0.6"),
        ({"k": 3, "kind": "haybittle"}, r"`kind` must be one of 'obf', 'pocock'"),
        (
            {"k": 3, "timing": [0.5, 0.4, 1.0]},
            r"`timing` must be strictly increasing in \(0, 1\] and end at 1",
        ),
        (
            {"k": 3, "timing": [0.2, 0.5, 0.9]},
            r"`timing` must be strictly increasing .* got \[0.2, 0.5, 0.9\]",
        ),
        ({"k": 3, "timing": [0.5, 1.0]}, r"`timing` must hold k = 3 information fractions"),
        ({"k": 3, "kind": "wt"}, r"kind='wt' needs the Wang-Tsiatis shape `delta`"),
        ({"k": 3, "kind": "wt", "delta": 0.7}, r"`delta` must lie in \[0.0, 0.5\]; got 0.7"),
        ({"k": 3, "kind": "power"}, r"kind='power' needs the Kim-DeMets exponent `rho`"),
        ({"k": 3, "kind": "power", "rho": 0.0}, r"`rho` must be > 0; got 0.0"),
        ({"k": 3, "kind": "user"}, r"kind='user' needs a `spending` callable"),
        ({"k": 3, "spending": np.sqrt}, r"`spending` is used only with kind='user'"),
        (
            {"k": 3, "kind": "user", "spending": lambda t: t / 2},
            r"`spending` must return a non-decreasing cumulative fraction",
        ),
        ({"k": 3, "futility": "hsd"}, r"`futility` bounds are beta-spending bounds: give `beta`"),
        ({"k": 3, "beta": 0.1, "binding": True}, r"`binding=True` needs `futility` bounds"),
        (
            {"k": 3, "beta": 0.1, "futility": "hsd", "binding": True},
            r"binding futility needs an alpha-spending efficacy boundary",
        ),
        ({"k": 3, "beta": 0.99}, r"`beta` must lie in \(0.0, 0.975\); got 0.99"),
        (
            {"k": 3, "beta": 0.1, "futility": "gamma"},
            r"`futility` must be 'ld-obf', 'ld-pocock', 'hsd', 'power'",
        ),
    ],
)
def test_bad_input_messages(kwargs, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        sq.gs_bounds(**kwargs)


def test_bad_interim_input() -> None:
    design = sq.gs_bounds(3)
    with pytest.raises(
        ValueError, match=r"`stage` must be an interim analysis, 1 <= stage < k = 3; got 3"
    ):
        interim.conditional_power(design, 1.0, 3, 1.0)
    with pytest.raises(ValueError, match=r"`drift=None` uses the design alternative: give `beta`"):
        interim.conditional_power(design, 1.0, 1)
    with pytest.raises(ValueError, match=r"`drift` must be one of 'trend'; got 'mean'"):
        interim.conditional_power(design, 1.0, 1, "mean")
    with pytest.raises(
        ValueError, match=r"`lower` must have the shape of `upper` and lie at or below it"
    ):
        sq.gs_crossing([2.0, 2.0], [2.5, 2.0])


def test_two_sided_bounds_are_not_simulated_one_sided() -> None:
    from fibrosim.trials.designs import GroupSequentialDesign, ParallelDesign

    two = sq.gs_bounds(3, 0.05, "obf", sided=2)
    with pytest.raises(ValueError, match=r"`bounds` is a two-sided design \(sided=2\)"):
        GroupSequentialDesign(ParallelDesign(n_per_arm=60, effect=0.5, sd=1.0), two)
    # conditional power of a two-sided design against the bivariate normal law: with
    # Z_1 = z, CP = P(Z_2 >= c_2) + P(-c_2 < Z_2 < c_2, Z_3 >= c_3), (Z_2, Z_3) | Z_1 normal
    t1, t2, t3 = two.timing
    c2, c3 = two.upper[1:]
    for z in (-1.0, 0.5, 2.0):
        s1 = np.sqrt(t1) * z
        mean = np.array([s1 / np.sqrt(t2), s1 / np.sqrt(t3)])
        cov = np.array(
            [
                [(t2 - t1) / t2, (t2 - t1) / np.sqrt(t2 * t3)],
                [(t2 - t1) / np.sqrt(t2 * t3), (t3 - t1) / t3],
            ]
        )
        first = stats.norm.sf(c2, mean[0], np.sqrt(cov[0, 0]))
        second = stats.multivariate_normal.cdf(
            [c2, np.inf], mean=mean, cov=cov, lower_limit=[-c2, c3], abseps=1e-10, releps=0
        )
        assert abs(float(interim.conditional_power(two, z, 1, drift=0.0)) - (first + second)) < 1e-7
