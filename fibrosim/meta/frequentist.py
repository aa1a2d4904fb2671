"""Frequentist random-effects meta-analysis with metafor parity, batched over many analyses.

:func:`random_effects` pools effect sizes ``yi`` with sampling variances ``vi`` under the
normal-normal model ``yi ~ N(mu, vi + tau²)``, like metafor's ``rma(yi, vi, method=, test=)`` for
the intercept-only model.  A leading batch axis holds many meta-analyses, solved in one vectorised
pass; ragged study counts are NaN-padded.  The tau² estimators live in :mod:`fibrosim.meta._tau2`
(moment and Paule-Mandel estimators, numpy) and :mod:`fibrosim.meta._tau2_ml` (ML/REML, a compiled
row solver), the pooling sums in :mod:`fibrosim.meta._pooling` (compiled); this module validates
input, builds tests and intervals, issues warnings and wraps the numbers in
:class:`RandomEffectsResult`.

Differences from metafor 3.8-1, all deliberate:

* iterative estimators are solved to ~1e-14 relative (metafor stops at 1e-5 by default);
* the Q-profile upper bracket is adaptive (metafor caps it at ``max(100, 10 tau²)`` unless
  ``control=list(tau2.max=)`` is raised, and then prints ">100");
* ``vi <= 0`` is an error for every estimator (metafor stops only for DL, HS and PM, and then
  drops Q, I² and H²): a zero variance leaves the inverse-variance weights undefined;
* ML/REML return the global maximiser even when the likelihood has two local maxima (zero
  and an interior point); if the iteration ever fails to converge, a bounded 1-D maximisation
  of the (restricted) likelihood takes over and a ``ConvergenceWarning`` says so (metafor stops
  with an error, or sets tau² = 0 after its ``ll0check``).
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from fibrosim._checks import as_float_array, check_choice, check_level
from fibrosim.meta import _pooling, _tau2, _tau2_ml
from fibrosim.meta._re_result import (
    FloatArray,
    RandomEffectsResult,
    _flatten,
    _unravel,
)
from fibrosim.warnings import ConvergenceWarning, FragileEstimateWarning

__all__ = ["RandomEffectsResult", "random_effects"]

METHODS = ("FE", "EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM", "SJIT")
TESTS = ("z", "knha")
#: metafor warns from this ratio of largest to smallest sampling variance on.
_VI_RATIO_WARN = 1e7
#: metafor sets the Knapp-Hartung scale s² to 0 when the weighted RSS is below machine epsilon
#: (the RSS is dimensionless, so the threshold does not depend on the scale of yi).
_KNHA_RSS_ZERO = float(np.finfo(np.float64).eps)

_MSG_RATIO = (
    "ratio of largest to smallest sampling variance is 1e7 or more; the weights are "
    "dominated by a few studies and the estimates may be unstable"
)
_MSG_K1 = "k = 1: tau² is set to 0 and the prediction interval equals the confidence interval"
_MSG_K1_KNHA = "; test='knha' needs k >= 2, so 'z' is used (as metafor)"
_MSG_K2 = "k = 2 with test='knha': the t(1) interval is extremely wide and unstable"
_MSG_KNHA0 = (
    "the Knapp-Hartung scale is 0 (all effects equal the pooled estimate), so the SE is "
    "0 and the confidence interval has zero width"
)


def _clean_single(yi: ArrayLike, vi: ArrayLike) -> tuple[FloatArray, FloatArray] | None:
    """``(yi, vi)`` if they are one clean analysis, else None.

    Clean: contiguous float64 1-D arrays of one length >= 1, ``yi`` finite and ``vi`` finite
    and > 0; then nothing else needs checking.  One meta-analysis is the common call and full
    validation would cost as much as the fit, so this case is recognised by attribute tests
    and one compiled pass; anything else goes through :func:`_check_data`.
    """
    if (
        isinstance(yi, np.ndarray)
        and isinstance(vi, np.ndarray)
        and type(vi) is np.ndarray
        and yi.ndim == 1
        and yi.dtype == np.float64
        and vi.dtype == np.float64
        and yi.shape == vi.shape
        and yi.shape[0] > 0
        and yi.flags.c_contiguous
        and vi.flags.c_contiguous
        and _pooling.finite_positive(yi, vi)
    ):
        return yi, vi
    return None


def _check_data(yi: ArrayLike, vi: ArrayLike) -> tuple[FloatArray, FloatArray, bool]:
    """Validate ``yi``/``vi`` once: same shape, NaN only as shared padding, vi > 0.

    Also returns whether there is no padding at all (no NaN).
    """
    if (
        isinstance(yi, np.ndarray)
        and isinstance(vi, np.ndarray)
        and yi.dtype == np.float64
        and vi.dtype == np.float64
        and yi.ndim >= 1
        and yi.shape == vi.shape
        and yi.shape[-1] > 0
        and np.isfinite(yi).all()
        and 0.0 < np.minimum.reduce(vi, axis=None)
        and np.maximum.reduce(vi, axis=None) < np.inf
    ):
        # fast path for clean float arrays (no padding): O(k) passes, no copies; min and max
        # (ufunc reductions: ndarray.min/max without the wrapper) propagate NaN, so a NaN in
        # vi fails the comparisons and takes the full checks.  (A finite-sum test of yi would
        # be cheaper but warns when finite values overflow the sum.)
        return yi, vi, True
    y = as_float_array("yi", yi, allow_nan=True)
    v = as_float_array("vi", vi, allow_nan=True)
    if y.ndim == 0 or v.ndim == 0:
        raise ValueError(
            "`yi` and `vi` must be arrays with the studies on the last axis; got shapes "
            f"{y.shape} and {v.shape}."
        )
    if y.shape != v.shape:
        raise ValueError(f"`yi` and `vi` must have the same shape; got {y.shape} and {v.shape}.")
    if y.shape[-1] == 0:
        raise ValueError("`yi` and `vi` hold no studies (last axis has length 0).")
    ny = np.isnan(y)
    nv = np.isnan(v)
    if np.any(ny != nv):
        idx = tuple(int(i) for i in np.argwhere(ny != nv)[0])
        where = idx[0] if len(idx) == 1 else idx
        raise ValueError(
            "`yi` and `vi` must be NaN in the same cells (NaN marks padding of ragged "
            f"batches); got yi = {y[idx]} and vi = {v[idx]} at index {where}."
        )
    with np.errstate(invalid="ignore"):
        nonpos = v <= 0.0
    if np.any(nonpos):
        idx = tuple(int(i) for i in np.argwhere(nonpos)[0])
        where = idx[0] if len(idx) == 1 else idx
        raise ValueError(
            f"`vi` must be > 0 (sampling variances); got {v[idx]} at index {where}. A zero or "
            "negative variance leaves the inverse-variance weights, Q and I² undefined."
        )
    padded = bool(np.any(ny))
    if padded:
        empty = np.all(ny, axis=-1)
        if np.any(empty):
            idx = tuple(int(i) for i in np.argwhere(np.atleast_1d(empty))[0])
            raise ValueError(
                "every meta-analysis needs at least one study; the analysis at batch index "
                f"{idx[0] if len(idx) == 1 else idx} is all NaN."
            )
    return y, v, not padded


def _frozen(a: FloatArray) -> FloatArray:
    """A read-only copy, so a result never changes when the caller's array does."""
    # ndarray.copy(order="K") is np.array(a, copy=True) for float64 input, with less overhead
    out = a.copy(order="K") if a.dtype == np.float64 else np.array(a, dtype=np.float64)
    out.setflags(write=False)
    return out


def _warn_batch(mask: NDArray[np.bool_], shape: tuple[int, ...], what: str, cls: type) -> None:
    n_bad = int(np.count_nonzero(mask))
    if n_bad == 0:
        return
    n = mask.size
    if n == 1:
        msg = what
    else:
        first = _unravel(int(np.flatnonzero(mask)[0]), shape)
        msg = f"{what} ({n_bad} of {n} analyses; first at batch index {first})"
    # stacklevel: _warn_batch <- (_warn_fallback) <- random_effects <- caller
    warnings.warn(msg, cls, stacklevel=4 if cls is ConvergenceWarning else 3)


def _msg_fallback(method: str) -> str:
    return (
        f"{method} iteration did not converge to a maximum at least as good as tau² = 0; "
        "the estimate comes from a bounded 1-D maximisation of the likelihood instead"
    )


def _warn_fallback(fallback: NDArray[np.bool_], shape: tuple[int, ...], method: str) -> None:
    _warn_batch(fallback, shape, _msg_fallback(method), ConvergenceWarning)


def _estimate_tau2(
    method: str, y: FloatArray, v: FloatArray, m: FloatArray, k: FloatArray
) -> _tau2.Tau2Fit:
    if method == "DL":
        return _tau2.tau2_dl(y, v, m, k)
    if method == "HE":
        return _tau2.tau2_he(y, v, m, k)
    if method == "HS":
        return _tau2.tau2_hs(y, v, m, k)
    if method == "SJ":
        return _tau2.tau2_sj(y, v, m, k)
    if method in ("ML", "REML"):
        # compiled row by row in O(K) memory: no blocks needed
        return _tau2_ml.tau2_ml(y, v, m, k, reml=method == "REML")
    # PM, EB and SJIT share the fixed point Q_gen(tau²) = k - 1 (see _tau2.tau2_pm).
    return _tau2.in_blocks(_tau2.tau2_pm, y, v, m, k)


def _t_quantile(p: float, df: FloatArray) -> FloatArray:
    """Upper quantile ``t_{df}(p)`` evaluated once per distinct df (few in practice)."""
    if df.size <= 16:
        return np.asarray(special.stdtrit(df, p), dtype=np.float64)
    uniq, inv = np.unique(df, return_inverse=True)
    return np.asarray(special.stdtrit(uniq, p), dtype=np.float64)[inv.reshape(df.shape)]


def _div(a: float, b: float) -> float:
    """``a / b`` with IEEE semantics for ``b == 0`` (as the array path under ``errstate``)."""
    if b != 0.0:
        return a / b
    if a != a or a == 0.0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


@functools.lru_cache(maxsize=64)
def _crit(level: float, df: float | None) -> float:
    """Two-sided critical value: normal (``df`` None) or t with ``df`` degrees of freedom."""
    p = 1.0 - (1.0 - level) / 2.0
    if df is None:
        return float(special.ndtri(p))
    return float(_t_quantile(p, np.asarray(df)))


def _single(
    y: FloatArray, v: FloatArray, method: str, test: str, level: float
) -> RandomEffectsResult:
    """:func:`random_effects` for one analysis without padding: the same operations, on floats.

    Per-call overhead dominates a single meta-analysis, so the tau² fit and the pooling sums run
    in the compiled row kernels the batch uses (:mod:`fibrosim.meta._tau2_ml`,
    :mod:`fibrosim.meta._pooling`) and the rest on Python floats with the same IEEE operations
    as the array path, so one analysis and a batch give the same bits (tests check it).
    """
    kk = y.shape[0]
    k = float(kk)
    single = kk < 2
    if single:
        msg = _MSG_K1 + (_MSG_K1_KNHA if test == "knha" else "")
        warnings.warn(msg, FragileEstimateWarning, stacklevel=3)
    if test == "knha" and kk == 2:
        warnings.warn(_MSG_K2, FragileEstimateWarning, stacklevel=3)
    dl = _tau2.tau2_dl_1d(y, v, k) if method == "DL" and not single else None
    fallback = False
    if method == "FE" or single:
        tau2, se_tau2 = 0.0, math.nan
    elif dl is not None:
        tau2, se_tau2 = dl
    elif method in ("ML", "REML"):
        tau2, se_tau2, fallback = _tau2_ml.tau2_ml_one(y, v, reml=method == "REML")
    else:
        fit = _estimate_tau2(method, y[None, :], v[None, :], np.ones((1, kk)), np.array([k]))
        tau2, se_tau2, fallback = float(fit.tau2[0]), float(fit.se_tau2[0]), bool(fit.fallback[0])
    s1, mu, rss, q, s1_0, s2_0, vmax, vmin = _pooling.pool_one(y, v, tau2)
    if vmax >= _VI_RATIO_WARN * vmin:
        warnings.warn(_MSG_RATIO, FragileEstimateWarning, stacklevel=3)
    if fallback:
        warnings.warn(_msg_fallback(method), ConvergenceWarning, stacklevel=3)

    se = 1.0 / math.sqrt(s1)
    dfk = k - 1.0
    use_t = test == "knha" and not single
    if use_t:
        s2w = 0.0 if rss <= _KNHA_RSS_ZERO else rss / dfk
        se = math.sqrt(s2w / s1)
        if s2w == 0.0:
            warnings.warn(_MSG_KNHA0, FragileEstimateWarning, stacklevel=3)
        df, crit = dfk, _crit(level, max(dfk, 1.0))
    else:
        df, crit = math.inf, _crit(level, None)
    zval = _div(mu, se)
    tail = -abs(zval)
    if use_t:
        pval = 2.0 * float(special.stdtr(max(dfk, 1.0), tail))
    else:
        pval = 2.0 * float(special.ndtr(tail))
    half = crit * se
    half_pi = crit * math.sqrt(se * se + tau2)

    # Cochran's Q and I², H² (inverse-variance weights)
    q = max(q, 0.0)
    if single:
        q_p, i2, h2 = 1.0, 0.0, 1.0
    else:
        q_p = float(special.chdtrc(dfk, q))
        if method == "FE":
            i2 = max(0.0, 100.0 * (q - dfk) / q) if q > 0 else 0.0
            h2 = q / dfk
        else:
            s2 = _div(dfk, s1_0 - s2_0 / s1_0)
            i2 = _div(100.0 * tau2, s2 + tau2)
            h2 = _div(tau2, s2) + 1.0
    # one array for all quantities, rows in the order of _re_result.STATS
    values = np.array(
        [
            *(mu, se, zval, pval, mu - half, mu + half, mu - half_pi, mu + half_pi),
            *(tau2, se_tau2, i2, h2, q, q_p, df),
        ]
    )
    values.setflags(write=False)
    return RandomEffectsResult(
        values=values,
        k=np.array(kk, dtype=np.int64),
        method=method,
        test=test,
        level=level,
        yi=_frozen(y),
        vi=_frozen(v),
    )


def random_effects(
    yi: ArrayLike,
    vi: ArrayLike,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
) -> RandomEffectsResult:
    """Random-effects (or fixed/equal-effects) meta-analysis of one or many sets of studies.

    Parameters
    ----------
    yi : array_like, shape (..., k)
        Effect sizes; the last axis holds the studies, leading axes are a batch of independent
        meta-analyses.  Ragged batches are padded with NaN (in the same cells of ``vi``).
    vi : array_like, shape (..., k)
        Sampling variances (> 0), same shape as ``yi``.
    method : str
        tau² estimator: "REML" (default), "ML", "DL" (DerSimonian-Laird), "HE" (Hedges), "HS"
        (Hunter-Schmidt), "SJ" (Sidik-Jonkman), "PM" (Paule-Mandel), "EB" (empirical Bayes),
        "SJIT" (iterated Sidik-Jonkman), or "FE"/"EE" (tau² = 0).
    test : str
        "z" (normal) or "knha" (Hartung-Knapp-Sidik-Jonkman: scaled SE and t with k-1 df; the
        prediction interval then also uses t(k-1), as metafor).
    level : float
        Confidence level of the CI and PI, in (0, 1).

    Returns
    -------
    RandomEffectsResult
        Every numeric field has the batch shape ``yi.shape[:-1]``.

    Raises
    ------
    ValueError
        If ``yi``/``vi`` differ in shape, hold ±Inf, are NaN in different cells, if ``vi <= 0``,
        if an analysis has no study, or if ``method``/``test``/``level`` is not allowed.  The
        message names the argument, the value and its index.

    Warns
    -----
    FragileEstimateWarning
        k = 1 (tau² := 0; "knha" falls back to "z", as metafor), k = 2 with "knha", all
        effects equal under "knha" (SE = 0), or a variance ratio max/min >= 1e7.
    ConvergenceWarning
        ML/REML needed the bounded 1-D fallback (the estimate is still the maximiser).

    Notes
    -----
    Iterative estimators are solved to a relative step of 1e-14 (metafor's defaults stop at
    1e-5 for Fisher scoring and ~1.2e-4 for ``uniroot``).  ML and REML return the global
    maximiser on ``[0, ∞)``: the likelihood can have a local maximum at tau² = 0 and another
    inside, and every local maximum is bracketed and compared (metafor's ``ll0check`` compares
    only the one it converged to with zero).  tau² = 0 is a valid estimate and does not warn;
    :meth:`RandomEffectsResult.tau2_ci` shows how little it may mean.

    ``vi <= 0`` is rejected for every method: metafor stops for DL, HS and PM and drops Q, I²
    and H² for the others, because the inverse-variance weights do not exist.

    PM, EB and SJIT all solve ``Q_gen(tau²) = k - 1`` (metafor's EB Fisher scoring and SJIT
    iteration converge to the Paule-Mandel root), so with tight tolerances they coincide; they
    differ in their name only.  metafor 3.8-1's "DLIT" iteration is not offered: it uses k - 1
    in place of tr(PV) and oscillates when the variances are equal.

    Under "FE" the prediction interval equals the confidence interval (tau² = 0); metafor's
    ``predict`` leaves it empty.

    References
    ----------
    DerSimonian R, Laird N (1986). Control Clin Trials 7:177-188.
    Hedges LV (1983). A random effects model for effect sizes. Psychol Bull 93:388-395.
    Hunter JE, Schmidt FL (2004). Methods of Meta-Analysis, 2nd ed. Sage.
    Morris CN (1983). Parametric empirical Bayes inference. J Am Stat Assoc 78:47-55.
    Paule RC, Mandel J (1982). J Res Natl Bur Stand 87:377-385.
    Sidik K, Jonkman JN (2005). Stat Med 24:1243-1256 (SJ estimator);
    (2002) Stat Med 21:3153-3159 (Knapp-Hartung test).
    Hartung J, Knapp G (2001). Stat Med 20:3875-3889.
    Viechtbauer W (2005). J Educ Behav Stat 30:261-293.
    Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in
    meta-analysis. Stat Med 26:37-52.
    Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package.
    J Stat Softw 36(3).

    Examples
    --------
    >>> import numpy as np
    >>> r = random_effects([3.0, 2.0, 5.0, 4.0, 6.0], np.ones(5), method="REML")
    >>> round(float(r.tau2), 6), round(float(r.estimate), 6), round(float(r.i2), 6)
    (1.5, 4.0, 60.0)
    """
    method = check_choice("method", method, METHODS)
    test = check_choice("test", test, TESTS)
    level = check_level("level", level)
    if method == "EE":
        method = "FE"
    clean_one = _clean_single(yi, vi)
    if clean_one is not None:
        return _single(*clean_one, method, test, level)
    yarr, varr, clean = _check_data(yi, vi)
    if clean and yarr.ndim == 1 and yarr.flags.c_contiguous and varr.flags.c_contiguous:
        return _single(yarr, varr, method, test, level)
    shape = tuple(yarr.shape[:-1])
    y, v, m, k = _flatten(yarr, varr)
    n = y.shape[0]

    single = k < 2
    any_single = bool(single.any())
    _warn_batch(
        single,
        shape,
        _MSG_K1 + (_MSG_K1_KNHA if test == "knha" else ""),
        FragileEstimateWarning,
    )
    if test == "knha":
        _warn_batch(k == 2, shape, _MSG_K2, FragileEstimateWarning)

    # tau² for analyses with k >= 2; k = 1 gets tau² = 0 (no information, as metafor).
    if method == "FE":
        tau2 = np.zeros(n)
        se_tau2 = np.full(n, np.nan)
    elif not any_single:
        fit = _estimate_tau2(method, y, v, m, k)
        tau2, se_tau2 = fit.tau2, fit.se_tau2
        _warn_fallback(fit.fallback, shape, method)
    else:
        tau2 = np.zeros(n)
        se_tau2 = np.full(n, np.nan)
        rows = np.flatnonzero(~single)
        if rows.size:
            fit = _estimate_tau2(method, y[rows], v[rows], m[rows], k[rows])
            tau2[rows], se_tau2[rows] = fit.tau2, fit.se_tau2
            fallback = np.zeros(n, dtype=bool)
            fallback[rows] = fit.fallback
            _warn_fallback(fallback, shape, method)

    # Pooling sums and Cochran's Q, one compiled pass per analysis (the kernel of _single).
    stats = _pooling.pool_rows(y, v, k, tau2)
    vmax, vmin = stats[:, _pooling.VMAX], stats[:, _pooling.VMIN]
    _warn_batch(vmax >= _VI_RATIO_WARN * vmin, shape, _MSG_RATIO, FragileEstimateWarning)
    s1, mu = stats[:, _pooling.S1], stats[:, _pooling.MU]
    se = 1.0 / np.sqrt(s1)
    dfk = k - 1.0
    alpha = 1.0 - level
    z_crit = float(special.ndtri(1.0 - alpha / 2.0))
    use_t = ~single if test == "knha" else None
    if use_t is not None:
        rss = stats[:, _pooling.RSS]
        with np.errstate(divide="ignore", invalid="ignore"):
            s2w = np.where(rss <= _KNHA_RSS_ZERO, 0.0, rss / dfk)
            se = np.where(use_t, np.sqrt(s2w / s1), se)
        _warn_batch(use_t & (s2w == 0.0), shape, _MSG_KNHA0, FragileEstimateWarning)
        df = np.where(use_t, dfk, np.inf)
        crit = np.where(use_t, _t_quantile(1.0 - alpha / 2.0, np.maximum(dfk, 1.0)), z_crit)
    else:
        df = np.full(n, np.inf)
        crit = np.full(n, z_crit)
    with np.errstate(divide="ignore", invalid="ignore"):
        zval = mu / se
    tail = -np.abs(zval)
    if use_t is None:
        pval = 2.0 * special.ndtr(tail)
    else:
        pval = np.where(
            use_t, 2.0 * special.stdtr(np.maximum(dfk, 1.0), tail), 2.0 * special.ndtr(tail)
        )
    half = crit * se
    half_pi = crit * np.sqrt(se * se + tau2)

    # Cochran's Q and I², H² (inverse-variance weights).
    s1_0 = stats[:, _pooling.S1_0]
    q = np.maximum(stats[:, _pooling.Q], 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        q_p = special.chdtrc(dfk, q)
        if method == "FE":
            i2 = np.where(q > 0, np.maximum(0.0, 100.0 * (q - dfk) / q), 0.0)
            h2 = q / dfk
        else:
            s2 = dfk / (s1_0 - stats[:, _pooling.S2_0] / s1_0)
            i2 = 100.0 * tau2 / (s2 + tau2)
            h2 = tau2 / s2 + 1.0
    if any_single:
        q_p = np.where(single, 1.0, q_p)
        i2 = np.where(single, 0.0, i2)
        h2 = np.where(single, 1.0, h2)

    stat_rows = (
        *(mu, se, zval, pval, mu - half, mu + half, mu - half_pi, mu + half_pi),
        *(tau2, se_tau2, i2, h2, q, q_p, df),
    )
    values = np.empty((len(stat_rows), n))
    for i, row in enumerate(stat_rows):  # rows in the order of _re_result.STATS
        values[i] = row
    values = values.reshape((len(stat_rows), *shape))
    values.setflags(write=False)
    return RandomEffectsResult(
        values=values,
        k=k.astype(np.int64).reshape(shape),
        method=method,
        test=test,
        level=level,
        yi=_frozen(yarr),
        vi=_frozen(varr),
    )
