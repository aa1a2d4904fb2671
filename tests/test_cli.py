"""The ``fibrosim`` command end to end: numbers equal the library's, bad input is one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

import fibrosim as fs
from fibrosim.cli import app

runner = CliRunner()

BCG_YI = [-0.8893, -1.5854, -1.3481, -1.4416, -0.2175, -0.7861, -1.6209]
BCG_VI = [0.3256, 0.1946, 0.4154, 0.02, 0.0512, 0.0069, 0.2230]


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _assert_one_line_error(code: int, stderr: str, fragment: str) -> None:
    assert code == 2
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("fibrosim: error:")
    assert fragment in lines[0]
    assert "Traceback" not in stderr


def test_meta_on_yi_vi_csv_prints_the_library_result(tmp_path: Path) -> None:
    path = tmp_path / "es.csv"
    pd.DataFrame({"yi": BCG_YI, "vi": BCG_VI}).to_csv(path, index=False)
    code, out, _ = _run("meta", str(path), "--method", "DL", "--test", "knha")
    assert code == 0
    expected = fs.meta.random_effects(BCG_YI, BCG_VI, method="DL", test="knha")
    assert out.strip() == repr(expected).strip()


def test_meta_on_arm_summaries_uses_hedges_g(tmp_path: Path) -> None:
    arms = pd.DataFrame(
        {
            "mean_t": [4.3, 5.07, 4.85],
            "sd_t": [3.0, 3.22, 2.11],
            "n_t": [27, 22, 33],
            "mean_c": [5.0, 7.13, 6.79],
            "sd_c": [3.0, 2.41, 1.53],
            "n_c": [32, 22, 28],
        }
    )
    path = tmp_path / "arms.csv"
    arms.to_csv(path, index=False)
    code, out, _ = _run("meta", str(path))
    assert code == 0
    es = fs.effects.smd(*(arms[c].to_numpy(float) for c in arms.columns))
    assert out.strip() == repr(fs.meta.random_effects(es.yi, es.vi)).strip()


def test_bayes_prints_posterior_summaries(tmp_path: Path) -> None:
    path = tmp_path / "es.csv"
    pd.DataFrame({"yi": BCG_YI, "vi": BCG_VI}).to_csv(path, index=False)
    code, out, _ = _run("bayes", str(path), "--tau-prior", "halfnormal:0.5", "--mu-sd", "4")
    assert code == 0
    post = fs.meta.bayes_random_effects(
        BCG_YI, BCG_VI, fs.priors.HalfNormal(0.5), fs.priors.Normal(0, 4)
    )
    assert f"{float(post.mu.mean):.4f}" in out
    assert f"{float(post.tau.median):.4f}" in out


def test_power_grid_equals_power_ttest() -> None:
    code, out, _ = _run("power", "--delta", "0.5,1", "--sd", "1", "--n-per-arm", "20,64")
    assert code == 0
    expected = fs.trials.power_ttest(0.5, 1.0, 64)
    assert f"{float(expected):.4f}" in out


def test_sample_size_reports_the_pwr_anchor() -> None:
    code, out, _ = _run("sample-size", "--delta", "0.5", "--sd", "1", "--dropout", "0.2")
    assert code == 0
    assert "63.7656" in out  # pwr.t.test: 63.7656 per group (anchors.md)
    assert "n per arm to randomise with 20% dropout: 80" in out  # ceil(63.77 / 0.8)


def test_simulate_writes_netcdf_and_csv_with_the_seed(tmp_path: Path) -> None:
    nc, csv = tmp_path / "grid.nc", tmp_path / "grid.csv"
    args = ["simulate", "--effect", "0,-1", "--n-per-arm", "20,40", "--sd", "2.5"]
    args += ["--n-sims", "4000", "--seed", "7", "--no-progress"]
    assert _run(*args, "--out", str(nc))[0] == 0
    assert _run(*args, "--out", str(csv))[0] == 0
    grid = xr.open_dataset(nc, engine="h5netcdf")
    assert str(grid.attrs["seed_entropy"]) == "7"
    table = pd.read_csv(csv)
    np.testing.assert_allclose(
        np.sort(table["power"].to_numpy()), np.sort(grid["power"].values.ravel())
    )
    # the type-I error cells are within 4 MCSE of alpha = 0.05 (MCSE = sqrt(.05 .95 / 4000))
    assert np.all(np.abs(grid["power"].sel(effect=0.0).values - 0.05) < 4 * 0.00345)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    code, _, err = _run("meta", str(tmp_path / "nope.csv"))
    _assert_one_line_error(code, err, "no such file")


def test_csv_without_usable_columns_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n")
    code, _, err = _run("meta", str(path))
    _assert_one_line_error(code, err, "needs columns yi and vi")


def test_negative_variance_is_one_line_naming_the_argument(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    pd.DataFrame({"yi": [0.1, 0.2, 0.3], "vi": [0.1, -0.2, 0.1]}).to_csv(path, index=False)
    code, _, err = _run("meta", str(path))
    _assert_one_line_error(code, err, "vi")


def test_unknown_method_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "es.csv"
    pd.DataFrame({"yi": BCG_YI, "vi": BCG_VI}).to_csv(path, index=False)
    code, _, err = _run("meta", str(path), "--method", "XYZ")
    _assert_one_line_error(code, err, "XYZ")


def test_bad_prior_spec_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "es.csv"
    pd.DataFrame({"yi": BCG_YI, "vi": BCG_VI}).to_csv(path, index=False)
    code, _, err = _run("bayes", str(path), "--tau-prior", "gamma:1")
    _assert_one_line_error(code, err, "--tau-prior")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("power", "--delta", "a,b", "--sd", "1", "--n-per-arm", "20"), "--delta"),
        (("power", "--delta", "0.5", "--sd", "-1", "--n-per-arm", "20"), "sd"),
        (("sample-size", "--delta", "0.5", "--sd", "1", "--dropout", "1.5"), "dropout"),
        (
            ("simulate", "--effect", "0", "--n-per-arm", "20", "--sd", "1", "--out", "x.txt"),
            "--out",
        ),
    ],
)
def test_bad_design_input_is_one_line(args: tuple[str, ...], fragment: str) -> None:
    code, _, err = _run(*args)
    _assert_one_line_error(code, err, fragment)
