"""Batched one-dimensional posterior marginals: the shared summary logic and normal mixtures.

The exact posterior of the normal-normal model (:mod:`fibrosim.meta.bayes`) gives μ, a new
study's effect θ_new and each study's shrunken effect θᵢ as normal mixtures over quadrature
nodes in τ: p(μ | y) = Σ_n W_n N(μ | m_n, s_n²) with W_n = quadrature weight × p(τ_n | y).  This
module holds those mixtures (batched over meta-analyses: every array has leading batch axes and
the node axis last) and the summaries every marginal shares (median, quantile-based intervals,
shortest intervals).

Shapes: a marginal with batch shape ``S`` evaluated at ``x`` of shape ``Q`` returns ``S + Q``
(every meta-analysis at every point).
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from fibrosim._checks import check_choice, check_in_interval, check_level
from fibrosim.meta._mixture_kernels import mixture_quantiles
from fibrosim.warnings import ConvergenceWarning

__all__ = ["Marginal", "NormalMixtureMarginal"]

FloatArray = NDArray[np.float64]
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
_CHUNK = 4_000_000  # elements of (rows, points, nodes) temporaries per chunk


class Marginal:
    """A batch of one-dimensional posterior marginals.

    Subclasses supply ``_cdf``, ``_logpdf`` (flat batch ``(B,)`` × points ``(B, Q)``),
    ``_quantile`` and the moments; this class turns them into the public methods with the
    ``batch_shape + x.shape`` convention and adds intervals.
    """

    batch_shape: tuple[int, ...]
    lower_bound: float = -math.inf  # support's lower end (0 for τ)

    # -- to implement ---------------------------------------------------------------------
    def _cdf(self, x: FloatArray) -> FloatArray:
        raise NotImplementedError

    def _logpdf(self, x: FloatArray) -> FloatArray:
        raise NotImplementedError

    def _quantile(self, q: FloatArray) -> FloatArray:
        raise NotImplementedError

    def _moments(self) -> tuple[FloatArray, FloatArray]:
        raise NotImplementedError

    # -- helpers --------------------------------------------------------------------------
    @property
    def _size(self) -> int:
        return math.prod(self.batch_shape)

    def _outer(self, values: ArrayLike, name: str) -> tuple[FloatArray, tuple[int, ...]]:
        arr = np.asarray(values, dtype=np.float64)
        if np.any(np.isnan(arr)):
            raise ValueError(f"`{name}` must not be NaN; got {values!r}.")
        flat = np.broadcast_to(arr.reshape(1, -1), (self._size, arr.size))
        return np.ascontiguousarray(flat), self.batch_shape + arr.shape

    # -- public ---------------------------------------------------------------------------
    @property
    def mean(self) -> FloatArray:
        """Posterior mean (``inf`` or NaN where it does not exist; see the result's notes)."""
        return self._moments()[0].reshape(self.batch_shape)

    @property
    def sd(self) -> FloatArray:
        """Posterior standard deviation (``inf`` where the variance does not exist)."""
        return self._moments()[1].reshape(self.batch_shape)

    @property
    def median(self) -> FloatArray:
        """Posterior median."""
        return self._quantile_at((0.5,), ())

    def _quantile_at(self, q: tuple[float, ...], shape: tuple[int, ...]) -> FloatArray:
        """Quantiles at probabilities already known to lie in (0, 1) (no validation pass).

        The same flat (batch, Q) array as :meth:`quantile` builds, without its checks and
        broadcasting copies, whose overhead rivals the solve for one meta-analysis.
        """
        flat = np.empty((self._size, len(q)))
        flat[...] = q
        return self._quantile(flat).reshape(self.batch_shape + shape)

    def cdf(self, x: ArrayLike) -> FloatArray:
        """P(parameter ≤ x), shape ``batch_shape + shape(x)``."""
        flat, shape = self._outer(x, "x")
        return self._cdf(flat).reshape(shape)

    def sf(self, x: ArrayLike) -> FloatArray:
        """P(parameter > x), computed without cancellation in the upper tail."""
        flat, shape = self._outer(x, "x")
        return self._sf(flat).reshape(shape)

    def _sf(self, x: FloatArray) -> FloatArray:
        return 1.0 - self._cdf(x)

    def pdf(self, x: ArrayLike) -> FloatArray:
        """Posterior density, shape ``batch_shape + shape(x)``."""
        flat, shape = self._outer(x, "x")
        return np.exp(self._logpdf(flat)).reshape(shape)

    def logpdf(self, x: ArrayLike) -> FloatArray:
        """Log posterior density."""
        flat, shape = self._outer(x, "x")
        return self._logpdf(flat).reshape(shape)

    def quantile(self, q: ArrayLike) -> FloatArray:
        """The value with P(parameter ≤ value) = q, for q in (0, 1)."""
        qq = check_in_interval("q", q, 0.0, 1.0, closed="neither")
        flat, shape = self._outer(qq, "q")
        return self._quantile(flat).reshape(shape)

    def interval(
        self, prob: float = 0.95, kind: Literal["central", "shortest"] = "central"
    ) -> FloatArray:
        """Credible interval with probability ``prob``; shape ``batch_shape + (2,)``.

        ``kind="central"`` cuts (1 - prob)/2 from each tail.  ``kind="shortest"`` is the
        shortest interval (the highest-density interval for a unimodal density): it minimises
        Q(a + prob) - Q(a) over the lower tail probability a in [0, 1 - prob], whose optimum has
        equal densities at both ends or a = 0 when the density is largest at the lower bound
        (τ with its mode at 0), as in bayesmeta.
        """
        level = check_level("prob", prob)
        check_choice("kind", kind, ("central", "shortest"))
        if kind == "central":
            ends = ((1 - level) / 2, (1 + level) / 2)
            if 0.0 < ends[0] and ends[1] < 1.0:  # False only when rounding reaches 0 or 1
                return self._quantile_at(ends, (2,))
            return self.quantile(list(ends))
        return self._shortest(level).reshape((*self.batch_shape, 2))

    def _shortest(self, level: float) -> FloatArray:
        size = self._size

        def ends(a: FloatArray) -> tuple[FloatArray, FloatArray]:
            both = self._quantile(np.stack([a, a + level], axis=-1))
            return both[:, 0], both[:, 1]

        def h(a: FloatArray) -> FloatArray:
            left, right = ends(a)
            pts = np.stack([left, right], axis=-1)
            lp = self._logpdf(pts)
            return lp[:, 0] - lp[:, 1]

        # the optimum has log f(left) = log f(right); h increases with a for a unimodal density
        tiny = 1e-12
        lo = np.full(size, tiny)
        hi = np.full(size, 1.0 - level - tiny)
        h_lo = h(lo)
        at_bound = h_lo >= 0  # density largest at the lower end: interval starts at the bound
        a = np.where(at_bound, 0.0, 0.5 * (lo + hi))
        active = ~at_bound
        f_lo = h_lo.copy()
        f_hi = h(hi)
        active &= f_hi > 0
        side = np.zeros(size)
        for _ in range(200):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            lo_i, hi_i, flo, fhi = lo[idx], hi[idx], f_lo[idx], f_hi[idx]
            # Illinois regula falsi, bisection when an end value is not finite
            with np.errstate(invalid="ignore", divide="ignore"):
                cand = hi_i - fhi * (hi_i - lo_i) / (fhi - flo)
            ok = np.isfinite(cand) & (cand > lo_i) & (cand < hi_i)
            cand = np.where(ok, cand, 0.5 * (lo_i + hi_i))
            trial = np.where(at_bound, tiny, a)
            trial[idx] = cand
            fc = h(trial)[idx]
            right = fc > 0
            hi[idx] = np.where(right, cand, hi_i)
            f_hi[idx] = np.where(right, fc, np.where(side[idx] == -1, fhi / 2, fhi))
            lo[idx] = np.where(right, lo_i, cand)
            f_lo[idx] = np.where(right, np.where(side[idx] == 1, flo / 2, flo), fc)
            side[idx] = np.where(right, 1, -1)
            a[idx] = cand
            done = (hi[idx] - lo[idx] <= 1e-14) | (fc == 0) | (np.abs(fc) < 1e-12)
            active[idx[done]] = False
        else:  # pragma: no cover - guarded by the bracket
            warnings.warn(
                "shortest interval: lower-tail probability not converged in 200 steps",
                ConvergenceWarning,
                stacklevel=3,
            )
        ends_low, ends_high = ends(np.where(at_bound, tiny, a))
        left = np.where(at_bound, self.lower_bound, ends_low)
        at_level = self._quantile(np.full((size, 1), level))[:, 0]
        return np.stack([left, np.where(at_bound, at_level, ends_high)], axis=-1)


class NormalMixtureMarginal(Marginal):
    """Batch of normal mixtures Σ_n W_n N(m_n, s_n²) over quadrature nodes in τ.

    Parameters
    ----------
    weights, means, sds : ndarray
        Shape ``batch_shape + (n_nodes,)``; weights sum to one over the last axis.
    moments : tuple of ndarray, optional
        Mean and sd to report instead of the mixture's (used where a moment does not exist:
        ``inf`` / NaN), each of shape ``batch_shape``.
    """

    def __init__(
        self,
        weights: FloatArray,
        means: FloatArray,
        sds: FloatArray,
        *,
        exists: tuple[NDArray[np.bool_], NDArray[np.bool_]] | None = None,
    ) -> None:
        self.batch_shape = weights.shape[:-1]
        n = weights.shape[-1]
        self._w = weights.reshape(-1, n)
        self._m = means.reshape(-1, n)
        self._s = sds.reshape(-1, n)
        self._exists = None if exists is None else (exists[0].ravel(), exists[1].ravel())
        self._cache: dict[str, tuple[FloatArray, FloatArray]] = {}

    def _raw_moments(self) -> tuple[FloatArray, FloatArray]:
        """The mixture's mean and variance (whether or not the posterior's exist)."""
        if "raw" not in self._cache:
            mean = (self._w * self._m).sum(axis=-1)
            dev = self._m - mean[:, None]
            var = (self._w * (dev * dev + self._s * self._s)).sum(axis=-1)
            self._cache["raw"] = (mean, var)
        return self._cache["raw"]

    def _moments(self) -> tuple[FloatArray, FloatArray]:
        if "m" not in self._cache:
            mean, var = self._raw_moments()
            sd = np.sqrt(var)
            if self._exists is not None:
                mean = np.where(self._exists[0], mean, np.nan)
                sd = np.where(self._exists[1], sd, np.inf)
            self._cache["m"] = (mean, sd)
        return self._cache["m"]

    def _rows(self, sl: slice) -> NormalMixtureMarginal:
        part = NormalMixtureMarginal(self._w[sl], self._m[sl], self._s[sl])
        return part

    def _chunked(self, method: str, x: FloatArray) -> FloatArray | None:
        """Split the rows when (rows, points, nodes) temporaries would exceed ~4e6 elements."""
        rows, points = x.shape
        step = max(1, _CHUNK // max(1, points * self._w.shape[1]))
        if rows <= step:
            return None
        parts = [
            getattr(self._rows(slice(lo, lo + step)), method)(x[lo : lo + step])
            for lo in range(0, rows, step)
        ]
        return np.concatenate(parts, axis=0)

    def _z(self, x: FloatArray) -> FloatArray:
        return (x[:, :, None] - self._m[:, None, :]) / self._s[:, None, :]

    def _cdf(self, x: FloatArray) -> FloatArray:
        if (out := self._chunked("_cdf", x)) is not None:
            return out
        return np.asarray(np.einsum("bqn,bn->bq", special.ndtr(self._z(x)), self._w))

    def _sf(self, x: FloatArray) -> FloatArray:
        if (out := self._chunked("_sf", x)) is not None:
            return out
        return np.asarray(np.einsum("bqn,bn->bq", special.ndtr(-self._z(x)), self._w))

    def _logpdf(self, x: FloatArray) -> FloatArray:
        if (out := self._chunked("_logpdf", x)) is not None:
            return out
        z = self._z(x)
        with np.errstate(divide="ignore"):
            logw = np.log(self._w) - np.log(self._s) - _LOG_SQRT_2PI
        return np.asarray(special.logsumexp(logw[:, None, :] - 0.5 * z * z, axis=-1))

    def _quantile(self, q: FloatArray) -> FloatArray:
        # compiled row by row (no (rows, points, nodes) temporaries, so no chunking): the
        # Cornish-Fisher start and bracketed Halley solve of mixture_quantiles
        mean, var = self._raw_moments()
        return mixture_quantiles(self._w, self._m, self._s, q, special.ndtri(q), mean, var)
