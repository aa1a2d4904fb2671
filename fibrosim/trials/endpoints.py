"""Power and sample size for FM trial designs beyond the parallel two-sample t test.

The AB/BA crossover (t test on period differences, within-subject SD), ANCOVA with a baseline
covariate (Borm's shortcut and Shieh's exact power), and dropout inflation.  Responder
endpoints are in :mod:`fibrosim.trials.responders`.  Conventions as in
:mod:`fibrosim.trials.analytic`.
"""

from __future__ import annotations

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
)
from fibrosim.trials._ttest_core import (
    SampleSize,
    _check_alpha_sided,
    _check_delta_nonzero,
    _check_n,
    _check_power,
    _check_ratio_arms,
    _one_sample_size,
    _rounded_up,
    _solve_sample_size,
    _t_power,
    _two_sample_ncp_df,
    _z_quantile_sum,
)

__all__ = [
    "crossover_sd_within",
    "inflate_for_dropout",
    "power_ancova",
    "power_crossover",
    "sample_size_ancova",
    "sample_size_crossover",
]


# --------------------------------------------------------------------------------------------
# AB/BA crossover
# --------------------------------------------------------------------------------------------
def crossover_sd_within(sd: ArrayLike, icc: ArrayLike) -> FloatArray:
    """Within-subject SD from a between-subject (total) SD and the intraclass correlation.

    With ``sd^2 = sd_between^2 + sd_within^2`` and ``icc = sd_between^2 / sd^2``, the
    within-subject SD is ``sd * sqrt(1 - icc)``; a standardised mean difference ``d`` from a
    parallel trial becomes ``d / sqrt(1 - icc)`` on the within-subject scale.

    Parameters
    ----------
    sd : array_like
        Total (between-subject) SD of a single measurement (> 0).
    icc : array_like
        Intraclass correlation of repeated measurements, in [0, 1).

    Returns
    -------
    ndarray

    Examples
    --------
    >>> float(crossover_sd_within(2.0, 0.75))
    1.0
    """
    s = check_positive("sd", sd)
    r = check_in_interval("icc", icc, 0.0, 1.0, closed="left")
    return np.asarray(s * np.sqrt(1.0 - r), dtype=np.float64)


def power_crossover(
    delta: ArrayLike,
    sd_within: ArrayLike,
    n_total: ArrayLike,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
) -> FloatArray:
    """Power of the AB/BA crossover (t test on period differences, period-adjusted).

    The period difference of a subject has SD ``sqrt(2) * sd_within``; the treatment effect is
    half the difference of the two sequences' mean period differences, with standard error
    ``sd_within * sqrt(2 / n_total)`` for equal sequences and ``n_total - 2`` degrees of
    freedom.  Carry-over is assumed absent.

    Parameters
    ----------
    delta : array_like
        Treatment effect (treatment minus control) within subjects.
    sd_within : array_like
        Within-subject SD (> 0); see :func:`crossover_sd_within` to convert from a
        between-subject SD and an ICC.
    n_total : array_like
        Number of subjects, split equally between the sequences (>= 4).
    alpha, sided
        As in :func:`power_ttest`.

    Returns
    -------
    ndarray

    References
    ----------
    Senn S (2002). Cross-over Trials in Clinical Research, 2nd ed., ch. 3. Wiley.
    Jones B, Kenward MG (2014). Design and Analysis of Cross-Over Trials, 3rd ed., ch. 2.

    Examples
    --------
    >>> float(power_crossover(0.5, 1.0, 66).round(4))
    0.8076
    """
    d = as_float_array("delta", delta)
    s = check_positive("sd_within", sd_within)
    n = _check_n("n_total", n_total, minimum=4.0)
    a, sided = _check_alpha_sided(alpha, sided)
    return _crossover_power(d, s, n, a, sided)


def _crossover_power(
    d: FloatArray, s: FloatArray, n: FloatArray, a: FloatArray, sided: int
) -> FloatArray:
    """AB/BA crossover power: effect SE ``s * sqrt(2 / n)``, ``n - 2`` df."""
    return _t_power(np.abs(d) * np.sqrt(n / 2.0) / s, n - 2.0, a, sided)


def sample_size_crossover(
    delta: ArrayLike,
    sd_within: ArrayLike,
    power: ArrayLike = 0.8,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
) -> SampleSize:
    """Number of subjects of an AB/BA crossover (unrounded); ``n_per_arm`` holds the total.

    Parameters are those of :func:`power_crossover` with ``power`` in place of ``n_total``.

    Returns
    -------
    SampleSize
        ``n_per_arm`` and ``n_total`` both equal the number of subjects (round up to an even
        number for equal sequences).

    Examples
    --------
    >>> float(sample_size_crossover(0.5, 1.0).n_per_arm.round(2))
    64.77
    """
    # the solver's standard error is sqrt(2) * sd_within / sqrt(n), with n - 2 df
    design = (2.0, float(np.sqrt(2.0)), 4.0)
    return _one_sample_size(
        delta, "sd_within", sd_within, power, alpha, sided, design, _crossover_power
    )


# --------------------------------------------------------------------------------------------
# ANCOVA with one normal baseline covariate
# --------------------------------------------------------------------------------------------
def _tanh_sinh_nodes(step: float, half_width: float = 3.2) -> tuple[FloatArray, FloatArray]:
    """Tanh-sinh (double-exponential) nodes and weights on (0, 1), weights summing to 1.

    The double-exponential rule absorbs the endpoint singularities of the integrand below
    (the covariate-imbalance quantile is not smooth at the ends for small samples).
    """
    t = np.arange(-half_width, half_width + step / 2, step)
    x = 0.5 * np.pi * np.sinh(t)
    u = special.expit(2.0 * x)
    w = np.pi * np.cosh(t) * u * (1.0 - u)  # du/dt
    return u, w / np.sum(w)


# step 1/5 agrees with step 1/16 to < 1e-12 in power over n = 2..1e5 (tests/test_analytic.py)
_TS_U, _TS_W = _tanh_sinh_nodes(1.0 / 5.0)


def _ancova_exact_power(
    ncp_full: FloatArray,
    n_all: FloatArray,
    a: FloatArray,
    sided: int,
    nodes: tuple[FloatArray, FloatArray] = (_TS_U, _TS_W),
) -> FloatArray:
    """Shieh's exact ANCOVA power: the t power averaged over the covariate imbalance.

    Given the covariate, the adjusted treatment t statistic is noncentral t with N - 3 df and
    noncentrality ``ncp_full * sqrt(B)``; with a normal covariate and random allocation
    ``B = 1 / (1 + W^2 / (N - 2))`` with ``W ~ t(N - 2)`` (the standardised baseline
    imbalance), i.e. ``B ~ Beta((N - 2) / 2, 1 / 2)``.  The u-quantile of ``B`` is taken from
    the upper u/2 quantile of ``|W|``, accurate in the far tail.
    """
    u, w = nodes
    shape = np.broadcast_shapes(np.shape(ncp_full), np.shape(n_all), np.shape(a))
    ncp_full, n_all, a = (np.broadcast_to(v, shape)[..., None] for v in (ncp_full, n_all, a))
    df_w = n_all - 2.0
    imbalance = stats.t.isf(u / 2.0, df_w)
    b = 1.0 / (1.0 + imbalance**2 / df_w)
    power = _t_power(ncp_full * np.sqrt(b), n_all - 3.0, a, sided)
    return np.asarray(np.sum(power * w, axis=-1), dtype=np.float64)


def _ancova_power_core(
    d: FloatArray,
    s: FloatArray,
    n: FloatArray,
    rho: FloatArray,
    a: FloatArray,
    sided: int,
    r: FloatArray,
    method: str,
) -> FloatArray:
    sd_resid = s * np.sqrt(1.0 - rho**2)
    ncp, df = _two_sample_ncp_df(d, sd_resid, n, r, None)
    if method == "shortcut":
        return _t_power(ncp, df, a, sided)
    return _ancova_exact_power(ncp, n * (1.0 + r), a, sided)


def _check_ancova(
    delta: ArrayLike,
    sd: ArrayLike,
    rho: ArrayLike,
    alpha: ArrayLike,
    sided: int,
    ratio: ArrayLike,
    method: str,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, int, FloatArray]:
    check_choice("method", method, ("exact", "shortcut"))
    d = as_float_array("delta", delta)
    s = check_positive("sd", sd)
    r_ = check_in_interval("rho", rho, -1.0, 1.0, closed="neither")
    a, sided = _check_alpha_sided(alpha, sided)
    ratio_ = check_positive("ratio", ratio)
    return d, s, r_, a, sided, ratio_


def power_ancova(
    delta: ArrayLike,
    sd: ArrayLike,
    n_per_arm: ArrayLike,
    rho: ArrayLike,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
    *,
    ratio: ArrayLike = 1.0,
    method: str = "exact",
) -> FloatArray:
    """Power of ANCOVA adjusting a two-arm comparison for a baseline covariate.

    Parameters
    ----------
    delta : array_like
        Treatment effect on the outcome.
    sd : array_like
        Unadjusted outcome SD (> 0).
    n_per_arm : array_like
        Control-arm size (>= 2).
    rho : array_like
        Correlation of outcome and baseline covariate, in (-1, 1).
    alpha, sided, ratio
        As in :func:`power_ttest`.
    method : {"exact", "shortcut"}
        ``"exact"``: Shieh's power for a normally distributed covariate, averaging the
        conditional noncentral t power (N - 3 df) over the distribution of the covariate
        imbalance by tanh-sinh quadrature.  ``"shortcut"``: the t-test power with the residual
        SD ``sd * sqrt(1 - rho^2)`` (Borm et al.), which ignores the lost degree of freedom and
        the covariate imbalance and so slightly overstates power in small trials.

    Returns
    -------
    ndarray

    References
    ----------
    Borm GF, Fransen J, Lemmens WAJG (2007). A simple sample size formula for analysis of
    covariance in randomized clinical trials. J Clin Epidemiol 60:1234-1238.
    Shieh G (2020). Power analysis and sample size planning in ANCOVA designs.
    Psychometrika 85:101-120 (PMC8225521), section 3.

    Examples
    --------
    >>> float(power_ancova(0.5, 1.0, 20, 0.6, method="shortcut").round(4))
    0.4867
    """
    d, s, r_, a, sided, ratio_ = _check_ancova(delta, sd, rho, alpha, sided, ratio, method)
    n = _check_n("n_per_arm", n_per_arm)
    _check_ratio_arms(n, ratio_)
    return _ancova_power_core(d, s, n, r_, a, sided, ratio_, method)


def sample_size_ancova(
    delta: ArrayLike,
    sd: ArrayLike,
    rho: ArrayLike,
    power: ArrayLike = 0.8,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
    *,
    ratio: ArrayLike = 1.0,
    method: str = "exact",
) -> SampleSize:
    """Control-arm sample size for ANCOVA with a baseline covariate (unrounded).

    With ``method="shortcut"`` this is the t-test sample size with the residual SD, about
    ``(1 - rho^2)`` times the unadjusted one (Borm et al. 2007); ``"exact"`` inverts Shieh's
    exact power.  Parameters are those of :func:`power_ancova`.

    Returns
    -------
    SampleSize

    References
    ----------
    Borm GF, Fransen J, Lemmens WAJG (2007). J Clin Epidemiol 60:1234-1238.
    Shieh G (2020). Psychometrika 85:101-120 (PMC8225521).

    Examples
    --------
    >>> float(sample_size_ancova(0.5, 1.0, 0.5, method="shortcut").n_per_arm.round(2))
    48.07
    """
    d, s, r_, a, sided, ratio_ = _check_ancova(delta, sd, rho, alpha, sided, ratio, method)
    d = _check_delta_nonzero(d)
    p = _check_power(power, a)
    b = broadcast(d=d, s=s, rho=r_, p=p, a=a, r=ratio_)

    def fn(
        n: FloatArray,
        d_: FloatArray,
        s_: FloatArray,
        rho_: FloatArray,
        a_: FloatArray,
        r: FloatArray,
    ) -> FloatArray:
        return _ancova_power_core(d_, s_, n, rho_, a_, sided, r, method)

    sd_resid = b["s"] * np.sqrt(1.0 - b["rho"] ** 2)
    z = _z_quantile_sum(b["a"], b["p"], sided)
    n_z = (z * sd_resid / b["d"]) ** 2 * (1.0 + 1.0 / b["r"])
    n_low = np.maximum(2.0, 2.0 / b["r"])
    args = (b["d"], b["s"], b["rho"], b["a"], b["r"])
    high = np.maximum(n_z * 1.2 + 6.0, 1.5 * n_low)
    n = _solve_sample_size(fn, b["p"], n_low, high, args, "2 subjects per arm")
    return _rounded_up(n, lambda n_up: fn(n_up, *args), n * (1.0 + b["r"]))


def inflate_for_dropout(n: ArrayLike, dropout: ArrayLike) -> FloatArray:
    """Sample size to randomise so that ``n`` remain after dropout: ``n / (1 - dropout)``.

    Parameters
    ----------
    n : array_like
        Evaluable sample size needed (> 0).
    dropout : array_like
        Expected dropout fraction, in [0, 1).

    Returns
    -------
    ndarray
        Unrounded; round up for the number to randomise.

    Examples
    --------
    >>> float(inflate_for_dropout(64, 0.2))
    80.0
    """
    nn = check_positive("n", n)
    q = check_in_interval("dropout", dropout, 0.0, 1.0, closed="left")
    return np.asarray(nn / (1.0 - q), dtype=np.float64)
