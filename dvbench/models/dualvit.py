"""Dual Vision Transformer (Dual-ViT), parameterised for architecture search.

Paper: "Dual Vision Transformer", Ting Yao, Yehao Li, Yingwei Pan, Yu Wang, Xiao-Ping Zhang,
Tao Mei, TPAMI 2023 (https://arxiv.org/abs/2207.04976). Official code: the public repository
YehLi/ImageNetModel, ``classification/dualvit.py``.

The official ``dualvit_s``/``dualvit_b``/``dualvit_l`` are exact instances of
:class:`~dvbench.models.config.DualViTConfig`: same function (the reference fixtures agree to
1e-4), same parameters, same state-dict keys. What differs from the official code:

- attention uses ``F.scaled_dot_product_attention`` (``fused_attn``; the explicit math is kept
  and used when timm's fused attention is off);
- projections that read the same input are fused into one matrix multiply (pixel queries
  with the semantic pathway's keys/values in dual blocks; q with kv in merge blocks). The
  state dict keeps the official layout: official keys are fused when loaded and split again
  when saved, so official checkpoints load with ``strict=True`` and saved ones load into the
  official code;
- pixel tokens stay in one (B, N, C) layout; convolutions read and write them through
  channels-last views instead of copies;
- ``forward`` returns class logits in train mode too (``head(cls) + 0.5 * max aux_head``);
  the official train-mode MixToken / dense-target path is ``forward_token_label``.

As a timm model (timm's ``pvt_v2``/``swin_transformer`` interface):

- ``forward_features`` returns the last stage as an NHWC map (``output_fmt``) of
  ``num_features = 2 * C`` channels: the normed pixel tokens, then the class token repeated
  at every position. The class token is the class-attention pool over the pixel *and* the
  semantic tokens; the semantic tokens have no place on the pixel grid, so the pooling runs
  here and ``forward_head`` only reads the class token (and, for the token-labeling head, the
  pixel tokens) back out;
- ``forward_intermediates``, ``prune_intermediate_layers`` and ``features_only=True`` (timm's
  feature getter) give the pixel map of each stage, strides 4, 8, 16, 32 (``feature_info``);
- torch.fx traces the model with the size-dependent parts (the input-size check, the query
  resize, the chunked inference FFN) kept whole as timm no-trace functions and modules;
  TorchScript compiles that graph (``__prepare_scriptable__``), because it cannot loop over
  the official flat stage attributes (``block1``, ``norm1``, ...);
- ``set_grad_checkpointing`` recomputes each block in the backward pass.
"""

import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, trunc_normal_, use_fused_attn
from timm.models import (
    build_model_with_cfg,
    generate_default_cfgs,
    get_notrace_functions,
    get_notrace_modules,
    register_model,
    register_notrace_function,
    register_notrace_module,
)

from dvbench.models.config import DualViTConfig, official_config, semantic_grid_size

__all__ = ["DualViT", "checkpoint_filter_fn"]

# LayerNorm with PyTorch's default eps: the official code uses it inside the semantic
# pathway, the patch embeddings and the semantic embeddings ("LN5" in the spec), while
# the blocks, stage norms and head use the model's norm_layer (eps 1e-6, "LN6").
LayerNorm5 = nn.LayerNorm


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, fused: bool):
    """softmax(q k^T * scale) v on (..., N, head_dim) tensors."""
    if fused:
        return F.scaled_dot_product_attention(q, k, v, scale=scale)
    attn = (q @ k.transpose(-2, -1)) * scale
    return attn.softmax(dim=-1) @ v


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, N, C) -> (B, heads, N, C // heads), a view."""
    return x.view(x.shape[0], x.shape[1], num_heads, -1).transpose(1, 2)


def _split_heads(x: torch.Tensor, parts: int, num_heads: int) -> tuple[torch.Tensor, ...]:
    """(B, N, parts * C) -> ``parts`` views (B, heads, N, C // heads): the chunks of the last
    dimension, as ``_heads`` of each ``chunk``."""
    return x.view(x.shape[0], x.shape[1], parts, num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, N, d) -> (B, N, heads * d)."""
    return x.transpose(1, 2).flatten(2)


def _scaled_residual(
    x: torch.Tensor, gamma: torch.Tensor, y: torch.Tensor, drop_path: nn.Module
) -> torch.Tensor:
    """x + drop_path(gamma * y); one fused kernel when drop path is inactive."""
    if isinstance(drop_path, DropPath) and drop_path.training and drop_path.drop_prob > 0:
        return x + drop_path(gamma * y)
    return torch.addcmul(x, gamma, y)


def _token_map(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, N, C) tokens -> (B, C, H, W) map with channels-last strides (a view, no copy)."""
    return _nhwc(x, h, w).permute(0, 3, 1, 2)


def _nhwc(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, N, C) tokens -> (B, H, W, C), a view."""
    return x.view(x.shape[0], h, w, x.shape[-1])


def _map_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) map -> (B, H*W, C) tokens; a contiguous view when the map is channels-last."""
    return x.flatten(2).transpose(1, 2)


class FusedLinear(nn.Linear):
    """One Linear standing for several official Linears that read the same input.

    ``parts`` maps each official sub-module name to its output width, in output order. The
    owning module calls :func:`_install_fused_state_hooks`, whose state-dict hooks
    (:func:`_fuse_official_keys` on load, :func:`_split_fused_keys` on save) keep the
    official keys in checkpoints.
    """

    def __init__(self, in_features: int, parts: Mapping[str, int]):
        super().__init__(in_features, sum(parts.values()))
        self.parts = dict(parts)


def _install_fused_state_hooks(module: nn.Module, fused_name: str) -> None:
    """Load official ``<part>.weight/bias`` keys into ``fused_name``; save them back split.

    The hooks are partials of module-level functions, so that the model still pickles
    (multiprocessing, the profiler's memory child process).
    """
    module.register_load_state_dict_pre_hook(partial(_fuse_official_keys, fused_name=fused_name))
    module.register_state_dict_post_hook(partial(_split_fused_keys, fused_name=fused_name))


def _fuse_official_keys(
    module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors, *, fused_name
) -> None:
    parts = getattr(module, fused_name).parts
    for suffix in ("weight", "bias"):
        keys = [f"{prefix}{name}.{suffix}" for name in parts]
        if all(k in state_dict for k in keys):
            state_dict[f"{prefix}{fused_name}.{suffix}"] = torch.cat(
                [state_dict.pop(k) for k in keys], dim=0
            )


def _split_fused_keys(module, state_dict, prefix, local_metadata, *, fused_name) -> None:
    parts = getattr(module, fused_name).parts
    for suffix in ("weight", "bias"):
        key = f"{prefix}{fused_name}.{suffix}"
        # state_dict(keep_vars=True) hands out the live parameters (tracers such as
        # torch.jit.trace identify parameters this way): keep the fused layout there.
        if key not in state_dict or isinstance(state_dict[key], nn.Parameter):
            continue
        fused = state_dict.pop(key)
        for name, chunk in zip(parts, fused.split(list(parts.values()), dim=0)):
            state_dict[f"{prefix}{name}.{suffix}"] = chunk.clone()
    _reorder(state_dict, prefix, module.official_key_order)


def _reorder(state_dict: dict, prefix: str, order: Sequence[str]) -> None:
    """Put the keys under ``prefix`` (the most recently written subtree) in official order."""
    keys = [k for k in state_dict if k.startswith(prefix)]
    rank = {name: i for i, name in enumerate(order)}
    keys.sort(key=lambda k: rank.get(k[len(prefix) :], len(rank)))
    for k in keys:
        state_dict[k] = state_dict.pop(k)


@register_notrace_module  # the inference path splits the batch by its size
class PixelFFN(nn.Module):
    """PVT-v2 FFN: Linear -> depthwise 3x3 conv on the pixel map -> GELU -> Linear."""

    # Inference runs the FFN a few images at a time so that its hidden tensors (the largest
    # in the network: stage 1 holds B x 3136 x 8C) stay around this many elements. Fresh
    # multi-megabyte allocations are page-faulted in on every call and fall out of cache;
    # chunking keeps them small and reused. Samples are independent, so values are the same.
    chunk_elements = 2**21
    __constants__ = ["chunk_elements"]

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DWConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self._pixels(x, h, w)

    def _pixels(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        if torch.is_grad_enabled():  # autograd needs GELU's input: the plain path
            return self.fc2(self.act(self.dwconv(self.fc1(x), h, w)))
        per_chunk = max(1, self.chunk_elements // (h * w * self.fc1.out_features))
        if x.shape[0] <= per_chunk:
            return self._inference(x, h, w)
        return torch.cat([self._inference(part, h, w) for part in x.split(per_chunk)], dim=0)

    def _inference(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        # GELU overwrites the conv output (ours alone) instead of allocating another hidden-
        # sized tensor; same values as nn.GELU().
        return self.fc2(torch.ops.aten.gelu_(self.dwconv(self.fc1(x), h, w)))


class DWConv(nn.Module):
    """Depthwise 3x3 conv (padding 1) over the token map.

    On maps of at most :attr:`small_map` pixels (the last stages of a 32 px proxy: 2x2 and
    1x1) oneDNN's depthwise kernel, above all its backward, costs 10-20x the arithmetic; there
    each output is a sum of at most four taps, computed as one broadcast multiply and sum
    (:func:`_small_map_depthwise`). Same function, a different summation order (float
    rounding only, tested against the conv); maps of 224 px inputs are never this small.
    """

    small_map = 4
    __constants__ = ["small_map"]

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        if h * w <= self.small_map and not torch.jit.is_scripting():
            return _small_map_depthwise(x, self.dwconv.weight, self.dwconv.bias, h, w)
        return _map_tokens(self.dwconv(_token_map(x, h, w)))


@functools.lru_cache(maxsize=16)
def _tap_index(h: int, w: int) -> torch.Tensor:
    """(N, N) index into a kernel's 9 taps plus a zero (index 9): entry [q, p] is the tap that
    carries input pixel q to output pixel p of a 3x3, padding-1 conv on an h x w map.

    Made outside inference mode whatever the caller's mode: the cache outlives the call, and
    an inference tensor cannot index in a later training step (a process that times a
    candidate under ``inference_mode`` and then trains it)."""
    with torch.inference_mode(False):
        return _tap_index_table(h, w)


def _tap_index_table(h: int, w: int) -> torch.Tensor:
    index = torch.full((h * w, h * w), 9, dtype=torch.long)
    for q in range(h * w):
        for p in range(h * w):
            di, dj = q // w - p // w + 1, q % w - p % w + 1
            if 0 <= di < 3 and 0 <= dj < 3:
                index[q, p] = di * 3 + dj
    return index


@torch.jit.unused
def _small_map_depthwise(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, h: int, w: int
) -> torch.Tensor:
    """(B, N, C) tokens of an h x w map -> the depthwise 3x3 conv's (B, N, C) output."""
    channels = weight.shape[0]
    taps = weight.reshape(channels, 9)
    if h * w == 1:  # padding leaves only the centre tap
        out = x * taps[:, 4]
    else:
        kernel = F.pad(taps, (0, 1))[:, _tap_index(h, w).to(x.device)]  # (C, q, p)
        out = (x.unsqueeze(2) * kernel.permute(1, 2, 0)).sum(1)
    return out if bias is None else out + bias


@register_notrace_module
class MergeFFN(PixelFFN):
    """Pixel tokens through the PVT-v2 FFN, semantic tokens through a plain MLP.

    ``fc_proxy`` is None in the last block of a pruned model (``prune_intermediate_layers``):
    the semantic tokens end before it and only pixel tokens come in.
    """

    def __init__(self, dim: int, hidden: int, semantic_hidden: int):
        super().__init__(dim, hidden)
        self.fc_proxy = nn.Sequential(
            nn.Linear(dim, semantic_hidden), nn.GELU(), nn.Linear(semantic_hidden, dim)
        )

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        if self.fc_proxy is None:
            return self._pixels(x, h, w)
        pixels, semantics = x.split([h * w, x.shape[1] - h * w], dim=1)
        return torch.cat([self._pixels(pixels, h, w), self.fc_proxy(semantics)], dim=1)


class MergeAttention(nn.Module):
    """Multi-head self-attention over pixel + semantic tokens (official q/kv fused to qkv)."""

    official_key_order = ("q.weight", "q.bias", "kv.weight", "kv.bias", "proj.weight", "proj.bias")

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.fused_attn = use_fused_attn()
        self.qkv = FusedLinear(dim, {"q": dim, "kv": 2 * dim})
        self.proj = nn.Linear(dim, dim)
        _install_fused_state_hooks(self, "qkv")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = _split_heads(self.qkv(x), 3, self.num_heads)
        return self.proj(_merge_heads(_attention(q, k, v, self.scale, self.fused_attn)))


class DualAttention(nn.Module):
    """The dual block's attention: semantics self-attend, gather from pixels, pixels read them."""

    official_key_order = (
        "gamma1",
        "gamma2",
        "gamma3",
        "q.weight",
        "q.bias",
        "kv.weight",
        "kv.bias",
        "proj.weight",
        "proj.bias",
        "q_proxy.weight",
        "q_proxy.bias",
        "kv_proxy.weight",
        "kv_proxy.bias",
        "q_proxy_ln.weight",
        "q_proxy_ln.bias",
        "p_ln.weight",
        "p_ln.bias",
        "mlp_proxy.0.weight",
        "mlp_proxy.0.bias",
        "mlp_proxy.2.weight",
        "mlp_proxy.2.bias",
        "proxy_ln.weight",
        "proxy_ln.bias",
        "qkv_proxy.0.weight",
        "qkv_proxy.0.bias",
        "qkv_proxy.1.weight",
        "qkv_proxy.1.bias",
    )

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        semantic_mlp_ratio: float,
        drop_path: float,
        layer_scale_init: float,
    ):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.fused_attn = use_fused_attn()
        self.gamma1 = nn.Parameter(layer_scale_init * torch.ones(dim))
        self.gamma2 = nn.Parameter(layer_scale_init * torch.ones(dim))
        self.gamma3 = nn.Parameter(layer_scale_init * torch.ones(dim))
        # Pixel queries and the semantic pathway's keys/values both read the pixel tokens.
        self.pixel_qkv = FusedLinear(dim, {"q": dim, "kv_proxy": 2 * dim})
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.q_proxy = nn.Linear(dim, dim)
        self.q_proxy_ln = LayerNorm5(dim)
        self.p_ln = LayerNorm5(dim)
        hidden = int(dim * semantic_mlp_ratio)
        self.mlp_proxy = nn.Sequential(
            nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim)
        )
        self.proxy_ln = LayerNorm5(dim)
        self.qkv_proxy = nn.Sequential(LayerNorm5(dim), nn.Linear(dim, 3 * dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        _install_fused_state_hooks(self, "pixel_qkv")

    def forward(
        self, x: torch.Tensor, semantics: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        heads, scale, fused = self.num_heads, self.scale, self.fused_attn
        # 1. semantic self-attention (no output projection)
        q, k, v = _split_heads(self.qkv_proxy(semantics), 3, heads)
        attended = _merge_heads(_attention(q, k, v, scale, fused))
        semantics = _scaled_residual(semantics, self.gamma1, attended, self.drop_path)
        # 2. semantics gather from pixels
        q_pixels, k_pixels, v_pixels = self.pixel_qkv(x).chunk(3, dim=-1)
        q = _heads(self.q_proxy(self.q_proxy_ln(semantics)), heads)
        gathered = _attention(q, _heads(k_pixels, heads), _heads(v_pixels, heads), scale, fused)
        semantics = _scaled_residual(semantics, self.gamma2, _merge_heads(gathered), self.drop_path)
        # 3. semantic MLP
        semantics = _scaled_residual(
            semantics, self.gamma3, self.mlp_proxy(self.p_ln(semantics)), self.drop_path
        )
        # 4. pixels read from semantics
        k, v = _split_heads(self.kv(self.proxy_ln(semantics)), 2, heads)
        out = _attention(_heads(q_pixels, heads), k, v, scale, fused)
        return self.proj(_merge_heads(out)), semantics


def _take_indices(count: int, indices: int | Sequence[int] | None) -> tuple[list[int], int]:
    """The stages ``forward_intermediates`` returns, as timm's models read ``indices``: None
    all, an int the last n, a list those (negative from the end); and the deepest of them.
    (timm's own helper is private to timm, so the same rule is written here.)"""
    if indices is None:
        indices = count
    if isinstance(indices, int):
        if not 0 < indices <= count:
            raise ValueError(f"indices: last-n {indices} is out of range (1 to {count})")
        taken = list(range(count - indices, count))
    else:
        taken = [count + i if i < 0 else i for i in indices]
        if not taken or not all(0 <= i < count for i in taken):
            raise ValueError(f"indices: {list(indices)} out of range (0 to {count - 1})")
    return taken, max(taken)


class _ResidualBlock(nn.Module):
    """Pre-norm block with layer scale and stochastic depth (the official key layout).

    Dual and merge blocks differ only in their token mixers, which the subclass names:
    ``_attention(dim, num_heads, *, semantic_mlp_ratio, drop_path, layer_scale_init)`` and
    ``_ffn(dim, hidden, semantic_hidden)`` build ``attn`` and ``mlp``.
    """

    _attention: Callable[..., nn.Module]
    _ffn: Callable[[int, int, int], nn.Module]

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        *,
        semantic_mlp_ratio: float,
        drop_path: float,
        layer_scale_init: float,
        norm_layer: type[nn.Module],
    ):
        super().__init__()
        self.gamma1 = nn.Parameter(layer_scale_init * torch.ones(dim))
        self.gamma2 = nn.Parameter(layer_scale_init * torch.ones(dim))
        self.norm1 = norm_layer(dim)
        self.norm2 = norm_layer(dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.attn = self._attention(
            dim,
            num_heads,
            semantic_mlp_ratio=semantic_mlp_ratio,
            drop_path=drop_path,
            layer_scale_init=layer_scale_init,
        )
        self.mlp = self._ffn(dim, int(dim * mlp_ratio), int(dim * semantic_mlp_ratio))


class DualBlock(_ResidualBlock):
    _attention = DualAttention

    @staticmethod
    def _ffn(dim: int, hidden: int, semantic_hidden: int) -> nn.Module:
        # the semantic tokens' MLP is DualAttention's mlp_proxy
        return PixelFFN(dim, hidden)

    def forward(
        self, x: torch.Tensor, semantics: torch.Tensor, h: int, w: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        y, semantics = self.attn(self.norm1(x), semantics)
        x = _scaled_residual(x, self.gamma1, y, self.drop_path)
        x = _scaled_residual(x, self.gamma2, self.mlp(self.norm2(x), h, w), self.drop_path)
        return x, semantics


class MergeBlock(_ResidualBlock):
    _ffn = MergeFFN

    @staticmethod
    def _attention(dim: int, num_heads: int, **_: float) -> nn.Module:
        return MergeAttention(dim, num_heads)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = _scaled_residual(x, self.gamma1, self.attn(self.norm1(x)), self.drop_path)
        if self.mlp.fc_proxy is None:  # pruned: the semantic tokens end in this attention
            x = x.narrow(1, 0, h * w)
        return _scaled_residual(x, self.gamma2, self.mlp(self.norm2(x), h, w), self.drop_path)


class Stem(nn.Module):
    """conv7x7/2-BN-ReLU, 2x (conv3x3-BN-ReLU), conv3x3/2 to the stage-1 width, LayerNorm."""

    def __init__(self, in_chans: int, hidden: int, out_dim: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_chans, hidden, 7, 2, 3, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, 1, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, 1, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
        )
        self.proj = nn.Conv2d(hidden, out_dim, 3, 2, 1)
        self.norm = LayerNorm5(out_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        # oneDNN convolutions run faster on channels-last maps, and the stage-1 tokens are
        # then a free view of the last one.
        x = self.proj(self.conv(x.contiguous(memory_format=torch.channels_last)))
        return self.norm(_map_tokens(x)), x.shape[2], x.shape[3]


class DownSample(nn.Module):
    """conv3x3/2 then LayerNorm: the patch embedding of stages 2..n."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_dim, out_dim, 3, 2, 1)
        self.norm = LayerNorm5(out_dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, int, int]:
        x = self.proj(_token_map(x, h, w))
        return self.norm(_map_tokens(x)), x.shape[2], x.shape[3]


class SemanticEmbed(nn.Module):
    """Carries the semantic tokens to the next stage's width: Linear + LayerNorm."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.proj_proxy = nn.Sequential(nn.Linear(in_dim, out_dim), LayerNorm5(out_dim))

    def forward(self, semantics: torch.Tensor) -> torch.Tensor:
        return self.proj_proxy(semantics)


class ClassAttention(nn.Module):
    """Only the class token queries; keys and values are all tokens (class token included)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.fused_attn = use_fused_attn()
        self.kv = nn.Linear(dim, 2 * dim)
        self.q = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, v = _split_heads(self.kv(x), 2, self.num_heads)
        q = _heads(self.q(x[:, :1]), self.num_heads)
        return self.proj(_merge_heads(_attention(q, k, v, self.scale, self.fused_attn)))


class ClassMlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ClassBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, norm_layer: type[nn.Module]):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.norm2 = norm_layer(dim)
        self.attn = ClassAttention(dim, num_heads)
        self.mlp = ClassMlp(dim, int(dim * mlp_ratio))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, 1 + N, C) with the class token first -> the updated class token (B, 1, C)."""
        cls = tokens[:, :1] + self.attn(self.norm1(tokens))
        return cls + self.mlp(self.norm2(cls))


@register_notrace_function  # resizes only when the grid differs: a decision on traced sizes
def resize_semantic_queries(
    queries: torch.Tensor, query_grid: int, height: int, width: int
) -> torch.Tensor:
    """The learned (query_grid**2, C) queries for a height x width semantic grid.

    Bicubic interpolation of the query grid (align_corners False), as the official code does
    whenever the pooled grid is not the learned one.
    """
    if height == query_grid and width == query_grid:
        return queries
    grid = queries.reshape(1, query_grid, query_grid, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=False)
    return grid.flatten(2).transpose(1, 2).squeeze(0)


# The input-size check raises on traced sizes: FX keeps it as one call.
register_notrace_function(semantic_grid_size)


class DualViT(nn.Module):
    """Dual-ViT built from a :class:`DualViTConfig`; keyword arguments override its fields.

    ``device`` and ``dtype`` are timm's factory arguments: where the parameters are created
    and what they are cast to.
    """

    def __init__(
        self,
        cfg: DualViTConfig | None = None,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **overrides: Any,
    ):
        super().__init__()
        cfg = cfg or DualViTConfig()
        unknown = sorted(set(overrides) - set(DualViTConfig.field_names()))
        if unknown:  # what Python says for an unexpected keyword (timm's contract)
            raise TypeError(
                f"{unknown[0]}: not a DualViTConfig field, so DualViT does not take it "
                f"(fields: {', '.join(DualViTConfig.field_names())})"
            )
        if overrides:
            cfg = DualViTConfig.from_dict(overrides, base=cfg)
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        self.in_chans = cfg.in_chans
        self.global_pool = cfg.global_pool
        self.token_label = cfg.token_label
        # Stages this module runs: all of the config's, fewer after prune_intermediate_layers.
        self.num_stages = cfg.num_stages
        self.head_hidden_size = cfg.embed_dims[-1]
        self.num_features = 2 * self.head_hidden_size  # pixel channels + class token
        self.output_fmt = "NHWC"
        self.grad_checkpointing = False
        self.fused_attn = use_fused_attn()
        self.feature_info = [
            dict(num_chs=dim, reduction=4 * 2**i, module=f"block{i + 1}")
            for i, dim in enumerate(cfg.embed_dims)
        ]
        dims, n = cfg.embed_dims, cfg.num_stages
        norm_layer = partial(nn.LayerNorm, eps=cfg.norm_eps)

        with torch.device(device) if device is not None else contextlib.nullcontext():
            # Semantic tokens are born in stage 1 (official attribute names, for checkpoints).
            c1 = dims[0]
            self.q = nn.Parameter(torch.empty(cfg.semantic_query_grid**2, c1))
            self.q_embed = nn.Sequential(LayerNorm5(c1), nn.Linear(c1, c1))
            self.kv = nn.Linear(c1, 2 * c1)
            self.scale = c1**-0.5
            self.proxy_ln = LayerNorm5(c1)
            self.se = nn.Sequential(nn.Linear(c1, c1), nn.ReLU(inplace=True), nn.Linear(c1, 2 * c1))

            # Stochastic depth grows linearly over all blocks (the official schedule); on
            # the CPU whatever the factory device, since the rates are Python numbers.
            dpr = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths), device="cpu").tolist()
            cur = 0
            for i in range(n):
                if i > 0:
                    setattr(self, f"proxy_embed{i + 1}", SemanticEmbed(dims[i - 1], dims[i]))
                    patch_embed = DownSample(dims[i - 1], dims[i])
                else:
                    patch_embed = Stem(cfg.in_chans, cfg.stem_hidden_dim, dims[0])
                dual = i < cfg.dual_stages
                block_cls = DualBlock if dual else MergeBlock
                semantic_ratio = (
                    cfg.semantic_mlp_ratio_dual if dual else cfg.semantic_mlp_ratio_merge
                )
                blocks = nn.ModuleList(
                    block_cls(
                        dims[i],
                        cfg.num_heads[i],
                        cfg.stage_mlp_ratio(i, j),
                        semantic_mlp_ratio=semantic_ratio,
                        drop_path=dpr[cur + j],
                        layer_scale_init=cfg.layer_scale_init,
                        norm_layer=norm_layer,
                    )
                    for j in range(cfg.depths[i])
                )
                cur += cfg.depths[i]
                setattr(self, f"patch_embed{i + 1}", patch_embed)
                setattr(self, f"block{i + 1}", blocks)
                setattr(self, f"norm{i + 1}", norm_layer(dims[i]))
                if i != n - 1:
                    setattr(self, f"norm_proxy{i + 1}", norm_layer(dims[i]))

            self.post_network = nn.ModuleList(
                [ClassBlock(dims[-1], cfg.num_heads[-1], cfg.class_mlp_ratio, norm_layer)]
            )
            self.head_drop = nn.Dropout(cfg.drop_rate)
            self.head = _classifier(dims[-1], cfg.num_classes)
            if cfg.token_label:
                self.aux_head = _classifier(dims[-1], cfg.num_classes)
            self.apply(_init_weights)
            trunc_normal_(self.q, std=0.02)
            # Every convolution sees channels-last maps; keeping the weights in the same
            # layout saves a reorder per call. Values (and state-dict keys/shapes) are unchanged.
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    module.weight.data = module.weight.data.contiguous(
                        memory_format=torch.channels_last
                    )
        if dtype is not None:
            self.to(dtype=dtype)

    # ------------------------------------------------------------------ timm conventions
    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"q"}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Parameter groups in network order, for layer-wise learning-rate decay.

        The stem with the birth of the semantic tokens first; then the blocks, each stage's
        downsampling and semantic embedding with its first block and its norms with its last
        (timm's 99999: same group as the one before); the class-attention block; the
        classifiers last.
        """
        return dict(
            stem=r"^patch_embed1\.|^q$|^q_embed\.|^kv\.|^proxy_ln\.|^se\.",
            blocks=[
                (r"^(?:patch_embed|proxy_embed|block|norm_proxy|norm)(\d+)\.", None),
                (r"^post_network\.", (99998,)),
            ]
            if coarse
            else [
                (r"^(?:patch_embed|proxy_embed)(\d+)\.", (0,)),
                (r"^block(\d+)\.(\d+)\.", None),
                (r"^(?:norm_proxy|norm)(\d+)\.", (99999,)),
                (r"^post_network\.", (99998,)),
            ],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block in the backward pass instead of keeping its activations."""
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """New classifiers (and the token-labeling head) for ``num_classes``; 0 removes them."""
        global_pool = self.global_pool if global_pool is None else global_pool
        cfg = self.cfg.replace(num_classes=num_classes, global_pool=global_pool)  # validates
        if global_pool and self.post_network is None:
            raise ValueError("global_pool: 'token' needs the class-attention block, pruned here")
        self.cfg, self.num_classes, self.global_pool = cfg, num_classes, global_pool
        factory = next(self.parameters())
        dd = dict(device=factory.device, dtype=factory.dtype)
        self.head = _classifier(self.head_hidden_size, num_classes, **dd).train(self.training)
        if self.token_label:
            self.aux_head = _classifier(self.head_hidden_size, num_classes, **dd).train(
                self.training
            )

    # ------------------------------------------------------------------------- forward
    def _init_semantics(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        cfg = self.cfg
        grid_h, grid_w = semantic_grid_size(
            h, w, cfg.semantic_pool, cfg.semantic_window, cfg.semantic_grid
        )
        pixel_map = _token_map(x, h, w)
        if cfg.semantic_pool == "window":
            pooled = F.avg_pool2d(pixel_map, cfg.semantic_window, cfg.semantic_window)
        else:
            pooled = F.adaptive_avg_pool2d(pixel_map, cfg.semantic_grid)
        x_down = _map_tokens(pooled)  # (B, M, C)
        k, v = self.kv(x_down).chunk(2, dim=-1)
        queries = resize_semantic_queries(self.q, cfg.semantic_query_grid, grid_h, grid_w)
        q = self.q_embed(queries).expand(x.shape[0], -1, -1)
        s = _attention(q, k, v, self.scale, self.fused_attn)
        gate = self.se((s + x_down).mean(dim=1)).view(x.shape[0], 2, -1).softmax(dim=1)
        semantics = s * gate[:, :1] + x_down * gate[:, 1:]
        return self.proxy_ln(semantics)

    def _block(self, block: nn.Module, *args: Any) -> Any:
        if self.grad_checkpointing and torch.is_grad_enabled() and not torch.jit.is_scripting():
            return torch.utils.checkpoint.checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def _forward_stages(
        self, x: torch.Tensor, last_stage: int, take_indices: Sequence[int] = ()
    ) -> tuple[torch.Tensor, torch.Tensor, int, int, list[torch.Tensor]]:
        """Image -> stages 0..last_stage: (pixel tokens, semantic tokens, h, w, taps).

        Tokens leave every stage normed except the network's last, whose norm belongs to the
        head. ``taps`` are the NHWC pixel maps of the stages in ``take_indices``, in order.
        """
        final_stage = self.cfg.num_stages - 1
        taps = []
        x, h, w = self.patch_embed1(x)
        semantics = self._init_semantics(x, h, w)
        for i in range(last_stage + 1):
            if i > 0:
                x, h, w = getattr(self, f"patch_embed{i + 1}")(x, h, w)
                semantics = getattr(self, f"proxy_embed{i + 1}")(semantics)
            blocks = getattr(self, f"block{i + 1}")
            if i < self.cfg.dual_stages:
                for blk in blocks:
                    x, semantics = self._block(blk, x, semantics, h, w)
            else:
                tokens = torch.cat([x, semantics], dim=1)
                for blk in blocks:
                    tokens = self._block(blk, tokens, h, w)
                x, semantics = tokens.split([h * w, tokens.shape[1] - h * w], dim=1)
            if i < final_stage:
                x = getattr(self, f"norm{i + 1}")(x)
                norm_proxy = getattr(self, f"norm_proxy{i + 1}")
                if norm_proxy is not None:  # None: pruned, the semantic tokens end here
                    semantics = norm_proxy(semantics)
            if i in take_indices:
                taps.append(_nhwc(x, h, w))
        return x, semantics, h, w, taps

    def _final_features(
        self, x: torch.Tensor, semantics: torch.Tensor, h: int, w: int
    ) -> torch.Tensor:
        """The last stage's tokens -> the NHWC map of forward_features (module docstring)."""
        if self.num_stages < self.cfg.num_stages:  # pruned: the features end at a stage tap
            return _nhwc(x, h, w)
        norm = getattr(self, f"norm{self.num_stages}")
        if self.post_network is None:  # pruned head: the normed pixel map alone
            return _nhwc(norm(x), h, w)
        tokens = torch.cat([x, semantics], dim=1)
        cls = tokens.mean(dim=1, keepdim=True)
        cls = self.post_network[0](torch.cat([cls, tokens], dim=1))
        cls = norm(cls).view(x.shape[0], 1, 1, -1).expand(-1, h, w, -1)
        return torch.cat([_nhwc(norm(x), h, w), cls], dim=-1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image -> (B, H, W, num_features) map of the last stage (see the module docstring)."""
        x, semantics, h, w, _ = self._forward_stages(x, self.num_stages - 1)
        return self._final_features(x, semantics, h, w)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The pixel map of each selected stage, and (unless intermediates_only) the features.

        Args:
            x: input images.
            indices: the last n stages if an int, all if None, else these stage indices.
            norm: apply the final norm to the last stage's map (the other stages end in
                their own norm, part of the network).
            stop_early: run no stage after the last selected one.
            output_fmt: ``"NCHW"`` or ``"NHWC"`` for the intermediates.
            intermediates_only: return only the intermediates.
        """
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"output_fmt: must be 'NCHW' or 'NHWC', got {output_fmt!r}")
        take_indices, max_index = _take_indices(self.num_stages, indices)
        stop = stop_early or intermediates_only
        last_stage = max_index if stop else self.num_stages - 1
        x, semantics, h, w, taps = self._forward_stages(x, last_stage, take_indices)
        final_stage = self.cfg.num_stages - 1
        if norm and final_stage in take_indices:
            taps[-1] = getattr(self, f"norm{final_stage + 1}")(taps[-1])
        if output_fmt == "NCHW":
            taps = [tap.permute(0, 3, 1, 2).contiguous() for tap in taps]
        intermediates = [taps[sorted(take_indices).index(i)] for i in take_indices]
        if intermediates_only:
            return intermediates
        if last_stage < self.num_stages - 1:
            return _nhwc(x, h, w), intermediates
        return self._final_features(x, semantics, h, w), intermediates

    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Remove what the selected stage maps do not need; returns the absolute indices.

        Later stages go; with them, or with ``prune_head``, the class-attention block, the
        classifiers and what only the semantic tokens of the last kept stage fed. The config
        keeps describing the network the module was cut from.
        """
        take_indices, max_index = _take_indices(self.num_stages, indices)
        final_stage = self.cfg.num_stages - 1
        for i in range(max_index + 1, self.num_stages):
            for name in ("patch_embed", "proxy_embed", "block", "norm", "norm_proxy"):
                if hasattr(self, f"{name}{i + 1}"):
                    delattr(self, f"{name}{i + 1}")
        self.num_stages = max_index + 1
        if prune_head or max_index < final_stage:
            self.post_network = None
            if max_index < final_stage:
                setattr(self, f"norm_proxy{max_index + 1}", None)
            if max_index >= self.cfg.dual_stages:  # a merge stage: its last semantic MLP
                getattr(self, f"block{max_index + 1}")[-1].mlp.fc_proxy = None
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
            self.reset_classifier(0, "")
        if prune_norm and max_index == final_stage:
            setattr(self, f"norm{final_stage + 1}", nn.Identity())
        return take_indices

    def _split_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """forward_features' map -> (class token (B, C), pixel tokens (B, N, C))."""
        dim = self.head_hidden_size
        return x[:, 0, 0, dim:], x[..., :dim].flatten(1, 2)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """forward_features' map -> logits, or with ``pre_logits`` the normed class token.

        The token-labeling head adds ``0.5 *`` the per-class maximum of ``aux_head`` over the
        pixel tokens. With ``global_pool=""`` nothing is pooled: the map (``pre_logits``, or
        no classes) or per-position logits of its pixel channels.
        """
        if not self.global_pool:
            x = self.head_drop(x)
            if pre_logits or self.num_classes == 0:
                return x
            return self.head(x[..., : self.head_hidden_size])
        cls, pixels = self._split_features(x)
        cls = self.head_drop(cls)
        if pre_logits:
            return cls
        logits = self.head(cls)
        if self.token_label and self.num_classes > 0:
            aux = self.aux_head(self.head_drop(pixels))
            logits = logits + 0.5 * aux.max(dim=1).values
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_token_label(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits, per-pixel-token aux logits) for training with token-labeling targets."""
        if not self.token_label or self.post_network is None:
            raise RuntimeError(
                "forward_token_label needs token_label=True and the class-attention head"
            )
        cls, pixels = self._split_features(self.forward_features(x))
        return self.head(self.head_drop(cls)), self.aux_head(self.head_drop(pixels))

    def __prepare_scriptable__(self) -> nn.Module:
        """What ``torch.jit.script(model)`` compiles: the model's torch.fx graph.

        TorchScript cannot loop over the official flat stage attributes that the checkpoint
        layout fixes (``block1``, ``norm1``, ...); the traced graph has that loop unrolled and
        keeps the size-dependent parts as timm's no-trace modules and functions, which
        compile. Like ``torch.jit.trace``, the graph follows the mode (train/eval) the model
        is in when scripted.
        """
        graph = _NoTraceTracer().trace(self)
        return torch.fx.GraphModule(self, graph, type(self).__name__)


class _NoTraceTracer(torch.fx.Tracer):
    """torch.fx tracing with timm's no-trace registrations, as timm's feature extraction."""

    def __init__(self) -> None:
        super().__init__(autowrap_functions=tuple(get_notrace_functions()))

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, tuple(get_notrace_modules())):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def _classifier(dim: int, num_classes: int, **dd: Any) -> nn.Module:
    return nn.Linear(dim, num_classes, **dd) if num_classes > 0 else nn.Identity()


def _init_weights(m: nn.Module) -> None:
    """The official initialisation."""
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, (2.0 / fan_out) ** 0.5)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def checkpoint_filter_fn(state_dict: Mapping[str, torch.Tensor], model: DualViT) -> dict:
    """Adapt an official checkpoint: unwrap ``model``/``state_dict`` containers.

    The official key layout loads directly (fused projections are handled by the model's
    load hooks); a checkpoint trained without the token-labeling head loses nothing, and
    one with it loads into a model without it by dropping ``aux_head``.
    """
    for wrapper in ("model", "state_dict", "model_ema"):
        if wrapper in state_dict and isinstance(state_dict[wrapper], Mapping):
            state_dict = state_dict[wrapper]
            break
    out = dict(state_dict)
    if not getattr(model, "token_label", True):
        out = {k: v for k, v in out.items() if not k.startswith("aux_head.")}
    return out


def _create_dualvit(variant: str, pretrained: bool = False, **kwargs: Any) -> DualViT:
    cfg = official_config(variant)
    num_stages = len(kwargs.get("embed_dims", cfg.embed_dims))
    out_indices = kwargs.pop("out_indices", tuple(range(num_stages)))
    return build_model_with_cfg(
        DualViT,
        variant,
        pretrained,
        model_cfg=cfg,
        pretrained_filter_fn=checkpoint_filter_fn,
        # the stage maps come from forward_intermediates (the semantic pathway runs beside)
        feature_cfg=dict(feature_cls="getter", out_indices=out_indices),
        **kwargs,
    )


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "url": "",
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        # the smallest input whose stage-1 map holds one 7x7 semantic pool window
        "min_input_size": (3, 25, 25),
        "pool_size": (7, 7),
        "crop_pct": 0.9,
        "interpolation": "bicubic",
        "fixed_input_size": False,
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "patch_embed1.conv.0",
        "classifier": ("head", "aux_head"),
        "paper_ids": "arXiv:2207.04976",
        "paper_name": "Dual Vision Transformer",
        "origin_url": "https://github.com/YehLi/ImageNetModel",
        "description": "Dual-ViT trained on ImageNet-1k with token labeling (official weights).",
        "notes": (
            "The official weights are on Baidu Pan (links in origin_url, classification/"
            "README.md), not on a hub: load the downloaded file with "
            "pretrained=True, pretrained_cfg_overlay=dict(file=PATH).",
        ),
        **kwargs,
    }


default_cfgs = generate_default_cfgs(
    {
        f"{name}.{tag}": _cfg(**extra)
        for name in ("dualvit_s", "dualvit_b", "dualvit_l")
        for tag, extra in (
            ("in1k", {}),
            ("in1k_384", dict(input_size=(3, 384, 384), pool_size=(12, 12), crop_pct=1.0)),
        )
    }
)


@register_model
def dualvit_s(pretrained: bool = False, **kwargs: Any) -> DualViT:
    return _create_dualvit("dualvit_s", pretrained=pretrained, **kwargs)


@register_model
def dualvit_b(pretrained: bool = False, **kwargs: Any) -> DualViT:
    return _create_dualvit("dualvit_b", pretrained=pretrained, **kwargs)


@register_model
def dualvit_l(pretrained: bool = False, **kwargs: Any) -> DualViT:
    return _create_dualvit("dualvit_l", pretrained=pretrained, **kwargs)
