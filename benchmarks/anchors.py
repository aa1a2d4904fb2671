"""Timers for the anchors fibrosim is compared with: metafor in R, statsmodels, scipy loops, PyMC.

R anchors are timed *inside* R (``system.time`` around a loop of fits), so the start-up of the
R process and the loading of metafor are never counted against metafor.  Python anchors are
timed by pytest-benchmark like the fibrosim functions, or by the small loops defined here.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

R_MISSING = "Rscript not installed: apt-get install r-base-core r-cran-metafor"


def rscript() -> str | None:
    """Path of Rscript, or None when R is not installed."""
    return shutil.which("Rscript")


def r_versions() -> dict[str, str]:
    """R and metafor versions (empty when R or metafor is absent)."""
    exe = rscript()
    if exe is None:
        return {}
    code = (
        'cat(R.version.string, "\\n");'
        'cat(tryCatch(as.character(packageVersion("metafor")), error = function(e) "absent"))'
    )
    out = subprocess.run([exe, "-e", code], capture_output=True, text=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    if len(lines) < 2:
        return {}
    return {"R": lines[0].strip(), "metafor": lines[1].strip()}


def _run_r(code: str, timeout: float = 1800.0) -> dict[str, float]:
    """Run R code that prints ``key value`` lines; return them as floats."""
    exe = rscript()
    if exe is None:
        raise RuntimeError(R_MISSING)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "anchor.R"
        script.write_text(code, encoding="utf-8")
        out = subprocess.run(
            [exe, "--vanilla", str(script)], capture_output=True, text=True, timeout=timeout
        )
    if out.returncode != 0:
        raise RuntimeError(f"Rscript failed ({out.returncode}):\n{out.stderr[-2000:]}")
    result: dict[str, float] = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            result[parts[0]] = float(parts[1])
    return result


def metafor_rma_seconds(
    datasets: Sequence[tuple[FloatArray, FloatArray]], reps: Sequence[int], method: str = "REML"
) -> list[float]:
    """Seconds per ``metafor::rma(yi, vi, method=...)`` fit, one value per dataset.

    All datasets go to one R process (written as CSV, read back in full precision); each is fitted
    once untimed (warm-up), then ``reps[i]`` times inside ``system.time``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        blocks = []
        for i, ((yi, vi), n) in enumerate(zip(datasets, reps, strict=True)):
            path = Path(tmp) / f"d{i}.csv"
            np.savetxt(path, np.column_stack([yi, vi]), delimiter=",", fmt="%.17g")
            blocks.append(
                f'd <- read.csv("{path.as_posix()}", header = FALSE)\n'
                f'invisible(rma(d[[1]], d[[2]], method = "{method}"))\n'
                f"t <- system.time(for (i in seq_len({int(n)})) "
                f'rma(d[[1]], d[[2]], method = "{method}"))[["elapsed"]]\n'
                f'cat("set{i}", sprintf("%.9e", t / {int(n)}), "\\n")\n'
            )
        code = "suppressPackageStartupMessages(library(metafor))\n" + "".join(blocks)
        out = _run_r(code)
    return [out[f"set{i}"] for i in range(len(datasets))]


def metafor_escalc_seconds(n_rows: int, reps: int, seed: int = 1) -> float:
    """Seconds per ``metafor::escalc("SMD", ...)`` call on ``n_rows`` arm summaries.

    The summaries are drawn inside R from the distribution of :func:`smd_inputs` (the cost of
    escalc does not depend on the values, and shipping 10^6 rows through CSV would take longer
    than the fits).
    """
    code = f"""
suppressPackageStartupMessages(library(metafor))
set.seed({seed})
n <- {int(n_rows)}
m1i <- rnorm(n, -1, 1); m2i <- rnorm(n, 0, 1)
sd1i <- runif(n, 1, 3); sd2i <- runif(n, 1, 3)
n1i <- sample(10:200, n, replace = TRUE); n2i <- sample(10:200, n, replace = TRUE)
invisible(escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i))
t <- system.time(for (i in seq_len({int(reps)}))
  escalc("SMD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i))
cat("escalc", sprintf("%.9e", t[["elapsed"]] / {int(reps)}), "\\n")
"""
    return _run_r(code)["escalc"]


def smd_inputs(n_rows: int, rng: np.random.Generator) -> dict[str, FloatArray]:
    """Arm summaries for the escalc benchmark (same distribution as in the R anchor)."""
    return {
        "m1": rng.normal(-1.0, 1.0, n_rows),
        "sd1": rng.uniform(1.0, 3.0, n_rows),
        "n1": rng.integers(10, 201, n_rows).astype(np.float64),
        "m2": rng.normal(0.0, 1.0, n_rows),
        "sd2": rng.uniform(1.0, 3.0, n_rows),
        "n2": rng.integers(10, 201, n_rows).astype(np.float64),
    }


def meta_data(
    shape: tuple[int, ...], rng: np.random.Generator, tau2: float = 0.05
) -> tuple[FloatArray, FloatArray]:
    """Effect sizes and sampling variances of typical SMD meta-analyses, shape ``(..., k)``."""
    vi = rng.uniform(0.01, 0.2, shape)
    yi = rng.normal(-0.3, np.sqrt(vi + tau2))
    return yi, vi


def statsmodels_combine(yi: FloatArray, vi: FloatArray, method_re: str) -> Any:
    """One statsmodels ``combine_effects`` fit (``"iterated"``: Paule-Mandel; ``"chi2"``: DL)."""
    from statsmodels.stats.meta_analysis import combine_effects

    res = combine_effects(yi, vi, method_re=method_re)
    # the estimates are computed in the constructor; touch them so nothing is lazy
    return res.mean_effect_re, res.sd_eff_w_re, res.tau2


def statsmodels_combine_loop(yi: FloatArray, vi: FloatArray, method_re: str) -> None:
    """statsmodels ``combine_effects`` over the rows of a batch (it has no batch axis)."""
    for y, v in zip(yi, vi, strict=True):
        statsmodels_combine(y, v, method_re)


def scipy_trial_loop(n_trials: int, n_per_arm: int, effect: float, rng: np.random.Generator) -> int:
    """Per-trial Python loop: draw two arms of patients and run ``scipy.stats.ttest_ind``.

    Returns the number of rejections at two-sided 5 % (so the work cannot be optimised away).
    """
    from scipy import stats

    hits = 0
    for _ in range(n_trials):
        treated = rng.normal(effect, 1.0, n_per_arm)
        control = rng.normal(0.0, 1.0, n_per_arm)
        hits += bool(stats.ttest_ind(treated, control).pvalue < 0.05)
    return hits


def naive_numpy_trials(
    n_trials: int, n_per_arm: int, effect: float, rng: np.random.Generator
) -> int:
    """Naive per-patient numpy engine: all patients at once as ``(n_trials, 2, n)``, Student t.

    Vectorised but unchunked: memory grows linearly with ``n_trials``.
    """
    from scipy import special

    x = rng.standard_normal((n_trials, 2, n_per_arm))
    x[:, 0, :] += effect
    means = x.mean(axis=2)
    ss = ((x - means[:, :, None]) ** 2).sum(axis=2)
    df = 2.0 * n_per_arm - 2.0
    se = np.sqrt(ss.sum(axis=1) / df * (2.0 / n_per_arm))
    t = (means[:, 0] - means[:, 1]) / se
    p = 2.0 * special.stdtr(df, -np.abs(t))
    return int(np.count_nonzero(p < 0.05))


def normal_draws_per_second(
    rng: np.random.Generator, size: int = 10_000_000, repeats: int = 5
) -> float:
    """Best rate of ``rng.standard_normal(out=buffer)`` into a preallocated float64 buffer."""
    buf = np.empty(size)
    rng.standard_normal(out=buf)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        rng.standard_normal(out=buf)
        best = min(best, time.perf_counter() - start)
    return size / best


def pymc_nuts_seconds(
    yi: FloatArray, vi: FloatArray, *, draws: int = 1000, tune: int = 1000, chains: int = 4
) -> float:
    """Wall seconds of PyMC NUTS on fibrosim's normal-normal model, timed once.

    Uses PyMC's defaults (target_accept 0.8) with one core, so both sides use one core; the time
    includes building and compiling the model, tuning and sampling.
    """
    import pymc as pm

    from fibrosim.meta.mcmc import normal_model
    from fibrosim.meta.priors import HalfNormal

    start = time.perf_counter()
    model = normal_model(yi, vi, tau_prior=HalfNormal(0.5))
    with model, warnings.catch_warnings():
        # divergence / R-hat warnings are the sampler's diagnostics, not the subject of a timing
        warnings.simplefilter("ignore")
        pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=1,
            random_seed=[11, 12, 13, 14][:chains],
            progressbar=False,
            compute_convergence_checks=False,
        )
    return time.perf_counter() - start


def peak_bytes(fn: Callable[[], object]) -> int:
    """Peak of Python-visible allocations (numpy included) while ``fn()`` runs, by tracemalloc."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return int(peak)
