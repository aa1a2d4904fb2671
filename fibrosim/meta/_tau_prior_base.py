"""The base class of the τ priors: density, CDF and quantile on τ ≥ 0 from a few primitives.

A subclass states its density on τ > 0 (and its CDF), its tail behaviour (which decides which
posterior moments exist), and optionally its quantile; :class:`TauPrior` builds the public,
validated ``pdf``/``logpdf``/``cdf``/``quantile`` on top.  The families are in
:mod:`fibrosim.meta.priors` and :mod:`fibrosim.meta.empirical_priors`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fibrosim._checks import as_float_array, check_in_interval, check_positive

__all__ = ["TauPrior"]

FloatArray = NDArray[np.float64]


def _tau_values(tau: ArrayLike) -> FloatArray:
    """τ as a float array; ±inf allowed (cdf(inf) = 1), NaN rejected."""
    try:
        out = np.asarray(tau, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`tau` must be numeric; got {tau!r}.") from exc
    if np.any(np.isnan(out)):
        raise ValueError(f"`tau` must not be NaN; got {tau!r}.")
    return out


def _scalar(name: str, value: float, *, positive: bool = True) -> float:
    arr = check_positive(name, value) if positive else as_float_array(name, value)
    if arr.ndim != 0:
        raise ValueError(f"`{name}` must be a scalar; got an array of shape {arr.shape}.")
    return float(arr)


@dataclass(frozen=True, slots=True, repr=False)
class TauPrior:
    """Base class of the priors on the heterogeneity standard deviation τ.

    Subclasses implement ``_logpdf_pos`` (log density at τ > 0 inside the support) and, when
    proper, ``_cdf_pos`` and ``_quantile``.  Densities are 0 outside the support.

    Attributes
    ----------
    reference : str
        Citation of the paper that proposes or motivates the prior.
    proper : bool
        Whether the density integrates to one.  Improper priors have no ``cdf``/``quantile`` and
        their ``pdf`` is the unnormalised density.
    tail_exponent : float
        ``e`` such that the density decays like τ^(-e) as τ → ∞ (``inf`` when it decays faster
        than any power).  The posterior uses it to decide which moments exist.
    tail_log_power : float
        Extra logarithmic decay (density ~ τ^(-e) (log τ)^(-m)); only the log-t prior has one.
    """

    reference: ClassVar[str] = ""

    @property
    def proper(self) -> bool:
        """Whether the density integrates to one."""
        return True

    @property
    def tail_log_power(self) -> float:
        """Extra logarithmic decay of the density's tail (0 unless log-t)."""
        return 0.0

    @property
    def tail_exponent(self) -> float:
        """Power-law decay of the density as τ → ∞ (``inf`` for lighter tails)."""
        return math.inf

    @property
    def support(self) -> tuple[float, float]:
        """``(lower, upper)`` bounds of τ."""
        return (0.0, math.inf)

    @property
    def typical_scale(self) -> float:
        """A τ value where the prior has mass (used to place the posterior's quadrature window)."""
        return 1.0

    # -- densities -------------------------------------------------------------------------
    def _logpdf_pos(self, tau: FloatArray) -> FloatArray:
        raise NotImplementedError

    def _cdf_pos(self, tau: FloatArray) -> FloatArray:
        raise NotImplementedError

    def _quantile(self, q: FloatArray) -> FloatArray:
        raise NotImplementedError

    def logpdf(self, tau: ArrayLike) -> FloatArray:
        """Log density at ``tau`` (``-inf`` outside the support)."""
        t = _tau_values(tau)
        lo, hi = self.support
        inside = (t >= lo) & (t <= hi) & np.isfinite(t) & (t > 0)
        out = np.full(t.shape, -np.inf)
        if np.any(inside):
            out[inside] = self._logpdf_pos(t[inside])
        at_zero = (t == 0) & (lo == 0)
        if np.any(at_zero):
            out[at_zero] = self._logpdf_zero()
        return out

    def _logpdf_zero(self) -> float:
        """Log density at τ = 0 (limit from the right)."""
        return float(self._logpdf_pos(np.array([1e-300]))[0])

    def pdf(self, tau: ArrayLike) -> FloatArray:
        """Density at ``tau`` (0 outside the support)."""
        return np.exp(self.logpdf(tau))

    def cdf(self, tau: ArrayLike) -> FloatArray:
        """P(τ ≤ ``tau``)."""
        if not self.proper:
            raise ValueError(f"{self!r} is improper: it has no cdf.")
        t = _tau_values(tau)
        lo, hi = self.support
        out = np.where(t >= hi, 1.0, 0.0)
        inside = (t > lo) & (t < hi)
        if np.any(inside):
            out[inside] = self._cdf_pos(t[inside])
        return out

    def quantile(self, q: ArrayLike) -> FloatArray:
        """The τ value with P(τ ≤ value) = ``q``, for q in [0, 1]."""
        if not self.proper:
            raise ValueError(f"{self!r} is improper: it has no quantile function.")
        qq = check_in_interval("q", q, 0.0, 1.0)
        return np.asarray(self._quantile(qq), dtype=np.float64)

    def _mass_below(self, tau: FloatArray) -> FloatArray:
        """∫_0^tau p(t) dt, also for improper priors (used by the posterior's lower tail)."""
        return self.cdf(tau)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# -- half distributions ----------------------------------------------------------------------
