"""Mixed-effects meta-regression: validation and the labelled layer.

The model is ``y_i = x_i' beta + u_i + e_i`` with ``u_i ~ N(0, tau2)`` and ``e_i ~ N(0, v_i)``
(v_i known).  :func:`meta_regression` checks its inputs once,
build the design (named columns, intercept, NaN padding of a batch) and wrap the array core of
:mod:`fibrosim.meta._mixed` (which solves many regressions in one pass of matrix products) in
labelled results with ``.to_dataframe()``.  Permutation tests and the pseudo-R² also live here,
since they are built from repeated core fits.

The estimators follow metafor's ``rma.uni`` (Viechtbauer 2010) formula for formula; see
:mod:`fibrosim.meta._mixed` for the one deliberate difference (no centring of ``yi`` in models
without an intercept).
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from fibrosim._checks import as_float_array, check_rng
from fibrosim.meta._inputs import check_options
from fibrosim.meta._mixed import (
    METHODS,
    TESTS,
    BoolArray,
    FloatArray,
    MixedFit,
    coefficient_tests,
    fit_mixed,
    residual_heterogeneity,
)
from fibrosim.warnings import FragileEstimateWarning

# metafor's comparison tolerance in permutation p-values (permutest: comptol = sqrt(eps))
_COMPTOL = float(np.sqrt(np.finfo(float).eps))

__all__ = [
    "METHODS",
    "TESTS",
    "MetaRegressionResult",
    "meta_regression",
]


@dataclass(frozen=True, slots=True)
class MetaRegressionResult:
    """Mixed-effects meta-regression (metafor's ``rma(yi, vi, mods = X)``).

    Arrays carry the batch shape ``B`` of the input first; per-coefficient arrays end in ``p``.

    Attributes
    ----------
    coef_names : tuple of str
        Coefficient names (``"intercept"`` first when an intercept is added).
    coefficients, se, stat, pval, ci_low, ci_high : ndarray, shape (*B, p)
        Estimates, standard errors, Wald z (or Knapp-Hartung t) statistics, two-sided p-values
        and confidence limits.
    tau2, se_tau2 : ndarray, shape B
        Residual between-study variance and its standard error.
    i2, h2 : ndarray, shape B
        Residual I² (percent) and H².
    r2 : ndarray, shape B
        Pseudo R² in percent: ``100 max(0, (tau2_RE - tau2) / tau2_RE)`` with ``tau2_RE`` from
        the intercept-only model of the same method (adjusted weighted R² for FE); NaN when the
        model has no intercept or no moderator.
    qm, qm_pvalue : ndarray, shape B
        Omnibus test of the moderators (all coefficients but the intercept): chi² with ``qm_df``
        degrees of freedom, or F(qm_df, k - p) with Knapp-Hartung (``qm`` is then the F value).
    qm_df : int
        Number of coefficients tested.
    qe, qe_pvalue : ndarray, shape B
        Test of residual heterogeneity (chi² with k - p degrees of freedom).
    k : ndarray, shape B
        Number of studies.
    p : int
        Number of coefficients.
    method, test : str
        Estimator of tau² and test of the coefficients ("z" or "knha").
    level : float
        Confidence level.
    perm_pval : ndarray or None, shape (p,)
        Permutation p-value of each coefficient (when ``permutations`` was given).
    perm_qm_pvalue : float or None
        Permutation p-value of the omnibus test.
    n_permutations : int or None
        Number of permutations used (including the observed order); all ``k!`` orders when that
        is not more than requested (exact test).
    """

    coef_names: tuple[str, ...]
    coefficients: FloatArray
    se: FloatArray
    stat: FloatArray
    pval: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    tau2: FloatArray
    se_tau2: FloatArray
    i2: FloatArray
    h2: FloatArray
    r2: FloatArray
    qm: FloatArray
    qm_pvalue: FloatArray
    qm_df: int
    qe: FloatArray
    qe_pvalue: FloatArray
    k: FloatArray
    p: int
    method: str
    test: str
    level: float
    perm_pval: FloatArray | None = None
    perm_qm_pvalue: float | None = None
    n_permutations: int | None = None

    @property
    def zval(self) -> FloatArray:
        """Alias of :attr:`stat` (metafor's name; a t statistic when ``test="knha"``)."""
        return self.stat

    @property
    def tval(self) -> FloatArray:
        """Alias of :attr:`stat`."""
        return self.stat

    def to_dataframe(self) -> pd.DataFrame:
        """One row per coefficient (and per batch element, as a MultiIndex)."""
        stat_name = "tval" if self.test == "knha" else "zval"
        cols = {
            "estimate": self.coefficients,
            "se": self.se,
            stat_name: self.stat,
            "pval": self.pval,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }
        if self.perm_pval is not None:
            cols["perm_pval"] = self.perm_pval
        batch = self.coefficients.shape[:-1]
        index: pd.Index[Any]
        if batch:
            tuples = [(*b, name) for b in np.ndindex(*batch) for name in self.coef_names]
            names = [f"batch_{i}" for i in range(len(batch))] + ["coefficient"]
            index = pd.MultiIndex.from_tuples(tuples, names=names)
        else:
            index = pd.Index(list(self.coef_names), name="coefficient")
        return pd.DataFrame({c: np.reshape(a, -1) for c, a in cols.items()}, index=index)

    def __repr__(self) -> str:
        if self.coefficients.ndim > 1:
            return (
                f"MetaRegressionResult(batch shape {self.coefficients.shape[:-1]}, "
                f"p={self.p}, method={self.method!r}, test={self.test!r})"
            )
        table = self.to_dataframe().to_string(float_format=lambda x: f"{x:.4g}")
        df_resid = int(self.k) - self.p
        dist = f"F({self.qm_df}, {df_resid})" if self.test == "knha" else f"chi²({self.qm_df})"
        return (
            f"MetaRegressionResult (mixed-effects, {self.method}, test={self.test!r}, "
            f"k={int(self.k)}, p={self.p})\n"
            f"tau² (residual) = {float(self.tau2):.4g} (SE {float(self.se_tau2):.4g}), "
            f"I² = {float(self.i2):.2f} %, H² = {float(self.h2):.4g}, R² = {float(self.r2):.2f} %\n"
            f"QE({df_resid}) = {float(self.qe):.4f}, p = {float(self.qe_pvalue):.4g}\n"
            f"test of moderators QM: {dist} = {float(self.qm):.4f}, "
            f"p = {float(self.qm_pvalue):.4g}\n"
            f"{table}"
        )


def _check_design(X: Any, k: int, intercept: bool) -> tuple[FloatArray, tuple[str, ...]]:
    names: list[str]
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        values: Any = X.to_numpy()
    elif isinstance(X, pd.Series):
        names = [str(X.name) if X.name is not None else "x1"]
        values = X.to_numpy()[:, None]
    else:
        values = X
        names = []
    arr = as_float_array("X", values)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim < 2:
        raise ValueError(
            f"`X` must be a 2-D array (k rows, one column per moderator); got {arr.ndim}-D."
        )
    if arr.shape[-2] != k:
        raise ValueError(
            f"`X` must have one row per study: got {arr.shape[-2]} rows for k = {k} studies."
        )
    if not names:
        names = [f"x{j + 1}" for j in range(arr.shape[-1])]
    if intercept:
        arr = np.concatenate([np.ones((*arr.shape[:-1], 1)), arr], axis=-1)
        names = ["intercept", *names]
    return arr, tuple(names)


def meta_regression(
    yi: ArrayLike,
    vi: ArrayLike,
    X: Any,
    *,
    method: str = "REML",
    test: str = "z",
    level: float = 0.95,
    intercept: bool = True,
    permutations: int | None = None,
    rng: Any = None,
) -> MetaRegressionResult:
    """Mixed-effects meta-regression with moderators (metafor's ``rma(yi, vi, mods = X)``).

    Parameters
    ----------
    yi, vi : array_like, shape (..., k)
        Effect sizes and sampling variances (``vi > 0``).  Leading axes are independent
        meta-regressions sharing the design; NaN in ``yi`` and ``vi`` (same places) pads ragged
        batches.
    X : array_like or pandas.DataFrame, shape (k, q) or (..., k, q)
        Moderators, one row per study; DataFrame column names become coefficient names.
    method : str
        tau² estimator: "FE"/"EE" (tau² = 0), "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM".
    test : {"z", "knha"}
        Wald z / chi² tests, or Knapp-Hartung t / F tests with ``k - p`` denominator df.
    level : float
        Confidence level of the coefficient intervals.
    intercept : bool
        Add an intercept column (the omnibus test then excludes it).
    permutations : int, optional
        Permutation test (metafor's ``permutest``): the rows of ``X`` are permuted against the
        (yi, vi) pairs; p-values for each coefficient (``|stat| >= |observed|``) and for QM.  If
        ``k!`` does not exceed ``permutations`` every order is enumerated (exact test);
        otherwise the observed order plus ``permutations - 1`` random orders.  Unbatched input
        only.
    rng : int, numpy.random.SeedSequence or numpy.random.Generator, optional
        Randomness for the permutation test (SPEC 7).

    Returns
    -------
    MetaRegressionResult

    Raises
    ------
    ValueError
        If ``X`` does not have one finite row per study, is rank deficient, or has too many
        columns for the number of studies.

    References
    ----------
    Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw
    36(3):1-48.  Knapp G, Hartung J (2003). Improved tests for a random effects meta-regression
    with a single covariate. Stat Med 22:2693-2710.  Raudenbush SW (2009). Analyzing effect sizes:
    random-effects models. In: The Handbook of Research Synthesis and Meta-Analysis, 2nd ed.
    Higgins JPT, Thompson SG (2004). Controlling the risk of spurious findings from
    meta-regression. Stat Med 23:1663-1682 (permutation test).

    Examples
    --------
    >>> import numpy as np
    >>> from fibrosim.meta.regression import meta_regression
    >>> yi = np.array([-0.89, -1.59, -1.35, -1.44, -0.22, -0.79, -1.62, 0.01])
    >>> vi = np.array([0.33, 0.19, 0.42, 0.02, 0.05, 0.007, 0.22, 0.004])
    >>> lat = np.array([44.0, 55, 42, 52, 13, 44, 19, 13])
    >>> res = meta_regression(yi, vi, lat)
    >>> res.coef_names
    ('intercept', 'x1')
    """
    method, test, level = check_options(method, test, level)
    y = as_float_array("yi", yi, allow_nan=True)
    v = as_float_array("vi", vi, allow_nan=True)
    if y.ndim == 0 or y.shape != v.shape:
        raise ValueError(
            f"`yi` and `vi` must be arrays of the same shape (..., k); got {y.shape} and {v.shape}."
        )
    if np.any(np.isnan(y) != np.isnan(v)):
        idx = tuple(int(i) for i in np.argwhere(np.isnan(y) != np.isnan(v))[0])
        raise ValueError(
            f"`yi` and `vi` must be NaN at the same places (padding); they differ at {idx}."
        )
    with np.errstate(invalid="ignore"):
        if np.any(v <= 0):
            idx = tuple(int(i) for i in np.argwhere(v <= 0)[0])
            raise ValueError(f"`vi` must be > 0; got {v[idx]} at index {idx}.")
    k_all = y.shape[-1]
    Xa, names = _check_design(X, k_all, intercept)
    mask = ~np.isnan(y)
    batch = np.broadcast_shapes(y.shape[:-1], Xa.shape[:-2])
    y_b = np.broadcast_to(y, (*batch, k_all))
    v_b = np.broadcast_to(v, (*batch, k_all))
    m_b = np.broadcast_to(mask, (*batch, k_all))
    X_b = np.broadcast_to(Xa, batch + Xa.shape[-2:])
    p = Xa.shape[-1]
    k = np.sum(m_b, -1)
    needed = p if method in ("FE", "EE") else p + 1
    if np.any(needed > k):
        bad = int(np.min(k))
        raise ValueError(
            "Number of parameters to be estimated is larger than the number of observations: "
            f"`X` gives p = {p} coefficients{' (with the intercept)' if intercept else ''}, and "
            f"method {method!r} estimates {needed} parameters from k = {bad} studies."
        )
    rank = np.linalg.matrix_rank(np.where(m_b[..., None], X_b, 0.0))
    if np.any(rank < p):
        raise ValueError(
            f"`X` is rank deficient: its {p} columns ({', '.join(names)}) have rank "
            f"{int(np.min(rank))}; drop collinear moderators (a constant column duplicates the "
            "intercept)."
        )
    if permutations is not None and batch:
        raise ValueError("`permutations` needs a single meta-regression (no batch axes in `yi`).")
    vmax = np.max(np.where(m_b, v_b, -np.inf), axis=-1)
    vmin = np.min(np.where(m_b, v_b, np.inf), axis=-1)
    if np.any(vmax / vmin >= 1e7):  # metafor's threshold (1 / evtol)
        warnings.warn(
            "ratio of largest to smallest sampling variance is 1e7 or more; the weights are "
            "dominated by a few studies and the estimates may be unstable",
            FragileEstimateWarning,
            stacklevel=2,
        )
    fit = fit_mixed(y_b, v_b, X_b, m_b, method, test)
    if test == "knha" and np.any(fit.s2w == 0):
        warnings.warn(
            "the Knapp-Hartung scale is 0 (the model fits every effect exactly), so the "
            "standard errors are 0",
            FragileEstimateWarning,
            stacklevel=2,
        )
    btt = list(range(1, p)) if intercept and p > 1 else list(range(p))
    tests_ = coefficient_tests(fit, test, level, btt)
    qe, qe_p, i2, h2 = residual_heterogeneity(y_b, v_b, X_b, m_b, fit.tau2, method)
    r2 = _pseudo_r2(y_b, v_b, X_b, m_b, fit, method, intercept)
    perm_pval: FloatArray | None = None
    perm_qm: float | None = None
    n_perm: int | None = None
    if permutations is not None:
        perm_pval, perm_qm, n_perm = _permutation_test(
            y_b, v_b, X_b, fit, tests_, method, test, level, btt, permutations, rng
        )
    return MetaRegressionResult(
        coef_names=names,
        coefficients=fit.beta,
        se=tests_["se"],
        stat=tests_["stat"],
        pval=tests_["pval"],
        ci_low=tests_["ci_low"],
        ci_high=tests_["ci_high"],
        tau2=fit.tau2,
        se_tau2=fit.se_tau2,
        i2=i2,
        h2=h2,
        r2=r2,
        qm=tests_["qm"],
        qm_pvalue=tests_["qm_pvalue"],
        qm_df=len(btt),
        qe=qe,
        qe_pvalue=qe_p,
        k=k.astype(np.float64),
        p=p,
        method=method,
        test=test,
        level=level,
        perm_pval=perm_pval,
        perm_qm_pvalue=perm_qm,
        n_permutations=n_perm,
    )


def _pseudo_r2(
    y: FloatArray,
    v: FloatArray,
    X: FloatArray,
    m: BoolArray,
    fit: MixedFit,
    method: str,
    intercept: bool,
) -> FloatArray:
    batch = fit.tau2.shape
    if not intercept or fit.p == 1:
        return np.full(batch, np.nan)
    ones = np.ones((*X.shape[:-1], 1))
    if method in ("FE", "EE"):
        # adjusted R² of the weighted least-squares fit (metafor: lm(yi ~ X, weights = 1/vi))
        w = np.where(m, 1.0 / v, 0.0)
        yz = np.where(m, y, 0.0)
        ybar = np.sum(w * yz, -1) / np.sum(w, -1)
        tss = np.sum(w * (yz - ybar[..., None]) ** 2, -1)
        resid = yz - np.einsum("...ij,...j->...i", np.where(m[..., None], X, 0.0), fit.beta)
        rss = np.sum(w * resid**2, -1)
        with np.errstate(divide="ignore", invalid="ignore"):
            adj = 1 - (rss / tss) * (fit.k - 1) / (fit.k - fit.p)
        return np.where(tss > 0, np.maximum(0.0, 100 * adj), 0.0)
    tau2_re = fit_mixed(y, v, ones, m, method, "z").tau2
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(tau2_re > 0, (tau2_re - fit.tau2) / tau2_re, 0.0)
    return np.asarray(np.maximum(0.0, 100 * r2), dtype=np.float64)


def _permutation_test(
    y: FloatArray,
    v: FloatArray,
    X: FloatArray,
    fit: MixedFit,
    observed: dict[str, FloatArray],
    method: str,
    test: str,
    level: float,
    btt: list[int],
    permutations: int,
    rng: Any,
) -> tuple[FloatArray, float, int]:
    if (
        isinstance(permutations, bool)
        or not isinstance(permutations, (int, np.integer))
        or permutations < 2
    ):
        raise ValueError(f"`permutations` must be an integer >= 2; got {permutations!r}.")
    gen = check_rng(rng)
    k = y.shape[-1]
    if math.factorial(k) <= permutations:
        orders = np.array(list(itertools.permutations(range(k))), dtype=np.intp)
    else:
        draws = np.argsort(gen.random((int(permutations) - 1, k)), axis=-1)
        orders = np.concatenate([np.arange(k)[None, :], draws], axis=0)
    stat_abs: list[FloatArray] = []
    qms: list[FloatArray] = []
    mask = np.ones((k,), dtype=bool)
    for start in range(0, len(orders), 512):  # chunks bound memory (512 k×k matrices at a time)
        chunk = orders[start : start + 512]
        Xp = X[chunk]
        n = len(chunk)
        pf = fit_mixed(
            np.broadcast_to(y, (n, k)),
            np.broadcast_to(v, (n, k)),
            Xp,
            np.broadcast_to(mask, (n, k)),
            method,
            test,
        )
        t = coefficient_tests(pf, test, level, btt)
        stat_abs.append(np.abs(t["stat"]))
        qms.append(t["qm"])
    s = np.concatenate(stat_abs)
    q = np.concatenate(qms)
    pval = np.mean(s >= np.abs(observed["stat"]) - _COMPTOL, axis=0)
    qm_p = float(np.mean(q >= float(observed["qm"]) - _COMPTOL))
    return pval, qm_p, len(orders)
