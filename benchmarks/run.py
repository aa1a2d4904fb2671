"""Run the benchmark suite and write benchmarks/RESULTS.md with figures of the scaling curves.

Usage::

    python -m benchmarks.run              # run the suite (several minutes), write RESULTS.md
    python -m benchmarks.run --json FILE  # rebuild RESULTS.md from an earlier benchmark JSON
    python -m benchmarks.run -- -k REML   # pass arguments on to pytest

Every speed target is put next to its anchor, measured in the same run on the same machine.
Times are the median over pytest-benchmark's rounds; anchors timed inside R are R's own
``system.time`` over a loop divided by the loop length; PyMC is timed once.  A target that is
missed is reported as missed with its ratio; nothing here is tuned to a target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import anchors

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PACKAGES = (
    "fibrosim",
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "statsmodels",
    "pymc",
    "pytensor",
    "matplotlib",
    "pytest",
    "pytest-benchmark",
)


# ------------------------------------------------------------------------------- measurements
class Results:
    """Measurements of one pytest-benchmark JSON, looked up by their ``key``."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.by_key: dict[str, list[dict[str, Any]]] = {}
        for bench in data.get("benchmarks", []):
            key = bench.get("extra_info", {}).get("key")
            if key:
                self.by_key.setdefault(key, []).append(bench)

    def has(self, key: str) -> bool:
        return key in self.by_key

    def one(self, key: str) -> dict[str, Any] | None:
        found = self.by_key.get(key)
        return found[0] if found else None

    def seconds(self, key: str) -> float | None:
        """Seconds per call: an external anchor's own time, else the median of the rounds."""
        bench = self.one(key)
        if bench is None:
            return None
        info = bench["extra_info"]
        if "seconds" in info:
            return float(info["seconds"])
        return float(bench["stats"]["median"])

    def per_unit(self, key: str) -> float | None:
        """Seconds per item (analysis, trial, point)."""
        sec = self.seconds(key)
        bench = self.one(key)
        if sec is None or bench is None:
            return None
        return sec / float(bench["extra_info"].get("units", 1.0))

    def rate(self, key: str) -> float | None:
        per = self.per_unit(key)
        return None if per is None else 1.0 / per

    def info(self, key: str, name: str, default: Any = None) -> Any:
        bench = self.one(key)
        return default if bench is None else bench["extra_info"].get(name, default)

    def series(self, key: str) -> list[tuple[float, float, float | None]]:
        """(size, seconds per call, peak bytes) of a scaling curve, sorted by size."""
        out = []
        for bench in self.by_key.get(key, []):
            info = bench["extra_info"]
            peak = info.get("peak_bytes")
            out.append((float(info["size"]), float(bench["stats"]["median"]), peak))
        return sorted(out)


# ---------------------------------------------------------------------------------- formatting
def pow10(n: int) -> str:
    """10^7 for powers of ten, else the number with thousands separators."""
    e = round(math.log10(n)) if n > 0 else 0
    return f"10^{e}" if 10**e == n else f"{n:,}"


def fmt_time(sec: float | None) -> str:
    if sec is None or not math.isfinite(sec):
        return "n/a"
    if sec < 1e-6:
        return f"{sec * 1e9:.3g} ns"
    if sec < 1e-3:
        return f"{sec * 1e6:.3g} µs"
    if sec < 1.0:
        return f"{sec * 1e3:.3g} ms"
    return f"{sec:.3g} s"


def fmt_rate(rate: float | None, unit: str) -> str:
    if rate is None:
        return "n/a"
    return f"{rate:.3g} {unit}/s"


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}×" if x >= 100 else f"{x:.3g}×"


def fmt_bytes(b: float | None) -> str:
    if b is None:
        return "n/a"
    return f"{b / 2**20:.3g} MiB"


def ratio(anchor: float | None, fib: float | None) -> float | None:
    """How many times faster fibrosim is (anchor time / fibrosim time)."""
    if anchor is None or fib is None or fib <= 0:
        return None
    return anchor / fib


@dataclass
class Row:
    keys: tuple[str, ...]  # the measurements behind the row (fibrosim first, then the anchor)
    area: str
    what: str
    fibrosim: str
    anchor: str
    ratio: str
    target: str
    status: str


def status(ok: bool | None, absent: str | None = None) -> str:
    if absent:
        return f"anchor absent ({absent})"
    if ok is None:
        return "not measured"
    return "met" if ok else "**MISSED**"


# --------------------------------------------------------------------------------- the targets
def build_rows(res: Results, r_absent: str | None) -> list[Row]:
    rows: list[Row] = []
    add = rows.append

    def at_least(x: float | None, bound: float) -> bool | None:
        return None if x is None else x >= bound

    def at_most(x: float | None, bound: float) -> bool | None:
        return None if x is None else x <= bound

    def r_anchor(key: str) -> tuple[float | None, str | None]:
        if r_absent or not res.has(key):
            return None, (r_absent or "not run")
        return res.seconds(key), None

    # frequentist --------------------------------------------------------------------------
    fib = res.seconds("re_k20_REML")
    mf, absent = r_anchor("metafor_k20")
    x = ratio(mf, fib)
    add(
        Row(
            ("re_k20_REML", "metafor_k20"),
            "Frequentist",
            "REML, one analysis, k = 20",
            fmt_time(fib),
            f"metafor rma: {fmt_time(mf)}",
            fmt_ratio(x),
            "≥ 20× metafor",
            status(at_least(x, 20), absent),
        )
    )
    sm = res.seconds("sm_k20_iterated")
    x = ratio(sm, fib)
    add(
        Row(
            ("re_k20_REML", "sm_k20_iterated"),
            "Frequentist",
            "REML, one analysis, k = 20",
            fmt_time(fib),
            f"statsmodels combine_effects iterated (PM): {fmt_time(sm)}",
            fmt_ratio(x),
            "≥ 10× statsmodels",
            status(at_least(x, 10)),
        )
    )
    fib_dl, sm_dl = res.seconds("re_k20_DL"), res.seconds("sm_k20_chi2")
    add(
        Row(
            ("re_k20_DL", "sm_k20_chi2"),
            "Frequentist",
            "DL, one analysis, k = 20 (like for like)",
            fmt_time(fib_dl),
            f"statsmodels combine_effects chi2 (DL): {fmt_time(sm_dl)}",
            fmt_ratio(ratio(sm_dl, fib_dl)),
            "—",
            "information",
        )
    )
    batch = res.seconds("re_batch_k10")
    n_batch = res.info("re_batch_k10", "units", 0)
    add(
        Row(
            ("re_batch_k10",),
            "Frequentist",
            f"REML, batch of {n_batch:,.0f} analyses, k = 10",
            fmt_time(batch),
            "—",
            "—",
            "≤ 2 s",
            status(at_most(batch, 2.0)),
        )
    )
    fib_per, sm_per = res.per_unit("re_batch_k10"), res.per_unit("sm_batch_k10_iterated")
    x = ratio(sm_per, fib_per)
    add(
        Row(
            ("re_batch_k10", "sm_batch_k10_iterated"),
            "Frequentist",
            "REML batch, time per analysis (k = 10)",
            fmt_time(fib_per),
            f"statsmodels iterated, loop: {fmt_time(sm_per)}",
            fmt_ratio(x),
            "≥ 100× statsmodels",
            status(at_least(x, 100)),
        )
    )
    big = res.seconds("re_k100000")
    k_big = res.info("re_k100000", "k", 0)
    add(
        Row(
            ("re_k100000",),
            "Frequentist",
            f"REML, one analysis, k = {k_big:,}",
            fmt_time(big),
            "—",
            "—",
            "≤ 1 s",
            status(at_most(big, 1.0)),
        )
    )
    mf1000, absent = r_anchor("metafor_k1000")
    k_mf = res.info("metafor_k1000", "k", 1000)
    add(
        Row(
            ("re_k100000", "metafor_k1000"),
            "Frequentist",
            f"REML, fibrosim k = {k_big:,} vs metafor k = {k_mf:,}",
            fmt_time(big),
            f"metafor rma (k = {k_mf:,}): {fmt_time(mf1000)}",
            fmt_ratio(ratio(mf1000, big)),
            "— (metafor at k = 10^5 needs k × k = 80 GB matrices)",
            status(None, absent) if absent else "information",
        )
    )
    f1000 = res.seconds("re_k1000")
    add(
        Row(
            ("re_k1000", "metafor_k1000"),
            "Frequentist",
            "REML, one analysis, k = 1,000 (same size)",
            fmt_time(f1000),
            f"metafor rma: {fmt_time(mf1000)}",
            fmt_ratio(ratio(mf1000, f1000)),
            "—",
            status(None, absent) if absent else "information",
        )
    )
    add(
        Row(
            (),
            "Frequentist",
            "REML, any size",
            "—",
            "PyMARE",
            "—",
            "—",
            "anchor absent (PyMARE is not installed)"
            if importlib.util.find_spec("pymare") is None
            else "not benchmarked",
        )
    )

    # escalc -------------------------------------------------------------------------------
    fib = res.seconds("smd_1e6")
    n = res.info("smd_1e6", "units", 0)
    esc, absent = r_anchor("metafor_escalc_1e6")
    add(
        Row(
            ("smd_1e6", "metafor_escalc_1e6"),
            "Effect sizes",
            f"SMD (Hedges' g) of {n:,.0f} rows",
            fmt_time(fib),
            f"metafor escalc: {fmt_time(esc)}",
            fmt_ratio(ratio(esc, fib)),
            "—",
            status(None, absent) if absent else "information",
        )
    )

    # Bayesian -----------------------------------------------------------------------------
    fib = res.seconds("bayes_k20")
    add(
        Row(
            ("bayes_k20",),
            "Bayesian exact",
            "posterior, one analysis, k = 20",
            fmt_time(fib),
            "—",
            "—",
            "≤ 1 ms",
            status(at_most(fib, 1e-3)),
        )
    )
    b = res.seconds("bayes_batch_k20")
    nb = res.info("bayes_batch_k20", "units", 0)
    add(
        Row(
            ("bayes_batch_k20",),
            "Bayesian exact",
            f"posteriors of {nb:,.0f} analyses, k = 20, batched",
            fmt_time(b),
            "—",
            "—",
            "≤ 2 s",
            status(at_most(b, 2.0)),
        )
    )
    nuts = res.seconds("pymc_nuts_k20")
    x = ratio(nuts, fib)
    add(
        Row(
            ("bayes_k20", "pymc_nuts_k20"),
            "Bayesian exact",
            "posterior, k = 20, vs MCMC",
            fmt_time(fib),
            f"PyMC NUTS 4 × 1000 draws (+1000 tune), 1 core: {fmt_time(nuts)}",
            fmt_ratio(x),
            "≥ 10,000× PyMC",
            status(at_least(x, 1e4), None if nuts else "not run"),
        )
    )

    # trial design -------------------------------------------------------------------------
    gs = res.seconds("gs_all")
    add(
        Row(
            ("gs_all",),
            "Trial design",
            "gs_bounds: obf, pocock, ld-obf, ld-pocock, hsd for K = 1..10",
            fmt_time(gs),
            "—",
            "—",
            "≤ 0.1 s",
            status(at_most(gs, 0.1)),
        )
    )
    pg = res.seconds("power_grid")
    npts = res.info("power_grid", "units", 0)
    add(
        Row(
            ("power_grid",),
            "Trial design",
            f"power_ttest on a {npts:,.0f}-point grid",
            fmt_time(pg),
            "—",
            "—",
            "≤ 0.5 s",
            status(at_most(pg, 0.5)),
        )
    )
    smv = res.seconds("sm_power_grid_vectorised")
    nan = res.info("sm_power_grid_vectorised", "anchor_nan", 0)
    add(
        Row(
            ("power_grid", "sm_power_grid_vectorised"),
            "Trial design",
            f"power grid, {npts:,.0f} points",
            fmt_time(pg),
            f"statsmodels TTestIndPower.power, one vectorised call: {fmt_time(smv)}"
            f" ({nan} NaN where power ≈ 1)",
            fmt_ratio(ratio(smv, pg)),
            "—",
            "information",
        )
    )
    sml = res.per_unit("sm_power_grid_loop")
    sml_grid = None if sml is None else sml * npts
    add(
        Row(
            ("power_grid", "sm_power_grid_loop"),
            "Trial design",
            f"power grid, {npts:,.0f} points",
            fmt_time(pg),
            f"statsmodels TTestIndPower.power in a Python loop (extrapolated): "
            f"{fmt_time(sml_grid)}",
            fmt_ratio(ratio(sml_grid, pg)),
            "—",
            "information",
        )
    )

    # simulation ---------------------------------------------------------------------------
    suff = res.rate("sim_sufficient_ancova")
    add(
        Row(
            ("sim_sufficient_ancova",),
            "Simulation",
            "sufficient-statistic engine, two-arm ANCOVA, n = 64/arm",
            fmt_rate(suff, "trials"),
            "—",
            "—",
            "≥ 10^7 trials/s per core",
            status(at_least(suff, 1e7)),
        )
    )
    pat = res.rate("sim_patient_ancova")
    add(
        Row(
            ("sim_patient_ancova",),
            "Simulation",
            "patient-level engine, two-arm ANCOVA, n = 64/arm",
            fmt_rate(pat, "trials"),
            "—",
            "—",
            "≥ 2×10^5 trials/s",
            status(at_least(pat, 2e5)),
        )
    )
    pat_t = res.rate("sim_patient_student")
    add(
        Row(
            ("sim_patient_student",),
            "Simulation",
            "patient-level engine, Student t, n = 64/arm",
            fmt_rate(pat_t, "trials"),
            "—",
            "—",
            "≥ 2×10^5 trials/s",
            status(at_least(pat_t, 2e5)),
        )
    )
    loop = res.rate("scipy_loop")
    x = ratio(suff, loop)  # rates: fibrosim rate / anchor rate
    add(
        Row(
            ("sim_sufficient_ancova", "scipy_loop"),
            "Simulation",
            "sufficient ANCOVA vs per-trial loop",
            fmt_rate(suff, "trials"),
            f"scipy ttest_ind loop ({res.info('scipy_loop', 'units', 0):,.0f} trials, "
            f"extrapolated): {fmt_rate(loop, 'trials')}",
            fmt_ratio(x),
            "≥ 1,000× loop",
            status(at_least(x, 1000)),
        )
    )
    suff_t = res.rate("sim_sufficient_student")
    add(
        Row(
            ("sim_sufficient_student", "scipy_loop"),
            "Simulation",
            "sufficient Student t vs per-trial loop (same test)",
            fmt_rate(suff_t, "trials"),
            f"scipy ttest_ind loop: {fmt_rate(loop, 'trials')}",
            fmt_ratio(ratio(suff_t, loop)),
            "—",
            "information",
        )
    )
    add(
        Row(
            ("sim_patient_student", "scipy_loop"),
            "Simulation",
            "patient-level Student t vs per-trial loop (same test)",
            fmt_rate(pat_t, "trials"),
            f"scipy ttest_ind loop: {fmt_rate(loop, 'trials')}",
            fmt_ratio(ratio(pat_t, loop)),
            "—",
            "information",
        )
    )
    naive = res.rate("naive_numpy")
    add(
        Row(
            ("sim_sufficient_ancova", "naive_numpy"),
            "Simulation",
            "sufficient ANCOVA vs naive numpy engine",
            fmt_rate(suff, "trials"),
            f"numpy (n_sims, 2, n) patients + t test: {fmt_rate(naive, 'trials')}",
            fmt_ratio(ratio(suff, naive)),
            "—",
            "information",
        )
    )
    add(
        Row(
            ("sim_patient_student", "naive_numpy"),
            "Simulation",
            "patient-level Student t vs naive numpy engine",
            fmt_rate(pat_t, "trials"),
            f"naive numpy: {fmt_rate(naive, 'trials')}",
            fmt_ratio(ratio(pat_t, naive)),
            "—",
            "information",
        )
    )
    grid = res.rate("sim_grid_ancova")
    add(
        Row(
            ("sim_grid_ancova",),
            "Simulation",
            f"simulate_grid, {res.info('sim_grid_ancova', 'cells', 0)} cells, in process",
            fmt_rate(grid, "trials"),
            "—",
            "—",
            "—",
            "information",
        )
    )
    series = res.series("scale_nsims_sufficient")
    peaks = {int(s): p for s, _, p in series if p is not None}
    flat = None
    if peaks and 10**5 in peaks:
        top = max(peaks)
        flat = peaks[top] / peaks[10**5]
        add(
            Row(
                (),
                "Simulation",
                f"peak memory, sufficient engine, n_sims 10^5 → {pow10(top)}",
                f"{fmt_bytes(peaks[10**5])} → {fmt_bytes(peaks[top])}",
                "—",
                f"{flat:.3g}× growth",
                "flat (≤ 1.5× from 10^5 up)",
                status(flat <= 1.5),
            )
        )
    series = res.series("scale_nsims_patient")
    peaks = {int(s): p for s, _, p in series if p is not None}
    if peaks and 10**5 in peaks:
        top = max(peaks)
        g = peaks[top] / peaks[10**5]
        add(
            Row(
                (),
                "Simulation",
                f"peak memory, patient-level engine, n_sims 10^5 → {pow10(top)}",
                f"{fmt_bytes(peaks[10**5])} → {fmt_bytes(peaks[top])}",
                "—",
                f"{g:.3g}× growth",
                "flat (≤ 1.5× from 10^5 up)",
                status(g <= 1.5),
            )
        )
    return rows


def shares(res: Results, row: Row) -> str:
    """CPU seconds / wall seconds of the row's measurements (fibrosim / anchor)."""
    vals = [res.info(k, "cpu_share") for k in row.keys]
    return " / ".join("n/a" if v is None else f"{v:.2f}" for v in vals) or "—"


def load_range(res: Results) -> str:
    loads = [
        b["extra_info"]["load1"]
        for b in res.data.get("benchmarks", [])
        if "load1" in b["extra_info"]
    ]
    if not loads:
        return "not recorded"
    return f"{min(loads):.2f} to {max(loads):.2f}"


# absolute targets: (key, label, bound, "time" (seconds per call, at most) or "rate" (at least))
ABSOLUTE = (
    ("re_batch_k10", "REML, batch of 100,000 analyses, k = 10", 2.0, "time"),
    ("re_k100000", "REML, one analysis, k = 100,000", 1.0, "time"),
    ("bayes_k20", "Bayesian posterior, k = 20", 1e-3, "time"),
    ("bayes_batch_k20", "Bayesian posteriors, 10,000 analyses", 2.0, "time"),
    ("gs_all", "gs_bounds, all kinds, K = 1..10", 0.1, "time"),
    ("power_grid", "power_ttest, 10,000 points", 0.5, "time"),
    ("sim_sufficient_ancova", "sufficient engine, ANCOVA (trials/s)", 1e7, "rate"),
    ("sim_patient_ancova", "patient-level engine, ANCOVA (trials/s)", 2e5, "rate"),
    ("sim_patient_student", "patient-level engine, Student t (trials/s)", 2e5, "rate"),
)


def cpu_rows(res: Results) -> list[list[str]]:
    """Absolute targets on CPU time (wall time x CPU share): an estimate for an idle core."""
    out = []
    for key, label, bound, kind in ABSOLUTE:
        wall, share = res.seconds(key), res.info(key, "cpu_share")
        if wall is None or share is None:
            continue
        cpu = wall * share
        bench = res.one(key)
        best = float(bench["stats"]["min"]) if bench is not None else math.nan
        if kind == "time":
            measured, est, target = fmt_time(wall), fmt_time(cpu), f"≤ {fmt_time(bound)}"
            fastest, ok = fmt_time(best), cpu <= bound
        else:
            units = float(res.info(key, "units", 1.0))
            measured, est = fmt_rate(units / wall, "trials"), fmt_rate(units / cpu, "trials")
            fastest = fmt_rate(units / best, "trials")
            target, ok = f"≥ {bound:.0e}/s", units / cpu >= bound
        row = [label, measured, fastest, f"{share:.2f}", est, target, "yes" if ok else "no"]
        out.append(row)
    return out


def physical_rows(res: Results) -> list[list[str]]:
    """Engines' random variates per second as a fraction of the normal-draw rate."""
    limit = res.rate("normal_draws_SFC64")
    out = [
        [
            "standard_normal into a buffer, SFC64 (the engines' generator)",
            fmt_rate(limit, "draws"),
            "1",
            "—",
        ],
        [
            "standard_normal into a buffer, PCG64 (numpy default)",
            fmt_rate(res.rate("normal_draws_PCG64"), "draws"),
            f"{(res.rate('normal_draws_PCG64') or 0) / limit:.3g}" if limit else "n/a",
            "—",
        ],
    ]
    for key, label in (
        ("sim_sufficient_ancova", "sufficient engine, ANCOVA"),
        ("sim_sufficient_student", "sufficient engine, Student t"),
        ("sim_patient_ancova", "patient-level engine, ANCOVA, n = 64/arm"),
        ("sim_patient_student", "patient-level engine, Student t, n = 64/arm"),
        ("naive_numpy", "naive numpy engine, n = 64/arm"),
    ):
        rate, per = res.rate(key), res.info(key, "variates_per_trial")
        if rate is None or per is None or not limit:
            continue
        v = rate * per
        out.append([label, fmt_rate(v, "variates"), f"{v / limit:.3g}", str(per)])
    return out


# ------------------------------------------------------------------------------------ figures
def figures(res: Results, folder: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    made: list[tuple[str, str]] = []

    def save(fig: Any, name: str, caption: str) -> None:
        fig.tight_layout()
        fig.savefig(folder / name, dpi=110)
        plt.close(fig)
        made.append((name, caption))

    def panel(
        axes: Any,
        curves: list[tuple[str, list[tuple[float, float, float | None]], str]],
        xlabel: str,
        ylabel: str,
        transform: Callable[[float, float], float],
    ) -> None:
        ax_t, ax_m = axes
        for label, pts, style in curves:
            if not pts:
                continue
            xs = [p[0] for p in pts]
            ax_t.plot(xs, [transform(p[0], p[1]) for p in pts], style, label=label)
            mem = [(p[0], p[2]) for p in pts if p[2] is not None]
            if mem:
                ax_m.plot([m[0] for m in mem], [m[1] / 2**20 for m in mem], style, label=label)
        for ax in axes:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.grid(True, which="major", alpha=0.3)
        ax_t.set_ylabel(ylabel)
        ax_m.set_ylabel("peak traced memory (MiB)")
        if ax_t.lines:
            ax_t.legend(fontsize=8)
        if ax_m.lines:
            ax_m.legend(fontsize=8)

    # k
    mf = res.one("scale_k_metafor")
    mf_pts = []
    if mf is not None:
        mf_pts = [
            (float(k), float(t), None)
            for k, t in zip(
                mf["extra_info"]["sizes"], mf["extra_info"]["seconds_per_size"], strict=True
            )
        ]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    panel(
        axes,
        [
            ("fibrosim REML", res.series("scale_k"), "o-"),
            ("statsmodels iterated (PM)", res.series("scale_k_statsmodels"), "s--"),
            ("metafor rma REML", mf_pts, "^:"),
        ],
        "studies k (one analysis)",
        "seconds per fit",
        lambda s, t: t,
    )
    fig.suptitle("One meta-analysis: time and memory against k")
    save(fig, "scaling_k.png", "One REML meta-analysis as k grows (metafor up to k = 1,000)")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    panel(
        axes,
        [
            ("fibrosim REML, total", res.series("scale_batch"), "o-"),
            (
                "fibrosim REML, per analysis",
                [(s, t / s, None) for s, t, _ in res.series("scale_batch")],
                "s--",
            ),
        ],
        "meta-analyses in the batch (k = 10 each)",
        "seconds",
        lambda s, t: t,
    )
    fig.suptitle("Batched meta-analyses: time and memory against batch size")
    save(fig, "scaling_batch.png", "Batched REML (k = 10) from 1 to the largest batch run")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    loop = res.rate("scipy_loop")
    panel(
        axes,
        [
            ("sufficient engine (ANCOVA)", res.series("scale_nsims_sufficient"), "o-"),
            ("patient-level engine (ANCOVA)", res.series("scale_nsims_patient"), "s--"),
            ("naive numpy (Student)", res.series("scale_nsims_naive"), "^:"),
        ],
        "simulated trials n_sims (n = 64/arm)",
        "trials per second",
        lambda s, t: s / t,
    )
    if loop:
        axes[0].axhline(loop, color="grey", lw=1, ls="-.", label="scipy loop (Student)")
        axes[0].legend(fontsize=8)
    fig.suptitle("Trial simulation: throughput and memory against n_sims")
    save(fig, "scaling_nsims.png", "Simulated trials per second and peak memory as n_sims grows")
    return made


# ------------------------------------------------------------------------------------ machine
def machine() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.+)$", cpu, re.M)
        info["CPU"] = m.group(1).strip() if m else platform.processor()
    except OSError:
        info["CPU"] = platform.processor() or "unknown"
    info["logical cores"] = str(os.cpu_count())
    try:
        mem = Path("/proc/meminfo").read_text()
        m = re.search(r"^MemTotal:\s*(\d+) kB", mem, re.M)
        if m:
            info["RAM"] = f"{int(m.group(1)) / 2**20:.1f} GiB"
    except OSError:
        pass
    info["OS"] = platform.platform()
    info["Python"] = platform.python_version()
    for pkg in PACKAGES:
        try:
            info[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            info[pkg] = "absent"
    info["PyMARE"] = (
        "absent (not installed)"
        if importlib.util.find_spec("pymare") is None
        else importlib.metadata.version("pymare")
    )
    rv = anchors.r_versions()
    info["R"] = rv.get("R", "absent (Rscript not installed)")
    info["metafor"] = rv.get("metafor", "absent")
    return info


def git_commit() -> str:
    """Short commit of the checkout, flagged when fibrosim/ has uncommitted changes."""
    try:

        def git(*args: str) -> str:
            out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
            out.check_returncode()
            return out.stdout.strip()

        dirty = git("status", "--porcelain", "--", "fibrosim")
        return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def scaling_tables(res: Results) -> str:
    parts = []
    sm = {int(s): t for s, t, _ in res.series("scale_k_statsmodels")}
    mf = res.one("scale_k_metafor")
    mft = (
        {}
        if mf is None
        else dict(zip(mf["extra_info"]["sizes"], mf["extra_info"]["seconds_per_size"], strict=True))
    )
    fib = {int(s): (t, p) for s, t, p in res.series("scale_k")}

    def cell(value: float | None) -> str:
        return "—" if value is None else fmt_time(value)

    rows = [
        [
            f"{k:,}",
            cell(fib[k][0] if k in fib else None),
            fmt_bytes(fib[k][1]) if k in fib else "—",
            cell(sm.get(k)),
            cell(mft.get(k)),
        ]
        for k in sorted(set(fib) | set(sm) | set(mft))
    ]
    parts.append(
        "**One analysis, REML, k studies**\n\n"
        + table(
            ["k", "fibrosim", "fibrosim peak memory", "statsmodels iterated", "metafor rma"], rows
        )
    )
    rows = [
        [f"{int(s):,}", fmt_time(t), fmt_time(t / s), fmt_bytes(p)]
        for s, t, p in res.series("scale_batch")
    ]
    parts.append(
        "**Batch of analyses, REML, k = 10 each**\n\n"
        + table(["analyses", "total", "per analysis", "peak memory"], rows)
    )
    for key, label in (
        ("scale_nsims_sufficient", "Sufficient-statistic engine, ANCOVA"),
        ("scale_nsims_patient", "Patient-level engine, ANCOVA"),
        ("scale_nsims_naive", "Naive numpy engine, Student t (anchor)"),
    ):
        rows = [
            [f"{int(s):,}", fmt_time(t), fmt_rate(s / t, "trials"), fmt_bytes(p)]
            for s, t, p in res.series(key)
        ]
        parts.append(
            f"**{label}, n = 64/arm**\n\n" + table(["n_sims", "time", "rate", "peak memory"], rows)
        )
    return "\n\n".join(parts)


def write_markdown(
    res: Results, out: Path, meta: dict[str, Any], r_absent: str | None = None
) -> None:
    """Write the report to ``out`` and its figures to ``figures/`` next to it.

    ``r_absent`` is the reason R anchors are missing (None: R was there).
    """
    rows = build_rows(res, r_absent)
    made = figures(res, out.parent / "figures")
    mach = machine()
    mach["fibrosim commit"] = meta.get("commit", "unknown")
    missed = [r for r in rows if "MISSED" in r.status]
    met = [r for r in rows if r.status == "met"]
    lines = [
        "# fibrosim benchmarks",
        "",
        f"Generated by `python -m benchmarks.run` (`make bench`) on {meta['date']}. "
        "Each target is measured next to its anchor in the same run, on this machine.",
        "",
        f"**{len(met)} targets met, {len(missed)} missed.** Ratios are anchor time ÷ fibrosim "
        "time (or fibrosim rate ÷ anchor rate): above 1× means fibrosim is faster.",
        "",
        "## Machine",
        "",
        table(["", ""], [[k, v] for k, v in mach.items()]),
        "",
        f"Load average (1, 5, 15 min) before the run: {meta['load_before']}; after: "
        f"{meta['load_after']}; 1-minute load at the start of each benchmark: "
        f"{load_range(res)} (on {os.cpu_count()} logical cores). A load above the core count "
        "means other processes competed for the CPU while measuring, so wall-clock times are "
        "inflated and noisy. The last column of the targets table is the CPU share each "
        "measurement got (CPU seconds / wall seconds, fibrosim / anchor; R's includes its "
        "start-up): 1.00 is a full core, lower means the wall time was stretched by others.",
        "",
        "## Targets",
        "",
        table(
            ["area", "measurement", "fibrosim", "anchor", "ratio", "target", "status", "CPU share"],
            [
                [r.area, r.what, r.fibrosim, r.anchor, r.ratio, r.target, r.status, shares(res, r)]
                for r in rows
            ],
        ),
        "",
        "How things are timed:",
        "",
        "- fibrosim and Python anchors: pytest-benchmark, median over rounds (at least 5, or a "
        "fixed 2-5 rounds for slow calls and anchor loops). fibrosim's times include "
        "validating the inputs and building the result objects. Both sides of a comparison "
        "get the same data (the same seed and sizes; the R escalc anchor draws its own from "
        "the same distribution).",
        "- metafor: inside R, `system.time` around a loop of fits (200 at k = 20, 3 at "
        "k = 1,000; escalc 3 calls on 10^6 rows) divided by the loop length, after one "
        "untimed warm-up fit; R start-up and loading metafor are not counted. metafor's rma "
        "builds k × k matrices, so k = 10^5 is out of its reach; k = 1,000 is its anchor.",
        '- statsmodels has no REML: `combine_effects(method_re="iterated")` (Paule-Mandel) '
        'is the iterative anchor, `"chi2"` (DerSimonian-Laird) is compared with fibrosim\'s '
        "DL. It has no batch axis, so the batch anchor is a loop over 300 analyses, per "
        "analysis.",
        '- The Bayesian "posterior" is `bayes_random_effects` plus mean, SD, 95% interval of '
        "mu and median of tau. PyMC: `fibrosim.meta.mcmc.normal_model` (the same "
        "normal-normal model, HalfNormal(0.5) on tau, flat mu) sampled once by `pm.sample` "
        "with its defaults (NUTS, target_accept 0.8), 4 chains × (1000 tune + 1000 draws), "
        "one core; the time includes compiling the model.",
        "- statsmodels `TTestIndPower.power` accepts arrays: the main anchor is one vectorised "
        "call on the grid; a Python loop over points (timed on 500, scaled to the grid) is "
        "shown as well.",
        "- Simulation rates are trials per second in one process (one core). The per-trial "
        "loop draws two arms of 64 patients and calls `scipy.stats.ttest_ind`; it is timed "
        "on 2,000 trials and extrapolated. The naive numpy engine draws all "
        "(n_sims, 2, 64) patients at once and computes the Student t test.",
        "- Peak memory is tracemalloc's peak (numpy allocations included) during one extra, "
        "untimed call.",
        "",
        "## Absolute targets on CPU time",
        "",
        "The statuses above are judged on wall-clock time as measured. Because other processes "
        "held the CPU during this run, the table below also gives each absolute target's CPU "
        "time (wall time × CPU share), an estimate of the time on an idle core. It is shown "
        "for reading the misses, not as a replacement for the measured status; CPU time on a "
        "shared core also carries cache and memory-bandwidth contention. The best round "
        "(minimum over pytest-benchmark's rounds) shows the spread the load caused.",
        "",
        table(
            [
                "measurement",
                "wall, median (measured)",
                "wall, best round",
                "CPU share",
                "CPU-time estimate",
                "target",
                "within target on CPU time",
            ],
            cpu_rows(res),
        ),
        "",
        "## Physical limit: random normal draws",
        "",
        table(
            [
                "generator / engine",
                "variates per second",
                "fraction of SFC64 normal rate",
                "variates per trial",
            ],
            physical_rows(res),
        ),
        "",
        "The sufficient-statistic engines draw chi-square variates (via standard_gamma), which "
        "cost more than a normal draw, so their fraction is a lower bound on their efficiency.",
        "",
        "## Scaling curves",
        "",
        scaling_tables(res),
        "",
        f"Where the curves stop: k at {SCALING_STOP['k']}, the batch at "
        f"{SCALING_STOP['batch']}, n_sims at {SCALING_STOP['nsims']}.",
        "",
    ]
    for name, caption in made:
        lines += [f"![{caption}](figures/{name})", "", f"*{caption}.*", ""]
    lines += [
        "## Anchors absent or not run",
        "",
    ]
    absent = [
        "- PyMARE: not installed (not added as a dependency); no PyMARE anchor."
        if importlib.util.find_spec("pymare") is None
        else "- PyMARE: installed but not benchmarked."
    ]
    if r_absent:
        absent.append(f"- metafor (R): {r_absent}. Every metafor row says so.")
    if not res.has("pymc_nuts_k20"):
        absent.append("- PyMC NUTS: not run (smoke mode or failure).")
    lines += absent
    lines += [
        "",
        "## pytest summary",
        "",
        "```",
        meta.get("summary", "").strip() or "n/a",
        "```",
        "",
    ]
    out.write_text("\n".join(lines), encoding="utf-8")


SCALING_STOP = {
    "k": "10^5 for fibrosim (metafor stops at 1,000: one fit already takes seconds; "
    "statsmodels at 10^4)",
    "batch": "10^6 analyses of k = 10 (about 0.7 GB of traced peak memory on top of the 160 MB "
    "of inputs, and ~15-20 s per call here; memory grows linearly, so larger batches are best "
    "chunked by the caller)",
    "nsims": "10^7 for the sufficient-statistic engine, 10^6 for the patient-level engine "
    "(~10 s per call) and the naive engine (its memory grows linearly: 10^6 × 2 × 64 "
    "doubles is 1 GB per array)",
}


# --------------------------------------------------------------------------------------- main
def run_suite(json_path: Path, extra: list[str]) -> tuple[int, str]:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "benchmarks",
        "-q",
        "-rs",
        "-p",
        "no:cacheprovider",
        f"--benchmark-json={json_path}",
        "--benchmark-columns=median,rounds",
        *extra,
    ]
    print("running:", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    sys.stdout.write(proc.stdout[-5000:])
    sys.stderr.write(proc.stderr[-5000:])
    summary = "\n".join(
        line
        for line in proc.stdout.splitlines()
        if line.startswith(("SKIPPED", "FAILED", "ERROR")) or re.search(r"\d+ passed", line)
    )
    return proc.returncode, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="reuse this pytest-benchmark JSON")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest")
    args = parser.parse_args(argv)
    meta: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        "commit": git_commit(),
    }
    if args.json is not None:
        path = args.json
        side = path.with_suffix(".meta.json")
        if side.exists():  # the date, load and pytest summary of the run that made the JSON
            meta = json.loads(side.read_text(encoding="utf-8"))
        else:
            meta["summary"] = f"(rebuilt from {path.name}; no record of the run's load)"
            meta["load_after"] = "unknown"
            meta["load_before"] = "unknown"
        code = 0
    else:
        path = Path(tempfile.mkdtemp(prefix="fibrosim-bench-")) / "benchmark.json"
        code, meta["summary"] = run_suite(path, args.pytest_args)
        meta["load_after"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        path.with_suffix(".meta.json").write_text(json.dumps(meta), encoding="utf-8")
    if not path.exists():
        print(f"no benchmark JSON at {path}; pytest exited with {code}", file=sys.stderr)
        return code or 1
    res = Results(json.loads(path.read_text(encoding="utf-8")))
    r_absent = None if anchors.rscript() is not None else anchors.R_MISSING
    write_markdown(res, args.out, meta, r_absent)
    print(f"wrote {args.out} (raw JSON: {path})")
    return code


if __name__ == "__main__":
    sys.exit(main())
