"""The statistics every room shares: per-image outcomes, the noise model of a candidate's
accuracy and of differences between candidates, dominance, P(front), hypervolume, reliability
(ICC) and rank correlations, and the knob-effects model. Only numpy, scipy and pandas below it:
``search``, ``calibrate``, ``report`` and the benchmarks import it, it imports none of them.
"""

from dvbench.stats.noise import (
    Estimate,
    Noise,
    SeedVariance,
    flip_variance,
    pooled_variance,
    test_set_variance,
)
from dvbench.stats.outcomes import ImageOutcomes
from dvbench.stats.pareto import (
    DEFAULT_CONFIDENCE,
    STRICT,
    DominanceRule,
    crowding_distances,
    front_probability,
    holm,
    hypervolume,
    hypervolume_interval,
)
from dvbench.stats.reliability import spearman

__all__ = [
    "DEFAULT_CONFIDENCE",
    "STRICT",
    "DominanceRule",
    "Estimate",
    "ImageOutcomes",
    "Noise",
    "SeedVariance",
    "crowding_distances",
    "flip_variance",
    "front_probability",
    "holm",
    "hypervolume",
    "hypervolume_interval",
    "pooled_variance",
    "spearman",
    "test_set_variance",
]
