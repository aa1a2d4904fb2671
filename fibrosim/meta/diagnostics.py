"""Model diagnostics for meta-analyses: leave-one-out, influence and BLUPs.

Leave-one-out analysis, case-deletion influence measures and best linear unbiased predictions
of the study effects.  Every function follows metafor's definition (``leave1out``,
``influence.rma.uni``, ``blup.rma.uni``) so the numbers agree with it.  The small-study /
publication-bias methods live in :mod:`fibrosim.meta.publication_bias` and are re-exported
here.

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

from fibrosim._checks import as_float_array
from fibrosim.meta._inputs import check_options, check_yv
from fibrosim.meta._mixed import MixedFit, fit_mixed, residual_heterogeneity
from fibrosim.meta.publication_bias import (
    EggerResult,
    RankTestResult,
    TrimFillResult,
    egger_test,
    rank_test,
    trim_and_fill,
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


def _full_fit(
    yi: ArrayLike, vi: ArrayLike, X: ArrayLike | None, intercept: bool, method: str, test: str
) -> tuple[FloatArray, FloatArray, FloatArray, MixedFit]:
    """Checked ``y``, ``v``, the design and the mixed-effects fit to all k studies."""
    y, v = check_yv(yi, vi)
    k = len(y)
    Xa = _design(X, k, intercept)
    return y, v, Xa, fit_mixed(y, v, Xa, np.ones(k, dtype=bool), method, test)


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

    method, test, level = check_options(method, test, level)
    y, v = check_yv(yi, vi)
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
    method, test, _ = check_options(method, test, 0.95)
    y, v, Xa, full = _full_fit(yi, vi, X, intercept, method, test)
    k, p = Xa.shape
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
    method, test, level = check_options(method, test, level)
    y, v, Xa, fit = _full_fit(yi, vi, X, intercept, method, test)
    k = len(y)
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
