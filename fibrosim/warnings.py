"""Warning classes, so users can filter fibrosim's warnings by kind."""


class FibrosimWarning(UserWarning):
    """Base class of every warning fibrosim issues."""


class FragileEstimateWarning(FibrosimWarning):
    """A result exists but rests on little information.

    For example k = 1, k = 2 with Knapp-Hartung, a variance ratio of 1e7 or more, or a posterior
    with its mass at the edge of the grid.
    """


class ConvergenceWarning(FibrosimWarning):
    """An iterative solver or a sampler did not meet its convergence criteria.

    A fallback was used, or R-hat / ESS / divergences are out of bounds.
    """


class DataWarning(FibrosimWarning):
    """Input data were accepted but something about them deserves a look.

    For example a continuity correction was applied to zero cells.
    """
