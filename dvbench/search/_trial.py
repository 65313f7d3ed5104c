"""One trial, and the baselines, through the :class:`~dvbench.evaluate.Evaluator`.

A trial: sample knobs -> build the config (an impossible one is a failed trial with its
reason) -> the evaluator's costs and constraints (reported to the sampler through
``Trial.set_constraint``; over budget: not trained) -> the pre-filter's score (through the
evaluator) -> proxy training -> objectives. A follow-up run of a candidate (a promotion or a
repeat, see ``_ladder``) reuses its first run's costs and only trains. What any run trains
for is :func:`~dvbench.space.rungs.training_plan`'s; its seed is the network's own
(:func:`~dvbench.evaluate.training_seed`). Every trial stores its config, metrics and timings
as user attributes (named in :mod:`~dvbench.search.record`), so it can be rebuilt and
re-profiled later (``study:NAME:TRIAL`` names it everywhere a model is accepted).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from dvbench.evaluate import (
    Evaluation,
    EvaluationFailure,
    Evaluator,
    finite,
    training_metrics,
    training_seed,
)
from dvbench.metrics import METRICS
from dvbench.search import reasons, record
from dvbench.search._ladder import Ladder
from dvbench.search._options import SearchOptions
from dvbench.search._versions import version_of
from dvbench.search.record import (
    CHECKPOINT_NOTE,
    CONFIG,
    DUPLICATE_OF,
    FAIL_REASON,
    METRICS_ATTR,
    PREFILTER,
    RUN,
    SPACE_VERSION,
    TIMINGS,
    TRAIN_SEED,
    WORKER,
    RunMark,
    run_of,
)
from dvbench.space.rungs import training_plan


class TrialFailure(EvaluationFailure):
    """A trial that could not be evaluated; the study records it as FAIL and goes on."""


class _Pruned(optuna.TrialPruned):
    """A trial ended as PRUNED with its reason recorded."""


class TrialRunner:
    """Optuna's objective for one worker.

    ``outcome`` is ``(trial number, state)`` of the trial this worker ran last, for the loop's
    failure count; ``finished_before`` is the number of FAIL/PRUNED trials the loop saw before
    asking (see :meth:`_trials_ahead`). Both are set by the loop around each call.
    """

    def __init__(self, options: SearchOptions, evaluator: Evaluator, ladder: Ladder | None = None):
        self.options = options
        self.evaluator = evaluator
        self.ladder = ladder  # follow-up runs (promotions, repeats): see _ladder
        self.outcome: tuple[int, TrialState] | None = None
        self.finished_before = 0
        self._space_version: int | None = None
        self._heartbeat = options.journal_heartbeat
        self.on_progress: Callable[[int, Any], None] | None = None  # set by the loop

    def _progress(self, trial: optuna.Trial):
        """The training loop's callback for ``trial`` (None when nobody listens)."""
        if self.on_progress is None:
            return None
        listener, number = self.on_progress, trial.number
        return lambda progress: listener(number, progress)

    def __call__(self, trial: optuna.Trial) -> list[float]:
        # First write of every trial: marks it as started by a live worker (see
        # fail_orphaned_trials); by now Optuna's heartbeat thread (RDB storages) is running.
        self.outcome = (trial.number, TrialState.FAIL)
        worker = f"{socket.gethostname()}:{os.getpid()}"
        trial.set_user_attr(WORKER, {"id": worker, "trial": trial.number})
        trial.set_user_attr(SPACE_VERSION, self.space_version(trial.study))
        if record.fail_reason(trial):  # a retry inherits its predecessor's attrs
            trial.set_user_attr(FAIL_REASON, None)
        with _JournalHeartbeat(trial, self._heartbeat):
            total = self.options.total_trials
            ahead = 0 if not run_of(trial).first else self._trials_ahead(trial, total)
            if ahead >= total:
                # Another worker started a trial at the same moment and the study is full.
                self._prune(trial, reasons.study_full_reason(ahead, total))
            try:
                values = self._evaluate(trial)
            except KeyboardInterrupt:
                trial.set_user_attr(FAIL_REASON, reasons.interrupted_reason())
                raise
            except (TrialFailure, optuna.TrialPruned, UpdateFinishedTrialError):
                raise  # recorded with their reasons already / finished by another worker
            except Exception as exc:  # anything else: the trial fails with it, the study goes on
                reason = reasons.unexpected_reason(exc)
                trial.set_user_attr(FAIL_REASON, reason)
                raise TrialFailure(reason) from exc
        self.outcome = (trial.number, TrialState.COMPLETE)
        return values

    def space_version(self, study: optuna.Study) -> int:
        """The study's space version this worker's space is (read once: it cannot change)."""
        if self._space_version is None:
            self._space_version = version_of(study.user_attrs, self.options.space_record)
        return self._space_version

    def _trials_ahead(self, trial: optuna.Trial, total: int) -> int:
        """COMPLETE or RUNNING first runs numbered before ``trial`` (the ones that fill the
        study).

        ``finished_before`` FAIL/PRUNED trials, seen before this trial was asked for, are
        numbered before it and stay finished, so at most ``number - finished_before`` trials
        are ahead; when that is under ``total`` nothing is read. Only near the end of a study,
        when another worker may have started a trial at the same moment, are the trials read.
        """
        if trial.number - self.finished_before < total:
            return trial.number - self.finished_before  # an upper bound, below the total
        live = (TrialState.COMPLETE, TrialState.RUNNING)
        trials = trial.study.get_trials(deepcopy=False, states=live)
        # follow-up runs (promotions, repeats) fill no place
        return sum(1 for t in trials if t.number < trial.number and run_of(t).first)

    def _evaluate(self, trial: optuna.Trial) -> list[float]:
        space, evaluator = self.options.space, self.evaluator
        mark = run_of(trial)
        if self.ladder is not None:  # first: a retry of this trial inherits the mark
            mark = self.ladder.mark(mark.candidate, mark.rung, mark.repeat)
            trial.set_user_attr(RUN, mark.as_attr())
        knobs = space.sample(trial, self.space_version(trial.study))
        try:
            cfg = space.config(
                knobs, num_classes=evaluator.num_classes, img_size=evaluator.resolution
            )
        except ValueError as exc:
            return self._fail(trial, reasons.invalid_config_reason(exc), {})
        trial.set_user_attr(CONFIG, cfg.to_dict())
        if mark.first:
            done = trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            earlier = measured_before(done, cfg.to_dict(), self.space_version(trial.study))
            if earlier is not None:
                return self._reuse(trial, earlier)
        plan = training_plan(space.train, space.fidelity, mark.rung, mark.repeat)
        if evaluator.trains:
            evaluator = evaluator.with_train(plan.settings)
            resolution = evaluator.data.resolution
            seed = training_seed(
                cfg.replace(img_size=resolution), self.options.seed, repeat=mark.repeat
            )
            trial.set_user_attr(TRAIN_SEED, seed)
        else:
            seed = training_seed(cfg, self.options.seed)
        checkpoint = None
        if plan.continues and self.ladder is not None:
            checkpoint = self.ladder.checkpoint(mark.candidate)
        if not mark.first:
            return self._follow_up(trial, evaluator, cfg, mark, seed, plan.budget, checkpoint)

        constrained: set[str] = set()

        def record_costs(partial: Evaluation) -> None:
            if record.PREDICTION_OUTSIDE in partial.notes:  # the device profile extrapolated
                trial.set_user_attr(
                    record.PREDICTION_OUTSIDE, partial.notes[record.PREDICTION_OUTSIDE]
                )
            for key, value in partial.violations.items():
                trial.set_constraint(key, value)  # the tables read feasibility from these
                constrained.add(key)
            seeded = record.seed_name_of(trial) is not None  # the official shapes always train
            if space.prefilter is not None and partial.feasible and not seeded:
                self._prefilter(trial, evaluator, cfg, partial)  # may end it as PRUNED

        result = evaluator.evaluate(
            cfg, seed=seed, on_costs=record_costs, budget=plan.budget, checkpoint=checkpoint,
            progress=self._progress(trial),
        )  # fmt: skip
        if result.status == "failed":
            return self._fail(trial, result.reason, result.timings)
        for key, value in result.violations.items():  # judged after training (max_test_loss)
            if key not in constrained:
                trial.set_constraint(key, value)
        if result.status == "over_budget":
            trial.set_user_attr(record.SKIPPED, result.reason)
        _keep_outcomes(trial, result.training)
        return self._objectives(trial, result.metrics, result.timings)

    def _objectives(self, trial: optuna.Trial, metrics: dict, timings: dict) -> list[float]:
        """Record what the trial measured and return its objective values (a non-finite one
        fails the trial)."""
        metric_names = self.options.space.metrics
        values = [metrics.get(m) for m in metric_names]
        bad = [(m, v) for m, v in zip(metric_names, values) if not finite(v)]
        if bad:
            return self._fail(trial, f"objective {bad[0][0]} is {bad[0][1]}", timings)
        trial.set_user_attr(METRICS_ATTR, metrics)
        trial.set_user_attr(TIMINGS, timings)
        return [float(v) for v in values]

    def _prefilter(self, trial: optuna.Trial, evaluator: Evaluator, cfg, costs: Evaluation) -> None:
        """Score the candidate training-free (through the evaluator; its seconds are the
        trial's ``prefilter_s``) and rank it on the predicted front (the score in place of
        accuracy, with the measured costs); PRUNED, untrained, unless it ranks high."""
        space, rule = self.options.space, self.options.space.prefilter
        try:
            scores = evaluator.proxy_scores(
                cfg, seed=training_seed(cfg, self.options.seed), proxies=(rule.signal,),
                timings=costs.timings, timing="prefilter_s",
            )  # fmt: skip
        except EvaluationFailure as exc:
            self._fail(trial, f"pre-filter: {exc}", costs.timings)
        others = [o for o in space.objectives if METRICS[o.metric].kind != "accuracy"]
        mine = [float(scores[rule.signal]), *(costs.metrics[o.metric] for o in others)]
        trial.set_user_attr(PREFILTER, {"signal": rule.signal, "values": mine})
        scored_before = [
            record.prefilter_values(t)
            for t in trial.study.get_trials(deepcopy=False)
            if t.number < trial.number
        ]
        earlier = [values for values in scored_before if values is not None]
        directions = ["maximize", *(o.direction for o in others)]
        place, scored, places = rule.rank(mine, earlier, directions, confidence=space.confidence)
        if place > places:
            trial.set_user_attr(METRICS_ATTR, dict(costs.metrics))
            trial.set_user_attr(TIMINGS, dict(costs.timings))
            reason = reasons.prefilter_reason(rule.signal, mine[0], place, scored, places)
            self._prune(trial, reason)

    def _follow_up(
        self, trial: optuna.Trial, evaluator: Evaluator, cfg, mark: RunMark, seed: int,
        budget, checkpoint,
    ) -> list[float]:  # fmt: skip
        """Train ``mark.candidate`` for a promotion (continuing its checkpoint) or a repeat
        (another seed, from scratch); its costs (and constraints) are its first run's."""
        first = next(
            t for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if run_of(t).candidate == mark.candidate and run_of(t).first
        )  # fmt: skip
        for key, value in (first.constraints or {}).items():
            trial.set_constraint(key, value)
        timings: dict[str, float] = {}
        metrics = record.metrics_of(first)  # costs; training's are replaced below
        try:
            result = evaluator.train(
                cfg, seed=seed, timings=timings, budget=budget, checkpoint=checkpoint,
                progress=self._progress(trial),
            )  # fmt: skip
        except EvaluationFailure as exc:
            return self._fail(trial, str(exc), timings)
        metrics.update(training_metrics(result))
        _keep_outcomes(trial, result)
        timings["resumed_from_step"] = result.resumed_from_step
        if result.note:
            trial.set_user_attr(CHECKPOINT_NOTE, result.note)
        return self._objectives(trial, metrics, timings)

    def _reuse(self, trial: optuna.Trial, earlier: optuna.trial.FrozenTrial) -> list[float]:
        """The sampler proposed a candidate ``earlier`` already measured at this fidelity:
        link it (``duplicate_of``) and return its values, training nothing. The sampler learns
        the same result again; the tables keep one row of it (the copy is not a new
        candidate); the study counts it as a trial asked for."""
        trial.set_user_attr(DUPLICATE_OF, earlier.number)
        for key, value in (earlier.constraints or {}).items():
            trial.set_constraint(key, value)
        if record.skipped_reason(earlier):
            trial.set_user_attr(record.SKIPPED, record.skipped_reason(earlier))
        return self._objectives(trial, record.metrics_of(earlier), {})

    def _prune(self, trial: optuna.Trial, reason: str) -> None:
        trial.set_user_attr(FAIL_REASON, reason)
        self.outcome = (trial.number, TrialState.PRUNED)
        raise _Pruned()

    @staticmethod
    def _fail(trial: optuna.Trial, reason: str | None, timings: dict) -> list[float]:
        reason = reason or "failed; the step that failed gave no reason"
        trial.set_user_attr(FAIL_REASON, reason)
        trial.set_user_attr(TIMINGS, timings)
        raise TrialFailure(reason)


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
        if (
            trial.state == TrialState.COMPLETE
            and json.dumps(record.config_of(trial), sort_keys=True) == wanted
            and record.space_version(trial) == version
            and run_of(trial).first
            and record.copy_of(trial) is None
            and record.metrics_of(trial)
        ):
            return trial
    return None


class _JournalHeartbeat:
    """While a trial runs on a journal storage, write its heartbeat every ``interval`` seconds
    (see ``_journal``): the trial attribute ``heartbeat`` = ``[number, unix time]``, through
    Optuna's public trial API. RDB storages have Optuna's own heartbeat instead."""

    def __init__(self, trial: optuna.Trial, interval: float | None) -> None:
        self.trial, self.interval = trial, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        while True:
            try:
                self.trial.set_user_attr(record.HEARTBEAT, [self.trial.number, time.time()])
            except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
                return  # failed as stale by another worker: the objective's next write says so
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> _JournalHeartbeat:
        if self.interval:
            self._thread = threading.Thread(target=self._beat, daemon=True, name="heartbeat")
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def run_baselines(
    study: optuna.Study,
    evaluator: Evaluator,
    names: Sequence[str],
    overrides: dict[str, dict],
    log: Callable[[str], None],
) -> None:
    """Evaluate each baseline once per study, exactly as the trials are evaluated (its seed
    keyed to its name and changes, like a candidate's to its network).

    ``overrides`` holds each baseline's constructor changes (a narrower Swin, ...). A
    baseline is recorded as a study attribute ``baseline:NAME`` with the study's space version;
    completed ones of that version are skipped when the study is resumed.
    """
    settings = record.study_settings(study) or {}
    base_seed = int(settings.get("seed", 0))
    version = int(settings.get("space_version", 1))
    for name in names:
        if record.baseline_measured(study, name, version):
            continue
        changes = dict(overrides.get(name) or {})
        seed = training_seed(name, base_seed, overrides=changes)
        log(f"baseline {name}: starting")
        result = evaluator.evaluate(name, seed=seed, overrides=changes, constrained=False)
        outcome = f"failed: {result.reason}" if result.status == "failed" else "done"
        log(f"baseline {result.name}: {outcome}")
        failed = result.status == "failed"
        entry = record.baseline_entry(
            result.name, overrides=changes, timings=result.timings, version=version, seed=seed,
            metrics=result.metrics, fail=(result.reason or "failed") if failed else None,
            outcomes=getattr(result.training, "outcomes", None),
        )  # fmt: skip
        study.set_user_attr(f"{record.BASELINE_PREFIX}{name}", entry)


def _keep_outcomes(trial: optuna.Trial, training) -> None:
    """Store the run's per-image outcomes with the trial (paired comparisons, see
    dvbench.stats); a run that did not train or evaluate has none."""
    outcomes = getattr(training, "outcomes", None)
    if outcomes is not None:
        trial.set_user_attr(record.OUTCOMES, outcomes.pack())
