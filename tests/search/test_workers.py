"""Many workers on one study: journal files and a real PostgreSQL server, real processes.

The PostgreSQL tests read the server's URL from DVBENCH_TEST_PG_URL (``.ci/with-postgres``
starts a throw-away server and sets it; ``.ci/run`` does so in CI) and skip without it.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from search_helpers import (
    COST_SPACE,
    REPO,
    kill_mid_trial,
    open_gate,
    peek_study,
    start_gated,
    worker_pid,
    write_space,
)

from dvbench.evaluate import Evaluator
from dvbench.search import (
    SearchObserver,
    SearchOptions,
    join_study,
    load_study,
    run_search,
    trials_frame,
)
from dvbench.search._trial import TrialRunner
from dvbench.search.record import HEARTBEAT, started_by
from dvbench.search.storage import open_storage
from dvbench.search.workers import THREAD_ENV, threads_per_worker
from dvbench.space import load_space

PG_URL = os.environ.get("DVBENCH_TEST_PG_URL")
# Trials long enough (~1 s: latency is measured) that workers overlap and can be killed mid-trial.
TIMED_SPACE = {
    **COST_SPACE,
    "knobs": {**COST_SPACE["knobs"], "semantic_grid": {"choices": [1, 2]}},
    "profile": {"res": 64, "latency": True},
}
VALID_SPACE = {**TIMED_SPACE, "profile": {"res": 64}, "seeds": {}}  # every candidate builds
# the tests play the other workers with study.ask(), which Optuna warns about on heartbeats
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")


def _study_name(storage: str | None) -> str:
    # one PostgreSQL database serves every test: each study gets its own name
    return "costs" if storage is None else f"costs_{uuid.uuid4().hex[:10]}"


def _search_cmd(space: Path, results: Path, name: str, storage: str | None, *extra: str):
    cmd = [sys.executable, str(REPO / "cli.py"), "search", "--space", str(space)]
    cmd += ["--results-dir", str(results), "--study-name", name, "--quiet", *extra]
    return cmd + (["--storage", storage] if storage else [])


def _load(name: str, results: Path, storage: str | None) -> optuna.Study:
    return load_study(name, results, storage=storage)


@pytest.fixture
def cleanup_pg():
    names: list[str] = []
    yield names
    for name in names:
        try:
            optuna.delete_study(study_name=name, storage=open_storage(PG_URL))
        except KeyError:
            pass


def _wait_for(condition, proc: subprocess.Popen, what: str, deadline_s: float = 600):
    """Poll ``condition()`` until it returns something true; fail if ``proc`` ends first.
    (The deadline only keeps a broken run from hanging the suite.)"""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.1)
    raise AssertionError(f"not within {deadline_s} s: {what}")


def _logged_pid(study_dir: Path, index: int) -> int | None:
    """The pid a started worker wrote to its log (None before it has)."""
    log = study_dir / "workers" / f"worker-{index}.log"
    text = log.read_text() if log.is_file() else ""
    if f"worker {index} pid " not in text:
        return None
    return int(text.split(f"worker {index} pid ", 1)[1].split(":", 1)[0])


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@pytest.mark.slow
def test_three_workers_end_with_exactly_n_complete_trials(storage_url, tmp_path, cleanup_pg):
    """Started workers share the study, each with its own sampler seed and thread variables.

    Worker 0 (the command) is held until both started workers have completed a trial, so the
    sharing is proven whatever the machine's load; then all three finish the study.
    """
    space = write_space(tmp_path, {**TIMED_SPACE, "n_trials": 8})
    results = tmp_path / "results"
    name = _study_name(storage_url)
    cleanup_pg.append(name) if storage_url else None
    gate = tmp_path / "gate"
    cmd = _search_cmd(space, results, name, storage_url, "--workers", "3", "--seed-official")
    proc = start_gated(cmd, gate)

    def trial_of(index: int, states: tuple[TrialState, ...]) -> int | None:
        """The pid of worker ``index`` once it has a trial in one of ``states``."""
        pid = _logged_pid(results / name, index)
        study = peek_study(name, results, storage_url) if pid else None
        trials = study.get_trials(states=states) if study else []
        return pid if any(worker_pid(t) == pid for t in trials) else None

    # one started worker after the other gets going, then both complete a trial; worker 0
    # (the command) is held meanwhile
    open_gate(gate, 1)
    first = _wait_for(lambda: trial_of(1, (TrialState.RUNNING,)), proc, "worker 1 ran")
    open_gate(gate, 2)
    second = _wait_for(lambda: trial_of(2, (TrialState.RUNNING,)), proc, "worker 2 ran")
    complete = (TrialState.COMPLETE,)
    _wait_for(lambda: trial_of(1, complete), proc, "worker 1 completed a trial")
    _wait_for(lambda: trial_of(2, complete), proc, "worker 2 completed a trial")
    children = {first, second}
    assert len(children) == 2 and proc.pid not in children
    threads = threads_per_worker(3)
    for pid in children:  # what the started workers run with, read from the live processes
        env = _environ(pid)
        assert {env.get(key) for key in THREAD_ENV} == {str(threads)}, env
    open_gate(gate, 0)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]

    study = _load(name, results, storage_url)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 8
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(len(numbers)))
    # the seed trial was enqueued once for the study, not once per worker
    assert sum(t.user_attrs.get("seed_name") == "seed_a" for t in study.trials) == 1
    # the table is the storage's
    table = pd.read_csv(results / name / "trials.csv")
    stored = trials_frame(study)
    assert table["number"].tolist() == stored["number"].tolist()
    assert table["state"].tolist() == stored["state"].tolist()
    assert table["gflops"].tolist() == pytest.approx(stored["gflops"].tolist(), nan_ok=True)
    for index in (1, 2):  # the command itself is worker 0 (sampler base seed 0 + 0)
        log = (results / name / "workers" / f"worker-{index}.log").read_text()
        # --seed 0 + index, mixed with the study's trial count when the worker joins
        assert f"{threads} threads, sampler base seed {index}," in log
        assert "done: ran" in log


@pytest.mark.slow
def test_sigkill_one_worker_mid_trial_its_trial_is_retried(storage_url, tmp_path, cleanup_pg):
    """A started worker is killed while its trial runs (proven before the outcome is read);
    worker 0, held until then, fails that trial once it is stale and runs it once more."""
    space = write_space(tmp_path, {**TIMED_SPACE, "n_trials": 6, "seeds": {}})
    results = tmp_path / "results"
    name = _study_name(storage_url)
    cleanup_pg.append(name) if storage_url else None
    gate = tmp_path / "gate"
    cmd = _search_cmd(space, results, name, storage_url, "--workers", "2", "--heartbeat", "1,3")
    proc = start_gated(cmd, gate)
    open_gate(gate, 1)  # the started worker runs; worker 0 is held until the kill

    def child_trial_after_one_complete(study: optuna.Study):
        if not study.get_trials(states=(TrialState.COMPLETE,)):
            return None
        running = study.get_trials(states=(TrialState.RUNNING,))
        # a trial whose candidate is sampled (so its retry must be the same candidate)
        mid = [t for t in running if len(t.params) == len(TIMED_SPACE["knobs"])]
        return next((t for t in mid if worker_pid(t) not in (None, proc.pid)), None)

    journal = None if storage_url else results / name / "journal.log"
    victim, seen = kill_mid_trial(
        lambda: peek_study(name, results, storage_url),
        child_trial_after_one_complete,
        journal=journal,
        alive=lambda: proc.poll() is None,
    )
    kept = {t.number for t in seen.get_trials(states=(TrialState.COMPLETE,))}
    assert victim.state == TrialState.RUNNING and kept  # the precondition: killed mid-trial
    open_gate(gate, 0)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    assert "worker 1 exited with status -9" in err

    study = _load(name, results, storage_url)
    trials = study.trials
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 6
    assert kept <= {t.number for t in trials if t.state == TrialState.COMPLETE}
    assert trials[victim.number].state == TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == victim.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == victim.params == trials[victim.number].params
    assert worker_pid(retries[0]) == proc.pid  # the only live worker ran it
    table = pd.read_csv(results / name / "trials.csv").set_index("number")
    assert table.loc[retries[0].number, "retried_from"] == victim.number
    assert table.loc[victim.number, "fail_reason"] == (
        f"worker {started_by(victim)} stopped heartbeating (died or hung); "
        f"retried as trial {retries[0].number}"
    )


def test_workers_on_sqlite_are_refused_with_one_line(tmp_path, capsys):
    from dvbench.cli import main

    space = write_space(tmp_path, COST_SPACE)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    argv = ["search", "--space", str(space), "--results-dir", str(tmp_path / "results")]
    argv += ["--storage", url, "--workers", "2", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "database is locked" in err and "journal:" in err
    # one worker on SQLite is fine: studies made before journal files were the default
    assert main(argv[:-3] + ["--quiet", "--n-trials", "1"]) == 0


def test_a_study_keeps_its_storage_when_resumed_with_more_workers(tmp_path):
    space = load_space(write_space(tmp_path, COST_SPACE))
    options = SearchOptions(space=space, results_dir=tmp_path / "results", quiet=True, n_trials=2)
    run_search(options)
    folder = tmp_path / "results" / "costs"
    assert (folder / "journal.log").is_file() and not (folder / "study.db").exists()
    assert options.storage_url == f"journal:{(folder / 'journal.log').resolve()}"
    # a legacy SQLite study stays in SQLite, whatever the worker count
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "study.db").touch()
    assert SearchOptions(space=space, results_dir=tmp_path, study_name="legacy").storage_url == (
        f"sqlite:///{(legacy / 'study.db').resolve()}"
    )


def test_journal_heartbeat_marks_silent_trials_stale(tmp_path):
    """Staleness is read against a clock the test moves: no race with the machine."""
    from dvbench.search._journal import stale_trials

    storage = open_storage(f"journal:{tmp_path / 'j.log'}")
    study = optuna.create_study(storage=storage)
    beating, silent, inherited = study.ask(), study.ask(), study.ask()
    now = time.time()
    beating.set_user_attr(HEARTBEAT, [beating.number, now])
    # a retry inherits its predecessor's beat: it does not count for the new trial
    inherited.set_user_attr(HEARTBEAT, [beating.number, now + 600])

    def stale(at: float) -> list[int]:
        return [t.number for t in stale_trials(study.get_trials(), 60, now=at)]

    assert stale(now) == []
    assert stale(now + 59) == []  # within the grace period of every start and beat
    beating.set_user_attr(HEARTBEAT, [beating.number, now + 61])
    assert stale(now + 61) == [silent.number, inherited.number]
    study.tell(silent, state=TrialState.FAIL)
    assert stale(now + 61) == [inherited.number]  # a finished trial is never stale


def test_a_journal_worker_beats_while_its_trial_runs(tmp_path):
    """The objective writes the trial's heartbeat through Optuna's public trial API, every
    interval, from the trial's start until it ends."""
    space = load_space(write_space(tmp_path, {**TIMED_SPACE, "seeds": {}}))
    options = SearchOptions(
        space=space, results_dir=tmp_path / "results", quiet=True, n_trials=1,
        heartbeat_interval=1, grace_period=3,
    )  # fmt: skip
    assert options.journal_heartbeat == 1
    beats: list[float] = []
    study = join_study(options)
    runner = TrialRunner(options, Evaluator.for_space(space))
    original = runner._evaluate

    def slow(trial):
        time.sleep(2.5)  # long enough for the beats that follow the first
        beats.append(trial.user_attrs[HEARTBEAT][1])
        return original(trial)

    runner._evaluate = slow
    study.optimize(runner, n_trials=1)
    trial = study.trials[-1]
    number, last = trial.user_attrs[HEARTBEAT]
    assert trial.state == TrialState.COMPLETE and number == trial.number
    assert last - trial.datetime_start.timestamp() >= 1.5  # it kept beating after its start
    assert beats and beats[0] <= last


def test_a_trial_started_beyond_the_total_is_not_run(tmp_path):
    """Two workers ask at the same moment for the last slot: the later trial is not run."""
    space = load_space(write_space(tmp_path, {**COST_SPACE, "seeds": {}}))
    options = SearchOptions(space=space, results_dir=tmp_path / "results", quiet=True, n_trials=1)
    study = join_study(options)
    other = study.ask()  # another worker's trial, running
    objective = TrialRunner(options, Evaluator.for_space(space))
    study.optimize(objective, n_trials=1)
    late = study.trials[-1]
    assert late.state == TrialState.PRUNED
    assert late.user_attrs["fail_reason"].startswith("not run: 1 earlier trials")
    assert study.trials[other.number].state == TrialState.RUNNING


def test_a_worker_waits_for_the_last_trial_and_retries_it_when_its_worker_dies(tmp_path):
    space = load_space(write_space(tmp_path, VALID_SPACE))
    options = SearchOptions(
        space=space,
        results_dir=tmp_path / "results",
        quiet=True,
        n_trials=2,
        heartbeat_interval=1,
        grace_period=2,
        poll_interval=0.1,
    )
    run_search(dataclasses.replace(options, n_trials=1))
    study = join_study(options)
    dead = study.ask()  # a worker took the last trial, beat once, then died
    dead.set_user_attr("worker", {"id": "elsewhere:1", "trial": dead.number})
    dead.set_user_attr(HEARTBEAT, [dead.number, time.time()])
    messages: list[str] = []

    class Listener(SearchObserver):
        def log(self, message: str) -> None:
            messages.append(message)

    summary = run_search(options, observer=Listener())
    assert summary.completed == 2
    assert any(m.startswith("waiting: the last 1 trial(s)") for m in messages)
    # it was failed only once silent for the grace period: its end is 2 s after its beat
    failed = study.trials[dead.number]
    _, beat = failed.user_attrs[HEARTBEAT]
    assert failed.datetime_complete.timestamp() - beat >= options.grace_period
    table = trials_frame(study).set_index("number")
    assert table.loc[dead.number, "state"] == "FAIL"
    retry = table.index[table["retried_from"] == dead.number].item()
    assert table.loc[retry, "state"] == "COMPLETE"
    assert table.loc[dead.number, "fail_reason"] == (
        f"worker elsewhere:1 stopped heartbeating (died or hung); retried as trial {retry}"
    )


def test_threads_are_split_between_workers():
    assert threads_per_worker(2, cores=2) == 1
    assert threads_per_worker(3, cores=16) == 5
    assert threads_per_worker(4, cores=2) == 1
