"""Closed-form power and sample size for comparisons of means.

Two-sample t and z tests (equal or unequal SDs and allocation), a general solver for any one of
sample size, power, effect and allocation ratio, and the paired / one-sample t test (crossover,
ANCOVA and responder endpoints live in :mod:`fibrosim.trials.endpoints`).  Every argument
broadcasts, so a whole scenario grid is one call; power is returned as an array, sample sizes as a
:class:`SampleSize` result.

Conventions: ``n_per_arm`` is the size of the control arm and the treatment arm has
``ratio * n_per_arm`` subjects; ``alpha`` is the level of the test as run, so ``sided=2`` puts
``alpha / 2`` in each tail and ``sided=1`` tests in the direction of ``delta`` (so a benefit coded
as a negative change on a lower-is-better scale is handled without flipping signs).  Power of a
two-sided test counts both tails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, cast

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from scipy.optimize import elementwise

from fibrosim._checks import (
    FloatArray,
    as_float_array,
    broadcast,
    check_in_interval,
    check_positive,
    check_probability,
    check_sided,
)

__all__ = [
    "SampleSize",
    "TTestSolution",
    "paired_sd_diff",
    "power_paired",
    "power_ttest",
    "power_ztest",
    "sample_size_paired",
    "sample_size_ttest",
    "sample_size_ztest",
    "solve_ttest",
]

# The far tail of a two-sided test, P(T < -c | ncp), is computed as P(T > c | -ncp): SciPy's
# nct.cdf(-c, df, ncp) returns NaN when the term is tiny (df = 1998, ncp = 11.2; NaN seen for
# terms up to 5e-16), while nct.sf(c, df, -ncp) is finite on n = 2..1e7, d = 1e-3..3.  The term is
# bounded by P(T < 0) = Phi(-ncp); below this bound it cannot change a power value in double
# precision and it is set to 0.
_NEGLIGIBLE_TAIL = 1e-20
# Largest sample size per arm the solvers search (beyond it a trial is not a design question).
_N_MAX = 1e9
_ROOT_TOL = {"xrtol": 1e-13, "xatol": 1e-12}


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
def _frame(obj: Any) -> pd.DataFrame:
    """Broadcast a result's array fields and lay them out as DataFrame columns."""
    names = [f.name for f in fields(obj)]
    values = np.broadcast_arrays(*(np.asarray(getattr(obj, n)) for n in names))
    return pd.DataFrame({n: np.ravel(v) for n, v in zip(names, values, strict=True)})


def _table(obj: Any, max_rows: int = 10) -> str:
    frame = _frame(obj)
    body = frame.head(max_rows).to_string(index=False, float_format=lambda x: f"{x:.6g}")
    more = f"\n... ({len(frame)} rows)" if len(frame) > max_rows else ""
    return f"{type(obj).__name__}\n{body}{more}"


class _Tabular:
    """Mixin for results whose fields are broadcastable arrays: one DataFrame row each."""

    __slots__ = ()

    def to_dataframe(self) -> pd.DataFrame:
        """One row per scenario, one column per field."""
        return _frame(self)

    def __repr__(self) -> str:
        return _table(self)


@dataclass(frozen=True, slots=True, repr=False)
class SampleSize(_Tabular):
    """Sample size of a two-arm design.

    Attributes
    ----------
    n_per_arm : ndarray
        Unrounded size of the control arm that gives the requested power.
    n_per_arm_rounded : ndarray
        ``ceil(n_per_arm)``.
    power_attained : ndarray
        Power at ``n_per_arm_rounded`` (same allocation ratio).
    n_total : ndarray
        Unrounded total, ``n_per_arm * (1 + ratio)`` (for a crossover or paired design, the
        number of subjects, equal to ``n_per_arm``).
    """

    n_per_arm: FloatArray
    n_per_arm_rounded: FloatArray
    power_attained: FloatArray
    n_total: FloatArray


@dataclass(frozen=True, slots=True)
class TTestSolution:
    """All four quantities of a two-sample t design after :func:`solve_ttest`.

    Attributes
    ----------
    delta : ndarray
        Difference in means (treatment minus control); a solved ``delta`` is positive.
    n_per_arm : ndarray
        Size of the control arm (unrounded when solved).
    power : ndarray
        Power of the test.
    ratio : ndarray
        Treatment-arm size over control-arm size.
    solved_for : str
        Which quantity was unknown.
    """

    delta: FloatArray
    n_per_arm: FloatArray
    power: FloatArray
    ratio: FloatArray
    solved_for: str

    def to_dataframe(self) -> pd.DataFrame:
        """One row per scenario; ``solved_for`` is kept in ``DataFrame.attrs``."""
        frame = pd.DataFrame(
            {
                n: np.ravel(v)
                for n, v in zip(
                    ("delta", "n_per_arm", "power", "ratio"),
                    np.broadcast_arrays(self.delta, self.n_per_arm, self.power, self.ratio),
                    strict=True,
                )
            }
        )
        frame.attrs["solved_for"] = self.solved_for
        return frame

    def __repr__(self) -> str:
        body = self.to_dataframe().head(10).to_string(index=False)
        return f"TTestSolution (solved for {self.solved_for})\n{body}"


# --------------------------------------------------------------------------------------------
# numerical cores (arrays in, arrays out; inputs already checked)
# --------------------------------------------------------------------------------------------
def _t_power(ncp: FloatArray, df: FloatArray, alpha: FloatArray, sided: int) -> FloatArray:
    """Power of a t test with ``ncp >= 0``; two-sided power adds the far tail."""
    crit = stats.t.isf(alpha / sided, df)
    power = stats.nct.sf(crit, df, ncp)
    if sided == 2:
        negligible = stats.norm.cdf(-ncp) < _NEGLIGIBLE_TAIL
        far = stats.nct.sf(crit, df, -np.where(negligible, 0.0, ncp))
        power = power + np.where(negligible, 0.0, far)
    out = np.asarray(power, dtype=np.float64)
    if np.any(np.isnan(out)):
        bad = np.isnan(out)
        df_b, ncp_b = np.broadcast_arrays(df, ncp, bad)[:2]
        raise FloatingPointError(
            f"noncentral t power evaluated to NaN (df={df_b[bad].ravel()[0]}, "
            f"ncp={ncp_b[bad].ravel()[0]})."
        )
    return out


def _z_power(ncp: FloatArray, alpha: FloatArray, sided: int) -> FloatArray:
    crit = stats.norm.isf(alpha / sided)
    power = stats.norm.cdf(ncp - crit)
    if sided == 2:
        power = power + stats.norm.cdf(-ncp - crit)
    return np.asarray(power, dtype=np.float64)


def _two_sample_ncp_df(
    delta: FloatArray,
    sd: FloatArray,
    n_c: FloatArray,
    ratio: FloatArray,
    sd_c: FloatArray | None,
) -> tuple[FloatArray, FloatArray]:
    """Noncentrality and df; Welch-Satterthwaite df when the control SD differs."""
    n_t = ratio * n_c
    if sd_c is None:
        se = sd * np.sqrt(1.0 / n_t + 1.0 / n_c)
        df = n_t + n_c - 2.0
    else:
        v_t, v_c = sd**2 / n_t, sd_c**2 / n_c
        se = np.sqrt(v_t + v_c)
        df = (v_t + v_c) ** 2 / (v_t**2 / (n_t - 1.0) + v_c**2 / (n_c - 1.0))
    return np.abs(delta) / se, df


def _two_sample_se(
    s: FloatArray | float, n_c: FloatArray | float, ratio: FloatArray | float
) -> FloatArray:
    """SE of a difference in means: common SD ``s``, arms of ``ratio * n_c`` and ``n_c``."""
    return np.asarray(s * np.sqrt(1.0 / (ratio * n_c) + 1.0 / n_c), dtype=np.float64)


def _first_index(mask: FloatArray | np.ndarray[Any, Any]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(np.atleast_1d(mask))[0])


def _index_text(mask: np.ndarray[Any, Any]) -> str:
    idx = _first_index(mask)
    if not idx or (len(idx) == 1 and np.ndim(mask) == 0):
        return ""
    return f" (first at index {idx[0] if len(idx) == 1 else idx})"


def _solve_increasing(
    func: Callable[..., FloatArray],
    target: FloatArray,
    low: FloatArray,
    high: FloatArray,
    args: tuple[FloatArray, ...],
    *,
    high_limit: float,
    below_message: str,
    above_message: str,
) -> FloatArray:
    """Root of ``func(x, *args) = target`` for ``func`` increasing in ``x``, elementwise.

    The bracket is widened geometrically up to ``high_limit``.  When ``func(low) >= target``
    or ``func(high_limit) < target`` no root exists and the message (formatted with the first
    offending index) is raised: the solver never returns a bracket end.
    """
    target, low, high, *args_b = np.broadcast_arrays(target, low, high, *args)
    args_t = tuple(np.asarray(a, dtype=np.float64) for a in args_b)
    at_low = func(low, *args_t)
    if np.any(at_low >= target):
        raise ValueError(below_message + _index_text(at_low >= target) + ".")
    high = np.array(high, dtype=np.float64)
    for _ in range(80):
        short = func(high, *args_t) < target
        if not np.any(short) or np.all(high[short] >= high_limit):
            break
        high = np.where(short, np.minimum(high * 4.0, high_limit), high)
    short = func(high, *args_t) < target
    if np.any(short):
        raise ValueError(above_message + _index_text(short) + ".")

    def gap(x: FloatArray, *a: FloatArray) -> FloatArray:
        return func(x, *a[:-1]) - a[-1]

    find_root: Any = elementwise.find_root
    res = find_root(gap, (low, high), args=(*args_t, target), tolerances=_ROOT_TOL)
    if not np.all(res.success):
        raise ArithmeticError(
            "root finding did not converge" + _index_text(~np.asarray(res.success)) + "."
        )
    return np.asarray(res.x, dtype=np.float64)


def _z_quantile_sum(a: FloatArray, p: FloatArray, sided: int) -> FloatArray:
    """``z_{1 - alpha / sided} + z_{power}``: the normal-approximation design constant."""
    return np.asarray(stats.norm.isf(a / sided) + stats.norm.isf(1.0 - p), dtype=np.float64)


def _solve_sample_size(
    func: Callable[..., FloatArray],
    target: FloatArray,
    low: FloatArray,
    high: FloatArray,
    args: tuple[FloatArray, ...],
    smallest: str,
    unit: str = "subjects per arm",
) -> FloatArray:
    """Unrounded sample size at which ``func`` (power, increasing in it) reaches ``target``.

    ``smallest`` names the smallest design (``low``) in the message raised when it already
    exceeds the target; ``unit`` what the size counts.
    """
    return _solve_increasing(
        func,
        target,
        low,
        high,
        args,
        high_limit=_N_MAX,
        below_message=f"the requested `power` is already exceeded with {smallest}",
        above_message=f"the requested `power` needs more than {_N_MAX:g} {unit}",
    )


def _rounded_up(
    n: FloatArray, power_at: Callable[[FloatArray], FloatArray], n_total: FloatArray
) -> SampleSize:
    """The :class:`SampleSize` of an unrounded size ``n``, with the power at its ceiling."""
    n_up = np.ceil(n - 1e-9)  # a root within solver tolerance of an integer is that integer
    return SampleSize(n, n_up, power_at(n_up), n_total)


# --------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------
def _check_alpha_sided(alpha: ArrayLike, sided: int) -> tuple[FloatArray, int]:
    return check_probability("alpha", alpha), check_sided("sided", sided)


def _check_n(name: str, n: ArrayLike, minimum: float = 2.0) -> FloatArray:
    arr = as_float_array(name, n)
    if np.any(arr < minimum):
        raise ValueError(
            f"`{name}` must be >= {minimum:g}; got "
            f"{np.atleast_1d(arr)[_first_index(arr < minimum)]}{_index_text(arr < minimum)}."
        )
    return arr


def _check_power(power: ArrayLike, alpha: FloatArray) -> FloatArray:
    """Target power must lie strictly between the type-I error and 1."""
    p = check_probability("power", power)
    p, a = np.broadcast_arrays(p, alpha)
    bad = p <= a
    if np.any(bad):
        idx = _first_index(bad)
        raise ValueError(
            f"`power` must exceed the rejection rate at delta = 0, alpha = "
            f"{np.atleast_1d(a)[idx]:g}; got {np.atleast_1d(p)[idx]:g}{_index_text(bad)}: "
            "no sample size reaches it."
        )
    return np.asarray(p, dtype=np.float64)


def _check_size_args(
    delta: ArrayLike, sd_name: str, sd: ArrayLike, power: ArrayLike, alpha: ArrayLike, sided: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, int]:
    """Checked ``(delta != 0, sd, power, alpha, sided)`` of a sample-size question."""
    d = _check_delta_nonzero(delta)
    s = check_positive(sd_name, sd)
    a, sided = _check_alpha_sided(alpha, sided)
    return d, s, _check_power(power, a), a, sided


def _check_two_sample(
    delta: ArrayLike,
    sd: ArrayLike,
    n_per_arm: ArrayLike,
    alpha: ArrayLike,
    sided: int,
    ratio: ArrayLike,
    sd_c: ArrayLike | None,
    check_n: Callable[[str, ArrayLike], FloatArray],
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, int, FloatArray, FloatArray | None]:
    """Checked arguments of a two-sample power question, broadcast against each other.

    Returns ``(delta, sd, n_per_arm, alpha, sided, ratio, sd_c)``; ``check_n`` checks the arm
    size (its rule differs between the t and the z test).
    """
    d = as_float_array("delta", delta)
    s = check_positive("sd", sd)
    n = check_n("n_per_arm", n_per_arm)
    a, sided = _check_alpha_sided(alpha, sided)
    r = check_positive("ratio", ratio)
    sc = None if sd_c is None else check_positive("sd_c", sd_c)
    broadcast(delta=d, sd=s, n_per_arm=n, alpha=a, ratio=r, sd_c=s if sc is None else sc)
    return d, s, n, a, sided, r, sc


def _check_delta_nonzero(delta: ArrayLike) -> FloatArray:
    d = as_float_array("delta", delta)
    if np.any(d == 0):
        raise ValueError(
            f"`delta` must be non-zero to solve for a sample size (power at delta = 0 equals "
            f"alpha for every n); got 0{_index_text(d == 0)}."
        )
    return d


def _check_ratio_arms(n_per_arm: FloatArray, ratio: FloatArray) -> None:
    n_t = np.broadcast_arrays(n_per_arm * ratio)[0]
    if np.any(n_t < 2):
        raise ValueError(
            "the treatment arm `n_per_arm * ratio` must be >= 2; got "
            f"{np.atleast_1d(n_t)[_first_index(n_t < 2)]:g}{_index_text(n_t < 2)}."
        )


# --------------------------------------------------------------------------------------------
# two-sample t and z
# --------------------------------------------------------------------------------------------
def power_ttest(
    delta: ArrayLike,
    sd: ArrayLike,
    n_per_arm: ArrayLike,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
    *,
    ratio: ArrayLike = 1.0,
    sd_c: ArrayLike | None = None,
) -> FloatArray:
    """Power of the two-sample t test from the exact noncentral t distribution.

    Parameters
    ----------
    delta : array_like
        Difference in means, treatment minus control, on the outcome scale.
    sd : array_like
        Common SD (> 0); the treatment-arm SD when ``sd_c`` is given.
    n_per_arm : array_like
        Size of the control arm (>= 2, need not be whole).
    alpha : array_like, default 0.05
        Level of the test in (0, 1).
    sided : {1, 2}, default 2
        Two-sided (``alpha / 2`` per tail, both tails counted) or one-sided in the direction
        of ``delta``.
    ratio : array_like, default 1.0
        Treatment-arm size over control-arm size.
    sd_c : array_like, optional
        Control-arm SD.  When given, the Welch test with Satterthwaite degrees of freedom is
        used.

    Returns
    -------
    ndarray
        Power, with the broadcast shape of the arguments.

    Raises
    ------
    ValueError
        If ``sd <= 0``, ``n_per_arm < 2``, ``ratio <= 0``, the treatment arm has fewer than 2
        subjects, ``alpha`` is outside (0, 1) or ``sided`` is not 1 or 2.

    References
    ----------
    Cohen J (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed., ch. 2.
    Satterthwaite FE (1946). Biometrics Bulletin 2:110-114.

    Examples
    --------
    >>> float(power_ttest(0.5, 1.0, 64).round(4))
    0.8015
    """
    d, s, n, a, sided, r, sc = _check_two_sample(
        delta, sd, n_per_arm, alpha, sided, ratio, sd_c, _check_n
    )
    _check_ratio_arms(n, r)
    ncp, df = _two_sample_ncp_df(d, s, n, r, sc)
    return _t_power(ncp, df, a, sided)


def power_ztest(
    delta: ArrayLike,
    sd: ArrayLike,
    n_per_arm: ArrayLike,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
    *,
    ratio: ArrayLike = 1.0,
    sd_c: ArrayLike | None = None,
) -> FloatArray:
    """Power of the two-sample z test (known SDs), both tails counted when two-sided.

    Parameters are those of :func:`power_ttest`; ``n_per_arm`` must be > 0.

    Returns
    -------
    ndarray
        Power, with the broadcast shape of the arguments.

    Examples
    --------
    >>> float(power_ztest(0.5, 1.0, 64).round(4))
    0.8074
    """
    d, s, n, a, sided, r, sc = _check_two_sample(
        delta, sd, n_per_arm, alpha, sided, ratio, sd_c, check_positive
    )
    sc = s if sc is None else sc
    se = np.sqrt(s**2 / (r * n) + sc**2 / n)
    return _z_power(np.abs(d) / se, a, sided)


def _sample_size_t(
    d: FloatArray, s: FloatArray, p: FloatArray, a: FloatArray, sided: int, r: FloatArray
) -> FloatArray:
    """Unrounded control-arm size of the two-sample t test (arrays already checked)."""
    z = _z_quantile_sum(a, p, sided)
    n_z = (z * s / np.abs(d)) ** 2 * (1.0 + 1.0 / r)
    # smallest control arm with both arms >= 2 subjects
    n_low = np.maximum(2.0, 2.0 / r)
    high = np.maximum(n_low * 1.5, n_z * 1.2 + 4.0)

    def fn(n: FloatArray, d: FloatArray, s: FloatArray, r: FloatArray, a: FloatArray) -> FloatArray:
        ncp, df = _two_sample_ncp_df(d, s, n, r, None)
        return _t_power(ncp, df, a, sided)

    return _solve_sample_size(
        fn,
        p,
        n_low,
        high,
        (d, s, r, a),
        "2 subjects per arm (the smallest t-test design); lower `power` or `delta`",
    )


def sample_size_ttest(
    delta: ArrayLike,
    sd: ArrayLike,
    power: ArrayLike = 0.8,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
    *,
    ratio: ArrayLike = 1.0,
) -> SampleSize:
    """Control-arm sample size of the two-sample t test (exact noncentral t).

    Parameters
    ----------
    delta : array_like
        Difference in means to detect (non-zero).
    sd : array_like
        Common SD (> 0).
    power : array_like, default 0.8
        Target power, in (alpha, 1).
    alpha : array_like, default 0.05
        Level of the test in (0, 1).
    sided : {1, 2}, default 2
        Sidedness of the test.
    ratio : array_like, default 1.0
        Treatment-arm size over control-arm size.

    Returns
    -------
    SampleSize
        ``n_per_arm`` unrounded (solved to ~1e-13 relative), its ceiling and the power there.

    Raises
    ------
    ValueError
        If ``delta == 0``, ``power <= alpha``, or the inputs are outside their ranges; also if
        2 subjects per arm already exceed the target power.

    References
    ----------
    Cohen J (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed.
    (as implemented in R ``pwr::pwr.t.test`` and ``stats::power.t.test``).

    Examples
    --------
    >>> float(sample_size_ttest(0.5, 1.0).n_per_arm.round(4))
    63.7656
    """
    d, s, p, a, sided = _check_size_args(delta, "sd", sd, power, alpha, sided)
    r = check_positive("ratio", ratio)
    b = broadcast(d=d, s=s, p=p, a=a, r=r)
    n = _sample_size_t(b["d"], b["s"], b["p"], b["a"], sided, b["r"])

    def power_at(n_up: FloatArray) -> FloatArray:
        return _t_power(*_two_sample_ncp_df(b["d"], b["s"], n_up, b["r"], None), b["a"], sided)

    return _rounded_up(n, power_at, n * (1.0 + b["r"]))


def sample_size_ztest(
    delta: ArrayLike,
    sd: ArrayLike,
    power: ArrayLike = 0.8,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
    *,
    ratio: ArrayLike = 1.0,
) -> SampleSize:
    """Control-arm sample size of the two-sample z test (closed form).

    ``n = (z_{1-alpha/sided} + z_{power})^2 * sd^2 * (1 + 1/ratio) / delta^2``; the far tail
    of a two-sided test is left out of the formula, as in every textbook and in gsDesign's
    ``nNormal``; ``power_attained`` counts it.

    Parameters are those of :func:`sample_size_ttest`.

    Returns
    -------
    SampleSize

    References
    ----------
    Anderson K. gsDesign ``nNormal`` (keaven/gsDesign: R/nNormal.R).

    Examples
    --------
    >>> float(sample_size_ztest(0.5, 1.0).n_per_arm.round(4))
    62.791
    """
    d, s, p, a, sided = _check_size_args(delta, "sd", sd, power, alpha, sided)
    r = check_positive("ratio", ratio)
    z = _z_quantile_sum(a, p, sided)
    n = np.asarray((z * s / d) ** 2 * (1.0 + 1.0 / r), dtype=np.float64)

    def power_at(n_up: FloatArray) -> FloatArray:
        return _z_power(np.abs(d) / _two_sample_se(s, n_up, r), a, sided)

    return _rounded_up(n, power_at, n * (1.0 + r))


def solve_ttest(
    delta: ArrayLike | None = None,
    sd: ArrayLike = 1.0,
    n_per_arm: ArrayLike | None = None,
    power: ArrayLike | None = None,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
    *,
    ratio: ArrayLike | None = 1.0,
) -> TTestSolution:
    """Solve the two-sample t design for whichever one of four quantities is ``None``.

    Parameters
    ----------
    delta, n_per_arm, power, ratio : array_like or None
        Exactly one must be ``None``: that one is solved for.  A solved ``delta`` is the
        positive difference; a solved ``ratio`` is the treatment-to-control size ratio for the
        given control arm.
    sd : array_like, default 1.0
        Common SD (with the default, ``delta`` is the standardised difference).
    alpha, sided
        As in :func:`power_ttest`.

    Returns
    -------
    TTestSolution

    Raises
    ------
    ValueError
        If not exactly one quantity is ``None``, or no solution exists: the message says why
        (power not above alpha, ``delta == 0``, power unreachable even with an unlimited
        treatment arm, ...).

    Examples
    --------
    >>> sol = solve_ttest(delta=0.5, n_per_arm=64, power=None)
    >>> float(sol.power.round(4))
    0.8015
    """
    given = {"delta": delta, "n_per_arm": n_per_arm, "power": power, "ratio": ratio}
    missing = [k for k, v in given.items() if v is None]
    if len(missing) != 1:
        raise ValueError(
            "exactly one of `delta`, `n_per_arm`, `power`, `ratio` must be None (the unknown); "
            f"got None for {missing or 'none of them'}."
        )
    unknown = missing[0]
    # the three known quantities (None only for `unknown`, which is not read below)
    delta = cast(ArrayLike, delta)
    n_per_arm = cast(ArrayLike, n_per_arm)
    ratio = cast(ArrayLike, ratio)
    s = check_positive("sd", sd)
    a, sided = _check_alpha_sided(alpha, sided)

    if unknown == "power":
        p_out = power_ttest(delta, sd, n_per_arm, alpha, sided, ratio=ratio)
        b = broadcast(
            d=as_float_array("delta", delta),
            n=as_float_array("n_per_arm", n_per_arm),
            r=as_float_array("ratio", ratio),
            p=p_out,
        )
        return TTestSolution(b["d"], b["n"], b["p"], b["r"], unknown)

    p = _check_power(power, a) if power is not None else None
    if unknown == "n_per_arm":
        ss = sample_size_ttest(delta, sd, p, a, sided, ratio=ratio)  # type: ignore[arg-type]
        b = broadcast(
            d=as_float_array("delta", delta),
            n=ss.n_per_arm,
            p=np.asarray(p, dtype=np.float64),
            r=as_float_array("ratio", ratio),
        )
        return TTestSolution(b["d"], b["n"], b["p"], b["r"], unknown)

    assert p is not None
    n = _check_n("n_per_arm", n_per_arm)
    if unknown == "delta":
        r = check_positive("ratio", ratio)
        _check_ratio_arms(n, r)
        b = broadcast(s=s, n=n, p=p, a=a, r=r)

        def in_delta(
            x: FloatArray, s_: FloatArray, n_: FloatArray, r_: FloatArray, a_: FloatArray
        ) -> FloatArray:
            ncp, df = _two_sample_ncp_df(x, s_, n_, r_, None)
            return _t_power(ncp, df, a_, sided)

        z = _z_quantile_sum(b["a"], b["p"], sided)
        high = 2.0 * z * b["s"] * np.sqrt(1.0 / (b["r"] * b["n"]) + 1.0 / b["n"]) + 1e-6
        d_out = _solve_increasing(
            in_delta,
            b["p"],
            np.zeros_like(high),
            high,
            (b["s"], b["n"], b["r"], b["a"]),
            high_limit=1e12 * float(np.max(b["s"])),
            below_message="no positive `delta` solves the design",
            above_message="the requested `power` is not reached for any finite `delta`",
        )
        return TTestSolution(d_out, b["n"], b["p"], b["r"], unknown)

    # unknown == "ratio": power rises with the treatment arm but is capped by the z test
    # with only the control arm's sampling error.
    d = _check_delta_nonzero(delta)
    b = broadcast(d=d, s=s, n=n, p=p, a=a)
    cap = _z_power(np.abs(b["d"]) / (b["s"] / np.sqrt(b["n"])), b["a"], sided)
    bad = cap <= b["p"]
    if np.any(bad):
        raise ValueError(
            "the requested `power` cannot be reached by enlarging the treatment arm: with "
            f"`n_per_arm` = {np.atleast_1d(b['n'])[_first_index(bad)]:g} control subjects even "
            f"an unlimited treatment arm gives power < {np.atleast_1d(cap)[_first_index(bad)]:.6g}"
            f"{_index_text(bad)}; enlarge the control arm"
        )

    def in_ratio(
        x: FloatArray, d_: FloatArray, s_: FloatArray, n_: FloatArray, a_: FloatArray
    ) -> FloatArray:
        ncp, df = _two_sample_ncp_df(d_, s_, n_, x, None)
        return _t_power(ncp, df, a_, sided)

    low = 2.0 / b["n"]
    r_out = _solve_increasing(
        in_ratio,
        b["p"],
        low,
        np.maximum(4.0 * low, 1.0),
        (b["d"], b["s"], b["n"], b["a"]),
        high_limit=1e9,
        below_message="the requested `power` is already exceeded with a treatment arm of 2",
        above_message="the requested `power` needs a treatment arm over 1e9 times the control",
    )
    return TTestSolution(b["d"], b["n"], b["p"], r_out, unknown)


# --------------------------------------------------------------------------------------------
# paired / one-sample t and the AB/BA crossover
# --------------------------------------------------------------------------------------------
def paired_sd_diff(sd1: ArrayLike, sd2: ArrayLike, rho: ArrayLike) -> FloatArray:
    """SD of a within-pair difference, ``sqrt(sd1^2 + sd2^2 - 2 rho sd1 sd2)``.

    Parameters
    ----------
    sd1, sd2 : array_like
        SDs of the two paired measurements (> 0).
    rho : array_like
        Their correlation, in [-1, 1].

    Returns
    -------
    ndarray

    Examples
    --------
    >>> float(paired_sd_diff(40.0, 55.0, 0.3).round(4))
    57.4891
    """
    s1 = check_positive("sd1", sd1)
    s2 = check_positive("sd2", sd2)
    r = check_in_interval("rho", rho, -1.0, 1.0)
    return np.asarray(np.sqrt(s1**2 + s2**2 - 2.0 * r * s1 * s2), dtype=np.float64)


def power_paired(
    delta: ArrayLike,
    sd_diff: ArrayLike,
    n_pairs: ArrayLike,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
) -> FloatArray:
    """Power of the paired (equivalently one-sample) t test on ``n_pairs`` differences.

    Parameters
    ----------
    delta : array_like
        Mean difference within pairs (or mean minus the null value).
    sd_diff : array_like
        SD of the differences (> 0); see :func:`paired_sd_diff`.
    n_pairs : array_like
        Number of pairs (>= 2).
    alpha, sided
        As in :func:`power_ttest`.

    Returns
    -------
    ndarray

    References
    ----------
    SAS Institute. PROC POWER, PAIREDMEANS example (statug, "Paired t test").

    Examples
    --------
    >>> sd = paired_sd_diff(40.0, 55.0, 0.3)
    >>> float(power_paired(20.0, sd, 100, alpha=0.01, sided=1).round(5))
    0.86538
    """
    d = as_float_array("delta", delta)
    s = check_positive("sd_diff", sd_diff)
    n = _check_n("n_pairs", n_pairs)
    a, sided = _check_alpha_sided(alpha, sided)
    broadcast(delta=d, sd_diff=s, n_pairs=n, alpha=a)
    return _paired_power(d, s, n, a, sided)


def _paired_power(
    d: FloatArray, s: FloatArray, n: FloatArray, a: FloatArray, sided: int
) -> FloatArray:
    """Power of the paired t test on ``n`` differences with SD ``s``."""
    return _t_power(np.abs(d) * np.sqrt(n) / s, n - 1.0, a, sided)


def _sample_size_one_sample(
    d: FloatArray,
    s: FloatArray,
    p: FloatArray,
    a: FloatArray,
    sided: int,
    df_lost: float,
    scale: float,
    n_low: float,
) -> FloatArray:
    """Solve ``n`` for a t test with se = scale * s / sqrt(n) and df = n - df_lost."""

    def fn(n: FloatArray, d_: FloatArray, s_: FloatArray, a_: FloatArray) -> FloatArray:
        return _t_power(np.abs(d_) * np.sqrt(n) / (scale * s_), n - df_lost, a_, sided)

    z = _z_quantile_sum(a, p, sided)
    n_z = (z * scale * s / d) ** 2
    return _solve_sample_size(
        fn,
        p,
        np.full(np.shape(n_z), n_low),
        np.maximum(n_z * 1.2 + 4.0, 2.0 * n_low),
        (d, s, a),
        f"{n_low:g} subjects (the smallest design); lower `power` or `delta`",
        "subjects",
    )


def _one_sample_size(
    delta: ArrayLike,
    sd_name: str,
    sd: ArrayLike,
    power: ArrayLike,
    alpha: ArrayLike,
    sided: int,
    design: tuple[float, float, float],
    power_at: Callable[[FloatArray, FloatArray, FloatArray, FloatArray, int], FloatArray],
) -> SampleSize:
    """Sample size of a one-sample t design (paired, crossover): checks, solve, round up.

    ``design`` is ``(df_lost, scale, n_low)`` of :func:`_sample_size_one_sample`;
    ``power_at(d, s, n, a, sided)`` is the design's power.
    """
    d, s, p, a, sided = _check_size_args(delta, sd_name, sd, power, alpha, sided)
    b = broadcast(d=d, s=s, p=p, a=a)
    n = _sample_size_one_sample(b["d"], b["s"], b["p"], b["a"], sided, *design)
    return _rounded_up(n, lambda n_up: power_at(b["d"], b["s"], n_up, b["a"], sided), n)


def sample_size_paired(
    delta: ArrayLike,
    sd_diff: ArrayLike,
    power: ArrayLike = 0.8,
    alpha: ArrayLike = 0.05,
    sided: int = 2,
) -> SampleSize:
    """Number of pairs for the paired t test (unrounded); ``n_per_arm`` holds the pairs.

    Parameters are those of :func:`power_paired` with ``power`` in place of ``n_pairs``.

    Returns
    -------
    SampleSize
        ``n_per_arm`` and ``n_total`` both equal the number of pairs.

    Examples
    --------
    >>> float(sample_size_paired(0.5, 1.0).n_per_arm_rounded)
    34.0
    """
    return _one_sample_size(
        delta, "sd_diff", sd_diff, power, alpha, sided, (1.0, 1.0, 2.0), _paired_power
    )
