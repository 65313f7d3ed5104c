"""The pre-filter: a training-free score decides which sampled candidates are trained."""

from __future__ import annotations

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from search_helpers import write_space
from test_multifidelity import MF_SPACE

from dvbench.search import SearchOptions, load_space, run_search
from dvbench.search._prefilter import Prefilter
from dvbench.search.storage import open_storage


def test_the_rank_rule_by_hand():
    rule = Prefilter(signal="synflow", keep=1, sample=4)
    assert rule.keeps(5.0, [])  # the first candidate always trains
    # 2 scored: ceil(2/4) = 1 place; 3.0 ranks 2nd behind 5.0
    assert rule.rank(3.0, [5.0]) == (2, 2, 1) and not rule.keeps(3.0, [5.0])
    assert rule.keeps(6.0, [5.0])
    # 5 scored: ceil(5/4) = 2 places; ties share the better rank
    assert rule.rank(4.0, [9.0, 4.0, 1.0, 0.5]) == (2, 5, 2)
    assert not rule.keeps(1.0, [9.0, 4.0, 2.0, 0.5])  # rank 3 of 5


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"keep": 1}, "signal"),
        ({"signal": "magic"}, "signal"),
        ({"signal": "synflow", "keep": 4, "sample": 4}, "below sample"),
        ({"signal": "synflow", "keep": 0}, "positive"),
        ({"signal": "synflow", "top": 2}, "top"),
    ],
)
def test_prefilter_errors_name_the_field(raw, message):
    with pytest.raises(ValueError, match=message):
        Prefilter.parse(raw)


def test_a_space_without_training_has_no_prefilter(tmp_path):
    costs = {k: v for k, v in MF_SPACE.items() if k not in ("fidelity", "train")}
    costs["objectives"] = [{"metric": "gflops", "direction": "minimize"}]
    with pytest.raises(Exception, match="prefilter"):
        load_space(write_space(tmp_path, {**costs, "prefilter": {"signal": "synflow"}}))


@pytest.mark.slow
def test_pruned_candidates_are_recorded_with_score_and_reason(tmp_path):
    raw = {k: v for k, v in MF_SPACE.items() if k != "fidelity"}
    raw.update(n_trials=3, prefilter={"signal": "params_m", "keep": 1, "sample": 2})
    space = load_space(write_space(tmp_path, raw, "pf.yaml"))
    options = SearchOptions(space=space, results_dir=tmp_path / "results", quiet=True)
    summary = run_search(options)
    assert summary.completed == 3
    trials = optuna.load_study(study_name="mf", storage=open_storage(options.storage_url)).trials
    scored = []
    for t in trials:
        score = t.user_attrs["prefilter"]["score"]
        # the rule, replayed in trial order: trained exactly when it ranked high enough
        kept = Prefilter("params_m", 1, 2).keeps(score, scored)
        assert (t.state == TrialState.COMPLETE) == kept, t.number
        if not kept:
            assert t.state == TrialState.PRUNED
            assert t.user_attrs["fail_reason"].startswith("pre-filter: params_m")
            assert "metrics" not in t.user_attrs  # never trained
        # params_m as the signal: the score is the candidate's parameter count
        if kept:
            assert score == pytest.approx(t.user_attrs["metrics"]["params_m"], rel=1e-6)
        scored.append(score)
    assert any(t.state == TrialState.PRUNED for t in trials)
    table = pd.read_csv(tmp_path / "results" / "mf" / "trials.csv")
    assert table["prefilter_score"].notna().all() and len(table) == len(trials)
