"""Meta-analysis: frequentist random effects, meta-regression, diagnostics, Bayesian models."""

from fibrosim._lazy import lazy_exports

__getattr__, __all__ = lazy_exports(
    __name__,
    {
        # frequentist.py
        "random_effects": "frequentist",
        "RandomEffectsResult": "frequentist",
        # regression.py
        "meta_regression": "regression",
        "subgroup_analysis": "subgroups",
        "MetaRegressionResult": "regression",
        "SubgroupResult": "subgroups",
        # diagnostics.py and publication_bias.py
        "leave_one_out": "diagnostics",
        "influence": "diagnostics",
        "egger_test": "publication_bias",
        "trim_and_fill": "publication_bias",
        "blup": "diagnostics",
        "rank_test": "publication_bias",
        # bayes.py
        "bayes_random_effects": "bayes",
        "BayesRandomEffects": "bayes",
        "TauMarginal": "bayes",
        # map.py and mixtures.py
        "map_prior": "map",
        "map_prior_binomial": "map",
        "binomial_map_posterior": "map",
        "BinomialMAPPosterior": "map",
        "fit_beta_mixture": "map",
        "auto_fit_beta_mixture": "map",
        "NormalMixture": "mixtures",
        "BetaMixture": "mixtures",
        "ess": "mixtures",
        # submodules
        "frequentist": "frequentist",
        "regression": "regression",
        "subgroups": "subgroups",
        "diagnostics": "diagnostics",
        "publication_bias": "publication_bias",
        "empirical_priors": "empirical_priors",
        "bayes": "bayes",
        "priors": "priors",
        "mcmc": "mcmc",
        "map": "map",
        "mixtures": "mixtures",
    },
)
