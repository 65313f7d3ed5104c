"""Architecture search: spaces, Optuna multi-objective studies, Pareto tables, calibration.

The public face of the search room; the implementation lives in private modules by job
(``_options``: what a run is asked; ``_study``: creating/joining a study and reaping dead
workers' trials; ``_versions``: the space a study runs under, and its recorded changes;
``_trial``: one trial through the Evaluator; ``_loop``: the worker loop).
``space``, ``storage``, ``tables`` and ``calibrate`` are public modules of their own.
"""

from __future__ import annotations

from dvbench.search._knobs import KNOB_HELP, knobs_to_config
from dvbench.search._loop import SearchLoop, run_search, summarize
from dvbench.search._options import (
    SearchOptions,
    SearchSummary,
    check_study_name,
    command_line,
    make_sampler,
)
from dvbench.search._study import fail_orphaned_trials, open_study, study_settings
from dvbench.search._trial import TrialFailure, TrialRunner, run_baselines
from dvbench.search._versions import SpaceVersion, space_changes, space_record, space_versions
from dvbench.search.space import (
    Objective,
    SearchSpace,
    list_spaces,
    load_space,
    parse_objectives_option,
)
from dvbench.search.storage import (
    STUDY_ATTR,
    load_study,
    resolve_study_reference,
    study_storage,
    trial_config,
)

__all__ = [
    "KNOB_HELP",
    "STUDY_ATTR",
    "Objective",
    "SearchLoop",
    "SearchOptions",
    "SearchSpace",
    "SearchSummary",
    "SpaceVersion",
    "TrialFailure",
    "TrialRunner",
    "check_study_name",
    "command_line",
    "fail_orphaned_trials",
    "knobs_to_config",
    "list_spaces",
    "load_space",
    "load_study",
    "make_sampler",
    "open_study",
    "parse_objectives_option",
    "resolve_study_reference",
    "run_baselines",
    "run_search",
    "space_changes",
    "space_record",
    "space_versions",
    "study_settings",
    "study_storage",
    "summarize",
    "trial_config",
]
