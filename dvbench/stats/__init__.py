"""The statistics every room shares: per-image outcomes, the noise model of a candidate's
accuracy and of differences between candidates, dominance, P(front), hypervolume, reliability
(ICC) and rank correlations, and the knob-effects model. Only numpy, scipy and pandas below it:
``search``, ``calibrate``, ``report`` and the benchmarks import it, it imports none of them.
"""

from dvbench.stats.outcomes import ImageOutcomes

__all__ = ["ImageOutcomes"]
