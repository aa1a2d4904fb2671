"""Exact Bayesian random-effects meta-analysis of the normal-normal model, batched.

Model: yᵢ | θᵢ ~ N(θᵢ, vᵢ), θᵢ | μ, τ ~ N(μ, τ²), with independent priors p(μ) (normal or flat) and
p(τ).  Given τ everything is conjugate, so (as in bayesmeta) the only integral left is over τ:

    p(τ | y) ∝ p(τ) · m(y | τ),   m(y | τ) = ∫ Πᵢ N(yᵢ | μ, vᵢ + τ²) p(μ) dμ  (closed form),

and p(μ | y), a new study's effect θ_new and each study's shrunken θᵢ are normal mixtures over
τ.  bayesmeta approximates these mixtures with the DIRECT grid (Röver & Friede 2017); here they
are quadrature sums: adaptive Gauss-Kronrod (7, 15) panels on x = log τ (mapped to a shared
[0, 1] axis per meta-analysis), refined until every panel's Kronrod-Gauss difference is below
1e-8 of the total for every meta-analysis in the batch (the Kronrod sums are then accurate to
~1e-15 relative), so one node set serves the whole batch.  The mass below a tiny τ_lo is
added in closed form, m(y | 0)·P(τ < τ_lo), since m(y | τ) is flat there to O(τ²/vᵢ).  One
meta-analysis runs the same steps as compiled kernels (:mod:`fibrosim.meta._tau_single`), and
the quantiles of τ and of the mixtures are compiled solves for any batch size.

References
----------
Röver C. Bayesian random-effects meta-analysis using the bayesmeta R package. J Stat Softw
2020;93(6):1-51. doi:10.18637/jss.v093.i06 (Sec. 2-3: marginal likelihood, conditional
moments, shrinkage, Bayes factors).

Röver C, Friede T. Discrete approximation of a mixture distribution via restricted divergence.
J Comput Graph Stat 2017;26(1):217-222 (the DIRECT grid this module replaces by quadrature).

Piessens R, de Doncker-Kapenga E, Überhuber CW, Kahaner DK. QUADPACK. Springer 1983 (the
Gauss-Kronrod 7-15 rule).
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike, NDArray

from fibrosim._checks import as_float_array, check_choice, check_integer, check_rng
from fibrosim.meta._mixture import Marginal, NormalMixtureMarginal
from fibrosim.meta._tau_quadrature import TauGrid, build_tau_grid, conditional_moments
from fibrosim.meta._tau_single import build_single_tau_grid
from fibrosim.meta.priors import Flat, Jeffreys, MuPrior, Normal, TauPrior
from fibrosim.warnings import FragileEstimateWarning

__all__ = ["BayesRandomEffects", "TauMarginal", "bayes_random_effects"]

FloatArray = NDArray[np.float64]
Param = Literal["mu", "tau", "predictive", "shrinkage"]


class TauMarginal(Marginal):
    """Posterior of τ: exact density, quadrature CDF and Newton-solved quantiles."""

    lower_bound = 0.0

    def __init__(self, grid: TauGrid, batch_shape: tuple[int, ...]) -> None:
        self.batch_shape = batch_shape
        self._g = grid

    def _moments(self) -> tuple[FloatArray, FloatArray]:
        return self._g.tau_moments()

    def _cdf(self, x: FloatArray) -> FloatArray:
        return self._g.cdf(x)

    def _sf(self, x: FloatArray) -> FloatArray:
        return self._g.cdf(x, upper=True)

    def _logpdf(self, x: FloatArray) -> FloatArray:
        return self._g.logpdf(x)

    def _quantile(self, q: FloatArray) -> FloatArray:
        return self._g.quantile(q)

    @property
    def mode(self) -> FloatArray:
        """Posterior mode of τ (0 when the density is largest at τ = 0)."""
        return self._g.mode().reshape(self.batch_shape)


@dataclass(frozen=True, slots=True, repr=False)
class BayesRandomEffects:
    """Exact posterior of the normal-normal random-effects model (one or many meta-analyses).

    Attributes
    ----------
    yi, vi : ndarray
        The data, shape ``batch_shape + (k_max,)``, NaN-padded.
    k : ndarray
        Number of studies per meta-analysis (``batch_shape``).
    tau_prior : TauPrior
        Prior on τ.
    mu_prior : Normal or Flat
        Prior on μ.
    studies : tuple of str
        Study labels (the ``study`` coordinate of :meth:`sample`).
    mu, tau, predictive, shrinkage
        Marginal posteriors (see :class:`~fibrosim.meta._mixture.Marginal`): μ, τ, the true
        effect of a new study θ_new, and the studies' own effects θᵢ (batch shape
        ``batch_shape + (k_max,)``; padded studies give NaN).  Each has ``.mean .sd .median
        .quantile(q) .cdf(x) .pdf(x) .interval(prob, kind)``.

    Notes
    -----
    A moment that does not exist is reported as ``inf`` (τ mean/sd, sds of μ and θ_new) or
    NaN (the mean of μ or θ_new with a flat μ prior when E[τ] is infinite); a
    FragileEstimateWarning says so when the result is built.  This happens only with
    heavy-tailed τ priors and few studies.
    """

    yi: FloatArray
    vi: FloatArray
    k: FloatArray
    tau_prior: TauPrior
    mu_prior: MuPrior
    studies: tuple[str, ...]
    _grid: TauGrid = field(repr=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    # -- marginals -------------------------------------------------------------------------
    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Shape of the batch of meta-analyses (``()`` for one)."""
        return self.yi.shape[:-1]

    @property
    def tau(self) -> TauMarginal:
        """Marginal posterior of τ."""
        if "tau" not in self._cache:
            self._cache["tau"] = TauMarginal(self._grid, self.batch_shape)
        out: TauMarginal = self._cache["tau"]
        return out

    @property
    def mu(self) -> NormalMixtureMarginal:
        """Marginal posterior of μ."""
        if "mu" not in self._cache:
            g = self._grid
            self._cache["mu"] = NormalMixtureMarginal(
                g.weights.reshape((*self.batch_shape, -1)),
                g.cond_mean.reshape((*self.batch_shape, -1)),
                g.cond_sd.reshape((*self.batch_shape, -1)),
                exists=self._mu_exists(predictive=False),
            )
        out: NormalMixtureMarginal = self._cache["mu"]
        return out

    @property
    def predictive(self) -> NormalMixtureMarginal:
        """Posterior predictive of a new study's true effect θ_new ~ N(μ, τ²)."""
        if "pred" not in self._cache:
            g = self._grid
            sd = np.sqrt(g.cond_sd**2 + g.tau_nodes**2)
            self._cache["pred"] = NormalMixtureMarginal(
                g.weights.reshape((*self.batch_shape, -1)),
                g.cond_mean.reshape((*self.batch_shape, -1)),
                sd.reshape((*self.batch_shape, -1)),
                exists=self._mu_exists(predictive=True),
            )
        out: NormalMixtureMarginal = self._cache["pred"]
        return out

    @property
    def shrinkage(self) -> NormalMixtureMarginal:
        """Posteriors of the studies' own effects θᵢ; batch shape ``batch_shape + (k_max,)``."""
        if "shrink" not in self._cache:
            g = self._grid
            v = self._grid.vi[:, :, None]  # (B, K, 1)
            y = self._grid.yi[:, :, None]
            t2 = g.tau_nodes[:, None, :] ** 2  # (B, 1, N)
            m = g.cond_mean[:, None, :]
            s2 = g.cond_sd[:, None, :] ** 2
            shrink = v / (v + t2)
            mean = (1 - shrink) * y + shrink * m
            sd = np.sqrt(v * t2 / (v + t2) + shrink**2 * s2)
            w = np.broadcast_to(g.weights[:, None, :], mean.shape)
            shape = (*self.batch_shape, self.yi.shape[-1], -1)
            self._cache["shrink"] = NormalMixtureMarginal(
                w.reshape(shape), mean.reshape(shape), sd.reshape(shape)
            )
        out: NormalMixtureMarginal = self._cache["shrink"]
        return out

    def _mu_exists(self, *, predictive: bool) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        # with a normal μ prior, μ's conditional sd is bounded; with a flat one it grows like τ
        first, second = self._grid.moment_exists(1), self._grid.moment_exists(2)
        if isinstance(self.mu_prior, Normal):
            ones = np.ones_like(first)
            return (ones, second if predictive else ones)
        return (first, second)

    # -- probabilities and evidence ---------------------------------------------------------
    def _marginal(self, param: Param) -> Marginal:
        check_choice("param", param, ("mu", "tau", "predictive", "shrinkage"))
        if param == "mu":
            return self.mu
        if param == "tau":
            return self.tau
        if param == "predictive":
            return self.predictive
        return self.shrinkage

    def prob(
        self,
        param: Param,
        threshold: float,
        side: Literal["greater", "less"] = "greater",
    ) -> FloatArray:
        """Posterior probability that ``param`` lies beyond ``threshold``.

        Parameters
        ----------
        param : {"mu", "tau", "predictive", "shrinkage"}
            Which marginal.
        threshold : float
            The cut-off.
        side : {"greater", "less"}
            P(param > threshold) or P(param < threshold).

        Returns
        -------
        ndarray
            Shape ``batch_shape`` (``batch_shape + (k_max,)`` for shrinkage).
        """
        marginal = self._marginal(param)
        check_choice("side", side, ("greater", "less"))
        thr = float(as_float_array("threshold", threshold))
        if side == "greater":
            return marginal.sf(thr)
        return marginal.cdf(thr)

    def bayes_factor(self, param: Literal["mu", "tau"]) -> FloatArray:
        """Bayes factor BF₀₁ of the null (``mu`` = 0 or ``tau`` = 0) against the model.

        ``tau``: m(y | τ = 0) / m(y); needs a proper τ prior.  With a flat μ prior both
        marginal likelihoods carry the same arbitrary constant of the flat prior, which
        cancels.  ``mu``: Savage-Dickey ratio p(μ = 0 | y) / p(μ = 0), which equals
        m(y | μ = 0) / m(y); needs a proper (normal) μ prior.

        References
        ----------
        Röver C. J Stat Softw 2020;93(6), Sec. 2.6 (Bayes factors of bayesmeta).
        """
        check_choice("param", param, ("mu", "tau"))
        if param == "tau":
            if not self.tau_prior.proper:
                raise ValueError(
                    f"the Bayes factor for tau = 0 needs a proper tau prior; "
                    f"tau_prior={self.tau_prior!r} is improper."
                )
            return np.exp(self._grid.log_lik_at_zero - self._grid.log_evidence).reshape(
                self.batch_shape
            )
        if not isinstance(self.mu_prior, Normal):
            raise ValueError(
                "the Bayes factor for mu = 0 needs a proper mu prior; mu_prior is flat "
                "(mu_prior=None)."
            )
        post = self.mu.pdf(0.0)
        return np.asarray(post / self.mu_prior.pdf(0.0), dtype=np.float64)

    @property
    def log_marginal_likelihood(self) -> FloatArray:
        """Log m(y) = log ∫∫ Πᵢ N(yᵢ | μ, vᵢ + τ²) p(μ) p(τ) dμ dτ (proper priors only)."""
        problems = []
        if not isinstance(self.mu_prior, Normal):
            problems.append("mu_prior is flat (mu_prior=None)")
        if not self.tau_prior.proper:
            problems.append(f"tau_prior={self.tau_prior!r} is improper")
        if problems:
            raise ValueError(
                "the marginal likelihood is defined only for proper priors: "
                + "; ".join(problems)
                + "."
            )
        return self._grid.log_evidence.reshape(self.batch_shape)

    @property
    def marginal_likelihood(self) -> FloatArray:
        """m(y) (see :attr:`log_marginal_likelihood`)."""
        return np.exp(self.log_marginal_likelihood)

    # -- draws ------------------------------------------------------------------------------
    def sample(self, n: int, *, rng: Any = None) -> xr.DataTree:
        """Independent posterior draws in ArviZ's layout.

        τ is drawn by inverting its CDF, then μ | τ, y, θᵢ | μ, τ, y and θ_new | μ, τ from their
        exact normal conditionals, so the draws are iid from the joint posterior.

        Parameters
        ----------
        n : int
            Number of draws (>= 1).
        rng : int, SeedSequence or Generator, optional
            Source of randomness (SPEC 7).

        Returns
        -------
        xarray.DataTree
            Group ``posterior`` with dims ``chain`` (1) and ``draw`` (n), any batch dims
            (``analysis`` or ``analysis_0``, ...), and ``study``; variables ``mu``, ``tau``,
            ``theta`` and ``theta_new``.  Padded studies of a ragged batch draw NaN.
        """
        n_draws = int(check_integer("n", n, minimum=1))
        gen = check_rng(rng)
        g = self._grid
        size = g.size
        u = gen.random((size, n_draws))
        tau = g.quantile(np.clip(u, 1e-300, 1 - 1e-16))
        mean, sd = conditional_moments(g, tau)
        z = gen.standard_normal((size, n_draws, 2 + g.yi.shape[1]))
        mu = mean + sd * z[:, :, 0]
        theta_new = mu + tau * z[:, :, 1]
        v = g.vi[:, None, :]
        t2 = tau[:, :, None] ** 2
        cond_mean = (t2 * g.yi[:, None, :] + v * mu[:, :, None]) / (v + t2)
        theta = cond_mean + np.sqrt(v * t2 / (v + t2)) * z[:, :, 2:]
        batch_dims = _batch_dims(self.batch_shape)
        shape = self.batch_shape

        def arrange(a: FloatArray, extra: tuple[int, ...] = ()) -> FloatArray:
            a = a.reshape((*shape, n_draws, *extra))
            a = np.moveaxis(a, len(shape), 0)
            return a[None]

        dims = ("chain", "draw", *batch_dims)
        ds = xr.Dataset(
            {
                "mu": (dims, arrange(mu)),
                "tau": (dims, arrange(tau)),
                "theta": ((*dims, "study"), arrange(theta, (g.yi.shape[1],))),
                "theta_new": (dims, arrange(theta_new)),
            },
            coords={"chain": [0], "draw": np.arange(n_draws), "study": list(self.studies)},
            attrs={
                "inference_library": "fibrosim (exact quadrature, iid draws)",
                "tau_prior": repr(self.tau_prior),
                "mu_prior": repr(self.mu_prior),
            },
        )
        return xr.DataTree.from_dict({"posterior": ds})

    # -- presentation -----------------------------------------------------------------------
    def to_dataframe(self, prob: float = 0.95) -> pd.DataFrame:
        """Summary table: one row per (analysis, parameter).

        Columns: mean, sd, median and the central and shortest ``prob`` intervals.
        """
        rows = []
        index = list(np.ndindex(*self.batch_shape)) if self.batch_shape else [()]
        parts: dict[str, Marginal] = {
            "mu": self.mu,
            "tau": self.tau,
            "theta_new": self.predictive,
        }
        stats_ = {}
        for name, marg in parts.items():
            central = marg.interval(prob, "central")
            shortest = marg.interval(prob, "shortest")
            stats_[name] = (marg.mean, marg.sd, marg.median, central, shortest)
        for idx in index:
            for name, (mean, sd, med, central, shortest) in stats_.items():
                label: Any = idx[0] if len(idx) == 1 else idx
                row: dict[str, Any] = {"analysis": label, "parameter": name}
                row |= {
                    "mean": float(mean[idx]),
                    "sd": float(sd[idx]),
                    "median": float(med[idx]),
                    "central_low": float(central[idx][0]),
                    "central_high": float(central[idx][1]),
                    "shortest_low": float(shortest[idx][0]),
                    "shortest_high": float(shortest[idx][1]),
                }
                rows.append(row)
        frame = pd.DataFrame(rows)
        if not self.batch_shape:
            frame = frame.drop(columns="analysis")
        return frame

    def __repr__(self) -> str:
        head = f"BayesRandomEffects(tau_prior={self.tau_prior!r}, mu_prior={self.mu_prior!r}, "
        if self.batch_shape:
            return head + f"batch_shape={self.batch_shape}, k_max={self.yi.shape[-1]})"
        table = self.to_dataframe().set_index("parameter")
        return head + f"k={int(self.k)})\n" + table.to_string(float_format=lambda v: f"{v:.4g}")


@functools.lru_cache(maxsize=64)
def _default_labels(k_max: int) -> tuple[str, ...]:
    """Study labels "01", "02", ... (cached: formatting them rivals a small posterior)."""
    return tuple(f"{i + 1:02d}" for i in range(k_max))


def _batch_dims(shape: tuple[int, ...]) -> tuple[str, ...]:
    if len(shape) == 1:
        return ("analysis",)
    return tuple(f"analysis_{i}" for i in range(len(shape)))


# -- public entry point ------------------------------------------------------------------------
def _check_inputs(
    yi: ArrayLike, vi: ArrayLike, tau_prior: Any, mu_prior: Any
) -> tuple[FloatArray, FloatArray, TauPrior, MuPrior]:
    if not isinstance(tau_prior, TauPrior):
        raise TypeError(
            "`tau_prior` must be a fibrosim.priors tau prior (HalfNormal, HalfCauchy, HalfT, "
            f"Exponential, Uniform, Jeffreys, LogNormalTau2, LogTTau2); got {tau_prior!r}."
        )
    if mu_prior is None:
        mu_prior = Flat()
    if not isinstance(mu_prior, (Normal, Flat)):
        raise TypeError(
            f"`mu_prior` must be fibrosim.priors.Normal, Flat or None; got {mu_prior!r}."
        )
    y = as_float_array("yi", yi, allow_nan=True)
    v = as_float_array("vi", vi, allow_nan=True)
    if y.ndim == 0 or v.ndim == 0:
        raise ValueError("`yi` and `vi` must have a study axis (last axis), not be scalars.")
    if y.shape != v.shape:
        raise ValueError(f"`yi` and `vi` must have the same shape; got {y.shape} and {v.shape}.")
    mismatch = np.isnan(y) != np.isnan(v)
    if np.any(mismatch):
        idx = tuple(int(i) for i in np.argwhere(mismatch)[0])
        raise ValueError(
            f"`yi` and `vi` must be NaN (padding) at the same places; index {idx} has "
            f"yi={y[idx]}, vi={v[idx]}."
        )
    with np.errstate(invalid="ignore"):
        bad = v <= 0
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"`vi` must be > 0; got {v[idx]} at index {idx}.")
    if isinstance(tau_prior, Jeffreys) and tau_prior.vi is not None:
        bound = np.asarray(tau_prior.vi)
        data = v.reshape(-1, v.shape[-1])
        if data.shape[0] != 1 or not np.array_equal(bound, data[0][~np.isnan(data[0])]):
            raise ValueError(
                "`tau_prior` is Jeffreys bound to other sampling variances than `vi`; pass "
                "Jeffreys() and the posterior uses each meta-analysis's own vi."
            )
    return y, v, tau_prior, mu_prior


def bayes_random_effects(
    yi: ArrayLike,
    vi: ArrayLike,
    tau_prior: TauPrior,
    mu_prior: Normal | Flat | None = None,
    *,
    studies: list[str] | tuple[str, ...] | None = None,
) -> BayesRandomEffects:
    """Exact posterior of the normal-normal random-effects model (no MCMC).

    Parameters
    ----------
    yi : array_like
        Effect estimates, shape ``(..., k)``; leading axes are independent meta-analyses,
        ragged ones NaN-padded.
    vi : array_like
        Sampling variances (> 0), same shape and padding as ``yi``.
    tau_prior : TauPrior
        Prior on τ (``fs.priors.HalfNormal(0.5)``, ``fs.priors.turner2015("pain", ...)``, ...).
    mu_prior : Normal, Flat or None
        Prior on μ; ``None`` (flat) is the default.
    studies : sequence of str, optional
        Study labels of the last axis (coordinates of :meth:`BayesRandomEffects.sample`).

    Returns
    -------
    BayesRandomEffects

    Raises
    ------
    ValueError
        Non-finite ``yi``/``vi`` (other than matching NaN padding), ``vi`` <= 0, an improper
        posterior (a flat μ prior with k = 0; an improper τ prior with too few studies: flat τ
        needs k >= 3 with flat μ, k >= 2 with normal μ; Jeffreys needs k >= 2 with flat μ).
    TypeError
        Priors that are not fibrosim priors.

    Warns
    -----
    FragileEstimateWarning
        Posterior mass left at the upper edge of the τ grid (extremely heavy tails), or
        posterior moments that do not exist.

    References
    ----------
    Röver C. Bayesian random-effects meta-analysis using the bayesmeta R package. J Stat Softw
    2020;93(6):1-51. doi:10.18637/jss.v093.i06

    Examples
    --------
    >>> import fibrosim as fs
    >>> yi = [-2.31, -0.46, -2.30, -1.76, -1.26, -2.42]
    >>> vi = [0.359, 0.310, 0.775, 0.208, 0.412, 2.337]
    >>> post = fs.meta.bayes_random_effects(yi, vi, fs.priors.HalfNormal(0.5),
    ...                                     fs.priors.Normal(0, 4))
    >>> round(float(post.tau.median), 2)
    0.34
    """
    y, v, tau_prior, mu_p = _check_inputs(yi, vi, tau_prior, mu_prior)
    k_max = y.shape[-1]
    if studies is None:
        labels = _default_labels(k_max)
    else:
        labels = tuple(str(s) for s in studies)
        if len(labels) != k_max:
            raise ValueError(
                f"`studies` must have one label per study ({k_max}); got {len(labels)}."
            )
    batch_shape = y.shape[:-1]
    yf = y.reshape(-1, k_max)
    vf = v.reshape(-1, k_max)
    # one analysis: the same quadrature, step by step in compiled kernels
    build = build_single_tau_grid if yf.shape[0] == 1 else build_tau_grid
    grid = build(yf, vf, tau_prior, mu_p)
    k = grid.data.k.reshape(batch_shape)  # studies per analysis (the grid counted them)
    result = BayesRandomEffects(
        yi=y, vi=v, k=k, tau_prior=tau_prior, mu_prior=mu_p, studies=labels, _grid=grid
    )
    missing = ~grid.moment_exists(2)
    if np.any(missing):
        warnings.warn(
            "the posterior of tau has no finite variance for "
            f"{int(np.sum(missing))} meta-analysis(es) (heavy-tailed tau prior, few studies): "
            "sds of tau and theta_new are reported as inf.",
            FragileEstimateWarning,
            stacklevel=2,
        )
    return result
