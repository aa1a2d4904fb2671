"""Random-effects meta-analysis (REML) against metafor ``rma`` and statsmodels ``combine_effects``.

statsmodels has no REML: its iterated estimator (``method_re="iterated"``) is Paule-Mandel, the
closest iterative one; ``"chi2"`` is DerSimonian-Laird, compared with fibrosim's DL like for like.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import anchors
from benchmarks.conftest import external, record, run
from fibrosim.meta.frequentist import random_effects


def reml(yi: np.ndarray, vi: np.ndarray) -> object:
    r = random_effects(yi, vi, method="REML")
    return r.estimate, r.se, r.tau2


# ---------------------------------------------------------------------------------- k = 20
@pytest.mark.parametrize("method", ["REML", "DL"])
def test_single_k20_fibrosim(benchmark, rng, method):
    yi, vi = anchors.meta_data((20,), rng)
    record(benchmark, f"re_k20_{method}")
    run(benchmark, lambda: random_effects(yi, vi, method=method))


@pytest.mark.parametrize("method_re", ["iterated", "chi2"])
def test_single_k20_statsmodels(benchmark, rng, method_re):
    yi, vi = anchors.meta_data((20,), rng)
    record(benchmark, f"sm_k20_{method_re}")
    run(benchmark, lambda: anchors.statsmodels_combine(yi, vi, method_re))


def test_single_k20_metafor(benchmark, rng, smoke, need_r):
    yi, vi = anchors.meta_data((20,), rng)
    reps = 5 if smoke else 200
    record(benchmark, "metafor_k20", reps=reps)
    external(benchmark, lambda: anchors.metafor_rma_seconds([(yi, vi)], [reps])[0])


# ------------------------------------------------------------------- batch of k = 10 analyses
def test_batch_k10_fibrosim(benchmark, rng, smoke):
    n = 1_000 if smoke else 100_000
    yi, vi = anchors.meta_data((n, 10), rng)
    record(benchmark, "re_batch_k10", units=n)
    run(benchmark, lambda: reml(yi, vi), rounds=None if smoke else 5)


def test_batch_k10_statsmodels_loop(benchmark, rng, smoke):
    # statsmodels has no batch axis: a loop over analyses, timed on a few hundred
    n = 10 if smoke else 300
    yi, vi = anchors.meta_data((n, 10), rng)
    record(benchmark, "sm_batch_k10_iterated", units=n)
    run(benchmark, lambda: anchors.statsmodels_combine_loop(yi, vi, "iterated"), rounds=3)


# ------------------------------------------------------------------------ one large analysis
def test_large_k_fibrosim(benchmark, rng, smoke):
    k = 1_000 if smoke else 100_000
    yi, vi = anchors.meta_data((k,), rng)
    record(benchmark, "re_k100000", k=k)
    run(benchmark, lambda: reml(yi, vi))


def test_k1000_fibrosim(benchmark, rng):
    yi, vi = anchors.meta_data((1_000,), rng)
    record(benchmark, "re_k1000")
    run(benchmark, lambda: reml(yi, vi))


def test_k1000_metafor(benchmark, rng, smoke, need_r):
    # metafor builds k x k weight matrices: one fit at k = 1000 takes seconds, 10^5 is out of reach
    k = 50 if smoke else 1_000
    yi, vi = anchors.meta_data((k,), rng)
    reps = 1 if smoke else 3
    record(benchmark, "metafor_k1000", k=k, reps=reps)
    external(benchmark, lambda: anchors.metafor_rma_seconds([(yi, vi)], [reps])[0])


# ----------------------------------------------------------------------------- scaling curves
def test_scaling_k_fibrosim(benchmark, rng, scaling_k):
    yi, vi = anchors.meta_data((scaling_k,), rng)
    record(
        benchmark,
        "scale_k",
        size=scaling_k,
        peak_bytes=anchors.peak_bytes(lambda: reml(yi, vi)),
    )
    run(benchmark, lambda: reml(yi, vi))


def test_scaling_k_metafor(benchmark, rng, smoke, need_r):
    sizes = [5, 20] if smoke else [5, 20, 100, 300, 1_000]
    reps = [5, 5] if smoke else [200, 200, 50, 10, 2]
    data = [anchors.meta_data((k,), rng) for k in sizes]
    record(benchmark, "scale_k_metafor", sizes=sizes, reps=reps)
    times = benchmark.pedantic(
        lambda: anchors.metafor_rma_seconds(data, reps), rounds=1, iterations=1
    )
    benchmark.extra_info["seconds_per_size"] = list(times)


def test_scaling_k_statsmodels(benchmark, rng, scaling_k):
    if scaling_k > 10_000:
        pytest.skip("statsmodels combine_effects is only timed up to k = 10^4")
    yi, vi = anchors.meta_data((scaling_k,), rng)
    record(benchmark, "scale_k_statsmodels", size=scaling_k)
    run(benchmark, lambda: anchors.statsmodels_combine(yi, vi, "iterated"))


def test_scaling_batch_fibrosim(benchmark, rng, scaling_batch):
    yi, vi = anchors.meta_data((scaling_batch, 10), rng)
    record(
        benchmark,
        "scale_batch",
        units=scaling_batch,
        size=scaling_batch,
        peak_bytes=anchors.peak_bytes(lambda: reml(yi, vi)),
    )
    run(benchmark, lambda: reml(yi, vi), rounds=3 if scaling_batch >= 100_000 else None)
