"""Conversions that recover what an effect size needs from what a paper reports.

Standard errors from confidence intervals, standard deviations from standard errors, means
and standard deviations from medians and ranges or quartiles (Wan et al. 2014), the SD of
change scores, 2x2 cells from events and arm sizes, and Hedges' g from a t, F or p value.
Arrays broadcast.  ``fibrosim.effects`` re-exports every public name here, so users write
``fs.effects.se_from_ci``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from fibrosim._checks import (
    FloatArray,
    _first_bad,
    _where,
    as_float_array,
    broadcast,
    check_choice,
    check_in_interval,
    check_integer,
    check_level,
    check_positive,
)
from fibrosim._effect_sizes import EffectSizes

__all__ = [
    "MeanSD",
    "change_sd",
    "d_from_f",
    "d_from_p",
    "d_from_t",
    "mean_sd_from_median",
    "sd_from_se",
    "se_from_ci",
    "table_from_events",
]


def _fail_where(mask: NDArray[np.bool_], message: str, *values: tuple[str, FloatArray]) -> None:
    """Raise ``ValueError(message)`` naming the first flagged index and the values there."""
    if not np.any(mask):
        return
    idx = _first_bad(np.atleast_1d(mask))
    shown = ", ".join(f"{name}={np.atleast_1d(arr)[idx]:g}" for name, arr in values)
    raise ValueError(f"{message}; got {shown}{_where(idx)}.")


def se_from_ci(
    low: ArrayLike, high: ArrayLike, level: float = 0.95, *, log: bool = False
) -> FloatArray:
    """Standard error from a symmetric normal-theory confidence interval.

    ``se = (high - low) / (2 z)`` with ``z = Φ⁻¹((1 + level) / 2)`` (3.92 / 2 at 95 %).  For
    ratio measures (OR, RR, HR, ratio of means) pass the interval on its natural scale with
    ``log=True``: the SE is then that of the log ratio, ``(log high - log low) / (2 z)``.

    Parameters
    ----------
    low, high : array_like
        Lower and upper confidence limits; ``low < high``.  Positive when ``log=True``.
    level : float, default 0.95
        Confidence level of the interval, in (0, 1).
    log : bool, default False
        Interval of a ratio on its natural scale; return the SE of its logarithm.

    Returns
    -------
    ndarray
        Standard errors, broadcast shape of ``low`` and ``high``.

    Raises
    ------
    ValueError
        Non-finite limits, ``low >= high``, non-positive limits with ``log=True``, or a
        ``level`` outside (0, 1).

    References
    ----------
    Higgins JPT, Li T, Deeks JJ (eds). Chapter 6: Choosing effect measures and computing
    estimates of effect, section 6.3.1. Cochrane Handbook for Systematic Reviews of
    Interventions, version 6.4 (2023).

    Examples
    --------
    >>> round(float(se_from_ci(-1.96, 1.96)), 4)
    1.0
    """
    level = check_level("level", level)
    if log:
        lo = check_positive("low", low)
        hi = check_positive("high", high)
    else:
        lo = as_float_array("low", low)
        hi = as_float_array("high", high)
    arrs = broadcast(low=lo, high=hi)
    lo, hi = arrs["low"], arrs["high"]
    _fail_where(lo >= hi, "`low` must be < `high`", ("low", lo), ("high", hi))
    z = stats.norm.ppf(0.5 + level / 2.0)
    width = np.log(hi) - np.log(lo) if log else hi - lo
    return np.asarray(width / (2.0 * z), dtype=np.float64)


def sd_from_se(se: ArrayLike, n: ArrayLike) -> FloatArray:
    """Standard deviation of one arm from the standard error of its mean: ``sd = se * sqrt(n)``.

    Parameters
    ----------
    se : array_like
        Standard errors of the arm means, > 0.
    n : array_like
        Arm sizes, whole numbers >= 1.

    Returns
    -------
    ndarray
        Standard deviations, broadcast shape of ``se`` and ``n``.

    References
    ----------
    Cochrane Handbook (2023), section 6.5.2.2.

    Examples
    --------
    >>> float(sd_from_se(0.5, 16))
    2.0
    """
    se_arr = check_positive("se", se)
    n_arr = check_integer("n", n, minimum=1)
    arrs = broadcast(se=se_arr, n=n_arr)
    return np.asarray(arrs["se"] * np.sqrt(arrs["n"]), dtype=np.float64)


def _change_sd(sd_baseline: FloatArray, sd_followup: FloatArray, r: FloatArray) -> FloatArray:
    """Core of :func:`change_sd` on clean, broadcast arrays (may return 0)."""
    var = sd_baseline**2 + sd_followup**2 - 2.0 * r * sd_baseline * sd_followup
    # rounding can leave -1e-17 where the exact value is 0 (r = 1, equal SDs)
    return np.asarray(np.sqrt(np.maximum(var, 0.0)), dtype=np.float64)


def change_sd(sd_baseline: ArrayLike, sd_followup: ArrayLike, r: ArrayLike) -> FloatArray:
    """Standard deviation of change scores from the baseline and follow-up SDs.

    ``sd_change = sqrt(sd_b² + sd_f² - 2 r sd_b sd_f)``, with ``r`` the correlation between
    baseline and follow-up measurements.

    Parameters
    ----------
    sd_baseline, sd_followup : array_like
        Standard deviations at baseline and at follow-up, > 0.
    r : array_like
        Baseline-follow-up correlation in [-1, 1].

    Returns
    -------
    ndarray
        Standard deviations of the change scores, > 0.

    Raises
    ------
    ValueError
        Bad input, or a change SD of 0 (``r = 1`` with equal SDs), which no standardised
        change can be divided by.

    References
    ----------
    Cochrane Handbook (2023), section 6.5.2.8, equation for SD_change.

    Examples
    --------
    >>> float(change_sd(3.0, 4.0, 0.0))
    5.0
    """
    arrs = broadcast(
        sd_baseline=check_positive("sd_baseline", sd_baseline),
        sd_followup=check_positive("sd_followup", sd_followup),
        r=check_in_interval("r", r, -1.0, 1.0),
    )
    out = _change_sd(arrs["sd_baseline"], arrs["sd_followup"], arrs["r"])
    _fail_where(
        out <= 0.0,
        "the SD of change scores is 0 (r = 1 with equal SDs)",
        ("sd_baseline", arrs["sd_baseline"]),
        ("sd_followup", arrs["sd_followup"]),
        ("r", arrs["r"]),
    )
    return out


@dataclass(frozen=True, slots=True, eq=False)
class MeanSD:
    """Estimated sample mean and standard deviation of one arm.

    Attributes
    ----------
    mean : ndarray
        Estimated sample means.
    sd : ndarray
        Estimated sample standard deviations.
    scenario : str
        Which summaries were used: ``"min-median-max"`` (Wan's C1), ``"five-number"``
        (C2: minimum, quartiles, median, maximum) or ``"q1-median-q3"`` (C3).

    Unpacks as ``mean, sd = mean_sd_from_median(...)``.
    """

    mean: FloatArray
    sd: FloatArray
    scenario: str

    def __iter__(self) -> Iterator[FloatArray]:
        return iter((self.mean, self.sd))

    def __repr__(self) -> str:
        return (
            f"MeanSD(scenario={self.scenario!r}, mean={np.array2string(self.mean, precision=6)}, "
            f"sd={np.array2string(self.sd, precision=6)})"
        )


def _check_sign(sign: ArrayLike) -> FloatArray:
    arr = as_float_array("sign", sign)
    bad = (arr != 1.0) & (arr != -1.0)
    if np.any(bad):
        idx = _first_bad(np.atleast_1d(bad))
        raise ValueError(
            f"`sign` must be +1 or -1 (the direction of the effect, group 1 minus group 2); "
            f"got {np.atleast_1d(arr)[idx]:g}{_where(idx)}."
        )
    return arr


def _wan_xi(n: FloatArray) -> FloatArray:
    """ξ(n) = 2 Φ⁻¹((n - 0.375) / (n + 0.25)): Blom's approximation to the expected range."""
    return np.asarray(2.0 * stats.norm.ppf((n - 0.375) / (n + 0.25)), dtype=np.float64)


def _wan_eta(n: FloatArray) -> FloatArray:
    """η(n) = 2 Φ⁻¹((0.75 n - 0.125) / (n + 0.25)): expected IQR of n standard normals."""
    return np.asarray(2.0 * stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25)), dtype=np.float64)


def mean_sd_from_median(
    median: ArrayLike,
    n: ArrayLike,
    *,
    minimum: ArrayLike | None = None,
    maximum: ArrayLike | None = None,
    q1: ArrayLike | None = None,
    q3: ArrayLike | None = None,
) -> MeanSD:
    """Sample mean and SD from the median with the range and/or quartiles (Wan et al. 2014).

    The summaries given choose the scenario:

    * ``minimum`` and ``maximum`` (C1): mean = (a + 2m + b) / 4, SD = (b - a) / ξ(n);
    * ``minimum``, ``q1``, ``q3`` and ``maximum`` (C2):
      mean = (a + 2 q1 + 2m + 2 q3 + b) / 8, SD = (b - a) / (2 ξ(n)) + (q3 - q1) / (2 η(n));
    * ``q1`` and ``q3`` (C3): mean = (q1 + m + q3) / 3, SD = (q3 - q1) / η(n);

    with ξ(n) = 2 Φ⁻¹((n - 0.375) / (n + 0.25)) and η(n) = 2 Φ⁻¹((0.75 n - 0.125) / (n + 0.25)).
    The estimators assume roughly normal data; for skewed outcomes they are biased.

    Parameters
    ----------
    median : array_like
        Sample medians.
    n : array_like
        Sample sizes, whole numbers >= 2.
    minimum, maximum, q1, q3 : array_like, optional
        Smallest and largest values and first and third quartiles.  Give exactly one of the
        combinations above; the values must be ordered minimum <= q1 <= median <= q3 <= maximum
        with a positive spread (maximum > minimum, q3 > q1).

    Returns
    -------
    MeanSD
        ``mean``, ``sd`` (broadcast shape of the inputs) and ``scenario``.

    Raises
    ------
    ValueError
        An unsupported combination of summaries, unordered summaries, zero spread, ``n < 2``
        or non-finite input.

    References
    ----------
    Wan X, Wang W, Liu J, Tong T. Estimating the sample mean and standard deviation from the
    sample size, median, range and/or interquartile range. BMC Med Res Methodol 2014;14:135.
    doi:10.1186/1471-2288-14-135.  Scenarios C1, C2 and C3; the SD formulas (7) and (12) use
    the approximation of ξ(n) given in the paper (its Table 1 lists the exact ξ(n), n <= 50).
    Hozo SP, Djulbegovic B, Hozo I. Estimating the mean and variance from the median, range,
    and the size of a sample. BMC Med Res Methodol 2005;5:13 (the C1 mean).

    Examples
    --------
    >>> est = mean_sd_from_median(5.0, 50, q1=3.0, q3=7.0)
    >>> round(float(est.mean), 4), round(float(est.sd), 4)
    (5.0, 3.0532)
    """
    given = tuple(v is not None for v in (minimum, q1, q3, maximum))
    scenarios = {
        (True, False, False, True): "min-median-max",
        (True, True, True, True): "five-number",
        (False, True, True, False): "q1-median-q3",
    }
    if given not in scenarios:
        names = [k for k, g in zip(("minimum", "q1", "q3", "maximum"), given, strict=True) if g]
        raise ValueError(
            "give `minimum` and `maximum`, or `q1` and `q3`, or all four with the median; "
            f"got {names or 'none of them'}."
        )
    scenario = scenarios[given]
    raw: dict[str, FloatArray] = {
        "median": as_float_array("median", median),
        "n": check_integer("n", n, minimum=2),
    }
    for name, value in (("minimum", minimum), ("q1", q1), ("q3", q3), ("maximum", maximum)):
        if value is not None:
            raw[name] = as_float_array(name, value)
    arrs = broadcast(**raw)
    order = [k for k in ("minimum", "q1", "median", "q3", "maximum") if k in arrs]
    for lo_name, hi_name in itertools.pairwise(order):
        lo, hi = arrs[lo_name], arrs[hi_name]
        _fail_where(lo > hi, f"`{lo_name}` must be <= `{hi_name}`", (lo_name, lo), (hi_name, hi))
    for lo_name, hi_name in (("minimum", "maximum"), ("q1", "q3")):
        if lo_name in arrs:
            lo, hi = arrs[lo_name], arrs[hi_name]
            _fail_where(
                lo >= hi,
                f"`{hi_name}` must be > `{lo_name}` (zero spread gives SD 0)",
                (lo_name, lo),
                (hi_name, hi),
            )
    m, nn = arrs["median"], arrs["n"]
    if scenario == "min-median-max":
        a, b = arrs["minimum"], arrs["maximum"]
        mean = (a + 2.0 * m + b) / 4.0
        sd = (b - a) / _wan_xi(nn)
    elif scenario == "five-number":
        a, b, lo_q, hi_q = arrs["minimum"], arrs["maximum"], arrs["q1"], arrs["q3"]
        mean = (a + 2.0 * lo_q + 2.0 * m + 2.0 * hi_q + b) / 8.0
        sd = (b - a) / (2.0 * _wan_xi(nn)) + (hi_q - lo_q) / (2.0 * _wan_eta(nn))
    else:
        lo_q, hi_q = arrs["q1"], arrs["q3"]
        mean = (lo_q + m + hi_q) / 3.0
        sd = (hi_q - lo_q) / _wan_eta(nn)
    return MeanSD(
        mean=np.asarray(mean, dtype=np.float64),
        sd=np.asarray(sd, dtype=np.float64),
        scenario=scenario,
    )


def table_from_events(
    events1: ArrayLike, n1: ArrayLike, events2: ArrayLike, n2: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """2x2 cells ``(a, b, c, d)`` from events and arm sizes, for :func:`odds_ratio` and kin.

    Parameters
    ----------
    events1, n1 : array_like
        Events and participants in group 1 (treated); whole numbers, ``0 <= events1 <= n1``,
        ``n1 >= 1``.
    events2, n2 : array_like
        The same for group 2 (control).

    Returns
    -------
    tuple of ndarray
        ``a = events1``, ``b = n1 - events1``, ``c = events2``, ``d = n2 - events2``.

    Examples
    --------
    >>> [float(x) for x in table_from_events(3, 10, 5, 12)]
    [3.0, 7.0, 5.0, 7.0]
    """
    arrs = broadcast(
        events1=check_integer("events1", events1, minimum=0),
        n1=check_integer("n1", n1, minimum=1),
        events2=check_integer("events2", events2, minimum=0),
        n2=check_integer("n2", n2, minimum=1),
    )
    for ev, nn in (("events1", "n1"), ("events2", "n2")):
        bad = arrs[ev] > arrs[nn]
        if np.any(bad):
            idx = _first_bad(np.atleast_1d(bad))
            raise ValueError(
                f"`{ev}` must be <= `{nn}` (events cannot exceed the arm size); got "
                f"{ev}={np.atleast_1d(arrs[ev])[idx]:g}, {nn}={np.atleast_1d(arrs[nn])[idx]:g}"
                f"{_where(idx)}."
            )
    e1, e2 = arrs["events1"], arrs["events2"]
    return e1, arrs["n1"] - e1, e2, arrs["n2"] - e2


# ------------------------------------------------------------- test statistics to Hedges' g


def d_from_t(t: ArrayLike, n1: ArrayLike, n2: ArrayLike, *, vtype: str = "LS") -> EffectSizes:
    """Hedges' g from an independent-samples t statistic (pooled variance).

    ``d = t sqrt(1/n1 + 1/n2)``, then ``g = J(n1 + n2 - 2) d`` with the variance of
    :func:`smd`; the same as metafor's ``escalc("SMD", ti=, n1i=, n2i=)``.

    Parameters
    ----------
    t : array_like
        t statistics, positive when group 1 has the larger mean.
    n1, n2 : array_like
        Arm sizes, whole numbers >= 2.
    vtype : {"LS", "UB", "LS2"}, default "LS"
        As :func:`smd`.

    Returns
    -------
    EffectSizes
        ``measure="SMD"``.

    References
    ----------
    Borenstein M, Hedges LV, Higgins JPT, Rothstein HR. Introduction to Meta-Analysis.
    Wiley, 2009, chapter 4 (effect sizes based on means).

    Examples
    --------
    >>> round(float(d_from_t(2.5, 20, 22).yi), 6)
    0.757804
    """
    # imported here: fibrosim.effects imports this module to re-export its names
    from fibrosim.effects import _smd_from_d

    check_choice("vtype", vtype, ("LS", "UB", "LS2"))
    a = broadcast(
        t=as_float_array("t", t),
        n1=check_integer("n1", n1, minimum=2),
        n2=check_integer("n2", n2, minimum=2),
    )
    d = a["t"] * np.sqrt(1.0 / a["n1"] + 1.0 / a["n2"])
    return _smd_from_d(d, a["n1"], a["n2"], vtype)


def d_from_f(
    f: ArrayLike, n1: ArrayLike, n2: ArrayLike, *, sign: ArrayLike, vtype: str = "LS"
) -> EffectSizes:
    """Hedges' g from a two-group F statistic with 1 numerator df (``t² = F``).

    An F statistic has no direction, so ``sign`` (+1: group 1 higher, -1: lower) is required.

    Parameters
    ----------
    f : array_like
        F statistics, >= 0, from a two-group comparison (1 numerator df).
    n1, n2 : array_like
        Arm sizes, whole numbers >= 2.
    sign : array_like
        +1 or -1, the direction of group 1 minus group 2.
    vtype : {"LS", "UB", "LS2"}, default "LS"
        As :func:`smd`.

    Returns
    -------
    EffectSizes
        ``measure="SMD"``.

    Examples
    --------
    >>> round(float(d_from_f(6.25, 20, 22, sign=1).yi), 6)
    0.757804
    """
    f_arr = check_positive("f", f, strict=False)
    return d_from_t(_check_sign(sign) * np.sqrt(f_arr), n1, n2, vtype=vtype)


def d_from_p(
    p: ArrayLike, n1: ArrayLike, n2: ArrayLike, *, sign: ArrayLike, vtype: str = "LS"
) -> EffectSizes:
    """Hedges' g from a two-sided p value of a pooled-variance t test.

    ``t = sign * t⁻¹(1 - p/2; n1 + n2 - 2)``, then :func:`d_from_t`.  Only the magnitude comes
    from ``p``: the direction must be given by ``sign``.  Exact only if the p value came
    from that t test; from other tests (ANCOVA, Welch, non-parametric) it is approximate.

    Parameters
    ----------
    p : array_like
        Two-sided p values in (0, 1].
    n1, n2 : array_like
        Arm sizes, whole numbers >= 2.
    sign : array_like
        +1 or -1, the direction of group 1 minus group 2.
    vtype : {"LS", "UB", "LS2"}, default "LS"
        As :func:`smd`.

    Returns
    -------
    EffectSizes
        ``measure="SMD"``.

    Examples
    --------
    >>> round(float(d_from_p(0.05, 20, 20, sign=-1).yi), 4)
    -0.6274
    """
    p_arr = check_in_interval("p", p, 0.0, 1.0, closed="right")
    s = _check_sign(sign)
    n1_arr = check_integer("n1", n1, minimum=2)
    n2_arr = check_integer("n2", n2, minimum=2)
    a = broadcast(p=p_arr, sign=s, n1=n1_arr, n2=n2_arr)
    t = a["sign"] * stats.t.isf(a["p"] / 2.0, a["n1"] + a["n2"] - 2.0)
    return d_from_t(t, a["n1"], a["n2"], vtype=vtype)
