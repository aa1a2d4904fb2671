"""Empirical heterogeneity priors on log τ²: Turner et al. (2015), Rhodes et al. (2015).

The published predictive distributions are stated on log τ²: log-normal (Turner, binary
outcomes) and log-t with 5 df (Rhodes, continuous outcomes).  :class:`LogNormalTau2` and
:class:`LogTTau2` convert them to τ with the Jacobian: if log τ² = 2 log τ has density g, then
p(τ) = g(2 log τ) · 2 / τ.  The tables are data (``studies/priors/turner2015.csv`` and
``rhodes2015.csv``, with their citation and transcription notes in the ``.toml`` beside them),
read through :func:`fibrosim.studies.load`; :func:`turner2015` and :func:`rhodes2015` look up a
setting and return the prior.  All are re-exported by :mod:`fibrosim.meta.priors`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from scipy import special, stats

from fibrosim.meta._tau_prior_base import FloatArray, TauPrior, _scalar

__all__ = ["LogNormalTau2", "LogTTau2", "rhodes2015", "turner2015"]


@dataclass(frozen=True, slots=True, repr=False)
class LogNormalTau2(TauPrior):
    """Log-normal prior on τ²: log τ² ~ N(``mu``, ``sigma``²) (Turner et al. 2015).

    On τ this is log-normal with meanlog ``mu``/2 and sdlog ``sigma``/2; the density on τ is
    g(2 log τ)·2/τ with g the normal density of log τ².

    Parameters
    ----------
    mu : float
        Mean of log τ².
    sigma : float
        > 0 standard deviation of log τ².
    setting : str
        Label of the table cell (set by :func:`turner2015`).
    """

    mu: float = -2.56
    sigma: float = 1.74
    setting: str = field(default="", compare=False)
    reference: ClassVar[str] = (
        "Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT. Predictive distributions for "
        "between-study heterogeneity and simple methods for their application in Bayesian "
        "meta-analysis. Stat Med 2015;34(6):984-998. doi:10.1002/sim.6381"
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "mu", _scalar("mu", self.mu, positive=False))
        object.__setattr__(self, "sigma", _scalar("sigma", self.sigma))

    @property
    def typical_scale(self) -> float:
        """Prior median of τ, exp(mu/2)."""
        return math.exp(self.mu / 2)

    def _logpdf_pos(self, tau: FloatArray) -> FloatArray:
        z = (2.0 * np.log(tau) - self.mu) / self.sigma
        return np.asarray(
            -0.5 * z * z
            - 0.5 * math.log(2 * math.pi)
            - math.log(self.sigma)
            + math.log(2.0)
            - np.log(tau)
        )

    def _logpdf_zero(self) -> float:
        return -math.inf

    def _cdf_pos(self, tau: FloatArray) -> FloatArray:
        return np.asarray(special.ndtr((2.0 * np.log(tau) - self.mu) / self.sigma))

    def _quantile(self, q: FloatArray) -> FloatArray:
        with np.errstate(over="ignore"):
            return np.asarray(np.exp(0.5 * (self.mu + self.sigma * special.ndtri(q))))

    def __repr__(self) -> str:
        label = f", setting={self.setting!r}" if self.setting else ""
        return f"LogNormalTau2(mu={self.mu:g}, sigma={self.sigma:g}{label})"


@dataclass(frozen=True, slots=True, repr=False)
class LogTTau2(TauPrior):
    """Log-Student-t prior on τ²: log τ² ~ t_df(``location``, ``scale``) (Rhodes et al. 2015).

    Rhodes et al. use df = 5.  The density on τ is g(2 log τ)·2/τ with g the scaled t density of
    log τ²; it is unbounded (but integrable) at τ = 0 and decays like τ⁻¹(log τ)^-(df+1).

    Parameters
    ----------
    location : float
        Location of log τ².
    scale : float
        > 0 scale of log τ².
    df : float
        > 0 degrees of freedom (default 5).
    setting : str
        Label of the table cell (set by :func:`rhodes2015`).
    """

    location: float = -3.44
    scale: float = 2.59
    df: float = 5.0
    setting: str = field(default="", compare=False)
    reference: ClassVar[str] = (
        "Rhodes KM, Turner RM, Higgins JPT. Predictive distributions were developed for the "
        "extent of heterogeneity in meta-analyses of continuous outcome data. J Clin Epidemiol "
        "2015;68(1):52-60. doi:10.1016/j.jclinepi.2014.08.012"
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "location", _scalar("location", self.location, positive=False))
        object.__setattr__(self, "scale", _scalar("scale", self.scale))
        object.__setattr__(self, "df", _scalar("df", self.df))

    @property
    def tail_exponent(self) -> float:
        """1 (with an extra (log τ)^-(df+1) factor)."""
        return 1.0

    @property
    def tail_log_power(self) -> float:
        """The degrees of freedom + 1."""
        return self.df + 1.0

    @property
    def typical_scale(self) -> float:
        """Prior median of τ, exp(location/2)."""
        return math.exp(self.location / 2)

    def _logpdf_pos(self, tau: FloatArray) -> FloatArray:
        log_tau = np.log(tau)
        return np.asarray(
            stats.t.logpdf(2.0 * log_tau, self.df, loc=self.location, scale=self.scale)
            + math.log(2.0)
            - log_tau
        )

    def _logpdf_zero(self) -> float:
        return math.inf

    def _cdf_pos(self, tau: FloatArray) -> FloatArray:
        return np.asarray(
            stats.t.cdf(2.0 * np.log(tau), self.df, loc=self.location, scale=self.scale)
        )

    def _quantile(self, q: FloatArray) -> FloatArray:
        with np.errstate(over="ignore"):
            return np.asarray(
                np.exp(0.5 * stats.t.ppf(q, self.df, loc=self.location, scale=self.scale))
            )

    def __repr__(self) -> str:
        label = f", setting={self.setting!r}" if self.setting else ""
        return f"LogTTau2(location={self.location:g}, scale={self.scale:g}, df={self.df:g}{label})"


def _table_rows(name: str) -> tuple[dict[str, str | float], ...]:
    """Rows of a prior table from ``studies/priors``, validated by :func:`fibrosim.studies.load`."""
    from fibrosim.studies import load

    records = load(name).drop(columns=["dataset"]).to_dict(orient="records")
    return tuple({str(k): v for k, v in row.items()} for row in records)


def _match(kind: str, value: str, rows: tuple[dict[str, str | float], ...], code: str) -> str:
    """Map a code or a label (case-insensitive) to the code; unknown values list the valid ones."""
    label = f"{code.removesuffix('_type')}_label"
    wanted = value.strip().lower()
    for row in rows:
        if wanted in (str(row[code]).lower(), str(row[label]).lower()):
            return str(row[code])
    valid = sorted({str(r[code]) for r in rows})
    raise ValueError(f"`{kind}` must be one of {valid} (or their labels); got {value!r}.")


def turner2015(outcome: str = "general", comparison: str = "any") -> LogNormalTau2:
    """Turner et al. (2015) log-normal heterogeneity prior for a log odds ratio.

    Parameters
    ----------
    outcome : str
        Outcome type code (e.g. ``"pain"``, ``"withdrawals"``, ``"adverse_events"``) or Turner's
        wording (``"withdrawals / drop-outs"``); ``"general"`` is the marginal setting.
    comparison : str
        ``"pharma_vs_placebo"``, ``"pharma_vs_pharma"``, ``"nonpharma_vs_placebo"``,
        ``"nonpharma_vs_pharma"``, ``"nonpharma_vs_nonpharma"`` (or the table's wording);
        ``"any"`` with the general setting.

    Returns
    -------
    LogNormalTau2
        log τ² ~ N(mu, sigma²), read from ``studies/priors/turner2015.csv``.

    Raises
    ------
    ValueError
        Unknown outcome or comparison (the message lists the valid codes).

    References
    ----------
    Turner RM et al. Stat Med 2015;34(6):984-998, Table IV. doi:10.1002/sim.6381

    Examples
    --------
    >>> turner2015("pain", "nonpharma_vs_placebo")
    LogNormalTau2(mu=-2.05, sigma=1.71, setting='pain / nonpharma_vs_placebo')
    """
    rows = _table_rows("turner2015")
    out = _match("outcome", outcome, rows, "outcome_type")
    comp = _match("comparison", comparison, rows, "comparison")
    for row in rows:
        if row["outcome_type"] == out and row["comparison"] == comp:
            return LogNormalTau2(
                float(row["mu"]),
                float(row["sigma"]),
                setting="general" if out == "general" else f"{out} / {comp}",
            )
    valid = sorted({str(r["comparison"]) for r in rows if r["outcome_type"] == out})
    raise ValueError(
        f"`comparison` for outcome {out!r} must be one of {valid}; got {comparison!r}."
    )


def rhodes2015(outcome: str = "general", comparison: str = "any", area: str = "other") -> LogTTau2:
    """Rhodes et al. (2015) log-t₅ heterogeneity prior for a standardised mean difference.

    Parameters
    ----------
    outcome : str
        Outcome type code (``"physical_health_pain_qol"`` covers pain, function and quality of
        life; ``"mental_health"``, ``"subjective_outcomes"``, ...) or Rhodes' wording;
        ``"general"`` is the general setting (then ``comparison`` and ``area`` are ignored).
    comparison : str
        ``"pharma_vs_placebo"``, ``"pharma_vs_pharma"`` or ``"nonpharma"`` (or the wording).
    area : str
        Medical area: ``"other"`` (default; neither cancer nor respiratory), ``"respiratory"``
        or ``"cancer"``.

    Returns
    -------
    LogTTau2
        log τ² ~ t₅(location, scale), read from ``studies/priors/rhodes2015.csv``.  Note the
        mental-health / non-pharmacological cell (location -3.85) breaks the table's pattern;
        see ``rhodes2015.toml``.

    Raises
    ------
    ValueError
        Unknown outcome, comparison or area (the message lists the valid codes).

    References
    ----------
    Rhodes KM et al. J Clin Epidemiol 2015;68(1):52-60, Tables 3, A.3.1, A.3.2.
    doi:10.1016/j.jclinepi.2014.08.012

    Examples
    --------
    >>> rhodes2015("physical_health_pain_qol", "nonpharma").location
    -3.02
    """
    rows = _table_rows("rhodes2015")
    out = _match("outcome", outcome, rows, "outcome_type")
    if out == "general":
        comp, where = "any", "any"
    else:
        comp = _match("comparison", comparison, rows, "comparison")
        areas = sorted({str(r["area"]) for r in rows if r["area"] != "any"})
        if area.strip().lower() not in areas:
            raise ValueError(f"`area` must be one of {areas}; got {area!r}.")
        where = area.strip().lower()
    for row in rows:
        if row["outcome_type"] == out and row["comparison"] == comp and row["area"] == where:
            setting = "general" if out == "general" else f"{out} / {comp} / {where}"
            return LogTTau2(float(row["location"]), float(row["scale"]), 5.0, setting=setting)
    valid = sorted({str(r["comparison"]) for r in rows if r["outcome_type"] == out})
    raise ValueError(
        f"`comparison` for outcome {out!r} must be one of {valid}; got {comparison!r}."
    )
