"""The racing benchmark's controls and simulated truth (benchmarks/bench_racing.py), by hand."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import _policies as policies  # noqa: E402
import bench_racing as racing  # noqa: E402


def test_extra_seeds_go_two_at_a_time_along_the_order():
    # 5 extra seeds over 4 candidates, cheapest first (order 2, 0, 3, 1): 3, 1, 3, 2
    seeds = racing._allocation(4, 5, np.array([2, 0, 3, 1]))
    assert seeds.tolist() == [3, 1, 3, 2]
    assert racing._allocation(3, 0, np.arange(3)).tolist() == [1, 1, 1]
    assert racing._allocation(2, 10, np.arange(2)).tolist() == [3, 3]  # at most 3 seeds


def _pool(table):
    table = np.asarray(table, float)
    n = len(table)
    return policies.Pool(np.arange(n), np.linspace(1, 2, n), {15.0: table}, {}, 15.0)


def test_the_simulated_truth_spreads_as_the_networks_do_not_as_their_noisy_means():
    exact = _pool([[40, 40, 40], [45, 45, 45], [50, 50, 50]])
    truth, sd = racing.fitted_truth(exact, 1.0)
    assert truth == pytest.approx([40, 45, 50]) and sd == 0
    # seeds that vary within but not between candidates: no spread is real
    noise = _pool([[40, 50, 45], [50, 45, 40], [45, 40, 50]])
    truth, sd = racing.fitted_truth(noise, 1.0)
    assert truth == pytest.approx([45, 45, 45]) and sd == pytest.approx(5.0)
    stretched, _ = racing.fitted_truth(exact, 3.0)
    assert stretched == pytest.approx([30, 45, 60])
