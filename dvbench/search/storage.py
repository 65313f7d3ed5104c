"""Finding studies and the configs their trials recorded (no Optuna study is run here).

Readers (reports, exports, ``study:NAME:TRIAL`` model references) use this module; they never
need the runner.
"""

from __future__ import annotations

import os
from pathlib import Path

import optuna

from dvbench.errors import UsageError
from dvbench.models import DualViTConfig

STUDY_ATTR = "dvbench"  # study user attribute holding the study's settings
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
    if storage:
        url, name = storage, str(name_or_path)
    else:
        url, name = study_storage(name_or_path, results_dir)
    try:
        return optuna.load_study(study_name=name, storage=url)
    except KeyError:
        raise UsageError(f"storage {url} has no study named {name!r}") from None


def trial_config(study: optuna.Study, number: int) -> DualViTConfig:
    """The config a trial recorded (for ``study:NAME:TRIAL`` references and exports)."""
    trials = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not trials:
        raise UsageError(f"study {study.study_name!r} has no trial {number}")
    config = trials[0].user_attrs.get("config")
    if config is None:
        reason = trials[0].user_attrs.get("fail_reason", "no config recorded")
        raise UsageError(f"trial {number} of {study.study_name!r} has no config ({reason})")
    return DualViTConfig.from_dict(config).replace(name=f"{study.study_name}_trial{number}")


def resolve_study_reference(reference: str) -> DualViTConfig:
    """``study:NAME:TRIAL[@RESULTS_DIR]`` -> the config that trial recorded."""
    body, _, results_dir = reference.partition("@")
    parts = body.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise UsageError(f"{reference!r}: expected study:NAME:TRIAL, e.g. study:small:3")
    study = load_study(parts[1], Path(results_dir) if results_dir else None)
    return trial_config(study, int(parts[2]))
