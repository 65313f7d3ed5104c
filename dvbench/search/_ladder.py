"""Multi-fidelity search, the study side: rung runs as Optuna trials, promotions taken once,
checkpoints kept only while they can still be used.

Every run of a candidate at a rung is a trial with the user attribute ``rung`` =
``{"candidate": c, "rung": k}`` (``c``: the number of the trial that sampled it). Rung 0 is an
ordinary sampled trial; a promotion is a WAITING trial enqueued with the candidate's
parameters, so Optuna hands it to exactly one worker (the WAITING -> RUNNING change is
atomic in every storage) and a worker that dies mid-rung leaves a stale trial that a live
worker fails and retries once, like any trial. Deciding promotions happens under a lock
that every worker of the study takes (a file lock beside a journal or SQLite file, a
PostgreSQL advisory lock), after reading the study afresh: no promotion is enqueued twice.

Checkpoints (model, optimizer, schedule position, random state) live in the study folder's
``checkpoints/`` as ``candidate_<c>.pt``; a promotion continues from it. One is deleted once
its candidate can never be promoted again (see :func:`beyond_promotion`), and all are
deleted when the study is done, so disk use stays bounded; the peak is logged.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from dvbench.search._options import SearchOptions
from dvbench.search._rungs import Fidelity, beyond_promotion, promotions
from dvbench.search.storage import journal_path, storage_scheme
from dvbench.search.tables import RUNG_ATTR, is_feasible

CHECKPOINTS = "checkpoints"
_LOCAL_LOCK = threading.Lock()  # in-memory studies live in one process


def rung_of(trial: FrozenTrial) -> tuple[int, int]:
    """(candidate, rung) of a trial; a trial not yet marked is its own candidate at rung 0."""
    record = trial.user_attrs.get(RUNG_ATTR)
    if not record:
        return trial.number, 0
    return int(record["candidate"]), int(record["rung"])


@contextlib.contextmanager
def study_lock(url: str, study_name: str) -> Iterator[None]:
    """Exclude every other worker of the study (any process, any machine the storage reaches).

    A file lock (``flock``) beside a journal or SQLite file, released by the kernel if the
    holder dies; a PostgreSQL transaction-scoped advisory lock, released when its connection
    ends; a process lock for an in-memory study.
    """
    scheme = storage_scheme(url)
    if scheme in ("journal", "sqlite"):
        path = journal_path(url) if scheme == "journal" else Path(url.split(":///", 1)[1])
        with open(path.with_name(path.name + ".promote.lock"), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    if scheme in ("postgresql", "mysql"):
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        key = zlib.crc32(f"dvbench-promote:{study_name}".encode())
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.begin() as connection:
                if scheme == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                else:
                    connection.execute(text("SELECT GET_LOCK(:k, -1)"), {"k": str(key)})
                yield
        finally:
            engine.dispose()
        return
    with _LOCAL_LOCK:
        yield


class Ladder:
    """One worker's view of the study's rungs."""

    def __init__(self, options: SearchOptions, log: Callable[[str], None]):
        fidelity = options.space.fidelity
        assert fidelity is not None
        self.fidelity: Fidelity = fidelity
        self.options, self.log = options, log
        self.folder = options.study_dir / CHECKPOINTS
        self.peak_bytes = 0

    def mark(self, candidate: int, rung: int) -> dict:
        """The ``rung`` attribute of a run (the budget's label and the top rung, for tables)."""
        label = self.fidelity.label(rung)
        return {"candidate": candidate, "rung": rung, "budget": label, "top": self.fidelity.top}

    def checkpoint(self, candidate: int) -> Path:
        return self.folder / f"candidate_{candidate}.pt"

    def read(self, trials: Sequence[FrozenTrial]):
        """(completed, started, live, params) of the study's rung runs: objective values of
        every feasible completed run, every (candidate, rung) with a run, candidates with a
        run WAITING or RUNNING, and each candidate's parameters."""
        completed: dict[int, dict[int, list[float]]] = {}
        started: set[tuple[int, int]] = set()
        live: set[int] = set()
        params: dict[int, dict] = {}
        for trial in trials:
            candidate, rung = rung_of(trial)
            started.add((candidate, rung))
            if trial.state in (TrialState.WAITING, TrialState.RUNNING):
                live.add(candidate)
            if trial.state != TrialState.COMPLETE or trial.user_attrs.get("skipped"):
                continue
            if is_feasible(trial) is False:
                continue
            completed.setdefault(candidate, {})[rung] = list(trial.values)
            if rung == 0:
                params[candidate] = trial.params
        return completed, started, live, params

    def step(self, study: optuna.Study) -> int:
        """Enqueue every promotion due now and delete checkpoints no longer needed, under the
        study's lock (all of them once the study is done: every candidate sampled, nothing
        waiting or running, nothing due). Returns the number of promotions enqueued."""
        directions = self.options.space.directions
        with study_lock(self.options.storage_url, self.options.name):
            trials = study.get_trials(deepcopy=False)
            completed, started, live, params = self.read(trials)
            due = promotions(completed, started, directions, self.fidelity)
            for candidate, rung in due:
                record = self.mark(candidate, rung)
                study.enqueue_trial(dict(params[candidate]), user_attrs={RUNG_ATTR: record})
                self.log(f"promoted candidate {candidate} to rung {self.fidelity.label(rung)}")
            live |= {c for c, _ in due}
            done = beyond_promotion(
                completed, started | set(due), directions, self.fidelity,
                self.options.total_trials,
            )  # fmt: skip
            sampled = sum(t.state == TrialState.COMPLETE and rung_of(t)[1] == 0 for t in trials)
            if not due and not live and sampled >= self.options.total_trials:
                done = {c for c, _ in started}
            self._measure_and_clean(done - live)
        return len(due)

    def _measure_and_clean(self, removable: set[int]) -> None:
        if not self.folder.is_dir():
            return
        files = list(self.folder.glob("candidate_*.pt"))
        self.peak_bytes = max(self.peak_bytes, sum(f.stat().st_size for f in files if f.exists()))
        for candidate in removable:
            self.checkpoint(candidate).unlink(missing_ok=True)
