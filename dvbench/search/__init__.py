"""Architecture search: Optuna multi-objective studies of a space, noise-aware Pareto tables.

The public face of the search room: what the CLI, reports and the benchmarks use. What a
search varies and measures is the space room's (:mod:`dvbench.space`); the statistics are
:mod:`dvbench.stats`'. Here, modules by job: ``record`` (what a study stores about a trial:
the one owner of its names), ``tables`` (the study as pandas tables, compared by one
noise-aware dominance rule), ``storage`` (where studies live), and the private ``_study``
(creating or joining a study), ``_trial`` (one trial through the Evaluator), ``_loop`` (the
worker loop), ``_ladder`` (follow-up runs: promotions and repeats), ``_runs`` (runs folded
into candidates), ``_hypervolume``, ``_versions``.
"""

from __future__ import annotations

from dvbench.search._hypervolume import (
    HypervolumeSummary,
    hypervolume_history,
    hypervolume_summary,
)
from dvbench.search._loop import SearchObserver, run_search, summarize
from dvbench.search._options import SearchOptions, SearchSummary, check_study_name, command_line
from dvbench.search._study import join_study
from dvbench.search._versions import SpaceVersion, space_versions
from dvbench.search.record import (
    SPACE_VERSION,
    STUDY_ATTR,
    is_feasible,
    run_of,
)
from dvbench.search.storage import (
    display_url,
    find_study_folder,
    load_study,
    open_study,
    recorded_config,
    resolve_study_reference,
)
from dvbench.search.tables import (
    Criteria,
    Snapshot,
    analyse,
    candidates,
    dominance,
    front_version,
    pareto_frame,
    provisional_frame,
    trials_frame,
    with_front_probability,
)
from dvbench.search.workers import run_study

__all__ = [
    "SPACE_VERSION",
    "STUDY_ATTR",
    "Criteria",
    "HypervolumeSummary",
    "SearchObserver",
    "SearchOptions",
    "SearchSummary",
    "Snapshot",
    "SpaceVersion",
    "candidates",
    "analyse",
    "check_study_name",
    "command_line",
    "display_url",
    "dominance",
    "find_study_folder",
    "front_version",
    "hypervolume_history",
    "hypervolume_summary",
    "is_feasible",
    "join_study",
    "load_study",
    "open_study",
    "pareto_frame",
    "provisional_frame",
    "recorded_config",
    "resolve_study_reference",
    "run_of",
    "run_search",
    "run_study",
    "space_versions",
    "summarize",
    "trials_frame",
    "with_front_probability",
]
