"""The benchmarks' measures (benchmarks/_measures.py) on scripted spaces: each expected value is
hand arithmetic or a property a correct measure must have."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import _measures as m  # noqa: E402


def _space(seed: int = 0, n: int = 12):
    rng = np.random.default_rng(seed)
    cost = np.sort(rng.uniform(0.1, 2.0, n))
    truth = 45 + 3 * np.log(cost) + rng.normal(0, 1.5, n)
    return truth, cost


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_policy_that_picks_the_true_best_per_budget_has_regret_zero(seed):
    truth, cost = _space(seed)
    front = m.true_front(truth, cost)
    assert m.regret(np.arange(len(truth)), truth, cost) == 0.0
    # the true front holds the best within every budget, and nothing more is needed
    assert m.regret(front, truth, cost) == 0.0
    # leaving out the most accurate (best under the largest budgets) costs something
    assert m.regret(front[:-1], truth, cost) > 0


def test_a_budget_with_nothing_chosen_counts_as_the_worst_accuracy():
    truth, cost = np.array([50.0, 40.0, 60.0]), np.array([1.0, 2.0, 4.0])
    budgets = np.array([1.0, 4.0])
    # budget 1: best 50, nothing chosen -> worst 40: 10; budget 4: best 60, pick 60: 0
    assert m.regret([2], truth, cost, budgets=budgets) == pytest.approx(5.0)
    # the pick goes by the estimate: it ranks candidate 1 above 2 -> regret 20 at budget 4
    estimate = np.array([50.0, 70.0, 60.0])
    assert m.regret([1, 2], truth, cost, estimate=estimate, budgets=budgets) == 15.0


def test_the_permuted_control_has_positive_expected_regret_where_accuracy_varies_at_equal_cost():
    # two networks of the same cost; the policy keeps the better one (regret 0). Shuffled,
    # the kept one holds 40 half of the time: regret 20 then, 0 otherwise, 10 expected.
    truth, cost = np.array([60.0, 40.0]), np.array([1.0, 1.0])
    assert m.regret([0], truth, cost) == 0.0
    assert m.regret([0], truth[::-1], cost) == 20.0
    control = m.permuted_control([0], truth, cost, draws=2000, rng=np.random.default_rng(0))
    assert control["regret"] == pytest.approx(10.0, abs=1.5)
    # a larger space: accuracy varies within each cost pair
    cost = np.repeat([1.0, 2.0, 3.0, 4.0], 2)
    truth = np.array([50, 40, 52, 42, 54, 44, 56, 46], float)
    front = m.true_front(truth, cost)
    control = m.permuted_control(front, truth, cost, draws=400, rng=np.random.default_rng(1))
    assert m.regret(front, truth, cost) == 0.0 and control["regret"] > 1.0


def test_cheapest_k_has_regret_where_accuracy_does_not_depend_on_cost():
    cost = np.arange(1.0, 9.0)
    truth = np.array([47, 49, 46, 50, 48, 45, 51, 44], float)
    chosen = m.cheapest_k(cost, 4)
    assert sorted(chosen.tolist()) == [0, 1, 2, 3]
    # best within budget b: 50 up to cost 7, then 51; the cheapest four reach 50 -> regret 1
    # on every budget of at least 7, 0 below
    expected = np.mean(m.budget_grid(cost) >= 7)
    assert expected > 0
    assert m.regret(chosen, truth, cost) == pytest.approx(expected)


def test_front_precision_and_recall_by_hand():
    truth = np.array([50.0, 55.0, 52.0, 60.0])
    cost = np.array([1.0, 2.0, 3.0, 4.0])
    assert m.true_front(truth, cost).tolist() == [0, 1, 3]  # 52 at 3 is beaten by 55 at 2
    # kept 0, 2, 3: its front is all three (52 beats 50), two of them true: 2/3 and 2/3
    assert m.front_precision_recall([0, 2, 3], truth, cost) == pytest.approx((2 / 3, 2 / 3))
    # measured 49 for candidate 2, it drops from the reported front: 2/2 and 2/3
    estimate = np.array([50.0, 55.0, 49.0, 60.0])
    got = m.front_precision_recall([0, 2, 3], truth, cost, estimate=estimate)
    assert got == pytest.approx((1.0, 2 / 3))
    precision, recall = m.front_precision_recall([], truth, cost)
    assert np.isnan(precision) and recall == 0.0


def test_the_hypervolume_reference_lies_just_below_the_worst_accuracy():
    truth, cost = _space(3)
    (accuracy, dearest), (accuracy_span, cost_span) = m.hypervolume_reference(truth, cost)
    assert truth.min() - 0.05 * np.ptp(truth) < accuracy < truth.min()
    assert cost.max() < dearest < cost.max() + 0.05 * np.ptp(cost)
    assert (accuracy_span, cost_span) == (np.ptp(truth), np.ptp(cost))
    # the worst network alone keeps next to nothing; the whole pool keeps it all
    assert 0 <= m.hypervolume_share([int(np.argmin(truth))], truth, cost) < 0.05
    assert m.hypervolume_share(np.arange(len(truth)), truth, cost) == pytest.approx(1.0)


def test_random_k_is_averaged_over_draws_and_loses_to_the_front():
    truth, cost = _space(4, n=16)
    front = m.true_front(truth, cost)
    control = m.random_control(truth, cost, len(front), draws=200, rng=np.random.default_rng(0))
    assert control["regret"] > 0 and control["front_recall"] < 1
    assert m.measures(front, truth, cost)["front_recall"] == 1.0


def test_the_check_passes_regret_and_fails_a_measure_that_reads_only_cost():
    truth, cost = _space(5, n=16)

    def reader(estimate, cost):  # trains everything, reports the front of what it measured
        return m.true_front(estimate, cost)

    check = m.check_measure("regret", reader, truth, cost, resamples=199)
    assert check.passes and check.reader < check.permuted
    assert check.worse_by == pytest.approx(check.permuted - check.reader)

    def kept_cost(chosen, truth, cost, estimate):
        return -float(np.sum(cost[chosen]))

    blind = m.check_measure(kept_cost, reader, truth, cost, higher_is_better=True, resamples=99)
    assert not blind.passes and blind.worse_by == pytest.approx(0.0, abs=1e-9)
    # where the measured accuracies say nothing about the truth, regret fails it too
    estimate = np.random.default_rng(0).permutation(truth)
    noisy = m.check_measure("regret", reader, truth, cost, estimate=estimate, resamples=199)
    assert not noisy.passes
