"""Result object of :func:`fibrosim.meta.frequentist.random_effects` and shared array helpers.

:class:`RandomEffectsResult` is a thin labelled layer over the arrays computed by
:mod:`fibrosim.meta.frequentist`; its Q-profile intervals call the array core in
:mod:`fibrosim.meta._tau2`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy import special

from fibrosim._checks import check_level
from fibrosim.meta import _tau2

if TYPE_CHECKING:
    import pandas as pd

FloatArray = NDArray[np.float64]
#: A result attribute: a float64 array of the batch shape (0-d for a single analysis, so
#: ``float(r.tau2)`` works and indexing a batch type-checks).
Batched = FloatArray

#: The floating-point quantities of a result, in the order of the rows of its packed array.
STATS = (
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
    "df",
)
_FIELDS = (*STATS[:14], "k", "df")  # column order of to_dataframe


class _Stat:
    """One quantity of :class:`RandomEffectsResult`: a read-only view of a row of ``values``.

    The quantities are computed together and stored as one ``(len(STATS), *batch_shape)``
    array, so a result is built with one array instead of one per quantity (which would cost
    more than fitting a small meta-analysis); each attribute is a view of its row, an array
    of the batch shape (0-d for one analysis).
    """

    __slots__ = ("row",)

    def __init__(self, name: str) -> None:
        self.row = STATS.index(name)

    def __get__(self, obj: RandomEffectsResult | None, owner: type) -> Batched:
        if obj is None:
            raise AttributeError("a quantity of a RandomEffectsResult instance")
        view: Batched = obj.values[self.row, ...]
        return view

    def __set__(self, obj: RandomEffectsResult, value: object) -> None:
        raise AttributeError(f"cannot assign to {STATS[self.row]!r}: results are read-only")


# no slots: with slots, dataclasses' frozen __setattr__ fails with a TypeError (not an
# AttributeError) for the quantities, which are descriptors rather than fields
@dataclass(frozen=True, repr=False)
class RandomEffectsResult:
    """Pooled estimate, intervals and heterogeneity of one or many meta-analyses.

    Every numeric attribute is a read-only float64 array of the batch shape of the input
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
    df : t degrees of freedom (k - 1) for "knha"; ``inf`` for the z test.
    values : all of the above as one read-only array of shape ``(len(STATS), *batch_shape)``,
        rows in the order of :data:`STATS` (each attribute is a view of its row).
    k : number of studies (int64 array of the batch shape).
    method, test, level : the options used ("EE" is reported as "FE").
    yi, vi : the input (NaN-padded), kept for :meth:`tau2_ci`.
    """

    values: FloatArray = field(repr=False)
    k: NDArray[np.int64]
    method: str
    test: str
    level: float
    yi: FloatArray = field(repr=False)
    vi: FloatArray = field(repr=False)

    estimate = _Stat("estimate")
    se = _Stat("se")
    zval = _Stat("zval")
    pval = _Stat("pval")
    ci_low = _Stat("ci_low")
    ci_high = _Stat("ci_high")
    pi_low = _Stat("pi_low")
    pi_high = _Stat("pi_high")
    tau2 = _Stat("tau2")
    se_tau2 = _Stat("se_tau2")
    i2 = _Stat("i2")
    h2 = _Stat("h2")
    q = _Stat("q")
    q_pvalue = _Stat("q_pvalue")
    df = _Stat("df")

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
        out["i2"] = (self._shape(100.0 * low / (s2 + low)), self._shape(100.0 * high / (s2 + high)))
        out["h2"] = (self._shape(1.0 + low / s2), self._shape(1.0 + high / s2))
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
    """2-D (n, K) C-contiguous arrays, the float mask and k per analysis.

    Padding is made harmless (y = 0, v = 1, mask 0) and moved to the end of its row, the
    studies keeping their order, so row ``i``'s studies are its first ``k[i]`` cells (the
    layout the compiled row kernels read).
    """
    y = np.ascontiguousarray(yi.reshape(-1, yi.shape[-1]))
    v = np.ascontiguousarray(vi.reshape(-1, vi.shape[-1]))
    pad = np.isnan(y)
    if pad.any():
        order = np.argsort(pad, axis=-1, kind="stable")  # studies first, in their order
        pad = np.take_along_axis(pad, order, axis=-1)
        m = (~pad).astype(np.float64)
        y = np.where(pad, 0.0, np.take_along_axis(y, order, axis=-1))
        v = np.where(pad, 1.0, np.take_along_axis(v, order, axis=-1))
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
