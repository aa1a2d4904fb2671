"""Trial design: group-sequential boundaries and a power grid against statsmodels."""

from __future__ import annotations

import numpy as np

from benchmarks.conftest import record, run
from fibrosim.trials.analytic import power_ttest
from fibrosim.trials.sequential import gs_bounds

KINDS = ("obf", "pocock", "ld-obf", "ld-pocock", "hsd")


def all_bounds(k_max):
    return [gs_bounds(k, alpha=0.025, kind=kind) for k in range(1, k_max + 1) for kind in KINDS]


def test_gs_bounds_all(benchmark, smoke):
    k_max = 3 if smoke else 10
    record(benchmark, "gs_all", units=k_max * len(KINDS), k_max=k_max)
    run(benchmark, lambda: all_bounds(k_max), rounds=None if smoke else 5)


def grid(smoke):
    side = 10 if smoke else 100  # 100 x 100 = 10,000 points
    d, n = np.meshgrid(np.linspace(0.1, 1.0, side), np.linspace(10.0, 200.0, side), indexing="ij")
    return d.ravel(), n.ravel()


def test_power_grid_fibrosim(benchmark, smoke):
    d, n = grid(smoke)
    record(benchmark, "power_grid", units=d.size)
    run(benchmark, lambda: power_ttest(d, 1.0, n, alpha=0.05, sided=2))


def test_power_grid_statsmodels_vectorised(benchmark, smoke):
    from statsmodels.stats.power import TTestIndPower

    d, n = grid(smoke)
    solver = TTestIndPower()
    record(benchmark, "sm_power_grid_vectorised", units=d.size)
    out = run(benchmark, lambda: solver.power(d, n, 0.05, ratio=1.0, alternative="two-sided"))
    # side by side means the same numbers: statsmodels' two-sided power also counts the far tail.
    # Where the power is ~1 statsmodels returns NaN (its noncentral t tail fails); count those.
    ok = np.isfinite(out)
    benchmark.extra_info["anchor_nan"] = int(out.size - ok.sum())
    np.testing.assert_allclose(out[ok], power_ttest(d, 1.0, n)[ok], rtol=1e-10)


def test_power_grid_statsmodels_loop(benchmark, smoke):
    from statsmodels.stats.power import TTestIndPower

    d, n = grid(smoke)
    m = 20 if smoke else 500  # a loop over points, timed on 500 and scaled per point
    solver = TTestIndPower()
    record(benchmark, "sm_power_grid_loop", units=m)
    run(
        benchmark,
        lambda: [solver.power(a, b, 0.05, ratio=1.0) for a, b in zip(d[:m], n[:m], strict=True)],
        rounds=3,
    )
