"""Every failed trial says why (issue 39): an error no step expected (a bug, a library's
failure) fails that trial with its type and first line as ``fail_reason``; the study goes on."""

from __future__ import annotations

from search_helpers import COST_SPACE, peek_study, write_space

from dvbench.evaluate import Evaluator
from dvbench.search import SearchOptions, record, run_search
from dvbench.space import load_space

SPACE = {**COST_SPACE, "sampler": {"name": "random"}, "seeds": {}, "n_trials": 4}


def test_an_unexpected_error_fails_the_trial_with_its_reason(tmp_path, monkeypatch):
    real, calls = Evaluator.evaluate, []

    def flaky(self, cfg, *args, **kwargs):
        calls.append(cfg)
        if len(calls) == 2:
            raise ZeroDivisionError("weights.pt\nsecond line")
        return real(self, cfg, *args, **kwargs)

    monkeypatch.setattr(Evaluator, "evaluate", flaky)
    space = load_space(write_space(tmp_path, SPACE))
    run_search(SearchOptions(space=space, results_dir=tmp_path / "results", quiet=True, seed=1))
    study = peek_study("costs", tmp_path / "results")
    failed = [t for t in study.trials if t.state.name == "FAIL"]
    assert all(t.user_attrs.get(record.FAIL_REASON) for t in failed)  # none without a reason
    reasons = [t.user_attrs[record.FAIL_REASON] for t in failed]
    assert "ZeroDivisionError: weights.pt" in reasons  # its first line
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 4  # the study went on
