"""One trial, and the baselines, through the :class:`~dvbench.evaluate.Evaluator`.

A trial: sample knobs -> build the config (an impossible one is a failed trial with its
reason) -> the evaluator's costs and constraints (reported to the sampler through
``Trial.set_constraint``; over budget: not trained) -> proxy training -> objectives.
Every trial stores its config, metrics and timings as user attributes, so it can be rebuilt
and re-profiled later (``study:NAME:TRIAL`` names it everywhere a model is accepted).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence

import optuna
from optuna.trial import TrialState

from dvbench.evaluate import Evaluation, EvaluationFailure, Evaluator, finite, training_metrics
from dvbench.metrics import METRICS
from dvbench.search._ladder import Ladder, rung_of
from dvbench.search._options import SearchOptions
from dvbench.search._prefilter import PREFILTER_ATTR
from dvbench.search._study import STUDY_ATTR, WORKER_ATTR
from dvbench.search._versions import space_record, version_of
from dvbench.search.tables import BASELINE_ATTR_PREFIX, RUNG_ATTR, SPACE_VERSION


class TrialFailure(EvaluationFailure):
    """A trial that could not be evaluated; the study records it as FAIL and goes on."""


class TrialRunner:
    """Optuna's objective for one worker, remembering what its last trial ended as.

    ``last`` is ``(trial id, state)`` of the trial this worker ran last; ``finished_before``
    is the number of FAIL/PRUNED trials the loop saw before asking (see :meth:`_trials_ahead`).
    """

    def __init__(self, options: SearchOptions, evaluator: Evaluator, ladder: Ladder | None = None):
        self.options = options
        self.evaluator = evaluator
        self.ladder = ladder  # multi-fidelity: trials are rung runs (see _ladder)
        self.last: tuple[int, TrialState] | None = None
        self.finished_before = 0
        self._space_version: int | None = None

    def __call__(self, trial: optuna.Trial) -> list[float]:
        # First write of every trial: marks it as started by a live worker (see
        # fail_orphaned_trials); by now Optuna's heartbeat thread is running too.
        self.last = (trial._trial_id, TrialState.FAIL)
        worker = f"{socket.gethostname()}:{os.getpid()}"
        trial.set_user_attr(WORKER_ATTR, {"id": worker, "trial": trial.number})
        trial.set_user_attr(SPACE_VERSION, self.space_version(trial.study))
        if trial.user_attrs.get("fail_reason"):  # a retry inherits its predecessor's attrs
            trial.set_user_attr("fail_reason", None)
        total = self.options.total_trials
        promotion = self.ladder is not None and rung_of(trial)[1] > 0
        ahead = 0 if promotion else self._trials_ahead(trial, total)
        if ahead >= total:
            # Another worker started a trial at the same moment and the study is full.
            trial.set_user_attr(
                "fail_reason",
                f"not run: {ahead} earlier trials were complete or running (n_trials {total})",
            )
            self.last = (trial._trial_id, TrialState.PRUNED)
            raise optuna.TrialPruned()
        try:
            values = self._evaluate(trial)
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted (Ctrl-C / SIGINT)")
            raise
        self.last = (trial._trial_id, TrialState.COMPLETE)
        return values

    def space_version(self, study: optuna.Study) -> int:
        """The study's space version this worker's space is (read once: it cannot change)."""
        if self._space_version is None:
            record = space_record(self.options.space)
            self._space_version = version_of(study.user_attrs, record)
        return self._space_version

    def _trials_ahead(self, trial: optuna.Trial, total: int) -> int:
        """COMPLETE or RUNNING trials numbered before ``trial`` (the ones that fill the study).

        ``finished_before`` FAIL/PRUNED trials, seen before this trial was asked for, are
        numbered before it and stay finished, so at most ``number - finished_before`` trials
        are ahead; when that is under ``total`` nothing is read. Only near the end of a study,
        when another worker may have started a trial at the same moment, are the trials read.
        """
        if trial.number - self.finished_before < total:
            return trial.number - self.finished_before  # an upper bound, below the total
        live = (TrialState.COMPLETE, TrialState.RUNNING)
        trials = trial.study.get_trials(deepcopy=False, states=live)
        # multi-fidelity: only rung-0 runs are candidates; promotions fill no place
        return sum(1 for t in trials if t.number < trial.number and rung_of(t)[1] == 0)

    def _evaluate(self, trial: optuna.Trial) -> list[float]:
        space, evaluator = self.options.space, self.evaluator
        candidate, rung = trial.number, 0
        if self.ladder is not None:  # first: a retry of this trial inherits the mark
            candidate, rung = rung_of(trial)
            trial.set_user_attr(RUNG_ATTR, self.ladder.mark(candidate, rung))
        knobs = space.sample(trial)
        try:
            cfg = space.config(
                knobs, num_classes=evaluator.num_classes, img_size=evaluator.resolution
            )
        except ValueError as exc:
            return self._fail(trial, f"invalid config: {exc}", {})
        trial.set_user_attr("config", cfg.to_dict())
        if rung > 0:
            return self._promote(trial, cfg, candidate, rung)

        def record_costs(partial: Evaluation) -> None:
            for key, value in partial.violations.items():
                trial.set_constraint(key, value)  # the tables read feasibility from these
            seeded = "seed_name" in trial.user_attrs  # the official shapes always train
            if space.prefilter is not None and partial.feasible and not seeded:
                self._prefilter(trial, cfg, partial.metrics)  # may end it as PRUNED

        extra = {}
        if self.ladder is not None:
            extra = {"budget": self.ladder.fidelity.budget(0)}
            extra["checkpoint"] = self.ladder.checkpoint(candidate)
        result = evaluator.evaluate(
            cfg, seed=self.options.seed + candidate, on_costs=record_costs, **extra
        )
        if result.status == "failed":
            return self._fail(trial, result.reason, result.timings)
        if result.status == "over_budget":
            trial.set_user_attr("skipped", result.reason)
        return self._objectives(trial, result.metrics, result.timings)

    def _objectives(self, trial: optuna.Trial, metrics: dict, timings: dict) -> list[float]:
        """Record what the trial measured and return its objective values (a non-finite one
        fails the trial)."""
        metric_names = self.options.space.metrics
        values = [metrics.get(m) for m in metric_names]
        bad = [(m, v) for m, v in zip(metric_names, values) if not finite(v)]
        if bad:
            return self._fail(trial, f"objective {bad[0][0]} is {bad[0][1]}", timings)
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("timings", timings)
        return [float(v) for v in values]

    def _prefilter(self, trial: optuna.Trial, cfg, costs: dict[str, float]) -> None:
        """Score the candidate training-free and rank it on the predicted front (the score in
        place of accuracy, with the measured costs); PRUNED, untrained, unless it ranks high."""
        from dvbench.proxies import ProxySettings, score_model

        space, rule, evaluator = self.options.space, self.options.space.prefilter, self.evaluator
        scores = score_model(
            cfg.replace(img_size=evaluator.data.resolution), evaluator.data,
            ProxySettings(proxies=(rule.signal,)), seed=self.options.seed + trial.number,
            device=evaluator.device,
        )  # fmt: skip
        if scores.failures:
            self._fail(trial, f"pre-filter: {scores.failures[rule.signal]}", {})
        others = [o for o in space.objectives if METRICS[o.metric].kind != "accuracy"]
        mine = [float(scores.values[rule.signal]), *(costs[o.metric] for o in others)]
        trial.set_user_attr(PREFILTER_ATTR, {"signal": rule.signal, "values": mine})
        earlier = [
            t.user_attrs[PREFILTER_ATTR]["values"]
            for t in trial.study.get_trials(deepcopy=False)
            if PREFILTER_ATTR in t.user_attrs and t.number < trial.number
        ]
        directions = ["maximize", *(o.direction for o in others)]
        rank, scored, places = rule.rank(mine, earlier, directions)
        if rank > places:
            trial.set_user_attr("metrics", dict(costs))
            trial.set_user_attr(
                "fail_reason",
                f"pre-filter: {rule.signal} {mine[0]:.4g} places {rank} of {scored} on the "
                f"predicted front; the first {places} train ({rule.keep} of every {rule.sample})",
            )
            self.last = (trial._trial_id, TrialState.PRUNED)
            raise optuna.TrialPruned()

    def _promote(self, trial: optuna.Trial, cfg, candidate: int, rung: int) -> list[float]:
        """Continue ``candidate`` from its checkpoint to ``rung``; its costs (and constraints)
        are the ones its rung-0 run measured."""
        assert self.ladder is not None
        root = next(
            t for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if rung_of(t) == (candidate, 0)
        )  # fmt: skip
        for key, value in (root.constraints or {}).items():
            trial.set_constraint(key, value)
        timings: dict[str, float] = {}
        metrics = dict(root.user_attrs["metrics"])  # costs; training's are replaced below
        try:
            result = self.evaluator.train(
                cfg, seed=self.options.seed + candidate, timings=timings,
                budget=self.ladder.fidelity.budget(rung),
                checkpoint=self.ladder.checkpoint(candidate),
            )  # fmt: skip
        except EvaluationFailure as exc:
            return self._fail(trial, str(exc), timings)
        metrics.update(training_metrics(result))
        timings["resumed_from_step"] = result.resumed_from_step
        return self._objectives(trial, metrics, timings)

    @staticmethod
    def _fail(trial: optuna.Trial, reason: str | None, timings: dict) -> list[float]:
        trial.set_user_attr("fail_reason", reason)
        trial.set_user_attr("timings", timings)
        raise TrialFailure(reason)


def run_baselines(
    study: optuna.Study,
    evaluator: Evaluator,
    names: Sequence[str],
    overrides: dict[str, dict],
    log: Callable[[str], None],
) -> None:
    """Evaluate each baseline once per study, exactly as the trials are evaluated.

    ``overrides`` holds each baseline's constructor changes (a narrower Swin, ...). A
    baseline is recorded as a study attribute ``baseline:NAME`` with the study's space version;
    completed ones of that version are skipped when the study is resumed.
    """
    settings = study.user_attrs.get(STUDY_ATTR, {})
    seed = int(settings.get("seed", 0))
    version = int(settings.get("space_version", 1))
    for name in names:
        key = f"{BASELINE_ATTR_PREFIX}{name}"
        record = study.user_attrs.get(key)
        done = record and record.get("state") == "COMPLETE"
        if done and record.get(SPACE_VERSION, 1) == version:
            continue
        changes = dict(overrides.get(name) or {})
        result = evaluator.evaluate(name, seed=seed, overrides=changes, constrained=False)
        log(f"baseline {result.name}")
        record = {
            "name": result.name,
            "overrides": changes,
            "timings": result.timings,
            SPACE_VERSION: version,
        }
        if result.status == "failed":
            record.update(state="FAIL", fail_reason=result.reason, metrics={})
        else:
            record.update(state="COMPLETE", metrics=result.metrics)
        study.set_user_attr(key, record)
