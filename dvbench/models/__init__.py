"""The network: config -> module, and timm registration (importing this registers the models)."""

from dvbench.models.config import DualViTConfig, load_config, official_config
from dvbench.models.dualvit import DualViT, checkpoint_filter_fn
from dvbench.models.registry import (
    BASELINE_ALIASES,
    PVT_FAMILY,
    SWIN_FAMILY,
    create_model,
    display_name,
    register_spec_resolver,
    resolve_spec,
)

__all__ = [
    "BASELINE_ALIASES",
    "PVT_FAMILY",
    "SWIN_FAMILY",
    "DualViT",
    "DualViTConfig",
    "checkpoint_filter_fn",
    "create_model",
    "display_name",
    "load_config",
    "official_config",
    "register_spec_resolver",
    "resolve_spec",
]
