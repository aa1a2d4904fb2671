"""fibrosim: evidence synthesis and trial simulation for drug-resistant fibromyalgia.

Submodules load on first use (``fs.effects``, ``fs.studies``, ``fs.meta``, ``fs.priors``,
``fs.trials``, ``fs.grid``, ``fs.plots``, ``fs.report``), so ``import fibrosim`` stays cheap and
PyMC is imported only by code that needs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from fibrosim.warnings import (
    ConvergenceWarning,
    DataWarning,
    FibrosimWarning,
    FragileEstimateWarning,
)

if TYPE_CHECKING:
    from fibrosim import effects, grid, meta, plots, report, studies, trials
    from fibrosim.meta import priors

__version__ = "0.1.0"

_SUBMODULES = {
    "effects": "fibrosim.effects",
    "studies": "fibrosim.studies",
    "meta": "fibrosim.meta",
    "priors": "fibrosim.meta.priors",
    "trials": "fibrosim.trials",
    "grid": "fibrosim.grid",
    "plots": "fibrosim.plots",
    "report": "fibrosim.report",
}

__all__ = [
    "ConvergenceWarning",
    "DataWarning",
    "FibrosimWarning",
    "FragileEstimateWarning",
    "__version__",
    "effects",
    "grid",
    "meta",
    "plots",
    "priors",
    "report",
    "studies",
    "trials",
]


def __getattr__(name: str) -> ModuleType:
    if name in _SUBMODULES:
        module = importlib.import_module(_SUBMODULES[name])
        globals()[name] = module
        return module
    raise AttributeError(f"module 'fibrosim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
