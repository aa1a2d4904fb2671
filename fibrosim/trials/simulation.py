"""Vectorised Monte Carlo simulation of trial designs: one API, two engines.

* The **sufficient-statistic engine** (:mod:`fibrosim.trials._sufficient`) draws, per simulated
  trial, only what the analysis needs: arm means (normal), sums of squares (scaled chi-square via
  ``standard_gamma``), ANCOVA pieces from their exact joint sampling distribution, binomial
  responder counts.  Cost is O(arms) per trial, independent of the sample size, and the result
  is exact for the normal model.
* The **patient-level engine** (:mod:`fibrosim.trials.patient_level`) simulates every patient for
  what is not normal: bounded, rounded 0-10 NRS scores, truncated baselines, responder
  definitions, MCAR/MAR/MNAR dropout with complete-case, LOCF/BOCF and multiple imputation.

Both engines analyse their trials with the kernels of :mod:`fibrosim.trials._analysis` and run
the plans that :mod:`fibrosim.trials._plans` compiles from a design; this module seeds and runs
the blocks and combines them into a :class:`SimulationResult`.

Reproducibility: the replicates of a design are cut into blocks of a fixed size that depends on
the design only (never on ``chunk_size`` or the number of workers); block ``b`` draws from
``Generator(SFC64(child b of the root SeedSequence))``, and per-block sums are combined in
block order.  Any chunking, and Dask, therefore give bit-identical results.

References
----------
O'Hagan A, Stevens JW, Campbell MJ. Assurance in clinical trial design. Pharm Stat
2005;4:187-201.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray

from fibrosim._checks import check_integer, check_rng

# re-exported: the step procedures and t quantiles are tested through this module
from fibrosim.trials._analysis import step_procedure as step_procedure
from fibrosim.trials._analysis import t_quantile as t_quantile
from fibrosim.trials._plans import (
    CrossoverPlan,
    EndpointsPlan,
    GroupsPlan,
    Plan,
    SequentialPlan,
)

# re-exported: fibrosim.grid runs the same steps as simulate() cell by cell
from fibrosim.trials._plans import block_size as block_size
from fibrosim.trials._plans import choose_engine as choose_engine
from fibrosim.trials._plans import compile_plan as compile_plan
from fibrosim.trials._sufficient import (
    crossover_sufficient,
    endpoints_sufficient,
    groups_sufficient,
    sequential_sufficient,
)
from fibrosim.trials.patient_level import simulate_endpoints_block, simulate_groups_block

__all__ = ["SimulationResult", "simulate", "simulate_assurance"]

FloatArray = NDArray[np.float64]
Sampler = Callable[[int, np.random.Generator], FloatArray]


# --------------------------------------------------------------------------------------------
# seeds
def root_seed(rng: Any) -> np.random.SeedSequence:
    """A ``SeedSequence`` from ``rng`` (None, int, SeedSequence or Generator; SPEC 7)."""
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, np.random.Generator):
        seq = rng.bit_generator.seed_seq
        if not isinstance(seq, np.random.SeedSequence):  # pragma: no cover - exotic generators
            return np.random.SeedSequence(int(rng.integers(2**63)))
        # a fresh child, so two calls with the same Generator give independent streams
        return seq.spawn(1)[0]
    check_rng(rng)  # raises the shared TypeError for anything else
    return np.random.SeedSequence(rng)


def child_seed(seq: np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    """The ``index``-th child of ``seq``, without the statefulness of ``SeedSequence.spawn``."""
    return np.random.SeedSequence(
        entropy=seq.entropy, spawn_key=(*seq.spawn_key, index), pool_size=seq.pool_size
    )


def seed_attrs(seq: np.random.SeedSequence) -> dict[str, Any]:
    """Root seed as attributes (entropy as a string: it may exceed 64 bits)."""
    return {"seed_entropy": str(seq.entropy), "seed_spawn_key": list(seq.spawn_key)}


# --------------------------------------------------------------------------------------------
# running blocks
def prior_sampler(prior: Any) -> Sampler:
    """A sampler ``f(n, rng) -> effects`` from a prior.

    The prior is a callable, an object with ``.sample``/``.rvs`` or a ``(weights, means, sds)``
    normal mixture.
    """
    if isinstance(prior, tuple) and len(prior) == 3:
        w = np.atleast_1d(np.asarray(prior[0], dtype=float))
        mu = np.atleast_1d(np.asarray(prior[1], dtype=float))
        sd = np.atleast_1d(np.asarray(prior[2], dtype=float))
        if not (w.shape == mu.shape == sd.shape) or w.ndim != 1:
            raise ValueError(
                "`prior` (weights, means, sds) must be three 1-D sequences of equal length; got "
                f"shapes {w.shape}, {mu.shape}, {sd.shape}."
            )
        if np.any(w < 0) or not math.isclose(float(w.sum()), 1.0, abs_tol=1e-9) or np.any(sd < 0):
            raise ValueError(
                "`prior` weights must be >= 0 and sum to 1 and sds >= 0; got weights "
                f"{w.tolist()}, "
                f"sds {sd.tolist()}."
            )

        def mixture(n: int, rng: np.random.Generator) -> FloatArray:
            comp = rng.choice(w.size, size=n, p=w) if w.size > 1 else np.zeros(n, dtype=np.intp)
            return np.asarray(mu[comp] + sd[comp] * rng.standard_normal(n))

        return mixture
    if hasattr(prior, "sample"):
        return lambda n, rng: np.asarray(prior.sample(n, rng=rng), dtype=np.float64).reshape(n)
    if hasattr(prior, "rvs"):
        return lambda n, rng: np.asarray(prior.rvs(size=n, random_state=rng), dtype=np.float64)
    if callable(prior):
        return lambda n, rng: np.asarray(prior(n, rng), dtype=np.float64).reshape(n)
    raise TypeError(
        "`effect_prior` must be a callable f(n, rng), an object with .sample(n, rng=) or .rvs, "
        f"or a (weights, means, sds) normal mixture; got {prior!r}."
    )


def n_stats(plan: Plan) -> int:
    """Length of a block's accumulator vector."""
    m = _n_comparisons(plan)
    looks = len(plan.design.bounds) if isinstance(plan, SequentialPlan) else 0
    return 2 + 4 * m + looks


def _n_comparisons(plan: Plan) -> int:
    if isinstance(plan, EndpointsPlan):
        return len(plan.names)
    return plan.contrasts.shape[0] if isinstance(plan, GroupsPlan) else 1


def run_block(
    plan: Plan, engine: str, size: int, seq: np.random.SeedSequence, prior: Sampler | None
) -> FloatArray:
    """Simulate one block and return its sums.

    Layout: [n, successes, rejections(m), est sum(m), est sum of squares(m), valid estimates(m),
    stops per look(K)].
    """
    rng = np.random.Generator(np.random.SFC64(seq))
    effect = None if prior is None else prior(size, rng)
    stops: FloatArray = np.zeros(0)
    if isinstance(plan, GroupsPlan):
        if engine == "patient":
            rejected, est = simulate_groups_block(plan, size, rng, effect)
        else:
            rejected, est = groups_sufficient(plan, size, rng, effect)
    elif isinstance(plan, EndpointsPlan):
        if engine == "patient":
            rejected, est = simulate_endpoints_block(plan, size, rng)
        else:
            rejected, est = endpoints_sufficient(plan, size, rng)
    elif isinstance(plan, CrossoverPlan):
        rejected, est = crossover_sufficient(plan, size, rng, effect)
    else:
        rejected, est, stop_look = sequential_sufficient(plan, size, rng, effect)
        stops = np.bincount(stop_look, minlength=len(plan.design.bounds) + 1)[:-1].astype(float)
    success_rule = getattr(plan.design, "success", "any")
    if rejected.shape[1] == 1:
        n_success = np.count_nonzero(rejected)
    elif success_rule == "all":
        n_success = np.count_nonzero(rejected.all(axis=1))
    else:
        n_success = np.count_nonzero(rejected.any(axis=1))
    ok = np.isfinite(est)
    n_ok = np.count_nonzero(ok, axis=0)
    # estimates are finite but for degenerate trials (a group emptied by dropout)
    e = est if n_ok.sum() == ok.size else np.where(ok, est, 0.0)
    return np.concatenate(
        [
            [float(size), float(n_success)],
            np.count_nonzero(rejected, axis=0).astype(float),
            e.sum(axis=0),
            (e * e).sum(axis=0),
            n_ok.astype(float),
            stops,
        ]
    )


def block_sizes(n_sims: int, size: int) -> list[int]:
    full, rest = divmod(n_sims, size)
    return [size] * full + ([rest] if rest else [])


def run_blocks(
    plan: Plan,
    engine: str,
    cell_seed: np.random.SeedSequence,
    first_block: int,
    sizes: Sequence[int],
    prior: Sampler | None,
) -> FloatArray:
    """Per-block sums (n_blocks, n_stats) of consecutive blocks starting at ``first_block``."""
    out = np.empty((len(sizes), n_stats(plan)))
    for i, size in enumerate(sizes):
        out[i] = run_block(plan, engine, size, child_seed(cell_seed, first_block + i), prior)
    return out


def chunk_blocks(n_blocks: int, block: int, chunk_size: int | None) -> list[tuple[int, int]]:
    """(first block, number of blocks) per chunk; ``chunk_size`` rounds up to whole blocks.

    A chunk is one task (one Dask future); its blocks run one after another, so memory depends on
    the block, not on the chunk.  By default a cell is cut into at most 64 tasks.
    """
    per = max(1, math.ceil(chunk_size / block)) if chunk_size else max(1, math.ceil(n_blocks / 64))
    return [(b, min(per, n_blocks - b)) for b in range(0, n_blocks, per)]


# --------------------------------------------------------------------------------------------
# result
@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Operating characteristics of a design, estimated by simulation.

    Attributes
    ----------
    power : float
        Share of simulated trials that succeed (``success`` rule of the design: any / all
        comparisons rejected; for group-sequential designs: efficacy at any look).  Under a null
        effect this is the type-I error; with an effect prior it is the assurance.
    mcse : float
        Monte Carlo standard error of ``power``, ``sqrt(p (1 - p) / n_sims)``.
    n_sims : int
    comparisons : tuple of str
        Names of the tested comparisons.
    comparison_power, comparison_mcse : ndarray
        Rejection rate of each comparison (after multiplicity) and its MCSE.
    mean_estimate, sd_estimate : ndarray
        Mean and SD of each comparison's estimate over the trials (at stopping, for sequential
        designs), e.g. to read bias under carry-over or informative dropout.
    stop_probability : ndarray
        Probability of stopping for efficacy at each look (group-sequential only, else empty).
    expected_n_per_arm : float or None
        Expected patients per arm (group-sequential), else None.
    engine : str
        "sufficient" or "patient".
    design : object
        The simulated design.
    seed : dict
        Root ``SeedSequence`` entropy and spawn key.
    block_size : int
        Replicates per seeded block.
    """

    power: float
    mcse: float
    n_sims: int
    comparisons: tuple[str, ...]
    comparison_power: FloatArray
    comparison_mcse: FloatArray
    mean_estimate: FloatArray
    sd_estimate: FloatArray
    stop_probability: FloatArray
    expected_n_per_arm: float | None
    engine: str
    design: Any = field(repr=False)
    seed: dict[str, Any] = field(repr=False)
    block_size: int = field(repr=False)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per comparison plus a "success" row."""
        rows = pd.DataFrame(
            {
                "comparison": list(self.comparisons),
                "power": self.comparison_power,
                "mcse": self.comparison_mcse,
                "mean_estimate": self.mean_estimate,
                "sd_estimate": self.sd_estimate,
            }
        )
        top = pd.DataFrame(
            {
                "comparison": ["success"],
                "power": [self.power],
                "mcse": [self.mcse],
                "mean_estimate": [np.nan],
                "sd_estimate": [np.nan],
            }
        )
        return pd.concat([top, rows], ignore_index=True)

    def to_xarray(self) -> xr.Dataset:
        """Dataset with ``power``/``mcse`` and per-comparison variables; seed in attrs."""
        ds = xr.Dataset(
            {
                "power": ((), self.power, {"units": "probability"}),
                "mcse": ((), self.mcse, {"units": "probability"}),
                "comparison_power": ("comparison", self.comparison_power),
                "comparison_mcse": ("comparison", self.comparison_mcse),
                "mean_estimate": ("comparison", self.mean_estimate),
                "sd_estimate": ("comparison", self.sd_estimate),
            },
            coords={"comparison": list(self.comparisons)},
        )
        if self.stop_probability.size:
            ds["stop_probability"] = ("look", self.stop_probability)
            ds["expected_n_per_arm"] = ((), self.expected_n_per_arm)
        ds.attrs.update(
            n_sims=self.n_sims,
            engine=self.engine,
            design=repr(self.design),
            block_size=self.block_size,
            **self.seed,
        )
        return ds

    def __repr__(self) -> str:
        lines = [
            f"SimulationResult ({self.engine} engine, n_sims={self.n_sims})",
            f"  power {self.power:.4f}  (MCSE {self.mcse:.4f})",
            f"  {'comparison':<16}{'power':>9}{'mcse':>9}{'mean est':>11}",
        ]
        for name, p, s, e in zip(
            self.comparisons,
            self.comparison_power,
            self.comparison_mcse,
            self.mean_estimate,
            strict=True,
        ):
            lines.append(f"  {name:<16}{p:>9.4f}{s:>9.4f}{e:>11.4f}")
        if self.stop_probability.size:
            stops = ", ".join(f"{v:.3f}" for v in self.stop_probability)
            lines.append(f"  stop at look: {stops}; E[n per arm] {self.expected_n_per_arm:.1f}")
        return "\n".join(lines)


def summarise(
    plan: Plan, engine: str, sums: FloatArray, design: Any, seed: dict[str, Any], block: int
) -> SimulationResult:
    """Combine per-block sums (in block order) into a result."""
    total = sums.sum(axis=0)
    m = _n_comparisons(plan)
    n = total[0]
    power = total[1] / n
    rej = total[2 : 2 + m] / n
    s1 = total[2 + m : 2 + 2 * m]
    s2 = total[2 + 2 * m : 2 + 3 * m]
    cnt = total[2 + 3 * m : 2 + 4 * m]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        sd = np.sqrt(np.maximum(s2 / cnt - mean * mean, 0.0) * cnt / (cnt - 1.0))
    stops = total[2 + 4 * m :] / n
    expected = None
    if isinstance(plan, SequentialPlan):
        looks = np.asarray(plan.design.n_looks, dtype=float)
        expected = float(np.sum(stops * looks) + (1 - stops.sum()) * looks[-1])
    names = plan.names
    return SimulationResult(
        power=float(power),
        mcse=float(math.sqrt(power * (1 - power) / n)),
        n_sims=int(n),
        comparisons=tuple(names),
        comparison_power=rej,
        comparison_mcse=np.sqrt(rej * (1 - rej) / n),
        mean_estimate=mean,
        sd_estimate=sd,
        stop_probability=stops,
        expected_n_per_arm=expected,
        engine=engine,
        design=design,
        seed=seed,
        block_size=block,
    )


def check_n_sims(n_sims: Any) -> int:
    if isinstance(n_sims, bool) or not isinstance(n_sims, (int, np.integer, float)):
        raise TypeError(f"`n_sims` must be a positive whole number; got {n_sims!r}.")
    return int(check_integer("n_sims", n_sims, minimum=1))


def check_chunk_size(chunk_size: Any) -> int | None:
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise TypeError(
            f"`chunk_size` must be a positive whole number or None; got {chunk_size!r}."
        )
    return int(check_integer("chunk_size", chunk_size, minimum=1))


def check_prior(plan: Plan, prior: Any) -> Sampler | None:
    if prior is None:
        return None
    if isinstance(plan, EndpointsPlan) or (
        isinstance(plan, GroupsPlan) and plan.prior_group is None
    ):
        raise ValueError(
            "`effect_prior` needs a design with a single effect (ParallelDesign, "
            f"CrossoverDesign, GroupSequentialDesign); got {type(plan.design).__name__}."
        )
    return prior_sampler(prior)


def simulate(
    design: Any,
    n_sims: int,
    *,
    rng: Any = None,
    engine: str = "auto",
    chunk_size: int | None = None,
    effect_prior: Any = None,
) -> SimulationResult:
    """Simulate ``n_sims`` trials of ``design`` and estimate power (or type-I error, assurance).

    Parameters
    ----------
    design : ParallelDesign, MultiArmDesign, FactorialDesign, CrossoverDesign, GroupSequentialDesign
    n_sims : int
        Simulated trials (>= 1).
    rng : None, int, SeedSequence or Generator
        Root of the random streams (SPEC 7).  Block ``b`` uses child ``b`` of the root.
    engine : {"auto", "sufficient", "patient"}
        "auto" uses the exact sufficient-statistic engine unless the design needs patients
        (truncated, bounded or rounded scores; non-MCAR dropout or an imputation analysis).
    chunk_size : int or None
        Replicates per task, rounded up to whole blocks; results do not depend on it.
    effect_prior : optional
        Draw the true effect of each simulated trial from this prior (assurance): a callable
        ``f(n, rng)``, an object with ``.sample(n, rng=)`` (or a scipy frozen distribution), or a
        ``(weights, means, sds)`` normal mixture.

    Returns
    -------
    SimulationResult

    Raises
    ------
    ValueError, TypeError
        For an invalid argument, an engine that cannot simulate the design exactly, or a prior
        on a design without a single effect.

    Examples
    --------
    >>> from fibrosim.trials.designs import ParallelDesign
    >>> from fibrosim.trials.simulation import simulate
    >>> res = simulate(ParallelDesign(64, -0.5, 1.0, analysis="student"), 20_000, rng=1)
    >>> abs(res.power - 0.8015) < 4 * res.mcse
    True
    """
    plan = compile_plan(design)
    n = check_n_sims(n_sims)
    chunk = check_chunk_size(chunk_size)
    eng = choose_engine(plan, engine)
    prior = check_prior(plan, effect_prior)
    seq = root_seed(rng)
    block = block_size(plan, eng)
    sizes = block_sizes(n, block)
    parts = [
        run_blocks(plan, eng, seq, first, sizes[first : first + count], prior)
        for first, count in chunk_blocks(len(sizes), block, chunk)
    ]
    return summarise(plan, eng, np.concatenate(parts), design, seed_attrs(seq), block)


def simulate_assurance(
    design: Any, prior: Any, n_sims: int, *, rng: Any = None, engine: str = "auto"
) -> SimulationResult:
    """Assurance: probability of success with the effect drawn from ``prior`` for every trial.

    Same as ``simulate(design, n_sims, rng=rng, engine=engine, effect_prior=prior)``.  For a
    normal prior N(m, v) and a known-variance z test the closed form is
    ``A = Phi((m - z_{1-alpha} s) / sqrt(s^2 + v))`` (O'Hagan, Stevens & Campbell 2005), with
    the sign of ``m`` turned towards benefit.
    """
    return simulate(design, n_sims, rng=rng, engine=engine, effect_prior=prior)
