"""Analysis kernels shared by the simulation engines: contrast tests, decisions, step procedures.

Each kernel is vectorised over a leading axis of simulated trials: per-group summaries in,
estimates, standard errors, degrees of freedom and rejections out.  Critical values come from
cached scalars or an interpolated table, so no scipy quantile runs per trial.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy import special

from fibrosim.trials._fisher import fisher_pvalues

if TYPE_CHECKING:
    from fibrosim.trials.designs import MultiEndpointDesign

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


# --------------------------------------------------------------------------------------------
# t quantiles without scipy in the hot path
@lru_cache(maxsize=64)
def _quantile_table(p: float, df_min: float) -> tuple[float, FloatArray]:
    """Upper ``p`` quantile of t on a uniform grid in u = 1/df over [0, 1/df_min].

    The grid is refined until linear interpolation is within 1e-9 of ``stdtrit`` at every
    midpoint, so decisions differ from exact ones only when |t| is within 1e-9 of the bound.
    """
    n = 1025
    while True:
        u = np.linspace(0.0, 1.0 / df_min, n)
        q = np.empty(n)
        q[0] = special.ndtri(p)
        q[1:] = special.stdtrit(1.0 / u[1:], p)
        mid = 0.5 * (u[1:] + u[:-1])
        err = np.max(np.abs(0.5 * (q[1:] + q[:-1]) - special.stdtrit(1.0 / mid, p)))
        if err < 1e-9 or n > 1 << 22:
            return float(u[1]), q
        n = 2 * n - 1


def t_quantile(p: float, df: FloatArray | float, df_min: float = 1.0) -> FloatArray:
    """Vectorised t quantile ``F^-1(p; df)``; ``df`` is clipped to ``[df_min, inf]``."""
    h, q = _quantile_table(float(p), float(df_min))
    u = 1.0 / np.maximum(np.asarray(df, dtype=np.float64), df_min)
    pos = u / h
    i = np.minimum(pos.astype(np.intp), q.size - 2)
    w = pos - i
    return np.asarray(q[i] * (1.0 - w) + q[i + 1] * w)


def contrast_tests(
    analysis: str,
    c: FloatArray,
    n: FloatArray,
    ybar: FloatArray,
    *,
    ss: FloatArray | None = None,
    sd: float | None = None,
    xbar: FloatArray | None = None,
    sxx: FloatArray | None = None,
    sxy: FloatArray | None = None,
    syy: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Estimate, SE and df of each contrast ``c @ means`` from per-group summaries.

    ``n``, ``ybar``, ``ss``, ``xbar``: (B, k); ``sxx``, ``sxy``, ``syy``: (B,) pooled within-group
    sums.  ``analysis`` "z" uses the known ``sd`` (df = inf), "student" the pooled variance
    (df = N - k), "ttest" Welch-Satterthwaite per contrast, "ancova" OLS with a common baseline
    slope (df = N - k - 1), "responder" proportions ``ybar`` (pairwise contrasts: pooled
    two-proportion z test; others: Wald z).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        est = ybar @ c.T
        c2 = c * c
        inv_n = 1.0 / n
        if analysis == "z":
            assert sd is not None
            se = sd * np.sqrt(inv_n @ c2.T)
            df = np.full_like(se, np.inf)
        elif analysis == "student":
            assert ss is not None
            big_n = n.sum(axis=1)
            s2 = ss.sum(axis=1) / (big_n - n.shape[1])
            se = np.sqrt(s2[:, None] * (inv_n @ c2.T))
            df = np.broadcast_to((big_n - n.shape[1])[:, None], se.shape).copy()
        elif analysis == "ttest":
            assert ss is not None
            v = ss / (n - 1.0) * inv_n  # (B, k) variance of each group mean
            var = v @ c2.T
            se = np.sqrt(var)
            df = var * var / ((v * v / (n - 1.0)) @ (c2 * c2).T)
        elif analysis == "ancova":
            assert xbar is not None and sxx is not None and sxy is not None and syy is not None
            slope = sxy / sxx
            big_n = n.sum(axis=1)
            dfe = big_n - n.shape[1] - 1.0
            s2 = (syy - slope * sxy) / dfe
            cx = xbar @ c.T
            est = est - slope[:, None] * cx
            se = np.sqrt(s2[:, None] * (inv_n @ c2.T + cx * cx / sxx[:, None]))
            df = np.broadcast_to(dfe[:, None], se.shape).copy()
        elif analysis == "responder":
            var = (ybar * (1.0 - ybar) * inv_n) @ c2.T
            pairwise = (np.sum(c != 0, axis=1) == 2) & np.isclose(c.sum(axis=1), 0.0)
            if np.any(pairwise):
                a = np.argmax(c < 0, axis=1)
                b = np.argmax(c > 0, axis=1)
                cnt = ybar * n
                pooled = (cnt[:, a] + cnt[:, b]) / (n[:, a] + n[:, b])
                var_p = (
                    pooled
                    * (1 - pooled)
                    * (inv_n[:, a] + inv_n[:, b])
                    * (c[np.arange(len(c)), b] ** 2)
                )
                var = np.where(pairwise, var_p, var)
            se = np.sqrt(var)
            df = np.full_like(se, np.inf)
        else:  # pragma: no cover - guarded by the design
            raise ValueError(analysis)
    return est, se, df


def decide(
    est: FloatArray,
    se: FloatArray,
    df: FloatArray | float,
    *,
    alpha: float,
    sided: int,
    benefit_sign: float | FloatArray,
    multiplicity: str = "none",
    df_min: float = 1.0,
) -> BoolArray:
    """Rejections (B, m) of the contrast tests after the multiplicity procedure.

    Two-sided tests reject in either direction; one-sided tests in the benefit direction.
    A test whose statistic is undefined (zero or missing SE) does not reject.  A scalar ``df``
    (fixed group sizes) means one critical value per design.
    """
    m = est.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = est / se
    if sided == 2:
        stat = np.abs(t, out=t)
    else:
        stat = (
            np.multiply(t, benefit_sign, out=t) if np.ndim(benefit_sign) == 0 else t * benefit_sign
        )
    if m == 1 or multiplicity in ("none", "bonferroni"):
        level = alpha / (m if multiplicity == "bonferroni" else 1) / sided
        if np.ndim(df) == 0:
            crit: Any = _scalar_critical(1.0 - level, float(df))
        else:
            crit = _critical(1.0 - level, np.asarray(df), df_min)
        with np.errstate(invalid="ignore"):
            return np.asarray(stat > crit)
    df = np.broadcast_to(np.asarray(df, dtype=np.float64), stat.shape)
    # step-wise procedures need p-values (one stdtr per statistic)
    with np.errstate(invalid="ignore"):
        tail = np.where(
            np.isinf(df), special.ndtr(-stat), special.stdtr(np.where(np.isinf(df), 1.0, df), -stat)
        )
    p = np.where(np.isnan(stat), 1.0, sided * tail)
    return step_procedure(p, alpha, multiplicity)


def decide_fisher(design: Any, c: FloatArray, n: FloatArray, counts: FloatArray) -> BoolArray:
    """Rejections (B, m) by Fisher's exact test of each pairwise contrast's responder counts.

    ``n`` and ``counts`` are (B, k) arm sizes and responder counts; contrast row ``j`` compares
    its +1 arm (more responders is the benefit) with its -1 arm.  The p-values go through the
    design's multiplicity procedure like the other analyses' (one-sided p-values when
    ``sided == 1``; two-sided ones, compared with ``alpha`` itself, when ``sided == 2``).
    """
    b = np.argmax(c > 0, axis=1)
    a = np.argmax(c < 0, axis=1)
    nn = n.astype(np.int64)
    xx = np.rint(counts).astype(np.int64)
    p = np.empty((n.shape[0], c.shape[0]))
    for j in range(c.shape[0]):
        p[:, j] = fisher_pvalues(xx[:, b[j]], nn[:, b[j]], xx[:, a[j]], nn[:, a[j]], design.sided)
    m = c.shape[0]
    multiplicity = getattr(design, "multiplicity", "none")
    if m == 1 or multiplicity in ("none", "bonferroni"):
        return np.asarray(p <= design.alpha / (m if multiplicity == "bonferroni" else 1))
    return step_procedure(p, design.alpha, multiplicity)


def decide_design(
    design: Any, est: FloatArray, se: FloatArray, df: FloatArray | float
) -> BoolArray:
    """:func:`decide` with a single-outcome design's level, sides, direction and multiplicity.

    The benefit direction is a decrease when ``design.lower_is_better``, except for responder
    proportions, where more responders is always better.
    """
    lower = design.lower_is_better and getattr(design, "analysis", "") != "responder"
    return decide(
        est,
        se,
        df,
        alpha=design.alpha,
        sided=design.sided,
        benefit_sign=-1.0 if lower else 1.0,
        multiplicity=getattr(design, "multiplicity", "none"),
    )


@lru_cache(maxsize=256)
def _scalar_critical(q: float, df: float) -> float:
    return float(special.ndtri(q)) if math.isinf(df) else float(special.stdtrit(df, q))


def _critical(q: float, df: FloatArray, df_min: float) -> FloatArray:
    finite = np.isfinite(df)
    if not np.any(finite):
        return np.full(df.shape, float(special.ndtri(q)))
    first = df.flat[0]
    if np.all(df == first):  # one critical value per design (the common case)
        return np.full(df.shape, float(special.stdtrit(first, q)))
    crit = t_quantile(q, np.where(finite, df, np.inf), df_min)
    return np.where(np.isnan(df), np.inf, crit)


def step_procedure(p: FloatArray, alpha: float, method: str) -> BoolArray:
    """Holm (step-down) or Hochberg (step-up) rejections for p-values ``p`` of shape (B, m).

    References
    ----------
    Holm S. A simple sequentially rejective multiple test procedure. Scand J Stat 1979;6:65-70.
    Hochberg Y. A sharper Bonferroni procedure for multiple tests of significance. Biometrika
    1988;75:800-802.
    """
    m = p.shape[1]
    order = np.argsort(p, axis=1, kind="stable")
    ps = np.take_along_axis(p, order, axis=1)
    ok = ps <= alpha / (m - np.arange(m))
    if method == "holm":
        n_rej = np.cumprod(ok, axis=1).sum(axis=1)
    elif method == "hochberg":
        last = m - np.argmax(ok[:, ::-1], axis=1)
        n_rej = np.where(ok.any(axis=1), last, 0)
    else:  # pragma: no cover - guarded by the design
        raise ValueError(method)
    ranks = np.argsort(order, axis=1)
    return np.asarray(ranks < n_rej[:, None])


def responder_probability(design: Any, effects: FloatArray) -> FloatArray:
    """Responder probability per arm on the latent normal scale (continuous cohorts)."""
    cohort = design.cohort
    m, s0, rho, s1 = cohort.baseline_mean, cohort.baseline_sd, design.baseline_corr, design.sd
    keep = 1.0 - design.responder_threshold
    mean_w = m + cohort.control_change + effects - keep * m
    sd_w = math.sqrt(s1 * s1 + keep * keep * s0 * s0 - 2 * keep * rho * s0 * s1)
    return np.asarray(special.ndtr(-mean_w / sd_w))


def endpoint_tests(
    design: MultiEndpointDesign, n: FloatArray, ybar: FloatArray, ss: FloatArray
) -> tuple[BoolArray, FloatArray]:
    """Per-endpoint two-arm tests; ``n`` (B, 2), ``ybar`` and ``ss`` (B, 2, m)."""
    e = design.endpoints
    size, _, m = ybar.shape
    est = ybar[:, 1, :] - ybar[:, 0, :]
    if design.analysis == "z":
        se = np.asarray(e.sds) * np.sqrt(1.0 / n[:, :1] + 1.0 / n[:, 1:])
        df = np.full(est.shape, np.inf)
    else:
        flat_n = np.repeat(n, m, axis=0)
        flat_y = ybar.transpose(0, 2, 1).reshape(size * m, 2)
        flat_ss = ss.transpose(0, 2, 1).reshape(size * m, 2)
        c = np.array([[-1.0, 1.0]])
        _, se_f, df_f = contrast_tests(design.analysis, c, flat_n, flat_y, ss=flat_ss)
        se, df = se_f.reshape(size, m), df_f.reshape(size, m)
    sign = np.where(np.asarray(e.lower_is_better), -1.0, 1.0)
    rejected = decide(
        est,
        se,
        df,
        alpha=design.alpha,
        sided=design.sided,
        benefit_sign=sign,
        multiplicity=design.multiplicity,
    )
    return rejected, est
