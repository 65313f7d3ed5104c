"""Follow-up runs, the study side: promotions to higher rungs (multi-fidelity) and repeats with
more seeds (racing) as Optuna trials, each taken once, and checkpoints kept only while useful.

Every run of a candidate is a trial marked with its :class:`~dvbench.search.record.RunMark`
(``run`` = ``{candidate, rung, repeat}``; ``candidate`` is the number of the trial that
sampled it). A first run is an ordinary sampled trial; a follow-up is a WAITING trial enqueued
with the candidate's parameters, so Optuna hands it to exactly one worker (the WAITING ->
RUNNING change is atomic in every storage) and a worker that dies mid-run leaves a stale
trial that a live worker fails and retries once, like any trial. Deciding follow-ups happens
under a lock that every worker of the study takes (a file lock beside a journal or SQLite
file, a PostgreSQL advisory lock), after reading the study afresh: none is enqueued twice.
The rules are ``_rungs.promotions`` and ``_repeats.repeats_due``; repeats start once every
candidate has run and no promotion is left.

Checkpoints (model, optimizer, schedule position, random state) live in the study folder's
``checkpoints/`` as ``candidate_<c>.pt``; a promotion continues from it. One is deleted once
its candidate can never be promoted again (see :func:`beyond_promotion`), and all are
deleted when the study is done, so disk use stays bounded; the peak is logged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from dvbench.metrics import METRICS, accuracy_standard_error
from dvbench.search._options import SearchOptions
from dvbench.search.record import (
    RUN,
    RunMark,
    copy_of,
    is_feasible,
    metrics_of,
    run_of,
    skipped_reason,
)
from dvbench.search.storage import study_lock
from dvbench.search.tables import Criteria, Snapshot, analyse, candidates
from dvbench.space.repeats import repeats_due
from dvbench.space.rungs import Measured, beyond_promotion, promotions

CHECKPOINTS = "checkpoints"


class Ladder:
    """One worker's view of the study's follow-up runs (promotions and repeats)."""

    def __init__(self, options: SearchOptions, log: Callable[[str], None]):
        space = options.space
        self.fidelity, self.repeats = space.fidelity, space.repeats
        self.criteria = Criteria.of_space(space)
        self.options, self.log = options, log
        self.folder = options.study_dir / CHECKPOINTS
        self.peak_bytes = 0

    @property
    def top(self) -> int:
        return self.fidelity.top if self.fidelity is not None else 0

    def mark(self, candidate: int, rung: int = 0, repeat: int = 0) -> RunMark:
        """The mark of a run (with the rung's budget label and the top rung, for tables)."""
        if self.fidelity is None:
            return RunMark(candidate, rung, repeat)
        label = self.fidelity.label(rung)
        return RunMark(candidate, rung, repeat, budget=label, top=self.fidelity.top)

    def checkpoint(self, candidate: int) -> Path:
        return self.folder / f"candidate_{candidate}.pt"

    def read(self, trials: Sequence[FrozenTrial]):
        """(completed, started, live, params) of the study's first-seed runs: objective values
        (with their test-set standard errors) of every feasible completed run, every
        (candidate, rung) with a run, candidates with a run WAITING or RUNNING, and each
        candidate's parameters."""
        completed: dict[int, dict[int, Measured]] = {}
        started: set[tuple[int, int]] = set()
        live: set[int] = set()
        params: dict[int, dict] = {}
        metrics = self.criteria.metrics
        for trial in trials:
            mark = run_of(trial)
            if trial.state in (TrialState.WAITING, TrialState.RUNNING):
                live.add(mark.candidate)
            if mark.repeat:
                continue
            started.add((mark.candidate, mark.rung))
            if trial.state != TrialState.COMPLETE or skipped_reason(trial):
                continue
            if copy_of(trial) is not None:  # a copy: nothing to promote
                continue
            if is_feasible(trial) is False:
                continue
            measured = metrics_of(trial)
            images = measured.get("test_images")
            errors = [
                # the binomial SE of a proportion (top1, top5); never of a loss
                accuracy_standard_error(v, images) if METRICS[m].unit == "%" else 0.0
                for m, v in zip(metrics, trial.values)
            ]
            completed.setdefault(mark.candidate, {})[mark.rung] = Measured(trial.values, errors)
            if mark.rung == 0:
                params[mark.candidate] = trial.params
        return completed, started, live, params

    def step(self, study: optuna.Study, snapshot: Snapshot | None = None) -> int:
        """Enqueue every follow-up run due now and delete checkpoints no longer needed, under
        the study's lock (all of them once the study is done: every candidate sampled, nothing
        waiting or running, nothing due). ``snapshot``: the loop's latest analysis of the study,
        used when it still describes the trials read here. Returns the number of runs
        enqueued."""
        directions = list(self.criteria.directions)
        rule = self.criteria.rule
        total = self.options.total_trials
        with study_lock(self.options.storage_url, self.options.name):
            trials = study.get_trials(deepcopy=False)
            completed, started, live, params = self.read(trials)
            due: list[tuple[int, int, int]] = []
            if self.fidelity is not None:
                rungs = promotions(completed, started, directions, self.fidelity, rule=rule)
                due += [(c, k, 0) for c, k in rungs]
            sampled = sum(t.state == TrialState.COMPLETE and run_of(t).first for t in trials)
            if self.repeats is not None and not due and not live and sampled >= total:
                due += self._repeats_due(study, trials, live, snapshot)
            for candidate, rung, repeat in due:
                mark = self.mark(candidate, rung, repeat)
                study.enqueue_trial(dict(params[candidate]), user_attrs={RUN: mark.as_attr()})
                what = f"rung {mark.budget}" if repeat == 0 else f"seed {repeat + 1}"
                self.log(f"candidate {candidate}: {what} enqueued")
            live |= {c for c, _, _ in due}
            done: set[int] = set()
            if self.fidelity is not None:
                done = beyond_promotion(
                    completed, started | {(c, k) for c, k, _ in due}, directions,
                    self.fidelity, total, rule=rule,
                )  # fmt: skip
            if not due and not live and sampled >= total:
                done = {c for c, _ in started}
            self._measure_and_clean(done - live)
        return len(due)

    def _repeats_due(
        self,
        study: optuna.Study,
        trials: Sequence[FrozenTrial],
        live: set[int],
        snapshot: Snapshot | None,
    ) -> list[tuple[int, int, int]]:
        if snapshot is None or not snapshot.describes(trials):
            snapshot = analyse(study, self.criteria, trials)
        pool = candidates(snapshot.frame, self.criteria.metrics)
        seeds_at_top: dict[int, set[int]] = {}
        for trial in trials:  # a retried run keeps its mark: count seeds, not trials
            mark = run_of(trial)
            if mark.rung == self.top:
                seeds_at_top.setdefault(mark.candidate, set()).add(mark.repeat)
        runs_at_top = {c: max(seeds) + 1 for c, seeds in seeds_at_top.items()}
        due = repeats_due(
            pool, self.criteria.metrics, self.criteria.directions, self.criteria.noise(pool),
            confidence=self.criteria.confidence, repeats=self.repeats,
            runs_at_top=runs_at_top, live=live, chance=pool["p_front"].to_numpy(float),
        )  # fmt: skip
        return [(candidate, self.top, repeat) for candidate, repeat in due]

    def _measure_and_clean(self, removable: set[int]) -> None:
        if not self.folder.is_dir():
            return
        files = list(self.folder.glob("candidate_*.pt"))
        self.peak_bytes = max(self.peak_bytes, sum(f.stat().st_size for f in files if f.exists()))
        for candidate in removable:
            self.checkpoint(candidate).unlink(missing_ok=True)
