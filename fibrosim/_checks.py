"""Argument checks shared by every public function.

Each check validates one argument at the public boundary and raises a ``ValueError`` (or
``TypeError``) whose message names the argument, the offending value (and its index for arrays)
and what is allowed.  Cores behind the boundary assume clean input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def _first_bad(mask: NDArray[np.bool_]) -> tuple[int, ...]:
    """Index of the first True entry; ``()`` for a 0-d mask (a scalar has no index to name)."""
    if mask.ndim == 0:
        return ()
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _where(index: tuple[int, ...]) -> str:
    if not index:
        return ""
    if len(index) == 1:
        return f" at index {index[0]}"
    return f" at index {index}"


def as_float_array(name: str, value: ArrayLike, *, allow_nan: bool = False) -> FloatArray:
    """Convert ``value`` to a float64 array; reject non-numeric and non-finite entries.

    ``allow_nan=True`` lets NaN through (used for NaN-padded ragged batches); ±Inf is always
    rejected.
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be numeric; got {value!r}.") from exc
    bad = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
    if np.any(bad):
        idx = _first_bad(bad)
        shown = arr[idx]
        allowed = "finite or NaN (padding)" if allow_nan else "finite"
        raise ValueError(f"`{name}` must be {allowed}; got {shown}{_where(idx)}.")
    return arr


def check_positive(
    name: str, value: ArrayLike, *, strict: bool = True, allow_nan: bool = False
) -> FloatArray:
    """Finite values > 0 (``strict``) or >= 0."""
    arr = as_float_array(name, value, allow_nan=allow_nan)
    with np.errstate(invalid="ignore"):
        bad = (arr <= 0) if strict else (arr < 0)
    if np.any(bad):
        idx = _first_bad(bad)
        rel = "> 0" if strict else ">= 0"
        raise ValueError(f"`{name}` must be {rel}; got {arr[idx]}{_where(idx)}.")
    return arr


def check_in_interval(
    name: str,
    value: ArrayLike,
    low: float,
    high: float,
    *,
    closed: str = "both",
    allow_nan: bool = False,
) -> FloatArray:
    """Finite values inside an interval; ``closed`` is "both", "neither", "left" or "right"."""
    arr = as_float_array(name, value, allow_nan=allow_nan)
    lo_ok = arr >= low if closed in ("both", "left") else arr > low
    hi_ok = arr <= high if closed in ("both", "right") else arr < high
    with np.errstate(invalid="ignore"):
        bad = ~(lo_ok & hi_ok)
    if allow_nan:
        bad &= ~np.isnan(arr)
    if np.any(bad):
        idx = _first_bad(bad)
        left = "[" if closed in ("both", "left") else "("
        right = "]" if closed in ("both", "right") else ")"
        raise ValueError(
            f"`{name}` must lie in {left}{low}, {high}{right}; got {arr[idx]}{_where(idx)}."
        )
    return arr


def check_probability(name: str, value: ArrayLike, *, open_interval: bool = True) -> FloatArray:
    """Values in (0, 1) (or [0, 1] with ``open_interval=False``)."""
    return check_in_interval(name, value, 0.0, 1.0, closed="neither" if open_interval else "both")


def check_integer(name: str, value: ArrayLike, *, minimum: int | None = None) -> FloatArray:
    """Whole numbers (stored as float so they broadcast with the rest), optionally >= minimum."""
    arr = as_float_array(name, value)
    bad = arr != np.round(arr)
    if np.any(bad):
        idx = _first_bad(bad)
        raise ValueError(f"`{name}` must be a whole number; got {arr[idx]}{_where(idx)}.")
    if minimum is not None and np.any(arr < minimum):
        idx = _first_bad(arr < minimum)
        raise ValueError(f"`{name}` must be >= {minimum}; got {arr[idx]:g}{_where(idx)}.")
    return arr


def check_choice(name: str, value: Any, allowed: tuple[Any, ...]) -> Any:
    """``value`` must be one of ``allowed`` (strings are matched exactly)."""
    if value not in allowed:
        listed = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"`{name}` must be one of {listed}; got {value!r}.")
    return value


def check_level(name: str, value: float) -> float:
    """A confidence / credibility level strictly between 0 and 1 (0.95, not 95)."""
    if not isinstance(value, (int, float, np.floating)) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"`{name}` must be a number in (0, 1), e.g. 0.95; got {value!r}.")
    return float(value)


def check_sided(name: str, value: int) -> int:
    """1 (one-sided) or 2 (two-sided)."""
    if value not in (1, 2):
        raise ValueError(f"`{name}` must be 1 or 2; got {value!r}.")
    return int(value)


def broadcast(**arrays: FloatArray) -> dict[str, FloatArray]:
    """Broadcast named arrays together; on failure the message lists every name and shape."""
    try:
        out = np.broadcast_arrays(*arrays.values())
    except ValueError as exc:
        shapes = ", ".join(f"`{k}` {np.shape(v)}" for k, v in arrays.items())
        raise ValueError(f"arguments do not broadcast together: {shapes}.") from exc
    return {k: np.asarray(v, dtype=np.float64) for k, v in zip(arrays, out, strict=True)}


def check_rng(rng: Any) -> np.random.Generator:
    """SPEC 7: ``rng`` may be None, an int, a SeedSequence or a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    raise TypeError(
        f"`rng` must be None, an int, a numpy SeedSequence or a numpy Generator; got {rng!r}."
    )
