"""Power and sample size for responder endpoints (two proportions), and dichotomisation.

Responder rates (>= 30 % / >= 50 % pain reduction) compared by the normal approximation with
and without continuity correction, the arcsine transformation, or Fisher's exact test (exact
power over all tables, :mod:`fibrosim.trials._fisher`); the conversion of a normal
change-score model into responder probabilities, with the efficiency lost by dichotomising.
Conventions as in :mod:`fibrosim.trials.analytic`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from fibrosim._checks import (
    FloatArray,
    as_float_array,
    broadcast,
    check_choice,
    check_in_interval,
    check_positive,
    check_probability,
)
from fibrosim.trials._ttest_core import (
    SampleSize,
    _check_alpha_sided,
    _check_power,
    _check_size_args,
    _rounded_up,
    _solve_sample_size,
    _Tabular,
    _z_power,
)

__all__ = [
    "ResponderLoss",
    "dichotomisation_loss",
    "power_two_proportions",
    "responder_probability",
    "sample_size_two_proportions",
]


# --------------------------------------------------------------------------------------------
# responder endpoints (two proportions)
# --------------------------------------------------------------------------------------------
_PROPORTION_METHODS = ("normal", "normal-cc", "arcsine")


def _proportions_power(
    p_t: FloatArray,
    p_c: FloatArray,
    n_c: FloatArray,
    ratio: FloatArray,
    a: FloatArray,
    sided: int,
    method: str,
) -> FloatArray:
    n_t = ratio * n_c
    crit = stats.norm.isf(a / sided)
    if method == "arcsine":
        h = np.abs(2.0 * np.arcsin(np.sqrt(p_t)) - 2.0 * np.arcsin(np.sqrt(p_c)))
        return _z_power(h / np.sqrt(1.0 / n_t + 1.0 / n_c), a, sided)
    pooled = (n_t * p_t + n_c * p_c) / (n_t + n_c)
    se0 = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_t + 1.0 / n_c))
    se1 = np.sqrt(p_t * (1.0 - p_t) / n_t + p_c * (1.0 - p_c) / n_c)
    diff = np.abs(p_t - p_c)
    # Yates-type correction of the observed difference (Fleiss, Tytun & Ury 1980)
    cc = 0.5 * (1.0 / n_t + 1.0 / n_c) if method == "normal-cc" else 0.0
    power = special.ndtr((diff - cc - crit * se0) / se1)
    if sided == 2:
        power = power + special.ndtr((-diff - cc - crit * se0) / se1)
    return np.asarray(power, dtype=np.float64)


def _check_proportions(
    p_t: ArrayLike, p_c: ArrayLike, alpha: ArrayLike, sided: int, ratio: ArrayLike, method: str
) -> tuple[FloatArray, FloatArray, FloatArray, int, FloatArray]:
    check_choice("method", method, _PROPORTION_METHODS)
    pt = check_probability("p_t", p_t)
    pc = check_probability("p_c", p_c)
    a, sided = _check_alpha_sided(alpha, sided)
    return pt, pc, a, sided, check_positive("ratio", ratio)


def power_two_proportions(
    p_t: ArrayLike,
    p_c: ArrayLike,
    n_per_arm: ArrayLike,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
    *,
    ratio: ArrayLike = 1.0,
    method: str = "normal",
) -> FloatArray:
    """Power of the comparison of two proportions (responder rates).

    Parameters
    ----------
    p_t, p_c : array_like
        Responder probabilities in the treatment and control arms, in (0, 1).
    n_per_arm : array_like
        Control-arm size (> 0); the treatment arm is ``ratio * n_per_arm``.
    alpha, sided, ratio
        As in :func:`fibrosim.trials.power_ttest`.
    method : {"normal", "normal-cc", "arcsine"}
        ``"normal"``: z test with the pooled variance under H0 and the unpooled variance
        under H1 (R ``power.prop.test`` with ``strict=TRUE``); ``"normal-cc"``: the same with
        the continuity correction ``(1/n_t + 1/n_c) / 2`` (Fleiss et al.); ``"arcsine"``:
        Cohen's ``h = 2 asin(sqrt(p_t)) - 2 asin(sqrt(p_c))`` (R ``pwr.2p.test``).

    Returns
    -------
    ndarray

    References
    ----------
    Fleiss JL, Tytun A, Ury HK (1980). A simple approximation for calculating sample sizes
    for comparing independent proportions. Biometrics 36:343-346.
    Cohen J (1988). Statistical Power Analysis for the Behavioral Sciences, ch. 6.

    Examples
    --------
    >>> float(power_two_proportions(0.5, 0.3, 100).round(4))
    0.8281
    """
    pt, pc, a, sided, r = _check_proportions(p_t, p_c, alpha, sided, ratio, method)
    n = check_positive("n_per_arm", n_per_arm)
    return _proportions_power(pt, pc, n, r, a, sided, method)


def sample_size_two_proportions(
    p_t: ArrayLike,
    p_c: ArrayLike,
    power: ArrayLike = 0.8,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
    *,
    ratio: ArrayLike = 1.0,
    method: str = "normal",
) -> SampleSize:
    """Control-arm size for comparing two proportions (unrounded).

    Parameters are those of :func:`power_two_proportions` with ``power`` in place of
    ``n_per_arm``.

    Returns
    -------
    SampleSize

    Raises
    ------
    ValueError
        If ``p_t == p_c``, ``power <= alpha`` or an argument is out of range.

    Examples
    --------
    >>> float(sample_size_two_proportions(0.5, 0.3, method="arcsine").n_per_arm.round(3))
    92.696
    """
    pt, pc, a, sided, r = _check_proportions(p_t, p_c, alpha, sided, ratio, method)
    same = np.broadcast_arrays(pt == pc)[0]
    if np.any(same):
        raise ValueError(
            "`p_t` must differ from `p_c` to solve for a sample size; they are equal"
            f"{'' if np.ndim(same) == 0 else ' at index ' + str(tuple(np.argwhere(same)[0]))}."
        )
    p = _check_power(power, a)
    b = broadcast(pt=pt, pc=pc, p=p, a=a, r=r)

    def fn(
        n: FloatArray, pt_: FloatArray, pc_: FloatArray, r_: FloatArray, a_: FloatArray
    ) -> FloatArray:
        return _proportions_power(pt_, pc_, n, r_, a_, sided, method)

    n_low = np.maximum(1.0, 1.0 / b["r"])
    args = (b["pt"], b["pc"], b["r"], b["a"])
    n = _solve_sample_size(fn, b["p"], n_low, n_low * 100.0, args, "one subject per arm")
    return _rounded_up(n, lambda n_up: fn(n_up, *args), n * (1.0 + b["r"]))


def responder_probability(
    mean_change: ArrayLike,
    sd_change: ArrayLike,
    baseline: ArrayLike,
    reduction: ArrayLike = 0.3,
) -> FloatArray:
    """Probability of a >= ``reduction`` relative improvement under a normal change model.

    A patient with baseline score ``b`` (pain NRS, FIQ; lower is better) responds when the
    change ``c ~ N(mean_change, sd_change^2)`` satisfies ``c <= -reduction * b``, so
    ``P = Phi((-reduction * b - mean_change) / sd_change)``.

    Parameters
    ----------
    mean_change : array_like
        Mean change from baseline (negative = improvement).
    sd_change : array_like
        SD of the change (> 0).
    baseline : array_like
        Baseline score (> 0).
    reduction : array_like, default 0.3
        Relative reduction defining a responder, in (0, 1] (0.3 and 0.5 are the IMMPACT
        moderate and substantial thresholds).

    Returns
    -------
    ndarray

    References
    ----------
    Dworkin RH et al. (2008). Interpreting the clinical importance of treatment outcomes in
    chronic pain clinical trials: IMMPACT recommendations. J Pain 9:105-121.

    Examples
    --------
    >>> float(responder_probability(-1.5, 2.0, 6.5, 0.3).round(4))
    0.411
    """
    m = as_float_array("mean_change", mean_change)
    s = check_positive("sd_change", sd_change)
    b = check_positive("baseline", baseline)
    r = check_in_interval("reduction", reduction, 0.0, 1.0, closed="right")
    return np.asarray(special.ndtr((-r * b - m) / s), dtype=np.float64)


@dataclass(frozen=True, slots=True, repr=False)
class ResponderLoss(_Tabular):
    """What dichotomising a normal change score at a responder threshold costs.

    Attributes
    ----------
    p_t, p_c : ndarray
        Responder probabilities in the treatment and control arms.
    n_continuous : ndarray
        Per-arm size to detect the mean difference with the continuous change (z test).
    n_responder : ndarray
        Per-arm size to detect ``p_t - p_c`` (normal method, z test).
    efficiency : ndarray
        ``n_continuous / n_responder`` (< 1: the responder analysis needs more patients).
    """

    p_t: FloatArray
    p_c: FloatArray
    n_continuous: FloatArray
    n_responder: FloatArray
    efficiency: FloatArray


def dichotomisation_loss(
    delta: ArrayLike,
    mean_change_c: ArrayLike,
    sd_change: ArrayLike,
    baseline: ArrayLike,
    reduction: ArrayLike = 0.3,
    power: ArrayLike = 0.8,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
) -> ResponderLoss:
    """Sample sizes of the continuous and the responder analysis of the same trial.

    Both arms' changes are normal with SD ``sd_change``; the control mean change is
    ``mean_change_c`` and the treatment's ``mean_change_c + delta``.  Both sizes use the
    normal approximation, so their ratio isolates the information lost by dichotomising.

    Parameters
    ----------
    delta : array_like
        Treatment effect on the change (negative = benefit on a lower-is-better scale; != 0).
    mean_change_c : array_like
        Mean change in the control (placebo / sham) arm.
    sd_change, baseline, reduction
        As in :func:`responder_probability`.
    power, alpha, sided
        As in :func:`fibrosim.trials.sample_size_ttest`.

    Returns
    -------
    ResponderLoss

    References
    ----------
    Altman DG, Royston P (2006). The cost of dichotomising continuous variables. BMJ 332:1080.

    Examples
    --------
    >>> loss = dichotomisation_loss(-1.0, -1.0, 2.0, 6.5)
    >>> float(loss.efficiency.round(3))
    0.619
    """
    d, s, p, a, sided = _check_size_args(delta, "sd_change", sd_change, power, alpha, sided)
    p_c = responder_probability(mean_change_c, s, baseline, reduction)
    p_t = responder_probability(np.asarray(mean_change_c) + d, s, baseline, reduction)
    z_a, z_b = stats.norm.isf(a / sided), stats.norm.isf(1.0 - p)
    n_cont = 2.0 * ((z_a + z_b) * s / d) ** 2
    pooled = 0.5 * (p_t + p_c)
    n_resp = (
        (
            z_a * np.sqrt(2.0 * pooled * (1 - pooled))
            + z_b * np.sqrt(p_t * (1 - p_t) + p_c * (1 - p_c))
        )
        / (p_t - p_c)
    ) ** 2
    b = broadcast(
        pt=p_t,
        pc=p_c,
        nc=np.asarray(n_cont, dtype=np.float64),
        nr=np.asarray(n_resp, dtype=np.float64),
    )
    return ResponderLoss(b["pt"], b["pc"], b["nc"], b["nr"], b["nc"] / b["nr"])
