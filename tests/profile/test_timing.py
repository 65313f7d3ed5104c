"""Timing: the stopping rule, the statistics, device synchronisation and the step functions."""

from __future__ import annotations

import dataclasses
import statistics
import time

import pytest
import torch
import torch.nn as nn

from dvbench.profile import Measurement, make_step, measure
from dvbench.profile.timing import prepare_model, synchronizer
from dvbench.runtime import num_threads


class FakeClock:
    """A timer that only moves when the timed function says how long it took."""

    def __init__(self, durations):
        self.now = 0.0
        self.durations = list(durations)
        self.calls = 0

    def __call__(self) -> float:
        return self.now

    def work(self) -> None:
        self.now += self.durations[self.calls % len(self.durations)]
        self.calls += 1


def test_min_time_decides_when_runs_are_fast():
    clock = FakeClock([0.1])
    m = measure(clock.work, warmup=3, min_runs=4, min_time_s=1.0, timer=clock)
    assert m.runs == 10  # 4 runs would only be 0.4 s
    assert clock.calls == 3 + 10  # warm-up calls run but are not recorded
    assert m.total_s == pytest.approx(1.0)


def test_min_runs_decides_when_runs_are_slow():
    clock = FakeClock([2.0])
    m = measure(clock.work, warmup=0, min_runs=5, min_time_s=1.0, timer=clock)
    assert m.runs == 5
    assert m.times_s == (2.0,) * 5


def test_max_runs_caps_fast_functions():
    clock = FakeClock([0.001])
    m = measure(clock.work, warmup=0, min_runs=3, min_time_s=10.0, max_runs=7, timer=clock)
    assert m.runs == 7


def test_statistics_come_from_the_raw_samples():
    durations = [0.05, 0.01, 0.09, 0.03, 0.07, 0.02, 0.1, 0.04, 0.08, 0.06]
    clock = FakeClock(durations)
    m = measure(clock.work, batch_size=8, warmup=0, min_runs=10, min_time_s=0, timer=clock)
    assert m.times_s == pytest.approx(durations)
    deciles = statistics.quantiles(durations, n=10, method="inclusive")
    assert m.median_s == pytest.approx(statistics.median(durations))
    assert m.p10_s == pytest.approx(deciles[0])
    assert m.p90_s == pytest.approx(deciles[-1])
    assert m.p10_s < m.median_s < m.p90_s
    assert m.throughput == pytest.approx(8 / statistics.median(durations))
    assert (m.batch_size, m.warmup, m.min_runs) == (8, 0, 10)


def test_measurement_is_a_frozen_value():
    m = Measurement(times_s=(0.5,), batch_size=1, warmup=0, min_runs=1, min_time_s=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.batch_size = 2
    with pytest.raises(ValueError, match="times_s"):
        Measurement(times_s=(), batch_size=1, warmup=0, min_runs=1, min_time_s=0)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"min_runs": 0}, "min_runs"), ({"warmup": -1}, "warmup"), ({"min_time_s": -1}, "min_time_s"),
     ({"min_runs": 5, "max_runs": 2}, "max_runs")],
)  # fmt: skip
def test_bad_settings_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        measure(lambda: None, **kwargs)


def test_real_clock_times_cover_the_work():
    m = measure(lambda: time.sleep(0.005), warmup=1, min_runs=3, min_time_s=0.02)
    assert m.runs >= 3 and m.total_s >= 0.02
    assert min(m.times_s) >= 0.005  # sleep never returns early; no upper bound on a busy box


def test_cuda_device_is_synchronised_after_every_run(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    clock = FakeClock([1.0])
    m = measure(clock.work, warmup=2, min_runs=3, min_time_s=0, device="cuda:0", timer=clock)
    assert len(calls) == 1 + m.runs  # once after the warm-up, once after each timed run
    assert all(device == torch.device("cuda:0") for device in calls)
    assert m.device == "cuda:0"
    synchronizer("cpu")()  # a no-op, not an error, on the CPU


def test_num_threads_sets_and_restores():
    before = torch.get_num_threads()
    with num_threads(1) as used:
        assert used == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        with num_threads(0):
            pass


class TinyNet(nn.Module):
    def __init__(self, classes: int = 5, aux: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, classes)
        self.aux = aux

    def forward(self, x: torch.Tensor):
        logits = self.fc(self.conv(x).mean((2, 3)))
        return (logits, logits.detach() * 0) if self.aux and self.training else logits


def test_inference_step_runs_without_autograd():
    model = prepare_model(TinyNet(), train=False)
    out = make_step(model, batch_size=3, resolution=16)()
    assert out.shape == (3, 5)
    assert out.is_inference() and not model.training


@pytest.mark.parametrize("aux", [False, True])
def test_train_step_updates_weights_and_uses_first_output(aux):
    model = prepare_model(TinyNet(aux=aux), train=True)
    before = model.fc.weight.detach().clone()
    step = make_step(model, batch_size=4, resolution=(8, 12), train=True)
    loss = step()
    step()
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert not torch.equal(before, model.fc.weight)
    assert model.training


@pytest.mark.parametrize("train", [False, True])
def test_amp_and_channels_last(train):
    model = prepare_model(TinyNet(), train=train, channels_last=True)
    assert model.conv.weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    model.conv.register_forward_hook(lambda mod, args, out: seen.append((args[0], out)))
    step = make_step(model, batch_size=2, resolution=8, train=train, amp="bf16", channels_last=True)
    step()
    x, conv_out = seen[0]
    assert x.is_contiguous(memory_format=torch.channels_last)
    assert conv_out.dtype == torch.bfloat16  # autocast is on
    with pytest.raises(ValueError, match="amp"):
        make_step(model, batch_size=1, resolution=8, amp="fp8")


def test_input_channels_follow_the_first_convolution():
    model = TinyNet()
    model.conv = nn.Conv2d(1, 4, 3, padding=1)
    out = make_step(prepare_model(model), batch_size=2, resolution=8)()
    assert out.shape == (2, 5)
