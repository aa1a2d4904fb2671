"""Scenario grids: simulate a design over a grid of field values into an ``xarray.Dataset``.

Each grid cell gets its own ``SeedSequence`` child of the root (cells in C order of the axes),
and within a cell each fixed-size block of replicates its own further child.  Chunks only group
blocks into tasks, so the result is bit-identical for any ``chunk_size``, worker count or
scheduler.  Dask is optional (the ``parallel`` extra) and imported only when asked for.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import xarray as xr

from fibrosim.trials import simulation as sim
from fibrosim.trials.designs import design_fields

__all__ = ["simulate_grid"]


def _replace(design: Any, name: str, value: Any) -> Any:
    names = {f.name for f in dataclasses.fields(design)}
    if name in names:
        return dataclasses.replace(design, **{name: value})
    inner = design.design  # a wrapped design (GroupSequentialDesign)
    return dataclasses.replace(design, design=dataclasses.replace(inner, **{name: value}))


def _check_axes(design: Any, axes: dict[str, Any]) -> dict[str, list[Any]]:
    if not axes:
        raise ValueError("give at least one axis, e.g. simulate_grid(design, n, effect=[0, -0.5]).")
    allowed = design_fields(design)
    out: dict[str, list[Any]] = {}
    for name, values in axes.items():
        if name not in allowed:
            raise ValueError(
                f"axis `{name}` is not a field of {type(design).__name__}; allowed: "
                f"{', '.join(allowed)}."
            )
        if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
            raise TypeError(f"axis `{name}` must be a sequence of values; got {values!r}.")
        seq = list(np.asarray(values).tolist()) if isinstance(values, np.ndarray) else list(values)
        if not seq:
            raise ValueError(f"axis `{name}` must not be empty.")
        out[name] = seq
    return out


def _task(
    plan: Any,
    engine: str,
    cell_seed: np.random.SeedSequence,
    first: int,
    sizes: list[int],
    prior: Any,
) -> Any:
    return sim.run_blocks(plan, engine, cell_seed, first, sizes, prior)


@contextmanager
def _dask_client(scheduler: str) -> Iterator[Any]:
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - dask is a dev dependency here
        raise ImportError(
            "scheduler='dask' needs dask.distributed: install fibrosim with the `parallel` extra "
            "(pip install 'fibrosim[parallel]')."
        ) from exc
    if scheduler != "dask":
        client = distributed.Client(scheduler)  # type: ignore[no-untyped-call]
        try:
            yield client
        finally:
            client.close()  # type: ignore[no-untyped-call]
        return
    try:
        active = distributed.get_client()
    except ValueError:  # no active client: start a small in-process cluster and close it after
        active = None
    if active is not None:
        yield active
        return
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )  # type: ignore[no-untyped-call]
    client = distributed.Client(cluster)  # type: ignore[no-untyped-call]
    try:
        yield client
    finally:
        client.close()  # type: ignore[no-untyped-call]
        cluster.close()  # type: ignore[no-untyped-call]


def simulate_grid(
    design: Any,
    n_sims: int,
    *,
    rng: Any = None,
    scheduler: str | None = None,
    chunk_size: int | None = None,
    progress: bool = False,
    engine: str = "auto",
    **axes: Any,
) -> xr.Dataset:
    """Simulate ``design`` for every combination of the ``axes`` values.

    Parameters
    ----------
    design : a fibrosim design
        The base design; each cell replaces the named fields (fields of a wrapped
        ``GroupSequentialDesign.design`` can be swept too).
    n_sims : int
        Simulated trials per cell.
    rng : None, int, SeedSequence or Generator
        Root seed; cell ``i`` (C order) uses child ``i``.
    scheduler : None, "dask" or str
        None: in this process.  "dask": the active ``distributed`` client, or a temporary
        ``LocalCluster`` (2 workers, threads) closed afterwards.  Any other string is the address
        of a Dask scheduler.
    chunk_size : int or None
        Replicates per task (rounded up to whole blocks).  Results do not depend on it.
    progress : bool
        Show a rich progress bar over tasks.
    engine : {"auto", "sufficient", "patient"}
    **axes : sequences
        Field name -> values, e.g. ``effect=[0, -0.5, -1]``, ``n_per_arm=[32, 64]``.

    Returns
    -------
    xarray.Dataset
        ``power`` and ``mcse`` with one dim per axis (in the order given), plus
        ``comparison_power`` / ``comparison_mcse`` with a trailing ``comparison`` dim; attrs hold
        the root seed, the base design's repr, ``n_sims`` and the engine per cell.

    Examples
    --------
    >>> from fibrosim.trials.designs import ParallelDesign
    >>> from fibrosim.grid import simulate_grid
    >>> ds = simulate_grid(ParallelDesign(32, 0.0, 1.0), 2000, rng=1, effect=[0.0, -0.8])
    >>> ds.power.dims
    ('effect',)
    """
    n = sim.check_n_sims(n_sims)
    chunk = sim.check_chunk_size(chunk_size)
    grid = _check_axes(design, axes)
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(
            f"`scheduler` must be None, 'dask' or a scheduler address; got {scheduler!r}."
        )
    root = sim.root_seed(rng)
    names = list(grid)
    shape = tuple(len(v) for v in grid.values())
    cells = []
    for i, combo in enumerate(itertools.product(*grid.values())):
        d = design
        for name, value in zip(names, combo, strict=True):
            d = _replace(d, name, value)
        plan = sim.compile_plan(d)
        eng = sim.choose_engine(plan, engine)
        block = sim.block_size(plan, eng)
        sizes = sim.block_sizes(n, block)
        tasks = [
            (first, sizes[first : first + count])
            for first, count in sim.chunk_blocks(len(sizes), block, chunk)
        ]
        cells.append((d, plan, eng, block, sim.child_seed(root, i), tasks))

    jobs = [
        (ci, plan, eng, seed, first, sizes)
        for ci, (_, plan, eng, _, seed, tasks) in enumerate(cells)
        for first, sizes in tasks
    ]
    results: list[Any] = [None] * len(jobs)
    bar = _progress(progress, len(jobs))
    try:
        if scheduler is None:
            for j, (_, plan, eng, seed, first, sizes) in enumerate(jobs):
                results[j] = _task(plan, eng, seed, first, sizes, None)
                bar.advance()
        else:
            with _dask_client(scheduler) as client:
                futures = [
                    client.submit(_task, plan, eng, seed, first, sizes, None, pure=False)
                    for (_, plan, eng, seed, first, sizes) in jobs
                ]
                index = {f.key: j for j, f in enumerate(futures)}
                import distributed

                for fut in distributed.as_completed(futures):  # type: ignore[no-untyped-call]
                    results[index[fut.key]] = fut.result()
                    bar.advance()
    finally:
        bar.close()

    out = []
    for ci, (d, plan, eng, block, seed, _) in enumerate(cells):
        parts = [results[j] for j, job in enumerate(jobs) if job[0] == ci]
        out.append(sim.summarise(plan, eng, np.concatenate(parts), d, sim.seed_attrs(seed), block))
    comparisons = list(out[0].comparisons)
    same = all(list(r.comparisons) == comparisons for r in out)
    coords = {name: grid[name] for name in names}
    data: dict[str, Any] = {
        "power": (names, np.array([r.power for r in out]).reshape(shape), {"units": "probability"}),
        "mcse": (names, np.array([r.mcse for r in out]).reshape(shape), {"units": "probability"}),
    }
    if same:
        cp = np.stack([r.comparison_power for r in out]).reshape(*shape, len(comparisons))
        cm = np.stack([r.comparison_mcse for r in out]).reshape(*shape, len(comparisons))
        data["comparison_power"] = ([*names, "comparison"], cp)
        data["comparison_mcse"] = ([*names, "comparison"], cm)
        coords["comparison"] = comparisons
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(
        n_sims=n,
        design=repr(design),
        engine=",".join(sorted({r.engine for r in out})),
        seeding="cell i (C order of the axes) uses SeedSequence(entropy, spawn_key + (i,))",
        **sim.seed_attrs(root),
    )
    return ds


class _Bar:
    def __init__(self, total: int) -> None:
        from rich.progress import Progress

        self._progress = Progress(transient=False)
        self._progress.start()
        self._task = self._progress.add_task("simulating", total=total)

    def advance(self) -> None:
        self._progress.advance(self._task)

    def close(self) -> None:
        self._progress.stop()


class _NoBar:
    def advance(self) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(show: bool, total: int) -> _Bar | _NoBar:
    return _Bar(total) if show else _NoBar()
