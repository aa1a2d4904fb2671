"""Subgroup analysis: pooled effects within subgroups and the test of subgroup differences.

Either each subgroup is pooled on its own (its own tau²) and the subgroup estimates compared by
a fixed-effect Q test, or one tau² is shared and the differences are the meta-regression on
group dummies (:func:`fibrosim.meta.regression.meta_regression`), whose QM tests them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from fibrosim._checks import check_choice
from fibrosim.meta._inputs import check_options, check_yv
from fibrosim.meta._mixed import FloatArray
from fibrosim.meta.regression import meta_regression

__all__ = ["SubgroupResult", "subgroup_analysis"]


@dataclass(frozen=True, slots=True)
class SubgroupResult:
    """Subgroup analysis: per-group pooled effects and the test of subgroup differences.

    Attributes
    ----------
    groups : tuple
        Group labels (sorted).
    k : ndarray, shape (G,)
        Studies per group.
    estimate, se, ci_low, ci_high : ndarray, shape (G,)
        Pooled effect of each group under the chosen tau² model (``separate``: each group's own
        random-effects fit; ``common``: the group means of the meta-regression on group dummies).
    tau2 : ndarray, shape (G,)
        tau² used for each group (one value repeated when ``tau2_model == "common"``).
    per_group : RandomEffectsResult
        The separate random-effects fits, batched over the G groups (available for both models).
    q_between : float
        Test of subgroup differences: for ``separate``, the fixed-effect Q across the group
        estimates (chi², G - 1 df); for ``common``, the omnibus moderator test QM of the
        meta-regression on group dummies (chi² with G - 1 df, or F(G - 1, k - G) with "knha").
    q_between_df : tuple of int
        ``(G - 1,)`` for chi², ``(G - 1, k - G)`` for F.
    q_between_pvalue : float
        p-value of ``q_between``.
    tau2_model, method, test : str
        Options used.
    """

    groups: tuple[Any, ...]
    k: FloatArray
    estimate: FloatArray
    se: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    tau2: FloatArray
    per_group: Any
    q_between: float
    q_between_df: tuple[int, ...]
    q_between_pvalue: float
    tau2_model: str
    method: str
    test: str

    def to_dataframe(self) -> pd.DataFrame:
        """One row per group."""
        return pd.DataFrame(
            {
                "k": self.k,
                "estimate": self.estimate,
                "se": self.se,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "tau2": self.tau2,
            },
            index=pd.Index(list(self.groups), name="group"),
        )

    def __repr__(self) -> str:
        dist = "F" if len(self.q_between_df) == 2 else "chi²"
        df = ", ".join(str(d) for d in self.q_between_df)
        table = self.to_dataframe().to_string(float_format=lambda x: f"{x:.4g}")
        return (
            f"SubgroupResult ({self.tau2_model} tau², {self.method}, test={self.test!r})\n"
            f"{table}\n"
            f"test of subgroup differences: {dist}({df}) = {self.q_between:.4f}, "
            f"p = {self.q_between_pvalue:.4g}"
        )


def subgroup_analysis(
    yi: ArrayLike,
    vi: ArrayLike,
    groups: ArrayLike,
    *,
    method: str = "REML",
    test: str = "z",
    tau2: str = "separate",
    level: float = 0.95,
) -> SubgroupResult:
    """Pool studies within subgroups and test whether the subgroup effects differ.

    Parameters
    ----------
    yi, vi : array_like, shape (k,)
        Effect sizes and sampling variances.
    groups : array_like, shape (k,)
        Group label of each study (a pandas Categorical's unused categories are an error).
    method, test, level
        As in :func:`fibrosim.meta.frequentist.random_effects`.
    tau2 : {"separate", "common"}
        ``separate``: each group is fitted alone (its own tau²) and the group estimates are
        compared with a fixed-effect Q test (the approach of RevMan and of metafor's documented
        "separate tau²" analysis).  ``common``: one tau² shared by all groups, i.e. the
        meta-regression ``mods = ~ factor(groups)``, whose QM tests the differences.

    Returns
    -------
    SubgroupResult

    Raises
    ------
    ValueError
        If ``groups`` does not have one label per study, has fewer than two groups, or a group
        without studies.

    References
    ----------
    Borenstein M, Hedges LV, Higgins JPT, Rothstein HR (2009). Introduction to Meta-Analysis,
    ch. 19 (subgroup analyses).  Viechtbauer W, metafor documentation, "Subgroup analysis with
    separate tau² estimates" (rma + fixed-effect comparison of the group estimates).

    Examples
    --------
    >>> import numpy as np
    >>> from fibrosim.meta.subgroups import subgroup_analysis
    >>> res = subgroup_analysis([0.1, 0.3, 0.2, 0.9, 1.1, 0.8], np.full(6, 0.04),
    ...                         ["a", "a", "a", "b", "b", "b"], method="DL")
    >>> res.groups
    ('a', 'b')
    """
    from fibrosim.meta.frequentist import random_effects

    tau2_model = check_choice("tau2", tau2, ("separate", "common"))
    method, test, level = check_options(method, test, level)
    # vi > 0 is checked by random_effects / meta_regression, after the groups
    y, v = check_yv(yi, vi, positive=False)
    g = pd.Series(groups) if not isinstance(groups, pd.Series) else groups.reset_index(drop=True)
    if g.ndim != 1 or len(g) != len(y):
        raise ValueError(
            f"`groups` must hold one label per study: got {len(g)} labels for k = {len(y)} studies."
        )
    if g.isna().any():
        raise ValueError(
            f"`groups` must not be missing; got NaN at index {int(np.argmax(g.isna()))}."
        )
    cat = g.astype("category")
    counts = cat.value_counts(sort=False)
    empty = [str(c) for c, n in counts.items() if n == 0]
    if empty:
        raise ValueError(
            f"`groups` has categories without studies ({', '.join(empty)}); every group needs "
            "k >= 1 (drop unused categories)."
        )
    labels = tuple(cat.cat.categories)
    n_groups = len(labels)
    if n_groups < 2:
        raise ValueError(f"`groups` must define at least 2 groups; got {n_groups} ({labels!r}).")
    codes = cat.cat.codes.to_numpy()
    k_g = np.bincount(codes, minlength=n_groups).astype(np.float64)
    # one batched random_effects call: row j holds group j's studies, NaN-padded
    kmax = int(k_g.max())
    order = np.argsort(codes, kind="stable")
    pos = np.arange(len(y)) - np.searchsorted(codes[order], codes[order])
    yb = np.full((n_groups, kmax), np.nan)
    vb_ = np.full((n_groups, kmax), np.nan)
    yb[codes[order], pos] = y[order]
    vb_[codes[order], pos] = v[order]
    per = random_effects(yb, vb_, method=method, test=test, level=level)
    if tau2_model == "separate":
        est = np.asarray(per.estimate, dtype=np.float64)
        se = np.asarray(per.se, dtype=np.float64)
        w = 1.0 / se**2
        pooled = np.sum(w * est) / np.sum(w)
        q = float(np.sum(w * (est - pooled) ** 2))
        df: tuple[int, ...] = (n_groups - 1,)
        q_p = float(stats.chi2.sf(q, n_groups - 1))
        return SubgroupResult(
            groups=labels,
            k=k_g,
            estimate=est,
            se=se,
            ci_low=np.asarray(per.ci_low, dtype=np.float64),
            ci_high=np.asarray(per.ci_high, dtype=np.float64),
            tau2=np.asarray(per.tau2, dtype=np.float64),
            per_group=per,
            q_between=q,
            q_between_df=df,
            q_between_pvalue=q_p,
            tau2_model=tau2_model,
            method=method,
            test=test,
        )
    dummies = (codes[:, None] == np.arange(n_groups)[None, :]).astype(np.float64)
    means = meta_regression(y, v, dummies, method=method, test=test, level=level, intercept=False)
    contrast = meta_regression(y, v, dummies[:, 1:], method=method, test=test, level=level)
    df = (n_groups - 1, len(y) - n_groups) if test == "knha" else (n_groups - 1,)
    return SubgroupResult(
        groups=labels,
        k=k_g,
        estimate=means.coefficients,
        se=means.se,
        ci_low=means.ci_low,
        ci_high=means.ci_high,
        tau2=np.full(n_groups, float(means.tau2)),
        per_group=per,
        q_between=float(contrast.qm),
        q_between_df=df,
        q_between_pvalue=float(contrast.qm_pvalue),
        tau2_model=tau2_model,
        method=method,
        test=test,
    )
