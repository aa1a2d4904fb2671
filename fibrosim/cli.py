"""The ``fibrosim`` command.

Every subcommand turns bad input into one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer

app = typer.Typer(
    pretty_exceptions_enable=False,
    add_completion=False,
    no_args_is_help=True,
    help="fibrosim: evidence synthesis and trial planning for drug-resistant fibromyalgia.",
)

_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, KeyError, OSError)


def _clean_errors[**P, R](func: Callable[P, R]) -> Callable[P, R]:
    """Report user errors as one line on stderr with exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except _USER_ERRORS as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            print(f"fibrosim: error: {message}", file=sys.stderr)
            raise typer.Exit(code=2) from None

    return wrapper


def _floats(text: str, name: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--{name} must be comma-separated numbers; got {text!r}.") from None


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file.")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable CSV file ({exc}).") from None


def effect_sizes_from_table(table: pd.DataFrame, path: Path, measure: str) -> tuple[Any, Any]:
    """``(yi, vi)`` from a CSV with yi/vi columns or with two-arm summaries."""
    from fibrosim import effects

    cols = set(table.columns)
    if {"yi", "vi"} <= cols:
        return table["yi"].to_numpy(float), table["vi"].to_numpy(float)
    arm_cols = ["mean_t", "sd_t", "n_t", "mean_c", "sd_c", "n_c"]
    if set(arm_cols) <= cols:
        funcs = {"SMD": effects.smd, "MD": effects.md, "ROM": effects.rom}
        if measure not in funcs:
            raise ValueError(f"--measure must be one of {', '.join(funcs)}; got {measure!r}.")
        es = funcs[measure](*(table[c].to_numpy(float) for c in arm_cols))
        return es.yi, es.vi
    raise ValueError(
        f"{path}: needs columns yi and vi, or {', '.join(arm_cols)}; "
        f"found {', '.join(map(str, table.columns))}."
    )


@app.command()
@_clean_errors
def report(
    out: Annotated[
        Path, typer.Option(help="Folder for report.html, report.md and figures.")
    ] = Path("out"),
) -> None:
    """Run every analysis on the shipped evidence and write the report."""
    from fibrosim.report import run_report

    md_path, html_path = run_report(out)
    typer.echo(f"wrote {html_path} and {md_path}")


@app.command()
@_clean_errors
def meta(
    file: Annotated[Path, typer.Argument(help="CSV with yi,vi or arm summaries.")],
    method: Annotated[str, typer.Option(help="tau^2 estimator (REML, DL, PM, ...).")] = "REML",
    test: Annotated[str, typer.Option(help="z or knha.")] = "z",
    measure: Annotated[str, typer.Option(help="Effect measure for arm summaries.")] = "SMD",
    level: Annotated[float, typer.Option(help="Confidence level.")] = 0.95,
) -> None:
    """Random-effects meta-analysis of a CSV file."""
    from fibrosim.meta.frequentist import random_effects

    yi, vi = effect_sizes_from_table(_read_csv(file), file, measure)
    typer.echo(repr(random_effects(yi, vi, method=method, test=test, level=level)))


def _build_tau_prior(spec: str) -> Any:
    from fibrosim.meta import priors

    name, _, args = spec.partition(":")
    values = _floats(args, "tau-prior") if args else []
    makers: dict[str, Callable[..., Any]] = {
        "halfnormal": priors.HalfNormal,
        "halfcauchy": priors.HalfCauchy,
        "exponential": priors.Exponential,
        "uniform": priors.Uniform,
    }
    key = name.lower()
    if key in makers:
        return makers[key](*values)
    if key in ("turner", "rhodes"):
        outcome, _, comparison = args.partition(",")
        maker = priors.turner2015 if key == "turner" else priors.rhodes2015
        return maker(outcome, comparison)
    raise ValueError(
        f"--tau-prior must look like halfnormal:0.5, halfcauchy:0.5, exponential:2, "
        f"uniform:0,2, turner:OUTCOME,COMPARISON or rhodes:OUTCOME,COMPARISON; got {spec!r}."
    )


@app.command()
@_clean_errors
def bayes(
    file: Annotated[Path, typer.Argument(help="CSV with yi,vi or arm summaries.")],
    tau_prior: Annotated[str, typer.Option(help="e.g. halfnormal:0.5")] = "halfnormal:0.5",
    mu_sd: Annotated[
        float | None, typer.Option(help="SD of a N(0, sd^2) prior on mu; flat if omitted.")
    ] = None,
    measure: Annotated[str, typer.Option(help="Effect measure for arm summaries.")] = "SMD",
    prob: Annotated[float, typer.Option(help="Credible-interval probability.")] = 0.95,
) -> None:
    """Exact Bayesian random-effects meta-analysis (no MCMC)."""
    from fibrosim.meta import priors
    from fibrosim.meta.bayes import bayes_random_effects

    yi, vi = effect_sizes_from_table(_read_csv(file), file, measure)
    mu_prior = None if mu_sd is None else priors.Normal(0.0, mu_sd)
    post = bayes_random_effects(yi, vi, _build_tau_prior(tau_prior), mu_prior)
    rows = []
    for name, marginal in (("mu", post.mu), ("tau", post.tau), ("theta_new", post.predictive)):
        low, high = marginal.interval(prob)
        rows.append(
            {
                "parameter": name,
                "mean": float(marginal.mean),
                "sd": float(marginal.sd),
                "median": float(marginal.median),
                f"{prob:.0%} low": float(low),
                f"{prob:.0%} high": float(high),
            }
        )
    typer.echo(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.4f}"))


@app.command()
@_clean_errors
def power(
    delta: Annotated[str, typer.Option(help="Mean difference(s), comma-separated.")],
    sd: Annotated[float, typer.Option(help="Common SD.")],
    n_per_arm: Annotated[str, typer.Option(help="n per arm, comma-separated.")],
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    sided: Annotated[int, typer.Option(help="1 or 2.")] = 2,
) -> None:
    """Power of a two-sample t test (exact noncentral t) over a grid."""
    from fibrosim.trials.analytic import power_ttest

    d = np.asarray(_floats(delta, "delta"))[:, None]
    n = np.asarray(_floats(n_per_arm, "n-per-arm"))[None, :]
    result = np.asarray(power_ttest(d, sd, n, alpha=alpha, sided=sided))
    table = pd.DataFrame(result, index=d[:, 0], columns=n[0])
    table.index.name, table.columns.name = "delta", "n_per_arm"
    typer.echo(table.to_string(float_format=lambda x: f"{x:.4f}"))


@app.command("sample-size")
@_clean_errors
def sample_size(
    delta: Annotated[float, typer.Option(help="Mean difference to detect.")],
    sd: Annotated[float, typer.Option(help="Common SD.")],
    power: Annotated[float, typer.Option(help="Target power.")] = 0.8,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    sided: Annotated[int, typer.Option(help="1 or 2.")] = 2,
    dropout: Annotated[float, typer.Option(help="Expected dropout fraction.")] = 0.0,
) -> None:
    """Sample size per arm for a two-sample t test."""
    from fibrosim.trials.analytic import sample_size_ttest

    res = sample_size_ttest(delta, sd, power=power, alpha=alpha, sided=sided)
    typer.echo(repr(res))
    if dropout:
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"--dropout must lie in [0, 1); got {dropout}.")
        inflated = int(np.ceil(float(np.asarray(res.n_per_arm)) / (1.0 - dropout)))
        typer.echo(f"n per arm to randomise with {dropout:.0%} dropout: {inflated}")


@app.command()
@_clean_errors
def simulate(
    effect: Annotated[str, typer.Option(help="True mean difference(s), comma-separated.")],
    n_per_arm: Annotated[str, typer.Option(help="n per arm, comma-separated.")],
    sd: Annotated[float, typer.Option(help="Within-arm SD of the outcome.")],
    n_sims: Annotated[int, typer.Option(help="Simulated trials per grid cell.")] = 10_000,
    analysis: Annotated[str, typer.Option(help="ttest, ancova or responder.")] = "ttest",
    baseline_corr: Annotated[float, typer.Option(help="Baseline-follow-up correlation.")] = 0.0,
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    sided: Annotated[int, typer.Option(help="1 or 2.")] = 2,
    dropout: Annotated[float, typer.Option(help="Dropout probability (MCAR).")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Root seed (recorded in the output).")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the grid to .nc or .csv.")] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="'dask' (local cluster) or a Dask scheduler address.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Simulated power of a two-arm parallel trial over a grid of effects and sizes."""
    from fibrosim.grid import simulate_grid
    from fibrosim.trials.designs import ParallelDesign

    if out is not None and out.suffix not in (".nc", ".csv"):
        raise ValueError(f"--out must end in .nc or .csv; got {out}.")
    effects = _floats(effect, "effect")
    sizes = [int(n) for n in _floats(n_per_arm, "n-per-arm")]
    base = ParallelDesign(
        n_per_arm=sizes[0],
        effect=effects[0],
        sd=sd,
        baseline_corr=baseline_corr,
        analysis=analysis,
        alpha=alpha,
        sided=sided,
        dropout=dropout,
    )
    grid = simulate_grid(
        base,
        n_sims,
        rng=seed,
        scheduler=scheduler,
        progress=progress,
        effect=effects,
        n_per_arm=sizes,
    )
    table = grid["power"].to_pandas()
    typer.echo(
        f"power ({n_sims} simulated trials per cell, MCSE <= {float(grid['mcse'].max()):.4f}):"
    )
    typer.echo(table.to_string(float_format=lambda x: f"{x:.4f}"))
    if out is not None:
        if out.suffix == ".nc":
            grid.to_netcdf(out, engine="h5netcdf")
        else:
            grid[["power", "mcse"]].to_dataframe().to_csv(out)
        typer.echo(f"wrote {out}")


def main() -> None:  # pragma: no cover - console entry point
    """Console entry point."""
    app()
