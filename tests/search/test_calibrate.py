"""Proxy fidelity: candidates are valid and distinct, and the correlations are scipy's."""

from __future__ import annotations

import json

import pytest
from scipy import stats

from dvbench.cli import main
from dvbench.search import load_space
from dvbench.search.calibrate import calibrate, sample_candidates


def test_sampled_candidates_are_distinct_and_valid():
    space = load_space("small")
    pairs = sample_candidates(space, 6, num_classes=10, img_size=32, seed=1)
    keys = {json.dumps(k, sort_keys=True) for k, _ in pairs}
    assert len(keys) == 6
    assert all(cfg.img_size == 32 and cfg.num_classes == 10 for _, cfg in pairs)
    again = sample_candidates(space, 6, num_classes=10, img_size=32, seed=1)
    assert [k for k, _ in again] == [k for k, _ in pairs]


@pytest.mark.slow
def test_calibrate_on_digits(tmp_path, capsys):
    result = calibrate(
        load_space("small"),
        data="digits",
        candidates=3,
        short_epochs=0.2,
        long_epochs=0.6,
        train_samples=30,
        resolution=16,
        seed=0,
    )
    table = result.table
    assert len(table) == 3 and table["top1_long"].notna().all()
    expected = stats.kendalltau(table["top1_short"], table["top1_long"]).statistic
    assert result.kendall_tau == pytest.approx(expected)
    assert -1 <= result.spearman_rho <= 1


def test_calibrate_cli_errors(capsys):
    assert main(["calibrate", "--candidates", "2"]) == 2
    assert "--candidates: need at least 3" in capsys.readouterr().err
    assert main(["calibrate", "--short", "5", "--long", "1"]) == 2
    assert "--short 5.0 must be positive and below --long 1.0" in capsys.readouterr().err
