"""Recursive numerical integration of a group-sequential statistic (the array core).

The sub-density of the paths still running after each analysis is held on a Simpson grid and
convolved with the normal increment of the next analysis (Armitage, McPherson & Rowe 1969;
Jennison & Turnbull 2000, ch. 19); crossing probabilities integrate the normal tail exactly over
that grid.  Two grids do this:

* the *lattice* (one trial from the start, no futility bound before the last analysis): every
  analysis has a uniform grid of the score scale ``S_k = sqrt(t_k) Z_k`` with one spacing ``h``
  for the whole trial, ending exactly at the efficacy bound.  The kernel of a step then depends
  on ``j - i`` only (Toeplitz), so it is one row of ``m_k + m_{k+1} - 1`` normal densities and
  the step is a discrete convolution;
* the *general* grid (batches of drifts, interim starting points, futility bounds that truncate
  the grid from below): per-row Simpson grids on the z scale, dense kernel per step.

Both put ``_POINTS_PER_KERNEL_SD`` grid points per SD of the next step's increment.  Boundaries
at a stage are found by safeguarded Newton steps on the log crossing probability, whose
derivative is the density at the bound.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special

from fibrosim._checks import FloatArray

Grid = tuple[int, float]  # (minimum points, points per SD of the next step's kernel)

_MIN_GRID = 201
# The continuing sub-density is bounded by the N(mean, sd^2) density of Z_k; cutting it 7.5 sd
# from the mean loses < 1e-13 of probability per analysis.
_TAIL_SD = 7.5
# Grid points per SD of the next step's normal kernel.  Simpson's error falls as h^4 and is
# largest where looks are close: at 10 points per SD the bounds of every kind with K <= 10
# are within 1e-6 of a 2001-point, 40-per-SD grid (tests/test_sequential.py; measured worst
# 1.6e-7 for equal looks, 2.4e-7 over random uneven looks 0.02 apart and alpha 0.005-0.1).
_POINTS_PER_KERNEL_SD = 10.0
_FINE: Grid = (_MIN_GRID, _POINTS_PER_KERNEL_SD)
_COARSE: Grid = (41, 1.5)  # only to bracket a root before polishing on the fine grid
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
#: 48-point Gauss-Hermite rule for averages over a normal drift (predictive power, assurance).
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(48)
_GH_WEIGHTS = _GH_WEIGHTS / np.sqrt(2.0 * np.pi)


_ARANGE = np.arange(20_001.0)  # node offsets, sliced rather than rebuilt at every step


def _simpson_coef(m: int) -> FloatArray:
    """Simpson coefficients 1, 4, 2, ..., 4, 1 (m odd), without the h / 3 factor."""
    coef = np.ones(m)
    coef[1:-1:2] = 4.0
    coef[2:-1:2] = 2.0
    return coef


@functools.lru_cache(maxsize=256)
def _simpson_weights(m: int, h: float) -> FloatArray:
    """Simpson weights of ``m`` (odd) nodes ``h`` apart (cached: grids repeat across roots)."""
    weights = _simpson_coef(m) * (h / 3.0)
    weights.flags.writeable = False
    return weights


def _solve_tail(mass: FloatArray, shift: FloatArray, scale: float, target: float) -> float:
    """``b`` with ``sum(mass * Phi(shift - b * scale)) = target`` (``mass >= 0``, 1-D).

    Newton steps on ``log P(b) - log target`` (``P' = -scale * sum(mass * phi)``), started at
    the root for a normal mixture of the same mean and variance and kept inside a bracket
    from the extreme shifts; a step that leaves the bracket is replaced by bisection.
    ``inf`` when nothing is to be spent, ``-inf`` when the target is all that still runs.
    """
    if target <= 0.0:
        return math.inf
    total = float(np.sum(mass))
    if target >= total:
        return -math.inf
    q = float(special.ndtri(target / total))
    lo = (float(np.min(shift)) - q) / scale  # P(lo) >= target
    hi = (float(np.max(shift)) - q) / scale  # P(hi) <= target
    mean = float(np.dot(mass, shift)) / total
    var = float(np.dot(mass, (shift - mean) ** 2)) / total
    b = min(max((mean - math.sqrt(1.0 + var) * q) / scale, lo), hi)
    log_target = math.log(target)
    for _ in range(200):
        x = shift - b * scale
        prob = float(np.dot(mass, special.ndtr(x)))
        if prob <= 0.0:
            hi, step = b, math.nan
        else:
            gap = math.log(prob) - log_target
            if gap > 0.0:
                lo = b
            else:
                hi = b
            slope = scale * float(np.dot(mass, np.exp(-0.5 * x * x))) * _INV_SQRT_2PI
            step = gap * prob / slope if slope > 0.0 else math.nan
        tol = 1e-13 * max(1.0, abs(b))
        if abs(step) <= tol:  # False for nan
            return b + step
        b = b + step
        if not lo < b < hi:  # also catches nan
            b = 0.5 * (lo + hi)
        if hi - lo <= tol:
            return b
    raise ArithmeticError("a group-sequential bound did not converge.")  # pragma: no cover


# --------------------------------------------------------------------------------------------
# the lattice: one trial, uniform grids of the score scale with a common spacing
# --------------------------------------------------------------------------------------------
def _lattice_spacing(timing: FloatArray, grid: Grid) -> float:
    """Common spacing of the score-scale lattice.

    ``grid[1]`` points per SD of every increment, and at least ``grid[0]`` points across the
    first analysis' +- 7.5 SD.
    """
    h = 2.0 * _TAIL_SD * math.sqrt(float(timing[0])) / (grid[0] - 1)
    if timing.size > 1:
        h = min(h, math.sqrt(float(np.min(np.diff(timing)))) / grid[1])
    return h


class _Lattice:
    """Sub-density of the continuing paths at analysis ``t`` on a uniform score-scale grid.

    ``s`` are the nodes of ``S = sqrt(t) Z``, ``mass`` the Simpson weight times the density at
    each node (so sums over ``mass`` integrate).  The start of the trial is a unit point mass at
    ``S = 0``, ``t = 0``.

    With ``dmass`` the lattice also carries the derivative of ``mass`` with respect to a
    parameter that moves the bounds (``d upper_k = dupper_k``; the constant ``c`` of a
    constant-shape family): the grid ends at the bound, so it moves rigidly at the speed
    ``speed = sqrt(t) * dupper`` (0 where the grid is cut at 7.5 SD instead).
    """

    __slots__ = ("dmass", "drift", "h", "mass", "s", "speed", "t")

    def __init__(
        self,
        s: FloatArray,
        mass: FloatArray,
        t: float,
        drift: float,
        h: float,
        dmass: FloatArray | None = None,
        speed: float = 0.0,
    ):
        self.s, self.mass, self.t, self.drift, self.h = s, mass, t, drift, h
        self.dmass, self.speed = dmass, speed

    @classmethod
    def start(cls, drift: float, h: float, tangent: bool = False) -> _Lattice:
        return cls(np.zeros(1), np.ones(1), 0.0, drift, h, np.zeros(1) if tangent else None)

    def shift_scale(self, t: float) -> tuple[FloatArray, float]:
        """P(Z_t >= b | node) = Phi(shift - b * scale)."""
        dt = t - self.t
        return (self.s + self.drift * dt) / math.sqrt(dt), math.sqrt(t / dt)

    def tails(self, t: float, upper: float, lower: float) -> tuple[float, float]:
        """P(cross above ``upper``) and P(cross below ``lower``) at the next analysis ``t``."""
        shift, scale = self.shift_scale(t)
        up = lo = 0.0
        if upper < np.inf:
            up = float(np.dot(self.mass, special.ndtr(shift - upper * scale)))
        if lower > -np.inf:
            lo = float(np.dot(self.mass, special.ndtr(lower * scale - shift)))
        return up, lo

    def upper_tail_slope(self, t: float, upper: float, dupper: float) -> tuple[float, float]:
        """P(cross above ``upper`` at ``t``) and its derivative (needs ``dmass``)."""
        assert self.dmass is not None
        shift, scale = self.shift_scale(t)
        x = shift - upper * scale
        density = np.exp(-0.5 * x * x) * _INV_SQRT_2PI
        # the crossing point moves at sqrt(t) * dupper, the nodes at self.speed
        rel = (self.speed - math.sqrt(t) * dupper) / math.sqrt(t - self.t)
        tail = special.ndtr(x)
        slope = float(np.dot(self.dmass, tail)) + rel * float(np.dot(self.mass, density))
        return float(np.dot(self.mass, tail)), slope

    def advance(self, t: float, upper: float, dupper: float = 0.0) -> _Lattice:
        """Sub-density at analysis ``t`` of the paths continuing below ``upper``."""
        h, sd_t = self.h, math.sqrt(t)
        mean = self.drift * t
        cap = mean + _TAIL_SD * sd_t
        high = min(upper * sd_t, cap)
        low = mean - _TAIL_SD * sd_t
        if not high > low:  # (almost) every path has stopped: a dead grid
            dead = np.zeros(3)
            return _Lattice(low + h * np.arange(3.0), dead, t, self.drift, h, dead, 0.0)
        n = max(2, math.ceil((high - low) / h))
        n += n % 2
        s_new = high - h * (_ARANGE[n::-1] if n < _ARANGE.size else np.arange(n, -1.0, -1.0))
        dt = t - self.t
        sd = math.sqrt(dt)
        # kernel[j - i] = phi((s_new[j] - s[i] - drift * dt) / sd) / sd for j - i = -(m - 1)..n
        offset = (s_new[0] - self.s[0] - self.drift * dt) / sd
        x = offset + (h / sd) * np.arange(1.0 - self.s.size, n + 1.0)
        kernel = np.exp(-0.5 * x * x) * (_INV_SQRT_2PI / sd)
        weights = _simpson_weights(n + 1, h)
        dens = np.convolve(self.mass, kernel, mode="valid")
        if self.dmass is None:
            return _Lattice(s_new, dens * weights, t, self.drift, h)
        speed = sd_t * dupper if upper * sd_t < cap else 0.0
        # d/dc sum_i mass_i g(y_j - x_i) = sum_i dmass_i g + (speed - self.speed) mass_i g'
        ddens = np.convolve(self.dmass, kernel, mode="valid")
        if speed != self.speed:
            dkernel = kernel * x * ((self.speed - speed) / sd)
            ddens += np.convolve(self.mass, dkernel, mode="valid")
        return _Lattice(s_new, dens * weights, t, self.drift, h, ddens * weights, speed)


def _lattice_crossing(
    upper: FloatArray, lower: FloatArray, timing: FloatArray, drift: float, grid: Grid
) -> tuple[FloatArray, FloatArray]:
    """Per-analysis crossing probabilities, shape (K,), of one trial (lower[:-1] = -inf)."""
    k = timing.size
    path = _Lattice.start(drift, _lattice_spacing(timing, grid))
    up, lo = np.zeros(k), np.zeros(k)
    for j in range(k):
        up[j], lo[j] = path.tails(float(timing[j]), float(upper[j]), float(lower[j]))
        if j + 1 < k:
            path = path.advance(float(timing[j]), float(upper[j]))
    return up, lo


def _shape_crossing(
    c: float, shape: FloatArray, timing: FloatArray, grid: Grid
) -> tuple[FloatArray, FloatArray]:
    """Per-analysis H0 crossing probabilities of the bounds ``c * shape`` and their d/dc."""
    k = timing.size
    path = _Lattice.start(0.0, _lattice_spacing(timing, grid), tangent=True)
    up, slope = np.zeros(k), np.zeros(k)
    for j in range(k):
        t, s_j = float(timing[j]), float(shape[j])
        up[j], slope[j] = path.upper_tail_slope(t, c * s_j, s_j)
        if j + 1 < k:
            path = path.advance(t, c * s_j, s_j)
    return up, slope


def _spending_bounds(
    timing: FloatArray, cum_alpha: FloatArray, grid: Grid | None = None
) -> tuple[FloatArray, FloatArray]:
    """Efficacy bounds spending ``diff(cum_alpha)`` under H0 (no futility bounds).

    Also returns the crossing probability achieved at each analysis (equal to the spent
    increment up to the root tolerance), so no second pass is needed.
    """
    k = timing.size
    upper, achieved = np.full(k, np.inf), np.zeros(k)
    path = _Lattice.start(0.0, _lattice_spacing(timing, _FINE if grid is None else grid))
    spent = np.diff(np.concatenate([[0.0], cum_alpha]))
    for j in range(k):
        t = float(timing[j])
        shift, scale = path.shift_scale(t)
        upper[j] = _solve_tail(path.mass, shift, scale, float(spent[j]))
        achieved[j] = path.tails(t, float(upper[j]), -np.inf)[0]
        if j + 1 < k:
            path = path.advance(t, float(upper[j]))
    return upper, achieved


# --------------------------------------------------------------------------------------------
# the general grid: batches of drifts, interim starts, futility bounds
# --------------------------------------------------------------------------------------------
def _simpson(low: FloatArray, high: FloatArray, m: int) -> tuple[FloatArray, FloatArray]:
    """Simpson nodes (B, m) and weights (B, m) on [low, high] per batch row (m odd)."""
    frac = np.linspace(0.0, 1.0, m)
    z = low[:, None] + (high - low)[:, None] * frac
    h = (high - low) / (m - 1)
    return z, (h / 3.0)[:, None] * _simpson_coef(m)


def _grid_size(width: float, kernel_sd: float, grid: Grid) -> int:
    """Odd number of Simpson points: >= grid[0] and dense enough for the next step's kernel."""
    m = max(grid[0], int(np.ceil(width / kernel_sd * grid[1])) + 1)
    return m + (m % 2 == 0)


class _Path:
    """Sub-density of the paths still running after analysis ``t``, on a Simpson grid.

    ``z0`` and ``t0`` are the starting point (0, 0 at the start of the trial; an observed
    interim value for conditional power); they bound the support of the sub-density.
    """

    __slots__ = ("density", "t", "t0", "weights", "z", "z0")

    def __init__(
        self,
        z: FloatArray,
        weights: FloatArray,
        density: FloatArray,
        t: float,
        z0: FloatArray,
        t0: float,
    ):
        self.z, self.weights, self.density, self.t = z, weights, density, t
        self.z0, self.t0 = z0, t0


def _start(z0: FloatArray, t0: float) -> _Path:
    """A point mass at ``z0`` after information ``t0`` (t0 = 0: the start of the trial)."""
    one = np.ones((z0.shape[0], 1))
    return _Path(z0[:, None], one, one, t0, z0, t0)


def _shift_scale(path: _Path, t: float, drift: FloatArray) -> tuple[FloatArray, float]:
    """P(Z_t >= b | node) = Phi(shift - b * scale), shift of shape (B, m)."""
    dt = t - path.t
    shift = (np.sqrt(path.t) * path.z + drift[:, None] * dt) / np.sqrt(dt)
    return shift, math.sqrt(t / dt)


def _step_tails(
    path: _Path, t: float, drift: FloatArray, upper: float, lower: float
) -> tuple[FloatArray, FloatArray]:
    """P(cross above ``upper``) and P(cross below ``lower``) at the next analysis ``t``."""
    shift, scale = _shift_scale(path, t, drift)
    mass = path.weights * path.density
    up = np.zeros(drift.shape)
    lo = np.zeros(drift.shape)
    if upper < np.inf:
        up = np.sum(mass * special.ndtr(shift - upper * scale), axis=1)
    if lower > -np.inf:
        lo = np.sum(mass * special.ndtr(lower * scale - shift), axis=1)
    return np.asarray(up, dtype=np.float64), np.asarray(lo, dtype=np.float64)


def _advance(
    path: _Path,
    t: float,
    drift: FloatArray,
    upper: float,
    lower: float,
    t_next: float,
    grid: Grid | None = None,
) -> _Path:
    """Sub-density at analysis ``t`` of the paths continuing (between ``lower`` and ``upper``)."""
    grid = _FINE if grid is None else grid
    dt = t - path.t
    mean = (np.sqrt(path.t) * path.z + drift[:, None] * dt) / np.sqrt(t)
    sd = np.sqrt(dt / t)
    # support: the unconditional law of Z_t given the start bounds the sub-density
    centre = (np.sqrt(path.t0) * path.z0 + drift * (t - path.t0)) / np.sqrt(t)
    spread = _TAIL_SD * np.sqrt((t - path.t0) / t)
    low = np.maximum(lower, centre - spread)
    high = np.maximum(np.minimum(upper, centre + spread), low)
    m = _grid_size(float(np.max(high - low)), float(np.sqrt((t_next - t) / t)), grid)
    z, w = _simpson(low, high, m)
    mass = path.weights * path.density
    kernel = np.exp(-0.5 * ((z[:, :, None] - mean[:, None, :]) / sd) ** 2)
    dens = np.einsum("bi,bji->bj", mass, kernel) / (sd * np.sqrt(2.0 * np.pi))
    return _Path(z, w, dens, t, path.z0, path.t0)


def _solve_stage_bound(
    path: _Path, t: float, drift: FloatArray, target: float, upper: bool
) -> float:
    """Bound at analysis ``t`` whose crossing probability (from ``path``, one row) is ``target``."""
    shift, scale = _shift_scale(path, t, drift)
    mass = (path.weights * path.density)[0]
    if upper:
        return _solve_tail(mass, shift[0], scale, target)
    # P(Z < b) = sum(mass * Phi(b * scale - shift)): the upper problem for -shift, -b
    return -_solve_tail(mass, -shift[0], scale, target)


def _crossing(
    upper: FloatArray,
    lower: FloatArray,
    timing: FloatArray,
    drift: FloatArray,
    *,
    z0: FloatArray | None = None,
    t0: float = 0.0,
    grid: Grid | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Per-analysis probabilities of crossing the upper and the lower bound, shape (B, K).

    ``grid`` None is the default fine grid (``_FINE`` at call time).
    """
    grid = _FINE if grid is None else grid
    drift = np.atleast_1d(np.asarray(drift, dtype=np.float64))
    k = timing.size
    if drift.size == 1 and z0 is None and t0 == 0.0 and np.all(np.isneginf(lower[:-1])):
        up1, lo1 = _lattice_crossing(upper, lower, timing, float(drift[0]), grid)
        return up1[None, :], lo1[None, :]
    z_start = np.zeros_like(drift) if z0 is None else np.broadcast_to(z0, drift.shape) * 1.0
    path = _start(z_start, t0)
    up = np.zeros((drift.size, k))
    lo = np.zeros((drift.size, k))
    for j in range(k):
        up[:, j], lo[:, j] = _step_tails(path, timing[j], drift, upper[j], lower[j])
        if j + 1 < k:
            path = _advance(path, timing[j], drift, upper[j], lower[j], timing[j + 1], grid)
    return up, lo


def _fine() -> Grid:
    """The default fine grid, read at call time."""
    return _FINE
