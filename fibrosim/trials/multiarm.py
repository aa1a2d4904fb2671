"""Several treatment arms against a shared control: Dunnett's critical values and power.

The arms' statistics share the control arm, so their z statistics are equicorrelated with
``rho = n_t / (n_t + n_c)``; every joint probability reduces to one Gauss-Hermite integral over
the shared component (96 nodes).  With a pooled-variance t test the statistics are
``T_i = (Z_i + ncp_i) / S`` with one ``S = sqrt(chi²_df / df)`` for all arms (a multivariate t,
noncentral under the alternative), and each probability is the normal one averaged over ``S``
with a composite Gauss-Legendre rule on the distribution of ``S`` (exact to ~1e-13; tests
compare with the noncentral t, SciPy's multivariate t and a simulation).
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

from fibrosim._checks import (
    FloatArray,
    as_float_array,
    check_choice,
    check_in_interval,
    check_integer,
    check_positive,
)
from fibrosim.trials._ttest_core import _two_sample_se
from fibrosim.trials.multiplicity import MultiplePower

__all__ = ["dunnett_critical", "power_multiarm"]

_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(96)
_GH_W = _GH_W / np.sqrt(2.0 * np.pi)
#: Composite Gauss-Legendre rule for the average over S: panels x nodes per panel, between S's
#: quantiles at normal scores ±_S_SCORE (the mass left out, 1.2e-15, is below the rule's error).
_S_PANELS, _S_NODES, _S_SCORE = 24, 16, 8.0
_GL_X, _GL_W = np.polynomial.legendre.leggauss(_S_NODES)


def _equicorrelated(shift: FloatArray, rho: float) -> FloatArray:
    """P(Z_i > shift_i for all i) for equicorrelated N(0, 1) with correlation rho >= 0.

    ``shift`` has the arms on its last axis; leading axes are a batch.
    """
    u = _GH_X
    z = (np.sqrt(rho) * u[:, None] - shift[..., None, :]) / np.sqrt(1.0 - rho)
    return np.asarray(np.prod(special.ndtr(z), axis=-1) @ _GH_W, dtype=np.float64)


@functools.lru_cache(maxsize=64)
def _s_rule(df: float) -> tuple[FloatArray, FloatArray]:
    """Nodes and weights for ``E f(S)``, ``S = sqrt(chi²_df / df)``: Gauss-Legendre panels.

    The rule works in ``v = log S``, whose density ``∝ exp(-(df/2)(S² - 1 - 2v))`` is smooth on
    the whole line (S's own density behaves like ``S^(df-1)`` at 0, not smooth for fractional
    df).  Panel edges sit at the quantiles of S for equally spaced normal scores from -8 to 8,
    so the panels follow the mass whatever df (a long left tail for df = 1, a narrow peak
    for large df).  ``S² - 1 - 2v`` is formed as ``expm1(2v) - 2v``, which keeps its digits for
    large df (the textbook chi² log-density subtracts terms of size df), and the weights are
    normalised by their sum (the rule integrates the density to ~1e-14).
    """
    u = stats.chi2.ppf(special.ndtr(np.linspace(-_S_SCORE, _S_SCORE, _S_PANELS + 1)), df) / df
    edges = 0.5 * np.log(u)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    v = (mid[:, None] + half[:, None] * _GL_X[None, :]).ravel()
    w = (half[:, None] * _GL_W[None, :]).ravel() * np.exp(-0.5 * df * (np.expm1(2.0 * v) - 2.0 * v))
    return np.exp(v), w / w.sum()


def _below_all(c: float, n_arms: int, rho: float, df: float | None) -> float:
    """P(max_i T_i <= c) for the null statistics (z if ``df`` is None, else multivariate t)."""
    if df is None:
        return float(_equicorrelated(np.full(n_arms, -c), rho))
    s, w = _s_rule(df)
    # P(all Z_i <= c s) = P(all -Z_i >= -c s), per node of S
    inner = _equicorrelated(np.repeat(-c * s[:, None], n_arms, axis=1), rho)
    return float(inner @ w)


def dunnett_critical(
    n_arms: int, alpha: float = 0.025, rho: float = 0.5, *, df: float | None = None
) -> float:
    """One-sided Dunnett critical value for ``n_arms`` comparisons with a shared control.

    Solves ``P(max T_i <= c) = 1 - alpha`` for equicorrelated statistics: standard normal
    (``df`` None: known variance) or multivariate t with ``df`` degrees of freedom (a pooled
    variance estimate shared by all comparisons, as in Dunnett's tables).

    Parameters
    ----------
    n_arms : int
        Number of treatment arms (>= 1).
    alpha : float, default 0.025
        One-sided familywise error.
    rho : float, default 0.5
        Correlation of the statistics, ``n_t / (n_t + n_c)`` (0.5 for equal arms).
    df : float, optional
        Degrees of freedom of the pooled variance (> 0); None for z statistics.

    Returns
    -------
    float

    References
    ----------
    Dunnett CW (1955). A multiple comparison procedure for comparing several treatments with
    a control. J Am Stat Assoc 50:1096-1121.

    Examples
    --------
    >>> round(dunnett_critical(2), 4)
    2.2121
    >>> round(dunnett_critical(2, df=60), 4)
    2.2653
    """
    k = int(check_integer("n_arms", n_arms, minimum=1))
    a = float(check_in_interval("alpha", alpha, 0.0, 0.5, closed="neither"))
    r = float(check_in_interval("rho", rho, 0.0, 1.0, closed="left"))
    nu = None if df is None else float(check_positive("df", df))
    if nu is None:
        lo, hi = stats.norm.isf(a), stats.norm.isf(a / k)
    else:
        lo, hi = stats.t.isf(a, nu), stats.t.isf(a / k, nu)  # one arm; Bonferroni

    def gap(c: float) -> float:
        return _below_all(c, k, r, nu) - (1.0 - a)

    return float(optimize.brentq(gap, lo - 1e-9, hi + 1e-9, xtol=1e-13))


def power_multiarm(
    delta: ArrayLike,
    sd: float,
    n_per_arm: float,
    n_arms: int,
    alpha: float = 0.025,
    *,
    method: str = "dunnett",
    ratio: float = 1.0,
    test: str = "z",
) -> MultiplePower:
    """Power of several treatment arms each compared with a shared control.

    Parameters
    ----------
    delta : array_like
        Effect of each arm (scalar: the same for all ``n_arms``).
    sd : float
        Outcome SD (> 0).
    n_per_arm : float
        Control-arm size; each treatment arm has ``ratio * n_per_arm``.
    n_arms : int
        Number of treatment arms.
    alpha : float, default 0.025
        One-sided familywise error.
    method : {"dunnett", "bonferroni"}
        Critical value: Dunnett's (exact for the equicorrelated statistics, correlation
        ``ratio / (1 + ratio)``) or Bonferroni's (``alpha / n_arms`` per comparison).
    ratio : float, default 1.0
        Treatment-arm size over control-arm size.
    test : {"z", "t"}
        "z": known variance (normal statistics).  "t": pooled-variance t tests with
        ``df = n_c + n_arms n_t - (n_arms + 1)``; critical value and power then come from the
        multivariate (noncentral) t, as Dunnett's test is run on trial data.

    Returns
    -------
    MultiplePower
        ``each`` arm's power, ``any`` (at least one arm wins), ``all``.

    References
    ----------
    Dunnett CW (1955). J Am Stat Assoc 50:1096-1121.

    Examples
    --------
    >>> res = power_multiarm(0.5, 1.0, 80, 2)
    >>> float(res.each[0].round(4))
    0.829
    >>> float(power_multiarm(0.5, 1.0, 80, 2, test="t").each[0].round(4))
    0.8249
    """
    check_choice("method", method, ("dunnett", "bonferroni"))
    check_choice("test", test, ("z", "t"))
    k = int(check_integer("n_arms", n_arms, minimum=1))
    d = np.broadcast_to(as_float_array("delta", delta), (k,))
    r = float(check_positive("ratio", ratio))
    n = float(check_positive("n_per_arm", n_per_arm))
    s = float(check_positive("sd", sd))
    a = float(check_in_interval("alpha", alpha, 0.0, 0.5, closed="neither"))
    rho = r / (1.0 + r)
    ncp = d / _two_sample_se(s, n, r)
    if test == "z":
        c = dunnett_critical(k, a, rho) if method == "dunnett" else float(stats.norm.isf(a / k))
        each = special.ndtr(ncp - c)
        none = _equicorrelated(ncp - c, rho)  # P(Z_i < c - ncp_i) = P(Z_i > ncp_i - c)
        all_ = _equicorrelated(c - ncp, rho)
    else:
        df = n + k * r * n - (k + 1)
        if df <= 0:
            raise ValueError(
                f"test='t' needs more patients than arms: n_per_arm = {n:g} with ratio {r:g} "
                f"and {k} arms leaves df = {df:g}."
            )
        if method == "dunnett":
            c = dunnett_critical(k, a, rho, df=df)
        else:
            c = float(stats.t.isf(a / k, df))
        sv, w = _s_rule(df)
        cs = c * sv[:, None]  # reject arm i when Z_i > c S - ncp_i
        each = special.ndtr(ncp[None, :] - cs).T @ w
        none = _equicorrelated(ncp[None, :] - cs, rho) @ w
        all_ = _equicorrelated(cs - ncp[None, :], rho) @ w
    return MultiplePower(
        np.asarray(each, dtype=np.float64),
        np.asarray(1.0 - none, dtype=np.float64),
        np.asarray(all_, dtype=np.float64),
    )
