"""Vectorised Monte Carlo simulation of trial designs: one API, two engines.

* The **sufficient-statistic engine** draws, per simulated trial, only what the analysis needs:
  arm means (normal), sums of squares (scaled chi-square via ``standard_gamma``), ANCOVA pieces
  from their exact joint sampling distribution, binomial responder counts.  Cost is O(arms) per
  trial, independent of the sample size, and the result is exact for the normal model.
* The **patient-level engine** (:mod:`fibrosim.trials.patient_level`) simulates every patient for
  what is not normal: bounded, rounded 0-10 NRS scores, truncated baselines, responder
  definitions, MCAR/MAR/MNAR dropout with complete-case, LOCF/BOCF and multiple imputation.

Reproducibility: the replicates of a design are cut into blocks of a fixed size that depends on
the design only (never on ``chunk_size`` or the number of workers); block ``b`` draws from
``Generator(SFC64(child b of the root SeedSequence))``, and per-block sums are combined in
block order.  Any chunking, and Dask,
therefore give bit-identical results.

References
----------
Jennison C, Turnbull BW. Group Sequential Methods with Applications to Clinical Trials. Chapman &
Hall/CRC; 2000 (stage-wise sufficient statistics).
Shieh G. Power analysis and sample size planning in ANCOVA designs. Psychometrika
2020;85:101-120 (exact distribution of the ANCOVA t statistic).
O'Hagan A, Stevens JW, Campbell MJ. Assurance in clinical trial design. Pharm Stat
2005;4:187-201.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray
from scipy import special

from fibrosim._checks import check_choice, check_integer, check_rng
from fibrosim.trials.designs import (
    CrossoverDesign,
    FactorialDesign,
    GroupSequentialDesign,
    MultiArmDesign,
    MultiEndpointDesign,
    ParallelDesign,
)

__all__ = ["SimulationResult", "simulate", "simulate_assurance"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
Sampler = Callable[[int, np.random.Generator], FloatArray]

#: Replicates per block of the sufficient-statistic engine (a constant: chunking groups blocks).
SUFFICIENT_BLOCK = 1 << 15
#: Memory budget of one block of the patient-level engine; the block size (replicates) is
#: derived from the design so that its arrays stay within it.  A task holds one block at a time,
#: so peak memory is flat in ``n_sims`` and far below 2 GB per worker.
PATIENT_BLOCK_BYTES = 64 * 1024**2
ENGINES = ("auto", "sufficient", "patient")


# --------------------------------------------------------------------------------------------
# seeds
def root_seed(rng: Any) -> np.random.SeedSequence:
    """A ``SeedSequence`` from ``rng`` (None, int, SeedSequence or Generator; SPEC 7)."""
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, np.random.Generator):
        seq = rng.bit_generator.seed_seq
        if not isinstance(seq, np.random.SeedSequence):  # pragma: no cover - exotic generators
            return np.random.SeedSequence(int(rng.integers(2**63)))
        # a fresh child, so two calls with the same Generator give independent streams
        return seq.spawn(1)[0]
    check_rng(rng)  # raises the shared TypeError for anything else
    return np.random.SeedSequence(rng)


def child_seed(seq: np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    """The ``index``-th child of ``seq``, without the statefulness of ``SeedSequence.spawn``."""
    return np.random.SeedSequence(
        entropy=seq.entropy, spawn_key=(*seq.spawn_key, index), pool_size=seq.pool_size
    )


def seed_attrs(seq: np.random.SeedSequence) -> dict[str, Any]:
    """Root seed as attributes (entropy as a string: it may exceed 64 bits)."""
    return {"seed_entropy": str(seq.entropy), "seed_spawn_key": list(seq.spawn_key)}


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


# --------------------------------------------------------------------------------------------
# plans: what the engines consume
@dataclass(frozen=True)
class GroupsPlan:
    """k parallel groups compared through linear contrasts of their means."""

    n: tuple[int, ...]
    means: tuple[float, ...]
    contrasts: FloatArray
    names: tuple[str, ...]
    design: Any
    prior_group: int | None = None  # the group whose mean an effect prior replaces

    @property
    def k(self) -> int:
        return len(self.n)


@dataclass(frozen=True)
class CrossoverPlan:
    design: CrossoverDesign
    names: tuple[str, ...] = ("effect",)


@dataclass(frozen=True)
class SequentialPlan:
    design: GroupSequentialDesign
    names: tuple[str, ...] = ("effect",)


@dataclass(frozen=True)
class EndpointsPlan:
    design: MultiEndpointDesign

    @property
    def names(self) -> tuple[str, ...]:
        return self.design.endpoints.names


Plan = GroupsPlan | CrossoverPlan | SequentialPlan | EndpointsPlan


def compile_plan(design: Any) -> Plan:
    """Translate a design into the plan an engine runs."""
    if isinstance(design, ParallelDesign):
        c = np.array([[-1.0, 1.0]])
        return GroupsPlan((design.n_per_arm,) * 2, (0.0, design.effect), c, ("effect",), design, 1)
    if isinstance(design, MultiArmDesign):
        k = len(design.effects)
        c = np.hstack([-np.ones((k, 1)), np.eye(k)])
        n = (int(design.n_control or design.n_per_arm),) + (design.n_per_arm,) * k
        names = tuple(design.arm_names or ())
        return GroupsPlan(n, (0.0, *design.effects), c, names, design)
    if isinstance(design, FactorialDesign):
        a, b, ab = design.effect_a, design.effect_b, design.interaction
        # cells: (A0 B0), (A1 B0), (A0 B1), (A1 B1)
        c = np.array([[-0.5, 0.5, -0.5, 0.5], [-0.5, -0.5, 0.5, 0.5], [1.0, -1.0, -1.0, 1.0]])
        fa, fb = design.factor_names
        names = (fa, fb, f"{fa}:{fb}")
        return GroupsPlan((design.n_per_cell,) * 4, (0.0, a, b, a + b + ab), c, names, design)
    if isinstance(design, CrossoverDesign):
        return CrossoverPlan(design)
    if isinstance(design, MultiEndpointDesign):
        return EndpointsPlan(design)
    if isinstance(design, GroupSequentialDesign):
        return SequentialPlan(design)
    raise TypeError(
        "`design` must be a ParallelDesign, MultiArmDesign, FactorialDesign, CrossoverDesign, "
        f"GroupSequentialDesign or MultiEndpointDesign; got {type(design).__name__}."
    )


def patient_level_reason(plan: Plan) -> str | None:
    """Why the sufficient-statistic engine is not exact for this plan (None if it is)."""
    if isinstance(plan, EndpointsPlan):
        return "patients drop out (MCAR)" if plan.design.dropout > 0 else None
    if not isinstance(plan, GroupsPlan):
        return None
    d = plan.design
    if d.cohort is not None and not d.cohort.is_continuous:
        return "the cohort has a truncated baseline, bounded or rounded scores"
    if d.dropout > 0 and (d.dropout_mechanism != "MCAR" or d.missing != "cc"):
        return f"dropout is {d.dropout_mechanism} with missing={d.missing!r}"
    return None


def choose_engine(plan: Plan, engine: str) -> str:
    check_choice("engine", engine, ENGINES)
    reason = patient_level_reason(plan)
    if engine == "auto":
        return "sufficient" if reason is None else "patient"
    if engine == "sufficient" and reason is not None:
        raise ValueError(
            f"`engine` 'sufficient' is not exact for this design because {reason}; use "
            "engine='patient' or 'auto'."
        )
    if engine == "patient" and not isinstance(plan, (GroupsPlan, EndpointsPlan)):
        raise ValueError(
            f"`engine` 'patient' supports parallel-group designs only; got "
            f"{type(plan.design).__name__}, which the sufficient-statistic engine simulates "
            "exactly."
        )
    return engine


def block_size(plan: Plan, engine: str) -> int:
    """Replicates per block: a function of the design and engine only."""
    if engine == "sufficient":
        return SUFFICIENT_BLOCK
    # about 16 float64 arrays of (block, patients) live at once in the patient-level engine
    if isinstance(plan, EndpointsPlan):
        per_rep = 16 * 8 * 2 * plan.design.n_per_arm * len(plan.names)
    else:
        assert isinstance(plan, GroupsPlan)
        per_rep = 16 * 8 * sum(plan.n)
    size = max(1, PATIENT_BLOCK_BYTES // per_rep)
    return int(min(4096, 1 << (size.bit_length() - 1)))


# --------------------------------------------------------------------------------------------
# analysis kernels shared by both engines
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


# --------------------------------------------------------------------------------------------
# sufficient-statistic engines: each returns (rejected (B, m), estimates (B, m), extra)
def _chi2(rng: np.random.Generator, df: Any, size: Any = None) -> FloatArray:
    """Chi-square draws via standard_gamma (df may be an array; df = 0 gives 0)."""
    half = 0.5 * np.asarray(df, dtype=np.float64)
    if half.ndim == 0:
        return 2.0 * rng.standard_gamma(float(half), size) if half > 0 else np.zeros(size)
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
    if d.analysis == "ancova":
        sd_e = sd * math.sqrt(1.0 - d.baseline_corr**2)
        cx = rng.standard_normal(size)
        cx *= math.sqrt(v)
        sxx = _chi2(rng, dfe, size)
        scale = np.sqrt(v + cx * cx / sxx)
        dfe -= 1.0
        z = rng.standard_normal(size)
        z *= scale
        est = mean + sd_e * z
        se = scale * np.sqrt(_chi2(rng, dfe, size) * (sd_e * sd_e / dfe))
    else:
        z = rng.standard_normal(size)
        est = mean + (sd * math.sqrt(v)) * z
        if d.analysis == "z":
            se = np.full(size, sd * math.sqrt(v))
            dfe = math.inf
        else:
            se = np.sqrt(_chi2(rng, dfe, size) * (sd * sd * v / dfe))
    return est[:, None], se[:, None], dfe


def _groups_sufficient(
    plan: GroupsPlan, size: int, rng: np.random.Generator, effect: FloatArray | None
) -> tuple[BoolArray, FloatArray]:
    d = plan.design
    k, c = plan.k, plan.contrasts
    sd, rho, analysis = d.sd, d.baseline_corr, d.analysis
    sign = 1.0 if analysis == "responder" else (-1.0 if d.lower_is_better else 1.0)
    multiplicity = getattr(d, "multiplicity", "none")
    if analysis != "responder" and c.shape[0] == 1 and d.dropout == 0:
        est1, se1, df1 = _single_contrast(plan, size, rng, effect)
        rejected = decide(est1, se1, df1, alpha=d.alpha, sided=d.sided, benefit_sign=sign)
        return rejected, est1
    mu = np.broadcast_to(np.asarray(plan.means), (size, k)).copy()
    if effect is not None:
        mu[:, plan.prior_group] = effect
    if d.dropout > 0:
        n = rng.binomial(np.asarray(plan.n), 1.0 - d.dropout, size=(size, k)).astype(np.float64)
    else:
        n = np.broadcast_to(np.asarray(plan.n, dtype=np.float64), (size, k))
    with np.errstate(invalid="ignore", divide="ignore"):
        if analysis == "responder":
            counts = rng.binomial(n.astype(np.int64), responder_probability(d, mu))
            est, se, df = contrast_tests("responder", c, n, counts.astype(np.float64) / n)
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
    rejected = decide(
        est, se, df, alpha=d.alpha, sided=d.sided, benefit_sign=sign, multiplicity=multiplicity
    )
    return rejected, est


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


def _endpoints_sufficient(
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


def _crossover_sufficient(
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
    sign = -1.0 if d.lower_is_better else 1.0
    rejected = decide(
        est[:, None], se[:, None], df[:, None], alpha=d.alpha, sided=d.sided, benefit_sign=sign
    )
    return rejected, est[:, None]


def _sequential_sufficient(
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


# --------------------------------------------------------------------------------------------
# running blocks
def prior_sampler(prior: Any) -> Sampler:
    """A sampler ``f(n, rng) -> effects`` from a prior.

    The prior is a callable, an object with ``.sample``/``.rvs`` or a ``(weights, means, sds)``
    normal mixture.
    """
    if isinstance(prior, tuple) and len(prior) == 3:
        w = np.atleast_1d(np.asarray(prior[0], dtype=float))
        mu = np.atleast_1d(np.asarray(prior[1], dtype=float))
        sd = np.atleast_1d(np.asarray(prior[2], dtype=float))
        if not (w.shape == mu.shape == sd.shape) or w.ndim != 1:
            raise ValueError(
                "`prior` (weights, means, sds) must be three 1-D sequences of equal length; got "
                f"shapes {w.shape}, {mu.shape}, {sd.shape}."
            )
        if np.any(w < 0) or not math.isclose(float(w.sum()), 1.0, abs_tol=1e-9) or np.any(sd < 0):
            raise ValueError(
                "`prior` weights must be >= 0 and sum to 1 and sds >= 0; got weights "
                f"{w.tolist()}, "
                f"sds {sd.tolist()}."
            )

        def mixture(n: int, rng: np.random.Generator) -> FloatArray:
            comp = rng.choice(w.size, size=n, p=w) if w.size > 1 else np.zeros(n, dtype=np.intp)
            return np.asarray(mu[comp] + sd[comp] * rng.standard_normal(n))

        return mixture
    if hasattr(prior, "sample"):
        return lambda n, rng: np.asarray(prior.sample(n, rng=rng), dtype=np.float64).reshape(n)
    if hasattr(prior, "rvs"):
        return lambda n, rng: np.asarray(prior.rvs(size=n, random_state=rng), dtype=np.float64)
    if callable(prior):
        return lambda n, rng: np.asarray(prior(n, rng), dtype=np.float64).reshape(n)
    raise TypeError(
        "`effect_prior` must be a callable f(n, rng), an object with .sample(n, rng=) or .rvs, "
        f"or a (weights, means, sds) normal mixture; got {prior!r}."
    )


def n_stats(plan: Plan) -> int:
    """Length of a block's accumulator vector."""
    m = _n_comparisons(plan)
    looks = len(plan.design.bounds) if isinstance(plan, SequentialPlan) else 0
    return 2 + 4 * m + looks


def _n_comparisons(plan: Plan) -> int:
    if isinstance(plan, EndpointsPlan):
        return len(plan.names)
    return plan.contrasts.shape[0] if isinstance(plan, GroupsPlan) else 1


def run_block(
    plan: Plan, engine: str, size: int, seq: np.random.SeedSequence, prior: Sampler | None
) -> FloatArray:
    """Simulate one block and return its sums.

    Layout: [n, successes, rejections(m), est sum(m), est sum of squares(m), valid estimates(m),
    stops per look(K)].
    """
    rng = np.random.Generator(np.random.SFC64(seq))
    effect = None if prior is None else prior(size, rng)
    stops: FloatArray = np.zeros(0)
    if isinstance(plan, GroupsPlan):
        if engine == "patient":
            from fibrosim.trials.patient_level import simulate_groups_block

            rejected, est = simulate_groups_block(plan, size, rng, effect)
        else:
            rejected, est = _groups_sufficient(plan, size, rng, effect)
    elif isinstance(plan, EndpointsPlan):
        if engine == "patient":
            from fibrosim.trials.patient_level import simulate_endpoints_block

            rejected, est = simulate_endpoints_block(plan, size, rng)
        else:
            rejected, est = _endpoints_sufficient(plan, size, rng)
    elif isinstance(plan, CrossoverPlan):
        rejected, est = _crossover_sufficient(plan, size, rng, effect)
    else:
        rejected, est, stop_look = _sequential_sufficient(plan, size, rng, effect)
        stops = np.bincount(stop_look, minlength=len(plan.design.bounds) + 1)[:-1].astype(float)
    success_rule = getattr(plan.design, "success", "any")
    success = rejected.all(axis=1) if success_rule == "all" else rejected.any(axis=1)
    ok = np.isfinite(est)
    e = np.where(ok, est, 0.0)
    return np.concatenate(
        [
            [float(size), float(success.sum())],
            rejected.sum(axis=0).astype(float),
            e.sum(axis=0),
            (e * e).sum(axis=0),
            ok.sum(axis=0).astype(float),
            stops,
        ]
    )


def block_sizes(n_sims: int, size: int) -> list[int]:
    full, rest = divmod(n_sims, size)
    return [size] * full + ([rest] if rest else [])


def run_blocks(
    plan: Plan,
    engine: str,
    cell_seed: np.random.SeedSequence,
    first_block: int,
    sizes: Sequence[int],
    prior: Sampler | None,
) -> FloatArray:
    """Per-block sums (n_blocks, n_stats) of consecutive blocks starting at ``first_block``."""
    out = np.empty((len(sizes), n_stats(plan)))
    for i, size in enumerate(sizes):
        out[i] = run_block(plan, engine, size, child_seed(cell_seed, first_block + i), prior)
    return out


def chunk_blocks(n_blocks: int, block: int, chunk_size: int | None) -> list[tuple[int, int]]:
    """(first block, number of blocks) per chunk; ``chunk_size`` rounds up to whole blocks.

    A chunk is one task (one Dask future); its blocks run one after another, so memory depends on
    the block, not on the chunk.  By default a cell is cut into at most 64 tasks.
    """
    per = max(1, math.ceil(chunk_size / block)) if chunk_size else max(1, math.ceil(n_blocks / 64))
    return [(b, min(per, n_blocks - b)) for b in range(0, n_blocks, per)]


# --------------------------------------------------------------------------------------------
# result
@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Operating characteristics of a design, estimated by simulation.

    Attributes
    ----------
    power : float
        Share of simulated trials that succeed (``success`` rule of the design: any / all
        comparisons rejected; for group-sequential designs: efficacy at any look).  Under a null
        effect this is the type-I error; with an effect prior it is the assurance.
    mcse : float
        Monte Carlo standard error of ``power``, ``sqrt(p (1 - p) / n_sims)``.
    n_sims : int
    comparisons : tuple of str
        Names of the tested comparisons.
    comparison_power, comparison_mcse : ndarray
        Rejection rate of each comparison (after multiplicity) and its MCSE.
    mean_estimate, sd_estimate : ndarray
        Mean and SD of each comparison's estimate over the trials (at stopping, for sequential
        designs), e.g. to read bias under carry-over or informative dropout.
    stop_probability : ndarray
        Probability of stopping for efficacy at each look (group-sequential only, else empty).
    expected_n_per_arm : float or None
        Expected patients per arm (group-sequential), else None.
    engine : str
        "sufficient" or "patient".
    design : object
        The simulated design.
    seed : dict
        Root ``SeedSequence`` entropy and spawn key.
    block_size : int
        Replicates per seeded block.
    """

    power: float
    mcse: float
    n_sims: int
    comparisons: tuple[str, ...]
    comparison_power: FloatArray
    comparison_mcse: FloatArray
    mean_estimate: FloatArray
    sd_estimate: FloatArray
    stop_probability: FloatArray
    expected_n_per_arm: float | None
    engine: str
    design: Any = field(repr=False)
    seed: dict[str, Any] = field(repr=False)
    block_size: int = field(repr=False)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per comparison plus a "success" row."""
        rows = pd.DataFrame(
            {
                "comparison": list(self.comparisons),
                "power": self.comparison_power,
                "mcse": self.comparison_mcse,
                "mean_estimate": self.mean_estimate,
                "sd_estimate": self.sd_estimate,
            }
        )
        top = pd.DataFrame(
            {
                "comparison": ["success"],
                "power": [self.power],
                "mcse": [self.mcse],
                "mean_estimate": [np.nan],
                "sd_estimate": [np.nan],
            }
        )
        return pd.concat([top, rows], ignore_index=True)

    def to_xarray(self) -> xr.Dataset:
        """Dataset with ``power``/``mcse`` and per-comparison variables; seed in attrs."""
        ds = xr.Dataset(
            {
                "power": ((), self.power, {"units": "probability"}),
                "mcse": ((), self.mcse, {"units": "probability"}),
                "comparison_power": ("comparison", self.comparison_power),
                "comparison_mcse": ("comparison", self.comparison_mcse),
                "mean_estimate": ("comparison", self.mean_estimate),
                "sd_estimate": ("comparison", self.sd_estimate),
            },
            coords={"comparison": list(self.comparisons)},
        )
        if self.stop_probability.size:
            ds["stop_probability"] = ("look", self.stop_probability)
            ds["expected_n_per_arm"] = ((), self.expected_n_per_arm)
        ds.attrs.update(
            n_sims=self.n_sims,
            engine=self.engine,
            design=repr(self.design),
            block_size=self.block_size,
            **self.seed,
        )
        return ds

    def __repr__(self) -> str:
        lines = [
            f"SimulationResult ({self.engine} engine, n_sims={self.n_sims})",
            f"  power {self.power:.4f}  (MCSE {self.mcse:.4f})",
            f"  {'comparison':<16}{'power':>9}{'mcse':>9}{'mean est':>11}",
        ]
        for name, p, s, e in zip(
            self.comparisons,
            self.comparison_power,
            self.comparison_mcse,
            self.mean_estimate,
            strict=True,
        ):
            lines.append(f"  {name:<16}{p:>9.4f}{s:>9.4f}{e:>11.4f}")
        if self.stop_probability.size:
            stops = ", ".join(f"{v:.3f}" for v in self.stop_probability)
            lines.append(f"  stop at look: {stops}; E[n per arm] {self.expected_n_per_arm:.1f}")
        return "\n".join(lines)


def summarise(
    plan: Plan, engine: str, sums: FloatArray, design: Any, seed: dict[str, Any], block: int
) -> SimulationResult:
    """Combine per-block sums (in block order) into a result."""
    total = sums.sum(axis=0)
    m = _n_comparisons(plan)
    n = total[0]
    power = total[1] / n
    rej = total[2 : 2 + m] / n
    s1 = total[2 + m : 2 + 2 * m]
    s2 = total[2 + 2 * m : 2 + 3 * m]
    cnt = total[2 + 3 * m : 2 + 4 * m]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        sd = np.sqrt(np.maximum(s2 / cnt - mean * mean, 0.0) * cnt / (cnt - 1.0))
    stops = total[2 + 4 * m :] / n
    expected = None
    if isinstance(plan, SequentialPlan):
        looks = np.asarray(plan.design.n_looks, dtype=float)
        expected = float(np.sum(stops * looks) + (1 - stops.sum()) * looks[-1])
    names = plan.names
    return SimulationResult(
        power=float(power),
        mcse=float(math.sqrt(power * (1 - power) / n)),
        n_sims=int(n),
        comparisons=tuple(names),
        comparison_power=rej,
        comparison_mcse=np.sqrt(rej * (1 - rej) / n),
        mean_estimate=mean,
        sd_estimate=sd,
        stop_probability=stops,
        expected_n_per_arm=expected,
        engine=engine,
        design=design,
        seed=seed,
        block_size=block,
    )


def check_n_sims(n_sims: Any) -> int:
    if isinstance(n_sims, bool) or not isinstance(n_sims, (int, np.integer, float)):
        raise TypeError(f"`n_sims` must be a positive whole number; got {n_sims!r}.")
    return int(check_integer("n_sims", n_sims, minimum=1))


def check_chunk_size(chunk_size: Any) -> int | None:
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise TypeError(
            f"`chunk_size` must be a positive whole number or None; got {chunk_size!r}."
        )
    return int(check_integer("chunk_size", chunk_size, minimum=1))


def check_prior(plan: Plan, prior: Any) -> Sampler | None:
    if prior is None:
        return None
    if isinstance(plan, EndpointsPlan) or (
        isinstance(plan, GroupsPlan) and plan.prior_group is None
    ):
        raise ValueError(
            "`effect_prior` needs a design with a single effect (ParallelDesign, "
            f"CrossoverDesign, GroupSequentialDesign); got {type(plan.design).__name__}."
        )
    return prior_sampler(prior)


def simulate(
    design: Any,
    n_sims: int,
    *,
    rng: Any = None,
    engine: str = "auto",
    chunk_size: int | None = None,
    effect_prior: Any = None,
) -> SimulationResult:
    """Simulate ``n_sims`` trials of ``design`` and estimate power (or type-I error, assurance).

    Parameters
    ----------
    design : ParallelDesign, MultiArmDesign, FactorialDesign, CrossoverDesign, GroupSequentialDesign
    n_sims : int
        Simulated trials (>= 1).
    rng : None, int, SeedSequence or Generator
        Root of the random streams (SPEC 7).  Block ``b`` uses child ``b`` of the root.
    engine : {"auto", "sufficient", "patient"}
        "auto" uses the exact sufficient-statistic engine unless the design needs patients
        (truncated, bounded or rounded scores; non-MCAR dropout or an imputation analysis).
    chunk_size : int or None
        Replicates per task, rounded up to whole blocks; results do not depend on it.
    effect_prior : optional
        Draw the true effect of each simulated trial from this prior (assurance): a callable
        ``f(n, rng)``, an object with ``.sample(n, rng=)`` (or a scipy frozen distribution), or a
        ``(weights, means, sds)`` normal mixture.

    Returns
    -------
    SimulationResult

    Raises
    ------
    ValueError, TypeError
        For an invalid argument, an engine that cannot simulate the design exactly, or a prior
        on a design without a single effect.

    Examples
    --------
    >>> from fibrosim.trials.designs import ParallelDesign
    >>> from fibrosim.trials.simulation import simulate
    >>> res = simulate(ParallelDesign(64, -0.5, 1.0, analysis="student"), 20_000, rng=1)
    >>> abs(res.power - 0.8015) < 4 * res.mcse
    True
    """
    plan = compile_plan(design)
    n = check_n_sims(n_sims)
    chunk = check_chunk_size(chunk_size)
    eng = choose_engine(plan, engine)
    prior = check_prior(plan, effect_prior)
    seq = root_seed(rng)
    block = block_size(plan, eng)
    sizes = block_sizes(n, block)
    parts = [
        run_blocks(plan, eng, seq, first, sizes[first : first + count], prior)
        for first, count in chunk_blocks(len(sizes), block, chunk)
    ]
    return summarise(plan, eng, np.concatenate(parts), design, seed_attrs(seq), block)


def simulate_assurance(
    design: Any, prior: Any, n_sims: int, *, rng: Any = None, engine: str = "auto"
) -> SimulationResult:
    """Assurance: probability of success with the effect drawn from ``prior`` for every trial.

    Same as ``simulate(design, n_sims, rng=rng, engine=engine, effect_prior=prior)``.  For a
    normal prior N(m, v) and a known-variance z test the closed form is
    ``A = Phi((m - z_{1-alpha} s) / sqrt(s^2 + v))`` (O'Hagan, Stevens & Campbell 2005), with
    the sign of ``m`` turned towards benefit.
    """
    return simulate(design, n_sims, rng=rng, engine=engine, effect_prior=prior)
