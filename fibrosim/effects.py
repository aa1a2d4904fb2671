"""Effect sizes and their sampling variances from arm summaries (metafor ``escalc`` parity).

Every function returns an :class:`EffectSizes` with ``yi`` (the effect) and ``vi`` (its
sampling variance), computed with the formulas of metafor 3.8-1 ``escalc`` and checked
against it to 1e-10 relative (``tests/data/escalc_reference.json``).  Inputs broadcast;
a leading axis may index many meta-analyses at once.  Group 1 is the treated arm: every
difference is group 1 minus group 2, every ratio group 1 over group 2.

Two-group means: :func:`md`, :func:`smd` (Hedges' g), :func:`rom`.  Pre-post (one group):
:func:`smcr`, :func:`smcc`.  Correlations: :func:`zcor`.  Re-exported from
:mod:`fibrosim.effects_binary`: the 2x2 table measures :func:`odds_ratio`, :func:`risk_ratio`,
:func:`risk_difference` with their continuity correction.  Re-exported from
:mod:`fibrosim.conversions`: Hedges' g from test statistics (:func:`d_from_t`,
:func:`d_from_f`, :func:`d_from_p`), 2x2 cells from events (:func:`table_from_events`), and
conversions of reported summaries (:func:`se_from_ci`, :func:`sd_from_se`,
:func:`mean_sd_from_median`, :func:`change_sd`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from fibrosim._checks import (
    FloatArray,
    _first_bad,
    _where,
    as_float_array,
    broadcast,
    check_choice,
    check_in_interval,
    check_integer,
    check_positive,
)
from fibrosim._effect_sizes import EffectSizes
from fibrosim.conversions import (
    MeanSD,
    _change_sd,
    change_sd,
    d_from_f,
    d_from_p,
    d_from_t,
    mean_sd_from_median,
    sd_from_se,
    se_from_ci,
    table_from_events,
)
from fibrosim.effects_binary import odds_ratio, risk_difference, risk_ratio

__all__ = [
    "EffectSizes",
    "MeanSD",
    "change_sd",
    "d_from_f",
    "d_from_p",
    "d_from_t",
    "md",
    "mean_sd_from_median",
    "odds_ratio",
    "risk_difference",
    "risk_ratio",
    "rom",
    "sd_from_se",
    "se_from_ci",
    "smcc",
    "smcr",
    "smd",
    "table_from_events",
    "zcor",
]

# ----------------------------------------------------------------------------- helpers


def _hedges_j(df: FloatArray) -> FloatArray:
    """Exact small-sample correction J(m) = Γ(m/2) / (sqrt(m/2) Γ((m-1)/2)) for m > 1.

    Computed on the log scale as metafor's ``.cmicalc`` does, so it neither overflows nor
    loses the digits the approximation 1 - 3/(4m - 1) drops (m = 8: 0.902703 vs 0.903226).
    The difference of two large log-gammas costs digits as m grows: relative error ~1e-13 up
    to m = 1e3, ~4e-11 at m = 2e5, far below any statistical consequence.
    """
    return np.asarray(
        np.exp(
            special.gammaln(df / 2.0)
            - np.log(np.sqrt(df / 2.0))
            - special.gammaln((df - 1.0) / 2.0)
        ),
        dtype=np.float64,
    )


def _two_means(
    m1: ArrayLike, sd1: ArrayLike, n1: ArrayLike, m2: ArrayLike, sd2: ArrayLike, n2: ArrayLike
) -> dict[str, FloatArray]:
    # n >= 2 per arm: an SD needs two observations (metafor accepts n = 1 and yields NA or a
    # meaningless number)
    return broadcast(
        m1=as_float_array("m1", m1),
        sd1=check_positive("sd1", sd1),
        n1=check_integer("n1", n1, minimum=2),
        m2=as_float_array("m2", m2),
        sd2=check_positive("sd2", sd2),
        n2=check_integer("n2", n2, minimum=2),
    )


def _pooled_variance(a: dict[str, FloatArray]) -> FloatArray:
    """Pooled within-group variance ``((n1-1) sd1² + (n2-1) sd2²) / (n1 + n2 - 2)``."""
    return ((a["n1"] - 1.0) * a["sd1"] ** 2 + (a["n2"] - 1.0) * a["sd2"] ** 2) / (
        a["n1"] + a["n2"] - 2.0
    )


def _smd_from_d(d: FloatArray, n1: FloatArray, n2: FloatArray, vtype: str) -> EffectSizes:
    """Hedges' g and its variance from Cohen's d (pooled SD) and the arm sizes."""
    df = n1 + n2 - 2.0
    j = _hedges_j(df)
    yi = j * d
    inv_n = 1.0 / n1 + 1.0 / n2
    if vtype == "LS":
        vi = inv_n + yi**2 / (2.0 * (n1 + n2))
    elif vtype == "UB":
        vi = inv_n + (1.0 - (df - 2.0) / (df * j**2)) * yi**2
    else:  # LS2
        vi = j**2 * (inv_n + d**2 / (2.0 * (n1 + n2)))
    return EffectSizes("SMD", yi, vi, vtype=vtype)


# ------------------------------------------------------------------------ two-group means


def md(
    m1: ArrayLike,
    sd1: ArrayLike,
    n1: ArrayLike,
    m2: ArrayLike,
    sd2: ArrayLike,
    n2: ArrayLike,
    *,
    vtype: str = "LS",
) -> EffectSizes:
    """Raw mean difference ``m1 - m2`` (metafor ``measure="MD"``).

    Parameters
    ----------
    m1, sd1, n1 : array_like
        Mean, standard deviation (> 0) and size (whole number >= 2) of group 1 (treated).
    m2, sd2, n2 : array_like
        The same for group 2 (control).
    vtype : {"LS", "HO"}, default "LS"
        ``"LS"``: unequal variances, ``vi = sd1²/n1 + sd2²/n2``; ``"HO"``: pooled
        (homoscedastic) variance, ``vi = sp² (1/n1 + 1/n2)``.

    Returns
    -------
    EffectSizes
        ``measure="MD"``.

    Raises
    ------
    ValueError
        Non-finite input, an SD <= 0, an arm size below 2 or not whole, inputs that do not
        broadcast, or an unknown ``vtype``.

    Examples
    --------
    >>> float(md(5.0, 2.0, 10, 3.0, 2.0, 10).yi)
    2.0
    """
    check_choice("vtype", vtype, ("LS", "HO"))
    a = _two_means(m1, sd1, n1, m2, sd2, n2)
    yi = a["m1"] - a["m2"]
    if vtype == "LS":
        vi = a["sd1"] ** 2 / a["n1"] + a["sd2"] ** 2 / a["n2"]
    else:
        vi = _pooled_variance(a) * (1.0 / a["n1"] + 1.0 / a["n2"])
    return EffectSizes("MD", yi, vi, vtype=vtype)


def smd(
    m1: ArrayLike,
    sd1: ArrayLike,
    n1: ArrayLike,
    m2: ArrayLike,
    sd2: ArrayLike,
    n2: ArrayLike,
    *,
    vtype: str = "LS",
) -> EffectSizes:
    """Standardised mean difference, Hedges' g (metafor ``measure="SMD"``).

    ``g = J(m) (m1 - m2) / sp`` with the pooled SD ``sp`` and the exact correction
    ``J(m) = Γ(m/2) / (sqrt(m/2) Γ((m-1)/2))``, ``m = n1 + n2 - 2``.

    Parameters
    ----------
    m1, sd1, n1 : array_like
        Mean, standard deviation (> 0) and size (whole number >= 2) of group 1 (treated).
    m2, sd2, n2 : array_like
        The same for group 2 (control).
    vtype : {"LS", "UB", "LS2"}, default "LS"
        ``"LS"`` (large sample, metafor's default): ``1/n1 + 1/n2 + g²/(2(n1+n2))``;
        ``"UB"`` (unbiased): ``1/n1 + 1/n2 + (1 - (m-2)/(m J²)) g²``;
        ``"LS2"``: ``J² (1/n1 + 1/n2 + d²/(2(n1+n2)))`` with d the uncorrected value.

    Returns
    -------
    EffectSizes
        ``measure="SMD"``.

    Raises
    ------
    ValueError
        As :func:`md`.

    References
    ----------
    Hedges LV. Distribution theory for Glass's estimator of effect size and related
    estimators. J Educ Stat 1981;6(2):107-128 (J(m), equation 6e; the unbiased variance).
    Borenstein M. Effect sizes for continuous data. In: Cooper H, Hedges LV, Valentine JC
    (eds). The handbook of research synthesis and meta-analysis, 2nd ed. 2009:221-235.

    Examples
    --------
    >>> es = smd(5.0, 2.0, 10, 3.0, 2.0, 10)
    >>> round(float(es.yi), 6)
    0.957646
    """
    check_choice("vtype", vtype, ("LS", "UB", "LS2"))
    a = _two_means(m1, sd1, n1, m2, sd2, n2)
    sp = np.sqrt(_pooled_variance(a))
    return _smd_from_d((a["m1"] - a["m2"]) / sp, a["n1"], a["n2"], vtype)


def rom(
    m1: ArrayLike, sd1: ArrayLike, n1: ArrayLike, m2: ArrayLike, sd2: ArrayLike, n2: ArrayLike
) -> EffectSizes:
    """Log ratio of means ``log(m1 / m2)`` (metafor ``measure="ROM"``, ``vtype="LS"``).

    ``vi = sd1² / (n1 m1²) + sd2² / (n2 m2²)``.  Only for outcomes on a ratio scale, so
    both means must be > 0.

    Parameters
    ----------
    m1, sd1, n1, m2, sd2, n2 : array_like
        As :func:`md`, with ``m1 > 0`` and ``m2 > 0``.

    Returns
    -------
    EffectSizes
        ``measure="ROM"``.

    References
    ----------
    Hedges LV, Gurevitch J, Curtis PS. The meta-analysis of response ratios in experimental
    ecology. Ecology 1999;80(4):1150-1156.

    Examples
    --------
    >>> round(float(rom(20.0, 4.0, 30, 10.0, 3.0, 30).yi), 6)
    0.693147
    """
    check_positive("m1", m1)
    check_positive("m2", m2)
    a = _two_means(m1, sd1, n1, m2, sd2, n2)
    yi = np.log(a["m1"] / a["m2"])
    vi = a["sd1"] ** 2 / (a["n1"] * a["m1"] ** 2) + a["sd2"] ** 2 / (a["n2"] * a["m2"] ** 2)
    return EffectSizes("ROM", yi, vi, vtype="LS")


# ------------------------------------------------------------------------------ pre-post


def _prepost(
    m1: ArrayLike, m2: ArrayLike, n: ArrayLike, r: ArrayLike, **sds: ArrayLike
) -> dict[str, FloatArray]:
    # n >= 3: J(n - 1) is defined only for n - 1 > 1
    return broadcast(
        m1=as_float_array("m1", m1),
        m2=as_float_array("m2", m2),
        n=check_integer("n", n, minimum=3),
        r=check_in_interval("r", r, -1.0, 1.0),
        **{k: check_positive(k, v) for k, v in sds.items()},
    )


def smcr(
    m1: ArrayLike, m2: ArrayLike, sd1: ArrayLike, n: ArrayLike, r: ArrayLike, *, vtype: str = "LS"
) -> EffectSizes:
    """Standardised mean change with raw-score standardisation (metafor ``"SMCR"``).

    ``g = J(n-1) (m1 - m2) / sd1`` for one group measured twice: ``m1`` the follow-up mean,
    ``m2`` the baseline mean, ``sd1`` the baseline SD.

    Parameters
    ----------
    m1, m2 : array_like
        Follow-up and baseline means.
    sd1 : array_like
        Baseline standard deviation, > 0.
    n : array_like
        Group size, whole number >= 3.
    r : array_like
        Baseline-follow-up correlation in [-1, 1].
    vtype : {"LS", "LS2"}, default "LS"
        ``"LS"``: ``2(1-r)/n + g²/(2n)``; ``"LS2"``: ``J² (2(1-r)/n + d²/(2n))``.

    Returns
    -------
    EffectSizes
        ``measure="SMCR"``.

    References
    ----------
    Becker BJ. Synthesizing standardized mean-change measures. Br J Math Stat Psychol
    1988;41(2):257-278.
    Morris SB. Estimating effect sizes from pretest-posttest-control group designs. Organ
    Res Methods 2008;11(2):364-386.

    Examples
    --------
    >>> round(float(smcr(38.5, 30.6, 15.0, 20, 0.47).yi), 6)
    0.505553
    """
    check_choice("vtype", vtype, ("LS", "LS2"))
    a = _prepost(m1, m2, n, r, sd1=sd1)
    nn = a["n"]
    j = _hedges_j(nn - 1.0)
    d = (a["m1"] - a["m2"]) / a["sd1"]
    yi = j * d
    core = 2.0 * (1.0 - a["r"]) / nn
    vi = core + yi**2 / (2.0 * nn) if vtype == "LS" else j**2 * (core + d**2 / (2.0 * nn))
    return EffectSizes("SMCR", yi, vi, vtype=vtype)


def smcc(
    m1: ArrayLike,
    m2: ArrayLike,
    sd1: ArrayLike,
    sd2: ArrayLike,
    n: ArrayLike,
    r: ArrayLike,
    *,
    vtype: str = "LS",
) -> EffectSizes:
    """Standardised mean change with change-score standardisation (metafor ``"SMCC"``).

    ``g = J(n-1) (m1 - m2) / sd_change`` with ``sd_change = sqrt(sd1² + sd2² - 2 r sd1 sd2)``
    (:func:`change_sd`), for one group measured twice: ``m1`` the follow-up mean, ``m2`` the
    baseline mean (metafor's order); the change SD is symmetric in ``sd1`` and ``sd2``.

    Parameters
    ----------
    m1, m2 : array_like
        Follow-up and baseline means.
    sd1, sd2 : array_like
        Standard deviations at the two occasions, > 0.
    n : array_like
        Group size, whole number >= 3.
    r : array_like
        Correlation between the occasions in [-1, 1].
    vtype : {"LS", "LS2"}, default "LS"
        ``"LS"``: ``1/n + g²/(2n)``; ``"LS2"``: ``J² (1/n + d²/(2n))``.

    Returns
    -------
    EffectSizes
        ``measure="SMCC"``.

    Raises
    ------
    ValueError
        Bad input, or a change-score SD of 0 (``r = 1`` with ``sd1 == sd2``).

    References
    ----------
    Gibbons RD, Hedeker DR, Davis JM. Estimation of effect size from a series of experiments
    involving paired comparisons. J Educ Stat 1993;18(3):271-279.

    Examples
    --------
    >>> round(float(smcc(38.5, 30.6, 15.0, 11.6, 20, 0.47).yi), 6)
    0.541664
    """
    check_choice("vtype", vtype, ("LS", "LS2"))
    a = _prepost(m1, m2, n, r, sd1=sd1, sd2=sd2)
    sdd = _change_sd(a["sd1"], a["sd2"], a["r"])
    if np.any(sdd <= 0.0):
        idx = _first_bad(np.atleast_1d(sdd <= 0.0))
        raise ValueError(
            "the SD of change scores is 0 (r = 1 with sd1 == sd2), so no standardised change "
            f"exists; got sd1={np.atleast_1d(a['sd1'])[idx]:g}, "
            f"sd2={np.atleast_1d(a['sd2'])[idx]:g}, r={np.atleast_1d(a['r'])[idx]:g}"
            f"{_where(idx)}."
        )
    nn = a["n"]
    j = _hedges_j(nn - 1.0)
    d = (a["m1"] - a["m2"]) / sdd
    yi = j * d
    vi = 1.0 / nn + yi**2 / (2.0 * nn) if vtype == "LS" else j**2 * (1.0 / nn + d**2 / (2.0 * nn))
    return EffectSizes("SMCC", yi, vi, vtype=vtype)


# --------------------------------------------------------------------------- correlations


def zcor(r: ArrayLike, n: ArrayLike) -> EffectSizes:
    """Fisher's z-transformed correlation ``atanh(r)`` with ``vi = 1/(n - 3)`` (``"ZCOR"``).

    Parameters
    ----------
    r : array_like
        Pearson correlations in the open interval (-1, 1).
    n : array_like
        Sample sizes, whole numbers >= 4.

    Returns
    -------
    EffectSizes
        ``measure="ZCOR"``.

    References
    ----------
    Fisher RA. On the "probable error" of a coefficient of correlation deduced from a small
    sample. Metron 1921;1:3-32.

    Examples
    --------
    >>> round(float(zcor(0.5, 28).yi), 6)
    0.549306
    """
    arrs = broadcast(
        r=check_in_interval("r", r, -1.0, 1.0, closed="neither"),
        n=check_integer("n", n, minimum=4),
    )
    # arctanh rather than metafor's log((1+r)/(1-r))/2: equal in exact arithmetic and
    # accurate to the last digit for |r| near 0
    return EffectSizes("ZCOR", np.arctanh(arrs["r"]), 1.0 / (arrs["n"] - 3.0))
