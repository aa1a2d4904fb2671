"""Scenario grids: labelled output, seeding per cell, bit-identical results under any chunking."""

from __future__ import annotations

import distributed
import numpy as np
import pytest
import xarray as xr

from fibrosim.grid import simulate_grid
from fibrosim.trials.designs import GroupSequentialDesign, MultiArmDesign, ParallelDesign
from fibrosim.trials.simulation import child_seed, simulate

DESIGN = ParallelDesign(30, 0.0, 1.0, analysis="ttest", dropout=0.1)
AXES = {"effect": [0.0, -0.5], "n_per_arm": [20, 40]}


def test_grid_dims_attrs_and_cells_equal_simulate() -> None:
    ds = simulate_grid(DESIGN, 20_000, rng=7, **AXES)
    assert ds.power.dims == ("effect", "n_per_arm")
    assert ds.comparison_power.dims == ("effect", "n_per_arm", "comparison")
    assert ds.attrs["seed_entropy"] == "7"
    assert "ParallelDesign" in ds.attrs["design"]
    root = np.random.SeedSequence(7)
    # cell i (C order) is simulate() with child i of the root
    for i, (eff, n) in enumerate([(0.0, 20), (0.0, 40), (-0.5, 20), (-0.5, 40)]):
        d = ParallelDesign(n, eff, 1.0, analysis="ttest", dropout=0.1)
        res = simulate(d, 20_000, rng=child_seed(root, i))
        assert float(ds.power.sel(effect=eff, n_per_arm=n)) == res.power
        assert float(ds.mcse.sel(effect=eff, n_per_arm=n)) == res.mcse


def test_grid_chunk_size_does_not_change_results() -> None:
    a = simulate_grid(DESIGN, 100_000, rng=8, chunk_size=1000, **AXES)
    b = simulate_grid(DESIGN, 100_000, rng=8, chunk_size=100_000, **AXES)
    xr.testing.assert_identical(a, b)


def test_grid_with_dask_local_cluster_is_bit_identical() -> None:
    local = simulate_grid(DESIGN, 100_000, rng=9, chunk_size=40_000, **AXES)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        active = simulate_grid(DESIGN, 100_000, rng=9, scheduler="dask", chunk_size=5000, **AXES)
        by_address = simulate_grid(
            DESIGN, 100_000, rng=9, scheduler=cluster.scheduler_address, **AXES
        )
    xr.testing.assert_identical(local, active)
    xr.testing.assert_identical(local, by_address)


def test_grid_starts_and_closes_its_own_cluster() -> None:
    with pytest.raises(ValueError):
        distributed.get_client()  # no client is active before
    ds = simulate_grid(DESIGN, 5000, rng=10, scheduler="dask", effect=[0.0, -0.5])
    xr.testing.assert_identical(ds, simulate_grid(DESIGN, 5000, rng=10, effect=[0.0, -0.5]))
    with pytest.raises(ValueError):
        distributed.get_client()  # and none is left behind


def test_grid_sweeps_fields_of_a_wrapped_design_and_multi_comparisons() -> None:
    gs = GroupSequentialDesign(ParallelDesign(60, 0.0, 1.0, analysis="z"), [2.8, 1.98])
    ds = simulate_grid(gs, 5000, rng=11, effect=[0.0, -0.6])
    assert ds.power.dims == ("effect",)
    assert float(ds.power.sel(effect=-0.6)) > float(ds.power.sel(effect=0.0))
    multi = MultiArmDesign(20, (-0.5, -0.2), 1.0)
    ds = simulate_grid(multi, 2000, rng=12, multiplicity=["bonferroni", "holm"])
    assert list(ds.comparison.values) == ["arm1", "arm2"]
    # Holm rejects at least what Bonferroni rejects, replicate by replicate (same seeds)
    assert float(ds.power.sel(multiplicity="holm")) >= float(
        ds.power.sel(multiplicity="bonferroni")
    )


def test_grid_progress_bar_runs() -> None:
    ds = simulate_grid(DESIGN, 2000, rng=1, progress=True, effect=[0.0])
    assert ds.power.shape == (1,)


def test_grid_messages() -> None:
    with pytest.raises(ValueError, match=r"give at least one axis"):
        simulate_grid(DESIGN, 100)
    with pytest.raises(
        ValueError, match=r"axis `n` is not a field of ParallelDesign; allowed: n_per_arm"
    ):
        simulate_grid(DESIGN, 100, n=[1, 2])
    with pytest.raises(TypeError, match=r"axis `effect` must be a sequence of values; got 0.5"):
        simulate_grid(DESIGN, 100, effect=0.5)
    with pytest.raises(ValueError, match=r"axis `effect` must not be empty"):
        simulate_grid(DESIGN, 100, effect=[])
    with pytest.raises(
        TypeError, match=r"`scheduler` must be None, 'dask' or a scheduler address; got 3"
    ):
        simulate_grid(DESIGN, 100, scheduler=3, effect=[0.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"`n_per_arm` must be >= 2; got 1"):
        simulate_grid(DESIGN, 100, n_per_arm=[1])
