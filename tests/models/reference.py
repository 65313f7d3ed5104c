"""Load the official-implementation fixtures and fill weights with their documented recipe."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch


def load_fixtures(shared: Path) -> list[dict]:
    return json.loads((shared / "fixtures" / "dualvit_reference.json").read_text())


def recipe_state_dict(entries: list[list], weight_seed: int) -> dict[str, torch.Tensor]:
    """The deterministic weights of fixtures/README.md, for the official keys and shapes."""
    shapes = {key: tuple(shape) for key, shape in entries}
    out = {}
    for i, key in enumerate(sorted(shapes)):
        shape = shapes[key]
        last = key.rsplit(".", 1)[-1]
        if last == "num_batches_tracked":
            out[key] = torch.zeros(shape, dtype=torch.long)
            continue
        g = torch.Generator().manual_seed(weight_seed * 100003 + i)
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        if last == "running_var":
            t = 1 + 0.1 * r.abs()
        elif last == "running_mean":
            t = 0.1 * r
        elif len(shape) >= 2:
            t = r / math.sqrt(math.prod(shape[1:]))
        elif last.startswith("gamma"):
            t = 0.5 + 0.1 * r
        elif last == "weight":
            t = 1 + 0.1 * r
        else:
            t = 0.1 * r
        out[key] = t
    return {key: out[key] for key, _ in entries}  # official order


def fixture_input(output: dict) -> torch.Tensor:
    res = output["resolution"]
    g = torch.Generator().manual_seed(output["input_seed"])
    return torch.randn(output["batch"], 3, res, res, generator=g)
