"""The latency benchmark's judgement (benchmarks/bench_latency_predictor.py) on synthetic
rounds: the ceiling is what a perfect predictor reaches against the fastest round, and "beats
FLOPs" needs a paired interval above 0."""

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_latency_predictor as bench  # noqa: E402


def _pool(rng, candidates=20, rounds=3, spread=0.3, noise=0.1, kind="normal"):
    true = np.exp(rng.normal(3.0, spread, candidates))
    shape = (candidates, rounds)
    slowdown = rng.normal(0, noise, shape) if kind == "normal" else rng.exponential(noise, shape)
    return true, true[:, None] * np.exp(slowdown)


# one round's reliability from about 0.97 down to 0.78 (the committed settings: 0.75-1.0), with
# symmetric noise and with one-sided noise (a busy machine only ever adds time)
@pytest.mark.parametrize("kind", ["normal", "exponential"])
@pytest.mark.parametrize("noise", [0.05, 0.1, 0.15])
def test_the_ceiling_is_what_a_perfect_predictor_reaches_against_the_fastest_round(kind, noise):
    rng = np.random.default_rng(0)
    perfect, ceilings, first_vs_second = [], [], []
    for _ in range(200):
        true, timed = _pool(rng, noise=noise, kind=kind)
        target = timed.min(axis=1)
        perfect.append(spearmanr(true, target).statistic)
        ceilings.append(bench.target_ceiling(timed)["ceiling_spearman"])
        first_vs_second.append(spearmanr(timed[:, 0], timed[:, 1]).statistic)
    # Spearman-Brown treats the fastest of 3 rounds like their mean: the minimum of normal
    # noise is less reliable than the mean (the ceiling sits above), of one-sided noise more
    # (below); at these reliabilities both stay within 0.06
    assert np.mean(ceilings) == pytest.approx(np.mean(perfect), abs=0.06)
    # the first round against the second is no ceiling: a perfect predictor beats it
    assert np.mean(perfect) > np.mean(first_vs_second)


def test_spearman_ceiling_of_a_perfect_and_of_a_useless_target():
    assert bench.spearman_ceiling(1.0) == pytest.approx(1.0)
    assert bench.spearman_ceiling(0.0) == 0.0
    # reliability 0.81: Pearson 0.9, Spearman (6/pi) asin(0.45)
    assert bench.spearman_ceiling(0.81) == pytest.approx(6 / np.pi * np.arcsin(0.45))


def test_beating_flops_needs_the_paired_interval_above_zero():
    rng = np.random.default_rng(1)
    true, timed = _pool(rng, candidates=30)
    truth = timed.min(axis=1)
    flops = true * np.exp(rng.normal(0, 0.25, len(true)))  # a worse predictor
    better = bench.paired_comparison(true, flops, truth, resamples=500, seed=0)
    assert better["spearman_gain"] > 0 and better["spearman_gain_low"] > 0
    same = bench.paired_comparison(flops, flops, truth, resamples=500, seed=0)
    assert same["spearman_gain"] == 0 and same["spearman_gain_low"] == 0
    assert same["spearman_low"] < same["spearman"] < same["spearman_high"]
