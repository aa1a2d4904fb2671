"""Closed-form power and sample size for comparisons of means.

Two-sample t and z tests (equal or unequal SDs and allocation), a general solver for any one of
sample size, power, effect and allocation ratio, and the paired / one-sample t test (crossover,
ANCOVA and responder endpoints live in :mod:`fibrosim.trials.endpoints`; the shared power
cores, solvers and checks in :mod:`fibrosim.trials._ttest_core`).  Every argument
broadcasts, so a whole scenario grid is one call; power is returned as an array, sample sizes as a
:class:`SampleSize` result.

Conventions: ``n_per_arm`` is the size of the control arm and the treatment arm has
``ratio * n_per_arm`` subjects; ``alpha`` is the level of the test as run, so ``sided=2`` puts
``alpha / 2`` in each tail and ``sided=1`` tests in the direction of ``delta`` (so a benefit coded
as a negative change on a lower-is-better scale is handled without flipping signs).  Power of a
two-sided test counts both tails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from fibrosim._checks import (
    FloatArray,
    as_float_array,
    broadcast,
    check_in_interval,
    check_positive,
)
from fibrosim.trials._ttest_core import (
    SampleSize,
    _check_alpha_sided,
    _check_delta_nonzero,
    _check_n,
    _check_power,
    _check_ratio_arms,
    _check_size_args,
    _check_two_sample,
    _first_index,
    _index_text,
    _one_sample_size,
    _rounded_up,
    _solve_increasing,
    _solve_sample_size,
    _t_power,
    _two_sample_ncp_df,
    _two_sample_se,
    _z_power,
    _z_quantile_sum,
)

__all__ = [
    "SampleSize",
    "TTestSolution",
    "paired_sd_diff",
    "power_paired",
    "power_ttest",
    "power_ztest",
    "sample_size_paired",
    "sample_size_ttest",
    "sample_size_ztest",
    "solve_ttest",
]


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TTestSolution:
    """All four quantities of a two-sample t design after :func:`solve_ttest`.

    Attributes
    ----------
    delta : ndarray
        Difference in means (treatment minus control); a solved ``delta`` is positive.
    n_per_arm : ndarray
        Size of the control arm (unrounded when solved).
    power : ndarray
        Power of the test.
    ratio : ndarray
        Treatment-arm size over control-arm size.
    solved_for : str
        Which quantity was unknown.
    """

    delta: FloatArray
    n_per_arm: FloatArray
    power: FloatArray
    ratio: FloatArray
    solved_for: str

    def to_dataframe(self) -> pd.DataFrame:
        """One row per scenario; ``solved_for`` is kept in ``DataFrame.attrs``."""
        frame = pd.DataFrame(
            {
                n: np.ravel(v)
                for n, v in zip(
                    ("delta", "n_per_arm", "power", "ratio"),
                    np.broadcast_arrays(self.delta, self.n_per_arm, self.power, self.ratio),
                    strict=True,
                )
            }
        )
        frame.attrs["solved_for"] = self.solved_for
        return frame

    def __repr__(self) -> str:
        body = self.to_dataframe().head(10).to_string(index=False)
        return f"TTestSolution (solved for {self.solved_for})\n{body}"


# --------------------------------------------------------------------------------------------
# two-sample t and z
# --------------------------------------------------------------------------------------------
def power_ttest(
    delta: ArrayLike,
    sd: ArrayLike,
    n_per_arm: ArrayLike,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
    *,
    ratio: ArrayLike = 1.0,
    sd_c: ArrayLike | None = None,
) -> FloatArray:
    """Power of the two-sample t test from the exact noncentral t distribution.

    Parameters
    ----------
    delta : array_like
        Difference in means, treatment minus control, on the outcome scale.
    sd : array_like
        Common SD (> 0); the treatment-arm SD when ``sd_c`` is given.
    n_per_arm : array_like
        Size of the control arm (>= 2, need not be whole).
    alpha : array_like, default 0.05
        Level of the test in (0, 1).
    sided : {1, 2}, default 2
        Two-sided (``alpha / 2`` per tail, both tails counted) or one-sided in the direction
        of ``delta``.
    ratio : array_like, default 1.0
        Treatment-arm size over control-arm size.
    sd_c : array_like, optional
        Control-arm SD.  When given, the Welch test with Satterthwaite degrees of freedom is
        used.

    Returns
    -------
    ndarray
        Power, with the broadcast shape of the arguments.

    Raises
    ------
    ValueError
        If ``sd <= 0``, ``n_per_arm < 2``, ``ratio <= 0``, the treatment arm has fewer than 2
        subjects, ``alpha`` is outside (0, 1) or ``sided`` is not 1 or 2.

    References
    ----------
    Cohen J (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed., ch. 2.
    Satterthwaite FE (1946). Biometrics Bulletin 2:110-114.

    Examples
    --------
    >>> float(power_ttest(0.5, 1.0, 64).round(4))
    0.8015
    """
    d, s, n, a, sided, r, sc = _check_two_sample(
        delta, sd, n_per_arm, alpha, sided, ratio, sd_c, _check_n
    )
    _check_ratio_arms(n, r)
    ncp, df = _two_sample_ncp_df(d, s, n, r, sc)
    return _t_power(ncp, df, a, sided)


def power_ztest(
    delta: ArrayLike,
    sd: ArrayLike,
    n_per_arm: ArrayLike,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
    *,
    ratio: ArrayLike = 1.0,
    sd_c: ArrayLike | None = None,
) -> FloatArray:
    """Power of the two-sample z test (known SDs), both tails counted when two-sided.

    Parameters are those of :func:`power_ttest`; ``n_per_arm`` must be > 0.

    Returns
    -------
    ndarray
        Power, with the broadcast shape of the arguments.

    Examples
    --------
    >>> float(power_ztest(0.5, 1.0, 64).round(4))
    0.8074
    """
    d, s, n, a, sided, r, sc = _check_two_sample(
        delta, sd, n_per_arm, alpha, sided, ratio, sd_c, check_positive
    )
    sc = s if sc is None else sc
    se = np.sqrt(s**2 / (r * n) + sc**2 / n)
    return _z_power(np.abs(d) / se, a, sided)


def _sample_size_t(
    d: FloatArray, s: FloatArray, p: FloatArray, a: FloatArray, sided: int, r: FloatArray
) -> FloatArray:
    """Unrounded control-arm size of the two-sample t test (arrays already checked)."""
    z = _z_quantile_sum(a, p, sided)
    n_z = (z * s / np.abs(d)) ** 2 * (1.0 + 1.0 / r)
    # smallest control arm with both arms >= 2 subjects
    n_low = np.maximum(2.0, 2.0 / r)
    high = np.maximum(n_low * 1.5, n_z * 1.2 + 4.0)

    def fn(n: FloatArray, d: FloatArray, s: FloatArray, r: FloatArray, a: FloatArray) -> FloatArray:
        ncp, df = _two_sample_ncp_df(d, s, n, r, None)
        return _t_power(ncp, df, a, sided)

    return _solve_sample_size(
        fn,
        p,
        n_low,
        high,
        (d, s, r, a),
        "2 subjects per arm (the smallest t-test design); lower `power` or `delta`",
    )


def sample_size_ttest(
    delta: ArrayLike,
    sd: ArrayLike,
    power: ArrayLike = 0.8,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
    *,
    ratio: ArrayLike = 1.0,
) -> SampleSize:
    """Control-arm sample size of the two-sample t test (exact noncentral t).

    Parameters
    ----------
    delta : array_like
        Difference in means to detect (non-zero).
    sd : array_like
        Common SD (> 0).
    power : array_like, default 0.8
        Target power, in (alpha, 1).
    alpha : array_like, default 0.05
        Level of the test in (0, 1).
    sided : {1, 2}, default 2
        Sidedness of the test.
    ratio : array_like, default 1.0
        Treatment-arm size over control-arm size.

    Returns
    -------
    SampleSize
        ``n_per_arm`` unrounded (solved to ~1e-13 relative), its ceiling and the power there.

    Raises
    ------
    ValueError
        If ``delta == 0``, ``power <= alpha``, or the inputs are outside their ranges; also if
        2 subjects per arm already exceed the target power.

    References
    ----------
    Cohen J (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed.
    (as implemented in R ``pwr::pwr.t.test`` and ``stats::power.t.test``).

    Examples
    --------
    >>> float(sample_size_ttest(0.5, 1.0).n_per_arm.round(4))
    63.7656
    """
    d, s, p, a, sided = _check_size_args(delta, "sd", sd, power, alpha, sided)
    r = check_positive("ratio", ratio)
    b = broadcast(d=d, s=s, p=p, a=a, r=r)
    n = _sample_size_t(b["d"], b["s"], b["p"], b["a"], sided, b["r"])

    def power_at(n_up: FloatArray) -> FloatArray:
        return _t_power(*_two_sample_ncp_df(b["d"], b["s"], n_up, b["r"], None), b["a"], sided)

    return _rounded_up(n, power_at, n * (1.0 + b["r"]))


def sample_size_ztest(
    delta: ArrayLike,
    sd: ArrayLike,
    power: ArrayLike = 0.8,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
    *,
    ratio: ArrayLike = 1.0,
) -> SampleSize:
    """Control-arm sample size of the two-sample z test (closed form).

    ``n = (z_{1-alpha/sided} + z_{power})^2 * sd^2 * (1 + 1/ratio) / delta^2``; the far tail
    of a two-sided test is left out of the formula, as in every textbook and in gsDesign's
    ``nNormal``; ``power_attained`` counts it.

    Parameters are those of :func:`sample_size_ttest`.

    Returns
    -------
    SampleSize

    References
    ----------
    Anderson K. gsDesign ``nNormal`` (keaven/gsDesign: R/nNormal.R).

    Examples
    --------
    >>> float(sample_size_ztest(0.5, 1.0).n_per_arm.round(4))
    62.791
    """
    d, s, p, a, sided = _check_size_args(delta, "sd", sd, power, alpha, sided)
    r = check_positive("ratio", ratio)
    z = _z_quantile_sum(a, p, sided)
    n = np.asarray((z * s / d) ** 2 * (1.0 + 1.0 / r), dtype=np.float64)

    def power_at(n_up: FloatArray) -> FloatArray:
        return _z_power(np.abs(d) / _two_sample_se(s, n_up, r), a, sided)

    return _rounded_up(n, power_at, n * (1.0 + r))


def solve_ttest(
    delta: ArrayLike | None = None,
    sd: ArrayLike = 1.0,
    n_per_arm: ArrayLike | None = None,
    power: ArrayLike | None = None,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
    *,
    ratio: ArrayLike | None = 1.0,
) -> TTestSolution:
    """Solve the two-sample t design for whichever one of four quantities is ``None``.

    Parameters
    ----------
    delta, n_per_arm, power, ratio : array_like or None
        Exactly one must be ``None``: that one is solved for.  A solved ``delta`` is the
        positive difference; a solved ``ratio`` is the treatment-to-control size ratio for the
        given control arm.
    sd : array_like, default 1.0
        Common SD (with the default, ``delta`` is the standardised difference).
    alpha, sided
        As in :func:`power_ttest`.

    Returns
    -------
    TTestSolution

    Raises
    ------
    ValueError
        If not exactly one quantity is ``None``, or no solution exists: the message says why
        (power not above alpha, ``delta == 0``, power unreachable even with an unlimited
        treatment arm, ...).

    Examples
    --------
    >>> sol = solve_ttest(delta=0.5, n_per_arm=64, power=None)
    >>> float(sol.power.round(4))
    0.8015
    """
    given = {"delta": delta, "n_per_arm": n_per_arm, "power": power, "ratio": ratio}
    missing = [k for k, v in given.items() if v is None]
    if len(missing) != 1:
        raise ValueError(
            "exactly one of `delta`, `n_per_arm`, `power`, `ratio` must be None (the unknown); "
            f"got None for {missing or 'none of them'}."
        )
    unknown = missing[0]
    # the three known quantities (None only for `unknown`, which is not read below)
    delta = cast(ArrayLike, delta)
    n_per_arm = cast(ArrayLike, n_per_arm)
    ratio = cast(ArrayLike, ratio)
    s = check_positive("sd", sd)
    a, sided = _check_alpha_sided(alpha, sided)

    if unknown == "power":
        p_out = power_ttest(delta, sd, n_per_arm, alpha, sided, ratio=ratio)
        b = broadcast(
            d=as_float_array("delta", delta),
            n=as_float_array("n_per_arm", n_per_arm),
            r=as_float_array("ratio", ratio),
            p=p_out,
        )
        return TTestSolution(b["d"], b["n"], b["p"], b["r"], unknown)

    p = _check_power(power, a) if power is not None else None
    if unknown == "n_per_arm":
        ss = sample_size_ttest(delta, sd, p, a, sided, ratio=ratio)  # type: ignore[arg-type]
        b = broadcast(
            d=as_float_array("delta", delta),
            n=ss.n_per_arm,
            p=np.asarray(p, dtype=np.float64),
            r=as_float_array("ratio", ratio),
        )
        return TTestSolution(b["d"], b["n"], b["p"], b["r"], unknown)

    assert p is not None
    n = _check_n("n_per_arm", n_per_arm)
    if unknown == "delta":
        r = check_positive("ratio", ratio)
        _check_ratio_arms(n, r)
        b = broadcast(s=s, n=n, p=p, a=a, r=r)

        def in_delta(
            x: FloatArray, s_: FloatArray, n_: FloatArray, r_: FloatArray, a_: FloatArray
        ) -> FloatArray:
            ncp, df = _two_sample_ncp_df(x, s_, n_, r_, None)
            return _t_power(ncp, df, a_, sided)

        z = _z_quantile_sum(b["a"], b["p"], sided)
        high = 2.0 * z * b["s"] * np.sqrt(1.0 / (b["r"] * b["n"]) + 1.0 / b["n"]) + 1e-6
        d_out = _solve_increasing(
            in_delta,
            b["p"],
            np.zeros_like(high),
            high,
            (b["s"], b["n"], b["r"], b["a"]),
            high_limit=1e12 * float(np.max(b["s"])),
            below_message="no positive `delta` solves the design",
            above_message="the requested `power` is not reached for any finite `delta`",
        )
        return TTestSolution(d_out, b["n"], b["p"], b["r"], unknown)

    # unknown == "ratio": power rises with the treatment arm but is capped by the z test
    # with only the control arm's sampling error.
    d = _check_delta_nonzero(delta)
    b = broadcast(d=d, s=s, n=n, p=p, a=a)
    cap = _z_power(np.abs(b["d"]) / (b["s"] / np.sqrt(b["n"])), b["a"], sided)
    bad = cap <= b["p"]
    if np.any(bad):
        raise ValueError(
            "the requested `power` cannot be reached by enlarging the treatment arm: with "
            f"`n_per_arm` = {np.atleast_1d(b['n'])[_first_index(bad)]:g} control subjects even "
            f"an unlimited treatment arm gives power < {np.atleast_1d(cap)[_first_index(bad)]:.6g}"
            f"{_index_text(bad)}; enlarge the control arm"
        )

    def in_ratio(
        x: FloatArray, d_: FloatArray, s_: FloatArray, n_: FloatArray, a_: FloatArray
    ) -> FloatArray:
        ncp, df = _two_sample_ncp_df(d_, s_, n_, x, None)
        return _t_power(ncp, df, a_, sided)

    low = 2.0 / b["n"]
    r_out = _solve_increasing(
        in_ratio,
        b["p"],
        low,
        np.maximum(4.0 * low, 1.0),
        (b["d"], b["s"], b["n"], b["a"]),
        high_limit=1e9,
        below_message="the requested `power` is already exceeded with a treatment arm of 2",
        above_message="the requested `power` needs a treatment arm over 1e9 times the control",
    )
    return TTestSolution(b["d"], b["n"], b["p"], r_out, unknown)


# --------------------------------------------------------------------------------------------
# paired / one-sample t and the AB/BA crossover
# --------------------------------------------------------------------------------------------
def paired_sd_diff(sd1: ArrayLike, sd2: ArrayLike, rho: ArrayLike) -> FloatArray:
    """SD of a within-pair difference, ``sqrt(sd1^2 + sd2^2 - 2 rho sd1 sd2)``.

    Parameters
    ----------
    sd1, sd2 : array_like
        SDs of the two paired measurements (> 0).
    rho : array_like
        Their correlation, in [-1, 1].

    Returns
    -------
    ndarray

    Examples
    --------
    >>> float(paired_sd_diff(40.0, 55.0, 0.3).round(4))
    57.4891
    """
    s1 = check_positive("sd1", sd1)
    s2 = check_positive("sd2", sd2)
    r = check_in_interval("rho", rho, -1.0, 1.0)
    return np.asarray(np.sqrt(s1**2 + s2**2 - 2.0 * r * s1 * s2), dtype=np.float64)


def power_paired(
    delta: ArrayLike,
    sd_diff: ArrayLike,
    n_pairs: ArrayLike,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
) -> FloatArray:
    """Power of the paired (equivalently one-sample) t test on ``n_pairs`` differences.

    Parameters
    ----------
    delta : array_like
        Mean difference within pairs (or mean minus the null value).
    sd_diff : array_like
        SD of the differences (> 0); see :func:`paired_sd_diff`.
    n_pairs : array_like
        Number of pairs (>= 2).
    alpha, sided
        As in :func:`power_ttest`.

    Returns
    -------
    ndarray

    References
    ----------
    SAS Institute. PROC POWER, PAIREDMEANS example (statug, "Paired t test").

    Examples
    --------
    >>> sd = paired_sd_diff(40.0, 55.0, 0.3)
    >>> float(power_paired(20.0, sd, 100, alpha=0.01, sided=1).round(5))
    0.86538
    """
    d = as_float_array("delta", delta)
    s = check_positive("sd_diff", sd_diff)
    n = _check_n("n_pairs", n_pairs)
    a, sided = _check_alpha_sided(alpha, sided)
    broadcast(delta=d, sd_diff=s, n_pairs=n, alpha=a)
    return _paired_power(d, s, n, a, sided)


def _paired_power(
    d: FloatArray, s: FloatArray, n: FloatArray, a: FloatArray, sided: int
) -> FloatArray:
    """Power of the paired t test on ``n`` differences with SD ``s``."""
    return _t_power(np.abs(d) * np.sqrt(n) / s, n - 1.0, a, sided)


def sample_size_paired(
    delta: ArrayLike,
    sd_diff: ArrayLike,
    power: ArrayLike = 0.8,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
) -> SampleSize:
    """Number of pairs for the paired t test (unrounded); ``n_per_arm`` holds the pairs.

    Parameters are those of :func:`power_paired` with ``power`` in place of ``n_pairs``.

    Returns
    -------
    SampleSize
        ``n_per_arm`` and ``n_total`` both equal the number of pairs.

    Examples
    --------
    >>> float(sample_size_paired(0.5, 1.0).n_per_arm_rounded)
    34.0
    """
    return _one_sample_size(
        delta, "sd_diff", sd_diff, power, alpha, sided, (1.0, 1.0, 2.0), _paired_power
    )
