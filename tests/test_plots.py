"""Forest, funnel and power-curve figures: positions and shapes of the artists, not pixels."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless, whatever the environment sets

from collections.abc import Iterator
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection, PolyCollection
from matplotlib.patches import Polygon
from scipy import stats

from fibrosim.meta.diagnostics import trim_and_fill
from fibrosim.meta.frequentist import random_effects
from fibrosim.plots import forest, funnel, power_curve

# BCG log risk ratios (anchors §6.7, escalc RR)
YI = np.array([-0.8893113339, -1.5853886572, -1.3480731483, -1.4415511900, -0.2175473222,
               -0.7861155858, -1.6208982236, 0.0119523335, -0.4694176487, -1.3713448035,
               -0.3393588283, 0.4459134006, -0.0173139482])  # fmt: skip
VI = np.array([0.3255847650, 0.1945811214, 0.4153679654, 0.0200100319, 0.0512101722,
               0.0069056185, 0.2230172476, 0.0039615793, 0.0564342105, 0.0730247936,
               0.0124122140, 0.5325058452, 0.0714046597])  # fmt: skip


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    plt.close("all")


def _by_gid(ax: Any, gid: str) -> list[Any]:
    artists = [*ax.collections, *ax.patches, *ax.lines, *ax.texts]
    return [a for a in artists if a.get_gid() == gid]


def test_forest_squares_whiskers_diamond_and_prediction_interval() -> None:
    res = random_effects(YI, VI)
    labels = [f"trial {i + 1}" for i in range(13)]
    ax = forest(YI, VI, labels=labels, result=res, extra_columns={"n": list(range(13))})
    (squares,) = _by_gid(ax, "squares")
    assert isinstance(squares, PathCollection)
    offsets = squares.get_offsets()
    assert offsets.shape == (13, 2)
    np.testing.assert_allclose(offsets[:, 0], YI)
    # marker area is proportional to the random-effects weight
    w = 1 / (VI + float(res.tau2))
    np.testing.assert_allclose(squares.get_sizes(), 120 * w / w.max())
    (whiskers,) = _by_gid(ax, "ci")
    assert isinstance(whiskers, LineCollection)
    segs = np.array(whiskers.get_segments())
    z = stats.norm.isf(0.025)
    np.testing.assert_allclose(segs[:, 0, 0], YI - z * np.sqrt(VI))
    np.testing.assert_allclose(segs[:, 1, 0], YI + z * np.sqrt(VI))
    (diamond,) = _by_gid(ax, "summary-diamond")
    assert isinstance(diamond, Polygon)
    xy = diamond.get_xy()[:4]
    np.testing.assert_allclose(
        xy[:, 0], [res.ci_low, res.estimate, res.ci_high, res.estimate], rtol=1e-12
    )
    (pi,) = _by_gid(ax, "prediction-interval")
    seg = pi.get_segments()[0]
    np.testing.assert_allclose(seg[:, 0], [res.pi_low, res.pi_high], rtol=1e-12)
    tick_text = [t.get_text() for t in ax.get_yticklabels()]
    assert tick_text == [*labels, "RE model"]
    assert [t.get_text() for t in _by_gid(ax, "extra-n")] == [str(i) for i in range(13)]
    assert len(_by_gid(ax, "estimate-text")) == 14


def test_forest_transform_and_given_axes() -> None:
    _fig, ax0 = plt.subplots()
    res = random_effects(YI, VI)
    ax = forest(YI, VI, result=res, transform=np.exp, xlabel="risk ratio", ax=ax0)
    assert ax is ax0 and ax.get_xscale() == "log" and ax.get_xlabel() == "risk ratio"
    (squares,) = _by_gid(ax, "squares")
    np.testing.assert_allclose(squares.get_offsets()[:, 0], np.exp(YI))
    (null,) = _by_gid(ax, "null-line")
    assert null.get_xdata()[0] == 1.0
    (diamond,) = _by_gid(ax, "summary-diamond")
    np.testing.assert_allclose(diamond.get_xy()[1, 0], np.exp(res.estimate), rtol=1e-12)


def test_forest_without_result_uses_inverse_variance_weights() -> None:
    ax = forest(YI, VI)
    assert not _by_gid(ax, "summary-diamond")
    (squares,) = _by_gid(ax, "squares")
    np.testing.assert_allclose(squares.get_sizes(), 120 * (1 / VI) / (1 / VI).max())


def test_funnel_contours_points_and_filled_studies() -> None:
    tf = trim_and_fill(YI, VI, method="EE")
    ax = funnel(YI, VI, filled=tf)
    for level in (0.9, 0.95, 0.99):
        (band,) = _by_gid(ax, f"contour-{level:g}")
        assert isinstance(band, PolyCollection)
        # the band's half-width at the bottom of the plot is z_(1-alpha/2) * se_max
        verts = band.get_paths()[0].vertices
        se_max = 1.05 * np.sqrt(max(VI.max(), tf.vi.max()))
        z = stats.norm.isf((1 - level) / 2)
        np.testing.assert_allclose(np.max(np.abs(verts[:, 0])), z * se_max, rtol=1e-12)
    (pts,) = _by_gid(ax, "studies")
    np.testing.assert_allclose(pts.get_offsets(), np.column_stack([YI, np.sqrt(VI)]))
    (open_pts,) = _by_gid(ax, "filled-studies")
    assert len(open_pts.get_offsets()) == tf.k0 == 4
    assert open_pts.get_facecolors().size == 0  # open points: no face colour
    (centre,) = _by_gid(ax, "estimate-line")
    np.testing.assert_allclose(centre.get_xdata()[0], tf.fit.estimate, rtol=1e-12)
    lo, hi = ax.get_ylim()
    assert lo > hi == 0.0  # inverted: precise studies on top


def test_funnel_without_contours_centres_on_result() -> None:
    res = random_effects(YI, VI)
    ax = funnel(YI, VI, result=res, contours=None)
    assert not [c for c in ax.collections if str(c.get_gid()).startswith("contour")]
    (centre,) = _by_gid(ax, "estimate-line")
    assert centre.get_xdata()[0] == pytest.approx(float(res.estimate))


def test_power_curve_lines_band_and_target() -> None:
    x = np.array([20.0, 40.0, 60.0])
    pw = np.array([[0.3, 0.55, 0.75], [0.4, 0.7, 0.88]])
    ax = power_curve(x, pw, labels=["d=0.4", "d=0.5"], mcse=np.full_like(pw, 0.01), target=0.9)
    for j in range(2):
        (line,) = _by_gid(ax, f"power-{j}")
        np.testing.assert_array_equal(line.get_xdata(), x)
        np.testing.assert_array_equal(line.get_ydata(), pw[j])
        assert len(_by_gid(ax, f"mcse-{j}")) == 1
    (target,) = _by_gid(ax, "target")
    assert target.get_ydata()[0] == 0.9
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["d=0.4", "d=0.5"]


def test_plot_input_errors() -> None:
    with pytest.raises(ValueError, match="`labels` must have one entry per study: got 2 for k = 3"):
        forest([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], labels=["a", "b"])
    with pytest.raises(ValueError, match=r"`extra_columns\['n'\]` must have one entry per study"):
        forest([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], extra_columns={"n": [1, 2]})
    with pytest.raises(ValueError, match=r"`contours` must be a number in \(0, 1\)"):
        funnel([0.1, 0.2, 0.3], [0.1, 0.1, 0.1], contours=(95,))
    with pytest.raises(ValueError, match=r"`power` must lie in \[0, 1\]; got 1.2"):
        power_curve([1.0, 2.0], [0.5, 1.2])
    with pytest.raises(ValueError, match=r"`power` must have shape \(n,\) or \(m, n\)"):
        power_curve([1.0, 2.0], [0.5, 0.6, 0.7])
    with pytest.raises(ValueError, match=r"`vi` must be > 0; got 0.0 at index 0"):
        funnel([0.1, 0.2], [0.0, 0.1])
    with pytest.raises(ValueError, match=r"`yi` and `vi` hold no studies \(length 0\)"):
        forest([], [])
    with pytest.raises(ValueError, match=r"`yi` and `vi` must be 1-D arrays of the same length"):
        forest([0.1, 0.2], [0.1])
