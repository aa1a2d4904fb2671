"""Maximum-likelihood and REML estimation of tau² for the intercept-only model.

Same conventions as :mod:`fibrosim.meta._tau2`: rows of ``(n, K)`` arrays ``y``, ``v`` and a
float mask ``m`` are independent meta-analyses, and all work is O(K) per row.

For the (restricted) log-likelihood ``l(t) = -½ Σ log(v + t) - ½ Σ w r² [- ½ log Σw]`` twice the
score is ``Σw²r² - Σw`` (ML) or ``Σw²r² - tr P`` (REML), twice the expected information is
``Σw²`` or ``tr PP``, and twice the observed information adds ``2 Σw³r² - 2 (Σw²r)²/Σw``.

The solver needs a data-dependent number of O(K) passes per analysis (a 21-point scan of the
score, Newton steps in every bracket, likelihood comparisons), so it is compiled
(:mod:`fibrosim._jit`) and runs row by row: one analysis and a batch execute the same machine
code on each row, so a batch equals the one-at-a-time results bit for bit.  Only the rare
non-converged analysis goes back to Python, for a bounded 1-D maximisation.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar

from fibrosim._jit import jit, run_rows
from fibrosim.meta._tau2 import _MAX_ITER, _REL_TOL, FloatArray, Tau2Fit, _dot, _weights, _wsum

#: Fractions of ``t_max`` where the score is evaluated to bracket every local maximum: 0 and 20
#: log-spaced points over eight decades up to ``t_max`` (ratio ~2.6 between neighbours).  A
#: maximum narrower than one such step could be missed; none has been seen in random searches.
_SCAN = np.concatenate([np.zeros(1), np.logspace(-8.0, 0.0, 20)])
#: Zero beats an interior maximum only if its log-likelihood is higher by more than this
#: (relative), so that rounding in a flat likelihood does not flip the estimate to zero.
_LL_TIE = 1e-12


def _loglik(
    y: FloatArray, v: FloatArray, m: FloatArray, tau2: FloatArray, reml: bool
) -> FloatArray:
    """(Restricted) log-likelihood of the intercept-only model, up to a constant (arrays)."""
    w = _weights(v, m, tau2)
    s1 = _wsum(w)
    mu = _dot(w, y) / s1
    r = y - mu[..., None]
    ll = -0.5 * _dot(m, np.log(v + tau2[..., None])) - 0.5 * _dot(w * r, r)
    if reml:
        ll = ll - 0.5 * np.log(s1)
    return ll


# --- compiled row kernels -----------------------------------------------------------------
# Each takes one analysis as 1-D arrays ``y``, ``v`` holding only its studies (no padding).


@jit
def _loglik_row(y: FloatArray, v: FloatArray, t: float, reml: bool) -> float:
    s1 = 0.0
    swy = 0.0
    slog = 0.0
    for j in range(y.size):
        w = 1.0 / (v[j] + t)
        s1 += w
        swy += w * y[j]
        slog += math.log(v[j] + t)
    mu = swy / s1
    q = 0.0
    for j in range(y.size):
        r = y[j] - mu
        q += r * r / (v[j] + t)
    ll = -0.5 * slog - 0.5 * q
    if reml:
        ll -= 0.5 * math.log(s1)
    return ll


@jit
def _score_row(y: FloatArray, v: FloatArray, t: float, reml: bool) -> float:
    """Twice the score of the (restricted) likelihood at ``t``."""
    s1 = 0.0
    s2 = 0.0
    swy = 0.0
    for j in range(y.size):
        w = 1.0 / (v[j] + t)
        s1 += w
        s2 += w * w
        swy += w * y[j]
    mu = swy / s1
    a2 = 0.0
    for j in range(y.size):
        wr = (y[j] - mu) / (v[j] + t)
        a2 += wr * wr
    if reml:
        return a2 - (s1 - s2 / s1)
    return a2 - s1


@jit
def _info_row(v: FloatArray, t: float, reml: bool) -> float:
    """Twice the expected information: ``Σw²`` (ML) or ``tr PP`` (REML)."""
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    for j in range(v.size):
        w = 1.0 / (v[j] + t)
        s1 += w
        s2 += w * w
        s3 += w * w * w
    if reml:
        q = s2 / s1
        return s2 - 2.0 * s3 / s1 + q * q
    return s2


@jit
def _newton_candidate(y: FloatArray, v: FloatArray, t: float, reml: bool) -> tuple[float, float]:
    """Score at ``t`` and the Newton candidate (observed information if positive, else expected)."""
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    swy = 0.0
    for j in range(y.size):
        w = 1.0 / (v[j] + t)
        s1 += w
        s2 += w * w
        s3 += w * w * w
        swy += w * y[j]
    mu = swy / s1
    a2 = 0.0  # Σ w² r²
    a3 = 0.0  # Σ w³ r²
    b = 0.0  # Σ w² r
    for j in range(y.size):
        w = 1.0 / (v[j] + t)
        wr = w * (y[j] - mu)
        a2 += wr * wr
        a3 += w * wr * wr
        b += w * wr
    if reml:
        q = s2 / s1
        info = s2 - 2.0 * s3 / s1 + q * q
        score = a2 - (s1 - s2 / s1)
    else:
        info = s2
        score = a2 - s1
    observed = 2.0 * a3 - 2.0 * b * b / s1 - info
    curv = observed if observed > 0.0 else info
    return score, t + score / curv


@jit
def _newton_row(
    y: FloatArray,
    v: FloatArray,
    lo: float,
    hi: float,
    t: float,
    scale: float,
    reml: bool,
    max_iter: int,
) -> tuple[float, bool]:
    """Newton on the score inside ``[lo, hi]`` (score > 0 at lo, < 0 at hi), bisection-safeguarded.

    The bracket shrinks every step and a candidate outside it is replaced by the midpoint, so
    the iteration converges (to a relative step of ``_REL_TOL`` on the scale ``t + mean v``).
    """
    la = lo
    ha = hi
    ta = t
    for _ in range(max_iter):
        score, cand = _newton_candidate(y, v, ta, reml)
        if score == 0.0:
            return ta, True
        if score > 0.0:
            la = ta
        else:
            ha = ta
        new = cand if la < cand < ha else 0.5 * (la + ha)
        tol = _REL_TOL * (new + scale)
        done = abs(new - ta) <= tol or ha - la <= tol
        ta = new
        if done:
            return ta, True
    return ta, False


@jit
def _ml_row(
    y: FloatArray, v: FloatArray, scan: FloatArray, reml: bool, max_iter: int
) -> tuple[float, bool]:
    """Global maximiser of the (restricted) likelihood on ``[0, ∞)`` for one analysis.

    All maxima lie in ``[0, t_max]``: with ``Σw²r² <= Σ(y - ȳ)²/(v_min + t)²`` and
    ``tr P >= (k - 1)/(v_max + t)`` the REML score (and a fortiori the ML score) is negative
    once ``t > max(v_max, 2 Σ(y - ȳ)²/(k - 1))``; ``t_max`` is twice that.  The likelihood can
    have more than one local maximum (zero and an interior point, or two interior points with
    very unequal variances), so the score is scanned at ``t_max × scan`` and every sign change
    from + to - is solved by Newton (started at metafor's Hedges estimate when it lies in the
    first bracket).  Zero (when its score is <= 0) and the interior maxima are compared by
    likelihood: metafor's ``ll0check``, extended to every local maximum.
    """
    k = float(y.size)
    sv = 0.0
    sy = 0.0
    vmax = 0.0
    for j in range(y.size):
        sv += v[j]
        sy += y[j]
        vmax = max(vmax, v[j])
    ybar = sy / k
    ss = 0.0
    for j in range(y.size):
        ss += (y[j] - ybar) * (y[j] - ybar)
    scale = sv / k
    t_max = 2.0 * max(vmax, 2.0 * ss / max(k - 1.0, 1.0))
    he = max((ss - sv * (1.0 - 1.0 / k)) / (k - 1.0), 0.0)

    up_prev = _score_row(y, v, 0.0, reml) > 0.0
    zero_is_max = not up_prev
    n_cands = 0
    best = 0.0
    best_ll = -math.inf
    first = 0.0
    converged = True
    for g in range(1, scan.size):
        up = _score_row(y, v, t_max * scan[g], reml) > 0.0
        if up_prev and not up:
            lo = t_max * scan[g - 1]
            hi = t_max * scan[g]
            start = he if (n_cands == 0 and lo < he < hi) else 0.5 * (lo + hi)
            t, ok = _newton_row(y, v, lo, hi, start, scale, reml, max_iter)
            converged = converged and ok
            n_cands += 1
            if n_cands == 1:
                first = t
            else:
                if n_cands == 2:
                    best, best_ll = first, _loglik_row(y, v, first, reml)
                ll = _loglik_row(y, v, t, reml)
                if ll > best_ll:
                    best, best_ll = t, ll
        up_prev = up
    if n_cands == 0:
        # zero is the only maximum; a positive score at 0 without a sign change cannot happen
        # (the score is < 0 at t_max) unless rounding interferes: then report non-convergence
        return 0.0, zero_is_max
    if n_cands == 1:
        best = first
        best_ll = _loglik_row(y, v, first, reml) if zero_is_max else best_ll
    if zero_is_max:
        ll_0 = _loglik_row(y, v, 0.0, reml)
        if ll_0 - best_ll > _LL_TIE * max(1.0, abs(best_ll)):
            return 0.0, converged
    return best, converged


@jit
def _ml_rows(
    y: FloatArray,
    v: FloatArray,
    k: FloatArray,
    scan: FloatArray,
    reml: bool,
    max_iter: int,
    tau: FloatArray,
    se: FloatArray,
    ok: FloatArray,
) -> None:
    """:func:`_ml_row` and the SE ``sqrt(2 / info)`` for every row of a batch.

    Row ``i`` holds its ``k[i]`` studies first (padding at the end).  Writes tau², its SE and
    a convergence flag (1.0 / 0.0) per row into ``tau``, ``se``, ``ok``.
    """
    for i in range(y.shape[0]):
        c = int(k[i])
        ys = y[i][:c]
        vs = v[i][:c]
        t, conv = _ml_row(ys, vs, scan, reml, max_iter)
        tau[i] = t
        se[i] = math.sqrt(2.0 / _info_row(vs, t, reml))
        ok[i] = 1.0 if conv else 0.0


# --- Python layer ---------------------------------------------------------------------------


def _fallback_1d(y: FloatArray, v: FloatArray, reml: bool) -> float:
    """Global maximiser of the (restricted) log-likelihood on a bounded interval, one analysis.

    ``y``, ``v`` hold the analysis' studies only.  The maximum lies in ``[0, t_max]`` (see
    :func:`_ml_row`); a log-spaced grid locates the best basin and bounded Brent refines it.
    """
    k = float(y.size)
    ss = float(((y - y.mean()) ** 2).sum())
    hi = 2.0 * max(float(v.max()), 2.0 * ss / max(k - 1.0, 1.0))
    grid = np.concatenate([[0.0], hi * np.logspace(-12, 0, 241)])
    lls = np.array([_loglik_row(y, v, float(g), reml) for g in grid])
    i = int(np.argmax(lls))
    a, c = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    best, best_ll = float(grid[i]), float(lls[i])
    if c > a:
        res = minimize_scalar(
            lambda t: -_loglik_row(y, v, float(t), reml),
            bounds=(float(a), float(c)),
            method="bounded",
            options={"xatol": _REL_TOL * (c + float(v.mean()))},
        )
        if -float(res.fun) >= best_ll:
            best = float(res.x)
    return best


def tau2_ml(
    y: FloatArray,
    v: FloatArray,
    m: FloatArray,
    k: FloatArray,
    *,
    reml: bool,
    max_iter: int = _MAX_ITER,
) -> Tau2Fit:
    """ML or REML estimate of tau² and its SE: the global maximiser on ``[0, t_max]``.

    Rows hold their studies first and the padding at the end (as
    :func:`fibrosim.meta._re_result._flatten` lays them out).  Every row is solved by the
    compiled :func:`_ml_row`.  An analysis whose Newton iteration
    does not converge within ``max_iter`` steps is solved again by a bounded 1-D maximisation
    (:func:`_fallback_1d`) and marked in ``fallback``.  The SE is metafor's ``sqrt(2/Σw²)`` (ML)
    or ``sqrt(2/tr PP)`` (REML) at the estimate.  ``k`` (the study counts) is implied by ``m``
    and accepted for the common estimator signature.

    References
    ----------
    Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the
    random-effects model. J Educ Behav Stat 30:261-293 (eqs. 9-12).
    """
    del m  # the counts say where each row's studies end
    n = y.shape[0]
    tau, se, ok = np.empty(n), np.empty(n), np.empty(n)
    run_rows(_ml_rows, (y, v, k), (tau, se, ok), _SCAN, reml, max_iter)
    suspect = ok == 0.0
    for i in np.flatnonzero(suspect):
        c = int(k[i])
        ys, vs = np.ascontiguousarray(y[i, :c]), np.ascontiguousarray(v[i, :c])
        tau[i] = _fallback_1d(ys, vs, reml)
        se[i] = math.sqrt(2.0 / _info_row(vs, float(tau[i]), reml))
    return Tau2Fit(tau, se, suspect)


@jit
def _ml_one(
    y: FloatArray, v: FloatArray, scan: FloatArray, reml: bool, max_iter: int
) -> tuple[float, float, bool]:
    """:func:`_ml_rows` for one analysis without padding (1-D rows), as a tuple of scalars."""
    t, conv = _ml_row(y, v, scan, reml, max_iter)
    return t, math.sqrt(2.0 / _info_row(v, t, reml)), conv


def tau2_ml_one(
    y: FloatArray, v: FloatArray, *, reml: bool, max_iter: int = _MAX_ITER
) -> tuple[float, float, bool]:
    """:func:`tau2_ml` for one analysis without padding: ``(tau², se, fallback used)``.

    The same compiled row solver as the batch, so the same bits; it only skips the batch
    bookkeeping, which dominates one small analysis.
    """
    t, se, conv = _ml_one(y, v, _SCAN, reml, max_iter)
    if conv:
        return t, se, False
    t = _fallback_1d(y, v, reml)
    return t, math.sqrt(2.0 / _info_row(v, t, reml)), True
