"""The Evaluator: budgets, checkpoints that continue a run exactly, failures as results, and a
stub passed to ``run_search`` through the public API."""

from __future__ import annotations

import math

import pytest
import torch
from _tiny import TINY_DUALVIT

from dvbench.evaluate import Evaluator
from dvbench.profile import ProfileSettings
from dvbench.train import Budget, DataSpec, TrainSettings, load_data, train_candidate

MICRO = TINY_DUALVIT.replace(
    mlp_ratios=(2, 2, 2, 2),
    semantic_pool="grid",
    semantic_grid=2,
    drop_path_rate=0.1,  # drop path draws from the global RNG: the checkpoint must carry it
    name="micro",
)
# 40 images, batch 8: 5 steps per epoch; a 3-epoch schedule with warm-up and cosine decay
SCHEDULE = TrainSettings(epochs=3, batch_size=8, num_threads=1, drop_path_rate=0.1)


@pytest.fixture(scope="module")
def tiny_digits():
    return load_data("digits", resolution=32, train_samples=4, test_samples=2)


def _weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def test_continuing_from_a_checkpoint_equals_training_in_one_go(tiny_digits, tmp_path):
    # one go: 2 epochs of the 3-epoch schedule (stopped at 2 epochs = the rung)
    one_go = train_candidate(
        MICRO, tiny_digits, SCHEDULE, seed=3, stop=Budget(epochs=2), checkpoint=tmp_path / "a.pt"
    )
    # in two calls: 1 epoch, evaluated, then continued to 2 epochs from the checkpoint
    first = train_candidate(
        MICRO, tiny_digits, SCHEDULE, seed=3, stop=Budget(epochs=1), checkpoint=tmp_path / "b.pt"
    )
    assert first.steps == 5 and first.top1 is not None
    second = train_candidate(
        MICRO, tiny_digits, SCHEDULE, seed=3, stop=Budget(epochs=2), checkpoint=tmp_path / "b.pt"
    )
    assert (second.steps, second.resumed_from_step, one_go.steps) == (10, 5, 10)
    a, b = _weights(tmp_path / "a.pt"), _weights(tmp_path / "b.pt")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6, msg=key)
    assert second.top1 == one_go.top1 and second.test_loss == pytest.approx(one_go.test_loss)
    # and the schedule is the 3-epoch one: continuing to the end matches a full run
    full = train_candidate(MICRO, tiny_digits, SCHEDULE, seed=3)
    third = train_candidate(MICRO, tiny_digits, SCHEDULE, seed=3, checkpoint=tmp_path / "b.pt")
    assert third.steps == full.steps == 15
    assert third.top1 == full.top1 and third.test_loss == pytest.approx(full.test_loss)


def test_a_stop_without_a_checkpoint_is_the_start_of_the_schedule(tiny_digits):
    """A rung's network is the first part of the full schedule, not a shorter schedule."""
    rung = train_candidate(MICRO, tiny_digits, SCHEDULE, seed=1, stop=Budget(steps=5))
    short = train_candidate(
        MICRO, tiny_digits, TrainSettings(epochs=1, batch_size=8, num_threads=1), seed=1
    )
    assert rung.steps == short.steps == 5
    assert rung.final_loss != short.final_loss  # different learning rates at the same steps


def _plant(path, kind: str, tmp_path) -> None:
    """Damage or replace a real checkpoint at ``path``."""

    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "pickle payload":
        marker = tmp_path / "payload-ran"

        class Payload:
            def __reduce__(self):
                return (marker.write_text, ("ran",))

        torch.save({"format": 2, "model": Payload()}, path)
    elif kind == "old format":
        state = torch.load(path, weights_only=True)
        state["format"] = 1
        torch.save(state, path)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("another seed", "another network, seed, settings or data"),
        ("another network", "another network, seed, settings or data"),
        ("truncated", "does not load as weights"),
        ("empty", "does not load as weights"),
        ("pickle payload", "does not load as weights"),
        ("old format", "format 1, not 2"),
    ],
)
def test_a_checkpoint_that_is_not_this_run_is_set_aside(tiny_digits, tmp_path, kind, reason):
    """Never trusted, never executed, never fatal: renamed aside, logged, trained afresh to
    the same result as a run without any checkpoint."""
    path = tmp_path / "c.pt"
    first_seed = 1 if kind == "another seed" else 0
    network = MICRO.replace(semantic_grid=1) if kind == "another network" else MICRO
    train_candidate(
        network, tiny_digits, SCHEDULE, seed=first_seed, stop=Budget(steps=2), checkpoint=path
    )
    _plant(path, kind, tmp_path)
    fresh = train_candidate(MICRO, tiny_digits, SCHEDULE, seed=0, stop=Budget(steps=5))
    result = train_candidate(
        MICRO, tiny_digits, SCHEDULE, seed=0, stop=Budget(steps=5), checkpoint=path
    )
    assert not (tmp_path / "payload-ran").exists()
    assert result.ok and result.resumed_from_step == 0 and result.steps == 5
    assert reason in result.note and "trained from scratch" in result.note
    assert result.top1 == fresh.top1 and result.final_loss == pytest.approx(fresh.final_loss)
    (aside,) = tmp_path.glob("c.pt.rejected-*")
    assert aside.name in result.note
    # the run's own checkpoint replaced it, and it continues like any other
    assert (
        train_candidate(MICRO, tiny_digits, SCHEDULE, seed=0, checkpoint=path).resumed_from_step
        == 5
    )


def test_a_checkpoint_loads_without_unpickling_objects(tiny_digits, tmp_path):
    path = tmp_path / "w.pt"
    train_candidate(MICRO, tiny_digits, SCHEDULE, seed=0, stop=Budget(steps=2), checkpoint=path)
    state = torch.load(path, weights_only=True)  # raises on anything but tensors and containers
    assert state["format"] == 2 and len(state["identity"]) == 64


@pytest.mark.parametrize("kwargs", [{}, {"epochs": 0}, {"steps": 1.5}, {"seconds": -1}])
def test_budget_needs_a_positive_amount(kwargs):
    with pytest.raises(ValueError, match="budget"):
        Budget(**kwargs)


def test_evaluate_measures_constrains_and_trains(tiny_digits):
    evaluator = Evaluator(
        profile=ProfileSettings(resolution=32, latency=False),
        data=tiny_digits,
        train=TrainSettings(epochs=None, max_steps=2, batch_size=8, num_threads=1),
        constraints={"max_gflops": 10.0},
    )
    seen = []
    result = evaluator.evaluate(
        MICRO, seed=0, on_costs=lambda partial: seen.append(dict(partial.metrics))
    )
    assert result.ok and result.feasible
    assert seen and set(seen[0]) == {"params_m", "gflops"}  # before training
    assert {"top1", "top5", "train_time_s", "params_m", "gflops"} <= set(result.metrics)
    assert result.timings["count_s"] > 0 and result.timings["train_s"] > 0
    assert result.training.steps == 2

    tight = Evaluator(
        profile=ProfileSettings(resolution=32, latency=False),
        data=tiny_digits,
        train=TrainSettings(epochs=None, max_steps=2, batch_size=8),
        constraints={"max_gflops": 1e-6},
    )
    over = tight.evaluate(MICRO, seed=0)
    assert over.status == "over_budget" and not over.feasible and over.training is None
    assert over.metrics["top1"] == 0.0 and over.violations["max_gflops"] > 0
    # a test-loss objective is never missing: the loss of a uniform guess over 10 classes
    assert over.metrics["test_loss"] == pytest.approx(math.log(10))
    baseline = tight.evaluate(MICRO, seed=0, constrained=False)  # baselines are always trained
    assert baseline.ok and baseline.training is not None


def test_an_impossible_candidate_is_a_failed_evaluation_not_an_exception():
    # at 32 px the 8x8 grid fits the 8x8 stage-1 map; at 16 px (4x4) it cannot
    evaluator = Evaluator(profile=ProfileSettings(resolution=16, latency=False))
    result = evaluator.evaluate(MICRO.replace(semantic_grid=8))
    assert result.status == "failed" and "semantic_grid" in result.reason
    assert evaluator.evaluate("no_such_model").status == "failed"


def test_training_needs_data_and_proxies_need_data():
    with pytest.raises(ValueError, match="need data"):
        Evaluator(train=TrainSettings())
    with pytest.raises(ValueError, match="give data"):
        Evaluator(proxies=("synflow",))
    with pytest.raises(ValueError, match="unknown 'params_m'"):  # a cost, not a proxy metric
        Evaluator(data=DataSpec(), proxies=("params_m",))
