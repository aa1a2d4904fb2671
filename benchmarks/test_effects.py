"""Effect sizes from arm summaries: fibrosim ``smd`` against metafor ``escalc("SMD")``."""

from __future__ import annotations

from benchmarks import anchors
from benchmarks.conftest import external, record, run
from fibrosim.effects import smd


def test_smd_fibrosim(benchmark, rng, smoke):
    n = 1_000 if smoke else 1_000_000
    x = anchors.smd_inputs(n, rng)
    record(benchmark, "smd_1e6", units=n)
    run(benchmark, lambda: smd(x["m1"], x["sd1"], x["n1"], x["m2"], x["sd2"], x["n2"]))


def test_smd_metafor(benchmark, smoke, need_r):
    n = 1_000 if smoke else 1_000_000
    reps = 2 if smoke else 3
    record(benchmark, "metafor_escalc_1e6", units=n, reps=reps)
    external(benchmark, lambda: anchors.metafor_escalc_seconds(n, reps))
