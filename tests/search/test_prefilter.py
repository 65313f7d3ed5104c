"""The pre-filter: a training-free score decides which sampled candidates are trained."""

from __future__ import annotations

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from search_helpers import write_space
from test_multifidelity import MF_SPACE

from dvbench.search import SearchOptions, run_search
from dvbench.search.storage import open_storage
from dvbench.space import load_space
from dvbench.space.prefilter import Prefilter


def test_the_rank_rule_by_hand():
    rule = Prefilter(signal="synflow", keep=1, sample=4)
    assert rule.keeps([5.0], [])  # the first candidate always trains
    # 2 scored: ceil(2/4) = 1 place; 3.0 places 2nd behind 5.0
    assert rule.rank([3.0], [[5.0]]) == (2, 2, 1) and not rule.keeps([3.0], [[5.0]])
    assert rule.keeps([6.0], [[5.0]])
    # 5 scored: ceil(5/4) = 2 places; an exact tie goes to the earlier candidate
    assert rule.rank([4.0], [[9.0], [4.0], [1.0], [0.5]]) == (3, 5, 2)
    assert rule.rank([9.5], [[9.0], [4.0], [1.0], [0.5]]) == (1, 5, 2)


def test_the_predicted_front_keeps_the_cheap_end():
    """(score max, GFLOPs min): a low score on a cheap network is still non-dominated."""
    rule = Prefilter(signal="synflow", keep=1, sample=2)
    directions = ["maximize", "minimize"]
    earlier = [[500.0, 0.9], [450.0, 0.8], [300.0, 0.6]]  # one front, three points
    # 100 at 0.1 GFLOPs: the cheapest, an extreme of the front: placed 1st (or tied 1st)
    rank, scored, places = rule.rank([100.0, 0.1], earlier, directions)
    assert (scored, places) == (4, 2) and rank <= 2
    # by the score alone it would be last
    assert rule.rank([100.0], [[e[0]] for e in earlier]) == (4, 4, 2)
    # 280 at 0.95 GFLOPs is dominated by all three: last, not trained
    assert rule.rank([280.0, 0.95], earlier, directions) == (4, 4, 2)


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
    raw.update(n_trials=4, prefilter={"signal": "params_m", "keep": 1, "sample": 2})
    space = load_space(write_space(tmp_path, raw, "pf.yaml"))
    options = SearchOptions(space=space, results_dir=tmp_path / "results", quiet=True)
    summary = run_search(options)
    assert summary.completed == 4
    trials = optuna.load_study(study_name="mf", storage=open_storage(options.storage_url)).trials
    earlier = []
    for t in trials:
        if t.user_attrs.get("duplicate_of") is not None:  # a copy of a trained candidate
            assert t.state == TrialState.COMPLETE and "prefilter" not in t.user_attrs
            continue
        values = t.user_attrs["prefilter"]["values"]
        # the rule, replayed in trial order on (score, GFLOPs): trained exactly when it placed
        # high enough on the predicted front
        kept = Prefilter("params_m", 1, 2).keeps(values, earlier, ["maximize", "minimize"])
        assert (t.state == TrialState.COMPLETE) == kept, t.number
        assert values[1] == t.user_attrs["metrics"]["gflops"]  # costs recorded either way
        if not kept:
            assert t.state == TrialState.PRUNED
            assert t.user_attrs["fail_reason"].startswith("pre-filter: params_m")
            assert "top1" not in t.user_attrs["metrics"]  # never trained
        # params_m as the signal: the score is the candidate's parameter count
        assert values[0] == pytest.approx(t.user_attrs["metrics"]["params_m"], rel=1e-6)
        earlier.append(values)
    assert any(t.state == TrialState.PRUNED for t in trials)
    table = pd.read_csv(tmp_path / "results" / "mf" / "trials.csv")
    scored = table[table["duplicate_of"].isna()]  # copies were not scored again
    assert scored["prefilter_score"].notna().all() and len(table) == len(trials)
