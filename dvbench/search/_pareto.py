"""The dominance rule, its order, the front probability and the hypervolume, as the search
room has always imported them; they live in :mod:`dvbench.stats.pareto` (below every room that
compares candidates), this module only re-exports them so that existing imports keep working.
"""

from dvbench.stats.pareto import (
    DEFAULT_CONFIDENCE,
    DRAWS,
    STRICT,
    DominanceRule,
    as_gains,
    crowding_distances,
    front_probability,
    hypervolume,
    hypervolume_interval,
)

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DRAWS",
    "STRICT",
    "DominanceRule",
    "as_gains",
    "crowding_distances",
    "front_probability",
    "hypervolume",
    "hypervolume_interval",
]
