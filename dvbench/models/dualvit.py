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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, trunc_normal_, use_fused_attn
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from dvbench.models.config import DualViTConfig, official_config

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
    b, n, c = x.shape
    return x.view(b, n, num_heads, c // num_heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, N, d) -> (B, N, heads * d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def _scaled_residual(
    x: torch.Tensor, gamma: torch.Tensor, y: torch.Tensor, drop_path: nn.Module
) -> torch.Tensor:
    """x + drop_path(gamma * y); one fused kernel when drop path is inactive."""
    if isinstance(drop_path, DropPath) and drop_path.training and drop_path.drop_prob > 0:
        return x + drop_path(gamma * y)
    return torch.addcmul(x, gamma, y)


def _token_map(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, N, C) tokens -> (B, C, H, W) map with channels-last strides (a view, no copy)."""
    b, _, c = x.shape
    return x.view(b, h, w, c).permute(0, 3, 1, 2)


def _map_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) map -> (B, H*W, C) tokens; a contiguous view when the map is channels-last."""
    return x.flatten(2).transpose(1, 2)


class FusedLinear(nn.Linear):
    """One Linear standing for several official Linears that read the same input.

    ``parts`` maps each official sub-module name to its output width, in output order. The
    owning module calls :func:`fuse_linear_state` / :func:`split_linear_state` from its
    state-dict hooks so that checkpoints keep the official keys.
    """

    def __init__(self, in_features: int, parts: Mapping[str, int]):
        super().__init__(in_features, sum(parts.values()))
        self.parts = dict(parts)


def _install_fused_state_hooks(module: nn.Module, fused_name: str) -> None:
    """Load official ``<part>.weight/bias`` keys into ``fused_name``; save them back split."""

    def parts() -> dict[str, int]:
        return getattr(module, fused_name).parts

    def load_pre_hook(state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        for suffix in ("weight", "bias"):
            keys = [f"{prefix}{name}.{suffix}" for name in parts()]
            if all(k in state_dict for k in keys):
                state_dict[f"{prefix}{fused_name}.{suffix}"] = torch.cat(
                    [state_dict.pop(k) for k in keys], dim=0
                )

    def state_dict_post_hook(mod, state_dict, prefix, local_metadata):
        for suffix in ("weight", "bias"):
            key = f"{prefix}{fused_name}.{suffix}"
            # state_dict(keep_vars=True) hands out the live parameters (tracers such as
            # torch.jit.trace identify parameters this way): keep the fused layout there.
            if key not in state_dict or isinstance(state_dict[key], nn.Parameter):
                continue
            fused = state_dict.pop(key)
            for name, chunk in zip(parts(), fused.split(list(parts().values()), dim=0)):
                state_dict[f"{prefix}{name}.{suffix}"] = chunk.clone()
        _reorder(state_dict, prefix, mod.official_key_order)

    module.register_load_state_dict_pre_hook(lambda mod, *args: load_pre_hook(*args))
    module.register_state_dict_post_hook(state_dict_post_hook)


def _reorder(state_dict: dict, prefix: str, order: Sequence[str]) -> None:
    """Put the keys under ``prefix`` (the most recently written subtree) in official order."""
    keys = [k for k in state_dict if k.startswith(prefix)]
    rank = {name: i for i, name in enumerate(order)}
    keys.sort(key=lambda k: rank.get(k[len(prefix) :], len(rank)))
    for k in keys:
        state_dict[k] = state_dict.pop(k)


class PixelFFN(nn.Module):
    """PVT-v2 FFN: Linear -> depthwise 3x3 conv on the pixel map -> GELU -> Linear."""

    # Inference runs the FFN a few images at a time so that its hidden tensors (the largest
    # in the network: stage 1 holds B x 3136 x 8C) stay around this many elements. Fresh
    # multi-megabyte allocations are page-faulted in on every call and fall out of cache;
    # chunking keeps them small and reused. Samples are independent, so values are the same.
    chunk_elements = 2**21

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DWConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
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
    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return _map_tokens(self.dwconv(_token_map(x, h, w)))


class MergeFFN(PixelFFN):
    """Pixel tokens through the PVT-v2 FFN, semantic tokens through a plain MLP."""

    def __init__(self, dim: int, hidden: int, semantic_hidden: int):
        super().__init__(dim, hidden)
        self.fc_proxy = nn.Sequential(
            nn.Linear(dim, semantic_hidden), nn.GELU(), nn.Linear(semantic_hidden, dim)
        )

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        pixels, semantics = x.split([h * w, x.shape[1] - h * w], dim=1)
        return torch.cat([super().forward(pixels, h, w), self.fc_proxy(semantics)], dim=1)


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
        q, k, v = (_heads(t, self.num_heads) for t in self.qkv(x).chunk(3, dim=-1))
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
        q, k, v = (_heads(t, heads) for t in self.qkv_proxy(semantics).chunk(3, dim=-1))
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
        k, v = (_heads(t, heads) for t in self.kv(self.proxy_ln(semantics)).chunk(2, dim=-1))
        out = _attention(_heads(q_pixels, heads), k, v, scale, fused)
        return self.proj(_merge_heads(out)), semantics


class _ResidualBlock(nn.Module):
    """Pre-norm block with layer scale and stochastic depth (the official key layout)."""

    def __init__(
        self, dim: int, *, drop_path: float, layer_scale_init: float, norm_layer: type[nn.Module]
    ):
        super().__init__()
        self.gamma1 = nn.Parameter(layer_scale_init * torch.ones(dim))
        self.gamma2 = nn.Parameter(layer_scale_init * torch.ones(dim))
        self.norm1 = norm_layer(dim)
        self.norm2 = norm_layer(dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()


class DualBlock(_ResidualBlock):
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
        super().__init__(
            dim, drop_path=drop_path, layer_scale_init=layer_scale_init, norm_layer=norm_layer
        )
        self.attn = DualAttention(
            dim,
            num_heads,
            semantic_mlp_ratio=semantic_mlp_ratio,
            drop_path=drop_path,
            layer_scale_init=layer_scale_init,
        )
        self.mlp = PixelFFN(dim, int(dim * mlp_ratio))

    def forward(
        self, x: torch.Tensor, semantics: torch.Tensor, h: int, w: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        y, semantics = self.attn(self.norm1(x), semantics)
        x = _scaled_residual(x, self.gamma1, y, self.drop_path)
        x = _scaled_residual(x, self.gamma2, self.mlp(self.norm2(x), h, w), self.drop_path)
        return x, semantics


class MergeBlock(_ResidualBlock):
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
        super().__init__(
            dim, drop_path=drop_path, layer_scale_init=layer_scale_init, norm_layer=norm_layer
        )
        self.attn = MergeAttention(dim, num_heads)
        self.mlp = MergeFFN(dim, int(dim * mlp_ratio), int(dim * semantic_mlp_ratio))

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = _scaled_residual(x, self.gamma1, self.attn(self.norm1(x)), self.drop_path)
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
        h, w = x.shape[-2:]
        return self.norm(_map_tokens(x)), h, w


class DownSample(nn.Module):
    """conv3x3/2 then LayerNorm: the patch embedding of stages 2..n."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_dim, out_dim, 3, 2, 1)
        self.norm = LayerNorm5(out_dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, int, int]:
        x = self.proj(_token_map(x, h, w))
        h, w = x.shape[-2:]
        return self.norm(_map_tokens(x)), h, w


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
        k, v = (_heads(t, self.num_heads) for t in self.kv(x).chunk(2, dim=-1))
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


class DualViT(nn.Module):
    """Dual-ViT built from a :class:`DualViTConfig`; keyword arguments override its fields."""

    def __init__(self, cfg: DualViTConfig | None = None, **overrides: Any):
        super().__init__()
        overrides.pop("pretrained_cfg", None)
        cfg = cfg or DualViTConfig()
        if overrides:
            cfg = DualViTConfig.from_dict(overrides, base=cfg)
        self.cfg = cfg
        self.num_classes = cfg.num_classes
        self.num_features = self.head_hidden_size = cfg.embed_dims[-1]
        self.token_label = cfg.token_label
        self.grad_checkpointing = False
        dims, n = cfg.embed_dims, cfg.num_stages
        norm_layer = partial(nn.LayerNorm, eps=cfg.norm_eps)

        # Semantic tokens are born in stage 1 (official attribute names, for checkpoints).
        c1 = dims[0]
        self.q = nn.Parameter(torch.empty(cfg.semantic_query_grid**2, c1))
        self.q_embed = nn.Sequential(LayerNorm5(c1), nn.Linear(c1, c1))
        self.kv = nn.Linear(c1, 2 * c1)
        self.scale = c1**-0.5
        self.proxy_ln = LayerNorm5(c1)
        self.se = nn.Sequential(nn.Linear(c1, c1), nn.ReLU(inplace=True), nn.Linear(c1, 2 * c1))

        dpr = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths)).tolist()
        cur = 0
        for i in range(n):
            if i > 0:
                setattr(self, f"proxy_embed{i + 1}", SemanticEmbed(dims[i - 1], dims[i]))
                patch_embed = DownSample(dims[i - 1], dims[i])
            else:
                patch_embed = Stem(cfg.in_chans, cfg.stem_hidden_dim, dims[0])
            dual = i < cfg.dual_stages
            block_cls = DualBlock if dual else MergeBlock
            semantic_ratio = cfg.semantic_mlp_ratio_dual if dual else cfg.semantic_mlp_ratio_merge
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
        self.head = nn.Linear(dims[-1], cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        if cfg.token_label:
            self.aux_head = (
                nn.Linear(dims[-1], cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
            )
        self._num_semantic = cfg.num_semantic_tokens()
        self.apply(_init_weights)
        trunc_normal_(self.q, std=0.02)
        # Every convolution sees channels-last maps; keeping the weights in the same layout
        # saves a reorder per call. Values (and state-dict keys/shapes) are unchanged.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.data = module.weight.data.contiguous(
                    memory_format=torch.channels_last
                )

    # ------------------------------------------------------------------ timm conventions
    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"q"}

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        dim = self.num_features
        self.head = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()
        if self.token_label:
            self.aux_head = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()
        self.cfg = self.cfg.replace(num_classes=num_classes)

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    # ------------------------------------------------------------------------- forward
    def _semantic_queries(self, gh: int, gw: int) -> torch.Tensor:
        """The learned queries for a gh x gw grid (bicubic resize as the official code)."""
        g = self.cfg.semantic_query_grid
        q = self.q
        if (gh, gw) != (g, g):
            q = q.reshape(1, g, g, -1).permute(0, 3, 1, 2)
            q = F.interpolate(q, size=(gh, gw), mode="bicubic", align_corners=False)
            q = q.flatten(2).transpose(1, 2).squeeze(0)
        return self.q_embed(q)

    def _init_semantics(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        cfg = self.cfg
        b, _, c = x.shape
        pixel_map = _token_map(x, h, w)
        if cfg.semantic_pool == "window":
            if h < cfg.semantic_window or w < cfg.semantic_window:
                raise ValueError(
                    f"stage-1 map {h}x{w} is smaller than the semantic pool window "
                    f"{cfg.semantic_window}x{cfg.semantic_window}; use a larger input"
                )
            pooled = F.avg_pool2d(pixel_map, cfg.semantic_window, cfg.semantic_window)
        else:
            if h < cfg.semantic_grid or w < cfg.semantic_grid:
                raise ValueError(
                    f"stage-1 map {h}x{w} is smaller than the semantic grid {cfg.semantic_grid}"
                )
            pooled = F.adaptive_avg_pool2d(pixel_map, cfg.semantic_grid)
        gh, gw = pooled.shape[-2:]
        x_down = _map_tokens(pooled)  # (B, M, C)
        k, v = self.kv(x_down).chunk(2, dim=-1)
        q = self._semantic_queries(gh, gw).expand(b, -1, -1)
        s = _attention(q, k, v, self.scale, use_fused_attn())
        gate = self.se((s + x_down).mean(dim=1)).view(b, 2, c).softmax(dim=1)
        semantics = s * gate[:, :1] + x_down * gate[:, 1:]
        return self.proxy_ln(semantics)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image -> final tokens (B, N + M, C): the last stage's pixel tokens, then semantics."""
        cfg = self.cfg
        x, h, w = self.patch_embed1(x)
        semantics = self._init_semantics(x, h, w)
        self._num_semantic = semantics.shape[1]
        for i in range(cfg.num_stages):
            if i > 0:
                x, h, w = getattr(self, f"patch_embed{i + 1}")(x, h, w)
                semantics = getattr(self, f"proxy_embed{i + 1}")(semantics)
            blocks = getattr(self, f"block{i + 1}")
            last = i == cfg.num_stages - 1
            if i < cfg.dual_stages:
                for blk in blocks:
                    x, semantics = blk(x, semantics, h, w)
            else:
                tokens = torch.cat([x, semantics], dim=1)
                for blk in blocks:
                    tokens = blk(tokens, h, w)
                if last:
                    return tokens
                x, semantics = tokens.split([h * w, semantics.shape[1]], dim=1)
            x = getattr(self, f"norm{i + 1}")(x)
            semantics = getattr(self, f"norm_proxy{i + 1}")(semantics)
        raise AssertionError("unreachable: the last stage is always a merge stage")

    def _head_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Class-attention head: returns normed [cls, tokens...] (token label) or normed cls."""
        cls = tokens.mean(dim=1, keepdim=True)
        cls = self.post_network[0](torch.cat([cls, tokens], dim=1))
        norm = getattr(self, f"norm{self.cfg.num_stages}")
        if not self.token_label:
            return norm(cls[:, 0])
        return norm(torch.cat([cls, tokens], dim=1))

    def forward_head(
        self, x: torch.Tensor, pre_logits: bool = False, *, num_semantic: int | None = None
    ) -> torch.Tensor:
        """Final tokens -> logits (or the normed class token with ``pre_logits``)."""
        out = self._head_tokens(x)
        if not self.token_label:
            return out if pre_logits else self.head(out)
        if pre_logits:
            return out[:, 0]
        m = self._num_semantic if num_semantic is None else num_semantic
        aux = self.aux_head(out[:, 1 : out.shape[1] - m])
        return self.head(out[:, 0]) + 0.5 * aux.max(dim=1).values

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.forward_features(x)
        return self.forward_head(tokens, num_semantic=self._num_semantic)

    def forward_token_label(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits, per-pixel-token aux logits) for training with token-labeling targets."""
        if not self.token_label:
            raise RuntimeError("forward_token_label needs a model built with token_label=True")
        tokens = self.forward_features(x)
        out = self._head_tokens(tokens)
        return self.head(out[:, 0]), self.aux_head(out[:, 1 : out.shape[1] - self._num_semantic])


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
    return build_model_with_cfg(
        DualViT,
        variant,
        pretrained,
        cfg=official_config(variant),
        pretrained_filter_fn=checkpoint_filter_fn,
        **kwargs,
    )


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "url": "",
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": None,
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
        **kwargs,
    }


default_cfgs = generate_default_cfgs(
    {
        "dualvit_s.untrained": _cfg(),
        "dualvit_b.untrained": _cfg(),
        "dualvit_l.untrained": _cfg(),
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
