"""Trial simulation: fibrosim's engines against a per-trial scipy loop and a naive numpy engine.

Rates are trials per second in one process (numpy's generators are single-threaded, so this is
per core).  The physical limit is the rate of standard normal draws into a preallocated buffer;
the runner divides the engines' variates per second by it.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import anchors
from benchmarks.conftest import record, run
from fibrosim.grid import simulate_grid
from fibrosim.trials.designs import ParallelDesign
from fibrosim.trials.simulation import simulate

N_PER_ARM = 64
DESIGNS = {
    "ancova": ParallelDesign(N_PER_ARM, -0.5, 1.0, baseline_corr=0.5, analysis="ancova"),
    "student": ParallelDesign(N_PER_ARM, -0.5, 1.0, analysis="student"),
}

# Random variates per simulated trial, read from fibrosim/trials/_sufficient.py (_single_contrast)
# and patient_level.py (simulate_groups_block): the sufficient-statistic ANCOVA draws 2 normals
# and 2 chi-squares, Student 1 normal and 1 chi-square; the patient-level engine draws a
# follow-up normal per patient, plus a baseline normal when the analysis uses it (ANCOVA).
VARIATES = {
    ("sufficient", "ancova"): 4,
    ("sufficient", "student"): 2,
    ("patient", "ancova"): 2 * 2 * N_PER_ARM,
    ("patient", "student"): 2 * N_PER_ARM,
}
# trials per timed call (full run): about a second or two of work each
FULL_N = {"sufficient": 2_000_000, "patient": 200_000}


@pytest.mark.parametrize("engine", ["sufficient", "patient"])
@pytest.mark.parametrize("analysis", ["ancova", "student"])
def test_engine(benchmark, smoke, engine, analysis):
    n = 2_000 if smoke else FULL_N[engine]
    design = DESIGNS[analysis]
    record(
        benchmark,
        f"sim_{engine}_{analysis}",
        units=n,
        variates_per_trial=VARIATES[engine, analysis],
    )
    run(
        benchmark,
        lambda: simulate(design, n, rng=1, engine=engine),
        rounds=None if smoke else 5,
    )


def test_scipy_loop(benchmark, rng, smoke):
    n = 20 if smoke else 2_000
    record(benchmark, "scipy_loop", units=n)
    run(benchmark, lambda: anchors.scipy_trial_loop(n, N_PER_ARM, 0.5, rng), rounds=2)


def test_naive_numpy(benchmark, rng, smoke):
    n = 1_000 if smoke else 100_000
    record(benchmark, "naive_numpy", units=n, variates_per_trial=2 * N_PER_ARM)
    run(
        benchmark,
        lambda: anchors.naive_numpy_trials(n, N_PER_ARM, 0.5, rng),
        rounds=None if smoke else 5,
    )


@pytest.mark.parametrize("bitgen", ["SFC64", "PCG64"])
def test_normal_draws(benchmark, smoke, bitgen):
    # fibrosim's engines use SFC64; PCG64 is numpy's default
    size = 10_000 if smoke else 10_000_000
    gen = np.random.Generator(getattr(np.random, bitgen)(1))
    buf = np.empty(size)
    record(benchmark, f"normal_draws_{bitgen}", units=size)
    run(benchmark, lambda: gen.standard_normal(out=buf))


def test_grid(benchmark, smoke):
    n = 1_000 if smoke else 200_000
    effects = [0.0, -0.25, -0.5, -0.75]
    sizes = [32, 64, 96, 128]
    cells = len(effects) * len(sizes)
    record(benchmark, "sim_grid_ancova", units=n * cells, cells=cells)
    run(
        benchmark,
        lambda: simulate_grid(DESIGNS["ancova"], n, rng=1, effect=effects, n_per_arm=sizes),
        rounds=None if smoke else 3,
    )


# ----------------------------------------------------------------------------- scaling curves
def test_scaling_nsims_sufficient(benchmark, scaling_nsims):
    design = DESIGNS["ancova"]
    fn = lambda: simulate(design, scaling_nsims, rng=1, engine="sufficient")  # noqa: E731
    record(
        benchmark,
        "scale_nsims_sufficient",
        units=scaling_nsims,
        size=scaling_nsims,
        peak_bytes=anchors.peak_bytes(fn),
    )
    run(benchmark, fn, rounds=3 if scaling_nsims >= 10**6 else None)


def test_scaling_nsims_patient(benchmark, scaling_nsims_patient):
    design = DESIGNS["ancova"]
    n = scaling_nsims_patient
    fn = lambda: simulate(design, n, rng=1, engine="patient")  # noqa: E731
    record(
        benchmark,
        "scale_nsims_patient",
        units=n,
        size=n,
        peak_bytes=anchors.peak_bytes(fn),
    )
    run(benchmark, fn, rounds=2 if n >= 10**5 else None)


def test_scaling_nsims_naive(benchmark, rng, scaling_nsims_naive):
    n = scaling_nsims_naive
    fn = lambda: anchors.naive_numpy_trials(n, N_PER_ARM, 0.5, rng)  # noqa: E731
    record(benchmark, "scale_nsims_naive", units=n, size=n, peak_bytes=anchors.peak_bytes(fn))
    run(benchmark, fn, rounds=2 if n >= 10**5 else None)
