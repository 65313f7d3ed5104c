"""Counting and measuring: FLOPs, parameters, latency, throughput and peak memory.

``profile_models`` is the entry point (``dvbench profile`` calls it); ``count_cost`` is the
cheap count that search constraints use. See ``docs/profiling.md`` for the
conventions (what a FLOP is, which ops get handles, how latency and memory are taken).
"""

from dvbench.profile.flops import (
    EXTRA_HANDLES,
    ZERO_COST_OPS,
    Cost,
    CostReport,
    ModuleCost,
    count_cost,
    count_flops,
)
from dvbench.profile.memory import PeakMemory, cpu_peak_memory, cuda_peak_memory
from dvbench.profile.runner import (
    COLUMNS,
    ProfileResult,
    ProfileSettings,
    profile_models,
    results_to_frame,
    write_results,
)
from dvbench.profile.timing import Measurement, make_step, measure

__all__ = [
    "COLUMNS",
    "EXTRA_HANDLES",
    "ZERO_COST_OPS",
    "Cost",
    "CostReport",
    "Measurement",
    "ModuleCost",
    "PeakMemory",
    "ProfileResult",
    "ProfileSettings",
    "count_cost",
    "count_flops",
    "cpu_peak_memory",
    "cuda_peak_memory",
    "make_step",
    "measure",
    "profile_models",
    "results_to_frame",
    "write_results",
]
