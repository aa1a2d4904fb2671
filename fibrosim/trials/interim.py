"""Interim quantities of a group-sequential design: conditional and predictive power.

Given the z statistic at an interim analysis, the rest of the trial is the recursion of
:mod:`fibrosim.trials._gs_integration` started from that point, with the design's remaining
bounds (futility bounds only if binding; a two-sided design's lower efficacy bounds always).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from fibrosim._checks import FloatArray, as_float_array, check_choice, check_integer
from fibrosim.trials._gs_integration import _GH_NODES, _GH_WEIGHTS, _crossing
from fibrosim.trials.sequential import GSDesign

__all__ = ["conditional_power", "predictive_power"]


def _check_interim(design: GSDesign, z: ArrayLike, stage: int) -> tuple[FloatArray, int]:
    st = int(check_integer("stage", stage, minimum=1))
    if st >= design.k:
        raise ValueError(
            f"`stage` must be an interim analysis, 1 <= stage < k = {design.k}; got {st}."
        )
    return as_float_array("z", z), st


def conditional_power(
    design: GSDesign, z: ArrayLike, stage: int, drift: ArrayLike | str | None = None
) -> FloatArray:
    """Probability of crossing a later efficacy bound given ``Z = z`` at analysis ``stage``.

    Parameters
    ----------
    design : GSDesign
        The design (its remaining bounds are used; futility bounds only if binding).
    z : array_like
        Observed z statistic(s) at the interim.
    stage : int
        1-based index of the interim analysis (< K).
    drift : float, array_like, "trend" or None
        ``E[Z_K]`` assumed for the rest of the trial: None for the design alternative
        (``design.drift``, needs a powered design), ``"trend"`` for the current estimate
        ``z / sqrt(t)``, or a value.

    Returns
    -------
    ndarray
        Conditional power with the broadcast shape of ``z`` and ``drift``.

    References
    ----------
    Jennison C, Turnbull BW (2000), section 10.2; Lan KKG, Wittes J (1988). Biometrics
    44:579-585.
    """
    zz, st = _check_interim(design, z, stage)
    t_s = float(design.timing[st - 1])
    if drift is None:
        if design.drift is None:
            raise ValueError("`drift=None` uses the design alternative: give `beta` to gs_bounds.")
        eta = np.asarray(design.drift, dtype=np.float64)
    elif isinstance(drift, str):
        check_choice("drift", drift, ("trend",))
        eta = zz / np.sqrt(t_s)
    else:
        eta = as_float_array("drift", drift)
    zb, eb = np.broadcast_arrays(zz, eta)
    lower = design.stopping_lower
    up, _ = _crossing(
        design.upper[st:],
        lower[st:],
        design.timing[st:],
        eb.ravel() * 1.0,
        z0=zb.ravel() * 1.0,
        t0=t_s,
    )
    return np.asarray(np.sum(up, axis=1).reshape(zb.shape), dtype=np.float64)


def predictive_power(design: GSDesign, z: ArrayLike, stage: int) -> FloatArray:
    """Conditional power averaged over the flat-prior posterior of the drift at an interim.

    Given ``Z = z`` at information fraction ``t``, the drift has posterior
    ``N(z / sqrt(t), 1 / t)``; the conditional power is averaged over it by 48-point
    Gauss-Hermite quadrature.

    Parameters
    ----------
    design, z, stage
        As in :func:`conditional_power`.

    Returns
    -------
    ndarray

    References
    ----------
    Spiegelhalter DJ, Freedman LS, Blackburn PR (1986). Control Clin Trials 7:8-17.
    """
    zz, st = _check_interim(design, z, stage)
    t_s = float(design.timing[st - 1])
    eta = zz[..., None] / np.sqrt(t_s) + _GH_NODES / np.sqrt(t_s)
    z_b = np.broadcast_to(zz[..., None], eta.shape)
    lower = design.stopping_lower
    up, _ = _crossing(
        design.upper[st:], lower[st:], design.timing[st:], eta.ravel(), z0=z_b.ravel(), t0=t_s
    )
    cp = np.sum(up, axis=1).reshape(eta.shape)
    return np.asarray(cp @ _GH_WEIGHTS, dtype=np.float64)
