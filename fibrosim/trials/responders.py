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
from fibrosim.trials._fisher import exact_power
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
_PROPORTION_METHODS = ("normal", "normal-cc", "arcsine", "fisher")


def _arm_sizes(n_c: float, ratio: float) -> tuple[int, int]:
    """Whole arm sizes ``(n_t, n_c)`` for Fisher's test; ``ratio * n_c`` must be whole too."""
    n_t = ratio * n_c
    if n_c != round(n_c) or abs(n_t - round(n_t)) > 1e-9 * max(1.0, n_t) or n_c < 1 or n_t < 1:
        raise ValueError(
            "method='fisher' needs whole arm sizes: n_per_arm and ratio * n_per_arm must be "
            f"integers >= 1; got n_per_arm = {n_c:g}, ratio * n_per_arm = {n_t:g}."
        )
    return round(n_t), round(n_c)


def _fisher_power(
    p_t: FloatArray, p_c: FloatArray, n_c: FloatArray, ratio: FloatArray, a: FloatArray, sided: int
) -> FloatArray:
    """Exact power of Fisher's test, element by element (one p-value table per arm sizes).

    One-sided power is in the direction of the true difference (as for the other methods):
    with fewer responders on treatment the arms swap roles.
    """
    b = np.broadcast_arrays(p_t, p_c, n_c, ratio, a)
    out = np.empty(b[0].shape)
    for idx in np.ndindex(out.shape):
        pt, pc, nc, r, al = (float(x[idx]) for x in b)
        nt_i, nc_i = _arm_sizes(nc, r)
        if pt >= pc:
            out[idx] = exact_power(pt, pc, nt_i, nc_i, al, sided)
        else:
            out[idx] = exact_power(pc, pt, nc_i, nt_i, al, sided)
    return out


def _proportions_power(
    p_t: FloatArray,
    p_c: FloatArray,
    n_c: FloatArray,
    ratio: FloatArray,
    a: FloatArray,
    sided: int,
    method: str,
) -> FloatArray:
    if method == "fisher":
        return _fisher_power(p_t, p_c, n_c, ratio, a, sided)
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
    method : {"normal", "normal-cc", "arcsine", "fisher"}
        ``"normal"``: z test with the pooled variance under H0 and the unpooled variance
        under H1 (R ``power.prop.test`` with ``strict=TRUE``); ``"normal-cc"``: the same with
        the continuity correction ``(1/n_t + 1/n_c) / 2`` (Fleiss et al.); ``"arcsine"``:
        Cohen's ``h = 2 asin(sqrt(p_t)) - 2 asin(sqrt(p_c))`` (R ``pwr.2p.test``);
        ``"fisher"``: exact power of Fisher's exact test (R ``fisher.test``; two-sided by
        R's rule), the binomial probability of its rejection region, for whole arm sizes.
        Small FM trials (20-40 per arm) are where the normal methods misstate the power.

    Returns
    -------
    ndarray

    References
    ----------
    Fleiss JL, Tytun A, Ury HK (1980). A simple approximation for calculating sample sizes
    for comparing independent proportions. Biometrics 36:343-346.
    Cohen J (1988). Statistical Power Analysis for the Behavioral Sciences, ch. 6.
    Fisher RA (1935). The logic of inductive inference. J R Stat Soc 98:39-82.

    Examples
    --------
    >>> float(power_two_proportions(0.5, 0.3, 100).round(4))
    0.8281
    >>> float(power_two_proportions(0.5, 0.3, 100, method="fisher").round(4))
    0.7924
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
    ``n_per_arm``.  With ``method="fisher"`` the size is the smallest whole control arm (with
    ``ratio * n`` whole) whose exact power reaches ``power``: Fisher's test is discrete, so its
    power is not monotone in n (a slightly larger trial can have less power).

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
    >>> int(sample_size_two_proportions(0.5, 0.3, method="fisher").n_per_arm)
    102
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
    if method == "fisher":
        return _fisher_sample_size(b["pt"], b["pc"], b["p"], b["a"], b["r"], sided)

    def fn(
        n: FloatArray, pt_: FloatArray, pc_: FloatArray, r_: FloatArray, a_: FloatArray
    ) -> FloatArray:
        return _proportions_power(pt_, pc_, n, r_, a_, sided, method)

    n_low = np.maximum(1.0, 1.0 / b["r"])
    args = (b["pt"], b["pc"], b["r"], b["a"])
    n = _solve_sample_size(fn, b["p"], n_low, n_low * 100.0, args, "one subject per arm")
    return _rounded_up(n, lambda n_up: fn(n_up, *args), n * (1.0 + b["r"]))


def _fisher_sample_size(
    pt: FloatArray, pc: FloatArray, target: FloatArray, a: FloatArray, r: FloatArray, sided: int
) -> SampleSize:
    """Smallest whole control arm reaching ``target`` exact power, element by element.

    The scan starts at half the normal-approximation size (Fisher's test needs more, never
    half as many) and stops at the first size that reaches the target.
    """
    shape = pt.shape
    n_out, power_out = np.empty(shape), np.empty(shape)
    for idx in np.ndindex(shape):
        pt_i, pc_i, r_i, a_i = (np.asarray(x[idx]) for x in (pt, pc, r, a))
        rough = sample_size_two_proportions(
            pt_i, pc_i, float(target[idx]), a_i, sided, ratio=r_i, method="normal"
        )
        n = max(1, int(0.5 * float(rough.n_per_arm)))
        limit = 4 * int(np.ceil(float(rough.n_per_arm))) + 100
        while True:
            if n > limit:  # pragma: no cover - the normal size is never this far off
                raise ArithmeticError("the Fisher sample-size scan did not reach the target.")
            whole = float(r_i) * n
            if abs(whole - round(whole)) <= 1e-9 * max(1.0, whole):
                power = float(_fisher_power(pt_i, pc_i, np.asarray(float(n)), r_i, a_i, sided))
                if power >= float(target[idx]):
                    break
            n += 1
        n_out[idx], power_out[idx] = n, power
    return SampleSize(n_out, n_out.copy(), power_out, n_out * (1.0 + r))


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
