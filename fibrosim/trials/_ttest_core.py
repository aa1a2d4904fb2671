"""Shared core of the closed-form power and sample-size functions (t and z tests).

The exact noncentral t and the normal power of a test, the two-sample noncentrality, a
vectorised increasing-root solver that never returns a bracket end, the sample-size solve and
round-up, the checks every public function runs at its boundary, and the :class:`SampleSize`
result.  :mod:`fibrosim.trials.analytic` (t and z tests) and :mod:`fibrosim.trials.endpoints`
(crossover, ANCOVA, responders) are built on it; conventions are stated in
:mod:`fibrosim.trials.analytic`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from scipy.optimize import elementwise

from fibrosim._checks import (
    FloatArray,
    as_float_array,
    broadcast,
    check_positive,
    check_probability,
    check_sided,
)

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


# --------------------------------------------------------------------------------------------
# sample-size solving
# --------------------------------------------------------------------------------------------
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
