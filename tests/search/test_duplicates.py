"""A candidate already measured is not trained again (issue 39): a first run whose config
and space version match an earlier completed first run copies its result (``duplicate_of``),
the tables keep one row of it, and repeats still train."""

from __future__ import annotations

import json

import pandas as pd
from search_helpers import COST_SPACE, peek_study, write_space

from dvbench.evaluate import Evaluator
from dvbench.search import SearchOptions, record, run_search
from dvbench.search.tables import Criteria, candidates, trials_frame
from dvbench.space import load_space

# 1 x 2 x 2 = 4 buildable candidates; 9 trials must propose some of them again
SMALL_SPACE = {
    **COST_SPACE,
    "knobs": {
        "width": {"choices": [8]},
        "depth3": {"low": 1, "high": 2},
        "semantic_grid": {"choices": [1, 2]},
    },
    "sampler": {"name": "random"},
    "seeds": {},
    "n_trials": 9,
}


def _run(tmp_path, monkeypatch):
    evaluated: list[str] = []
    real = Evaluator.evaluate

    def counting(self, cfg, *args, **kwargs):
        evaluated.append(json.dumps(cfg.to_dict(), sort_keys=True))
        return real(self, cfg, *args, **kwargs)

    monkeypatch.setattr(Evaluator, "evaluate", counting)
    space = load_space(write_space(tmp_path, SMALL_SPACE))
    options = SearchOptions(space=space, results_dir=tmp_path / "results", quiet=True, seed=0)
    run_search(options)
    return peek_study("costs", tmp_path / "results"), evaluated


def test_a_candidate_proposed_again_is_linked_not_measured_again(tmp_path, monkeypatch):
    study, evaluated = _run(tmp_path, monkeypatch)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 9
    assert len(evaluated) == len(set(evaluated)) <= 4  # each network measured once
    first_of: dict[str, int] = {}
    copies = 0
    for trial in sorted(complete, key=lambda t: t.number):
        key = json.dumps(trial.user_attrs[record.CONFIG], sort_keys=True)
        linked = trial.user_attrs.get(record.DUPLICATE_OF)
        if key in first_of:
            copies += 1
            assert linked == first_of[key]
            assert trial.values == study.trials[first_of[key]].values
        else:
            assert linked is None
            first_of[key] = trial.number
    assert copies == 9 - len(first_of) >= 5


def test_the_tables_keep_one_row_per_candidate(tmp_path, monkeypatch):
    study, _ = _run(tmp_path, monkeypatch)
    frame = trials_frame(study)
    assert frame[record.DUPLICATE_OF].notna().sum() >= 5
    criteria = Criteria.of_space(load_space(write_space(tmp_path, SMALL_SPACE)))
    pool = candidates(frame, criteria.metrics)
    assert pool[record.DUPLICATE_OF].isna().all()
    assert not pool["config"].duplicated().any()
    written = pd.read_csv(tmp_path / "results" / "costs" / "trials.csv")
    assert record.DUPLICATE_OF in written.columns


def test_the_report_says_which_trials_were_copies(tmp_path, monkeypatch):
    from dvbench.report.left_off import copies_text

    study, _ = _run(tmp_path, monkeypatch)
    text = copies_text(trials_frame(study))
    copies = [t for t in study.trials if t.user_attrs.get(record.DUPLICATE_OF) is not None]
    first = min(copies, key=lambda t: t.number)
    assert text.startswith(f"{len(copies)} completed trials proposed a candidate already")
    assert f"trial {first.number} = trial {first.user_attrs[record.DUPLICATE_OF]}" in text
    assert copies_text(trials_frame(study).assign(duplicate_of=None)) == ""
