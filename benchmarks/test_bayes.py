"""Exact posterior of the normal-normal model against PyMC NUTS on the same model.

A "posterior" here is the fitted object plus the summaries a report reads: the mean, SD and
95 % interval of mu and the median of tau.
"""

from __future__ import annotations

import pytest

from benchmarks import anchors
from benchmarks.conftest import external, record, run
from fibrosim.meta.bayes import bayes_random_effects
from fibrosim.meta.priors import HalfNormal

PRIOR = HalfNormal(0.5)


def posterior(yi, vi):
    p = bayes_random_effects(yi, vi, PRIOR)
    return p.mu.mean, p.mu.sd, p.mu.interval(0.95), p.tau.median


def test_single_k20_exact(benchmark, rng):
    yi, vi = anchors.meta_data((20,), rng)
    record(benchmark, "bayes_k20")
    run(benchmark, lambda: posterior(yi, vi))


def test_batch_exact(benchmark, rng, smoke):
    n = 100 if smoke else 10_000
    yi, vi = anchors.meta_data((n, 20), rng)
    record(
        benchmark,
        "bayes_batch_k20",
        units=n,
        peak_bytes=anchors.peak_bytes(lambda: posterior(yi, vi)),
    )
    run(benchmark, lambda: posterior(yi, vi), rounds=None if smoke else 3)


def test_pymc_nuts(benchmark, rng, smoke):
    if smoke:
        pytest.skip("PyMC NUTS (4 chains x 1000 draws) is timed only in full benchmark runs")
    yi, vi = anchors.meta_data((20,), rng)
    record(benchmark, "pymc_nuts_k20", draws=1000, tune=1000, chains=4, cores=1)
    external(benchmark, lambda: anchors.pymc_nuts_seconds(yi, vi))
