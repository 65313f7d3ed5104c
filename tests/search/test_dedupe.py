"""A candidate already measured is found by its normalised config and fidelity, and its
measurement is reused and linked rather than trained again (issue 39; the hook that calls
this from the trial runner is the lead's to add)."""

from __future__ import annotations

from search_helpers import COST_SPACE, peek_study, write_space

from dvbench.search import SearchOptions, load_space, run_search
from dvbench.search._dedupe import DUPLICATE_OF, config_key, measured_twin, reuse_measurement
from dvbench.search.record import CONFIG, METRICS_ATTR, RUN


def _study(tmp_path):
    space = load_space(write_space(tmp_path, {**COST_SPACE, "seeds": {}, "n_trials": 2}))
    run_search(SearchOptions(space=space, results_dir=tmp_path / "r", quiet=True))
    return peek_study("costs", tmp_path / "r"), space


def _complete(study):
    return next(t for t in study.trials if t.state.name == "COMPLETE")


def test_the_name_is_not_part_of_the_network():
    same = config_key({"name": "a", "depths": [1, 2]})
    assert same == config_key({"name": "b", "depths": [1, 2]})
    assert config_key({"depths": [1, 2]}) != config_key({"depths": [2, 1]})


def test_a_measured_candidate_is_found_and_reused(tmp_path):
    study, space = _study(tmp_path)
    done = _complete(study)
    config = {**done.user_attrs[CONFIG], "name": "another label"}
    new = study.ask()
    twin = measured_twin(study.get_trials(deepcopy=False), new.number, config, 1)
    assert twin is not None and twin.number == done.number
    values = reuse_measurement(new, twin, space.metrics)
    study.tell(new, values)
    again = study.trials[new.number]
    assert again.user_attrs[DUPLICATE_OF] == done.number
    assert again.user_attrs[METRICS_ATTR] == done.user_attrs[METRICS_ATTR]
    assert again.values == done.values


def test_other_fidelities_versions_and_configs_are_not_twins(tmp_path):
    study, _ = _study(tmp_path)
    done = _complete(study)
    trials = study.get_trials(deepcopy=False)
    config = done.user_attrs[CONFIG]
    assert measured_twin(trials, 99, config, version=2) is None  # another space version
    assert measured_twin(trials, 99, {**config, "depths": [9, 9, 9, 9]}, 1) is None
    promoted = study.ask()
    promoted.set_user_attr(RUN, {"candidate": done.number, "rung": 1, "repeat": 0})
    promoted.set_user_attr(CONFIG, config)
    study.tell(promoted, done.values)
    only_first_runs = measured_twin(study.get_trials(deepcopy=False), 99, config, 1)
    assert only_first_runs.number == done.number  # a promotion is never the twin
