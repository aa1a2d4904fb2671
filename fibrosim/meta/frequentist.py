"""Frequentist random-effects meta-analysis with metafor parity, batched over many analyses.

:func:`random_effects` pools effect sizes ``yi`` with sampling variances ``vi`` under the
normal-normal model ``yi ~ N(mu, vi + tau²)``, like metafor's ``rma(yi, vi, method=, test=)`` for
the intercept-only model.  A leading batch axis holds many meta-analyses, solved in one vectorised
pass; ragged study counts are NaN-padded.  The array work lives in :mod:`fibrosim.meta._tau2`; this
module validates input, pools, builds intervals, issues warnings and wraps the arrays in
:class:`RandomEffectsResult`.

Differences from metafor 3.8-1, all deliberate:

* iterative estimators are solved to ~1e-14 relative (metafor stops at 1e-5 by default);
* the Q-profile upper bracket is adaptive (metafor caps it at ``max(100, 10 tau²)`` unless
  ``control=list(tau2.max=)`` is raised, and then prints ">100");
* ``vi <= 0`` is an error for every estimator (metafor stops only for DL, HS and PM, and then
  drops Q, I² and H²): a zero variance leaves the inverse-variance weights undefined;
* when ML/REML iteration fails or stops at a point where ll(0) is larger, a bounded 1-D
  maximisation of the (restricted) likelihood takes over and a ``ConvergenceWarning`` says so
  (metafor stops with an error, or sets tau² = 0).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from fibrosim._checks import as_float_array, check_choice, check_level
from fibrosim.meta import _tau2
from fibrosim.warnings import ConvergenceWarning, FragileEstimateWarning

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RandomEffectsResult", "random_effects"]

FloatArray = NDArray[np.float64]
#: A result attribute: a float64 array of the batch shape (0-d for a single analysis, so
#: ``float(r.tau2)`` works and indexing a batch type-checks).
Batched = FloatArray

METHODS = ("FE", "EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM", "SJIT")
TESTS = ("z", "knha")
#: metafor warns from this ratio of largest to smallest sampling variance on.
_VI_RATIO_WARN = 1e7
#: metafor sets the Knapp-Hartung scale s² to 0 when the weighted RSS is below machine epsilon
#: (the RSS is dimensionless, so the threshold does not depend on the scale of yi).
_KNHA_RSS_ZERO = float(np.finfo(np.float64).eps)

_FIELDS = (
    "estimate",
    "se",
    "zval",
    "pval",
    "ci_low",
    "ci_high",
    "pi_low",
    "pi_high",
    "tau2",
    "se_tau2",
    "i2",
    "h2",
    "q",
    "q_pvalue",
    "k",
    "df",
)


@dataclass(frozen=True, slots=True, repr=False)
class RandomEffectsResult:
    """Pooled estimate, intervals and heterogeneity of one or many meta-analyses.

    Every numeric attribute is a float64 array of the batch shape of the input
    (``yi.shape[:-1]``); for a single analysis it is 0-d (use ``float(r.tau2)``).

    Attributes
    ----------
    estimate, se : pooled mean mu and its standard error (Knapp-Hartung scaled for "knha").
    zval : Wald statistic ``estimate / se`` (a t statistic for "knha"; metafor's name).
    pval : two-sided p-value of ``zval`` (normal, or t with ``df`` degrees of freedom).
    ci_low, ci_high : confidence interval for mu at ``level``.
    pi_low, pi_high : prediction interval for a new study's true effect,
        ``mu ± crit · sqrt(tau² + se²)`` with the same critical value as the CI (as metafor's
        ``predict``); equal to the CI when tau² = 0.
    tau2, se_tau2 : between-study variance and its standard error (metafor's per-estimator
        formulas; NaN where undefined: method "FE"/"EE" and k = 1).
    i2 : I² in percent, metafor's per-estimator definition ``100 tau²/(tau² + s²)`` with the
        typical within-study variance ``s² = (k-1) Σw / ((Σw)² - Σw²)``, ``w = 1/vi``; for FE/EE
        ``100 (Q - (k-1))/Q`` truncated at 0.
    h2 : H², ``(tau² + s²)/s²`` (``Q/(k-1)`` for FE/EE).
    q, q_pvalue : Cochran's Q (inverse-variance weights) and its chi² (k-1) p-value.
    k : number of studies.
    df : t degrees of freedom (k - 1) for "knha"; ``inf`` for the z test.
    method, test, level : the options used ("EE" is reported as "FE").
    yi, vi : the input (NaN-padded), kept for :meth:`tau2_ci`.
    """

    estimate: Batched
    se: Batched
    zval: Batched
    pval: Batched
    ci_low: Batched
    ci_high: Batched
    pi_low: Batched
    pi_high: Batched
    tau2: Batched
    se_tau2: Batched
    i2: Batched
    h2: Batched
    q: Batched
    q_pvalue: Batched
    k: Batched
    df: Batched
    method: str
    test: str
    level: float
    yi: FloatArray = field(repr=False)
    vi: FloatArray = field(repr=False)

    @property
    def tval(self) -> Batched:
        """Alias of :attr:`zval` (the statistic is t-distributed when ``test="knha"``)."""
        return self.zval

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Shape of the batch of meta-analyses (``()`` for one)."""
        return tuple(self.yi.shape[:-1])

    def tau2_ci(self, level: float = 0.95) -> tuple[Batched, Batched]:
        """Q-profile confidence interval ``(low, high)`` for tau².

        The bounds solve ``Q_gen(tau²) = chi²_{k-1}`` quantiles, where ``Q_gen`` uses weights
        ``1/(vi + tau²)``; a bound is 0 when ``Q_gen(0)`` already lies below its quantile.  The
        interval does not depend on the estimator.  The upper bracket is found adaptively, so
        the bound is never capped (metafor caps it at 100 unless ``tau2.max`` is raised).

        Parameters
        ----------
        level : float
            Confidence level in (0, 1).

        Returns
        -------
        tuple of arrays
            Lower and upper bound, each of the batch shape.

        Raises
        ------
        ValueError
            If an analysis has k = 1 (no degrees of freedom for Q).

        References
        ----------
        Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity in
        meta-analysis. Stat Med 26:37-52.
        """
        low, high = self._tau2_ci_flat(level)
        return self._shape(low), self._shape(high)

    def heterogeneity_ci(self, level: float = 0.95) -> dict[str, tuple[Batched, Batched]]:
        """Q-profile intervals for tau², tau, I² (percent) and H², as metafor's ``confint``.

        tau, I² and H² are monotone in tau², so their bounds are the transformed tau² bounds
        (I² and H² with the typical within-study variance ``s²`` of :attr:`i2`).
        """
        low, high = self._tau2_ci_flat(level)
        s2 = _typical_variance(*_flatten(self.yi, self.vi))
        out: dict[str, tuple[Batched, Batched]] = {}
        out["tau2"] = (self._shape(low), self._shape(high))
        out["tau"] = (self._shape(np.sqrt(low)), self._shape(np.sqrt(high)))
        out["i2"] = tuple(self._shape(100.0 * t / (s2 + t)) for t in (low, high))  # type: ignore[assignment]
        out["h2"] = tuple(self._shape(1.0 + t / s2) for t in (low, high))  # type: ignore[assignment]
        return out

    def _tau2_ci_flat(self, level: float) -> tuple[FloatArray, FloatArray]:
        level = check_level("level", level)
        y, v, m, k = _flatten(self.yi, self.vi)
        if np.any(k < 2):
            i = int(np.flatnonzero(k < 2)[0])
            raise ValueError(
                "the Q-profile interval for tau² needs k >= 2 studies; the analysis at batch "
                f"index {_unravel(i, self.batch_shape)} has k = 1."
            )
        alpha = 1.0 - level
        df = k - 1.0
        crit_upper = special.chdtri(df, alpha / 2.0)  # upper alpha/2 quantile of chi²(k-1)
        crit_lower = special.chdtri(df, 1.0 - alpha / 2.0)  # lower alpha/2 quantile
        low = _tau2.q_profile_root(y, v, m, k, crit_upper)
        high = _tau2.q_profile_root(y, v, m, k, crit_lower)
        return low, high

    def _shape(self, flat: FloatArray) -> Batched:
        return np.asarray(flat, dtype=np.float64).reshape(self.batch_shape)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per meta-analysis (batch index as the row index), one column per quantity."""
        import pandas as pd

        cols = {name: np.ravel(getattr(self, name)) for name in _FIELDS}
        shape = self.batch_shape
        index: pd.Index
        if len(shape) <= 1:
            index = pd.RangeIndex(max(1, int(np.prod(shape))), name="analysis")
        else:
            index = pd.MultiIndex.from_tuples(
                list(np.ndindex(*shape)), names=[f"axis_{i}" for i in range(len(shape))]
            )
        df = pd.DataFrame(cols, index=index)
        df["k"] = df["k"].astype(np.int64)
        df.insert(0, "method", self.method)
        df.insert(1, "test", self.test)
        df.attrs["level"] = self.level
        return df

    def __repr__(self) -> str:
        shape = self.batch_shape
        n = int(np.prod(shape)) if shape else 1
        pct = f"{100 * self.level:g}%"
        head = (
            f"RandomEffectsResult(method={self.method!r}, test={self.test!r}, level={self.level})"
            + (f", batch shape {shape}" if shape else "")
        )
        cols = ("k", "estimate", "se", "ci_low", "ci_high", "pi_low", "pi_high", "tau2", "i2")
        names: tuple[str, ...] = ("k", "estimate", "se", f"{pct} CI low", "CI high")
        names = (*names, "PI low", "PI high", "tau²", "I² %")
        flat = {c: np.ravel(getattr(self, c)) for c in (*cols, "q", "q_pvalue", "pval")}
        rows: list[tuple[str, ...]] = [names]
        show = min(n, 6)
        for i in range(show):
            rows.append(
                (
                    f"{int(flat['k'][i])}",
                    *(f"{flat[c][i]:.4g}" for c in cols[1:-1]),
                    f"{flat['i2'][i]:.2f}",
                )
            )
        widths = [max(len(r[j]) for r in rows) for j in range(len(names))]
        lines = [head]
        for r in rows:
            lines.append("  " + "  ".join(c.rjust(wd) for c, wd in zip(r, widths, strict=True)))
        if n > show:
            lines.append(f"  ... ({n - show} more analyses)")
        if n == 1:
            dfq = int(flat["k"][0]) - 1
            stat = "t" if self.test == "knha" and dfq > 0 else "z"
            lines.append(
                f"  {stat} = {float(np.ravel(self.zval)[0]):.4g}, p = {flat['pval'][0]:.4g};"
                f" Q({dfq}) = {flat['q'][0]:.4g}, p = {flat['q_pvalue'][0]:.4g}"
            )
        return "\n".join(lines)


def _unravel(i: int, shape: tuple[int, ...]) -> tuple[int, ...] | int:
    if not shape:
        return 0
    idx = tuple(int(j) for j in np.unravel_index(i, shape))
    return idx[0] if len(idx) == 1 else idx


def _flatten(
    yi: FloatArray, vi: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """2-D (n, K) copies with padding made harmless, the float mask and k per analysis."""
    y = yi.reshape(-1, yi.shape[-1])
    v = vi.reshape(-1, vi.shape[-1])
    pad = np.isnan(y)
    if pad.any():
        m = (~pad).astype(np.float64)
        y = np.where(pad, 0.0, y)
        v = np.where(pad, 1.0, v)
        k = np.sum(m, axis=-1)
    else:
        m = np.ones_like(y)
        k = np.full(y.shape[0], float(y.shape[-1]))
    return y, v, m, k


def _typical_variance(y: FloatArray, v: FloatArray, m: FloatArray, k: FloatArray) -> FloatArray:
    """The typical within-study variance ``(k-1)/tr P`` with ``w = 1/vi``."""
    w = m / v
    s1 = np.sum(w, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (k - 1.0) / (s1 - np.sum(w * w, axis=-1) / s1)


def _check_data(yi: ArrayLike, vi: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validate ``yi``/``vi`` once: same shape, NaN only as shared padding, vi > 0."""
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
    if np.any(ny):
        empty = np.all(ny, axis=-1)
        if np.any(empty):
            idx = tuple(int(i) for i in np.argwhere(np.atleast_1d(empty))[0])
            raise ValueError(
                "every meta-analysis needs at least one study; the analysis at batch index "
                f"{idx[0] if len(idx) == 1 else idx} is all NaN."
            )
    return y, v


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


def _warn_fallback(fallback: NDArray[np.bool_], shape: tuple[int, ...], method: str) -> None:
    _warn_batch(
        fallback,
        shape,
        f"{method} iteration did not converge to a maximum at least as good as tau² = 0; "
        "the estimate comes from a bounded 1-D maximisation of the likelihood instead",
        ConvergenceWarning,
    )


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
        return _tau2.tau2_ml(y, v, m, k, reml=method == "REML")
    # PM, EB and SJIT share the fixed point Q_gen(tau²) = k - 1 (see _tau2.tau2_pm).
    return _tau2.tau2_pm(y, v, m, k)


def _t_quantile(p: float, df: FloatArray) -> FloatArray:
    """Upper quantile ``t_{df}(p)`` evaluated once per distinct df (few in practice)."""
    uniq, inv = np.unique(df, return_inverse=True)
    return np.asarray(special.stdtrit(uniq, p), dtype=np.float64)[inv.reshape(df.shape)]


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
    PM, EB and SJIT all solve ``Q_gen(tau²) = k - 1`` (metafor's EB Fisher scoring and SJIT
    iteration converge to the Paule-Mandel root), so with tight tolerances they coincide; they
    differ only in name.  metafor 3.8-1's "DLIT" iteration is not offered: it replaces tr(PV)
    by k - 1 and oscillates when the variances are equal.

    References
    ----------
    DerSimonian R, Laird N (1986). Control Clin Trials 7:177-188.
    Paule RC, Mandel J (1982). J Res Natl Bur Stand 87:377-385.
    Sidik K, Jonkman JN (2005). Stat Med 24:1243-1256 (SJ estimator);
    (2002) Stat Med 21:3153-3159 (Knapp-Hartung test).
    Hartung J, Knapp G (2001). Stat Med 20:3875-3889.
    Viechtbauer W (2005). J Educ Behav Stat 30:261-293.
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
    yarr, varr = _check_data(yi, vi)
    shape = tuple(yarr.shape[:-1])
    y, v, m, k = _flatten(yarr, varr)
    n = y.shape[0]

    padded = not m.all()
    if padded:
        vmax = np.max(np.where(m > 0, v, -np.inf), axis=-1)
        vmin = np.min(np.where(m > 0, v, np.inf), axis=-1)
    else:
        vmax, vmin = v.max(axis=-1), v.min(axis=-1)
    _warn_batch(
        vmax >= _VI_RATIO_WARN * vmin,
        shape,
        "ratio of largest to smallest sampling variance is 1e7 or more; the weights are "
        "dominated by a few studies and the estimates may be unstable",
        FragileEstimateWarning,
    )
    single = k < 2
    any_single = bool(single.any())
    _warn_batch(
        single,
        shape,
        "k = 1: tau² is set to 0 and the prediction interval equals the confidence interval"
        + ("; test='knha' needs k >= 2, so 'z' is used (as metafor)" if test == "knha" else ""),
        FragileEstimateWarning,
    )
    if test == "knha":
        _warn_batch(
            k == 2,
            shape,
            "k = 2 with test='knha': the t(1) interval is extremely wide and unstable",
            FragileEstimateWarning,
        )

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

    # Pooled mean with weights 1/(vi + tau²).
    w = m / (v + tau2[:, None])
    s1 = np.add.reduce(w, axis=-1)
    mu = np.vecdot(w, y) / s1
    se = 1.0 / np.sqrt(s1)
    dfk = k - 1.0
    alpha = 1.0 - level
    z_crit = float(special.ndtri(1.0 - alpha / 2.0))
    use_t = ~single if test == "knha" else None
    if use_t is not None:
        r = y - mu[:, None]
        rss = np.vecdot(w * r, r)
        with np.errstate(divide="ignore", invalid="ignore"):
            s2w = np.where(rss <= _KNHA_RSS_ZERO, 0.0, rss / dfk)
            se = np.where(use_t, np.sqrt(s2w / s1), se)
        _warn_batch(
            use_t & (s2w == 0.0),
            shape,
            "the Knapp-Hartung scale is 0 (all effects equal the pooled estimate), so the SE is "
            "0 and the confidence interval has zero width",
            FragileEstimateWarning,
        )
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
    w0 = m / v
    s1_0 = np.add.reduce(w0, axis=-1)
    r0 = y - (np.vecdot(w0, y) / s1_0)[:, None]
    q = np.maximum(np.vecdot(w0 * r0, r0), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        q_p = special.chdtrc(dfk, q)
        if method == "FE":
            i2 = np.where(q > 0, np.maximum(0.0, 100.0 * (q - dfk) / q), 0.0)
            h2 = q / dfk
        else:
            s2 = dfk / (s1_0 - np.vecdot(w0, w0) / s1_0)
            i2 = 100.0 * tau2 / (s2 + tau2)
            h2 = tau2 / s2 + 1.0
    if any_single:
        q_p = np.where(single, 1.0, q_p)
        i2 = np.where(single, 0.0, i2)
        h2 = np.where(single, 1.0, h2)

    def out(a: FloatArray) -> Batched:
        return np.asarray(a, dtype=np.float64).reshape(shape)

    return RandomEffectsResult(
        estimate=out(mu),
        se=out(se),
        zval=out(zval),
        pval=out(pval),
        ci_low=out(mu - half),
        ci_high=out(mu + half),
        pi_low=out(mu - half_pi),
        pi_high=out(mu + half_pi),
        tau2=out(tau2),
        se_tau2=out(se_tau2),
        i2=out(i2),
        h2=out(h2),
        q=out(q),
        q_pvalue=out(q_p),
        k=out(k),
        df=out(df),
        method=method,
        test=test,
        level=level,
        yi=yarr,
        vi=varr,
    )
