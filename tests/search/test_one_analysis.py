"""A trial is analysed once (issue 38): after each trial the loop makes one snapshot of the
study (rows, P(front), front) that the tables, the observer (the terminal display) and the
ladder all read, so the front probability is drawn once per trial, not three times."""

from __future__ import annotations

import pandas as pd
from search_helpers import COST_SPACE, write_space
from test_noise import _every_candidate, _study, _truth

from dvbench.search import SearchOptions, run_study, tables
from dvbench.search.display import SearchDisplay
from dvbench.space import load_space, repeats


def _counting(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = tables.front_probability

    def counted(values, *args, **kwargs):
        calls.append(len(values))
        return real(values, *args, **kwargs)

    monkeypatch.setattr(tables, "front_probability", counted)
    monkeypatch.setattr(repeats, "front_probability", counted)
    return calls


def test_the_front_probability_is_drawn_once_per_trial(tmp_path, monkeypatch):
    calls = _counting(monkeypatch)
    space = load_space(write_space(tmp_path, {**COST_SPACE, "n_trials": 6}))
    options = SearchOptions(space=space, results_dir=tmp_path / "results", quiet=True)
    seen = []

    class Watching(SearchDisplay):
        def on_trial(self, snapshot, trial):
            seen.append((trial.number, len(snapshot.front)))
            super().on_trial(snapshot, trial)

    with Watching(options) as display:
        summary = run_study(options, observer=display)
        display.finish(summary)
    ran = summary.new_trials
    assert ran >= 6 and len(seen) == ran  # the observer heard every trial
    # at most one per trial (none while no candidate completed), one as the study ends
    assert len(calls) <= ran + 1
    # what the observer was shown is what the tables say
    front = pd.read_csv(tmp_path / "results" / "costs" / "pareto.csv")
    assert seen[-1][1] == len(front) == len(summary.pareto)


def test_the_ladder_reads_the_loops_analysis(tmp_path, monkeypatch):
    """Repeats decided on the snapshot the loop made after the last trial: no extra draw."""
    truth = _truth(0.4)
    space, options, evaluator = _study(tmp_path, truth, n_trials=6, repeats={"seeds": 3})
    _every_candidate(options)
    calls = _counting(monkeypatch)
    from dvbench.search import run_search

    summary = run_search(options, evaluator=evaluator)
    assert len(calls) == summary.new_trials + 1
