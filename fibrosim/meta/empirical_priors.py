"""Empirical heterogeneity priors from published tables: Turner et al. (2015), Rhodes et al. (2015).

The tables are data (``studies/priors/turner2015.csv`` and ``rhodes2015.csv``, with their
citation and transcription notes in the ``.toml`` beside them), read through
:func:`fibrosim.studies.load`; this module only looks up a setting and returns the prior object
of :mod:`fibrosim.meta.priors`.
"""

from __future__ import annotations

from fibrosim.meta.priors import LogNormalTau2, LogTTau2

__all__ = ["rhodes2015", "turner2015"]


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
