"""Power (or any design quantity) over a labelled grid of arguments, as an xarray Dataset.

The calculators in :mod:`fibrosim.trials` broadcast their arguments, so a whole grid is one
call: each 1-D axis is placed on its own array dimension, the function is called once, and the
result is labelled with the axis names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["power_grid"]


def power_grid(func: Callable[..., Any], /, **axes: Any) -> xr.Dataset:
    """Evaluate ``func`` on the Cartesian product of the 1-D ``axes``.

    Parameters
    ----------
    func : callable
        A broadcasting calculator, e.g. :func:`fibrosim.trials.power_ttest` or
        :func:`fibrosim.trials.sample_size_ttest`.
    **axes
        Keyword arguments of ``func``.  A 1-D sequence becomes a dimension named after the
        argument (in the order given); a scalar or a string is passed unchanged and recorded
        in the Dataset's ``attrs``.

    Returns
    -------
    xarray.Dataset
        If ``func`` returns an array: a ``power`` variable.  If it returns a dataclass result:
        one variable per array field (e.g. ``n_per_arm``, ``n_per_arm_rounded``,
        ``power_attained``).  Coordinates are the axis values.

    Raises
    ------
    ValueError
        If an axis has more than one dimension or is empty, or there is no axis at all.

    Examples
    --------
    >>> from fibrosim.trials.analytic import power_ttest
    >>> ds = power_grid(power_ttest, delta=[0.3, 0.5], n_per_arm=[20, 50, 100], sd=1.0)
    >>> ds.power.dims, ds.power.shape
    (('delta', 'n_per_arm'), (2, 3))
    """
    dims: list[str] = []
    fixed: dict[str, Any] = {}
    for name, value in axes.items():
        if isinstance(value, str) or np.ndim(value) == 0:
            fixed[name] = value
            continue
        if np.ndim(value) != 1 or np.size(value) == 0:
            raise ValueError(
                f"axis `{name}` must be a non-empty 1-D sequence or a scalar; got shape "
                f"{np.shape(value)}."
            )
        dims.append(name)
    if not dims:
        raise ValueError("power_grid needs at least one 1-D axis to vary; got only scalars.")

    args: dict[str, Any] = {}
    for i, name in enumerate(dims):
        shape = [1] * len(dims)
        shape[i] = -1
        args[name] = np.asarray(axes[name]).reshape(shape)
    result = func(**args, **fixed)

    full = tuple(int(np.size(axes[d])) for d in dims)
    if is_dataclass(result):
        values = {
            f.name: getattr(result, f.name)
            for f in fields(result)
            if isinstance(getattr(result, f.name), np.ndarray)
        }
    else:
        values = {"power": result}
    data = {name: (dims, np.broadcast_to(np.asarray(v), full)) for name, v in values.items()}
    attrs = {
        "function": f"{func.__module__}.{func.__qualname__}",
        **{k: (v if isinstance(v, (int, float, str)) else repr(v)) for k, v in fixed.items()},
    }
    return xr.Dataset(data, coords={d: np.asarray(axes[d]) for d in dims}, attrs=attrs)
