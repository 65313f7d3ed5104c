"""The builder is the official network: fixtures, parameter counts, checkpoints, timm API."""

from __future__ import annotations

import pytest
import timm
import torch
from _tiny import TINY_DUALVIT
from reference import fixture_input, load_fixtures, recipe_state_dict

import dvbench.models  # noqa: F401  (registers the models in timm)
from dvbench.models import DualViT, DualViTConfig, checkpoint_filter_fn, official_config

OFFICIAL_PARAMS = {"dualvit_s": 25_054_000, "dualvit_b": 42_627_024, "dualvit_l": 72_966_544}


def _fixture_entries():
    from conftest import SHARED

    if not SHARED.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{SHARED} absent"))]
    return [pytest.param(entry, id=f"{entry['model']}") for entry in load_fixtures(SHARED)]


def _build_fixture_model(entry: dict) -> torch.nn.Module:
    if entry["model"] in OFFICIAL_PARAMS:
        return timm.create_model(entry["model"])  # the official factory's defaults
    return DualViT(DualViTConfig(**entry["constructor"]))


@pytest.mark.parametrize("entry", _fixture_entries())
@pytest.mark.parametrize("fused", [True, False], ids=["fused_attn", "explicit_attn"])
def test_reference_fixtures(entry, fused):
    model = _build_fixture_model(entry)
    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = fused
    official = recipe_state_dict(entry["state_dict"], entry["weight_seed"])
    model.load_state_dict(official, strict=True)
    model.eval()
    assert sum(p.numel() for p in model.parameters()) == entry["params"]
    for output in entry["outputs"]:
        with torch.no_grad():
            logits = model(fixture_input(output))
        expected = torch.tensor(output["logits"])
        assert logits.shape == expected.shape
        err = (logits - expected).abs().max().item()
        assert err < 1e-4, f"{entry['model']} at {output['resolution']} px: max abs error {err}"


@pytest.mark.parametrize("entry", _fixture_entries())
def test_state_dict_keeps_official_layout(entry):
    model = _build_fixture_model(entry)
    official = recipe_state_dict(entry["state_dict"], entry["weight_seed"])
    model.load_state_dict(official, strict=True)
    saved = model.state_dict()
    assert list(saved) == [key for key, _ in entry["state_dict"]]
    for key, shape in entry["state_dict"]:
        assert tuple(saved[key].shape) == tuple(shape), key
        assert torch.equal(saved[key], official[key]), key
    # and what we save loads back into a fresh model, strictly
    fresh = _build_fixture_model(entry)
    fresh.load_state_dict(saved, strict=True)
    assert torch.equal(
        fresh.state_dict()["block1.0.attn.kv_proxy.weight"],
        official["block1.0.attn.kv_proxy.weight"],
    )


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMS))
def test_official_parameter_counts(name):
    model = timm.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS[name]
    assert model.token_label and hasattr(model, "aux_head")
    assert model.cfg == official_config(name)


def test_timm_conventions():
    model = timm.create_model("dualvit_s", token_label=True, num_classes=10)
    assert model.num_classes == 10 and model.head_hidden_size == 448
    assert model.num_features == 2 * 448  # pixel channels + the class token
    assert model.default_cfg["input_size"] == (3, 224, 224)
    assert model.pretrained_cfg["first_conv"] == "patch_embed1.conv.0"
    assert "q" in model.no_weight_decay()
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model.forward_head(feats)
        pooled = model.forward_head(feats, pre_logits=True)
        assert torch.allclose(logits, model(x), atol=1e-6)
    assert feats.shape == (2, 2, 2, 896)  # NHWC, the 2x2 stage-4 map at 64 px
    assert torch.equal(feats[..., 448:], pooled[:, None, None].expand(2, 2, 2, 448))
    assert logits.shape == (2, 10) and pooled.shape == (2, 448)
    model.reset_classifier(5)
    assert model.num_classes == 5 and model.head.out_features == 5
    assert model.aux_head.out_features == 5
    with torch.no_grad():
        assert model(x).shape == (2, 5)
    no_tl = timm.create_model("dualvit_b", token_label=False, num_classes=3)
    assert not hasattr(no_tl, "aux_head")
    assert sum(p.numel() for p in no_tl.parameters()) > 0


def test_token_label_head_is_cls_plus_half_max_aux(tiny_dualvit):
    model = DualViT(tiny_dualvit.replace(num_classes=7, img_size=64)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        cls_logits, aux_logits = model.forward_token_label(x)
        expected = cls_logits + 0.5 * aux_logits.max(dim=1).values
        assert torch.allclose(model(x), expected, atol=1e-6)
    # 64 px: stage-4 map 2x2 -> 4 pixel tokens get aux logits, the semantic token does not
    assert aux_logits.shape == (2, 4, 7)


def test_checkpoint_filter_fn_unwraps_and_drops_aux_head():
    model = timm.create_model("dualvit_s", num_classes=10)
    wrapped = {"model": model.state_dict()}
    target = timm.create_model("dualvit_s", num_classes=10, token_label=False)
    filtered = checkpoint_filter_fn(wrapped, target)
    assert not any(k.startswith("aux_head") for k in filtered)
    target.load_state_dict(filtered, strict=True)


TINY = TINY_DUALVIT.replace(depths=(1, 2, 2, 1), mlp_ratios=(4, 4, 4, 4), img_size=224)


@pytest.mark.parametrize(
    "changes,res",
    [
        ({}, 32),
        ({}, 64),
        ({}, 100),  # odd sizes: maps 25x25 -> 13 -> 7 -> 4
        ({"dual_stages": 1}, 64),
        ({"dual_stages": 3}, 64),
        ({"semantic_pool": "grid", "semantic_grid": 4}, 64),
        ({"semantic_pool": "grid", "semantic_grid": 8, "semantic_query_grid": 8}, 64),
        ({"semantic_window": 4}, 64),
        ({"semantic_query_grid": 4}, 32),
        ({"semantic_mlp_ratio_dual": 2, "semantic_mlp_ratio_merge": 1.5}, 32),
        ({"ratio_alternation_stage": None, "token_label": False}, 32),
        (
            {
                "embed_dims": (16, 32, 48),
                "num_heads": (1, 2, 3),
                "depths": (1, 1, 2),
                "mlp_ratios": (4, 4, 3),
            },
            32,
        ),
        (
            {
                "embed_dims": (16, 32, 48, 64, 80),
                "num_heads": (1, 2, 3, 4, 5),
                "depths": (1, 1, 1, 1, 1),
                "mlp_ratios": (4, 4, 4, 4, 4, 2),
                "dual_stages": 2,
            },
            64,
        ),
        ({"drop_path_rate": 0.2}, 32),
    ],
)
def test_forward_backward_configs(changes, res):
    torch.manual_seed(0)
    cfg = TINY.replace(**changes, img_size=res)
    model = DualViT(cfg)
    x = torch.randn(2, 3, res, res)
    model.train()
    out = model(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.logsumexp(dim=1).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads), "every parameter takes part in the loss"
    if cfg.num_semantic_tokens(res) > 1:  # with one the softmax is 1 whatever q is
        assert model.q.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (2, 10)


def test_train_mode_forward_returns_the_eval_logits():
    """In train mode ``forward`` returns logits, ``head(cls) + 0.5 * max aux_head`` over the
    pixel tokens (combined here by hand from ``forward_token_label``), the same as in eval.
    The stem's BatchNorm (batch statistics in training) and stochastic parts are the only
    train/eval differences, so BatchNorm is kept in eval and nothing is dropped."""
    torch.manual_seed(0)
    model = DualViT(TINY.replace(img_size=64, token_label=True))
    x = torch.randn(2, 3, 64, 64)  # the last stage is 2 x 2: four pixel tokens
    with torch.no_grad():
        expected = model.eval()(x)
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10) and out.requires_grad
    cls_logits, aux = model.forward_token_label(x)
    assert aux.shape[0] == 2 and aux.shape[-1] == 10 and aux.shape[1] > 1  # per pixel token
    torch.testing.assert_close(out, cls_logits + 0.5 * aux.max(dim=1).values)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_inference_and_training_paths_agree():
    """The in-place inference path and the autograd path compute the same function."""
    torch.manual_seed(0)
    model = DualViT(TINY.replace(img_size=64)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
    assert torch.allclose(model(x), expected, atol=1e-6)


def test_chunked_inference_ffn_computes_the_same_function(monkeypatch):
    """Inference runs the pixel FFN a few images at a time; the logits must not change."""
    from dvbench.models.dualvit import PixelFFN

    torch.manual_seed(0)
    model = DualViT(TINY.replace(img_size=64)).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.enable_grad():
        expected = model(x).detach()  # the autograd path never chunks
    monkeypatch.setattr(PixelFFN, "chunk_elements", 1)  # one image per chunk everywhere
    with torch.no_grad():
        assert torch.allclose(model(x), expected, atol=1e-5)


def test_the_small_map_path_trains_after_an_inference_mode_call():
    """Its cached tap index, first made under inference_mode (a profiler's timing), still
    serves a training step afterwards (a search times a candidate, then trains it)."""
    from dvbench.models.dualvit import DWConv, _tap_index

    _tap_index.cache_clear()
    module = DWConv(4)
    with torch.inference_mode():
        module(torch.randn(2, 4, 4), 2, 2)
    x = torch.randn(2, 4, 4, requires_grad=True)
    module(x, 2, 2).sum().backward()
    assert x.grad is not None and module.dwconv.weight.grad is not None


@pytest.mark.parametrize(("h", "w"), [(1, 1), (1, 2), (2, 1), (2, 2)])
def test_small_map_depthwise_is_the_conv(h: int, w: int):
    """The small-map depthwise path: the conv's outputs and all three gradients."""
    from dvbench.models.dualvit import DWConv, _map_tokens, _token_map

    torch.manual_seed(0)
    module = DWConv(6)
    x = torch.randn(3, h * w, 6, requires_grad=True)
    fast = module(x, h, w)
    slow = _map_tokens(module.dwconv(_token_map(x, h, w)))
    torch.testing.assert_close(fast, slow, atol=1e-6, rtol=1e-6)
    upstream = torch.randn_like(fast)
    inputs = (x, module.dwconv.weight, module.dwconv.bias)
    for got, want in zip(
        torch.autograd.grad(fast, inputs, upstream),
        torch.autograd.grad(slow, inputs, upstream),
        strict=True,
    ):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_a_32px_proxy_trains_the_same_through_the_small_map_path(monkeypatch):
    """At 32 px the last two stages' maps are 2x2 and 1x1: logits and every parameter's
    gradient match the conv path to float rounding."""
    from dvbench.models.dualvit import DWConv

    torch.manual_seed(0)
    model = DualViT(TINY.replace(img_size=32)).train()
    x = torch.randn(4, 3, 32, 32)

    def logits_and_grads():
        model.zero_grad()
        out = model(x)
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in model.parameters()]

    fast, fast_grads = logits_and_grads()
    monkeypatch.setattr(DWConv, "small_map", 0)
    slow, slow_grads = logits_and_grads()
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    for got, want in zip(fast_grads, slow_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_fused_and_explicit_attention_agree():
    torch.manual_seed(0)
    model = DualViT(TINY.replace(img_size=64)).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        fused = model(x)
        for module in model.modules():
            if hasattr(module, "fused_attn"):
                module.fused_attn = False
        explicit = model(x)
    assert torch.allclose(fused, explicit, atol=1e-5)


def test_384_resizes_semantic_queries(monkeypatch):
    from dvbench.models import dualvit

    grids = []
    resize = dualvit.resize_semantic_queries
    monkeypatch.setattr(
        dualvit,
        "resize_semantic_queries",
        lambda q, g, h, w: grids.append((h, w)) or resize(q, g, h, w),
    )
    model = timm.create_model("dualvit_s", num_classes=10, img_size=384).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 384, 384))
    assert out.shape == (1, 10)
    # 384 px: stage-1 map 96x96, window 7 -> 13x13 semantic tokens
    assert grids == [(13, 13)] and model.cfg.num_semantic_tokens(384) == 169


def test_too_small_input_is_a_value_error():
    """One check serves the config (sizes) and the model (maps in forward)."""
    model = DualViT(TINY.replace(img_size=32)).eval()
    with pytest.raises(ValueError, match="stage-1 map 4x4 is smaller than the semantic pool"):
        with torch.no_grad():
            model(torch.randn(1, 3, 16, 16))
    with pytest.raises(ValueError, match="input 16: stage-1 map 4x4 is smaller than the semantic"):
        model.cfg.semantic_grid_for(16)


@pytest.mark.parametrize(
    "changes,field",
    [
        ({"embed_dims": (16, 32, 50, 64)}, "embed_dims\\[2\\]: width 50 is not divisible"),
        ({"num_heads": (1, 2, 3)}, "num_heads: has 3 entries"),
        ({"depths": (1, 0, 1, 1)}, "depths\\[1\\]"),
        (
            {"embed_dims": (), "num_heads": (), "depths": (), "mlp_ratios": ()},
            "embed_dims: must not be empty",
        ),
        ({"dual_stages": 4}, "dual_stages: must be between 1 and 3"),
        ({"dual_stages": 0}, "dual_stages"),
        ({"mlp_ratios": (4, 4)}, "mlp_ratios: has 2 entries"),
        ({"mlp_ratios": (4, 4, 1, 4), "depths": (1, 1, 2, 1)}, "mlp_ratios\\[2\\]: must exceed 1"),
        ({"semantic_window": 9, "img_size": 32}, "semantic_window: at img_size=32"),
        (
            {"semantic_pool": "grid", "semantic_grid": 20, "img_size": 64},
            "semantic_grid: at img_size=64",
        ),
        ({"semantic_pool": "grid"}, "semantic_grid: must be a positive integer"),
        ({"semantic_grid": 4}, "semantic_grid: only used with semantic_pool='grid'"),
        ({"semantic_pool": "max"}, "semantic_pool: must be one of"),
        ({"drop_path_rate": 1.5}, "drop_path_rate"),
        ({"drop_rate": 1.0}, "drop_rate: must be in \\[0, 1\\)"),
        ({"global_pool": "avg"}, "global_pool: must be 'token'"),
        ({"stem_hidden_dim": 0}, "stem_hidden_dim"),
        ({"num_classes": -1}, "num_classes"),
        ({"ratio_alternation_stage": 7}, "ratio_alternation_stage"),
        ({"semantic_mlp_ratio_merge": 0}, "semantic_mlp_ratio_merge"),
        ({"embed_dims": (16, 32, 48, "x")}, "embed_dims: expected integers"),
    ],
)
def test_config_validation_names_the_field(changes, field):
    with pytest.raises(ValueError, match=field):
        TINY.replace(**changes)


def test_unknown_override_names_the_field():
    # a TypeError, as for any unexpected keyword argument (timm's contract for its models)
    with pytest.raises(TypeError, match="widths: not a DualViTConfig field"):
        timm.create_model("dualvit_s", widths=3)


def test_official_quirks_are_configuration():
    cfg = official_config("dualvit_s")
    assert [cfg.stage_mlp_ratio(2, j) for j in range(6)] == [4, 3, 4, 3, 4, 3]
    assert cfg.class_mlp_ratio == 2 and cfg.pixel_tokens_per_semantic == 49
    assert cfg.num_semantic_tokens(224) == 64 and cfg.num_semantic_tokens(160) == 25
    model = DualViT(cfg)
    assert model.block3[1].mlp.fc1.out_features == 320 * 3
    assert model.post_network[0].mlp.fc1.out_features == 448 * 2
    assert model.block1[0].norm1.eps == 1e-6 and model.patch_embed1.norm.eps == 1e-5
    assert model.block1[0].attn.p_ln.eps == 1e-5 and model.norm_proxy1.eps == 1e-6
