"""Trial design: closed-form power, group-sequential boundaries, assurance and simulation."""

from fibrosim._lazy import lazy_exports

_BY_MODULE = {
    "analytic": (
        "power_ttest",
        "sample_size_ttest",
        "power_ztest",
        "sample_size_ztest",
        "solve_ttest",
        "power_paired",
        "sample_size_paired",
        "paired_sd_diff",
    ),
    "endpoints": (
        "power_crossover",
        "sample_size_crossover",
        "crossover_sd_within",
        "power_ancova",
        "sample_size_ancova",
        "inflate_for_dropout",
    ),
    "responders": (
        "power_two_proportions",
        "sample_size_two_proportions",
        "responder_probability",
        "dichotomisation_loss",
        "ResponderLoss",
    ),
    "multiplicity": (
        "power_coprimary",
        "sample_size_coprimary",
        "power_multiple_primary",
        "MultiplePower",
    ),
    "multiarm": ("power_multiarm", "dunnett_critical"),
    "bayesian_decisions": ("TwoSampleDecision", "oc_two_sample", "oc_two_sample_binary"),
    "sequential": ("gs_bounds", "GSDesign", "gs_crossing"),
    "interim": ("conditional_power", "predictive_power"),
    "probability_of_success": ("assurance", "assurance_mixture", "assurance_gs"),
    "grid_power": ("power_grid",),
    "designs": (
        "ParallelDesign",
        "MultiArmDesign",
        "FactorialDesign",
        "CrossoverDesign",
        "GroupSequentialDesign",
        "MultiEndpointDesign",
    ),
    "cohorts": ("CohortModel", "Endpoints", "DrugResistance"),
    "simulation": ("simulate", "simulate_assurance", "SimulationResult"),
}

_NAMES = {name: module for module, names in _BY_MODULE.items() for name in names}
# submodules by their own names (the modules of `assurance` and `simulate` are named
# differently from those functions, so importing a module never shadows a function)
_NAMES.update(
    {
        m: m
        for m in (
            "analytic",
            "probability_of_success",
            "simulation",
            "patient_level",
            "endpoints",
            "responders",
            "multiplicity",
            "multiarm",
            "bayesian_decisions",
            "sequential",
            "interim",
            "grid_power",
            "designs",
            "cohorts",
        )
    }
)

__getattr__, __all__ = lazy_exports(__name__, _NAMES)
