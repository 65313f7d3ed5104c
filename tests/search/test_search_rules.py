"""The search loop's rules, each pinned on a scripted evaluator (no model is built or trained):
the stop after 25 failures in a row, Ctrl-C, baselines and the dominance list, NSGA-II's
population, per-worker sampler seeds and thread variables, a dead trial retried exactly once,
the hypervolume's reference point, atomic table writes."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState
from search_helpers import COST_SPACE, write_space

from dvbench.cli import main
from dvbench.evaluate import EvaluationFailure, Evaluator
from dvbench.files import write_atomic
from dvbench.search import SearchOptions, join_study, run_search, trials_frame
from dvbench.search._study import reap_stale_trials
from dvbench.search.record import HEARTBEAT
from dvbench.space import load_space

# minimise gflops, maximise params_m; every sampled config builds; no seed trials
# the tests play dead workers with study.ask(), which Optuna warns about on heartbeats
pytestmark = [
    pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning"),
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]
SPACE = {
    **COST_SPACE,
    "knobs": {**COST_SPACE["knobs"], "semantic_grid": {"choices": [1, 2]}},
    "seeds": {},
}


class Scripted(Evaluator):
    """Costs from a script instead of a model: each candidate takes the next outcome (a dict
    of metrics, or an exception to raise); a baseline (named by a string) takes its entry of
    ``baseline_costs``. ``seen`` lists what was evaluated."""

    outcomes: list
    baseline_costs: dict
    seen: list

    def costs(self, spec, *, overrides=None, timings=None):
        if isinstance(spec, str):
            self.seen.append(spec)
            return dict(self.baseline_costs[spec]), None
        self.seen.append("candidate")
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return dict(outcome), None


def scripted(space, outcomes=(), baselines=None) -> Scripted:
    evaluator = Scripted.for_space(space)
    evaluator.outcomes, evaluator.baseline_costs = list(outcomes), dict(baselines or {})
    evaluator.seen = []
    return evaluator


def costs(gflops: float, params_m: float) -> dict[str, float]:
    return {"gflops": gflops, "params_m": params_m}


def options(tmp_path: Path, space: dict | None = None, **kwargs) -> SearchOptions:
    loaded = load_space(write_space(tmp_path, space or SPACE))
    return SearchOptions(space=loaded, results_dir=tmp_path / "results", quiet=True, **kwargs)


# ------------------------------------------------------------------------------ stopping
def test_the_study_stops_after_25_failures_in_a_row(tmp_path):
    """24 failures, one success (which resets the count), 25 failures: the loop stops there,
    with trials left to run and candidates left in the script."""
    fail = EvaluationFailure("the candidate broke")
    outcomes = [fail] * 24 + [costs(0.1, 1.0)] + [fail] * 25 + [costs(0.2, 2.0)] * 10
    evaluator = scripted(load_space(write_space(tmp_path, SPACE)), outcomes)
    summary = run_search(options(tmp_path, n_trials=10), evaluator=evaluator)
    # the reason they failed is in the message, and the command exits non-zero
    assert summary.stopped_reason == "25 trials failed in a row; the last: the candidate broke"
    assert summary.failed_out and summary.exit_status == 1
    states = [t.state for t in join_study(options(tmp_path)).trials]
    assert states == [TrialState.FAIL] * 24 + [TrialState.COMPLETE] + [TrialState.FAIL] * 25
    assert summary.completed == 1 and summary.failed == 49
    assert len(evaluator.outcomes) == 10  # nothing more was asked for


def test_ctrl_c_stops_after_saving_and_the_same_command_continues(tmp_path, monkeypatch, capsys):
    """Ctrl-C in the third trial: the two completed trials and the interrupted one are in the
    tables, the command exits 130 and says so; the same command then completes the study."""
    space_file = write_space(tmp_path, SPACE)
    space = load_space(space_file)
    script = [costs(0.1, 1.0), costs(0.2, 2.0), KeyboardInterrupt()]
    evaluator = scripted(space, script)
    monkeypatch.setattr(Evaluator, "for_space", classmethod(lambda cls, *a, **k: evaluator))
    argv = ["search", "--space", str(space_file), "--results-dir", str(tmp_path / "results")]
    argv += ["--n-trials", "4", "--quiet"]
    assert main(argv) == 130
    assert "interrupted: completed trials are saved" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "results" / "costs" / "trials.csv")
    assert table["state"].tolist() == ["COMPLETE", "COMPLETE", "FAIL"]
    assert table.loc[2, "fail_reason"] == "interrupted (Ctrl-C / SIGINT)"
    assert table.loc[:1, "gflops"].tolist() == [0.1, 0.2]

    evaluator.outcomes = [costs(0.3, 3.0), costs(0.4, 4.0)]
    assert main(argv) == 0
    again = pd.read_csv(tmp_path / "results" / "costs" / "trials.csv")
    assert again["state"].tolist() == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert again["gflops"].tolist()[:2] == [0.1, 0.2] and evaluator.outcomes == []


# ---------------------------------------------------------------------------- baselines
def test_baselines_are_stored_once_and_the_dominance_list_is_exact(tmp_path, monkeypatch, capsys):
    """``search --baselines``: each baseline is measured like a candidate, stored in the study,
    flagged in trials.csv, never on the front, and the summary names exactly the candidates
    that dominate it (by hand: fewer GFLOPs and more parameters)."""
    space_file = write_space(tmp_path, SPACE)
    baselines = {"pvt_v2_b0": costs(0.5, 1.0), "swin_t": costs(0.05, 5.0)}
    # trial 0 and trial 2 dominate pvt_v2_b0; trial 1 has fewer parameters; none beats swin_t
    script = [costs(0.4, 2.0), costs(0.3, 0.5), costs(0.1, 1.5)]
    evaluator = scripted(load_space(space_file), script, baselines)
    monkeypatch.setattr(Evaluator, "for_space", classmethod(lambda cls, *a, **k: evaluator))
    argv = ["search", "--space", str(space_file), "--results-dir", str(tmp_path / "results")]
    argv += ["--n-trials", "3", "--baselines", "pvt_v2_b0,swin_t", "--sampler", "random"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "pvt_v2_b0 is dominated by: trial_0, trial_2" in out
    assert "swin_t is dominated by no candidate" in out
    assert evaluator.seen == ["pvt_v2_b0", "swin_t"] + ["candidate"] * 3

    folder = tmp_path / "results" / "costs"
    table = pd.read_csv(folder / "trials.csv").set_index("name")
    assert table.loc[["pvt_v2_b0", "swin_t"], "baseline"].astype(bool).all()
    assert not table.loc[["trial_0", "trial_1", "trial_2"], "baseline"].astype(bool).any()
    assert table.loc["swin_t", "gflops"] == 0.05 and table.loc["pvt_v2_b0", "params_m"] == 1.0
    pareto = pd.read_csv(folder / "pareto.csv")
    assert set(pareto["name"]) == {"trial_0", "trial_2"}  # trial_1 is dominated by trial_2
    study = join_study(options(tmp_path))
    assert {"baseline:pvt_v2_b0", "baseline:swin_t"} <= set(study.user_attrs)

    # the same command again: the baselines are not measured again
    evaluator.outcomes = [costs(0.2, 0.1)]
    argv[argv.index("3")] = "4"
    assert main(argv) == 0
    assert evaluator.seen.count("pvt_v2_b0") == 1 and evaluator.seen.count("swin_t") == 1


# ------------------------------------------------------------------------ the reference
def test_the_hypervolume_reference_falls_back_to_the_worst_observed_costs(tmp_path):
    """No ``reference_point`` and no constraint: a minimised cost's reference is 1.1x its worst
    (largest) value, a maximised one's 0.9x its worst (smallest)."""
    script = [costs(0.2, 1.0), costs(0.4, 2.0), costs(0.3, 3.0)]
    evaluator = scripted(load_space(write_space(tmp_path, SPACE)), script)
    summary = run_search(options(tmp_path, n_trials=3), evaluator=evaluator)
    assert summary.reference_point == pytest.approx([1.1 * 0.4, 0.9 * 1.0])
    # front (0.2, 1.0) and (0.3, 3.0); (0.4, 2.0) is dominated by (0.3, 3.0). Boxes up to the
    # reference (0.44, 0.9): [0.2, 0.3] x [0.9, 1.0] and [0.3, 0.44] x [0.9, 3.0]; normalised
    # by the minimised cost's reference (0.44) and the maximised one's best distance (3 - 0.9)
    assert summary.hypervolume == pytest.approx((0.1 * 0.1 + 0.14 * 2.1) / (0.44 * 2.1))


def test_the_hypervolume_reference_is_the_constraint_bound_when_there_is_one(tmp_path):
    space = {**SPACE, "constraints": {"max_gflops": 0.5}}
    script = [costs(0.2, 1.0), costs(0.4, 2.0)]
    evaluator = scripted(load_space(write_space(tmp_path, space)), script)
    summary = run_search(options(tmp_path, space, n_trials=2), evaluator=evaluator)
    assert summary.reference_point == pytest.approx([0.5, 0.9 * 1.0])


# ------------------------------------------------------------------------------ samplers
@pytest.mark.parametrize(
    ("name", "population"),
    [("small", 8), ("medium", 16), ("paper", 8)],
)
def test_nsga2_gets_the_spaces_population_size(tmp_path, name, population):
    """The README's table: the population each shipped space gives NSGA-II (Optuna's default
    is 50); read from the sampler the study got, created and joined."""
    search = SearchOptions(space=load_space(name), results_dir=tmp_path, quiet=True)
    for _ in ("create", "join"):
        sampler = join_study(search).sampler.inner  # in its StreamSampler
        assert isinstance(sampler, optuna.samplers.NSGAIISampler)
        assert sampler._population_size == population


def _first_proposal(search: SearchOptions) -> float:
    study = join_study(search)
    return study.ask({"x": FloatDistribution(0, 1)}).params["x"]


def test_each_worker_gets_its_own_sampler_seed(tmp_path):
    """``--workers``: worker i's base seed is seed + i (its first proposal on a fresh study is
    that seed's); a worker that joins a study later draws another stream
    (``test_workers_streams.py``), on any storage."""
    base = options(tmp_path, sampler="random", seed=5)
    reference = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    expected = reference.ask({"x": FloatDistribution(0, 1)}).params["x"]
    for index, study_name in ((2, "w2"), (0, "w0")):
        worker = dataclasses.replace(base, study_name=study_name, worker_index=index)
        assert worker.sampler_seed == 5 + index
        assert (_first_proposal(worker) == expected) == (index == 2)
    url = f"journal:{tmp_path / 'shared.log'}"
    by_hand = dataclasses.replace(base, storage=url, study_name="shared")
    assert by_hand.sampler_seed == 5  # a fresh study run by one process: reproducible
    first, joined = _first_proposal(by_hand), _first_proposal(by_hand)
    assert first != joined  # the second process to join draws its own stream


class _RecordingContext:
    """A stand-in for multiprocessing's spawn context: records, when each worker starts, its
    options and the thread variables it would inherit."""

    def __init__(self):
        self.started: list[tuple[SearchOptions, dict]] = []

    def Process(self, target, args, name):  # noqa: N802 (multiprocessing's name)
        context = self

        class Started:
            def start(self):
                keys = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
                context.started.append((args[0], {k: os.environ.get(k) for k in keys}))

        return Started()


def test_started_workers_get_threads_seeds_and_no_baselines_and_this_process_keeps_its_env(
    tmp_path, monkeypatch
):
    from dvbench.search import workers

    context = _RecordingContext()
    monkeypatch.setattr(workers.multiprocessing, "get_context", lambda method: context)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    base = options(tmp_path, seed=3, baselines=("swin_t",), seed_official=True)
    (tmp_path / "logs").mkdir()
    workers._start_workers(base, range(1, 4), 2, tmp_path / "logs")
    assert [o.worker_index for o, _ in context.started] == [1, 2, 3]
    assert [o.sampler_seed for o, _ in context.started] == [4, 5, 6]
    assert all(o.threads == 2 for o, _ in context.started)
    # baselines and seed trials are the first worker's job (this process), never theirs
    assert all(o.baselines == () and not o.seed_official for o, _ in context.started)
    for _, env in context.started:
        assert env == dict.fromkeys(env, "2")
    assert os.environ["OMP_NUM_THREADS"] == "7" and "MKL_NUM_THREADS" not in os.environ


# ------------------------------------------------------------------------------- retries
def _die(study: optuna.Study, trial: optuna.Trial, worker: str) -> None:
    """``trial`` ran in ``worker``, which beat an hour ago and went silent."""
    trial.set_user_attr("worker", {"id": worker, "trial": trial.number})
    trial.set_user_attr(HEARTBEAT, [trial.number, time.time() - 3600])


def test_a_dead_trial_is_retried_exactly_once(tmp_path):
    """A trial whose worker died is failed and queued again; when the retry's worker dies too,
    it is failed and not queued a third time."""
    search = options(tmp_path, n_trials=1)
    study = join_study(search)
    first = study.ask()
    first.suggest_int("depth3", 1, 3)
    _die(study, first, "a:1")
    assert reap_stale_trials(study, search) == [first.number]
    trials = study.trials
    assert trials[first.number].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.state == TrialState.WAITING]
    assert retry.system_attrs["failed_trial"] == first.number

    second = study.ask()  # a worker takes the queued retry, then dies as well
    assert second.number == retry.number and second.params == {"depth3": first.params["depth3"]}
    _die(study, second, "b:2")
    assert reap_stale_trials(study, search) == [second.number]
    trials = study.trials
    assert trials[second.number].state == TrialState.FAIL
    assert len(trials) == 2 and not [t for t in trials if t.state == TrialState.WAITING]
    table = trials_frame(study).set_index("number")
    assert table.loc[second.number, "retried_from"] == first.number


# ------------------------------------------------------------------------- atomic tables
_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
import pandas as pd
from dvbench import files

def killed(source, target):  # the process dies between the temporary file and the rename
    os.kill(os.getpid(), signal.SIGKILL)

files.os.replace = killed
files.write_atomic(pd.DataFrame({"a": [2, 3], "b": ["new", "rows"]}), Path(sys.argv[1]))
"""


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_writer_killed_before_the_rename_leaves_the_old_table_intact(tmp_path, suffix):
    path = write_atomic(pd.DataFrame({"a": [1], "b": ["old"]}), tmp_path / f"trials{suffix}")
    before = path.read_bytes()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_KILLED_WRITER), str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    # the precondition: the new table was complete in its temporary file when the writer died
    (temporary,) = [p for p in tmp_path.iterdir() if p.name.startswith(f".{path.stem}.")]
    read = pd.read_parquet if suffix == ".parquet" else pd.read_csv
    assert read(temporary)["b"].tolist() == ["new", "rows"]
    assert path.read_bytes() == before  # readers still see the whole old table
    assert read(path)["b"].tolist() == ["old"]


def test_a_failed_write_leaves_the_old_table_and_no_temporary_file(tmp_path, monkeypatch):
    path = write_atomic(pd.DataFrame({"a": [1]}), tmp_path / "pareto.csv")

    def full_disk(self, *args, **kwargs):
        Path(args[0]).write_text("a\n2\n")  # part of the new table, then the disk is full
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(pd.DataFrame({"a": [2, 3]}), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pareto.csv"]
    assert path.read_text() == "a\n1\n"


def test_exported_tables_go_through_the_atomic_write(tmp_path, monkeypatch):
    """Every table a study writes (trials and pareto, CSV and Parquet) is renamed into place."""
    from dvbench import files

    renamed: list[tuple[str, str]] = []
    real_replace = os.replace

    def record(source, target):
        if Path(target).suffix in (".csv", ".parquet"):
            renamed.append((Path(source).name, Path(target).name))
        real_replace(source, target)

    monkeypatch.setattr(files.os, "replace", record)
    evaluator = scripted(load_space(write_space(tmp_path, SPACE)), [costs(0.1, 1.0)])
    run_search(options(tmp_path, n_trials=1), evaluator=evaluator)
    names = {"trials.csv", "trials.parquet", "pareto.csv", "pareto.parquet"}
    assert {target for _, target in renamed} == names
    assert all(source.startswith(f".{Path(target).stem}.") for source, target in renamed)


def test_the_space_record_is_built_once_per_run(tmp_path, monkeypatch):
    """What a trial's meaning depends on is built once and passed on (the study's settings,
    its version record, each trial's version), not rebuilt at every stop."""
    from dvbench.search import _options

    builds = []
    real = _options.space_record
    monkeypatch.setattr(_options, "space_record", lambda space: builds.append(1) or real(space))
    evaluator = scripted(load_space(write_space(tmp_path, SPACE)), [costs(0.1, 1.0)] * 3)
    run_search(options(tmp_path, n_trials=3), evaluator=evaluator)
    assert len(builds) == 1
