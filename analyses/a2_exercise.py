"""Whether aerobic exercise improves fatigue and, to a lesser degree, sleep in FM.

The seed review (Desport et al. 2024, Eur Psychiatry 67(S1):S65) says that aerobic exercise may
improve fatigue and, to a lesser degree, sleep.  The encoded evidence for these two outcomes is
review-level only (``exercise_pooled``): no per-trial fatigue or sleep effect of exercise is
encoded, so nothing is re-pooled here (the reviews overlap in their trials).  This script

1. tabulates and plots every pooled fatigue and sleep estimate (aerobic exercise, and exercise
   of any or other types for context), with the SE, z and p each printed interval implies;
2. compares fatigue with sleep: aerobic exercise across reviews (Häuser 2010 fatigue vs
   Cuenca-Martínez 2023 aerobic-alone sleep) and all exercise within one review (Estévez-López
   2021), as differences of two estimates with the SE of independent estimates;
3. gives a verdict for each half of the claim.

Run ``python analyses/a2_exercise.py`` to write ``out/a2_exercise.md`` and its figure.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import fibrosim as fs
from fibrosim.report import Block, Figure, Paragraph, Section, Table, Verdict

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # the shared helpers beside this script

TITLE = "Aerobic exercise: fatigue and sleep"
QUESTION = (
    "Does aerobic exercise improve fatigue in fibromyalgia, and sleep to a lesser degree, "
    "compared with usual care or control?"
)
FATIGUE_CLAIM = "Aerobic exercise improves fatigue"
SLEEP_CLAIM = "Aerobic exercise improves sleep, to a lesser degree than fatigue"
OUTCOMES = ("fatigue", "sleep")


def _table(pooled: pd.DataFrame) -> pd.DataFrame:
    rows = pooled[pooled["outcome"].isin(OUTCOMES)].copy()
    rows["aerobic"] = rows["modality"] == "aerobic exercise"
    rows = rows.sort_values(["outcome", "aerobic"], ascending=[True, False], kind="stable")
    table = common.pooled_table(rows)
    table.insert(2, "comparison", rows["comparison"].to_numpy())
    se_z_p = [
        common.z_p_from_ci(e, lo, hi)
        for e, lo, hi in zip(table.estimate, table.ci_low, table.ci_high, strict=True)
    ]
    table["SE"] = [s for s, _, _ in se_z_p]
    table["z"] = [z for _, z, _ in se_z_p]
    table["p"] = [_p_text(p) for _, _, p in se_z_p]
    table["n"] = common.count_text(rows["n"])
    return table.drop(columns=["printed sign", "I² %"])


def _p_text(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _difference(a: pd.Series, b: pd.Series, label: str, note: str) -> dict[str, object]:
    """Fatigue minus sleep, SE of independent estimates, z and two-sided p."""
    diff = float(a["estimate"] - b["estimate"])
    se = math.hypot(float(a["SE"]), float(b["SE"]))
    z = diff / se
    return {
        "comparison": label,
        "fatigue": common.ci_text(a["estimate"], a["ci_low"], a["ci_high"]),
        "sleep": common.ci_text(b["estimate"], b["ci_low"], b["ci_high"]),
        "fatigue - sleep": diff,
        "SE": se,
        "95% CI": f"({diff - 1.959964 * se:.2f}, {diff + 1.959964 * se:.2f})",
        "z": z,
        "p": _p_text(math.erfc(abs(z) / math.sqrt(2.0))),
        "caveat": note,
    }


def _row(table: pd.DataFrame, review: str, outcome: str, modality: str) -> pd.Series:
    hit = table[
        (table["review"] == review)
        & (table["outcome"] == outcome)
        & (table["modality"] == modality)
    ]
    if len(hit) != 1:
        raise LookupError(f"expected one {review} {modality} {outcome} row; found {len(hit)}.")
    return hit.iloc[0]


def run(out_dir: Path) -> Section:
    """Run the analysis, write its figure under ``out_dir/figures``, return its section."""
    out_dir = Path(out_dir)
    pooled = fs.studies.load("exercise_pooled")
    table = _table(pooled)
    blocks: list[Block] = [
        Paragraph(
            "All numbers are review-level pooled SMDs (Hedges' g or an unnamed standardised "
            "effect), negative = favours exercise, with the interval as printed. SE, z and p "
            "are recovered from each 95% CI assuming a symmetric normal interval (Altman & "
            "Bland 2011). Heterogeneity (I²) and risk of bias were not read for these rows; "
            "k and n were read only for "
            + (", ".join(sorted(set(table.loc[table["k"] != "", "review"]))) or "none")
            + ". Nothing is re-pooled: the reviews overlap in their trials."
        ),
        Table(
            table,
            "Pooled fatigue and sleep estimates (exercise_pooled), aerobic rows first.",
            float_format="{:.2f}",
        ),
    ]
    fig, axes = plt.subplots(
        2, 1, figsize=(9, 5.5), height_ratios=[2.6, 6], sharex=True, constrained_layout=True
    )
    for ax, outcome in zip(axes, OUTCOMES, strict=True):
        rows = table[table["outcome"] == outcome]
        common.interval_plot(
            ax,
            [f"{r.review}: {r.modality}" for r in rows.itertuples()],
            rows["estimate"].tolist(),
            rows["ci_low"].tolist(),
            rows["ci_high"].tolist(),
            emphasis=(rows["modality"] == "aerobic exercise").tolist(),
            xlabel="SMD (negative favours exercise)",
            title=f"{outcome.capitalize()} (aerobic exercise in black)",
        )
    blocks.append(
        Figure(
            common.save_figure(fig, out_dir, "a2_exercise_fatigue_sleep"),
            "Published pooled SMDs for fatigue and sleep with their printed 95% CIs; aerobic "
            "exercise in black, other or all exercise types in grey.",
        )
    )

    fat_aer = _row(table, "hauser2010", "fatigue", "aerobic exercise")
    slp_aer = _row(table, "cuencamartinez2023", "sleep", "aerobic exercise")
    fat_all = _row(table, "estevezlopez2021", "fatigue", "exercise")
    slp_all = _row(table, "estevezlopez2021", "sleep", "exercise")
    diffs = pd.DataFrame(
        [
            _difference(
                fat_aer,
                slp_aer,
                "aerobic: Häuser 2010 fatigue vs Cuenca-Martínez 2023 sleep",
                "different reviews, comparators and trials; treated as independent",
            ),
            _difference(
                fat_all,
                slp_all,
                "all exercise: Estévez-López 2021 fatigue vs sleep",
                "same review, overlapping trials: the estimates are probably positively "
                "correlated, so the SE of independent estimates is conservative",
            ),
        ]
    )
    p_aerobic, p_all = (str(p) for p in diffs["p"])
    d_aerobic, d_all = (float(d) for d in diffs["fatigue - sleep"])
    blocks.append(
        Table(
            diffs,
            "Fatigue minus sleep (SMD units; negative = larger benefit on fatigue).",
            float_format="{:.3f}",
        )
    )
    blocks.append(
        Paragraph(
            "Reading: for aerobic exercise the only fatigue estimate (Häuser 2010, "
            f"{common.ci_text(fat_aer.estimate, fat_aer.ci_low, fat_aer.ci_high)}) is a small "
            "benefit whose interval excludes 0. The aerobic-alone sleep estimate "
            f"({common.ci_text(slp_aer.estimate, slp_aer.ci_low, slp_aer.ci_high)}) is "
            "close to 0: there is no evidence of an effect, and its interval excludes benefits "
            f"larger than {-slp_aer.ci_low:.2f} SD, i.e. any sleep effect of aerobic exercise "
            "alone is at most small. Other exercise types (mind-body, combined, all types) show "
            "larger sleep benefits. The fatigue-sleep difference for aerobic exercise is "
            f"{d_aerobic:.2f} (p = {p_aerobic}); within "
            f"Estévez-López 2021 it is {d_all:.2f} "
            f"(p = {p_all}). These compare published summaries, not trials, "
            "and cannot adjust for the reviews' different trial sets. Cuenca-Martínez 2023 "
            "does not print the direction of its sleep SMDs; like the dataset, this analysis "
            "reads a negative value as better sleep."
        )
    )

    fat_ok = fat_aer["ci_high"] < 0
    verdict_fatigue = Verdict(
        FATIGUE_CLAIM,
        "supported" if fat_ok else "not supported",
        f"Häuser 2010, aerobic exercise vs control: SMD "
        f"{common.ci_text(fat_aer.estimate, fat_aer.ci_low, fat_aer.ci_high)}"
        f"{', a small benefit' if fat_ok else ''}; exercise of all types (Estévez-López 2021, "
        f"k = {fat_all.k}, n = {fat_all.n}): "
        f"{common.ci_text(fat_all.estimate, fat_all.ci_low, fat_all.ci_high)}. One "
        "aerobic-specific pooled estimate, its k and heterogeneity not read; no per-trial "
        "fatigue data are encoded.",
    )
    smaller = slp_aer["estimate"] > fat_aer["estimate"]
    if not smaller:
        sleep_verdict = "not supported"
    elif slp_aer["ci_high"] < 0:
        sleep_verdict = "supported"
    else:  # smaller, but no evidence that aerobic exercise improves sleep at all
        sleep_verdict = "partly supported"
    verdict_sleep = Verdict(
        SLEEP_CLAIM,
        sleep_verdict,
        "The sleep effect is smaller than the fatigue effect (aerobic: "
        f"{common.ci_text(slp_aer.estimate, slp_aer.ci_low, slp_aer.ci_high)} vs "
        f"{common.ci_text(fat_aer.estimate, fat_aer.ci_low, fat_aer.ci_high)}; all exercise, "
        f"Estévez-López 2021: "
        f"{common.ci_text(slp_all.estimate, slp_all.ci_low, slp_all.ci_high)} vs "
        f"{common.ci_text(fat_all.estimate, fat_all.ci_low, fat_all.ci_high)}), but aerobic "
        "exercise alone shows no evidence of improving sleep (Cuenca-Martínez 2023, CI "
        "includes 0, direction not printed by the review); the sleep benefits come from other "
        "or all exercise types. 'Less than fatigue' is consistent but, for aerobic exercise, "
        f"not statistically clear (difference p = {p_aerobic}).",
    )
    meta = pooled.attrs["metadata"]
    sources = (
        *common.citations(meta, sorted(set(table["review"]))),
        "Altman DG, Bland JM. How to obtain the P value from a confidence interval. BMJ "
        "2011;343:d2304.",
    )
    return Section(
        title=TITLE,
        question=QUESTION,
        blocks=tuple(blocks),
        verdicts=(verdict_fatigue, verdict_sleep),
        sources=sources,
    )


if __name__ == "__main__":
    print(common.write_standalone(run(Path("out")), __file__))
