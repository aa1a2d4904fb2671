"""Model diagnostics and small-study / publication-bias methods for meta-analyses.

Leave-one-out analysis, case-deletion influence measures, best linear unbiased predictions of
the study effects, Egger's regression test, Begg's rank correlation test and trim-and-fill.
Every function follows metafor's definition (``leave1out``, ``influence.rma.uni``,
``blup.rma.uni``, ``regtest``, ``ranktest``, ``trimfill``) so the numbers agree with it.

Case deletion never loops over studies: the k fits "without study i" are one batched fit in
which study i is masked out of row i (a ``(k, k)`` NaN-padded batch for
:func:`fibrosim.meta.frequentist.random_effects`, a ``(k, k)`` mask for the meta-regression
core).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from fibrosim._checks import as_float_array, check_choice, check_level
from fibrosim.meta._mixed import (
    METHODS,
    TESTS,
    MixedFit,
    fit_mixed,
    residual_heterogeneity,
)

FloatArray = NDArray[np.float64]

__all__ = [
    "BlupResult",
    "EggerResult",
    "InfluenceResult",
    "LeaveOneOutResult",
    "RankTestResult",
    "TrimFillResult",
    "blup",
    "egger_test",
    "influence",
    "leave_one_out",
    "rank_test",
    "trim_and_fill",
]


def _table(df: pd.DataFrame) -> str:
    return df.to_string(float_format=lambda x: f"{x:.4g}")


def _check_yv(yi: ArrayLike, vi: ArrayLike, *, min_k: int = 2) -> tuple[FloatArray, FloatArray]:
    """One meta-analysis: finite 1-D ``yi`` and ``vi > 0`` of the same length, ``k >= min_k``."""
    y = as_float_array("yi", yi)
    v = as_float_array("vi", vi)
    if y.ndim != 1 or y.shape != v.shape:
        raise ValueError(
            f"`yi` and `vi` must be 1-D arrays of the same length; got shapes {y.shape} and "
            f"{v.shape}."
        )
    if np.any(v <= 0):
        i = int(np.argmax(v <= 0))
        raise ValueError(f"`vi` must be > 0; got {v[i]} at index {i}.")
    if len(y) < min_k:
        raise ValueError(f"this diagnostic needs k >= {min_k} studies; got k = {len(y)}.")
    return y, v


def _design(X: ArrayLike | None, k: int, intercept: bool) -> FloatArray:
    if X is None:
        return np.ones((k, 1))
    arr = as_float_array("X", X)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != k:
        raise ValueError(
            f"`X` must have one row per study: got shape {arr.shape} for k = {k} studies."
        )
    if intercept:
        arr = np.concatenate([np.ones((k, 1)), arr], axis=1)
    if np.linalg.matrix_rank(arr) < arr.shape[1]:
        raise ValueError(f"`X` is rank deficient ({arr.shape[1]} columns with the intercept).")
    return arr


def _options(method: str, test: str, level: float) -> tuple[str, str, float]:
    return (
        check_choice("method", method, METHODS),
        check_choice("test", test, TESTS),
        check_level("level", level),
    )


# ---------------------------------------------------------------------------------------------
# leave-one-out
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LeaveOneOutResult:
    """Random-effects summaries with each study left out in turn (metafor's ``leave1out``).

    Attributes
    ----------
    estimate, se, stat, pval, ci_low, ci_high : ndarray, shape (k,)
        Pooled estimate without study i, its SE, Wald z (t for "knha") statistic, p-value and CI.
    q, q_pvalue : ndarray, shape (k,)
        Cochran's Q of the remaining k - 1 studies and its p-value.
    tau2, i2, h2 : ndarray, shape (k,)
        Heterogeneity of the remaining studies.
    method, test : str
    level : float
    """

    estimate: FloatArray
    se: FloatArray
    stat: FloatArray
    pval: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    q: FloatArray
    q_pvalue: FloatArray
    tau2: FloatArray
    i2: FloatArray
    h2: FloatArray
    method: str
    test: str
    level: float

    def to_dataframe(self) -> pd.DataFrame:
        """One row per omitted study."""
        names = ("estimate", "se", "stat", "pval", "ci_low", "ci_high", "q", "q_pvalue", "tau2")
        cols = {n: getattr(self, n) for n in (*names, "i2", "h2")}
        return pd.DataFrame(cols, index=pd.RangeIndex(len(self.estimate), name="omitted"))

    def __repr__(self) -> str:
        return (
            f"LeaveOneOutResult ({self.method}, test={self.test!r})\n{_table(self.to_dataframe())}"
        )


def leave_one_out(
    yi: ArrayLike, vi: ArrayLike, *, method: str = "REML", test: str = "z", level: float = 0.95
) -> LeaveOneOutResult:
    """Refit the random-effects model k times, leaving out one study each time.

    All k fits are one batched call of :func:`fibrosim.meta.frequentist.random_effects` on a
    ``(k, k)`` array whose row i has study i replaced by NaN padding.

    Parameters
    ----------
    yi, vi : array_like, shape (k,)
        Effect sizes and sampling variances (k >= 2).
    method, test, level
        As in :func:`fibrosim.meta.frequentist.random_effects`.

    Returns
    -------
    LeaveOneOutResult

    References
    ----------
    Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for meta-analysis.
    Res Synth Methods 1:112-125.

    Examples
    --------
    >>> import numpy as np
    >>> from fibrosim.meta.diagnostics import leave_one_out
    >>> leave_one_out([3.0, 2.0, 5.0, 4.0, 6.0], np.ones(5)).estimate
    array([4.25, 4.5 , 3.75, 4.  , 3.5 ])
    """
    from fibrosim.meta.frequentist import random_effects

    method, test, level = _options(method, test, level)
    y, v = _check_yv(yi, vi)
    k = len(y)
    out = np.eye(k, dtype=bool)
    res = random_effects(
        np.where(out, np.nan, y[None, :]),
        np.where(out, np.nan, v[None, :]),
        method=method,
        test=test,
        level=level,
    )

    def arr(a: Any) -> FloatArray:
        return np.asarray(a, dtype=np.float64)

    return LeaveOneOutResult(
        estimate=arr(res.estimate),
        se=arr(res.se),
        stat=arr(res.zval),
        pval=arr(res.pval),
        ci_low=arr(res.ci_low),
        ci_high=arr(res.ci_high),
        q=arr(res.q),
        q_pvalue=arr(res.q_pvalue),
        tau2=arr(res.tau2),
        i2=arr(res.i2),
        h2=arr(res.h2),
        method=method,
        test=test,
        level=level,
    )


# ---------------------------------------------------------------------------------------------
# influence
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class InfluenceResult:
    """Case-deletion diagnostics (metafor's ``influence.rma.uni``).

    Attributes
    ----------
    rstudent : ndarray, shape (k,)
        Externally studentised residuals: ``(y_i - x_i' b_(-i)) / sqrt(s2w_(-i) (v_i +
        tau2_(-i)) + x_i' V(b_(-i)) x_i)``.
    dffits : ndarray, shape (k,)
        ``(x_i' b - x_i' b_(-i)) / sqrt(s2w_(-i) h_i (tau2_(-i) + v_i))``.
    cook_d : ndarray, shape (k,)
        Cook's distance ``(b - b_(-i))' V(b)^-1 (b - b_(-i))`` over all coefficients.
    cov_r : ndarray, shape (k,)
        Covariance ratio ``det V(b_(-i)) / det V(b)``.
    tau2_del, qe_del : ndarray, shape (k,)
        tau² and the (residual) heterogeneity statistic with study i removed.
    hat : ndarray, shape (k,)
        Leverages, the diagonal of ``X (X'WX)^-1 X'W``.
    weight : ndarray, shape (k,)
        Weight of each study in percent.
    dfbetas : ndarray, shape (k, p)
        ``(b - b_(-i)) / sqrt(s2w_(-i) diag((X'W_(-i)X)^-1))`` with ``W_(-i)`` built from
        ``tau2_(-i)`` over all k studies.
    is_influential : ndarray of bool, shape (k,)
        metafor's flag: ``|dffits| > 3 sqrt(p/(k-p))``, ``pchisq(cook_d, p) > 0.5``,
        ``hat > 3p/k`` or any ``|dfbetas| > 1``.
    method, test : str
    """

    rstudent: FloatArray
    dffits: FloatArray
    cook_d: FloatArray
    cov_r: FloatArray
    tau2_del: FloatArray
    qe_del: FloatArray
    hat: FloatArray
    weight: FloatArray
    dfbetas: FloatArray
    is_influential: NDArray[np.bool_]
    method: str
    test: str

    def to_dataframe(self) -> pd.DataFrame:
        """One row per study (dfbetas as ``dfbetas_<j>`` columns)."""
        cols: dict[str, Any] = {
            n: getattr(self, n)
            for n in (
                "rstudent",
                "dffits",
                "cook_d",
                "cov_r",
                "tau2_del",
                "qe_del",
                "hat",
                "weight",
            )
        }
        for j in range(self.dfbetas.shape[1]):
            cols[f"dfbetas_{j}"] = self.dfbetas[:, j]
        cols["is_influential"] = self.is_influential
        return pd.DataFrame(cols, index=pd.RangeIndex(len(self.hat), name="study"))

    def __repr__(self) -> str:
        return f"InfluenceResult ({self.method}, test={self.test!r})\n{_table(self.to_dataframe())}"


def influence(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    X: ArrayLike | None = None,
    intercept: bool = True,
    method: str = "REML",
    test: str = "z",
) -> InfluenceResult:
    """Outlier and influence diagnostics of a random-effects model or meta-regression.

    Parameters
    ----------
    yi, vi : array_like, shape (k,)
        Effect sizes and sampling variances (k >= 2).
    X : array_like, shape (k, q), optional
        Moderators (the intercept is added when ``intercept``); None fits the intercept-only
        model.
    intercept : bool
        Add an intercept column to ``X``.
    method, test
        As in :func:`fibrosim.meta.regression.meta_regression`.

    Returns
    -------
    InfluenceResult

    References
    ----------
    Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for meta-analysis.
    Res Synth Methods 1:112-125.  Belsley DA, Kuh E, Welsch RE (1980). Regression Diagnostics.

    Examples
    --------
    >>> import numpy as np
    >>> from fibrosim.meta.diagnostics import influence
    >>> np.round(influence([3.0, 2.0, 5.0, 4.0, 6.0], np.ones(5)).cook_d, 6)
    array([0.125, 0.5  , 0.125, 0.   , 0.5  ])
    """
    method, test, _ = _options(method, test, 0.95)
    y, v = _check_yv(yi, vi)
    k = len(y)
    Xa = _design(X, k, intercept)
    p = Xa.shape[1]
    full_mask = np.ones(k, dtype=bool)
    full = fit_mixed(y, v, Xa, full_mask, method, test)
    # the k deletion fits in one batch: row i masks study i
    keep = ~np.eye(k, dtype=bool)
    yb = np.broadcast_to(y, (k, k))
    vbat = np.broadcast_to(v, (k, k))
    Xb = np.broadcast_to(Xa, (k, k, p))
    dele: MixedFit = fit_mixed(yb, vbat, Xb, keep, method, test)
    qe_del, _, _, _ = residual_heterogeneity(yb, vbat, Xb, keep, dele.tau2, method)

    w = 1.0 / (v + full.tau2)
    XtW = Xa.T * w
    hat = np.einsum("ij,ji->i", Xa @ np.linalg.inv(XtW @ Xa), XtW)
    hat = np.where(hat > 1 - 10 * np.finfo(float).eps, 1.0, hat)
    weight = 100 * w / np.sum(w)

    pred_full = Xa @ full.beta
    delpred = np.einsum("ij,ij->i", Xa, dele.beta)
    vdelpred = np.einsum("ij,ijl,il->i", Xa, dele.vb, Xa)
    dffits = (pred_full - delpred) / np.sqrt(dele.s2w * hat * (dele.tau2 + v))
    # dfbetas use (X'W X)^-1 over all k studies with W from tau2_(-i), as metafor
    w_del = 1.0 / (v[None, :] + dele.tau2[:, None])
    vb_del = np.linalg.inv(np.einsum("ji,kj,jl->kil", Xa, w_del, Xa))
    dfb = full.beta[None, :] - dele.beta
    dfbetas = dfb / np.sqrt(dele.s2w[:, None] * np.diagonal(vb_del, axis1=1, axis2=2))
    cook = np.einsum("ki,ij,kj->k", dfb, np.linalg.inv(full.vb), dfb)
    cov_r = np.linalg.det(dele.vb) / np.linalg.det(full.vb)
    resid = y - delpred
    resid = np.where(np.abs(resid) < 100 * np.finfo(float).eps, 0.0, resid)
    se_resid = np.sqrt(v * dele.s2w + vdelpred + dele.tau2 * dele.s2w)
    rstudent = resid / se_resid
    with np.errstate(divide="ignore", invalid="ignore"):
        flag = (
            (np.abs(dffits) > 3 * np.sqrt(p / (k - p)))
            | (stats.chi2.cdf(cook, p) > 0.5)
            | (hat > 3 * p / k)
            | np.any(np.abs(dfbetas) > 1, axis=1)
        )
    return InfluenceResult(
        rstudent=rstudent,
        dffits=dffits,
        cook_d=cook,
        cov_r=cov_r,
        tau2_del=dele.tau2,
        qe_del=qe_del,
        hat=hat,
        weight=weight,
        dfbetas=dfbetas,
        is_influential=np.asarray(flag, dtype=bool),
        method=method,
        test=test,
    )


# ---------------------------------------------------------------------------------------------
# BLUPs
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BlupResult:
    """Best linear unbiased predictions of the study-specific true effects.

    Attributes
    ----------
    pred, se : ndarray, shape (k,)
        ``lambda_i y_i + (1 - lambda_i) x_i' b`` with ``lambda_i = tau2 / (tau2 + v_i)``, and
        its standard error ``sqrt(lambda_i v_i + (1 - lambda_i)^2 x_i' V(b) x_i)``.
    pi_low, pi_high : ndarray, shape (k,)
        Prediction intervals (normal, or t(k - p) with "knha").
    level : float
    """

    pred: FloatArray
    se: FloatArray
    pi_low: FloatArray
    pi_high: FloatArray
    level: float

    def to_dataframe(self) -> pd.DataFrame:
        """One row per study."""
        return pd.DataFrame(
            {"pred": self.pred, "se": self.se, "pi_low": self.pi_low, "pi_high": self.pi_high},
            index=pd.RangeIndex(len(self.pred), name="study"),
        )

    def __repr__(self) -> str:
        return f"BlupResult (level {self.level})\n{_table(self.to_dataframe())}"


def blup(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    X: ArrayLike | None = None,
    intercept: bool = True,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
) -> BlupResult:
    """BLUPs (empirical Bayes estimates) of the study effects (metafor's ``blup.rma.uni``).

    Parameters
    ----------
    yi, vi : array_like, shape (k,)
        Effect sizes and sampling variances (k >= 2).
    X : array_like, shape (k, q), optional
        Moderators (None: intercept-only model).
    intercept : bool
        Add an intercept column to ``X``.
    method, test, level
        As in :func:`fibrosim.meta.regression.meta_regression`.

    Returns
    -------
    BlupResult

    References
    ----------
    Raudenbush SW, Bryk AS (1985). Empirical Bayes meta-analysis. J Educ Stat 10:75-98.
    Robinson GK (1991). That BLUP is a good thing. Stat Sci 6:15-32.

    Examples
    --------
    >>> import numpy as np
    >>> from fibrosim.meta.diagnostics import blup
    >>> np.round(blup([3.0, 2.0, 5.0, 4.0, 6.0], np.ones(5)).pred, 6)
    array([3.4, 2.8, 4.6, 4. , 5.2])
    """
    method, test, level = _options(method, test, level)
    y, v = _check_yv(yi, vi)
    k = len(y)
    Xa = _design(X, k, intercept)
    fit = fit_mixed(y, v, Xa, np.ones(k, dtype=bool), method, test)
    lam = fit.tau2 / (fit.tau2 + v)
    xb = Xa @ fit.beta
    pred = lam * y + (1 - lam) * xb
    se = np.sqrt(lam * v + (1 - lam) ** 2 * np.einsum("ij,jl,il->i", Xa, fit.vb, Xa))
    if test == "knha":
        crit = float(stats.t.isf((1 - level) / 2, k - Xa.shape[1]))
    else:
        crit = float(stats.norm.isf((1 - level) / 2))
    return BlupResult(
        pred=pred, se=se, pi_low=pred - crit * se, pi_high=pred + crit * se, level=level
    )


# ---------------------------------------------------------------------------------------------
# small-study effects
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EggerResult:
    """Regression test for funnel-plot asymmetry (metafor's ``regtest``).

    Attributes
    ----------
    stat, pval : float
        z (``model="rma"``, test "z") or t statistic of the predictor's coefficient, and its
        two-sided p-value.
    df : float
        Degrees of freedom of the t test (``inf`` for z).
    slope : float
        Coefficient of the predictor.
    limit_estimate, limit_ci_low, limit_ci_high : float
        The intercept, i.e. the estimate as the standard error (or variance) goes to 0, with its
        confidence interval.
    model, predictor : str
    """

    stat: float
    pval: float
    df: float
    slope: float
    limit_estimate: float
    limit_ci_low: float
    limit_ci_high: float
    model: str
    predictor: str

    def to_dataframe(self) -> pd.DataFrame:
        """A one-row table."""
        names = ("stat", "pval", "df", "slope", "limit_estimate", "limit_ci_low", "limit_ci_high")
        return pd.DataFrame({n: [getattr(self, n)] for n in names})

    def __repr__(self) -> str:
        kind = "t" if np.isfinite(self.df) else "z"
        return (
            f"EggerResult (model={self.model!r}, predictor={self.predictor!r})\n"
            f"test for funnel plot asymmetry: {kind} = {self.stat:.4f}, p = {self.pval:.4g}"
            + (f", df = {self.df:g}" if np.isfinite(self.df) else "")
            + f"\nlimit estimate (as the predictor -> 0): {self.limit_estimate:.4f} "
            f"[{self.limit_ci_low:.4f}, {self.limit_ci_high:.4f}]"
        )


def egger_test(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    model: str = "rma",
    predictor: str = "sei",
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
) -> EggerResult:
    """Egger's regression test for funnel-plot asymmetry.

    Parameters
    ----------
    yi, vi : array_like, shape (k,)
        Effect sizes and sampling variances (k >= 3).
    model : {"rma", "lm"}
        ``rma``: mixed-effects meta-regression of yi on the predictor (Wald z test, or t with
        ``test="knha"``); ``lm``: weighted least squares with weights 1/vi and a free
        multiplicative dispersion (the classical Egger test, t with k - 2 df).
    predictor : {"sei", "vi"}
        Standard error (Egger) or sampling variance (Moreno et al.) as the predictor.
    method, test, level
        tau² estimator and test for ``model="rma"``; ``level`` for the limit estimate's CI.

    Returns
    -------
    EggerResult

    References
    ----------
    Egger M, Davey Smith G, Schneider M, Minder C (1997). Bias in meta-analysis detected by a
    simple, graphical test. BMJ 315:629-634.  Sterne JAC, Egger M (2005). Regression methods to
    detect publication and other bias in meta-analysis. In: Publication Bias in Meta-Analysis.
    Moreno SG et al. (2009). BMC Med Res Methodol 9:2.

    Examples
    --------
    >>> import numpy as np
    >>> from fibrosim.meta.diagnostics import egger_test
    >>> res = egger_test([0.1, 0.3, 0.5, 0.2, 0.8], [0.01, 0.04, 0.09, 0.02, 0.16], model="lm")
    >>> res.df
    3.0
    """
    model = check_choice("model", model, ("rma", "lm"))
    predictor = check_choice("predictor", predictor, ("sei", "vi"))
    method, test, level = _options(method, test, level)
    y, v = _check_yv(yi, vi, min_k=3)
    k = len(y)
    x = np.sqrt(v) if predictor == "sei" else v
    Xa = np.column_stack([np.ones(k), x])
    if np.linalg.matrix_rank(Xa) < 2:
        raise ValueError(
            f"`vi` must not be constant for Egger's test: the predictor {predictor!r} would "
            "duplicate the intercept."
        )
    mask = np.ones(k, dtype=bool)
    if model == "rma":
        if method not in ("FE", "EE") and k < 3:  # pragma: no cover - guarded by min_k
            raise ValueError("Egger's test needs k >= 3.")
        fit = fit_mixed(y, v, Xa, mask, method, test)
        use_t = test == "knha"
    else:
        # weighted lm with free dispersion = the fixed-effect fit with the Knapp-Hartung scale
        fit = fit_mixed(y, v, Xa, mask, "FE", "knha")
        use_t = True
    se = np.sqrt(np.diagonal(fit.vb))
    stat = float(fit.beta[1] / se[1])
    df = float(k - 2) if use_t else float("inf")
    if use_t:
        pval = float(2 * stats.t.sf(abs(stat), df))
        crit = float(stats.t.isf((1 - level) / 2, df))
    else:
        pval = float(2 * stats.norm.sf(abs(stat)))
        crit = float(stats.norm.isf((1 - level) / 2))
    b0 = float(fit.beta[0])
    return EggerResult(
        stat=stat,
        pval=pval,
        df=df,
        slope=float(fit.beta[1]),
        limit_estimate=b0,
        limit_ci_low=b0 - crit * float(se[0]),
        limit_ci_high=b0 + crit * float(se[0]),
        model=model,
        predictor=predictor,
    )


@dataclass(frozen=True, slots=True)
class RankTestResult:
    """Begg and Mazumdar's rank correlation test (metafor's ``ranktest``).

    Attributes
    ----------
    tau : float
        Kendall's tau-b between the standardised effects and the sampling variances.
    pval : float
        Two-sided p-value: exact permutation distribution without ties, normal approximation
        with tie-corrected variance otherwise (as R's ``cor.test``).
    exact : bool
        Whether the exact distribution was used.
    """

    tau: float
    pval: float
    exact: bool

    def to_dataframe(self) -> pd.DataFrame:
        """A one-row table."""
        return pd.DataFrame({"tau": [self.tau], "pval": [self.pval], "exact": [self.exact]})

    def __repr__(self) -> str:
        kind = "exact" if self.exact else "normal approximation"
        return f"RankTestResult: Kendall's tau = {self.tau:.4f}, p = {self.pval:.4g} ({kind})"


def rank_test(yi: ArrayLike, vi: ArrayLike) -> RankTestResult:
    """Rank correlation test for funnel-plot asymmetry (Begg and Mazumdar 1994).

    Parameters
    ----------
    yi, vi : array_like, shape (k,)
        Effect sizes and sampling variances (k >= 3).

    Returns
    -------
    RankTestResult

    References
    ----------
    Begg CB, Mazumdar M (1994). Operating characteristics of a rank correlation test for
    publication bias. Biometrics 50:1088-1101.

    Examples
    --------
    >>> from fibrosim.meta.diagnostics import rank_test
    >>> round(rank_test([0.1, 0.3, 0.5, 0.2], [0.01, 0.04, 0.09, 0.02]).tau, 3)
    1.0
    """
    y, v = _check_yv(yi, vi, min_k=3)
    w = 1.0 / v
    theta = np.sum(w * y) / np.sum(w)
    y_star = (y - theta) / np.sqrt(v - 1.0 / np.sum(w))
    ties = min(len(np.unique(y_star)), len(np.unique(v))) < len(y)
    res = stats.kendalltau(y_star, v, method="asymptotic" if ties else "exact")
    return RankTestResult(tau=float(res.statistic), pval=float(res.pvalue), exact=not ties)


# ---------------------------------------------------------------------------------------------
# trim and fill
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TrimFillResult:
    """Trim-and-fill analysis (Duval and Tweedie; metafor's ``trimfill``).

    Attributes
    ----------
    k0 : int
        Estimated number of missing studies.
    se_k0 : float
        Its standard error.
    side : {"left", "right"}
        Side of the funnel plot on which studies are imputed.
    estimator : {"L0", "R0"}
    p_k0 : float
        p-value of the test k0 = 0 (R0 only; NaN for L0).
    yi, vi : ndarray, shape (k + k0,)
        Observed studies followed by the filled ones (mirror images ``2 mu - y`` around the
        trimmed estimate).
    filled : ndarray of bool, shape (k + k0,)
        True for imputed studies.
    fit : RandomEffectsResult
        The model refitted to the filled data.
    """

    k0: int
    se_k0: float
    side: str
    estimator: str
    p_k0: float
    yi: FloatArray
    vi: FloatArray
    filled: NDArray[np.bool_]
    fit: Any

    def to_dataframe(self) -> pd.DataFrame:
        """Observed and filled studies."""
        return pd.DataFrame({"yi": self.yi, "vi": self.vi, "filled": self.filled})

    def __repr__(self) -> str:
        return (
            f"TrimFillResult ({self.estimator}): k0 = {self.k0} (SE {self.se_k0:.4g}) on the "
            f"{self.side} side\nfilled estimate {float(self.fit.estimate):.4f} "
            f"[{float(self.fit.ci_low):.4f}, {float(self.fit.ci_high):.4f}], "
            f"tau² = {float(self.fit.tau2):.4g}"
        )


def _first_ranks(a: FloatArray) -> FloatArray:
    """Ranks 1..n with ties broken by position (R's ``rank(ties.method = "first")``)."""
    ranks = np.empty(len(a))
    ranks[np.argsort(a, kind="stable")] = np.arange(1, len(a) + 1)
    return ranks


def trim_and_fill(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    estimator: str = "L0",
    side: str | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    maxiter: int = 100,
) -> TrimFillResult:
    """Trim-and-fill: estimate and impute studies missing from one side of the funnel plot.

    Parameters
    ----------
    yi, vi : array_like, shape (k,)
        Effect sizes and sampling variances (k >= 2).
    estimator : {"L0", "R0"}
        Duval and Tweedie's estimator of the number of missing studies.
    side : {"left", "right"}, optional
        Side on which studies are missing; by default the opposite of the sign of the slope of
        yi on sqrt(vi) in a meta-regression with ``method`` (metafor's rule: a negative slope
        means studies are missing on the right).
    method, test, level
        As in :func:`fibrosim.meta.frequentist.random_effects` (trimming and the final fit).
    maxiter : int
        Maximum number of trim iterations.

    Returns
    -------
    TrimFillResult

    Raises
    ------
    RuntimeError
        If k0 has not stabilised after ``maxiter`` iterations.

    References
    ----------
    Duval S, Tweedie R (2000). Trim and fill: a simple funnel-plot-based method of testing and
    adjusting for publication bias in meta-analysis. Biometrics 56:455-463.  Duval S, Tweedie R
    (2000). A nonparametric "trim and fill" method of accounting for publication bias in
    meta-analysis. J Am Stat Assoc 95:89-98.

    Examples
    --------
    >>> import numpy as np
    >>> from fibrosim.meta.diagnostics import trim_and_fill
    >>> res = trim_and_fill([0.1, 0.3, 0.5, 0.2, 0.8, 0.7], [0.01, 0.04, 0.09, 0.02, 0.16, 0.1])
    >>> res.side
    'left'
    """
    from fibrosim.meta.frequentist import random_effects

    estimator = check_choice("estimator", estimator, ("L0", "R0"))
    if side is not None:
        side = check_choice("side", side, ("left", "right"))
    method, test, level = _options(method, test, level)
    y, v = _check_yv(yi, vi)
    k = len(y)
    if side is None:
        slope_fit = fit_mixed(
            y, v, np.column_stack([np.ones(k), np.sqrt(v)]), np.ones(k, dtype=bool), method, "z"
        )
        side = "right" if slope_fit.beta[1] < 0 else "left"
    sign = -1.0 if side == "right" else 1.0
    order = np.argsort(sign * y, kind="stable")
    ys = sign * y[order]
    vs = v[order]
    ones = np.ones((k, 1))
    k0 = 0
    k0_prev = -1
    beta = 0.0
    se_k0 = 0.0
    for _ in range(maxiter):
        if k0 == k0_prev:
            break
        k0_prev = k0
        keep = np.arange(k) < k - k0
        beta = float(fit_mixed(ys, vs, ones, keep, method, "z").beta[0])
        centred = ys - beta
        signed = np.sign(centred) * _first_ranks(np.abs(centred))
        if estimator == "R0":
            neg = -signed[signed < 0]
            k0_raw = float(k - (np.max(neg) if neg.size else 0.0) - 1)
            se_k0 = float(np.sqrt(2 * max(0.0, k0_raw) + 2))
        else:
            s_r = float(np.sum(signed[signed > 0]))
            k0_raw = (4 * s_r - k * (k + 1)) / (2 * k - 1)
            var_sr = (
                k * (k + 1) * (2 * k + 1)
                + 10 * k0_raw**3
                + 27 * k0_raw**2
                + 17 * k0_raw
                - 18 * k * k0_raw**2
                - 18 * k * k0_raw
                + 6 * k**2 * k0_raw
            ) / 24
            se_k0 = float(4 * np.sqrt(max(var_sr, 0.0)) / (2 * k - 1))
        # R's round() rounds half to even, as np.round does
        k0 = int(max(0.0, float(np.round(k0_raw))))
        se_k0 = max(0.0, se_k0)
    else:
        if k0 != k0_prev:
            raise RuntimeError(
                f"trim and fill did not converge: k0 still changing after {maxiter} iterations."
            )
    mirrored = sign * (2 * beta - ys[k - k0 :])
    y_fill = np.concatenate([y, mirrored])
    v_fill = np.concatenate([v, vs[k - k0 :]])
    filled = np.concatenate([np.zeros(k, dtype=bool), np.ones(k0, dtype=bool)])
    fit = random_effects(y_fill, v_fill, method=method, test=test, level=level)
    p_k0 = float(0.5 ** (k0 + 1)) if estimator == "R0" else float("nan")
    return TrimFillResult(
        k0=k0,
        se_k0=se_k0,
        side=side,
        estimator=estimator,
        p_k0=p_k0,
        yi=y_fill,
        vi=v_fill,
        filled=filled,
        fit=fit,
    )
