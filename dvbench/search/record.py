"""What a study stores about a trial: the one owner of its names, its marks, its row, its config.

Optuna keeps a trial as a :class:`~optuna.trial.FrozenTrial`; dvbench adds user attributes to
it. This module is the only place that names them (every other module reads and writes them
through the constants and functions here), says what each holds, turns a trial into the row
it becomes in ``trials.csv``, and gives the one rule for "the config a trial recorded" (used
by ``export`` and by ``study:NAME:TRIAL`` references).

Trial user attributes:

========================  ==================================================================
``config``                the :class:`~dvbench.models.DualViTConfig` fields of the network
``metrics``               what was measured (costs, accuracy, ``test_images``), by metric name
``timings``               seconds each step took (``count_s``, ``train_s``, ``prefilter_s``...)
``fail_reason``           why it failed or was pruned (see the ``*_reason`` functions)
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
                          its result (see :func:`measured_before`)
========================  ==================================================================

Study user attributes: ``dvbench`` (the study's settings), ``baseline:NAME`` (a baseline's
record), ``space_version:N`` (a space version), ``seeds_enqueued``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from dvbench.errors import UsageError
from dvbench.metrics import METRICS
from dvbench.models import DualViTConfig
from dvbench.search._knobs import knob_of
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
    "is_feasible",
    "measured_before",
    "outcomes_of",
    "recorded_config",
    "run_of",
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
PREDICTION_OUTSIDE = "latency_pred_outside"  # where a predicted latency extrapolates
OUTCOMES = "outcomes"  # per-image outcomes of the run (packed ImageOutcomes)
DUPLICATE_OF = "duplicate_of"  # the trial whose result this one copies (trained nothing)
_LEGACY_RUN = "rung"  # multi-fidelity studies before repeats: {"candidate", "rung", ...}
_LEGACY_FEASIBLE = "feasible"  # studies before constraints were Optuna's

#: Metric columns of the tables: every metric of :mod:`dvbench.metrics`, in its order.
METRIC_COLUMNS = tuple(name for name, m in METRICS.items() if m.kind != "proxy")
#: Proxy metric columns appear only in studies that measure them.
PROXY_COLUMNS = tuple(name for name, m in METRICS.items() if m.kind == "proxy")
TIMING_COLUMNS = ("count_s", "prefilter_s", "train_s", "profile_s", "duration_s")


# ------------------------------------------------------------------------------ fail reasons
def invalid_config_reason(error: Exception) -> str:
    return f"invalid config: {error}"


def unexpected_reason(error: BaseException) -> str:
    """An error no step of the trial expected (a bug, a library's failure): its type and its
    first line, so the trial says why it failed."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else '(no message)'}"[:500]


def interrupted_reason() -> str:
    return "interrupted (Ctrl-C / SIGINT)"


def study_full_reason(ahead: int, total: int) -> str:
    return f"not run: {ahead} earlier trials were complete or running (n_trials {total})"


def prefilter_reason(signal: str, score: float, place: int, scored: int, places: int) -> str:
    return (
        f"pre-filter: {signal} {score:.4g} places {place} of {scored} on the predicted front; "
        f"the first {places} train"
    )


def stale_reason(worker: str | None, retry: int | None) -> str:
    """A FAIL without a reason of its own: its worker died (another worker failed it)."""
    who = f"worker {worker}" if worker else "its worker"
    reason = f"{who} stopped heartbeating (died or hung)"
    if worker is None:
        reason = "worker died before the trial started"
    return f"{reason}; retried as trial {retry}" if retry is not None else reason


# ------------------------------------------------------------------------------------ marks
@dataclass(frozen=True)
class RunMark:
    """Which run of which candidate a trial is.

    ``candidate`` is the number of the trial that sampled the network; ``rung`` the budget
    step it trained to (multi-fidelity; 0 otherwise); ``repeat`` which training seed it is
    (0: the first; k: the k-th repeat, see ``_repeats``). ``budget`` labels the rung (``3ep``)
    and ``top`` is the top rung's index, for tables.
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


def measured_before(
    trials: list[FrozenTrial], config: Mapping[str, Any], version: int | None
) -> FrozenTrial | None:
    """The earliest completed first run (not itself a copy) among ``trials`` that measured
    ``config`` (a :class:`~dvbench.models.DualViTConfig` dict) under space ``version``: the
    same network at the same fidelity, whose result a new proposal of it reuses instead of
    training again. None when nothing has. Repeats and promotions are follow-up runs, never
    matched."""
    wanted = json.dumps(config, sort_keys=True)  # as stored: tuples become lists
    for trial in sorted(trials, key=lambda t: t.number):
        attrs = trial.user_attrs
        if (
            trial.state == TrialState.COMPLETE
            and CONFIG in attrs
            and json.dumps(attrs[CONFIG], sort_keys=True) == wanted
            and space_version(trial) == version
            and run_of(trial).first
            and attrs.get(DUPLICATE_OF) is None
            and METRICS_ATTR in attrs
        ):
            return trial
    return None


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
        "fail_reason": attrs.get(FAIL_REASON),
        "retried_from": attrs.get("retried_from", trial.system_attrs.get("failed_trial")),
        "worker": started_by(trial),
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
            "fail_reason": record.get(FAIL_REASON),
            "retried_from": None,
            "worker": record.get(WORKER),
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


# ------------------------------------------------------------------------- the config rule
def recorded_config(study: optuna.Study, number: int) -> DualViTConfig:
    """The network trial ``number`` recorded, named ``<study>_trial<N>``.

    The one rule for ``export`` and ``study:NAME:TRIAL``: any trial that recorded a config
    (every trial whose knobs made a valid network, whatever happened to it after); a trial
    without one is a :class:`UsageError` saying why.
    """
    trials = study.get_trials(deepcopy=False)
    found = [t for t in trials if t.number == number]
    if not found:
        raise UsageError(
            f"study {study.study_name!r} has no trial {number} (trials 0..{len(trials) - 1})"
        )
    trial = found[0]
    config = trial.user_attrs.get(CONFIG)
    if not isinstance(config, Mapping):
        reason = trial.user_attrs.get(FAIL_REASON) or f"it is {trial.state.name}"
        raise UsageError(f"trial {number} of {study.study_name!r} recorded no config ({reason})")
    try:
        cfg = DualViTConfig.from_dict(dict(config))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"trial {number} of {study.study_name!r}: bad config: {exc}") from None
    return cfg.replace(name=f"{study.study_name}_trial{number}")
