"""Priors for the normal-normal random-effects model: heterogeneity τ and overall effect μ.

Every τ prior is a density on τ ≥ 0 (the between-study standard deviation), with ``pdf``,
``logpdf``, ``cdf`` and ``quantile`` in τ (the common machinery is
:class:`fibrosim.meta._tau_prior_base.TauPrior`).  This module holds the parametric families and
re-exports the empirical priors of Turner et al. (2015) and Rhodes et al. (2015), stated on
log τ², from :mod:`fibrosim.meta.empirical_priors` (:class:`LogNormalTau2`, :class:`LogTTau2`,
:func:`turner2015`, :func:`rhodes2015`), so that ``fs.priors`` offers every prior.

Priors on μ: :class:`Normal` and :class:`Flat` (``mu_prior=None`` means flat).

References
----------
Röver C. Bayesian random-effects meta-analysis using the bayesmeta R package. J Stat Softw
2020;93(6):1-51. doi:10.18637/jss.v093.i06

Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT. Predictive distributions for between-study
heterogeneity and simple methods for their application in Bayesian meta-analysis. Stat Med
2015;34(6):984-998. doi:10.1002/sim.6381

Rhodes KM, Turner RM, Higgins JPT. Predictive distributions were developed for the extent of
heterogeneity in meta-analyses of continuous outcome data. J Clin Epidemiol 2015;68(1):52-60.
doi:10.1016/j.jclinepi.2014.08.012
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from fibrosim._checks import check_positive
from fibrosim.meta._tau_prior_base import FloatArray, TauPrior, _scalar
from fibrosim.meta.empirical_priors import LogNormalTau2, LogTTau2, rhodes2015, turner2015

__all__ = [
    "Exponential",
    "Flat",
    "HalfCauchy",
    "HalfNormal",
    "HalfT",
    "Jeffreys",
    "LogNormalTau2",
    "LogTTau2",
    "MuPrior",
    "Normal",
    "TauPrior",
    "Uniform",
    "rhodes2015",
    "turner2015",
]

_GELMAN_2006 = (
    "Gelman A. Prior distributions for variance parameters in hierarchical models. "
    "Bayesian Anal 2006;1(3):515-534. doi:10.1214/06-BA117A"
)
_ROVER_2020 = (
    "Röver C. Bayesian random-effects meta-analysis using the bayesmeta R package. "
    "J Stat Softw 2020;93(6):1-51. doi:10.18637/jss.v093.i06"
)


@dataclass(frozen=True, slots=True, repr=False)
class HalfNormal(TauPrior):
    """Half-normal prior on τ with the given ``scale`` (the sd of the parent normal).

    Parameters
    ----------
    scale : float
        > 0.  Median 0.674·scale; P(τ > 2·scale) ≈ 4.6 %.
    """

    scale: float = 1.0
    reference: ClassVar[str] = (
        "Friede T, Röver C, Wandel S, Neuenschwander B. Meta-analysis of few small studies in "
        "orphan diseases. Res Synth Methods 2017;8(1):79-91. doi:10.1002/jrsm.1217"
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", _scalar("scale", self.scale))

    @property
    def typical_scale(self) -> float:
        """The scale parameter."""
        return self.scale

    def _logpdf_pos(self, tau: FloatArray) -> FloatArray:
        z = tau / self.scale
        return np.asarray(0.5 * np.log(2 / np.pi) - np.log(self.scale) - 0.5 * z * z)

    def _cdf_pos(self, tau: FloatArray) -> FloatArray:
        return np.asarray(special.erf(tau / (self.scale * np.sqrt(2.0))))

    def _quantile(self, q: FloatArray) -> FloatArray:
        return np.asarray(self.scale * np.sqrt(2.0) * special.erfinv(q))

    def __repr__(self) -> str:
        return f"HalfNormal(scale={self.scale:g})"


@dataclass(frozen=True, slots=True, repr=False)
class HalfT(TauPrior):
    """Half-Student-t prior on τ with ``df`` degrees of freedom and ``scale``.

    Parameters
    ----------
    df : float
        > 0 degrees of freedom (1 is the half-Cauchy).
    scale : float
        > 0 scale.
    """

    df: float = 3.0
    scale: float = 1.0
    reference: ClassVar[str] = _GELMAN_2006

    def __post_init__(self) -> None:
        object.__setattr__(self, "df", _scalar("df", self.df))
        object.__setattr__(self, "scale", _scalar("scale", self.scale))

    @property
    def tail_exponent(self) -> float:
        """The degrees of freedom + 1."""
        return self.df + 1.0

    @property
    def typical_scale(self) -> float:
        """The scale parameter."""
        return self.scale

    def _logpdf_pos(self, tau: FloatArray) -> FloatArray:
        return np.asarray(np.log(2.0) + stats.t.logpdf(tau, self.df, scale=self.scale))

    def _cdf_pos(self, tau: FloatArray) -> FloatArray:
        # P(|T| <= z) = I_x(1/2, df/2) with x = z²/(df + z²): no cancellation for small τ
        z2 = (tau / self.scale) ** 2
        return np.asarray(special.betainc(0.5, self.df / 2, z2 / (self.df + z2)))

    def _quantile(self, q: FloatArray) -> FloatArray:
        # invert on the smaller side so both tails keep their relative accuracy
        with np.errstate(divide="ignore", invalid="ignore"):
            x = special.betaincinv(0.5, self.df / 2, q)  # z²/(df + z²)
            y = special.betaincinv(self.df / 2, 0.5, 1.0 - q)  # df/(df + z²)
            low = np.sqrt(self.df * x / (1.0 - x))
            high = np.sqrt(self.df * (1.0 - y) / y)
        return np.asarray(self.scale * np.where(q < 0.5, low, high))

    def __repr__(self) -> str:
        return f"HalfT(df={self.df:g}, scale={self.scale:g})"


@dataclass(frozen=True, slots=True, repr=False)
class HalfCauchy(TauPrior):
    """Half-Cauchy prior on τ with ``scale`` (the median).

    Parameters
    ----------
    scale : float
        > 0 scale, which is also the prior median of τ.
    """

    scale: float = 1.0
    reference: ClassVar[str] = _GELMAN_2006

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", _scalar("scale", self.scale))

    @property
    def tail_exponent(self) -> float:
        """2 (density ~ τ⁻²)."""
        return 2.0

    @property
    def typical_scale(self) -> float:
        """The scale parameter."""
        return self.scale

    def _logpdf_pos(self, tau: FloatArray) -> FloatArray:
        z = tau / self.scale
        return np.asarray(np.log(2.0 / (np.pi * self.scale)) - np.log1p(z * z))

    def _cdf_pos(self, tau: FloatArray) -> FloatArray:
        return np.asarray(2.0 / np.pi * np.arctan(tau / self.scale))

    def _quantile(self, q: FloatArray) -> FloatArray:
        with np.errstate(over="ignore"):
            out = self.scale * np.tan(q * np.pi / 2.0)
        return np.asarray(np.where(q >= 1.0, np.inf, out))

    def __repr__(self) -> str:
        return f"HalfCauchy(scale={self.scale:g})"


@dataclass(frozen=True, slots=True, repr=False)
class Exponential(TauPrior):
    """Exponential prior on τ, parametrised by its ``rate`` (mean 1/rate).

    The rate parametrisation follows Stan and the penalised-complexity prior literature: a PC
    prior with P(τ > U) = α has rate = -log(α)/U.

    Parameters
    ----------
    rate : float
        > 0 rate λ; density λ·exp(-λτ).
    """

    rate: float = 1.0
    reference: ClassVar[str] = (
        "Simpson D, Rue H, Riebler A, Martins TG, Sørbye SH. Penalising model component "
        "complexity: a principled, practical approach to constructing priors. Stat Sci "
        "2017;32(1):1-28. doi:10.1214/16-STS576"
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", _scalar("rate", self.rate))

    @property
    def typical_scale(self) -> float:
        """The mean 1/rate."""
        return 1.0 / self.rate

    def _logpdf_pos(self, tau: FloatArray) -> FloatArray:
        return np.asarray(np.log(self.rate) - self.rate * tau)

    def _cdf_pos(self, tau: FloatArray) -> FloatArray:
        return np.asarray(-np.expm1(-self.rate * tau))

    def _quantile(self, q: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore"):
            return np.asarray(-np.log1p(-q) / self.rate)

    def __repr__(self) -> str:
        return f"Exponential(rate={self.rate:g})"


@dataclass(frozen=True, slots=True, repr=False)
class Uniform(TauPrior):
    """Uniform prior on τ over [``low``, ``high``]; ``high=inf`` is the improper flat prior.

    Parameters
    ----------
    low : float
        >= 0 lower bound.
    high : float
        > low upper bound, or ``inf`` (improper; bayesmeta's ``tau.prior="uniform"``).  With a
        flat μ prior the posterior is then proper only for k >= 3 studies (k >= 2 with a normal
        μ prior).
    """

    low: float = 0.0
    high: float = math.inf
    reference: ClassVar[str] = _GELMAN_2006

    def __post_init__(self) -> None:
        low = float(check_positive("low", self.low, strict=False))
        high_arr = np.asarray(self.high, dtype=np.float64)
        if high_arr.ndim != 0 or np.isnan(high_arr) or not high_arr > low:
            raise ValueError(
                f"`high` must be a number > low = {low:g} (or inf); got {self.high!r}."
            )
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", float(high_arr))

    @property
    def proper(self) -> bool:
        """True when ``high`` is finite."""
        return math.isfinite(self.high)

    @property
    def tail_exponent(self) -> float:
        """0 for the flat prior, inf when bounded."""
        return math.inf if math.isfinite(self.high) else 0.0

    @property
    def support(self) -> tuple[float, float]:
        """``(low, high)``."""
        return (self.low, self.high)

    @property
    def typical_scale(self) -> float:
        """The midpoint (or 1 + low when unbounded)."""
        return (self.low + self.high) / 2 if math.isfinite(self.high) else self.low + 1.0

    def _logpdf_pos(self, tau: FloatArray) -> FloatArray:
        width = self.high - self.low
        return np.full(tau.shape, -math.log(width) if math.isfinite(width) else 0.0)

    def _logpdf_zero(self) -> float:
        return float(self._logpdf_pos(np.zeros(1))[0]) if self.low == 0 else -math.inf

    def _cdf_pos(self, tau: FloatArray) -> FloatArray:
        return np.asarray((tau - self.low) / (self.high - self.low))

    def _quantile(self, q: FloatArray) -> FloatArray:
        return np.asarray(self.low + q * (self.high - self.low))

    def _mass_below(self, tau: FloatArray) -> FloatArray:
        if self.proper:
            return self.cdf(tau)
        return np.asarray(np.clip(tau - self.low, 0.0, None), dtype=np.float64)

    def __repr__(self) -> str:
        return f"Uniform(low={self.low:g}, high={self.high:g})"


@dataclass(frozen=True, slots=True, repr=False)
class Jeffreys(TauPrior):
    """Jeffreys prior for τ in the normal-normal model (improper), as in bayesmeta.

    p(τ) ∝ sqrt(Σᵢ (τ / (vᵢ + τ²))²): it depends on the studies' sampling variances vᵢ.

    How vi is passed: give ``Jeffreys()`` to :func:`~fibrosim.meta.bayes.bayes_random_effects`
    and each meta-analysis uses its own ``vi`` (like bayesmeta's ``tau.prior="Jeffreys"``).  To
    evaluate the density yourself, bind the variances: ``Jeffreys(vi=[...])``; a prior bound to
    other variances than the data's is rejected by the posterior.  The density is unnormalised
    (it decays like sqrt(k)/τ).  The posterior is proper for k >= 2 with a flat μ prior and for
    k >= 1 with a normal μ prior.

    Parameters
    ----------
    vi : array_like, optional
        Sampling variances (> 0) of the studies.
    """

    vi: tuple[float, ...] | None = None
    reference: ClassVar[str] = (
        "Bodnar O, Link A, Arendacká B, Possolo A, Elster C. Bayesian estimation in random "
        "effects meta-analysis using a non-informative prior. Stat Med 2017;36(2):378-399. "
        "doi:10.1002/sim.7156; " + _ROVER_2020
    )

    @property
    def proper(self) -> bool:
        """False: the density decays like 1/τ."""
        return False

    def __post_init__(self) -> None:
        if self.vi is not None:
            v = check_positive("vi", self.vi)
            if v.ndim != 1 or v.size == 0:
                raise ValueError(f"`vi` must be a non-empty 1-d array; got shape {v.shape}.")
            object.__setattr__(self, "vi", tuple(float(x) for x in v))

    @property
    def tail_exponent(self) -> float:
        """1 (density ~ sqrt(k)/τ)."""
        return 1.0

    @property
    def typical_scale(self) -> float:
        """Root mean sampling variance, or 1 when unbound."""
        return math.sqrt(float(np.mean(self.vi))) if self.vi is not None else 1.0

    @staticmethod
    def logpdf_given(tau: FloatArray, vi: FloatArray) -> FloatArray:
        """Unnormalised log density for τ (shape (..., n)) given vi (shape (..., k), NaN-padded).

        log p = log τ + ½ log Σᵢ (vᵢ + τ²)⁻²; padded studies contribute nothing.
        """
        t2 = tau[..., :, None] ** 2
        with np.errstate(divide="ignore"):
            terms = np.where(np.isnan(vi[..., None, :]), 0.0, (vi[..., None, :] + t2) ** -2.0)
            return np.asarray(np.log(tau) + 0.5 * np.log(terms.sum(axis=-1)))

    def _bound_vi(self) -> FloatArray:
        if self.vi is None:
            raise ValueError(
                "Jeffreys() depends on the sampling variances: bind them with "
                "Jeffreys(vi=...) to evaluate its density."
            )
        return np.asarray(self.vi, dtype=np.float64)

    def _logpdf_pos(self, tau: FloatArray) -> FloatArray:
        return self.logpdf_given(tau, self._bound_vi())

    def _logpdf_zero(self) -> float:
        return -math.inf

    def _mass_below(self, tau: FloatArray) -> FloatArray:
        # near 0 the density is τ·sqrt(Σ v⁻²)(1 + O(τ²/v)), so the mass below τ is τ²/2·sqrt(Σv⁻²)
        v = self._bound_vi()
        return np.asarray(0.5 * tau**2 * np.sqrt(np.sum(v**-2.0)))

    def __repr__(self) -> str:
        return "Jeffreys()" if self.vi is None else f"Jeffreys(vi=<{len(self.vi)} variances>)"


# -- priors on μ -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, repr=False)
class MuPrior:
    """Base class of the priors on the overall effect μ."""

    reference: ClassVar[str] = _ROVER_2020
    proper: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, repr=False)
class Normal(MuPrior):
    """Normal prior on μ (conjugate given τ).

    Parameters
    ----------
    mean : float
        Prior mean.
    sd : float
        > 0 prior standard deviation.
    """

    mean: float = 0.0
    sd: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _scalar("mean", self.mean, positive=False))
        object.__setattr__(self, "sd", _scalar("sd", self.sd))

    def logpdf(self, mu: ArrayLike) -> FloatArray:
        """Log density of μ."""
        return np.asarray(stats.norm.logpdf(np.asarray(mu, dtype=np.float64), self.mean, self.sd))

    def pdf(self, mu: ArrayLike) -> FloatArray:
        """Density of μ."""
        return np.exp(self.logpdf(mu))

    def __repr__(self) -> str:
        return f"Normal(mean={self.mean:g}, sd={self.sd:g})"


@dataclass(frozen=True, slots=True, repr=False)
class Flat(MuPrior):
    """Improper flat prior on μ (the same as ``mu_prior=None``)."""

    proper: ClassVar[bool] = False

    def __repr__(self) -> str:
        return "Flat()"
