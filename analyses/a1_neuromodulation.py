"""Whether neuromodulation (tDCS, rTMS, TENS) reduces pain and depressive symptoms vs sham in FM.

The seed review (Desport et al. 2024, Eur Psychiatry 67(S1):S65) says that electrical
neuromodulation may reduce pain and depressive symptoms.  This script

1. tabulates the published pooled results encoded in ``neuromodulation_pooled`` (as printed, and
   on one sign: negative = favours active stimulation);
2. draws the per-trial effects of ``neuromodulation_trials`` by outcome and pools only what is
   poolable (same outcome, measure, scale and a sham comparator): TENS pain, MD on 0-10, k = 2,
   by REML with the Knapp-Hartung (HKSJ) interval and with the z interval;
3. pools the same two trials with the exact Bayesian normal-normal model under the Rhodes et al.
   (2015) heterogeneity prior for pain / quality of life, non-pharmacological interventions,
   moved from the SMD scale to the 0-10 scale, and shows how the probability of benefit and the
   intervals move under half-normal, half-Cauchy and a Turner-like (log-OR prior converted to
   the SMD scale) prior;
4. lists everything the encoded evidence says about depressive symptoms.

Run ``python analyses/a1_neuromodulation.py`` to write ``out/a1_neuromodulation.md`` and its
figures; ``fibrosim report`` includes it as a section.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

import fibrosim as fs
from fibrosim.meta.frequentist import RandomEffectsResult
from fibrosim.report import Block, Figure, Paragraph, Section, Table, Verdict
from fibrosim.trials.cohorts import load_cohort_defaults

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # the shared helpers beside this script

TITLE = "Neuromodulation vs sham: pain and depressive symptoms"
QUESTION = (
    "Does neuromodulation (tDCS, rTMS, TENS) reduce pain and depressive symptoms compared with "
    "sham stimulation in fibromyalgia?"
)
PAIN_CLAIM = "Electrical neuromodulation reduces pain (vs sham)"
DEPRESSION_CLAIM = "Electrical neuromodulation reduces depressive symptoms (vs sham)"
#: Words that mark a statement about depressive symptoms in the encoded notes.
DEPRESSION_WORDS = re.compile(r"depress|\bmood\b|\bBDI\b", re.IGNORECASE)
ELECTRICAL = ("tDCS", "TENS")  # rTMS is magnetic stimulation
Z95 = float(stats.norm.ppf(0.975))


def _by_modality(frame: pd.DataFrame, column: str) -> str:
    """'tDCS: pain; rTMS: fiq, pain, qol' - the distinct values of ``column`` per modality."""
    groups = frame.groupby("modality", sort=False)[column].unique()
    return "; ".join(f"{m}: {', '.join(sorted(v))}" for m, v in groups.items())


def _sham_controlled(trials: pd.DataFrame) -> pd.Series:
    """Rows whose comparator is a sham (placebo) device, not no treatment."""
    return trials["control"].str.contains("sham|placebo", case=False, regex=True)


def _pooled_pain_part(pooled: pd.DataFrame, out_dir: Path) -> tuple[list[Block], pd.DataFrame]:
    table = common.pooled_table(pooled)
    blocks: list[Block] = [
        Table(
            table,
            "Published pooled results vs sham (neuromodulation_pooled). 'as printed' keeps each "
            "review's sign; estimate / ci_low / ci_high are harmonised so that a negative value "
            "favours active stimulation. code: V1 = read from the review's abstract or "
            "summary-of-findings table.",
            float_format="{:.2f}",
        )
    ]
    panels = (
        (table["measure"] == "SMD", "SMD (negative favours active)", "Pooled SMDs"),
        (
            (table["measure"] == "MD") & (table["outcome"] == "pain"),
            "MD on a 0-10 NRS (negative favours active)",
            "Pooled MDs, pain 0-10",
        ),
        (
            (table["measure"] == "MD") & (table["outcome"] == "fiq"),
            "MD on the FIQ 0-100 (negative favours active)",
            "Pooled MDs, FIQ 0-100",
        ),
    )
    sizes = [int(mask.sum()) for mask, _, _ in panels]
    fig, axes = plt.subplots(
        3, 1, figsize=(9, 8), height_ratios=[s + 1.5 for s in sizes], constrained_layout=True
    )
    for ax, (mask, xlabel, title) in zip(axes, panels, strict=True):
        rows = table[mask]
        labels = [
            f"{r.review}: {r.modality} {r.outcome} ({r.timepoint})" for r in rows.itertuples()
        ]
        common.interval_plot(
            ax,
            labels,
            rows["estimate"].tolist(),
            rows["ci_low"].tolist(),
            rows["ci_high"].tolist(),
            emphasis=rows["outcome"].str.startswith("pain").tolist(),
            xlabel=xlabel,
            title=f"{title} (pain in black)",
        )
    path = common.save_figure(fig, out_dir, "a1_pooled_neuromodulation")
    blocks.append(
        Figure(
            path,
            "Published pooled estimates with their printed 95% CIs, harmonised so that "
            "negative favours active stimulation; one panel per measure and scale.",
        )
    )
    return blocks, table


def _trial_table(trials: pd.DataFrame, pooled_mask: pd.Series) -> pd.DataFrame:
    sham = _sham_controlled(trials)
    # count the sham-controlled rows that share this row's outcome and measure
    keys = list(zip(trials["outcome"], trials["measure"], strict=True))
    by_key = trials[sham].groupby(["outcome", "measure"])["modality"]
    n_same = np.array([by_key.size().get(k, 0) for k in keys])
    n_modalities = np.array([by_key.nunique().get(k, 0) for k in keys])
    reason = np.select(
        [pooled_mask, ~sham, n_same == 1, n_modalities > 1],
        [
            "pooled: TENS pain vs sham, MD on 0-10",
            "not pooled: comparator is no treatment (and shares the active arm)",
            "not pooled: the only sham-controlled trial with this outcome and measure",
            "not pooled: different modalities",
        ],
        default="not pooled: comparator or scale differs",
    )
    z = common.fixed(2)
    return pd.DataFrame(
        {
            "study": trials["study"],
            "modality": trials["modality"],
            "comparator": trials["control"],
            "outcome": trials["outcome"],
            "scale": trials["scale"],
            "measure": trials["measure"],
            "estimate (95% CI)": [
                common.ci_text(e, e - Z95 * math.sqrt(v), e + Z95 * math.sqrt(v), z)
                if lo != lo
                else common.ci_text(e, lo, hi)
                for e, v, lo, hi in zip(
                    trials.estimate, trials.vi, trials.ci_low, trials.ci_high, strict=True
                )
            ],
            "code": trials["verification"],
            "use": reason,
        }
    ).reset_index(drop=True)


def _trials_forest(
    trials: pd.DataFrame, pain: pd.DataFrame, fit: RandomEffectsResult, out_dir: Path
) -> str:
    """Three panels: the pooled TENS pain trials, other 0-10 MDs, FIQ SMDs (not pooled)."""
    others = trials[(trials["scale"] == "NRS 0-10") & ~trials.index.isin(pain.index)]
    fiq = trials[(trials["outcome"] == "fiq") & (trials["measure"] == "SMD")]
    fig, axes = plt.subplots(
        3, 1, figsize=(9, 7.5), height_ratios=[3.2, 3.6, 2.4], constrained_layout=True
    )
    fs.plots.forest(
        pain["yi"],
        pain["vi"],
        labels=[f"{s} (vs {c})" for s, c in zip(pain.study, pain.arm_c, strict=True)],
        result=fit,
        summary_label="REML, HKSJ t(1) CI",
        xlabel="pain MD on 0-10 (negative favours TENS)",
        ax=axes[0],
    )
    axes[0].set_title("Pooled: TENS vs sham, pain (k = 2)", fontsize=10, loc="left")
    fs.plots.forest(
        others["yi"],
        others["vi"],
        labels=[
            f"{s}: {o} (vs {c})"
            for s, o, c in zip(others.study, others.outcome, others.arm_c, strict=True)
        ],
        xlabel="MD on 0-10 (negative favours TENS)",
        ax=axes[1],
    )
    axes[1].set_title(
        "Not pooled: fatigue (k = 1 vs sham) and comparisons with no TENS",
        fontsize=10,
        loc="left",
    )
    fs.plots.forest(
        fiq["yi"],
        fiq["vi"],
        labels=[f"{s} ({m})" for s, m in zip(fiq.study, fiq.modality, strict=True)],
        xlabel="FIQ SMD, back-calculated from p-values (negative favours active)",
        ax=axes[2],
    )
    axes[2].set_title("Not pooled: FIQ, two different modalities", fontsize=10, loc="left")
    return common.save_figure(fig, out_dir, "a1_trials_forest")


def _tau_priors(sd: float) -> dict[str, fs.priors.TauPrior]:
    """SMD-scale tau priors moved to the MD scale of a 0-10 pain score (tau_MD = sd * tau_SMD)."""
    rhodes = fs.priors.rhodes2015("physical_health_pain_qol", "nonpharma")
    turner = fs.priors.turner2015("pain", "nonpharma_vs_placebo")
    turner_smd = common.rescale_tau_prior(turner, common.LOG_OR_TO_SMD, "Turner pain, as SMD")
    return {
        "Rhodes 2015, pain/QoL, non-pharmacological": common.rescale_tau_prior(
            rhodes, sd, "Rhodes physical_health_pain_qol / nonpharma, MD scale"
        ),
        "Turner-like: Turner 2015 pain, non-pharma vs placebo, x sqrt(3)/pi": (
            common.rescale_tau_prior(turner_smd, sd, "Turner pain as SMD, MD scale")
        ),
        "half-normal(0.5 SD)": common.rescale_tau_prior(fs.priors.HalfNormal(0.5), sd),
        "half-Cauchy(0.5 SD)": common.rescale_tau_prior(fs.priors.HalfCauchy(0.5), sd),
    }


def _depression_statements(pooled: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Every clause of the encoded notes that speaks about depressive symptoms."""
    rows = []
    for frame, who in ((pooled, "review"), (trials, "study")):
        for r in frame.itertuples():
            clauses = [c.strip() for c in str(r.notes).split(";")]
            said = [c for c in clauses if DEPRESSION_WORDS.search(c)]
            if said:
                rows.append(
                    {
                        "source": getattr(r, who),
                        "modality": r.modality,
                        "level": "pooled review" if who == "review" else "trial",
                        "what the encoded abstract says": "; ".join(said),
                        "numbers": "none printed",
                    }
                )
    return pd.DataFrame(rows).drop_duplicates().reset_index(drop=True)


def _pain_verdict(
    table: pd.DataFrame, fit_z: RandomEffectsResult, fit_knha: RandomEffectsResult
) -> Verdict:
    pain = table[table["outcome"] == "pain"]  # subgroup rows are labelled "pain (subgroup)"
    favour = pain["ci_high"] < 0
    by_mod = pain.groupby("modality").size().to_dict()
    tdcs = pain[pain["modality"] == "tDCS"]
    rtms_smd = pain[(pain["modality"] == "rTMS") & (pain["measure"] == "SMD")]
    rtms_md = pain[(pain["modality"] == "rTMS") & (pain["measure"] == "MD")]
    if favour.all():
        verdict = "supported"
    elif favour.any():
        verdict = "partly supported"
    else:
        verdict = "not supported"
    counts = ", ".join(f"{m} {n}" for m, n in sorted(by_mod.items(), reverse=True))
    reason = (
        f"{'All' if favour.all() else int(favour.sum())} "
        f"{'' if favour.all() else f'of {len(pain)} '}encoded pooled pain estimates ({counts}; "
        "subgroup rows not counted) favour active over sham with 95% CIs excluding 0. "
        "Electrical stimulation: tDCS SMDs "
        f"{-tdcs['estimate'].max():.2f} to {-tdcs['estimate'].min():.2f}"
        " in favour (GRADE low to very low in Teixeira 2023; effects this large from small "
        "trials suggest small-study bias); TENS vs sham, 2 trials not pooled by any review: MD "
        f"{float(fit_z.estimate):.2f} points on 0-10 (z 95% CI {float(fit_z.ci_low):.2f} to "
        f"{float(fit_z.ci_high):.2f}; with k = 2 the HKSJ t(1) CI is "
        f"{float(fit_knha.ci_low):.2f} to {float(fit_knha.ci_high):.2f}). Magnetic (rTMS): SMD "
        f"{common.printed(-rtms_smd['estimate'].max())} to "
        f"{common.printed(-rtms_smd['estimate'].min())}, MD "
        f"{common.printed(-rtms_md['estimate'].max())} to "
        f"{common.printed(-rtms_md['estimate'].min())} points, below the 1.5-point MCID the "
        "authors cite. The direction is consistent; the size and certainty are not established."
    )
    return Verdict(PAIN_CLAIM, verdict, reason)


def _depression_verdict(pooled: pd.DataFrame, statements: pd.DataFrame) -> Verdict:
    numeric = pooled[pooled["outcome"] == "depression"]
    if len(numeric):  # an encoded estimate exists: judge it like pain
        h = common.harmonise(numeric)
        favour = h["ci_high_h"] < 0
        verdict = (
            "supported"
            if favour.all()
            else ("partly supported" if favour.any() else "not supported")
        )
        reason = f"{int(favour.sum())} of {len(h)} encoded pooled depression estimates favour it."
        return Verdict(DEPRESSION_CLAIM, verdict, reason)
    said = "; ".join(
        f"{src} ({mod}): {text}"
        for src, mod, text in zip(
            statements["source"],
            statements["modality"],
            statements["what the encoded abstract says"],
            strict=True,
        )
    )
    electrical = statements[statements["modality"].isin(ELECTRICAL)]
    said_ns = statements["what the encoded abstract says"].str.contains(
        r"n\.s\.|no significant", regex=True
    )
    not_sig, others = statements[said_ns], statements[~said_ns]
    reason = (
        "No encoded pooled or per-trial estimate of an effect on depressive symptoms exists, "
        "for any modality, so nothing can be pooled or quantified. What the encoded sources "
        f"say, all without numbers: {said}. "
        + ("None of it concerns electrical stimulation (tDCS, TENS). " if electrical.empty else "")
        + f"{len(not_sig)} of {len(statements)} statements report no significant effect"
        + (
            f"; {', '.join(others['source'])} report(s) a reduction without numbers. "
            if len(others)
            else ". "
        )
        + "This is an absence of evidence for an effect, not evidence of no effect."
    )
    return Verdict(DEPRESSION_CLAIM, "not supported", reason)


def run(out_dir: Path) -> Section:
    """Run the analysis, write its figures under ``out_dir/figures``, return its section."""
    out_dir = Path(out_dir)
    pooled = fs.studies.load("neuromodulation_pooled")
    trials = fs.studies.load("neuromodulation_trials")
    blocks: list[Block] = [
        Paragraph(
            f"Evidence encoded: {len(pooled)} pooled results from {pooled['review'].nunique()} "
            f"meta-analyses ({_by_modality(pooled, 'outcome')}) and {len(trials)} per-trial "
            f"effects from {trials['study'].nunique()} trials ({_by_modality(trials, 'study')}). "
            + ("No review pools TENS. " if not (pooled["modality"] == "TENS").any() else "")
            + "No per-arm means and SDs are encoded for any neuromodulation trial, so effects "
            "cannot be recomputed from arm summaries."
        )
    ]
    pooled_blocks, table = _pooled_pain_part(pooled, out_dir)
    blocks += pooled_blocks

    # --- per-trial effects: pool only TENS pain MDs on 0-10 against a sham device ----------
    is_pain = (
        (trials["outcome"] == "pain")
        & (trials["measure"] == "MD")
        & trials["scale"].str.contains("0-10")
        & _sham_controlled(trials)
    )
    pain = trials[is_pain]
    fit_knha, notes_knha = common.quiet(
        fs.meta.random_effects, pain["yi"], pain["vi"], method="REML", test="knha"
    )
    fit_z, _ = common.quiet(fs.meta.random_effects, pain["yi"], pain["vi"], method="REML")
    blocks.append(
        Table(
            _trial_table(trials, is_pain),
            "Per-trial effects (neuromodulation_trials), active minus comparator on the "
            "outcome's own scale. For pain, fatigue, FIQ(R) and BPI a negative value favours "
            "active; for PGIC and the SF-36 mental component a positive value does. Intervals "
            "of the SMD rows are estimate +/- 1.96 SE; code C = back-calculated from a p-value.",
        )
    )
    blocks.append(
        Figure(
            _trials_forest(trials, pain, fit_knha, out_dir),
            "Per-trial effects by outcome. Only TENS pain vs sham (MD on 0-10, k = 2) is "
            "pooled; the Dailey 2020 no-TENS comparisons share the active arm and have no sham, "
            "and the two FIQ SMDs come from different modalities and from p-values.",
        )
    )
    freq = pd.DataFrame(
        {
            "model": ["REML, z interval", "REML, HKSJ (t with k-1 = 1 df)"],
            "k": [int(fit_z.k), int(fit_knha.k)],
            "MD": [float(fit_z.estimate), float(fit_knha.estimate)],
            "ci_low": [float(fit_z.ci_low), float(fit_knha.ci_low)],
            "ci_high": [float(fit_z.ci_high), float(fit_knha.ci_high)],
            "pi_low": [float(fit_z.pi_low), float(fit_knha.pi_low)],
            "pi_high": [float(fit_z.pi_high), float(fit_knha.pi_high)],
            "tau²": [float(fit_z.tau2), float(fit_knha.tau2)],
            "Q p-value": [float(fit_z.q_pvalue), float(fit_knha.q_pvalue)],
        }
    )
    blocks.append(
        Table(
            freq,
            "TENS vs sham, pain MD on 0-10 (Dailey 2020 movement-evoked pain NRS; Jamison 2021 "
            "FIQR pain item), frequentist random effects.",
            float_format="{:.3f}",
        )
    )
    blocks.append(
        Paragraph(
            "With k = 2 the between-trial variance is barely estimable (here tau² = "
            f"{float(fit_z.tau2):.3g}, the two trials agree) and the Knapp-Hartung interval uses "
            "a t distribution with 1 degree of freedom: it is honest about how little two trials "
            "say about heterogeneity, and it includes 0 (fibrosim warns: "
            + "; ".join(n.rstrip(".") for n in notes_knha)
            + "). The Bayesian fits below replace the t(1) correction by an explicit prior on "
            "the heterogeneity."
        )
    )

    # --- Bayesian pooling of the same two trials, with prior sensitivity --------------------
    sd = float(load_cohort_defaults()["sd_change"]["value"])
    priors = _tau_priors(sd)
    sens, bayes_notes = common.prior_sensitivity(pain["yi"], pain["vi"], priors)
    blocks.append(
        Table(
            common.public(sens),
            "TENS vs sham, pain MD on 0-10: exact Bayesian random-effects posterior (flat prior "
            "on mu) under four heterogeneity priors. The priors are stated on the SMD scale and "
            f"multiplied by SD = {sd:.2f} points (sd_change in studies/design/cohort_defaults: "
            "SD of the 0-10 pain change in the placebo arms of the SNRI trials of Häuser 2009). "
            "P(mu < 0) is the probability that TENS lowers pain on average; P(theta_new < 0) "
            "that it does so in a new trial's setting.",
            float_format="{:.3f}",
        )
    )
    p_benefit = sens["P(mu < 0)"]
    all_include_0 = bool(((sens["_mu_low"] < 0) & (sens["_mu_high"] > 0)).all())
    blocks.append(
        Paragraph(
            f"Across the four priors P(mu < 0) ranges from {p_benefit.min():.2f} to "
            f"{p_benefit.max():.2f}, and the 95% credible intervals for mu span "
            f"{sens['_mu_low'].min():.2f} to {sens['_mu_high'].max():.2f} points"
            + (
                "; every one of them includes 0. "
                if all_include_0
                else "; not all of them include 0. "
            )
            + "The posterior median hardly moves; the width grows with the heterogeneity the "
            "prior allows (the half-Cauchy, with the heaviest tail, is the widest). Two trials "
            "make a benefit on average probable, not certain, and say little about a new "
            "setting. "
            "The Turner-like prior converts Turner's log-OR prior for pain "
            "(non-pharmacological vs placebo) to the SMD scale with sqrt(3)/pi (Chinn 2000)."
            + (
                " With two trials, the posterior variance of tau does not exist under the "
                f"{' and '.join(bayes_notes)} prior(s) (heavy tails); the table reports "
                "medians, quantiles and probabilities, which do exist."
                if bayes_notes
                else ""
            )
        )
    )

    # --- depressive symptoms ------------------------------------------------------------------
    statements = _depression_statements(pooled, trials)
    blocks.append(
        Table(
            statements,
            "Depressive symptoms: every statement of the encoded neuromodulation sources (no "
            "depression estimate is encoded).",
        )
    )
    blocks.append(
        Paragraph(
            "A depression analysis would use the Rhodes 2015 mental-health, non-pharmacological "
            "prior, but there is nothing to pool: the reviews give depression only as "
            "'not significant' or as a narrative without numbers. A tDCS congress abstract "
            "(Loreti et al., PROSPERO CRD42020189944) that reports a non-significant depression "
            "result is not encoded (no DOI or PMID; the measure is not stated), see "
            "studies/EVIDENCE.md."
        )
    )
    verdicts = (
        _pain_verdict(table, fit_z, fit_knha),
        _depression_verdict(pooled, statements),
    )
    meta_p, meta_t = pooled.attrs["metadata"], trials.attrs["metadata"]
    sources = (
        common.citations(meta_p, sorted(set(pooled["review"])))
        + common.citations(meta_t, sorted(set(trials["study"])), key="trials")
        + [
            "Rhodes KM, Turner RM, Higgins JPT. J Clin Epidemiol 2015;68(1):52-60. "
            "doi:10.1016/j.jclinepi.2014.08.012",
            "Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT. Stat Med "
            "2015;34(6):984-998. doi:10.1002/sim.6381",
            "Chinn S. A simple method for converting an odds ratio to effect size for use in "
            "meta-analysis. Stat Med 2000;19(22):3127-3131.",
            "Hartung J, Knapp G. Stat Med 2001;20(24):3875-3889 (HKSJ interval).",
        ]
    )
    return Section(
        title=TITLE,
        question=QUESTION,
        blocks=tuple(blocks),
        verdicts=verdicts,
        sources=tuple(sources),
    )


if __name__ == "__main__":
    print(common.write_standalone(run(Path("out")), __file__))
