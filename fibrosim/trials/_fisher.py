"""Fisher's exact test for two arms' responder counts: p-value tables and exact power.

For fixed arm sizes ``n_t`` and ``n_c`` the conditional test's p-value depends only on the table
``(x_t, x_c)``, so all ``(n_t + 1)(n_c + 1)`` p-values are computed once and looked up: tables
sharing the total ``K = x_t + x_c`` share one hypergeometric distribution, whose tail sums give
the one-sided p-values and whose sorted probabilities give the two-sided ones in
``O(n log n)`` per ``K``.  Exact power is the binomial probability of the rejection region.

Conventions follow R's ``fisher.test``: the one-sided test is in the direction of more
responders on treatment (``alternative = "greater"`` for the table with the treatment arm
first); the two-sided p-value sums the probabilities of the tables no more likely than the
observed one, with R's relative tolerance ``1 + 1e-7``.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats

FloatArray = NDArray[np.float64]

#: R's fisher.test: tables whose probability is within this factor of the observed one count
#: as "no more likely" (guards against rounding of equal probabilities).
_REL_ERR = 1.0 + 1e-7


@functools.lru_cache(maxsize=512)
def pvalue_table(n_t: int, n_c: int, sided: int) -> FloatArray:
    """P-values of every table: ``out[x_t, x_c]``, shape ``(n_t + 1, n_c + 1)``, read-only."""
    out = np.empty((n_t + 1, n_c + 1))
    total = n_t + n_c
    log_norm = special.gammaln(np.arange(total + 1) + 1.0)  # log k!
    for k in range(total + 1):
        lo, hi = max(0, k - n_c), min(k, n_t)
        x = np.arange(lo, hi + 1)
        # hypergeometric log-probabilities of x_t = x given the margin k
        logp = (
            log_norm[n_t]
            - log_norm[x]
            - log_norm[n_t - x]
            + log_norm[n_c]
            - log_norm[k - x]
            - log_norm[n_c - k + x]
            - (log_norm[total] - log_norm[k] - log_norm[total - k])
        )
        d = np.exp(logp - logp.max())
        d /= d.sum()
        if sided == 1:
            # P(X >= x): reversed cumulative sum
            p = np.cumsum(d[::-1])[::-1]
        else:
            order = np.sort(d)
            cum = np.cumsum(order)
            # sum of the probabilities <= d(x) * (1 + 1e-7)
            idx = np.searchsorted(order, d * _REL_ERR, side="right")
            p = cum[idx - 1]
        out[x, k - x] = np.minimum(p, 1.0)
    out.setflags(write=False)
    return out


def fisher_pvalues(
    x_t: NDArray[np.int64],
    n_t: NDArray[np.int64],
    x_c: NDArray[np.int64],
    n_c: NDArray[np.int64],
    sided: int,
) -> FloatArray:
    """P-values of many tables (arrays of one shape) by one gather from the needed tables.

    Each distinct arm-size pair contributes its table, flattened, to one array; a table's
    p-value sits at its pair's offset plus ``x_t (n_c + 1) + x_c``.
    """
    # one integer key per arm-size pair (a 1-D unique is much faster than a row-wise one)
    width = int(n_c.max()) + 1
    keys, inverse = np.unique(n_t.ravel() * width + n_c.ravel(), return_inverse=True)
    tables = [pvalue_table(int(k // width), int(k % width), sided).ravel() for k in keys]
    offsets = np.concatenate([[0], np.cumsum([t.size for t in tables])[:-1]])
    inverse = inverse.ravel()
    index = offsets[inverse] + x_t.ravel() * (keys[inverse] % width + 1) + x_c.ravel()
    out: FloatArray = np.concatenate(tables)[index].reshape(x_t.shape)
    return out


def exact_power(p_t: float, p_c: float, n_t: int, n_c: int, alpha: float, sided: int) -> float:
    """Probability that Fisher's test rejects at ``alpha``: the binomial mass of the region."""
    reject = pvalue_table(n_t, n_c, sided) <= alpha
    b_t = stats.binom.pmf(np.arange(n_t + 1), n_t, p_t)
    b_c = stats.binom.pmf(np.arange(n_c + 1), n_c, p_c)
    return float(b_t @ reject @ b_c)
