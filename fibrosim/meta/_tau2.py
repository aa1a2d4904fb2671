"""Array core of the between-study variance (tau²) estimators for the intercept-only model.

Every function takes a stack of meta-analyses as 2-D arrays of shape ``(n, K)``: effect sizes
``y``, sampling variances ``v`` and a float mask ``m`` (1.0 for a study, 0.0 for NaN padding; padded
cells hold ``y = 0`` and ``v = 1`` so that no arithmetic produces NaN).  Each analysis is an
independent row; all work is O(K) per row (sums over studies), never a K x K matrix.  Inputs are
assumed clean: :mod:`fibrosim.meta.frequentist` validates them once at the public boundary.

Notation (Viechtbauer 2005): weights ``w = 1/(v + tau²)``, ``S1 = Σw``, ``S2 = Σw²``, ``S3 = Σw³``,
``mu = Σwy/S1`` and residuals ``r = y - mu``.  For the projection ``P = W - w wᵀ/S1`` the traces
needed by metafor's formulas have closed forms: ``tr P = S1 - S2/S1`` and
``tr PP = S2 - 2 S3/S1 + S2²/S1²``; ``yᵀPy = Σw r²`` (the generalised Q) and ``yᵀPPy = Σw² r²``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: Relative step at which the iterative solvers stop.  The scale is tau² + mean(v), so the
#: criterion is invariant to rescaling the effect sizes.  1e-14 leaves the estimate within a few
#: ulps of the exact root because the final iterations are Newton steps (quadratic convergence).
_REL_TOL = 1e-14
_MAX_ITER = 200
#: Elements per temporary array in one vectorised pass (2 MB of doubles): small enough to stay
#: in cache, which matters more than the Python overhead of looping over blocks.
_BLOCK = 1 << 18


class Tau2Fit(NamedTuple):
    """tau² and its standard error per analysis, and where the ML/REML fallback was used."""

    tau2: FloatArray
    se_tau2: FloatArray
    fallback: NDArray[np.bool_]


#: Row sums over a short last axis are computed column by column below this length.
_COLSUM_MAX_K = 32
#: ... and from this many rows on (for fewer rows the per-column calls cost more).
_COLSUM_MIN_ROWS = 64


def _wsum(a: FloatArray) -> FloatArray:
    """Row sums over the last axis, bit for bit equal to ``np.add.reduce(a, axis=-1)``.

    NumPy reduces each row of a C-contiguous array with its pairwise summation: for ``K < 8``
    elements a left-to-right sum, for ``8 <= K <= 128`` eight interleaved partial sums combined
    as ``((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))`` followed by the remaining
    ``K mod 8`` elements.  For many short rows (a batch of small meta-analyses) that costs one
    inner-loop call per row; the same additions done column-wise over all rows give the same
    bits at a fraction of the time (tests check the equality for every K up to the limit).
    """
    n = a.shape[-1]
    if (
        n < 2
        or n >= _COLSUM_MAX_K
        or a.ndim < 2
        or a.size < _COLSUM_MIN_ROWS * n
        or not a.flags.c_contiguous
    ):
        out: FloatArray = np.add.reduce(a, axis=-1)
        return out
    if n < 8:
        res = a[..., 0] + a[..., 1]
        tail = 2
    else:
        full = n - n % 8
        if full == 8:
            r = [a[..., j] for j in range(8)]
        else:
            r = [a[..., j] + a[..., j + 8] for j in range(8)]
            for i in range(16, full, 8):
                for j in range(8):
                    r[j] += a[..., i + j]
        left = r[0] + r[1]
        left += r[2] + r[3]
        right = r[4] + r[5]
        right += r[6] + r[7]
        res = left
        res += right
        tail = full
    for i in range(tail, n):
        res += a[..., i]
    return res


def _dot(a: FloatArray, b: FloatArray) -> FloatArray:
    """Row-wise ``Σ a b`` without a temporary (a gufunc: fast for one row and for many)."""
    out: FloatArray = np.vecdot(a, b)
    return out


def _sum_sq(y: FloatArray, m: FloatArray, k: FloatArray) -> FloatArray:
    """Unweighted ``Σ (y - ȳ)²`` over the studies of each row."""
    r = y - (_dot(m, y) / k)[:, None]
    return _dot(m * r, r)


def _weights(v: FloatArray, m: FloatArray, tau2: FloatArray) -> FloatArray:
    # [..., None] also works for a scalar tau² with 1-D rows (the single-analysis fast path)
    return m / (v + tau2[..., None])


def _mean_scale(v: FloatArray, m: FloatArray, k: FloatArray) -> FloatArray:
    """Mean sampling variance: the natural scale of tau² for stopping rules."""
    return _dot(v, m) / k


def generalised_q(y: FloatArray, v: FloatArray, m: FloatArray, tau2: FloatArray) -> FloatArray:
    """Generalised Q statistic ``Σ w (y - mu_w)²`` with ``w = 1/(v + tau²)``."""
    w = _weights(v, m, tau2)
    mu = _dot(w, y) / _wsum(w)
    r = y - mu[:, None]
    return _dot(w * r, r)


def _tr_pp(s1: FloatArray, s2: FloatArray, s3: FloatArray) -> FloatArray:
    return s2 - 2.0 * s3 / s1 + (s2 / s1) ** 2


def _se_moment(w: FloatArray, v: FloatArray, tau2: FloatArray, denom: FloatArray) -> FloatArray:
    """SE of a method-of-moments estimator ``(Qₐ - tr(PV)) / denom`` with fixed weights ``w``.

    ``Var(Qₐ) = 2 tr(PVPV) + 4 tau² tr(PPV) + 2 tau⁴ tr(PP)`` (metafor's GENQ formula), written
    with the O(K) trace identities for ``P = W - w wᵀ/S1``.
    """
    s1 = _wsum(w)
    w2 = w * w
    s2 = _wsum(w2)
    s3 = _dot(w2, w)
    w2v = w2 * v
    s_w2v = _wsum(w2v)
    tr_pvpv = _dot(w2v, v) - 2.0 * _dot(w2v * w, v) / s1 + (s_w2v / s1) ** 2
    tr_ppv = s_w2v - 2.0 * _dot(w2v, w) / s1 + s2 * s_w2v / s1**2
    var_q = 2.0 * tr_pvpv + 4.0 * tau2 * tr_ppv + 2.0 * tau2**2 * _tr_pp(s1, s2, s3)
    return np.sqrt(var_q) / denom


def tau2_dl(y: FloatArray, v: FloatArray, m: FloatArray, k: FloatArray) -> Tau2Fit:
    """DerSimonian-Laird (1986) method-of-moments estimator and its SE (metafor's formula)."""
    w = m / v
    s1 = _wsum(w)
    s2 = _dot(w, w)
    mu = _dot(w, y) / s1
    r = y - mu[:, None]
    q = _dot(w * r, r)
    tr_p = s1 - s2 / s1
    tau2 = np.maximum((q - (k - 1.0)) / tr_p, 0.0)
    se = _se_moment(w, v, tau2, tr_p)
    return Tau2Fit(tau2, se, np.zeros(tau2.shape, dtype=bool))


def tau2_dl_1d(y: FloatArray, v: FloatArray, k: float) -> tuple[float, float] | None:
    """:func:`tau2_dl` for one analysis without padding (contiguous 1-D rows), on floats.

    The same operations as the array version (``ndarray.dot`` is the BLAS ddot of
    ``np.vecdot`` on contiguous arrays), so the same bits; returns None when ``tr P`` is 0 in
    floating point (a degenerate weight ratio), where the array version's IEEE semantics apply.
    """
    w = 1.0 / v
    s1 = float(np.add.reduce(w))
    s2 = float(w.dot(w))
    r = y - float(w.dot(y)) / s1
    q = float((w * r).dot(r))
    tr_p = s1 - s2 / s1
    if tr_p == 0.0:
        return None
    tau2 = max((q - (k - 1.0)) / tr_p, 0.0)
    # _se_moment with the same fixed weights
    w2 = w * w
    s2 = float(np.add.reduce(w2))
    s3 = float(w2.dot(w))
    w2v = w2 * v
    s_w2v = float(np.add.reduce(w2v))
    a = s_w2v / s1
    tr_pvpv = float(w2v.dot(v)) - 2.0 * float((w2v * w).dot(v)) / s1 + a * a
    tr_ppv = s_w2v - 2.0 * float(w2v.dot(w)) / s1 + s2 * s_w2v / (s1 * s1)
    b = s2 / s1
    tr_pp = s2 - 2.0 * s3 / s1 + b * b
    var_q = 2.0 * tr_pvpv + 4.0 * tau2 * tr_ppv + 2.0 * (tau2 * tau2) * tr_pp
    return tau2, math.sqrt(var_q) / tr_p


def tau2_hs(y: FloatArray, v: FloatArray, m: FloatArray, k: FloatArray) -> Tau2Fit:
    """Hunter-Schmidt estimator ``(Q - k)/Σw`` and its SE (metafor's formula)."""
    w = m / v
    s1 = _wsum(w)
    mu = _dot(w, y) / s1
    r = y - mu[:, None]
    q = _dot(w * r, r)
    tau2 = np.maximum((q - k) / s1, 0.0)
    se = _se_moment(w, v, tau2, s1)
    return Tau2Fit(tau2, se, np.zeros(tau2.shape, dtype=bool))


def _he_point(y: FloatArray, v: FloatArray, m: FloatArray, k: FloatArray) -> FloatArray:
    ss = _sum_sq(y, m, k)
    tr_pv = _dot(m, v) * (1.0 - 1.0 / k)
    return np.maximum((ss - tr_pv) / (k - 1.0), 0.0)


def tau2_he(y: FloatArray, v: FloatArray, m: FloatArray, k: FloatArray) -> Tau2Fit:
    """Hedges (1983) / Hedges-Olkin unweighted method-of-moments estimator and its SE."""
    tau2 = _he_point(y, v, m, k)
    se = _se_moment(m, v, tau2, k - 1.0)
    return Tau2Fit(tau2, se, np.zeros(tau2.shape, dtype=bool))


def tau2_sj(y: FloatArray, v: FloatArray, m: FloatArray, k: FloatArray) -> Tau2Fit:
    """Sidik-Jonkman (2005) two-step estimator started from ``Σ(y - ȳ)²/k`` (as metafor)."""
    tau0 = _sum_sq(y, m, k) / k
    q0 = generalised_q(y, v, m, tau0)
    w = _weights(v, m, tau0)
    tau2 = tau0 * q0 / (k - 1.0)
    # all effects equal: tau0 = 0, tau² = 0 and metafor's SE formula (proportional to tau0) is 0
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(tau0 > 0.0, _se_moment(w, v, tau2, (k - 1.0) / tau0), 0.0)
    return Tau2Fit(tau2, se, np.zeros(tau2.shape, dtype=bool))


BoolArray = NDArray[np.bool_]
StepFn = Callable[..., tuple[BoolArray | bool, FloatArray | float, BoolArray | bool]]


def _solve_bracketed(
    step_fn: StepFn,
    rows: tuple[FloatArray, ...],
    lo: FloatArray,
    hi: FloatArray,
    t: FloatArray,
    scale: FloatArray,
    max_iter: int,
) -> tuple[FloatArray, BoolArray]:
    """Vectorised safeguarded Newton for one root per row inside ``[lo, hi]``.

    ``step_fn(*rows, t)`` returns ``(right, candidate, exact)``: whether the root lies above
    ``t``, the Newton candidate, and whether ``t`` is an exact root.  The bracket shrinks every
    step; a candidate outside it is replaced by bisection, so every row converges (to a
    relative step of ``_REL_TOL`` on the scale ``t + scale``).  Rows that finish are removed
    from the working set, so later iterations cost only what is still running.
    """
    if t.size == 1:
        return _solve_single(step_fn, tuple(a[0] for a in rows), lo, hi, t, scale, max_iter)
    out = t.copy()
    converged = np.zeros(t.size, dtype=bool)
    pos = np.arange(t.size)
    la, ha, ta, sa = lo.copy(), hi.copy(), t.copy(), scale
    for _ in range(max_iter):
        right, cand, exact = step_fn(*rows, ta)
        la = np.where(right, ta, la)
        ha = np.where(right, ha, ta)
        with np.errstate(invalid="ignore"):
            inside = (cand > la) & (cand < ha)
        new = np.where(exact, ta, np.where(inside, cand, 0.5 * (la + ha)))
        tol = _REL_TOL * (new + sa)
        done = exact | (np.abs(new - ta) <= tol) | (ha - la <= tol)
        ta = new
        if done.any():
            out[pos[done]] = ta[done]
            converged[pos[done]] = True
            keep = ~done
            if not keep.any():
                return out, converged
            pos, la, ha, ta, sa = pos[keep], la[keep], ha[keep], ta[keep], sa[keep]
            rows = tuple(a[keep] for a in rows)
    out[pos] = ta
    return out, converged


def _solve_single(
    step_fn: StepFn,
    rows: tuple[FloatArray, ...],
    lo: FloatArray,
    hi: FloatArray,
    t: FloatArray,
    scale: FloatArray,
    max_iter: int,
) -> tuple[FloatArray, BoolArray]:
    """:func:`_solve_bracketed` for one analysis: the same steps on 1-D rows and scalars.

    Per-call overhead dominates a single small meta-analysis; scalar bookkeeping instead of
    length-1 arrays makes it several times faster with identical arithmetic.
    """
    la, ha, ta, sa = float(lo[0]), float(hi[0]), np.float64(t[0]), float(scale[0])
    for _ in range(max_iter):
        right, cand, exact = step_fn(*rows, ta)
        if exact:
            return np.array([ta]), np.array([True])
        if right:
            la = float(ta)
        else:
            ha = float(ta)
        new = float(cand) if la < cand < ha else 0.5 * (la + ha)
        tol = _REL_TOL * (new + sa)
        done = abs(new - ta) <= tol or ha - la <= tol
        ta = np.float64(new)
        if done:
            return np.array([ta]), np.array([True])
    return np.array([ta]), np.array([False])


def _q_step(
    y: FloatArray, v: FloatArray, m: FloatArray, target: FloatArray, t: FloatArray
) -> tuple[BoolArray, FloatArray, BoolArray]:
    """Newton step on ``1/Q_gen(t) - 1/target`` (increasing in t)."""
    w = _weights(v, m, t)
    mu = _dot(w, y) / _wsum(w)
    r = y - mu[..., None]
    wr = w * r
    q = _dot(wr, r)
    dq = -_dot(wr, wr)  # dQ/dtau²; the dmu/dtau² term vanishes at the weighted mean
    g = 1.0 / q - 1.0 / target
    with np.errstate(divide="ignore", invalid="ignore"):
        cand = t - g * q * q / (-dq)
    return g < 0.0, cand, g == 0.0


def _q_step_1d(
    y: FloatArray, v: FloatArray, m: FloatArray, target: float, t: float
) -> tuple[bool, float, bool]:
    """:func:`_q_step` for one analysis (1-D rows) on Python floats: the same operations.

    ``y``, ``w`` and ``w r`` are contiguous (the caller's rows are copies from fancy indexing),
    so ``ndarray.dot`` is the BLAS ddot of ``np.vecdot``; the scalar operations are the same
    IEEE double operations in the same order, so the iterates are identical (tests check it).
    ``q > 0`` and ``dq < 0`` inside the bracket (``Q_gen(0) > target`` needs a nonzero
    residual), so no division by zero can occur.
    """
    w = m / (v + t)
    mu = float(w.dot(y)) / float(np.add.reduce(w))
    r = y - mu
    wr = w * r
    q = float(wr.dot(r))
    dq = -float(wr.dot(wr))
    g = 1.0 / q - 1.0 / float(target)
    cand = float(t) - g * q * q / (-dq)
    return g < 0.0, cand, g == 0.0


def q_profile_root(
    y: FloatArray, v: FloatArray, m: FloatArray, k: FloatArray, target: FloatArray
) -> FloatArray:
    """Root in tau² of ``Q_gen(tau²) = target`` (0 when ``Q_gen(0) <= target``).

    ``Q_gen`` decreases in tau² (Viechtbauer 2007), so the root is unique.  The upper bracket is
    adaptive and needs no cap: ``Q_gen(t) <= Σ(y - ȳ)²/(min v + t)``, so ``Q_gen`` is below the
    target from ``t_hi = Σ(y - ȳ)²/target - min v`` on.  Inside ``[0, t_hi]`` a Newton iteration on
    ``1/Q_gen`` (linear in tau² when the variances are equal) is safeguarded by bisection.
    """
    n = y.shape[0]
    tau = np.zeros(n)
    q0 = generalised_q(y, v, m, tau)
    one = n == 1 and y.flags.c_contiguous and v.flags.c_contiguous and m.flags.c_contiguous
    if one:
        # one contiguous analysis: the rows as they are (y[idx] would copy the same values)
        if not q0[0] > target[0]:
            return tau
        idx = None
        ys, vs, ms, tg, ks = y, v, m, target, k
    else:
        need = q0 > target
        if not np.any(need):
            return tau
        idx = np.flatnonzero(need)
        ys, vs, ms, tg, ks = y[idx], v[idx], m[idx], target[idx], k[idx]
    ss = _sum_sq(ys, ms, ks)
    vmin = np.min(np.where(ms > 0, vs, np.inf), axis=-1)
    lo = np.zeros(tg.size)
    hi = np.maximum(ss / tg - vmin, 0.0)
    scale = _mean_scale(vs, ms, ks)
    # the float step needs contiguous rows: true for one analysis here, and fancy-indexed
    # rows are fresh copies
    step = _q_step_1d if tg.size == 1 else _q_step
    t, _ = _solve_bracketed(step, (ys, vs, ms, tg), lo, hi, lo, scale, _MAX_ITER)
    if idx is None:
        return t
    tau[idx] = t
    return tau


def tau2_pm(y: FloatArray, v: FloatArray, m: FloatArray, k: FloatArray) -> Tau2Fit:
    """Paule-Mandel (1982) estimator: root of ``Q_gen(tau²) = k - 1``, with metafor's SE.

    Empirical Bayes (Morris 1983) and the iterated Sidik-Jonkman estimator have the same fixed
    point, so they share this solver; the SE is ``sqrt(2 k²/(k-1)) / Σw`` for all three.
    """
    tau2 = q_profile_root(y, v, m, k, k - 1.0)
    s1 = _wsum(_weights(v, m, tau2))
    se = np.sqrt(2.0 * k**2 / (k - 1.0)) / s1
    return Tau2Fit(tau2, se, np.zeros(tau2.shape, dtype=bool))


def in_blocks(
    fn: Callable[[FloatArray, FloatArray, FloatArray, FloatArray], Tau2Fit],
    y: FloatArray,
    v: FloatArray,
    m: FloatArray,
    k: FloatArray,
) -> Tau2Fit:
    """Apply a tau² estimator to blocks of rows (rows are independent), bounding memory."""
    n, kk = y.shape
    rows_per = max(1, _BLOCK // kk)
    if n <= rows_per:
        return fn(y, v, m, k)
    parts = [
        fn(y[i : i + rows_per], v[i : i + rows_per], m[i : i + rows_per], k[i : i + rows_per])
        for i in range(0, n, rows_per)
    ]
    return Tau2Fit(*(np.concatenate(a) for a in zip(*parts, strict=True)))
