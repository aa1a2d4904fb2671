"""Plans: what the simulation engines consume, compiled from a design, and the block sizes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fibrosim._checks import check_choice
from fibrosim.trials.designs import (
    CrossoverDesign,
    FactorialDesign,
    GroupSequentialDesign,
    MultiArmDesign,
    MultiEndpointDesign,
    ParallelDesign,
)

FloatArray = NDArray[np.float64]

#: Replicates per block of the sufficient-statistic engine (a constant: chunking groups blocks).
SUFFICIENT_BLOCK = 1 << 15
#: Memory budget of one block of the patient-level engine; the block size (replicates) is
#: derived from the design so that its arrays stay within it.  A task holds one block at a time,
#: so peak memory is flat in ``n_sims`` and far below 2 GB per worker.
PATIENT_BLOCK_BYTES = 64 * 1024**2
ENGINES = ("auto", "sufficient", "patient")


@dataclass(frozen=True)
class GroupsPlan:
    """k parallel groups compared through linear contrasts of their means."""

    n: tuple[int, ...]
    means: tuple[float, ...]
    contrasts: FloatArray
    names: tuple[str, ...]
    design: Any
    prior_group: int | None = None  # the group whose mean an effect prior replaces

    @property
    def k(self) -> int:
        return len(self.n)


@dataclass(frozen=True)
class CrossoverPlan:
    design: CrossoverDesign
    names: tuple[str, ...] = ("effect",)


@dataclass(frozen=True)
class SequentialPlan:
    design: GroupSequentialDesign
    names: tuple[str, ...] = ("effect",)


@dataclass(frozen=True)
class EndpointsPlan:
    design: MultiEndpointDesign

    @property
    def names(self) -> tuple[str, ...]:
        return self.design.endpoints.names


Plan = GroupsPlan | CrossoverPlan | SequentialPlan | EndpointsPlan


def compile_plan(design: Any) -> Plan:
    """Translate a design into the plan an engine runs."""
    if isinstance(design, ParallelDesign):
        c = np.array([[-1.0, 1.0]])
        return GroupsPlan((design.n_per_arm,) * 2, (0.0, design.effect), c, ("effect",), design, 1)
    if isinstance(design, MultiArmDesign):
        k = len(design.effects)
        c = np.hstack([-np.ones((k, 1)), np.eye(k)])
        n = (int(design.n_control or design.n_per_arm),) + (design.n_per_arm,) * k
        names = tuple(design.arm_names or ())
        return GroupsPlan(n, (0.0, *design.effects), c, names, design)
    if isinstance(design, FactorialDesign):
        a, b, ab = design.effect_a, design.effect_b, design.interaction
        # cells: (A0 B0), (A1 B0), (A0 B1), (A1 B1)
        c = np.array([[-0.5, 0.5, -0.5, 0.5], [-0.5, -0.5, 0.5, 0.5], [1.0, -1.0, -1.0, 1.0]])
        fa, fb = design.factor_names
        names = (fa, fb, f"{fa}:{fb}")
        return GroupsPlan((design.n_per_cell,) * 4, (0.0, a, b, a + b + ab), c, names, design)
    if isinstance(design, CrossoverDesign):
        return CrossoverPlan(design)
    if isinstance(design, MultiEndpointDesign):
        return EndpointsPlan(design)
    if isinstance(design, GroupSequentialDesign):
        return SequentialPlan(design)
    raise TypeError(
        "`design` must be a ParallelDesign, MultiArmDesign, FactorialDesign, CrossoverDesign, "
        f"GroupSequentialDesign or MultiEndpointDesign; got {type(design).__name__}."
    )


def patient_level_reason(plan: Plan) -> str | None:
    """Why the sufficient-statistic engine is not exact for this plan (None if it is)."""
    if isinstance(plan, EndpointsPlan):
        return "patients drop out (MCAR)" if plan.design.dropout > 0 else None
    if not isinstance(plan, GroupsPlan):
        return None
    d = plan.design
    if d.cohort is not None and not d.cohort.is_continuous:
        return "the cohort has a truncated baseline, bounded or rounded scores"
    if d.dropout > 0 and (d.dropout_mechanism != "MCAR" or d.missing != "cc"):
        return f"dropout is {d.dropout_mechanism} with missing={d.missing!r}"
    return None


def choose_engine(plan: Plan, engine: str) -> str:
    check_choice("engine", engine, ENGINES)
    reason = patient_level_reason(plan)
    if engine == "auto":
        return "sufficient" if reason is None else "patient"
    if engine == "sufficient" and reason is not None:
        raise ValueError(
            f"`engine` 'sufficient' is not exact for this design because {reason}; use "
            "engine='patient' or 'auto'."
        )
    if engine == "patient" and not isinstance(plan, (GroupsPlan, EndpointsPlan)):
        raise ValueError(
            f"`engine` 'patient' supports parallel-group designs only; got "
            f"{type(plan.design).__name__}, which the sufficient-statistic engine simulates "
            "exactly."
        )
    return engine


def block_size(plan: Plan, engine: str) -> int:
    """Replicates per block: a function of the design and engine only."""
    if engine == "sufficient":
        return SUFFICIENT_BLOCK
    # about 16 float64 arrays of (block, patients) live at once in the patient-level engine
    if isinstance(plan, EndpointsPlan):
        per_rep = 16 * 8 * 2 * plan.design.n_per_arm * len(plan.names)
    else:
        assert isinstance(plan, GroupsPlan)
        per_rep = 16 * 8 * sum(plan.n)
    size = max(1, PATIENT_BLOCK_BYTES // per_rep)
    return int(min(4096, 1 << (size.bit_length() - 1)))
