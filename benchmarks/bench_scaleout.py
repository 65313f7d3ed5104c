"""Scale-out: what a shared storage costs per trial, and what several local workers gain.

1. ``--part storage``: the harness's storage overhead per trial on SQLite, a journal file and
   PostgreSQL (the server in ``DVBENCH_TEST_PG_URL``; run under ``.ci/with-postgres`` for a
   throw-away one on loopback). The real ``run_search`` loop runs the ``paper`` space with the
   candidate's evaluation replaced by constant metrics. Reported per trial: the time spent
   inside storage calls (every read and write of a trial: ask, its 11 parameters, attributes,
   constraint, heartbeat, tell, the stop checks; outermost calls timed, on every thread), the
   whole harness (that plus the sampler and the harness's own Python), and, apart, the table
   export after each trial (which reads the study and writes four files).
2. ``--part workers``: ``search --space paper`` (costs only: a FLOP count per trial, no
   training) for a fixed number of trials with 1 and with K workers, end to end through the
   CLI (process start included), interleaved runs, fresh studies each time.

    .ci/with-postgres .venv/bin/python benchmarks/bench_scaleout.py --part storage
    python benchmarks/bench_scaleout.py --part workers --n-trials 48 --repeats 2
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from unittest import mock

import optuna

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dvbench.search._loop as loop_module  # noqa: E402  (instrumented: table export)
import dvbench.search._study as study_module  # noqa: E402  (instrumented: storage calls)
from dvbench.evaluate import Evaluator  # noqa: E402
from dvbench.search import SearchOptions, load_study, run_search  # noqa: E402
from dvbench.search.storage import open_storage  # noqa: E402
from dvbench.space import load_space  # noqa: E402


class ConstantCosts(Evaluator):
    """The evaluation stubbed: every candidate costs the same, nothing is built or trained."""

    def costs(self, spec, *, overrides=None, timings=None):
        return {"params_m": 10.0, "gflops": 2.0}, None


class StorageClock:
    """Times the outermost calls into a storage object (any thread), in seconds."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._depth = threading.local()
        self._lock = threading.Lock()

    def wrapping(self, make_storage):
        return lambda options: self.wrap(make_storage(options))

    def wrap(self, storage):
        for name in dir(storage):
            if name.startswith("__"):
                continue
            method = getattr(storage, name)
            if callable(method) and getattr(method, "__self__", None) is storage:
                setattr(storage, name, self._timed(method))
        return storage

    def _timed(self, method):
        @functools.wraps(method)
        def timed(*args, **kwargs):
            depth = getattr(self._depth, "n", 0)
            self._depth.n = depth + 1
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth.n = depth
                if depth == 0:
                    with self._lock:
                        self.seconds += time.perf_counter() - start
                        self.calls += 1

        return timed


def _storage_run(space, url: str, results: Path, n_trials: int) -> dict[str, float]:
    """One stubbed study on ``url``: ms per trial in storage calls, harness, export."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    options = SearchOptions(
        space=space,
        results_dir=results,
        study_name=name,
        storage=url,
        sampler="random",
        n_trials=n_trials,
        quiet=True,
    )
    clock = StorageClock()
    with (
        mock.patch.object(study_module, "make_storage", clock.wrapping(study_module.make_storage)),
        mock.patch.object(
            loop_module, "export_tables", _timed_out(clock, loop_module.export_tables)
        ),
    ):
        start = time.perf_counter()
        summary = run_search(options, evaluator=ConstantCosts.for_space(space))
        wall = time.perf_counter() - start
    n = summary.new_trials
    export = summary.timings["export_s"] / n
    if url.startswith("postgresql"):
        optuna.delete_study(study_name=name, storage=open_storage(url))
    return {
        "storage": 1e3 * (clock.seconds - clock.export_seconds) / n,
        "calls": (clock.calls - clock.export_calls) / n,
        "harness": 1e3 * (wall / n - export),
        "export": 1e3 * export,
    }


def storage_overhead(n_trials: int, repeats: int) -> None:
    space = load_space("paper")
    pg = os.environ.get("DVBENCH_TEST_PG_URL")
    print(
        f"run_search, paper space, random sampler, {n_trials} trials, evaluation stubbed, "
        f"{repeats} interleaved runs per storage"
    )
    print("ms per trial: in storage calls (calls per trial), whole harness, table export")
    with tempfile.TemporaryDirectory() as tmp:
        backends = {
            "sqlite": lambda i: f"sqlite:///{Path(tmp) / f'bench{i}.db'}",
            "journal file": lambda i: f"journal:{Path(tmp) / f'bench{i}.log'}",
        }
        if pg:
            backends["postgresql"] = lambda i: pg
        runs: dict[str, list[dict[str, float]]] = {label: [] for label in backends}
        for i in range(repeats):
            for label, url in backends.items():
                runs[label].append(_storage_run(space, url(i), Path(tmp), n_trials))
                r = runs[label][-1]
                print(
                    f"  run {i + 1} {label:<13} {r['storage']:6.1f} ({r['calls']:4.1f}) "
                    f"{r['harness']:6.1f} {r['export']:6.1f}"
                )
    print(f"median of {repeats}:")
    print(f"{'storage':<14} {'storage calls':>20} {'harness':>9} {'export':>8}")
    for label, results in runs.items():
        med = {k: statistics.median(r[k] for r in results) for k in results[0]}
        print(
            f"{label:<14} {med['storage']:>12.1f} ({med['calls']:4.1f}) "
            f"{med['harness']:>9.1f} {med['export']:>8.1f}"
        )
    if not pg:
        print("postgresql     skipped: DVBENCH_TEST_PG_URL unset (run under .ci/with-postgres)")


def _timed_out(clock: StorageClock, export_tables):
    """export_tables whose storage reads are counted apart (reported as the export)."""
    clock.export_seconds = 0.0
    clock.export_calls = 0

    def export(*args, **kwargs):
        seconds, calls = clock.seconds, clock.calls
        try:
            return export_tables(*args, **kwargs)
        finally:
            clock.export_seconds += clock.seconds - seconds
            clock.export_calls += clock.calls - calls

    return export


def _run_workers(workers: int, n_trials: int, results: Path) -> tuple[float, float]:
    name = f"w{workers}_{uuid.uuid4().hex[:6]}"
    cmd = [sys.executable, str(REPO / "cli.py"), "search", "--space", "paper", "--quiet"]
    cmd += ["--n-trials", str(n_trials), "--workers", str(workers)]
    cmd += ["--results-dir", str(results), "--study-name", name]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    trials = load_study(name, results).trials
    first = min(t.datetime_start for t in trials)
    last = max(t.datetime_complete for t in trials)
    complete = sum(t.state.name == "COMPLETE" for t in trials)
    assert complete == n_trials, f"{complete} complete, expected {n_trials}"
    return wall, (last - first).total_seconds()


def workers_speedup(n_trials: int, workers: int, repeats: int) -> None:
    print(f"search --space paper --n-trials {n_trials} (costs only), {os.cpu_count()} cores")
    walls: dict[int, list[float]] = {1: [], workers: []}
    spans: dict[int, list[float]] = {1: [], workers: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for k in (1, workers):
                wall, span = _run_workers(k, n_trials, Path(tmp))
                walls[k].append(wall)
                spans[k].append(span)
                print(f"  {k} worker(s): {wall:.1f} s end to end, trials span {span:.1f} s")
    one, many = statistics.median(walls[1]), statistics.median(walls[workers])
    one_span, many_span = statistics.median(spans[1]), statistics.median(spans[workers])
    print(
        f"median end to end: 1 worker {one:.1f} s, {workers} workers {many:.1f} s: "
        f"{one / many:.2f}x faster"
    )
    print(
        f"median trial span (first start to last finish): {one_span:.1f} s vs "
        f"{many_span:.1f} s: {one_span / many_span:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("storage", "workers", "all"), default="all")
    parser.add_argument("--n-trials", type=int, help="default: 100 (storage), 48 (workers)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.part in ("storage", "all"):
        storage_overhead(args.n_trials or 100, args.repeats)
    if args.part in ("workers", "all"):
        workers_speedup(args.n_trials or 48, args.workers, args.repeats)


if __name__ == "__main__":
    main()
