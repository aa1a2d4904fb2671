"""The result of every effect-size function: :class:`EffectSizes`.

One frozen container for ``yi`` (the effect) and ``vi`` (its sampling variance) with standard
errors, Wald intervals, ``.to_dataframe()`` and a table ``__repr__``.  It lives on its own so
that the modules computing effect sizes (:mod:`fibrosim.effects`,
:mod:`fibrosim.effects_binary`, :mod:`fibrosim.conversions`) can all build it without importing
each other; users reach it as ``fibrosim.effects.EffectSizes``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from fibrosim._checks import FloatArray, check_level

BoolArray = NDArray[np.bool_]

__all__ = ["BoolArray", "EffectSizes"]

_REPR_ROWS = 10


def _frozen(arr: NDArray[np.generic]) -> NDArray[np.generic]:
    out = np.array(arr, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, slots=True, eq=False, repr=False)
class EffectSizes:
    """Effect sizes with their sampling variances.

    Attributes
    ----------
    measure : str
        metafor's name of the measure: ``"MD"``, ``"SMD"``, ``"ROM"``, ``"SMCR"``, ``"SMCC"``,
        ``"OR"``, ``"RR"``, ``"RD"`` or ``"ZCOR"``.  ``yi`` is on the log scale for OR, RR
        and ROM and on Fisher's z scale for ZCOR.
    yi : ndarray
        Effect sizes, group 1 minus (or over) group 2.
    vi : ndarray
        Large-sample sampling variances of ``yi``.
    vtype : str or None
        Which variance formula was used (metafor's ``vtype``); None where there is one.
    corrected : ndarray of bool or None
        2x2 measures only: True where ``add`` was added to every cell of the table.
        Same shape as ``yi``.
    dropped : ndarray of bool or None
        2x2 measures with ``drop00=True`` only: one entry per input table, True for the
        double-zero tables that were removed.  ``yi``, ``vi`` and ``corrected`` then hold
        the remaining tables in input order (``np.flatnonzero(~dropped)`` are their rows).

    Notes
    -----
    The arrays are read-only.  ``se`` is ``sqrt(vi)``; ``ci(level)`` gives Wald limits.
    """

    measure: str
    yi: FloatArray
    vi: FloatArray
    vtype: str | None = None
    corrected: BoolArray | None = None
    dropped: BoolArray | None = None

    def __post_init__(self) -> None:
        # frozen means frozen: a caller editing yi in place would desynchronise yi and vi
        for name in ("yi", "vi", "corrected", "dropped"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _frozen(value))

    @property
    def se(self) -> FloatArray:
        """Standard errors, ``sqrt(vi)``."""
        return np.sqrt(self.vi)

    def ci(self, level: float = 0.95) -> tuple[FloatArray, FloatArray]:
        """Wald confidence limits ``yi ± z * se`` at ``level`` (on the scale of ``yi``)."""
        level = check_level("level", level)
        z = stats.norm.ppf(0.5 + level / 2.0)
        return self.yi - z * self.se, self.yi + z * self.se

    def to_dataframe(self, level: float = 0.95) -> pd.DataFrame:
        """One row per effect size: columns ``yi``, ``vi``, ``se``, ``ci_low``, ``ci_high``.

        The index is the input row (after ``drop00``, the rows kept); with batch axes it is a
        MultiIndex with one level per axis.  ``attrs`` holds ``measure``, ``vtype`` and
        ``level``.
        """
        low, high = self.ci(level)
        shape = self.yi.shape
        index: pd.Index
        if self.dropped is not None:
            index = pd.Index(np.flatnonzero(~self.dropped), name="row")
        elif len(shape) <= 1:
            index = pd.RangeIndex(int(np.prod(shape)), name="row")
        else:
            index = pd.MultiIndex.from_tuples(
                list(np.ndindex(shape)), names=[f"axis{i}" for i in range(len(shape))]
            )
        frame = pd.DataFrame(
            {
                "yi": self.yi.ravel(),
                "vi": self.vi.ravel(),
                "se": self.se.ravel(),
                "ci_low": low.ravel(),
                "ci_high": high.ravel(),
            },
            index=index,
        )
        frame.attrs.update(measure=self.measure, vtype=self.vtype, level=level)
        return frame

    def __repr__(self) -> str:
        head = f"EffectSizes(measure={self.measure!r}"
        if self.vtype is not None:
            head += f", vtype={self.vtype!r}"
        head += f", shape={self.yi.shape})"
        notes = []
        if self.corrected is not None and self.corrected.any():
            notes.append(f"continuity correction in {int(self.corrected.sum())} table(s)")
        if self.dropped is not None and self.dropped.any():
            notes.append(f"{int(self.dropped.sum())} double-zero table(s) dropped")
        frame = self.to_dataframe()
        body = frame.head(_REPR_ROWS).to_string(float_format=lambda x: f"{x:.6g}")
        if len(frame) > _REPR_ROWS:
            body += f"\n... {len(frame) - _REPR_ROWS} more rows"
        lines = [head, *(f"  {n}" for n in notes), body, "(95% Wald CI)"]
        return "\n".join(lines)
