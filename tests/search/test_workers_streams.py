"""Workers never repeat each other (issue 39): every process that joins a study draws its own
sampler stream, a resumed search does not start over at trial 0's knobs, and a fresh study
run by one process with ``--seed`` is still reproducible."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import optuna
import pytest
from optuna.distributions import FloatDistribution
from search_helpers import COST_SPACE, REPO, peek_study, write_space

from dvbench.search import SearchOptions, join_study, run_search
from dvbench.search._options import StreamSampler, stream_seed
from dvbench.search.record import started_by
from dvbench.space import load_space

# cost-only, 4 x 6 x 2 = 48 buildable candidates: chance alone rarely repeats a sequence
WIDE_SPACE = {
    **COST_SPACE,
    "knobs": {
        "width": {"choices": [8, 16, 24, 32]},
        "depth3": {"low": 1, "high": 6},
        "semantic_grid": {"choices": [1, 2]},
    },
    "seeds": {},
}


def _options(tmp_path, **kwargs) -> SearchOptions:
    tmp_path.mkdir(parents=True, exist_ok=True)
    space = load_space(write_space(tmp_path, WIDE_SPACE))
    return SearchOptions(space=space, results_dir=tmp_path / "results", quiet=True, **kwargs)


def _knobs(study: optuna.Study, numbers) -> list[tuple]:
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    return [tuple(sorted(trials[n].params.items())) for n in numbers]


def test_the_stream_is_the_seed_for_trial_0_and_mixed_after():
    assert stream_seed(7, 0) == 7
    streams = {stream_seed(7, n) for n in range(1, 200)}
    assert len(streams) == 199 and 7 not in streams
    assert stream_seed(7, 5) == stream_seed(7, 5) != stream_seed(8, 5)


def test_a_fresh_study_with_a_seed_is_reproducible(tmp_path):
    first = _options(tmp_path / "a", seed=3, n_trials=4, sampler="random")
    second = _options(tmp_path / "b", seed=3, n_trials=4, sampler="random")
    run_search(first)
    run_search(second)
    a = peek_study("costs", tmp_path / "a" / "results")
    b = peek_study("costs", tmp_path / "b" / "results")
    assert _knobs(a, range(4)) == _knobs(b, range(4))


@pytest.mark.parametrize("sampler", ["nsga2", "random"])
def test_a_resumed_search_does_not_repeat_the_first_trials(tmp_path, sampler):
    # two trials: NSGA-II (population 4) is still drawing its first generation at random
    options = _options(tmp_path, seed=0, n_trials=2, sampler=sampler)
    run_search(options)
    run_search(dataclasses.replace(options, n_trials=4))  # the same seed, more trials
    study = peek_study("costs", tmp_path / "results")
    assert len(study.trials) >= 4
    assert _knobs(study, [2]) != _knobs(study, [0])  # not trial 0's knobs again
    assert _knobs(study, [2, 3]) != _knobs(study, [0, 1])


def test_a_joining_process_gets_another_stream(tmp_path):
    """Two processes with one seed on one study: their first proposals differ."""
    options = _options(tmp_path, seed=5, sampler="random")
    creator, joiner = join_study(options), join_study(options)
    assert isinstance(creator.sampler, StreamSampler)
    x = {"x": FloatDistribution(0, 1)}
    first, second = creator.ask(x), joiner.ask(x)
    assert (first.number, second.number) == (0, 1)
    assert creator.sampler.stream == 5 and joiner.sampler.stream == stream_seed(5, 1)
    alone = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=5)).ask(x)
    assert first.params["x"] == alone.params["x"]  # trial 0: the plain seed
    assert second.params["x"] != first.params["x"]


def test_two_search_processes_on_one_journal_study_propose_different_candidates(tmp_path):
    space = write_space(tmp_path, {**WIDE_SPACE, "n_trials": 10})
    results = tmp_path / "results"
    # the random sampler: each process's proposals are its stream alone, whatever the timing
    cmd = [sys.executable, str(REPO / "cli.py"), "search", "--space", str(space),
           "--results-dir", str(results), "--sampler", "random", "--quiet"]  # fmt: skip
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    study = peek_study("costs", results)
    by_worker: dict[str, list[tuple]] = {}
    for trial in sorted(study.trials, key=lambda t: t.number):
        by_worker.setdefault(started_by(trial), []).append(tuple(sorted(trial.params.items())))
    assert len(by_worker) == 2, by_worker.keys()  # both processes ran trials
    one, two = by_worker.values()
    shared = min(len(one), len(two))
    assert shared >= 2
    assert one[:shared] != two[:shared]  # same seed, yet not the same proposals in pairs
