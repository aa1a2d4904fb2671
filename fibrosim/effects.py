"""Effect sizes and their sampling variances from arm summaries (metafor ``escalc`` parity).

Every function returns an :class:`EffectSizes` with ``yi`` (the effect) and ``vi`` (its
sampling variance), computed with the formulas of metafor 3.8-1 ``escalc`` and checked
against it to 1e-10 relative (``tests/data/escalc_reference.json``).  Inputs broadcast;
a leading axis may index many meta-analyses at once.  Group 1 is the treated arm: every
difference is group 1 minus group 2, every ratio group 1 over group 2.

Two-group means: :func:`md`, :func:`smd` (Hedges' g), :func:`rom`.  Pre-post (one group):
:func:`smcr`, :func:`smcc`.  2x2 tables: :func:`odds_ratio`, :func:`risk_ratio`,
:func:`risk_difference`.  Correlations: :func:`zcor`.  Re-exported from
:mod:`fibrosim.conversions`: Hedges' g from test statistics (:func:`d_from_t`,
:func:`d_from_f`, :func:`d_from_p`), 2x2 cells from events (:func:`table_from_events`), and
conversions of reported summaries (:func:`se_from_ci`, :func:`sd_from_se`,
:func:`mean_sd_from_median`, :func:`change_sd`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from fibrosim._checks import (
    FloatArray,
    _first_bad,
    _where,
    as_float_array,
    broadcast,
    check_choice,
    check_in_interval,
    check_integer,
    check_level,
    check_positive,
)
from fibrosim.conversions import (
    MeanSD,
    _change_sd,
    change_sd,
    d_from_f,
    d_from_p,
    d_from_t,
    mean_sd_from_median,
    sd_from_se,
    se_from_ci,
    table_from_events,
)
from fibrosim.warnings import DataWarning

BoolArray = NDArray[np.bool_]

__all__ = [
    "EffectSizes",
    "MeanSD",
    "change_sd",
    "d_from_f",
    "d_from_p",
    "d_from_t",
    "md",
    "mean_sd_from_median",
    "odds_ratio",
    "risk_difference",
    "risk_ratio",
    "rom",
    "sd_from_se",
    "se_from_ci",
    "smcc",
    "smcr",
    "smd",
    "table_from_events",
    "zcor",
]

_REPR_ROWS = 10


def _frozen(arr: NDArray[np.generic]) -> NDArray[np.generic]:
    out = np.array(arr, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class EffectSizes:
    """Effect sizes with their sampling variances.

    Attributes
    ----------
    measure : str
        metafor's name of the measure: ``"MD"``, ``"SMD"``, ``"ROM"``, ``"SMCR"``, ``"SMCC"``,
        ``"OR"``, ``"RR"``, ``"RD"`` or ``"ZCOR"``.  ``yi`` is on the log scale for OR, RR
        and ROM and on Fisher's z scale for ZCOR.
    yi : ndarray
        Effect sizes, group 1 minus (or over) group 2.
    vi : ndarray
        Large-sample sampling variances of ``yi``.
    vtype : str or None
        Which variance formula was used (metafor's ``vtype``); None where there is one.
    corrected : ndarray of bool or None
        2x2 measures only: True where ``add`` was added to every cell of the table.
        Same shape as ``yi``.
    dropped : ndarray of bool or None
        2x2 measures with ``drop00=True`` only: one entry per input table, True for the
        double-zero tables that were removed.  ``yi``, ``vi`` and ``corrected`` then hold
        the remaining tables in input order (``np.flatnonzero(~dropped)`` are their rows).

    Notes
    -----
    The arrays are read-only.  ``se`` is ``sqrt(vi)``; ``ci(level)`` gives Wald limits.
    """

    measure: str
    yi: FloatArray
    vi: FloatArray
    vtype: str | None = None
    corrected: BoolArray | None = None
    dropped: BoolArray | None = None

    def __post_init__(self) -> None:
        # frozen means frozen: a caller editing yi in place would desynchronise yi and vi
        for name in ("yi", "vi", "corrected", "dropped"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _frozen(value))

    @property
    def se(self) -> FloatArray:
        """Standard errors, ``sqrt(vi)``."""
        return np.sqrt(self.vi)

    def ci(self, level: float = 0.95) -> tuple[FloatArray, FloatArray]:
        """Wald confidence limits ``yi ± z * se`` at ``level`` (on the scale of ``yi``)."""
        level = check_level("level", level)
        z = stats.norm.ppf(0.5 + level / 2.0)
        return self.yi - z * self.se, self.yi + z * self.se

    def to_dataframe(self, level: float = 0.95) -> pd.DataFrame:
        """One row per effect size: columns ``yi``, ``vi``, ``se``, ``ci_low``, ``ci_high``.

        The index is the input row (after ``drop00``, the rows kept); with batch axes it is a
        MultiIndex with one level per axis.  ``attrs`` holds ``measure``, ``vtype`` and
        ``level``.
        """
        low, high = self.ci(level)
        shape = self.yi.shape
        index: pd.Index
        if self.dropped is not None:
            index = pd.Index(np.flatnonzero(~self.dropped), name="row")
        elif len(shape) <= 1:
            index = pd.RangeIndex(int(np.prod(shape)), name="row")
        else:
            index = pd.MultiIndex.from_tuples(
                list(np.ndindex(shape)), names=[f"axis{i}" for i in range(len(shape))]
            )
        frame = pd.DataFrame(
            {
                "yi": self.yi.ravel(),
                "vi": self.vi.ravel(),
                "se": self.se.ravel(),
                "ci_low": low.ravel(),
                "ci_high": high.ravel(),
            },
            index=index,
        )
        frame.attrs.update(measure=self.measure, vtype=self.vtype, level=level)
        return frame

    def __repr__(self) -> str:
        head = f"EffectSizes(measure={self.measure!r}"
        if self.vtype is not None:
            head += f", vtype={self.vtype!r}"
        head += f", shape={self.yi.shape})"
        notes = []
        if self.corrected is not None and self.corrected.any():
            notes.append(f"continuity correction in {int(self.corrected.sum())} table(s)")
        if self.dropped is not None and self.dropped.any():
            notes.append(f"{int(self.dropped.sum())} double-zero table(s) dropped")
        frame = self.to_dataframe()
        body = frame.head(_REPR_ROWS).to_string(float_format=lambda x: f"{x:.6g}")
        if len(frame) > _REPR_ROWS:
            body += f"\n... {len(frame) - _REPR_ROWS} more rows"
        lines = [head, *(f"  {n}" for n in notes), body, "(95% Wald CI)"]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- helpers


def _hedges_j(df: FloatArray) -> FloatArray:
    """Exact small-sample correction J(m) = Γ(m/2) / (sqrt(m/2) Γ((m-1)/2)) for m > 1.

    Computed on the log scale as metafor's ``.cmicalc`` does, so it neither overflows nor
    loses the digits the approximation 1 - 3/(4m - 1) drops (m = 8: 0.902703 vs 0.903226).
    The difference of two large log-gammas costs digits as m grows: relative error ~1e-13 up
    to m = 1e3, ~4e-11 at m = 2e5, far below any statistical consequence.
    """
    return np.asarray(
        np.exp(
            special.gammaln(df / 2.0)
            - np.log(np.sqrt(df / 2.0))
            - special.gammaln((df - 1.0) / 2.0)
        ),
        dtype=np.float64,
    )


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False; got {value!r}.")
    return bool(value)


def _two_means(
    m1: ArrayLike, sd1: ArrayLike, n1: ArrayLike, m2: ArrayLike, sd2: ArrayLike, n2: ArrayLike
) -> dict[str, FloatArray]:
    # n >= 2 per arm: an SD needs two observations (metafor accepts n = 1 and yields NA or a
    # meaningless number)
    return broadcast(
        m1=as_float_array("m1", m1),
        sd1=check_positive("sd1", sd1),
        n1=check_integer("n1", n1, minimum=2),
        m2=as_float_array("m2", m2),
        sd2=check_positive("sd2", sd2),
        n2=check_integer("n2", n2, minimum=2),
    )


def _smd_from_d(d: FloatArray, n1: FloatArray, n2: FloatArray, vtype: str) -> EffectSizes:
    """Hedges' g and its variance from Cohen's d (pooled SD) and the arm sizes."""
    df = n1 + n2 - 2.0
    j = _hedges_j(df)
    yi = j * d
    inv_n = 1.0 / n1 + 1.0 / n2
    if vtype == "LS":
        vi = inv_n + yi**2 / (2.0 * (n1 + n2))
    elif vtype == "UB":
        vi = inv_n + (1.0 - (df - 2.0) / (df * j**2)) * yi**2
    else:  # LS2
        vi = j**2 * (inv_n + d**2 / (2.0 * (n1 + n2)))
    return EffectSizes("SMD", yi, vi, vtype=vtype)


# ------------------------------------------------------------------------ two-group means


def md(
    m1: ArrayLike,
    sd1: ArrayLike,
    n1: ArrayLike,
    m2: ArrayLike,
    sd2: ArrayLike,
    n2: ArrayLike,
    *,
    vtype: str = "LS",
) -> EffectSizes:
    """Raw mean difference ``m1 - m2`` (metafor ``measure="MD"``).

    Parameters
    ----------
    m1, sd1, n1 : array_like
        Mean, standard deviation (> 0) and size (whole number >= 2) of group 1 (treated).
    m2, sd2, n2 : array_like
        The same for group 2 (control).
    vtype : {"LS", "HO"}, default "LS"
        ``"LS"``: unequal variances, ``vi = sd1²/n1 + sd2²/n2``; ``"HO"``: pooled
        (homoscedastic) variance, ``vi = sp² (1/n1 + 1/n2)``.

    Returns
    -------
    EffectSizes
        ``measure="MD"``.

    Raises
    ------
    ValueError
        Non-finite input, an SD <= 0, an arm size below 2 or not whole, inputs that do not
        broadcast, or an unknown ``vtype``.

    Examples
    --------
    >>> float(md(5.0, 2.0, 10, 3.0, 2.0, 10).yi)
    2.0
    """
    check_choice("vtype", vtype, ("LS", "HO"))
    a = _two_means(m1, sd1, n1, m2, sd2, n2)
    yi = a["m1"] - a["m2"]
    if vtype == "LS":
        vi = a["sd1"] ** 2 / a["n1"] + a["sd2"] ** 2 / a["n2"]
    else:
        sp2 = ((a["n1"] - 1.0) * a["sd1"] ** 2 + (a["n2"] - 1.0) * a["sd2"] ** 2) / (
            a["n1"] + a["n2"] - 2.0
        )
        vi = sp2 * (1.0 / a["n1"] + 1.0 / a["n2"])
    return EffectSizes("MD", yi, vi, vtype=vtype)


def smd(
    m1: ArrayLike,
    sd1: ArrayLike,
    n1: ArrayLike,
    m2: ArrayLike,
    sd2: ArrayLike,
    n2: ArrayLike,
    *,
    vtype: str = "LS",
) -> EffectSizes:
    """Standardised mean difference, Hedges' g (metafor ``measure="SMD"``).

    ``g = J(m) (m1 - m2) / sp`` with the pooled SD ``sp`` and the exact correction
    ``J(m) = Γ(m/2) / (sqrt(m/2) Γ((m-1)/2))``, ``m = n1 + n2 - 2``.

    Parameters
    ----------
    m1, sd1, n1 : array_like
        Mean, standard deviation (> 0) and size (whole number >= 2) of group 1 (treated).
    m2, sd2, n2 : array_like
        The same for group 2 (control).
    vtype : {"LS", "UB", "LS2"}, default "LS"
        ``"LS"`` (large sample, metafor's default): ``1/n1 + 1/n2 + g²/(2(n1+n2))``;
        ``"UB"`` (unbiased): ``1/n1 + 1/n2 + (1 - (m-2)/(m J²)) g²``;
        ``"LS2"``: ``J² (1/n1 + 1/n2 + d²/(2(n1+n2)))`` with d the uncorrected value.

    Returns
    -------
    EffectSizes
        ``measure="SMD"``.

    Raises
    ------
    ValueError
        As :func:`md`.

    References
    ----------
    Hedges LV. Distribution theory for Glass's estimator of effect size and related
    estimators. J Educ Stat 1981;6(2):107-128 (J(m), equation 6e; the unbiased variance).
    Borenstein M. Effect sizes for continuous data. In: Cooper H, Hedges LV, Valentine JC
    (eds). The handbook of research synthesis and meta-analysis, 2nd ed. 2009:221-235.

    Examples
    --------
    >>> es = smd(5.0, 2.0, 10, 3.0, 2.0, 10)
    >>> round(float(es.yi), 6)
    0.957646
    """
    check_choice("vtype", vtype, ("LS", "UB", "LS2"))
    a = _two_means(m1, sd1, n1, m2, sd2, n2)
    sp = np.sqrt(
        ((a["n1"] - 1.0) * a["sd1"] ** 2 + (a["n2"] - 1.0) * a["sd2"] ** 2)
        / (a["n1"] + a["n2"] - 2.0)
    )
    return _smd_from_d((a["m1"] - a["m2"]) / sp, a["n1"], a["n2"], vtype)


def rom(
    m1: ArrayLike, sd1: ArrayLike, n1: ArrayLike, m2: ArrayLike, sd2: ArrayLike, n2: ArrayLike
) -> EffectSizes:
    """Log ratio of means ``log(m1 / m2)`` (metafor ``measure="ROM"``, ``vtype="LS"``).

    ``vi = sd1² / (n1 m1²) + sd2² / (n2 m2²)``.  Only for outcomes on a ratio scale, so
    both means must be > 0.

    Parameters
    ----------
    m1, sd1, n1, m2, sd2, n2 : array_like
        As :func:`md`, with ``m1 > 0`` and ``m2 > 0``.

    Returns
    -------
    EffectSizes
        ``measure="ROM"``.

    References
    ----------
    Hedges LV, Gurevitch J, Curtis PS. The meta-analysis of response ratios in experimental
    ecology. Ecology 1999;80(4):1150-1156.

    Examples
    --------
    >>> round(float(rom(20.0, 4.0, 30, 10.0, 3.0, 30).yi), 6)
    0.693147
    """
    check_positive("m1", m1)
    check_positive("m2", m2)
    a = _two_means(m1, sd1, n1, m2, sd2, n2)
    yi = np.log(a["m1"] / a["m2"])
    vi = a["sd1"] ** 2 / (a["n1"] * a["m1"] ** 2) + a["sd2"] ** 2 / (a["n2"] * a["m2"] ** 2)
    return EffectSizes("ROM", yi, vi, vtype="LS")


# ------------------------------------------------------------------------------ pre-post


def _prepost(
    m1: ArrayLike, m2: ArrayLike, n: ArrayLike, r: ArrayLike, **sds: ArrayLike
) -> dict[str, FloatArray]:
    # n >= 3: J(n - 1) is defined only for n - 1 > 1
    return broadcast(
        m1=as_float_array("m1", m1),
        m2=as_float_array("m2", m2),
        n=check_integer("n", n, minimum=3),
        r=check_in_interval("r", r, -1.0, 1.0),
        **{k: check_positive(k, v) for k, v in sds.items()},
    )


def smcr(
    m1: ArrayLike, m2: ArrayLike, sd1: ArrayLike, n: ArrayLike, r: ArrayLike, *, vtype: str = "LS"
) -> EffectSizes:
    """Standardised mean change with raw-score standardisation (metafor ``"SMCR"``).

    ``g = J(n-1) (m1 - m2) / sd1`` for one group measured twice: ``m1`` the follow-up mean,
    ``m2`` the baseline mean, ``sd1`` the baseline SD.

    Parameters
    ----------
    m1, m2 : array_like
        Follow-up and baseline means.
    sd1 : array_like
        Baseline standard deviation, > 0.
    n : array_like
        Group size, whole number >= 3.
    r : array_like
        Baseline-follow-up correlation in [-1, 1].
    vtype : {"LS", "LS2"}, default "LS"
        ``"LS"``: ``2(1-r)/n + g²/(2n)``; ``"LS2"``: ``J² (2(1-r)/n + d²/(2n))``.

    Returns
    -------
    EffectSizes
        ``measure="SMCR"``.

    References
    ----------
    Becker BJ. Synthesizing standardized mean-change measures. Br J Math Stat Psychol
    1988;41(2):257-278.
    Morris SB. Estimating effect sizes from pretest-posttest-control group designs. Organ
    Res Methods 2008;11(2):364-386.

    Examples
    --------
    >>> round(float(smcr(38.5, 30.6, 15.0, 20, 0.47).yi), 6)
    0.505553
    """
    check_choice("vtype", vtype, ("LS", "LS2"))
    a = _prepost(m1, m2, n, r, sd1=sd1)
    nn = a["n"]
    j = _hedges_j(nn - 1.0)
    d = (a["m1"] - a["m2"]) / a["sd1"]
    yi = j * d
    core = 2.0 * (1.0 - a["r"]) / nn
    vi = core + yi**2 / (2.0 * nn) if vtype == "LS" else j**2 * (core + d**2 / (2.0 * nn))
    return EffectSizes("SMCR", yi, vi, vtype=vtype)


def smcc(
    m1: ArrayLike,
    m2: ArrayLike,
    sd1: ArrayLike,
    sd2: ArrayLike,
    n: ArrayLike,
    r: ArrayLike,
    *,
    vtype: str = "LS",
) -> EffectSizes:
    """Standardised mean change with change-score standardisation (metafor ``"SMCC"``).

    ``g = J(n-1) (m1 - m2) / sd_change`` with ``sd_change = sqrt(sd1² + sd2² - 2 r sd1 sd2)``
    (:func:`change_sd`), for one group measured twice: ``m1`` the follow-up mean, ``m2`` the
    baseline mean (metafor's order); the change SD is symmetric in ``sd1`` and ``sd2``.

    Parameters
    ----------
    m1, m2 : array_like
        Follow-up and baseline means.
    sd1, sd2 : array_like
        Standard deviations at the two occasions, > 0.
    n : array_like
        Group size, whole number >= 3.
    r : array_like
        Correlation between the occasions in [-1, 1].
    vtype : {"LS", "LS2"}, default "LS"
        ``"LS"``: ``1/n + g²/(2n)``; ``"LS2"``: ``J² (1/n + d²/(2n))``.

    Returns
    -------
    EffectSizes
        ``measure="SMCC"``.

    Raises
    ------
    ValueError
        Bad input, or a change-score SD of 0 (``r = 1`` with ``sd1 == sd2``).

    References
    ----------
    Gibbons RD, Hedeker DR, Davis JM. Estimation of effect size from a series of experiments
    involving paired comparisons. J Educ Stat 1993;18(3):271-279.

    Examples
    --------
    >>> round(float(smcc(38.5, 30.6, 15.0, 11.6, 20, 0.47).yi), 6)
    0.541664
    """
    check_choice("vtype", vtype, ("LS", "LS2"))
    a = _prepost(m1, m2, n, r, sd1=sd1, sd2=sd2)
    sdd = _change_sd(a["sd1"], a["sd2"], a["r"])
    if np.any(sdd <= 0.0):
        idx = _first_bad(np.atleast_1d(sdd <= 0.0))
        raise ValueError(
            "the SD of change scores is 0 (r = 1 with sd1 == sd2), so no standardised change "
            f"exists; got sd1={np.atleast_1d(a['sd1'])[idx]:g}, "
            f"sd2={np.atleast_1d(a['sd2'])[idx]:g}, r={np.atleast_1d(a['r'])[idx]:g}"
            f"{_where(idx)}."
        )
    nn = a["n"]
    j = _hedges_j(nn - 1.0)
    d = (a["m1"] - a["m2"]) / sdd
    yi = j * d
    vi = 1.0 / nn + yi**2 / (2.0 * nn) if vtype == "LS" else j**2 * (1.0 / nn + d**2 / (2.0 * nn))
    return EffectSizes("SMCC", yi, vi, vtype=vtype)


# ---------------------------------------------------------------------------- 2x2 tables


_BINARY_NAMES = {"OR": "log odds ratio", "RR": "log risk ratio", "RD": "risk difference"}


def _check_tables(a: ArrayLike, b: ArrayLike, c: ArrayLike, d: ArrayLike) -> dict[str, FloatArray]:
    cells = broadcast(
        a=check_integer("a", a, minimum=0),
        b=check_integer("b", b, minimum=0),
        c=check_integer("c", c, minimum=0),
        d=check_integer("d", d, minimum=0),
    )
    for arm, (x, y) in (("treated arm (a + b)", ("a", "b")), ("control arm (c + d)", ("c", "d"))):
        empty = cells[x] + cells[y] == 0
        if np.any(empty):
            idx = _first_bad(np.atleast_1d(empty))
            raise ValueError(f"the {arm} has no participants{_where(idx)}; each arm needs >= 1.")
    return cells


def _corrected_tables(has_zero: BoolArray, add: float, to: str) -> BoolArray:
    """Which tables receive ``add`` in every cell (metafor's ``to`` rules)."""
    if add == 0.0 or to == "none":
        return np.zeros_like(has_zero)
    if to == "all":
        return np.ones_like(has_zero)
    if to == "only0" or has_zero.ndim == 0:
        return has_zero.copy()
    # if0all: every table of a meta-analysis (the last axis) when any of them has a zero
    return np.broadcast_to(has_zero.any(axis=-1, keepdims=True), has_zero.shape).copy()


def _binary(
    measure: str,
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike,
    d: ArrayLike,
    add: float,
    to: str,
    drop00: bool,
    vtype: str | None,
) -> EffectSizes:
    check_choice("to", to, ("only0", "all", "if0all", "none"))
    drop00 = _check_bool("drop00", drop00)
    if isinstance(add, bool) or not isinstance(add, (int, float, np.integer, np.floating)):
        raise ValueError(f"`add` must be a finite number >= 0; got {add!r}.")
    if not (np.isfinite(add) and add >= 0):
        raise ValueError(f"`add` must be a finite number >= 0; got {add!r}.")
    add = float(add)
    cells = _check_tables(a, b, c, d)
    dropped: BoolArray | None = None
    kept_rows: NDArray[np.intp] | None = None
    if drop00:
        if cells["a"].ndim > 1:
            raise ValueError(
                "`drop00=True` removes tables and needs 1-D inputs; got shape "
                f"{cells['a'].shape}. For batches, keep drop00=False."
            )
        cells = {k: np.atleast_1d(v) for k, v in cells.items()}
        # metafor's definition: no events in either arm, or only events in both
        dropped = ((cells["a"] == 0) & (cells["c"] == 0)) | ((cells["b"] == 0) & (cells["d"] == 0))
        kept_rows = np.flatnonzero(~dropped)
        cells = {k: v[~dropped] for k, v in cells.items()}

    def where(mask: BoolArray) -> tuple[str, tuple[int, ...]]:
        # the index in the caller's input, also after drop00 removed tables
        pos = _first_bad(np.atleast_1d(mask))
        return (_where(pos) if kept_rows is None else _where((int(kept_rows[pos[0]]),))), pos

    ca, cb, cc, cd = cells["a"], cells["b"], cells["c"], cells["d"]
    corrected = _corrected_tables((ca == 0) | (cb == 0) | (cc == 0) | (cd == 0), add, to)
    shift = np.where(corrected, add, 0.0)
    ca, cb, cc, cd = ca + shift, cb + shift, cc + shift, cd + shift
    n1, n2 = ca + cb, cc + cd
    p1, p2 = ca / n1, cc / n2
    with np.errstate(divide="ignore", invalid="ignore"):
        # the formulas and their order of operations are metafor's, for bitwise-close parity
        if measure == "OR":
            yi = np.log(p1 / (1.0 - p1)) - np.log(p2 / (1.0 - p2))
            vi = 1.0 / ca + 1.0 / cb + 1.0 / cc + 1.0 / cd
        elif measure == "RR":
            yi = np.log(p1) - np.log(p2)
            vi = 1.0 / ca - 1.0 / n1 + 1.0 / cc - 1.0 / n2
        elif vtype == "UB":
            yi = p1 - p2
            vi = p1 * (1.0 - p1) / (n1 - 1.0) + p2 * (1.0 - p2) / (n2 - 1.0)
        else:
            yi = p1 - p2
            vi = p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2
    bad = ~(np.isfinite(yi) & np.isfinite(vi))
    if np.any(bad):
        at, pos = where(bad)
        shown = ", ".join(f"{k}={np.atleast_1d(cells[k])[pos]:g}" for k in "abcd")
        raise ValueError(
            f"the {_BINARY_NAMES[measure]} is undefined for the table{at} ({shown}) with "
            f"add={add:g}, to={to!r}: a zero cell is left uncorrected. Use the default "
            "to='only0' with add > 0, or drop00=True for double-zero tables."
        )
    if np.any(vi == 0.0):
        at, _ = where(vi == 0.0)
        warnings.warn(
            f"the sampling variance is 0 for the table{at} (both risks are 0 or 1); "
            "inverse-variance weighting cannot use it.",
            DataWarning,
            stacklevel=3,
        )
    return EffectSizes(measure, yi, vi, vtype=vtype, corrected=corrected, dropped=dropped)


def odds_ratio(
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike,
    d: ArrayLike,
    *,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
) -> EffectSizes:
    """Log odds ratio ``log(a d / (b c))`` with Woolf's variance (metafor ``"OR"``).

    ``vi = 1/a + 1/b + 1/c + 1/d`` after the continuity correction.

    Parameters
    ----------
    a, b : array_like
        Group 1 (treated): events and non-events, whole numbers >= 0 (see
        :func:`table_from_events` to build them from events and arm sizes).
    c, d : array_like
        Group 2 (control): events and non-events.
    add : float, default 0.5
        Continuity correction added to the cells of the tables chosen by ``to``.
    to : {"only0", "all", "if0all", "none"}, default "only0"
        ``"only0"``: tables with a zero cell; ``"all"``: every table; ``"if0all"``: every
        table of a meta-analysis (along the last axis) when any of them has a zero cell;
        ``"none"``: no correction (a zero cell where the measure is undefined then raises).
    drop00 : bool, default False
        Remove double-zero tables (no events in either arm, or only events in both) before
        anything else.  The result then holds the kept tables; ``.dropped`` marks the removed
        ones.  Needs 1-D inputs.  With the default False they are kept and corrected, as in
        metafor (their log OR and log RR are 0 only when the arms have equal size).

    Returns
    -------
    EffectSizes
        ``measure="OR"``; ``.corrected`` marks the corrected tables.

    Raises
    ------
    ValueError
        Negative or non-whole counts, an empty arm, inputs that do not broadcast, a zero
        cell left uncorrected, or ``drop00=True`` with batch axes.

    References
    ----------
    Woolf B. On estimating the relation between blood group and disease. Ann Hum Genet
    1955;19(4):251-253.

    Examples
    --------
    >>> round(float(odds_ratio(4, 119, 11, 128).yi), 6)
    -0.938694
    """
    return _binary("OR", a, b, c, d, add, to, drop00, None)


def risk_ratio(
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike,
    d: ArrayLike,
    *,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
) -> EffectSizes:
    """Log risk ratio ``log((a/n1) / (c/n2))`` (metafor ``"RR"``).

    ``vi = 1/a - 1/n1 + 1/c - 1/n2`` after the continuity correction.

    Parameters
    ----------
    a, b, c, d : array_like
        Cells: treated events, treated non-events, control events, control non-events.
    add, to, drop00
        Continuity correction and double-zero handling, as in :func:`odds_ratio`.

    Returns
    -------
    EffectSizes
        ``measure="RR"``.

    Raises
    ------
    ValueError
        As :func:`odds_ratio`.

    Examples
    --------
    >>> round(float(risk_ratio(4, 119, 11, 128).yi), 6)
    -0.889311
    """
    return _binary("RR", a, b, c, d, add, to, drop00, None)


def risk_difference(
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike,
    d: ArrayLike,
    *,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
    vtype: str = "LS",
) -> EffectSizes:
    """Risk difference ``a/n1 - c/n2`` (metafor ``"RD"``).

    The correction applies as for the ratios (metafor's default, although the risk
    difference is defined with zero cells; pass ``to="none"`` to leave tables as they are).

    Parameters
    ----------
    a, b, c, d : array_like
        Cells: treated events, treated non-events, control events, control non-events.
    add, to, drop00
        Continuity correction and double-zero handling, as in :func:`odds_ratio`.
    vtype : {"LS", "UB"}, default "LS"
        ``"LS"``: ``p1(1-p1)/n1 + p2(1-p2)/n2``; ``"UB"``: the same with ``n - 1``.

    Returns
    -------
    EffectSizes
        ``measure="RD"``.

    Raises
    ------
    ValueError
        As :func:`odds_ratio`.

    Warns
    -----
    DataWarning
        A sampling variance of exactly 0 (both risks 0 or 1 without correction).

    Examples
    --------
    >>> round(float(risk_difference(4, 119, 11, 128).yi), 6)
    -0.046616
    """
    check_choice("vtype", vtype, ("LS", "UB"))
    return _binary("RD", a, b, c, d, add, to, drop00, vtype)


# --------------------------------------------------------------------------- correlations


def zcor(r: ArrayLike, n: ArrayLike) -> EffectSizes:
    """Fisher's z-transformed correlation ``atanh(r)`` with ``vi = 1/(n - 3)`` (``"ZCOR"``).

    Parameters
    ----------
    r : array_like
        Pearson correlations in the open interval (-1, 1).
    n : array_like
        Sample sizes, whole numbers >= 4.

    Returns
    -------
    EffectSizes
        ``measure="ZCOR"``.

    References
    ----------
    Fisher RA. On the "probable error" of a coefficient of correlation deduced from a small
    sample. Metron 1921;1:3-32.

    Examples
    --------
    >>> round(float(zcor(0.5, 28).yi), 6)
    0.549306
    """
    arrs = broadcast(
        r=check_in_interval("r", r, -1.0, 1.0, closed="neither"),
        n=check_integer("n", n, minimum=4),
    )
    # arctanh rather than metafor's log((1+r)/(1-r))/2: equal in exact arithmetic and
    # accurate to the last digit for |r| near 0
    return EffectSizes("ZCOR", np.arctanh(arrs["r"]), 1.0 / (arrs["n"] - 3.0))
