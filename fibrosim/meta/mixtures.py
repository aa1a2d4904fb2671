"""Conjugate mixture priors (normal and beta), their posterior updates and effective sample size.

These are the objects a meta-analytic-predictive (MAP) prior becomes once it is approximated by a
few components (:mod:`fibrosim.meta.map`): a design prior for a new trial's effect (normal
mixture) or for a control-arm response rate (beta mixture).

References
----------
Schmidli H, Gsteiger S, Roychoudhury S, O'Hagan A, Spiegelhalter D, Neuenschwander B. Robust
meta-analytic-predictive priors in clinical trials with historical control information.
Biometrics 2014;70(4):1023-1032.

Neuenschwander B, Weber S, Schmidli H, O'Hagan A. Predictively consistent prior effective sample
sizes. Biometrics 2020;76(2):578-587 (ELIR).

Morita S, Thall PF, Müller P. Determining the effective sample size of a parametric prior.
Biometrics 2008;64(2):595-602.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import integrate, optimize, special, stats

from fibrosim._checks import as_float_array, check_in_interval, check_positive, check_rng
from fibrosim.warnings import FragileEstimateWarning

__all__ = ["BetaMixture", "NormalMixture", "ess"]

FloatArray = NDArray[np.float64]
EssMethod = Literal["elir", "moment", "morita"]


def _check_weights(weights: ArrayLike) -> FloatArray:
    w = check_positive("weights", weights)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"`weights` must be a non-empty 1-D array; got shape {w.shape}.")
    total = float(w.sum())
    if abs(total - 1.0) > 1e-8:
        raise ValueError(f"`weights` must sum to 1; they sum to {total:.10g}.")
    return w / total


def _logsumexp_weights(log_w: FloatArray) -> FloatArray:
    """Normalised weights from unnormalised log-weights (last axis)."""
    return np.asarray(np.exp(log_w - special.logsumexp(log_w, axis=-1, keepdims=True)))


class _Mixture:
    """Shared behaviour of one-dimensional mixtures with vectorised component densities."""

    weights: FloatArray

    # component-level hooks implemented by each family
    def _component_logpdf(self, x: FloatArray) -> FloatArray:  # (..., n_comp)
        raise NotImplementedError

    def _component_cdf(self, x: FloatArray) -> FloatArray:
        raise NotImplementedError

    def _component_dlogpdf(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """First and second derivatives of each component's log density at ``x``."""
        raise NotImplementedError

    def _support(self) -> tuple[float, float]:
        raise NotImplementedError

    @property
    def n_components(self) -> int:
        """Number of components."""
        return int(self.weights.size)

    def logpdf(self, x: ArrayLike) -> FloatArray:
        """Log density of the mixture."""
        xa = np.asarray(x, dtype=np.float64)[..., None]
        return np.asarray(
            special.logsumexp(np.log(self.weights) + self._component_logpdf(xa), axis=-1)
        )

    def pdf(self, x: ArrayLike) -> FloatArray:
        """Density of the mixture."""
        return np.exp(self.logpdf(x))

    def cdf(self, x: ArrayLike) -> FloatArray:
        """Cumulative distribution function."""
        xa = np.asarray(x, dtype=np.float64)[..., None]
        return np.asarray(np.sum(self.weights * self._component_cdf(xa), axis=-1))

    def quantile(self, q: ArrayLike) -> FloatArray:
        """Quantile function (inverse CDF), solved by bracketing per probability."""
        qa = check_in_interval("q", q, 0.0, 1.0, closed="neither")
        lo, hi = self._quantile_bracket()
        flat = np.array(
            [
                optimize.brentq(lambda t, p=p: float(self.cdf(t)) - p, lo, hi, xtol=1e-14)
                for p in qa.ravel()
            ]
        )
        return flat.reshape(qa.shape)

    def _quantile_bracket(self) -> tuple[float, float]:
        raise NotImplementedError

    def info(self, x: ArrayLike) -> FloatArray:
        """Local information ``-d² log p / dx²`` of the mixture at ``x``."""
        xa = np.asarray(x, dtype=np.float64)[..., None]
        log_r = np.log(self.weights) + self._component_logpdf(xa)
        r = _logsumexp_weights(log_r)  # posterior component probabilities at x
        g, h = self._component_dlogpdf(xa)
        return np.asarray(np.sum(r * g, axis=-1) ** 2 - np.sum(r * (h + g**2), axis=-1))

    def mode(self) -> float:
        """The highest mode (searched from every component's location)."""
        lo, hi = self._support()
        starts = self._mode_starts()
        best_x, best_lp = starts[0], -np.inf
        for s in starts:
            res = optimize.minimize_scalar(
                lambda t: -float(self.logpdf(t)),
                bounds=(max(lo, s - 10 * self._scale()), min(hi, s + 10 * self._scale())),
                method="bounded",
                options={"xatol": 1e-12},
            )
            if -res.fun > best_lp:
                best_x, best_lp = float(res.x), -float(res.fun)
        return best_x

    def _mode_starts(self) -> list[float]:
        raise NotImplementedError

    def _scale(self) -> float:
        raise NotImplementedError

    def interval(self, prob: float = 0.95) -> tuple[float, float]:
        """Central interval with probability ``prob``."""
        lo, hi = self.quantile([(1 - prob) / 2, (1 + prob) / 2])
        return float(lo), float(hi)

    def _integrate(self, func: object, *, eps: float = 1e-12) -> float:
        """E[func(θ)] under the mixture, integrated on the probability scale.

        Integrating ``func(Q(u))`` over u in (0, 1) keeps every component's mass inside the
        integration range whatever its scale (RBesT's ``integrate_density`` does the same).
        """
        total = 0.0
        for w, comp in zip(self.weights, self._components(), strict=True):
            # per component: E_k[func] by quad on its own quantile scale
            val, _ = integrate.quad(
                lambda u, c=comp: float(func(c.ppf(u))),  # type: ignore[operator]
                eps,
                1 - eps,
                limit=200,
                epsabs=1e-12,
                epsrel=1e-10,
            )
            total += float(w) * val
        return total

    def _components(self) -> list[Any]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True, eq=False)
class NormalMixture(_Mixture):
    """A mixture of normal distributions.

    Parameters
    ----------
    weights, means, sds : array_like
        Component weights (summing to 1), means and standard deviations.
    sigma : float, optional
        Reference scale: the standard deviation of one observation (unit) in the trial the
        prior is for.  Needed for effective sample sizes and for ``robustify``.
    """

    weights: FloatArray
    means: FloatArray
    sds: FloatArray
    sigma: float | None = None

    def __post_init__(self) -> None:
        w = _check_weights(self.weights)
        m = as_float_array("means", self.means)
        s = check_positive("sds", self.sds)
        if not (w.shape == m.shape == s.shape):
            raise ValueError(
                f"`weights`, `means` and `sds` must have the same length; got "
                f"{w.shape}, {m.shape}, {s.shape}."
            )
        if self.sigma is not None:
            check_positive("sigma", self.sigma)
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "means", m)
        object.__setattr__(self, "sds", s)

    def __repr__(self) -> str:
        rows = "\n".join(
            f"  {w:8.4f} {m:12.5g} {s:12.5g}"
            for w, m, s in zip(self.weights, self.means, self.sds, strict=True)
        )
        ref = "" if self.sigma is None else f", reference sigma = {self.sigma:g}"
        head = "    weight         mean           sd"
        return f"NormalMixture({self.n_components} components{ref})\n{head}\n{rows}"

    @property
    def mean(self) -> float:
        """Mixture mean."""
        return float(np.sum(self.weights * self.means))

    @property
    def sd(self) -> float:
        """Mixture standard deviation."""
        second = np.sum(self.weights * (self.sds**2 + self.means**2))
        return float(np.sqrt(second - self.mean**2))

    def _component_logpdf(self, x: FloatArray) -> FloatArray:
        return np.asarray(stats.norm.logpdf(x, self.means, self.sds))

    def _component_cdf(self, x: FloatArray) -> FloatArray:
        return np.asarray(stats.norm.cdf(x, self.means, self.sds))

    def _component_dlogpdf(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        g = -(x - self.means) / self.sds**2
        h = np.broadcast_to(-1.0 / self.sds**2, g.shape)
        return g, h

    def _support(self) -> tuple[float, float]:
        return -np.inf, np.inf

    def _quantile_bracket(self) -> tuple[float, float]:
        return float(np.min(self.means - 40 * self.sds)), float(np.max(self.means + 40 * self.sds))

    def _mode_starts(self) -> list[float]:
        return [float(m) for m in self.means]

    def _scale(self) -> float:
        return float(np.max(self.sds))

    def _components(self) -> list[Any]:
        return [stats.norm(m, s) for m, s in zip(self.means, self.sds, strict=True)]

    def sample(self, n: int, *, rng: object = None) -> FloatArray:
        """``n`` independent draws."""
        gen = check_rng(rng)
        comp = gen.choice(self.n_components, size=n, p=self.weights)
        return np.asarray(gen.normal(self.means[comp], self.sds[comp]))

    def update(self, estimate: float, se: float) -> Self:
        """Conjugate posterior after observing ``estimate`` with standard error ``se``.

        Each component updates by precision weighting; its weight is multiplied by the
        component's prior-predictive density of the estimate, N(estimate; m_k, s_k² + se²).
        """
        y = float(as_float_array("estimate", estimate))
        s2 = float(check_positive("se", se)) ** 2
        prec = 1.0 / self.sds**2 + 1.0 / s2
        means = (self.means / self.sds**2 + y / s2) / prec
        log_w = np.log(self.weights) + stats.norm.logpdf(y, self.means, np.sqrt(self.sds**2 + s2))
        return type(self)(_logsumexp_weights(log_w), means, 1.0 / np.sqrt(prec), self.sigma)

    def robustify(self, weight: float, mean: float, *, n: float = 1.0) -> Self:
        """Add a vague unit-information component N(mean, sigma²/n) with weight ``weight``.

        Protects against prior-data conflict (Schmidli et al. 2014).  Needs ``sigma``.
        """
        w = float(check_in_interval("weight", weight, 0.0, 1.0, closed="neither"))
        if self.sigma is None:
            raise ValueError(
                "`sigma` (the reference scale of one observation) must be set on the mixture "
                "to robustify it with a unit-information component."
            )
        check_positive("n", n)
        return type(self)(
            np.append(self.weights * (1 - w), w),
            np.append(self.means, float(as_float_array("mean", mean))),
            np.append(self.sds, self.sigma / np.sqrt(n)),
            self.sigma,
        )


@dataclass(frozen=True, slots=True, eq=False)
class BetaMixture(_Mixture):
    """A mixture of beta distributions (a prior for a response probability).

    Parameters
    ----------
    weights, a, b : array_like
        Component weights (summing to 1) and shape parameters.
    """

    weights: FloatArray
    a: FloatArray
    b: FloatArray

    def __post_init__(self) -> None:
        w = _check_weights(self.weights)
        a = check_positive("a", self.a)
        b = check_positive("b", self.b)
        if not (w.shape == a.shape == b.shape):
            raise ValueError(
                f"`weights`, `a` and `b` must have the same length; got "
                f"{w.shape}, {a.shape}, {b.shape}."
            )
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)

    def __repr__(self) -> str:
        rows = "\n".join(
            f"  {w:8.4f} {a:12.5g} {b:12.5g}"
            for w, a, b in zip(self.weights, self.a, self.b, strict=True)
        )
        head = "    weight            a            b"
        return f"BetaMixture({self.n_components} components)\n{head}\n{rows}"

    @property
    def mean(self) -> float:
        """Mixture mean."""
        return float(np.sum(self.weights * self.a / (self.a + self.b)))

    @property
    def sd(self) -> float:
        """Mixture standard deviation."""
        n = self.a + self.b
        second = np.sum(self.weights * self.a * (self.a + 1) / (n * (n + 1)))
        return float(np.sqrt(second - self.mean**2))

    def _component_logpdf(self, x: FloatArray) -> FloatArray:
        return np.asarray(stats.beta.logpdf(x, self.a, self.b))

    def _component_cdf(self, x: FloatArray) -> FloatArray:
        return np.asarray(stats.beta.cdf(x, self.a, self.b))

    def _component_dlogpdf(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        # clamp as RBesT does so that the derivatives stay finite at the boundary
        eps = np.finfo(float).eps
        xc = np.clip(x, eps, 1 - eps)
        g = (self.a - 1) / xc - (self.b - 1) / (1 - xc)
        h = -(self.a - 1) / xc**2 - (self.b - 1) / (1 - xc) ** 2
        return g, h

    def _support(self) -> tuple[float, float]:
        return 0.0, 1.0

    def _quantile_bracket(self) -> tuple[float, float]:
        return 0.0, 1.0

    def _mode_starts(self) -> list[float]:
        starts = []
        for a, b in zip(self.a, self.b, strict=True):
            starts.append(
                float(np.clip((a - 1) / (a + b - 2), 1e-9, 1 - 1e-9)) if a + b > 2 else 0.5
            )
        return starts

    def _scale(self) -> float:
        return 1.0

    def _components(self) -> list[Any]:
        return [stats.beta(a, b) for a, b in zip(self.a, self.b, strict=True)]

    def update(self, events: int, n: int) -> Self:
        """Conjugate posterior after ``events`` responders out of ``n``."""
        r, m = int(events), int(n)
        if not 0 <= r <= m:
            raise ValueError(f"`events` must lie in [0, n] = [0, {m}]; got {r}.")
        log_w = (
            np.log(self.weights)
            + special.betaln(self.a + r, self.b + m - r)
            - special.betaln(self.a, self.b)
        )
        return type(self)(_logsumexp_weights(log_w), self.a + r, self.b + m - r)

    def robustify(self, weight: float, mean: float = 0.5, *, n: float = 1.0) -> Self:
        """Add a vague Beta(mean·(n+1), (1−mean)·(n+1)) component (uniform for the defaults).

        RBesT uses n + 1 so that the default robust component is the uniform Beta(1, 1).
        """
        w = float(check_in_interval("weight", weight, 0.0, 1.0, closed="neither"))
        m = float(check_in_interval("mean", mean, 0.0, 1.0, closed="neither"))
        size = float(check_positive("n", n)) + 1.0
        return type(self)(
            np.append(self.weights * (1 - w), w),
            np.append(self.a, m * size),
            np.append(self.b, (1 - m) * size),
        )


def ess(
    mixture: NormalMixture | BetaMixture,
    method: EssMethod = "elir",
    *,
    sigma: float | None = None,
    s: float = 100.0,
) -> float:
    """Effective sample size of a mixture prior.

    Parameters
    ----------
    mixture : NormalMixture or BetaMixture
        The prior.
    method : {"elir", "moment", "morita"}
        "elir": expected local information ratio (Neuenschwander et al. 2020), the only
        predictively consistent definition; "moment": the conjugate prior with the same mean and
        SD; "morita": Morita et al. (2008) evaluated at the prior mode with a flattened prior of
        variance ``s`` times the largest component variance (as RBesT).
    sigma : float, optional
        Reference scale of one observation for normal mixtures (defaults to ``mixture.sigma``).
    s : float
        Flattening factor for "morita".

    Returns
    -------
    float
        The effective number of observations (normal) or patients (beta).

    References
    ----------
    RBesT ``ess()`` (Novartis/RBesT, R/mixess.R) defines the three methods exactly as here.
    """
    if method not in ("elir", "moment", "morita"):
        raise ValueError(f"`method` must be one of 'elir', 'moment', 'morita'; got {method!r}.")
    check_positive("s", s)
    if isinstance(mixture, NormalMixture):
        ref = sigma if sigma is not None else mixture.sigma
        if ref is None:
            raise ValueError(
                "`sigma` (the reference scale of one observation) is needed for the ESS of a "
                "normal mixture; pass sigma= or set it on the mixture."
            )
        tau2 = float(check_positive("sigma", ref)) ** 2
        if method == "elir":
            return tau2 * mixture._integrate(lambda t: float(mixture.info(t)))
        if method == "moment":
            return tau2 / mixture.sd**2
        mode = mixture.mode()
        info0 = 1.0 / (s * float(np.max(mixture.sds)) ** 2)
        return float((mixture.info(mode) - info0) * tau2)
    if isinstance(mixture, BetaMixture):
        if method == "elir":
            if np.any(mixture.a < 1) or np.any(mixture.b < 1):
                raise ValueError(
                    "the ELIR ESS of a beta mixture is undefined when a component has a < 1 or "
                    f"b < 1 (the integral diverges); got a = {mixture.a}, b = {mixture.b}."
                )
            value = mixture._integrate(lambda t: float(mixture.info(t)) * t * (1 - t))
            if value < 0:
                import warnings

                warnings.warn(
                    "negative ELIR effective sample size: the local information ratio is "
                    "unstable for this mixture; consider the ESS on the logit scale.",
                    FragileEstimateWarning,
                    stacklevel=2,
                )
            return value
        if method == "moment":
            m, sd = mixture.mean, mixture.sd
            return m * (1 - m) / sd**2 - 1.0
        mode = mixture.mode()
        eps = np.finfo(float).eps
        mc = min(max(mode, eps), 1 - eps)
        a0, b0 = mc / s, (1 - mc) / s
        info0 = (a0 - 1) / mc**2 + (b0 - 1) / (1 - mc) ** 2
        p0 = float(np.sum(mixture.weights * mixture.b / (mixture.a + mixture.b)))
        e_info = (1.0 / (1 - mc) ** 2) * p0 + (1.0 / mc**2) * (1 - p0)
        return float((mixture.info(mc) - info0) / e_info)
    raise TypeError(f"`mixture` must be a NormalMixture or BetaMixture; got {type(mixture)!r}.")
