"""Trial design: closed-form power, group-sequential boundaries, assurance and simulation."""

from fibrosim._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        # analytic.py
        "power_ttest": "analytic",
        "sample_size_ttest": "analytic",
        # sequential.py
        "gs_bounds": "sequential",
        # assurance.py
        "assurance": "assurance",
        # simulate.py
        "simulate": "simulate",
        # submodules
        "analytic": "analytic",
        "sequential": "sequential",
        "cohorts": "cohorts",
        "designs": "designs",
    },
)
