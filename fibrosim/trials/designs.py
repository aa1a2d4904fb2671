"""Trial designs for simulation: parallel, multi-arm, factorial, crossover, group-sequential.

Every design is a frozen, slotted dataclass checked once in ``__post_init__``; an invalid field
raises a ``ValueError`` (or ``TypeError``) naming the field, the value and what is allowed.  A
design says *what* is compared and *how it is analysed*; :func:`fibrosim.trials.simulation.simulate`
turns it into operating characteristics.

Signs follow fibrosim's convention: an effect is treatment minus control on the outcome's own
scale, and for pain (``lower_is_better=True``) a benefit is negative.  One-sided tests look in
the benefit direction; two-sided tests reject in either direction (as closed-form power does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from fibrosim._checks import (
    as_float_array,
    check_choice,
    check_in_interval,
    check_integer,
    check_positive,
    check_sided,
)
from fibrosim.trials.cohorts import CohortModel, Endpoints

__all__ = [
    "ANALYSES",
    "DROPOUT_MECHANISMS",
    "MISSING_ANALYSES",
    "MULTIPLICITY",
    "CrossoverDesign",
    "FactorialDesign",
    "GroupSequentialDesign",
    "MultiArmDesign",
    "MultiEndpointDesign",
    "ParallelDesign",
]

#: Analyses of a continuous (or responder) endpoint.  "ttest" is Welch's t test, "student" the
#: pooled-variance t test, "z" a known-variance z test, "ancova" OLS of follow-up on baseline and
#: arm with a t test on the arm coefficient, "responder" the two-proportion z test, "fisher"
#: Fisher's exact test of the responder counts (two-arm comparisons only).
ANALYSES = ("ttest", "student", "z", "ancova", "responder", "fisher")
#: Analyses of responder counts (need a cohort to define a responder).
RESPONDER_ANALYSES = ("responder", "fisher")
#: Multiplicity procedures applied across the comparisons of one design.
MULTIPLICITY = ("none", "bonferroni", "holm", "hochberg")
#: Dropout mechanisms of the patient-level engine.
DROPOUT_MECHANISMS = ("MCAR", "MAR", "MNAR")
#: How missing follow-up values are handled: complete case, last / baseline observation carried
#: forward, proper multiple imputation with Rubin's rules.
MISSING_ANALYSES = ("cc", "locf", "bocf", "mi")
_SUCCESS = ("any", "all")


def _int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a whole number; got {value!r}.")
    return int(check_integer(name, value, minimum=minimum))


def _float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a number; got {value!r}.")
    arr = as_float_array(name, value)
    if arr.ndim != 0:
        raise ValueError(f"`{name}` must be a scalar; got an array of shape {arr.shape}.")
    return float(arr)


def _floats(name: str, value: Any, length: int | None = None) -> tuple[float, ...]:
    arr = np.atleast_1d(as_float_array(name, value))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`{name}` must be a non-empty 1-D sequence; got {value!r}.")
    if length is not None and arr.size != length:
        raise ValueError(f"`{name}` must have {length} entries; got {arr.size}.")
    return tuple(float(v) for v in arr)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False; got {value!r}.")
    return bool(value)


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _check_common(d: Any, *, allow_multiplicity: bool) -> None:
    """Fields shared by the parallel-group designs (two-arm, multi-arm, factorial)."""
    _set(d, "sd", float(check_positive("sd", _float("sd", d.sd))))
    corr = check_in_interval(
        "baseline_corr", _float("baseline_corr", d.baseline_corr), -1, 1, closed="neither"
    )
    _set(d, "baseline_corr", float(corr))
    check_choice("analysis", d.analysis, ANALYSES)
    alpha = check_in_interval("alpha", _float("alpha", d.alpha), 0, 1, closed="neither")
    _set(d, "alpha", float(alpha))
    _set(d, "sided", check_sided("sided", d.sided))
    dropout = check_in_interval("dropout", _float("dropout", d.dropout), 0, 1, closed="left")
    _set(d, "dropout", float(dropout))
    check_choice("dropout_mechanism", d.dropout_mechanism, DROPOUT_MECHANISMS)
    _set(d, "dropout_slope", _float("dropout_slope", d.dropout_slope))
    check_choice("missing", d.missing, MISSING_ANALYSES)
    _set(d, "n_imputations", _int("n_imputations", d.n_imputations, 2))
    thr = check_in_interval(
        "responder_threshold",
        _float("responder_threshold", d.responder_threshold),
        0,
        1,
        closed="neither",
    )
    _set(d, "responder_threshold", float(thr))
    _set(d, "lower_is_better", _bool("lower_is_better", d.lower_is_better))
    if d.cohort is not None and not isinstance(d.cohort, CohortModel):
        raise TypeError(f"`cohort` must be a CohortModel or None; got {d.cohort!r}.")
    if d.analysis in RESPONDER_ANALYSES and d.cohort is None:
        raise ValueError(
            f"`analysis` {d.analysis!r} needs a `cohort` (baseline and placebo levels define "
            "who responds); got cohort=None."
        )
    if d.analysis in RESPONDER_ANALYSES and d.missing == "mi":
        raise ValueError(
            f"`missing` 'mi' is for continuous analyses; with analysis={d.analysis!r} use "
            "'cc', 'bocf' or 'locf'."
        )
    if allow_multiplicity:
        check_choice("multiplicity", d.multiplicity, MULTIPLICITY)
        check_choice("success", d.success, _SUCCESS)


@dataclass(frozen=True, slots=True)
class ParallelDesign:
    """Two-arm parallel-group trial: treatment vs control (sham / placebo), 1:1.

    Parameters
    ----------
    n_per_arm : int
        Patients randomised per arm (>= 2).
    effect : float
        True mean difference of the follow-up outcome, treatment minus control, on the outcome's
        scale (negative = benefit when ``lower_is_better``).
    sd : float
        Within-arm SD of the follow-up outcome (> 0).
    baseline_corr : float, default 0
        Correlation of baseline and follow-up within an arm, in (-1, 1).  Used by ANCOVA.
    analysis : {"ttest", "student", "z", "ancova", "responder", "fisher"}, default "ttest"
        "ttest" is Welch's t test on the follow-up values.
    alpha : float, default 0.05
        Significance level (two-sided when ``sided=2``).
    sided : {1, 2}, default 2
    dropout : float, default 0
        Probability that a patient has no follow-up value, in [0, 1).
    dropout_mechanism : {"MCAR", "MAR", "MNAR"}, default "MCAR"
        MAR: the log-odds of dropout rise by ``dropout_slope`` per SD of baseline; MNAR: per SD
        of the (unobserved) follow-up value.  The intercept keeps the average rate at ``dropout``.
    dropout_slope : float, default 0
    missing : {"cc", "locf", "bocf", "mi"}, default "cc"
        Complete case, last observation (interim visit) / baseline carried forward, or proper
        multiple imputation (``n_imputations`` draws, Rubin's rules).
    n_imputations : int, default 20
    responder_threshold : float, default 0.3
        A responder reduces the score by at least this fraction of baseline (0.3 or 0.5).
    lower_is_better : bool, default True
    cohort : CohortModel or None
        Levels of the outcome (baseline distribution, placebo change, NRS bounds and rounding).
        ``None`` means an unbounded normal outcome on its own scale; responder analyses need a
        cohort.  :meth:`CohortModel.parallel` fills ``sd`` and ``baseline_corr`` consistently.
    """

    n_per_arm: int
    effect: float
    sd: float
    baseline_corr: float = 0.0
    analysis: str = "ttest"
    alpha: float = 0.05
    sided: int = 2
    dropout: float = 0.0
    dropout_mechanism: str = "MCAR"
    dropout_slope: float = 0.0
    missing: str = "cc"
    n_imputations: int = 20
    responder_threshold: float = 0.3
    lower_is_better: bool = True
    cohort: CohortModel | None = None

    def __post_init__(self) -> None:
        _set(self, "n_per_arm", _int("n_per_arm", self.n_per_arm, 2))
        _set(self, "effect", _float("effect", self.effect))
        _check_common(self, allow_multiplicity=False)

    @property
    def n_total(self) -> int:
        """Patients randomised in both arms."""
        return 2 * self.n_per_arm


@dataclass(frozen=True, slots=True)
class MultiArmDesign:
    """k active arms against one shared control (sham), e.g. tDCS vs exercise vs sham.

    Parameters
    ----------
    n_per_arm : int
        Patients per active arm (>= 2).
    effects : sequence of float
        True mean difference of each active arm vs control.
    sd, baseline_corr, analysis, alpha, sided, dropout, ... :
        As in :class:`ParallelDesign`.
    n_control : int or None
        Control-arm size; ``None`` means ``n_per_arm``.
    multiplicity : {"none", "bonferroni", "holm", "hochberg"}, default "holm"
        Applied across the k comparisons with control (familywise ``alpha``).
    success : {"any", "all"}, default "any"
        The trial succeeds when any (disjunctive power) or all (conjunctive power) of the
        comparisons are rejected.
    arm_names : sequence of str or None
        Names of the active arms (default "arm1", "arm2", ...).
    """

    n_per_arm: int
    effects: tuple[float, ...]
    sd: float
    baseline_corr: float = 0.0
    analysis: str = "ttest"
    alpha: float = 0.05
    sided: int = 2
    multiplicity: str = "holm"
    success: str = "any"
    n_control: int | None = None
    arm_names: tuple[str, ...] | None = None
    dropout: float = 0.0
    dropout_mechanism: str = "MCAR"
    dropout_slope: float = 0.0
    missing: str = "cc"
    n_imputations: int = 20
    responder_threshold: float = 0.3
    lower_is_better: bool = True
    cohort: CohortModel | None = None

    def __post_init__(self) -> None:
        _set(self, "n_per_arm", _int("n_per_arm", self.n_per_arm, 2))
        _set(self, "effects", _floats("effects", self.effects))
        n_control = self.n_per_arm if self.n_control is None else self.n_control
        _set(self, "n_control", _int("n_control", n_control, 2))
        names = self.arm_names
        if names is None:
            names = tuple(f"arm{i + 1}" for i in range(len(self.effects)))
        names = tuple(names)
        if len(names) != len(self.effects) or not all(isinstance(s, str) for s in names):
            raise ValueError(
                f"`arm_names` must be {len(self.effects)} strings, one per effect; got {names!r}."
            )
        if len(set(names)) != len(names) or "control" in names:
            raise ValueError(f"`arm_names` must be distinct and not 'control'; got {names!r}.")
        _set(self, "arm_names", names)
        _check_common(self, allow_multiplicity=True)


@dataclass(frozen=True, slots=True)
class FactorialDesign:
    """2x2 factorial trial, e.g. tDCS (active / sham) x aerobic exercise (yes / no).

    Cell means relative to the (sham, no exercise) cell: A only ``effect_a``, B only
    ``effect_b``, both ``effect_a + effect_b + interaction``.  The comparisons are the main
    effect of A (average over B: ``effect_a + interaction / 2``), the main effect of B
    (``effect_b + interaction / 2``) and the interaction contrast (``interaction``), each a
    t test of a linear contrast of the four cell means.

    Parameters
    ----------
    n_per_cell : int
        Patients per cell (4 cells).
    effect_a, effect_b, interaction : float
    factor_names : (str, str), default ("tDCS", "exercise")
    multiplicity : default "none"
        The factorial's comparisons answer separate questions, so no adjustment by default.
    Other parameters as in :class:`MultiArmDesign`.
    """

    n_per_cell: int
    effect_a: float
    effect_b: float
    sd: float
    interaction: float = 0.0
    baseline_corr: float = 0.0
    analysis: str = "student"
    alpha: float = 0.05
    sided: int = 2
    multiplicity: str = "none"
    success: str = "any"
    factor_names: tuple[str, str] = ("tDCS", "exercise")
    dropout: float = 0.0
    dropout_mechanism: str = "MCAR"
    dropout_slope: float = 0.0
    missing: str = "cc"
    n_imputations: int = 20
    responder_threshold: float = 0.3
    lower_is_better: bool = True
    cohort: CohortModel | None = None

    def __post_init__(self) -> None:
        _set(self, "n_per_cell", _int("n_per_cell", self.n_per_cell, 2))
        for name in ("effect_a", "effect_b", "interaction"):
            _set(self, name, _float(name, getattr(self, name)))
        names = tuple(self.factor_names)
        if len(names) != 2 or not all(isinstance(s, str) for s in names) or names[0] == names[1]:
            raise ValueError(f"`factor_names` must be two distinct strings; got {names!r}.")
        _set(self, "factor_names", names)
        _check_common(self, allow_multiplicity=True)
        if self.analysis == "fisher":
            raise ValueError(
                "`analysis` 'fisher' compares two arms; the factorial contrasts (main effects, "
                "interaction) combine four cells: use 'responder' (Wald z on the proportions)."
            )


@dataclass(frozen=True, slots=True)
class CrossoverDesign:
    """AB/BA two-period crossover (e.g. active vs sham tDCS with a washout).

    Model for patient i in sequence s and period p: ``y = mu + b_i + period_effect * [p == 2]
    + effect * [treatment A] + carryover_residual * [p == 2 and s == AB] + e`` with
    ``e ~ N(0, sd_within^2)``.  The subject effect ``b_i`` cancels in within-patient contrasts.

    Parameters
    ----------
    n_per_sequence : int
        Patients per sequence (AB and BA), >= 2.
    effect : float
        Active (A) minus sham (B).
    sd_within : float
        Within-patient SD (> 0); a period difference has SD ``sqrt(2) * sd_within``.
    period_effect : float, default 0
        Period 2 minus period 1.
    carryover : float, default 0
        Carry-over of A into period 2 of sequence AB without washout (an assumption to explore).
    washout : float, default 0
        Washout length, in the unit of ``carryover_half_life``.
    carryover_half_life : float, default 1
        The carry-over decays as ``carryover * 2 ** (-washout / carryover_half_life)``.  This
        exponential decay is a modelling assumption.
    analysis : {"abba", "paired"}, default "abba"
        "abba": two-sample t test on the period differences (df = 2n - 2; period effect
        removed); "paired": paired t test of A - B ignoring period (df = 2n - 1).
    alpha, sided, dropout, lower_is_better :
        As in :class:`ParallelDesign`; a dropout loses the patient's period 2 (complete case).
    """

    n_per_sequence: int
    effect: float
    sd_within: float
    period_effect: float = 0.0
    carryover: float = 0.0
    washout: float = 0.0
    carryover_half_life: float = 1.0
    analysis: str = "abba"
    alpha: float = 0.05
    sided: int = 2
    dropout: float = 0.0
    lower_is_better: bool = True

    def __post_init__(self) -> None:
        _set(self, "n_per_sequence", _int("n_per_sequence", self.n_per_sequence, 2))
        for name in ("effect", "period_effect", "carryover"):
            _set(self, name, _float(name, getattr(self, name)))
        _set(
            self,
            "sd_within",
            float(check_positive("sd_within", _float("sd_within", self.sd_within))),
        )
        washout = check_positive("washout", _float("washout", self.washout), strict=False)
        _set(self, "washout", float(washout))
        half = check_positive(
            "carryover_half_life", _float("carryover_half_life", self.carryover_half_life)
        )
        _set(self, "carryover_half_life", float(half))
        check_choice("analysis", self.analysis, ("abba", "paired"))
        alpha = check_in_interval("alpha", _float("alpha", self.alpha), 0, 1, closed="neither")
        _set(self, "alpha", float(alpha))
        _set(self, "sided", check_sided("sided", self.sided))
        dropout = check_in_interval("dropout", _float("dropout", self.dropout), 0, 1, closed="left")
        _set(self, "dropout", float(dropout))
        _set(self, "lower_is_better", _bool("lower_is_better", self.lower_is_better))

    @property
    def carryover_residual(self) -> float:
        """Carry-over left after the washout."""
        return float(self.carryover * 2.0 ** (-self.washout / self.carryover_half_life))


@dataclass(frozen=True, slots=True)
class MultiEndpointDesign:
    """Two-arm trial with several correlated continuous endpoints (normal, unbounded).

    Each endpoint is tested on its own (t or z test of the follow-up values); the tests are
    combined by ``multiplicity`` and the trial succeeds when ``success`` is met: "all" for
    co-primary endpoints (every endpoint must win), "any" for multiple primary endpoints.

    Parameters
    ----------
    n_per_arm : int
        Patients per arm (>= number of endpoints + 1, so the sample covariance is full rank).
    endpoints : Endpoints
        Names, effects, SDs and the within-arm correlation matrix.
    analysis : {"ttest", "student", "z"}, default "ttest"
    alpha, sided : as in :class:`ParallelDesign`
    multiplicity : {"none", "bonferroni", "holm", "hochberg"}, default "none"
    success : {"any", "all"}, default "all"
    dropout : float, default 0
        MCAR probability of losing a patient's follow-up (all endpoints); complete case.
    """

    n_per_arm: int
    endpoints: Endpoints
    analysis: str = "ttest"
    alpha: float = 0.05
    sided: int = 2
    multiplicity: str = "none"
    success: str = "all"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.endpoints, Endpoints):
            raise TypeError(f"`endpoints` must be an Endpoints; got {self.endpoints!r}.")
        m = len(self.endpoints.names)
        _set(self, "n_per_arm", _int("n_per_arm", self.n_per_arm, m + 1))
        check_choice("analysis", self.analysis, ("ttest", "student", "z"))
        alpha = check_in_interval("alpha", _float("alpha", self.alpha), 0, 1, closed="neither")
        _set(self, "alpha", float(alpha))
        _set(self, "sided", check_sided("sided", self.sided))
        check_choice("multiplicity", self.multiplicity, MULTIPLICITY)
        check_choice("success", self.success, _SUCCESS)
        dropout = check_in_interval("dropout", _float("dropout", self.dropout), 0, 1, closed="left")
        _set(self, "dropout", float(dropout))


def _bounds_array(bounds: Any) -> tuple[float, ...]:
    """Efficacy z-bounds from an array or from an object with ``.z``/``.upper``/``.efficacy``."""
    value = bounds
    if not isinstance(bounds, (list, tuple, np.ndarray)):
        for attr in ("z", "upper", "efficacy", "bounds", "critical_values"):
            if hasattr(bounds, attr):
                value = getattr(bounds, attr)
                break
        else:
            raise TypeError(
                "`bounds` must be an array of efficacy z-bounds or an object with a `.z` "
                f"(or `.upper`) attribute such as gs_bounds(); got {bounds!r}."
            )
    arr = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`bounds` must be a non-empty 1-D sequence; got {value!r}.")
    bad = np.isnan(arr) | (arr == -np.inf)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(
            "`bounds` must be finite or +inf (no stopping at that look); "
            f"got {arr[i]} at index {i}."
        )
    return tuple(float(v) for v in arr)


@dataclass(frozen=True, slots=True)
class GroupSequentialDesign:
    """A two-arm parallel design analysed at K interim looks with one-sided efficacy bounds.

    The trial stops for efficacy at the first look whose statistic, in the benefit direction and
    mapped to the z scale (``z = Phi^-1(F_t(t))`` for t statistics), exceeds that look's bound.

    Parameters
    ----------
    design : ParallelDesign
        The fixed design at the final look (``analysis`` "z", "ttest", "student" or "ancova";
        ``alpha`` and ``sided`` are replaced by the bounds).
    bounds : array-like or object
        Upper z-bounds, one per look (``inf``: no stopping at that look), or an object exposing
        them as ``.z`` (or ``.upper``), e.g. the result of
        :func:`fibrosim.trials.sequential.gs_bounds`.  Futility (lower) bounds are not simulated.
    timing : sequence of float or None
        Cumulative information fractions of the looks, increasing, last = 1 (default: the
        ``.timing`` of a bounds object, else equal spacing).  Look k analyses the first
        ``round(timing[k] * n_per_arm)`` patients per arm.
    """

    design: ParallelDesign
    bounds: Any
    timing: tuple[float, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.design, ParallelDesign):
            raise TypeError(f"`design` must be a ParallelDesign; got {self.design!r}.")
        if self.design.analysis in RESPONDER_ANALYSES:
            raise ValueError(
                "`design.analysis` must be 'z', 'ttest', 'student' or 'ancova' for a group-"
                f"sequential design; got {self.design.analysis!r}."
            )
        if getattr(self.bounds, "sided", 1) == 2:
            raise ValueError(
                "`bounds` is a two-sided design (sided=2); the simulated group-sequential "
                "design stops for efficacy in the benefit direction only: use one-sided bounds "
                "(gs_bounds(..., sided=1) at half the two-sided alpha)."
            )
        source_timing = getattr(self.bounds, "timing", None)
        bounds = _bounds_array(self.bounds)
        _set(self, "bounds", bounds)
        k = len(bounds)
        timing = self.timing
        if timing is None and source_timing is not None:
            timing = tuple(np.asarray(source_timing, dtype=float).tolist())
        if timing is None:
            timing = tuple((i + 1) / k for i in range(k))
        timing = _floats("timing", timing, length=k)
        t = np.asarray(timing)
        if np.any(t <= 0) or np.any(np.diff(t) <= 0) or not math.isclose(t[-1], 1.0):
            raise ValueError(
                f"`timing` must increase strictly within (0, 1] and end at 1; got {timing!r}."
            )
        n_looks = np.round(t * self.design.n_per_arm).astype(int)
        if np.any(n_looks < 3) or np.any(np.diff(n_looks) <= 0):
            raise ValueError(
                "`timing` gives looks with "
                f"{n_looks.tolist()} patients per arm; each look needs >= 3 and more than the last."
            )
        _set(self, "timing", timing)

    @property
    def n_looks(self) -> tuple[int, ...]:
        """Cumulative patients per arm at each look."""
        n = self.design.n_per_arm
        return tuple(round(t * n) for t in self.timing or ())


def design_fields(design: Any) -> tuple[str, ...]:
    """Names of a design's fields (for grids), including those of a wrapped design."""
    names = tuple(f.name for f in fields(design))
    inner = getattr(design, "design", None)
    if inner is not None:
        names += tuple(f.name for f in fields(inner) if f.name not in names)
    return names
