"""Input checks shared by the meta-analysis entry points that take one set of studies.

:mod:`fibrosim.meta.regression`, :mod:`fibrosim.meta.diagnostics` and
:mod:`fibrosim.meta.publication_bias` validate ``yi``/``vi`` and the model options here, so a
bad argument gets the same message whichever function receives it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fibrosim._checks import as_float_array, check_choice, check_level
from fibrosim.meta._mixed import METHODS, TESTS

FloatArray = NDArray[np.float64]

__all__ = ["check_options", "check_yv"]


def check_options(method: str, test: str, level: float) -> tuple[str, str, float]:
    """Check the tau² ``method``, the coefficient ``test`` and the confidence ``level``."""
    return (
        check_choice("method", method, METHODS),
        check_choice("test", test, TESTS),
        check_level("level", level),
    )


def check_yv(
    yi: ArrayLike, vi: ArrayLike, *, min_k: int = 2, positive: bool = True
) -> tuple[FloatArray, FloatArray]:
    """One meta-analysis: finite 1-D ``yi`` and ``vi`` of the same length.

    Parameters
    ----------
    yi, vi : array_like, shape (k,)
        Effect sizes and sampling variances.
    min_k : int
        Smallest number of studies the caller can use (checked only with ``positive``).
    positive : bool
        Also require ``vi > 0`` and ``k >= min_k``.  A caller that hands the studies on to a
        function checking these itself (after its own arguments) passes False, so the order in
        which its errors are reported stays its own.

    Returns
    -------
    y, v : ndarray, shape (k,)
    """
    y = as_float_array("yi", yi)
    v = as_float_array("vi", vi)
    if y.ndim != 1 or y.shape != v.shape:
        raise ValueError(
            f"`yi` and `vi` must be 1-D arrays of the same length; got shapes {y.shape} and "
            f"{v.shape}."
        )
    if not positive:
        return y, v
    if np.any(v <= 0):
        i = int(np.argmax(v <= 0))
        raise ValueError(f"`vi` must be > 0; got {v[i]} at index {i}.")
    if len(y) < min_k:
        if len(y) == 0:
            raise ValueError("`yi` and `vi` hold no studies (length 0).")
        raise ValueError(f"this diagnostic needs k >= {min_k} studies; got k = {len(y)}.")
    return y, v
