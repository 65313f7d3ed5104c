"""Dual-ViT as a timm model: factory arguments, features, pruning, FX/TorchScript, checkpointing.

timm's own suite (tests/test_models.py of its sdist) runs on the models in ``.ci/timm-suite``;
these are the checks that need no download and pin down what the suite leaves open.
"""

from __future__ import annotations

import copy
import pickle

import pytest
import timm
import torch
from _tiny import TINY_DUALVIT
from reference import fixture_input, load_fixtures, recipe_state_dict

import dvbench.models  # noqa: F401  (registers the models in timm)
from dvbench.models import DualViT

NAMES = ("dualvit_s", "dualvit_b", "dualvit_l")

TINY = TINY_DUALVIT.replace(depths=(1, 2, 2, 1), mlp_ratios=(4, 4, 4, 4), img_size=64)

# What timm's train.py passes to create_model: with no options, and for a fine-tune
# (--num-classes 10 --in-chans 1 --drop 0.1 --drop-path 0.1 --gp token --torchscript).
TRAIN_PY_DEFAULTS = dict(
    pretrained=False,
    in_chans=3,
    num_classes=None,
    drop_rate=0.0,
    drop_path_rate=None,
    drop_block_rate=None,
    global_pool=None,
    bn_momentum=None,
    bn_eps=None,
    scriptable=False,
    checkpoint_path=None,
)
TRAIN_PY_FINETUNE = TRAIN_PY_DEFAULTS | dict(
    in_chans=1,
    num_classes=10,
    drop_rate=0.1,
    drop_path_rate=0.1,
    global_pool="token",
    scriptable=True,
)


def _tiny(**changes) -> DualViT:
    torch.manual_seed(0)
    return DualViT(TINY.replace(**changes))


@pytest.mark.parametrize(
    "name",
    [*NAMES[:2], pytest.param(NAMES[2], marks=pytest.mark.slow)],  # dualvit_l: ~5 s
)
def test_train_py_keyword_arguments(name):
    model = timm.create_model(name, **TRAIN_PY_DEFAULTS)
    assert model.num_classes == 1000 and model.head_drop.p == 0.0
    assert model.global_pool == "token" and model.cfg.drop_path_rate == 0.0

    model = timm.create_model(name, **TRAIN_PY_FINETUNE)
    # each means what it means for timm's models
    assert model.patch_embed1.conv[0].in_channels == 1 and model.in_chans == 1
    assert model.head.out_features == 10 and model.aux_head.out_features == 10
    assert model.head_drop.p == 0.1  # classifier dropout
    last_block = getattr(model, f"block{model.num_stages}")[-1]
    assert last_block.drop_path.drop_prob == pytest.approx(0.1)  # stochastic depth, linear
    assert model.block1[0].drop_path.__class__.__name__ == "Identity"
    model.train()
    logits = model(torch.randn(2, 1, 32, 32))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()


def test_benchmark_py_keyword_arguments():
    """benchmark.py: num_classes, in_chans, global_pool, scriptable, drop_rate, drop_path_rate."""
    model = timm.create_model(
        "dualvit_s",
        num_classes=None,
        in_chans=3,
        global_pool=None,
        scriptable=True,
        drop_rate=0.0,
        drop_path_rate=None,
        drop_block_rate=None,
    )
    assert model.num_classes == 1000


def test_global_pool_and_classifier_removal():
    model = _tiny().eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        pre_logits = model.forward_head(features, pre_logits=True)
        model.reset_classifier(0)
        assert torch.equal(model(x), pre_logits)  # no classes: the pooled features
        model.reset_classifier(0, "")
        assert torch.equal(model(x), features)  # no pooling either: the feature map
        assert model.cfg.num_classes == 0 and model.cfg.global_pool == ""
        unpooled = timm.create_model("dualvit_s", num_classes=0, global_pool="").eval()
        assert unpooled(torch.randn(1, 3, 64, 64)).shape == (1, 2, 2, 896)
    with pytest.raises(ValueError, match="global_pool: must be 'token'"):
        model.reset_classifier(3, "avg")


def test_factory_device_and_dtype():
    model = timm.create_model("dualvit_b", device="meta", dtype=torch.float64)
    tensors = [*model.parameters(), *model.buffers()]
    assert {t.device.type for t in tensors} == {"meta"}
    assert {t.dtype for t in model.parameters()} == {torch.float64}
    model.reset_classifier(5)
    assert model.head.weight.device.type == "meta" and model.head.weight.dtype == torch.float64


def test_forward_does_not_change_the_module():
    model = _tiny().eval()
    before = {k: copy.copy(v) for k, v in vars(model).items()}
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
        model(torch.randn(1, 3, 96, 96))  # another semantic grid
    assert vars(model) == before


def test_model_pickles_with_its_settings():
    """For multiprocessing, and the profiler's memory mode, which runs a step in a child."""
    model = _tiny()
    model.set_grad_checkpointing()
    clone = pickle.loads(pickle.dumps(model))
    assert clone.grad_checkpointing
    expected = model.state_dict()
    saved = clone.state_dict()  # the state-dict hooks came along: official keys
    assert list(saved) == list(expected)
    assert all(torch.equal(saved[k], v) for k, v in expected.items())


def test_features_only_gives_the_declared_strides():
    model = timm.create_model("dualvit_s", features_only=True, out_indices=(1, 2, 3)).eval()
    assert model.feature_info.reduction() == [8, 16, 32]
    assert model.feature_info.channels() == [128, 320, 448]
    with torch.no_grad():
        maps = model(torch.randn(1, 3, 224, 224))
    for fmap, stride, chans in zip(maps, [8, 16, 32], [128, 320, 448]):
        assert fmap.shape == (1, chans, 224 // stride, 224 // stride)


def test_forward_intermediates_match_the_network():
    model = _tiny().eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        assert torch.equal(final, model.forward_features(x))
        assert [tuple(m.shape) for m in maps] == [
            (2, 16, 16, 16),
            (2, 32, 8, 8),
            (2, 48, 4, 4),
            (2, 64, 2, 2),
        ]
        nhwc = model.forward_intermediates(x, indices=2, output_fmt="NHWC", intermediates_only=True)
        assert all(torch.equal(a, b.permute(0, 2, 3, 1)) for a, b in zip(nhwc, maps[2:]))
        early = model.forward_intermediates(x, indices=[1], stop_early=True)[1]
        assert torch.equal(early[0], maps[1])
        # norm=True: the final norm on the last map (the others end in their stage's norm)
        normed = model.forward_intermediates(x, indices=[0, 3], norm=True, intermediates_only=True)
        assert torch.equal(normed[0], maps[0])
        last = model.norm4(maps[3].permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        assert torch.allclose(normed[1], last)


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_pruned_model_keeps_its_maps_and_uses_every_parameter(index):
    model = _tiny(dual_stages=2).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model.forward_intermediates(x, intermediates_only=True)[index]
    pruned = copy.deepcopy(model)
    take = pruned.prune_intermediate_layers([index], prune_norm=True)
    assert take == [index] and pruned.num_features == TINY.embed_dims[index]
    with torch.no_grad():
        (tap,) = pruned.forward_intermediates(x, indices=take, intermediates_only=True)
        assert torch.equal(tap, expected)
        if index < 3:  # the features end at the tap (NHWC)
            assert torch.equal(pruned.forward_features(x).permute(0, 3, 1, 2), expected)
    pruned.train()
    pruned.forward_features(x).sum().backward()
    unused = [n for n, p in pruned.named_parameters() if p.grad is None]
    assert not unused


def test_group_matcher_orders_the_network_for_layer_decay():
    from timm.models._manipulate import group_parameters
    from timm.optim import create_optimizer_v2

    model = _tiny()
    layer_of = group_parameters(model, model.group_matcher(), reverse=True)
    in_order = [
        "q",
        "block1.0.gamma1",
        "block2.0.attn.kv.weight",
        "block2.1.mlp.fc1.weight",
        "block3.0.attn.qkv.weight",
        "block4.0.mlp.fc_proxy.0.weight",
        "post_network.0.attn.q.weight",
        "head.weight",
    ]
    layers = [layer_of[name] for name in in_order]
    assert layers == sorted(set(layers)), layers
    same = [
        ("patch_embed1.conv.0.weight", "q", "se.0.weight", "kv.weight"),  # the stem
        ("patch_embed2.proj.weight", "proxy_embed2.proj_proxy.0.weight", "block2.0.gamma1"),
        ("block2.1.gamma1", "norm2.weight", "norm_proxy2.weight"),
        ("block4.0.gamma1", "norm4.weight"),  # the final norm with the last block
        ("head.weight", "aux_head.weight"),
    ]
    for names in same:
        assert len({layer_of[name] for name in names}) == 1, names
    coarse = group_parameters(model, model.group_matcher(coarse=True), reverse=True)
    assert coarse["block2.1.mlp.fc1.weight"] == coarse["patch_embed2.proj.weight"]
    optimizer = create_optimizer_v2(model, "adamw", lr=1e-3, layer_decay=0.75)
    scales = {group["lr_scale"] for group in optimizer.param_groups}
    assert len(scales) == max(layer_of.values()) + 1


@pytest.mark.parametrize("drop_path_rate", [0.0, 0.3])
def test_grad_checkpointing_gives_the_same_gradients_and_keeps_less(drop_path_rate):
    x = torch.randn(2, 3, 64, 64)
    grads, saved = [], []
    for enable in (False, True):
        model = _tiny(drop_path_rate=drop_path_rate).train()
        model.set_grad_checkpointing(enable)
        sizes = []

        def pack(t, sizes=sizes):
            sizes.append(t.numel() * t.element_size())
            return t

        torch.manual_seed(1)  # the same drop-path draws in both runs
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = model(x).logsumexp(dim=1).mean()
        loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
        saved.append(sum(sizes))
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)
    # the forward pass keeps only the inputs of each block (recomputed in backward)
    assert saved[1] < 0.5 * saved[0]


# torch's own GraphModule.__init__ annotates its attributes in a way TorchScript warns about;
# newer torch deprecates torch.jit.script (still supported, and what timm's suite checks)
@pytest.mark.filterwarnings("ignore:The TorchScript type system")
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_fx_trace_and_torchscript_keep_sizes_dynamic():
    from dvbench.models.dualvit import _NoTraceTracer

    model = _tiny(semantic_window=4).eval()
    graph = torch.fx.GraphModule(model, _NoTraceTracer().trace(model))
    scripted = torch.jit.script(model)
    # sizes the trace never saw: other semantic grids (and a query-grid resize)
    for res in (32, 64, 96):
        x = torch.randn(2, 3, res, res)
        with torch.no_grad():
            expected = model(x)
            torch.testing.assert_close(graph(x), expected, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(scripted(x), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="smaller than the semantic pool window"):
        graph(torch.randn(1, 3, 8, 8))
    with pytest.raises(torch.jit.Error, match="smaller than the semantic pool window"):
        scripted(torch.randn(1, 3, 8, 8))


def test_pretrained_file_loads_the_official_layout(shared_dir, tmp_path):
    """The timm way: pretrained=True with the file in pretrained_cfg_overlay."""
    entry = next(e for e in load_fixtures(shared_dir) if e["model"] == "dualvit_s")
    official = recipe_state_dict(entry["state_dict"], entry["weight_seed"])
    path = tmp_path / "dualvit_s_official.pth"
    torch.save({"model": official, "epoch": 309}, path)  # the official training checkpoint

    model = timm.create_model(
        "dualvit_s", pretrained=True, pretrained_cfg_overlay=dict(file=str(path))
    ).eval()
    output = entry["outputs"][0]
    with torch.no_grad():
        logits = model(fixture_input(output))
    assert (logits - torch.tensor(output["logits"])).abs().max() < 1e-4

    # new classes: the classifiers start fresh, the rest loads; one input channel: adapted
    tuned = timm.create_model(
        "dualvit_s",
        pretrained=True,
        pretrained_cfg_overlay=dict(file=str(path)),
        num_classes=10,
        in_chans=1,
    )
    assert tuned.head.out_features == 10
    assert torch.equal(tuned.block3[1].mlp.fc1.weight, official["block3.1.mlp.fc1.weight"])
    torch.testing.assert_close(
        tuned.patch_embed1.conv[0].weight,
        official["patch_embed1.conv.0.weight"].sum(dim=1, keepdim=True),
    )


@pytest.mark.slow
def test_pretrained_cfg_is_complete():
    for name in NAMES:
        for tag, size, pool in (("in1k", 224, (7, 7)), ("in1k_384", 384, (12, 12))):
            model = timm.create_model(f"{name}.{tag}", device="meta")
            cfg = model.pretrained_cfg
            assert cfg["input_size"] == (3, size, size) and cfg["pool_size"] == pool
            assert cfg["classifier"] == ("head", "aux_head")
            assert cfg["first_conv"] == "patch_embed1.conv.0"
            assert cfg["min_input_size"] == (3, 25, 25)
            assert cfg["origin_url"] and cfg["paper_ids"] and cfg["notes"]
            with torch.no_grad():
                features = model.forward_features(torch.empty(1, 3, size, size, device="meta"))
            assert features.shape[1:3] == pool
    with pytest.raises(RuntimeError, match="No pretrained weights exist"):
        timm.create_model("dualvit_s", pretrained=True)
    with pytest.raises(ValueError, match="stage-1 map 6x6"):
        timm.create_model("dualvit_s", device="meta")(torch.empty(1, 3, 24, 24, device="meta"))
