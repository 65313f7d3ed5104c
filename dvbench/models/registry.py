"""One way to name a model everywhere: dvbench names, timm names, baseline aliases, config files.

``create_model(spec)`` accepts
- a registered Dual-ViT (``dualvit_s``, ``dualvit_b``, ``dualvit_l``);
- a short baseline alias (``swin_t``, ``swin_s``, ``swin_b``, ``pvt_v2_b0`` .. ``pvt_v2_b5``);
- any timm model name;
- a path to a Dual-ViT config file (``.yaml``, ``.yml``, ``.json``);
- a :class:`DualViTConfig`;
- a reference handled by a registered resolver (the search package adds ``study:NAME:TRIAL``).

Names a user mistypes raise :class:`dvbench.errors.UsageError` with close-name suggestions.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import timm
import torch.nn as nn

# the references table lives on the ground floor; register_spec_resolver is re-exported
from dvbench._references import register_spec_resolver as register_spec_resolver
from dvbench._references import spec_resolver
from dvbench.errors import UsageError
from dvbench.models.config import OFFICIAL_CONFIGS, DualViTConfig, load_config

#: Short names for the baselines the paper compares with.
BASELINE_ALIASES: dict[str, str] = {
    "swin_t": "swin_tiny_patch4_window7_224",
    "swin_s": "swin_small_patch4_window7_224",
    "swin_b": "swin_base_patch4_window7_224",
    **{f"pvt_v2_b{i}": f"pvt_v2_b{i}" for i in range(6)},
    "pvt_v2_b2_li": "pvt_v2_b2_li",
}
SWIN_FAMILY = ("swin_t", "swin_s", "swin_b")
PVT_FAMILY = tuple(f"pvt_v2_b{i}" for i in range(6))
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def is_config_path(spec: str) -> bool:
    return Path(spec).suffix.lower() in CONFIG_SUFFIXES


def resolve_spec(spec: str | Path | DualViTConfig) -> DualViTConfig | str:
    """A user's model spec -> a DualViTConfig or a timm model name (UsageError if unknown)."""
    if isinstance(spec, DualViTConfig):
        return spec
    if isinstance(spec, Path) or is_config_path(str(spec)):
        path = Path(spec)
        if not path.exists():
            raise UsageError(f"config file not found: {path}")
        try:
            return load_config(path)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    spec = str(spec)
    resolver = spec_resolver(spec)
    if resolver is not None:
        return resolver(spec)
    if spec in OFFICIAL_CONFIGS:
        return spec
    if spec in BASELINE_ALIASES:
        return BASELINE_ALIASES[spec]
    if timm.is_model(spec):
        return spec
    raise UsageError(f"unknown model {spec!r}{_suggest(spec)}")


def _suggest(spec: str) -> str:
    # dvbench's names are registered in timm too: each name once
    names = list(dict.fromkeys([*OFFICIAL_CONFIGS, *BASELINE_ALIASES, *timm.list_models()]))
    close = difflib.get_close_matches(spec, names, n=3, cutoff=0.6)
    if not close:
        return " (dvbench names: " + ", ".join(OFFICIAL_CONFIGS) + "; or a timm model name)"
    return " (did you mean " + ", ".join(close) + "?)"


def display_name(spec: str | Path | DualViTConfig) -> str:
    """A short name for tables: the alias, the model name, or the config's name."""
    if isinstance(spec, DualViTConfig):
        return spec.name or "dualvit_custom"
    spec = str(spec)
    if is_config_path(spec):
        return Path(spec).stem
    return spec


def create_model(
    spec: str | Path | DualViTConfig,
    *,
    num_classes: int | None = None,
    img_size: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build any model dvbench knows (see module docstring), without pretrained weights.

    ``img_size`` is passed to models that need it (Dual-ViT configs validate their semantic
    grid with it; timm's Swin sizes its attention windows from it); ``num_classes`` and other
    keyword arguments go to the constructor.
    """
    from dvbench.models.dualvit import DualViT  # local: dualvit imports this module's users

    target = resolve_spec(spec)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    if isinstance(target, DualViTConfig):
        if img_size is not None:
            kwargs.setdefault("img_size", img_size)
        try:
            return DualViT(target, **kwargs)
        except ValueError as exc:
            raise UsageError(f"{display_name(spec)}: {exc}") from None
    if target in OFFICIAL_CONFIGS:
        if img_size is not None:
            kwargs.setdefault("img_size", img_size)
    elif img_size is not None and _takes_img_size(target):
        kwargs.setdefault("img_size", img_size)
    try:
        return timm.create_model(target, pretrained=False, **kwargs)
    except ValueError as exc:
        raise UsageError(f"{display_name(spec)}: {exc}") from None


def _takes_img_size(name: str) -> bool:
    # Swin precomputes its attention masks and relative positions for one input size.
    return name.startswith(("swin", "vit", "deit", "beit"))
