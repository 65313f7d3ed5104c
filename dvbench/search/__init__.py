"""Architecture search: spaces, Optuna multi-objective studies, Pareto tables.

Importing this package lets every command name a searched model as ``study:NAME:TRIAL``
(``study:NAME:TRIAL@RESULTS_DIR`` for a study outside ``results/``).
"""

from __future__ import annotations

import os
from pathlib import Path

from dvbench.errors import UsageError
from dvbench.models import DualViTConfig, register_spec_resolver
from dvbench.search.runner import SearchOptions, SearchSummary, TrialFailure, run_search
from dvbench.search.space import (
    KNOB_HELP,
    Objective,
    SearchSpace,
    knobs_to_config,
    list_spaces,
    load_space,
    parse_objectives_option,
)

__all__ = [
    "KNOB_HELP",
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
]

DEFAULT_RESULTS_DIR = Path(os.environ.get("DVBENCH_RESULTS_DIR", "results"))


def study_storage(name_or_path: str | Path, results_dir: Path | None = None) -> tuple[str, str]:
    """(storage URL, study name) for a study name under ``results_dir`` or a study folder."""
    path = Path(name_or_path)
    folder = (
        path
        if path.is_dir() and (path / "study.db").exists()
        else (Path(results_dir or DEFAULT_RESULTS_DIR) / str(name_or_path))
    )
    db = folder / "study.db"
    if not db.exists():
        raise UsageError(f"no study at {folder} (expected {db}); run `dvbench search` first")
    return f"sqlite:///{db.resolve()}", folder.name


def load_study(
    name_or_path: str | Path, results_dir: Path | None = None, *, storage: str | None = None
):
    import optuna

    if storage:
        url, name = storage, str(name_or_path)
    else:
        url, name = study_storage(name_or_path, results_dir)
    try:
        return optuna.load_study(study_name=name, storage=url)
    except KeyError:
        raise UsageError(f"storage {url} has no study named {name!r}") from None


def resolve_study_reference(reference: str) -> DualViTConfig:
    """``study:NAME:TRIAL[@RESULTS_DIR]`` -> the config that trial recorded."""
    from dvbench.search.runner import trial_config

    body, _, results_dir = reference.partition("@")
    parts = body.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise UsageError(f"{reference!r}: expected study:NAME:TRIAL, e.g. study:small:3")
    study = load_study(parts[1], Path(results_dir) if results_dir else None)
    return trial_config(study, int(parts[2]))


register_spec_resolver("study", resolve_study_reference)
