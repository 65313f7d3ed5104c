"""The proxy training loop: determinism, budgets, failure paths, results, real learning."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from _tiny import TINY_DUALVIT

from dvbench.errors import UsageError
from dvbench.models import DualViTConfig, official_config
from dvbench.train import (
    TrainSettings,
    build_candidate,
    load_data,
    parse_overrides,
    scale_width,
    swin_window_for,
    train_candidate,
)

# about 0.2 M parameters: fast enough to train many times in the suite
MICRO = TINY_DUALVIT.replace(mlp_ratios=(2, 2, 2, 2), name="micro")
# the benchmark's tiny candidate (about 1.7 M parameters)
TINY = DualViTConfig(
    embed_dims=(32, 64, 128, 160),
    num_heads=(1, 2, 4, 5),
    depths=(1, 1, 2, 1),
    mlp_ratios=(4, 4, 4, 4),
    stem_hidden_dim=16,
    num_classes=10,
    img_size=32,
    name="tiny",
)
QUICK = TrainSettings(epochs=None, max_steps=4, batch_size=32)


@pytest.fixture(scope="module")
def small_digits():
    return load_data("digits", resolution=32, train_samples=16, test_samples=8)


class Diverging(nn.Module):
    """A linear classifier whose output becomes non-finite from a given step on."""

    def __init__(self, *, from_step: int, value: float = math.inf) -> None:
        super().__init__()
        self.linear = nn.Linear(3 * 32 * 32, 10)
        self.from_step, self.value, self.calls = from_step, value, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = self.linear(x.flatten(1))
        return out * self.value if self.calls >= self.from_step else out


class OutOfMemory(nn.Linear):
    def __init__(self) -> None:
        super().__init__(3 * 32 * 32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 42.00 GiB")


@pytest.mark.slow
def test_same_seed_same_result_other_seed_other_loss(small_digits):
    runs = [train_candidate(MICRO, small_digits, QUICK, seed=s, device="cpu") for s in (0, 0, 1)]
    assert all(r.ok for r in runs)
    assert runs[0].top1 == runs[1].top1 and runs[0].final_loss == runs[1].final_loss
    assert runs[0].test_loss == runs[1].test_loss
    assert runs[0].final_loss != runs[2].final_loss


def test_result_reports_the_run(small_digits):
    result = train_candidate(MICRO, small_digits, QUICK, seed=0, device="cpu")
    assert result.status == "ok" and result.reason is None
    assert result.model == "micro" and result.steps == 4 and result.images_seen == 4 * 32
    assert result.epochs == pytest.approx(4 / (160 // 32))
    assert result.params == sum(
        p.numel() for p in build_candidate(MICRO, num_classes=10, resolution=32).parameters()
    )
    assert 0 <= result.top1 <= result.top5 <= 100
    assert result.images_per_s > 0 and result.train_time_s > 0 and result.eval_time_s > 0
    assert result.model_config["embed_dims"] == [16, 32, 48, 64]
    assert (result.num_train, result.num_test, result.resolution) == (160, 80, 32)


def test_non_finite_loss_fails_with_the_step(small_digits):
    result = train_candidate(Diverging(from_step=3), small_digits, QUICK, device="cpu")
    assert result.status == "failed"
    assert result.reason.startswith("non-finite loss") and result.reason.endswith("at step 3")
    assert result.steps == 3 and result.top1 is None and result.final_loss is None


def test_huge_learning_rate_fails_cleanly(small_digits):
    settings = TrainSettings(
        epochs=None, max_steps=30, batch_size=32, lr=1e30, grad_clip=None, warmup_fraction=0.0
    )
    result = train_candidate(Diverging(from_step=10**9), small_digits, settings, device="cpu")
    assert result.status == "failed" and "non-finite loss" in result.reason


def test_out_of_memory_is_a_failed_result(small_digits):
    result = train_candidate(OutOfMemory(), small_digits, QUICK, device="cpu")
    assert result.status == "failed"
    assert result.reason.startswith("out of memory at step 1 (batch 32, 32 px)")


@pytest.mark.parametrize(
    ("settings", "steps"),
    [
        (TrainSettings(epochs=0.5, batch_size=32), 3),  # 160 images: 5 steps per epoch
        (TrainSettings(epochs=2, max_steps=3, batch_size=32), 3),
        (TrainSettings(epochs=1, batch_size=1000), 1),  # batch clipped to the data
    ],
)
def test_budget_in_epochs_and_steps(small_digits, settings: TrainSettings, steps: int):
    result = train_candidate(Diverging(from_step=10**9), small_digits, settings, device="cpu")
    assert result.steps == steps


def test_time_budget_stops_training(small_digits):
    settings = TrainSettings(epochs=1000, time_limit_s=0.2, batch_size=16)
    result = train_candidate(MICRO, small_digits, settings, device="cpu")
    assert result.ok and 1 <= result.steps < 1000 * 10


def test_caller_rng_and_threads_are_left_alone(small_digits):
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_candidate(MICRO, small_digits, QUICK, device="cpu", seed=7)
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_learning_rate_schedule():
    settings = TrainSettings(warmup_fraction=0.2, min_lr_ratio=0.01)
    assert settings.lr_factor(0.1) == pytest.approx(0.5)
    assert settings.lr_factor(0.2) == pytest.approx(1.0)
    assert settings.lr_factor(0.6) == pytest.approx(0.505)
    assert settings.lr_factor(1.0) == pytest.approx(0.01)
    assert settings.lr_factor(0.0) == pytest.approx(0.01)  # warm-up starts at the floor


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"epochs": None}, "epochs"),
        ({"lr": 0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"warmup_fraction": 1.0}, "warmup_fraction"),
        ({"amp": "fp8"}, "amp"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"crop_padding": -1}, "crop_padding"),
    ],
)
def test_settings_errors_name_the_field(kwargs: dict, name: str):
    with pytest.raises(ValueError, match=f"^{name}:"):
        TrainSettings(**kwargs)


def test_result_files(small_digits, tmp_path: Path):
    result = train_candidate(MICRO, small_digits, QUICK, device="cpu")
    saved = json.loads(result.save(tmp_path / "r.json").read_text())
    assert saved["top1"] == result.top1 and saved["settings"]["max_steps"] == 4
    table = tmp_path / "runs.csv"
    result.save(table)
    result.save(table)
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 2 and rows[0]["status"] == "ok" and rows[0]["settings.batch_size"] == "32"
    assert json.loads(rows[0]["model_config"])["depths"] == [1, 1, 1, 1]
    table.write_text("other,columns\n1,2\n")
    with pytest.raises(UsageError, match="other columns"):
        result.save(table)
    with pytest.raises(UsageError, match=r"\.json or \.csv"):
        result.save(tmp_path / "r.txt")


# ----------------------------------------------------------------------------- candidates
def test_parse_overrides():
    assert parse_overrides(
        [
            "depths=1,1,2,1",
            "mlp_ratios=[4, 4.5]",
            "token_label=false",
            "semantic_grid=null",
            "name=x",
        ]
    ) == {
        "depths": [1, 1, 2, 1],
        "mlp_ratios": [4, 4.5],
        "token_label": False,
        "semantic_grid": None,
        "name": "x",
    }
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_overrides(["depths"])


def test_scale_width_keeps_heads_dividing_widths():
    cfg = scale_width(official_config("dualvit_s"), 0.25)
    assert cfg.embed_dims == (16, 32, 80, 112) and cfg.stem_hidden_dim == 8
    odd = scale_width(TINY, 0.3)
    assert all(d % h == 0 for d, h in zip(odd.embed_dims, odd.num_heads, strict=True))


def test_build_candidate_applies_overrides_to_dual_vit():
    model = build_candidate(
        "dualvit_s",
        num_classes=7,
        resolution=32,
        width_mult=0.25,
        overrides={"depths": [1, 1, 1, 1]},
        drop_path_rate=0.1,
    )
    assert model.cfg.embed_dims == (16, 32, 80, 112) and model.cfg.depths == (1, 1, 1, 1)
    assert (model.cfg.num_classes, model.cfg.img_size, model.cfg.drop_path_rate) == (7, 32, 0.1)
    with pytest.raises(UsageError, match="not a DualViTConfig field"):
        build_candidate("dualvit_s", num_classes=7, resolution=32, overrides={"bogus": 1})
    with pytest.raises(UsageError, match="Dual-ViT models only"):
        build_candidate("pvt_v2_b0", num_classes=7, resolution=32, width_mult=0.5)


def test_swin_window_tiles_the_patch_grid():
    assert [swin_window_for(r) for r in (32, 64, 96, 224, 40)] == [4, 4, 6, 7, 5]
    model = build_candidate("swin_t", num_classes=10, resolution=32)
    assert model.layers[0].blocks[0].window_size == (4, 4)
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.slow
def test_tiny_dual_vit_learns_digits():
    data = load_data("digits", resolution=32)
    result = train_candidate(TINY, data, TrainSettings(epochs=3), seed=0, device="cpu")
    assert result.ok
    assert result.top1 >= 50, f"top-1 {result.top1:.1f}% after 3 epochs (chance is 10%)"


@pytest.mark.slow
def test_the_small_map_depthwise_path_trains_within_seed_noise(monkeypatch):
    """The fast path changes float rounding only; over 3 seeds its top-1 must be within seed
    noise of the conv path's (3 standard errors of the difference of the means, the test-set
    binomial SE as the floor)."""
    from dvbench.models.dualvit import DWConv

    data = load_data("digits", resolution=32)
    settings = TrainSettings(epochs=2, batch_size=64, num_threads=1)

    def top1s() -> list[float]:
        return [train_candidate(MICRO, data, settings, seed=s, device="cpu").top1 for s in range(3)]

    fast = top1s()
    monkeypatch.setattr(DWConv, "small_map", 0)
    slow = top1s()
    seed_var = (torch.tensor(fast).var() + torch.tensor(slow).var()).item() / 2
    p = sum(fast + slow) / 600
    binomial_var = p * (100 - p * 100) * 100 / data.num_test  # in percent squared
    se_diff = math.sqrt(2 * max(seed_var, binomial_var) / 3)
    assert abs(sum(fast) / 3 - sum(slow) / 3) <= 3 * se_diff, (fast, slow, se_diff)
