"""Architecture search: spaces, Optuna multi-objective studies, noise-aware Pareto tables.

The public face of the search room: what the CLI, reports, the calibration room and the
benchmarks use. The implementation lives in modules by job: ``space`` (what a search varies
and measures), ``record`` (what a study stores about a trial: the one owner of its names),
``tables`` (the study as pandas tables, compared by one noise-aware dominance rule),
``storage`` (where studies live), and the private ``_study`` (creating or joining a study),
``_trial`` (one trial through the Evaluator), ``_loop`` (the worker loop), ``_ladder``
(follow-up runs: promotions and repeats), ``_pareto`` (the dominance rule), ``_rungs``,
``_repeats``, ``_prefilter``, ``_versions``.
"""

from __future__ import annotations

from dvbench.search._hypervolume import (
    HypervolumeSummary,
    hypervolume_history,
    hypervolume_summary,
)
from dvbench.search._loop import run_search, summarize
from dvbench.search._options import SearchOptions, SearchSummary, check_study_name, command_line
from dvbench.search._pareto import DominanceRule
from dvbench.search._sections import Objective, parse_objectives_option
from dvbench.search._study import join_study
from dvbench.search._versions import SpaceVersion, space_versions
from dvbench.search.record import (
    SPACE_VERSION,
    STUDY_ATTR,
    is_feasible,
    recorded_config,
    run_of,
)
from dvbench.search.space import SearchSpace, list_spaces, load_space
from dvbench.search.storage import (
    display_url,
    find_study_folder,
    load_study,
    open_study,
    resolve_study_reference,
)
from dvbench.search.tables import (
    Criteria,
    candidates,
    dominance,
    front_version,
    pareto_frame,
    provisional_frame,
    trials_frame,
    with_front_probability,
)

__all__ = [
    "SPACE_VERSION",
    "STUDY_ATTR",
    "Criteria",
    "DominanceRule",
    "HypervolumeSummary",
    "Objective",
    "SearchOptions",
    "SearchSpace",
    "SearchSummary",
    "SpaceVersion",
    "candidates",
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
    "list_spaces",
    "load_space",
    "load_study",
    "open_study",
    "pareto_frame",
    "parse_objectives_option",
    "provisional_frame",
    "recorded_config",
    "resolve_study_reference",
    "run_of",
    "run_search",
    "space_versions",
    "summarize",
    "trials_frame",
    "with_front_probability",
]
