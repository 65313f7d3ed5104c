"""``--workers K``: K local worker processes on one study, sharing the machine.

Each worker is :func:`~dvbench.search.runner.run_search` in its own process (``spawn``, so no
torch state is forked), exactly what a worker started by hand on another machine runs. This
process creates (or joins) the study first, so one-time set-up -- seed trials, settings --
happens once, then watches the storage for progress and exports the tables when the workers
are done. Workers get ``cores // K`` torch threads each and their own sampler seed
(``seed + index``); their output goes to ``<study folder>/workers/worker-<index>.log``.

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

import optuna

from dvbench.errors import UsageError
from dvbench.search.runner import (
    SearchOptions,
    SearchSummary,
    open_study,
    reap_stale_trials,
    run_search,
    summarize,
)
from dvbench.search.storage import storage_scheme
from dvbench.search.tables import export_tables

# torch, OpenMP and MKL read these when they start; a worker's threads are set before that.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    return max(1, (cores or available_cores()) // workers)


def check_workers(options: SearchOptions, workers: int) -> None:
    """Refuse several writers on SQLite with one line that says what to use instead."""
    if workers > 1 and storage_scheme(options.storage_url) == "sqlite":
        where = options.storage or str(options.study_dir / "study.db")
        raise UsageError(
            f"--workers {workers}: this study is in SQLite ({where}), which fails with "
            "'database is locked' under several writers; run it with one worker, or give "
            "--study-name a new name (new studies use a journal file) or --storage "
            "journal:PATH / postgresql+psycopg://..."
        )


def _worker_main(options: SearchOptions, log_path: str) -> None:
    """Body of one worker process: all its output goes to its log file."""
    with open(log_path, "a", buffering=1) as log_file:
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        sys.stdout = sys.stderr = log_file
        print(
            f"worker {options.worker_index} pid {os.getpid()}: {options.threads} threads, "
            f"sampler seed {options.sampler_seed}, storage {options.storage_url}",
            flush=True,
        )
        try:
            summary = run_search(options, log=lambda message: print(message, flush=True))
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


def run_workers(
    options: SearchOptions,
    workers: int,
    *,
    log: Callable[[str], None] | None = None,
    on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> SearchSummary:
    """Run the study with ``workers`` local processes until it holds ``n_trials`` COMPLETE."""
    log = log or (lambda message: None)
    check_workers(options, workers)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(options, log)  # creates it (seeds, settings) before any worker starts
    threads = options.threads or threads_per_worker(workers)
    log_dir = options.study_dir / "workers"
    log_dir.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    processes: list[multiprocessing.process.BaseProcess] = []
    logs: list[Path] = []
    saved_env = {key: os.environ.get(key) for key in THREAD_ENV}
    os.environ.update({key: str(threads) for key in THREAD_ENV})
    try:
        for index in range(workers):
            worker = dataclasses.replace(
                options,
                worker_index=index,
                threads=threads,
                quiet=True,
                seed_official=False,  # enqueued above, once
                baselines=options.baselines if index == 0 else (),
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
    log(f"started {workers} workers, {threads} torch threads each; logs in {log_dir}")
    interrupted = False
    reported: set[int] = set()
    seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
    finished_before = len(seen)
    try:
        while True:
            alive = [p for p in processes if p.is_alive()]
            for index, process in enumerate(processes):
                if process not in alive and index not in reported:
                    reported.add(index)
                    if process.exitcode not in (0, None):
                        log(
                            f"worker {index} exited with status {process.exitcode}; see "
                            f"{logs[index]}" + ("; the others go on" if alive else "")
                        )
            for trial in study.get_trials(deepcopy=False):
                if trial.state.is_finished() and trial.number not in seen:
                    seen.add(trial.number)
                    if on_trial is not None:
                        on_trial(study, trial)
            if not alive:
                break
            time.sleep(options.poll_interval)
    except KeyboardInterrupt:
        interrupted = True  # the workers got the same SIGINT and save what they have
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
    reap_stale_trials(study, options)
    space = options.space
    files = export_tables(study, options.study_dir, space.metrics, space.directions)
    summary = summarize(
        study,
        options,
        files=files,
        interrupted=interrupted or any(p.exitcode == 130 for p in processes),
        new_trials=len(seen) - finished_before,
        workers=workers,
        worker_logs=logs,
    )
    failed = [i for i, p in enumerate(processes) if p.exitcode not in (0, 130)]
    if summary.completed < options.total_trials and not summary.interrupted:
        summary.stopped_reason = f"{summary.completed}/{options.total_trials} complete; " + (
            f"worker(s) {', '.join(map(str, failed))} failed, see their logs"
            if failed
            else "the workers stopped (timeout or repeated failures), see their logs"
        )
    return summary
