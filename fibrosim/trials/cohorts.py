"""Drug-resistant fibromyalgia cohort model: baseline pain, placebo change, dropout, NRS scale.

The defaults live in ``studies/design/cohort_defaults.csv`` (value, unit, verification code and
source per parameter) with ``cohort_defaults.toml`` beside it (citations, derivations, notes);
:func:`load_cohort_defaults` reads them and :func:`default_cohort` builds the model.

Model (pain on a 0-10 NRS, one follow-up visit).  Enrolled patients have baseline ``X`` with mean
``baseline_mean`` and SD ``baseline_sd``; when ``inclusion_threshold`` is set, ``X`` follows a
normal truncated below at the threshold whose latent mean and SD are solved so that the truncated
distribution has exactly those moments.  The follow-up value is
``Y = baseline_mean + placebo_change + effect + beta (X - baseline_mean) + e`` with
``beta = rho s1 / s0`` and ``e ~ N(0, s1^2 (1 - rho^2))``, where the follow-up SD ``s1`` follows
from the baseline SD ``s0``, the correlation ``rho`` and the SD of change by the variance sum law.
Observed scores are rounded to ``scale_step`` and clipped to ``[scale_min, scale_max]``.

Drug resistance has no consensus definition (Vidal et al. 2021), so it enters as an explicit,
tunable assumption (:class:`DrugResistance`): with ``k`` failed drugs the treatment effect is
multiplied by ``effect_retention ** k`` and the placebo change by ``placebo_retention ** k``.
The defaults (retention 1) change nothing; they are assumptions, not evidence.

References
----------
Clifton L, Clifton DA. The correlation between baseline score and post-intervention score, and
its implications for statistical analysis. Trials 2019;20:43. doi:10.1186/s13063-018-3108-3.
Vidal LF, et al. Refractory fibromyalgia. Clin Rheumatol 2021;40(9). doi:10.1007/s10067-021-05818-0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import optimize, special

from fibrosim._checks import check_in_interval, check_integer, check_positive

if TYPE_CHECKING:
    from fibrosim.trials.designs import FactorialDesign, MultiArmDesign, ParallelDesign

__all__ = [
    "FM_ENDPOINTS",
    "CohortModel",
    "DrugResistance",
    "Endpoints",
    "default_cohort",
    "load_cohort_defaults",
]

_DEFAULTS_NAME = "cohort_defaults"


def load_cohort_defaults() -> dict[str, dict[str, Any]]:
    """Rows of ``cohort_defaults.csv`` keyed by parameter, plus the TOML metadata under ``"_meta"``.

    The table goes through :func:`fibrosim.studies.load`, so it is validated (types, codes,
    duplicate parameters) like every other dataset before any default is used.

    Returns
    -------
    dict
        ``{parameter: {"value": float, "unit", "code", "source", "doi", "location", "note"}}``
        and ``"_meta"``: the parsed ``cohort_defaults.toml`` (citations, derivations, notes).
    """
    from fibrosim.studies import load

    table = load(_DEFAULTS_NAME)
    rows: dict[str, dict[str, Any]] = {}
    for record in table.drop(columns=["dataset"]).to_dict(orient="records"):
        entry: dict[str, Any] = {
            str(k): (None if isinstance(v, float) and v != v else v) for k, v in record.items()
        }
        entry["value"] = float(record["value"])
        rows[str(record["parameter"])] = entry
    rows["_meta"] = dict(table.attrs["metadata"])
    return rows


@dataclass(frozen=True, slots=True)
class DrugResistance:
    """Explicit, tunable rule for drug resistance (an assumption: no consensus definition exists).

    Parameters
    ----------
    n_failed_drugs : int, default 2
        Approved drugs (duloxetine, pregabalin, milnacipran, ...) the cohort has failed.
    effect_retention : float, default 1
        Fraction of the treatment effect kept per failed drug (> 0).
    placebo_retention : float, default 1
        Fraction of the placebo / sham change kept per failed drug (> 0).

    Notes
    -----
    Effect multiplier ``effect_retention ** n_failed_drugs``; placebo multiplier
    ``placebo_retention ** n_failed_drugs``.  Defaults come from ``cohort_defaults.csv`` rows
    coded "assumption".
    """

    n_failed_drugs: int = 2
    effect_retention: float = 1.0
    placebo_retention: float = 1.0

    def __post_init__(self) -> None:
        k = int(check_integer("n_failed_drugs", self.n_failed_drugs, minimum=0))
        object.__setattr__(self, "n_failed_drugs", k)
        for name in ("effect_retention", "placebo_retention"):
            object.__setattr__(self, name, float(check_positive(name, getattr(self, name))))

    @property
    def effect_multiplier(self) -> float:
        """Factor applied to the treatment effect."""
        return float(self.effect_retention**self.n_failed_drugs)

    @property
    def placebo_multiplier(self) -> float:
        """Factor applied to the placebo / sham change."""
        return float(self.placebo_retention**self.n_failed_drugs)


def _truncated_moments(mu: float, sigma: float, a: float) -> tuple[float, float]:
    alpha = (a - mu) / sigma
    lam = math.exp(-0.5 * alpha * alpha) / math.sqrt(2 * math.pi) / special.ndtr(-alpha)
    mean = mu + sigma * lam
    var = sigma * sigma * (1 + alpha * lam - lam * lam)
    return mean, math.sqrt(max(var, 0.0))


def _latent_normal(mean: float, sd: float, threshold: float) -> tuple[float, float]:
    """Latent (mu, sigma) whose normal truncated below at ``threshold`` has this mean and SD."""

    def resid(p: np.ndarray) -> list[float]:
        m, s = _truncated_moments(float(p[0]), math.exp(float(p[1])), threshold)
        return [m - mean, s - sd]

    sol = optimize.least_squares(resid, [mean, math.log(sd)], xtol=1e-14, ftol=1e-14, gtol=1e-14)
    mu, sigma = float(sol.x[0]), math.exp(float(sol.x[1]))
    m, s = _truncated_moments(mu, sigma, threshold)
    if abs(m - mean) > 1e-8 or abs(s - sd) > 1e-8:
        raise ValueError(
            f"no normal truncated at `inclusion_threshold`={threshold} has mean {mean} and SD {sd}."
        )
    return mu, sigma


@dataclass(frozen=True, slots=True)
class CohortModel:
    """Cohort of patients with (drug-resistant) fibromyalgia, pain on a 0-10 NRS.

    Parameters
    ----------
    baseline_mean, baseline_sd : float
        Mean and SD of baseline pain among enrolled patients.
    baseline_corr : float
        Correlation of baseline and follow-up pain within an arm, in (-1, 1).
    sd_change : float
        SD of the change from baseline within an arm (> 0).
    placebo_change : float
        Mean change from baseline on placebo / sham, before the drug-resistance rule.
    inclusion_threshold : float or None
        Enrolment requires baseline pain >= threshold; ``None`` for an untruncated normal.
    dropout : float
        Default probability of having no follow-up value.
    scale_min, scale_max : float or None
        Bounds of the scale (scores are clipped); ``None`` for unbounded.
    scale_step : float or None
        Scores are rounded to multiples of this; ``None`` for continuous scores.
    drug_resistance : DrugResistance

    Examples
    --------
    >>> from fibrosim.trials.cohorts import default_cohort
    >>> cohort = default_cohort()
    >>> round(cohort.followup_sd, 3)
    2.95
    """

    baseline_mean: float
    baseline_sd: float
    baseline_corr: float
    sd_change: float
    placebo_change: float
    inclusion_threshold: float | None = None
    dropout: float = 0.0
    scale_min: float | None = None
    scale_max: float | None = None
    scale_step: float | None = None
    drug_resistance: DrugResistance = field(default_factory=DrugResistance)
    latent_baseline: tuple[float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(
            self,
            "baseline_mean",
            float(check_in_interval("baseline_mean", self.baseline_mean, -1e12, 1e12)),
        )
        s(self, "baseline_sd", float(check_positive("baseline_sd", self.baseline_sd)))
        corr = check_in_interval("baseline_corr", self.baseline_corr, -1, 1, closed="neither")
        s(self, "baseline_corr", float(corr))
        s(self, "sd_change", float(check_positive("sd_change", self.sd_change)))
        s(
            self,
            "placebo_change",
            float(check_in_interval("placebo_change", self.placebo_change, -1e12, 1e12)),
        )
        s(self, "dropout", float(check_in_interval("dropout", self.dropout, 0, 1, closed="left")))
        for name in ("inclusion_threshold", "scale_min", "scale_max", "scale_step"):
            value = getattr(self, name)
            if value is not None:
                arr = check_in_interval(name, value, -1e12, 1e12)
                s(self, name, float(arr))
        if self.scale_step is not None and self.scale_step <= 0:
            raise ValueError(f"`scale_step` must be > 0 or None; got {self.scale_step}.")
        if (
            self.scale_min is not None
            and self.scale_max is not None
            and self.scale_min >= self.scale_max
        ):
            raise ValueError(
                f"`scale_min` must be below `scale_max`; got {self.scale_min} and {self.scale_max}."
            )
        if not isinstance(self.drug_resistance, DrugResistance):
            raise TypeError(
                f"`drug_resistance` must be a DrugResistance; got {self.drug_resistance!r}."
            )
        s0, rho, sd_change = self.baseline_sd, self.baseline_corr, self.sd_change
        disc = s0 * s0 * (rho * rho - 1) + sd_change * sd_change
        if disc <= 0:
            raise ValueError(
                f"`sd_change`={sd_change} is too small for `baseline_sd`={s0} and "
                f"`baseline_corr`={rho}: the variance sum law needs sd_change^2 > "
                f"baseline_sd^2 (1 - baseline_corr^2) = {s0 * s0 * (1 - rho * rho):.4g}."
            )
        if self.inclusion_threshold is None:
            latent = (self.baseline_mean, self.baseline_sd)
        else:
            gap = self.baseline_mean - self.inclusion_threshold
            if gap <= 0 or self.baseline_sd >= gap:
                raise ValueError(
                    "a normal truncated at `inclusion_threshold` needs baseline_sd < "
                    f"baseline_mean - inclusion_threshold; got baseline_mean={self.baseline_mean}, "
                    f"baseline_sd={self.baseline_sd}, "
                    f"inclusion_threshold={self.inclusion_threshold}."
                )
            latent = _latent_normal(self.baseline_mean, self.baseline_sd, self.inclusion_threshold)
        s(self, "latent_baseline", latent)

    # --- derived quantities -------------------------------------------------------------
    @property
    def followup_sd(self) -> float:
        """Follow-up SD ``s1 = rho s0 + sqrt(s0^2 (rho^2 - 1) + sd_change^2)`` (sum law)."""
        s0, rho = self.baseline_sd, self.baseline_corr
        return rho * s0 + math.sqrt(s0 * s0 * (rho * rho - 1) + self.sd_change**2)

    @property
    def control_change(self) -> float:
        """Mean change on placebo / sham after the drug-resistance rule."""
        return self.placebo_change * self.drug_resistance.placebo_multiplier

    @property
    def is_continuous(self) -> bool:
        """True when scores are unbounded, unrounded and untruncated (an exact normal model)."""
        return (
            self.inclusion_threshold is None
            and self.scale_step is None
            and self.scale_min is None
            and self.scale_max is None
        )

    def continuous(self) -> CohortModel:
        """The same cohort without inclusion truncation, rounding or bounds (normal model)."""
        return replace(
            self, inclusion_threshold=None, scale_min=None, scale_max=None, scale_step=None
        )

    # --- responders ---------------------------------------------------------------------
    def responder_probability(self, effect: float = 0.0, threshold: float = 0.3) -> float:
        """P(pain falls by at least ``threshold`` x baseline) for an arm shifted by ``effect``.

        Computed on the latent continuous scale (no rounding or clipping): exactly by the normal
        CDF without truncation, by 200-point Gauss-Legendre quadrature over the truncated
        baseline otherwise.
        """
        m, s0, rho = self.baseline_mean, self.baseline_sd, self.baseline_corr
        s1 = self.followup_sd
        mu_y = m + self.control_change + effect
        keep = 1.0 - threshold
        if self.inclusion_threshold is None:
            mean_w = mu_y - keep * m
            var_w = s1 * s1 + keep * keep * s0 * s0 - 2 * keep * rho * s0 * s1
            return float(special.ndtr(-mean_w / math.sqrt(var_w)))
        mu_l, sd_l = self.latent_baseline
        a = self.inclusion_threshold
        hi = mu_l + 12 * sd_l
        nodes, weights = np.polynomial.legendre.leggauss(200)
        x = 0.5 * (hi - a) * nodes + 0.5 * (hi + a)
        dens = np.exp(-0.5 * ((x - mu_l) / sd_l) ** 2) / (sd_l * math.sqrt(2 * math.pi))
        dens /= special.ndtr(-(a - mu_l) / sd_l)
        beta = rho * s1 / s0
        sd_e = s1 * math.sqrt(1 - rho * rho)
        cond = special.ndtr((keep * x - mu_y - beta * (x - m)) / sd_e)
        return float(0.5 * (hi - a) * np.sum(weights * dens * cond))

    def placebo_responder_rates(
        self, thresholds: tuple[float, ...] = (0.3, 0.5)
    ) -> dict[float, float]:
        """Implied share of placebo patients reaching each relief threshold (latent scale)."""
        return {float(t): self.responder_probability(0.0, t) for t in thresholds}

    def calibrate_placebo_change(
        self, target: float = 0.308, threshold: float = 0.3
    ) -> CohortModel:
        """Copy of the cohort whose placebo change gives ``target`` responders at ``threshold``.

        ``placebo_change`` is solved (Brent) so that :meth:`responder_probability` equals
        ``target`` after the drug-resistance rule; the default target is the 30.8 % of placebo
        patients with >= 30 % relief (Hauser et al. 2011).
        """
        check_in_interval("target", target, 0, 1, closed="neither")
        check_in_interval("threshold", threshold, 0, 1, closed="neither")
        mult = self.drug_resistance.placebo_multiplier

        def f(change: float) -> float:
            return (
                replace(self, placebo_change=change / mult).responder_probability(0, threshold)
                - target
            )

        span = 20 * self.followup_sd
        change = optimize.brentq(f, -span, span, xtol=1e-12)
        return replace(self, placebo_change=change / mult)

    # --- designs ------------------------------------------------------------------------
    def _design_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sd": self.followup_sd,
            "baseline_corr": self.baseline_corr,
            "dropout": self.dropout,
        }
        out.update(kwargs)
        out["cohort"] = self
        return out

    def parallel(self, n_per_arm: int, effect: float, **kwargs: Any) -> ParallelDesign:
        """Two-arm design in this cohort; ``effect`` is scaled by the drug-resistance rule."""
        from fibrosim.trials.designs import ParallelDesign

        eff = float(effect) * self.drug_resistance.effect_multiplier
        return ParallelDesign(n_per_arm, eff, **self._design_kwargs(kwargs))

    def multi_arm(self, n_per_arm: int, effects: Any, **kwargs: Any) -> MultiArmDesign:
        """k-arm-vs-control design in this cohort (effects scaled by the drug-resistance rule)."""
        from fibrosim.trials.designs import MultiArmDesign

        mult = self.drug_resistance.effect_multiplier
        effs = tuple(float(e) * mult for e in np.atleast_1d(np.asarray(effects, dtype=float)))
        return MultiArmDesign(n_per_arm, effs, **self._design_kwargs(kwargs))

    def factorial(
        self, n_per_cell: int, effect_a: float, effect_b: float, **kwargs: Any
    ) -> FactorialDesign:
        """2x2 factorial design in this cohort (effects scaled by the drug-resistance rule)."""
        from fibrosim.trials.designs import FactorialDesign

        mult = self.drug_resistance.effect_multiplier
        if "interaction" in kwargs:
            kwargs["interaction"] = float(kwargs["interaction"]) * mult
        return FactorialDesign(
            n_per_cell,
            float(effect_a) * mult,
            float(effect_b) * mult,
            **self._design_kwargs(kwargs),
        )


#: The endpoints fibromyalgia trials usually report (lower is better for all of them).
FM_ENDPOINTS = ("pain", "fatigue", "sleep", "depression", "FIQR")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Correlated continuous endpoints of one trial, e.g. pain, fatigue, sleep, depression, FIQR.

    The evidence file gives no correlation between these endpoints, so ``corr`` has no default:
    it must come from the user (and be reported as an assumption).

    Parameters
    ----------
    names : sequence of str
        Endpoint names (distinct), e.g. :data:`FM_ENDPOINTS`.
    effects : sequence of float
        Treatment minus control per endpoint, on each endpoint's scale.
    sds : sequence of float
        Within-arm SD per endpoint (> 0).
    corr : array-like, (m, m)
        Within-arm correlation matrix: symmetric, unit diagonal, positive definite.
    lower_is_better : bool or sequence of bool, default True
        Direction of benefit per endpoint.
    """

    names: tuple[str, ...]
    effects: tuple[float, ...]
    sds: tuple[float, ...]
    corr: Any
    lower_is_better: Any = True

    def __post_init__(self) -> None:
        s = object.__setattr__
        names = tuple(self.names)
        if not names or not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
            raise ValueError(f"`names` must be distinct strings; got {self.names!r}.")
        m = len(names)
        effects = np.atleast_1d(np.asarray(check_in_interval("effects", self.effects, -1e12, 1e12)))
        sds = np.atleast_1d(check_positive("sds", self.sds))
        for label, arr in (("effects", effects), ("sds", sds)):
            if arr.shape != (m,):
                raise ValueError(f"`{label}` must have one entry per name ({m}); got {arr.size}.")
        corr = np.asarray(check_in_interval("corr", self.corr, -1, 1), dtype=np.float64)
        if corr.shape != (m, m):
            raise ValueError(f"`corr` must be a {m} x {m} matrix; got shape {corr.shape}.")
        if not np.allclose(corr, corr.T, atol=1e-12) or not np.allclose(np.diag(corr), 1.0):
            raise ValueError("`corr` must be symmetric with a unit diagonal.")
        if np.linalg.eigvalsh(corr).min() <= 1e-10:
            raise ValueError(
                "`corr` must be positive definite; smallest eigenvalue "
                f"{np.linalg.eigvalsh(corr).min():.3g}."
            )
        lib = self.lower_is_better
        lib_t = (lib,) * m if isinstance(lib, (bool, np.bool_)) else tuple(lib)
        if len(lib_t) != m or not all(isinstance(v, (bool, np.bool_)) for v in lib_t):
            raise ValueError(
                f"`lower_is_better` must be True/False or one per endpoint; got {lib!r}."
            )
        corr.setflags(write=False)
        s(self, "names", names)
        s(self, "effects", tuple(float(v) for v in effects))
        s(self, "sds", tuple(float(v) for v in sds))
        s(self, "corr", corr)
        s(self, "lower_is_better", tuple(bool(v) for v in lib_t))

    @property
    def covariance(self) -> np.ndarray:
        """Within-arm covariance ``D R D``."""
        sd = np.asarray(self.sds)
        return np.asarray(self.corr * np.outer(sd, sd))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Endpoints):
            return NotImplemented
        return (
            self.names == other.names
            and self.effects == other.effects
            and self.sds == other.sds
            and bool(np.array_equal(self.corr, other.corr))
            and self.lower_is_better == other.lower_is_better
        )

    def __hash__(self) -> int:
        return hash((self.names, self.effects, self.sds, self.corr.tobytes()))


def default_cohort(**overrides: Any) -> CohortModel:
    """The cohort model with every default read from ``studies/design/cohort_defaults.csv``.

    Parameters
    ----------
    **overrides
        Any :class:`CohortModel` field, e.g. ``dropout=0.4`` or
        ``drug_resistance=DrugResistance(3, effect_retention=0.8)``.

    Examples
    --------
    >>> from fibrosim.trials.cohorts import default_cohort
    >>> default_cohort().inclusion_threshold
    5.0
    """
    rows = load_cohort_defaults()

    def v(name: str) -> float:
        return float(rows[name]["value"])

    kwargs: dict[str, Any] = {
        "baseline_mean": v("baseline_pain_mean"),
        "baseline_sd": v("baseline_pain_sd"),
        "baseline_corr": v("baseline_followup_corr"),
        "sd_change": v("sd_change"),
        "placebo_change": v("placebo_change_mean"),
        "inclusion_threshold": v("inclusion_threshold"),
        "dropout": v("dropout"),
        "scale_min": v("scale_min"),
        "scale_max": v("scale_max"),
        "scale_step": v("scale_step"),
        "drug_resistance": DrugResistance(
            int(v("n_failed_drugs")),
            v("effect_retention_per_failed_drug"),
            v("placebo_retention_per_failed_drug"),
        ),
    }
    kwargs.update(overrides)
    return CohortModel(**kwargs)
