"""Power with several endpoints (normal approximation).

* Co-primary endpoints (all must win, each at level alpha) and multiple primary endpoints (at
  least one must win) under Bonferroni, Holm, Hochberg or a fixed testing sequence, with the
  endpoints' z statistics correlated through the endpoints' correlation.

Several treatment arms against a shared control (Dunnett) are in :mod:`fibrosim.trials.multiarm`.

Tests are one-sided at ``alpha`` in the direction of each effect, z statistics (known
variances), so the joint law of the statistics is multivariate normal.  Two correlated
endpoints use the exact bivariate normal via Owen's T function; orthant probabilities of more
endpoints use SciPy's quasi-Monte Carlo integration (Genz) with a fixed seed and absolute error
1e-6; Holm and Hochberg with three or four endpoints integrate the bivariate normal over the
other statistics by Gauss-Legendre.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, special, stats

from fibrosim._checks import (
    FloatArray,
    as_float_array,
    check_choice,
    check_in_interval,
    check_positive,
)
from fibrosim.trials._ttest_core import SampleSize, _two_sample_se

__all__ = [
    "MultiplePower",
    "power_coprimary",
    "power_multiple_primary",
    "sample_size_coprimary",
]

# QMC settings for more than two endpoints: fixed seed (reproducible), 1e-6 absolute error.
_MVN_OPTIONS: dict[str, Any] = {"abseps": 1e-6, "releps": 0.0, "maxpts": 1_000_000, "rng": 20240601}


@dataclass(frozen=True, slots=True)
class MultiplePower:
    """Power of a multiple-testing design.

    Attributes
    ----------
    each : ndarray
        Probability that each endpoint (or arm) is rejected by the procedure, last axis.
    any : ndarray
        Probability that at least one is rejected (disjunctive power).
    all : ndarray
        Probability that all are rejected (conjunctive power).
    """

    each: FloatArray
    any: FloatArray
    all: FloatArray

    def to_dataframe(self) -> pd.DataFrame:
        """One row per scenario: ``each_1 .. each_m``, ``any``, ``all``."""
        each = np.reshape(self.each, (-1, np.shape(self.each)[-1]))
        frame = pd.DataFrame({f"each_{j + 1}": each[:, j] for j in range(each.shape[1])})
        frame["any"] = np.ravel(self.any)
        frame["all"] = np.ravel(self.all)
        return frame

    def __repr__(self) -> str:
        body = self.to_dataframe().head(10).to_string(index=False, float_format="{:.6g}".format)
        return f"MultiplePower\n{body}"


# --------------------------------------------------------------------------------------------
# normal orthant probabilities
# --------------------------------------------------------------------------------------------
def _bvn_cdf(h: FloatArray, k: FloatArray, rho: FloatArray) -> FloatArray:
    """P(X <= h, Y <= k) for standard bivariate normal with correlation rho (|rho| < 1).

    Owen's (1956) formula: 1/2 [Phi(h) + Phi(k)] - T(h, a_h) - T(k, a_k) - beta.
    """
    h, k, rho = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (h, k, rho)))
    root = np.sqrt(1.0 - rho**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        a_h = (k - rho * h) / (h * root)
        a_k = (h - rho * k) / (k * root)
    # at h = 0 (or k = 0) the slope is +-inf, where T(0, +-inf) = +-1/4 is the right limit
    a_h = np.where(h == 0, np.copysign(np.inf, k - rho * h), a_h)
    a_k = np.where(k == 0, np.copysign(np.inf, h - rho * k), a_k)
    beta = np.where((h * k < 0) | ((h * k == 0) & (h + k < 0)), 0.5, 0.0)
    out = (
        0.5 * (special.ndtr(h) + special.ndtr(k))
        - special.owens_t(h, a_h)
        - special.owens_t(k, a_k)
        - beta
    )
    both_zero = (h == 0) & (k == 0)
    out = np.where(both_zero, 0.25 + np.arcsin(rho) / (2.0 * np.pi), out)
    return np.asarray(np.clip(out, 0.0, 1.0), dtype=np.float64)


def _mvn_upper_orthant(lower: FloatArray, corr: FloatArray) -> FloatArray:
    """P(Z_j > lower_j for all j), Z ~ N(0, corr); batch over the leading axes of ``lower``."""
    m = lower.shape[-1]
    if m == 1:
        return np.asarray(special.ndtr(-lower[..., 0]), dtype=np.float64)
    if m == 2:
        # P(Z1 > a, Z2 > b) = P(-Z1 < -a, -Z2 < -b), same correlation
        return _bvn_cdf(-lower[..., 0], -lower[..., 1], corr[0, 1])
    flat = np.reshape(-lower, (-1, m))
    mvn_cdf: Any = stats.multivariate_normal.cdf
    values = mvn_cdf(flat, cov=corr, **_MVN_OPTIONS)
    return np.asarray(np.reshape(values, lower.shape[:-1]), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# endpoints
# --------------------------------------------------------------------------------------------
def _check_corr(corr: ArrayLike, m: int) -> FloatArray:
    r = as_float_array("corr", corr)
    if r.ndim == 0:
        r = np.full((m, m), float(r))
        np.fill_diagonal(r, 1.0)
    if r.shape != (m, m) or not np.allclose(r, r.T) or not np.allclose(np.diag(r), 1.0):
        raise ValueError(
            f"`corr` must be a scalar or a symmetric {m} x {m} correlation matrix with unit "
            f"diagonal; got shape {r.shape}."
        )
    if np.min(np.linalg.eigvalsh(r)) <= 0:
        raise ValueError("`corr` must be positive definite (|correlation| < 1).")
    return r


def _endpoint_ncp(
    delta: ArrayLike, sd: ArrayLike, n_per_arm: ArrayLike, ratio: ArrayLike
) -> FloatArray:
    d = as_float_array("delta", delta)
    if d.ndim == 0:
        raise ValueError("`delta` must hold one effect per endpoint along its last axis.")
    s = check_positive("sd", sd)
    n = check_positive("n_per_arm", n_per_arm)
    r = check_positive("ratio", ratio)
    return np.asarray(d / _two_sample_se(s, n, r), dtype=np.float64)


def power_coprimary(
    delta: ArrayLike,
    sd: ArrayLike,
    n_per_arm: ArrayLike,
    corr: ArrayLike,
    alpha: float = 0.025,
    *,
    ratio: ArrayLike = 1.0,
) -> FloatArray:
    """Power to win on all of several co-primary endpoints (each one-sided at ``alpha``).

    Parameters
    ----------
    delta : array_like
        Effects, one per endpoint along the last axis (positive favours treatment).
    sd : array_like
        Outcome SDs, broadcasting against ``delta``.
    n_per_arm : array_like
        Control-arm size; the treatment arm is ``ratio * n_per_arm``.  To broadcast a vector
        of sizes against the endpoints, give it a trailing axis (``n[:, None]``).
    corr : float or array_like
        Correlation of the endpoints within a patient (= that of their z statistics), a scalar
        or an m x m matrix.
    alpha : float, default 0.025
        One-sided level of each test (no adjustment is needed when all must win).
    ratio : array_like, default 1.0
        Treatment-arm size over control-arm size.

    Returns
    -------
    ndarray
        Power with the leading (batch) shape.

    References
    ----------
    Sozu T, Sugimoto T, Hamasaki T (2011). Sample size determination in superiority clinical
    trials with multiple co-primary correlated endpoints. J Biopharm Stat 21:650-668.

    Examples
    --------
    >>> float(power_coprimary([0.4, 0.4], 1.0, 130, 0.5).round(4))
    0.8279
    """
    ncp = _endpoint_ncp(delta, sd, n_per_arm, ratio)
    a = float(check_in_interval("alpha", alpha, 0.0, 0.5, closed="neither"))
    r = _check_corr(corr, ncp.shape[-1])
    return _mvn_upper_orthant(stats.norm.isf(a) - ncp, r)


def sample_size_coprimary(
    delta: ArrayLike,
    sd: ArrayLike,
    corr: ArrayLike,
    power: float = 0.8,
    alpha: float = 0.025,
    *,
    ratio: float = 1.0,
) -> SampleSize:
    """Control-arm size at which all co-primary endpoints win with probability ``power``.

    Solves :func:`power_coprimary` (each endpoint one-sided at ``alpha``) for the control-arm
    size; the treatment arm is ``ratio`` times it.  The power increases with n, and the root
    lies between the largest single-endpoint size at ``power`` (all must win, so each must)
    and the largest at ``1 - (1 - power) / m`` (Bonferroni's inequality then guarantees it).

    Parameters
    ----------
    delta : array_like, shape (m,)
        Effects, one per endpoint (positive favours treatment).
    sd : array_like
        Outcome SDs (scalar or one per endpoint).
    corr : float or array_like
        Correlation of the endpoints, as in :func:`power_coprimary`.
    power : float, default 0.8
        Target probability that every endpoint wins.
    alpha : float, default 0.025
        One-sided level of each test.
    ratio : float, default 1.0
        Treatment-arm size over control-arm size.

    Returns
    -------
    SampleSize
        Unrounded control-arm size, its ceiling, the power at the ceiling and the total.

    References
    ----------
    Sozu T, Sugimoto T, Hamasaki T (2011). J Biopharm Stat 21:650-668.

    Examples
    --------
    >>> res = sample_size_coprimary([0.5, 0.5], 1.0, 0.0)
    >>> int(res.n_per_arm_rounded)
    83
    """
    d = as_float_array("delta", delta)
    if d.ndim != 1 or d.size == 0:
        raise ValueError("`delta` must hold one effect per endpoint (a 1-D sequence).")
    if np.any(d == 0):
        raise ValueError(
            "`delta` must be nonzero on every endpoint: a co-primary endpoint with no effect "
            f"cannot win; got {d.tolist()}."
        )
    s = np.broadcast_to(check_positive("sd", sd), d.shape)
    a = float(check_in_interval("alpha", alpha, 0.0, 0.5, closed="neither"))
    p = float(check_in_interval("power", power, a, 1.0, closed="neither"))
    r = float(check_positive("ratio", ratio))
    rho = _check_corr(corr, d.size)
    # effects with their signs: each test is one-sided in the direction of its effect
    signs = np.sign(d)
    rho_signed = rho * np.outer(signs, signs)
    scale = (1.0 + 1.0 / r) * (s / np.abs(d)) ** 2  # n = scale (z_a + z_b)^2

    def size_at(prob: float) -> float:
        return float(np.max(scale * (stats.norm.isf(a) + stats.norm.isf(1.0 - prob)) ** 2))

    def gap(n: float) -> float:
        return float(power_coprimary(np.abs(d), s, n, rho_signed, a, ratio=r)) - p

    low, high = size_at(p), size_at(1.0 - (1.0 - p) / d.size)
    n = low if gap(low) >= 0.0 else float(optimize.brentq(gap, low, high, xtol=1e-10))
    n_up = math.ceil(n - 1e-9)
    attained = float(power_coprimary(np.abs(d), s, n_up, rho_signed, a, ratio=r))
    return SampleSize(
        np.asarray(n), np.asarray(float(n_up)), np.asarray(attained), np.asarray(n * (1.0 + r))
    )


#: Gauss-Legendre nodes per bin interval of each conditioning statistic (Holm/Hochberg, m > 2):
#: the integrand is a bivariate normal rectangle, smooth in the conditioning values.
_STEP_NODES = 48
#: Endpoints whose Holm/Hochberg power is integrated (m - 2 conditioning dimensions).
_STEP_MAX_M = 4
#: Infinite bin ends are cut this many SDs from the statistic's mean (mass beyond: 1e-17).
_STEP_TAIL = 8.5


def _rectangle(lo: FloatArray, hi: FloatArray, rho: FloatArray) -> FloatArray:
    """P(lo_1 <= X < hi_1, lo_2 <= Y < hi_2) for a standard bivariate normal (batched)."""
    lo, hi = np.clip(lo, -38.0, 38.0), np.clip(hi, -38.0, 38.0)
    f = _bvn_cdf
    return (
        f(hi[..., 0], hi[..., 1], rho)
        - f(lo[..., 0], hi[..., 1], rho)
        - f(hi[..., 0], lo[..., 1], rho)
        + f(lo[..., 0], lo[..., 1], rho)
    )


def _stepwise_power(
    ncp: FloatArray, corr: FloatArray, alpha: float, method: str
) -> tuple[FloatArray, float, float]:
    """Holm or Hochberg power for m endpoints (2 <= m <= 4): each, any, all.

    Both procedures compare the ordered p-values with ``alpha / j``, so their decision depends
    only on which interval ``[c_j, c_{j+1})``, ``c_j = z_{1 - alpha/j}``, each statistic falls
    in (a tie inside one interval never splits the rejected set).  The power is the sum over
    these boxes of the probability of the box, times its decisions.  Each box probability
    conditions on the first m - 2 statistics, whose box is integrated by Gauss-Legendre, and
    takes the last two from the conditional bivariate normal rectangle (Owen's T); so m = 2 is
    exact and m = 3, 4 are one- and two-dimensional smooth integrals.
    """
    from fibrosim.trials._analysis import step_procedure

    m = ncp.size
    cuts = np.concatenate([[-np.inf], stats.norm.isf(alpha / np.arange(1, m + 1)), [np.inf]])
    bins = np.array(list(itertools.product(range(m + 1), repeat=m)))  # (M, m)
    # a p-value inside each bin's interval: bin b holds alpha/(b+1) < p <= alpha/b
    p_rep = np.where(bins == 0, 1.0, alpha / (bins + 0.5))
    reject = step_procedure(p_rep, alpha, method).astype(np.float64)  # (M, m)
    q = m - 2
    # conditioning statistics W_c = Z_c - ncp_c ~ N(0, R_cc); the last two given W_c
    r_cc, r_rc = corr[:q, :q], corr[q:, :q]
    gain = r_rc @ np.linalg.inv(r_cc) if q else np.zeros((2, 0))
    cov_r = corr[q:, q:] - gain @ corr[:q, q:]
    sd_r = np.sqrt(np.diag(cov_r))
    rho_r = cov_r[0, 1] / (sd_r[0] * sd_r[1])
    gx, gw = np.polynomial.legendre.leggauss(_STEP_NODES)
    prob = np.empty(bins.shape[0])
    for i, b in enumerate(bins):
        lo_w = cuts[b] - ncp
        hi_w = cuts[b + 1] - ncp
        if q:
            lo_c = np.maximum(lo_w[:q], -_STEP_TAIL)
            hi_c = np.minimum(hi_w[:q], _STEP_TAIL)
            if np.any(hi_c <= lo_c):
                prob[i] = 0.0
                continue
            half, mid = 0.5 * (hi_c - lo_c), 0.5 * (hi_c + lo_c)
            axes = [mid[j] + half[j] * gx for j in range(q)]
            weights = [half[j] * gw for j in range(q)]
            grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, q)
            wgrid = np.prod(np.stack(np.meshgrid(*weights, indexing="ij"), axis=-1), axis=-1)
            dens = stats.multivariate_normal(np.zeros(q), r_cc).pdf(grid).reshape(-1)
            shift = grid @ gain.T  # (nodes, 2) conditional means of the last two
            w_nodes = wgrid.reshape(-1) * dens
        else:
            shift, w_nodes = np.zeros((1, 2)), np.ones(1)
        lo_r = (lo_w[q:] - shift) / sd_r
        hi_r = (hi_w[q:] - shift) / sd_r
        prob[i] = float(w_nodes @ _rectangle(lo_r, hi_r, rho_r))
    each = prob @ reject
    any_ = float(prob @ (reject.sum(axis=1) > 0))
    all_ = float(prob @ (reject.sum(axis=1) == m))
    return each, any_, all_


def power_multiple_primary(
    delta: ArrayLike,
    sd: ArrayLike,
    n_per_arm: ArrayLike,
    corr: ArrayLike,
    alpha: float = 0.025,
    *,
    method: str = "bonferroni",
    ratio: ArrayLike = 1.0,
) -> MultiplePower:
    """Power of multiple primary endpoints under a familywise-error-controlling procedure.

    Parameters
    ----------
    delta, sd, n_per_arm, corr, ratio
        As in :func:`power_coprimary`.
    alpha : float, default 0.025
        One-sided familywise error rate.
    method : {"bonferroni", "holm", "hochberg", "fixed-sequence"}
        Bonferroni (each at ``alpha / m``) and the fixed sequence (endpoints tested at
        ``alpha`` in their given order, stopping at the first non-rejection) for any number of
        endpoints; Holm and Hochberg for up to four (two: Owen's T, exact; three or four: one-
        or two-dimensional Gauss-Legendre integrals over the bivariate normal, ~1e-14).

    Returns
    -------
    MultiplePower

    References
    ----------
    Holm S (1979). Scand J Stat 6:65-70. Hochberg Y (1988). Biometrika 75:800-802.
    Dmitrienko A, Tamhane AC, Bretz F (2010). Multiple Testing Problems in Pharmaceutical
    Statistics, ch. 2. Chapman & Hall.

    Examples
    --------
    >>> res = power_multiple_primary([0.4, 0.3], 1.0, 100, 0.5, method="holm")
    >>> bool(res.any >= res.each.max())
    True
    """
    check_choice("method", method, ("bonferroni", "holm", "hochberg", "fixed-sequence"))
    ncp = _endpoint_ncp(delta, sd, n_per_arm, ratio)
    a = float(check_in_interval("alpha", alpha, 0.0, 0.5, closed="neither"))
    m = ncp.shape[-1]
    r = _check_corr(corr, m)
    if method in ("holm", "hochberg") and m > _STEP_MAX_M:
        raise ValueError(
            f"method={method!r} is computed for up to {_STEP_MAX_M} endpoints; got {m}. Use "
            "'bonferroni' or 'fixed-sequence', or simulate a MultiEndpointDesign with this "
            "multiplicity (fibrosim.trials.simulate)."
        )
    if method in ("holm", "hochberg") and m > 2:
        batch = ncp.shape[:-1]
        each_b, any_b, all_b = np.empty(ncp.shape), np.empty(batch), np.empty(batch)
        for idx in np.ndindex(batch):
            each_b[idx], any_b[idx], all_b[idx] = _stepwise_power(ncp[idx], r, a, method)
        return MultiplePower(each_b, any_b, all_b)
    c_full, c_split = stats.norm.isf(a), stats.norm.isf(a / m)

    def upper(lo1: FloatArray | float, lo2: FloatArray | float) -> FloatArray:
        """P(Z1 > lo1, Z2 > lo2) for the two-endpoint case."""
        shift = np.stack(np.broadcast_arrays(lo1 - ncp[..., 0], lo2 - ncp[..., 1]), axis=-1)
        return _mvn_upper_orthant(shift, r)

    if method == "bonferroni":
        each = special.ndtr(ncp - c_split)
        none = _mvn_upper_orthant(ncp - c_split, r)  # P(all Z_j - ncp_j > ncp_j - c), symmetric
        any_ = 1.0 - none
        all_ = _mvn_upper_orthant(c_split - ncp, r)
    elif method == "fixed-sequence":
        each = np.stack(
            [_mvn_upper_orthant(c_full - ncp[..., : j + 1], r[: j + 1, : j + 1]) for j in range(m)],
            axis=-1,
        )
        any_, all_ = each[..., 0], each[..., -1]
    else:
        both_full = upper(c_full, c_full)
        p1_split, p2_split = (
            special.ndtr(ncp[..., 0] - c_split),
            special.ndtr(ncp[..., 1] - c_split),
        )
        if method == "holm":
            # first step Bonferroni at alpha/2, second at alpha
            any_ = p1_split + p2_split - upper(c_split, c_split)
            # endpoint 1 rejected: Z1 > c_split, or c_full < Z1 <= c_split with Z2 > c_split
            e1 = p1_split + upper(c_full, c_split) - upper(c_split, c_split)
            e2 = p2_split + upper(c_split, c_full) - upper(c_split, c_split)
            # both: both > c_full and at least one > c_split
            all_ = both_full - (
                both_full
                - upper(c_split, c_full)
                - upper(c_full, c_split)
                + upper(c_split, c_split)
            )
        else:
            # Hochberg: both rejected if both p <= alpha; else the smaller if p <= alpha / 2
            all_ = both_full
            e1 = both_full + p1_split - upper(c_split, c_full)
            e2 = both_full + p2_split - upper(c_full, c_split)
            any_ = (
                both_full
                + (p1_split - upper(c_split, c_full))
                + (p2_split - upper(c_full, c_split))
            )
        each = np.stack([e1, e2], axis=-1)
    return MultiplePower(
        np.asarray(each, dtype=np.float64),
        np.asarray(any_, dtype=np.float64),
        np.asarray(all_, dtype=np.float64),
    )
