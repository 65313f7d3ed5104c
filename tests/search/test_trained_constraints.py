"""A bound on what training measures (``max_test_loss``) is judged after the run trains
(before, it was parsed and never applied): a run over it is infeasible and off the front, one
under it is feasible; a space where it cannot be judged once per candidate refuses it."""

from __future__ import annotations

import math

import pytest
from search_helpers import peek_study, write_space
from test_multifidelity import MF_SPACE

from dvbench.search import SearchOptions, run_search, trials_frame
from dvbench.search.record import is_feasible
from dvbench.space import load_space

SPACE = {
    **{k: v for k, v in MF_SPACE.items() if k != "fidelity"},
    "n_trials": 2,
    "objectives": [
        {"metric": "test_loss", "direction": "minimize"},
        {"metric": "gflops", "direction": "minimize"},
    ],
}


@pytest.mark.parametrize(("bound", "feasible"), [(1e-6, False), (1e6, True)])
def test_max_test_loss_is_judged_after_training(tmp_path, bound, feasible):
    raw = {**SPACE, "constraints": {"max_test_loss": bound}}
    space = load_space(write_space(tmp_path, raw, "tl.yaml"))
    options = SearchOptions(space=space, results_dir=tmp_path / "results", quiet=True)
    summary = run_search(options)
    study = peek_study("mf", tmp_path / "results")
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 2
    for trial in done:
        loss = trial.user_attrs["metrics"]["test_loss"]
        assert math.isfinite(loss)
        assert set(trial.constraints) == {"max_test_loss"}
        judged = trial.constraints["max_test_loss"]  # on the run's own test loss
        assert (judged <= 0) is feasible and (judged > 0) == (loss > bound)
        assert is_feasible(trial) is feasible
    assert (len(summary.pareto) > 0) is feasible
    table = trials_frame(study)
    assert table["feasible"].eq(feasible).all()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fidelity": {"rungs": [1, 2], "eta": 2}}, "several runs"),
        ({"repeats": {"seeds": 2}}, "several runs"),
        ({"objectives": [{"metric": "gflops", "direction": "minimize"}]}, "trains nothing"),
    ],
)
def test_a_space_that_cannot_judge_it_once_refuses_it(tmp_path, changes, message):
    raw = {**SPACE, "constraints": {"max_test_loss": 2.0}, **changes}
    raw = {k: v for k, v in raw.items() if v is not None}
    objectives = raw["objectives"]
    if not any(o["metric"] == "top1" for o in objectives) and "fidelity" in changes:
        raw["objectives"] = [{"metric": "top1", "direction": "maximize"}, *objectives]
    with pytest.raises(Exception, match=message):
        load_space(write_space(tmp_path, raw, "tl.yaml"))
