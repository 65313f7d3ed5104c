"""Claims only the noise allows: standard errors, the noise-aware dominance rule, front
probabilities and ties, training seeds keyed to the network, and repeats where the front is
unsure -- each pinned by hand or on a scripted evaluator with known true means."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from search_helpers import NOISY_SPACE, knob_key, noisy_script, write_space

from dvbench.evaluate import training_seed
from dvbench.metrics import accuracy_standard_error, format_with_error
from dvbench.search import SearchOptions, join_study, run_search, trials_frame
from dvbench.search.record import run_of
from dvbench.search.tables import Criteria, candidates
from dvbench.space import load_space
from dvbench.space.repeats import Repeats, repeats_due
from dvbench.stats.pareto import STRICT, DominanceRule, front_probability

MAX_MIN = ["maximize", "minimize"]  # (top1, gflops)


# ------------------------------------------------------------------------------ the rule
def test_the_rule_by_hand():
    rule = DominanceRule(0.95)
    assert rule.z == pytest.approx(1.6449, abs=1e-4)
    # a is cheaper; both SEs 1: the difference's SE is sqrt(2), the margin 1.645 * 1.414 = 2.33
    assert rule.dominates([53, 1], [50, 2], MAX_MIN, [1, 0], [1, 0])  # 3 > 2.33
    assert not rule.dominates([52, 1], [50, 2], MAX_MIN, [1, 0], [1, 0])  # 2 < 2.33: tied
    assert STRICT.dominates([52, 1], [50, 2], MAX_MIN, [1, 0], [1, 0])  # SEs ignored
    # equal costs: better in accuracy by more than the margin, or not at all
    assert rule.dominates([53, 1], [50, 1], MAX_MIN, [1, 0], [1, 0])
    assert not rule.dominates([50, 1], [50, 1], MAX_MIN, [1, 0], [1, 0])
    # a more expensive network never dominates, however accurate
    assert not rule.dominates([90, 3], [50, 2], MAX_MIN, [1, 0], [1, 0])
    # exact objectives (SE 0) compare as they are
    assert rule.dominates([50, 1], [50, 2], MAX_MIN) and rule.dominates([50, 1], [49, 1], MAX_MIN)
    for bad in (0.3, 1.0, -0.1, math.nan, True):
        with pytest.raises(ValueError, match="confidence"):
            DominanceRule(bad)


def test_the_front_keeps_ties_and_drops_the_clearly_worse():
    values = [[50.0, 1.0], [51.0, 2.0], [50.5, 3.0], [60.0, 4.0], [55.0, 5.0]]
    errors = [[1.0, 0.0]] * 5
    noisy = DominanceRule(0.95).front(values, MAX_MIN, errors)
    strict = STRICT.front(values, MAX_MIN, errors)
    # strict: 50.5 at 3 is beaten by 51 at 2; with SE 1 that 0.5 gap is noise: tied
    assert strict.tolist() == [True, True, False, True, False]
    assert noisy.tolist() == [True, True, True, True, False]  # 55 at 5 vs 60 at 4: 5 > 2.33
    tied = DominanceRule(0.95).tied(values, MAX_MIN, errors)
    assert tied[0, 1] and tied[1, 2] and not tied[0, 3] and not tied[0, 0]


def test_front_probabilities():
    exact = front_probability([[50, 1], [49, 2], [60, 3]], MAX_MIN)
    assert exact.tolist() == [1.0, 0.0, 1.0]
    # equal costs and equal means: each is on the front in about half the draws
    even = front_probability([[50, 1], [50, 1]], MAX_MIN, [[1, 0], [1, 0]])
    assert even == pytest.approx([0.5, 0.5], abs=0.05)
    # 3 SEs of the difference apart: the worse one is almost never on the front
    apart = front_probability([[54.3, 1], [50, 1]], MAX_MIN, [[1, 0], [1, 0]])
    assert apart[0] > 0.99 and apart[1] < 0.01
    again = front_probability([[50, 1], [50, 1]], MAX_MIN, [[1, 0], [1, 0]])
    assert (again == even).all()  # a fixed seed: the same on every worker


def test_crowding_ties_are_broken_by_the_front_probability_not_the_number():
    # a front of two: both extremes (infinite crowding). The later candidate (9) is surely on
    # the front; the earlier (3) only probably: 9 goes first
    values = [[50.0, 1.0], [52.0, 1.0]]
    errors = [[1.0, 0.0], [1.0, 0.0]]
    assert DominanceRule(0.95).order(values, MAX_MIN, [3, 9], errors) == [9, 3]
    assert STRICT.order([[50.0, 1.0], [52.0, 2.0]], MAX_MIN, [3, 9]) == [3, 9]  # exact: number


# -------------------------------------------------------------------- standard errors
def test_standard_errors_and_their_printed_precision():
    assert accuracy_standard_error(50.0, 8000) == pytest.approx(0.559, abs=0.001)
    assert math.isnan(accuracy_standard_error(50.0, None))
    assert format_with_error(86.6667, 1.83) == "86.7 ± 1.8"
    assert format_with_error(48.481, 0.559) == "48.48 ± 0.56"
    assert format_with_error(48.481, math.nan) == "48.48"


def test_seed_errors_pool_over_candidates_with_several_seeds():
    from dvbench.search._runs import add_uncertainty

    frame = pd.DataFrame({
        "top1": [50.0, 60.0, 55.0, 70.0], "test_images": [8000] * 4, "budget": [None] * 4,
        "top1_seeds": [2, 2, 1, 3], "top1_seed_sd": [1.0, 2.0, None, 0.5],
    })  # fmt: skip
    out = add_uncertainty(frame)
    pooled = (1 * 1.0**2 + 1 * 2.0**2 + 2 * 0.5**2) / 4  # over 1 + 1 + 2 degrees of freedom
    # the seeds' share shrinks with the seeds; the test set's (binomial here) does not
    binomial = [accuracy_standard_error(v, 8000) ** 2 for v in frame["top1"]]
    shares = [pooled / 2, pooled / 2, pooled, pooled / 3]
    expected = [math.sqrt(s + b) for s, b in zip(shares, binomial)]
    assert out["top1_se"].tolist() == pytest.approx(expected)
    assert set(out["top1_se_from"]) == {"seeds (pooled, df=4)"}
    # Welch-Satterthwaite: the seed share carries the pooled 4 df, the test term is known
    assert out["top1_df"].tolist() == pytest.approx(
        [(s + b) ** 2 / (s**2 / 4) for s, b in zip(shares, binomial)]
    )
    alone = add_uncertainty(frame.assign(top1_seeds=1, top1_seed_sd=None))
    assert alone["top1_se"][0] == pytest.approx(accuracy_standard_error(50.0, 8000))
    assert set(alone["top1_se_from"]) == {"test set only (lower bound)"}  # and it says so
    assert np.isinf(alone["top1_df"]).all()


# ------------------------------------------------------------------ seeds and studies
def _study(tmp_path, truth, *, seed_sd: float = 0.66, **changes):
    tmp_path.mkdir(parents=True, exist_ok=True)
    space = load_space(write_space(tmp_path, {**NOISY_SPACE, **changes}, "noisy.yaml"))
    options = SearchOptions(space=space, results_dir=tmp_path / "results", quiet=True)
    return space, options, noisy_script(space, truth, seed_sd=seed_sd)


def _truth(spread: float) -> dict:
    """GFLOPs grow with width and depth; true top-1 grows with them by ``spread`` a step."""
    return {
        (w, d): (0.1 * (1 + i) * d, 50.0 + spread * (i * 3 + d))
        for i, w in enumerate((8, 16))
        for d in (1, 2, 3)
    }


def _every_candidate(options: SearchOptions) -> None:
    """Enqueue the six networks of NOISY_SPACE, so every study trains the same candidates."""
    study = join_study(options)
    for w in (8, 16):
        for d in (1, 2, 3):
            study.enqueue_trial({"width": w, "depth3": d})


def test_the_training_seed_is_the_networks_own(tmp_path):
    space = load_space(write_space(tmp_path, NOISY_SPACE))
    a = space.config({"width": 8, "depth3": 2}, num_classes=10, img_size=16)
    b = space.config({"width": 8, "depth3": 2}, num_classes=10, img_size=16).replace(name="x")
    assert training_seed(a, 0) == training_seed(b, 0)  # the name is not the network
    assert training_seed(a, 0) != training_seed(a, 1) != training_seed(a, 0, repeat=1)
    other = space.config({"width": 8, "depth3": 3}, num_classes=10, img_size=16)
    assert training_seed(a, 0) != training_seed(other, 0)
    assert training_seed("swin_t", 0) != training_seed("swin_t", 0, overrides={"embed_dim": 48})


def test_the_same_network_trains_with_the_same_seed_in_any_study(tmp_path):
    truth = _truth(2.0)
    seen: dict[tuple, set[int]] = {}
    for name, sampler_seed in (("one", 1), ("two", 2)):
        space, options, evaluator = _study(tmp_path / name, truth)
        options = dataclasses.replace(options, n_trials=4, worker_index=sampler_seed)
        run_search(options, evaluator=evaluator)
        for key, seed in evaluator.runs:
            seen.setdefault(key, set()).add(seed)
    assert all(len(seeds) == 1 for seeds in seen.values())  # one seed per network
    assert len(seen) >= 2


def test_large_differences_resolve_a_front_that_matches_the_truth(tmp_path):
    truth = _truth(10.0)  # steps of 10 points against a seed sd of 0.66
    space, options, evaluator = _study(tmp_path, truth, n_trials=6, confidence=0.95)
    _every_candidate(options)
    run_search(options, evaluator=evaluator)
    pareto = pd.read_csv(options.study_dir / "pareto.csv")
    keys = [(row["knob.width"], row["knob.depth3"]) for _, row in pareto.iterrows()]
    criteria = Criteria(("top1", "gflops"), ("maximize", "minimize"))
    true_front = STRICT.front([[t, g] for g, t in truth.values()], criteria.directions)
    assert sorted(keys) == sorted(k for k, on in zip(truth, true_front) if on)
    assert pareto["tied_with"].isna().all()  # every member told apart
    assert (pareto["p_front"] > 0.99).all()
    trials = pd.read_csv(options.study_dir / "trials.csv")
    binomial = [accuracy_standard_error(v, 8000) for v in trials["top1"]]
    assert trials["top1_se"].tolist() == pytest.approx(binomial)  # one seed: the test set's


def test_equal_means_report_a_tie_and_the_report_says_cost_decides(tmp_path):
    from dvbench.report import load_report_data
    from dvbench.report.markdown import answer_lines

    truth = {key: (gflops, 50.0) for key, (gflops, _) in _truth(0.0).items()}
    # seed noise within the SE the study can know (the test set's, 0.56 on 8000 images)
    space, options, evaluator = _study(tmp_path, truth, seed_sd=0.2, n_trials=6)
    _every_candidate(options)
    run_search(options, evaluator=evaluator)
    pareto = pd.read_csv(options.study_dir / "pareto.csv")
    assert len(pareto) >= 2  # the noise keeps several on the front...
    assert (pareto["tied_with"].fillna("") != "").all()  # ...each tied with another
    text = "\n".join(answer_lines(load_report_data(join_study(options))))
    assert "Front decided by cost: accuracy differences within noise" in text


# ---------------------------------------------------------------------------- repeats
def test_repeats_block_is_validated():
    assert Repeats.parse({"seeds": 3}).seeds == 3
    assert Repeats.parse({"seeds": 2, "rule": "uniform"}).rule == "uniform"
    for bad in ({"seeds": 1}, {"seeds": "3"}, {"seeds": 3, "band": 1}, {"rule": "all"}):
        with pytest.raises(ValueError, match="repeats"):
            Repeats.parse(bad)


def test_repeats_run_exactly_as_the_rule_says(tmp_path):
    """A study with ``repeats`` on a scripted evaluator: replayed from its records round by
    round, every repeat is the one the rule made due, in its order, and no more."""
    truth = _truth(0.4)  # differences of the order of the noise: the front is unsure
    space, options, evaluator = _study(tmp_path, truth, n_trials=6, repeats={"seeds": 3})
    _every_candidate(options)
    summary = run_search(options, evaluator=evaluator)
    study = join_study(options)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    firsts = [t for t in trials if run_of(t).first]
    follow = [t for t in trials if not run_of(t).first]
    assert len(firsts) == 6 and summary.completed == 6
    assert follow, "the scripted noise should leave some membership unsure"
    criteria = Criteria.of_space(space)
    seen = list(firsts)
    while True:
        frame = trials_frame(study, seen)
        pool = candidates(frame, criteria.metrics)
        runs = {}
        for t in seen:
            runs[run_of(t).candidate] = max(runs.get(run_of(t).candidate, 0), run_of(t).repeat + 1)
        due = repeats_due(
            pool, criteria.metrics, criteria.directions, criteria.noise(pool),
            confidence=0.95, repeats=space.repeats, runs_at_top=runs, live=set(),
        )  # fmt: skip
        taken = follow[len(seen) - len(firsts) : len(seen) - len(firsts) + len(due)]
        assert [(run_of(t).candidate, run_of(t).repeat) for t in taken] == due
        if not due:
            break
        seen += taken
    assert len(seen) == len(trials)  # nothing ran that the rule did not make due
    table = trials_frame(study).set_index("number")
    assert table["top1_seeds"].max() <= 3
    # seeds are compute: a repeated candidate's seconds are every run's
    repeated = table[table["top1_seeds"] > 1]
    assert (repeated["train_s"] == repeated["top1_seeds"].astype(float)).all()
    # each repeat trained its own seed of the same network
    seeds = {}
    for key, seed in evaluator.runs:
        seeds.setdefault(key, []).append(seed)
    assert all(len(s) == len(set(s)) for s in seeds.values())


def test_repeats_need_a_confidence(tmp_path):
    from dvbench.errors import UsageError

    with pytest.raises(UsageError, match="repeats: need a confidence"):
        load_space(write_space(tmp_path, {**NOISY_SPACE, "confidence": 0, "repeats": {"seeds": 2}}))


def test_knob_key_reads_back_the_network(tmp_path):
    space = load_space(write_space(tmp_path, NOISY_SPACE))
    cfg = space.config({"width": 16, "depth3": 3}, num_classes=10, img_size=32)
    assert knob_key(cfg) == (16, 3)
    assert np.isfinite(training_seed(cfg, 0))


def test_uniform_repeats_give_every_candidate_every_seed(tmp_path):
    space, options, evaluator = _study(
        tmp_path, _truth(10.0), n_trials=6, repeats={"seeds": 3, "rule": "uniform"}
    )
    _every_candidate(options)
    run_search(options, evaluator=evaluator)
    table = trials_frame(join_study(options))
    assert table["top1_seeds"].tolist() == [3] * 6  # resolved or not: 3 each
    assert len(evaluator.runs) == 18
