"""Patient-level simulation engine for parallel-group designs (what is not normal).

Every simulated patient gets a baseline and a follow-up score, vectorised as (replicates,
patients) arrays within one block:

* baseline from the cohort's (truncated) normal, follow-up from the bivariate-normal model of
  :mod:`fibrosim.trials.cohorts`, both rounded to the scale step and clipped to the scale bounds;
* an interim visit halfway (the mean of baseline and follow-up, rounded), used by LOCF;
* dropout: MCAR with probability ``dropout``; MAR / MNAR with log-odds ``a + slope * z`` where
  ``z`` is the standardised baseline (MAR) or the standardised latent follow-up relative to the
  control mean (MNAR), and ``a`` keeps the average rate at ``dropout`` for a standard-normal
  ``z``; half of the dropouts leave before the interim visit;
* analyses: complete case, LOCF (interim, or baseline if the patient left before it), BOCF, or
  proper multiple imputation: per arm, the normal regression of follow-up on baseline among
  completers is drawn from its posterior (sigma^2 from a scaled inverse chi-square, coefficients
  given sigma^2) and the missing values imputed with noise; the analyses are pooled by Rubin's
  rules with the Barnard-Rubin degrees of freedom.
* responders: ``(baseline - follow-up) / baseline >= responder_threshold`` on the observed
  scores; with LOCF/BOCF a dropout is classified on the carried value (BOCF: non-responder).

References
----------
Rubin DB. Multiple Imputation for Nonresponse in Surveys. Wiley; 1987.
Barnard J, Rubin DB. Small-sample degrees of freedom with multiple imputation. Biometrika
1999;86:948-955.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from scipy import integrate, optimize, special

from fibrosim.trials._analysis import contrast_tests, decide_design, decide_fisher, endpoint_tests
from fibrosim.trials.designs import RESPONDER_ANALYSES

if TYPE_CHECKING:
    from fibrosim.trials._plans import EndpointsPlan, GroupsPlan

__all__ = ["dropout_intercept", "simulate_endpoints_block", "simulate_groups_block"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Values per row chunk of the elementwise arithmetic: three chunk arrays (baseline, follow-up,
#: scratch) of 256 KiB fit a 1 MiB L2 cache.
CHUNK_VALUES = 1 << 15


_THREAD = threading.local()


def _workspace(n_values: int) -> FloatArray:
    """A float64 buffer of ``n_values`` that the calling thread reuses from block to block.

    The latent baseline and follow-up scores of a block are several megabytes; a fresh array
    each block costs a page fault per 4 KiB page, about a fifth of the block's time.  The
    buffer (at most ``PATIENT_BLOCK_BYTES / 8``: the block size keeps it there) lives as long
    as the thread; nothing returned from a block refers to it.
    """
    buf: FloatArray | None = getattr(_THREAD, "buffer", None)
    if buf is None or buf.size < n_values:
        buf = np.empty(n_values)
        _THREAD.buffer = buf
    return buf[:n_values]


@lru_cache(maxsize=256)
def dropout_intercept(rate: float, slope: float) -> float:
    """Intercept ``a`` with ``E[expit(a + slope Z)] = rate`` for ``Z ~ N(0, 1)``.

    Adaptive quadrature (the logistic's complex poles make Gauss-Hermite slow for steep
    slopes) inside Brent's method; ``slope = 0`` gives ``logit(rate)``.
    """
    if slope == 0.0:
        return float(special.logit(rate))

    def mean_rate(a: float) -> float:
        def f(z: float) -> float:
            return float(
                np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi) * special.expit(a + slope * z)
            )

        return float(integrate.quad(f, -np.inf, np.inf, epsabs=1e-14, epsrel=1e-12)[0])

    return float(optimize.brentq(lambda a: mean_rate(a) - rate, -60, 60, xtol=1e-13))


def _observe(v: FloatArray, step: float | None, lo: float | None, hi: float | None) -> FloatArray:
    """Recorded scores: rounded to ``step`` and clipped to ``[lo, hi]`` (a new array)."""
    if step is None and lo is None and hi is None:
        return v
    out = v / step if step is not None else v.copy()
    if step is not None:
        np.round(out, out=out)
        out *= step
    if lo is not None or hi is not None:
        np.clip(out, lo, hi, out=out)
    return out


def _sums(
    x: FloatArray, y: FloatArray, w: FloatArray | None, offsets: NDArray[np.intp], need_x: bool
) -> dict[str, FloatArray]:
    """Per-group counts and sums (size, k) over the patient axis."""
    size, k = y.shape[0], offsets.size - 1
    names = ("n", "sy", "syy") + (("sx", "sxx", "sxy") if need_x else ())
    out = {name: np.empty((size, k)) for name in names}
    for j in range(k):
        sl = slice(int(offsets[j]), int(offsets[j + 1]))
        yj = y[:, sl]
        yw = yj if w is None else yj * w[:, sl]
        out["n"][:, j] = (sl.stop - sl.start) if w is None else w[:, sl].sum(axis=1)
        out["sy"][:, j] = yw.sum(axis=1)
        out["syy"][:, j] = np.einsum("ij,ij->i", yw, yj)
        if need_x:
            xj = x[:, sl]
            xw = xj if w is None else xj * w[:, sl]
            out["sx"][:, j] = xw.sum(axis=1)
            out["sxx"][:, j] = np.einsum("ij,ij->i", xw, xj)
            out["sxy"][:, j] = np.einsum("ij,ij->i", xw, yj)
    return out


def _analyse(
    analysis: str, c: FloatArray, s: dict[str, FloatArray], sd: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Contrast tests from per-group sums (continuous analyses)."""
    n = s["n"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ybar = s["sy"] / n
        ss = s["syy"] - s["sy"] * ybar
        if analysis != "ancova":
            return contrast_tests(analysis, c, n, ybar, ss=ss, sd=sd)
        xbar = s["sx"] / n
        sxx = (s["sxx"] - s["sx"] * xbar).sum(axis=1)
        sxy = (s["sxy"] - s["sx"] * ybar).sum(axis=1)
        return contrast_tests("ancova", c, n, ybar, xbar=xbar, sxx=sxx, sxy=sxy, syy=ss.sum(axis=1))


def _responders(
    x: FloatArray,
    y: FloatArray,
    w: FloatArray | None,
    offsets: NDArray[np.intp],
    threshold: float,
) -> tuple[FloatArray, FloatArray]:
    """Analysed patients and responders per arm, (B, k) each."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = ((x - y) >= threshold * x) & (x > 0)
    s = _sums(x, r.astype(np.float64), w, offsets, need_x=False)
    return s["n"], s["sy"]


def _complete_df(analysis: str, n_total: int, k: int) -> float:
    if analysis == "z":
        return math.inf
    return float(n_total - k - (1 if analysis == "ancova" else 0))


def _multiple_imputation(
    plan: GroupsPlan,
    rng: np.random.Generator,
    x: FloatArray,
    y: FloatArray,
    observed: FloatArray,
    offsets: NDArray[np.intp],
    group_of: NDArray[np.intp],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    d = plan.design
    s = _sums(x, y, observed, offsets, need_x=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = s["n"]
        ybar, xbar = s["sy"] / n, s["sx"] / n
        sxx = s["sxx"] - s["sx"] * xbar
        sxy = s["sxy"] - s["sx"] * ybar
        slope = sxy / sxx
        sse = s["syy"] - s["sy"] * ybar - slope * sxy
    df_res = n - 2.0  # per-arm regression of follow-up on baseline among completers
    usable = np.all(df_res >= 1, axis=1)
    df_safe = np.where(df_res >= 1, df_res, 1.0)
    missing = observed == 0
    m = d.n_imputations
    ests, variances = [], []
    for _ in range(m):
        with np.errstate(divide="ignore", invalid="ignore"):
            sigma = np.sqrt(sse / (2.0 * rng.standard_gamma(0.5 * df_safe)))
            a = ybar + sigma * rng.standard_normal(n.shape) / np.sqrt(n)
            b = slope + sigma * rng.standard_normal(n.shape) / np.sqrt(sxx)
        draw = (
            a[:, group_of]
            + b[:, group_of] * (x - xbar[:, group_of])
            + sigma[:, group_of] * rng.standard_normal(x.shape)
        )
        yc = np.where(missing, draw, y)
        est, se, _ = _analyse(
            d.analysis, plan.contrasts, _sums(x, yc, None, offsets, d.analysis == "ancova"), d.sd
        )
        ests.append(est)
        variances.append(se * se)
    q = np.stack(ests)
    u = np.stack(variances)
    qbar = q.mean(axis=0)
    ubar = u.mean(axis=0)
    between = q.var(axis=0, ddof=1)
    total = ubar + (1 + 1 / m) * between
    with np.errstate(divide="ignore", invalid="ignore"):
        gamma = (1 + 1 / m) * between / total
        df_old = (m - 1) / (gamma * gamma)
        nu_com = _complete_df(d.analysis, sum(plan.n), plan.k)
        if math.isinf(nu_com):
            df = df_old
        else:
            nu_obs = (nu_com + 1) / (nu_com + 3) * nu_com * (1 - gamma)
            df = 1.0 / (1.0 / df_old + 1.0 / nu_obs)
    se = np.where(usable[:, None], np.sqrt(total), np.nan)
    return qbar, se, df


def simulate_groups_block(
    plan: GroupsPlan, size: int, rng: np.random.Generator, effect: FloatArray | None
) -> tuple[BoolArray, FloatArray]:
    """Simulate ``size`` trials patient by patient; return rejections and estimates (size, m)."""
    d = plan.design
    cohort = d.cohort
    n = np.asarray(plan.n)
    offsets = np.concatenate([[0], np.cumsum(n)]).astype(np.intp)
    group_of = np.repeat(np.arange(plan.k), n)
    n_total = int(n.sum())
    rho, s1 = d.baseline_corr, d.sd
    if cohort is None:
        # an unbounded outcome whose baseline shares the follow-up's scale (BOCF = no change)
        m0, s0, control = 0.0, s1, 0.0
        step = lo = hi = threshold = None
    else:
        m0, s0 = cohort.baseline_mean, cohort.baseline_sd
        control = m0 + cohort.control_change
        step, lo, hi = cohort.scale_step, cohort.scale_min, cohort.scale_max
        threshold = cohort.inclusion_threshold
    means = np.broadcast_to(np.asarray(plan.means) + control, (size, plan.k)).copy()
    if effect is not None:
        means[:, plan.prior_group] = control + effect
    # the baseline is drawn only when something uses it: with no cohort, a t / z analysis and
    # no dropout the follow-up is simply N(mean, sd^2)
    need_x = (
        cohort is not None
        or d.analysis in ("ancova", *RESPONDER_ANALYSES)
        or (d.dropout > 0 and (d.dropout_mechanism == "MAR" or d.missing != "cc"))
    )
    work = _workspace(2 * size * n_total).reshape(2, size, n_total)
    if not need_x:
        x = np.zeros((size, 0))
        y = rng.standard_normal(out=work[1])
    else:
        if threshold is not None:
            assert cohort is not None
            mu_l, sd_l = cohort.latent_baseline
            low = float(special.ndtr((threshold - mu_l) / sd_l))
            x = rng.random(out=work[0])
            x *= 1.0 - low
            x += low
            special.ndtri(x, out=x)
            x *= sd_l
            x += mu_l - m0  # centred baseline for now
        else:
            x = rng.standard_normal(out=work[0])
        y = rng.standard_normal(out=work[1])
    # The draws fill whole arrays (their order fixes the random stream); the elementwise
    # arithmetic then runs on row chunks that stay in cache, with one chunk-sized scratch array.
    rows = max(1, CHUNK_VALUES // n_total)
    scratch = np.empty((min(rows, size), n_total)) if need_x else None
    # multiplying by one and adding zero are skipped: they change no bits the analyses see
    shifted = [j for j in range(plan.k) if np.any(means[:, j] != 0.0)]
    for r in range(0, size, rows):
        ys = y[r : r + rows]
        if scratch is None:
            if s1 != 1.0:
                ys *= s1
        else:
            xs = x[r : r + rows]
            if threshold is None and s0 != 1.0:
                xs *= s0
            ys *= s1 * math.sqrt(1.0 - rho * rho)
            ys += np.multiply(xs, rho * s1 / s0, out=scratch[: xs.shape[0]])
            if m0 != 0.0:
                xs += m0
        for j in shifted:  # add each group's mean to its slice of patients
            ys[:, offsets[j] : offsets[j + 1]] += means[r : r + rows, j : j + 1]
    xo = _observe(x, step, lo, hi)
    yo = _observe(y, step, lo, hi)

    observed: FloatArray | None = None
    if d.dropout > 0:
        u = rng.random((size, n_total))
        if d.dropout_mechanism == "MCAR":
            drop = u < d.dropout
        else:
            z = (x - m0) / s0 if d.dropout_mechanism == "MAR" else (y - control) / s1
            a = dropout_intercept(d.dropout, d.dropout_slope)
            drop = u < special.expit(a + d.dropout_slope * z)
        if d.missing == "cc" or d.missing == "mi":
            observed = (~drop).astype(np.float64)
        elif d.missing == "bocf":
            yo = np.where(drop, xo, yo)
        else:  # locf: the interim value if the patient left after the interim visit
            interim = _observe(0.5 * (x + y), step, lo, hi)
            after = rng.random((size, n_total)) < 0.5
            yo = np.where(drop, np.where(after, interim, xo), yo)

    if d.analysis in RESPONDER_ANALYSES:
        n_arm, counts = _responders(xo, yo, observed, offsets, d.responder_threshold)
        with np.errstate(divide="ignore", invalid="ignore"):
            est, se, df = contrast_tests("responder", plan.contrasts, n_arm, counts / n_arm)
        if d.analysis == "fisher":
            return decide_fisher(d, plan.contrasts, n_arm, counts), est
    elif observed is not None and d.missing == "mi":
        est, se, df = _multiple_imputation(plan, rng, xo, yo, observed, offsets, group_of)
    else:
        sums = _sums(xo, yo, observed, offsets, need_x=d.analysis == "ancova")
        est, se, df = _analyse(d.analysis, plan.contrasts, sums, d.sd)
    return decide_design(d, est, se, df), est


def simulate_endpoints_block(
    plan: EndpointsPlan, size: int, rng: np.random.Generator
) -> tuple[BoolArray, FloatArray]:
    """Correlated endpoints patient by patient (multivariate normal), MCAR complete case."""
    d = plan.design
    e = d.endpoints
    m, n = len(e.names), d.n_per_arm
    chol = np.linalg.cholesky(e.covariance)
    y = rng.standard_normal((size, 2, n, m)) @ chol.T
    y[:, 1] += np.asarray(e.effects)
    if d.dropout > 0:
        w = (rng.random((size, 2, n)) >= d.dropout).astype(np.float64)
        counts = w.sum(axis=2)
        yw = y * w[..., None]
    else:
        counts = np.full((size, 2), float(n))
        yw = y
    with np.errstate(divide="ignore", invalid="ignore"):
        ybar = yw.sum(axis=2) / counts[..., None]
        ss = np.einsum("bjip,bjip->bjp", yw, y) - counts[..., None] * ybar * ybar
    return endpoint_tests(d, counts, ybar, ss)
