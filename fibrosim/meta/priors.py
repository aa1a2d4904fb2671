"""Priors for the normal-normal random-effects model: heterogeneity τ and overall effect μ.

Every τ prior is a density on τ ≥ 0 (the between-study standard deviation), with ``pdf``,
``logpdf``, ``cdf`` and ``quantile`` in τ.  The empirical priors of Turner et al. (2015) and
Rhodes et al. (2015) are stated on log τ²; :class:`LogNormalTau2` and :class:`LogTTau2` convert
them to τ with the Jacobian: if log τ² = 2 log τ has density g, then p(τ) = g(2 log τ) · 2 / τ.

The empirical tables are data, not code: :func:`turner2015` and :func:`rhodes2015` read
``studies/priors/turner2015.csv`` and ``rhodes2015.csv``, whose metadata files (``*.toml``) carry
the citation, DOI and the transcription check; they are read through
:func:`fibrosim.studies.load`, so they are validated like every other dataset.

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
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from fibrosim._checks import as_float_array, check_in_interval, check_positive

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

FloatArray = NDArray[np.float64]

_GELMAN_2006 = (
    "Gelman A. Prior distributions for variance parameters in hierarchical models. "
    "Bayesian Anal 2006;1(3):515-534. doi:10.1214/06-BA117A"
)
_ROVER_2020 = (
    "Röver C. Bayesian random-effects meta-analysis using the bayesmeta R package. "
    "J Stat Softw 2020;93(6):1-51. doi:10.18637/jss.v093.i06"
)


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


# -- empirical priors on log τ² ----------------------------------------------------------------
@dataclass(frozen=True, slots=True, repr=False)
class LogNormalTau2(TauPrior):
    """Log-normal prior on τ²: log τ² ~ N(``mu``, ``sigma``²) (Turner et al. 2015).

    On τ this is log-normal with meanlog ``mu``/2 and sdlog ``sigma``/2; the density on τ is
    g(2 log τ)·2/τ with g the normal density of log τ².

    Parameters
    ----------
    mu : float
        Mean of log τ².
    sigma : float
        > 0 standard deviation of log τ².
    setting : str
        Label of the table cell (set by :func:`turner2015`).
    """

    mu: float = -2.56
    sigma: float = 1.74
    setting: str = field(default="", compare=False)
    reference: ClassVar[str] = (
        "Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT. Predictive distributions for "
        "between-study heterogeneity and simple methods for their application in Bayesian "
        "meta-analysis. Stat Med 2015;34(6):984-998. doi:10.1002/sim.6381"
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "mu", _scalar("mu", self.mu, positive=False))
        object.__setattr__(self, "sigma", _scalar("sigma", self.sigma))

    @property
    def typical_scale(self) -> float:
        """Prior median of τ, exp(mu/2)."""
        return math.exp(self.mu / 2)

    def _logpdf_pos(self, tau: FloatArray) -> FloatArray:
        z = (2.0 * np.log(tau) - self.mu) / self.sigma
        return np.asarray(
            -0.5 * z * z
            - 0.5 * math.log(2 * math.pi)
            - math.log(self.sigma)
            + math.log(2.0)
            - np.log(tau)
        )

    def _logpdf_zero(self) -> float:
        return -math.inf

    def _cdf_pos(self, tau: FloatArray) -> FloatArray:
        return np.asarray(special.ndtr((2.0 * np.log(tau) - self.mu) / self.sigma))

    def _quantile(self, q: FloatArray) -> FloatArray:
        with np.errstate(over="ignore"):
            return np.asarray(np.exp(0.5 * (self.mu + self.sigma * special.ndtri(q))))

    def __repr__(self) -> str:
        label = f", setting={self.setting!r}" if self.setting else ""
        return f"LogNormalTau2(mu={self.mu:g}, sigma={self.sigma:g}{label})"


@dataclass(frozen=True, slots=True, repr=False)
class LogTTau2(TauPrior):
    """Log-Student-t prior on τ²: log τ² ~ t_df(``location``, ``scale``) (Rhodes et al. 2015).

    Rhodes et al. use df = 5.  The density on τ is g(2 log τ)·2/τ with g the scaled t density of
    log τ²; it is unbounded (but integrable) at τ = 0 and decays like τ⁻¹(log τ)^-(df+1).

    Parameters
    ----------
    location : float
        Location of log τ².
    scale : float
        > 0 scale of log τ².
    df : float
        > 0 degrees of freedom (default 5).
    setting : str
        Label of the table cell (set by :func:`rhodes2015`).
    """

    location: float = -3.44
    scale: float = 2.59
    df: float = 5.0
    setting: str = field(default="", compare=False)
    reference: ClassVar[str] = (
        "Rhodes KM, Turner RM, Higgins JPT. Predictive distributions were developed for the "
        "extent of heterogeneity in meta-analyses of continuous outcome data. J Clin Epidemiol "
        "2015;68(1):52-60. doi:10.1016/j.jclinepi.2014.08.012"
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "location", _scalar("location", self.location, positive=False))
        object.__setattr__(self, "scale", _scalar("scale", self.scale))
        object.__setattr__(self, "df", _scalar("df", self.df))

    @property
    def tail_exponent(self) -> float:
        """1 (with an extra (log τ)^-(df+1) factor)."""
        return 1.0

    @property
    def tail_log_power(self) -> float:
        """The degrees of freedom + 1."""
        return self.df + 1.0

    @property
    def typical_scale(self) -> float:
        """Prior median of τ, exp(location/2)."""
        return math.exp(self.location / 2)

    def _logpdf_pos(self, tau: FloatArray) -> FloatArray:
        log_tau = np.log(tau)
        return np.asarray(
            stats.t.logpdf(2.0 * log_tau, self.df, loc=self.location, scale=self.scale)
            + math.log(2.0)
            - log_tau
        )

    def _logpdf_zero(self) -> float:
        return math.inf

    def _cdf_pos(self, tau: FloatArray) -> FloatArray:
        return np.asarray(
            stats.t.cdf(2.0 * np.log(tau), self.df, loc=self.location, scale=self.scale)
        )

    def _quantile(self, q: FloatArray) -> FloatArray:
        with np.errstate(over="ignore"):
            return np.asarray(
                np.exp(0.5 * stats.t.ppf(q, self.df, loc=self.location, scale=self.scale))
            )

    def __repr__(self) -> str:
        label = f", setting={self.setting!r}" if self.setting else ""
        return f"LogTTau2(location={self.location:g}, scale={self.scale:g}, df={self.df:g}{label})"


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


# the empirical tables live in their own module; re-exported so fs.priors.turner2015 works
from fibrosim.meta.empirical_priors import rhodes2015, turner2015  # noqa: E402
