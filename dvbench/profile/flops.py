"""FLOPs and parameters in the field's convention: fvcore's count, plus the ops it misses.

fvcore counts one multiply-accumulate as one "flop" for matmul/linear/conv, plus its own
estimates for norms, pooling and resampling; elementwise work (activations, residual adds,
softmax) and data movement count zero. dvbench keeps that convention and only adds handles
for ops fvcore does not know but that do the same kind of work, so that a model counts the
same whichever implementation it uses:

- ``aten::scaled_dot_product_attention``: the two matmuls of the explicit path
  (q @ k^T and attn @ v), which fvcore counts as ``aten::matmul``; softmax, scaling and
  masking are elementwise and, as in the explicit path, count zero;
- ``aten::avg_pool2d``: one per input element, as fvcore counts ``adaptive_avg_pool2d``;
- ``aten::upsample_bicubic2d``: sixteen taps per output element, as fvcore counts four for
  ``upsample_bilinear2d``.

Every other op that gets no count is reported (:attr:`CostReport.unsupported_ops`);
:data:`ZERO_COST_OPS` names those that count zero by the convention, so anything outside it
(:attr:`CostReport.uncounted_ops`) is real arithmetic the count is missing.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.nn as nn

from dvbench.profile.timing import input_channels

if TYPE_CHECKING:
    from dvbench.models.config import DualViTConfig

__all__ = [
    "EXTRA_HANDLES",
    "ZERO_COST_OPS",
    "Cost",
    "CostReport",
    "ModuleCost",
    "count_cost",
    "count_flops",
    "sdpa_flop_jit",
]

# Ops that do no multiply-accumulate work worth counting in the fvcore convention:
# elementwise arithmetic and activations, reductions, softmax, padding and data movement.
# fvcore's own ignore list (``jit_analysis._IGNORED_OPS``) already hides many more of them
# (views, cat, relu, roll, ...); these are the ones it reports as unsupported.
ZERO_COST_OPS: frozenset[str] = frozenset(
    f"aten::{name}"
    for name in (
        "add", "add_", "sub", "sub_", "rsub", "mul", "mul_", "div", "div_", "neg",
        "addcmul", "addcmul_", "lerp",
        "gelu", "gelu_", "silu", "silu_", "sigmoid", "sigmoid_", "tanh", "hardswish",
        "hardsigmoid", "leaky_relu", "elu", "softplus", "exp", "sqrt", "rsqrt", "pow",
        "softmax", "log_softmax", "mean", "sum", "amax", "max_pool2d", "pad", "fill_",
        "clone", "repeat", "expand_as", "masked_fill_", "where", "abs",
    )
)  # fmt: skip


def _shape(value: Any) -> list[int]:
    """The complete shape of a traced tensor value (tracing at a fixed input always has one)."""
    shape = value.type().sizes() if value.isCompleteTensor() else None
    if shape is None:
        raise ValueError(f"flop handle: the traced value {value.debugName()} has no known shape")
    return shape


def sdpa_flop_jit(inputs: Sequence[Any], outputs: Sequence[Any]) -> int:
    """``softmax(q k^T) v`` as two matmuls: batch * Lq * Lk * (head_dim + value_dim).

    The same number fvcore gives the explicit ``q @ k.transpose(-2, -1)`` and ``attn @ v``
    (``aten::matmul``: product of the first input's shape times the last output dimension).
    Batch dimensions come from the output, so broadcast or grouped-query keys count per query
    head, as the explicit path would compute them.
    """
    query, key = _shape(inputs[0]), _shape(inputs[1])
    out = _shape(outputs[0])
    batch = math.prod(out[:-2])
    query_len, value_dim = out[-2], out[-1]
    key_len, head_dim = key[-2], query[-1]
    return batch * query_len * key_len * (head_dim + value_dim)


def _per_element(*, input_scale: int = 0, output_scale: int = 0):
    def handle(inputs: Sequence[Any], outputs: Sequence[Any]) -> int:
        return input_scale * math.prod(_shape(inputs[0])) + output_scale * math.prod(
            _shape(outputs[0])
        )

    return handle


#: Handles dvbench adds to fvcore's defaults (op name -> function of traced inputs/outputs).
EXTRA_HANDLES: dict[str, Any] = {
    "aten::scaled_dot_product_attention": sdpa_flop_jit,
    "aten::avg_pool2d": _per_element(input_scale=1),
    "aten::upsample_bicubic2d": _per_element(output_scale=16),
}


@dataclass(frozen=True)
class ModuleCost:
    """One row of a breakdown: a submodule's parameters and flops (one image)."""

    name: str
    kind: str
    params: int
    flops: int


@dataclass(frozen=True)
class CostReport:
    """What :func:`count_flops` found for one model at one resolution (batch 1)."""

    params: int
    flops: int
    resolution: tuple[int, int]
    unsupported_ops: Mapping[str, int]
    by_operator: Mapping[str, int]
    breakdown: tuple[ModuleCost, ...]

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    @property
    def uncounted_ops(self) -> dict[str, int]:
        """Ops that got no count although they are not zero-cost by the convention."""
        return {op: n for op, n in self.unsupported_ops.items() if op not in ZERO_COST_OPS}


class Cost(NamedTuple):
    """The cheap answer for search constraints: parameters, GFLOPs, ops that got no count."""

    params: int
    gflops: float
    unsupported: dict[str, int]


def _flop_analysis():
    # fvcore's package import jit-scripts its focal loss, which torch deprecates; harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from fvcore.nn import FlopCountAnalysis
    return FlopCountAnalysis


def _pair(resolution: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(resolution, int):
        return resolution, resolution
    h, w = resolution
    return int(h), int(w)


def count_flops(
    model: nn.Module,
    resolution: int | Sequence[int] = 224,
    *,
    in_chans: int | None = None,
) -> CostReport:
    """Count parameters and flops of ``model`` for one ``resolution`` image, in eval mode.

    One jit trace serves the total, the per-operator counts and the per-module breakdown.
    ``in_chans`` defaults to the channels of the model's first convolution. The model's
    train/eval mode is restored afterwards. fvcore's warning log is silenced;
    the ops it skipped are in the report instead.
    """
    height, width = _pair(resolution)
    device = next(model.parameters(), torch.empty(0)).device
    in_chans = input_channels(model) if in_chans is None else in_chans
    inputs = torch.zeros(1, in_chans, height, width, device=device)
    was_training = model.training
    fvcore_logger = logging.getLogger("fvcore")
    previous_level = fvcore_logger.level
    analysis = (
        _flop_analysis()(model.eval(), inputs)
        .set_op_handle(**EXTRA_HANDLES)
        .unsupported_ops_warnings(False)
        .uncalled_modules_warnings(False)
    )
    try:
        fvcore_logger.setLevel(logging.ERROR)
        with torch.no_grad():
            flops_by_module = analysis.by_module()
    finally:
        fvcore_logger.setLevel(previous_level)
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    return CostReport(
        params=params,
        flops=int(flops_by_module[""]),
        resolution=(height, width),
        unsupported_ops=dict(sorted(analysis.unsupported_ops().items())),
        by_operator=dict(analysis.by_operator()),
        breakdown=_breakdown(model, flops_by_module, params),
    )


# Top-level containers that hold a model's stages (timm's convention); the breakdown lists
# their children instead of one row for the whole container.
_STAGE_CONTAINERS = ("stages", "layers")


def _breakdown(
    model: nn.Module, flops_by_module: Mapping[str, int], params: int
) -> tuple[ModuleCost, ...]:
    """Rows per top-level child (Dual-ViT: patch_embedN, blockN, post_network, head, ...)."""
    rows = []
    for name, child in model.named_children():
        if name in _STAGE_CONTAINERS and isinstance(child, (nn.Sequential, nn.ModuleList)):
            members = [(f"{name}.{sub}", module) for sub, module in child.named_children()]
        else:
            members = [(name, child)]
        for member_name, module in members:
            rows.append(
                ModuleCost(
                    name=member_name,
                    kind=type(module).__name__,
                    params=sum(p.numel() for p in module.parameters()),
                    flops=int(flops_by_module.get(member_name, 0)),
                )
            )
    rest = ModuleCost(
        name="(top level)",
        kind=type(model).__name__,
        params=params - sum(r.params for r in rows),
        flops=int(flops_by_module[""]) - sum(r.flops for r in rows),
    )
    rows.append(rest)
    return tuple(r for r in rows if r.params or r.flops)


def count_cost(
    model_or_spec: nn.Module | str | Path | DualViTConfig,
    resolution: int = 224,
) -> Cost:
    """Parameters, GFLOPs and skipped ops of a model or anything ``create_model`` takes."""
    if isinstance(model_or_spec, nn.Module):
        model = model_or_spec
    else:
        from dvbench.models.registry import create_model

        model = create_model(model_or_spec, img_size=resolution)
    report = count_flops(model, resolution)
    return Cost(report.params, report.gflops, dict(report.unsupported_ops))
