"""Effect sizes of 2x2 tables: log odds ratio, log risk ratio, risk difference.

Each table is given by its four cells (``a``, ``b``: treated events and non-events; ``c``,
``d``: control events and non-events).  One shared core applies metafor 3.8-1 ``escalc``'s
continuity correction (``add`` to the tables chosen by ``to``) and double-zero rule
(``drop00``), then computes the measure with metafor's formulas and order of operations, so the
results agree with it to 1e-10 relative (``tests/data/escalc_reference.json``).  Inputs
broadcast; the last axis indexes the tables of one meta-analysis (it matters for
``to="if0all"``).  :mod:`fibrosim.effects` re-exports :func:`odds_ratio`, :func:`risk_ratio`
and :func:`risk_difference`, so users write ``fs.effects.odds_ratio``.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fibrosim._checks import (
    FloatArray,
    _first_bad,
    _where,
    broadcast,
    check_choice,
    check_integer,
)
from fibrosim._effect_sizes import BoolArray, EffectSizes
from fibrosim.warnings import DataWarning

__all__ = ["odds_ratio", "risk_difference", "risk_ratio"]


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False; got {value!r}.")
    return bool(value)


_BINARY_NAMES = {"OR": "log odds ratio", "RR": "log risk ratio", "RD": "risk difference"}


def _check_tables(a: ArrayLike, b: ArrayLike, c: ArrayLike, d: ArrayLike) -> dict[str, FloatArray]:
    cells = broadcast(
        a=check_integer("a", a, minimum=0),
        b=check_integer("b", b, minimum=0),
        c=check_integer("c", c, minimum=0),
        d=check_integer("d", d, minimum=0),
    )
    for arm, (x, y) in (("treated arm (a + b)", ("a", "b")), ("control arm (c + d)", ("c", "d"))):
        empty = cells[x] + cells[y] == 0
        if np.any(empty):
            idx = _first_bad(np.atleast_1d(empty))
            raise ValueError(f"the {arm} has no participants{_where(idx)}; each arm needs >= 1.")
    return cells


def _corrected_tables(has_zero: BoolArray, add: float, to: str) -> BoolArray:
    """Which tables receive ``add`` in every cell (metafor's ``to`` rules)."""
    if add == 0.0 or to == "none":
        return np.zeros_like(has_zero)
    if to == "all":
        return np.ones_like(has_zero)
    if to == "only0" or has_zero.ndim == 0:
        return has_zero.copy()
    # if0all: every table of a meta-analysis (the last axis) when any of them has a zero
    return np.broadcast_to(has_zero.any(axis=-1, keepdims=True), has_zero.shape).copy()


def _binary(
    measure: str,
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike,
    d: ArrayLike,
    add: float,
    to: str,
    drop00: bool,
    vtype: str | None,
) -> EffectSizes:
    check_choice("to", to, ("only0", "all", "if0all", "none"))
    drop00 = _check_bool("drop00", drop00)
    if isinstance(add, bool) or not isinstance(add, (int, float, np.integer, np.floating)):
        raise ValueError(f"`add` must be a finite number >= 0; got {add!r}.")
    if not (np.isfinite(add) and add >= 0):
        raise ValueError(f"`add` must be a finite number >= 0; got {add!r}.")
    add = float(add)
    cells = _check_tables(a, b, c, d)
    dropped: BoolArray | None = None
    kept_rows: NDArray[np.intp] | None = None
    if drop00:
        if cells["a"].ndim > 1:
            raise ValueError(
                "`drop00=True` removes tables and needs 1-D inputs; got shape "
                f"{cells['a'].shape}. For batches, keep drop00=False."
            )
        cells = {k: np.atleast_1d(v) for k, v in cells.items()}
        # metafor's definition: no events in either arm, or only events in both
        dropped = ((cells["a"] == 0) & (cells["c"] == 0)) | ((cells["b"] == 0) & (cells["d"] == 0))
        kept_rows = np.flatnonzero(~dropped)
        cells = {k: v[~dropped] for k, v in cells.items()}

    def where(mask: BoolArray) -> tuple[str, tuple[int, ...]]:
        # the index in the caller's input, also after drop00 removed tables
        pos = _first_bad(np.atleast_1d(mask))
        return (_where(pos) if kept_rows is None else _where((int(kept_rows[pos[0]]),))), pos

    ca, cb, cc, cd = cells["a"], cells["b"], cells["c"], cells["d"]
    corrected = _corrected_tables((ca == 0) | (cb == 0) | (cc == 0) | (cd == 0), add, to)
    shift = np.where(corrected, add, 0.0)
    ca, cb, cc, cd = ca + shift, cb + shift, cc + shift, cd + shift
    n1, n2 = ca + cb, cc + cd
    p1, p2 = ca / n1, cc / n2
    with np.errstate(divide="ignore", invalid="ignore"):
        # the formulas and their order of operations are metafor's, for bitwise-close parity
        if measure == "OR":
            yi = np.log(p1 / (1.0 - p1)) - np.log(p2 / (1.0 - p2))
            vi = 1.0 / ca + 1.0 / cb + 1.0 / cc + 1.0 / cd
        elif measure == "RR":
            yi = np.log(p1) - np.log(p2)
            vi = 1.0 / ca - 1.0 / n1 + 1.0 / cc - 1.0 / n2
        elif vtype == "UB":
            yi = p1 - p2
            vi = p1 * (1.0 - p1) / (n1 - 1.0) + p2 * (1.0 - p2) / (n2 - 1.0)
        else:
            yi = p1 - p2
            vi = p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2
    bad = ~(np.isfinite(yi) & np.isfinite(vi))
    if np.any(bad):
        at, pos = where(bad)
        shown = ", ".join(f"{k}={np.atleast_1d(cells[k])[pos]:g}" for k in "abcd")
        raise ValueError(
            f"the {_BINARY_NAMES[measure]} is undefined for the table{at} ({shown}) with "
            f"add={add:g}, to={to!r}: a zero cell is left uncorrected. Use the default "
            "to='only0' with add > 0, or drop00=True for double-zero tables."
        )
    if np.any(vi == 0.0):
        at, _ = where(vi == 0.0)
        warnings.warn(
            f"the sampling variance is 0 for the table{at} (both risks are 0 or 1); "
            "inverse-variance weighting cannot use it.",
            DataWarning,
            stacklevel=3,
        )
    return EffectSizes(measure, yi, vi, vtype=vtype, corrected=corrected, dropped=dropped)


def odds_ratio(
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike,
    d: ArrayLike,
    *,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
) -> EffectSizes:
    """Log odds ratio ``log(a d / (b c))`` with Woolf's variance (metafor ``"OR"``).

    ``vi = 1/a + 1/b + 1/c + 1/d`` after the continuity correction.

    Parameters
    ----------
    a, b : array_like
        Group 1 (treated): events and non-events, whole numbers >= 0 (see
        :func:`table_from_events` to build them from events and arm sizes).
    c, d : array_like
        Group 2 (control): events and non-events.
    add : float, default 0.5
        Continuity correction added to the cells of the tables chosen by ``to``.
    to : {"only0", "all", "if0all", "none"}, default "only0"
        ``"only0"``: tables with a zero cell; ``"all"``: every table; ``"if0all"``: every
        table of a meta-analysis (along the last axis) when any of them has a zero cell;
        ``"none"``: no correction (a zero cell where the measure is undefined then raises).
    drop00 : bool, default False
        Remove double-zero tables (no events in either arm, or only events in both) before
        anything else.  The result then holds the kept tables; ``.dropped`` marks the removed
        ones.  Needs 1-D inputs.  With the default False they are kept and corrected, as in
        metafor (their log OR and log RR are 0 only when the arms have equal size).

    Returns
    -------
    EffectSizes
        ``measure="OR"``; ``.corrected`` marks the corrected tables.

    Raises
    ------
    ValueError
        Negative or non-whole counts, an empty arm, inputs that do not broadcast, a zero
        cell left uncorrected, or ``drop00=True`` with batch axes.

    References
    ----------
    Woolf B. On estimating the relation between blood group and disease. Ann Hum Genet
    1955;19(4):251-253.

    Examples
    --------
    >>> round(float(odds_ratio(4, 119, 11, 128).yi), 6)
    -0.938694
    """
    return _binary("OR", a, b, c, d, add, to, drop00, None)


def risk_ratio(
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike,
    d: ArrayLike,
    *,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
) -> EffectSizes:
    """Log risk ratio ``log((a/n1) / (c/n2))`` (metafor ``"RR"``).

    ``vi = 1/a - 1/n1 + 1/c - 1/n2`` after the continuity correction.

    Parameters
    ----------
    a, b, c, d : array_like
        Cells: treated events, treated non-events, control events, control non-events.
    add, to, drop00
        Continuity correction and double-zero handling, as in :func:`odds_ratio`.

    Returns
    -------
    EffectSizes
        ``measure="RR"``.

    Raises
    ------
    ValueError
        As :func:`odds_ratio`.

    Examples
    --------
    >>> round(float(risk_ratio(4, 119, 11, 128).yi), 6)
    -0.889311
    """
    return _binary("RR", a, b, c, d, add, to, drop00, None)


def risk_difference(
    a: ArrayLike,
    b: ArrayLike,
    c: ArrayLike,
    d: ArrayLike,
    *,
    add: float = 0.5,
    to: str = "only0",
    drop00: bool = False,
    vtype: str = "LS",
) -> EffectSizes:
    """Risk difference ``a/n1 - c/n2`` (metafor ``"RD"``).

    The correction applies as for the ratios (metafor's default, although the risk
    difference is defined with zero cells; pass ``to="none"`` to leave tables as they are).

    Parameters
    ----------
    a, b, c, d : array_like
        Cells: treated events, treated non-events, control events, control non-events.
    add, to, drop00
        Continuity correction and double-zero handling, as in :func:`odds_ratio`.
    vtype : {"LS", "UB"}, default "LS"
        ``"LS"``: ``p1(1-p1)/n1 + p2(1-p2)/n2``; ``"UB"``: the same with ``n - 1``.

    Returns
    -------
    EffectSizes
        ``measure="RD"``.

    Raises
    ------
    ValueError
        As :func:`odds_ratio`.

    Warns
    -----
    DataWarning
        A sampling variance of exactly 0 (both risks 0 or 1 without correction).

    Examples
    --------
    >>> round(float(risk_difference(4, 119, 11, 128).yi), 6)
    -0.046616
    """
    check_choice("vtype", vtype, ("LS", "UB"))
    return _binary("RD", a, b, c, d, add, to, drop00, vtype)
