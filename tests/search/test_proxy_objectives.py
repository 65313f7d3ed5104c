"""Training-free proxies as a space's objectives and constraints."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from search_helpers import COST_SPACE, write_space

from dvbench.metrics import METRICS, PROXY_METRICS, violation
from dvbench.proxies import BASELINES, PROXIES
from dvbench.search import SearchOptions, run_search
from dvbench.space import load_space


def test_the_metric_table_knows_every_proxy_the_proxies_room_has():
    assert set(PROXY_METRICS) == set(PROXIES) - set(BASELINES)
    for name in PROXY_METRICS:
        assert METRICS[name].direction == PROXIES[name].direction == "maximize"
        assert METRICS[name].constraint == f"min_{name}"


def test_a_lower_bound_is_violated_below_it():
    assert violation("min_naswot", 90.0, 100.0) == pytest.approx(0.1)
    assert violation("min_naswot", 110.0, 100.0) < 0
    assert violation("min_jacob_cov", -300.0, -200.0) == pytest.approx(0.5)  # negative bounds
    assert violation("max_gflops", 2.0, 1.0) == pytest.approx(1.0)


def test_a_space_without_data_cannot_score_proxies(tmp_path):
    space = {**COST_SPACE, "objectives": [{"metric": "synflow"}, {"metric": "gflops"}]}
    with pytest.raises(ValueError, match="train.resolution"):
        load_space(write_space(tmp_path, space))


def test_search_on_a_proxy_objective_with_a_proxy_constraint(tmp_path):
    space = load_space(
        write_space(
            tmp_path,
            {
                **COST_SPACE,
                "knobs": {**COST_SPACE["knobs"], "semantic_grid": {"choices": [1, 2]}},
                "objectives": [{"metric": "synflow"}, {"metric": "gflops"}],
                "constraints": {"min_naswot": -1e9},  # met by any finite score
                "train": {"data": "digits", "resolution": 32, "train_samples": 4},
                "n_trials": 3,
                "seeds": {},
            },
        )
    )
    assert space.proxies == ("synflow", "naswot") and not space.needs_training
    summary = run_search(
        SearchOptions(space=space, results_dir=tmp_path / "r", quiet=True, sampler="random")
    )
    assert summary.completed == 3
    trials = pd.read_csv(tmp_path / "r" / "costs" / "trials.csv")
    done = trials[trials.state == "COMPLETE"]
    assert done["synflow"].map(math.isfinite).all() and done["naswot"].map(math.isfinite).all()
    assert done["feasible"].all() and "top1" in trials and trials["top1"].isna().all()
