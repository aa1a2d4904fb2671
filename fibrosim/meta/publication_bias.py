"""Small-study effects and publication bias: Egger's test, the rank test and trim-and-fill.

Egger's regression test, Begg and Mazumdar's rank correlation test and Duval and Tweedie's
trim-and-fill, each following metafor's definition (``regtest``, ``ranktest``, ``trimfill``) so
the numbers agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from fibrosim._checks import check_choice
from fibrosim.meta._inputs import check_options, check_yv
from fibrosim.meta._mixed import fit_mixed

FloatArray = NDArray[np.float64]

__all__ = [
    "EggerResult",
    "RankTestResult",
    "TrimFillResult",
    "egger_test",
    "rank_test",
    "trim_and_fill",
]


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
    >>> from fibrosim.meta.publication_bias import egger_test
    >>> res = egger_test([0.1, 0.3, 0.5, 0.2, 0.8], [0.01, 0.04, 0.09, 0.02, 0.16], model="lm")
    >>> res.df
    3.0
    """
    model = check_choice("model", model, ("rma", "lm"))
    predictor = check_choice("predictor", predictor, ("sei", "vi"))
    method, test, level = check_options(method, test, level)
    y, v = check_yv(yi, vi, min_k=3)
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
    >>> from fibrosim.meta.publication_bias import rank_test
    >>> round(rank_test([0.1, 0.3, 0.5, 0.2], [0.01, 0.04, 0.09, 0.02]).tau, 3)
    1.0
    """
    y, v = check_yv(yi, vi, min_k=3)
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
    estimator : {"L0", "R0", "Q0"}
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
        If k0 has not stabilised after ``maxiter`` iterations, or Q0 is undefined (see Notes).

    Notes
    -----
    Q0 is ``k - 1/2 - sqrt(2k² - 4 S_r + 1/4)`` with ``S_r`` the sum of the positive signed
    ranks; when the centred effects lie almost all on one side the root's argument is negative
    and Q0 does not exist (metafor stops with "NaNs produced"): fibrosim raises and names L0
    and R0, which always exist.

    References
    ----------
    Duval S, Tweedie R (2000). Trim and fill: a simple funnel-plot-based method of testing and
    adjusting for publication bias in meta-analysis. Biometrics 56:455-463.  Duval S, Tweedie R
    (2000). A nonparametric "trim and fill" method of accounting for publication bias in
    meta-analysis. J Am Stat Assoc 95:89-98.

    Examples
    --------
    >>> import numpy as np
    >>> from fibrosim.meta.publication_bias import trim_and_fill
    >>> res = trim_and_fill([0.1, 0.3, 0.5, 0.2, 0.8, 0.7], [0.01, 0.04, 0.09, 0.02, 0.16, 0.1])
    >>> res.side
    'left'
    """
    from fibrosim.meta.frequentist import random_effects

    estimator = check_choice("estimator", estimator, ("L0", "R0", "Q0"))
    if side is not None:
        side = check_choice("side", side, ("left", "right"))
    method, test, level = check_options(method, test, level)
    y, v = check_yv(yi, vi)
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
    for iteration in range(maxiter):
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
            if estimator == "L0":
                k0_raw = (4 * s_r - k * (k + 1)) / (2 * k - 1)
            else:
                radicand = 2 * k**2 - 4 * s_r + 0.25
                if radicand < 0:
                    raise RuntimeError(
                        "the Q0 estimator does not exist for these data: 2k² - 4 S_r + 1/4 = "
                        f"{radicand:g} < 0 at trim iteration {iteration + 1} (k = {k}, S_r = "
                        f"{s_r:g}; almost every centred effect lies on one side); use "
                        "estimator='L0' or 'R0'."
                    )
                k0_raw = k - 0.5 - float(np.sqrt(radicand))
            var_sr = (
                k * (k + 1) * (2 * k + 1)
                + 10 * k0_raw**3
                + 27 * k0_raw**2
                + 17 * k0_raw
                - 18 * k * k0_raw**2
                - 18 * k * k0_raw
                + 6 * k**2 * k0_raw
            ) / 24
            root_var = float(np.sqrt(max(var_sr, 0.0)))
            if estimator == "L0":
                se_k0 = 4 * root_var / (2 * k - 1)
            else:
                se_k0 = (
                    2 * root_var / float(np.sqrt((k - 0.5) ** 2 - k0_raw * (2 * k - k0_raw - 1)))
                )
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
