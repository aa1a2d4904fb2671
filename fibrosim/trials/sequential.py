"""Group-sequential boundaries, spending functions, and interim conditional/predictive power.

One-sided efficacy boundaries (optionally with futility bounds), or two-sided symmetric ones,
for K analyses of a normally
distributed statistic, by the recursive numerical integration of Armitage, McPherson & Rowe
(Jennison & Turnbull 2000, ch. 19) in :mod:`fibrosim.trials._gs_integration`: at each analysis
the sub-density of the continuing paths is held on a Simpson grid and convolved with the normal
increment of the next analysis; crossing probabilities integrate the normal tail exactly over
that grid.  The spending functions and boundary solvers are in
:mod:`fibrosim.trials._gs_boundaries`; this module is the public design layer: arguments,
results and interim quantities.

Drift convention: a design alternative is stated as ``drift = E[Z_K] = theta * sqrt(I_K)``; the
mean of ``Z_k`` is ``drift * sqrt(t_k)`` with information fractions ``t_k = I_k / I_K``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize, special

from fibrosim._checks import (
    FloatArray,
    as_float_array,
    check_choice,
    check_in_interval,
    check_integer,
    check_positive,
)
from fibrosim.trials._gs_boundaries import (
    _drift_for_power,
    _futility_design,
    _isf,
    _shape_bounds,
    _spending_fraction,
    _symmetric_shape_bounds,
    _symmetric_spending_bounds,
)
from fibrosim.trials._gs_integration import _crossing, _spending_bounds

__all__ = ["GSDesign", "gs_bounds", "gs_crossing"]

SpendingFunction = Callable[[FloatArray], FloatArray]

_KINDS = ("obf", "pocock", "wt", "ld-obf", "ld-pocock", "hsd", "power", "user")
_SHAPE_KINDS = ("obf", "pocock", "wt")


# --------------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GSDesign:
    """A group-sequential design: one-sided, or two-sided with symmetric bounds.

    Attributes
    ----------
    kind : str
        Efficacy boundary family.
    alpha : float
        Type-I error: one-sided, or the two-sided total when ``sided == 2``.
    timing : ndarray
        Information fractions ``t_k`` of the K analyses (last = 1).
    upper : ndarray
        Efficacy bounds on the z scale (``inf`` where nothing is spent).
    lower : ndarray
        One-sided designs: futility bounds on the z scale (``-inf`` without futility).
        Two-sided designs: the lower efficacy bounds, ``-upper``.
    nominal_p : ndarray
        One-sided nominal p-value of each efficacy bound, ``1 - Phi(upper)`` (as rpact's
        ``stageLevels``, also for two-sided designs).
    alpha_spent : ndarray
        Cumulative probability of crossing an efficacy bound under H0 (futility bounds ignored
        unless binding; both bounds for two-sided designs).
    binding : bool
        Whether the futility bounds were taken as binding when computing the efficacy bounds.
    beta : float or None
        Type-II error the design was powered for (None: not powered).
    drift : float or None
        ``E[Z_K]`` under the design alternative, ``theta * sqrt(I_max)``.
    inflation : float or None
        Maximum information over that of the fixed design with the same alpha and power.
    beta_spent : ndarray or None
        Cumulative probability under the alternative of stopping for futility.
    asn_h0, asn_h1 : float or None
        Expected sample size under H0 and under the alternative, as a fraction of the fixed
        design's sample size (futility bounds assumed to be followed).
    sided : int
        1 (one-sided) or 2 (two-sided, symmetric bounds ``±upper``).
    """

    kind: str
    alpha: float
    timing: FloatArray
    upper: FloatArray
    lower: FloatArray
    nominal_p: FloatArray
    alpha_spent: FloatArray
    binding: bool
    beta: float | None
    drift: float | None
    inflation: float | None
    beta_spent: FloatArray | None
    asn_h0: float | None
    asn_h1: float | None
    sided: int = 1

    @property
    def k(self) -> int:
        """Number of analyses."""
        return int(self.timing.size)

    @property
    def stopping_lower(self) -> FloatArray:
        """Lower bounds the trial always stops at: ``lower`` if two-sided or binding, else -inf.

        Non-binding futility bounds may be ignored, so probabilities of later efficacy (type-I
        error, conditional power) are computed without them.
        """
        if self.sided == 2 or self.binding:
            return self.lower
        return np.full(self.k, -np.inf)

    def to_dataframe(self) -> pd.DataFrame:
        """One row per analysis; design-level numbers are kept in ``DataFrame.attrs``."""
        frame = pd.DataFrame(
            {
                "analysis": np.arange(1, self.k + 1),
                "timing": self.timing,
                "upper": self.upper,
                "nominal_p": self.nominal_p,
                "alpha_spent": self.alpha_spent,
            }
        )
        if np.any(np.isfinite(self.lower)):
            frame["lower"] = self.lower
            if self.beta_spent is not None:
                frame["beta_spent"] = self.beta_spent
        if self.drift is not None:
            # bound on the effect scale as a fraction of the design alternative theta
            frame["upper_over_theta"] = self.upper / (self.drift * np.sqrt(self.timing))
        frame.attrs.update(
            kind=self.kind,
            alpha=self.alpha,
            sided=self.sided,
            beta=self.beta,
            binding=self.binding,
            inflation=self.inflation,
            asn_h0=self.asn_h0,
            asn_h1=self.asn_h1,
        )
        return frame

    def __repr__(self) -> str:
        side = "one-sided" if self.sided == 1 else "two-sided"
        head = f"GSDesign(kind={self.kind!r}, k={self.k}, alpha={self.alpha:g} {side}"
        if self.beta is not None:
            head += (
                f", power={1 - self.beta:g}, inflation={self.inflation:.6g}, "
                f"ASN H0/H1={self.asn_h0:.4g}/{self.asn_h1:.4g}"
            )
        body = self.to_dataframe().to_string(index=False, float_format=lambda x: f"{x:.6g}")
        return f"{head})\n{body}"

    def effect_bounds(
        self, sd: float, n_per_arm: float, ratio: float = 1.0
    ) -> tuple[FloatArray, FloatArray]:
        """Bounds on the difference-in-means scale for a two-arm trial of means.

        Parameters
        ----------
        sd : float
            Outcome SD (> 0).
        n_per_arm : float
            Control-arm size at the final analysis (> 0); the treatment arm is
            ``ratio * n_per_arm`` and analysis k has the fraction ``timing[k]`` of both.
        ratio : float, default 1.0
            Treatment-arm size over control-arm size.

        Returns
        -------
        (upper, lower) : tuple of ndarray
            The observed difference that crosses each bound (``z_k * se_k``).
        """
        s = float(check_positive("sd", sd))
        n = float(check_positive("n_per_arm", n_per_arm))
        r = float(check_positive("ratio", ratio))
        se = s * np.sqrt((1.0 + 1.0 / r) / (n * self.timing))
        return self.upper * se, self.lower * se


# --------------------------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------------------------
def _check_timing(timing: ArrayLike | None, k: int) -> FloatArray:
    if timing is None:
        return np.arange(1, k + 1) / k
    t = as_float_array("timing", timing)
    if t.ndim != 1 or t.size != k:
        raise ValueError(f"`timing` must hold k = {k} information fractions; got {t.tolist()}.")
    if np.any(t <= 0) or np.any(t > 1) or np.any(np.diff(t) <= 0) or t[-1] != 1.0:
        raise ValueError(
            "`timing` must be strictly increasing in (0, 1] and end at 1 (fractions of the "
            f"maximum information); got {t.tolist()}."
        )
    return t


def _check_spending(spending: SpendingFunction, timing: FloatArray, name: str) -> FloatArray:
    frac = np.asarray(spending(np.asarray(timing)), dtype=np.float64)
    if frac.shape != timing.shape or not np.all(np.isfinite(frac)):
        raise ValueError(f"`{name}` must map the timing array to finite values of its shape.")
    # rounding slack: a closed-form spending function may give 1 - 1e-16 at t = 1
    slack = 1e-12
    if (
        np.any(frac < 0)
        or np.any(frac > 1 + slack)
        or np.any(np.diff(frac) < 0)
        or abs(frac[-1] - 1.0) > slack
    ):
        raise ValueError(
            f"`{name}` must return a non-decreasing cumulative fraction in [0, 1] reaching 1 at "
            f"t = 1; got {frac.tolist()}."
        )
    frac = np.minimum(frac, 1.0)
    frac[-1] = 1.0
    return frac


def _futility_fraction(futility: object, timing: FloatArray, beta: float) -> FloatArray:
    """Cumulative fraction of ``beta`` spent on futility at each analysis.

    The O'Brien-Fleming-type function depends on the level it spends (rpact's ``bsOF``:
    ``2 (1 - Phi(z_{1 - beta/2} / sqrt(t)))``), so ``beta`` is passed on; the others are
    fractions of t alone.
    """
    if callable(futility):
        return _check_spending(futility, timing, "futility")
    kind, param = (futility, None) if isinstance(futility, str) else (None, None)
    if isinstance(futility, tuple) and len(futility) == 2:
        kind, param = futility
    if kind not in ("ld-obf", "ld-pocock", "hsd", "power"):
        raise ValueError(
            "`futility` must be 'ld-obf', 'ld-pocock', 'hsd', 'power', a (kind, parameter) "
            f"tuple or a callable spending function; got {futility!r}."
        )
    default = {"hsd": -2.0, "power": 2.0}.get(str(kind), 0.0)
    value = default if param is None else float(as_float_array("futility parameter", param))
    if kind == "power" and value <= 0:
        raise ValueError(f"the futility 'power' parameter must be > 0; got {value}.")
    return _spending_fraction(str(kind), timing, beta, value)


def gs_bounds(
    k: int,
    alpha: float = 0.025,
    kind: str = "obf",
    *,
    gamma: float = -4.0,
    delta: float | None = None,
    rho: float | None = None,
    timing: ArrayLike | None = None,
    beta: float | None = None,
    futility: str | tuple[str, float] | SpendingFunction | None = None,
    binding: bool = False,
    spending: SpendingFunction | None = None,
    sided: int = 1,
) -> GSDesign:
    """Group-sequential efficacy boundaries: one-sided (optionally with futility) or two-sided.

    Parameters
    ----------
    k : int
        Number of analyses (>= 1).
    alpha : float, default 0.025
        Type-I error: one-sided in (0, 0.5), or with ``sided=2`` the two-sided total in (0, 1).
    kind : str, default "obf"
        ``"obf"`` (O'Brien-Fleming, ``c / sqrt(t)``), ``"pocock"`` (constant ``c``), ``"wt"``
        (Wang-Tsiatis ``c * t^(delta - 1/2)``), or an alpha-spending function:
        ``"ld-obf"`` and ``"ld-pocock"`` (Lan-DeMets), ``"hsd"`` (Hwang-Shih-DeCani, ``gamma``),
        ``"power"`` (Kim-DeMets ``t^rho``) or ``"user"`` (``spending``).
    gamma : float, default -4
        Hwang-Shih-DeCani parameter.
    delta : float, optional
        Wang-Tsiatis shape parameter in [0, 0.5] (0: O'Brien-Fleming, 0.5: Pocock).
    rho : float, optional
        Kim-DeMets power (> 0).
    timing : array_like, optional
        Information fractions of the analyses, strictly increasing, ending at 1 (default
        equally spaced).
    beta : float, optional
        Type-II error; when given the design is powered: the drift, inflation factor, expected
        sample sizes and futility bounds (if any) are computed.
    futility : str, tuple or callable, optional
        Beta-spending function for futility bounds (needs ``beta``): a spending kind
        (``"hsd"`` with gamma -2, ``"power"`` with rho 2, ``"ld-obf"``, ``"ld-pocock"``), a
        ``(kind, parameter)`` tuple, or a callable giving the cumulative fraction of beta.
    binding : bool, default False
        Compute the efficacy bounds as if the futility bounds were always obeyed (raises the
        power); non-binding bounds keep alpha whether or not futility stops are taken.
    spending : callable, optional
        For ``kind="user"``: ``f(t) -> cumulative fraction of alpha spent`` (non-decreasing,
        ``f(1) = 1``), evaluated on the timing array.
    sided : {1, 2}, default 1
        2 gives symmetric two-sided bounds ``±upper`` (rpact's ``sided = 2``): the trial stops
        when ``|Z_k| >= upper_k``, the spending functions spend the two-sided ``alpha`` (half
        on each side), and a constant-shape family's constant gives total crossing ``alpha``.
        Powered two-sided designs (``beta``) reach power ``1 - beta`` of rejecting in the
        direction of the effect (rpact's default ``twoSidedPower = FALSE``); futility bounds
        are one-sided only.

    Returns
    -------
    GSDesign

    Raises
    ------
    ValueError
        For a bad argument (the message names it and what is allowed).

    References
    ----------
    Jennison C, Turnbull BW (2000). Group Sequential Methods with Applications to Clinical
    Trials, ch. 2, 7 and 19 (recursive numerical integration). Chapman & Hall.
    Armitage P, McPherson CK, Rowe BC (1969). J R Stat Soc A 132:235-244.
    O'Brien PC, Fleming TR (1979). Biometrics 35:549-556. Pocock SJ (1977). Biometrika
    64:191-199. Wang SK, Tsiatis AA (1987). Biometrics 43:193-199.
    Lan KKG, DeMets DL (1983). Biometrika 70:659-663. Hwang IK, Shih WJ, DeCani JS (1990).
    Stat Med 9:1439-1445. Kim K, DeMets DL (1987). Biometrika 74:149-154.

    Examples
    --------
    >>> gs_bounds(3).upper.round(5)
    array([3.47109, 2.45443, 2.00404])
    >>> gs_bounds(3, 0.025, "wt", delta=0.24, timing=[0.3, 0.8, 1], sided=2).upper.round(5)
    array([3.20294, 2.48197, 2.34207])
    """
    k = int(check_integer("k", k, minimum=1))
    two_sided = int(check_choice("sided", sided, (1, 2))) == 2
    a = float(check_in_interval("alpha", alpha, 0.0, 1.0 if two_sided else 0.5, closed="neither"))
    check_choice("kind", kind, _KINDS)
    if two_sided and futility is not None:
        raise ValueError(
            "`futility` bounds are one-sided: use sided=1 (a two-sided design stops only for "
            "efficacy, in either direction)."
        )
    t = _check_timing(timing, k)
    if spending is not None and kind != "user":
        raise ValueError(f"`spending` is used only with kind='user'; got kind={kind!r}.")
    if beta is not None:
        b = float(check_in_interval("beta", beta, 0.0, 1.0 - a, closed="neither"))
    elif futility is not None:
        raise ValueError("`futility` bounds are beta-spending bounds: give `beta` as well.")
    if binding and futility is None:
        raise ValueError("`binding=True` needs `futility` bounds.")

    if kind in _SHAPE_KINDS:
        if kind == "wt":
            if delta is None:
                raise ValueError("kind='wt' needs the Wang-Tsiatis shape `delta` in [0, 0.5].")
            exponent = float(check_in_interval("delta", delta, 0.0, 0.5)) - 0.5
        else:
            exponent = -0.5 if kind == "obf" else 0.0
        if binding:
            raise ValueError(
                "binding futility needs an alpha-spending efficacy boundary (kind 'ld-obf', "
                f"'ld-pocock', 'hsd', 'power' or 'user'); got kind={kind!r}."
            )
        cum_alpha = None
        if two_sided:
            upper, achieved = _symmetric_shape_bounds(t, a, exponent)
        else:
            upper, achieved = _shape_bounds(t, a, exponent)
    else:
        if kind == "user":
            if spending is None:
                raise ValueError("kind='user' needs a `spending` callable.")
            frac = _check_spending(spending, t, "spending")
        elif kind == "power":
            if rho is None:
                raise ValueError("kind='power' needs the Kim-DeMets exponent `rho` > 0.")
            frac = _spending_fraction(kind, t, a, float(check_positive("rho", rho)))
        else:
            param = float(as_float_array("gamma", gamma)) if kind == "hsd" else 0.0
            # the O'Brien-Fleming-type function depends on the level: per side, rpact's
            # 2 sided (1 - Phi(z_{1 - alpha / (2 sided)} / sqrt(t))), i.e. the one-sided function
            # at alpha / 2 (the others are alpha times a function of t)
            frac = _spending_fraction(kind, t, a / 2.0 if two_sided else a, param)
        cum_alpha = a * frac
        if two_sided:
            upper, achieved = _symmetric_spending_bounds(t, cum_alpha)
        else:
            upper, achieved = _spending_bounds(t, cum_alpha)

    lower = -upper if two_sided else np.full(k, -np.inf)
    drift = inflation = asn_h0 = asn_h1 = None
    beta_spent = None
    if beta is not None:
        eta_fixed = _isf(a / 2.0 if two_sided else a) + _isf(b)
        if futility is None:
            drift = _drift_for_power(upper, lower, t, 1.0 - b, eta_fixed)
        else:
            cum_beta = b * _futility_fraction(futility, t, b)
            fixed_upper = None if binding else upper
            alpha_for_binding = cum_alpha if binding else None

            def gap(eta: float) -> float:
                return (
                    _futility_design(eta, t, alpha_for_binding, fixed_upper, cum_beta, binding)[2]
                    - b
                )

            drift = float(
                optimize.brentq(gap, 0.5 * eta_fixed, 3.0 * eta_fixed + 5.0, xtol=1e-11, rtol=1e-15)
            )
            upper, lower, _ = _futility_design(
                drift, t, alpha_for_binding, fixed_upper, cum_beta, binding
            )
        inflation = (drift / eta_fixed) ** 2
        up1, lo1 = _crossing(upper, lower, t, np.array([drift]))
        up0, lo0 = _crossing(upper, lower, t, np.zeros(1))
        asn_h0 = inflation * _expected_fraction(up0[0] + lo0[0], t)
        asn_h1 = inflation * _expected_fraction(up1[0] + lo1[0], t)
        if futility is not None:
            beta_spent = np.cumsum(lo1[0])

    h0_lower = lower if binding else np.full(k, -np.inf)
    if binding:  # the efficacy bounds changed with the futility bounds: integrate again
        achieved = _crossing(upper, h0_lower, t, np.zeros(1))[0][0]
    return GSDesign(
        kind=kind,
        alpha=a,
        timing=t,
        upper=upper,
        lower=lower,
        nominal_p=np.asarray(special.ndtr(-upper), dtype=np.float64),
        alpha_spent=np.cumsum(achieved),
        binding=binding,
        beta=beta,
        drift=drift,
        inflation=inflation,
        beta_spent=beta_spent,
        asn_h0=asn_h0,
        asn_h1=asn_h1,
        sided=2 if two_sided else 1,
    )


def _expected_fraction(stop: FloatArray, timing: FloatArray) -> float:
    """E[information used] / I_max from the per-analysis stopping probabilities."""
    stop_k = np.concatenate([stop[:-1], [1.0 - np.sum(stop[:-1])]])
    return float(np.sum(stop_k * timing))


def gs_crossing(
    upper: ArrayLike,
    lower: ArrayLike | None = None,
    timing: ArrayLike | None = None,
    drift: ArrayLike = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """Per-analysis probabilities of crossing the upper and the lower bounds.

    Parameters
    ----------
    upper : array_like
        Efficacy bounds, shape (K,) (``inf`` allowed).
    lower : array_like, optional
        Futility bounds, shape (K,) (default ``-inf``: none).
    timing : array_like, optional
        Information fractions (default equally spaced).
    drift : array_like, default 0.0
        ``E[Z_K]``; an array gives a batch of drifts (leading axis of the result).

    Returns
    -------
    (upper_prob, lower_prob) : tuple of ndarray
        Shape ``drift.shape + (K,)``.

    Examples
    --------
    >>> design = gs_bounds(3)
    >>> up, _ = gs_crossing(design.upper)
    >>> float(up.sum().round(8))
    0.025
    """
    u = np.asarray(upper, dtype=np.float64)
    if u.ndim != 1 or np.any(np.isnan(u)):
        raise ValueError(f"`upper` must be a 1-D array of bounds; got {np.asarray(upper)!r}.")
    k = u.size
    lo = np.full(k, -np.inf) if lower is None else np.asarray(lower, dtype=np.float64)
    if lo.shape != u.shape or np.any(lo > u):
        raise ValueError("`lower` must have the shape of `upper` and lie at or below it.")
    t = _check_timing(timing, k)
    d = as_float_array("drift", drift)
    up, low = _crossing(u, lo, t, d.ravel())
    return up.reshape((*d.shape, k)), low.reshape((*d.shape, k))
