"""The search loop: one worker asks for trials until the study holds ``n_trials`` complete.

Any number of workers (this loop in several processes or machines, or ``--workers``) share
one study through its storage. The stop is exact: a worker starts a trial only while
COMPLETE + RUNNING trials are fewer than ``n_trials``, waits while the rest are running
elsewhere (one may still fail and need a retry), and a trial that two workers started at the
same moment beyond the total is not run (PRUNED, with its reason). A worker that dies
mid-trial leaves a RUNNING trial with a stale heartbeat; a live worker fails it and runs it
once more (``retried_from`` in the tables). After every trial the study is analysed once
(:func:`~dvbench.search.tables.analyse`) and that one :class:`~dvbench.search.tables.Snapshot`
is written as the tables, handed to the ladder and to the :class:`SearchObserver` (a display,
a test) the run was given.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from dvbench.evaluate import Evaluator
from dvbench.search._hypervolume import hypervolume_summary
from dvbench.search._ladder import Ladder
from dvbench.search._options import SearchOptions, SearchSummary
from dvbench.search._study import (
    count_states,
    fail_orphaned_trials,
    join_study,
    reap_stale_trials,
)
from dvbench.search._trial import TrialFailure, TrialRunner, run_baselines
from dvbench.search.record import (
    fail_reason,
    has_runs,
    run_of,
)
from dvbench.search.storage import RDB_SCHEMES, display_url, storage_scheme, study_lock
from dvbench.search.tables import Criteria, Snapshot, analyse, dominance, export_tables
from dvbench.space.definition import hypervolume_reference

MAX_CONSECUTIVE_FAILURES = 25

Log = Callable[[str], None]


class SearchObserver:
    """What a run tells whoever watches it (a terminal display, a test): subclass and
    override what you need; the defaults ignore it all."""

    def log(self, message: str) -> None:
        """A line of news (a baseline started, a follow-up run enqueued...)."""

    def on_trial(self, snapshot: Snapshot, trial: optuna.trial.FrozenTrial) -> None:
        """A trial this process ran has finished; ``snapshot``: the study analysed after it."""

    def on_progress(self, number: int, progress: Any) -> None:
        """Trial ``number`` trains in this process and got this far (the training loop's
        progress: ``fraction``, ``epoch``...)."""


class SearchLoop:
    """The state of one worker's loop: its study, counters, and when it should stop."""

    def __init__(
        self, options: SearchOptions, evaluator: Evaluator, study: optuna.Study, log: Log
    ) -> None:
        self.options, self.evaluator, self.study, self.log = options, evaluator, study, log
        self.criteria = Criteria.of_space(options.space)
        self.snapshot: Snapshot | None = None  # the study analysed after the last trial
        space = options.space
        follow_ups = space.fidelity is not None or space.repeats is not None
        self.ladder = Ladder(options, log) if follow_ups else None
        self.runner = TrialRunner(options, evaluator, self.ladder)
        self.files: dict[str, Path] = {}
        self.new_trials = 0
        self.consecutive_failures = 0
        self.stopped_reason: str | None = None
        self.overhead = {"export_s": 0.0, "wait_s": 0.0}
        self.rdb = storage_scheme(options.storage_url) in RDB_SCHEMES
        self._waiting_since: float | None = None
        self._follow_ups_running = 0  # promotions and repeats RUNNING, as of _counts

    def export(self) -> None:
        """Analyse the study as its storage holds it now (:attr:`snapshot`) and rewrite its
        tables from that analysis."""
        start = time.perf_counter()
        # one writer at a time: the last to write read the study after every other
        with study_lock(self.options.storage_url, self.options.name):
            self.snapshot = analyse(self.study, self.criteria)
            folder = self.options.study_dir
            self.files.update(export_tables(self.study, folder, self.criteria, self.snapshot))
        self.overhead["export_s"] += time.perf_counter() - start

    def run(self, on_trial: Callable[[Snapshot, optuna.trial.FrozenTrial], None]) -> None:
        """Ask for trials until the study is full, a limit is reached, or Ctrl-C."""
        options = self.options
        if options.baselines:
            overrides = {
                name: dict(options.space.baselines.get(name) or {}) for name in options.baselines
            }
            run_baselines(self.study, self.evaluator, options.baselines, overrides, self.log)
            self.export()
        started = time.monotonic()
        while True:
            if self.ladder is not None:
                self.ladder.step(self.study, self.snapshot)
            counts = self._counts()
            if counts[TrialState.COMPLETE] >= options.total_trials and not self._rungs_pending(
                counts
            ):
                return
            if options.timeout is not None and time.monotonic() - started >= options.timeout:
                self.stopped_reason = f"timeout of {options.timeout:g} s reached"
                return
            if self.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
                self.stopped_reason = (
                    f"{self.consecutive_failures} trials failed in a row; the last: "
                    f"{self._last_failure()}"
                )
                return
            if self._must_wait(counts):
                continue
            self._run_one(counts, on_trial)

    def _last_failure(self) -> str:
        """The reason the newest failed trial recorded (they all failed alike, usually)."""
        failed = self.study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        reasons = [fail_reason(t) for t in failed if fail_reason(t)]
        return reasons[-1] if reasons else "see fail_reason in trials.csv"

    def _counts(self) -> dict[TrialState, int]:
        """Trials by state; with follow-up runs: first runs (the candidates) by state, and
        WAITING counts every waiting run (follow-ups and retries are taken before new
        candidates)."""
        trials = self.study.get_trials(deepcopy=False)
        if self.rdb and fail_orphaned_trials(self.study, self.options.grace_period, trials):
            trials = self.study.get_trials(deepcopy=False)
        if self.ladder is None:
            return count_states(trials)
        counts = count_states([t for t in trials if run_of(t).first])
        counts[TrialState.WAITING] = sum(t.state == TrialState.WAITING for t in trials)
        self._follow_ups_running = sum(
            t.state == TrialState.RUNNING and not run_of(t).first for t in trials
        )
        return counts

    def _rungs_pending(self, counts: dict[TrialState, int]) -> bool:
        """A follow-up run (promotion, repeat) waits or runs somewhere (the study is not
        done), as of ``counts`` (the :meth:`_counts` just made)."""
        if self.ladder is None:
            return False
        return bool(counts[TrialState.WAITING] or self._follow_ups_running)

    def _must_wait(self, counts: dict[TrialState, int]) -> bool:
        """The last trials run on other workers: stay, in case one dies or fails."""
        complete, running = counts[TrialState.COMPLETE], counts[TrialState.RUNNING]
        if complete + running >= self.options.total_trials and not counts[TrialState.WAITING]:
            if self._waiting_since is None:
                self._waiting_since = time.monotonic()
                self.log(f"waiting: the last {running} trial(s) run on other workers")
            time.sleep(self.options.poll_interval)
            reap_stale_trials(self.study, self.options)
            return True
        if self._waiting_since is not None:
            self.overhead["wait_s"] += time.monotonic() - self._waiting_since
            self._waiting_since = None
        return False

    def _run_one(
        self, counts: dict[TrialState, int], on_trial: Callable[[Snapshot, Any], None]
    ) -> None:
        runner = self.runner
        runner.outcome = None
        if self.options.journal_heartbeat:  # databases: optimize() does it with Optuna's beats
            reap_stale_trials(self.study, self.options)
        runner.finished_before = counts[TrialState.FAIL] + counts[TrialState.PRUNED]
        try:
            with warnings.catch_warnings():
                # Optuna warns once per failed trial; the reason is in the tables instead.
                # Before asking, optimize() fails a database's stale trials itself.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self.study.optimize(runner, n_trials=1, catch=(TrialFailure,), gc_after_trial=False)
        except optuna.exceptions.UpdateFinishedTrialError as exc:
            # This worker was silent past the grace period (suspended, overloaded) and a live
            # worker failed its trial as stale and queued the retry; drop the result.
            self.log(f"dropped a result: {exc}")
            return
        self.new_trials += 1
        number, state = runner.outcome or (None, TrialState.FAIL)
        if state == TrialState.FAIL:
            self.consecutive_failures += 1
        elif state == TrialState.COMPLETE:
            self.consecutive_failures = 0
        self.export()
        trial = self.snapshot.trial(number) if number is not None else None
        if trial is not None:
            on_trial(self.snapshot, trial)


def run_search(
    options: SearchOptions,
    *,
    evaluator: Evaluator | None = None,
    observer: SearchObserver | None = None,
) -> SearchSummary:
    """Run (or continue) the study until it holds ``n_trials`` COMPLETE trials.

    ``evaluator`` measures each candidate (default: :meth:`Evaluator.for_space` of the
    options' space; tests and benchmarks pass their own). ``observer`` hears the news, each
    finished trial with the study's analysis after it, and how far the trial training in this
    process is (a display's ETA before the first trial ends). Safe to run in any number of
    processes on one study (see the module docstring).
    """
    observer = observer or SearchObserver()
    log = observer.log
    if options.threads:
        torch.set_num_threads(options.threads)  # workers sharing a machine must not oversubscribe
    study = join_study(options, log)
    if evaluator is None:
        evaluator = Evaluator.for_space(options.space, device=options.device, seed=options.seed)
    loop = SearchLoop(options, evaluator, study, log)
    loop.runner.on_progress = observer.on_progress
    interrupted = False
    try:
        loop.run(observer.on_trial)
    except KeyboardInterrupt:
        interrupted = True
    loop.export()
    return summarize(
        study,
        options,
        snapshot=loop.snapshot,
        files=loop.files,
        interrupted=interrupted,
        stopped_reason=loop.stopped_reason,
        new_trials=loop.new_trials,
        timings=loop.overhead,
        checkpoint_peak_bytes=loop.ladder.peak_bytes if loop.ladder is not None else None,
        failed_out=loop.stopped_reason is not None and "failed in a row" in loop.stopped_reason,
    )


def summarize(
    study: optuna.Study, options: SearchOptions, snapshot: Snapshot | None = None, **kwargs: Any
) -> SearchSummary:
    """The study as it stands (``snapshot``: its analysis, made now when not given): counts,
    front, dominance and hypervolume."""
    space = options.space
    criteria = Criteria.of_space(space)
    snapshot = snapshot or analyse(study, criteria)
    trials, frame, front = list(snapshot.trials), snapshot.frame, snapshot.front
    hv = hypervolume_summary(frame, criteria, hypervolume_reference(space))
    if has_runs(trials):  # follow-up runs: count candidates
        trials = [t for t in trials if run_of(t).first]
    counts = count_states(trials)
    infeasible = int((frame["feasible"] == False).sum()) if not frame.empty else 0  # noqa: E712
    return SearchSummary(
        study_name=options.name,
        storage=display_url(options.storage_url),  # shown and logged: never the password
        completed=counts[TrialState.COMPLETE],
        failed=counts[TrialState.FAIL],
        infeasible=infeasible,
        pareto=front,
        dominance=dominance(frame, criteria) if not frame.empty else {},
        hypervolume=hv.value if hv is not None else None,
        hypervolume_interval=(hv.low, hv.high) if hv is not None else None,
        reference_point=list(hv.reference) if hv is not None else [],
        baselines=frame[frame["baseline"].astype(bool)] if not frame.empty else frame,
        **kwargs,
    )
