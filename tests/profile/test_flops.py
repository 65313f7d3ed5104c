"""FLOP and parameter counting: the published table, the SDPA handle, and a second counter."""

from __future__ import annotations

import importlib.util
from decimal import Decimal

import pytest
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from dvbench.errors import UsageError
from dvbench.profile import ZERO_COST_OPS, count_cost, count_flops
from dvbench.profile.display import uncounted_warnings
from dvbench.profile.runner import ProfileResult, ProfileSettings

HAVE_DUALVIT = importlib.util.find_spec("dvbench.models.dualvit") is not None
needs_dualvit = pytest.mark.skipif(not HAVE_DUALVIT, reason="dvbench.models.dualvit not there yet")

# /work/shared/docs/paper-numbers.md, as printed: (name, resolution, params (M), GFLOPs).
# GFLOPs are the bracketed two-decimal measurements of the table; params the bracketed value
# where there is one, else the paper's one-decimal figure.
PAPER_TABLE = [
    ("dualvit_s", 224, "25.054", "5.40"),
    ("dualvit_b", 224, "42.627", "9.33"),
    ("dualvit_l", 224, "72.967", "18.01"),
    ("dualvit_s", 384, "25.1", "18.45"),
    ("dualvit_b", 384, "42.6", "31.88"),
    ("dualvit_l", 384, "73.0", "60.47"),
    ("swin_t", 224, "28.3", "4.51"),
    ("swin_s", 224, "49.6", "8.77"),
    ("swin_b", 224, "87.8", "15.47"),
    ("pvt_v2_b0", 224, "3.7", "0.57"),
    ("pvt_v2_b1", 224, "14.0", "2.12"),
    ("pvt_v2_b2", 224, "25.4", "4.05"),
    ("pvt_v2_b2_li", 224, "22.6", "3.91"),
    ("pvt_v2_b3", 224, "45.2", "6.92"),
    ("pvt_v2_b4", 224, "62.6", "10.14"),
    ("pvt_v2_b5", 224, "82.0", "11.76"),
]
# The paper's own 384 px figures (one decimal), which the issue asks for within 1% too.
PAPER_384 = {"dualvit_s": 18.4, "dualvit_b": 31.9, "dualvit_l": 60.5}

# The family's MAC-counting ops in fvcore's per-operator names (everything else it counts,
# norms, pooling and resampling, is not a multiply-accumulate and FlopCounterMode skips it).
MACS = {"conv", "linear", "matmul", "bmm", "addmm", "mm", "einsum", "scaled_dot_product_attention"}


def _table_params() -> list:
    rows = []
    for name, res, params, gflops in PAPER_TABLE:
        marks = []
        if name.startswith("dualvit"):
            marks.append(needs_dualvit)
        if float(gflops) > 10:
            marks.append(pytest.mark.slow)
        rows.append(pytest.param(name, res, params, gflops, marks=marks, id=f"{name}@{res}"))
    return rows


def _params_tolerance(published: str) -> float:
    """0.5% of the published value, or half a unit of its last printed digit if larger."""
    half_unit = 0.5 * 10.0 ** Decimal(published).as_tuple().exponent
    return max(0.005 * float(published), half_unit)


@pytest.mark.parametrize(("name", "res", "params", "gflops"), _table_params())
def test_reproduces_published_table(name, res, params, gflops):
    report = count_flops(_create(name, res), res)
    assert report.params_m == pytest.approx(float(params), abs=_params_tolerance(params))
    assert report.gflops == pytest.approx(float(gflops), rel=0.01)
    if res == 384:
        assert report.gflops == pytest.approx(PAPER_384[name], rel=0.01)
    # Nothing with arithmetic is left out: SDPA is counted; what is left is zero-cost.
    assert "aten::scaled_dot_product_attention" not in report.unsupported_ops
    assert set(report.unsupported_ops) <= ZERO_COST_OPS
    assert report.uncounted_ops == {}


def _create(name: str, res: int) -> nn.Module:
    from dvbench.models.registry import create_model

    return create_model(name, img_size=res)


class TinyAttention(nn.Module):
    """Multi-head attention with timm's ``fused_attn`` switch; queries and keys may differ."""

    def __init__(self, dim: int = 32, heads: int = 4, value_dim: int | None = None):
        super().__init__()
        self.heads, self.value_dim = heads, value_dim or dim
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, self.value_dim)
        self.fused_attn = True

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        q = self.q(x).view(b, x.shape[1], self.heads, -1).transpose(1, 2)
        k = self.k(context).view(b, context.shape[1], self.heads, -1).transpose(1, 2)
        v = self.v(context).view(b, context.shape[1], self.heads, -1).transpose(1, 2)
        if self.fused_attn:
            return F.scaled_dot_product_attention(q, k, v)
        attn = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
        return attn.softmax(dim=-1) @ v


class _Wrapper(nn.Module):
    """count_flops feeds one image tensor; this turns it into queries and a shorter context."""

    def __init__(self, attention: TinyAttention, queries: int, keys: int, dim: int):
        super().__init__()
        self.attention, self.queries, self.keys, self.dim = attention, queries, keys, dim

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        tokens = image.flatten(1)[:, : (self.queries + self.keys) * self.dim]
        x, context = tokens.view(image.shape[0], -1, self.dim).split([self.queries, self.keys], 1)
        return self.attention(x, context)


@pytest.mark.parametrize("value_dim", [32, 48])
def test_sdpa_handle_matches_hand_count_and_explicit_path(value_dim):
    dim, heads, queries, keys = 32, 4, 10, 6
    model = _Wrapper(TinyAttention(dim, heads, value_dim), queries, keys, dim)
    fused = count_flops(model, 32, in_chans=1)
    model.attention.fused_attn = False
    explicit = count_flops(model, 32, in_chans=1)

    head_dim, head_value_dim = dim // heads, value_dim // heads
    attention = heads * queries * keys * (head_dim + head_value_dim)
    assert fused.by_operator["scaled_dot_product_attention"] == attention
    projections = queries * dim * dim + keys * dim * dim + keys * dim * value_dim
    assert fused.flops == projections + attention
    # fvcore counts the explicit q @ k^T and attn @ v as aten::matmul: the same total.
    assert explicit.by_operator["matmul"] == attention
    assert explicit.flops == fused.flops
    assert "aten::softmax" in explicit.unsupported_ops  # softmax counts zero on both paths


def _set_fused(model: nn.Module, fused: bool) -> None:
    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = fused


def _flop_counter_total(model: nn.Module, res: int) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.zeros(1, 3, res, res))
    return counter.get_total_flops()


def _tiny_dualvit() -> nn.Module:
    from _tiny import TINY_DUALVIT

    from dvbench.models.registry import create_model

    cfg = TINY_DUALVIT.replace(depths=(1, 1, 2, 1), num_classes=1000, img_size=112, name="tiny")
    return create_model(cfg)


@pytest.mark.parametrize(
    ("build", "res"),
    [
        pytest.param(lambda: timm.create_model("pvt_v2_b0"), 224, id="pvt_v2_b0"),
        pytest.param(lambda: timm.create_model("swin_tiny_patch4_window7_224"), 224, id="swin_t"),
        pytest.param(_tiny_dualvit, 112, id="tiny_dualvit", marks=needs_dualvit),
    ],
)
def test_agrees_with_torch_flop_counter(build, res, monkeypatch):
    """torch's FlopCounterMode counts 2 FLOPs per MAC and no norms or pooling.

    It misses the fused CPU attention kernel (``_scaled_dot_product_flash_attention_for_cpu``),
    so it counts the explicit path, while dvbench counts the fused one: equal MACs means the
    SDPA handle counts exactly what the explicit matmuls do.
    """
    model = build().eval()
    report = count_flops(model, res)
    _set_fused(model, False)
    if HAVE_DUALVIT:
        import dvbench.models.dualvit as dualvit

        monkeypatch.setattr(dualvit, "use_fused_attn", lambda *args, **kwargs: False)
    macs = sum(count for op, count in report.by_operator.items() if op in MACS)
    assert _flop_counter_total(model, res) == 2 * macs
    assert report.by_operator.get("layer_norm", 0) > 0


def test_sdpa_count_is_independent_of_the_attention_path():
    model = timm.create_model("pvt_v2_b0")
    fused = count_flops(model, 224)
    _set_fused(model, False)
    explicit = count_flops(model, 224)
    assert fused.flops == explicit.flops
    assert fused.by_operator["scaled_dot_product_attention"] == explicit.by_operator["matmul"]


class OnlyOp(nn.Module):
    """A model that is one op and nothing else."""

    def __init__(self, op):
        super().__init__()
        self.op = op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        # one FLOP per input element: 3 channels x 8 x 8, whatever the window
        (lambda x: F.avg_pool2d(x, 2), 3 * 8 * 8),
        (lambda x: F.avg_pool2d(x, 4, stride=2, padding=1), 3 * 8 * 8),
        # sixteen per output element: 3 x 16 x 16 after a 2x upscale, 3 x 5 x 5 after 5/8
        (lambda x: F.interpolate(x, scale_factor=2, mode="bicubic"), 16 * 3 * 16 * 16),
        (lambda x: F.interpolate(x, size=(5, 5), mode="bicubic"), 16 * 3 * 5 * 5),
        # the convention's norms: LayerNorm 5 per element, BatchNorm (eval) 2 per element
        (nn.LayerNorm(8), 5 * 3 * 8 * 8),
        (nn.BatchNorm2d(3), 2 * 3 * 8 * 8),
        # elementwise work counts zero
        (lambda x: F.gelu(x).softmax(-1) + x, 0),
    ],
    ids=["avg_pool2d", "avg_pool2d-strided", "bicubic-up", "bicubic-down", "layer_norm",
         "batch_norm", "elementwise"],
)  # fmt: skip
def test_single_op_counts_against_hand_arithmetic(op, expected):
    """The handles dvbench adds for ``aten::avg_pool2d`` and ``aten::upsample_bicubic2d`` (and
    the convention's norms and zero-cost ops), on a model that is only that op (input
    1 x 3 x 8 x 8): exact counts, nothing uncounted."""
    report = count_flops(OnlyOp(op), 8, in_chans=3)
    assert report.flops == expected
    assert set(report.unsupported_ops) <= ZERO_COST_OPS and not report.uncounted_ops


class Cumulative(nn.Module):
    """A model whose only arithmetic is an op that fvcore has no handle for."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.cumsum(-1)


def test_skipped_ops_are_reported_not_hidden(caplog):
    report = count_flops(Cumulative(), 8)
    assert report.flops == 0
    assert report.unsupported_ops == {"aten::cumsum": 1}
    assert report.uncounted_ops == {"aten::cumsum": 1}
    assert not [r for r in caplog.records if r.name.startswith("fvcore")]  # reported here instead
    result = ProfileResult("cumulative", 1, ProfileSettings(), report)
    (line,) = uncounted_warnings([result, result])
    assert "cumulative" in line and "aten::cumsum" in line


def test_breakdown_rows_add_up_and_follow_stages():
    model = timm.create_model("pvt_v2_b0")
    report = count_flops(model, 224)
    names = [row.name for row in report.breakdown]
    assert [n for n in names if n.startswith("stages.")] == [f"stages.{i}" for i in range(4)]
    assert "patch_embed" in names and "head" in names
    assert sum(row.flops for row in report.breakdown) == report.flops
    assert sum(row.params for row in report.breakdown) == report.params


@needs_dualvit
def test_dualvit_breakdown_shows_stages_and_head():
    report = count_flops(_tiny_dualvit(), 112)
    names = {row.name for row in report.breakdown}
    expected = {f"patch_embed{i}" for i in range(1, 5)} | {f"block{i}" for i in range(1, 5)}
    assert expected | {"post_network", "head"} <= names
    assert sum(row.flops for row in report.breakdown) == report.flops
    assert sum(row.params for row in report.breakdown) == report.params
    stage1 = next(row for row in report.breakdown if row.name == "patch_embed1")
    assert stage1.kind == "Stem"


def test_count_cost_takes_names_modules_and_configs(tmp_path):
    by_name = count_cost("pvt_v2_b0", 224)
    by_module = count_cost(timm.create_model("pvt_v2_b0"), 224)
    assert by_name.params == by_module.params
    assert by_name.gflops == by_module.gflops
    params, gflops, unsupported = by_name  # a plain tuple for search constraints
    assert gflops == pytest.approx(0.57, rel=0.01)
    assert set(unsupported) <= ZERO_COST_OPS
    # resolution changes the count: attention is quadratic, the rest linear in pixels
    assert count_cost("pvt_v2_b0", 448).gflops > 4 * gflops
    with pytest.raises(UsageError, match="did you mean"):
        count_cost("pvt_v2_b9", 224)


def test_counting_restores_train_mode_and_does_not_build_graphs():
    model = timm.create_model("pvt_v2_b0").train()
    count_flops(model, 64)
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_single_channel_models_are_counted_with_their_own_input():
    rgb = count_flops(timm.create_model("test_vit"), 160)
    grey = count_flops(timm.create_model("test_vit", in_chans=1), 160)
    patch_embed = next(row for row in rgb.breakdown if row.name == "patch_embed")
    assert rgb.flops - grey.flops == patch_embed.flops * 2 // 3  # conv MACs scale with channels
