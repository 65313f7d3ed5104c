"""Naming models: dvbench names, aliases, timm names, config files, and the errors users see."""

from __future__ import annotations

import json

import pytest
import torch

from dvbench.errors import UsageError
from dvbench.models import DualViT, DualViTConfig, create_model, load_config, resolve_spec


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_names_aliases_and_timm_names():
    assert resolve_spec("dualvit_b") == "dualvit_b"
    assert resolve_spec("swin_t") == "swin_tiny_patch4_window7_224"
    assert resolve_spec("pvt_v2_b2") == "pvt_v2_b2"
    assert resolve_spec("resnet18") == "resnet18"
    assert isinstance(create_model("dualvit_s", num_classes=10), DualViT)


def test_unknown_name_suggests_close_ones():
    with pytest.raises(UsageError, match="did you mean dualvit_s"):
        resolve_spec("dualvit_ss")


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_file_round_trip(tmp_path, suffix, tiny_dualvit):
    cfg = tiny_dualvit.replace(mlp_ratios=(4, 4, 4, 4))
    path = cfg.save(tmp_path / f"tiny{suffix}")
    loaded = load_config(path)
    assert loaded == cfg and loaded.name == "tiny"
    model = create_model(str(path))
    assert _params(model) == _params(DualViT(cfg))


def test_config_file_with_official_base(tmp_path):
    path = tmp_path / "s_narrow.yaml"
    path.write_text("base: dualvit_s\ndepths: [2, 2, 4, 2]\nnum_classes: 10\n")
    cfg = load_config(path)
    assert cfg.embed_dims == (64, 128, 320, 448) and cfg.depths == (2, 2, 4, 2)


@pytest.mark.parametrize(
    "text,message",
    [
        ("embed_dims: [64, 128\n", "not valid YAML"),
        ("- 1\n- 2\n", "expected a mapping"),
        ("widths: [1, 2]\n", "widths: not a DualViTConfig field"),
        ("base: dualvit_x\n", "unknown official Dual-ViT"),
        (
            "base: dualvit_s\nnum_heads: [3, 4, 10, 14]\n",
            "embed_dims\\[0\\]: width 64 is not divisible",
        ),
    ],
)
def test_malformed_config_files_are_usage_errors(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as info:
        create_model(str(path))
    assert str(path) in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(UsageError, match="config file not found"):
        create_model(str(tmp_path / "nope.json"))


def test_bad_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"depths": "3"})[:-1])
    with pytest.raises(UsageError, match="not valid JSON"):
        create_model(str(path))


def test_exported_trial_wrapper_is_accepted(tmp_path):
    cfg = DualViTConfig(num_classes=10, img_size=32)
    path = tmp_path / "trial.json"
    path.write_text(json.dumps({"config": cfg.to_dict(), "metrics": {"top1": 50.0}}))
    assert load_config(path) == cfg


def test_suggestions_name_each_model_once():
    from dvbench.models.registry import resolve_spec

    with pytest.raises(UsageError) as caught:
        resolve_spec("dualvit_x")
    suggested = str(caught.value).split("did you mean ")[1].rstrip("?)").split(", ")
    assert len(suggested) == len(set(suggested)) == 3
