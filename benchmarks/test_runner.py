"""The report builder of benchmarks/run.py on a small hand-made benchmark JSON."""

from __future__ import annotations

from benchmarks import run


def entry(key, median, **info):
    return {"name": key, "stats": {"median": median}, "extra_info": {"key": key, **info}}


def test_report_ratios_and_status(tmp_path):
    data = {
        "benchmarks": [
            entry("re_k20_REML", 0.5e-3, units=1.0),
            entry("metafor_k20", 99.0, units=1.0, seconds=10e-3),  # external time wins
            entry("sm_k20_iterated", 2e-3, units=1.0),
            entry("bayes_k20", 2e-3, units=1.0),
            entry("sim_sufficient_ancova", 0.1, units=2e6, variates_per_trial=4),
            entry("scipy_loop", 1.0, units=2000.0),
            entry("normal_draws_SFC64", 0.1, units=1e7),
            entry("scale_nsims_sufficient", 0.01, size=1e5, units=1e5, peak_bytes=2**20),
            entry("scale_nsims_sufficient", 1.0, size=1e7, units=1e7, peak_bytes=2**21),
        ]
    }
    res = run.Results(data)
    assert res.seconds("metafor_k20") == 10e-3
    assert res.rate("sim_sufficient_ancova") == 2e7
    rows = {(r.what, r.target): r for r in run.build_rows(res, r_absent=None)}
    metafor = rows["REML, one analysis, k = 20", "≥ 20× metafor"]
    assert (metafor.ratio, metafor.status) == ("20×", "met")
    sm = rows["REML, one analysis, k = 20", "≥ 10× statsmodels"]
    assert (sm.ratio, sm.status) == ("4×", "**MISSED**")
    assert rows["posterior, one analysis, k = 20", "≤ 1 ms"].status == "**MISSED**"
    assert rows["sufficient ANCOVA vs per-trial loop", "≥ 1,000× loop"].ratio == "10,000×"
    pymc = rows["posterior, k = 20, vs MCMC", "≥ 10,000× PyMC"]
    assert pymc.status == "anchor absent (not run)"
    memory = [r for r in rows.values() if r.what.startswith("peak memory, sufficient")]
    assert memory[0].status == "**MISSED**"  # doubled from 10^5 to 10^7: not flat
    # without R every metafor row says the anchor is absent and why
    no_r = run.build_rows(res, r_absent="Rscript not installed")
    assert all("Rscript not installed" in r.status for r in no_r if "metafor" in r.anchor)

    out = tmp_path / "RESULTS.md"
    meta = {"date": "today", "load_before": "1", "load_after": "2", "summary": "1 passed"}
    run.write_markdown(res, out, meta)
    text = out.read_text(encoding="utf-8")
    assert (
        "| Frequentist | REML, one analysis, k = 20 | 500 µs | metafor rma: 10 ms | 20× |" in text
    )
    assert (tmp_path / "figures" / "scaling_nsims.png").stat().st_size > 0
