"""Sufficient-statistic engines: per simulated trial, draw only what the analysis needs.

Arm means are normal, sums of squares scaled chi-square (``standard_gamma``), ANCOVA pieces come
from their exact joint sampling distribution and responder counts are binomial.  Cost is O(arms)
per trial, independent of the sample size, and exact for the normal model.  Each engine returns
rejections (B, m) and estimates (B, m) (the sequential engine also the look at which each trial
stopped).

References
----------
Jennison C, Turnbull BW. Group Sequential Methods with Applications to Clinical Trials. Chapman &
Hall/CRC; 2000 (stage-wise sufficient statistics).
Shieh G. Power analysis and sample size planning in ANCOVA designs. Psychometrika
2020;85:101-120 (exact distribution of the ANCOVA t statistic).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import special

from fibrosim.trials._analysis import (
    contrast_tests,
    decide_design,
    decide_fisher,
    endpoint_tests,
    responder_probability,
)
from fibrosim.trials._plans import CrossoverPlan, EndpointsPlan, GroupsPlan, SequentialPlan
from fibrosim.trials.designs import RESPONDER_ANALYSES

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


def _chi2(rng: np.random.Generator, df: Any, size: Any = None) -> FloatArray:
    """Chi-square draws via standard_gamma (df may be an array; df = 0 gives 0)."""
    half = 0.5 * np.asarray(df, dtype=np.float64)
    if half.ndim == 0:
        if half <= 0:
            return np.zeros(size)
        out = np.asarray(rng.standard_gamma(float(half), size))
        out *= 2.0  # in place: one array per draw, not two
        return out
    return 2.0 * rng.standard_gamma(np.maximum(half, 0.0))


def _single_contrast(
    plan: GroupsPlan, size: int, rng: np.random.Generator, effect: FloatArray | None
) -> tuple[FloatArray, FloatArray, float]:
    """Fast path for one contrast with fixed group sizes: draw the contrast's pieces directly.

    z / Student: ``c'ybar ~ N(c'mu, sd^2 v)`` with ``v = sum(c^2 / n)`` and, for Student, a
    pooled ``SS ~ sd^2 chi2(N - k)``.  ANCOVA (exact, Shieh 2020): with ``sigma_x = 1``,
    ``c'xbar ~ N(0, v)``, ``Sxx ~ chi2(N - k)``, ``q = (c'xbar)^2 / Sxx``, the estimate is
    ``c'mu + sd_e sqrt(v + q) Z`` and its SE ``s_e sqrt(v + q)`` with
    ``s_e^2 ~ sd_e^2 chi2(N - k - 1) / (N - k - 1)``, all independent.
    """
    d = plan.design
    cc = plan.contrasts[0]
    n = np.asarray(plan.n, dtype=np.float64)
    v = float(np.sum(cc * cc / n))
    dfe = float(n.sum()) - plan.k
    if effect is None:
        mean: Any = float(np.dot(plan.means, cc))
    else:
        mu = np.asarray(plan.means, dtype=np.float64)
        base = float(np.dot(mu, cc)) - mu[plan.prior_group] * cc[plan.prior_group]
        mean = base + cc[plan.prior_group] * effect
    sd = d.sd
    # Each variate is drawn into its own array and transformed in place: the operations (and so
    # the bits) are those of the textbook expressions in the comments, without temporaries.
    if d.analysis == "ancova":
        sd_e = sd * math.sqrt(1.0 - d.baseline_corr**2)
        q = rng.standard_normal(size)
        q *= math.sqrt(v)  # c'xbar
        q *= q
        q /= _chi2(rng, dfe, size)  # Sxx
        q += v
        scale = np.sqrt(q, out=q)  # sqrt(v + (c'xbar)^2 / Sxx)
        dfe -= 1.0
        est = rng.standard_normal(size)
        est *= scale
        est *= sd_e
        est += mean  # c'mu + sd_e * scale * Z
        se = _chi2(rng, dfe, size)
        se *= sd_e * sd_e / dfe
        np.sqrt(se, out=se)
        se *= scale  # scale * s_e
    else:
        est = rng.standard_normal(size)
        est *= sd * math.sqrt(v)
        est += mean  # c'mu + sd sqrt(v) Z
        if d.analysis == "z":
            se = np.full(size, sd * math.sqrt(v))
            dfe = math.inf
        else:
            se = _chi2(rng, dfe, size)
            se *= sd * sd * v / dfe
            np.sqrt(se, out=se)  # sqrt(SS / dfe * v)
    return est[:, None], se[:, None], dfe


def groups_sufficient(
    plan: GroupsPlan, size: int, rng: np.random.Generator, effect: FloatArray | None
) -> tuple[BoolArray, FloatArray]:
    d = plan.design
    k, c = plan.k, plan.contrasts
    sd, rho, analysis = d.sd, d.baseline_corr, d.analysis
    if analysis not in RESPONDER_ANALYSES and c.shape[0] == 1 and d.dropout == 0:
        est1, se1, df1 = _single_contrast(plan, size, rng, effect)
        return decide_design(d, est1, se1, df1), est1
    mu = np.broadcast_to(np.asarray(plan.means), (size, k)).copy()
    if effect is not None:
        mu[:, plan.prior_group] = effect
    if d.dropout > 0:
        n = rng.binomial(np.asarray(plan.n), 1.0 - d.dropout, size=(size, k)).astype(np.float64)
    else:
        n = np.broadcast_to(np.asarray(plan.n, dtype=np.float64), (size, k))
    with np.errstate(invalid="ignore", divide="ignore"):
        if analysis in RESPONDER_ANALYSES:
            counts = rng.binomial(n.astype(np.int64), responder_probability(d, mu))
            est, se, df = contrast_tests("responder", c, n, counts.astype(np.float64) / n)
            if analysis == "fisher":
                return decide_fisher(d, c, n, counts.astype(np.float64)), est
        elif analysis in ("z", "student", "ttest"):
            ybar = mu + sd * rng.standard_normal((size, k)) / np.sqrt(n)
            ss = sd * sd * _chi2(rng, np.maximum(n - 1.0, 0.0))
            est, se, df = contrast_tests(analysis, c, n, ybar, ss=ss, sd=sd)
        else:  # ancova with beta = 0 w.l.o.g. (the ANCOVA t statistic is invariant to beta)
            sd_e = sd * math.sqrt(1.0 - rho * rho)
            big_n = n.sum(axis=1)
            xbar = rng.standard_normal((size, k)) / np.sqrt(n)
            ybar = mu + sd_e * rng.standard_normal((size, k)) / np.sqrt(n)
            sxx = _chi2(rng, np.maximum(big_n - k, 0.0))
            sxy = sd_e * np.sqrt(sxx) * rng.standard_normal(size)
            syy = sxy * sxy / sxx + sd_e * sd_e * _chi2(rng, np.maximum(big_n - k - 1.0, 0.0))
            est, se, df = contrast_tests("ancova", c, n, ybar, xbar=xbar, sxx=sxx, sxy=sxy, syy=syy)
    return decide_design(d, est, se, df), est


def endpoints_sufficient(
    plan: EndpointsPlan, size: int, rng: np.random.Generator
) -> tuple[BoolArray, FloatArray]:
    """Correlated endpoints from sufficient statistics (exact, O(m^2) draws per arm).

    Arm mean vectors come from the multivariate normal and the diagonal of each arm's scatter
    matrix from the Wishart distribution by Bartlett's decomposition.

    References
    ----------
    Bartlett MS. On the theory of statistical regression. Proc R Soc Edinb 1933;53:260-283.
    """
    d = plan.design
    e = d.endpoints
    m, n = len(e.names), d.n_per_arm
    chol = np.linalg.cholesky(e.covariance)
    ybar = rng.standard_normal((size, 2, m)) @ chol.T / math.sqrt(n)
    ybar[:, 1, :] += np.asarray(e.effects)
    ss = np.zeros((size, 2, m))
    if d.analysis != "z":
        a = np.zeros((size, 2, m, m))
        idx = np.arange(m)
        a[:, :, idx, idx] = np.sqrt(_chi2(rng, np.broadcast_to(n - 1.0 - idx, (size, 2, m))))
        low = np.tril_indices(m, -1)
        a[:, :, low[0], low[1]] = rng.standard_normal((size, 2, low[0].size))
        la = chol @ a
        ss = np.einsum("bjpq,bjpq->bjp", la, la)
    return endpoint_tests(d, np.full((size, 2), float(n)), ybar, ss)


def crossover_sufficient(
    plan: CrossoverPlan, size: int, rng: np.random.Generator, effect: FloatArray | None
) -> tuple[BoolArray, FloatArray]:
    d = plan.design
    tau = np.full(size, d.effect) if effect is None else effect
    sd_d = math.sqrt(2.0) * d.sd_within
    lam = d.carryover_residual
    # period differences (period 1 - period 2); sequence AB gets the carry-over in period 2
    means = np.stack([tau - d.period_effect - lam, -tau - d.period_effect], axis=1)
    if d.dropout > 0:
        n = rng.binomial(d.n_per_sequence, 1.0 - d.dropout, size=(size, 2)).astype(np.float64)
    else:
        n = np.full((size, 2), float(d.n_per_sequence))
    with np.errstate(divide="ignore", invalid="ignore"):
        dbar = means + sd_d * rng.standard_normal((size, 2)) / np.sqrt(n)
        ss = sd_d * sd_d * _chi2(rng, n - 1.0)
        big_n = n.sum(axis=1)
        if d.analysis == "abba":
            est = 0.5 * (dbar[:, 0] - dbar[:, 1])
            s2 = ss.sum(axis=1) / (big_n - 2.0)
            se = 0.5 * np.sqrt(s2 * (1.0 / n[:, 0] + 1.0 / n[:, 1]))
            df = big_n - 2.0
        else:  # paired t of A - B, ignoring period
            diffs = np.stack([dbar[:, 0], -dbar[:, 1]], axis=1)
            est = (n * diffs).sum(axis=1) / big_n
            ss_tot = ss.sum(axis=1) + (n * (diffs - est[:, None]) ** 2).sum(axis=1)
            se = np.sqrt(ss_tot / (big_n - 1.0) / big_n)
            df = big_n - 1.0
    return decide_design(d, est[:, None], se[:, None], df[:, None]), est[:, None]


def sequential_sufficient(
    plan: SequentialPlan, size: int, rng: np.random.Generator, effect: FloatArray | None
) -> tuple[BoolArray, FloatArray, NDArray[np.int64]]:
    """Cumulative statistics at each look from independent stage increments (exact)."""
    g = plan.design
    d = g.design
    looks = np.asarray(g.n_looks, dtype=np.float64)
    stage = np.diff(np.concatenate([[0.0], looks]))
    n_stage = stage.size
    mu = np.zeros((size, 2))
    mu[:, 1] = d.effect if effect is None else effect
    sd, rho, analysis = d.sd, d.baseline_corr, d.analysis
    sd_e = sd * math.sqrt(1.0 - rho * rho) if analysis == "ancova" else sd
    m: FloatArray
    if d.dropout > 0:
        drawn = rng.binomial(stage.astype(np.int64), 1.0 - d.dropout, size=(size, 2, n_stage))
        m = drawn.astype(np.float64)
    else:
        m = np.broadcast_to(stage, (size, 2, n_stage)).astype(np.float64)
    safe = np.maximum(m, 1.0)
    ybar_s = mu[:, :, None] + sd_e * rng.standard_normal((size, 2, n_stage)) / np.sqrt(safe)
    ss_s = sd_e * sd_e * _chi2(rng, np.maximum(m - 1.0, 0.0))
    if analysis == "ancova":
        xbar_s = rng.standard_normal((size, 2, n_stage)) / np.sqrt(safe)
        sxx_s = _chi2(rng, np.maximum(m - 1.0, 0.0))
        sxe_s = sd_e * np.sqrt(sxx_s) * rng.standard_normal((size, 2, n_stage))
        with np.errstate(divide="ignore", invalid="ignore"):
            resid = sd_e * sd_e * _chi2(rng, np.maximum(m - 2.0, 0.0))
            see_s = np.where(sxx_s > 0, sxe_s * sxe_s / sxx_s, 0.0) + resid
    c = np.array([[-1.0, 1.0]])
    sign = -1.0 if d.lower_is_better else 1.0
    bounds = np.asarray(g.bounds)
    stopped = np.zeros(size, dtype=bool)
    stop_look = np.full(size, n_stage, dtype=np.int64)
    est_out = np.full(size, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        for look in range(n_stage):  # K looks: a loop over stages, vectorised over replicates
            w = m[:, :, : look + 1]
            n = w.sum(axis=2)
            ybar = (w * ybar_s[:, :, : look + 1]).sum(axis=2) / n
            dev = ybar_s[:, :, : look + 1] - ybar[:, :, None]
            ss = ss_s[:, :, : look + 1].sum(axis=2) + (w * dev * dev).sum(axis=2)
            if analysis == "ancova":
                xbar = (w * xbar_s[:, :, : look + 1]).sum(axis=2) / n
                dx = xbar_s[:, :, : look + 1] - xbar[:, :, None]
                sxx = (sxx_s[:, :, : look + 1].sum(axis=2) + (w * dx * dx).sum(axis=2)).sum(axis=1)
                sxy = (sxe_s[:, :, : look + 1].sum(axis=2) + (w * dx * dev).sum(axis=2)).sum(axis=1)
                syy = (see_s[:, :, : look + 1].sum(axis=2) + (w * dev * dev).sum(axis=2)).sum(
                    axis=1
                )
                est, se, df = contrast_tests(
                    "ancova", c, n, ybar, xbar=xbar, sxx=sxx, sxy=sxy, syy=syy
                )
            else:
                est, se, df = contrast_tests(analysis, c, n, ybar, ss=ss, sd=sd)
            t = sign * est[:, 0] / se[:, 0]
            if analysis == "z":
                z = t
            else:
                z = special.ndtri(special.stdtr(np.maximum(df[:, 0], 1.0), t))
            new = ~stopped & (z > bounds[look])
            stop_look[new] = look
            est_out = np.where(new, est[:, 0], est_out)
            stopped |= new
        est_out = np.where(stopped, est_out, est[:, 0])
    return stopped[:, None], est_out[:, None], stop_look
