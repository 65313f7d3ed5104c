"""``--workers K``: K local worker processes on one study, sharing the machine.

Each worker is :func:`~dvbench.search.run_search`, exactly what a worker started by
hand on another machine runs. This process creates (or joins) the study first, so one-time
set-up -- seed trials, settings, baselines -- happens once; it starts workers 1..K-1 as new
processes (``spawn``: no torch state is forked) and is worker 0 itself (its imports are done,
so it starts trials while the others start up), then waits for them and exports the tables.
Workers get ``cores // K`` torch threads each and their own sampler stream (base seed
``seed + index``, mixed with the number of the first trial each asks for: ``StreamSampler``);
the started workers' output goes to ``<study folder>/workers/worker-<index>.log``.

A worker that dies is reported; its RUNNING trial is failed once its heartbeat is stale and
retried by a live worker, so the study still ends with ``n_trials`` complete trials as long
as one worker lives.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from dvbench.errors import UsageError
from dvbench.runtime import usable_cores
from dvbench.search._loop import SearchObserver, run_search, summarize
from dvbench.search._options import SearchOptions, SearchSummary
from dvbench.search._study import join_study, reap_stale_trials
from dvbench.search.storage import SQLITE_FILE, display_url, storage_scheme, study_lock
from dvbench.search.tables import Criteria, Snapshot, analyse, export_tables

# torch, OpenMP and MKL read these when they start; a worker's threads are set before that.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    return max(1, (cores or usable_cores()) // workers)


def check_workers(options: SearchOptions, workers: int) -> None:
    """Refuse several writers on SQLite with one line that says what to use instead."""
    if workers > 1 and storage_scheme(options.storage_url) == "sqlite":
        where = options.storage or str(options.study_dir / SQLITE_FILE)
        raise UsageError(
            f"--workers {workers}: this study is in SQLite ({where}), which fails with "
            "'database is locked' under several writers; run it with one worker, or give "
            "--study-name a new name (new studies use a journal file) or --storage "
            "journal:PATH / postgresql+psycopg://..."
        )


class _Printing(SearchObserver):
    """A started worker's observer: its news, one line each, into its log file."""

    def log(self, message: str) -> None:
        print(message, flush=True)


def _worker_main(options: SearchOptions, log_path: str) -> None:
    """Body of one worker process: all its output goes to its log file."""
    with open(log_path, "a", buffering=1) as log_file:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        sys.stdout = sys.stderr = log_file
        print(
            f"worker {options.worker_index} pid {os.getpid()}: {options.threads} threads, "
            f"sampler base seed {options.sampler_seed}, storage {display_url(options.storage_url)}",
            flush=True,
        )
        try:
            summary = run_search(options, observer=_Printing())
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(130)
        except UsageError as exc:
            print(f"error: {exc}", flush=True)
            sys.exit(2)
        print(
            f"done: ran {summary.new_trials} trials; study has {summary.completed} complete"
            + (f"; stopped: {summary.stopped_reason}" if summary.stopped_reason else ""),
            flush=True,
        )


def _start_workers(
    options: SearchOptions, indices: range, threads: int, log_dir: Path
) -> tuple[list[multiprocessing.process.BaseProcess], list[Path]]:
    context = multiprocessing.get_context("spawn")
    processes, logs = [], []
    saved_env = {key: os.environ.get(key) for key in THREAD_ENV}
    os.environ.update({key: str(threads) for key in THREAD_ENV})  # the children inherit them
    try:
        for index in indices:
            worker = dataclasses.replace(
                options,
                worker_index=index,
                threads=threads,
                quiet=True,
                seed_official=False,  # enqueued by the study's creator, once
                baselines=(),  # worker 0's job
            )
            path = log_dir / f"worker-{index}.log"
            path.write_text("")
            process = context.Process(
                target=_worker_main, args=(worker, str(path)), name=f"dvbench-worker-{index}"
            )
            process.start()
            processes.append(process)
            logs.append(path)
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return processes, logs


def run_study(
    options: SearchOptions,
    workers: int = 1,
    *,
    observer: SearchObserver | None = None,
    warn: Callable[[str], None] | None = None,
) -> SearchSummary:
    """Run (or continue) the study here (``workers`` 1: :func:`run_search`) or with
    ``workers`` local processes (:func:`run_workers`); ``observer`` watches this process's
    trials. The summary's ``timings["wall_s"]`` is the whole run's."""
    started = time.monotonic()
    if workers > 1:
        summary = run_workers(options, workers, observer=observer, warn=warn)
    else:
        summary = run_search(options, observer=observer)
    summary.timings["wall_s"] = time.monotonic() - started
    return summary


class _Deaths(SearchObserver):
    """Worker 0's observer: reports the other workers that died after each of its trials,
    and passes everything on to the caller's observer."""

    def __init__(self, inner: SearchObserver, report: Callable[[], None]) -> None:
        self.inner, self.report = inner, report

    def log(self, message: str) -> None:
        self.inner.log(message)

    def on_progress(self, number: int, progress: Any) -> None:
        self.inner.on_progress(number, progress)

    def on_trial(self, snapshot: Snapshot, trial: optuna.trial.FrozenTrial) -> None:
        self.report()
        self.inner.on_trial(snapshot, trial)


def run_workers(
    options: SearchOptions,
    workers: int,
    *,
    observer: SearchObserver | None = None,
    warn: Callable[[str], None] | None = None,
) -> SearchSummary:
    """Run the study with ``workers`` local processes until it holds ``n_trials`` COMPLETE.

    This process is worker 0 (its imports are done: it starts trials first) and starts
    workers 1..K-1. ``observer`` hears this process's news and trials, ``warn`` (default:
    stderr) a worker that died.
    """
    observer = observer or SearchObserver()
    log = observer.log
    warn = warn or (lambda message: print(message, file=sys.stderr, flush=True))
    check_workers(options, workers)
    study = join_study(options, log)  # creates it (seeds, settings) before any worker starts
    finished_before = sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))
    threads = options.threads or threads_per_worker(workers)
    log_dir = options.study_dir / "workers"
    log_dir.mkdir(parents=True, exist_ok=True)
    processes, logs = _start_workers(options, range(1, workers), threads, log_dir)
    log(
        f"{workers} workers (this one and {workers - 1} more), {threads} torch threads each; "
        f"logs in {log_dir}"
    )
    reported: set[int] = set()

    def report_deaths() -> None:
        for index, process in enumerate(processes, start=1):
            if index not in reported and process.exitcode is not None:
                reported.add(index)
                if process.exitcode not in (0, 130):
                    warn(
                        f"worker {index} exited with status {process.exitcode}; see "
                        f"{logs[index - 1]}; the others go on"
                    )

    own = dataclasses.replace(options, worker_index=0, threads=threads, seed_official=False)
    summary = run_search(own, observer=_Deaths(observer, report_deaths))
    interrupted = summary.interrupted
    try:
        for process in processes:  # they stop once the study is complete
            while process.is_alive():
                process.join(timeout=options.poll_interval)
                report_deaths()
    except KeyboardInterrupt:
        interrupted = True  # the workers got the same SIGINT and save what they have
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    report_deaths()
    reap_stale_trials(study, options)
    criteria = Criteria.of_space(options.space)
    with study_lock(options.storage_url, options.name):
        snapshot = analyse(study, criteria)
        files = export_tables(study, options.study_dir, criteria, snapshot)
    finished = sum(t.state.is_finished() for t in snapshot.trials)
    summary = summarize(
        study,
        options,
        snapshot=snapshot,
        files=files,
        interrupted=interrupted or any(p.exitcode == 130 for p in processes),
        stopped_reason=summary.stopped_reason,
        new_trials=finished - finished_before,
        timings=summary.timings,
        workers=workers,
        worker_logs=logs,
        failed_out=summary.failed_out,
    )
    failed = [i for i, p in enumerate(processes, start=1) if p.exitcode not in (0, 130)]
    if summary.completed < options.total_trials and not summary.interrupted:
        why = summary.stopped_reason or "the workers stopped"
        if failed:
            why += f"; worker(s) {', '.join(map(str, failed))} failed, see their logs"
        summary.stopped_reason = f"{summary.completed}/{options.total_trials} complete: {why}"
    return summary
