"""Spaces and helpers shared by the search tests (imported by name: pytest puts this folder on
sys.path)."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

# A cost-only space: no training, each trial is one FLOP count of a tiny model at 64 px.
COST_SPACE = {
    "name": "costs",
    "knobs": {
        "width": {"choices": [8, 16]},
        "depth3": {"low": 1, "high": 3},
        "semantic_grid": {"choices": [1, 2, 32]},  # 32 > the 16x16 stage-1 map: infeasible
    },
    "fixed": {
        "head_dim": 8,
        "width_multipliers": [1, 2, 3, 4],
        "depth1": 1,
        "depth2": 1,
        "depth4": 1,
        "mlp_ratio": 2,
        "stem_hidden_dim": 8,
        "num_classes": 10,
    },
    "objectives": [
        {"metric": "gflops", "direction": "minimize"},
        {"metric": "params_m", "direction": "maximize"},
    ],
    "sampler": {"name": "nsga2", "population_size": 4},
    "n_trials": 5,
    "profile": {"res": 64},
    "seeds": {"seed_a": {"width": 16, "depth3": 2, "semantic_grid": 2}},
}


def write_space(tmp_path: Path, space: dict, name: str = "costs.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path
