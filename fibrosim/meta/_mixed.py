"""Array core of the mixed-effects meta-regression model.

The model is ``y_i = x_i' beta + u_i + e_i`` with ``u_i ~ N(0, tau2)`` and ``e_i ~ N(0, v_i)``
(v_i known).  Everything here takes and returns numpy arrays and is batched over leading axes:
``y`` and ``v`` have shape ``(..., k)`` and the design ``(..., k, p)``; a boolean ``mask`` removes
studies (used for NaN padding, leave-one-out and influence), so many regressions are solved in
one pass of matrix products.  :func:`fit_mixed` estimates tau² and the coefficients,
:func:`residual_heterogeneity` gives QE, I² and H², and :func:`coefficient_tests` the Wald or
Knapp-Hartung tests.  Inputs are assumed valid: the public layers
(:mod:`fibrosim.meta.regression`, :mod:`fibrosim.meta.diagnostics`) check them once.

The estimators follow metafor's ``rma.uni`` (Viechtbauer 2010) formula for formula, so the two
agree to the convergence tolerance of the iterative estimators.  One deliberate difference:
metafor 3.8 centres ``yi`` before the quadratic forms of the tau² estimators and of QE even when
the model has no intercept; fibrosim uses ``yi`` itself.  The two coincide whenever the column
space of the design contains the constant (any model with an intercept or a full set of group
dummies).

References
----------
Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package. Journal of
Statistical Software, 36(3), 1-48.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, stats

from fibrosim.warnings import ConvergenceWarning

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

METHODS = ("FE", "EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")
TESTS = ("z", "knha")
_MAXITER = 1000
# Fisher scoring / Newton stop when the change in tau² is below this fraction of
# (tau² + mean v): far tighter than metafor's default absolute 1e-5, so results are the
# converged values (the reference file uses threshold = 1e-12 in metafor as well).
_REL_TOL = 1e-12

__all__ = [
    "METHODS",
    "TESTS",
    "BoolArray",
    "FloatArray",
    "MixedFit",
    "coefficient_tests",
    "fit_mixed",
    "residual_heterogeneity",
]


@dataclass(frozen=True, slots=True)
class MixedFit:
    """Core output of :func:`fit_mixed` (batch shape ``B``; ``p`` coefficients).

    Attributes
    ----------
    beta : ndarray, shape (*B, p)
        Weighted least-squares coefficients at the estimated tau².
    vb : ndarray, shape (*B, p, p)
        Their covariance (multiplied by the Knapp-Hartung factor ``s2w`` when ``test="knha"``).
    vb_model : ndarray, shape (*B, p, p)
        ``(X'WX)^-1`` before the Knapp-Hartung scaling.
    tau2, se_tau2 : ndarray, shape B
        Residual heterogeneity and its standard error (metafor's formula for each method).
    s2w : ndarray, shape B
        Knapp-Hartung scale factor (1 for ``test="z"``).
    k : ndarray, shape B
        Number of studies used.
    p : int
        Number of coefficients.
    """

    beta: FloatArray
    vb: FloatArray
    vb_model: FloatArray
    tau2: FloatArray
    se_tau2: FloatArray
    s2w: FloatArray
    k: FloatArray
    p: int


def _apply_mask(
    y: FloatArray, v: FloatArray, X: FloatArray, mask: BoolArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return the 0/1 weights ``m`` and ``y``, ``v``, ``X`` with the masked-out studies neutral.

    Excluded studies get weight 0, ``y = 0``, ``v = 1`` and a zero design row, so they drop out
    of every weighted sum and product while keeping the batch rectangular (no NaN reaches a
    matrix product).
    """
    return (
        mask.astype(np.float64),
        np.where(mask, y, 0.0),
        np.where(mask, v, 1.0),
        np.where(mask[..., None], X, 0.0),
    )


def _projection(w: FloatArray, X: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return ``P = W - W X (X'WX)^-1 X'W`` and ``(X'WX)^-1`` for diagonal weights ``w``."""
    XtW = np.swapaxes(X, -1, -2) * w[..., None, :]
    inv = np.linalg.inv(XtW @ X)
    P = -np.swapaxes(XtW, -1, -2) @ inv @ XtW
    idx = np.arange(w.shape[-1])
    P[..., idx, idx] += w
    return P, inv


def _quad(P: FloatArray, y: FloatArray) -> FloatArray:
    return np.asarray(np.einsum("...i,...ij,...j->...", y, P, y), dtype=np.float64)


def _trace(P: FloatArray) -> FloatArray:
    return np.asarray(np.trace(P, axis1=-2, axis2=-1), dtype=np.float64)


def _loglik(
    tau2: FloatArray, y: FloatArray, v: FloatArray, X: FloatArray, m: FloatArray, reml: bool
) -> FloatArray:
    """(Restricted) log-likelihood up to a constant, as in metafor's ll0check."""
    w = m / (v + tau2[..., None])
    XtW = np.swapaxes(X, -1, -2) * w[..., None, :]
    A = XtW @ X
    beta = np.linalg.solve(A, (XtW @ y[..., None]))[..., 0]
    resid = y - np.einsum("...ij,...j->...i", X, beta)
    rss = np.sum(w * resid**2, axis=-1)
    logv = np.sum(np.where(m > 0, np.log(np.where(m > 0, v + tau2[..., None], 1.0)), 0.0), -1)
    ll = -0.5 * logv - 0.5 * rss
    if reml:
        ll = ll - 0.5 * np.linalg.slogdet(A)[1]
    return np.asarray(ll, dtype=np.float64)


def _scale(v: FloatArray, m: FloatArray) -> FloatArray:
    return np.asarray(np.sum(v * m, -1) / np.sum(m, -1), dtype=np.float64)


def _he(y: FloatArray, v: FloatArray, X: FloatArray, m: FloatArray, k: FloatArray, p: int) -> Any:
    P, _ = _projection(m, X)  # OLS residual projection on the included studies
    PV = P * v[..., None, :]
    tau2 = (_quad(P, y) - _trace(PV)) / (k - p)
    return tau2, P, PV


def _fisher_scoring(
    y: FloatArray, v: FloatArray, X: FloatArray, m: FloatArray, method: str, tau2: FloatArray
) -> tuple[FloatArray, BoolArray]:
    """Fisher scoring for ML/REML from ``tau2`` (metafor's update and step halving at 0)."""
    tau2 = np.maximum(tau2, 0.0)
    scale = _scale(v, m)
    active = np.ones(tau2.shape, dtype=bool)
    for _ in range(_MAXITER):
        w = m / (v + tau2[..., None])
        P, _ = _projection(w, X)
        Py = np.einsum("...ij,...j->...i", P, y)
        yPPy = np.sum(Py**2, -1)
        if method == "REML":
            adj = (yPPy - _trace(P)) / np.sum(P * P, axis=(-2, -1))
        else:
            adj = (yPPy - np.sum(w, -1)) / np.sum(w**2, -1)
        # metafor halves the step until tau² stays >= 0; the number of halvings is explicit here
        neg = tau2 + adj < 0
        with np.errstate(divide="ignore", invalid="ignore"):
            halvings = np.ceil(np.log2(np.where(neg & (tau2 > 0), -adj / tau2, 1.0)))
        new = np.where(neg, np.where(tau2 > 0, tau2 + adj / 2.0**halvings, 0.0), tau2 + adj)
        new = np.maximum(new, 0.0)
        change = np.abs(new - tau2)
        tau2 = np.where(active, new, tau2)
        active &= change > _REL_TOL * (tau2 + scale)
        if not active.any():
            break
    return tau2, active


def _root_pm(
    y: FloatArray, v: FloatArray, X: FloatArray, m: FloatArray, target: FloatArray
) -> tuple[FloatArray, BoolArray]:
    """Solve the generalised Q equation ``y'P(tau2)y = target`` (Paule-Mandel / empirical Bayes).

    Safeguarded Newton from tau² = 0 (the function decreases in tau²) inside a bracket that is
    widened until it changes sign; 0 when ``Q(0) <= target``.
    """

    def q_and_slope(t: FloatArray) -> tuple[FloatArray, FloatArray]:
        P, _ = _projection(m / (v + t[..., None]), X)
        Py = np.einsum("...ij,...j->...i", P, y)
        return np.einsum("...i,...i->...", y, Py) - target, -np.sum(Py**2, -1)

    scale = _scale(v, m)
    f0, _ = q_and_slope(np.zeros(target.shape))
    lo = np.zeros(target.shape)
    hi = np.maximum(scale, 1e-300)
    f_hi, _ = q_and_slope(hi)
    for _ in range(200):  # widen the bracket: Q(tau2) -> 0 as tau2 grows
        grow = f_hi > 0
        if not grow.any():
            break
        hi = np.where(grow, hi * 10.0, hi)
        f_hi, _ = q_and_slope(hi)
    t = lo.copy()
    active = f0 > 0
    for _ in range(_MAXITER):
        f, slope = q_and_slope(t)
        lo = np.where(f > 0, t, lo)
        hi = np.where(f <= 0, t, hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = t - f / slope
        bad = ~np.isfinite(newton) | (newton <= lo) | (newton >= hi)
        new = np.where(bad, 0.5 * (lo + hi), newton)
        change = np.abs(new - t)
        t = np.where(active, new, t)
        active &= (change > _REL_TOL * (t + scale)) & (f != 0)
        if not active.any():
            break
    return np.where(f0 > 0, t, 0.0), active


def _fallback_optimum(
    y: FloatArray, v: FloatArray, X: FloatArray, m: FloatArray, reml: bool
) -> float:
    """Bounded 1-D maximisation of the (restricted) likelihood: the never-failing fallback."""
    upper = float(max(100.0, 10.0 * np.var(y[m > 0]) + 10.0 * np.max(v[m > 0])))

    def negll(t: float) -> float:
        return -float(_loglik(np.asarray(t), y, v, X, m, reml))

    res = optimize.minimize_scalar(
        negll, bounds=(0.0, upper), method="bounded", options={"xatol": 1e-12 * upper}
    )
    best = float(res.x)
    return 0.0 if negll(0.0) <= negll(best) else best


def fit_mixed(
    y: FloatArray,
    v: FloatArray,
    X: FloatArray,
    mask: BoolArray,
    method: str,
    test: str,
) -> MixedFit:
    """Estimate tau² and the coefficients of a mixed-effects meta-regression (array core).

    Parameters
    ----------
    y, v : ndarray, shape (*B, k)
        Effect sizes and sampling variances (finite where ``mask`` is True; any finite value
        elsewhere).
    X : ndarray, shape (*B, k, p)
        Design matrices, full column rank on the masked rows.
    mask : ndarray of bool, shape (*B, k)
        Studies that enter each fit.
    method : str
        One of ``METHODS``.
    test : {"z", "knha"}
        Knapp-Hartung rescales the covariance by ``s2w``.

    Returns
    -------
    MixedFit
    """
    if y.ndim == 1:  # the core works on a batch axis; a single fit is a batch of one
        one = fit_mixed(y[None], v[None], X[None], mask[None], method, test)
        return MixedFit(
            beta=one.beta[0],
            vb=one.vb[0],
            vb_model=one.vb_model[0],
            tau2=one.tau2[0],
            se_tau2=one.se_tau2[0],
            s2w=one.s2w[0],
            k=one.k[0],
            p=one.p,
        )
    m, y, v, X = _apply_mask(y, v, X, mask)
    p = X.shape[-1]
    k = np.sum(m, -1)
    batch = k.shape
    se_tau2 = np.full(batch, np.nan)
    if method in ("FE", "EE"):
        tau2 = np.zeros(batch)
    elif method in ("DL", "HS"):
        w = m / v
        P, _ = _projection(w, X)
        trP = _trace(P)
        if method == "DL":
            tau2 = np.maximum((_quad(P, y) - (k - p)) / trP, 0.0)
            se_tau2 = np.sqrt(
                (2 * (k - p) + 4 * tau2 * trP + 2 * tau2**2 * np.sum(P * P, (-2, -1))) / trP**2
            )
        else:
            tau2 = np.maximum((_quad(P, y) - k) / np.sum(w, -1), 0.0)
            se_tau2 = np.sqrt(
                (2 * (k - p) + 4 * tau2 * trP + 2 * tau2**2 * np.sum(P * P, (-2, -1)))
                / np.sum(w, -1) ** 2
            )
    elif method == "HE":
        tau2, P, PV = _he(y, v, X, m, k, p)
        tau2 = np.maximum(tau2, 0.0)
        se_tau2 = np.sqrt(
            (
                2 * np.sum(PV * np.swapaxes(PV, -1, -2), (-2, -1))
                + 4 * tau2 * _trace(PV)
                + 2 * tau2**2 * (k - p)
            )
            / (k - p) ** 2
        )
    elif method == "SJ":
        ybar = np.sum(m * y, -1) / k
        tau2_0 = np.sum(m * (y - ybar[..., None]) ** 2, -1) / k
        P, _ = _projection(m / (v + tau2_0[..., None]), X)
        PV = P * v[..., None, :]
        tau2 = np.maximum(tau2_0 * _quad(P, y) / (k - p), 0.0)
        se_tau2 = np.sqrt(
            tau2_0**2
            / (k - p) ** 2
            * (
                2 * np.sum(PV * np.swapaxes(PV, -1, -2), (-2, -1))
                + 4 * tau2 * np.sum(PV * P, (-2, -1))
                + 2 * tau2**2 * np.sum(P * P, (-2, -1))
            )
        )
    elif method in ("ML", "REML"):
        start, _, _ = _he(y, v, X, m, k, p)
        tau2, failed = _fisher_scoring(y, v, X, m, method, start)
        reml = method == "REML"
        if failed.any():
            warnings.warn(
                f"Fisher scoring for {method} did not converge in {_MAXITER} iterations for "
                f"{int(failed.sum())} fit(s); tau² taken from a bounded maximisation of the "
                "likelihood instead.",
                ConvergenceWarning,
                stacklevel=3,
            )
        # metafor's ll0check: keep tau² = 0 when the likelihood is higher there (local maximum)
        ll_hat = _loglik(tau2, y, v, X, m, reml)
        ll_zero = _loglik(np.zeros(batch), y, v, X, m, reml)
        failed = failed | (ll_zero - ll_hat > 1e-10 * (1.0 + np.abs(ll_hat)))
        for idx in zip(*np.nonzero(failed), strict=True):
            tau2[idx] = _fallback_optimum(y[idx], v[idx], X[idx], m[idx], reml)
        w = m / (v + tau2[..., None])
        if reml:
            P, _ = _projection(w, X)
            se_tau2 = np.sqrt(2.0 / np.sum(P * P, (-2, -1)))
        else:
            se_tau2 = np.sqrt(2.0 / np.sum(w**2, -1))
    else:  # PM and EB share the estimating equation y'P(tau2)y = k - p
        tau2, failed = _root_pm(y, v, X, m, k - p)
        if failed.any():
            warnings.warn(
                f"the {method} equation was not solved to tolerance in {_MAXITER} steps for "
                f"{int(failed.sum())} fit(s); the last bracketed value is used.",
                ConvergenceWarning,
                stacklevel=3,
            )
        se_tau2 = np.sqrt(2 * k**2 / (k - p) / np.sum(m / (v + tau2[..., None]), -1) ** 2)

    w = m / (v + tau2[..., None])
    XtW = np.swapaxes(X, -1, -2) * w[..., None, :]
    vb = np.linalg.inv(XtW @ X)
    beta = (vb @ (XtW @ y[..., None]))[..., 0]
    s2w = np.ones(batch)
    vb_model = vb
    if test == "knha":
        resid = y - np.einsum("...ij,...j->...i", X, beta)
        rss = np.sum(w * resid**2, -1)
        s2w = np.where(rss <= np.finfo(float).eps, 0.0, rss / (k - p))
        vb = vb * s2w[..., None, None]
    return MixedFit(
        beta=beta,
        vb=vb,
        vb_model=vb_model,
        tau2=tau2,
        se_tau2=se_tau2,
        s2w=s2w,
        k=k,
        p=p,
    )


def residual_heterogeneity(
    y: FloatArray, v: FloatArray, X: FloatArray, mask: BoolArray, tau2: FloatArray, method: str
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """QE, its p-value, I² (percent) and H² of a fit (metafor's definitions).

    I² and H² use the "typical" sampling variance ``(k - p) / tr(P)`` for random-effects fits and
    ``(QE - (k - p)) / QE`` for fixed-effect fits.
    """
    m, y, v, X = _apply_mask(y, v, X, mask)
    p = X.shape[-1]
    k = np.sum(m, -1)
    df = k - p
    P, _ = _projection(m / v, X)
    qe = np.maximum(_quad(P, y), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        qe_p = np.where(df > 0, stats.chi2.sf(qe, np.maximum(df, 1)), 1.0)
        if method in ("FE", "EE"):
            i2 = np.where(df > 0, np.maximum(0.0, 100 * (qe - df) / qe), 0.0)
            h2 = np.where(df > 0, qe / df, 1.0)
        else:
            vt = df / _trace(P)
            i2 = np.where(df > 0, 100 * tau2 / (vt + tau2), 0.0)
            h2 = np.where(df > 0, tau2 / vt + 1, 1.0)
    return qe, qe_p, i2, h2


def coefficient_tests(
    fit: MixedFit, test: str, level: float, btt: Sequence[int]
) -> dict[str, FloatArray]:
    """Wald (z / chi²) or Knapp-Hartung (t / F) tests of the coefficients and of ``btt``."""
    se = np.sqrt(np.diagonal(fit.vb, axis1=-2, axis2=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = fit.beta / se
    sel = np.asarray(btt, dtype=int)
    b = fit.beta[..., sel]
    # QM from the unscaled covariance divided by s2w: +inf (not a singular solve) when the
    # Knapp-Hartung scale is 0
    vsub = fit.vb_model[..., sel[:, None], sel[None, :]]
    with np.errstate(divide="ignore", invalid="ignore"):
        qm = np.einsum("...i,...i->...", b, np.linalg.solve(vsub, b[..., None])[..., 0]) / fit.s2w
    n_tested = len(sel)
    df = fit.k - fit.p
    if test == "knha":
        qm = qm / n_tested
        qm_p = stats.f.sf(qm, n_tested, df)
        pval = 2 * stats.t.sf(np.abs(stat), df[..., None])
        crit = np.asarray(stats.t.isf((1 - level) / 2, df), dtype=np.float64)[..., None]
    else:
        qm_p = stats.chi2.sf(qm, n_tested)
        pval = 2 * stats.norm.sf(np.abs(stat))
        crit = np.full((*df.shape, 1), stats.norm.isf((1 - level) / 2))
    return {
        "se": se,
        "stat": stat,
        "pval": pval,
        "ci_low": fit.beta - crit * se,
        "ci_high": fit.beta + crit * se,
        "qm": qm,
        "qm_pvalue": qm_p,
    }
