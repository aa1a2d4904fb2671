"""Maximum-likelihood and REML estimation of tau² for the intercept-only model (array core).

Same conventions as :mod:`fibrosim.meta._tau2`: rows of ``(n, K)`` arrays ``y``, ``v`` and a
float mask ``m`` are independent meta-analyses, and all work is O(K) per row.

For the (restricted) log-likelihood ``l(t) = -½ Σ log(v + t) - ½ Σ w r² [- ½ log Σw]`` twice the
score is ``Σw²r² - Σw`` (ML) or ``Σw²r² - tr P`` (REML), twice the expected information is
``Σw²`` or ``tr PP``, and twice the observed information adds ``2 Σw³r² - 2 (Σw²r)²/Σw``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.optimize import minimize_scalar

from fibrosim.meta import _tau2
from fibrosim.meta._tau2 import (
    _MAX_ITER,
    _REL_TOL,
    BoolArray,
    FloatArray,
    Tau2Fit,
    _dot,
    _he_point,
    _mean_scale,
    _solve_bracketed,
    _sum_sq,
    _tr_pp,
    _weights,
    _wsum,
)


def _loglik(
    y: FloatArray, v: FloatArray, m: FloatArray, tau2: FloatArray, reml: bool
) -> FloatArray:
    """(Restricted) log-likelihood of the intercept-only model, up to a constant."""
    w = _weights(v, m, tau2)
    s1 = _wsum(w)
    mu = _dot(w, y) / s1
    r = y - mu[..., None]
    ll = -0.5 * _dot(m, np.log(v + tau2[..., None])) - 0.5 * _dot(w * r, r)
    if reml:
        ll = ll - 0.5 * np.log(s1)
    return ll


def _score_parts(
    y: FloatArray, v: FloatArray, m: FloatArray, tau2: FloatArray, reml: bool
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Twice the score, twice the expected and twice the observed information at ``tau2``."""
    w = _weights(v, m, tau2)
    s1 = _wsum(w)
    s2 = _dot(w, w)
    mu = _dot(w, y) / s1
    wr = w * (y - mu[..., None])
    w2r = w * wr
    a2 = _dot(wr, wr)  # Σ w² r²
    a3 = _dot(w2r, wr)  # Σ w³ r²
    b = _wsum(w2r)  # Σ w² r
    if reml:
        info = _tr_pp(s1, s2, _dot(w * w, w))
        score = a2 - (s1 - s2 / s1)
    else:
        info = s2
        score = a2 - s1
    observed = 2.0 * a3 - 2.0 * b * b / s1 - info
    return score, info, observed


def _fallback_1d(y: FloatArray, v: FloatArray, m: FloatArray, k: float, reml: bool) -> float:
    """Global maximiser of the (restricted) log-likelihood on a bounded interval, one analysis.

    The maximum lies in ``[0, t_max]`` (:func:`_score_upper_bound`).  A log-spaced grid
    locates the best basin; bounded Brent refines it.
    """
    keep = m > 0
    ys, vs = y[keep][None, :], v[keep][None, :]
    ms = np.ones_like(ys)
    hi = float(_score_upper_bound(ys, vs, ms, np.array([k]))[0])
    grid = np.concatenate([[0.0], hi * np.logspace(-12, 0, 241)])
    lls = np.array([_loglik(ys, vs, ms, np.array([g]), reml)[0] for g in grid])
    i = int(np.argmax(lls))
    a, c = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    best, best_ll = float(grid[i]), float(lls[i])
    if c > a:
        res = minimize_scalar(
            lambda t: -float(_loglik(ys, vs, ms, np.array([t]), reml)[0]),
            bounds=(float(a), float(c)),
            method="bounded",
            options={"xatol": _REL_TOL * (c + float(vs.mean()))},
        )
        if -float(res.fun) >= best_ll:
            best = float(res.x)
    return best


def _score_upper_bound(y: FloatArray, v: FloatArray, m: FloatArray, k: FloatArray) -> FloatArray:
    """A tau² beyond which both the ML and the REML score are negative.

    With ``Σw²r² <= Σ(y - ȳ)²/(v_min + t)²`` and ``tr P >= (k - 1)/(v_max + t)`` the REML score
    (and a fortiori the ML score, whose second term is Σw >= tr P) is negative once
    ``t > max(v_max, 2 Σ(y - ȳ)²/(k - 1))``; twice that is a safe bracket end.
    """
    ss = _sum_sq(y, m, k)
    vmax = np.max(np.where(m > 0, v, 0.0), axis=-1)
    bound: FloatArray = 2.0 * np.maximum(vmax, 2.0 * ss / np.maximum(k - 1.0, 1.0))
    return bound


def _score_only(
    y: FloatArray, v: FloatArray, m: FloatArray | float, tau2: FloatArray, reml: bool
) -> FloatArray:
    """Twice the score alone (the first output of :func:`_score_parts`, bit for bit).

    The bracketing scan needs only the sign of the score, so it skips the information terms
    and reuses its temporaries in place: about half the array passes of :func:`_score_parts`.
    ``m`` may be the scalar 1.0 when nothing is padded (``1.0 / x`` is ``m / x`` for m = 1, and a
    scalar avoids a slow broadcast of the mask over the scan points).
    """
    w = v + tau2[..., None]
    np.divide(m, w, out=w)
    s1 = _wsum(w)
    mu = _dot(w, y) / s1
    wr = y - mu[..., None]
    np.multiply(w, wr, out=wr)
    a2 = _dot(wr, wr)
    if reml:
        out: FloatArray = a2 - (s1 - _dot(w, w) / s1)
        return out
    return a2 - s1


def _score_step_1d(
    y: FloatArray, v: FloatArray, m: FloatArray, t: float, reml: bool, y_contiguous: bool
) -> tuple[float, float]:
    """Score and Newton candidate of :func:`_score_step` for one analysis, as Python floats.

    The array operations are those of :func:`_score_parts` and the scalar ones are the same
    IEEE double operations, so the step is identical; it only avoids NumPy scalar overhead.
    """
    # ndarray.dot is the same BLAS ddot as np.vecdot on contiguous 1-D arrays (the same
    # bits) at a third of the call overhead; w, w r, w² r are fresh contiguous arrays, and y
    # is used with .dot only when it is contiguous too (``y_contiguous``).
    w = m / (v + t)
    s1 = float(np.add.reduce(w))
    s2 = float(w.dot(w))
    mu = float(w.dot(y) if y_contiguous else np.vecdot(w, y)) / s1
    wr = w * (y - mu)
    w2r = w * wr
    a2 = float(wr.dot(wr))
    a3 = float(w2r.dot(wr))
    b = float(np.add.reduce(w2r))
    if reml:
        s3 = float((w * w).dot(w))
        q = s2 / s1
        info = s2 - 2.0 * s3 / s1 + q * q
        score = a2 - (s1 - s2 / s1)
    else:
        info = s2
        score = a2 - s1
    observed = 2.0 * a3 - 2.0 * b * b / s1 - info
    curv = observed if observed > 0.0 else info
    return score, t + score / curv


def _newton_1d(
    y: FloatArray,
    v: FloatArray,
    m: FloatArray,
    lo: float,
    hi: float,
    t: float,
    scale: float,
    reml: bool,
    max_iter: int,
) -> tuple[float, bool]:
    """:func:`_tau2._solve_single` with :func:`_score_step_1d`: the same iterates, on floats."""
    la, ha, ta = lo, hi, t
    y_contiguous = bool(y.flags.c_contiguous)
    for _ in range(max_iter):
        score, cand = _score_step_1d(y, v, m, ta, reml, y_contiguous)
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


def _score_step(
    y: FloatArray, v: FloatArray, m: FloatArray, t: FloatArray, *, reml: bool
) -> tuple[BoolArray, FloatArray, BoolArray]:
    """Newton step on the ML or REML score.

    The curvature is the observed information when positive, else the expected one.  A sign
    change of the score from + to - is a local maximum of the likelihood.
    """
    score, info, observed = _score_parts(y, v, m, t, reml)
    curv = np.where(observed > 0.0, observed, info)
    return score > 0.0, t + score / curv, score == 0.0


#: Fractions of ``t_max`` where the score is evaluated to bracket every local maximum: 0 and 20
#: log-spaced points over eight decades up to ``t_max`` (ratio ~2.6 between neighbours).  A
#: maximum narrower than one such step could be missed; none has been seen in random searches.
_SCAN = np.concatenate([np.zeros(1), np.logspace(-8.0, 0.0, 20)])


def _scan_scores(
    y: FloatArray, v: FloatArray, m: FloatArray, t_max: FloatArray, reml: bool
) -> FloatArray:
    """Scores at ``t_max x _SCAN`` (from 0) for every row, shape (n, len(_SCAN)), in blocks."""
    n, kk = y.shape
    g = _SCAN.size
    out = np.empty((n, g))
    rows_per = max(1, _tau2._BLOCK // (kk * g))
    pts_per = g if kk * g <= _tau2._BLOCK else max(1, _tau2._BLOCK // kk)
    unpadded = bool(m.all())
    for r0 in range(0, n, rows_per):
        rs = slice(r0, r0 + rows_per)
        y3, v3 = y[rs, None, :], v[rs, None, :]
        m3 = 1.0 if unpadded else m[rs, None, :]
        for p0 in range(0, g, pts_per):
            ps = slice(p0, p0 + pts_per)
            t = t_max[rs, None] * _SCAN[None, ps]
            out[rs, ps] = _score_only(y3, v3, m3, t, reml)
    return out


def _best_of(
    y: FloatArray, v: FloatArray, m: FloatArray, candidates: list[float], reml: bool
) -> float:
    """The candidate tau² with the largest (restricted) likelihood, for one analysis."""
    t = np.asarray(candidates, dtype=np.float64)
    ll = _loglik(y, v, m, t, reml)  # 1-D rows broadcast against the candidates
    return float(t[int(np.argmax(ll))])


def _ml_single(
    y: FloatArray,
    v: FloatArray,
    m: FloatArray,
    k: float,
    reml: bool,
    max_iter: int,
    dense: bool = False,
) -> tuple[float, bool]:
    """:func:`tau2_ml` for one analysis (1-D rows): the same steps, scalar bookkeeping.

    Per-call overhead dominates one small meta-analysis, so the bracketing logic and the
    Newton steps (:func:`_score_step_1d`) run on Python floats; the score scan and the
    likelihoods are shared with the vectorised path.  Every operation is the one of the
    vectorised path, and tests check that both give the same estimates bit for bit.
    ``dense`` says that ``m`` is all ones (no padding): the largest variance is then
    ``v.max()`` (a maximum is exact, so the same value as the masked one) and the scan uses
    the scalar mask 1.0 (``1.0 / x`` is ``m / x`` bit for bit).
    """
    sv = float(_dot(m, v))
    scale = sv / k
    r = y - float(_dot(m, y)) / k
    ss = float(r.dot(r) if dense else (m * r).dot(r))  # 1.0 * r is r, bit for bit
    vmax = float(v.max()) if dense else float(np.max(np.where(m > 0, v, 0.0)))
    t_max = 2.0 * max(vmax, 2.0 * ss / max(k - 1.0, 1.0))
    grid = t_max * _SCAN
    # The scan is one (len(_SCAN), k) expression and is never skipped.  Shortcuts such as
    # "Newton from the Hedges start converged and l(0) < l(t)" do not prove t global: the
    # likelihood can have two interior maxima (very unequal variances), and only a sign
    # change of the score between scan points reveals the second.  The scan bracket also
    # enters the iterates (start point, bisection safeguard), so skipping it would change
    # the last bits against the batched path.
    up = (_score_only(y, v, 1.0 if dense else m, grid, reml) > 0.0).tolist()
    brackets = [i for i in range(len(up) - 1) if up[i] and not up[i + 1]]
    if not brackets:
        # zero is the only maximum; a positive score at 0 without a sign change cannot happen
        # (the score is < 0 at t_max) unless rounding interferes: then report non-convergence
        return 0.0, not up[0]
    he = max((ss - sv * (1.0 - 1.0 / k)) / (k - 1.0), 0.0)
    cands: list[float] = [0.0] if not up[0] else []
    converged = True
    for i, j in enumerate(brackets):
        lo, hi = float(grid[j]), float(grid[j + 1])
        start = he if (i == 0 and lo < he < hi) else 0.5 * (lo + hi)
        t, ok = _newton_1d(y, v, m, lo, hi, start, scale, reml, max_iter)
        converged &= ok
        cands.append(t)
    if len(cands) == 1:
        return cands[0], converged
    if len(cands) == 2 and cands[0] == 0.0:
        # zero against one interior maximum, with the vectorised path's tolerance
        ll_hat, ll_0 = _loglik(y, v, m, np.array([cands[1], 0.0]), reml)
        zero_wins = ll_0 - ll_hat > 1e-12 * max(1.0, abs(float(ll_hat)))
        return (0.0 if zero_wins else cands[1]), converged
    return _best_of(y, v, m, cands, reml), converged


def tau2_ml(
    y: FloatArray,
    v: FloatArray,
    m: FloatArray,
    k: FloatArray,
    *,
    reml: bool,
    max_iter: int = _MAX_ITER,
    dense: bool = False,
) -> Tau2Fit:
    """ML or REML estimate of tau² and its SE: the global maximiser on ``[0, t_max]``.

    All maxima lie in ``[0, t_max]`` (:func:`_score_upper_bound`), and the likelihood can have
    more than one (zero and an interior point, or two interior points: common with very unequal
    variances).  A log-spaced scan of the score (:data:`_SCAN`) brackets every local maximum
    (a sign change from + to -); :func:`_solve_bracketed` solves them all rows at once (Newton
    with bisection safeguard, started at metafor's Hedges estimate when it lies in the bracket),
    and where zero or a second bracket is also a candidate the largest likelihood wins (the
    comparison metafor's ``ll0check`` makes).  An analysis whose iteration does not converge
    within ``max_iter`` steps is solved again by a bounded 1-D maximisation
    (:func:`_fallback_1d`) and marked in ``fallback``.

    References
    ----------
    Viechtbauer W (2005). Bias and efficiency of meta-analytic variance estimators in the
    random-effects model. J Educ Behav Stat 30:261-293 (eqs. 9-12).

    ``dense=True`` promises that ``m`` is all ones (the caller checked there is no padding);
    it only lets the one-analysis path skip the masking (same results).
    """
    n = y.shape[0]
    if n == 1:
        t1, ok1 = _ml_single(y[0], v[0], m[0], float(k[0]), reml, max_iter, dense)
        tau = np.array([t1])
        suspect = np.array([not ok1])
        if not ok1:
            tau[0] = _fallback_1d(y[0], v[0], m[0], float(k[0]), reml)
        se1 = np.array([_se_ml_1d(v[0], m[0], float(tau[0]), reml)])
        return Tau2Fit(tau, se1, suspect)
    scale = _mean_scale(v, m, k)
    zero = np.zeros(n)
    t_max = _score_upper_bound(y, v, m, k)
    # brackets of local maxima: sign changes + -> - of the score on [0, t_max x _SCAN]
    scores = _scan_scores(y, v, m, t_max, reml)
    score0 = scores[:, 0]
    up = scores > 0.0
    grid = _SCAN
    brackets = up[:, :-1] & ~up[:, 1:]
    n_brackets = brackets.sum(axis=1)
    j = np.argmax(brackets, axis=1)
    lo, hi = t_max * grid[j], t_max * grid[j + 1]
    # metafor's starting value, the Hedges estimate, if it lies in the bracket; else the middle
    he = _he_point(y, v, m, k)
    start = np.where((he > lo) & (he < hi), he, 0.5 * (lo + hi))
    tau = zero.copy()
    converged = np.ones(n, dtype=bool)
    # score > 0 at 0 but no sign change cannot happen (the score is < 0 at t_max); if rounding
    # makes it so, the analysis goes to the fallback
    converged[(score0 > 0.0) & (n_brackets == 0)] = False
    idx = np.flatnonzero(n_brackets > 0)
    step = functools.partial(_score_step, reml=reml)
    if idx.size:
        rows = (y, v, m) if idx.size == n else (y[idx], v[idx], m[idx])
        tau[idx], converged[idx] = _solve_bracketed(
            step, rows, lo[idx], hi[idx], start[idx], scale[idx], max_iter
        )
    # where zero is also a local maximum, keep the larger of the two (metafor's ll0check)
    both = np.flatnonzero((score0 <= 0.0) & (n_brackets > 0) & converged)
    if both.size:
        ll_hat = _loglik(y[both], v[both], m[both], tau[both], reml)
        ll_0 = _loglik(y[both], v[both], m[both], zero[both], reml)
        tau[both[ll_0 - ll_hat > 1e-12 * np.maximum(1.0, np.abs(ll_hat))]] = 0.0
    # several interior maxima (rare): solve each further bracket and keep the best
    for row in np.flatnonzero(n_brackets > 1):
        cands = [float(tau[row])] + ([0.0] if score0[row] <= 0.0 else [])
        one = (y[row : row + 1], v[row : row + 1], m[row : row + 1])
        for jj in np.flatnonzero(brackets[row])[1:]:
            a_, c_ = t_max[row] * grid[jj], t_max[row] * grid[jj + 1]
            t_r, ok = _solve_bracketed(
                step,
                one,
                np.array([a_]),
                np.array([c_]),
                np.array([0.5 * (a_ + c_)]),
                scale[row : row + 1],
                max_iter,
            )
            converged[row] &= bool(ok[0])
            cands.append(float(t_r[0]))
        tau[row] = _best_of(y[row], v[row], m[row], cands, reml)
    suspect = ~converged
    for i in np.flatnonzero(suspect):
        tau[i] = _fallback_1d(y[i], v[i], m[i], float(k[i]), reml)
    return Tau2Fit(tau, _se_ml(v, m, tau, reml), suspect)


def _se_ml(v: FloatArray, m: FloatArray, tau: FloatArray, reml: bool) -> FloatArray:
    """SE of the ML/REML tau² as metafor: ``sqrt(2/Σw²)`` (ML) or ``sqrt(2/tr PP)`` (REML)."""
    w = _weights(v, m, tau)
    w2 = w * w
    s1 = _wsum(w)
    s2 = _wsum(w2)
    info = _tr_pp(s1, s2, _dot(w2, w)) if reml else s2
    se: FloatArray = np.sqrt(2.0 / info)
    return se


def _se_ml_1d(v: FloatArray, m: FloatArray, tau: float, reml: bool) -> float:
    """:func:`_se_ml` for one analysis (1-D rows) on floats: the same operations."""
    w = m / (v + tau)
    w2 = w * w
    s1 = float(np.add.reduce(w))
    s2 = float(np.add.reduce(w2))
    if reml:
        q = s2 / s1
        info = s2 - 2.0 * float(w2.dot(w)) / s1 + q * q  # fresh arrays: .dot is vecdot
    else:
        info = s2
    return math.sqrt(2.0 / info)
