"""Architecture search: spaces, Optuna multi-objective studies, Pareto tables.

Importing this package lets every command name a searched model as ``study:NAME:TRIAL``
(``study:NAME:TRIAL@RESULTS_DIR`` for a study outside ``results/``). The runner (and what it
imports) loads on first use of ``run_search``/``SearchOptions``, so readers of finished
studies (reports, exports) never import it.
"""

from __future__ import annotations

from typing import Any

from dvbench.models import register_spec_resolver
from dvbench.search.space import (
    KNOB_HELP,
    Objective,
    SearchSpace,
    knobs_to_config,
    list_spaces,
    load_space,
    parse_objectives_option,
)
from dvbench.search.storage import (
    DEFAULT_RESULTS_DIR,
    STUDY_ATTR,
    load_study,
    resolve_study_reference,
    study_storage,
    trial_config,
)

__all__ = [
    "DEFAULT_RESULTS_DIR",
    "KNOB_HELP",
    "STUDY_ATTR",
    "Objective",
    "SearchOptions",
    "SearchSpace",
    "SearchSummary",
    "TrialFailure",
    "knobs_to_config",
    "list_spaces",
    "load_space",
    "load_study",
    "parse_objectives_option",
    "resolve_study_reference",
    "run_search",
    "study_storage",
    "trial_config",
]

_RUNNER_NAMES = ("SearchOptions", "SearchSummary", "TrialFailure", "run_search")


def __getattr__(name: str) -> Any:
    if name in _RUNNER_NAMES:
        from dvbench.search import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


register_spec_resolver("study", resolve_study_reference)
