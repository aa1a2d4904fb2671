"""Benchmark configuration: full sizes under ``make bench``, tiny ones in smoke mode.

Smoke mode is ``pytest benchmarks --benchmark-disable`` (CI): every benchmark body runs once at
a small size so the suite cannot rot; timings are never asserted.  Each benchmark records in
``benchmark.extra_info`` a ``key`` (the runner's name for the measurement), ``units`` (items
done per call: analyses, trials, points) and, where measured, ``peak_bytes``.  Anchors timed
outside pytest-benchmark (inside R, or once for PyMC) put their time per call in ``seconds``.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from typing import Any

import matplotlib
import numpy as np
import pytest

from benchmarks import anchors

matplotlib.use("Agg")

# scaling grids: (full run, smoke run)
SCALING = {
    "scaling_k": ([5, 20, 100, 1_000, 10_000, 100_000], [5, 100]),
    "scaling_batch": ([1, 10, 100, 1_000, 10_000, 100_000, 1_000_000], [1, 10]),
    "scaling_nsims": ([10**3, 10**4, 10**5, 10**6, 10**7], [10**3]),
    # the patient-level engine runs ~10^5 trials/s: 10^6 already takes ~10 s per call
    "scaling_nsims_patient": ([10**3, 10**4, 10**5, 10**6], [10**3]),
    # the naive engine holds every patient at once: 10^6 trials of 2 x 64 is 1 GB per array
    "scaling_nsims_naive": ([10**3, 10**4, 10**5, 10**6], [10**3]),
}


def is_smoke(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_disable"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name, (full, smoke) in SCALING.items():
        if name in metafunc.fixturenames:
            sizes = smoke if is_smoke(metafunc.config) else full
            metafunc.parametrize(name, sizes, ids=[f"{s:g}" for s in sizes])


@pytest.fixture(scope="session")
def smoke(request: pytest.FixtureRequest) -> bool:
    """True under --benchmark-disable: use small sizes."""
    return is_smoke(request.config)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261127)


@pytest.fixture
def need_r() -> None:
    if anchors.rscript() is None:
        pytest.skip(anchors.R_MISSING)


def record(benchmark: Any, key: str, units: float = 1.0, **info: Any) -> None:
    """Label a measurement for the runner."""
    benchmark.extra_info["key"] = key
    benchmark.extra_info["units"] = float(units)
    benchmark.extra_info["load1"] = os.getloadavg()[0]
    benchmark.extra_info.update(info)


def _cpu() -> float:
    """CPU seconds of this process and its finished children (R runs as a child)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _share(benchmark: Any, fn: Callable[[], object]) -> object:
    """Run ``fn`` and record the CPU share it got: CPU seconds / wall seconds.

    Close to 1 means a full core; well below 1 means other processes took the core, so the
    wall-clock time is inflated (threads can push it above 1).
    """
    wall, cpu = time.perf_counter(), _cpu()
    out = fn()
    wall = time.perf_counter() - wall
    if wall > 0:
        benchmark.extra_info["cpu_share"] = (_cpu() - cpu) / wall
    return out


def run(benchmark: Any, fn: Callable[[], object], rounds: int | None = None) -> object:
    """Time ``fn``: calibrated by pytest-benchmark, or a fixed number of rounds for slow calls."""
    if rounds is None:
        return _share(benchmark, lambda: benchmark(fn))
    return _share(
        benchmark, lambda: benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
    )


def external(benchmark: Any, fn: Callable[[], float]) -> float:
    """Run an externally timed anchor once; its own per-call time goes to ``seconds``."""
    seconds = float(
        _share(benchmark, lambda: benchmark.pedantic(fn, rounds=1, iterations=1, warmup_rounds=0))
    )
    benchmark.extra_info["seconds"] = seconds
    return seconds
