"""What a study stores about a trial: the one owner of its names, its shapes, its marks, its row.

Optuna keeps a trial as a :class:`~optuna.trial.FrozenTrial`; dvbench adds user attributes to
it. This module is the only place that names them (every other module reads and writes them
through the constants and functions here), says what each holds, turns a trial into the row
it becomes in ``trials.csv`` (every column named here), and reads each attribute back in its
shape (``metrics_of``, ``copy_of``, ``study_settings``...): no other module indexes
``user_attrs``.

Trial user attributes:

========================  ==================================================================
``config``                the :class:`~dvbench.models.DualViTConfig` fields of the network
``metrics``               what was measured (costs, accuracy, ``test_images``), by metric name
``timings``               seconds each step took (``count_s``, ``train_s``, ``prefilter_s``...)
``fail_reason``           why it failed or was pruned (worded by :mod:`~dvbench.search.reasons`)
``skipped``               why an over-budget candidate was not trained
``seed_name``             the name of a seed trial (an official shape, always trained)
``worker``                ``{"id": host:pid, "trial": number}``: who ran it (see started_by)
``space_version``         the space version it ran under
``run``                   its :class:`RunMark`: candidate, rung, repeat (legacy name: ``rung``)
``train_seed``            the training seed it used (see ``dvbench.evaluate.training_seed``)
``prefilter``             ``{"signal": name, "values": [score, costs...]}`` of the pre-filter
``heartbeat``             ``[trial number, unix time]``: a journal worker's last sign of life
``latency_pred_outside``  the features outside the device profile's measured range (its
                          ``latency_pred_ms`` is an extrapolation)
``outcomes``              every test image's outcome of its training run, packed
                          (:class:`~dvbench.stats.ImageOutcomes`): paired comparisons
``duplicate_of``          the trial that already measured this candidate (same config, same
                          space version, a first run): this one trained nothing and copies
                          its result (see ``_trial.measured_before``)
========================  ==================================================================

Study user attributes: ``dvbench`` (the study's settings), ``baseline:NAME`` (a baseline's
record), ``space_version:N`` (a space version), ``seeds_enqueued``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.storages import RetryFailedTrialCallback
from optuna.trial import FrozenTrial, TrialState

from dvbench.metrics import METRICS, PREDICTION_OUTSIDE
from dvbench.space.knobs import knob_of
from dvbench.stats.outcomes import ImageOutcomes

__all__ = [
    "BASELINE_PREFIX",
    "CHECKPOINT_NOTE",
    "CONFIG",
    "DUPLICATE_OF",
    "FAIL_REASON",
    "HEARTBEAT",
    "METRIC_COLUMNS",
    "METRICS_ATTR",
    "OUTCOMES",
    "PREDICTION_OUTSIDE",
    "PREFILTER",
    "PROXY_COLUMNS",
    "RUN",
    "SEEDS_ENQUEUED",
    "SEED_NAME",
    "SKIPPED",
    "SPACE_VERSION",
    "STUDY_ATTR",
    "TIMINGS",
    "TIMING_COLUMNS",
    "TRAIN_SEED",
    "VERSION_PREFIX",
    "WORKER",
    "RunMark",
    "baseline_rows",
    "fail_reason",
    "RETRIED_FROM",
    "baseline_entry",
    "baseline_measured",
    "baseline_names",
    "checkpoint_note_of",
    "config_of",
    "copy_of",
    "heartbeat_of",
    "is_feasible",
    "metrics_of",
    "outcomes_of",
    "prefilter_values",
    "retried_from",
    "run_of",
    "seed_name_of",
    "seeds_enqueued",
    "skipped_reason",
    "study_entry",
    "study_settings",
    "timings_of",
    "train_seed_of",
    "started_by",
    "trial_row",
]

# --------------------------------------------------------------------------- study attributes
STUDY_ATTR = "dvbench"  # the study's settings (how it was run)
BASELINE_PREFIX = "baseline:"  # baseline:NAME -> that baseline's record
VERSION_PREFIX = "space_version:"  # space_version:N -> a space version (see _versions)
SEEDS_ENQUEUED = "seeds_enqueued"  # the seed trials' names, once enqueued

# --------------------------------------------------------------------------- trial attributes
CONFIG = "config"
METRICS_ATTR = "metrics"
TIMINGS = "timings"
FAIL_REASON = "fail_reason"
SKIPPED = "skipped"
SEED_NAME = "seed_name"
WORKER = "worker"
SPACE_VERSION = "space_version"
RUN = "run"
TRAIN_SEED = "train_seed"
PREFILTER = "prefilter"
HEARTBEAT = "heartbeat"
CHECKPOINT_NOTE = "checkpoint_note"  # a checkpoint set aside (why); the run trained afresh
# PREDICTION_OUTSIDE (imported): where a predicted latency extrapolates (dvbench.metrics)
OUTCOMES = "outcomes"  # per-image outcomes of the run (packed ImageOutcomes)
DUPLICATE_OF = "duplicate_of"  # the trial whose result this one copies (trained nothing)
_LEGACY_RETRIED_FROM = "retried_from"  # studies that recorded their retries themselves
_LEGACY_RUN = "rung"  # multi-fidelity studies before repeats: {"candidate", "rung", ...}
_LEGACY_FEASIBLE = "feasible"  # studies before constraints were Optuna's

#: Metric columns of the tables: every metric of :mod:`dvbench.metrics`, in its order.
METRIC_COLUMNS = tuple(name for name, m in METRICS.items() if m.kind != "proxy")
#: Proxy metric columns appear only in studies that measure them.
PROXY_COLUMNS = tuple(name for name, m in METRICS.items() if m.kind == "proxy")
TIMING_COLUMNS = ("count_s", "prefilter_s", "train_s", "profile_s", "duration_s")
#: Row columns besides the attributes': the failed trial a retry repeats.
RETRIED_FROM = "retried_from"


# ------------------------------------------------------------------------------------ marks
@dataclass(frozen=True)
class RunMark:
    """Which run of which candidate a trial is.

    ``candidate`` is the number of the trial that sampled the network; ``rung`` the budget
    step it trained to (multi-fidelity; 0 otherwise); ``repeat`` which training seed it is
    (0: the first; k: the k-th repeat, see :mod:`dvbench.space.repeats`). ``budget`` labels
    the rung (``3ep``) and ``top`` is the top rung's index, for tables.
    """

    candidate: int
    rung: int = 0
    repeat: int = 0
    budget: str | None = None
    top: int | None = None

    @property
    def first(self) -> bool:
        """The run that sampled the candidate (rung 0, first seed): it fills a place."""
        return self.rung == 0 and self.repeat == 0

    def as_attr(self) -> dict[str, Any]:
        out = {"candidate": self.candidate, "rung": self.rung, "repeat": self.repeat}
        if self.budget is not None:
            out.update(budget=self.budget, top=self.top)
        return out


def run_of(trial: FrozenTrial | optuna.Trial) -> RunMark:
    """A trial's mark; a trial not yet marked is its own candidate's first run."""
    attrs = trial.user_attrs
    record = attrs.get(RUN) or attrs.get(_LEGACY_RUN)
    if not record:
        return RunMark(trial.number)
    return RunMark(
        candidate=int(record["candidate"]),
        rung=int(record.get("rung", 0)),
        repeat=int(record.get("repeat", 0)),
        budget=record.get("budget"),
        top=record.get("top"),
    )


def has_runs(trials: list[FrozenTrial]) -> bool:
    """Whether any trial is a follow-up run (a promotion or a repeat) of a candidate."""
    return any(not run_of(t).first for t in trials)


# ------------------------------------------------------------------------------ the readings
def outcomes_of(trial_or_record: FrozenTrial | Mapping[str, Any]) -> ImageOutcomes | None:
    """The per-image outcomes a trial (or a baseline's record) stored; None when it has none
    (a study from before they were kept, a run that failed) or they do not unpack."""
    attrs = trial_or_record
    if isinstance(trial_or_record, FrozenTrial):
        attrs = trial_or_record.user_attrs
    packed = attrs.get(OUTCOMES)
    if not isinstance(packed, Mapping):
        return None
    try:
        return ImageOutcomes.unpack(packed)
    except ValueError:
        return None


def fail_reason(trial: FrozenTrial) -> str | None:
    """Why the trial failed or was pruned (None when it recorded no reason)."""
    return trial.user_attrs.get(FAIL_REASON)


def config_of(trial: FrozenTrial) -> dict[str, Any] | None:
    """The :class:`~dvbench.models.DualViTConfig` fields the trial recorded (None: none)."""
    config = trial.user_attrs.get(CONFIG)
    return dict(config) if isinstance(config, Mapping) else None


def metrics_of(trial: FrozenTrial) -> dict[str, Any]:
    """What the trial measured, by metric name ({} before it measured anything)."""
    return dict(trial.user_attrs.get(METRICS_ATTR) or {})


def timings_of(trial: FrozenTrial) -> dict[str, float]:
    """Seconds each step of the trial took, by step (``train_s``...)."""
    return dict(trial.user_attrs.get(TIMINGS) or {})


def skipped_reason(trial: FrozenTrial) -> str | None:
    """Why an over-budget candidate was not trained (None: it was not skipped)."""
    return trial.user_attrs.get(SKIPPED)


def copy_of(trial: FrozenTrial) -> int | None:
    """The trial whose result this one copied (``duplicate_of``; None: measured itself)."""
    return trial.user_attrs.get(DUPLICATE_OF)


def prefilter_values(trial: FrozenTrial) -> list[float] | None:
    """The pre-filter's ``[score, costs...]`` of the trial (None: not scored)."""
    entry = trial.user_attrs.get(PREFILTER)
    return list(entry["values"]) if entry else None


def train_seed_of(trial: FrozenTrial) -> int | None:
    return trial.user_attrs.get(TRAIN_SEED)


def checkpoint_note_of(trial: FrozenTrial) -> str | None:
    return trial.user_attrs.get(CHECKPOINT_NOTE)


def seed_name_of(trial: FrozenTrial) -> str | None:
    """The seed trial's name (an official shape), None for a sampled candidate."""
    return trial.user_attrs.get(SEED_NAME)


def heartbeat_of(trial: FrozenTrial) -> float | None:
    """The unix time of the trial's last journal heartbeat (None: none of its own; a retry
    inherits its predecessor's, which names another trial number)."""
    beat = trial.user_attrs.get(HEARTBEAT)
    return float(beat[1]) if beat and beat[0] == trial.number else None


def retried_from(trial: FrozenTrial) -> int | None:
    """The failed trial this one retries (Optuna's retry callbacks), else None."""
    legacy = trial.user_attrs.get(_LEGACY_RETRIED_FROM)
    if legacy is not None:
        return legacy
    with warnings.catch_warnings():  # public, but marked experimental: it warns on every call
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return RetryFailedTrialCallback.retried_trial_number(trial)


def study_settings(study: optuna.Study) -> dict[str, Any] | None:
    """The study's dvbench settings (how it was run); None for a study dvbench did not make,
    or before its creator wrote them."""
    settings = study.user_attrs.get(STUDY_ATTR)
    return dict(settings) if isinstance(settings, Mapping) else None


def seeds_enqueued(study: optuna.Study) -> bool:
    return SEEDS_ENQUEUED in study.user_attrs


def baseline_names(study: optuna.Study) -> list[str]:
    """The baselines the study recorded (``baseline:NAME``), sorted."""
    return sorted(
        k[len(BASELINE_PREFIX) :] for k in study.user_attrs if k.startswith(BASELINE_PREFIX)
    )


def baseline_measured(study: optuna.Study, name: str, version: int) -> bool:
    """Whether baseline ``name`` completed under space ``version`` (resuming skips it)."""
    entry = study.user_attrs.get(f"{BASELINE_PREFIX}{name}") or {}
    return entry.get("state") == "COMPLETE" and entry.get(SPACE_VERSION, 1) == version


def study_entry(study: optuna.Study, key: str) -> Any:
    """A study attribute under one of this module's prefixes (``space_version:N``,
    ``baseline:NAME``), None when absent."""
    if not key.startswith((VERSION_PREFIX, BASELINE_PREFIX)):
        raise KeyError(f"{key!r}: not a study attribute dvbench writes")
    return study.user_attrs.get(key)


def baseline_entry(
    name: str,
    *,
    overrides: Mapping[str, Any],
    timings: Mapping[str, float],
    version: int,
    seed: int,
    metrics: Mapping[str, Any] | None,
    fail: str | None = None,
    outcomes: ImageOutcomes | None = None,
) -> dict[str, Any]:
    """What a study stores of a baseline (``baseline:NAME``), read back by
    :func:`baseline_rows`: failed with its reason when ``fail`` is given."""
    entry: dict[str, Any] = {
        "name": name, "overrides": dict(overrides), TIMINGS: dict(timings),
        SPACE_VERSION: version, TRAIN_SEED: seed, "state": "FAIL" if fail else "COMPLETE",
        METRICS_ATTR: {} if fail else dict(metrics or {}),
    }  # fmt: skip
    if fail:
        entry[FAIL_REASON] = fail
    if outcomes is not None:
        entry[OUTCOMES] = outcomes.pack()
    return entry


def started_by(trial: FrozenTrial) -> str | None:
    """host:pid of the worker that started this trial, or None if none did (yet).

    A retried trial inherits its predecessor's attributes, so the record names its trial.
    """
    record = trial.user_attrs.get(WORKER)
    if isinstance(record, dict):
        return record.get("id") if record.get("trial") == trial.number else None
    return record  # studies from before several workers: a plain host:pid


def is_feasible(trial: FrozenTrial) -> bool | None:
    """Within the space's constraints (as reported to the sampler); None if never measured."""
    if trial.constraints:
        return all(value <= 0 for value in trial.constraints.values())
    if _LEGACY_FEASIBLE in trial.user_attrs:
        return trial.user_attrs[_LEGACY_FEASIBLE]
    return True if METRICS_ATTR in trial.user_attrs else None  # a space without constraints


def space_version(trial: FrozenTrial) -> int | None:
    """The space version the trial ran under; trials of studies made before versions ran under
    version 1; a trial still waiting to start has none."""
    version = trial.user_attrs.get(SPACE_VERSION)
    if version is None and trial.state != TrialState.WAITING:
        return 1
    return version


def trial_row(trial: FrozenTrial) -> dict[str, Any]:
    """The row a trial becomes in ``trials.csv`` (before follow-up runs are folded in)."""
    attrs = trial.user_attrs
    mark = run_of(trial)
    duration = trial.duration.total_seconds() if trial.duration else None
    row: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state.name,
        "baseline": False,
        "name": attrs.get(SEED_NAME) or f"trial_{trial.number}",
        "feasible": is_feasible(trial),
        FAIL_REASON: attrs.get(FAIL_REASON),
        RETRIED_FROM: retried_from(trial),
        WORKER: started_by(trial),
        SPACE_VERSION: space_version(trial),
        "candidate": mark.candidate,
        "rung": mark.rung,
        "repeat": mark.repeat,
        "budget": mark.budget,
        TRAIN_SEED: attrs.get(TRAIN_SEED),
        DUPLICATE_OF: attrs.get(DUPLICATE_OF),
    }
    row.update({f"knob.{knob_of(k)}": v for k, v in trial.params.items()})
    metrics = attrs.get(METRICS_ATTR, {})
    for column in METRIC_COLUMNS:
        row[column] = metrics.get(column)
    row["test_images"] = metrics.get("test_images")
    row.update({column: metrics[column] for column in PROXY_COLUMNS if column in metrics})
    if PREFILTER in attrs:  # the pre-filter's training-free score (see _prefilter)
        row["prefilter_score"] = attrs[PREFILTER]["values"][0]
    if PREDICTION_OUTSIDE in attrs:  # latency_pred_ms extrapolated (see dvbench.latency)
        row[PREDICTION_OUTSIDE] = attrs[PREDICTION_OUTSIDE]
    timings = attrs.get(TIMINGS, {})
    for column in TIMING_COLUMNS[:-1]:
        row[column] = timings.get(column)
    row["duration_s"] = duration
    row[CONFIG] = json.dumps(attrs[CONFIG], sort_keys=True) if CONFIG in attrs else None
    return row


def baseline_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One row per baseline recorded in the study (``baseline:NAME`` attributes)."""
    rows = []
    for key, record in sorted(study.user_attrs.items()):
        if not key.startswith(BASELINE_PREFIX):
            continue
        metrics = record.get(METRICS_ATTR, {})
        row = {
            "number": None,
            "state": record.get("state", "COMPLETE"),
            "baseline": True,
            "name": record.get("name", key[len(BASELINE_PREFIX) :]),
            "feasible": True,
            FAIL_REASON: record.get(FAIL_REASON),
            RETRIED_FROM: None,
            WORKER: record.get(WORKER),
            SPACE_VERSION: record.get(SPACE_VERSION, 1),
            TRAIN_SEED: record.get(TRAIN_SEED),
        }
        row.update({c: metrics.get(c) for c in METRIC_COLUMNS})
        row["test_images"] = metrics.get("test_images")
        row.update({c: record.get(TIMINGS, {}).get(c) for c in TIMING_COLUMNS})
        row[CONFIG] = json.dumps(record.get("overrides") or {}, sort_keys=True)
        row[OUTCOMES] = outcomes_of(record)  # paired comparisons (the tables drop it)
        rows.append(row)
    return rows
