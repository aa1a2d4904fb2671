"""Figures: forest plots, (contour-enhanced) funnel plots and power curves.

Every function draws on ``ax`` (a new figure's axes when None) and returns the Axes, so figures
compose.  Artists carry a ``gid`` ("squares", "ci", "summary-diamond", "prediction-interval",
"contour-0.95", "studies", "filled-studies", ...) so that tests and users can find them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Polygon
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from fibrosim._checks import as_float_array, check_level
from fibrosim.meta._inputs import check_yv

FloatArray = NDArray[np.float64]

__all__ = ["forest", "funnel", "power_curve"]


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _identity(x: FloatArray) -> FloatArray:
    return x


def forest(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    labels: Sequence[str] | None = None,
    result: Any = None,
    extra_columns: Mapping[str, Sequence[Any]] | None = None,
    transform: Callable[[FloatArray], FloatArray] | None = None,
    xlabel: str | None = None,
    level: float = 0.95,
    summary_label: str = "RE model",
    ax: Axes | None = None,
) -> Axes:
    """Forest plot: study estimates with CIs, the pooled diamond and the prediction interval.

    Parameters
    ----------
    yi, vi : array_like, shape (k,)
        Effect sizes and sampling variances.
    labels : sequence of str, optional
        Study labels (default "Study 1", ...).
    result : RandomEffectsResult, optional
        A fit of these studies (:func:`fibrosim.meta.frequentist.random_effects`): adds the
        summary diamond (CI) and the prediction-interval bar, and sets the square sizes from the
        random-effects weights ``1/(vi + tau2)`` (inverse-variance weights without it).
    extra_columns : mapping of str to sequence, optional
        Text columns (e.g. sample sizes) shown right of the plot, one value per study.
    transform : callable, optional
        Applied to every effect and limit before plotting, e.g. ``np.exp`` for ratio measures
        (the x axis then becomes logarithmic).  Give ``xlabel`` to name the scale.
    xlabel : str, optional
        Axis label.
    level : float
        Confidence level of the study intervals.
    summary_label : str
        Row label of the summary diamond.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import numpy as np
    >>> from fibrosim.plots import forest
    >>> ax = forest([0.2, 0.5, 0.1], [0.04, 0.09, 0.05], labels=["A", "B", "C"])
    """
    y, v = check_yv(yi, vi, min_k=1)
    level = check_level("level", level)
    k = len(y)
    if labels is None:
        labels = [f"Study {i + 1}" for i in range(k)]
    if len(labels) != k:
        raise ValueError(f"`labels` must have one entry per study: got {len(labels)} for k = {k}.")
    cols = dict(extra_columns or {})
    for name, values in cols.items():
        if len(values) != k:
            raise ValueError(
                f"`extra_columns[{name!r}]` must have one entry per study: got {len(values)} "
                f"for k = {k}."
            )
    f = transform if transform is not None else _identity
    ax = _axes(ax)
    z = float(stats.norm.isf((1 - level) / 2))
    se = np.sqrt(v)
    lo, hi = f(y - z * se), f(y + z * se)
    est = f(y)
    rows = np.arange(k, 0, -1).astype(float)  # first study on top
    tau2 = float(result.tau2) if result is not None else 0.0
    w = 1.0 / (v + tau2)
    ax.hlines(rows, lo, hi, colors="black", linewidth=1.0, gid="ci")
    # marker area proportional to the weight, the largest study at 120 pt²
    ax.scatter(est, rows, s=120.0 * w / w.max(), marker="s", color="black", zorder=3, gid="squares")
    ticks = list(rows)
    tick_labels = list(labels)
    if result is not None:
        y0 = -0.5
        h = 0.35
        c_lo, c_mu, c_hi = f(np.asarray([result.ci_low, result.estimate, result.ci_high], float))
        diamond = Polygon(
            [(c_lo, y0), (c_mu, y0 + h), (c_hi, y0), (c_mu, y0 - h)],
            closed=True,
            facecolor="black",
            gid="summary-diamond",
        )
        ax.add_patch(diamond)
        p_lo, p_hi = f(np.asarray([result.pi_low, result.pi_high], float))
        ax.hlines(
            [y0],
            [p_lo],
            [p_hi],
            colors="black",
            linestyles="dotted",
            linewidth=1.2,
            gid="prediction-interval",
        )
        ticks.append(y0)
        tick_labels.append(summary_label)
    ax.axvline(
        float(f(np.asarray(0.0))), color="grey", linestyle="--", linewidth=0.8, gid="null-line"
    )
    ax.set_yticks(ticks, tick_labels)
    ax.set_ylim(-1.5 if result is not None else 0.3, k + 1.0)
    if transform is np.exp:
        ax.set_xscale("log")
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    # text columns in axes coordinates (x) and data coordinates (y)
    trans = ax.get_yaxis_transform()
    x_pos = 1.03
    for name, values in cols.items():
        ax.text(
            x_pos,
            k + 0.6,
            str(name),
            transform=trans,
            fontweight="bold",
            va="center",
            gid=f"header-{name}",
        )
        for r, val in zip(rows, values, strict=True):
            ax.text(x_pos, r, f"{val}", transform=trans, va="center", gid=f"extra-{name}")
        x_pos += 0.15
    summary_rows = [(r, e, a, b) for r, e, a, b in zip(rows, est, lo, hi, strict=True)]
    if result is not None:
        summary_rows.append((-0.5, c_mu, c_lo, c_hi))
    for r, e, a, b in summary_rows:
        ax.text(
            x_pos,
            r,
            f"{e:.2f} [{a:.2f}, {b:.2f}]",
            transform=trans,
            va="center",
            gid="estimate-text",
        )
    return ax


def funnel(
    yi: ArrayLike,
    vi: ArrayLike,
    *,
    result: Any = None,
    contours: Sequence[float] | None = (0.90, 0.95, 0.99),
    filled: Any = None,
    ax: Axes | None = None,
) -> Axes:
    """Funnel plot (effect vs standard error), contour-enhanced by default.

    Parameters
    ----------
    yi, vi : array_like, shape (k,)
        Effect sizes and sampling variances of the observed studies.
    result : RandomEffectsResult, optional
        Fit whose estimate centres the pseudo-confidence funnel (default: the inverse-variance
        weighted mean, or the trim-and-fill fit when ``filled`` is given).
    contours : sequence of float or None
        Significance contours around 0: the regions where a study's two-sided z test is
        significant at 1 - level are shaded (Peters et al. 2008).  None draws no contours.
    filled : TrimFillResult, optional
        Studies imputed by :func:`fibrosim.meta.diagnostics.trim_and_fill`, drawn as open
        points.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    References
    ----------
    Peters JL, Sutton AJ, Jones DR, Abrams KR, Rushton L (2008). Contour-enhanced meta-analysis
    funnel plots help distinguish publication bias from other causes of asymmetry. J Clin
    Epidemiol 61:991-996.

    Examples
    --------
    >>> from fibrosim.plots import funnel
    >>> ax = funnel([0.2, 0.5, 0.1, 0.4], [0.04, 0.09, 0.05, 0.02])
    """
    y, v = check_yv(yi, vi, min_k=1)
    levels = [] if contours is None else [float(c) for c in contours]
    for c in levels:
        check_level("contours", c)
    ax = _axes(ax)
    se = np.sqrt(v)
    fill_y = fill_v = np.empty(0)
    if filled is not None:
        mask = np.asarray(filled.filled, dtype=bool)
        fill_y = np.asarray(filled.yi, dtype=float)[mask]
        fill_v = np.asarray(filled.vi, dtype=float)[mask]
    se_max = 1.05 * float(np.max(np.concatenate([se, np.sqrt(fill_v)])))
    grid = np.array([0.0, se_max])
    # Peters et al.'s shading: white where no study would be significant (inside the narrowest
    # contour), then bands that lighten outwards; beyond the widest contour the axes background.
    # Triangles are painted from the widest inwards so each band stays visible.
    desc = sorted(levels, reverse=True)
    greys = [str(g) for g in np.linspace(0.75, 0.55, max(len(desc) - 1, 1))][: len(desc) - 1]
    shades = [*greys, "white"] if desc else []
    for c, shade in zip(desc, shades, strict=True):
        zc = float(stats.norm.isf((1 - c) / 2))
        ax.fill_betweenx(
            grid,
            -zc * grid,
            zc * grid,
            color=shade,
            linewidth=0,
            zorder=0,
            gid=f"contour-{c:g}",
        )
    if desc:
        ax.set_facecolor("0.88")
    if result is not None:
        centre = float(result.estimate)
    elif filled is not None:
        centre = float(filled.fit.estimate)
    else:
        w = 1.0 / v
        centre = float(np.sum(w * y) / np.sum(w))
    z95 = float(stats.norm.isf(0.025))
    ax.plot(
        [centre - z95 * se_max, centre, centre + z95 * se_max],
        [se_max, 0.0, se_max],
        color="black",
        linestyle="--",
        linewidth=0.8,
        gid="funnel-lines",
    )
    ax.axvline(centre, color="black", linewidth=0.8, gid="estimate-line")
    ax.scatter(y, se, color="black", zorder=3, gid="studies")
    if fill_y.size:
        ax.scatter(
            fill_y,
            np.sqrt(fill_v),
            facecolors="none",
            edgecolors="black",
            zorder=3,
            gid="filled-studies",
        )
    ax.set_ylim(se_max, 0.0)  # precise studies on top
    ax.set_ylabel("standard error")
    ax.set_xlabel("effect size")
    return ax


def power_curve(
    x: ArrayLike,
    power: ArrayLike,
    *,
    labels: Sequence[str] | None = None,
    mcse: ArrayLike | None = None,
    target: float | None = 0.8,
    xlabel: str = "n per arm",
    ylabel: str = "power",
    ax: Axes | None = None,
) -> Axes:
    """Power (or assurance) against a design parameter, one line per scenario.

    Parameters
    ----------
    x : array_like, shape (n,)
        Design parameter, e.g. the sample size per arm.
    power : array_like, shape (n,) or (m, n)
        Power of each of m scenarios at each x, in [0, 1].
    labels : sequence of str, optional
        Legend entry of each scenario.
    mcse : array_like, optional
        Monte Carlo standard error of simulated power (same shape as ``power``); draws a band of
        ±1.96 MCSE.
    target : float or None
        Horizontal reference line (e.g. 0.8).
    xlabel, ylabel : str
        Axis labels.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> from fibrosim.plots import power_curve
    >>> ax = power_curve([20, 40, 60], [0.35, 0.6, 0.78])
    """
    xs = as_float_array("x", x)
    pw = as_float_array("power", power)
    if xs.ndim != 1:
        raise ValueError(f"`x` must be 1-D; got shape {xs.shape}.")
    pw2 = np.atleast_2d(pw)
    if pw.ndim > 2 or pw2.shape[1] != len(xs):
        raise ValueError(
            f"`power` must have shape (n,) or (m, n) with n = len(x) = {len(xs)}; got {pw.shape}."
        )
    if np.any((pw2 < 0) | (pw2 > 1)):
        idx = tuple(int(i) for i in np.argwhere((pw2 < 0) | (pw2 > 1))[0])
        raise ValueError(f"`power` must lie in [0, 1]; got {pw2[idx]} at index {idx}.")
    if labels is not None and len(labels) != pw2.shape[0]:
        raise ValueError(
            f"`labels` must name each of the {pw2.shape[0]} curves; got {len(labels)} labels."
        )
    ax = _axes(ax)
    se2 = None
    if mcse is not None:
        se2 = np.atleast_2d(as_float_array("mcse", mcse))
        if se2.shape != pw2.shape:
            raise ValueError(f"`mcse` must have the shape of `power` {pw.shape}; got {se2.shape}.")
    for j, curve in enumerate(pw2):
        label = labels[j] if labels is not None else None
        (line,) = ax.plot(xs, curve, marker="o", markersize=3, label=label, gid=f"power-{j}")
        if se2 is not None:
            ax.fill_between(
                xs,
                np.clip(curve - 1.96 * se2[j], 0, 1),
                np.clip(curve + 1.96 * se2[j], 0, 1),
                color=line.get_color(),
                alpha=0.2,
                linewidth=0,
                gid=f"mcse-{j}",
            )
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=0.8, gid="target")
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if labels is not None:
        ax.legend()
    return ax
