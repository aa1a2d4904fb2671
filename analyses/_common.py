"""Helpers shared by the analysis scripts.

This file is not an analysis: the leading underscore keeps it out of the report.  Figures are
saved under ``<out_dir>/figures``; published numbers are shown as printed; effects are put on one
sign convention (negative = favours the intervention) before they are compared; expected fibrosim
warnings are turned into report text; and Bayesian fits are repeated over a set of heterogeneity
priors.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import FormatStrFormatter
from numpy.typing import ArrayLike

import fibrosim as fs
from fibrosim.meta.priors import HalfCauchy, HalfNormal, LogNormalTau2, LogTTau2, TauPrior
from fibrosim.report import Section, render_markdown
from fibrosim.warnings import FibrosimWarning

FIGURE_DIR = "figures"

#: The factor that turns a log odds ratio into an SMD under a logistic latent variable,
#: sqrt(3)/pi (Chinn 2000, Stat Med 19:3127-3131); heterogeneity scales with it.
LOG_OR_TO_SMD = math.sqrt(3.0) / math.pi


# -- output ------------------------------------------------------------------------------------
def save_figure(fig: MplFigure, out_dir: Path, name: str) -> str:
    """Save ``fig`` as ``<out_dir>/figures/<name>.png``, close it, return the relative path."""
    folder = Path(out_dir) / FIGURE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / f"{name}.png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    return f"{FIGURE_DIR}/{name}.png"


def write_standalone(section: Section, script: str, out_dir: Path = Path("out")) -> Path:
    """Write one section as ``<out_dir>/<script stem>.md`` (the scripts' ``__main__`` job)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(script).stem
    preamble = (
        f"Standalone run of analyses/{stem}.py. Every number is computed from the cited data in "
        "studies/; effects are treatment minus control unless a table says otherwise."
    )
    path = out / f"{stem}.md"
    path.write_text(render_markdown([section], title=section.title, preamble=preamble), "utf-8")
    return path


# -- numbers as text ---------------------------------------------------------------------------
def printed(x: float) -> str:
    """A published number as printed: 2 decimals, or 3 when the source printed 3."""
    if x != x:  # NaN: not read from the source
        return "n/a"
    text = f"{x:.3f}".rstrip("0")
    decimals = len(text.split(".")[1]) if "." in text else 0
    return f"{x:.{max(decimals, 2)}f}"


def ci_text(est: float, low: float, high: float, fmt: Callable[[float], str] = printed) -> str:
    """``"est (low, high)"``; ``"est (CI not read)"`` when the limits are missing."""
    if low != low or high != high:
        return f"{fmt(est)} (CI not read)"
    return f"{fmt(est)} ({fmt(low)}, {fmt(high)})"


def fixed(digits: int) -> Callable[[float], str]:
    """A formatter with a fixed number of decimals (for computed values)."""
    return lambda x: f"{x:.{digits}f}"


def z_p_from_ci(est: float, low: float, high: float) -> tuple[float, float, float]:
    """SE, z and two-sided p of an estimate from its symmetric 95% CI (normal theory).

    References
    ----------
    Altman DG, Bland JM. How to obtain the P value from a confidence interval. BMJ
    2011;343:d2304.
    """
    se = float(fs.effects.se_from_ci(low, high))
    z = est / se
    return se, z, math.erfc(abs(z) / math.sqrt(2.0))


# -- signs -------------------------------------------------------------------------------------
def harmonise(pooled: pd.DataFrame) -> pd.DataFrame:
    """Add ``estimate_h``, ``ci_low_h``, ``ci_high_h``: negative = favours the intervention.

    A pooled row's ``positive_means`` says what a positive printed estimate means: ``harm``
    (favours the control; kept), ``benefit`` (favours the intervention; negated and the limits
    swapped) or ``not stated`` (left NaN: the direction cannot be harmonised).
    """
    out = pooled.copy()
    sign = out["positive_means"].map({"harm": 1.0, "benefit": -1.0}).astype(float)
    out["estimate_h"] = sign * out["estimate"]
    low, high = sign * out["ci_low"], sign * out["ci_high"]
    out["ci_low_h"] = np.where(sign > 0, low, high)
    out["ci_high_h"] = np.where(sign > 0, high, low)
    return out


def pooled_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Published pooled rows as printed and on the harmonised sign (see :func:`harmonise`)."""
    h = harmonise(rows)
    # a subgroup row overlaps its review's main row: label it so that it is never counted twice
    subgroup = h["comparison"].str.contains("subgroup", case=False)
    return pd.DataFrame(
        {
            "review": h["review"],
            "modality": h["modality"],
            "outcome": h["outcome"] + np.where(subgroup, " (subgroup)", ""),
            "timepoint": h["timepoint"],
            "measure": h["measure"],
            "as printed (95% CI)": [
                ci_text(e, lo, hi)
                for e, lo, hi in zip(h.estimate, h.ci_low, h.ci_high, strict=True)
            ],
            "printed sign": h["positive_means"].map(
                {"harm": "+ favours control", "benefit": "+ favours intervention"}
            ),
            "estimate": h["estimate_h"],
            "ci_low": h["ci_low_h"],
            "ci_high": h["ci_high_h"],
            "k": count_text(h["k"]),
            "I² %": h["i2"],
            "code": h["verification"],
        }
    ).reset_index(drop=True)


def count_text(values: pd.Series) -> list[str]:
    """Whole numbers as text, empty where the source gives none (k and n of pooled rows)."""
    return ["" if pd.isna(x) else str(int(x)) for x in values]


def favours(low: float, high: float) -> str:
    """Which way a harmonised 95% CI points: "intervention", "control" or "unclear"."""
    if high < 0:
        return "intervention"
    if low > 0:
        return "control"
    return "unclear (CI includes 0)"


# -- figures -----------------------------------------------------------------------------------
def interval_plot(
    ax: Axes,
    labels: Sequence[str],
    est: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    *,
    log: bool = False,
    emphasis: Sequence[bool] | None = None,
    xlabel: str = "",
    title: str = "",
) -> Axes:
    """Published estimates with their printed intervals, one row each (first on top).

    Unlike :func:`fibrosim.plots.forest`, which rebuilds symmetric intervals from variances,
    this draws the limits exactly as printed; rows without limits get an open marker.
    ``emphasis`` rows are black, the others grey.
    """
    y = np.arange(len(labels), 0, -1, dtype=float)
    emph = [True] * len(labels) if emphasis is None else list(emphasis)
    for yi, e, lo, hi, strong in zip(y, est, low, high, emph, strict=True):
        colour = "black" if strong else "0.55"
        if lo == lo and hi == hi:
            ax.hlines(yi, lo, hi, color=colour, linewidth=1.2)
            ax.plot([e], [yi], marker="s", color=colour, markersize=5)
        else:
            ax.plot([e], [yi], marker="o", mfc="white", color=colour, markersize=6)
    ax.axvline(1.0 if log else 0.0, color="grey", linestyle="--", linewidth=0.8)
    if log:
        ax.set_xscale("log")
        # plain numbers (1, 2, 3) instead of powers of ten on a short ratio axis
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.set_yticks(y, list(labels))
    ax.set_ylim(0.3, len(labels) + 0.7)
    trans = ax.get_yaxis_transform()
    for yi, e, lo, hi in zip(y, est, low, high, strict=True):
        ax.text(1.02, yi, ci_text(e, lo, hi), transform=trans, va="center", fontsize=8)
    if xlabel:
        ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return ax


# -- fits --------------------------------------------------------------------------------------
def quiet[R](func: Callable[..., R], *args: Any, **kwargs: Any) -> tuple[R, list[str]]:
    """Call ``func`` and return its result with the texts of the fibrosim warnings it raised.

    fibrosim warns when an estimate is fragile (k = 2 with Knapp-Hartung, moments that do not
    exist); the analyses report those warnings as text instead of letting them pass unseen.
    Other warnings are re-issued unchanged.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func(*args, **kwargs)
    notes: list[str] = []
    for w in caught:
        if issubclass(w.category, FibrosimWarning):
            if str(w.message) not in notes:
                notes.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return result, notes


def rescale_tau_prior(prior: TauPrior, factor: float, label: str = "") -> TauPrior:
    """The prior of ``factor * tau`` (move a heterogeneity prior to another effect scale).

    Half-normal and half-Cauchy scales multiply by ``factor``; the log-normal and log-t priors
    on log tau^2 shift their location by ``2 log(factor)``.
    """
    shift = 2.0 * math.log(factor)
    if isinstance(prior, HalfNormal):
        return HalfNormal(prior.scale * factor)
    if isinstance(prior, HalfCauchy):
        return HalfCauchy(prior.scale * factor)
    if isinstance(prior, LogTTau2):
        return LogTTau2(prior.location + shift, prior.scale, prior.df, setting=label)
    if isinstance(prior, LogNormalTau2):
        return LogNormalTau2(prior.mu + shift, prior.sigma, setting=label)
    raise TypeError(f"cannot rescale a {type(prior).__name__} prior.")


def prior_sensitivity(
    yi: ArrayLike,
    vi: ArrayLike,
    priors: Mapping[str, TauPrior],
    *,
    digits: int = 2,
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Exact Bayesian random-effects fits of one data set under several tau priors (flat mu).

    Returns a table with one row per prior (prior median and 95% upper limit of tau; posterior
    median and 95% central interval of mu; posterior median of tau; the 95% interval of a new
    study's true effect; P(mu < 0) and P(theta_new < 0), i.e. the probability of benefit when
    negative favours the intervention) and the warning texts of the fits, by prior.
    """
    rows = []
    notes: dict[str, list[str]] = {}
    f = fixed(digits)
    for label, prior in priors.items():
        post, caught = quiet(fs.meta.bayes_random_effects, yi, vi, prior)
        if caught:
            notes[label] = caught
        mu_lo, mu_hi = (float(x) for x in post.mu.interval(0.95))
        new_lo, new_hi = (float(x) for x in post.predictive.interval(0.95))
        rows.append(
            {
                "tau prior": label,
                "prior tau median": float(prior.quantile(0.5)),
                "prior tau 97.5%": float(prior.quantile(0.975)),
                "mu median": float(post.mu.median),
                "mu 95% CrI": f"({f(mu_lo)}, {f(mu_hi)})",
                "tau median": float(post.tau.median),
                "theta_new 95%": f"({f(new_lo)}, {f(new_hi)})",
                "P(mu < 0)": float(post.prob("mu", 0.0, "less")),
                "P(theta_new < 0)": float(post.prob("predictive", 0.0, "less")),
                "_mu_low": mu_lo,
                "_mu_high": mu_hi,
                "_new_low": new_lo,
                "_new_high": new_hi,
            }
        )
    return pd.DataFrame(rows), notes


def prob_text(p: float) -> str:
    """A probability for text: 4 decimals, or '> 0.9999' / '< 0.0001' at the extremes."""
    if p > 0.9999:
        return "> 0.9999"
    if p < 0.0001:
        return "< 0.0001"
    return f"{p:.4f}"


def public(table: pd.DataFrame) -> pd.DataFrame:
    """Drop the helper columns (names starting with ``_``) before a table goes into a report."""
    return table.loc[:, [c for c in table.columns if not str(c).startswith("_")]]


# -- citations ---------------------------------------------------------------------------------
def citations(meta: Mapping[str, Any], ids: Sequence[str], key: str = "reviews") -> list[str]:
    """Full references of the ``[[reviews]]`` (or ``[[trials]]``) entries named in ``ids``."""
    id_field = "id" if key == "reviews" else "study"
    out = []
    for entry in meta.get(key, []):
        if entry.get(id_field) not in ids:
            continue
        ref = str(entry["citation"])
        for field, prefix in (("doi", "doi:"), ("pmid", "PMID "), ("pmcid", "")):
            if field in entry and str(entry[field]) not in ref:
                ref += f" {prefix}{entry[field]}"
                break
        out.append(ref)
    return out
