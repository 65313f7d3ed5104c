"""Per-image outcomes (packed, unpacked, split in halves) and reliability at equal cost."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dvbench.stats import ImageOutcomes
from dvbench.stats.reliability import icc, leave_one_out_icc, mean_reliability, seeds_for


def test_outcomes_pack_round_trip_and_halves():
    rng = np.random.default_rng(0)
    outcomes = ImageOutcomes(rng.random(1001) < 0.4, rng.exponential(1.0, 1001))
    packed = outcomes.pack()
    assert len(packed["correct"]) < 200  # 1001 flags in 126 bytes, base64
    back = ImageOutcomes.unpack(packed)
    assert np.array_equal(back.correct, outcomes.correct)
    np.testing.assert_allclose(back.loss, outcomes.loss, rtol=1e-3)  # float16
    assert back.top1 == pytest.approx(outcomes.top1)
    whole = ImageOutcomes.interleave(outcomes.half("a"), outcomes.half("b"))
    assert np.array_equal(whole.correct, outcomes.correct)
    assert len(outcomes.half("a")) == 501 and len(outcomes.half("b")) == 500
    assert outcomes.metric("top1").mean() == pytest.approx(outcomes.top1)


@pytest.mark.parametrize(
    "bad",
    [{}, {"format": 1, "images": 9, "correct": "AA==", "loss": ""}, {"format": 2},
     {"format": 1, "images": 1, "correct": "not base64!", "loss": "AAA="}],
)  # fmt: skip
def test_outcomes_refuse_what_they_did_not_pack(bad):
    with pytest.raises(ValueError, match="outcomes"):
        ImageOutcomes.unpack(bad)


def _table(slope: float, between: float, seed_sd: float, k: int = 40, seeds: int = 3):
    rng = np.random.default_rng(1)
    cost = np.linspace(-2.5, -1.0, k)
    truth = slope * cost + rng.normal(0, between, k) if between else slope * cost
    return [t + rng.normal(0, seed_sd, seeds) for t in truth], cost


def test_icc_at_equal_cost_removes_the_cost_trend_only():
    # a signal that is all cost: reliable overall, nothing left at equal cost
    rows, cost = _table(slope=4.0, between=0.0, seed_sd=0.5)
    assert icc(rows).icc > 0.9
    at_equal = icc(rows, covariate=cost)
    assert at_equal.icc < 0.2 and at_equal.icc_low < 0 < at_equal.icc_high
    # between-candidate differences beyond the trend stay: truth sd 1, seed sd 0.5 -> 0.8
    rows, cost = _table(slope=4.0, between=1.0, seed_sd=0.5)
    equal = icc(rows, covariate=cost)
    assert equal.icc_low < 0.8 < equal.icc_high and equal.icc > 0.6
    # without a trend the covariate changes little (it only spends one degree of freedom)
    plain_rows, _ = _table(slope=0.0, between=1.0, seed_sd=0.5)
    assert icc(plain_rows, covariate=cost).icc == pytest.approx(icc(plain_rows).icc, abs=0.02)
    # a second covariate (e.g. which code version measured a row) is one more
    both = icc(rows, covariate=np.column_stack([cost, np.arange(len(cost)) % 2]))
    assert both.candidates == equal.candidates and math.isfinite(both.icc)


def test_leave_one_out_finds_the_one_network_a_figure_rests_on():
    rows = [[0.0, 0.1], [0.1, 0.0], [0.05, 0.0], [0.0, 0.05], [5.0, 5.1]]
    assert icc(rows).icc > 0.9
    assert leave_one_out_icc(rows) < 0.2


def test_spearman_brown_seeds():
    assert mean_reliability(0.5, 2) == pytest.approx(2 / 3)
    assert seeds_for(0.5, 0.7) == pytest.approx(0.7 * 0.5 / (0.5 * 0.3))
    assert mean_reliability(0.5, seeds_for(0.5, 0.7)) == pytest.approx(0.7)
    assert seeds_for(0.8) == 1.0 and seeds_for(-0.1) == math.inf
