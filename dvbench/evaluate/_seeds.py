"""Training seeds keyed to the network: the same architecture trains with the same seed in any
study, rung, replay or benchmark.

A seed of ``study seed + trial number`` gives one network another seed in every study that
samples it at another place, so two studies (or a search and its benchmark) compare seeds as
much as networks. :func:`training_seed` derives it from the network itself -- its normalised
config (every field but its name, at the resolution it trains at) or, for a named model, its
name and constructor changes -- together with the study's seed and which repeat it is
(repeat k of a candidate, see ``dvbench.space.repeats``, gets its own derived seed).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dvbench.models import DualViTConfig

__all__ = ["architecture_key", "training_seed"]

_SEED_SPACE = 2**31  # torch.manual_seed accepts any 64-bit value; 31 bits keep it portable


def architecture_key(
    spec: DualViTConfig | str | Path, overrides: Mapping[str, Any] | None = None
) -> str:
    """A stable text naming the network: its config's fields (less its name) as sorted JSON,
    or a model name (or config file path) with its constructor changes."""
    if isinstance(spec, DualViTConfig):
        fields = spec.to_dict()
        fields.pop("name", None)
        body: Any = {"config": fields}
    else:
        body = {"model": str(spec)}
    if overrides:
        body["overrides"] = dict(overrides)
    return json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))


def training_seed(
    spec: DualViTConfig | str | Path,
    base_seed: int,
    *,
    repeat: int = 0,
    overrides: Mapping[str, Any] | None = None,
) -> int:
    """The seed ``spec`` trains with under ``base_seed`` (the study's), for its ``repeat``-th
    training (0: the first). A config should be given at the resolution it trains at."""
    text = f"{architecture_key(spec, overrides)}|{int(base_seed)}|{int(repeat)}"
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") % _SEED_SPACE
