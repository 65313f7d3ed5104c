"""Cost features a latency model reads: what a network computes, split by how hardware runs it.

One jit trace (fvcore's analysis, with dvbench's FLOP handles) gives, for one image:

- ``dense_gmac``: weight GEMMs and full convolutions (linear, addmm, mm, conv with groups 1);
- ``depthwise_gmac``: grouped and depthwise convolutions (few MACs, memory-bound on CPUs);
- ``attention_gmac``: activation-by-activation products (matmul, bmm, einsum, SDPA);
- ``memory_melems``: million elements written by elementwise, normalisation, pooling and copy
  ops (activations, residual adds, softmax, layer norm, ``cat``/``contiguous``/``copy_``);
- ``ops``: operators executed (each is a dispatch and a kernel launch: the batch-1 overhead);
- ``params_m``: parameters (weights read once per call).

``gflops`` is the FLOP count of :func:`dvbench.profile.count_flops` from the same handles, so
a search that predicts latency counts its GFLOPs and its features in one trace.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from dvbench.profile.flops import EXTRA_HANDLES, ZERO_COST_OPS
from dvbench.profile.timing import input_channels

__all__ = ["FEATURES", "Features", "cost_features"]

#: The feature names, in the order a fit stores its coefficients.
FEATURES: tuple[str, ...] = (
    "dense_gmac",
    "depthwise_gmac",
    "attention_gmac",
    "memory_melems",
    "ops",
    "params_m",
)

_DENSE = ("aten::addmm", "aten::linear", "aten::mm")
_ATTENTION = ("aten::matmul", "aten::bmm", "aten::einsum", "aten::scaled_dot_product_attention")
#: Data movement fvcore ignores but that writes a new tensor.
_COPIES = ("aten::cat", "aten::contiguous", "aten::copy_", "aten::constant_pad_nd", "aten::clone")
_NORMS = ("aten::layer_norm", "aten::batch_norm", "aten::group_norm", "aten::instance_norm")


@dataclass(frozen=True)
class Features:
    """The cost features of one model at one resolution (one image), with its GFLOPs."""

    values: Mapping[str, float]
    gflops: float
    params: int
    resolution: int

    def vector(self) -> list[float]:
        return [float(self.values[name]) for name in FEATURES]

    def as_dict(self) -> dict[str, float]:
        return {name: float(self.values[name]) for name in FEATURES}


def _elements(value: Any) -> int:
    if not value.isCompleteTensor():
        return 0
    return math.prod(value.type().sizes())


def _conv_groups(inputs: list) -> int:
    # aten::_convolution(input, weight, bias, stride, padding, dilation, transposed,
    #                    output_padding, groups, ...)
    try:
        return int(inputs[8].toIValue())
    except (IndexError, RuntimeError, TypeError):
        return 1


def _handles() -> dict[str, Any]:
    """Handles returning a Counter of flop categories, element writes and operator calls."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS  # fvcore's FLOP handles

    flop_handles = {**_DEFAULT_SUPPORTED_OPS, **EXTRA_HANDLES}

    def categorised(op: str, handle):
        def count(inputs: list, outputs: list) -> Counter:
            flops = handle(inputs, outputs)
            flops = sum(flops.values()) if isinstance(flops, Counter) else flops
            if op in _DENSE:
                kind = "dense"
            elif op in _ATTENTION:
                kind = "attention"
            elif op == "aten::_convolution":
                kind = "depthwise" if _conv_groups(inputs) > 1 else "dense"
            else:  # norms, pooling, resampling: counted flops, memory-bound work
                kind = "other"
            out = Counter({f"flops_{kind}": int(flops), "ops": 1})
            if kind == "other":
                out["elements"] = sum(_elements(v) for v in outputs)
            return out

        return count

    def elementwise(inputs: list, outputs: list) -> Counter:
        return Counter({"elements": sum(_elements(v) for v in outputs), "ops": 1})

    handles = {op: categorised(op, h) for op, h in flop_handles.items()}
    for op in (*ZERO_COST_OPS, *_COPIES):
        handles.setdefault(op, elementwise)
    return handles


def cost_features(model: nn.Module, resolution: int) -> Features:
    """The :data:`FEATURES` of ``model`` for one ``resolution`` image (eval mode, one trace)."""
    with warnings.catch_warnings():  # fvcore's import jit-scripts a loss torch deprecates
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from fvcore.nn.jit_analysis import JitModelAnalysis

    device = next(model.parameters(), torch.empty(0)).device
    inputs = torch.zeros(1, input_channels(model), resolution, resolution, device=device)
    was_training = model.training
    fvcore_logger = logging.getLogger("fvcore")
    previous = fvcore_logger.level
    analysis = JitModelAnalysis(model.eval(), inputs).set_op_handle(**_handles())
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    try:
        fvcore_logger.setLevel(logging.ERROR)
        with torch.no_grad():
            totals = Counter(analysis.by_operator())
    finally:
        fvcore_logger.setLevel(previous)
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    flops = sum(v for k, v in totals.items() if k.startswith("flops_"))
    values = {
        "dense_gmac": totals["flops_dense"] / 1e9,
        "depthwise_gmac": totals["flops_depthwise"] / 1e9,
        "attention_gmac": totals["flops_attention"] / 1e9,
        "memory_melems": totals["elements"] / 1e6,
        "ops": float(totals["ops"]),
        "params_m": params / 1e6,
    }
    return Features(values=values, gflops=flops / 1e9, params=params, resolution=resolution)
