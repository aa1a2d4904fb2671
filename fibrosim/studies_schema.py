"""The column schema of the study registry, declared as data.

Every dataset in ``studies/`` has a *kind* (``arms``, ``binary``, ``effects``, ``pooled``,
``table``); :data:`KINDS` maps each kind to its :class:`Kind`: the :class:`Column` s a CSV of
that kind may hold (type, whether required or nullable, allowed values, bounds) and the columns
that identify a row.  The schema is declared once here and nowhere else; :mod:`fibrosim.studies`
reads and checks files against it (and re-exports every public name below), and
``studies/README.md`` describes it for people adding datasets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "KINDS",
    "MEASURES",
    "RATIO_MEASURES",
    "VERIFICATION_CODES",
    "Column",
    "Dtype",
    "Kind",
]

Dtype = Literal["str", "int", "float", "bool"]

#: Effect measures an ``effects`` or ``pooled`` row may carry.
MEASURES = ("MD", "SMD", "RD", "OR", "RR", "HR", "ROM")
#: Ratio measures: analysed on the log scale (``yi = log(estimate)``, ``se`` is of the log).
RATIO_MEASURES = frozenset({"OR", "RR", "HR", "ROM"})
#: Allowed verification codes. "U" (unverified) is refused on purpose.
VERIFICATION_CODES = ("V1", "V2", "C")


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a dataset kind.

    Attributes
    ----------
    name : str
        Header text in the CSV.
    dtype : {"str", "int", "float", "bool"}
        Cell type. ``int`` accepts whole numbers written as ``20`` or ``20.0``; ``bool`` accepts
        true/false, yes/no, 1/0 (any case).
    description : str
        What the column holds (shown in ``studies/README.md``).
    required : bool
        Whether the column must be present in the header.
    nullable : bool
        Whether a cell may be empty (stored as missing).
    choices : tuple of str
        Allowed values of a ``str`` column (empty: any text).
    minimum, maximum : float or None
        Inclusive bounds of a numeric column.
    positive : bool
        Numeric cells must be > 0.
    """

    name: str
    dtype: Dtype
    description: str
    required: bool = True
    nullable: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False


@dataclass(frozen=True, slots=True)
class Kind:
    """A dataset kind: its columns and which columns identify a row.

    Attributes
    ----------
    name : str
        The value of ``kind`` in the metadata file.
    description : str
        One line on what rows of this kind are.
    columns : tuple of Column
        Required and optional columns (``table`` datasets declare theirs in the metadata).
    key : tuple of str
        Columns that identify a row; two rows with equal keys are duplicates. Optional key
        columns count when present.
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """All column names, required first in schema order."""
        return tuple(c.name for c in self.columns)


def _text(name: str, description: str, **kw: Any) -> Column:
    return Column(name, "str", description, **kw)


_OPTIONAL = (
    _text(
        "modality", "treatment modality, e.g. tDCS, rTMS, aerobic exercise, drug", required=False
    ),
    Column(
        "drug_resistant",
        "bool",
        "population flag: true if the trial enrolled drug-resistant (refractory) FM",
        required=False,
        nullable=True,
    ),
    _text(
        "verification",
        "V1 read verbatim from the source; V2 read from a secondary transcription; C computed "
        "from V1/V2 numbers (flagged as derived). U is refused.",
        required=False,
        choices=VERIFICATION_CODES,
    ),
    _text("notes", "free text", required=False, nullable=True),
)
_ARM_IDS = (
    _text(
        "arm_t",
        "identifier of the intervention arm, unique within the study (several arms of one drug)",
        required=False,
    ),
    _text(
        "arm_c",
        "identifier of the control arm; rows sharing it share a control group (dependent effects)",
        required=False,
    ),
)
_TRIAL_HEAD = (
    _text("study", "first author and year, unique per trial, e.g. 'Arnold 2005'"),
    Column("year", "int", "publication year", minimum=1900, maximum=2100),
    _text("intervention", "the active treatment"),
    _text("control", "the comparator, e.g. placebo, sham"),
    _text("outcome", "outcome name; declared under [outcomes] in the metadata"),
    _text(
        "scale", "instrument; declared under [scales] in the metadata (with its range, if known)"
    ),
    _text("timepoint", "when measured, e.g. 'week 12'"),
)
_TRIAL_TAIL = (
    _text("design", "trial design", choices=("parallel", "crossover")),
    _text("source", "DOI plus table, figure or page of every number in the row"),
)
_TRIAL_KEY = ("study", "intervention", "control", "arm_t", "arm_c", "outcome", "timepoint")


def _n(name: str, minimum: int) -> Column:
    return Column(name, "int", f"participants analysed, arm {name[-1]}", minimum=minimum)


#: The dataset kinds. ``table`` columns are declared per dataset under ``[columns]``.
KINDS: Mapping[str, Kind] = {
    "arms": Kind(
        "arms",
        "continuous outcome, one row per study x comparison x outcome x timepoint, arm summaries",
        (
            *_TRIAL_HEAD,
            _text("measure_type", "raw endpoint means or mean changes", choices=("raw", "change")),
            _n("n_t", 2),
            Column("mean_t", "float", "mean (or mean change), intervention arm"),
            Column("sd_t", "float", "standard deviation, intervention arm", positive=True),
            _n("n_c", 2),
            Column("mean_c", "float", "mean (or mean change), control arm"),
            Column("sd_c", "float", "standard deviation, control arm", positive=True),
            *_TRIAL_TAIL,
            *_ARM_IDS,
            *_OPTIONAL,
        ),
        _TRIAL_KEY,
    ),
    "binary": Kind(
        "binary",
        "binary outcome, one row per study x comparison x outcome x timepoint, event counts",
        (
            *_TRIAL_HEAD,
            Column("events_t", "int", "participants with the event, intervention arm", minimum=0),
            _n("n_t", 1),
            Column("events_c", "int", "participants with the event, control arm", minimum=0),
            _n("n_c", 1),
            *_TRIAL_TAIL,
            *_ARM_IDS,
            *_OPTIONAL,
        ),
        _TRIAL_KEY,
    ),
    "effects": Kind(
        "effects",
        "a trial's published effect estimate with its SE or confidence interval",
        (
            *_TRIAL_HEAD,
            _text("measure", "effect measure", choices=MEASURES),
            Column("estimate", "float", "published estimate (ratio measures on the ratio scale)"),
            Column(
                "se",
                "float",
                "standard error (of the log for ratio measures)",
                nullable=True,
                positive=True,
            ),
            Column("ci_low", "float", "lower confidence limit", nullable=True),
            Column("ci_high", "float", "upper confidence limit", nullable=True),
            Column(
                "ci_level",
                "float",
                "confidence level of the interval (default 0.95)",
                required=False,
                nullable=True,
                minimum=0.5,
                maximum=0.999,
            ),
            *_TRIAL_TAIL,
            *_ARM_IDS,
            *_OPTIONAL,
        ),
        _TRIAL_KEY,
    ),
    "pooled": Kind(
        "pooled",
        "review-level pooled results (never mixed with trial rows)",
        (
            _text("review", "first author and year of the review"),
            _text("modality", "treatment modality"),
            _text("comparison", "e.g. 'active tDCS vs sham'"),
            _text("outcome", "outcome name; declared under [outcomes] in the metadata"),
            _text("measure", "effect measure", choices=MEASURES),
            Column("estimate", "float", "pooled estimate as printed (ratio scale for ratios)"),
            Column("ci_low", "float", "lower 95% confidence limit"),
            Column("ci_high", "float", "upper 95% confidence limit"),
            Column("k", "int", "number of studies pooled", nullable=True, minimum=1),
            Column("n", "int", "participants pooled", nullable=True, minimum=2),
            Column("i2", "float", "I^2 in percent", nullable=True, minimum=0, maximum=100),
            _text("positive_means", "what a positive estimate means, e.g. 'favours sham'"),
            _text("source", "DOI plus table, figure or page"),
            _text("verification", "V1, V2 or C (U is refused)", choices=VERIFICATION_CODES),
            _text("timepoint", "e.g. 'end of treatment'", required=False),
            Column("drug_resistant", "bool", "population flag", required=False, nullable=True),
            _text("notes", "free text", required=False, nullable=True),
        ),
        ("review", "comparison", "outcome", "measure", "timepoint"),
    ),
    "table": Kind(
        "table",
        "a plain parameter table (priors, design parameters); columns declared in the metadata",
        (
            _text("source", "DOI plus table, figure or page"),
            *(c for c in _OPTIONAL if c.name in ("verification", "notes")),
        ),
        (),
    ),
}
