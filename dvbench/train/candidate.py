"""Build a model for a proxy run: any dvbench model spec, shrunk or adapted to small inputs.

Dual-ViT models (official names, config files, configs) are changed through their config, so
every override is validated by :class:`DualViTConfig` and the run can be described exactly.
timm models get overrides as constructor keyword arguments; Swin additionally gets an attention
window that tiles its patch grid at the proxy resolution (see :func:`swin_window_for`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch.nn as nn
import yaml

from dvbench import safe_yaml
from dvbench.errors import UsageError
from dvbench.models import (
    DualViTConfig,
    create_model,
    display_name,
    official_config,
    resolve_spec,
)
from dvbench.models.config import OFFICIAL_CONFIGS

ModelSpec = str | Path | DualViTConfig


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["depths=1,1,2,1", "drop_path_rate=0.1"]`` -> ``{"depths": [1, 1, 2, 1], ...}``.

    Values are YAML scalars (numbers, ``true``, ``null``, strings); a comma makes a list.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"override {item!r}: expected KEY=VALUE, e.g. depths=1,1,2,1")
        try:
            if "," in text and not text.lstrip().startswith("["):
                value = [safe_yaml.load(part) for part in text.split(",")]
            else:
                value = safe_yaml.load(text)
        except (yaml.YAMLError, ValueError):
            raise UsageError(f"override {item!r}: cannot parse the value {text!r}") from None
        out[key] = value
    return out


def dualvit_config(spec: ModelSpec) -> DualViTConfig | None:
    """The config behind a Dual-ViT spec (official name, file, config); None for timm models."""
    target = resolve_spec(spec)
    if isinstance(target, DualViTConfig):
        return target
    if target in OFFICIAL_CONFIGS:
        return official_config(target)
    return None


def scale_width(cfg: DualViTConfig, width_mult: float) -> DualViTConfig:
    """Multiply every stage width (and the stem) by ``width_mult``, keeping head counts.

    Each width is rounded to a multiple of its stage's head count (at least one channel per
    head), so the result stays valid; the stem width is rounded to a multiple of 8.
    """
    if not width_mult > 0:
        raise ValueError(f"width_mult: must be positive, got {width_mult!r}")
    dims = tuple(
        heads * max(1, round(dim * width_mult / heads))
        for dim, heads in zip(cfg.embed_dims, cfg.num_heads, strict=True)
    )
    stem = 8 * max(1, round(cfg.stem_hidden_dim * width_mult / 8))
    return cfg.replace(embed_dims=dims, stem_hidden_dim=stem)


def swin_window_for(resolution: int, *, patch_size: int = 4, max_window: int = 7) -> int:
    """The largest window (<= 7, Swin's default) that tiles the first stage's patch grid.

    timm's Swin pads a grid that the window does not divide; at 32 px the grid is 8x8 and
    the default window of 7 would pad it to 14x14, tripling the attention work. A window of
    4 tiles it exactly (later stages clamp the window to their smaller grids).
    """
    grid = max(1, resolution // patch_size)
    return next(w for w in range(min(max_window, grid), 0, -1) if grid % w == 0)


def build_candidate(
    spec: ModelSpec,
    *,
    num_classes: int,
    resolution: int,
    drop_path_rate: float = 0.0,
    overrides: Mapping[str, Any] | None = None,
    width_mult: float | None = None,
) -> nn.Module:
    """A freshly initialised model for ``num_classes`` classes at ``resolution`` pixels.

    ``overrides`` are Dual-ViT config fields (``embed_dims``, ``depths``, ...) for Dual-ViT
    specs and constructor keyword arguments for timm models; ``width_mult`` (Dual-ViT only)
    scales the widths first. Invalid names or values raise :class:`UsageError`.
    """
    overrides = dict(overrides or {})
    cfg = dualvit_config(spec)
    if cfg is not None:
        if width_mult is not None:
            cfg = scale_width(cfg, width_mult)
        try:
            cfg = DualViTConfig.from_dict(
                {
                    **overrides,
                    "num_classes": num_classes,
                    "img_size": resolution,
                    "drop_path_rate": drop_path_rate,
                },
                base=cfg,
            )
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{display_name(spec)}: {exc}") from None
        return create_model(cfg)

    if width_mult is not None:
        raise UsageError(
            f"{display_name(spec)}: width_mult applies to Dual-ViT models only; give the timm "
            "model's own width arguments as overrides instead (e.g. embed_dim=48)"
        )
    target = str(resolve_spec(spec))
    if target.startswith("swin") and "window_size" not in overrides:
        overrides["window_size"] = swin_window_for(resolution)
    try:
        return create_model(
            spec,
            num_classes=num_classes,
            img_size=resolution,
            drop_path_rate=drop_path_rate,
            **overrides,
        )
    except TypeError as exc:  # an override the constructor does not take
        raise UsageError(f"{display_name(spec)}: {exc}") from None
